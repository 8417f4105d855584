/* birdie_ctl.h — Birdie's reward-driven mixture controller (docs/birdie.md §4–5).
 *
 * At the evaluation steps of §5.1 (scaled to the run's length) the trainer measures one validation
 * loss per arm (bctl_val_losses) and calls bctl_update, which
 *   - on the first evaluation keeps the initial action;
 *   - otherwise computes each arm's reward (§4) from the previous and new losses, appends the history
 *     row ([L_old | action] → rewards), retrains the reward model 200 iterations (§5.3), and chooses
 *     the next action: the initial one before step 250·f, an exploration action with probability
 *     p(progress) (§5.5), else the greedy one of §5.4 (mean of the 8 best of 2·N_c random candidates
 *     scored by the reward model at the candidate's own row).
 * The reward model is a small causal gated-SSM stack over the history rows (§5.3) with hand-written
 * backward (checked by finite differences in tests/test_birdie.c), AdamW, a cyclic learning rate,
 * gradient clipping and ±2% multiplicative noise. Everything is double precision and every random
 * draw is keyed by (seed, evaluation index), so the state saved by bctl_save and restored by
 * bctl_load continues bit-exactly. */
#ifndef EIDETIC_BIRDIE_CTL_H
#define EIDETIC_BIRDIE_CTL_H
#include <stdint.h>
#include <stdio.h>

#define BCTL_MAX_ARMS 104
#define BCTL_MAX_HIST 64
#define BCTL_MAX_LAYERS 8
#define BCTL_MAX_EVALS 128

typedef struct {
    int hidden, state, layers; /* reward model: width, SSM state, blocks (paper: 256, 512, 4) */
    int candidates;            /* N_c random actions per decision (plus as many sharpened copies); paper 2048 */
    int iters;                 /* reward-model iterations per evaluation, 200 */
    int top;                   /* candidates averaged, 8 */
} BctlCfg;

/* [OURS] CPU defaults: hidden 64, state 128, 4 layers, 512 candidates, 200 iterations, top 8. */
BctlCfg bctl_default_cfg(void);

enum { BCTL_INIT = 0, BCTL_UNIFORM, BCTL_EXPLORE, BCTL_GREEDY };

typedef struct {
    /* fixed */
    BctlCfg cfg;
    int K, n_classes;
    int cls[BCTL_MAX_ARMS];      /* class of each arm (0 .. n_classes−1) */
    double scale[BCTL_MAX_ARMS]; /* s_k = 1/N_class(k) */
    double init_action[BCTL_MAX_ARMS];
    long total_steps;
    uint64_t seed;
    int n_sched;
    long sched[BCTL_MAX_EVALS];  /* evaluation steps */
    long uniform_until;          /* steps before this keep the initial action (250·f) */
    /* state */
    int n_evals, n_hist, last_mode;
    double L_old[BCTL_MAX_ARMS], action[BCTL_MAX_ARMS], reward[BCTL_MAX_ARMS];
    double hx[BCTL_MAX_HIST][2 * BCTL_MAX_ARMS], hy[BCTL_MAX_HIST][BCTL_MAX_ARMS];
    double *w, *m, *v;           /* reward model parameters and AdamW moments [n_w] */
    size_t n_w;
    long adam_t;
    double rm_loss;              /* last training loss of the reward model */
} BirdieCtl;

/* cls[K] class ids, init_action[K]; total_steps = the run's length. -1 + eid_error on bad sizes. */
int bctl_init(BirdieCtl *c, const BctlCfg *cfg, int K, const int *cls, const double *init_action, long total_steps,
              uint64_t seed);
void bctl_free(BirdieCtl *c);
/* 1 when the controller evaluates after `step` completed steps */
int bctl_is_eval(const BirdieCtl *c, long step);
/* One controller decision at `step` with validation losses L[K]; sets c->action (and c->reward). */
int bctl_update(BirdieCtl *c, long step, const double *L);

/* §4: reward of one arm for a loss going from lo to ln */
double bctl_reward(double lo, double ln);
/* §5.5: exploration probability at training progress x */
double bctl_explore_prob(double x);
/* the reward model's predictions for history rows X[T][2K] into pred[T][K] */
void bctl_predict(const BirdieCtl *c, const double *X, int T, double *pred);
/* the predicted reward score of candidate action a after the history, with current losses L */
double bctl_score(const BirdieCtl *c, const double *L, const double *a);
/* the reward model's MSE on rows X → Y and its gradient into grad[n_w] (tests) */
double bctl_loss_grad(const BirdieCtl *c, const double *X, const double *Y, int T, double *grad);

/* The state (everything bctl_update changes) to PATH atomically / back. -1 + eid_error naming the file. */
int bctl_save(const BirdieCtl *c, const char *path);
int bctl_load(BirdieCtl *c, const char *path);
/* One JSON fragment (no braces) describing the last decision: mode, class mixture, class rewards. */
int bctl_log_json(const BirdieCtl *c, char *buf, size_t n);

#endif
