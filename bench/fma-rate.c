// The machine's fp32 multiply-add rate on one thread: vfmadd231ps on 256-bit ymm registers
// (8 floats, 2 FLOPs each), the ceiling of oneDNN's AVX2 convolutions, and, where the compiler
// was given AVX-512, on 512-bit zmm registers (16 floats), the ceiling of its AVX-512 ones.
// Times the core count on the threads a rank has gives the peak of docs/performance.md.
//
//   gcc -O2 -mavx2 -mfma bench/fma-rate.c -o /tmp/fma-rate && taskset -c 0 /tmp/fma-rate
//   gcc -O2 -mavx512f bench/fma-rate.c -o /tmp/fma-rate && taskset -c 0 /tmp/fma-rate
//
// 12 independent accumulators, so that the loop is bound by throughput, not by the
// instruction's latency; operands in registers 12 and 13.
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define ITERATIONS 200000000L
#define TWELVE(op, reg) op(reg, 0) op(reg, 1) op(reg, 2) op(reg, 3) op(reg, 4) op(reg, 5) \
    op(reg, 6) op(reg, 7) op(reg, 8) op(reg, 9) op(reg, 10) op(reg, 11)
#define FMA(reg, r) "vfmadd231ps %%" #reg "12, %%" #reg "13, %%" #reg #r "\n\t"

// Runs ITERATIONS x 12 multiply-adds of `lanes` floats on registers `reg` (ymm or zmm) and
// prints the rate.
#define MEASURE(reg, lanes)                                                                        \
    do {                                                                                           \
        long n = ITERATIONS;                                                                       \
        double start = now();                                                                      \
        __asm__ volatile("vxorps %%" #reg "12, %%" #reg "12, %%" #reg "12\n\t"                     \
                         "vxorps %%" #reg "13, %%" #reg "13, %%" #reg "13\n\t"                     \
                         "1:\n\t" TWELVE(FMA, reg) "dec %0\n\tjnz 1b\n\t"                          \
                         : "+r"(n)                                                                 \
                         :                                                                         \
                         : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", \
                           "xmm9", "xmm10", "xmm11", "xmm12", "xmm13");                            \
        double seconds = now() - start;                                                            \
        printf("%d-bit FMA: %.1f GFLOP/s on one thread\n", lanes * 32,                             \
               (double)ITERATIONS * 12 * lanes * 2 / seconds / 1e9);                               \
    } while (0)

int main(void) {
    MEASURE(ymm, 8);
#ifdef __AVX512F__
    MEASURE(zmm, 16);
#endif
    return 0;
}
