/* trainer.h — the training loop, evaluation, and resumable training state. */
#ifndef EIDETIC_TRAINER_H
#define EIDETIC_TRAINER_H
#include "train/train_cfg.h"
#include "train/shards.h"
#include "model/model.h"
#include "data/corpus.h"

typedef struct {
    double accuracy, loss;
    long examples;
    int lm;             /* 1: a language-model evaluation (--data): the fields below are set */
    double ppl, bpb;    /* perplexity exp(loss); bits per UTF-8 byte (docs/lm.md) */
    uint64_t tokens, bytes; /* predicted validation tokens; UTF-8 bytes of the validation text */
} EvalResult;

/* Test-stream evaluation of n examples in batches of `batch` (planning the model for it). */
int evaluate(Model *m, const TaskCfg *t, uint64_t seed, int n, int batch, EvalResult *r);
/* Validation of a language model over the whole validation split of a corpus (data/corpus.h) in
 * batches of `batch` rows: loss = mean nats per predicted token, ppl = exp(loss),
 * bpb = total nats / ln 2 / UTF-8 bytes of the validation text. -1 + eid_error. */
int evaluate_corpus(Model *m, const Corpus *c, int batch, EvalResult *r);
/* Sums a gradient vector in place over every process of a run (an MPI all-reduce, say); 0, or
 * -1 + eid_error. NULL in train_step = one process, nothing to sum. */
typedef int (*GradAllReduce)(real *grad, size_t n, void *ctx);

typedef struct {
    double loss, accuracy; /* this process's rows (model_loss's definitions) */
    int n_labels;          /* labelled positions in this process's rows */
    double lr, grad_norm;  /* the step's learning rate; global L2 norm of the summed gradient */
    double clip_scale;     /* factor applied to the gradient by clipping (1 = none) */
} StepOut;

enum { STEP_OK = 0, STEP_DIVERGED = 1 };

/* One optimizer step, the only one in the code base (trainer, benchmark, later the library):
 * forward/backward of this process's rows b over the shards (train/shards.h), the shards'
 * gradients summed, then `all_reduce` (NULL = none), the global gradient norm, clipping to
 * oc->grad_clip (0 = off), AdamW at lr_at(oc, step). label_count: the labelled positions the loss
 * gradient is normalised by; 0 = this batch's own count (one process); a multi-process run passes
 * the global count so the summed gradient is that of the global mean loss. The shards must be
 * planned for b's shape.
 * Returns STEP_OK; STEP_DIVERGED with `out` filled and the weights untouched when the loss or the
 * gradient norm is not finite; -1 + eid_error on bad input (labels outside the vocabulary, more
 * labels than planned, a failing all-reduce). */
int train_step(Shards *sh, AdamW *opt, const OptimCfg *oc, long step, const Batch *b, int label_count,
               GradAllReduce all_reduce, void *all_reduce_ctx, StepOut *out);

/* Train per cfg (resuming if cfg->resume is set). Writes checkpoints + metrics under cfg->out
 * (train/rundir.h). Returns 0, -1 + eid_error, or 128 + SIG after a SIGINT/SIGTERM stop request
 * (installed by rundir_signals_install) ended the run early with a checkpoint written. */
int train_run(TrainCfg *cfg, EvalResult *final);

#endif
