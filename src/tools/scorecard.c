/* scorecard.c — grid expansion, cell identity and probing, lock and result files, metrics
 * summaries, and the report writers (results.csv, results.md, plot data for gnuplot). */
#include "tools/scorecard.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "core/common.h"

/* ---------------------------------------------------------------- parsing the grid axes ---- */

/* Split `list` on `sep` into trimmed items; calls f(item) for each; an empty item is an error. */
static int for_items(const char *list, char sep, const char *flag, int (*f)(void *, const char *), void *ctx) {
    size_t len = strlen(list);
    if (len == 0) return eid_error("%s: expected a non-empty list", flag), -1;
    char *buf = eid_xstrdup(list);
    int rc = 0;
    for (char *p = buf; p && rc == 0;) {
        char *next = strchr(p, sep);
        if (next) *next++ = 0;
        while (isspace((unsigned char)*p)) p++;
        char *e = p + strlen(p);
        while (e > p && isspace((unsigned char)e[-1])) *--e = 0;
        if (!*p) rc = (eid_error("%s: empty entry in '%s'", flag, list), -1);
        else rc = f(ctx, p);
        p = next;
    }
    free(buf);
    return rc;
}

/* Every registered mixer joined with sep (the library's registry). */
static const char *mixer_names(const char *sep) {
    static char buf[2][256];
    char *b = buf[sep[1] != 0];
    b[0] = 0;
    for (int i = 0; i < eidetic_mixer_count(); i++) {
        size_t k = strlen(b);
        snprintf(b + k, sizeof buf[0] - k, "%s%s", k ? sep : "", eidetic_mixer_name(i));
    }
    return b;
}

typedef struct { ScGrid *g; const char *flag; } MixCtx;

static int add_mixer(void *vctx, const char *item) {
    MixCtx *x = vctx;
    ScGrid *g = x->g;
    if (g->n_mixers == SC_MAX_LIST) return eid_error("%s: at most %d entries", x->flag, SC_MAX_LIST), -1;
    if (strlen(item) >= sizeof g->mixers[0].spec) return eid_error("%s: entry '%s' too long", x->flag, item), -1;
    ScMixer *m = &g->mixers[g->n_mixers];
    char parts[256];
    snprintf(parts, sizeof parts, "%s", item);
    m->layers[0] = 0;
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(parts, "+", &save); tok; tok = strtok_r(NULL, "+", &save), n++) {
        if (eidetic_mixer_index(tok) < 0)
            return eid_error("%s: unknown mixer '%s' in '%s' (known: %s; a hybrid is written a+b)", x->flag, tok, item,
                             mixer_names(", ")), -1;
        size_t k = strlen(m->layers);
        snprintf(m->layers + k, sizeof m->layers - k, "%s%s", n ? "," : "", tok);
    }
    if (n == 0 || item[0] == '+' || item[strlen(item) - 1] == '+' || strstr(item, "++"))
        return eid_error("%s: malformed hybrid '%s' (expected mixer+mixer)", x->flag, item), -1;
    if (n == 1) { /* one mixer: the Zoology scaffold's 2 layers of it */
        size_t k = strlen(m->layers);
        snprintf(m->layers + k, sizeof m->layers - k, ",%s", item);
    }
    snprintf(m->spec, sizeof m->spec, "%s", item);
    g->n_mixers++;
    return 0;
}

int sc_parse_mixers(ScGrid *g, const char *list, const char *flag) {
    g->n_mixers = 0;
    MixCtx x = {g, flag};
    return for_items(list, ',', flag, add_mixer, &x);
}

typedef struct { void *out; int *n; const char *flag; double lo, hi; int is_int; } NumCtx;

static int add_number(void *vctx, const char *item) {
    NumCtx *x = vctx;
    char *end;
    errno = 0;
    double v = x->is_int ? (double)strtol(item, &end, 10) : strtod(item, &end);
    if (*end || errno || !isfinite(v) || v < x->lo || v > x->hi) {
        if (x->is_int)
            return eid_error("%s: expected a comma list of integers in [%g, %g], got '%s'", x->flag, x->lo, x->hi, item), -1;
        return eid_error("%s: expected a comma list of numbers in [%g, %g], got '%s'", x->flag, x->lo, x->hi, item), -1;
    }
    if (*x->n == SC_MAX_LIST) return eid_error("%s: at most %d entries", x->flag, SC_MAX_LIST), -1;
    if (x->is_int) ((int *)x->out)[(*x->n)++] = (int)v;
    else ((double *)x->out)[(*x->n)++] = v;
    return 0;
}

int sc_parse_ints(int *out, int *n, const char *list, const char *flag, int lo, int hi) {
    *n = 0;
    NumCtx x = {out, n, flag, lo, hi, 1};
    return for_items(list, ',', flag, add_number, &x);
}

int sc_parse_doubles(double *out, int *n, const char *list, const char *flag, double lo, double hi) {
    *n = 0;
    NumCtx x = {out, n, flag, lo, hi, 0};
    return for_items(list, ',', flag, add_number, &x);
}

/* Flags the scorecard sets itself (or that would change what a cell is behind its back). */
static const char *const reserved_flags[] = {"out", "resume", "quiet", "stop-after", "config", "preset", "threads",
                                             "layers", "d-model", "lr", "task"};

static int check_flags(const char *flags, const char *flag) {
    char buf[1024];
    if (strlen(flags) >= sizeof buf) return eid_error("%s: flags too long ('%.40s...')", flag, flags), -1;
    snprintf(buf, sizeof buf, "%s", flags);
    int first = 1;
    for (char *save = NULL, *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save), first = 0) {
        if (first && strncmp(tok, "--", 2) != 0)
            return eid_error("%s: expected train flags (--name value) after the task name, got '%s'", flag, tok), -1;
        if (strncmp(tok, "--", 2) != 0) continue;
        char name[64];
        snprintf(name, sizeof name, "%s", tok + 2);
        char *eq = strchr(name, '=');
        if (eq) *eq = 0;
        for (char *p = name; *p; p++)
            if (*p == '_') *p = '-';
        for (size_t i = 0; i < sizeof reserved_flags / sizeof *reserved_flags; i++)
            if (!strcmp(name, reserved_flags[i]))
                return eid_error("%s: --%s is set by the scorecard itself (grid axes: --mixers, --d-models, --tasks, "
                                 "--lrs; output: --out)", flag, name), -1;
    }
    return 0;
}

