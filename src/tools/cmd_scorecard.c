/* cmd_scorecard.c — `eidetic scorecard`: train and evaluate a grid of models (mixers × d_model ×
 * tasks × learning rates), each cell an isolated `eidetic train` subprocess; then results.csv,
 * results.md and gnuplot plots (recall vs state size with published points, accuracy vs sequence
 * length, loss curves). Resumable (a finished cell is never recomputed) and safe to run from
 * several processes on one directory (lock files); docs/scorecard.md. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "cli/cli.h"
#include "core/common.h"
#include "io/opts.h"
#include "tools/scorecard.h"
#include "tools/spawn.h"

typedef struct {
    ScGrid g;
    char grid_name[32];
    char out[512];
    char exe[1024];
    int jobs, threads, dry_run, report_only, no_plots, len_examples;
    double max_minutes, max_minutes_per_cell;
    int lengths[SC_MAX_LENGTHS], n_lengths; /* multiples of the training length (MQAR length plot) */
    int user_tasks;                         /* --tasks given: a task the engine rejects is an error */
    int custom;                             /* an axis was overridden */
    int budget_given;                       /* --max-minutes given */
} ScOpts;

/* Everything a worker needs. */
typedef struct {
    const ScOpts *o;
    ScCell *cells;
    int n;
    double *cap_s;      /* per cell time budget (0 = none) */
    double est_total;   /* estimated seconds of the cells still to run, one thread */
    int ran, worker;
    double wall_sum, est_sum; /* this process's runs: measured vs estimated, for the ETA */
} Ctx;

static void scorecard_help(void) {
    printf(
        "usage: eidetic scorecard [--quick | --full] [options]\n\n"
        "Trains and evaluates a grid of models — mixers x d_model x tasks x learning rates — each run an\n"
        "`eidetic train` subprocess, and reports the best accuracy over learning rates per (mixer, d_model,\n"
        "task) as Zoology does. Finished runs are never recomputed; several scorecard processes may share\n"
        "one --out directory. Writes OUT/results.csv (one row per run), OUT/results.md and OUT/plots/\n"
        "(state.png/svg: accuracy vs Zoology state size with published points; length.png/svg: accuracy\n"
        "vs sequence length; loss_N.png/svg: loss curves). See docs/scorecard.md.\n\n"
        "grids:\n"
        "  --quick                  (default) every registered mixer, d_model 64, MQAR/copy/phonebook/selcopy, 2 lrs, short\n"
        "                           runs; <= 20 min on 2 cores (per-run budgets from --max-minutes 18)\n"
        "  --full                   Zoology-like: d_model 64,128,256; lrs 1e-4,4.6e-4,2.2e-3,1e-2; MQAR\n"
        "                           (64,4),(128,8),(256,16) + copy, phonebook, selcopy; 3000 steps (days)\n"
        "axes (override the grid's):\n"
        "  --mixers LIST            comma list; a hybrid is a+b (layers a,b); one mixer = 2 layers of it\n"
        "  --d-models LIST          comma list of d_model\n"
        "  --tasks 'T; T; ...'      each T = task name + its train flags, e.g. 'mqar --seq-len 128 --kv-pairs 8'\n"
        "  --lrs LIST               comma list of peak learning rates (min-lr = lr x 0.1)\n"
        "training flags of every run:\n"
        "  --steps N                steps of every run (wins over a task's own --steps)\n"
        "  --batch N, --eval-every N, --eval-examples N, --target-acc X, --seed N\n"
        "  --swa-window N           window of sliding-window layers (quick 16, full 64)\n"
        "  --train-flags 'FLAGS'    more `eidetic train` flags for every run\n"
        "running:\n"
        "  --out DIR                scorecard directory (default runs/scorecard)\n"
        "  --jobs N                 runs at a time (default: number of cores)\n"
        "  --threads N              threads per run (default: cores / jobs)\n"
        "  --max-minutes X          time budget of all runs: each run gets a share proportional to its\n"
        "                           estimated cost and stops (checkpointed, marked 'capped') when it is spent\n"
        "  --max-minutes-per-cell X the same budget for every run (wins over --max-minutes); 0 = none\n"
        "  --lengths LIST           length plot: evaluate each mixer's best MQAR checkpoint at these multiples\n"
        "                           of its training length (default 1,2,4,8; 'none' = off)\n"
        "  --length-examples N      test examples per length (default 256)\n"
        "  --dry-run                print the runs, their state sizes, status and estimated time; run nothing\n"
        "  --report-only            run nothing; write tables and plots from the finished runs\n"
        "  --no-plots               tables only (no gnuplot)\n");
}

/* ---------------------------------------------------------------- grids ---- */

static int set_axes(ScGrid *g, const char *mixers, const char *ds, const char *tasks, const char *lrs) {
    if (sc_parse_mixers(g, mixers, "--mixers") || sc_parse_ints(g->d_models, &g->n_d, ds, "--d-models", 1, 65536) ||
        sc_parse_tasks(g, tasks, "--tasks") || sc_parse_doubles(g->lrs, &g->n_lrs, lrs, "--lrs", 1e-8, 10))
        return -1;
    return 0;
}

/* The quick grid: every mixer, small models, short runs. MQAR needs ~250 steps at a high lr before
 * its accuracy takes off (d 64, V 8192), so it gets 500 steps; the other tasks 300. */
