/* layer_harness.h — the tests every layer must pass (docs/layers.md §10), for any LayerOps:
 *   finite-difference gradients of every parameter and the input (fp64 build);
 *   full-sequence forward == one-token step loop (with segment resets inside the sequence);
 *   chunk sizes {1, 7, 16, 64} give the same outputs and gradients;
 *   snapshot/restore of the decode state; batch == one sequence at a time;
 *   prefill: prefill(p) then steps == the step loop (outputs and state) at many split points, and
 *   prefill(p1) then prefill(p2) == prefill(p1‖p2), with segment starts inside (check_prefill);
 *   PAD tokens are as if removed: outputs, gradients and prefill state (check_pad).
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

/* Each call of the layer starts with its scratch zone full of NaN (core/arena.h): a layer that kept
 * something in scratch between calls, or read scratch it had not written, fails these checks. */
static void tl_forward(TLayer *t, const real *x, real *y, const SeqInfo *s) {
    arena_poison_scratch(&t->act);
    t->l.ops->forward(&t->l, x, y, s);
}
static void tl_backward(TLayer *t, const real *dy, real *dx, const SeqInfo *s) {
    arena_poison_scratch(&t->act);
    t->l.ops->backward(&t->l, dy, dx, s);
}
static void tl_prefill(TLayer *t, real *state, const real *x, real *y, const SeqInfo *s) {
    arena_poison_scratch(&t->act);
    t->l.ops->prefill(&t->l, state, x, y, s);
}

static void rand_fill(real *x, size_t n, Rng *r, double scale) {
    for (size_t i = 0; i < n; i++) x[i] = (real)(scale * rng_normal(r));
}