/* Training flags are not part of what a task is: left out of its label. */
static int label_skips(const char *name) {
    static const char *const skip[] = {"steps", "batch", "warmup", "eval-every", "eval-examples", "target-acc", "seed",
                                       "min-lr", "weight-decay", "grad-clip", "train-examples", "ckpt-every"};
    for (size_t i = 0; i < sizeof skip / sizeof *skip; i++)
        if (!strcmp(name, skip[i])) return 1;
    return 0;
}

/* Short names of common task flags in labels: "mqar L64 K4". */
static const char *label_abbrev(const char *name) {
    static const char *const map[][2] = {{"seq-len", "L"},     {"kv-pairs", "K"},    {"vocab", "V"},
                                         {"num-tokens", "M"},  {"min-len", "min"},   {"max-len", "max"},
                                         {"first-names", "F"}, {"surnames", "S"},    {"max-queries", "q"},
                                         {"min-queries", "qmin"}, {"digits", "m"}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (!strcmp(name, map[i][0])) return map[i][1];
    return NULL;
}

void sc_task_label(const char *name, const char *flags, char *out, size_t n) {
    snprintf(out, n, "%s", name);
    char buf[512];
    snprintf(buf, sizeof buf, "%s", flags);
    char *tok[64];
    int nt = 0;
    for (char *save = NULL, *t = strtok_r(buf, " \t", &save); t && nt < 64; t = strtok_r(NULL, " \t", &save)) tok[nt++] = t;
    for (int i = 0; i < nt; i++) {
        if (strncmp(tok[i], "--", 2) != 0) continue;
        char key[64], val[64] = "";
        snprintf(key, sizeof key, "%s", tok[i] + 2);
        char *eq = strchr(key, '=');
        if (eq) *eq = 0, snprintf(val, sizeof val, "%s", eq + 1);
        else if (i + 1 < nt && strncmp(tok[i + 1], "--", 2) != 0) snprintf(val, sizeof val, "%s", tok[++i]);
        if (label_skips(key)) continue;
        const char *ab = label_abbrev(key);
        size_t k = strlen(out);
        if (ab) snprintf(out + k, n - k, " %s%s", ab, val);
        else if (val[0]) snprintf(out + k, n - k, " %s=%s", key, val);
        else snprintf(out + k, n - k, " %s", key);
    }
}

typedef struct { ScGrid *g; const char *flag; } TaskCtx;

static int add_task(void *vctx, const char *item) {
    TaskCtx *x = vctx;
    ScGrid *g = x->g;
    if (g->n_tasks == SC_MAX_LIST) return eid_error("%s: at most %d tasks", x->flag, SC_MAX_LIST), -1;
    ScTask *t = &g->tasks[g->n_tasks];
    size_t nl = strcspn(item, " \t");
    if (nl >= sizeof t->name) return eid_error("%s: task name too long in '%s'", x->flag, item), -1;
    memcpy(t->name, item, nl), t->name[nl] = 0;
    for (const char *p = t->name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return eid_error("%s: '%s' is not a task name (expected 'name [--flag value ...]')", x->flag, t->name), -1;
    const char *fl = item + nl;
    while (isspace((unsigned char)*fl)) fl++;
    if (strlen(fl) >= sizeof t->flags) return eid_error("%s: flags of task '%s' too long", x->flag, t->name), -1;
    snprintf(t->flags, sizeof t->flags, "%s", fl);
    if (check_flags(t->flags, x->flag) != 0) return -1;
    sc_task_label(t->name, t->flags, t->label, sizeof t->label);
    g->n_tasks++;
    return 0;
}

int sc_parse_tasks(ScGrid *g, const char *list, const char *flag) {
    g->n_tasks = 0;
    TaskCtx x = {g, flag};
    return for_items(list, ';', flag, add_task, &x);
}

/* ---------------------------------------------------------------- cells ---- */

static void add_arg(ScCell *c, const char *s) {
    if (c->argc < SC_MAX_ARGS - 1) c->argv[c->argc++] = eid_xstrdup(s);
}

static void add_fmt(ScCell *c, const char *flag, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_fmt(ScCell *c, const char *flag, const char *fmt, ...) {
    char v[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    add_arg(c, flag), add_arg(c, v);
}

static int add_split(ScCell *c, const char *flags) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", flags);
    for (char *save = NULL, *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (c->argc >= SC_MAX_ARGS - 1) return eid_error("scorecard: too many train flags in one cell (max %d)", SC_MAX_ARGS), -1;
        add_arg(c, t);
    }
    return 0;
}

/* FNV-1a 64 of the flags: two cells with any different flag get different directories. */
static uint64_t flags_hash(const ScCell *c) {
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < c->argc; i++) {
        for (const char *p = c->argv[i]; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h = (h ^ 0x1f) * 1099511628211ULL;
    }
    return h;
}

static void slug(const char *s, char *out, size_t n) {
    size_t k = 0;
    for (; *s && k + 1 < n && k < 48; s++) {
        char ch = isalnum((unsigned char)*s) || *s == '.' ? *s : '-';
        if (ch == '-' && (k == 0 || out[k - 1] == '-')) continue;
        out[k++] = ch;
    }
    while (k > 0 && out[k - 1] == '-') k--;
    out[k] = 0;
}

/* whether any layer of a --layers list declares the option (EIDETIC_MIXER_* bits) */
static int layers_declare(const char *layers, unsigned option) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", layers);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (eidetic_mixer_options(eidetic_mixer_index(t)) & option) return 1;
    return 0;
}

const char *sc_all_mixers(void) { return mixer_names(","); }

static int build_cell(const ScGrid *g, ScCell *c) {
    const ScMixer *m = &g->mixers[c->mixer];
    const ScTask *t = &g->tasks[c->task];
    double lr = g->lrs[c->lr];
    c->lr_value = lr;
    add_arg(c, "--layers"), add_arg(c, m->layers);
    add_fmt(c, "--d-model", "%d", g->d_models[c->d]);
    add_arg(c, "--task"), add_arg(c, t->name);
    add_fmt(c, "--lr", "%.4g", lr);
    add_fmt(c, "--min-lr", "%.4g", lr * g->min_lr_ratio);
    if (g->steps > 0 && !g->steps_override) add_fmt(c, "--steps", "%d", g->steps);
    if (g->batch > 0) add_fmt(c, "--batch", "%d", g->batch);
    if (g->warmup >= 0) add_fmt(c, "--warmup", "%d", g->warmup);
    if (g->eval_every > 0) add_fmt(c, "--eval-every", "%d", g->eval_every);
    if (g->eval_examples > 0) add_fmt(c, "--eval-examples", "%d", g->eval_examples);
    if (g->target_acc >= 0) add_fmt(c, "--target-acc", "%.4g", g->target_acc);
    if (g->seed > 0) add_fmt(c, "--seed", "%llu", (unsigned long long)g->seed);
    if (g->swa_window > 0 && layers_declare(m->layers, EIDETIC_MIXER_WINDOW)) add_fmt(c, "--window", "%d", g->swa_window);
    if (add_split(c, t->flags) != 0 || add_split(c, g->train_flags) != 0) return -1;
    if (g->steps_override) add_fmt(c, "--steps", "%d", g->steps); /* --steps wins over a task's own */
    char ms[64], ts[64];
    slug(m->spec, ms, sizeof ms), slug(t->label, ts, sizeof ts);
    snprintf(c->id, sizeof c->id, "%s-d%d-%s-lr%.2g-%012llx", ms, g->d_models[c->d], ts, lr,
             (unsigned long long)(flags_hash(c) >> 16));
    return 0;
}

int sc_grid_cells(const ScGrid *g, ScCell **cells, int *n) {
    if (check_flags(g->train_flags, "--train-flags") != 0) return -1;
    int total = g->n_mixers * g->n_d * g->n_tasks * g->n_lrs;
    ScCell *c = eid_xcalloc((size_t)(total ? total : 1), sizeof *c);
    int k = 0;
    for (int mi = 0; mi < g->n_mixers; mi++)
        for (int ti = 0; ti < g->n_tasks; ti++)
            for (int di = 0; di < g->n_d; di++)
                for (int li = 0; li < g->n_lrs; li++, k++) {
                    c[k].mixer = mi, c[k].task = ti, c[k].d = di, c[k].lr = li;
                    if (build_cell(g, &c[k]) != 0) return sc_cells_free(c, k + 1), -1;
                }
    *cells = c, *n = total;
    return 0;
}

void sc_cells_free(ScCell *cells, int n) {
    if (!cells) return;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < cells[i].argc; j++) free(cells[i].argv[j]);
    free(cells);
}

void sc_cell_cmdline(const ScCell *c, char *out, size_t n) {
    out[0] = 0;
    for (int i = 0; i < c->argc; i++) {
        size_t k = strlen(out);
        snprintf(out + k, n - k, "%s%s", i ? " " : "", c->argv[i]);
    }
}

void sc_cell_probe(ScCell *c) {
    c->available = 0;
    eidetic_train_config *tc = NULL;
    eidetic_model *m = NULL;
    eidetic_train_info ti;
    /* the cell's flags resolved exactly as `eidetic train` would; the model's sizes without drawing weights */
    if (eidetic_train_config_from_args(c->argc, c->argv, &tc) != EIDETIC_OK ||
        eidetic_train_config_info(tc, &ti) != EIDETIC_OK ||
        eidetic_model_from_train_config(tc, 0, EIDETIC_MODEL_NO_INIT, &m) != EIDETIC_OK) {
        snprintf(c->reason, sizeof c->reason, "%s", eidetic_last_error());
        eidetic_train_config_free(tc);
        return;
    }
    eidetic_train_config_free(tc);
    c->params = eidetic_model_n_params(m), c->state_floats = 0, c->zoo_floats = 0;
    double step_s = sc_step_seconds(m, ti.seq_len, ti.batch, ti.batch * ti.labels_per_example);
    for (int s = 0; s < eidetic_model_n_sublayers(m); s++) {
        c->state_floats += eidetic_model_sublayer_state_floats(m, s);
        c->zoo_floats += eidetic_model_sublayer_zoology_floats(m, s, ti.seq_len);
    }
    eidetic_model_free(m);
    snprintf(c->task_name, sizeof c->task_name, "%s", ti.task);
    c->seq_len = ti.seq_len, c->kv_pairs = ti.kv_pairs, c->vocab = ti.vocab_size;
    c->steps = ti.steps, c->eval_every = ti.eval_every, c->batch = ti.batch, c->target_acc = ti.target_acc;
    c->available = 1;
    c->reason[0] = 0;
    c->est_s = sc_estimate_seconds(step_s, c->batch, c->steps, c->eval_every, ti.eval_examples);
}

/* One training step's single-thread seconds, derived from the model (no per-mixer table;
 * docs/scorecard.md "Expected running times"): three kinds of work, each at its own rate fitted once
 * to the step times measured on this project's 2-core machine:
 *   matrix products  6 flops per weight per token (forward + backward; the embedding and learned
 *                    positions are gathers, not counted) + 6·V·D per labelled position (tied head);
 *   key/value reads  per token, the KV floats of every layer with a KV cache (EIDETIC_MIXER_KV_CACHE:
 *                    the L/2 keys a query sees on average; EIDETIC_MIXER_WINDOW: its window);
 *   recurrent scans  per token, the recurrent state floats of every other layer. */
#define SC_S_PER_FLOP 1.88e-11  /* matrix products: ~53 GFLOP/s per core through BLAS */
#define SC_S_PER_KV 2.6e-10     /* per key/value float read per token */
#define SC_S_PER_STATE 3.55e-9  /* per recurrent state float updated per token (scan forward + backward) */
double sc_step_seconds(const eidetic_model *m, int L, int B, int labels) {
    double D = eidetic_model_d_model(m), V = eidetic_model_vocab_size(m), N = (double)L * B;
    double w = (double)eidetic_model_n_params(m) - V * D - (double)eidetic_model_max_positions(m) * D, kv = 0, state = 0;
    for (int s = 0; s < eidetic_model_n_sublayers(m); s++) {
        unsigned opt = eidetic_model_sublayer_options(m, s);
        if (opt & EIDETIC_MIXER_KV_CACHE) kv += (double)eidetic_model_sublayer_state_floats_at(m, s, EID_MAX(1, L / 2));
        else if (opt & EIDETIC_MIXER_WINDOW) kv += (double)eidetic_model_sublayer_state_floats(m, s);
        else state += (double)eidetic_model_sublayer_state_floats(m, s);
    }
    double flops = 6 * w * N + 6 * V * labels * D;
    return flops * SC_S_PER_FLOP + kv * N * SC_S_PER_KV + state * N * SC_S_PER_STATE;
}

double sc_estimate_seconds(double ps, int B, int steps, int eval_every, int eval_examples) {
    int evals = eval_every > 0 ? steps / eval_every + 1 : 1;
    /* an evaluation batch is a forward pass only: about a third of a step; + 0.25 s process start
     * and checkpoint per evaluation (the scorecard runs cells in segments of eval_every steps) */
    return ps * steps + evals * (EID_CDIV(eval_examples, B) * 0.35 * ps + 0.25);
}

/* ---------------------------------------------------------------- files ---- */

/* ---------------------------------------------------------------- lock files ---- */

/* Start time of a process (clock ticks since boot, /proc/PID/stat field 22): a pid plus its
 * start time names one process even after the pid is reused. 0 if unknown; *zombie = the process
 * has exited but not been reaped (it holds nothing any more). */
static unsigned long long proc_stat(long pid, int *zombie) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p) return 0;
    if (zombie) *zombie = p[1] == ' ' && p[2] == 'Z';
    unsigned long long v = 0;
    int field = 2;
    for (char *save = NULL, *t = strtok_r(p + 1, " ", &save); t; t = strtok_r(NULL, " ", &save))
        if (++field == 22) { v = strtoull(t, NULL, 10); break; }
    return v;
}

