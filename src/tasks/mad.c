/* mad.c — the six MAD tasks (Poli et al., docs/tasks.md §7; mad-lab mad/data/instances.py), scored by
 * class-macro-averaged accuracy over the test set (task_eval.c).
 *   mad-recall    in-context recall, multi-query          --seq-len = MAD L − 1 (odd)
 *   mad-noisy     noisy in-context recall                  --seq-len = MAD L − 1 (odd)
 *   mad-fuzzy     fuzzy in-context recall (motifs ≤ 3)     --seq-len = MAD L
 *   mad-selcopy   selective copying                        --seq-len = MAD L
 *   mad-compress  compression, adapted (see below)        --seq-len = 2 (MAD L − 1)
 *   mad-memorize  memorization of one fixed global map     --seq-len = MAD L */
#include <stdlib.h>
#include "tasks/task_impl.h"

/* ---- in-context recall and noisy recall: L/2 slots; all but the last are a pair `k v` (k uniform
 * with replacement, v fixed per key in the sequence) or, with probability frac_noise, 2 noise
 * tokens; the last is a pair whose key was shown. Train: every next token; test: v wherever its
 * key was shown before, predicted at the key. [OURS] the slot forced to be a real pair is drawn
 * from the non-final slots (the reference may pick the final one, leaving no shown key). ---- */

static int recall_resolve(TaskCfg *t) {
    int noisy = !strcmp(t->name, "mad-noisy");
    if (noisy && !t->noise_vocab) t->noise_vocab = 16;
    if (noisy && t->frac_noise == 0) t->frac_noise = 0.2;
    if (!noisy) t->noise_vocab = 0, t->frac_noise = 0;
    if (t->seq_len < 3 || t->seq_len % 2 == 0)
        return eid_error("--seq-len: %s needs an odd length >= 3 (MAD's L - 1), got %d", t->name, t->seq_len), -1;
    if (t->noise_vocab < 1 && noisy) return eid_error("--noise-vocab: must be >= 1, got %d", t->noise_vocab), -1;
    if (!(t->frac_noise >= 0 && t->frac_noise < 1)) return eid_error("--frac-noise: must be in [0, 1), got %g", t->frac_noise), -1;
    if (t->vocab_size - t->noise_vocab < 2)
        return eid_error("--vocab %d: %s needs >= 2 key/value tokens besides %d noise tokens", t->vocab_size, t->name, t->noise_vocab), -1;
    return 0;
}
static int all_labels(const TaskCfg *t) { return t->seq_len; }

static int recall_example(const TaskCfg *t, Rng *r, int test, int *in, int *lab) {
    int ns = t->vocab_size - t->noise_vocab, nk = ns / 2, nv = ns - nk, n = t->seq_len + 1, np = n / 2;
    int *x = eid_xmalloc(sizeof(int) * (2 * n + 2 * nk)), *y = x + n, *map = y + n, *shown = map + nk;
    int n_shown = 0, len = 0, forced = (int)rng_below(r, (uint64_t)(np - 1 > 0 ? np - 1 : 1));
    for (int k = 0; k < nk; k++) map[k] = -1;
    for (int i = 0; i < np - 1; i++) {
        if (i != forced && t->frac_noise > 0 && rng_uniform(r) < t->frac_noise) {
            for (int j = 0; j < 2; j++) x[len] = ns + (int)rng_below(r, (uint64_t)t->noise_vocab), y[len++] = -100;
            continue;
        }
        int k = (int)rng_below(r, (uint64_t)nk), seen = map[k] >= 0;
        if (!seen) map[k] = nk + (int)rng_below(r, (uint64_t)nv), shown[n_shown++] = k;
        x[len] = k, y[len++] = -100;
        x[len] = map[k], y[len++] = seen ? map[k] : -100; /* probe v if k was presented before */
    }
    int k = shown[rng_below(r, (uint64_t)n_shown)];
    x[len] = k, y[len++] = -100;
    x[len] = map[k], y[len++] = map[k];
    if (!test) shift_labels(x, NULL, n, t->seq_len, 0, in, lab);
    else
        for (int p = 0; p < t->seq_len; p++) in[p] = x[p], lab[p] = y[p + 1];
    free(x);
    return t->seq_len; /* n = seq_len + 1: the row is full */
}

