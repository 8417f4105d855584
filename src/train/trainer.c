/* trainer.c — the training loop: batch → forward → loss → backward → clip → AdamW, with periodic
 * evaluation, early stop, crash-safe checkpoints (train/rundir.h), a metrics file, a clean stop on
 * SIGINT/SIGTERM and a live progress line. */
#include "train/trainer.h"
#include "train/freeze.h"
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/checkpoint.h"
#include "core/gemm_plan.h"
#include "io/gemm_plan_file.h"
#include "kernels/model_ops.h"
#include "io/safetensors.h"
#include "train/rundir.h"
#include "train/train_state.h"
#include "core/runtime.h"
#include "train/shards.h"
#include "train/dist.h"
#include "data/source.h"
#include "tasks/task_eval.h"
#include "data/corpus.h"
#include "text/tokenizer.h"
#include "train/birdie_train.h"

/* Test-stream evaluation with the task's own scorer (tasks/task_eval.c): exact match for copy
 * strings, greedy digit accuracy for the phone book, class-macro accuracy for MAD, per-slice
 * MQAR Protocol B, and the per-example fraction of correct answer positions otherwise. */
int evaluate(Model *m, const TaskCfg *t, uint64_t seed, int n, int batch, EvalResult *r) {
    TaskEval te;
    memset(r, 0, sizeof *r);
    int rc = task_evaluate(m, t, seed, n, batch, &te);
    r->accuracy = te.accuracy, r->loss = te.loss, r->examples = te.examples;
    return rc;
}

int evaluate_corpus(Model *m, const Corpus *c, int batch, EvalResult *r) {
    memset(r, 0, sizeof *r);
    r->lm = 1;
    int T = c->T;
    uint64_t rows = corpus_val_rows(c);
    if ((uint64_t)batch > rows) batch = (int)rows;
    if (rows == 0) return eid_error("the validation split is empty: nothing to evaluate (prepare with --val-fraction > 0)"), -1;
    DataSource src;
    source_corpus_init(&src, c, 0);
    int *tok = eid_xmalloc(sizeof(int) * batch * T), *lab = eid_xmalloc(sizeof(int) * batch * T);
    uint8_t *fl = eid_xmalloc((size_t)batch * T);
    double nats = 0;
    int rc = 0;
    for (uint64_t first = 0; first < rows && rc == 0; first += (uint64_t)batch) {
        int n = (int)EID_MIN((uint64_t)batch, rows - first);
        if ((rc = source_rows(&src, STREAM_TEST, first, n, tok, lab, fl)) != 0) break;
        for (int i = n; i < batch; i++) { /* a short last batch: unlabelled copies keep the plan fixed */
            memcpy(tok + (size_t)i * T, tok, sizeof(int) * T);
            memcpy(fl + (size_t)i * T, fl, (size_t)T);
            for (int t = 0; t < T; t++) lab[(size_t)i * T + t] = -100;
        }
        if ((rc = model_check_tokens(m, tok, (size_t)batch * T, "validation data")) != 0) break;
        if ((rc = model_plan(m, batch, T, batch * T)) != 0) break;
        model_trunk_forward(m, tok, fl, batch, T);
        Batch b = {tok, lab, fl, batch, T, 0};
        LossOut lo;
        if ((rc = model_loss(m, &b, &lo)) != 0) break;
        nats += lo.loss * lo.n_labels;
        r->tokens += (uint64_t)lo.n_labels;
        r->examples += n;
    }
    free(tok), free(lab), free(fl);
    if (rc != 0) return -1;
    r->bytes = c->bytes[1];
    r->loss = r->tokens ? nats / (double)r->tokens : 0;
    r->ppl = exp(r->loss);
    r->bpb = r->bytes ? nats / log(2.0) / (double)r->bytes : 0;
    return 0;
}

/* ---- one step (trainer.h) ---- */

