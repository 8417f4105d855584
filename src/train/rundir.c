/* rundir.c — the run directory and its crash-safe checkpoints (rundir.h, docs/reliability.md
 * "Crash-safe training"). Only file-system calls: what goes into a checkpoint is the trainer's. */
#include "train/rundir.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/common.h"
#include "io/files.h"

static const char *const LINKED[] = {"config.json", "model.safetensors", "training_state.safetensors"};
#define N_LINKED 3

/* ---- test-only fault injection ---- */

int rundir_fault(const char *point, long step) {
    const char *f = getenv("EIDETIC_FAULT");
    if (!f || !*f) return 0;
    size_t n = strlen(point);
    if (strncmp(f, point, n) != 0 || f[n] != ':') return 0;
    char *end;
    long s = strtol(f + n + 1, &end, 10);
    return *end == 0 && s == step;
}

void rundir_fault_kill(const char *point, long step) {
    if (rundir_fault(point, step)) raise(SIGKILL);
}

/* ---- signals ---- */

static volatile sig_atomic_t stop_sig;

static void on_stop(int sig) {
    if (stop_sig) { /* a second request: checkpoints are atomic, so stopping now loses no more than the steps since the last */
        static const char msg[] = "\neidetic train: stopped at once (second signal); resume from the last checkpoint\n";
        ssize_t k = write(2, msg, sizeof msg - 1);
        (void)k;
        _exit(128 + sig);
    }
    stop_sig = sig;
}

void rundir_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN);
}

int rundir_stop_signal(void) { return stop_sig; }

/* ---- layout ---- */

static int pathf(char *out, size_t n, const char *fmt, const char *a, const char *b) {
    if (snprintf(out, n, fmt, a, b) >= (int)n) return eid_error("%s: path too long", a), -1;
    return 0;
}

int rundir_locate(const char *dir, char *out, size_t n) {
    char cur[1024];
    struct stat st;
    if (pathf(cur, sizeof cur, "%s/%s", dir, "current")) return -1;
    if (lstat(cur, &st) != 0) return pathf(out, n, "%s%s", dir, "");
    if (stat(cur, &st) != 0 || !S_ISDIR(st.st_mode))
        return eid_error("%s: does not lead to a checkpoint directory (%s); the run directory was altered by hand", cur,
                         strerror(errno ? errno : ENOTDIR)), -1;
    return pathf(out, n, "%s%s", cur, "");
}

/* RUN/NAME -> current/NAME for the three checkpoint files, each replaced with one rename() */
static int ensure_links(const char *dir) {
    int changed = 0;
    for (int i = 0; i < N_LINKED; i++) {
        char p[1024], want[128], have[128], tmp[1100];
        if (pathf(p, sizeof p, "%s/%s", dir, LINKED[i])) return -1;
        snprintf(want, sizeof want, "current/%s", LINKED[i]);
        ssize_t k = readlink(p, have, sizeof have - 1);
        if (k >= 0 && (have[k] = 0, !strcmp(have, want))) continue;
        snprintf(tmp, sizeof tmp, "%s.link.%ld", p, (long)getpid());
        unlink(tmp);
        if (symlink(want, tmp) != 0) return eid_error("%s: cannot create link (%s)", tmp, strerror(errno)), -1;
        if (rename(tmp, p) != 0) {
            int e = errno;
            unlink(tmp);
            return eid_error("%s: cannot replace with a link to %s (%s)", p, want, strerror(e)), -1;
        }
        changed = 1;
    }
    return changed ? eid_fsync_dir(dir) : 0;
}

static long step_of(const char *name) { /* "step-00000040" -> 40, else −1 */
    if (strncmp(name, "step-", 5) != 0 || !name[5]) return -1;
    char *end;
    long s = strtol(name + 5, &end, 10);
    return *end || s < 0 ? -1 : s;
}