static int grid_quick(ScOpts *o) {
    ScGrid *g = &o->g;
    g->steps = 300, g->batch = 64, g->eval_every = 100, g->eval_examples = 500, g->swa_window = 16;
    o->max_minutes = 18;
    return set_axes(g, sc_all_mixers(), "64",
                    "mqar --seq-len 64 --kv-pairs 4 --steps 500;"
                    "copy --vocab 30 --seq-len 32 --min-len 4 --max-len 12;"
                    "phonebook --vocab 96 --first-names 32 --surnames 32 --min-len 4 --max-len 6 --max-queries 2 "
                    "--digits 4 --seq-len 96;"
                    "selcopy --vocab 16 --num-tokens 8 --seq-len 64",
                    "2.2e-3,1e-2");
}

/* The full grid: Zoology Figure 2 axes (docs/tasks.md §1.5, CPU-scaled as §1.8) plus the other tasks at
 * their spec settings scaled to CPU (copy: Jelassi lengths 5..20; phonebook: pb-cpu; selcopy: M 16). */
static int grid_full(ScOpts *o) {
    ScGrid *g = &o->g;
    g->steps = 3000, g->batch = 64, g->eval_every = 250, g->eval_examples = 1000, g->swa_window = 64;
    o->max_minutes = 0;
    return set_axes(g, sc_all_mixers(), "64,128,256",
                    "mqar --seq-len 64 --kv-pairs 4; mqar --seq-len 128 --kv-pairs 8; mqar --seq-len 256 --kv-pairs 16;"
                    "copy --vocab 30 --seq-len 48 --min-len 5 --max-len 20;"
                    "phonebook --vocab 544 --min-len 20 --max-len 60 --max-queries 8 --digits 6 --seq-len 900;"
                    "selcopy --vocab 16 --num-tokens 16 --seq-len 288",
                    "1e-4,4.6e-4,2.2e-3,1e-2");
}

/* ---------------------------------------------------------------- options ---- */

/* The flags as given, parsed by the CLI's common option parser (opts_parse, io/opts.h), then
 * checked and applied over the chosen grid. Unset values keep these markers, so a flag that was given
 * is told apart from the grid's default. */
#define UNSET_INT INT_MIN
#define UNSET_STR "\x01"
#define UNSET_DBL (-1e308)
typedef struct {
    int quick, full, dry_run, report_only, no_plots;
    char mixers[1024], d_models[256], tasks[4096], lrs[256], train_flags[512], lengths[256], out[512];
    int steps, batch, eval_every, eval_examples, swa_window, jobs, threads, length_examples;
    uint64_t seed;
    double target_acc, max_minutes, max_minutes_per_cell;
} ScFlags;

#define O(n, t, f) {n, t, offsetof(ScFlags, f), sizeof(((ScFlags *)0)->f), ""}
static const OptDesc sc_opts[] = {
    O("quick", OPT_FLAG, quick), O("full", OPT_FLAG, full), O("dry-run", OPT_FLAG, dry_run),
    O("report-only", OPT_FLAG, report_only), O("no-plots", OPT_FLAG, no_plots),
    O("mixers", OPT_STR, mixers), O("d-models", OPT_STR, d_models), O("tasks", OPT_STR, tasks),
    O("lrs", OPT_STR, lrs), O("train-flags", OPT_STR, train_flags), O("lengths", OPT_STR, lengths),
    O("out", OPT_STR, out), O("steps", OPT_INT, steps), O("batch", OPT_INT, batch),
    O("eval-every", OPT_INT, eval_every), O("eval-examples", OPT_INT, eval_examples),
    O("swa-window", OPT_INT, swa_window), O("jobs", OPT_INT, jobs), O("threads", OPT_INT, threads),
    O("length-examples", OPT_INT, length_examples), O("seed", OPT_U64, seed), O("target-acc", OPT_DBL, target_acc),
    O("max-minutes", OPT_DBL, max_minutes), O("max-minutes-per-cell", OPT_DBL, max_minutes_per_cell),
};
#undef O
#define N_SC_OPTS (int)(sizeof sc_opts / sizeof sc_opts[0])

/* A given integer flag must be >= lo. 1 = given and fine, 0 = not given, -1 = out of range. */
static int int_flag(int v, const char *flag, int lo, int *out) {
    if (v == UNSET_INT) return 0;
    if (v < lo) return eid_error("--%s: expected an integer >= %d, got %d", flag, lo, v), -1;
    *out = v;
    return 1;
}

static int dbl_flag(double v, const char *flag, double lo, double hi, double *out) {
    if (v == UNSET_DBL) return 0; /* not given; a given NaN fails the range check */
    if (!(v >= lo && v <= hi)) return eid_error("--%s: expected a number in [%g, %g], got %g", flag, lo, hi, v), -1;
    *out = v;
    return 1;
}

static int given(const char *s) { return strcmp(s, UNSET_STR) != 0; }

static int parse_lengths(ScOpts *o, const char *s) {
    if (!strcmp(s, "none")) return o->n_lengths = 0, 0;
    int tmp[SC_MAX_LIST], n = 0;
    if (sc_parse_ints(tmp, &n, s, "--lengths", 1, 64) != 0) return -1;
    if (n > SC_MAX_LENGTHS) return eid_error("--lengths: at most %d lengths, got %d", SC_MAX_LENGTHS, n), -1;
    memcpy(o->lengths, tmp, sizeof(int) * n), o->n_lengths = n;
    return 0;
}