int train_step(Shards *sh, AdamW *opt, const OptimCfg *oc, long step, const Batch *b, int label_count,
               GradAllReduce all_reduce, void *all_reduce_ctx, StepOut *out) {
    Model *m = sh->rep[0];
    Batch bb = *b;
    bb.label_norm = label_count;
    LossOut lo;
    memset(out, 0, sizeof *out);
    out->lr = lr_at(oc, step), out->clip_scale = 1;
    if (shards_grads(sh, &bb, &lo) != 0) return -1;
    out->loss = lo.loss, out->accuracy = lo.accuracy, out->n_labels = lo.n_labels;
    if (!isfinite(lo.loss)) return STEP_DIVERGED;
    if (all_reduce && all_reduce(m->grad, m->n_reals, all_reduce_ctx) != 0) return -1;
    for (int j = 0; j < m->nparam; j++) /* --freeze: frozen tensors count neither in the norm nor in the update */
        if (m->param[j].frozen) k_fill(m->grad + m->param[j].offset, m->param[j].numel, 0);
    out->grad_norm = grad_norm(m);
    if (!isfinite(out->grad_norm)) return STEP_DIVERGED;
    if (oc->grad_clip > 0 && out->grad_norm > oc->grad_clip) out->clip_scale = oc->grad_clip / out->grad_norm;
    adamw_step(opt, m, oc, out->lr, out->clip_scale);
    return STEP_OK;
}

/* ---- checkpoints: one atomic commit of weights + training state + metrics position (train/rundir.h) ---- */

/* --gemm-plan measure: the libraries chosen so far, replayed by --resume (core/gemm_plan.h) */
static int save_gemm_plan(const char *dir) {
    char path[1100];
    snprintf(path, sizeof path, "%s/gemm_plan.json", dir);
    return gemm_plan_save(path);
}

static int save_all(RunDir *rd, const TrainCfg *c, const Model *m, const AdamW *o, long step, uint64_t cursor,
                    const Tokenizer *tok, const BirdieRun *br) {
    if (dist_rank() != 0) return 0; /* a multi-process run: rank 0 alone writes the run directory */
    int bad = train_first_nonfinite(m, m->w);
    if (bad >= 0)
        return eid_error("step %ld: weight tensor '%s' holds NaN or Inf: not saved; the last good checkpoint in %s is "
                         "kept", step, m->param[bad].name, c->out), -1;
    char dir[1024];
    int rc = rundir_begin(rd, step, dir, sizeof dir);
    if (rc != 0) return rc > 0 ? 0 : -1; /* 1: this step is already the committed checkpoint */
    TrainState ts = {step, o->t, cursor, rd->metrics_bytes};
    if (ckpt_save_model_dtype(m, dir, step, !strcmp(c->save_dtype, "bf16")) != 0) return rundir_fail_intact(rd);
    if (tok && tok_save_dir(tok, dir) != 0) return rundir_fail_intact(rd); /* text in/out uses the model's own */
    rundir_fault_kill("ckpt-after-weights", step);
    if (train_state_save(dir, c, m, o, &ts) != 0) return rundir_fail_intact(rd);
    if (br && birdie_run_save(br, dir) != 0) return rundir_fail_intact(rd); /* the controller (docs/birdie.md) */
    if (eid_gemm_plan_mode() == EID_PLAN_MEASURE && save_gemm_plan(dir) != 0) return rundir_fail_intact(rd);
    rundir_fault_kill("ckpt-after-state", step);
    return rundir_commit(rd, step);
}

/* Load weights, moments, step and data cursor from a run directory (its current checkpoint). */
static Model *load_resume(TrainCfg *c, AdamW *o, TrainState *ts) {
    char dir[1024], path[1100];
    if (rundir_locate(c->resume, dir, sizeof dir) != 0) return NULL;
    long mstep;
    Model *m = ckpt_load_model(dir, &mstep);
    if (!m) return NULL;
    snprintf(path, sizeof path, "%s/training_state.safetensors", dir);
    if (train_state_load(path, m, o, ts) != 0) return model_free(m), NULL;
    if (ts->step != mstep) {
        eid_error("%s: training state is at step %ld but model.safetensors at step %ld (interrupted write?)", path,
                  ts->step, mstep);
        return adamw_free(o), model_free(m), NULL;
    }
    return m;
}

/* Where a non-finite loss or gradient first shows: a weight tensor, else a gradient tensor. */
/* train_step's all-reduce hook used for the test-only "nan-grad" injection: it runs after the
 * gradients are summed and before their norm, where a real all-reduce would. */
