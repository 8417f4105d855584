/* trainer.h — the training loop, evaluation, and resumable training state. */
#ifndef EIDETIC_TRAINER_H
#define EIDETIC_TRAINER_H
#include "train/train_cfg.h"
#include "model/model.h"

typedef struct {
    double accuracy, loss;
    long examples;
} EvalResult;

/* Test-stream evaluation of n examples in batches of `batch` (planning the model for it). */
int evaluate(Model *m, const TaskCfg *t, uint64_t seed, int n, int batch, EvalResult *r);
/* Train per cfg (resuming if cfg->resume is set). Writes checkpoints + metrics under cfg->out
 * (train/rundir.h). Returns 0, -1 + eid_error, or 128 + SIG after a SIGINT/SIGTERM stop request
 * (installed by rundir_signals_install) ended the run early with a checkpoint written. */
int train_run(TrainCfg *cfg, EvalResult *final);

#endif