/* -1 + eid_error on a bad flag */
static int apply_flags(ScOpts *o, const ScFlags *f) {
    ScGrid *g = &o->g;
    if (f->quick && f->full) return eid_error("--quick and --full: choose one grid"), -1;
    /* the grid first, so the other flags override it wherever they are */
    snprintf(o->grid_name, sizeof o->grid_name, "%s", f->full ? "full" : "quick");
    if ((f->full ? grid_full(o) : grid_quick(o)) != 0) return -1;
    o->dry_run = f->dry_run, o->report_only = f->report_only, o->no_plots = f->no_plots;
    if (given(f->mixers) && (o->custom = 1, sc_parse_mixers(g, f->mixers, "--mixers")) != 0) return -1;
    if (given(f->d_models) && (o->custom = 1, sc_parse_ints(g->d_models, &g->n_d, f->d_models, "--d-models", 1, 65536)))
        return -1;
    if (given(f->tasks) && (o->custom = o->user_tasks = 1, sc_parse_tasks(g, f->tasks, "--tasks")) != 0) return -1;
    if (given(f->lrs) && (o->custom = 1, sc_parse_doubles(g->lrs, &g->n_lrs, f->lrs, "--lrs", 1e-8, 10)) != 0) return -1;
    if (given(f->train_flags)) o->custom = 1, snprintf(g->train_flags, sizeof g->train_flags, "%s", f->train_flags);
    if (given(f->lengths) && parse_lengths(o, f->lengths) != 0) return -1;
    if (given(f->out)) {
        if (!f->out[0] || strlen(f->out) >= sizeof o->out - 64) return eid_error("--out: expected a directory path"), -1;
        snprintf(o->out, sizeof o->out, "%s", f->out);
    }
    int r[9];
    r[0] = int_flag(f->steps, "steps", 1, &g->steps);
    if (r[0] > 0) g->steps_override = 1;
    r[1] = int_flag(f->batch, "batch", 1, &g->batch);
    r[2] = int_flag(f->eval_every, "eval-every", 0, &g->eval_every);
    r[3] = int_flag(f->eval_examples, "eval-examples", 1, &g->eval_examples);
    r[4] = int_flag(f->swa_window, "swa-window", 1, &g->swa_window);
    r[5] = int_flag(f->jobs, "jobs", 1, &o->jobs);
    r[6] = int_flag(f->threads, "threads", 1, &o->threads);
    r[7] = int_flag(f->length_examples, "length-examples", 1, &o->len_examples);
    r[8] = dbl_flag(f->target_acc, "target-acc", 0, 1, &g->target_acc);
    for (int i = 0; i < 9; i++)
        if (r[i] < 0) return -1;
    if (f->seed != UINT64_MAX) {
        if (f->seed < 1) return eid_error("--seed: expected an integer >= 1, got 0"), -1;
        g->seed = f->seed;
    }
    int b = dbl_flag(f->max_minutes, "max-minutes", 0, 1e7, &o->max_minutes);
    if (b < 0 || dbl_flag(f->max_minutes_per_cell, "max-minutes-per-cell", 0, 1e7, &o->max_minutes_per_cell) < 0)
        return -1;
    o->budget_given = b > 0;
    return 0;
}

static int parse_options(ScOpts *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->g.warmup = -1, o->g.target_acc = -1, o->g.min_lr_ratio = 0.1;
    o->max_minutes_per_cell = -1, o->len_examples = 256;
    o->lengths[0] = 1, o->lengths[1] = 2, o->lengths[2] = 4, o->lengths[3] = 8, o->n_lengths = 4;
    snprintf(o->out, sizeof o->out, "runs/scorecard");
    ScFlags f = {.steps = UNSET_INT, .batch = UNSET_INT, .eval_every = UNSET_INT, .eval_examples = UNSET_INT,
                 .swa_window = UNSET_INT, .jobs = UNSET_INT, .threads = UNSET_INT, .length_examples = UNSET_INT,
                 .seed = UINT64_MAX, .target_acc = UNSET_DBL, .max_minutes = UNSET_DBL,
                 .max_minutes_per_cell = UNSET_DBL};
    char *strs[] = {f.mixers, f.d_models, f.tasks, f.lrs, f.train_flags, f.lengths, f.out};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) strcpy(strs[i], UNSET_STR);
    if (opts_parse(sc_opts, N_SC_OPTS, &f, argc - 2, argv + 2, "scorecard") != 0 || apply_flags(o, &f) != 0)
        return cli_fail("scorecard"), -1;
    return 0;
}

/* ---------------------------------------------------------------- paths ---- */

static void cell_path(const ScOpts *o, const ScCell *c, const char *leaf, char *out, size_t n) {
    snprintf(out, n, "%s/cells/%s%s%s", o->out, c->id, leaf[0] == '.' ? "" : "/", leaf);
}

static int cell_done(const ScOpts *o, const ScCell *c) {
    char p[1200];
    cell_path(o, c, "result.json", p, sizeof p);
    return eid_file_exists(p);
}

static void fmt_duration(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e8) snprintf(buf, n, "--");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s, 3600) / 60);
    else snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
}

/* ---------------------------------------------------------------- subprocesses ---- */

/* Run argv with stdin from /dev/null, stdout/stderr to files (append for stderr); the child dies
 * with us (an interrupted scorecard leaves no orphan training). Returns the wait status, or -1;
 * *cpu_s += the child's CPU time. */
static int run_to_files(char *const *argv, const char *out_path, const char *err_path, double *cpu_s) {
    SpawnOpts so = {.in = "/dev/null", .out = out_path, .err = err_path, .err_append = 1, .die_with_parent = 1};
    pid_t pid = spawn_start(argv, &so);
    return pid < 0 ? -1 : spawn_wait(pid, cpu_s);
}

/* "accuracy: X" on a line of the file, or NAN */
static double read_accuracy(const char *path) {
    FILE *f = fopen(path, "r");
    double acc = NAN, v;
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "accuracy: %lf", &v) == 1) acc = v;
    if (f) fclose(f);
    return acc;
}

