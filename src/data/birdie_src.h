/* birdie_src.h — Birdie's objectives as a data source (data/source.h; docs/birdie.md "Birdie in
 * eidetic").
 *
 * The source holds the arm table of the chosen procedure, the current action (a categorical over
 * the arms, changed by the controller, train/birdie_ctl.h) and two text streams (training and
 * validation) of token ids: a corpus split (data/corpus.h: documents + EOS) or documents taken from
 * a synthetic task's examples (birdie_text_from_task).
 *   STREAM_TRAIN row j = birdie_row with key (seed, j) from a text position drawn from (seed, j) —
 *     a pure function of (seed, j, action): any rank can build any row.
 *   STREAM_TEST  row j = the same over the validation text.
 * birdie_val_row gives the controller's fixed validation set: rows made only of one arm's samples,
 * from validation text, keyed by (seed, arm, i), independent of the action. */
#ifndef EIDETIC_BIRDIE_SRC_H
#define EIDETIC_BIRDIE_SRC_H
#include "data/birdie_obj.h"
#include "data/source.h"
#include "tasks/task.h"

#define BIRDIE_MAX_ARMS 104

typedef enum { BOBJ_NTP = 0, BOBJ_BIRDIE, BOBJ_BIRDIE_CAUSAL, BOBJ_FIXED, BOBJ_UL2 } BirdieObjective;

typedef struct {
    int objective;                 /* BirdieObjective */
    BirdieArm arms[BIRDIE_MAX_ARMS];
    int n_arms;
    double action[BIRDIE_MAX_ARMS]; /* the current mixture (sums to 1) */
    double init_action[BIRDIE_MAX_ARMS];
    BirdieText text[2];            /* [0] training, [1] validation */
    int32_t *owned[2];             /* streams built here (synthetic), freed by birdie_source_free */
    int base;                      /* first reserved id (= the text vocabulary) */
    int L;                         /* row length */
} BirdieSource;

/* "ntp" | "birdie" | "birdie-causal" | "fixed" | "ul2" → BirdieObjective; -1 + eid_error. */
int birdie_objective_parse(const char *name);
/* The arms of the objective (ntp: one NTP arm; birdie, birdie-causal, fixed: the 104-arm grid with
 * §3's initial action; ul2: the UL2 mixture), lengths fitted to rows of L (birdie_fit_lengths). */
int birdie_source_init(BirdieSource *b, int objective, int L, int text_vocab);
void birdie_source_free(BirdieSource *b);
/* Documents from a task's examples (the tokens of each example's real length, plus its last
 * label, then <eos>): training from STREAM_TRAIN examples until ≥ train_tokens tokens, validation
 * from STREAM_TEST until ≥ val_tokens. */
void birdie_text_from_task(BirdieSource *b, const TaskCfg *t, uint64_t seed, uint64_t train_tokens, uint64_t val_tokens);
/* The controller's validation row i of arm k (L tokens). */
void birdie_val_row(const BirdieSource *b, uint64_t seed, int k, int i, int *tok, int *lab, uint8_t *fl, int *work);
/* A source over b (which must outlive it); rank 0 of 1. */
void source_birdie_init(DataSource *s, BirdieSource *b, uint64_t seed);

#endif
