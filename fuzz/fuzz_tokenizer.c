/* fuzz_tokenizer.c — libFuzzer harness for Hugging Face tokenizer.json (docs/reliability.md "Fuzzing",
 * docs/lm.md "Tokenizers"): the bytes are the file; what loads encodes a fixed text mixing scripts,
 * emoji, combining marks, whitespace runs and an invalid byte, then decodes it whole and streams it
 * back, so the BPE merge loop, pre-tokeniser, NFC and added-token paths all run on fuzzed tables.
 * Every text a loaded tokenizer encodes must decode back to that text, unless NFC or add_prefix_space
 * may change it legitimately (tok_bpe_lossless): those files only have to not crash. SentencePiece models are not fuzzed here: their
 * parser is libsentencepiece's own (protobuf), not eidetic's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "text/tok_impl.h"

static const char text[] = "Hello world, it's 42!  \t\n\n caf\xc3\xa9 e\xcc\x81 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
                           "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb <|endoftext|> aaaaaaaaaaaaaaaaaaaa \xff end   ";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    char *file = malloc(size + 1);
    memcpy(file, data, size);
    file[size] = 0;
    Tokenizer *t = tok_bpe_from_bytes("tokenizer.json", file, size);
    if (!t) return 0;
    int *ids = NULL;
    size_t cap = 0, len = 0, n = sizeof text - 1;
    if (tok_encode(t, text, n, &ids, &cap, &len) == 0) {
        for (size_t i = 0; i < len; i++)
            if (ids[i] < 0 || ids[i] >= tok_vocab_size(t)) __builtin_trap();
        size_t m;
        char *back = tok_decode(t, ids, len, &m);
        if (!back) __builtin_trap();
        if (tok_bpe_lossless(t) && (m != n || memcmp(back, text, n))) __builtin_trap();
        free(back);
        TokStream s = {0};
        char out[TOK_MAX_PIECE + 8];
        for (size_t i = 0; i < len; i++)
            if (tok_stream_push(t, &s, ids[i], out, sizeof out) < 0) __builtin_trap();
        tok_stream_flush(&s, out, sizeof out);
    }
    free(ids);
    tok_free(t);
    return 0;
}
