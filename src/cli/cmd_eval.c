/* cmd_eval.c — `eidetic eval --ckpt DIR`: test accuracy of a checkpoint on a task with the task's
 * scorer. The task defaults to the one the checkpoint was trained on (from its training state);
 * flags override. --lengths evaluates the same task at other lengths (docs/tasks.md §10). --data
 * evaluates a dataset's validation split instead (docs/lm.md), and is the default for a checkpoint
 * trained as a language model on one (train --data without a fine-tuning task). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "core/runtime.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/strict.h"
#include "tasks/task_eval.h"
#include "train/trainer.h"
#include "train/rundir.h"
#include "data/corpus.h"
#include "text/tokenizer.h"

typedef struct {
    char ckpt[512];
    TaskCfg task;
    int examples, batch, threads, lenient;
    char precision[8];
    char gemm_plan[512];
    uint64_t seed;
    char lengths[512], out[512];
    char data[512];
    char stored_data[512]; /* the dataset a language-model checkpoint was trained on (not an option) */
} EvalCfg;

#define O(n, t, f, h) {n, t, offsetof(EvalCfg, f), sizeof(((EvalCfg *)0)->f), h}
static const OptDesc eval_opts[] = {
    O("ckpt", OPT_STR, ckpt, "checkpoint directory (config.json + model.safetensors)"),
    O("lenient", OPT_FLAG, lenient, "admit extra string metadata keys in config.json (docs/reliability.md)"),
    TASK_OPTIONS(O),
    O("examples", OPT_INT, examples, "test examples (default 1000; mqar-mix: per test slice)"),
    O("batch", OPT_INT, batch, "evaluation batch size (default 64)"),
    O("seed", OPT_U64, seed, "data seed (default: the checkpoint's; test stream is disjoint from training)"),
    O("data", OPT_STR, data, "a dataset directory (eidetic prepare): print loss, perplexity and bits_per_byte on its validation split (rows of --seq-len)"),
    O("lengths", OPT_STR, lengths, "comma list of lengths L: evaluate the task at each (§10; size parameter scaled with L)"),
    O("out", OPT_STR, out, "write the results as JSON to this file"),
    O("threads", OPT_INT, threads, "threads (0 = all cores)"),
    O("precision", OPT_STR, precision, "matrix-product precision: fp32 (default, the reference), bf16 (oneDNN, fp32 accumulation; fp32 on CPUs without native bf16) or auto (bf16 for decoding where the CPU has native bf16, fp32 for the rest)"),
    O("gemm-plan", OPT_STR, gemm_plan, CLI_GEMM_PLAN_HELP),
};
#undef O
#define N_EVAL_OPTS (int)(sizeof eval_opts / sizeof eval_opts[0])

static void eval_help(void) {
    printf("usage: eidetic eval --ckpt DIR [options]\n\n"
           "Prints 'accuracy: X': the task's metric on its test stream (disjoint from training), from one\n"
           "teacher-forced pass unless stated. Metrics: mean over examples of the fraction of correct answer\n"
           "positions (default); copy/n-grams: exact match of the whole answer span (teacher-forced exact\n"
           "match equals greedy exact match); phonebook: digit accuracy by greedy decoding from <gen>\n"
           "(docs/tasks.md §3.2); passkey/niah: exact match of the digits (teacher-forced digit accuracy is\n"
           "logged); MAD tasks: class-macro-averaged accuracy (micro logged); mqar-mix: one line per test\n"
           "slice, then the mean over all test examples. With --lengths L1,L2,... one line\n"
           "'L=N accuracy: X' per length (MQAR K, copy string lengths, phone-book entries scale with L).\n"
           "With --data DIR, or by default for a checkpoint trained on --data with no fine-tuning task:\n"
           "'loss:', 'perplexity:' and 'bits_per_byte:' of the dataset's whole validation split (docs/lm.md).\n\n"
           "tasks:\n%s\noptions:\n", task_help());
    opts_help(eval_opts, N_EVAL_OPTS, stdout);
}

/* stored task and seed of a run directory, if it has a training state */
static int load_stored(EvalCfg *e) {
    char path[1024];
    snprintf(path, sizeof path, "%s/training_state.safetensors", e->ckpt);
    if (access(path, R_OK) != 0) return 0;
    StFile f;
    if (st_open(&f, path) != 0) return -1;
    const char *js = st_meta(&f, "train_config");
    TrainCfg *tc = eid_xcalloc(1, sizeof *tc);
    if (js && train_cfg_apply_json(tc, js, path) == 0) {
        e->task = tc->task, e->seed = tc->seed;
        /* trained on text with no task after it: the stored task only gave the row length */
        if (tc->data[0] && !tc->finetune_steps) snprintf(e->stored_data, sizeof e->stored_data, "%s", tc->data);
    }
    free(tc);
    st_close(&f);
    return 0;
}

