#include "cohort_jpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>

struct failure {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char *message;
    size_t message_size;
};

static void fail(j_common_ptr info) {
    struct failure *f = (struct failure *)info->err;
    char text[JMSG_LENGTH_MAX];
    (*info->err->format_message)(info, text);
    snprintf(f->message, f->message_size, "%s", text);
    longjmp(f->jump, 1);
}

// libjpeg only warns about data that ends early or is corrupt, and decodes grey in its place;
// a warning is a failure here.
static void warn(j_common_ptr info, int level) {
    if (level < 0) fail(info);
}

static int start(struct jpeg_decompress_struct *info, struct failure *f, const unsigned char *data, size_t size) {
    info->err = jpeg_std_error(&f->manager);
    f->manager.error_exit = fail;
    f->manager.emit_message = warn;
    jpeg_create_decompress(info);
    jpeg_mem_src(info, data, (unsigned long)size);
    jpeg_read_header(info, TRUE);
    if (info->num_components != 1 && info->num_components != 3) {
        snprintf(f->message, f->message_size, "a JPEG of %d components (only grey and colour are read)",
                 info->num_components);
        return -1;
    }
    info->out_color_space = info->num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    return 0;
}

int cohort_jpeg_header(const unsigned char *data, size_t size, int *width, int *height, int *components,
                       char *message, size_t message_size) {
    struct jpeg_decompress_struct info;
    struct failure f = {.message = message, .message_size = message_size};
    if (setjmp(f.jump)) {
        jpeg_destroy_decompress(&info);
        return -1;
    }
    int status = start(&info, &f, data, size);
    *width = (int)info.image_width;
    *height = (int)info.image_height;
    *components = info.num_components;
    jpeg_destroy_decompress(&info);
    return status;
}

int cohort_jpeg_decode(const unsigned char *data, size_t size, unsigned char *out, size_t out_size,
                       char *message, size_t message_size) {
    struct jpeg_decompress_struct info;
    struct failure f = {.message = message, .message_size = message_size};
    if (setjmp(f.jump)) {
        jpeg_destroy_decompress(&info);
        return -1;
    }
    if (start(&info, &f, data, size) != 0) {
        jpeg_destroy_decompress(&info);
        return -1;
    }
    jpeg_start_decompress(&info);
    size_t row = (size_t)info.output_width * (size_t)info.output_components;
    if (row * info.output_height > out_size) {
        snprintf(message, message_size, "the image is larger than its header said");
        jpeg_destroy_decompress(&info);
        return -1;
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW rows[1] = {out + (size_t)info.output_scanline * row};
        jpeg_read_scanlines(&info, rows, 1);
    }
    jpeg_finish_decompress(&info);
    jpeg_destroy_decompress(&info);
    return 0;
}
