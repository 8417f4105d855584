/* rundir.h — the run directory of `eidetic train` and its crash-safe checkpoints
 * (docs/reliability.md "Crash-safe training"):
 *
 *   RUN/checkpoints/step-00000040/  config.json, model.safetensors, training_state.safetensors
 *   RUN/current -> checkpoints/step-00000040        switched with one rename(): the commit point
 *   RUN/config.json -> current/config.json          (same for model.safetensors and
 *                                                    training_state.safetensors: readers of a
 *                                                    checkpoint directory keep working)
 *   RUN/metrics.jsonl                                one line per step, each one write() (O_APPEND)
 *   RUN/lock                                         flock: one trainer per run directory
 *
 * A checkpoint is written into RUN/checkpoints/.partial-step-N.PID/, fsynced, renamed to step-N,
 * then RUN/current is switched; the training state records the byte length of metrics.jsonl at its
 * step, and a resume truncates the file to it. The last two checkpoints are kept. A run directory
 * with plain files (written before this layout) still loads and resumes, and is converted by its
 * first new checkpoint. */
#ifndef EIDETIC_RUNDIR_H
#define EIDETIC_RUNDIR_H
#include <stddef.h>

typedef struct {
    char dir[512];
    int metrics_fd, lock_fd;
    long long metrics_bytes; /* current length of metrics.jsonl */
    long committed_step;     /* step of RUN/current, −1 for none */
    char partial[1024];      /* the checkpoint being written, "" when none */
} RunDir;

/* Where the checkpoint files of run directory DIR are: DIR/current when it exists, else DIR
 * itself (the older plain layout). -1 + eid_error for a dangling DIR/current. */
int rundir_locate(const char *dir, char *out, size_t n);
/* A fresh run: create DIR, remove an earlier run's checkpoints and links, start metrics.jsonl. */
int rundir_open_fresh(RunDir *r, const char *dir);
/* A resumed run at checkpoint `step`: remove stale partial checkpoints, repair the top-level
 * links, truncate metrics.jsonl to metrics_bytes (−1: not recorded; then to the end of the line of
 * `step`). */
int rundir_open_resume(RunDir *r, const char *dir, long step, long long metrics_bytes);
void rundir_close(RunDir *r);
/* Append one line (with its '\n') with a single write(); a failed or short write is undone. */
int rundir_metrics_append(RunDir *r, long step, const char *line, size_t n);

/* Checkpoint of `step`: rundir_begin gives the directory to write the three files into (returns 1
 * when `step` is already the committed checkpoint: nothing to write); rundir_commit makes it the
 * current checkpoint; rundir_abort removes a partial one. Errors name the file and say that the
 * previous checkpoint is intact. */
int rundir_begin(RunDir *r, long step, char *dir, size_t n);
int rundir_commit(RunDir *r, long step);
void rundir_abort(RunDir *r);
/* After a failed write into the partial checkpoint: remove it and extend the error with "the
 * previous checkpoint in RUN (step N) is intact". Returns -1. */
int rundir_fail_intact(RunDir *r);

/* SIGINT/SIGTERM set a stop request (a second one exits at once); SIGXFSZ is ignored so that
 * exceeding `ulimit -f` is a write error (EFBIG) reported like any other. */
void rundir_signals_install(void);
int rundir_stop_signal(void); /* the signal received, or 0 */

/* Test-only fault injection, EIDETIC_FAULT=POINT:STEP (docs/reliability.md): rundir_fault reports
 * whether POINT at STEP was requested; rundir_fault_kill raises SIGKILL there. */
int rundir_fault(const char *point, long step);
void rundir_fault_kill(const char *point, long step);

#endif
