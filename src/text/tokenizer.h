/* tokenizer.h — text ↔ token ids, one interface over three kinds (docs/lm.md "Tokenizers"):
 *   byte    256 byte tokens (id = byte value) + special tokens from 256 on; no files needed;
 *   spm     a SentencePiece model (tokenizer.model), trained by `eidetic prepare --tokenizer spm`;
 *   hf-bpe  a Hugging Face tokenizer.json with a byte-level BPE model (GPT-2 / GPT-NeoX style, the
 *           tokenizer of the published Mamba checkpoints).
 *
 * Where a tokenizer lives. A checkpoint directory and a prepared dataset directory carry the
 * tokenizer that made their ids, so text in and text out always use the model's own tokenizer:
 *   eidetic_tokenizer.json   {"type": "byte"|"spm"|"hf-bpe", "file": "...", "specials": [...]}
 *                            written by tok_save_dir; the file it names sits beside it;
 *   tokenizer.json           (no descriptor: a Hugging Face checkpoint as downloaded) → hf-bpe;
 *   tokenizer.model          (no descriptor) → spm.
 * A directory with none of these has no tokenizer (synthetic-task checkpoints: token ids only).
 *
 * Identity. tok_hash is a 64-bit FNV-1a over the kind and the bytes that define the vocabulary and
 * the rules (the model file, or the byte tokenizer's specials): two tokenizers with the same hash
 * map text to the same ids. A dataset records it; training refuses a checkpoint whose tokenizer
 * hash differs from the dataset's.
 *
 * Errors: NULL / -1 with eid_error naming the file and what was expected. */
#ifndef EIDETIC_TOKENIZER_H
#define EIDETIC_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" { /* src/text/tok_spm.cc is C++ */
#endif

typedef struct Tokenizer Tokenizer;

#define TOK_BYTE_EOS_NAME "<|endoftext|>"

/* The byte tokenizer: ids 0..255 are bytes, 256 is <|endoftext|> (end of a document); vocab 257. */
Tokenizer *tok_new_byte(void);
/* A tokenizer file: a path ending in .json (Hugging Face tokenizer.json) or .model (SentencePiece). */
Tokenizer *tok_load_file(const char *path);
/* The tokenizer stored in dir (see above). Returns NULL with *found = 0 and no error when dir holds
 * none; NULL with *found = 1 and eid_error when one is there but cannot be read. */
Tokenizer *tok_load_dir(const char *dir, int *found);
/* Trains a SentencePiece model (unigram by default; byte fallback on, so every UTF-8 text encodes)
 * of `vocab` pieces on the UTF-8 text file `sample` (one sentence or paragraph per line), writing
 * dir/tokenizer.model and the descriptor; deterministic for the same sample. */
Tokenizer *tok_spm_train(const char *sample, int vocab, const char *dir);
/* Writes eidetic_tokenizer.json and the tokenizer's own file into dir, atomically. */
int tok_save_dir(const Tokenizer *t, const char *dir);
void tok_free(Tokenizer *t);

const char *tok_kind(const Tokenizer *t); /* "byte" | "spm" | "hf-bpe" */
int tok_vocab_size(const Tokenizer *t);   /* every id is in [0, vocab) */
int tok_eos_id(const Tokenizer *t);       /* end of text / document separator; -1: none */
int tok_bos_id(const Tokenizer *t);       /* -1: none */
uint64_t tok_hash(const Tokenizer *t);
void tok_hash_hex(const Tokenizer *t, char out[17]);

/* Encode n bytes of UTF-8 text (no special-token parsing: "<|endoftext|>" in the text is plain
 * text), appending the ids to *ids (grown with eid_xrealloc; *cap its capacity, *len its length).
 * 0, or -1 + eid_error. */
int tok_encode(const Tokenizer *t, const char *text, size_t n, int **ids, size_t *cap, size_t *len);
/* The bytes of token `id` (special tokens: their name, e.g. "<|endoftext|>"); at_start = 1 for
 * the first token of a text (SentencePiece drops the space it prefixed to the text). Returns the
 * number of bytes written to buf, or -1 + eid_error (id out of range, buf too small). TOK_MAX_PIECE
 * bytes are always enough: every loader refuses a longer token (GPT-2 has 128-byte tokens). */
#define TOK_MAX_PIECE 256
int tok_piece(const Tokenizer *t, int id, int at_start, char *buf, int cap);
/* A whole decode: malloc'd, NUL-terminated (may contain invalid UTF-8 if the ids do). */
char *tok_decode(const Tokenizer *t, const int *ids, size_t n, size_t *len);
int tok_is_special(const Tokenizer *t, int id);

/* Streaming text out: pieces in, complete UTF-8 characters out (a character split across tokens
 * is held back until its last byte arrives; invalid bytes are passed through at flush). */
typedef struct {
    char pending[8];
    int npending;
    int started;
} TokStream;
/* Appends the text of `id` to out (cap bytes, ≥ TOK_MAX_PIECE + 8); returns bytes written or -1. */
int tok_stream_push(const Tokenizer *t, TokStream *s, int id, char *out, int cap);
int tok_stream_flush(TokStream *s, char *out, int cap);

/* Length of the longest prefix of s[0..n) that ends on a UTF-8 character boundary (an incomplete
 * trailing sequence is excluded; invalid bytes count as complete). */
size_t utf8_complete_prefix(const char *s, size_t n);
/* 1 iff s[0..n) is valid UTF-8 (no overlongs, no surrogates, ≤ U+10FFFF). */
int utf8_valid(const char *s, size_t n);

#ifdef __cplusplus
}
#endif
#endif
