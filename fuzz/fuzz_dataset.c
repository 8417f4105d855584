/* fuzz_dataset.c — libFuzzer harness for a token shard (data/dataset.h; docs/lm.md "Datasets"):
 * the bytes are a shard file; ds_split_parse must accept it or refuse it with an error, never read
 * out of bounds; what it accepts satisfies the invariants the corpus source relies on. */
#include <stdint.h>
#include <stdlib.h>
#include "data/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    DsSplit s;
    if (ds_split_parse(data, size, "fuzz.tok", &s) != 0) return 0;
    if (s.offsets[0] != 0 || s.offsets[s.n_docs] != s.n_tokens) abort();
    for (uint64_t d = 0; d < s.n_docs; d++)
        if (s.offsets[d + 1] < s.offsets[d]) abort();
    for (uint64_t i = 0; i < s.n_tokens; i++)
        if (s.tokens[i] < 0 || (uint32_t)s.tokens[i] >= s.vocab) abort();
    ds_split_free(&s);
    return 0;
}
