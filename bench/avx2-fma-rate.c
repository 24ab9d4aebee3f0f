// The machine's 256-bit fp32 multiply-add rate on one thread (vfmadd231ps on ymm registers,
// 8 per instruction, 2 FLOPs each): the ceiling of oneDNN's AVX2 convolutions.
//
//   gcc -O2 -mavx2 -mfma bench/avx2-fma-rate.c -o /tmp/avx2-fma-rate && taskset -c 0 /tmp/avx2-fma-rate
//
// 12 independent accumulators (ymm0-11), so that the loop is bound by throughput, not by the
// instruction's latency; operands in ymm12 and ymm13.
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define ITERATIONS 400000000L
#define ONE(r) "vfmadd231ps %%ymm12, %%ymm13, %%ymm" #r "\n\t"

int main(void) {
    long n = ITERATIONS;
    double start = now();
    __asm__ volatile("vxorps %%ymm12, %%ymm12, %%ymm12\n\tvxorps %%ymm13, %%ymm13, %%ymm13\n\t"
                     "1:\n\t" ONE(0) ONE(1) ONE(2) ONE(3) ONE(4) ONE(5) ONE(6) ONE(7) ONE(8) ONE(9) ONE(10) ONE(11)
                     "dec %0\n\tjnz 1b\n\t"
                     : "+r"(n)
                     :
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                       "xmm11", "xmm12", "xmm13");
    double seconds = now() - start;
    printf("256-bit FMA: %.1f GFLOP/s on one thread\n", (double)ITERATIONS * 12 * 8 * 2 / seconds / 1e9);
    return 0;
}
