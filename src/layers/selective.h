/* selective.h — what Mamba-1 and Longhorn share: the in_proj → conv → x_proj → dt_proj block
 * sizes (docs/layers.md §1.5 and §2.6 have the same defaults and limits), its input path forward and
 * backward, and the decode-state layout [conv ring | scan state] per sequence. */
#ifndef EIDETIC_SELECTIVE_H
#define EIDETIC_SELECTIVE_H
#include "core/common.h"
#include "kernels/seq.h"
#include "layers/layer_cfg.h"

/* Parameters both mixers list first, in this order (their tables must keep it). */
enum { SEL_IN, SEL_CONV_W, SEL_CONV_B, SEL_X, SEL_DT_W, SEL_DT_B };

/* The input path of one (B, T) pass: xz = W_in·x [M, 2I]; xc = conv(x half) [M, I]; u = silu(xc);
 * xdbl = W_x·u [M, R+2N]. ring [B, I, K−1] (NULL: rows start from zeros): the conv continues from
 * it and it receives the last K−1 conv inputs of every row (prefill). */
void selective_input_fwd(const SeqInfo *s, int D, int I, int K, int ldx, real *const *p, const real *x, real *xz,
                         real *xc, real *u, real *xdbl, real *ring);

/* Activations of the shared input path of one (B, T) pass; d_* are backward buffers. */
typedef struct {
    int B, T, D, I, N, K, R;
    const uint8_t *flags;
    const real *x_in, *xz, *xc, *u, *xdbl; /* [M,D], [M,2I], [M,I], [M,I], [M,R+2N] */
    real *d_pre;                            /* [M,I]  ∂L/∂(W_dt·r + b_dt), consumed */
    real *d_xdbl;                           /* [M,R+2N] ∂L/∂[k;q] (or [B;C]) in columns R.. on entry */
    real *d_u;                              /* [M,I]  ∂L/∂u from the scan and the D skip, consumed */
    real *d_xz;                             /* [M,2I] z half holds ∂L/∂z, x half 0 (k_sel_gate_bwd) */
} SelectiveBwd;

/* Backward of dt_proj, x_proj, silu, the causal conv and in_proj: parameter gradients += (g, in the
 * SEL_* order), dx += . */
void selective_input_bwd(const SelectiveBwd *a, real *const *p, real *const *g, real *dx);

/* Decode state of B sequences, row stride ss = I·(K−1) + I·N floats: [conv ring [I, K−1] | scan
 * state [I, N]]. Copy the rings between it and ring [B, I, K−1] (to_state = 0: gather, 1: scatter). */
void selective_rings(real *state, size_t ss, real *ring, int B, int I, int K, int to_state);

/* E = 2, N = 16, K = 4, R = ceil(D/16), chunk 64 when 0; validates ranges, errors name the mixer. */
int selective_resolve(LayerCfg *c, int D, const char *mixer);

#endif