typedef struct { long pid; unsigned long long start; char host[128]; int parsed; } LockInfo;

/* -1: the file vanished */
static int lock_read(const char *path, LockInfo *li) {
    memset(li, 0, sizeof *li);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    li->parsed = fscanf(f, "%ld %llu %127s", &li->pid, &li->start, li->host) == 3 && li->pid > 0;
    fclose(f);
    return 0;
}

static int lock_is_live(const char *path, const LockInfo *li) {
    if (!li->parsed) { /* being written right now, or garbage: give a writer 10 s */
        struct stat st;
        return stat(path, &st) == 0 && time(NULL) - st.st_mtime < 10;
    }
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    if (strcmp(host, li->host) != 0) return 1; /* another machine's process: cannot check, assume live */
    if (kill((pid_t)li->pid, 0) != 0 && errno == ESRCH) return 0;
    int zombie = 0;
    unsigned long long st = proc_stat(li->pid, &zombie);
    if (zombie) return 0;
    return !(st && li->start && st != li->start); /* a different process now has that pid */
}

/* Remove a stale lock under a short-lived mutex so that two processes that both saw it stale
 * cannot remove each other's fresh lock. 0 = removed (or gone), -1 = someone else is at it. */
static int lock_take_over(const char *path, const LockInfo *stale) {
    char mutex[1100];
    snprintf(mutex, sizeof mutex, "%s.takeover", path);
    int fd = open(mutex, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        struct stat st;
        if (stat(mutex, &st) == 0 && time(NULL) - st.st_mtime > 30) unlink(mutex); /* its owner died */
        return -1;
    }
    close(fd);
    LockInfo now;
    if (lock_read(path, &now) == 0 && now.pid == stale->pid && now.start == stale->start) unlink(path);
    unlink(mutex);
    return 0;
}

