/* layer_harness.h — the tests every layer must pass (layers.md §10), for any LayerOps:
 *   finite-difference gradients of every parameter and the input (fp64 build);
 *   full-sequence forward == one-token step loop (with segment resets inside the sequence);
 *   chunk sizes {1, 7, 16, 64} give the same outputs and gradients;
 *   snapshot/restore of the decode state; batch == one sequence at a time.
 * A mixer's test file calls layer_suite() with a few configurations. */
#ifndef EIDETIC_LAYER_HARNESS_H
#define EIDETIC_LAYER_HARNESS_H
#include "core/rng.h"
#include "core/runtime.h"
#include "layers/layer.h"
#include "testutil.h"

typedef struct {
    LayerCfg cfg;
    Layer l;
    ParamSpec spec[EID_MAX_PARAMS];
    size_t numel[EID_MAX_PARAMS];
    Arena act, stp;
} TLayer;

static void tl_init(TLayer *t, const LayerOps *ops, const LayerCfg *cfg, int D, uint64_t seed) {
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    if (ops->resolve(&t->cfg, D) != 0) { fprintf(stderr, "resolve failed: %s\n", eid_last_error()); exit(2); }
    t->l.ops = ops, t->l.cfg = &t->cfg, t->l.D = D;
    t->l.nparam = ops->params(&t->cfg, D, 2, t->spec);
    Rng r;
    rng_init(&r, seed, 0);
    for (int i = 0; i < t->l.nparam; i++) {
        size_t n = 1;
        for (int d = 0; d < t->spec[i].ndim; d++) n *= t->spec[i].shape[d];
        t->numel[i] = n;
        t->l.p[i] = eid_aligned_alloc(n * sizeof(real));
        t->l.g[i] = eid_aligned_alloc(n * sizeof(real));
        ParamSpec *s = &t->spec[i];
        if (s->init == INIT_CUSTOM) ops->init_custom(&t->cfg, D, i, t->l.p[i], &r);
        /* the documented init, then a perturbation so zero/one inits do not hide gradient terms */
        for (size_t j = 0; j < n; j++) {
            double base = s->init == INIT_ONE ? 1 : s->init == INIT_UNIFORM ? (2 * rng_uniform(&r) - 1) * s->a
                        : s->init == INIT_NORMAL ? rng_normal(&r) * s->a : s->init == INIT_CUSTOM ? t->l.p[i][j] : 0;
            t->l.p[i][j] = (real)(base + 0.2 * (2 * rng_uniform(&r) - 1) * (s->init == INIT_CUSTOM ? 0.25 : 1));
        }
    }
}

static void tl_free(TLayer *t) {
    for (int i = 0; i < t->l.nparam; i++) free(t->l.p[i]), free(t->l.g[i]);
    arena_free(&t->act), arena_free(&t->stp);
}

static void tl_plan(TLayer *t, int B, int T) {
    arena_free(&t->act);
    arena_begin_measure(&t->act);
    t->l.ops->plan(&t->l, &t->act, B, T);
    arena_commit(&t->act);
    t->l.ops->plan(&t->l, &t->act, B, T);
}

static void tl_plan_step(TLayer *t, int nseq) {
    arena_free(&t->stp);
    arena_begin_measure(&t->stp);
    t->l.ops->plan_step(&t->l, &t->stp, nseq);
    arena_commit(&t->stp);
    t->l.ops->plan_step(&t->l, &t->stp, nseq);
}

static void rand_fill(real *x, size_t n, Rng *r, double scale) {
    for (size_t i = 0; i < n; i++) x[i] = (real)(scale * rng_normal(r));
}

/* L = Σ y ⊙ w for a fixed random w */
static double tl_loss(TLayer *t, const real *x, const real *w, real *y, const SeqInfo *s) {
    size_t n = (size_t)s->B * s->T * t->l.D;
    t->l.ops->forward(&t->l, x, y, s);
    double L = 0;
    for (size_t i = 0; i < n; i++) L += (double)y[i] * w[i];
    return L;
}

/* |a−n| / max(|a|+|n|, floor): the floor (1e-3 of the tensor's largest gradient) keeps entries
 * whose gradient is ~0 from turning rounding noise into a large relative error. */
typedef struct { TLayer *t; const real *x, *w; real *y; const SeqInfo *s; } LossCtx;
static double tl_loss_cb(void *c) {
    LossCtx *l = c;
    return tl_loss(l->t, l->x, l->w, l->y, l->s);
}

static double grad_rel(double a, double n, double floor) { return fabs(a - n) / fmax(floor, fabs(a) + fabs(n)); }

/* Finite differences against backward for every parameter tensor (up to 40 sampled entries
 * each) and for the input. */
