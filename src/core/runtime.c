/* runtime.c — BLAS detection and the GEMM entry point. */
#include "core/runtime.h"
#include "core/bf16.h"
#include <cblas.h>
#include "core/gemm_onednn.h"
#include "core/gemm_plan.h"
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif
#include <string.h>

/* OpenBLAS extensions (declared in its cblas.h; re-declared here so other BLASes still link
 * when these are provided as weak fallbacks below). */
char *openblas_get_corename(void) __attribute__((weak));
char *openblas_get_config(void) __attribute__((weak));
void openblas_set_num_threads(int) __attribute__((weak));

static int g_threads = 1;
int eid_threads(void) { return g_threads; }
int eid_team_threads(void) { return omp_in_parallel() ? 1 : g_threads; }

const char *eid_blas_core(void) { return openblas_get_corename ? openblas_get_corename() : "unknown (not OpenBLAS)"; }

/* The core OpenBLAS should have picked on this CPU, from the instruction sets it supports. */
static const char *expected_core(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        return "SKYLAKEX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "HASWELL";
#endif
    return NULL;
}

/* Instruction-set level of an OpenBLAS core name: 3 = AVX-512 kernels, 2 = AVX2, 1 = AVX, 0 = older
 * or unknown (the generic cores 0.3.21 falls back to when it misdetects a CPU, e.g. "Prescott"). */
