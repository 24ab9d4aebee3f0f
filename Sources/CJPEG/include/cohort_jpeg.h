// JPEG decoding through libjpeg-turbo (Debian's libjpeg62-turbo-dev), wrapped in C because
// libjpeg reports errors by longjmp, which Swift cannot catch.
#ifndef COHORT_JPEG_H
#define COHORT_JPEG_H

#include <stddef.h>

// Reads the header of the JPEG in data[0..<size]: width, height and components (1 grey, 3
// colour). Returns 0, or -1 with a message of at most message_size bytes (NUL-terminated).
int cohort_jpeg_header(const unsigned char *data, size_t size, int *width, int *height, int *components,
                       char *message, size_t message_size);

// Decodes the JPEG into out (height * width * components bytes, rows of interleaved samples:
// grey, or RGB as libjpeg's YCbCr conversion gives it). A corrupt or truncated file (libjpeg's
// warnings included, as PIL refuses them) returns -1 with a message.
int cohort_jpeg_decode(const unsigned char *data, size_t size, unsigned char *out, size_t out_size,
                       char *message, size_t message_size);

#endif