static int parse_lengths(const char *s, int **L) {
    int n;
    return strict_int_list(s, 2, 1 << 24, 64, L, &n, "--lengths") == 0 ? n : -1;
}

static cJSON *result_json(const TaskCfg *t, const TaskEval *r) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "length", t->seq_len);
    if (!strcmp(t->name, "mqar")) cJSON_AddNumberToObject(j, "kv_pairs", t->kv_pairs);
    cJSON_AddNumberToObject(j, "accuracy", r->accuracy);
    cJSON_AddNumberToObject(j, "loss", r->loss);
    cJSON_AddNumberToObject(j, "token_accuracy", r->token_acc);
    cJSON_AddNumberToObject(j, "exact_match", r->exact);
    cJSON_AddNumberToObject(j, "macro_accuracy", r->macro);
    if (r->digit_tf >= 0) cJSON_AddNumberToObject(j, "digit_accuracy_teacher_forced", r->digit_tf);
    cJSON_AddNumberToObject(j, "examples", (double)r->examples);
    if (r->n_slices) {
        cJSON *s = cJSON_AddArrayToObject(j, "slices");
        for (int i = 0; i < r->n_slices; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "length", t->slice_L[i]);
            cJSON_AddNumberToObject(o, "kv_pairs", t->slice_K[i]);
            cJSON_AddNumberToObject(o, "accuracy", r->slice_acc[i]);
            cJSON_AddItemToArray(s, o);
        }
    }
    return j;
}

static int write_json(const char *path, cJSON *j) {
    char *s = cJSON_Print(j);
    FILE *f = fopen(path, "w");
    int ok = f && fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0) ok = 0;
    free(s);
    if (!ok) return eid_error("--out %s: cannot write (%s)", path, strerror(errno)), -1;
    return 0;
}

static void log_result(const EvalCfg *e, const TaskCfg *t, const TaskEval *r, double secs) {
    fprintf(stderr, "eidetic: %s on %s L=%d: %ld examples, %s; loss %.4f, token accuracy %.4f, exact %.4f, "
            "macro %.4f", e->ckpt, t->name, t->seq_len, r->examples, task_score_name(t), r->loss, r->token_acc,
            r->exact, r->macro);
    if (r->digit_tf >= 0) fprintf(stderr, ", digit accuracy (teacher-forced) %.4f", r->digit_tf);
    fprintf(stderr, ", %.1fs\n", secs);
}

/* evaluate at each length; one stdout line per length */
static int run_lengths(const EvalCfg *e, Model *m, cJSON *js) {
    int *L, n = parse_lengths(e->lengths, &L), rc = 0;
    if (n < 0) return -1;
    cJSON *arr = cJSON_AddArrayToObject(js, "lengths");
    for (int i = 0; i < n; i++) {
        TaskCfg t;
        TaskEval r;
        double t0 = eid_now();
        if ((rc = task_at_length(&e->task, L[i], &t)) != 0) break;
        if ((rc = task_evaluate(m, &t, e->seed, e->examples, e->batch, &r)) != 0) break;
        log_result(e, &t, &r, eid_now() - t0);
        printf("L=%d accuracy: %.4f\n", L[i], r.accuracy);
        fflush(stdout);
        cJSON_AddItemToArray(arr, result_json(&t, &r));
    }
    free(L);
    return rc;
}

static int run_eval(EvalCfg *e, Model *m) {
    cJSON *js = cJSON_CreateObject();
    cJSON_AddStringToObject(js, "checkpoint", e->ckpt);
    cJSON_AddStringToObject(js, "task", e->task.name);
    cJSON_AddStringToObject(js, "metric", task_score_name(&e->task));
    int rc = 0;
    if (e->lengths[0]) rc = run_lengths(e, m, js);
    else {
        TaskEval r;
        double t0 = eid_now();
        if ((rc = task_evaluate(m, &e->task, e->seed, e->examples, e->batch, &r)) == 0) {
            log_result(e, &e->task, &r, eid_now() - t0);
            for (int s = 0; s < r.n_slices; s++)
                printf("slice L=%d K=%d accuracy: %.4f\n", e->task.slice_L[s], e->task.slice_K[s], r.slice_acc[s]);
            printf("accuracy: %.4f\n", r.accuracy);
            cJSON_AddItemToObject(js, "result", result_json(&e->task, &r));
        }
    }
    if (rc == 0 && e->out[0]) rc = write_json(e->out, js);
    cJSON_Delete(js);
    return rc;
}

