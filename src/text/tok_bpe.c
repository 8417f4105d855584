/* tok_bpe.c — Hugging Face tokenizer.json byte-level BPE. PLACEHOLDER until the implementation
 * lands (this session's tokenizer work replaces this file). */
#include "text/tok_impl.h"
#include "core/common.h"
Tokenizer *tok_bpe_load(const char *path) {
    eid_error("%s: Hugging Face tokenizer.json support is not built yet", path);
    return NULL;
}