static int core_level(const char *c) {
    static const char *avx512[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    static const char *avx2[] = {"Haswell", "Zen", "Excavator", "Steamroller", NULL};
    static const char *avx[] = {"Sandybridge", "Bulldozer", "Piledriver", NULL};
    const char **lists[] = {avx, avx2, avx512};
    for (int lvl = 2; lvl >= 0; lvl--)
        for (int i = 0; lists[lvl][i]; i++)
            if (strcasecmp(c, lists[lvl][i]) == 0) return lvl + 1;
    return 0;
}

const char *eid_blas_better_core(void) {
    const char *want = expected_core();
    /* Weaker kernels than the CPU runs: OpenBLAS misdetected it (0.3.21: "Prescott" on recent Xeons,
     * ~5x slow), or OPENBLAS_CORETYPE forces an older core (Haswell on an AVX-512 machine: ~1.7x
     * slower sgemm, measured on the development machine). */
    return openblas_get_corename && want && core_level(eid_blas_core()) < core_level(want) ? want : NULL;
}

/* Denormal floats (|x| < 1.2e-38) take a microcode assist on x86: every multiply-add that meets one costs
 * ~100 cycles. Gradients that only a few positions feed (a passkey's answer digits, after a softmax of
 * tiny probabilities) drift into that range, and training then ran 31x slower (3.6 s instead of 0.115 s
 * a step, 90% of it in sgemm; docs/performance.md "Denormals"). Flushing them to zero (FTZ: results; DAZ:
 * operands) changes only values below 1.2e-38 (fp32) / 2.2e-308 (fp64). The mode is per thread. */
static int g_flush_denormals = 1;
static _Thread_local int t_team_flushed;

void eid_set_flush_denormals(int on) { g_flush_denormals = on != 0; }

static void flush_denormals_here(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(_mm_getcsr() | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ volatile("msr fpcr, %0" ::"r"(fpcr | (1ull << 24))); /* FZ */
#endif
}

int eid_denormals_flushed_here(void) {
#if defined(__x86_64__) || defined(__i386__)
    return (_mm_getcsr() & 0x8040u) == 0x8040u;
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return (fpcr >> 24) & 1;
#else
    return 0;
#endif
}

/* The calling thread and every thread of its OpenMP team (OpenBLAS's threads are the same team). */
static void flush_denormals_team(void) {
    if (!g_flush_denormals) return;
    flush_denormals_here();
#pragma omp parallel num_threads(g_threads)
    flush_denormals_here();
    t_team_flushed = 1;
}

void eid_runtime_setup(int threads, int verbose) {
    const char *core = eid_blas_core(), *want = eid_blas_better_core();
    int weak = want != NULL, keep = getenv("EIDETIC_KEEP_CORETYPE") != NULL;
    if (threads <= 0) threads = omp_get_max_threads();
    if (threads < 1) threads = 1;
    g_threads = threads;
    omp_set_num_threads(threads);
    /* one level of parallelism: a kernel called inside a parallel region (a data-parallel shard,
     * train/shards.h) runs on its caller's thread instead of starting a nested team */
    omp_set_max_active_levels(1);
    if (openblas_set_num_threads) openblas_set_num_threads(threads);
    flush_denormals_team();
    if (verbose) {
        const char *from = getenv("EIDETIC_REEXEC_FROM"), *from_env = getenv("EIDETIC_REEXEC_ENV");
        if (from && from_env)
            eid_log("BLAS: OPENBLAS_CORETYPE=%s (from the environment) leaves this CPU's wider kernels unused; "
                    "set OPENBLAS_CORETYPE=%s (now core %s), %d threads (EIDETIC_KEEP_CORETYPE=1 keeps yours)",
                    from_env, getenv("OPENBLAS_CORETYPE"), eid_blas_core(), threads);
        else if (from)
            eid_log("BLAS: OpenBLAS misdetected this CPU as %s; set OPENBLAS_CORETYPE=%s (now core %s), %d threads",
                    from, getenv("OPENBLAS_CORETYPE"), eid_blas_core(), threads);
        else if (weak)
            eid_log("BLAS: warning: OpenBLAS core %s is weaker than this CPU supports (%s); matrix products may be "
                    "up to ~5x slow%s", core, want,
                    keep ? " (EIDETIC_KEEP_CORETYPE is set)" : "; set OPENBLAS_CORETYPE before the program starts");
        else
            eid_log("BLAS: %s core %s, %d threads", openblas_get_corename ? "OpenBLAS" : "BLAS", eid_blas_core(),
                    threads);
    }
}

static int g_precision = EID_PREC_FP32;
int eid_precision(void) { return g_precision; }
const char *eid_precision_name(int prec) { return prec == EID_PREC_BF16 ? "bf16" : prec == EID_PREC_AUTO ? "auto" : "fp32"; }
int eid_precision_parse(const char *name) {
    if (!strcmp(name, "fp32")) return EID_PREC_FP32;
    if (!strcmp(name, "bf16")) return EID_PREC_BF16;
    if (!strcmp(name, "auto")) return EID_PREC_AUTO;
    return -1;
}

int eid_set_precision(int prec, int verbose) {
    if (prec != EID_PREC_BF16 && prec != EID_PREC_AUTO) {
        g_precision = EID_PREC_FP32;
        return g_precision;
    }
#ifdef EIDETIC_FP64
    g_precision = EID_PREC_FP32;
    if (verbose) eid_log("precision: fp32 (this is the fp64 test build: no bf16 path)");
#else
    const char *emu = getenv("EIDETIC_BF16_EMULATE");
    int emulate = emu && !strcmp(emu, "1");
    if (prec == EID_PREC_AUTO) {
        g_precision = eid_bf16_native() || emulate ? EID_PREC_AUTO : EID_PREC_FP32;
        if (!verbose) return g_precision;
        if (g_precision == EID_PREC_AUTO)
            eid_log("precision: auto: bf16 for decoding (products of <= %d rows read packed bf16 weights: half the "
                    "bytes), fp32 for the rest (oneDNN %s%s; --precision fp32 or bf16 to choose)",
                    EID_BF16_PACK_MAX_ROWS, eid_bf16_isa_name(), eid_bf16_native() ? "" : ", EIDETIC_BF16_EMULATE=1");
        else
            eid_log("precision: auto: fp32 (this CPU has no native bf16; oneDNN: %s)", eid_bf16_isa_name());
    } else if (eid_bf16_native() || emulate) {
        g_precision = EID_PREC_BF16;
        if (verbose)
            eid_log("precision: bf16 matrix products (oneDNN %s, fp32 accumulation); fp32 master weights, optimizer, "
                    "scans, norms, softmax and loss%s", eid_bf16_isa_name(),
                    eid_bf16_native() ? "" : "; EIDETIC_BF16_EMULATE=1: emulated, slower than fp32");
    } else {
        g_precision = EID_PREC_FP32;
        eid_log("precision: this CPU has no native bf16 (oneDNN: %s): using fp32", eid_bf16_isa_name());
    }
#endif
    return g_precision;
}

int eid_gemm_uses_bf16(int M, const real *B) {
#ifdef EIDETIC_FP64
    (void)M, (void)B;
    return 0;
#else
    return g_precision == EID_PREC_BF16 ||
           (g_precision == EID_PREC_AUTO && M <= EID_BF16_PACK_MAX_ROWS && eid_bf16_is_mirrored(B));
#endif
}

/* One relaxed atomic add per call: exact when kernels call eid_gemm from parallel loops, and
 * negligible beside the product itself (the smallest calls are still thousands of flops). */
static uint64_t g_gemm_flops;
uint64_t eid_gemm_flops(void) { return __atomic_load_n(&g_gemm_flops, __ATOMIC_RELAXED); }
void eid_gemm_flops_reset(void) { __atomic_store_n(&g_gemm_flops, 0, __ATOMIC_RELAXED); }

/* y = alpha·op(Mat)·x + beta·y through BLAS gemv; Mat stored row-major [rows, cols] with stride ld. */
static void gemv(int trans, int rows, int cols, real alpha, const real *Mat, int ld, const real *x, int incx,
                 real beta, real *y, int incy) {
    if (beta == 0) /* BLAS may scale y by 0 and keep a NaN left in an uninitialised buffer */
        for (int i = 0, n = trans ? cols : rows; i < n; i++) y[(size_t)i * incy] = 0;
#ifdef EIDETIC_FP64
    cblas_dgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, rows, cols, alpha, Mat, ld, x, incx, beta, y, incy);
#else
    cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, rows, cols, alpha, Mat, ld, x, incx, beta, y, incy);
#endif
}

