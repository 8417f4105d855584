/* corpus.c — the dataset data source (data/corpus.h). */
#include "data/corpus.h"
#include <stdlib.h>
#include <string.h>
#include "core/common.h"

int corpus_init(Corpus *c, const Dataset *d, int T, const char *dir) {
    memset(c, 0, sizeof *c);
    c->T = T, c->vocab = tok_vocab_size(d->tok), c->eos = tok_eos_id(d->tok);
    if (T < 1) return eid_error("--seq-len: must be >= 1, got %d", T), -1;
    if (c->eos < 0) return eid_error("%s: the tokenizer has no end-of-text token to separate documents", dir), -1;
    const DsSplit *sp[2] = {&d->train, &d->val};
    for (int k = 0; k < 2; k++) {
        const DsSplit *s = sp[k];
        uint64_t n = s->n_tokens + s->n_docs;
        c->stream[k] = eid_xmalloc((n ? n : 1) * sizeof(int32_t));
        c->doc_start[k] = eid_xcalloc(n ? n : 1, 1);
        uint64_t at = 0;
        for (uint64_t doc = 0; doc < s->n_docs; doc++) {
            uint64_t a = s->offsets[doc], b = s->offsets[doc + 1];
            c->doc_start[k][at] = 1;
            memcpy(c->stream[k] + at, s->tokens + a, (size_t)(b - a) * sizeof(int32_t));
            at += b - a;
            c->stream[k][at++] = c->eos;
        }
        c->n[k] = n, c->bytes[k] = s->n_bytes;
    }
    if (c->n[0] < (uint64_t)T + 1) {
        eid_error("%s/train.tok: %llu tokens with separators, fewer than one row of --seq-len %d + 1", dir,
                  (unsigned long long)c->n[0], T);
        return corpus_free(c), -1;
    }
    return 0;
}

void corpus_free(Corpus *c) {
    for (int k = 0; k < 2; k++) free(c->stream[k]), free(c->doc_start[k]);
    memset(c, 0, sizeof *c);
}

uint64_t corpus_val_rows(const Corpus *c) { return c->n[1] < 2 ? 0 : (c->n[1] - 2) / (uint64_t)c->T + 1; }

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t gcd64(uint64_t a, uint64_t b) {
    while (b) { uint64_t t = a % b; a = b, b = t; }
    return a;
}

/* Window of training row j: an affine permutation (a·k + b) mod W of the epoch's windows, with a
 * coprime to W, drawn from (seed, epoch). */
static uint64_t train_window(const Corpus *c, uint64_t seed, uint64_t j) {
    uint64_t W = (c->n[0] - 1) / (uint64_t)c->T, e = j / W, k = j % W;
    if (W == 1) return 0;
    uint64_t h = mix64(seed * 0x9E3779B97F4A7C15ull + e + 1), a = 1 + mix64(h) % (W - 1), b = h % W;
    while (gcd64(a, W) != 1) a = a % (W - 1) + 1;
    return (uint64_t)(((unsigned __int128)a * k + b) % W);
}

static void fill_row(const Corpus *c, int split, uint64_t start, int *tok, int *lab, uint8_t *fl) {
    const int32_t *s = c->stream[split];
    for (int t = 0; t < c->T; t++) {
        uint64_t p = start + (uint64_t)t;
        if (p + 1 < c->n[split]) {
            tok[t] = s[p], lab[t] = s[p + 1];
            if (fl) fl[t] = FLAG_CAUSAL | (c->doc_start[split][p] || t == 0 ? FLAG_SEG_START : 0);
        } else { /* past the end of the validation stream */
            tok[t] = c->eos, lab[t] = -100;
            if (fl) fl[t] = FLAG_PAD;
        }
    }
}

static int corpus_rows(const DataSource *s, int stream, uint64_t first, uint64_t wrap, int n, int *tokens, int *labels,
                       uint8_t *flags) {
    const Corpus *c = s->cfg;
    (void)wrap; /* the training stream cycles in epochs of its own */
    for (int i = 0; i < n; i++) {
        uint64_t j = first + (uint64_t)i, start;
        if (stream == STREAM_TRAIN) start = train_window(c, s->seed, j) * (uint64_t)c->T;
        else if (stream == STREAM_TEST && j < corpus_val_rows(c)) start = j * (uint64_t)c->T;
        else
            return eid_error("corpus source: row %llu of stream %d does not exist (the validation split has %llu rows)",
                             (unsigned long long)j, stream, (unsigned long long)corpus_val_rows(c)), -1;
        fill_row(c, stream == STREAM_TRAIN ? 0 : 1, start, tokens + (size_t)i * c->T, labels + (size_t)i * c->T,
                 flags ? flags + (size_t)i * c->T : NULL);
    }
    return 0;
}

static int corpus_labels(const DataSource *s) { return ((const Corpus *)s->cfg)->T; }

static const SourceOps corpus_ops = {"corpus", corpus_rows, corpus_labels, NULL, NULL};

void source_corpus_init(DataSource *s, const Corpus *c, uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->ops = &corpus_ops, s->cfg = c, s->seed = seed, s->T = c->T, s->rank = 0, s->world = 1;
}
