/* model_ops.h — the model's tensor work around its sublayers (embedding, positions, residual
 * stream, label rows, parameter initialisation), so that src/model only orchestrates.
 * Rows are [n, D] contiguous unless a stride is given. */
#ifndef EIDETIC_KERNELS_MODEL_OPS_H
#define EIDETIC_KERNELS_MODEL_OPS_H
#include "core/common.h"
#include "core/rng.h"

/* out[i] = E[tokens[i]] for i < n (embedding lookup). */
void k_embed_gather(const real *E, const int *tokens, size_t n, int D, real *out);
/* h[i] += P[min(idx[i], nP − 1)] for i < n (learned absolute positions; P has nP rows, the last is
 * reused past the end). */
void k_add_rows_indexed(real *h, const real *P, int nP, const int *idx, size_t n, int D);
/* Backward of both: gE[tokens[i]] += d[i] and, when gP, gP[idx[i]] += d[i]; repeated ids never race
 * (parallel over column blocks, rows in order: deterministic). */
void k_embed_scatter_add(const real *d, const int *tokens, const int *idx, size_t n, int D, real *gE, real *gP);
/* y[i] = a[i] + b[i] (y may alias a or b). */
void k_add(real *y, const real *a, const real *b, size_t n);
/* dst[r] = src[rows[r]] (row gather), and its transpose dst[rows[r]] = src[r] (row scatter). */
void k_rows_gather(const real *src, const int *rows, int n, int D, real *dst);
void k_rows_scatter(const real *src, const int *rows, int n, int D, real *dst);
/* x[0..n) = value. */
void k_fill(real *x, size_t n, real value);
/* x[i] = a·(2u − 1) (uniform in (−a, a)) or a·N(0, 1), drawn in index order from r. */
void k_fill_uniform(real *x, size_t n, double a, Rng *r);
void k_fill_normal(real *x, size_t n, double a, Rng *r);

#endif
