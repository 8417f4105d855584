/* test_gemm.c — eid_gemm (the one matrix-product entry point) against a naive triple loop, for every
 * transpose combination, the gemv shapes (M = 1, N = 1) it dispatches to BLAS gemv, padded strides,
 * beta 0 over NaN-filled outputs and beta 1 accumulation; and its FLOP counter. Also the runtime's
 * denormal flushing (core/runtime.h) on the main thread and every thread of its team. */
#include "core/runtime.h"
#include "testutil.h"
#include <omp.h>

/* After eid_runtime_setup: FTZ/DAZ on this thread and on each OpenMP worker, and arithmetic that would
 * make or read a denormal gives 0. Without flushing, 1e-30f * 1e-10f is the denormal 1e-40f and the
 * denormal 1e-40f times 1e10f is 1e-30f: either check then fails. */
static void test_denormals_flushed(void) {
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__)
    CHECK(eid_denormals_flushed_here(), "denormals: main thread not flushing");
    int workers_ok = 0, team = 0;
#pragma omp parallel num_threads(eid_threads()) reduction(+ : workers_ok, team)
    {
        workers_ok += eid_denormals_flushed_here();
        team += 1;
    }
    CHECK(team == eid_threads() && workers_ok == team, "denormals: %d of %d team threads flushing", workers_ok, team);
    volatile float tiny = 1e-30f, scale = 1e-10f, big = 1e10f;
    volatile float made = tiny * scale;
    CHECK(made == 0.0f, "denormals: 1e-30f * 1e-10f = %g, want 0 (FTZ)", (double)made);
    volatile unsigned bits = 0x000116c2u; /* the fp32 denormal 1.0e-40 */
    float denormal;
    unsigned b = bits;
    memcpy(&denormal, &b, sizeof denormal);
    volatile float read = denormal * big;
    CHECK(read == 0.0f, "denormals: denormal 1e-40f * 1e10f = %g, want 0 (DAZ)", (double)read);
#endif
}

static real elem(const real *X, int ld, int trans, int r, int c) { return trans ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c]; }

static void one_case(int ta, int tb, int M, int N, int K, real beta) {
    int pad = 3;
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    real *A = malloc(sizeof(real) * na), *B = malloc(sizeof(real) * nb), *C = malloc(sizeof(real) * nc),
         *R = malloc(sizeof(real) * nc);
    for (size_t i = 0; i < na; i++) A[i] = (real)sin(0.37 * i + 0.1);
    for (size_t i = 0; i < nb; i++) B[i] = (real)cos(0.53 * i + 0.2);
    for (size_t i = 0; i < nc; i++) C[i] = beta == 0 ? NAN : (real)(0.01 * i), R[i] = C[i];
    real alpha = 0.75;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < K; k++) acc += (double)elem(A, lda, ta, i, k) * elem(B, ldb, tb, k, j);
            R[(size_t)i * ldc + j] = (real)(alpha * acc + (beta == 0 ? 0 : beta * R[(size_t)i * ldc + j]));
        }
    eid_gemm_flops_reset();
    eid_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double err = 0;
    int pad_ok = 1;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double d = fabs((double)C[(size_t)i * ldc + j] - R[(size_t)i * ldc + j]);
            if (!(d <= err)) err = d;
        }
        for (int j = N; j < ldc; j++) /* padding columns are never written */
            if (!(beta == 0 ? isnan(C[(size_t)i * ldc + j]) : C[(size_t)i * ldc + j] == R[(size_t)i * ldc + j])) pad_ok = 0;
    }
    CHECK(err < 1e-9 * (K + 1), "eid_gemm ta=%d tb=%d M=%d N=%d K=%d beta=%g: max err %.3g", ta, tb, M, N, K, beta, err);
    CHECK(pad_ok, "eid_gemm ta=%d tb=%d M=%d N=%d K=%d: wrote outside the N columns", ta, tb, M, N, K);
    CHECK(eid_gemm_flops() == 2ull * M * N * K, "flop count %llu, want %llu", (unsigned long long)eid_gemm_flops(),
          2ull * M * N * K);
    free(A), free(B), free(C), free(R);
}

int main(void) {
    eid_runtime_setup(2, 0);
    test_denormals_flushed();
    static const int shapes[][3] = {{1, 7, 5}, {1, 300, 129}, {6, 1, 9}, {257, 1, 33}, {1, 1, 17}, {5, 6, 7}, {64, 48, 40}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int bi = 0; bi < 2; bi++) one_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], bi ? 1 : 0);
    return t_summary("test_gemm");
}