/* the last "error:" line of a log, without the "eidetic train: error: " prefix */
static void last_error(const char *path, char *out, size_t n) {
    FILE *f = fopen(path, "r");
    char line[1024];
    snprintf(out, n, "training failed (see %.250s)", path);
    while (f && fgets(line, sizeof line, f)) {
        char *e = strstr(line, "error: ");
        if (!e) continue;
        line[strcspn(line, "\n")] = 0;
        snprintf(out, n, "%s", e + 7);
    }
    if (f) fclose(f);
}

/* ---------------------------------------------------------------- one cell ---- */

typedef struct { char *v[SC_MAX_ARGS + 16]; int n; char buf[8][32]; } Argv;

static void argv_push(Argv *a, const char *s) { a->v[a->n++] = (char *)s; a->v[a->n] = NULL; }

/* the train command of one segment: the first starts the run, later ones resume it */
static void segment_argv(const Ctx *x, const ScCell *c, const char *rundir, int first, int seg, Argv *a) {
    a->n = 0;
    argv_push(a, x->o->exe), argv_push(a, "train");
    if (first) {
        for (int i = 0; i < c->argc; i++) argv_push(a, c->argv[i]);
        argv_push(a, "--out"), argv_push(a, rundir);
    } else argv_push(a, "--resume"), argv_push(a, rundir);
    argv_push(a, "--quiet");
    snprintf(a->buf[0], 32, "%d", x->o->threads);
    argv_push(a, "--threads"), argv_push(a, a->buf[0]);
    if (seg > 0) {
        snprintf(a->buf[1], 32, "%d", seg);
        argv_push(a, "--stop-after"), argv_push(a, a->buf[1]);
    }
}

/* Train one cell. With a time budget the run goes in segments of eval_every steps (each a
 * `train --resume`, bit-exact with one run) so that it can stop, checkpointed and evaluated, when
 * the budget is spent. Returns 0 with *r filled, 1 if the subprocess was killed (no result), -1. */
static int run_cell(Ctx *x, const ScCell *c, double cap_s, ScResult *r) {
    char cdir[1100], rundir[1200], log[1200], out[1200];
    cell_path(x->o, c, "", cdir, sizeof cdir);
    snprintf(rundir, sizeof rundir, "%s/run", cdir), snprintf(log, sizeof log, "%s/train.log", cdir);
    snprintf(out, sizeof out, "%s/stdout.txt", cdir);
    if (eid_remove_tree(rundir) != 0 || eid_mkdir_p(cdir) != 0) return -1; /* an interrupted run restarts */
    unlink(log);
    memset(r, 0, sizeof *r);
    int seg = cap_s > 0 ? (c->eval_every > 0 ? c->eval_every : EID_MAX(1, c->steps / 10)) : 0;
    double t0 = eid_now();
    ScMetrics *m = eid_xmalloc(sizeof *m);
    int rc = 0;
    snprintf(r->status, sizeof r->status, "done");
    for (int first = 1;; first = 0) {
        Argv a;
        segment_argv(x, c, rundir, first, seg, &a);
        int st = run_to_files(a.v, out, log, &r->cpu_s);
        if (st < 0) { rc = -1; break; }
        if (WIFSIGNALED(st)) { rc = 1; break; }
        if (WEXITSTATUS(st) != 0) {
            snprintf(r->status, sizeof r->status, "failed");
            last_error(log, r->message, sizeof r->message);
            break;
        }
        char mpath[1300];
        snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", rundir);
        if (sc_metrics_read(mpath, m) != 0) {
            snprintf(r->status, sizeof r->status, "failed");
            snprintf(r->message, sizeof r->message, "%.250s: missing after a successful run", mpath);
            break;
        }
        if (m->last_step >= c->steps) break;
        if (c->target_acc > 0 && m->last_has_test && m->last_acc >= c->target_acc) {
            snprintf(r->status, sizeof r->status, "early-stop");
            break;
        }
        if (!seg) { snprintf(r->status, sizeof r->status, "early-stop"); break; } /* one run that ended early */
        if (eid_now() - t0 >= cap_s) { snprintf(r->status, sizeof r->status, "capped"); break; }
    }
    r->wall_s = eid_now() - t0;
    if (rc == 0 && strcmp(r->status, "failed") != 0) {
        r->final_acc = read_accuracy(out);
        r->steps_done = m->last_step, r->final_loss = m->last_loss;
        r->best_acc = m->best_acc, r->best_step = m->best_step;
        if (isnan(r->best_acc) || r->final_acc > r->best_acc) r->best_acc = r->final_acc, r->best_step = m->last_step;
    } else if (rc == 0) r->final_acc = r->best_acc = r->final_loss = NAN;
    free(m);
    return rc;
}

/* ---------------------------------------------------------------- the grid ---- */

static void cell_name(const ScOpts *o, const ScCell *c, char *out, size_t n) {
    snprintf(out, n, "%s d%d %s lr %.2g", o->g.mixers[c->mixer].spec, o->g.d_models[c->d], o->g.tasks[c->task].label,
             c->lr_value);
}

static int count_done(const Ctx *x, double *rem_est) {
    int k = 0;
    *rem_est = 0;
    for (int i = 0; i < x->n; i++) {
        if (!x->cells[i].available) continue;
        if (cell_done(x->o, &x->cells[i])) k++;
        else *rem_est += x->cells[i].est_s;
    }
    return k;
}