static void check_gradients(TLayer *t, int B, int T, const uint8_t *flags, const char *tag) {
    int D = t->l.D;
    size_t n = (size_t)B * T * D;
    SeqInfo s = {B, T, flags};
    tl_plan(t, B, T);
    Rng r;
    rng_init(&r, 99, 0);
    real *x = eid_aligned_alloc(n * sizeof(real)), *w = eid_aligned_alloc(n * sizeof(real));
    real *y = eid_aligned_alloc(n * sizeof(real)), *dx = eid_aligned_alloc(n * sizeof(real));
    rand_fill(x, n, &r, 1), rand_fill(w, n, &r, 1);
    for (int i = 0; i < t->l.nparam; i++) memset(t->l.g[i], 0, t->numel[i] * sizeof(real));
    tl_loss(t, x, w, y, &s);
    t->l.ops->backward(&t->l, w, dx, &s);
    for (int i = -1; i < t->l.nparam; i++) {
        real *p = i < 0 ? x : t->l.p[i], *g = i < 0 ? dx : t->l.g[i];
        size_t cnt = i < 0 ? n : t->numel[i];
        double worst = 0, gmax = 1e-6;
        size_t worst_j = 0;
        int samples = cnt < 40 ? (int)cnt : 40;
        for (size_t j = 0; j < cnt; j++) gmax = fmax(gmax, fabs((double)g[j]));
        LossCtx lc = {t, x, w, y, &s};
        for (int k = 0; k < samples; k++) {
            size_t j = cnt <= 40 ? (size_t)k : (size_t)rng_below(&r, cnt);
            double num = fd_estimate(&p[j], tl_loss_cb, &lc, g[j]), e = grad_rel(g[j], num, 1e-3 * gmax);
            if (getenv("GRAD_DEBUG") && e > 1e-6) fprintf(stderr, "  %s[%zu]: analytic %.10g numeric %.10g\n", i < 0 ? "x" : t->spec[i].name, j, (double)g[j], num);
            if (e > worst) worst = e, worst_j = j;
        }
        CHECK(worst < 1e-5, "%s %s: gradient of %s off by %.3g (entry %zu)", t->l.ops->name, tag,
              i < 0 ? "the input" : t->spec[i].name, worst, worst_j);
    }
    free(x), free(w), free(y), free(dx);
}

/* Parallel forward with per-row resets == one-token steps (one sequence at a time, state zeroed
 * at each SEG_START) == steps over the whole batch at once (when there are no resets). */
static void check_step_equivalence(TLayer *t, int B, int T, const uint8_t *flags, double tol, const char *tag) {
    int D = t->l.D;
    size_t n = (size_t)B * T * D, ss = t->l.ops->state_size(&t->cfg, D);
    SeqInfo s = {B, T, flags};
    tl_plan(t, B, T);
    Rng r;
    rng_init(&r, 7, 0);
    real *x = eid_aligned_alloc(n * sizeof(real)), *y = eid_aligned_alloc(n * sizeof(real));
    real *ys = eid_aligned_alloc(n * sizeof(real));
    rand_fill(x, n, &r, 1);
    t->l.ops->forward(&t->l, x, y, &s);
    tl_plan_step(t, 1);
    real *state = eid_aligned_alloc((ss ? ss : 1) * sizeof(real)), *snap = eid_aligned_alloc((ss ? ss : 1) * sizeof(real));
    real *y2 = eid_aligned_alloc(D * sizeof(real));
    double snap_err = 0;
    for (int b = 0; b < B; b++) {
        memset(state, 0, ss * sizeof(real));
        for (int tt = 0; tt < T; tt++) {
            size_t i = (size_t)b * T + tt;
            if (flags && (flags[i] & FLAG_SEG_START)) memset(state, 0, ss * sizeof(real));
            if (tt == T / 2) { /* snapshot, step, restore, step again: same output */
                memcpy(snap, state, ss * sizeof(real));
                t->l.ops->step(&t->l, state, x + i * D, y2, 1);
                memcpy(state, snap, ss * sizeof(real));
            }
            t->l.ops->step(&t->l, state, x + i * D, ys + i * D, 1);
            if (tt == T / 2) snap_err = fmax(snap_err, t_rel_err(y2, ys + i * D, D, 1e-3));
        }
    }
    double e = t_rel_err(ys, y, n, 1e-3);
    CHECK(e < tol, "%s %s: forward vs step loop rel err %.3g (tol %.1g)", t->l.ops->name, tag, e, tol);
    CHECK(snap_err == 0, "%s %s: snapshot/restore of the decode state changed the output (%.3g)", t->l.ops->name, tag, snap_err);
    if (!flags) { /* batched step: all B sequences at once */
        tl_plan_step(t, B);
        real *st = eid_aligned_alloc(((size_t)B * ss + 1) * sizeof(real)), *xt = eid_aligned_alloc((size_t)B * D * sizeof(real));
        real *yt = eid_aligned_alloc((size_t)B * D * sizeof(real));
        double eb = 0;
        for (int tt = 0; tt < T; tt++) {
            for (int b = 0; b < B; b++) memcpy(xt + (size_t)b * D, x + ((size_t)b * T + tt) * D, D * sizeof(real));
            t->l.ops->step(&t->l, st, xt, yt, B);
            for (int b = 0; b < B; b++) eb = fmax(eb, t_rel_err(yt + (size_t)b * D, ys + ((size_t)b * T + tt) * D, D, 1e-3));
        }
        CHECK(eb < tol, "%s %s: batched step vs single-sequence step rel err %.3g", t->l.ops->name, tag, eb);
        free(st), free(xt), free(yt);
    }
    free(x), free(y), free(ys), free(state), free(snap), free(y2);
}