const TaskOps task_mad_recall = {"mad-recall", "MAD in-context recall (§7): --seq-len = L-1 (odd), vocab V; train full "
                                 "LM, test repeated keys; score: class-macro accuracy", SCORE_MACRO, recall_resolve,
                                 all_labels, recall_example, NULL};
const TaskOps task_mad_noisy = {"mad-noisy", "MAD noisy in-context recall (§7): as mad-recall plus --noise-vocab 16, "
                                "--frac-noise 0.2", SCORE_MACRO, recall_resolve, all_labels, recall_example, NULL};

/* ---- fuzzy recall: keys and values are tuples of 1..motif distinct tokens (keys {0..ns/2−1},
 * values the rest of ns = V−1; pad V−1), a probe pair at a random place, the probe repeated at the
 * end, left-padded to L+1. Test keys always have `motif` tokens. Train: every next token (pads
 * included, as the reference); test: values of repeated keys. ---- */

typedef struct { int k[8], v[8], nk, nv; } Motif;

static void perm(Rng *r, int lo, int n, int size, int *out) { task_distinct(r, lo, lo + n, size, out); }

static int fuzzy_resolve(TaskCfg *t) {
    if (!t->motif) t->motif = 3;
    int ns = t->vocab_size - 1;
    if (t->motif < 1 || t->motif > 8) return eid_error("--motif: must be in [1, 8], got %d", t->motif), -1;
    if (ns / 2 < t->motif || ns - ns / 2 < t->motif)
        return eid_error("--vocab %d: mad-fuzzy needs >= %d key and value tokens", t->vocab_size, t->motif), -1;
    if (t->seq_len < 4 * t->motif + 2 * t->motif + 1)
        return eid_error("--seq-len %d: mad-fuzzy with --motif %d needs >= %d", t->seq_len, t->motif, 6 * t->motif + 1), -1;
    return 0;
}

static int fuzzy_example(const TaskCfg *t, Rng *r, int test, int *in, int *lab) {
    int L = t->seq_len, mm = t->motif, ns = t->vocab_size - 1, nk = ns / 2, PADT = t->vocab_size - 1, len = 0, nmap = 0;
    int *x = eid_xmalloc(sizeof(int) * 4 * (L + 1)), *y = x + (L + 1), *xs = y + (L + 1), *ys = xs + (L + 1);
    Motif *map = eid_xmalloc(sizeof(Motif) * (L + 1)), probe;
    probe.nk = test ? mm : rng_range(r, 1, mm), probe.nv = rng_range(r, 1, mm);
    perm(r, 0, nk, probe.nk, probe.k), perm(r, nk, ns - nk, probe.nv, probe.v);
    int kvps = probe.nk + probe.nv, probe_idx = (int)rng_below(r, (uint64_t)(L - 2 * kvps)), probe_added = 0;
    while (len < L - kvps - 2 * mm) {
        Motif e;
        e.nk = test ? mm : rng_range(r, 1, mm), e.nv = rng_range(r, 1, mm);
        if (len >= probe_idx && !probe_added) { /* make sure the probe pair is in the sequence */
            for (int i = 0; i < kvps; i++) x[len + i] = i < probe.nk ? probe.k[i] : probe.v[i - probe.nk], y[len + i] = -100;
            len += kvps, map[nmap++] = probe, probe_added = 1;
            continue;
        }
        perm(r, 0, nk, e.nk, e.k);
        int found = -1;
        for (int i = 0; i < nmap && found < 0; i++)
            if (map[i].nk == e.nk && !memcmp(map[i].k, e.k, sizeof(int) * e.nk)) found = i;
        int is_probe = e.nk == probe.nk && !memcmp(e.k, probe.k, sizeof(int) * e.nk);
        if (is_probe) memcpy(e.v, probe.v, sizeof e.v), e.nv = probe.nv, probe_added = 1;
        else if (found >= 0) memcpy(e.v, map[found].v, sizeof e.v), e.nv = map[found].nv;
        else perm(r, nk, ns - nk, e.nv, e.v);
        for (int i = 0; i < e.nk; i++) x[len] = e.k[i], y[len++] = -100;
        for (int i = 0; i < e.nv; i++) x[len] = e.v[i], y[len++] = found >= 0 ? e.v[i] : -100;
        if (found < 0) map[nmap++] = e; /* now presented */
    }
    for (int i = 0; i < probe.nk; i++) x[len] = probe.k[i], y[len++] = -100;
    for (int i = 0; i < probe.nv; i++) x[len] = probe.v[i], y[len++] = probe.v[i];
    int pad = L + 1 - len; /* left-pad to L + 1 */
    for (int i = 0; i < L + 1; i++) xs[i] = i < pad ? PADT : x[i - pad], ys[i] = i < pad ? -100 : y[i - pad];
    if (!test) shift_labels(xs, NULL, L + 1, L, PADT, in, lab);
    else
        for (int p = 0; p < L; p++) in[p] = xs[p], lab[p] = ys[p + 1];
    free(x), free(map);
    return L; /* left padding is part of MAD's input format (real tokens), not PAD */
}