static void progress_line(Ctx *x, const ScCell *c, const ScResult *r) {
    double rem;
    int done = count_done(x, &rem), avail = 0;
    for (int i = 0; i < x->n; i++) avail += x->cells[i].available;
    /* remaining = estimate x (measured / estimated so far in this process) / parallel runs */
    double ratio = x->est_sum > 0 ? x->wall_sum / x->est_sum : 1, eta = rem * ratio / x->o->jobs;
    char name[256], es[32];
    cell_name(x->o, c, name, sizeof name);
    fmt_duration(eta, es, sizeof es);
    if (!strcmp(r->status, "failed"))
        fprintf(stderr, "scorecard: [%d/%d] %s: FAILED: %s (%.1fs) | ETA %s\n", done, avail, name, r->message, r->wall_s, es);
    else
        fprintf(stderr, "scorecard: [%d/%d] %s: accuracy %.4f (best %.4f), %ld steps%s, %.1fs | ETA %s\n", done, avail,
                name, r->final_acc, r->best_acc, r->steps_done,
                !strcmp(r->status, "capped") ? " (time budget spent)" : !strcmp(r->status, "early-stop") ? " (target reached)" : "",
                r->wall_s, es);
}

/* Train one claimed cell and record it. 0 = recorded or skipped, -1 = error. */
static int do_cell(Ctx *x, int i) {
    ScCell *c = &x->cells[i];
    char name[256], path[1200];
    cell_name(x->o, c, name, sizeof name);
    fprintf(stderr, "scorecard: run %s -> %s/cells/%s\n", name, x->o->out, c->id);
    ScResult r;
    int rc = run_cell(x, c, x->cap_s[i], &r);
    if (rc == 1) {
        fprintf(stderr, "scorecard: %s: the training process was killed; not recorded (it restarts on the next run)\n", name);
        return 0;
    }
    if (rc < 0) return -1;
    cell_path(x->o, c, "result.json", path, sizeof path);
    if (sc_result_write(path, &x->o->g, c, &r) != 0) return -1;
    x->ran++, x->wall_sum += r.wall_s, x->est_sum += c->est_s;
    progress_line(x, c, &r);
    return 0;
}

/* One pass over the grid: every cell that is neither finished, claimed by a live process, nor
 * already tried by this process is claimed and run. Returns the number of claimed cells, or -1. */
static int run_pass(Ctx *x, char *tried, long *holder) {
    int held = 0;
    for (int i = 0; i < x->n; i++) {
        ScCell *c = &x->cells[i];
        if (!c->available || tried[i] || cell_done(x->o, c)) continue;
        char lock[1200];
        cell_path(x->o, c, ".lock", lock, sizeof lock);
        long h;
        int got = sc_lock_acquire(lock, &h);
        if (got < 0) return -1;
        if (got == 0) { held++, *holder = h; continue; }
        tried[i] = 1;
        int rc = cell_done(x->o, c) ? 0 : do_cell(x, i); /* finished between our check and the claim */
        sc_lock_release(lock);
        if (rc != 0) return -1;
    }
    return held;
}

/* --jobs N: N-1 forked workers and this process each make a pass, claiming cells through the lock
 * files; then this process waits for cells that other scorecard processes hold. */
static int run_grid(Ctx *x) {
    char *tried = eid_xcalloc((size_t)x->n + 1, 1);
    pid_t pids[256];
    int nw = 0, rc = 0;
    long holder = 0;
    fflush(stdout), fflush(stderr);
    for (int w = 1; w < x->o->jobs && w < 256; w++) {
        pid_t pid = spawn_fork(1);
        if (pid < 0) { rc = -1; break; }
        if (pid == 0) {
            x->worker = w;
            usleep(200000 * w); /* let the workers claim in turn rather than all race for cell 0 */
            int r = run_pass(x, tried, &holder);
            if (r < 0) fprintf(stderr, "eidetic scorecard: error (worker %d): %s\n", w, eid_last_error());
            _exit(r < 0 ? 1 : 0);
        }
        pids[nw++] = pid;
    }
    if (rc == 0 && run_pass(x, tried, &holder) < 0) rc = -1;
    for (int k = 0; k < nw; k++) {
        int st = spawn_wait(pids[k], NULL);
        if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) rc = rc ? rc : (eid_error("a scorecard worker failed (see above)"), -1);
    }
    double last_note = -1e9;
    while (rc == 0) {
        int held = run_pass(x, tried, &holder);
        if (held < 0) rc = -1;
        if (held <= 0) break;
        if (eid_now() - last_note > 60) {
            fprintf(stderr, "scorecard: waiting for %d run%s claimed by another process (pid %ld)\n", held,
                    held > 1 ? "s" : "", holder);
            last_note = eid_now();
        }
        sleep(2);
    }
    free(tried);
    return rc;
}

/* ---------------------------------------------------------------- probing ---- */

/* A user-typed task whose own flags the engine rejects is an error; anything else the engine cannot
 * build (a task this engine version lacks, a size one mixer does not support) is 'unavailable'. */
static int user_task_error(const ScOpts *o, const ScCell *c) {
    if (!o->user_tasks || strstr(c->reason, "unknown task")) return 0;
    if (strstr(c->reason, "unknown option") || strstr(c->reason, "needs a value") || strstr(c->reason, "expected"))
        return 1;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", o->g.tasks[c->task].flags);
    for (char *save = NULL, *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(t, '=');
        if (eq) *eq = 0;
        if (!strncmp(t, "--", 2) && strstr(c->reason, t)) return 1;
    }
    return 0;
}

