// Does bf16 pay on this CPU? One thread: the multiply-add rate of 512-bit fp32 FMAs
// (vfmadd231ps, 16 per instruction) against bf16 dot products (vdpbf16ps, 32 per
// instruction), then oneDNN's kernels for the CNN's second convolution and for a product of
// the same size, with fp32 inputs and with bf16 inputs (fp32 output either way).
//
//   gcc -O2 -mavx512f -mavx512bf16 bench/bf16-rate.c -ldnnl -o /tmp/bf16-rate
//   OMP_NUM_THREADS=1 taskset -c 0 /tmp/bf16-rate
//
// Needs AVX512_BF16 (`grep avx512_bf16 /proc/cpuinfo`) and libdnnl-dev.
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// ---- Instruction rates: 12 independent accumulators (zmm0-11) so that the loop is bound by
// throughput, not by the instruction's latency; operands in zmm12 and zmm13.
#define ITERATIONS 1200000000L
#define ONE(op, r) op " %%zmm12, %%zmm13, %%zmm" #r "\n\t"
#define TWELVE(op) ONE(op, 0) ONE(op, 1) ONE(op, 2) ONE(op, 3) ONE(op, 4) ONE(op, 5) \
                   ONE(op, 6) ONE(op, 7) ONE(op, 8) ONE(op, 9) ONE(op, 10) ONE(op, 11)
#define TIMED_LOOP(op)                                                                        \
    __asm__ volatile("vpxord %%zmm12, %%zmm12, %%zmm12\n\tvpxord %%zmm13, %%zmm13, %%zmm13\n\t" \
                     "mov %0, %%rcx\n1:\n\t" TWELVE(op) "dec %%rcx\n\tjnz 1b\n"                 \
                     :: "r"(ITERATIONS / 12)                                                   \
                     : "rcx", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",   \
                       "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "cc")

static void instructionRates(void) {
    double t0 = now();
    TIMED_LOOP("vfmadd231ps");
    double fma = now() - t0;
    t0 = now();
    TIMED_LOOP("vdpbf16ps");
    double dot = now() - t0;
    double fmaRate = 16 * ITERATIONS / fma, dotRate = 32 * ITERATIONS / dot;
    printf("vfmadd231ps zmm  %.2f G instructions/s  %6.1f G multiply-adds/s\n", ITERATIONS / fma * 1e-9, fmaRate * 1e-9);
    printf("vdpbf16ps   zmm  %.2f G instructions/s  %6.1f G multiply-adds/s\n", ITERATIONS / dot * 1e-9, dotRate * 1e-9);
    printf("bf16 / fp32 multiply-add rate: %.2f\n\n", dotRate / fmaRate);
}