const TaskOps task_mad_fuzzy = {"mad-fuzzy", "MAD fuzzy in-context recall (§7): --seq-len = L, --motif 3 (pad V-1); "
                                "score: class-macro accuracy", SCORE_MACRO, fuzzy_resolve, all_labels, fuzzy_example, NULL};

/* ---- selective copying: M data tokens {0..V−3}, L−2M−1 blanks (V−2) each inserted before a
 * uniformly chosen data token, then the copy token V−1 and M blanks; labels = the data tokens at
 * the last M positions (train and test). ---- */

static int madsel_resolve(TaskCfg *t) {
    if (!t->num_tokens) t->num_tokens = 16;
    if (t->num_tokens < 1) return eid_error("--num-tokens: must be >= 1, got %d", t->num_tokens), -1;
    if (t->seq_len <= 2L * t->num_tokens + 1) /* in long: a huge --num-tokens must not wrap */
        return eid_error("--seq-len %d: mad-selcopy needs seq_len > 2*num-tokens + 1 = %ld", t->seq_len, 2L * t->num_tokens + 1), -1;
    if (t->vocab_size < 3) return eid_error("--vocab: mad-selcopy needs >= 3 tokens (data, blank V-2, copy V-1)"), -1;
    return 0;
}
static int madsel_labels(const TaskCfg *t) { return t->num_tokens; }

static int madsel_example(const TaskCfg *t, Rng *r, int test, int *in, int *lab) {
    int V = t->vocab_size, M = t->num_tokens, L = t->seq_len, nb = L - 2 * M - 1, BLANK = V - 2, len = 0;
    int *before = eid_xcalloc((size_t)M, sizeof(int)), *data = eid_xmalloc(sizeof(int) * M);
    for (int i = 0; i < M; i++) data[i] = (int)rng_below(r, (uint64_t)(V - 2));
    for (int b = 0; b < nb; b++) before[rng_below(r, (uint64_t)M)]++;
    for (int p = 0; p < L; p++) lab[p] = -100;
    for (int i = 0; i < M; i++) {
        for (int b = 0; b < before[i]; b++) in[len++] = BLANK;
        in[len++] = data[i];
    }
    in[len++] = V - 1;
    for (int i = 0; i < M; i++) lab[len] = data[i], in[len++] = BLANK;
    free(before), free(data);
    (void)test;
    return len; /* = L */
}

