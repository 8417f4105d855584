/* birdie_train.h — what `eidetic train --objective ...` adds to the training loop (docs/birdie.md
 * "Birdie in eidetic"): the objective data source over the run's documents (a --data corpus or the
 * task's examples), and for birdie / birdie-causal the controller, which at its evaluation steps
 * measures one validation loss per objective configuration and changes the mixture. Its state is
 * one more file in every checkpoint (birdie_controller.bin), so --resume continues bit-exactly. */
#ifndef EIDETIC_BIRDIE_TRAIN_H
#define EIDETIC_BIRDIE_TRAIN_H
#include "data/birdie_src.h"
#include "data/corpus.h"
#include "model/model.h"
#include "train/birdie_ctl.h"
#include "train/train_cfg.h"

typedef struct {
    BirdieSource src;
    BirdieCtl ctl;
    int has_ctl, val_rows;
    double val_sec;     /* time spent on controller evaluations */
} BirdieRun;

#define BIRDIE_CTL_FILE "birdie_controller.bin"

/* Sets up the objective of c (corpus: the --data streams, NULL: the task's examples); resume_dir:
 * the checkpoint directory to restore the controller from (NULL for a fresh run). */
int birdie_run_open(BirdieRun *b, const TrainCfg *c, const Corpus *corpus, const char *resume_dir);
void birdie_run_close(BirdieRun *b);
/* After `step` completed steps: a controller decision when one is due; appends its JSON fields
 * (",\"birdie_...\":...") to json. Returns 1 when it decided, 0 when nothing was due, -1 + eid_error. */
int birdie_run_after_step(BirdieRun *b, Model *m, const TrainCfg *c, long step, int batch, char *json, size_t n);
/* Mean label cross-entropy of each arm's validation rows into L[n_arms] (docs/birdie.md §5.2). */
int birdie_val_losses(BirdieRun *b, Model *m, uint64_t seed, int batch, double *L);
/* The controller state into checkpoint directory dir (nothing without a controller). */
int birdie_run_save(const BirdieRun *b, const char *dir);

#endif
