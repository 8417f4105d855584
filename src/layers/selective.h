/* selective.h — what Mamba-1 and Longhorn share: the in_proj → conv → x_proj → dt_proj block
 * sizes (layers.md §1.5 and §2.6 have the same defaults and limits). */
#ifndef EIDETIC_SELECTIVE_H
#define EIDETIC_SELECTIVE_H
#include "core/common.h"
#include "layers/layer_cfg.h"

/* Parameters both mixers list first, in this order (their tables must keep it). */
enum { SEL_IN, SEL_CONV_W, SEL_CONV_B, SEL_X, SEL_DT_W, SEL_DT_B };

/* Activations of the shared input path of one (B, T) pass; d_* are backward buffers. */
typedef struct {
    int B, T, D, I, N, K, R;
    const uint8_t *flags;
    const real *x_in, *xz, *xc, *u, *xdbl; /* [M,D], [M,2I], [M,I], [M,I], [M,R+2N] */
    real *d_pre;                            /* [M,I]  ∂L/∂(W_dt·r + b_dt), consumed */
    real *d_xdbl;                           /* [M,R+2N] ∂L/∂[k;q] (or [B;C]) in columns R.. on entry */
    real *d_u;                              /* [M,I]  ∂L/∂u from the scan and the D skip, consumed */
    real *d_xz;                             /* [M,2I] z half already holds ∂L/∂z */
} SelectiveBwd;

/* Backward of dt_proj, x_proj, silu, the causal conv and in_proj: parameter gradients += (g, in the
 * SEL_* order), dx += . */
void selective_input_bwd(const SelectiveBwd *a, real *const *p, real *const *g, real *dx);

/* The output path both share: y += D ⊙ u ; gated = y ⊙ silu(z), z = the second half of xz [M, 2I]. */
void selective_skip_gate(int I, const real *Dp, const real *u, const real *xz, real *y, real *gated, size_t M);
/* Its backward: dy_core = dgated ⊙ silu(z) (in place in dgated), dz into the z half of dxz,
 * du = D ⊙ dy_core. y includes the D skip (it is what the gate multiplied). */
void selective_gate_bwd(int I, const real *Dp, const real *xz, const real *y, real *dgated, real *dxz, real *du,
                        size_t M);

/* E = 2, N = 16, K = 4, R = ceil(D/16), chunk 64 when 0; validates ranges, errors name the mixer. */
int selective_resolve(LayerCfg *c, int D, const char *mixer);

#endif