const TaskOps task_mad_selcopy = {"mad-selcopy", "MAD selective copying (§7): --seq-len = L, --num-tokens 16; score: "
                                  "class-macro accuracy", SCORE_MACRO, madsel_resolve, madsel_labels, madsel_example, NULL};

/* ---- compression [OURS adaptation]. MAD encodes L−1 random tokens + a compression token, pools
 * the last position and reconstructs the input with a separate 2-layer GELU MLP decoder fed with
 * sinusoidal positions. A model whose only head is the tied LM head has no such decoder, so here
 * the model reconstructs the input itself: n = seq_len/2 random tokens {0..V−2}, then n
 * compression tokens V−1; the i-th compression token is labelled with the i-th input token. For a
 * recurrent mixer the state at the first compression token is the only path to the input (the
 * bottleneck MAD's pooling creates); attention is not bottlenecked here. ---- */

static int comp_resolve(TaskCfg *t) {
    if (t->seq_len < 2 || t->seq_len % 2) return eid_error("--seq-len: mad-compress needs an even length (2 x tokens), got %d", t->seq_len), -1;
    if (t->vocab_size < 2) return eid_error("--vocab: mad-compress needs >= 2 tokens"), -1;
    return 0;
}
static int half_labels(const TaskCfg *t) { return t->seq_len / 2; }

static int comp_example(const TaskCfg *t, Rng *r, int test, int *in, int *lab) {
    int n = t->seq_len / 2, V = t->vocab_size;
    for (int i = 0; i < n; i++) in[i] = (int)rng_below(r, (uint64_t)(V - 1)), lab[i] = -100;
    for (int i = 0; i < n; i++) in[n + i] = V - 1, lab[n + i] = in[i];
    (void)test;
    return 2 * n;
}

const TaskOps task_mad_compress = {"mad-compress", "MAD compression, adapted to a tied LM head (§7, OURS): seq_len/2 "
                                   "tokens then seq_len/2 compression tokens that reconstruct them", SCORE_MACRO,
                                   comp_resolve, half_labels, comp_example, NULL};

/* ---- memorization: one fixed global key→value map (its own seed, 12345, independent of the run
 * seed: a uniformly random injection of keys {0..ns/2−1} into values {ns/2..ns−1}, ns = V−1);
 * L/2 pairs `k <ins>` (insert token V−1), label = the value at every <ins>. ---- */

static int mem_resolve(TaskCfg *t) {
    if (t->seq_len < 2 || t->seq_len % 2) return eid_error("--seq-len: mad-memorize needs an even length, got %d", t->seq_len), -1;
    if (t->vocab_size < 4) return eid_error("--vocab: mad-memorize needs >= 4 tokens"), -1;
    return 0;
}

static int mem_example(const TaskCfg *t, Rng *r, int test, int *in, int *lab) {
    int ns = t->vocab_size - 1, nk = ns / 2, nv = ns - nk;
    int *vals = eid_xmalloc(sizeof(int) * nv);
    Rng g; /* the fixed map: a Fisher–Yates shuffle of the values, key i → vals[i] */
    rng_init(&g, rng_derive(12345, 0x3E3), 0);
    for (int i = 0; i < nv; i++) vals[i] = nk + i;
    for (int i = nv - 1; i > 0; i--) {
        int j = (int)rng_below(&g, (uint64_t)i + 1), tmp = vals[i];
        vals[i] = vals[j], vals[j] = tmp;
    }
    for (int p = 0; p < t->seq_len; p += 2) {
        int k = (int)rng_below(r, (uint64_t)nk);
        in[p] = k, lab[p] = -100;
        in[p + 1] = t->vocab_size - 1, lab[p + 1] = vals[k];
    }
    free(vals);
    (void)test;
    return t->seq_len;
}

const TaskOps task_mad_memorize = {"mad-memorize", "MAD memorization of a fixed map (§7): --seq-len = L (even), vocab "
                                   "V, use --train-examples 256; score: class-macro accuracy", SCORE_MACRO, mem_resolve,
                                   half_labels, mem_example, NULL};