/* eid_gemm with M == 1 (one row: decoding a single sequence) or N == 1, as one gemv. */
static void gemv_dispatch(int ta, int tb, int M, int N, int K, real alpha, const real *A, int lda, const real *B,
                          int ldb, real beta, real *C, int ldc) {
    if (M == 1) { /* C[1,N] = x[1,K]·op(B): x = A's row (ta = 0) or column (ta = 1) */
        int incx = ta ? lda : 1;
        if (tb) gemv(0, N, K, alpha, B, ldb, A, incx, beta, C, 1); /* B stored [N,K]: C = B·x */
        else gemv(1, K, N, alpha, B, ldb, A, incx, beta, C, 1);    /* B stored [K,N]: C = Bᵀ·x */
    } else {                                                       /* C[M,1] = op(A)·b, a column of stride ldc */
        int incb = tb ? 1 : ldb;
        if (ta) gemv(1, K, M, alpha, A, lda, B, incb, beta, C, ldc); /* A stored [K,M] */
        else gemv(0, M, K, alpha, A, lda, B, incb, beta, C, ldc);    /* A stored [M,K] */
    }
}

#ifndef EIDETIC_FP64
/* ---- --gemm-plan measure: the library per shape (core/gemm_plan.h) ---- */
typedef struct {
    int ta, tb, M, N, K, lda, ldb;
    float alpha, beta;
    const float *A, *B;
    int ldc;
} GemmCall;

/* g's product into out (a matrix laid out as C, with stride ldc) through one library */
static int run_backend(int backend, void *ctx, float *out) {
    const GemmCall *g = ctx;
    switch (backend) {
    case EID_GEMM_ONEDNN_F32:
        return eid_gemm_onednn_f32(g->ta, g->tb, g->M, g->N, g->K, g->alpha, g->A, g->lda, g->B, g->ldb, g->beta, out,
                                   g->ldc);
    case EID_GEMM_ONEDNN_BF16:
        return eid_gemm_bf16(g->ta, g->tb, g->M, g->N, g->K, g->alpha, g->A, g->lda, g->B, g->ldb, g->beta, out, g->ldc);
    default:
        if (g->M == 1 || g->N == 1)
            gemv_dispatch(g->ta, g->tb, g->M, g->N, g->K, g->alpha, g->A, g->lda, g->B, g->ldb, g->beta, out, g->ldc);
        else
            cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans, g->M, g->N,
                        g->K, g->alpha, g->A, g->lda, g->B, g->ldb, g->beta, out, g->ldc);
        return 0;
    }
}

/* The candidates are those fixed mode could use plus oneDNN fp32; the fallback is fixed mode's own
 * choice: OpenBLAS in fp32; in bf16, oneDNN bf16, except matrix-vector products without a weight
 * mirror (rounding the matrix per call reads more bytes than fp32 gemv). */
