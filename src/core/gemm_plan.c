/* gemm_plan.c — the per-shape choice of library for eid_gemm (core/gemm_plan.h). */
#include "core/gemm_plan.h"
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/common.h"
#include "core/runtime.h"

static const char *backend_names[EID_GEMM_N_BACKENDS] = {"openblas", "onednn-f32", "onednn-bf16"};

const char *eid_gemm_backend_name(int b) { return b >= 0 && b < EID_GEMM_N_BACKENDS ? backend_names[b] : "?"; }

int eid_gemm_backend_parse(const char *name) {
    for (int b = 0; b < EID_GEMM_N_BACKENDS; b++)
        if (!strcmp(name, backend_names[b])) return b;
    return -1;
}

static int g_mode = EID_PLAN_FIXED, g_verbose;
void eid_gemm_plan_set_mode(int mode, int verbose) {
    g_mode = mode == EID_PLAN_MEASURE ? EID_PLAN_MEASURE : EID_PLAN_FIXED;
    g_verbose = verbose;
}
int eid_gemm_plan_mode(void) { return g_mode; }

/* ---- the table: entries in insertion order, found through an open-addressing index ---- */
#define INDEX_SLOTS (2 * EID_GEMM_PLAN_MAX) /* a power of two, at most half full */
static EidGemmChoice g_entry[EID_GEMM_PLAN_MAX];
static int g_count, g_full_noticed;
static int g_index[INDEX_SLOTS]; /* entry + 1; 0 = empty */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static int shape_eq(const EidGemmShape *a, const EidGemmShape *b) {
    return a->prec == b->prec && a->ta == b->ta && a->tb == b->tb && a->M == b->M && a->N == b->N && a->K == b->K &&
           a->team == b->team && a->mirror == b->mirror;
}

static uint32_t shape_hash(const EidGemmShape *s) {
    int v[8] = {s->prec, s->ta, s->tb, s->M, s->N, s->K, s->team, s->mirror};
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 8; i++) h = (h ^ (uint64_t)(uint32_t)v[i]) * 1099511628211ull;
    return (uint32_t)(h ^ (h >> 32));
}

/* The index slot holding s, or the empty slot where it would go (lock held). */
static int *slot_of(const EidGemmShape *s) {
    for (uint32_t i = shape_hash(s);; i++) {
        int *slot = &g_index[i & (INDEX_SLOTS - 1)];
        if (!*slot || shape_eq(&g_entry[*slot - 1].shape, s)) return slot;
    }
}

static int valid_choice(const EidGemmChoice *c) {
    const EidGemmShape *s = &c->shape;
    if (s->prec != EID_PREC_FP32 && s->prec != EID_PREC_BF16) return 0;
    if ((s->ta | s->tb | s->mirror) & ~1) return 0;
    if (s->M < 1 || s->N < 1 || s->K < 1 || s->team < 1) return 0;
    if (c->use < 0 || c->use >= EID_GEMM_N_BACKENDS) return 0;
    return c->use != EID_GEMM_ONEDNN_BF16 || s->prec == EID_PREC_BF16; /* fp32 runs never pick bf16 */
}

/* lock held */
static int put_locked(const EidGemmChoice *c) {
    int *slot = slot_of(&c->shape);
    if (*slot) return 1;
    if (g_count == EID_GEMM_PLAN_MAX) return eid_error("gemm plan: more than %d shapes", EID_GEMM_PLAN_MAX), -1;
    g_entry[g_count] = *c;
    *slot = ++g_count;
    return 0;
}

int eid_gemm_plan_put(const EidGemmChoice *c) {
    if (!valid_choice(c)) return eid_error("gemm plan: malformed entry"), -1;
    pthread_mutex_lock(&g_lock);
    int rc = put_locked(c);
    pthread_mutex_unlock(&g_lock);
    return rc;
}

void eid_gemm_plan_clear(void) {
    pthread_mutex_lock(&g_lock);
    memset(g_index, 0, sizeof g_index);
    g_count = 0, g_full_noticed = 0;
    pthread_mutex_unlock(&g_lock);
}

int eid_gemm_plan_count(void) {
    pthread_mutex_lock(&g_lock);
    int n = g_count;
    pthread_mutex_unlock(&g_lock);
    return n;
}