typedef struct { const Model *m; long step; } FaultCtx;
static int inject_nan_grad(real *grad, size_t n, void *ctx) {
    const FaultCtx *f = ctx;
    if (rundir_fault("nan-grad", f->step)) grad[f->m->param[f->m->nparam - 1].offset] = NAN;
    return 0;
}

static void nonfinite_error(const Model *m, const TrainCfg *c, const RunDir *rd, long step, const char *what, double lr) {
    int w = train_first_nonfinite(m, m->w), g = w >= 0 ? -1 : train_first_nonfinite(m, m->grad);
    char where[200] = "in the loss only (weights and gradients finite)", last[64] = "none yet";
    if (w >= 0) snprintf(where, sizeof where, "first in weight tensor '%s'", m->param[w].name);
    else if (g >= 0) snprintf(where, sizeof where, "first in gradient tensor '%s'", m->param[g].name);
    if (rd->committed_step >= 0) snprintf(last, sizeof last, "step %ld", rd->committed_step);
    eid_error("non-finite %s at step %ld (lr %.3g), %s: training stopped; the last good checkpoint in %s (%s) is "
              "untouched. Hint: lower --lr or raise --warmup", what, step, lr, where, c->out, last);
}

static void fmt_eta(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e7) snprintf(buf, n, "--");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
    else snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
}

/* --data: the dataset, its tokenizer and the checks that tie them to the model: the model's vocabulary
 * holds every id, and a resumed run was trained with the same tokenizer (its checkpoint carries it). */
static int lm_open(const TrainCfg *c, const Model *m, Corpus *corpus, Tokenizer **tok) {
    Dataset ds;
    if (ds_open(c->data, &ds) != 0) return -1;
    int tv = tok_vocab_size(ds.tok);
    if (tv > m->cfg.vocab_size) {
        eid_error("--data %s: its tokenizer has %d tokens, more than the model's vocabulary %d (--vocab must be >= %d)",
                  c->data, tv, m->cfg.vocab_size, tv);
        return ds_close(&ds), -1;
    }
    if (c->resume[0]) {
        char dir[1024];
        int found = 0;
        if (rundir_locate(c->resume, dir, sizeof dir) != 0) return ds_close(&ds), -1;
        Tokenizer *ck = tok_load_dir(dir, &found);
        if (!ck && found) return ds_close(&ds), -1;
        if (!ck || tok_hash(ck) != tok_hash(ds.tok)) {
            char a[17] = "none", b[17];
            if (ck) tok_hash_hex(ck, a);
            tok_hash_hex(ds.tok, b);
            eid_error("--data %s: its tokenizer (hash %s) is not the one the run in %s was trained with (hash %s): "
                      "refusing to continue with a different tokenizer", c->data, b, dir, a);
            tok_free(ck);
            return ds_close(&ds), -1;
        }
        tok_free(ck);
    }
    int rc = corpus_init(corpus, &ds, c->task.seq_len, c->data);
    if (rc == 0 && corpus_val_rows(corpus) == 0)
        rc = -1, eid_error("--data %s: the validation split is empty (prepare it with --val-fraction > 0 and more documents)", c->data);
    if (rc != 0 && corpus->stream[0]) corpus_free(corpus);
    *tok = ds.tok;
    ds.tok = NULL;
    ds_close(&ds);
    if (rc != 0) tok_free(*tok), *tok = NULL;
    return rc;
}

/* A text task (tasks/task.h) reads its examples through the model's own tokenizer: the corpus's
 * (--data, already in *tok), else the one stored with --resume's or --init's checkpoint, else (a
 * fresh model) the byte tokenizer, which the run's checkpoints then carry. */
static int task_tokenizer(TrainCfg *c, Tokenizer **tok) {
    const char *from = c->resume[0] ? c->resume : c->init[0] ? c->init : NULL;
    if (!*tok && from) {
        char dir[1024];
        int found = 0;
        if (rundir_locate(from, dir, sizeof dir) != 0) return -1;
        *tok = tok_load_dir(dir, &found);
        if (!*tok && found) return -1;
        if (!*tok)
            return eid_error("--task %s reads text through the model's tokenizer, and %s %s carries none (a model "
                             "trained on token tasks)", c->task.name, c->resume[0] ? "--resume" : "--init", dir), -1;
    }
    if (!*tok) *tok = tok_new_byte();
    return task_set_tokenizer(&c->task, *tok);
}