/* stale = 0: remove the step directories other than keep1 and keep2 (the keep policy: the last
 * two). stale = 1 (on resume): remove what a killed run left behind: partial checkpoints, step
 * directories past the current one (keep1), and temporary files and links in RUN itself. */
static int prune(const char *dir, long keep1, long keep2, int stale) {
    char cdir[1024];
    int rc = 0;
    struct dirent *e;
    if (stale) {
        DIR *d = opendir(dir);
        if (!d) return eid_error("%s: cannot open (%s)", dir, strerror(errno)), -1;
        while ((e = readdir(d)))
            if (!strncmp(e->d_name, ".current.", 9) || strstr(e->d_name, ".link.") || strstr(e->d_name, ".tmp.")) {
                char p[1400];
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                if (eid_remove_tree(p) != 0) rc = -1;
            }
        closedir(d);
    }
    if (pathf(cdir, sizeof cdir, "%s/%s", dir, "checkpoints")) return -1;
    DIR *d = opendir(cdir);
    if (!d) return errno == ENOENT ? rc : (eid_error("%s: cannot open (%s)", cdir, strerror(errno)), -1);
    while ((e = readdir(d))) {
        long s = step_of(e->d_name);
        int drop = stale ? (!strncmp(e->d_name, ".partial-", 9) || strstr(e->d_name, ".tmp.") || s > keep1)
                         : (s >= 0 && s != keep1 && s != keep2);
        if (!drop) continue;
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", cdir, e->d_name);
        if (eid_remove_tree(p) != 0) rc = -1;
    }
    closedir(d);
    return rc;
}

static long current_step(const char *dir) {
    char p[1024], t[256];
    if (pathf(p, sizeof p, "%s/%s", dir, "current")) return -1;
    ssize_t k = readlink(p, t, sizeof t - 1);
    if (k < 0) return -1;
    t[k] = 0;
    const char *b = strrchr(t, '/');
    return step_of(b ? b + 1 : t);
}

static int open_metrics(RunDir *r, int trunc) {
    char p[1024];
    if (pathf(p, sizeof p, "%s/%s", r->dir, "metrics.jsonl")) return -1;
    r->metrics_fd = open(p, O_WRONLY | O_APPEND | O_CREAT | (trunc ? O_TRUNC : 0), 0644);
    if (r->metrics_fd < 0) return eid_error("%s: cannot open for writing (%s)", p, strerror(errno)), -1;
    struct stat st;
    if (fstat(r->metrics_fd, &st) != 0) return eid_error("%s: %s", p, strerror(errno)), -1;
    r->metrics_bytes = st.st_size;
    return 0;
}

/* One trainer per run directory: an exclusive flock on RUN/lock, held until the process ends
 * (a killed process releases it). */
