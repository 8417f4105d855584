/* fuzz_cli.c — libFuzzer harness for command-line input (docs/reliability.md "Fuzzing"). The bytes
 * are split at newlines into arguments; they go through the real parsers: the train option table
 * (opts_parse: numbers, flags, --mix/--slices/--depth comma lists via task_resolve in
 * train_cfg_resolve), token lists (parse_token_list), --lengths lists (strict_int_list), and the
 * whole input as an options file (train_cfg_apply_json). A configuration that resolves and is small
 * generates one training example of its task. Nothing here exits; errors are return codes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "io/strict.h"
#include "tasks/task.h"
#include "train/train_cfg.h"

#define MAX_ARGS 32

static void try_task(TrainCfg *c) {
    if (train_cfg_resolve(c) != 0) return;
    /* a language model on --data: the task gave only its row length and was not resolved, so its
     * generator is never run (an unchecked vocab 5 MQAR would draw distinct keys forever) */
    if (c->data[0] && !c->finetune_steps) return;
    const TaskCfg *t = &c->task;
    if (t->seq_len > 4096 || t->vocab_size > 65536) return;
    int *in = malloc(sizeof(int) * (size_t)t->seq_len), *lab = malloc(sizeof(int) * (size_t)t->seq_len);
    task_example(t, c->seed, 0, 3, in, lab);
    for (int p = 0; p < t->seq_len; p++) /* the generator's contract: tokens inside the vocabulary */
        if (in[p] < 0 || in[p] >= t->vocab_size || (lab[p] != -100 && (lab[p] < 0 || lab[p] >= t->vocab_size))) abort();
    free(in), free(lab);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *buf = malloc(size + 1), *argv[MAX_ARGS];
    memcpy(buf, data, size);
    buf[size] = 0;
    int argc = 0;
    for (char *p = buf; argc < MAX_ARGS;) {
        argv[argc++] = p;
        char *q = strchr(p, '\n');
        if (!q) break;
        *q = 0;
        p = q + 1;
    }
    int *v, n;
    for (int i = 0; i < argc; i++) {
        if (parse_token_list(argv[i], &v, &n, "--tokens") == 0) free(v);
        if (strict_int_list(argv[i], 2, 1 << 24, 64, &v, &n, "--lengths") == 0) free(v);
    }
    TrainCfg *c = malloc(sizeof *c);
    if (preset_apply(c, "tiny") == 0) {
        c->eval_examples = 1;
        for (int i = 0; i + 1 < argc; i++)
            if (!strcmp(argv[i], "--preset") && preset_apply(c, argv[i + 1]) != 0) goto opts_file;
        if (opts_parse(train_opts, n_train_opts, c, argc, argv, "train") == 0) {
            /* opts_given walks the same argv (eval's refusals of task options): the first argument,
             * accepted by opts_parse, always names an option that is given */
            char first[128];
            size_t len = strcspn(argv[0], "=") - 2;
            if (len < sizeof first) {
                memcpy(first, argv[0] + 2, len), first[len] = 0;
                if (!opts_given(train_opts, n_train_opts, argc, argv, first)) abort();
            }
            (void)opts_given(train_opts, n_train_opts, argc, argv, "seq-len");
            try_task(c);
        }
    }
opts_file:
    /* the original bytes as an options file (JSON) */
    memcpy(buf, data, size);
    buf[size] = 0;
    if (preset_apply(c, "tiny") == 0 && train_cfg_apply_json(c, buf, "opts.json") == 0) try_task(c);
    free(c);
    free(buf);
    return 0;
}