/* The whole run's shard count (c->shards, saved with the training state) and this rank's part.
 * With R ranks the count is global: each rank computes shards/R of them, and the numbers depend on
 * the count alone (train/shards.h), so a run resumed with another rank count that divides it
 * continues the same trajectory (docs/distributed.md). */
static int rank_shards(TrainCfg *c, const Model *m, int world) {
    if (c->batch % world)
        return eid_error("--batch %d: not a multiple of the %d ranks (each rank reads batch/ranks rows of every batch)",
                         c->batch, world), -1;
    if (c->shards == 0) c->shards = world * shards_auto(&m->cfg, c->batch / world, eid_threads());
    if (c->shards % world) {
        if (c->resume[0])
            return eid_error("--resume %s: the run uses %d shards in all, which %d ranks cannot split evenly: resume it "
                             "with a rank count that divides %d (the trajectory then continues bit for bit), or pass "
                             "--shards N (a multiple of %d dividing --batch %d; the rounding of the trajectory then "
                             "changes)", c->resume, c->shards, world, c->shards, world, c->batch), -1;
        return eid_error("--shards %d: not a multiple of the %d ranks (--shards counts the shards of all ranks; each "
                         "computes shards/ranks of them)", c->shards, world), -1;
    }
    if (c->shards / world > EID_MAX_SHARDS)
        return eid_error("--shards %d over %d ranks: %d per rank, more than %d", c->shards, world, c->shards / world,
                         EID_MAX_SHARDS), -1;
    return c->shards / world;
}

