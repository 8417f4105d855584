/* bench/isa_peak.c — the instruction-level peak of one core for fp32 FMA (vfmadd231ps) against the
 * bf16 dot product (vdpbf16ps, AVX-512 BF16), in GFLOP/s, measured in one run (docs/performance.md
 * "Mixed precision"). It answers one question: can bf16 matrix products on this CPU be faster than
 * fp32 ones at all? Both loops keep 16 independent accumulators in zmm registers (unrolled, so that none lives in memory), so latency never
 * limits them; the count is 2 flops per multiply-add (32 per vfmadd231ps, 64 per vdpbf16ps).
 *   make build/bench/isa_peak && build/bench/isa_peak    (or: cc -O2 bench/isa_peak.c -o isa_peak)
 * The instructions are enabled per function, so it builds with plain -O2 on any x86-64 compiler (on
 * other CPUs it prints that it measures nothing); the bf16 half runs only on a CPU that reports
 * avx512_bf16 (it says so otherwise). */
#if !defined(__x86_64__)
#include <stdio.h>
int main(void) {
    puts("isa_peak: x86-64 only");
    return 0;
}
#else
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

#define ITERS 20000000L

/* uses the 16 accumulators, so that the compiler cannot drop the loop that made them */
__attribute__((target("avx512f"))) static void keep(const __m512 *a) {
    __m512 s = a[0];
    for (int i = 1; i < 16; i++) s = _mm512_add_ps(s, a[i]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
}

__attribute__((target("avx512f"))) static double fma_gflops(void) {
    __m512 a[16], x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(0.9999999f);
    for (int i = 0; i < 16; i++) a[i] = _mm512_set1_ps((float)i);
    double t0 = now();
    for (long it = 0; it < ITERS; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) a[i] = _mm512_fmadd_ps(x, y, a[i]);
    }
    double dt = now() - t0;
    keep(a);
    return ITERS * 16.0 * 32 / dt * 1e-9;
}

__attribute__((target("avx512f,avx512bf16"))) static double dpbf16_gflops(void) {
    __m512 a[16];
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3f80); /* 1.0 */
    for (int i = 0; i < 16; i++) a[i] = _mm512_set1_ps((float)i);
    double t0 = now();
    for (long it = 0; it < ITERS; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) a[i] = _mm512_dpbf16_ps(a[i], x, y);
    }
    double dt = now() - t0;
    keep(a);
    return ITERS * 16.0 * 64 / dt * 1e-9;
}

int main(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) {
        puts("isa_peak: this CPU has no AVX-512");
        return 0;
    }
    double f = 0, b = 0;
    for (int r = 0; r < 3; r++) { /* best of three */
        double g = fma_gflops();
        f = g > f ? g : f;
    }
    printf("fp32 vfmadd231ps zmm: %.1f GFLOP/s (one core)\n", f);
    if (!__builtin_cpu_supports("avx512bf16")) {
        puts("bf16 vdpbf16ps: this CPU has no AVX-512 BF16");
        return 0;
    }
    for (int r = 0; r < 3; r++) {
        double g = dpbf16_gflops();
        b = g > b ? g : b;
    }
    printf("bf16 vdpbf16ps zmm:   %.1f GFLOP/s (one core), %.2fx fp32\n", b, b / f);
    return 0;
}
#endif
