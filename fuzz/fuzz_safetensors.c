/* fuzz_safetensors.c — libFuzzer harness for the safetensors reader (docs/reliability.md "Fuzzing"):
 * the bytes are a whole file; st_open_bytes runs the same header and data-offset validation as
 * st_open, then every tensor the header admits is looked up and float tensors are read, as a
 * checkpoint load would. Anything ASan/UBSan reports, or an abort, is a bug. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "io/safetensors.h"
#include "io/strict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    StFile f;
    if (st_open_bytes(&f, "fuzz.safetensors", data, size) != 0) return 0;
    const char *s = st_meta(&f, "eidetic_step");
    long step;
    if (s) (void)strict_long(s, 0, 1L << 62, &step, "eidetic_step");
    for (int i = 0; i < st_tensor_count(&f); i++) {
        StTensor t;
        const char *name = st_tensor_name(&f, i);
        if (!name || st_find(&f, name, &t) != 0) abort(); /* every counted tensor must be findable */
        int shape[8], ok = t.ndim <= 8;
        size_t n = 1;
        for (int d = 0; ok && d < t.ndim; d++) {
            ok = t.shape[d] >= 0 && t.shape[d] <= (1 << 20);
            shape[d] = (int)t.shape[d];
            n *= ok ? (size_t)t.shape[d] : 1;
        }
        if (!ok || n > (1u << 20)) continue;
        real *dst = malloc(sizeof(real) * (n ? n : 1));
        (void)st_read_real(&f, name, t.ndim, shape, dst);
        free(dst);
    }
    st_close(&f);
    return 0;
}
