/* birdie_src.c — Birdie's objectives as a data source (birdie_src.h). */
#include "data/birdie_src.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/common.h"

static const char *const objective_names[] = {"ntp", "birdie", "birdie-causal", "fixed", "ul2"};

int birdie_objective_parse(const char *name) {
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, objective_names[i])) return i;
    return eid_error("--objective: unknown objective '%s' (expected ntp, birdie, birdie-causal, fixed or ul2)", name), -1;
}

int birdie_source_init(BirdieSource *b, int objective, int L, int text_vocab) {
    memset(b, 0, sizeof *b);
    b->objective = objective, b->L = L, b->base = text_vocab;
    if (L < 16) return eid_error("--seq-len %d: Birdie's objectives need rows of at least 16 tokens", L), -1;
    if (objective == BOBJ_NTP) {
        BirdieArm all[BIRDIE_MAX_ARMS];
        birdie_grid(all);
        b->arms[0] = all[0], b->n_arms = 1, b->action[0] = 1;
    } else if (objective == BOBJ_UL2) {
        b->n_arms = birdie_ul2(b->arms, b->action);
    } else {
        b->n_arms = birdie_grid(b->arms);
        birdie_class_uniform(b->arms, b->n_arms, b->action, NULL);
    }
    birdie_fit_lengths(b->arms, b->n_arms, L);
    memcpy(b->init_action, b->action, sizeof b->action);
    return 0;
}

void birdie_source_free(BirdieSource *b) {
    free(b->owned[0]), free(b->owned[1]);
    b->owned[0] = b->owned[1] = NULL;
}

/* documents of one task stream until `want` tokens */
static void task_docs(BirdieSource *b, int split, const TaskCfg *t, uint64_t seed, int stream, uint64_t want) {
    int L = t->seq_len;
    int *tok = eid_xmalloc(sizeof(int) * L), *lab = eid_xmalloc(sizeof(int) * L);
    uint8_t *fl = eid_xmalloc((size_t)L);
    size_t cap = (size_t)want + (size_t)L + 2, n = 0;
    int32_t *s = eid_xmalloc(sizeof(int32_t) * cap);
    for (uint64_t j = 0; n < want; j++) {
        task_batch(t, seed, stream, j, 0, 1, tok, lab, fl);
        int len = 0;
        while (len < L && !(fl[len] & FLAG_PAD)) len++;
        for (int i = 0; i < len; i++) s[n++] = tok[i];
        if (len > 0 && lab[len - 1] >= 0) s[n++] = lab[len - 1]; /* the example's last token */
        s[n++] = b->base + BR_EOS;
    }
    b->owned[split] = s, b->text[split].tok = s, b->text[split].n = n;
    free(tok), free(lab), free(fl);
}

void birdie_text_from_task(BirdieSource *b, const TaskCfg *t, uint64_t seed, uint64_t train_tokens, uint64_t val_tokens) {
    task_docs(b, 0, t, seed, STREAM_TRAIN, train_tokens);
    task_docs(b, 1, t, seed, STREAM_TEST, val_tokens);
}

static uint64_t row_key(uint64_t seed, int stream, uint64_t j) {
    return rng_derive(rng_derive(rng_derive(seed, 0xB1D1E), (uint64_t)stream), j);
}

static void build_row(const BirdieSource *b, const double *action, int split, uint64_t key, int *tok, int *lab,
                      uint8_t *fl, int *work) {
    uint64_t pos = rng_derive(key, 0x7E47) % b->text[split].n;
    birdie_row(b->arms, b->n_arms, action, &b->text[split], pos, key, b->L, b->base, tok, lab, fl, work, NULL);
}

void birdie_val_row(const BirdieSource *b, uint64_t seed, int k, int i, int *tok, int *lab, uint8_t *fl, int *work) {
    double one[BIRDIE_MAX_ARMS] = {0};
    one[k] = 1;
    build_row(b, one, 1, rng_derive(row_key(seed, 0x7A1, (uint64_t)k), (uint64_t)i), tok, lab, fl, work);
}

static int birdie_rows(const DataSource *s, int stream, uint64_t first, uint64_t wrap, int n, int *tokens, int *labels,
                       uint8_t *flags) {
    const BirdieSource *b = s->cfg;
    int L = b->L;
    int *work = eid_xmalloc(sizeof(int) * 3 * (size_t)L);
    uint8_t *fl = flags ? NULL : eid_xmalloc((size_t)L);
    for (int i = 0; i < n; i++) {
        uint64_t j = first + (uint64_t)i;
        if (wrap) j %= wrap;
        build_row(b, b->action, stream == STREAM_TRAIN ? 0 : 1, row_key(s->seed, stream, j), tokens + (size_t)i * L,
                  labels + (size_t)i * L, flags ? flags + (size_t)i * L : fl, work);
    }
    free(work), free(fl);
    return 0;
}

static int birdie_labels(const DataSource *s) { return ((const BirdieSource *)s->cfg)->L; }

/* the action as exact hex floats: "action=a0,a1,..." */
static int birdie_save(const DataSource *s, char *buf, size_t n) {
    const BirdieSource *b = s->cfg;
    size_t k = (size_t)snprintf(buf, n, "action=");
    for (int i = 0; i < b->n_arms && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%a", i ? "," : "", b->action[i]);
    if (k >= n) return eid_error("source_save: buffer of %zu bytes too small for the Birdie action", n), -1;
    return 0;
}

static int birdie_restore(DataSource *s, const char *text) {
    BirdieSource *b = (BirdieSource *)s->cfg;
    double a[BIRDIE_MAX_ARMS];
    if (strncmp(text, "action=", 7) != 0) return eid_error("Birdie source state '%.40s': expected \"action=...\"", text), -1;
    const char *p = text + 7;
    for (int i = 0; i < b->n_arms; i++) {
        char *end;
        a[i] = strtod(p, &end);
        if (end == p || !(a[i] >= 0) || !isfinite(a[i]) || (*end != (i + 1 < b->n_arms ? ',' : 0)))
            return eid_error("Birdie source state: entry %d of the action is not a non-negative number (%d expected)", i,
                             b->n_arms), -1;
        p = end + 1;
    }
    double sum = 0;
    for (int i = 0; i < b->n_arms; i++) sum += a[i];
    if (!(sum > 0) || !isfinite(sum)) return eid_error("Birdie source state: the action has no weight (sum %g)", sum), -1;
    memcpy(b->action, a, sizeof(double) * b->n_arms);
    return 0;
}

static const SourceOps birdie_ops = {"birdie", birdie_rows, birdie_labels, birdie_save, birdie_restore};

void source_birdie_init(DataSource *s, BirdieSource *b, uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->ops = &birdie_ops, s->cfg = b, s->seed = seed, s->T = b->L, s->rank = 0, s->world = 1;
}
