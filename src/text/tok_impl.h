/* tok_impl.h — what a tokenizer kind implements (tokenizer.c dispatches; one file per kind:
 * tok_byte.c, tok_bpe.c for hf-bpe, tok_spm.cc for SentencePiece). */
#ifndef EIDETIC_TOK_IMPL_H
#define EIDETIC_TOK_IMPL_H
#include "text/tokenizer.h"
#ifdef __cplusplus
extern "C" { /* tok_spm.cc is C++ */
#endif

typedef struct {
    const char *kind;
    int (*encode)(const Tokenizer *t, const char *text, size_t n, int **ids, size_t *cap, size_t *len);
    int (*piece)(const Tokenizer *t, int id, int at_start, char *buf, int cap);
    int (*is_special)(const Tokenizer *t, int id);
    /* writes the kind's own file(s) into dir; fills *file with the descriptor's "file" (or "") */
    int (*save)(const Tokenizer *t, const char *dir, const char **file);
    void (*free_impl)(void *impl);
} TokOps;

struct Tokenizer {
    const TokOps *ops;
    void *impl;
    int vocab, eos, bos;
    uint64_t hash;
};

uint64_t tok_fnv1a(uint64_t h, const void *data, size_t n); /* start with TOK_FNV_SEED */
#define TOK_FNV_SEED 0xcbf29ce484222325ULL

/* Kinds with files (NULL + eid_error naming path). */
Tokenizer *tok_bpe_load(const char *path);
Tokenizer *tok_spm_load(const char *path);
/* hf-bpe from the bytes of a tokenizer.json (malloc'd; the tokenizer owns them, freed on error too);
 * path names it in messages. The fuzz harness enters here. */
Tokenizer *tok_bpe_from_bytes(const char *path, char *file, size_t n);
/* 1 iff decode(encode(x)) == x for every text x: neither NFC nor add_prefix_space is on. */
int tok_bpe_lossless(const Tokenizer *t);

#ifdef __cplusplus
}
#endif
#endif