int sc_lock_acquire(const char *path, long *holder) {
    *holder = 0;
    for (int attempt = 0; attempt < 4; attempt++) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) {
            char host[128] = "", line[256];
            gethostname(host, sizeof host - 1);
            int n = snprintf(line, sizeof line, "%ld %llu %s\n", (long)getpid(), proc_stat(getpid(), NULL),
                             host[0] ? host : "localhost");
            int ok = write(fd, line, (size_t)n) == n;
            close(fd);
            if (!ok) return unlink(path), eid_error("%s: cannot write lock file", path), -1;
            return 1;
        }
        if (errno != EEXIST) return eid_error("%s: cannot create lock file (%s)", path, strerror(errno)), -1;
        LockInfo li;
        if (lock_read(path, &li) != 0) continue; /* released meanwhile: try again */
        if (lock_is_live(path, &li)) return *holder = li.pid, 0;
        if (lock_take_over(path, &li) != 0) return *holder = li.pid, 0;
    }
    return 0;
}

void sc_lock_release(const char *path) {
    LockInfo li;
    if (lock_read(path, &li) == 0 && li.parsed && li.pid == (long)getpid()) unlink(path);
}

/* ---------------------------------------------------------------- result and metrics files ---- */

int sc_result_write(const char *path, const ScGrid *g, const ScCell *c, const ScResult *r) {
    cJSON *j = cJSON_CreateObject();
    char cmd[2048];
    sc_cell_cmdline(c, cmd, sizeof cmd);
    cJSON_AddStringToObject(j, "id", c->id);
    cJSON_AddStringToObject(j, "mixer", g->mixers[c->mixer].spec);
    cJSON_AddStringToObject(j, "layers", g->mixers[c->mixer].layers);
    cJSON_AddNumberToObject(j, "d_model", g->d_models[c->d]);
    cJSON_AddStringToObject(j, "task", c->task_name);
    cJSON_AddStringToObject(j, "task_label", g->tasks[c->task].label);
    cJSON_AddNumberToObject(j, "lr", c->lr_value);
    cJSON_AddStringToObject(j, "train_flags", cmd);
    cJSON_AddStringToObject(j, "status", r->status);
    if (r->message[0]) cJSON_AddStringToObject(j, "message", r->message);
    cJSON_AddNumberToObject(j, "steps", c->steps);
    cJSON_AddNumberToObject(j, "steps_done", (double)r->steps_done);
    /* cJSON writes NAN as null, which reads back as "no accuracy" */
    cJSON_AddNumberToObject(j, "final_acc", r->final_acc);
    cJSON_AddNumberToObject(j, "best_acc", r->best_acc);
    cJSON_AddNumberToObject(j, "best_step", (double)r->best_step);
    cJSON_AddNumberToObject(j, "final_loss", r->final_loss);
    cJSON_AddNumberToObject(j, "params", (double)c->params);
    cJSON_AddNumberToObject(j, "state_floats", (double)c->state_floats);
    cJSON_AddNumberToObject(j, "zoology_state", c->zoo_floats);
    cJSON_AddNumberToObject(j, "wall_s", r->wall_s);
    cJSON_AddNumberToObject(j, "cpu_s", r->cpu_s);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    size_t n = strlen(s);
    char *t = eid_xmalloc(n + 2);
    memcpy(t, s, n), t[n] = '\n', t[n + 1] = 0;
    free(s);
    int rc = eid_write_text_atomic(path, t);
    free(t);
    return rc;
}

