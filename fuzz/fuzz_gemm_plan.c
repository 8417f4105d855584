/* fuzz_gemm_plan.c — libFuzzer harness for the gemm plan file (io/gemm_plan_file.h, docs/performance.md
 * "Choosing the library per shape"): the bytes are the file's text, read strictly into an empty plan
 * table. An accepted plan must hold only well-formed entries (shapes ≥ 1, flags 0/1, a known library, no
 * bf16 library in an fp32 entry, no shape twice), and writing it and reading it back must give the same
 * table; a refused one must leave the table empty. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/gemm_plan.h"
#include "core/runtime.h"
#include "io/gemm_plan_file.h"

static void well_formed(void) {
    int n = eid_gemm_plan_count();
    for (int i = 0; i < n; i++) {
        EidGemmChoice c;
        if (eid_gemm_plan_get(i, &c) != 0) abort();
        const EidGemmShape *s = &c.shape;
        if (s->M < 1 || s->N < 1 || s->K < 1 || s->team < 1 || (s->ta | s->tb | s->mirror) & ~1) abort();
        if (c.use < 0 || c.use >= EID_GEMM_N_BACKENDS) abort();
        if (c.use == EID_GEMM_ONEDNN_BF16 && s->prec != EID_PREC_BF16) abort();
        for (int j = 0; j < i; j++) {
            EidGemmChoice d;
            eid_gemm_plan_get(j, &d);
            if (!memcmp(&d.shape, s, sizeof *s)) abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 20) return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    eid_gemm_plan_clear();
    int rc = gemm_plan_from_json(text, "gemm_plan.json");
    free(text);
    if (rc != 0) {
        if (eid_gemm_plan_count() != 0) abort(); /* a refused file adds nothing */
        return 0;
    }
    well_formed();
    int n = eid_gemm_plan_count();
    char *out = gemm_plan_to_json();
    eid_gemm_plan_clear();
    if (gemm_plan_from_json(out, "rewritten") != 0 || eid_gemm_plan_count() != n) abort();
    free(out);
    eid_gemm_plan_clear();
    return 0;
}