// ---- oneDNN's kernels.
#define CHECK(call)                                                                  \
    do {                                                                             \
        dnnl_status_t status_ = (call);                                              \
        if (status_ != dnnl_success) {                                               \
            fprintf(stderr, "bf16-rate: %s failed (status %d)\n", #call, status_);    \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

static dnnl_engine_t engine;
static dnnl_stream_t stream;

// A tensor filled with 1/64 (in fp32 or bf16): freshly allocated memory may hold earlier
// tensors' bytes, whose denormals would slow the fp32 kernels down by microcode assists.
static dnnl_memory_t allocate(const dnnl_memory_desc_t *md) {
    dnnl_memory_t m;
    CHECK(dnnl_memory_create(&m, md, engine, DNNL_MEMORY_ALLOCATE));
    void *data;
    CHECK(dnnl_memory_get_data_handle(m, &data));
    size_t bytes = dnnl_memory_desc_get_size(md);
    if (md->data_type == dnnl_bf16) {
        for (size_t i = 0; i < bytes / 2; i++) ((unsigned short *)data)[i] = 0x3C80;  // 1/64
    } else {
        for (size_t i = 0; i < bytes / 4; i++) ((float *)data)[i] = 1.0f / 64;
    }
    return m;
}

static const dnnl_memory_desc_t *query(dnnl_primitive_desc_t pd, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

// Runs the primitive 5 times to warm up, then 40 timed; prints ms per call and GFLOP/s.
static void timePrimitive(dnnl_primitive_desc_t pd, int count, dnnl_exec_arg_t *args, const char *name, double flops) {
    dnnl_primitive_t p;
    CHECK(dnnl_primitive_create(&p, pd));
    const char *implementation = "";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &implementation);
    for (int i = 0; i < 5; i++) CHECK(dnnl_primitive_execute(p, stream, count, args));
    const int runs = 40;
    double t0 = now();
    for (int i = 0; i < runs; i++) CHECK(dnnl_primitive_execute(p, stream, count, args));
    double seconds = (now() - t0) / runs;
    printf("%-32s %-28s %7.2f ms  %6.1f GFLOP/s\n", name, implementation, seconds * 1e3, flops / seconds * 1e-9);
    for (int i = 0; i < count; i++) dnnl_memory_destroy(args[i].memory);
    dnnl_primitive_destroy(p);
    dnnl_primitive_desc_destroy(pd);
}

// conv2: x [64, 32, 16, 16], W [64, 32, 5, 5], padding 2 -> y [64, 64, 16, 16];
// 2 · 64·256 outputs · 64 filters · 800 multiply-adds each.
static void convolution(dnnl_data_type_t inputs, dnnl_format_tag_t layout, const char *name) {
    dnnl_dims_t x = {64, 32, 16, 16}, w = {64, 32, 5, 5}, b = {64}, y = {64, 64, 16, 16};
    dnnl_dims_t strides = {1, 1}, padding = {2, 2};
    dnnl_memory_desc_t xd, wd, bd, yd;
    CHECK(dnnl_memory_desc_init_by_tag(&xd, 4, x, inputs, layout));
    CHECK(dnnl_memory_desc_init_by_tag(&wd, 4, w, inputs, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&bd, 1, b, dnnl_f32, dnnl_x));
    CHECK(dnnl_memory_desc_init_by_tag(&yd, 4, y, dnnl_f32, layout));
    dnnl_convolution_desc_t op;
    CHECK(dnnl_convolution_forward_desc_init(&op, dnnl_forward_training, dnnl_convolution_direct, &xd, &wd, &bd, &yd,
                                             strides, padding, padding));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &op, NULL, engine, NULL));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, allocate(query(pd, dnnl_query_src_md))},
                               {DNNL_ARG_WEIGHTS, allocate(query(pd, dnnl_query_weights_md))},
                               {DNNL_ARG_BIAS, allocate(&bd)},
                               {DNNL_ARG_DST, allocate(query(pd, dnnl_query_dst_md))}};
    timePrimitive(pd, 4, args, name, 2.0 * 64 * 256 * 64 * 800);
}

// The same multiply-adds as one product: A [16384, 800] · B [800, 64].
static void matrixProduct(dnnl_data_type_t inputs, const char *name) {
    dnnl_dims_t a = {16384, 800}, b = {800, 64}, c = {16384, 64};
    dnnl_memory_desc_t ad, bd, cd;
    CHECK(dnnl_memory_desc_init_by_tag(&ad, 2, a, inputs, dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_tag(&bd, 2, b, inputs, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&cd, 2, c, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t op;
    CHECK(dnnl_matmul_desc_init(&op, &ad, &bd, NULL, &cd));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &op, NULL, engine, NULL));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, allocate(&ad)},
                               {DNNL_ARG_WEIGHTS, allocate(query(pd, dnnl_query_weights_md))},
                               {DNNL_ARG_DST, allocate(&cd)}};
    timePrimitive(pd, 3, args, name, 2.0 * 16384 * 800 * 64);
}

int main(void) {
    instructionRates();
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    convolution(dnnl_f32, dnnl_format_tag_any, "conv2 forward, fp32");
    convolution(dnnl_bf16, dnnl_format_tag_any, "conv2 forward, bf16");
    convolution(dnnl_f32, dnnl_nhwc, "conv2 forward NHWC, fp32");
    convolution(dnnl_bf16, dnnl_nhwc, "conv2 forward NHWC, bf16");
    matrixProduct(dnnl_f32, "matmul 16384x800x64, fp32");
    matrixProduct(dnnl_bf16, "matmul 16384x800x64, bf16");
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    return 0;
}
