/* cmd_train.c — `eidetic train`: presets, config files, flags; resolved config printed first. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "core/runtime.h"
#include "io/checkpoint.h"
#include "io/files.h"
#include "io/gemm_plan_file.h"
#include "io/safetensors.h"
#include "tasks/task.h"
#include "train/rundir.h"
#include "train/trainer.h"
#include "train/dist.h"
#include "text/tokenizer.h"
#include "cli/lm_tiny.h"

static void train_help(void) {
    printf("usage: eidetic train [--preset NAME] [--config FILE] [options]\n\n"
           "Trains a model; with no options runs the 'default' preset (Longhorn on MQAR). Precedence:\n"
           "preset < config file < flags. Writes DIR/config.json, DIR/model.safetensors,\n"
           "DIR/training_state.safetensors and DIR/metrics.jsonl (one JSON object per step), and\n"
           "ends with a line 'accuracy: X' (test accuracy). --resume DIR continues a run exactly.\n"
           "Checkpoints are crash-safe: DIR/checkpoints/step-N, DIR/current and links to it (docs/reliability.md);\n"
           "SIGINT/SIGTERM finish the step, write a checkpoint and exit 130/143.\n\noptions:\n");
    opts_help(train_opts, n_train_opts, stdout);
    printf("\npresets:\n%s", preset_list());
    printf("\ntasks:\n%s", task_help());
}

/* the value of a flag in argv, or NULL */
static const char *flag_value(int argc, char **argv, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], name, n) != 0) continue;
        if (argv[i][n] == '=') return argv[i] + n + 1;
        if (argv[i][n] == 0 && i + 1 < argc) return argv[i + 1];
    }
    return NULL;
}

/* The stored options of a run directory (from its training state). */
static int load_run_config(TrainCfg *c, const char *dir) {
    char loc[1024], path[1100];
    if (rundir_locate(dir, loc, sizeof loc) != 0) return -1;
    snprintf(path, sizeof path, "%s/training_state.safetensors", loc);
    StFile f;
    if (st_open(&f, path) != 0) return -1;
    const char *js = st_meta(&f, "train_config");
    int rc = js ? train_cfg_apply_json(c, js, path)
                : (eid_error("%s: no stored training config: not an eidetic run directory", path), -1);
    st_close(&f);
    return rc;
}

/* --data without --vocab: the tokenizer's vocabulary rounded up to a multiple of 64; with --vocab:
 * at least the tokenizer's. */
static int data_vocab(TrainCfg *c, int given) {
    int found = 0;
    Tokenizer *t = tok_load_dir(c->data, &found);
    if (!t) return found ? -1 : (eid_error("--data %s: no tokenizer there (eidetic_tokenizer.json): not a dataset made by eidetic prepare", c->data), -1);
    int v = tok_vocab_size(t);
    tok_free(t);
    if (!given) c->vocab_size = (v + 63) / 64 * 64;
    else if (c->vocab_size < v)
        return eid_error("--vocab %d: smaller than the vocabulary of the dataset's tokenizer (%d tokens, %s)", c->vocab_size, v, c->data), -1;
    return 0;
}

/* --init DIR: the architecture is the checkpoint's (config.json or a Hugging Face config); a flag
 * that would set another is an error, never silently ignored. */
static int init_model(TrainCfg *c, int ac, char **av) {
    static const char *const arch[] = {"--layers", "--d-model", "--d-ff", "--d-state", "--expand", "--num-heads",
                                       "--num-kv-heads", "--headdim", "--window", "--learned-pos", "--bidir",
                                       "--no-rope", "--chunk", "--d-conv"};
    for (int i = 0; i < ac; i++)
        for (size_t k = 0; k < sizeof arch / sizeof *arch; k++) {
            size_t n = strlen(arch[k]);
            if (!strncmp(av[i], arch[k], n) && (av[i][n] == 0 || av[i][n] == '='))
                return eid_error("%s: the architecture comes from --init %s; drop the flag", arch[k], c->init), -1;
        }
    if (c->model_from_file) return eid_error("--init %s: the architecture comes from the checkpoint; drop the \"model\" section of --config", c->init), -1;
    char dir[1024];
    if (rundir_locate(c->init, dir, sizeof dir) != 0) return -1;
    Model *m = ckpt_load_model(dir, NULL);
    if (!m) return -1;
    c->model = m->cfg;
    model_free(m);
    if (flag_value(ac, av, "--vocab") && c->vocab_size != c->model.vocab_size)
        return eid_error("--vocab %d differs from --init %s's vocab_size %d", c->vocab_size, c->init, c->model.vocab_size), -1;
    c->vocab_size = c->model.vocab_size, c->model_from_file = 1;
    return 0;
}