static double json_num(const cJSON *j, const char *key, double dflt) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsNumber(e) ? e->valuedouble : dflt;
}

static void json_str(const cJSON *j, const char *key, char *out, size_t n) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, key);
    snprintf(out, n, "%s", cJSON_IsString(e) ? e->valuestring : "");
}

int sc_result_read(const char *path, ScResult *r) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    if (!j) return eid_error("%s: not valid JSON (delete it to recompute the cell)", path), -1;
    json_str(j, "status", r->status, sizeof r->status);
    json_str(j, "message", r->message, sizeof r->message);
    r->steps_done = (long)json_num(j, "steps_done", 0);
    r->final_acc = json_num(j, "final_acc", NAN);
    r->best_acc = json_num(j, "best_acc", NAN);
    r->best_step = (long)json_num(j, "best_step", 0);
    r->final_loss = json_num(j, "final_loss", NAN);
    r->wall_s = json_num(j, "wall_s", 0);
    r->cpu_s = json_num(j, "cpu_s", 0);
    cJSON_Delete(j);
    if (!r->status[0]) return eid_error("%s: no \"status\" (delete it to recompute the cell)", path), -1;
    return 0;
}

/* Reduce a curve to at most SC_CURVE points, each the mean of a window of consecutive steps. */
static void curve_downsample(const double *st, const double *ls, long n, ScMetrics *m) {
    long w = (n + SC_CURVE - 1) / SC_CURVE;
    if (w < 1) w = 1;
    m->n = 0;
    for (long i = 0; i < n; i += w) {
        double s = 0, l = 0;
        long k = 0;
        for (; k < w && i + k < n; k++) s += st[i + k], l += ls[i + k];
        m->step[m->n] = s / k, m->loss[m->n] = l / k, m->n++;
    }
}

int sc_metrics_read(const char *path, ScMetrics *m) {
    memset(m, 0, sizeof *m);
    m->best_acc = m->last_acc = m->last_loss = NAN;
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long cap = 1024, n = 0;
    double *st = eid_xmalloc(sizeof(double) * cap), *ls = eid_xmalloc(sizeof(double) * cap);
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        if (!j) continue; /* a line cut by an interruption */
        double step = json_num(j, "step", -1), loss = json_num(j, "loss", NAN), acc = json_num(j, "test_acc", NAN);
        cJSON_Delete(j);
        if (step < 0) continue;
        if (n == cap) st = eid_xrealloc(st, sizeof(double) * (cap *= 2)), ls = eid_xrealloc(ls, sizeof(double) * cap);
        st[n] = step, ls[n] = loss, n++;
        m->last_step = (long)step, m->last_loss = loss, m->last_has_test = !isnan(acc);
        if (!isnan(acc)) {
            m->last_acc = acc;
            if (isnan(m->best_acc) || acc > m->best_acc) m->best_acc = acc, m->best_step = (long)step;
        }
    }
    fclose(f);
    curve_downsample(st, ls, n, m);
    free(st), free(ls);
    return 0;
}

/* ---------------------------------------------------------------- report ---- */

static int finished_ok(const ScReport *r, int i) {
    return r->have[i] && strcmp(r->res[i].status, "failed") != 0 && !isnan(r->res[i].final_acc);
}

int sc_best_lr_cell(const ScReport *r, int mixer, int d, int task) {
    int best = -1;
    for (int i = 0; i < r->n; i++) {
        const ScCell *c = &r->cells[i];
        if (c->mixer != mixer || c->d != d || c->task != task || !finished_ok(r, i)) continue;
        if (best < 0 || r->res[i].final_acc > r->res[best].final_acc) best = i; /* ties: the smaller lr */
    }
    return best;
}

static void csv_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

static void csv_num(FILE *f, const char *fmt, double v) {
    fputc(',', f);
    if (!isnan(v)) fprintf(f, fmt, v);
}

static const char *cell_status(const ScReport *r, int i) {
    if (r->have[i]) return r->res[i].status;
    return r->cells[i].available ? "pending" : "unavailable";
}