/* --train-flags are checked once on a plain cell, so a typo is an error and not 'unavailable' */
static int check_train_flags(const ScOpts *o) {
    if (!o->g.train_flags[0]) return 0;
    ScGrid g = o->g;
    sc_parse_mixers(&g, eidetic_mixer_name(0), "--mixers"); /* any mixer: the first registered */
    g.n_tasks = 1, g.tasks[0] = (ScTask){"mqar", "", "mqar"};
    g.n_d = 1, g.n_lrs = 1, g.steps_override = 0;
    ScCell *c;
    int n;
    if (sc_grid_cells(&g, &c, &n) != 0) return cli_fail("scorecard"), -1;
    sc_cell_probe(&c[0]);
    int ok = c[0].available;
    if (!ok) fprintf(stderr, "eidetic scorecard: error: --train-flags '%s': %s\n", o->g.train_flags, c[0].reason);
    sc_cells_free(c, n);
    return ok ? 0 : -1;
}

static int probe_all(const ScOpts *o, ScCell *cells, int n) {
    for (int i = 0; i < n; i++) {
        sc_cell_probe(&cells[i]);
        if (!cells[i].available && user_task_error(o, &cells[i]))
            return fprintf(stderr, "eidetic scorecard: error: --tasks '%s %s': %s\n", o->g.tasks[cells[i].task].name,
                           o->g.tasks[cells[i].task].flags, cells[i].reason), -1;
    }
    return 0;
}

/* Per-run time budgets: each run gets max_minutes x jobs in proportion to its estimated cost, so
 * the whole grid fits the budget whatever the machine's speed; or the same budget for every run. */
static void set_caps(Ctx *x) {
    const ScOpts *o = x->o;
    x->est_total = 0;
    for (int i = 0; i < x->n; i++)
        if (x->cells[i].available && !cell_done(o, &x->cells[i])) x->est_total += x->cells[i].est_s;
    for (int i = 0; i < x->n; i++) {
        double cap = 0;
        if (o->max_minutes_per_cell >= 0) cap = o->max_minutes_per_cell * 60;
        else if (o->max_minutes > 0 && x->est_total > 0)
            cap = x->cells[i].est_s * o->max_minutes * 60 * o->jobs / x->est_total;
        x->cap_s[i] = cap;
    }
}

/* Speed-up of one run from more threads: small models scale poorly; 1.5x for 2 threads is an
 * assumption (not measured on an idle machine), used only for the printed estimate. */
static double thread_speedup(int threads) { return 1 + 0.5 * (threads - 1); }

static void print_plan(const Ctx *x) {
    const ScOpts *o = x->o;
    const ScGrid *g = &o->g;
    int done = 0, unav = 0;
    for (int i = 0; i < x->n; i++) {
        if (!x->cells[i].available) unav++;
        else done += cell_done(o, &x->cells[i]);
    }
    char es[32], bs[32];
    fmt_duration(x->est_total / (o->jobs * thread_speedup(o->threads)), es, sizeof es);
    fprintf(stderr, "scorecard: %s grid, %d runs (%d mixers x %d d_model x %d tasks x %d lrs) in %s: %d to run, %d "
                    "finished before, %d unavailable; estimated %s with %d job%s x %d thread%s\n",
            o->grid_name, x->n, g->n_mixers, g->n_d, g->n_tasks, g->n_lrs, o->out, x->n - done - unav, done, unav, es,
            o->jobs, o->jobs > 1 ? "s" : "", o->threads, o->threads > 1 ? "s" : "");
    if (o->max_minutes_per_cell > 0) fprintf(stderr, "scorecard: time budget %.1f min per run\n", o->max_minutes_per_cell);
    else if (o->max_minutes > 0 && x->est_total > 0) {
        fmt_duration(o->max_minutes * 60, bs, sizeof bs);
        fprintf(stderr, "scorecard: time budget %s for all runs, shared in proportion to their estimated cost%s\n", bs,
                x->est_total / o->jobs > o->max_minutes * 60 ? " (below the estimate: runs will stop early, marked 'capped')" : "");
    }
    for (int t = 0; t < g->n_tasks; t++) /* one line per unavailable task, not per cell */
        for (int i = 0; i < x->n; i++)
            if (x->cells[i].task == t && !x->cells[i].available) {
                fprintf(stderr, "scorecard: unavailable: %s (%s d%d...): %s\n", g->tasks[t].label,
                        g->mixers[x->cells[i].mixer].spec, g->d_models[x->cells[i].d], x->cells[i].reason);
                break;
            }
}

static void print_dry_run(const Ctx *x) {
    const ScOpts *o = x->o;
    printf("%-64s %-11s %9s %10s %12s %8s %8s  %s\n", "cell", "status", "params", "state", "zoo bytes", "est s", "cap s",
           "train flags");
    for (int i = 0; i < x->n; i++) {
        const ScCell *c = &x->cells[i];
        char cmd[2048];
        sc_cell_cmdline(c, cmd, sizeof cmd);
        if (!c->available) {
            printf("%-64s %-11s %s\n", c->id, "unavailable", c->reason);
            continue;
        }
        printf("%-64s %-11s %9zu %10zu %12.0f %8.0f %8.0f  %s\n", c->id, cell_done(o, c) ? "finished" : "to run",
               c->params, c->state_floats, 4 * c->zoo_floats, c->est_s, x->cap_s[i], cmd);
    }
}

/* ---------------------------------------------------------------- lengths ---- */