static int lock_run(RunDir *r) {
    char p[1024];
    if (pathf(p, sizeof p, "%s/%s", r->dir, "lock")) return -1;
    r->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (r->lock_fd < 0 && errno == EACCES) r->lock_fd = open(p, O_RDONLY | O_CLOEXEC); /* unwritable: still lock */
    if (r->lock_fd < 0) return eid_error("%s: cannot open (%s)", p, strerror(errno)), -1;
    if (flock(r->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(r->lock_fd), r->lock_fd = -1;
        if (e == EWOULDBLOCK)
            return eid_error("%s: another `eidetic train` is writing this run directory; wait for it or stop it", r->dir), -1;
        return eid_error("%s: cannot lock (%s)", p, strerror(e)), -1;
    }
    return 0;
}

int rundir_open_fresh(RunDir *r, const char *dir) {
    memset(r, 0, sizeof *r);
    r->metrics_fd = r->lock_fd = -1, r->committed_step = -1;
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    if (eid_mkdir_p(dir) != 0 || lock_run(r) != 0) return -1;
    /* an earlier run in DIR is replaced: its links first (so nothing points into removed files) */
    char p[1024];
    for (int i = 0; i < N_LINKED; i++) {
        struct stat st;
        if (pathf(p, sizeof p, "%s/%s", dir, LINKED[i])) return -1;
        if (lstat(p, &st) == 0 && S_ISLNK(st.st_mode) && unlink(p) != 0)
            return eid_error("%s: cannot remove (%s)", p, strerror(errno)), -1;
    }
    if (pathf(p, sizeof p, "%s/%s", dir, "current") || (unlink(p) != 0 && errno != ENOENT))
        return eid_error("%s: cannot remove (%s)", p, strerror(errno)), -1;
    if (pathf(p, sizeof p, "%s/%s", dir, "checkpoints") || eid_remove_tree(p) != 0) return -1;
    return open_metrics(r, 1);
}

/* Truncate metrics.jsonl to `bytes`, or (−1) just after the line of `step` (else after the last
 * complete line). */
static int cut_metrics(const char *dir, long step, long long bytes) {
    char p[1024];
    if (pathf(p, sizeof p, "%s/%s", dir, "metrics.jsonl")) return -1;
    struct stat st;
    if (stat(p, &st) != 0) {
        if (errno == ENOENT && bytes <= 0) return 0;
        return eid_error("%s: %s (the checkpoint records %lld bytes)", p, strerror(errno), bytes), -1;
    }
    if (bytes < 0) {
        FILE *f = fopen(p, "rb");
        if (!f) return eid_error("%s: cannot open (%s)", p, strerror(errno)), -1;
        char key[48], line[4096];
        int kn = snprintf(key, sizeof key, "{\"step\":%ld,", step);
        long long pos = 0, cut = 0, found = -1;
        while (fgets(line, sizeof line, f)) {
            size_t n = strlen(line);
            pos += (long long)n;
            if (n == 0 || line[n - 1] != '\n') break; /* a torn last line */
            cut = pos;
            if (!strncmp(line, key, kn)) found = pos;
        }
        fclose(f);
        bytes = found >= 0 ? found : cut;
    }
    if (st.st_size < bytes)
        return eid_error("%s: holds %lld bytes but the checkpoint recorded %lld: the file was truncated", p,
                         (long long)st.st_size, bytes), -1;
    if (st.st_size > bytes && truncate(p, (off_t)bytes) != 0)
        return eid_error("%s: cannot truncate to the checkpoint's %lld bytes (%s)", p, bytes, strerror(errno)), -1;
    return 0;
}

int rundir_open_resume(RunDir *r, const char *dir, long step, long long metrics_bytes) {
    memset(r, 0, sizeof *r);
    r->metrics_fd = r->lock_fd = -1;
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    if (lock_run(r) != 0) return -1;
    long cur = current_step(dir);
    r->committed_step = cur >= 0 ? cur : step;
    if (prune(dir, cur >= 0 ? cur : step, -1, 1) != 0) return -1; /* what a killed run left behind */
    if (cur >= 0 && ensure_links(dir) != 0) return -1;
    if (cut_metrics(dir, step, metrics_bytes) != 0) return -1;
    return open_metrics(r, 0);
}

void rundir_close(RunDir *r) {
    if (r->metrics_fd >= 0) close(r->metrics_fd);
    if (r->lock_fd >= 0) close(r->lock_fd);
    r->metrics_fd = r->lock_fd = -1;
}

int rundir_metrics_append(RunDir *r, long step, const char *line, size_t n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/metrics.jsonl", r->dir);
    if (rundir_fault("metrics-torn", step)) {
        ssize_t k = write(r->metrics_fd, line, n / 2);
        (void)k;
        raise(SIGKILL);
    }
    ssize_t k;
    do k = write(r->metrics_fd, line, n);
    while (k < 0 && errno == EINTR);
    if (k == (ssize_t)n) {
        r->metrics_bytes += (long long)n;
        return 0;
    }
    int e = k < 0 ? errno : ENOSPC;
    if (k > 0 && ftruncate(r->metrics_fd, (off_t)r->metrics_bytes) != 0) { /* no torn line left behind */ }
    return eid_error("%s: write failed (%s); the previous checkpoint in %s is intact (resume with --resume %s)", p,
                     strerror(e), r->dir, r->dir), -1;
}

int rundir_fail_intact(RunDir *r) {
    char msg[900];
    snprintf(msg, sizeof msg, "%s", eid_last_error());
    rundir_abort(r);
    if (r->committed_step >= 0)
        eid_error("%s; the previous checkpoint in %s (step %ld) is intact (resume with --resume %s)", msg, r->dir,
                  r->committed_step, r->dir);
    else
        eid_error("%s; no checkpoint of this run was written yet", msg);
    return -1;
}

int rundir_begin(RunDir *r, long step, char *dir, size_t n) {
    if (step == r->committed_step) return 1;
    char c[1024];
    if (pathf(c, sizeof c, "%s/%s", r->dir, "checkpoints")) return -1;
    if (snprintf(r->partial, sizeof r->partial, "%s/.partial-step-%08ld.%ld", c, step, (long)getpid()) >=
        (int)sizeof r->partial)
        return eid_error("%s: path too long", r->dir), -1;
    /* the metrics lines up to this step reach the disk before the checkpoint that records them */
    char mp[1024];
    snprintf(mp, sizeof mp, "%s/metrics.jsonl", r->dir);
    if (r->metrics_fd >= 0 && fdatasync(r->metrics_fd) != 0)
        return eid_error("%s: fsync failed (%s)", mp, strerror(errno)), rundir_fail_intact(r);
    if (eid_remove_tree(r->partial) != 0 || eid_mkdir_p(r->partial) != 0) return rundir_fail_intact(r);
    rundir_fault_kill("ckpt-begin", step);
    snprintf(dir, n, "%s", r->partial);
    return 0;
}

void rundir_abort(RunDir *r) {
    if (!r->partial[0]) return;
    char msg[900];
    snprintf(msg, sizeof msg, "%s", eid_last_error()); /* keep the error that made us abort */
    eid_remove_tree(r->partial);
    eid_error("%s", msg);
    r->partial[0] = 0;
}

int rundir_commit(RunDir *r, long step) {
    char c[1024], fin[1100], cur[1024], tmp[1100], target[64];
    if (pathf(c, sizeof c, "%s/%s", r->dir, "checkpoints")) return rundir_fail_intact(r);
    snprintf(fin, sizeof fin, "%s/step-%08ld", c, step);
    snprintf(target, sizeof target, "checkpoints/step-%08ld", step);
    snprintf(cur, sizeof cur, "%s/current", r->dir);
    snprintf(tmp, sizeof tmp, "%s/.current.%ld", r->dir, (long)getpid());
    rundir_fault_kill("ckpt-before-rename", step);
    /* a step directory left by a run killed before it switched `current` is not current: replace it */
    if (eid_remove_tree(fin) != 0) return rundir_fail_intact(r);
    if (rename(r->partial, fin) != 0)
        return eid_error("%s: rename to %s failed (%s)", r->partial, fin, strerror(errno)), rundir_fail_intact(r);
    r->partial[0] = 0;
    if (eid_fsync_dir(c) != 0) return rundir_fail_intact(r);
    rundir_fault_kill("ckpt-after-rename", step);
    unlink(tmp);
    if (symlink(target, tmp) != 0)
        return eid_error("%s: cannot create link (%s)", tmp, strerror(errno)), rundir_fail_intact(r);
    if (rename(tmp, cur) != 0) { /* the commit point */
        int e = errno;
        unlink(tmp);
        return eid_error("%s: cannot switch to %s (%s)", cur, target, strerror(e)), rundir_fail_intact(r);
    }
    if (eid_fsync_dir(r->dir) != 0) return -1; /* committed: the previous checkpoint is no longer the current one */
    rundir_fault_kill("ckpt-after-switch", step);
    long prev = r->committed_step;
    r->committed_step = step;
    if (ensure_links(r->dir) != 0) return -1;
    return prune(r->dir, step, prev, 0);
}