static void csv_row(FILE *f, const ScReport *r, int i) {
    const ScCell *c = &r->cells[i];
    const ScGrid *g = r->g;
    const ScResult *s = r->have[i] ? &r->res[i] : NULL;
    char cmd[2048];
    sc_cell_cmdline(c, cmd, sizeof cmd);
    int av = c->available;
    double zb = av ? 4 * c->zoo_floats : NAN;
    csv_str(f, c->id), fputc(',', f), csv_str(f, g->mixers[c->mixer].spec), fputc(',', f);
    csv_str(f, g->mixers[c->mixer].layers);
    fprintf(f, ",%d,", g->d_models[c->d]);
    csv_str(f, av ? c->task_name : g->tasks[c->task].name), fputc(',', f), csv_str(f, g->tasks[c->task].label);
    csv_num(f, "%.0f", av ? c->seq_len : NAN), csv_num(f, "%.0f", av ? c->kv_pairs : NAN), csv_num(f, "%.0f", av ? c->vocab : NAN);
    csv_num(f, "%.4g", c->lr_value), csv_num(f, "%.0f", av ? c->steps : NAN), csv_num(f, "%.0f", s ? (double)s->steps_done : NAN);
    fputc(',', f), csv_str(f, cell_status(r, i));
    csv_num(f, "%.4f", s ? s->final_acc : NAN), csv_num(f, "%.4f", s ? s->best_acc : NAN);
    csv_num(f, "%.0f", s ? (double)s->best_step : NAN), csv_num(f, "%.5g", s ? s->final_loss : NAN);
    csv_num(f, "%.0f", av ? (double)c->params : NAN), csv_num(f, "%.0f", av ? (double)c->state_floats : NAN);
    csv_num(f, "%.0f", av ? 4.0 * c->state_floats : NAN), csv_num(f, "%.0f", av ? c->zoo_floats : NAN);
    csv_num(f, "%.0f", zb), csv_num(f, "%.3f", av && zb > 0 ? log2(zb) : NAN);
    csv_num(f, "%.1f", s ? s->wall_s : NAN), csv_num(f, "%.1f", s ? s->cpu_s : NAN);
    fputc(',', f), csv_str(f, cmd), fputc(',', f);
    csv_str(f, !av ? c->reason : s ? s->message : "");
    fputc('\n', f);
}

int sc_write_csv(const ScReport *r, const char *path) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fprintf(f, "id,mixer,layers,d_model,task,task_label,seq_len,kv_pairs,vocab,lr,steps,steps_done,status,final_acc,"
               "best_acc,best_step,final_loss,params,state_floats,state_bytes,zoology_state,zoology_bytes,"
               "log2_zoology_bytes,wall_s,cpu_s,train_flags,note\n");
    for (int i = 0; i < r->n; i++) csv_row(f, r, i);
    fclose(f);
    int rc = eid_write_text_atomic(path, buf);
    free(buf);
    return rc;
}

/* counts of a (mixer, d, task) group's cells */
typedef struct { int total, done, pending, unavailable, failed, capped, early; double wall; char note[320]; } Group;

static Group group_of(const ScReport *r, int mixer, int d, int task) {
    Group gr = {0};
    for (int i = 0; i < r->n; i++) {
        const ScCell *c = &r->cells[i];
        if (c->mixer != mixer || c->d != d || c->task != task) continue;
        gr.total++;
        if (!c->available) { gr.unavailable++; snprintf(gr.note, sizeof gr.note, "%s", c->reason); continue; }
        if (!r->have[i]) { gr.pending++; continue; }
        gr.done++, gr.wall += r->res[i].wall_s;
        if (!strcmp(r->res[i].status, "failed")) gr.failed++, snprintf(gr.note, sizeof gr.note, "%s", r->res[i].message);
        if (!strcmp(r->res[i].status, "capped")) gr.capped++;
        if (!strcmp(r->res[i].status, "early-stop")) gr.early++;
    }
    return gr;
}

/* one Markdown cell text: "0.812 (lr 0.01)", or why there is no number */
static void acc_text(const ScReport *r, int mixer, int d, int task, char *out, size_t n) {
    Group gr = group_of(r, mixer, d, task);
    int b = sc_best_lr_cell(r, mixer, d, task);
    if (b >= 0) {
        snprintf(out, n, "%.3f (lr %.2g%s)", r->res[b].final_acc, r->cells[b].lr_value,
                 gr.pending ? ", partial" : "");
        if (!strcmp(r->res[b].status, "capped")) snprintf(out + strlen(out), n - strlen(out), " ⏱");
    } else if (gr.unavailable == gr.total) snprintf(out, n, "unavailable");
    else if (gr.pending) snprintf(out, n, "pending");
    else snprintf(out, n, "failed");
}

static void md_pivot(FILE *f, const ScReport *r, int task) {
    const ScGrid *g = r->g;
    int first = -1;
    for (int i = 0; i < r->n && first < 0; i++)
        if (r->cells[i].task == task && r->cells[i].available) first = i;
    fprintf(f, "\n### %s", g->tasks[task].label);
    if (first >= 0) fprintf(f, " (task %s, L = %d, V = %d)", r->cells[first].task_name, r->cells[first].seq_len, r->cells[first].vocab);
    fprintf(f, "\n\n| mixer |");
    for (int d = 0; d < g->n_d; d++) fprintf(f, " d = %d |", g->d_models[d]);
    fprintf(f, "\n|---|");
    for (int d = 0; d < g->n_d; d++) fprintf(f, "---|");
    fprintf(f, "\n");
    for (int m = 0; m < g->n_mixers; m++) {
        fprintf(f, "| %s |", g->mixers[m].spec);
        for (int d = 0; d < g->n_d; d++) {
            char t[96];
            acc_text(r, m, d, task, t, sizeof t);
            fprintf(f, " %s |", t);
        }
        fprintf(f, "\n");
    }
}

