/* dataset.h — a tokenised text dataset directory (docs/lm.md "Datasets (`eidetic prepare`)").
 *
 *   DIR/manifest.json          inputs (path, bytes, FNV-1a hash), counts, UTF-8 bytes per split
 *   DIR/eidetic_tokenizer.json the tokenizer that made the ids (text/tokenizer.h, tok_save_dir)
 *   DIR/train.tok, DIR/val.tok one shard per split:
 *       header (64 bytes, little-endian): magic "EIDTOKS\0", u32 version (1), u32 vocab,
 *         u32 token width (2 or 4 bytes), u32 0, u64 tokenizer hash, u64 documents, u64 tokens,
 *         u64 UTF-8 bytes of the split's text, u64 0;
 *       tokens [tokens × width];
 *       document index [(documents + 1) × u64]: document d is tokens [off[d], off[d+1]).
 *
 * The split is by document: a document goes to validation iff a hash of its bytes (not its
 * position) falls under --val-fraction, so it is the same whatever the order of the inputs. */
#ifndef EIDETIC_DATASET_H
#define EIDETIC_DATASET_H
#include <stddef.h>
#include <stdint.h>
#include "text/tokenizer.h"

#define DS_MAGIC "EIDTOKS"
#define DS_VERSION 1u
#define DS_HEADER_BYTES 64

typedef enum { DS_DOCS_FILE = 0, DS_DOCS_PARA = 1 } DsDocMode;

typedef struct {
    const char *const *inputs; /* files or directories (walked recursively, names sorted) */
    int n_inputs;
    const char *out;           /* output directory; written as OUT.tmp then renamed */
    int force;                 /* replace an existing OUT */
    double val_fraction;       /* in [0, 1) */
    uint64_t seed;             /* mixes into the split hash */
    DsDocMode docs;            /* a document = a file, or a blank-line separated paragraph */
    int progress;              /* progress bar on stderr */
} DsPrepareCfg;

typedef struct {
    uint64_t docs[2], tokens[2], bytes[2]; /* [0] train, [1] validation */
    uint64_t files, skipped_files, input_bytes;
} DsStats;

/* Tokenises the inputs with tok into cfg->out (see above). 0, or -1 + eid_error naming the file;
 * on failure nothing is left at OUT (an existing OUT is untouched unless it was replaced). */
int ds_prepare(const DsPrepareCfg *cfg, const Tokenizer *tok, DsStats *st);

/* One split of a dataset, loaded and validated. */
typedef struct {
    uint32_t vocab, width;
    uint64_t tok_hash, n_docs, n_tokens, n_bytes;
    int32_t *tokens;   /* [n_tokens] */
    uint64_t *offsets; /* [n_docs + 1] */
} DsSplit;

/* Reads and validates one shard file strictly (magic, version, width, length against the header,
 * ids < vocab, index monotonic from 0 to n_tokens). -1 + eid_error naming the file. */
int ds_split_load(const char *path, DsSplit *s);
/* Parses a shard held in memory (the fuzz harness; `name` appears in errors). */
int ds_split_parse(const uint8_t *buf, size_t n, const char *name, DsSplit *s);
void ds_split_free(DsSplit *s);

typedef struct {
    DsSplit train, val;
    Tokenizer *tok;
} Dataset;

/* Opens DIR: both shards and the tokenizer; the shards' tokenizer hash and vocabulary must match
 * the tokenizer's. -1 + eid_error. */
int ds_open(const char *dir, Dataset *d);
void ds_close(Dataset *d);



/* A bounded training sample for a subword tokenizer: up to max_bytes of the inputs' UTF-8 text
 * (files in the same order as ds_prepare; binary / non-UTF-8 files skipped) written to `path`.
 * 0, or -1 + eid_error. */
int ds_write_sample(const char *const *inputs, int n_inputs, const char *path, size_t max_bytes);
#endif
