/* scorecard.h — the grid behind `eidetic scorecard`: cells (mixer × d_model × task × lr), their
 * identities, in-process probing (parameters, state sizes), lock files, result files, metrics
 * summaries and the report files (results.csv, results.md, plot data). Running cells is the
 * CLI's job (src/tools/cmd_scorecard.c): each cell is an `eidetic train` subprocess.
 *
 * On disk, under the scorecard directory OUT:
 *   cells/<id>/result.json   written atomically when a cell has finished (its presence = done)
 *   cells/<id>.lock          claim of a running cell: "pid start_time host" (O_CREAT|O_EXCL)
 *   cells/<id>/run/          the training run (config.json, model, training state, metrics.jsonl)
 *   cells/<id>/train.log     stderr of the training subprocesses
 *   cells/<id>/lengths.json  accuracy of the run's checkpoint at longer test lengths (MQAR) */
#ifndef EIDETIC_SCORECARD_H
#define EIDETIC_SCORECARD_H
#include "eidetic.h"
#include "io/files.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SC_MAX_LIST 32   /* entries per grid axis */
#define SC_MAX_ARGS 96   /* train flags of one cell */
#define SC_MAX_LENGTHS 8 /* test lengths of the length plot */

typedef struct {
    char spec[64];    /* as given: "longhorn", or a hybrid "longhorn+swa" */
    char layers[256]; /* the --layers value: "longhorn,longhorn" (a single mixer = 2 layers, Zoology) */
} ScMixer;

typedef struct {
    char name[32];   /* --task value */
    char flags[256]; /* extra train flags of this task, space separated ("--seq-len 64 --kv-pairs 4") */
    char label[80];  /* for tables and plots: "mqar L64 K4" */
} ScTask;

typedef struct {
    ScMixer mixers[SC_MAX_LIST];
    int n_mixers;
    int d_models[SC_MAX_LIST];
    int n_d;
    ScTask tasks[SC_MAX_LIST];
    int n_tasks;
    double lrs[SC_MAX_LIST];
    int n_lrs;
    /* flags of every cell; 0 (warmup, target_acc: -1) = the train preset's value */
    int steps, batch, warmup, eval_every, eval_examples, swa_window;
    double target_acc, min_lr_ratio; /* min-lr = lr × ratio */
    uint64_t seed;
    char train_flags[512]; /* extra train flags of every cell (after the task's) */
    int steps_override;    /* --steps given: it wins over a task's own --steps */
} ScGrid;

/* What a cell is and what the probe found out about it (no training needed). */
typedef struct {
    int mixer, d, task, lr; /* indices into the grid */
    double lr_value;
    char id[192];           /* directory name: readable prefix + hash of the train flags */
    char *argv[SC_MAX_ARGS]; /* train flags (no --out/--threads/--quiet/--stop-after), malloc'd */
    int argc;
    /* probe */
    int available;          /* 0: the engine cannot build this cell (reason says why) */
    char reason[320];
    char task_name[32];     /* resolved */
    int seq_len, kv_pairs, vocab, steps, eval_every, batch;
    double target_acc;
    size_t params, state_floats; /* per sequence, sum over layers (fp32 floats) */
    double zoo_floats;           /* docs/tasks.md §1.4 convention, sum over layers; bytes = 4 × this */
    double est_s;                /* estimated single-thread seconds (cost model, for ETA and caps) */
} ScCell;

/* The outcome of a finished cell (result.json). */
typedef struct {
    char status[16];     /* done | early-stop | capped | failed */
    char message[320];   /* failed: the engine's error line */
    long steps_done;
    double final_acc;    /* test accuracy of the final checkpoint (NAN if failed) */
    double best_acc;     /* best test accuracy seen during training */
    long best_step;
    double final_loss;   /* last training loss */
    double wall_s, cpu_s;
} ScResult;

/* A loss curve, downsampled to at most SC_CURVE points (window means). */
#define SC_CURVE 200
typedef struct {
    long last_step, best_step;
    double best_acc, last_acc, last_loss; /* last_acc: test_acc of the last evaluated line (NAN if none) */
    int last_has_test;                     /* the last line carries a test accuracy */
    int n;
    double step[SC_CURVE], loss[SC_CURVE];
} ScMetrics;

/* ---- grid ---- */
int sc_parse_mixers(ScGrid *g, const char *list, const char *flag);  /* "longhorn,mamba,longhorn+swa" */
int sc_parse_ints(int *out, int *n, const char *list, const char *flag, int lo, int hi);
int sc_parse_doubles(double *out, int *n, const char *list, const char *flag, double lo, double hi);
int sc_parse_tasks(ScGrid *g, const char *list, const char *flag); /* "mqar --seq-len 64 --kv-pairs 4; copy" */
void sc_task_label(const char *name, const char *flags, char *out, size_t n);
/* Expand the grid into cells (mixers outermost, lrs innermost); -1 + eid_error on a forbidden flag. */
int sc_grid_cells(const ScGrid *g, ScCell **cells, int *n);
void sc_cells_free(ScCell *cells, int n);
/* Resolve a cell's configuration exactly as `eidetic train` would and measure the model; a cell
 * the engine rejects is marked unavailable with the engine's message (never an error here). */
void sc_cell_probe(ScCell *c);
/* The cell's flags joined with spaces (for logs and result files). */
void sc_cell_cmdline(const ScCell *c, char *out, size_t n);
/* Estimated single-thread seconds of one training step of m on B sequences of L tokens with
 * `labels` labelled positions, from the model's weights, KV caches and recurrent state
 * (scorecard.c; docs/scorecard.md). */
double sc_step_seconds(const eidetic_model *m, int L, int B, int labels);
/* Estimated single-thread seconds of a training run (steps + evaluations) from one step's. */
double sc_estimate_seconds(double step_s, int B, int steps, int eval_every, int eval_examples);
/* Every registered mixer (the library's registry, eidetic_mixer_*) as a comma list: the scorecard's
 * default mixer axis. */
const char *sc_all_mixers(void);

/* ---- files ---- */

/* Lock files: sc_lock_acquire returns 1 when this process now holds PATH, 0 when a live process
 * holds it (*holder = its pid), -1 on an I/O error. A lock whose process is gone (pid dead or
 * reused: the start time differs) is taken over. */
int sc_lock_acquire(const char *path, long *holder);
void sc_lock_release(const char *path);

int sc_result_write(const char *path, const ScGrid *g, const ScCell *c, const ScResult *r);
int sc_result_read(const char *path, ScResult *r); /* -1 if absent or unreadable */
int sc_metrics_read(const char *path, ScMetrics *m); /* metrics.jsonl; -1 if absent */

/* ---- report ---- */
typedef struct {
    const ScGrid *g;
    ScCell *cells;
    ScResult *res;  /* per cell */
    int *have;      /* per cell: 1 = res[i] is a finished result */
    int n;
    /* accuracy vs test length (MQAR): per cell, -1 = not measured */
    int n_lengths;
    int lengths[SC_MAX_LENGTHS];
    double (*len_acc)[SC_MAX_LENGTHS]; /* [n][n_lengths], NAN = not measured */
} ScReport;

int sc_best_lr_cell(const ScReport *r, int mixer, int d, int task); /* index of the best finished cell, -1 */
int sc_write_csv(const ScReport *r, const char *path);
int sc_write_md(const ScReport *r, const char *path, const char *title);
/* plots/state.dat, plots/length.dat, plots/loss_<k>.dat (+ plots/loss_titles.txt); cells_dir for metrics */
int sc_write_plot_data(const ScReport *r, const char *plots_dir, const char *cells_dir);

#endif