static void md_detail_row(FILE *f, const ScReport *r, int m, int d, int task) {
    const ScGrid *g = r->g;
    Group gr = group_of(r, m, d, task);
    int b = sc_best_lr_cell(r, m, d, task), any = -1;
    for (int i = 0; i < r->n && any < 0; i++)
        if (r->cells[i].mixer == m && r->cells[i].d == d && r->cells[i].task == task && r->cells[i].available) any = i;
    fprintf(f, "| %s | %d | %s |", g->mixers[m].spec, g->d_models[d], g->tasks[task].label);
    if (b >= 0) fprintf(f, " %.3f | %.3f | %.2g | %ld |", r->res[b].final_acc, r->res[b].best_acc, r->cells[b].lr_value, r->res[b].steps_done);
    else fprintf(f, " – | – | – | – |");
    fprintf(f, " %d/%d |", gr.done, gr.total);
    if (any >= 0) {
        const ScCell *c = &r->cells[any];
        double zb = 4 * c->zoo_floats;
        fprintf(f, " %zu | %.0f (2^%.1f) | %zu |", c->state_floats, zb, zb > 0 ? log2(zb) : 0, c->params);
    } else fprintf(f, " – | – | – |");
    fprintf(f, " %.0f |", gr.wall);
    char note[400] = "";
    if (gr.early) snprintf(note + strlen(note), sizeof note - strlen(note), "%d early stop; ", gr.early);
    if (gr.capped) snprintf(note + strlen(note), sizeof note - strlen(note), "%d capped by the time budget; ", gr.capped);
    if (gr.pending) snprintf(note + strlen(note), sizeof note - strlen(note), "%d pending; ", gr.pending);
    if (gr.failed) snprintf(note + strlen(note), sizeof note - strlen(note), "%d failed: %s; ", gr.failed, gr.note);
    if (gr.unavailable) snprintf(note + strlen(note), sizeof note - strlen(note), "unavailable: %s", gr.note);
    for (char *p = note; *p; p++)
        if (*p == '|') *p = '/';
    fprintf(f, " %s |\n", note);
}

