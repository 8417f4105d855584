/* tok_spm.c — SentencePiece. PLACEHOLDER until the implementation lands (this session's tokenizer
 * work replaces this file with tok_spm.cc over libsentencepiece). */
#include "text/tok_impl.h"
#include "core/common.h"
Tokenizer *tok_spm_load(const char *path) {
    eid_error("%s: SentencePiece support is not built yet", path);
    return NULL;
}
Tokenizer *tok_spm_train(const char *sample, int vocab, const char *dir) {
    eid_error("%s: SentencePiece training is not built yet", sample);
    return NULL;
}