/* lengths.json of a cell: accuracies at the requested lengths, if all were measured with as many examples */
static int lengths_load(const ScOpts *o, const ScCell *c, double *acc) {
    char path[1200], buf[4096];
    cell_path(o, c, "lengths.json", path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(j, "examples"), *acc_o = cJSON_GetObjectItemCaseSensitive(j, "accuracy");
    int ok = cJSON_IsNumber(ex) && ex->valueint == o->len_examples && cJSON_IsObject(acc_o);
    for (int k = 0; ok && k < o->n_lengths; k++) {
        char key[32];
        snprintf(key, sizeof key, "%d", o->lengths[k] * c->seq_len);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(acc_o, key);
        if (!v) ok = 0;
        else acc[k] = cJSON_IsNumber(v) ? v->valuedouble : NAN; /* null: the engine could not run that length */
    }
    cJSON_Delete(j);
    return ok ? 0 : -1;
}

static int lengths_save(const ScOpts *o, const ScCell *c, const double *acc) {
    cJSON *j = cJSON_CreateObject(), *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "examples", o->len_examples);
    for (int k = 0; k < o->n_lengths; k++) {
        char key[32];
        snprintf(key, sizeof key, "%d", o->lengths[k] * c->seq_len);
        if (isnan(acc[k])) cJSON_AddNullToObject(a, key);
        else cJSON_AddNumberToObject(a, key, acc[k]);
    }
    cJSON_AddItemToObject(j, "accuracy", a);
    char *s = cJSON_Print(j), path[1200];
    cJSON_Delete(j);
    cell_path(o, c, "lengths.json", path, sizeof path);
    int rc = eid_write_text_atomic(path, s);
    free(s);
    return rc;
}

/* Evaluate a cell's final checkpoint at k x its training length, MQAR keys scaled with it (K/L fixed,
 * as in Zoology's L/K pairs): `eidetic eval --seq-len kL --kv-pairs kK`. */
static int lengths_measure(const Ctx *x, const ScCell *c, double *acc) {
    const ScOpts *o = x->o;
    char rundir[1200], out[1200], log[1200], cdir[1100];
    cell_path(o, c, "", cdir, sizeof cdir);
    snprintf(rundir, sizeof rundir, "%s/run", cdir), snprintf(out, sizeof out, "%s/eval_stdout.txt", cdir);
    snprintf(log, sizeof log, "%s/eval.log", cdir);
    for (int k = 0; k < o->n_lengths; k++) {
        char L[32], K[32], ex[32], th[32];
        snprintf(L, sizeof L, "%d", o->lengths[k] * c->seq_len), snprintf(K, sizeof K, "%d", o->lengths[k] * c->kv_pairs);
        snprintf(ex, sizeof ex, "%d", o->len_examples), snprintf(th, sizeof th, "%d", o->threads);
        char *argv[] = {(char *)o->exe, "eval", "--ckpt", rundir, "--seq-len", L, "--kv-pairs", K, "--examples", ex,
                        "--threads", th, NULL};
        int st = run_to_files(argv, out, log, NULL);
        if (st < 0) return -1;
        if (WIFSIGNALED(st)) return 1;
        acc[k] = WEXITSTATUS(st) == 0 ? read_accuracy(out) : NAN; /* e.g. a length the model cannot take */
    }
    return 0;
}

/* The length plot's cells: per mixer, the best lr at the largest d_model of the first MQAR task. */
static int length_cells(const ScReport *rep, int *out) {
    const ScGrid *g = rep->g;
    int t0 = -1, n = 0;
    for (int t = 0; t < g->n_tasks && t0 < 0; t++)
        for (int i = 0; i < rep->n; i++)
            if (rep->cells[i].task == t && rep->cells[i].available && !strcmp(rep->cells[i].task_name, "mqar")) { t0 = t; break; }
    if (t0 < 0) return 0;
    for (int m = 0; m < g->n_mixers; m++)
        for (int d = g->n_d - 1; d >= 0; d--) {
            int b = sc_best_lr_cell(rep, m, d, t0);
            if (b >= 0) { out[n++] = b; break; }
        }
    return n;
}

static int eval_lengths(Ctx *x, ScReport *rep) {
    const ScOpts *o = x->o;
    int *sel = eid_xmalloc(sizeof(int) * (size_t)(o->g.n_mixers + 1)), ns = length_cells(rep, sel), rc = 0;
    for (int s = 0; s < ns && rc >= 0; s++) {
        const ScCell *c = &rep->cells[sel[s]];
        double *acc = rep->len_acc[sel[s]];
        if (lengths_load(o, c, acc) == 0 || o->report_only || o->dry_run) continue;
        char lock[1200];
        cell_path(o, c, ".len.lock", lock, sizeof lock);
        long h;
        int got = sc_lock_acquire(lock, &h);
        if (got <= 0) { rc = got; continue; } /* another process measures it: its numbers appear next time */
        if (lengths_load(o, c, acc) != 0) {
            fprintf(stderr, "scorecard: length test of %s d%d at %d lengths\n", o->g.mixers[c->mixer].spec,
                    o->g.d_models[c->d], o->n_lengths);
            rc = lengths_measure(x, c, acc);
            if (rc == 0) rc = lengths_save(o, c, acc);
            if (rc == 1) rc = 0, fprintf(stderr, "scorecard: the length test was killed; not recorded\n");
        }
        sc_lock_release(lock);
    }
    free(sel);
    return rc < 0 ? -1 : 0;
}

/* ---------------------------------------------------------------- report ---- */

/* scripts/plot_scorecard.sh next to the binary's source tree (build/eidetic → scripts/), else ./scripts */
static int find_plot_script(const ScOpts *o, char *out, size_t n) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", o->exe);
    snprintf(out, n, "%s/../scripts/plot_scorecard.sh", dirname(dir));
    if (access(out, R_OK) == 0) return 0;
    snprintf(out, n, "scripts/plot_scorecard.sh");
    return access(out, R_OK) == 0 ? 0 : -1;
}

