/* statex_util.h — what the mixers' StateX expand() hooks share (docs/statex.md): fresh draws of a
 * parameter exactly as model initialisation makes them, and row-block copies. */
#ifndef EIDETIC_STATEX_UTIL_H
#define EIDETIC_STATEX_UTIL_H
#include "kernels/kernels.h"
#include "kernels/model_ops.h"
#include "layers/layer.h"

static inline size_t sx_numel(const ParamSpec *s) {
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++) n *= (size_t)s->shape[i];
    return n;
}

/* p = a fresh draw of parameter idx of layer (ops, c), by its table entry (as model_init_params) */
static inline void sx_fresh(const LayerOps *ops, const LayerCfg *c, int D, const ParamSpec *s, int idx, real *p,
                            Rng *r) {
    size_t n = sx_numel(s);
    switch (s->init) {
    case INIT_ZERO: k_fill(p, n, 0); break;
    case INIT_ONE: k_fill(p, n, 1); break;
    case INIT_UNIFORM: k_fill_uniform(p, n, s->a, r); break;
    case INIT_NORMAL: k_fill_normal(p, n, s->a, r); break;
    case INIT_CUSTOM: ops->init_custom(c, D, idx, p, r); break;
    }
}

/* the whole parameter copied (same shape in source and destination) */
static inline void sx_same(const ParamSpec *s, const real *src, real *dst) {
    k_copy(src, 0, dst, 0, 1, (int)sx_numel(s));
}

/* rows [d0, d0 + n) of dst [·, cols] = rows [s0, s0 + n) of src [·, cols] */
static inline void sx_rows(const real *src, int s0, real *dst, int d0, int n, int cols) {
    if (n > 0) k_copy(src + (size_t)s0 * cols, cols, dst + (size_t)d0 * cols, cols, n, cols);
}

/* The name of a method, for messages and the config's statex record. */
static inline const char *sx_method_name(StatexMethod m) {
    return m == SX_REINIT ? "reinit" : m == SX_INHERIT ? "inherit" : "zero";
}

#endif