int sc_write_md(const ScReport *r, const char *path, const char *title) {
    const ScGrid *g = r->g;
    int done = 0, pend = 0, unav = 0, failed = 0, capped = 0;
    for (int i = 0; i < r->n; i++) {
        if (!r->cells[i].available) unav++;
        else if (!r->have[i]) pend++;
        else done++, failed += !strcmp(r->res[i].status, "failed"), capped += !strcmp(r->res[i].status, "capped");
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fprintf(f, "# eidetic scorecard — %s\n\n", title);
    fprintf(f, "%d runs: %d finished (%d failed, %d capped by the time budget), %d pending, %d unavailable.\n\n", r->n,
            done, failed, capped, pend, unav);
    fprintf(f, "Each entry is the test accuracy of the final checkpoint, best over the learning-rate sweep (Zoology's "
               "convention), with the task's own metric (MQAR: fraction of correct answers; copy: exact match; "
               "phonebook: digit accuracy). ⏱ = that run was stopped by the per-run time budget before its last "
               "step. Per-run numbers: results.csv. State sizes: docs/tasks.md §1.4 (Zoology bytes = 4 × Σ layers).\n");
    fprintf(f, "\n## Best accuracy over learning rates\n");
    for (int t = 0; t < g->n_tasks; t++) md_pivot(f, r, t);
    fprintf(f, "\n## Details\n\n| mixer | d_model | task | accuracy | best during training | best lr | steps | "
               "lrs done | state floats | Zoology bytes | params | wall s (all lrs) | notes |\n"
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int t = 0; t < g->n_tasks; t++)
        for (int m = 0; m < g->n_mixers; m++)
            for (int d = 0; d < g->n_d; d++) md_detail_row(f, r, m, d, t);
    fclose(f);
    int rc = eid_write_text_atomic(path, buf);
    free(buf);
    return rc;
}

/* ---- plot data: gnuplot data blocks (separated by two blank lines) + vars.gp with their titles ---- */

static void gp_title(FILE *vars, const char *arr, int k, const char *title) {
    fprintf(vars, "%s[%d] = \"", arr, k);
    for (const char *p = title; *p; p++) fputc(*p == '"' || *p == '\\' ? '\'' : *p, vars);
    fprintf(vars, "\"\n");
}

/* Titles are collected first and emitted as one gnuplot array (arrays must be declared sized). */
typedef struct { char t[48][96]; int n; } Titles;

static void titles_emit(FILE *vars, const char *arr, const Titles *t) {
    /* gnuplot parses a loop body even when it runs zero times: the array must exist */
    fprintf(vars, "n_%s = %d\narray %s[%d]\n", arr, t->n, arr, t->n ? t->n : 1);
    for (int i = 0; i < t->n; i++) gp_title(vars, arr, i + 1, t->t[i]);
}

static int is_mqar(const ScReport *r, int task) {
    for (int i = 0; i < r->n; i++)
        if (r->cells[i].task == task && r->cells[i].available) return !strcmp(r->cells[i].task_name, "mqar");
    return 0;
}

static void plot_state(const ScReport *r, FILE *f, Titles *tt) {
    const ScGrid *g = r->g;
    for (int t = 0; t < g->n_tasks; t++) {
        if (!is_mqar(r, t)) continue;
        for (int m = 0; m < g->n_mixers && tt->n < 48; m++) {
            int np = 0;
            for (int d = 0; d < g->n_d; d++) {
                int b = sc_best_lr_cell(r, m, d, t);
                if (b < 0 || r->cells[b].zoo_floats <= 0) continue;
                if (!np++) fprintf(f, "# %s (%s): log2(Zoology state bytes) accuracy d_model\n", g->mixers[m].spec, g->tasks[t].label);
                fprintf(f, "%.4f %.4f %d\n", log2(4 * r->cells[b].zoo_floats), r->res[b].final_acc, g->d_models[d]);
            }
            if (!np) continue;
            fprintf(f, "\n\n");
            snprintf(tt->t[tt->n++], 96, "%s (%s)", g->mixers[m].spec, g->tasks[t].label);
        }
    }
}

/* the largest d_model of a mixer with a finished cell on task t, or -1 */
static int largest_d(const ScReport *r, int m, int t) {
    for (int d = r->g->n_d - 1; d >= 0; d--)
        if (sc_best_lr_cell(r, m, d, t) >= 0) return d;
    return -1;
}

static void plot_length(const ScReport *r, FILE *f, Titles *tt) {
    const ScGrid *g = r->g;
    int t0 = -1;
    for (int t = 0; t < g->n_tasks && t0 < 0; t++)
        if (is_mqar(r, t)) t0 = t;
    if (t0 < 0 || !r->len_acc) return;
    for (int m = 0; m < g->n_mixers && tt->n < 48; m++) {
        int d = largest_d(r, m, t0), b = d < 0 ? -1 : sc_best_lr_cell(r, m, d, t0), np = 0;
        if (b < 0) continue;
        for (int k = 0; k < r->n_lengths; k++) {
            if (isnan(r->len_acc[b][k])) continue;
            if (!np++) fprintf(f, "# %s d%d, trained on %s: test length, accuracy\n", g->mixers[m].spec, g->d_models[d], g->tasks[t0].label);
            fprintf(f, "%d %.4f\n", r->lengths[k] * r->cells[b].seq_len, r->len_acc[b][k]);
        }
        if (!np) continue;
        fprintf(f, "\n\n");
        snprintf(tt->t[tt->n++], 96, "%s d%d (trained L%d)", g->mixers[m].spec, g->d_models[d], r->cells[b].seq_len);
    }
}

/* best accuracy at each trained MQAR length (the grid's own L values), largest d per mixer; a
 * mixer with results at fewer than two lengths has no curve and no block */
static void plot_length_grid(const ScReport *r, FILE *f, Titles *tt) {
    const ScGrid *g = r->g;
    for (int m = 0; m < g->n_mixers && tt->n < 48; m++) {
        int pts[SC_MAX_LIST], d_of[SC_MAX_LIST], np = 0;
        for (int t = 0; t < g->n_tasks; t++) {
            if (!is_mqar(r, t)) continue;
            int d = largest_d(r, m, t), b = d < 0 ? -1 : sc_best_lr_cell(r, m, d, t);
            if (b >= 0) d_of[np] = d, pts[np++] = b;
        }
        if (np < 2) continue;
        fprintf(f, "# %s: trained length, accuracy, d_model\n", g->mixers[m].spec);
        for (int k = 0; k < np; k++)
            fprintf(f, "%d %.4f %d\n", r->cells[pts[k]].seq_len, r->res[pts[k]].final_acc, g->d_models[d_of[k]]);
        fprintf(f, "\n\n");
        snprintf(tt->t[tt->n++], 96, "%s, trained at L", g->mixers[m].spec);
    }
}

static int plot_loss(const ScReport *r, const char *plots_dir, const char *cells_dir, int t, Titles *tt) {
    const ScGrid *g = r->g;
    char path[1200];
    snprintf(path, sizeof path, "%s/loss_%d.dat", plots_dir, t + 1);
    FILE *f = fopen(path, "w");
    if (!f) return eid_error("%s: cannot write (%s)", path, strerror(errno)), -1;
    ScMetrics *mt = eid_xmalloc(sizeof *mt);
    for (int m = 0; m < g->n_mixers; m++)
        for (int d = 0; d < g->n_d && tt->n < 48; d++) {
            int b = sc_best_lr_cell(r, m, d, t);
            if (b < 0) continue;
            snprintf(path, sizeof path, "%s/%s/run/metrics.jsonl", cells_dir, r->cells[b].id);
            if (sc_metrics_read(path, mt) != 0 || mt->n == 0) continue;
            fprintf(f, "# %s d%d lr %.2g: step, training loss (window mean)\n", g->mixers[m].spec, g->d_models[d], r->cells[b].lr_value);
            for (int i = 0; i < mt->n; i++) fprintf(f, "%.1f %.5f\n", mt->step[i], mt->loss[i]);
            fprintf(f, "\n\n");
            snprintf(tt->t[tt->n++], 96, "%s d%d lr %.2g", g->mixers[m].spec, g->d_models[d], r->cells[b].lr_value);
        }
    free(mt);
    fclose(f);
    return 0;
}

static FILE *open_in(const char *dir, const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) eid_error("%s: cannot write (%s)", path, strerror(errno));
    return f;
}

int sc_write_plot_data(const ScReport *r, const char *plots_dir, const char *cells_dir) {
    if (eid_mkdir_p(plots_dir) != 0) return -1;
    FILE *vars = open_in(plots_dir, "vars.gp"), *fs = open_in(plots_dir, "state.dat"),
         *fl = open_in(plots_dir, "length.dat"), *fg = open_in(plots_dir, "lengrid.dat");
    int rc = vars && fs && fl && fg ? 0 : -1;
    Titles *tt = eid_xcalloc(1, sizeof *tt);
    if (rc == 0) {
        plot_state(r, fs, tt), titles_emit(vars, "state_t", tt), tt->n = 0;
        plot_length(r, fl, tt), titles_emit(vars, "len_t", tt), tt->n = 0;
        plot_length_grid(r, fg, tt), titles_emit(vars, "lengrid_t", tt), tt->n = 0;
        fprintf(vars, "n_loss = %d\n", r->g->n_tasks);
        fprintf(vars, "array loss_task[%d]\n", r->g->n_tasks);
        for (int t = 0; t < r->g->n_tasks && rc == 0; t++) {
            gp_title(vars, "loss_task", t + 1, r->g->tasks[t].label);
            char arr[32];
            snprintf(arr, sizeof arr, "loss%d_t", t + 1);
            tt->n = 0;
            rc = plot_loss(r, plots_dir, cells_dir, t, tt);
            titles_emit(vars, arr, tt);
        }
    }
    free(tt);
    if (vars) fclose(vars);
    if (fs) fclose(fs);
    if (fl) fclose(fl);
    if (fg) fclose(fg);
    return rc;
}
