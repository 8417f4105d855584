/* runtime.h — process start-up: BLAS core-type check, thread counts, the one GEMM entry point.
 *
 * Every matrix product in eidetic goes through eid_gemm(), so a CUDA or other backend replaces
 * one function, not every layer. */
#ifndef EIDETIC_RUNTIME_H
#define EIDETIC_RUNTIME_H
#include <stdint.h>
#include "core/common.h"

/* Call once, from one thread, before any other work: sets the thread count (threads <= 0: all
 * cores, or OMP_NUM_THREADS) and, with verbose, logs the BLAS core type and thread count. Never
 * re-executes the process: the CLI's main() does that (src/cli/main.c) when eid_blas_better_core()
 * names a core, because OpenBLAS reads OPENBLAS_CORETYPE only when it loads. */
void eid_runtime_setup(int threads, int verbose);
/* The OpenBLAS core this CPU should run when the loaded one has narrower kernels (0.3.21 reports
 * "Prescott" on some recent Xeons and runs ~5x slow), else NULL. */
const char *eid_blas_better_core(void);
/* Re-applies the thread settings of eid_runtime_setup to the calling thread. OpenMP keeps the team
 * size per thread: a thread the program started itself (a library user's pthread) would otherwise
 * run teams of the default size, not eid_threads(). Cheap; the library API calls it on entry. */
void eid_runtime_enter(void);
/* Denormals are flushed to zero (FTZ/DAZ on x86, FZ on ARM) on every thread that runs kernels: the
 * threads of eid_runtime_setup's and eid_runtime_enter's callers and their OpenMP teams (runtime.c says
 * why). eid_set_flush_denormals(0) before eid_runtime_setup leaves the floating-point mode alone (the
 * library's EIDETIC_INIT_KEEP_DENORMALS). */
void eid_set_flush_denormals(int on);
/* Whether the calling thread flushes denormals now (0 on other architectures). */
int eid_denormals_flushed_here(void);
int eid_threads(void);
/* Threads a kernel called here can use: 1 inside an active parallel region (a data-parallel shard,
 * train/shards.h, where kernels run on their caller's thread), eid_threads() otherwise. */
int eid_team_threads(void);
const char *eid_blas_core(void);

/* C[M,N] = alpha * op(A)[M,K] · op(B)[K,N] + beta * C, row-major; ta/tb: 0 = as stored, 1 = transposed.
 * lda/ldb/ldc are the row strides of A, B, C as stored. Which library runs it: OpenBLAS (fp32) or
 * oneDNN (bf16) as --precision says, or, with --gemm-plan measure, the fastest for the shape
 * (core/gemm_plan.h). */
void eid_gemm(int ta, int tb, int M, int N, int K, real alpha, const real *A, int lda, const real *B, int ldb,
              real beta, real *C, int ldc);

/* eid_gemm with op(B) read from bf16 values B16 (row stride ldb, in elements): activations saved in
 * bf16 for backward (Layer.act16, layers/layer.h). Under --precision bf16 the product runs in bf16
 * through oneDNN, giving exactly what eid_gemm computes from the same values in fp32 (it rounds them
 * to these bits); otherwise, or if oneDNN refuses, op(B) is widened to fp32 (exactly) and eid_gemm
 * runs (a model planned under bf16 and run after a switch to fp32). Not planned by --gemm-plan, so
 * layers keep bf16 activations only with the fixed plan (model_plan). */
void eid_gemm_b16(int ta, int tb, int M, int N, int K, real alpha, const real *A, int lda, const uint16_t *B16, int ldb,
                  real beta, real *C, int ldc);

/* The precision of eid_gemm's matrix products (--precision; docs/performance.md "Mixed precision").
 * fp32: OpenBLAS sgemm, the reference path. bf16: operands rounded to bf16, fp32 accumulation and
 * result, through oneDNN (core/gemm_onednn.h); matrix-vector products (one-row decoding) are bf16 only
 * when the matrix has a bf16 weight mirror. Everything else (scans, norms, softmax, loss, optimizer) is fp32 in both. */
/* auto: bf16 only where it was measured to win on CPUs with native bf16 — decoding, i.e. products of
 * at most EID_BF16_PACK_MAX_ROWS rows whose weight has a bf16 mirror (read packed: half the bytes of
 * a bandwidth-bound product) — and fp32 for every other product (on AVX-512 BF16 without AMX the
 * bf16 dot product runs at half the fp32 FMA rate, so compute-bound products lose: docs/performance.md
 * "Mixed precision"). Without native bf16, auto is fp32. The default of `eidetic generate`. */
enum { EID_PREC_FP32 = 0, EID_PREC_BF16 = 1, EID_PREC_AUTO = 2 };
/* "fp32" / "bf16" / "auto" -> EID_PREC_*, else -1. */
int eid_precision_parse(const char *name);
const char *eid_precision_name(int prec);
/* Asks for a precision; returns the one in effect (auto stays EID_PREC_AUTO where it uses bf16, else
 * becomes EID_PREC_FP32). bf16 needs a CPU that multiplies bf16 natively (AVX-512 BF16 or AMX):
 * elsewhere it falls back to fp32 with one log line, unless the environment sets EIDETIC_BF16_EMULATE=1
 * (oneDNN's emulation: the same arithmetic, slowly, in another summation order; for tests). In the
 * fp64 test build bf16 is never used. verbose: log the choice either way. */
int eid_set_precision(int prec, int verbose);
int eid_precision(void);
/* 1 when this product runs in bf16 under the precision in effect: every product in bf16 mode; in
 * auto mode only one of at most EID_BF16_PACK_MAX_ROWS rows whose B operand has a weight mirror. */
int eid_gemm_uses_bf16(int M, const real *B);

/* Matrix work done through eid_gemm since the last reset: 2·M·N·K per call (one multiply and one
 * add per term), summed exactly over all threads (callers may run inside OpenMP regions). The
 * benchmark's "model GFLOP" is this count over one training step, not a formula. */
uint64_t eid_gemm_flops(void);
void eid_gemm_flops_reset(void);

#endif