/* --gemm-plan (core/gemm_plan.h). A resumed run replays the plan saved in its checkpoint (it holds
 * every shape the run had measured, and the entries of a plan file it started from), so that its
 * products use the same libraries as before the interruption. */
static int set_gemm_plan(const TrainCfg *c, const char *resume, int verbose) {
    char dir[1024], path[1100];
    if (resume && c->gemm_plan[0] && strcmp(c->gemm_plan, "fixed") != 0) {
        if (rundir_locate(resume, dir, sizeof dir) != 0) return -1;
        snprintf(path, sizeof path, "%s/gemm_plan.json", dir);
        if (eid_file_exists(path)) return gemm_plan_apply_spec(path, verbose, "--resume: the checkpoint's gemm plan");
    }
    return gemm_plan_apply_spec(c->gemm_plan, verbose, "--gemm-plan");
}

int cmd_train(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return train_help(), 0;
    int ac = argc - 2;
    char **av = argv + 2;
    TrainCfg c;
    const char *preset = flag_value(ac, av, "--preset"), *resume = flag_value(ac, av, "--resume");
    if (preset_apply(&c, preset ? preset : "default") != 0) return cli_fail("train");
    if (resume) {
        if (load_run_config(&c, resume) != 0) return cli_fail("train");
        snprintf(c.out, sizeof c.out, "%s", resume); /* a resumed run writes where it was */
    } else {
        const char *cfg = flag_value(ac, av, "--config");
        if (cfg && train_cfg_load_file(&c, cfg, preset != NULL) != 0) return cli_fail("train");
    }
    if (opts_parse(train_opts, n_train_opts, &c, ac, av, "train") != 0) return cli_fail("train");
    if (c.init[0] && !resume && init_model(&c, ac, av) != 0) return cli_fail("train");
    /* the presets that train on the embedded corpus (docs/lm.md, docs/birdie.md) */
    int embedded = !strcmp(c.preset, "lm-tiny") || !strcmp(c.preset, "birdie-tiny");
    if (embedded && !c.data[0] && !resume && lm_tiny_corpus(c.data, sizeof c.data) != 0)
        return cli_fail("train");
    if (c.data[0] && !resume && !c.model_from_file && data_vocab(&c, flag_value(ac, av, "--vocab") != NULL) != 0)
        return cli_fail("train");
    if (resume && strcmp(c.out, resume) != 0)
        return fprintf(stderr, "eidetic train: error: --resume %s writes into its own directory; drop --out\n", resume), 1;
    /* under mpirun/srun (the MPI build): one rank of a multi-process run (docs/distributed.md) */
    if (dist_init(c.dist_timeout) != 0) return cli_fail("train");
    int lead = dist_rank() == 0;
    if (!lead) c.quiet = 1;
    eid_runtime_setup(c.threads, !c.quiet);
    if (train_cfg_resolve(&c) != 0 || cli_set_precision(c.precision, !c.quiet) != 0) return cli_fail("train");
    if (set_gemm_plan(&c, resume, !c.quiet) != 0) return cli_fail("train");
    if (!c.quiet) train_cfg_print(&c, stderr);
    EvalResult r;
    rundir_signals_install(); /* SIGINT/SIGTERM: finish the step, checkpoint, exit 128 + SIG */
    int rc = train_run(&c, &r);
    if (rc < 0 && dist_world() > 1) {
        /* one rank's error ends the job (the others may wait in a collective); rank 0's message,
         * with the run directory's state, comes first */
        if (lead) cli_fail("train");
        else fprintf(stderr, "eidetic train: error: rank %d of %d: %s\n", dist_rank(), dist_world(), eid_last_error()),
             usleep(300000);
        dist_abort(1);
    }
    dist_finalize();
    if (rc > 0) return rc;
    if (rc != 0) return cli_fail("train");
    if (!lead) return 0;
    if (r.lm) {
        printf("val_loss: %.4f\nperplexity: %.4f\nbits_per_byte: %.4f\n", r.loss, r.ppl, r.bpb);
        if (!strcmp(c.preset, "lm-tiny")) lm_sample(c.out);
    } else printf("accuracy: %.4f\n", r.accuracy);
    return 0;
}
