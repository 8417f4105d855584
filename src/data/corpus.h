/* corpus.h — a tokenised dataset (data/dataset.h) as a data source (data/source.h; docs/lm.md
 * "Training and evaluation on a dataset").
 *
 * Each split becomes one token stream: its documents in order, each followed by the tokenizer's
 * end-of-text token (EOS). A row is a window of T + 1 stream tokens: tokens = the first T,
 * labels = the next token at every position (the EOS is predicted, and the token after an EOS —
 * the next document's first — is predicted from the EOS), flags = CAUSAL everywhere plus SEG_START
 * on each document's first token and at the start of the row, so recurrences reset between
 * documents (kernels/seq.h).
 *   STREAM_TRAIN: the training stream cut into W = ⌊(N − 1) / T⌋ non-overlapping windows; epoch e
 *     (rows eW … eW + W − 1) visits them in a seeded permutation of (seed, e): row j is a pure
 *     function of (seed, j).
 *   STREAM_TEST: the validation stream in order, ⌈(N − 1) / T⌉ windows; the last is padded (PAD,
 *     label −100) so every validation token after the first is predicted exactly once. */
#ifndef EIDETIC_CORPUS_H
#define EIDETIC_CORPUS_H
#include "data/dataset.h"
#include "data/source.h"

typedef struct {
    int32_t *stream[2];  /* [0] train, [1] validation: documents + EOS */
    uint8_t *doc_start[2]; /* 1 where a document starts */
    uint64_t n[2];
    uint64_t bytes[2];     /* UTF-8 bytes of the split's text (bits per byte) */
    int T, vocab, eos;
} Corpus;

/* Builds the streams of d for rows of T tokens. -1 + eid_error (a split too short for one row,
 * a tokenizer without EOS). */
int corpus_init(Corpus *c, const Dataset *d, int T, const char *dir);
void corpus_free(Corpus *c);
uint64_t corpus_val_rows(const Corpus *c);
/* A source over c (which must outlive it); rank 0 of 1, cursor 0. */
void source_corpus_init(DataSource *s, const Corpus *c, uint64_t seed);

#endif
