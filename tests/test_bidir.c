/* test_bidir.c — Birdie bidirectional layers (docs/layers.md §8) on every scan / chunked mixer:
 * gradients with CAUSAL cuts and segment starts inside chunks, chunk invariance, the visibility rule
 * (a prompt position reads the whole prompt and nothing CAUSAL), decoding after a bidirectional
 * prefill == the parallel forward, and rows without flags are causal everywhere. */
#include "layer_harness.h"

/* Row 0: prompt [0, p0), CAUSAL after. Row 1 (if any): segment [0, s1) with prompt [0, p1), then a
 * second segment from s1 with prompt [s1, p2), CAUSAL after. */
static uint8_t *prompt_flags(int B, int T, int p0, int p1, int s1, int p2) {
    uint8_t *f = eid_xcalloc((size_t)B * T, 1);
    for (int t = 0; t < T; t++) f[t] = (t == 0 ? FLAG_SEG_START : 0) | (t >= p0 ? FLAG_CAUSAL : 0);
    if (B > 1)
        for (int t = 0; t < T; t++) {
            int causal = t < s1 ? t >= p1 : t >= p2;
            f[T + t] = (t == 0 || t == s1 ? FLAG_SEG_START : 0) | (causal ? FLAG_CAUSAL : 0);
        }
    return f;
}