/* L = Σ y ⊙ w for a fixed random w */
static double tl_loss(TLayer *t, const real *x, const real *w, real *y, const SeqInfo *s) {
    size_t n = (size_t)s->B * s->T * t->l.D;
    tl_forward(t, x, y, s);
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
    tl_backward(t, w, dx, &s);
    for (int i = -1; i < t->l.nparam; i++) {
        real *p = i < 0 ? x : t->l.p[i], *g = i < 0 ? dx : t->l.g[i];
        size_t cnt = i < 0 ? n : t->numel[i];
        double worst = 0, gmax = 1e-6;
        size_t worst_j = 0;
        int samples = cnt < 40 ? (int)cnt : 40;
        for (size_t j = 0; j < cnt; j++) gmax = t_worst(gmax, fabs((double)g[j]));
        LossCtx lc = {t, x, w, y, &s};
        for (int k = 0; k < samples; k++) {
            size_t j = cnt <= 40 ? (size_t)k : (size_t)rng_below(&r, cnt);
            double num = fd_estimate(&p[j], tl_loss_cb, &lc, g[j]), e = grad_rel(g[j], num, 1e-3 * gmax);
            if (getenv("GRAD_DEBUG") && e > 1e-6) fprintf(stderr, "  %s[%zu]: analytic %.10g numeric %.10g\n", i < 0 ? "x" : t->spec[i].name, j, (double)g[j], num);
            if (e != e || e > worst) worst = e, worst_j = j; /* NaN sticks: a NaN gradient fails */
            if (worst != worst) break;
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
    tl_forward(t, x, y, &s);
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
            if (tt == T / 2) snap_err = t_worst(snap_err, t_rel_err(y2, ys + i * D, D, 1e-3));
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
            for (int b = 0; b < B; b++) eb = t_worst(eb, t_rel_err(yt + (size_t)b * D, ys + ((size_t)b * T + tt) * D, D, 1e-3));
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
        tl_forward(t, x, y, &s);
        tl_backward(t, w, dx, &s);
        if (c == 0) {
            memcpy(y0, y, n * sizeof(real)), memcpy(dx0, dx, n * sizeof(real));
            for (int i = 0; i < t->l.nparam; i++) {
                g0[i] = eid_aligned_alloc(t->numel[i] * sizeof(real));
                memcpy(g0[i], t->l.g[i], t->numel[i] * sizeof(real));
            }
            continue;
        }
        double e = t_worst(t_rel_err(y, y0, n, 1e-6), t_rel_err(dx, dx0, n, 1e-6));
        for (int i = 0; i < t->l.nparam; i++) e = t_worst(e, t_rel_err(t->l.g[i], g0[i], t->numel[i], 1e-6));
        CHECK(e < 1e-9, "%s %s: chunk %d vs chunk 1: outputs/gradients differ by %.3g", t->l.ops->name, tag, chunks[c], e);
    }
    t->cfg.chunk = saved;
    for (int i = 0; i < t->l.nparam; i++) free(g0[i]);
    free(x), free(w), free(y), free(y0), free(dx), free(dx0);
}

/* Copy tokens [t0, t1) of every row of x [B, T, C] into out [B, t1−t0, C]. */
static void slice_rows(const real *x, int B, int T, int C, int t0, int t1, real *out) {
    for (int b = 0; b < B; b++)
        memcpy(out + (size_t)b * (t1 - t0) * C, x + ((size_t)b * T + t0) * C, sizeof(real) * (size_t)(t1 - t0) * C);
}
static void slice_flags(const uint8_t *f, int B, int T, int t0, int t1, uint8_t *out) {
    for (int b = 0; b < B; b++) memcpy(out + (size_t)b * (t1 - t0), f + (size_t)b * T + t0, (size_t)(t1 - t0));
}

/* Run prefill over tokens [t0, t1) of x [B, T, D] from `state` [B, ss] (updated in place); outputs
 * into y [B, T, D] at the same positions. */
static void tl_prefill_part(TLayer *t, real *state, const real *x, const uint8_t *flags, int B, int T, int t0, int t1,
                            real *y) {
    int D = t->l.D, n = t1 - t0;
    if (n <= 0) return;
    real *xs = eid_aligned_alloc((size_t)B * n * D * sizeof(real)), *ys = eid_aligned_alloc((size_t)B * n * D * sizeof(real));
    uint8_t *fs = flags ? eid_xmalloc((size_t)B * n) : NULL;
    slice_rows(x, B, T, D, t0, t1, xs);
    if (flags) slice_flags(flags, B, T, t0, t1, fs);
    SeqInfo s = {B, n, fs};
    tl_plan(t, B, n);
    tl_prefill(t, state, xs, ys, &s);
    for (int b = 0; b < B; b++)
        memcpy(y + ((size_t)b * T + t0) * D, ys + (size_t)b * n * D, sizeof(real) * (size_t)n * D);
    free(xs), free(ys), free(fs);
}

/* The step loop over B sequences at once (state zeroed at SEG_START per sequence, PAD skipped by
 * the caller's construction: rows here carry no PAD); states after each token t kept in
 * st_all [T+1][B·ss] (st_all[0] = zeros). */
static void step_reference(TLayer *t, const real *x, const uint8_t *flags, int B, int T, real *ys, real *st_all) {
    int D = t->l.D;
    size_t ss = t->l.ops->state_size(&t->cfg, D);
    tl_plan_step(t, 1);
    memset(st_all, 0, sizeof(real) * (size_t)B * ss);
    for (int tt = 0; tt < T; tt++) {
        real *prev = st_all + (size_t)tt * B * ss, *cur = st_all + (size_t)(tt + 1) * B * ss;
        memcpy(cur, prev, sizeof(real) * (size_t)B * ss);
        for (int b = 0; b < B; b++) {
            size_t i = (size_t)b * T + tt;
            if (flags && (flags[i] & FLAG_SEG_START)) memset(cur + (size_t)b * ss, 0, sizeof(real) * ss);
            t->l.ops->step(&t->l, cur + (size_t)b * ss, x + i * D, ys + i * D, 1);
        }
    }
}

/* prefill(p) from a zero state then one-token steps == the step loop, in outputs and in state, for
 * splits at 0, 1, chunk boundaries, the middle, T−1 and T; prefill(p1) then prefill(p2) ==
 * prefill(p1‖p2) == the step loop. */
static void check_prefill(TLayer *t, int B, int T, const uint8_t *flags, double tol, const char *tag) {
    const char *name = t->l.ops->name;
    if (!t->l.ops->prefill) { CHECK(0, "%s %s: no prefill", name, tag); return; }
    int D = t->l.D;
    size_t n = (size_t)B * T * D, ss = t->l.ops->state_size(&t->cfg, D), sb = (size_t)B * ss + 1;
    Rng r;
    rng_init(&r, 21, 0);
    real *x = eid_aligned_alloc(n * sizeof(real)), *yref = eid_aligned_alloc(n * sizeof(real));
    real *y = eid_aligned_alloc(n * sizeof(real)), *st_all = eid_aligned_alloc((size_t)(T + 1) * sb * sizeof(real));
    real *state = eid_aligned_alloc(sb * sizeof(real));
    rand_fill(x, n, &r, 1);
    step_reference(t, x, flags, B, T, yref, st_all);
    int c = t->cfg.chunk > 0 ? t->cfg.chunk : 64;
    int splits[] = {0, 1, 5, 7, 8, 16, 17, c - 1, c, c + 1, T / 2, T - 1, T};
    double worst_y = 0, worst_s = 0, worst_two = 0;
    for (int k = 0; k < (int)(sizeof splits / sizeof splits[0]); k++) {
        int p = splits[k];
        if (p < 0 || p > T) continue;
        memset(state, 0, sb * sizeof(real));
        memset(y, 0, n * sizeof(real));
        tl_prefill_part(t, state, x, flags, B, T, 0, p, y);
        if (ss) worst_s = t_worst(worst_s, t_rel_err(state, st_all + (size_t)p * B * ss, (size_t)B * ss, 1e-3));
        tl_plan_step(t, 1); /* the suffix by steps from the prefilled state */
        for (int tt = p; tt < T; tt++)
            for (int b = 0; b < B; b++) {
                size_t i = (size_t)b * T + tt;
                if (flags && (flags[i] & FLAG_SEG_START)) memset(state + (size_t)b * ss, 0, sizeof(real) * ss);
                t->l.ops->step(&t->l, state + (size_t)b * ss, x + i * D, y + i * D, 1);
            }
        worst_y = t_worst(worst_y, t_rel_err(y, yref, n, 1e-3));
        /* two prefills: [0, p) then [p, T) */
        memset(state, 0, sb * sizeof(real));
        memset(y, 0, n * sizeof(real));
        tl_prefill_part(t, state, x, flags, B, T, 0, p, y);
        tl_prefill_part(t, state, x, flags, B, T, p, T, y);
        worst_two = t_worst(worst_two, t_rel_err(y, yref, n, 1e-3));
        if (ss) worst_two = t_worst(worst_two, t_rel_err(state, st_all + (size_t)T * B * ss, (size_t)B * ss, 1e-3));
    }
    CHECK(worst_y < tol, "%s %s: prefill then steps vs the step loop: outputs rel err %.3g", name, tag, worst_y);
    CHECK(worst_s < tol, "%s %s: prefill state vs the step loop's state rel err %.3g", name, tag, worst_s);
    CHECK(worst_two < tol, "%s %s: prefill(p1) then prefill(p2) vs the step loop rel err %.3g", name, tag, worst_two);
    free(x), free(yref), free(y), free(st_all), free(state);
}

/* PAD tokens are as if removed (docs/layers.md §0.6): rows with PAD tokens inserted (leading,
 * inside, consecutive, trailing) give, at the real tokens, the outputs, parameter gradients and input
 * gradients of the same rows without them; the input gradient at PAD is zero; prefill leaves the
 * same state. The loss weights are zero at PAD positions (no label there). */
static void check_pad(TLayer *t, int B, int Tc, double tol, const char *tag) {
    const char *name = t->l.ops->name;
    int D = t->l.D, T = Tc + 6;
    size_t nc = (size_t)B * Tc * D, np = (size_t)B * T * D;
    Rng r;
    rng_init(&r, 33, 0);
    uint8_t *fc = eid_xcalloc((size_t)B * Tc, 1), *fp = eid_xcalloc((size_t)B * T, 1);
    int *map = eid_xmalloc(sizeof(int) * (size_t)B * T); /* padded position → compact position or −1 */
    for (int b = 0; b < B; b++) {
        int pads[6] = {b % 2 ? 0 : 1, 2, 3, Tc / 2 + 4, T - 2, T - 1}; /* row 1 starts with a PAD */
        int cpos = 0;
        for (int tt = 0; tt < T; tt++) {
            int is_pad = 0;
            for (int k = 0; k < 6; k++) is_pad |= pads[k] == tt;
            if (cpos == Tc) is_pad = 1;
            map[(size_t)b * T + tt] = is_pad ? -1 : cpos;
            if (is_pad) fp[(size_t)b * T + tt] = FLAG_PAD;
            else {
                uint8_t f = FLAG_CAUSAL | (cpos == 0 || (b == 1 && cpos == Tc / 2) ? FLAG_SEG_START : 0);
                fc[(size_t)b * Tc + cpos] = fp[(size_t)b * T + tt] = f;
                cpos++;
            }
        }
    }
    real *xc = eid_aligned_alloc(nc * sizeof(real)), *xp = eid_aligned_alloc(np * sizeof(real));
    real *wc = eid_aligned_alloc(nc * sizeof(real)), *wp = eid_aligned_alloc(np * sizeof(real));
    real *yc = eid_aligned_alloc(nc * sizeof(real)), *yp = eid_aligned_alloc(np * sizeof(real));
    real *dxc = eid_aligned_alloc(nc * sizeof(real)), *dxp = eid_aligned_alloc(np * sizeof(real));
    rand_fill(xc, nc, &r, 1), rand_fill(wc, nc, &r, 1), rand_fill(xp, np, &r, 3); /* PAD inputs: garbage */
    for (int b = 0; b < B; b++)
        for (int tt = 0; tt < T; tt++) {
            int m = map[(size_t)b * T + tt];
            real *xd = xp + ((size_t)b * T + tt) * D, *wd = wp + ((size_t)b * T + tt) * D;
            if (m >= 0) memcpy(xd, xc + ((size_t)b * Tc + m) * D, sizeof(real) * D),
                        memcpy(wd, wc + ((size_t)b * Tc + m) * D, sizeof(real) * D);
            else memset(wd, 0, sizeof(real) * D);
        }
    real *g0[EID_MAX_PARAMS];
    SeqInfo sc = {B, Tc, fc}, sp = {B, T, fp};
    tl_plan(t, B, Tc);
    for (int i = 0; i < t->l.nparam; i++) memset(t->l.g[i], 0, t->numel[i] * sizeof(real));
    tl_forward(t, xc, yc, &sc);
    tl_backward(t, wc, dxc, &sc);
    for (int i = 0; i < t->l.nparam; i++) {
        g0[i] = eid_aligned_alloc(t->numel[i] * sizeof(real));
        memcpy(g0[i], t->l.g[i], t->numel[i] * sizeof(real));
        memset(t->l.g[i], 0, t->numel[i] * sizeof(real));
    }
    tl_plan(t, B, T);
    tl_forward(t, xp, yp, &sp);
    tl_backward(t, wp, dxp, &sp);
    double ey = 0, edx = 0, epad = 0, eg = 0;
    for (int b = 0; b < B; b++)
        for (int tt = 0; tt < T; tt++) {
            int m = map[(size_t)b * T + tt];
            const real *yy = yp + ((size_t)b * T + tt) * D, *dd = dxp + ((size_t)b * T + tt) * D;
            if (m < 0) {
                for (int j = 0; j < D; j++) epad = t_worst(epad, fabs((double)dd[j]));
                continue;
            }
            ey = t_worst(ey, t_rel_err(yy, yc + ((size_t)b * Tc + m) * D, D, 1e-3));
            edx = t_worst(edx, t_rel_err(dd, dxc + ((size_t)b * Tc + m) * D, D, 1e-3));
        }
    for (int i = 0; i < t->l.nparam; i++) eg = t_worst(eg, t_rel_err(t->l.g[i], g0[i], t->numel[i], 1e-6)), free(g0[i]);
    CHECK(ey < tol, "%s %s: outputs with PAD tokens vs without rel err %.3g", name, tag, ey);
    CHECK(edx < tol, "%s %s: input gradients with PAD tokens vs without rel err %.3g", name, tag, edx);
    CHECK(epad == 0, "%s %s: input gradient at PAD positions is %.3g, not 0", name, tag, epad);
    CHECK(eg < tol, "%s %s: parameter gradients with PAD tokens vs without rel err %.3g", name, tag, eg);
    if (t->l.ops->prefill) {
        size_t ss = t->l.ops->state_size(&t->cfg, D), sb = (size_t)B * ss + 1;
        real *s1 = eid_aligned_alloc(sb * sizeof(real)), *s2 = eid_aligned_alloc(sb * sizeof(real));
        tl_plan(t, B, Tc);
        tl_prefill(t, s1, xc, yc, &sc);
        tl_plan(t, B, T);
        tl_prefill(t, s2, xp, yp, &sp);
        double es = ss ? t_rel_err(s2, s1, (size_t)B * ss, 1e-3) : 0;
        CHECK(es < tol, "%s %s: prefill state with PAD tokens vs without rel err %.3g", name, tag, es);
        free(s1), free(s2);
    }
    free(fc), free(fp), free(map), free(xc), free(xp), free(wc), free(wp), free(yc), free(yp), free(dxc), free(dxp);
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
    /* Until every layer has its prefill and PAD handling (issue #10), layers opt in here. */
    if (ops->prefill) {
        check_prefill(&t, 2, 37, NULL, 1e-10, "T=37");
        check_prefill(&t, 2, 37, f2, 1e-10, "T=37 with a segment reset");
        check_pad(&t, 2, 29, 1e-10, "T=29");
    }
    free(flags), free(f2);
    tl_free(&t);
}

#endif