int train_run(TrainCfg *c, EvalResult *final) {
    int rank = dist_rank(), world = dist_world(), lead = rank == 0;
    if (!lead) c->quiet = 1; /* rank 0 alone logs and draws the progress line */
    dist_set_run_dir(c->out);
    AdamW opt = {0};
    long step0 = 0;
    uint64_t cursor = 0;
    Model *m;
    TrainState ts = {0, 0, 0, -1};
    RunDir rd = {.metrics_fd = -1, .lock_fd = -1};
    if (c->resume[0]) {
        m = load_resume(c, &opt, &ts);
        if (!m) return -1;
        step0 = ts.step, cursor = ts.cursor;
        c->model = m->cfg;
        if (!c->quiet) eid_log("resumed %s at step %ld (data cursor %llu)", c->resume, step0, (unsigned long long)cursor);
    } else if (c->init[0]) { /* weights from a checkpoint, a fresh optimizer and schedule (docs/statex.md §4) */
        char dir[1024];
        if (rundir_locate(c->init, dir, sizeof dir) != 0 || !(m = ckpt_load_model(dir, NULL))) return -1;
        c->model = m->cfg;
        adamw_init(&opt, m);
    } else {
        m = model_new(&c->model);
        if (!m) return -1;
        model_init_params(m, c->seed);
        adamw_init(&opt, m);
    }
    int n_frozen = train_freeze(m, c->freeze);
    if (n_frozen < 0) return adamw_free(&opt), model_free(m), -1;
    if (n_frozen && !c->quiet) eid_log("--freeze %s: %d of %d tensors frozen", c->freeze, n_frozen, m->nparam);
    Corpus corpus = {0};
    Tokenizer *tok = NULL;
    if (c->data[0] && lm_open(c, m, &corpus, &tok) != 0) {
        model_free(m);
        adamw_free(&opt);
        return -1;
    }
    int lm = tok != NULL; /* --data: language-model rows and evaluation (the fine-tuning stage excepted) */
    if ((!lm || c->finetune_steps) && task_needs_tokenizer(&c->task) && task_tokenizer(c, &tok) != 0) {
        corpus_free(&corpus);
        tok_free(tok);
        model_free(m);
        adamw_free(&opt);
        return -1;
    }
    model_weights_changed(m); /* initialised or loaded: the bf16 mirror, if any, starts in sync */
    /* --objective: Birdie's objectives over the documents, and its controller (train/birdie_train.h) */
    BirdieRun br_store, *br = NULL;
    Shards sh = {0};
    if (c->objective[0] && world > 1) { /* the controller's evaluations are not divided among ranks yet */
        eid_error("--objective %s: multi-process training (mpirun) does not take --objective yet (the plain next-token loss only)", c->objective);
        goto fail_early;
    }
    if (c->objective[0]) {
        char rdir[1024];
        if (c->resume[0] && rundir_locate(c->resume, rdir, sizeof rdir) != 0) goto fail_early;
        if (birdie_run_open(&br_store, c, lm ? &corpus : NULL, c->resume[0] ? rdir : NULL) != 0) goto fail_early;
        br = &br_store;
    }
    /* the shard count is fixed here and saved with the training state: a resumed run keeps its numerics */
    int local_shards = rank_shards(c, m, world);
    if (local_shards < 0 || shards_init(&sh, m, local_shards) != 0) goto fail;
    sh.dist = world > 1;
    /* every rank has read the checkpoint before rank 0 touches the run directory */
    if (c->resume[0] && dist_barrier() != 0) goto fail;
    if (lead && (c->resume[0] ? rundir_open_resume(&rd, c->out, step0, ts.metrics_bytes) : rundir_open_fresh(&rd, c->out)) != 0)
        goto fail;
    /* a fresh run commits its initial state first: a run killed at any moment can be resumed */
    if (!c->resume[0] && save_all(&rd, c, m, &opt, 0, 0, tok, br) != 0) goto fail;
    const TaskCfg *t = &c->task;
    /* B: the global batch; Bl: this rank's rows of it */
    int B = c->batch, Bl = B / world, L = t->seq_len, K = lm || br || c->finetune_steps ? L : task_labels_per_example(t);
    /* the fine-tuning stage (--finetune-steps) runs steps [n_pre, total) on the task */
    long n_pre = c->steps, total = (long)c->steps + c->finetune_steps;
    int ft = c->finetune_steps > 0 && step0 > n_pre; /* resumed inside the fine-tuning stage */
    int *in = eid_xmalloc(sizeof(int) * Bl * L), *lab = eid_xmalloc(sizeof(int) * Bl * L);
    uint8_t *fl = eid_xmalloc((size_t)Bl * L);
    /* the data source's cursor is the data state kept with the training state (data_cursor) */
    DataSource src;
    if (ft) source_task_init(&src, t, c->seed, (uint64_t)c->train_examples);
    else if (br) source_birdie_init(&src, &br->src, c->seed);
    else if (lm) source_corpus_init(&src, &corpus, c->seed);
    else source_task_init(&src, t, c->seed, (uint64_t)c->train_examples);
    src.cursor = cursor;
    if (source_set_rank(&src, rank, world) != 0) { free(in), free(lab), free(fl); goto fail; }
    OptimCfg oc = ft ? train_cfg_finetune_optim(c) : train_cfg_optim(c);
    int tty = isatty(2) && !c->quiet;
    double t_start = eid_now(), t_last = 0;
    EvalResult ev = {0};
    long step = step0;
    int rc = 0;
    long evaluated_at = -1;
    int stop_sig = 0;
    /* evaluation (rank 0) reuses shard 0's plan: batches of B/shards */
    int eval_batch = Bl / sh.n;
    if (shards_plan(&sh, Bl, L, K) != 0) { rc = -1; goto done; }
    if (!c->quiet) {
        eid_log("model: %zu parameters, activations (and shard gradients) %.1f MiB for batch %d x %d", m->n_weights,
                shards_bytes(&sh) / 1048576.0, B, L);
        if (world > 1)
            eid_log("data-parallel: %d ranks x %d shards of %d examples (--shards %d in all; results depend on the "
                    "shard count, not on the ranks or threads)", world, sh.n, Bl / sh.n, c->shards);
        else if (sh.n > 1)
            eid_log("data-parallel: %d shards of %d examples, one thread each (--shards; results depend on the "
                    "shard count, not on the threads)", sh.n, B / sh.n);
    }
    for (; step < total; step++) {
        if (c->stop_after > 0 && step - step0 >= c->stop_after) break;
        if (!ft && step >= n_pre) { /* entering the fine-tuning stage: the task's rows, a fresh optimizer */
            ft = 1;
            adamw_free(&opt);
            adamw_init(&opt, m);
            source_task_init(&src, t, c->seed, (uint64_t)c->train_examples);
            if (source_set_rank(&src, rank, world) != 0) { rc = -1; break; }
            oc = train_cfg_finetune_optim(c);
            if (!c->quiet) eid_log("fine-tuning on %s: %d steps at lr %g (fresh optimizer)", t->name, c->finetune_steps, oc.lr);
        }
        long ostep = ft ? step - n_pre : step; /* the step of the stage's own schedule */
        if (shards_plan(&sh, Bl, L, K) != 0) { rc = -1; break; }
        if (source_next(&src, B, in, lab, fl) != 0) { rc = -1; break; }
        /* test-only: this process dies or hangs at a step (a rank of a multi-process run, docs/distributed.md) */
        rundir_fault_kill("step-kill", step + 1);
        while (rundir_fault("step-hang", step + 1)) sleep(1000);
        cursor = src.cursor;
        /* test-only injections (docs/reliability.md "Numerical faults"), numbered like metrics steps */
        OptimCfg ocs = oc;
        if (rundir_fault("nan-lr", step + 1)) ocs.lr = NAN;
        if (rundir_fault("nan-weight", step + 1)) m->w[m->param[m->nparam / 2].offset] = NAN;
        double lr = lr_at(&ocs, ostep);
        if (!isfinite(lr)) {
            eid_error("step %ld: the learning rate is %g (check --lr, --min-lr, --warmup): training stopped; the last "
                      "good checkpoint in %s (step %ld) is untouched", step + 1, lr, c->out, rd.committed_step);
            rc = -1;
            break;
        }
        Batch bt = {in, lab, fl, Bl, L, 0};
        StepOut so;
        FaultCtx fault = {m, step + 1};
        int st = train_step(&sh, &opt, &ocs, ostep, &bt, 0, inject_nan_grad, &fault, &so);
        if (st < 0) { rc = -1; break; }
        double comm_s = dist_take_reduce_seconds();
        double gn = so.grad_norm;
        LossOut lo = {.loss = so.loss, .accuracy = so.accuracy};
        if (st == STEP_DIVERGED) {
            nonfinite_error(m, c, &rd, step + 1, isfinite(so.loss) ? "gradient" : "loss", lr);
            rc = -1;
            break;
        }
        double now = eid_now() - t_start;
        long done = step + 1 - step0;
        double tps = (double)done * B * L / (now > 0 ? now : 1e-9);
        int last = step + 1 == total, evaluated = 0, lm_eval = lm && !ft;
        if (lead && ((c->eval_every > 0 && (step + 1) % c->eval_every == 0) || last || (step + 1 == n_pre && total > n_pre))) {
            if ((lm_eval ? evaluate_corpus(m, &corpus, eval_batch, &ev) : evaluate(m, t, c->seed, c->eval_examples, eval_batch, &ev)) != 0) {
                rc = -1;
                break;
            }
            evaluated = 1;
            evaluated_at = step + 1;
        }
        char ml[4096];
        int mn = snprintf(ml, sizeof ml, "{\"step\":%ld,\"loss\":%.6f,\"train_acc\":%.4f,\"lr\":%.6g,\"grad_norm\":%.4f,"
                          "\"tokens_per_s\":%.0f,\"elapsed_s\":%.3f", step + 1, lo.loss, lo.accuracy, lr, gn, tps, now);
        if (evaluated && ev.lm)
            mn += snprintf(ml + mn, sizeof ml - mn, ",\"val_loss\":%.6f,\"val_ppl\":%.4f,\"val_bpb\":%.5f", ev.loss, ev.ppl, ev.bpb);
        else if (evaluated) mn += snprintf(ml + mn, sizeof ml - mn, ",\"test_acc\":%.4f,\"test_loss\":%.6f", ev.accuracy, ev.loss);
        if (world > 1) mn += snprintf(ml + mn, sizeof ml - mn, ",\"ranks\":%d,\"comm_ms\":%.3f", world, comm_s * 1e3);
        if (ft) mn += snprintf(ml + mn, sizeof ml - mn, ",\"finetune\":1");
        if (br && !ft) { /* a controller decision, when one is due, joins this step's metrics line */
            int d = birdie_run_after_step(br, m, c, step + 1, eval_batch, ml, sizeof ml - 4);
            if (d < 0) { rc = -1; break; }
            mn = (int)strlen(ml);
        }
        mn += snprintf(ml + mn, sizeof ml - mn, "}\n");
        if (lead && rundir_metrics_append(&rd, step + 1, ml, (size_t)mn) != 0) { rc = -1; break; }
        double eta = (now / done) * (total - step - 1);
        if ((tty && now - t_last > 0.25) || evaluated || last) {
            char es[32];
            fmt_eta(eta, es, sizeof es);
            char line[256];
            if (lm_eval)
                snprintf(line, sizeof line, "step %ld/%ld  loss %.4f  val loss %.4f ppl %.2f bpb %.4f  %.0f tok/s  %.1fs  ETA %s",
                         step + 1, total, lo.loss, ev.loss, ev.ppl, ev.bpb, tps, now, es);
            else
                snprintf(line, sizeof line, "step %ld/%ld  loss %.4f  acc %.3f  test %.3f  %.0f tok/s  %.1fs  ETA %s",
                         step + 1, total, lo.loss, lo.accuracy, ev.accuracy, tps, now, es);
            if (tty) fprintf(stderr, "\r%-100s%s", line, evaluated ? "\n" : "");
            else if (evaluated && !c->quiet) fprintf(stderr, "%s\n", line);
            t_last = now;
        }
        /* what ends the run early, agreed by all ranks: rank 0's evaluation, a stop signal to any rank */
        int ctl[2] = {evaluated && !ev.lm && (ft || total == n_pre) && c->target_acc > 0 && ev.accuracy >= c->target_acc,
                      rundir_stop_signal()};
        if (dist_max_int(ctl, 2) != 0) { rc = -1; break; }
        if (ctl[0]) {
            if (lead) fprintf(stderr, "reached target accuracy %.3f >= %.3f at step %ld (%.1fs)\n", ev.accuracy, c->target_acc,
                    step + 1, now);
            step++;
            break;
        }
        /* the end of pre-training is always a checkpoint: resumed there, the fine-tuning stage starts afresh */
        if (((c->ckpt_every > 0 && (step + 1) % c->ckpt_every == 0) || (step + 1 == n_pre && total > n_pre)) && !last)
            if (save_all(&rd, c, m, &opt, step + 1, cursor, tok, br) != 0) { rc = -1; break; }
        if (ctl[1] && step + 1 < total) { stop_sig = ctl[1]; step++; break; } /* SIGINT/SIGTERM: step done, checkpoint below */
    }
done:
    if (!stop_sig && world == 1) stop_sig = rundir_stop_signal();
    if (rc == 0 && stop_sig && step < total) {
        int sig = stop_sig;
        rc = save_all(&rd, c, m, &opt, step, cursor, tok, br);
        if (rc == 0) {
            if (lead) fprintf(stderr, "\neidetic train: stopped by %s at step %ld; checkpoint written to %s. Continue with: "
                            "eidetic train --resume %s\n", sig == SIGINT ? "SIGINT" : "SIGTERM", step, c->out, c->out);
            rc = 128 + sig;
        }
    } else if (rc == 0) {
        if (lead && evaluated_at != step) /* stopped between evaluations, or nothing left to do */
            rc = lm && !ft ? evaluate_corpus(m, &corpus, eval_batch, &ev) : evaluate(m, t, c->seed, c->eval_examples, eval_batch, &ev);
        if (rc == 0) rc = save_all(&rd, c, m, &opt, step, cursor, tok, br);
        if (rc == 0) {
            if (!c->quiet) eid_log("checkpoint: %s (step %ld, %.1fs)", c->out, step, eid_now() - t_start);
            *final = ev;
        }
    }
    rundir_close(&rd);
    free(in), free(lab), free(fl);
    if (br) {
        if (!c->quiet && br->has_ctl) eid_log("birdie: %d controller evaluations, %.1fs", br->ctl.n_evals, br->val_sec);
        birdie_run_close(br);
    }
    corpus_free(&corpus);
    tok_free(tok);
    shards_free(&sh);
    adamw_free(&opt);
    model_free(m);
    return rc;
fail:
    rundir_close(&rd);
    if (br) birdie_run_close(br);
fail_early:
    corpus_free(&corpus);
    tok_free(tok);
    shards_free(&sh);
    adamw_free(&opt);
    model_free(m);
    return -1;
}