/* With --data: the options that choose or size a task (all of the task's but --seq-len, and
 * --examples, --seed, --lengths) have nothing to act on: refused by name rather than ignored. */
static int refuse_task_options(const EvalCfg *e, int defaulted, int argc, char **argv) {
    size_t lo = offsetof(EvalCfg, task), hi = lo + sizeof(TaskCfg);
    for (int i = 0; i < N_EVAL_OPTS; i++) {
        const OptDesc *o = &eval_opts[i];
        int task_only = (o->offset >= lo && o->offset < hi && strcmp(o->name, "seq-len") != 0) ||
                        !strcmp(o->name, "examples") || !strcmp(o->name, "seed") || !strcmp(o->name, "lengths");
        if (!task_only || !opts_given(eval_opts, N_EVAL_OPTS, argc, argv, o->name)) continue;
        if (!strcmp(o->name, "task"))
            return eid_error("--task %s and --data %s: one or the other (a task's test stream, or a dataset's "
                             "validation split)", e->task.name, e->data), -1;
        if (defaulted)
            return eid_error("--%s applies to a task; %s was trained as a language model on %s and is evaluated on "
                             "its validation split by default: give --task NAME to evaluate a task", o->name, e->ckpt,
                             e->data), -1;
        return eid_error("--%s applies to a task, not to --data (the whole validation split of %s is evaluated, in "
                         "rows of --seq-len)", o->name, e->data), -1;
    }
    return 0;
}

/* --data: the validation split of a dataset, tokenised by the checkpoint's own tokenizer (docs/lm.md). */
static int eval_data(const EvalCfg *e, Model *m) {
    char dir[1024];
    int found = 0;
    if (rundir_locate(e->ckpt, dir, sizeof dir) != 0) return -1;
    Tokenizer *ck = tok_load_dir(dir, &found);
    if (!ck) return found ? -1 : (eid_error("%s: the checkpoint carries no tokenizer (trained on a task, not on text): cannot evaluate it on --data %s", dir, e->data), -1);
    Dataset ds;
    if (ds_open(e->data, &ds) != 0) return tok_free(ck), -1;
    int rc = 0;
    if (tok_hash(ck) != tok_hash(ds.tok)) {
        char a[17], b[17];
        tok_hash_hex(ck, a), tok_hash_hex(ds.tok, b);
        rc = -1, eid_error("--data %s: made by another tokenizer (hash %s) than the checkpoint %s's (hash %s)", e->data, b, dir, a);
    } else if (tok_vocab_size(ds.tok) > m->cfg.vocab_size)
        rc = -1, eid_error("--data %s: %d tokens, more than the model's vocabulary %d", e->data, tok_vocab_size(ds.tok), m->cfg.vocab_size);
    tok_free(ck);
    Corpus c;
    if (rc == 0) rc = corpus_init(&c, &ds, e->task.seq_len, e->data);
    ds_close(&ds);
    if (rc != 0) return -1;
    EvalResult r;
    double t0 = eid_now();
    rc = evaluate_corpus(m, &c, e->batch, &r);
    corpus_free(&c);
    if (rc != 0) return -1;
    fprintf(stderr, "eidetic: %s on %s (validation): %llu tokens, %llu bytes, rows of %d, %.1fs\n", e->ckpt, e->data,
            (unsigned long long)r.tokens, (unsigned long long)r.bytes, e->task.seq_len, eid_now() - t0);
    printf("loss: %.4f\nperplexity: %.4f\nbits_per_byte: %.4f\n", r.loss, r.ppl, r.bpb);
    if (!e->out[0]) return 0;
    cJSON *js = cJSON_CreateObject();
    cJSON_AddStringToObject(js, "checkpoint", e->ckpt);
    cJSON_AddStringToObject(js, "data", e->data);
    cJSON_AddNumberToObject(js, "seq_len", e->task.seq_len);
    cJSON_AddNumberToObject(js, "loss", r.loss);
    cJSON_AddNumberToObject(js, "perplexity", r.ppl);
    cJSON_AddNumberToObject(js, "bits_per_byte", r.bpb);
    cJSON_AddNumberToObject(js, "tokens", (double)r.tokens);
    cJSON_AddNumberToObject(js, "bytes", (double)r.bytes);
    rc = write_json(e->out, js);
    cJSON_Delete(js);
    return rc;
}

