/* layer.c — running a layer through its ops, with its bf16-saved activations (layer.h: take_act16). */
#include "layers/layer.h"

real *take_act16(Layer *l, Arena *a, size_t n) {
    if (!l->act16) return arena_take(a, n);
    if (l->n_saved16 == EID_MAX_SAVED16) eid_fatal("%s: more than %d bf16-saved activations", l->ops->name, EID_MAX_SAVED16);
    real *work = arena_scratch(a, n);
    uint16_t *kept = arena_take_bytes(a, n * sizeof(uint16_t));
    l->saved16[l->n_saved16++] = (Saved16){work, kept, n};
    l->act16_kept += EID_CDIV(n * sizeof(uint16_t), EID_ALIGN) * EID_ALIGN;
    l->act16_kept_fp32 += EID_CDIV(n * sizeof(real), EID_ALIGN) * EID_ALIGN;
    return work;
}

void layer_plan(Layer *l, Arena *a, int B, int T) {
    l->n_saved16 = 0, l->act16_kept = l->act16_kept_fp32 = 0;
    l->ops->plan(l, a, B, T);
}

void layer_plan_nested(Layer *outer, Layer *inner, Arena *a, int B, int T) {
    inner->act16 = outer->act16;
    layer_plan(inner, a, B, T);
    outer->act16_kept += inner->act16_kept, outer->act16_kept_fp32 += inner->act16_kept_fp32;
}

void layer_forward(Layer *l, const real *x, real *y, const SeqInfo *s) {
    l->ops->forward(l, x, y, s);
    for (int i = 0; i < l->n_saved16; i++) k_to_bf16(l->saved16[i].kept, l->saved16[i].work, l->saved16[i].n);
}

void layer_backward(Layer *l, const real *dy, real *dx, const SeqInfo *s) {
    for (int i = 0; i < l->n_saved16; i++) k_from_bf16(l->saved16[i].work, l->saved16[i].kept, l->saved16[i].n);
    l->ops->backward(l, dy, dx, s);
}