static double max_diff(const real *a, const real *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = t_worst(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

/* Output rows [t0, t1) of row 0 of y [1, T, D] move by more than tol when x[pos] is perturbed? */
static double moved(TLayer *t, const real *x, const uint8_t *flags, int T, int pos, int t0, int t1) {
    int D = t->l.D;
    size_t n = (size_t)T * D;
    SeqInfo s = {1, T, flags};
    real *xp = eid_aligned_alloc(n * sizeof(real)), *y0 = eid_aligned_alloc(n * sizeof(real));
    real *y1 = eid_aligned_alloc(n * sizeof(real));
    memcpy(xp, x, n * sizeof(real));
    for (int j = 0; j < D; j++) xp[(size_t)pos * D + j] += (real)0.5;
    tl_plan(t, 1, T);
    t->l.ops->forward(&t->l, x, y0, &s);
    t->l.ops->forward(&t->l, xp, y1, &s);
    double m = t1 > t0 ? max_diff(y0 + (size_t)t0 * D, y1 + (size_t)t0 * D, (size_t)(t1 - t0) * D) : 0;
    free(xp), free(y0), free(y1);
    return m;
}

/* Prompt [0, P), <gen> at P, answer after: who sees whom. */
static void check_visibility(TLayer *t, const char *tag) {
    int T = 24, P = 10, D = t->l.D;
    uint8_t *f = prompt_flags(1, T, P, 0, 0, 0);
    Rng r;
    rng_init(&r, 5, 0);
    real *x = eid_aligned_alloc((size_t)T * D * sizeof(real));
    rand_fill(x, (size_t)T * D, &r, 1);
    for (int pos = P; pos < T; pos++) /* a CAUSAL token (<gen> included) never reaches back */
        CHECK(moved(t, x, f, T, pos, 0, pos) == 0, "%s %s: perturbing CAUSAL token %d moved an earlier output",
              t->l.ops->name, tag, pos);
    double back = moved(t, x, f, T, P - 2, 0, P - 2);
    int bidir = t->cfg.bidir;
    CHECK(bidir ? back > 1e-6 : back == 0, "%s %s: perturbing prompt token %d moved earlier prompt outputs by %.3g "
          "(bidir %d)", t->l.ops->name, tag, P - 2, back, bidir);
    free(f), free(x);
}

/* prefill over prompt + <gen> (row 0 [0, P]), then steps: == the parallel forward at every position. */
static void check_decode(TLayer *t, int chunk, const char *tag) {
    int T = 30, P = 11, D = t->l.D, saved = t->cfg.chunk;
    size_t n = (size_t)T * D, ss = t->l.ops->state_size(&t->cfg, D);
    t->cfg.chunk = chunk;
    uint8_t *f = prompt_flags(1, T, P, 0, 0, 0);
    Rng r;
    rng_init(&r, 9, 0);
    real *x = eid_aligned_alloc(n * sizeof(real)), *y = eid_aligned_alloc(n * sizeof(real));
    real *yd = eid_aligned_alloc(n * sizeof(real)), *st = eid_aligned_alloc(ss * sizeof(real));
    rand_fill(x, n, &r, 1);
    SeqInfo s = {1, T, f}, sp = {1, P + 1, f};
    tl_plan(t, 1, T);
    t->l.ops->forward(&t->l, x, y, &s);
    memset(st, 0, ss * sizeof(real));
    tl_plan(t, 1, P + 1);
    t->l.ops->prefill(&t->l, st, x, yd, &sp);
    tl_plan_step(t, 1);
    for (int p = P + 1; p < T; p++) t->l.ops->step(&t->l, st, x + (size_t)p * D, yd + (size_t)p * D, 1);
    double e = t_rel_err(yd, y, n, 1e-6);
    CHECK(e < 1e-10, "%s %s chunk %d: prefill(prompt+<gen>) then steps differ from the parallel forward by %.3g",
          t->l.ops->name, tag, chunk, e);
    t->cfg.chunk = saved;
    free(f), free(x), free(y), free(yd), free(st);
}

/* Segment isolation: segment A [0, S) is all prompt and segment B starts at S with a prompt too, so
 * only SEG_START separates them; no token of one segment moves any output of the other, in either
 * direction (reverse halves and the prefix-LM mask stop at SEG_START). */
static void check_segments(TLayer *t, const char *tag) {
    int T = 22, S = 9, D = t->l.D;
    uint8_t *f = prompt_flags(1, T, T, 0, 0, 0);
    f[S] |= FLAG_SEG_START;
    for (int u = S + 6; u < T; u++) f[u] |= FLAG_CAUSAL;
    Rng r;
    rng_init(&r, 17, 0);
    real *x = eid_aligned_alloc((size_t)T * D * sizeof(real));
    rand_fill(x, (size_t)T * D, &r, 1);
    CHECK(moved(t, x, f, T, S + 1, 0, S) == 0, "%s %s: a token of the next segment moved an output of the previous one",
          t->l.ops->name, tag);
    CHECK(moved(t, x, f, T, S - 2, S, T) == 0, "%s %s: a token of the previous segment moved an output of the next one",
          t->l.ops->name, tag);
    CHECK(moved(t, x, f, T, S + 3, S, S + 3) > 1e-6 || !t->cfg.bidir, "%s %s: the second segment's prompt is not read "
          "backwards", t->l.ops->name, tag);
    free(f), free(x);
}

/* State floats that do not influence the next decode step's output (after a prefill of a prompt +
 * <gen>): each is perturbed alone and the step rerun from that state. */
static size_t idle_state_floats(TLayer *t) {
    int P = 7, D = t->l.D;
    size_t ss = t->l.ops->state_size(&t->cfg, D), idle = 0;
    uint8_t *f = prompt_flags(1, P + 2, P, 0, 0, 0);
    Rng r;
    rng_init(&r, 23, 0);
    real *x = eid_aligned_alloc((size_t)(P + 2) * D * sizeof(real)), *y = eid_aligned_alloc((size_t)(P + 2) * D * sizeof(real));
    real *st = eid_aligned_alloc(ss * sizeof(real)), *sp = eid_aligned_alloc(ss * sizeof(real));
    real *y0 = eid_aligned_alloc((size_t)D * sizeof(real)), *y1 = eid_aligned_alloc((size_t)D * sizeof(real));
    rand_fill(x, (size_t)(P + 2) * D, &r, 1);
    SeqInfo sp1 = {1, P + 1, f};
    memset(st, 0, ss * sizeof(real));
    tl_plan(t, 1, P + 1);
    t->l.ops->prefill(&t->l, st, x, y, &sp1);
    tl_plan_step(t, 1);
    memcpy(sp, st, ss * sizeof(real));
    t->l.ops->step(&t->l, sp, x + (size_t)(P + 1) * D, y0, 1);
    for (size_t k = 0; k < ss; k++) {
        memcpy(sp, st, ss * sizeof(real));
        sp[k] += (real)0.75;
        t->l.ops->step(&t->l, sp, x + (size_t)(P + 1) * D, y1, 1);
        idle += max_diff(y0, y1, (size_t)D) == 0;
    }
    free(f), free(x), free(y), free(st), free(sp), free(y0), free(y1);
    return idle;
}

/* reverse_state (what `eidetic info` reports) is exactly the part of the decode state a bidirectional
 * layer does not carry: the bidirectional layer has that many more idle state floats than the causal. */
static void check_reverse_state(TLayer *t, const char *tag) {
    size_t rev = t->l.ops->reverse_state ? t->l.ops->reverse_state(&t->cfg, t->l.D) : 0;
    size_t idle_b = idle_state_floats(t);
    t->cfg.bidir = 0;
    size_t idle_c = idle_state_floats(t), rev_c = t->l.ops->reverse_state ? t->l.ops->reverse_state(&t->cfg, t->l.D) : 0;
    t->cfg.bidir = 1;
    CHECK(rev_c == 0, "%s %s: a causal layer reports %zu reverse-half floats", t->l.ops->name, tag, rev_c);
    CHECK(idle_b == idle_c + rev, "%s %s: reverse_state %zu, but the bidirectional layer leaves %zu state floats idle "
          "at decode vs %zu for the causal one", t->l.ops->name, tag, rev, idle_b, idle_c);
    CHECK(!t->l.ops->reverse_state || rev > 0, "%s %s: a split layer reports no reverse half", t->l.ops->name, tag);
}

/* flags NULL means every token CAUSAL (docs/layers.md §8.1): the same outputs as explicit all-CAUSAL
 * flags (reverse half stateless, S_r = b_t), and no output moves when a later token changes. */
static void check_null_flags(TLayer *t, const char *tag) {
    int B = 1, T = 19, D = t->l.D;
    size_t n = (size_t)B * T * D;
    uint8_t *f = prompt_flags(1, T, 0, 0, 0, 0);
    Rng r;
    rng_init(&r, 3, 0);
    real *x = eid_aligned_alloc(n * sizeof(real)), *y0 = eid_aligned_alloc(n * sizeof(real));
    real *y1 = eid_aligned_alloc(n * sizeof(real));
    rand_fill(x, n, &r, 1);
    SeqInfo s = {B, T, NULL}, sf = {B, T, f};
    tl_plan(t, B, T);
    t->l.ops->forward(&t->l, x, y1, &s);
    t->l.ops->forward(&t->l, x, y0, &sf);
    CHECK(max_diff(y0, y1, n) == 0, "%s %s: flags NULL differ from all-CAUSAL flags", t->l.ops->name, tag);
    CHECK(moved(t, x, NULL, T, 12, 0, 12) == 0, "%s %s: without flags a later token moved an earlier output",
          t->l.ops->name, tag);
    free(f), free(x), free(y0), free(y1);
}

static void bidir_suite(LayerCfg cfg, int D) {
    const LayerOps *ops = layer_find(cfg.mixer);
    cfg.bidir = 1;
    TLayer t;
    tl_init(&t, ops, &cfg, D, 4321);
    /* cuts and a segment start inside chunks of 7 / 16 */
    uint8_t *fg = prompt_flags(2, 11, 5, 3, 6, 9), *fc = prompt_flags(2, 37, 12, 5, 9, 20);
    check_gradients(&t, 2, 11, fg, "bidir, CAUSAL cuts");
    check_chunks(&t, 2, 37, fc, "bidir, CAUSAL cuts");
    check_visibility(&t, "bidir");
    int chunks[] = {1, 7, 16, 64};
    for (int c = 0; c < 4; c++) check_decode(&t, chunks[c], "bidir");
    check_null_flags(&t, "bidir");
    check_segments(&t, "bidir");
    check_reverse_state(&t, "bidir");
    t.cfg.bidir = 0; /* the same checks must see a causal layer as causal */
    check_visibility(&t, "causal");
    tl_free(&t);
    free(fg), free(fc);
}

int main(void) {
    eid_runtime_setup(2, 0);
    bidir_suite((LayerCfg){.mixer = "longhorn", .d_state = 4, .expand = 2, .d_conv = 4, .dt_rank = 2}, 8);
    bidir_suite((LayerCfg){.mixer = "longhorn", .d_state = 3, .expand = 1, .d_conv = 2, .dt_rank = 1}, 5); /* odd I */
    bidir_suite((LayerCfg){.mixer = "mamba", .d_state = 4, .expand = 2, .d_conv = 4, .dt_rank = 2}, 8);
    bidir_suite((LayerCfg){.mixer = "mamba2", .d_state = 4, .expand = 2, .headdim = 4, .d_conv = 4}, 8);
    bidir_suite((LayerCfg){.mixer = "gla", .num_heads = 2, .d_conv = 4}, 8);
    bidir_suite((LayerCfg){.mixer = "gla", .num_heads = 3, .d_conv = 0}, 6); /* odd H */
    bidir_suite((LayerCfg){.mixer = "hawk", .expand = 2, .num_heads = 2, .d_conv = 4}, 6);
    bidir_suite((LayerCfg){.mixer = "hawk", .expand = 1, .num_heads = 1, .d_conv = 2}, 5); /* odd R */
    bidir_suite((LayerCfg){.mixer = "gated-ssm", .expand = 2}, 6);
    bidir_suite((LayerCfg){.mixer = "gated-ssm", .expand = 1}, 7); /* odd R */
    /* attention: the prefix-LM mask (chunk = its key block) */
    bidir_suite((LayerCfg){.mixer = "attn", .num_heads = 2, .num_kv_heads = 1, .chunk = 5}, 8);
    bidir_suite((LayerCfg){.mixer = "swa", .num_heads = 2, .window = 4, .chunk = 3}, 8);
    return t_summary("test_bidir");
}
