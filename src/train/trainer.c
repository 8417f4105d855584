/* trainer.c — the training loop: batch → forward → loss → backward → clip → AdamW, with periodic
 * evaluation, early stop, atomic checkpoints, a metrics file and a live progress line. */
#include "train/trainer.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "core/runtime.h"
#include "train/shards.h"
#include "data/source.h"
#include "tasks/task_eval.h"

/* Test-stream evaluation with the task's own scorer (tasks/task_eval.c): exact match for copy
 * strings, greedy digit accuracy for the phone book, class-macro accuracy for MAD, per-slice
 * MQAR Protocol B, and the per-example fraction of correct answer positions otherwise. */
int evaluate(Model *m, const TaskCfg *t, uint64_t seed, int n, int batch, EvalResult *r) {
    TaskEval te;
    int rc = task_evaluate(m, t, seed, n, batch, &te);
    r->accuracy = te.accuracy, r->loss = te.loss, r->examples = te.examples;
    return rc;
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
    out->grad_norm = grad_norm(m);
    if (!isfinite(out->grad_norm)) return STEP_DIVERGED;
    if (oc->grad_clip > 0 && out->grad_norm > oc->grad_clip) out->clip_scale = oc->grad_clip / out->grad_norm;
    adamw_step(opt, m, oc, out->lr, out->clip_scale);
    return STEP_OK;
}

/* ---- training state: AdamW moments per tensor + metadata ---- */

static int save_state(const TrainCfg *c, const Model *m, const AdamW *o, long step, uint64_t cursor) {
    StWriter w;
    st_writer_init(&w);
    char b[64], name[160];
    snprintf(b, sizeof b, "%ld", step), st_meta_set(&w, "eidetic_step", b);
    snprintf(b, sizeof b, "%ld", o->t), st_meta_set(&w, "adam_t", b);
    snprintf(b, sizeof b, "%llu", (unsigned long long)cursor), st_meta_set(&w, "data_cursor", b);
    snprintf(b, sizeof b, "%llu", (unsigned long long)c->seed), st_meta_set(&w, "seed", b);
    char *js = train_cfg_to_json(c);
    st_meta_set(&w, "train_config", js);
    free(js);
    for (int i = 0; i < m->nparam; i++) {
        const ParamEntry *p = &m->param[i];
        snprintf(name, sizeof name, "optimizer.exp_avg.%s", p->name);
        st_add_real(&w, name, p->ndim, p->shape, o->m + p->offset);
        snprintf(name, sizeof name, "optimizer.exp_avg_sq.%s", p->name);
        st_add_real(&w, name, p->ndim, p->shape, o->v + p->offset);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/training_state.safetensors", c->out);
    return st_write(&w, path);
}

static int save_all(const TrainCfg *c, const Model *m, const AdamW *o, long step, uint64_t cursor) {
    /* weights first, then the state: on resume both must carry the same step */
    if (ckpt_save_model(m, c->out, step) != 0) return -1;
    return save_state(c, m, o, step, cursor);
}

static int meta_long(const StFile *f, const char *key, long *v) {
    const char *s = st_meta(f, key);
    char *end;
    if (!s || !*s) return eid_error("%s: metadata \"%s\" missing: not an eidetic training state", f->path, key), -1;
    *v = strtol(s, &end, 10);
    if (*end) return eid_error("%s: metadata \"%s\" is not an integer", f->path, key), -1;
    return 0;
}

/* Load weights, moments, step and data cursor from a run directory; cfg gets the stored options
 * (with --steps possibly raised by the caller's flags). */
static Model *load_resume(TrainCfg *c, AdamW *o, long *step, uint64_t *cursor) {
    long mstep;
    Model *m = ckpt_load_model(c->resume, &mstep);
    if (!m) return NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/training_state.safetensors", c->resume);
    StFile f;
    if (st_open(&f, path) != 0) return model_free(m), NULL;
    long s, t, cur;
    if (meta_long(&f, "eidetic_step", &s) || meta_long(&f, "adam_t", &t) || meta_long(&f, "data_cursor", &cur)) goto fail;
    if (s != mstep) {
        eid_error("%s: training state is at step %ld but model.safetensors at step %ld (interrupted write?)", path, s, mstep);
        goto fail;
    }
    adamw_init(o, m);
    char name[160];
    for (int i = 0; i < m->nparam; i++) {
        const ParamEntry *p = &m->param[i];
        snprintf(name, sizeof name, "optimizer.exp_avg.%s", p->name);
        if (st_read_real(&f, name, p->ndim, p->shape, o->m + p->offset)) goto fail_o;
        snprintf(name, sizeof name, "optimizer.exp_avg_sq.%s", p->name);
        if (st_read_real(&f, name, p->ndim, p->shape, o->v + p->offset)) goto fail_o;
    }
    o->t = t;
    *step = s, *cursor = (uint64_t)cur;
    st_close(&f);
    return m;
fail_o:
    adamw_free(o);
fail:
    st_close(&f);
    model_free(m);
    return NULL;
}

static void fmt_eta(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e7) snprintf(buf, n, "--");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
    else snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
}

