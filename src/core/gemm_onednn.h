/* gemm_onednn.h — eid_gemm's products through oneDNN's matmul primitive: the mixed-precision path (bf16
 * operands, fp32 accumulation and result; docs/performance.md "Mixed precision") and plain fp32, one of
 * the libraries the per-shape plan chooses from (core/gemm_plan.h).
 *
 * Only eid_gemm (core/runtime.c) calls the products. For bf16 the operands stay fp32 in memory; each
 * call rounds them to bf16 (round to nearest even, one vectorised pass) into per-thread buffers, or
 * reads a weight buffer's bf16 mirror, and lets oneDNN multiply them with fp32 accumulation:
 * C = alpha·op(A)·op(B) + beta·C with C fp32. The fp32 reference path (OpenBLAS sgemm) is untouched;
 * in the fp64 test build there is no oneDNN path at all. */
#ifndef EIDETIC_GEMM_ONEDNN_H
#define EIDETIC_GEMM_ONEDNN_H
#include <stddef.h>
#include <stdint.h>
#include "core/common.h"

/* 1 when the CPU multiplies bf16 natively (AVX-512 BF16 or AMX, as oneDNN reports it). */
int eid_bf16_native(void);
/* oneDNN's name for the instruction set it dispatches to, e.g. "avx512_core" (for logs). */
const char *eid_bf16_isa_name(void);

/* The product as eid_gemm defines it (row-major, ta/tb transpose flags, row strides), computed with
 * bf16 operands. Returns 0, or -1 when oneDNN refused the shape (the caller falls back to fp32). */
int eid_gemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                  int ldb, float beta, float *C, int ldc);

/* The same with op(B) already in bf16 (B16: row stride ldb, in elements), as a saved bf16 activation
 * holds it (core/runtime.h eid_gemm_b16). Returns 0, or -1 when oneDNN refused. */
int eid_gemm_bf16_b16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const uint16_t *B16,
                      int ldb, float beta, float *C, int ldc);

/* The same product in fp32 through oneDNN (operands read in place, with their strides). Returns 0, or
 * -1 when oneDNN refused the shape. Not in the fp64 build. */
int eid_gemm_onednn_f32(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                        int ldb, float beta, float *C, int ldc);

/* x rounded to the nearest bf16 (ties to even; NaN stays NaN), returned as a float: what the bf16
 * path sees of an fp32 value. Tests use it to build exact references. */
float eid_round_bf16(float x);

/* bf16 mirrors of weight buffers: eid_bf16_mirror_sync(w, n) makes (or refreshes) a bf16 copy of the
 * fp32 buffer w[0..n) in one vectorised pass; while it exists, products whose operand lies inside w
 * read the copy instead of rounding the operand again, and matrix-vector products (one-token decoding)
 * stream half the bytes. Whoever writes the weights syncs after (the optimizer after every step; the
 * decoder when it is made) and drops the mirror before freeing w (model_free). No-ops in the fp64
 * build. */
void eid_bf16_mirror_sync(const real *w, size_t n);
/* The same without the bf16 copy (--precision auto, where only decoding runs in bf16): w is known as
 * a weight buffer, so few-row products pack it straight from fp32 (the same rounding), and the only
 * extra memory is the packed copies. Synced, re-registered and dropped like a mirror. */
void eid_bf16_mirror_register(const real *w, size_t n);
void eid_bf16_mirror_drop(const real *w);
int eid_bf16_is_mirrored(const real *x); /* x lies in a mirrored buffer */

/* Products of at most this many rows whose B operand lies in a mirror read a packed copy of that
 * weight, made once per mirror sync in the layout oneDNN's kernel asks for (decoding batches: at 1 row
 * the plain layout costs twice the packed one, measured in docs/performance.md "Mixed precision"). */
#define EID_BF16_PACK_MAX_ROWS 64
int eid_bf16_packed_count(void); /* packed copies held now (tests) */
/* bytes of bf16 weight copies (mirrors, packed copies) read by products so far (bench decode) */
uint64_t eid_bf16_weight_bytes_read(void);

/* dst[i] = the bf16 bits of src[i] (rounded as above): checkpoints written with --save-dtype bf16. */
void eid_bf16_from_real(uint16_t *dst, const real *src, size_t n);

#endif
