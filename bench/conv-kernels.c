// Every implementation oneDNN offers for one pass of a 5x5 convolution (stride 1, padding 2,
// the CNN's), in oneDNN's order of preference (the first is the one Cohort gets), each timed
// on one thread with its rate in GFLOP/s.
//
//   gcc -O2 bench/conv-kernels.c -ldnnl -o /tmp/conv-kernels
//   OMP_NUM_THREADS=1 [DNNL_MAX_CPU_ISA=AVX2] taskset -c 0 /tmp/conv-kernels BATCH IN OUT SIZE PASS
//
// PASS: 0 forward, 1 backward weights, 2 backward data. The CNN's second convolution at a
// 2-rank slice of batch 64: 32 32 64 16; its first: 32 3 32 32.
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define CHECK(call) do { dnnl_status_t status_ = (call); \
    if (status_ != dnnl_success) { fprintf(stderr, "%s failed: %d\n", #call, status_); exit(1); } } while (0)

static dnnl_exec_arg_t allocate(dnnl_primitive_desc_t pd, dnnl_query_t what, int index, int argument, dnnl_engine_t engine) {
    dnnl_memory_t memory;
    CHECK(dnnl_memory_create(&memory, dnnl_primitive_desc_query_md(pd, what, index), engine, DNNL_MEMORY_ALLOCATE));
    return (dnnl_exec_arg_t){argument, memory};
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: %s BATCH IN OUT SIZE PASS\n", argv[0]); return 2; }
    int batch = atoi(argv[1]), in = atoi(argv[2]), out = atoi(argv[3]), size = atoi(argv[4]), pass = atoi(argv[5]);
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    dnnl_memory_desc_t x, w, b, y;
    dnnl_dims_t xDims = {batch, in, size, size}, wDims = {out, in, 5, 5}, bDims = {out}, yDims = {batch, out, size, size};
    CHECK(dnnl_memory_desc_init_by_tag(&x, 4, xDims, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&w, 4, wDims, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&b, 1, bDims, dnnl_f32, dnnl_x));
    CHECK(dnnl_memory_desc_init_by_tag(&y, 4, yDims, dnnl_f32, dnnl_format_tag_any));
    dnnl_dims_t strides = {1, 1}, padding = {2, 2};
    dnnl_convolution_desc_t forward, backward;
    CHECK(dnnl_convolution_forward_desc_init(&forward, dnnl_forward_training, dnnl_convolution_direct, &x, &w, &b, &y,
                                             strides, padding, padding));
    dnnl_primitive_desc_t hint;
    CHECK(dnnl_primitive_desc_create(&hint, &forward, NULL, engine, NULL));
    void *op = &forward;
    if (pass == 1) {
        CHECK(dnnl_convolution_backward_weights_desc_init(&backward, dnnl_convolution_direct, &x, &w, &b, &y, strides,
                                                          padding, padding));
        op = &backward;
    } else if (pass == 2) {
        CHECK(dnnl_convolution_backward_data_desc_init(&backward, dnnl_convolution_direct, &x, &w, &y, strides, padding,
                                                       padding));
        op = &backward;
    }
    dnnl_primitive_desc_iterator_t candidates;
    CHECK(dnnl_primitive_desc_iterator_create(&candidates, op, NULL, engine, pass == 0 ? NULL : hint));
    double flops = 2.0 * batch * out * size * size * in * 25;
    do {
        dnnl_primitive_desc_t pd = dnnl_primitive_desc_iterator_fetch(candidates);
        const char *name;
        CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name));
        dnnl_exec_arg_t args[6];
        int n = 0;
        if (pass == 0) {
            args[n++] = allocate(pd, dnnl_query_src_md, 0, DNNL_ARG_SRC, engine);
            args[n++] = allocate(pd, dnnl_query_weights_md, 0, DNNL_ARG_WEIGHTS, engine);
            args[n++] = allocate(pd, dnnl_query_weights_md, 1, DNNL_ARG_BIAS, engine);
            args[n++] = allocate(pd, dnnl_query_dst_md, 0, DNNL_ARG_DST, engine);
        } else if (pass == 1) {
            args[n++] = allocate(pd, dnnl_query_src_md, 0, DNNL_ARG_SRC, engine);
            args[n++] = allocate(pd, dnnl_query_diff_dst_md, 0, DNNL_ARG_DIFF_DST, engine);
            args[n++] = allocate(pd, dnnl_query_diff_weights_md, 0, DNNL_ARG_DIFF_WEIGHTS, engine);
            args[n++] = allocate(pd, dnnl_query_diff_weights_md, 1, DNNL_ARG_DIFF_BIAS, engine);
        } else {
            args[n++] = allocate(pd, dnnl_query_diff_dst_md, 0, DNNL_ARG_DIFF_DST, engine);
            args[n++] = allocate(pd, dnnl_query_weights_md, 0, DNNL_ARG_WEIGHTS, engine);
            args[n++] = allocate(pd, dnnl_query_diff_src_md, 0, DNNL_ARG_DIFF_SRC, engine);
        }
        if (dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0))
            args[n++] = allocate(pd, dnnl_query_scratchpad_md, 0, DNNL_ARG_SCRATCHPAD, engine);
        dnnl_primitive_t primitive;
        CHECK(dnnl_primitive_create(&primitive, pd));
        for (int i = 0; i < 3; i++) CHECK(dnnl_primitive_execute(primitive, stream, n, args));
        CHECK(dnnl_stream_wait(stream));
        int repeats = 20;
        double start = now();
        for (int i = 0; i < repeats; i++) CHECK(dnnl_primitive_execute(primitive, stream, n, args));
        CHECK(dnnl_stream_wait(stream));
        double seconds = (now() - start) / repeats;
        printf("pass %d  %-16s %8.2f ms  %6.1f GFLOP/s\n", pass, name, seconds * 1e3, flops / seconds / 1e9);
        dnnl_primitive_destroy(primitive);
        for (int i = 0; i < n; i++) dnnl_memory_destroy(args[i].memory);
    } while (dnnl_primitive_desc_iterator_next(candidates) == dnnl_success);
    return 0;
}