/* Outputs and all gradients are the same for every chunk length (saved-state spacing or chunked form). */
static void check_chunks(TLayer *t, int B, int T, const uint8_t *flags, const char *tag) {
    int D = t->l.D, chunks[] = {1, 7, 16, 64};
    size_t n = (size_t)B * T * D;
    SeqInfo s = {B, T, flags};
    Rng r;
    rng_init(&r, 11, 0);
    real *x = eid_aligned_alloc(n * sizeof(real)), *w = eid_aligned_alloc(n * sizeof(real));
    real *y = eid_aligned_alloc(n * sizeof(real)), *y0 = eid_aligned_alloc(n * sizeof(real));
    real *dx = eid_aligned_alloc(n * sizeof(real)), *dx0 = eid_aligned_alloc(n * sizeof(real));
    real *g0[EID_MAX_PARAMS];
    rand_fill(x, n, &r, 1), rand_fill(w, n, &r, 1);
    int saved = t->cfg.chunk;
    for (int c = 0; c < 4; c++) {
        t->cfg.chunk = chunks[c];
        tl_plan(t, B, T);
        for (int i = 0; i < t->l.nparam; i++) memset(t->l.g[i], 0, t->numel[i] * sizeof(real));
        memset(dx, 0, n * sizeof(real));
        t->l.ops->forward(&t->l, x, y, &s);
        t->l.ops->backward(&t->l, w, dx, &s);
        if (c == 0) {
            memcpy(y0, y, n * sizeof(real)), memcpy(dx0, dx, n * sizeof(real));
            for (int i = 0; i < t->l.nparam; i++) {
                g0[i] = eid_aligned_alloc(t->numel[i] * sizeof(real));
                memcpy(g0[i], t->l.g[i], t->numel[i] * sizeof(real));
            }
            continue;
        }
        double e = fmax(t_rel_err(y, y0, n, 1e-6), t_rel_err(dx, dx0, n, 1e-6));
        for (int i = 0; i < t->l.nparam; i++) e = fmax(e, t_rel_err(t->l.g[i], g0[i], t->numel[i], 1e-6));
        CHECK(e < 1e-9, "%s %s: chunk %d vs chunk 1: outputs/gradients differ by %.3g", t->l.ops->name, tag, chunks[c], e);
    }
    t->cfg.chunk = saved;
    for (int i = 0; i < t->l.nparam; i++) free(g0[i]);
    free(x), free(w), free(y), free(y0), free(dx), free(dx0);
}

/* Flags for B rows of length T: a second segment starting at `at` in row 1. */
static uint8_t *make_flags(int B, int T, int at) {
    uint8_t *f = eid_xcalloc((size_t)B * T, 1);
    for (int b = 0; b < B; b++) f[(size_t)b * T] = FLAG_SEG_START;
    if (B > 1 && at < T) f[(size_t)T + at] = FLAG_SEG_START;
    return f;
}

/* Everything, for one configuration. */
static inline void layer_suite(const char *mixer, LayerCfg cfg, int D) {
    const LayerOps *ops = strcmp(mixer, "swiglu") ? layer_find(mixer) : &mlp_ops;
    if (!ops) { CHECK(0, "unknown mixer %s", mixer); return; }
    TLayer t;
    tl_init(&t, ops, &cfg, D, 1234);
    uint8_t *flags = make_flags(2, 7, 4);
    check_gradients(&t, 2, 7, NULL, "B=2 T=7");
    check_gradients(&t, 2, 7, flags, "B=2 T=7 with a segment reset");
    check_step_equivalence(&t, 2, 37, NULL, 1e-10, "T=37");
    uint8_t *f2 = make_flags(2, 37, 19);
    check_step_equivalence(&t, 2, 37, f2, 1e-10, "T=37 with a segment reset");
    check_chunks(&t, 2, 37, NULL, "T=37");
    check_chunks(&t, 2, 37, f2, "T=37 with a segment reset");
    free(flags), free(f2);
    tl_free(&t);
}

#endif
