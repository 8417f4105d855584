/* cmd_eval.c — `eidetic eval --ckpt DIR`: test accuracy of a checkpoint on a task. The task
 * defaults to the one the checkpoint was trained on (from its training state), flags override. */
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "core/runtime.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "train/trainer.h"

typedef struct {
    char ckpt[512];
    TaskCfg task;
    int examples, batch, threads;
    uint64_t seed;
} EvalCfg;

#define O(n, t, f, h) {n, t, offsetof(EvalCfg, f), sizeof(((EvalCfg *)0)->f), h}
static const OptDesc eval_opts[] = {
    O("ckpt", OPT_STR, ckpt, "checkpoint directory (config.json + model.safetensors)"),
    O("task", OPT_STR, task.name, "task (default: the checkpoint's training task)"),
    O("seq-len", OPT_INT, task.seq_len, "sequence length"),
    O("kv-pairs", OPT_INT, task.kv_pairs, "MQAR key-value pairs"),
    O("power-a", OPT_DBL, task.power_a, "MQAR query-gap power law"),
    O("num-passes", OPT_INT, task.num_passes, "MQAR context repetitions"),
    O("random-non-queries", OPT_FLAG, task.random_non_queries, "MQAR: random filler tokens"),
    O("examples", OPT_INT, examples, "test examples (default 1000)"),
    O("batch", OPT_INT, batch, "evaluation batch size (default 64)"),
    O("seed", OPT_U64, seed, "data seed (default: the checkpoint's; test stream is disjoint from training)"),
    O("threads", OPT_INT, threads, "threads (0 = all cores)"),
};
#undef O
#define N_EVAL_OPTS (int)(sizeof eval_opts / sizeof eval_opts[0])

int cmd_eval(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        printf("usage: eidetic eval --ckpt DIR [options]\n\nPrints 'accuracy: X' (mean over examples of the fraction of "
               "correct answer positions).\n\noptions:\n");
        opts_help(eval_opts, N_EVAL_OPTS, stdout);
        return 0;
    }
    EvalCfg e = {.examples = 1000, .batch = 64, .seed = 1};
    /* first pass: find --ckpt, then defaults from its training state, then all flags */
    if (opts_parse(eval_opts, N_EVAL_OPTS, &e, argc - 2, argv + 2, "eval") != 0) return cli_fail("eval");
    if (!e.ckpt[0]) return fprintf(stderr, "eidetic eval: error: --ckpt DIR is required\n"), 1;
    EvalCfg flags = e;
    char path[1024];
    snprintf(path, sizeof path, "%s/training_state.safetensors", e.ckpt);
    StFile f;
    TrainCfg tc;
    memset(&tc, 0, sizeof tc);
    if (access(path, R_OK) == 0) {
        if (st_open(&f, path) != 0) return cli_fail("eval");
        const char *js = st_meta(&f, "train_config");
        if (js && train_cfg_apply_json(&tc, js, path) == 0) {
            e.task = tc.task;
            e.seed = tc.seed;
        }
        st_close(&f);
    }
    if (opts_parse(eval_opts, N_EVAL_OPTS, &e, argc - 2, argv + 2, "eval") != 0) return cli_fail("eval");
    (void)flags;
    eid_runtime_init(argv, e.threads, 1);
    Model *m = ckpt_load_model(e.ckpt, NULL);
    if (!m) return cli_fail("eval");
    e.task.vocab_size = m->cfg.vocab_size;
    if (!e.task.seq_len || !e.task.kv_pairs) {
        model_free(m);
        fprintf(stderr, "eidetic eval: error: no stored task in %s: give --seq-len and --kv-pairs\n", e.ckpt);
        return 1;
    }
    if (task_resolve(&e.task) != 0 || e.examples < 1 || e.batch < 1) {
        model_free(m);
        if (e.examples < 1 || e.batch < 1) eid_error("--examples and --batch must be >= 1");
        return cli_fail("eval");
    }
    EvalResult r;
    double t0 = eid_now();
    if (evaluate(m, &e.task, e.seed, e.examples, e.batch, &r) != 0) return model_free(m), cli_fail("eval");
    fprintf(stderr, "eidetic: %s on %s L=%d K=%d: %ld examples, loss %.4f, %.1fs\n", e.ckpt, e.task.name,
            e.task.seq_len, e.task.kv_pairs, r.examples, r.loss, eid_now() - t0);
    printf("accuracy: %.4f\n", r.accuracy);
    model_free(m);
    return 0;
}