int eid_gemm_plan_get(int i, EidGemmChoice *out) {
    pthread_mutex_lock(&g_lock);
    int ok = i >= 0 && i < g_count;
    if (ok) *out = g_entry[i];
    pthread_mutex_unlock(&g_lock);
    return ok ? 0 : -1;
}

/* ---- measuring ---- */
static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec * 1e-3;
}

/* One warm-up product per candidate (it also makes oneDNN's primitive), then rounds that take the
 * candidates in turn, so that a change of machine load touches all of them alike; the best time of
 * each counts. At least MIN_ROUNDS; small products get more, up to MAX_ROUNDS or MEASURE_US of timed
 * work, so that one preempted run cannot decide a shape (a batch-1 decoding product takes ~100 µs). */
#define MIN_ROUNDS 3
#define MAX_ROUNDS 15
#define MEASURE_US 5000.0
static void measure(EidGemmChoice *c, const int *cands, int n, EidGemmRunFn run, void *ctx, const float *C,
                    size_t c_span) {
    for (int b = 0; b < EID_GEMM_N_BACKENDS; b++) c->us[b] = -1;
    float *out = malloc((c_span ? c_span : 1) * sizeof *out);
    if (!out) return; /* no memory to measure in: the fallback stays */
    int ok[EID_GEMM_N_BACKENDS] = {0};
    for (int i = 0; i < n; i++) {
        memcpy(out, C, c_span * sizeof *out);
        ok[cands[i]] = run(cands[i], ctx, out) == 0;
    }
    double spent = 0;
    for (int r = 0; r < MIN_ROUNDS || (r < MAX_ROUNDS && spent < MEASURE_US); r++)
        for (int i = 0; i < n; i++) {
            int b = cands[i];
            if (!ok[b]) continue;
            memcpy(out, C, c_span * sizeof *out);
            double t0 = now_us();
            run(b, ctx, out);
            double t = now_us() - t0;
            spent += t;
            if (c->us[b] < 0 || t < c->us[b]) c->us[b] = t;
        }
    free(out);
}

static void log_choice(const EidGemmChoice *c) {
    char times[160] = "";
    size_t len = 0;
    for (int b = 0; b < EID_GEMM_N_BACKENDS && len < sizeof times; b++)
        if (c->us[b] >= 0)
            len += (size_t)snprintf(times + len, sizeof times - len, "%s%s %.1f us", len ? ", " : "", backend_names[b],
                                    c->us[b]);
    const EidGemmShape *s = &c->shape;
    eid_log("gemm plan: %s %dx%dx%d %c%c%s, %d thread%s: %s -> %s", eid_precision_name(s->prec), s->M, s->N, s->K,
            s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', s->mirror ? " (bf16 mirror)" : "", s->team, s->team == 1 ? "" : "s",
            times, backend_names[c->use]);
}

int eid_gemm_plan_choose(const EidGemmShape *s, const int *cands, int n, int fallback, EidGemmRunFn run, void *ctx,
                         const float *C, size_t c_span) {
    pthread_mutex_lock(&g_lock);
    int *slot = slot_of(s);
    if (*slot) {
        int use = g_entry[*slot - 1].use;
        pthread_mutex_unlock(&g_lock);
        return use;
    }
    if (g_count == EID_GEMM_PLAN_MAX) { /* a full table: the fixed choice, said once */
        if (!g_full_noticed) eid_log("gemm plan: more than %d shapes; new shapes use the fixed choice", EID_GEMM_PLAN_MAX);
        g_full_noticed = 1;
        pthread_mutex_unlock(&g_lock);
        return fallback;
    }
    EidGemmChoice c = {.shape = *s, .use = fallback};
    measure(&c, cands, n, run, ctx, C, c_span);
    /* the fixed choice unless another library is at least 5% faster: timing noise does not flip it */
    double best = c.us[fallback] >= 0 ? 0.95 * c.us[fallback] : INFINITY;
    for (int i = 0; i < n; i++)
        if (cands[i] != fallback && c.us[cands[i]] >= 0 && c.us[cands[i]] < best) best = c.us[cands[i]], c.use = cands[i];
    put_locked(&c);
    pthread_mutex_unlock(&g_lock);
    if (g_verbose) log_choice(&c);
    return c.use;
}
