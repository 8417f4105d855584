/* fuzz_train_state.c — libFuzzer harness for the training-state reader (docs/reliability.md
 * "Fuzzing", "Crash-safe training"): the bytes are a whole training_state.safetensors, read by
 * train_state_load — the function `train --resume` uses — for a fixed small model (one Longhorn
 * layer, vocabulary 11, width 8; the seeds in fuzz/seeds/fuzz_train_state/ are states of this
 * model). The input reaches the reader as a file (a memfd), exactly as on disk. A loaded state
 * must hold only finite moments and non-negative second moments; anything ASan/UBSan reports, an
 * abort, or an accepted state that breaks those rules is a bug. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "io/checkpoint.h"
#include "train/train_state.h"

static Model *model(void) {
    static Model *m;
    if (!m) {
        ModelCfg cfg;
        if (config_from_json("{\"vocab_size\": 11, \"d_model\": 8, \"layers\": [{\"mixer\": \"longhorn\"}]}", "fuzz",
                             &cfg) != 0 || !(m = model_new(&cfg)))
            fprintf(stderr, "fuzz_train_state: %s\n", eid_last_error()), abort();
    }
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("training_state.safetensors", 0);
        if (fd < 0) perror("memfd_create"), abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) perror("memfd"), abort();
    Model *m = model();
    AdamW o;
    TrainState s;
    if (train_state_load(path, m, &o, &s) != 0) return 0;
    if (s.step < 0 || s.adam_t < 0 || o.t != s.adam_t) abort();
    for (int i = 0; i < m->nparam; i++)
        for (size_t k = 0; k < m->param[i].numel; k++) {
            double a = o.m[m->param[i].offset + k], b = o.v[m->param[i].offset + k];
            if (!isfinite(a) || !isfinite(b) || b < 0) abort(); /* the reader must have refused this */
        }
    adamw_free(&o);
    return 0;
}