static void planned_gemm(GemmCall *g, float *C) {
    int gemv = g->M == 1 || g->N == 1, bf16 = eid_gemm_uses_bf16(g->M, g->B);
    /* a matrix-vector product reads its matrix from a mirror, or not at all in bf16 (as in fixed mode) */
    int mirror = bf16 && (gemv ? eid_bf16_is_mirrored(g->M == 1 ? g->B : g->A)
                               : eid_bf16_is_mirrored(g->A) || eid_bf16_is_mirrored(g->B));
    /* the precision this product runs at (auto mode is bf16 for some products, fp32 for the rest) */
    EidGemmShape s = {bf16 ? EID_PREC_BF16 : EID_PREC_FP32, g->ta, g->tb, g->M, g->N, g->K, eid_team_threads(), mirror};
    int cands[3] = {EID_GEMM_OPENBLAS, EID_GEMM_ONEDNN_F32, EID_GEMM_ONEDNN_BF16}, fallback = EID_GEMM_OPENBLAS;
    int n = 2;
    if (bf16 && (!gemv || mirror)) n = 3, fallback = EID_GEMM_ONEDNN_BF16;
    size_t span = (size_t)(g->M - 1) * (size_t)g->ldc + (size_t)g->N;
    int use = eid_gemm_plan_choose(&s, cands, n, fallback, run_backend, g, C, span);
    if (run_backend(use, g, C) != 0) run_backend(EID_GEMM_OPENBLAS, g, C); /* refused: fp32 OpenBLAS */
}
#endif

void eid_gemm(int ta, int tb, int M, int N, int K, real alpha, const real *A, int lda, const real *B, int ldb,
              real beta, real *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K > 0) __atomic_fetch_add(&g_gemm_flops, 2 * (uint64_t)M * (uint64_t)N * (uint64_t)K, __ATOMIC_RELAXED);
    if (K <= 0) { /* BLAS may skip scaling C by beta when K == 0: do it here */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * C[(size_t)i * ldc + j];
        return;
    }
#ifndef EIDETIC_FP64
    if (eid_gemm_plan_mode() == EID_PLAN_MEASURE) {
        GemmCall g = {ta, tb, M, N, K, lda, ldb, alpha, beta, A, B, ldc};
        planned_gemm(&g, C);
        return;
    }
    /* bf16 matrix-vector products only from a weight mirror: rounding the matrix per call would read
     * more bytes than fp32 gemv */
    if (g_precision != EID_PREC_FP32 && (M == 1 || N == 1) && eid_gemm_uses_bf16(M, B) &&
        eid_bf16_is_mirrored(M == 1 ? B : A) && eid_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == 0)
        return;
#endif
    if (M == 1 || N == 1) { /* a matrix-vector product: gemv reads the matrix once, gemm would pack it */
        gemv_dispatch(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#ifndef EIDETIC_FP64
    if (g_precision != EID_PREC_FP32 && eid_gemm_uses_bf16(M, B) &&
        eid_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == 0)
        return;
#endif
#ifdef EIDETIC_FP64
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
                B, ldb, beta, C, ldc);
#else
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
                B, ldb, beta, C, ldc);
#endif
}

void eid_gemm_b16(int ta, int tb, int M, int N, int K, real alpha, const real *A, int lda, const uint16_t *B16, int ldb,
                  real beta, real *C, int ldc) {
    if (M <= 0 || N <= 0) return;
#ifndef EIDETIC_FP64
    if (K > 0 && g_precision == EID_PREC_BF16 &&
        eid_gemm_bf16_b16(ta, tb, M, N, K, alpha, A, lda, B16, ldb, beta, C, ldc) == 0) {
        __atomic_fetch_add(&g_gemm_flops, 2 * (uint64_t)M * (uint64_t)N * (uint64_t)K, __ATOMIC_RELAXED);
        return;
    }
#endif
    /* op(B) widened (exact) into this thread's buffer, kept between calls: no allocation once grown */
    static __thread real *wide;
    static __thread size_t wide_n;
    int rows = tb ? N : K, cols = tb ? K : N;
    size_t n = (size_t)(rows > 0 ? rows : 0) * (size_t)cols;
    if (n > wide_n) free(wide), wide = eid_aligned_alloc(n * sizeof(real)), wide_n = n;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) wide[(size_t)r * cols + c] = (real)eid_bf16_float(B16[(size_t)r * ldb + c]);
    eid_gemm(ta, tb, M, N, K, alpha, A, lda, wide, cols, beta, C, ldc);
}

void eid_runtime_enter(void) {
    if (omp_get_max_threads() != g_threads) omp_set_num_threads(g_threads);
    if (omp_get_max_active_levels() != 1) omp_set_max_active_levels(1);
    /* once per calling thread; threads its team adds later are created by it and inherit its mode */
    if (!t_team_flushed) flush_denormals_team();
}