int train_run(TrainCfg *c, EvalResult *final) {
    AdamW opt = {0};
    long step0 = 0;
    uint64_t cursor = 0;
    Model *m;
    if (c->resume[0]) {
        m = load_resume(c, &opt, &step0, &cursor);
        if (!m) return -1;
        c->model = m->cfg;
        if (!c->quiet) eid_log("resumed %s at step %ld (data cursor %llu)", c->resume, step0, (unsigned long long)cursor);
    } else {
        m = model_new(&c->model);
        if (!m) return -1;
        model_init_params(m, c->seed);
        adamw_init(&opt, m);
    }
    /* the shard count is fixed here and saved with the training state: a resumed run keeps its numerics */
    if (c->shards == 0) c->shards = shards_auto(&m->cfg, c->batch, eid_threads());
    Shards sh = {0};
    if (shards_init(&sh, m, c->shards) != 0) goto fail;
    if (ensure_dir(c->out) != 0) goto fail;
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", c->out);
    FILE *mf = fopen(path, step0 > 0 ? "a" : "w");
    if (!mf) { eid_error("%s: cannot write metrics file", path); goto fail; }
    const TaskCfg *t = &c->task;
    int B = c->batch, L = t->seq_len, K = task_labels_per_example(t);
    int *in = eid_xmalloc(sizeof(int) * B * L), *lab = eid_xmalloc(sizeof(int) * B * L);
    uint8_t *fl = eid_xmalloc((size_t)B * L);
    /* the data source's cursor is the data state kept with the training state (data_cursor) */
    DataSource src;
    source_task_init(&src, t, c->seed, (uint64_t)c->train_examples);
    src.cursor = cursor;
    OptimCfg oc = train_cfg_optim(c);
    int tty = isatty(2) && !c->quiet;
    double t_start = eid_now(), t_last = 0;
    EvalResult ev = {0};
    long step = step0;
    int rc = 0;
    long evaluated_at = -1;
    if (shards_plan(&sh, B, L, K) != 0) { rc = -1; goto done; }
    if (!c->quiet) {
        eid_log("model: %zu parameters, activations (and shard gradients) %.1f MiB for batch %d x %d", m->n_weights,
                shards_bytes(&sh) / 1048576.0, B, L);
        if (sh.n > 1)
            eid_log("data-parallel: %d shards of %d examples, one thread each (--shards; results depend on the "
                    "shard count, not on the threads)", sh.n, B / sh.n);
    }
    /* evaluation reuses shard 0's plan: batches of B/shards */
    int eval_batch = B / sh.n;
    for (; step < c->steps; step++) {
        if (c->stop_after > 0 && step - step0 >= c->stop_after) break;
        if (shards_plan(&sh, B, L, K) != 0) { rc = -1; break; }
        if (source_next(&src, B, in, lab, fl) != 0) { rc = -1; break; }
        cursor = src.cursor;
        Batch bt = {in, lab, fl, B, L, 0};
        StepOut so;
        int st = train_step(&sh, &opt, &oc, step, &bt, 0, NULL, NULL, &so);
        if (st < 0) { rc = -1; break; }
        double lr = so.lr, gn = so.grad_norm;
        LossOut lo = {.loss = so.loss, .accuracy = so.accuracy};
        if (st == STEP_DIVERGED && !isfinite(so.loss)) {
            eid_error("non-finite loss at step %ld (lr %.3g): training diverged; the last checkpoint in %s is untouched. "
                      "Hint: lower --lr or raise --warmup", step, lr, c->out);
            rc = -1;
            break;
        }
        if (st == STEP_DIVERGED) {
            eid_error("non-finite gradient at step %ld: the last checkpoint in %s is untouched. Hint: lower --lr", step, c->out);
            rc = -1;
            break;
        }
        double now = eid_now() - t_start;
        long done = step + 1 - step0;
        double tps = (double)done * B * L / (now > 0 ? now : 1e-9);
        int last = step + 1 == c->steps, evaluated = 0;
        if ((c->eval_every > 0 && (step + 1) % c->eval_every == 0) || last) {
            if (evaluate(m, t, c->seed, c->eval_examples, eval_batch, &ev) != 0) { rc = -1; break; }
            evaluated = 1;
            evaluated_at = step + 1;
        }
        fprintf(mf, "{\"step\":%ld,\"loss\":%.6f,\"train_acc\":%.4f,\"lr\":%.6g,\"grad_norm\":%.4f,\"tokens_per_s\":%.0f,\"elapsed_s\":%.3f",
                step + 1, lo.loss, lo.accuracy, lr, gn, tps, now);
        if (evaluated) fprintf(mf, ",\"test_acc\":%.4f,\"test_loss\":%.6f", ev.accuracy, ev.loss);
        fprintf(mf, "}\n");
        double eta = (now / done) * (c->steps - step - 1);
        if ((tty && now - t_last > 0.25) || evaluated || last) {
            char es[32];
            fmt_eta(eta, es, sizeof es);
            char line[256];
            snprintf(line, sizeof line, "step %ld/%d  loss %.4f  acc %.3f  test %.3f  %.0f tok/s  %.1fs  ETA %s",
                     step + 1, c->steps, lo.loss, lo.accuracy, ev.accuracy, tps, now, es);
            if (tty) fprintf(stderr, "\r%-100s%s", line, evaluated ? "\n" : "");
            else if (evaluated && !c->quiet) fprintf(stderr, "%s\n", line);
            t_last = now;
        }
        if (evaluated && c->target_acc > 0 && ev.accuracy >= c->target_acc) {
            fprintf(stderr, "reached target accuracy %.3f >= %.3f at step %ld (%.1fs)\n", ev.accuracy, c->target_acc,
                    step + 1, now);
            step++;
            break;
        }
        if (c->ckpt_every > 0 && (step + 1) % c->ckpt_every == 0 && !last)
            if (save_all(c, m, &opt, step + 1, cursor) != 0) { rc = -1; break; }
    }
done:
    fclose(mf);
    if (rc == 0) {
        if (evaluated_at != step) /* stopped between evaluations, or nothing left to do */
            rc = evaluate(m, t, c->seed, c->eval_examples, eval_batch, &ev);
        if (rc == 0) rc = save_all(c, m, &opt, step, cursor);
        if (rc == 0) {
            if (!c->quiet) eid_log("checkpoint: %s (step %ld, %.1fs)", c->out, step, eid_now() - t_start);
            *final = ev;
        }
    }
    free(in), free(lab), free(fl);
    shards_free(&sh);
    adamw_free(&opt);
    model_free(m);
    return rc;
fail:
    shards_free(&sh);
    adamw_free(&opt);
    model_free(m);
    return -1;
}