static int make_plots(const ScOpts *o) {
    char script[1200], plots[1100], log[1200];
    snprintf(plots, sizeof plots, "%s/plots", o->out), snprintf(log, sizeof log, "%s/plot.log", plots);
    if (find_plot_script(o, script, sizeof script) != 0)
        return eid_error("plots: scripts/plot_scorecard.sh not found next to %s or in ./scripts (tables are written; "
                         "--no-plots skips plots)", o->exe), -1;
    char *argv[] = {"/bin/bash", script, plots, NULL};
    unlink(log);
    int st = run_to_files(argv, "/dev/null", log, NULL);
    if (st < 0) return -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
        return eid_error("plots: gnuplot not found (Debian: apt-get install gnuplot-nox); tables are written, "
                         "--no-plots skips plots"), -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return eid_error("plots: gnuplot failed, see %s", log), -1;
    return 0;
}

static void report_load(const Ctx *x, ScReport *rep) {
    for (int i = 0; i < x->n; i++) {
        for (int k = 0; k < SC_MAX_LENGTHS; k++) rep->len_acc[i][k] = NAN;
        if (!x->cells[i].available || !cell_done(x->o, &x->cells[i])) continue;
        char path[1200];
        cell_path(x->o, &x->cells[i], "result.json", path, sizeof path);
        if (sc_result_read(path, &rep->res[i]) == 0) rep->have[i] = 1;
        else fprintf(stderr, "scorecard: warning: %s\n", eid_last_error());
    }
}

static int write_report(Ctx *x) {
    const ScOpts *o = x->o;
    ScReport rep = {.g = &o->g, .cells = x->cells, .n = x->n, .n_lengths = o->n_lengths};
    rep.res = eid_xcalloc((size_t)x->n, sizeof *rep.res);
    rep.have = eid_xcalloc((size_t)x->n, sizeof *rep.have);
    rep.len_acc = eid_xcalloc((size_t)x->n, sizeof *rep.len_acc);
    memcpy(rep.lengths, o->lengths, sizeof rep.lengths);
    report_load(x, &rep);
    int rc = o->n_lengths ? eval_lengths(x, &rep) : 0;
    char path[1100], title[700], plots[1100], cells[1100];
    snprintf(title, sizeof title, "%s grid (%s)", o->grid_name, o->out);
    snprintf(plots, sizeof plots, "%s/plots", o->out), snprintf(cells, sizeof cells, "%s/cells", o->out);
    if (rc == 0) snprintf(path, sizeof path, "%s/results.csv", o->out), rc = sc_write_csv(&rep, path);
    if (rc == 0) snprintf(path, sizeof path, "%s/results.md", o->out), rc = sc_write_md(&rep, path, title);
    if (rc == 0 && !o->no_plots) rc = sc_write_plot_data(&rep, plots, cells);
    if (rc == 0 && !o->no_plots) rc = make_plots(o);
    free(rep.res), free(rep.have), free(rep.len_acc);
    return rc;
}

/* ---------------------------------------------------------------- command ---- */

static int setup(ScOpts *o, int argc, char **argv, Ctx *x) {
    if (parse_options(o, argc, argv) != 0) return -1;
    if (o->custom && !o->budget_given) o->max_minutes = 0; /* the quick budget was sized for the quick grid */
    if (o->custom) { /* "custom/quick": the quick grid's settings with some axes replaced */
        char base[8];
        snprintf(base, sizeof base, "%.7s", o->grid_name);
        snprintf(o->grid_name, sizeof o->grid_name, "custom/%s", base);
    }
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1) ncpu = 1;
    if (!o->jobs) o->jobs = ncpu;
    if (!o->threads) o->threads = EID_MAX(1, ncpu / o->jobs);
    ssize_t k = readlink("/proc/self/exe", o->exe, sizeof o->exe - 1);
    if (k <= 0) return fprintf(stderr, "eidetic scorecard: error: cannot find the eidetic binary (/proc/self/exe)\n"), -1;
    o->exe[k] = 0;
    if (check_train_flags(o) != 0) return -1;
    memset(x, 0, sizeof *x);
    x->o = o;
    if (sc_grid_cells(&o->g, &x->cells, &x->n) != 0) return cli_fail("scorecard"), -1;
    if (probe_all(o, x->cells, x->n) != 0) return -1;
    x->cap_s = eid_xcalloc((size_t)x->n + 1, sizeof *x->cap_s);
    set_caps(x);
    return 0;
}

int cmd_scorecard(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return scorecard_help(), 0;
    ScOpts o;
    Ctx x;
    if (setup(&o, argc, argv, &x) != 0) return 1;
    print_plan(&x);
    if (o.dry_run) {
        print_dry_run(&x);
        sc_cells_free(x.cells, x.n), free(x.cap_s);
        return 0;
    }
    char cells[1100];
    snprintf(cells, sizeof cells, "%s/cells", o.out);
    int rc = eid_mkdir_p(cells);
    if (rc == 0 && !o.report_only) rc = run_grid(&x);
    if (rc == 0) rc = write_report(&x);
    int pending = 0, avail = 0;
    for (int i = 0; i < x.n; i++) avail += x.cells[i].available, pending += x.cells[i].available && !cell_done(&o, &x.cells[i]);
    sc_cells_free(x.cells, x.n), free(x.cap_s);
    if (rc != 0) return cli_fail("scorecard");
    fprintf(stderr, "scorecard: %d/%d runs finished (%d unavailable); %s/results.md, results.csv%s\n", avail - pending,
            avail, x.n - avail, o.out, o.no_plots ? "" : ", plots/");
    if (pending && !o.report_only)
        return fprintf(stderr, "eidetic scorecard: error: %d runs did not finish (see their train.log); run the same "
                               "command again to finish them\n", pending), 1;
    return 0;
}