/* the tokenizer stored with a checkpoint, for --task NAME; NULL + eid_error when it has none */
static Tokenizer *ckpt_tokenizer(const char *ckpt, const char *task) {
    char dir[1024];
    int found = 0;
    if (rundir_locate(ckpt, dir, sizeof dir) != 0) return NULL;
    Tokenizer *t = tok_load_dir(dir, &found);
    if (!t && !found)
        eid_error("--task %s reads text through the model's own tokenizer, and %s carries none (a model trained on "
                  "token tasks)", task, dir);
    return t;
}

int cmd_eval(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return eval_help(), 0;
    EvalCfg e = {.examples = 1000, .batch = 64, .seed = 1}, flags;
    /* first pass: find --ckpt (and --task), then defaults from its training state, then all flags */
    if (opts_parse(eval_opts, N_EVAL_OPTS, &e, argc - 2, argv + 2, "eval") != 0) return cli_fail("eval");
    if (!e.ckpt[0]) return fprintf(stderr, "eidetic eval: error: --ckpt DIR is required\n"), 1;
    flags = e;
    for (char *p = flags.task.name; *p; p++)
        if (*p == '_') *p = '-';
    memset(&e.task, 0, sizeof e.task);
    if (load_stored(&e) != 0) return cli_fail("eval");
    if (flags.task.name[0] && strcmp(flags.task.name, e.task.name)) {
        /* another task than the trained one: start from its defaults, at the trained length */
        int L = e.task.seq_len;
        memset(&e.task, 0, sizeof e.task);
        e.task.seq_len = L;
    }
    if (opts_parse(eval_opts, N_EVAL_OPTS, &e, argc - 2, argv + 2, "eval") != 0) return cli_fail("eval");
    if (e.examples < 1 || e.batch < 1) return eid_error("--examples and --batch must be >= 1"), cli_fail("eval");
    int defaulted = !e.data[0] && !flags.task.name[0] && e.stored_data[0];
    if (defaulted) { /* a language model: its own dataset */
        if (access(e.stored_data, F_OK) != 0)
            return eid_error("%s was trained as a language model on %s, which is not there now (%s): give --data DIR "
                             "(a dataset made with the same tokenizer) or --task NAME", e.ckpt, e.stored_data,
                             strerror(errno)), cli_fail("eval");
        snprintf(e.data, sizeof e.data, "%s", e.stored_data);
        fprintf(stderr, "eidetic: %s was trained as a language model on %s: evaluating its validation split "
                "(--task NAME evaluates a task instead)\n", e.ckpt, e.data);
    }
    if (e.data[0] && refuse_task_options(&e, defaulted, argc - 2, argv + 2) != 0) return cli_fail("eval");
    eid_runtime_setup(e.threads, 1);
    if (cli_set_precision(e.precision, 1) != 0) return cli_fail("eval");
    if (cli_set_gemm_plan(e.gemm_plan, 1) != 0) return cli_fail("eval");
    Model *m = ckpt_load_model_ex(e.ckpt, NULL, e.lenient);
    if (!m) return cli_fail("eval");
    e.task.vocab_size = m->cfg.vocab_size;
    if (!e.task.seq_len) {
        model_free(m);
        fprintf(stderr, "eidetic eval: error: %s has no training state to take the task or dataset from: give "
                "--task NAME --seq-len L (and its sizes), or --data DIR --seq-len L\n", e.ckpt);
        return 1;
    }
    /* a text task reads its examples through the checkpoint's own tokenizer (tasks/task.h) */
    Tokenizer *tk = NULL;
    if (!e.data[0] && task_needs_tokenizer(&e.task) && (tk = ckpt_tokenizer(e.ckpt, e.task.name)) == NULL) {
        model_free(m);
        return cli_fail("eval");
    }
    e.task.tok = tk;
    int rc = e.data[0] ? eval_data(&e, m) : task_resolve(&e.task) == 0 ? run_eval(&e, m) : -1;
    tok_free(tk);
    model_free(m);
    return rc == 0 ? 0 : cli_fail("eval");
}
