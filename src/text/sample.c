/* sample.c — next-token sampling (see sample.h; docs/lm.md "Generating text"). */
#include <math.h>
#include <stdlib.h>
#include "text/sample.h"

Sampler *sampler_new(const SampleCfg *cfg, int V) {
    if (V < 1) return eid_error("sampler: vocabulary size %d, expected >= 1", V), NULL;
    if (!(cfg->temperature >= 0) || !isfinite(cfg->temperature))
        return eid_error("--temperature %g: expected a finite number >= 0", cfg->temperature), NULL;
    if (cfg->top_k < 0) return eid_error("--top-k %d: expected >= 0 (0 = off)", cfg->top_k), NULL;
    if (!(cfg->top_p > 0 && cfg->top_p <= 1)) return eid_error("--top-p %g: expected a number in (0, 1]", cfg->top_p), NULL;
    if (!(cfg->rep_penalty >= 1) || !isfinite(cfg->rep_penalty))
        return eid_error("--repetition-penalty %g: expected a finite number >= 1 (1 = off)", cfg->rep_penalty), NULL;
    Sampler *s = eid_xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    s->V = V;
    s->logit = eid_xmalloc(sizeof(double) * V);
    s->order = eid_xmalloc(sizeof(int) * V);
    s->prob = eid_xmalloc(sizeof(double) * V);
    s->seen = eid_xcalloc(V, 1);
    return s;
}

void sampler_free(Sampler *s) {
    if (!s) return;
    free(s->logit), free(s->order), free(s->prob), free(s->seen);
    free(s);
}

/* logit[v] = logits[v] with the CTRL penalty applied once per distinct context token. */
static void penalise(Sampler *s, const real *logits, const int *ctx, int nctx) {
    for (int v = 0; v < s->V; v++) s->logit[v] = (double)logits[v];
    if (s->cfg.rep_penalty == 1) return;
    for (int i = 0; i < nctx; i++) {
        int v = ctx[i];
        if (v < 0 || v >= s->V || s->seen[v]) continue;
        s->seen[v] = 1;
        s->logit[v] = s->logit[v] > 0 ? s->logit[v] / s->cfg.rep_penalty : s->logit[v] * s->cfg.rep_penalty;
    }
    for (int i = 0; i < nctx; i++)
        if (ctx[i] >= 0 && ctx[i] < s->V) s->seen[ctx[i]] = 0;
}

static const double *g_key; /* qsort has no context argument; sampling is single-threaded per Sampler */
static int by_logit_desc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return g_key[x] < g_key[y] ? 1 : g_key[x] > g_key[y] ? -1 : x - y;
}

int sampler_dist(Sampler *s, const real *logits, const int *ctx, int nctx) {
    penalise(s, logits, ctx, nctx);
    int V = s->V;
    if (s->cfg.temperature == 0) { /* greedy: argmax, ties → lowest id */
        int best = 0;
        for (int v = 1; v < V; v++)
            if (s->logit[v] > s->logit[best]) best = v;
        s->order[0] = best, s->prob[0] = 1;
        return 1;
    }
    for (int v = 0; v < V; v++) s->order[v] = v, s->logit[v] /= s->cfg.temperature;
    g_key = s->logit;
    qsort(s->order, V, sizeof(int), by_logit_desc);
    int n = s->cfg.top_k > 0 && s->cfg.top_k < V ? s->cfg.top_k : V;
    double top = s->logit[s->order[0]], sum = 0;
    for (int i = 0; i < n; i++) sum += s->prob[i] = exp(s->logit[s->order[i]] - top);
    if (s->cfg.top_p < 1) { /* smallest prefix whose mass reaches p */
        double acc = 0;
        int keep = 0;
        while (keep < n && (keep == 0 || acc < s->cfg.top_p * sum)) acc += s->prob[keep++];
        n = keep, sum = acc;
    }
    for (int i = 0; i < n; i++) s->prob[i] /= sum;
    return n;
}

int sampler_pick(Sampler *s, const real *logits, const int *ctx, int nctx, Rng *r) {
    int n = sampler_dist(s, logits, ctx, nctx);
    if (n == 1) return s->order[0];
    double u = rng_uniform(r), acc = 0;
    for (int i = 0; i < n; i++)
        if ((acc += s->prob[i]) > u) return s->order[i];
    return s->order[n - 1]; /* rounding: u just below 1 */
}
