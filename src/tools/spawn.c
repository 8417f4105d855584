/* spawn.c — process spawning for the tools (spawn.h). */
#include "tools/spawn.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/common.h"

pid_t spawn_fork(int die_with_parent) {
    fflush(stdout), fflush(stderr); /* buffered output is not written twice */
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) return eid_error("fork failed (%s)", strerror(errno)), -1;
    if (pid == 0 && die_with_parent) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(130); /* the parent died before prctl took effect */
    }
    return pid;
}

/* In the child: open path onto fd, or exit 126. */
static void redirect(const char *path, int fd, int flags) {
    int f = open(path, flags, 0644);
    if (f < 0) {
        fprintf(stderr, "cannot open %s (%s)\n", path, strerror(errno));
        _exit(126);
    }
    if (f != fd) dup2(f, fd), close(f);
}

/* The child's side: redirections (pipe_w >= 0: stdout to that descriptor), then exec. */
static _Noreturn void child(char *const *argv, const SpawnOpts *o, int pipe_r, int pipe_w) {
    if (o->in) redirect(o->in, 0, O_RDONLY);
    if (pipe_w >= 0) dup2(pipe_w, 1), close(pipe_w), close(pipe_r);
    else if (o->out) redirect(o->out, 1, O_WRONLY | O_CREAT | (o->out_append ? O_APPEND : O_TRUNC));
    if (o->err && pipe_w < 0 && o->out && !strcmp(o->err, o->out)) dup2(1, 2);
    else if (o->err) redirect(o->err, 2, O_WRONLY | O_CREAT | (o->err_append ? O_APPEND : O_TRUNC));
    if (o->search_path) execvp(argv[0], argv);
    else execv(argv[0], argv);
    fprintf(stderr, "cannot run %s (%s)\n", argv[0], strerror(errno));
    _exit(127);
}

pid_t spawn_start(char *const *argv, const SpawnOpts *o) {
    static const SpawnOpts none = {0};
    if (!o) o = &none;
    pid_t pid = spawn_fork(o->die_with_parent);
    if (pid == 0) child(argv, o, -1, -1);
    return pid;
}

int spawn_wait(pid_t pid, double *cpu_s) {
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0)
        if (errno != EINTR) return eid_error("waiting for process %ld failed (%s)", (long)pid, strerror(errno)), -1;
    if (cpu_s) *cpu_s += ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
    return st;
}

int spawn_capture(char *const *argv, const SpawnOpts *o, char **out) {
    static const SpawnOpts none = {0};
    if (!o) o = &none;
    *out = NULL;
    int fd[2];
    if (pipe(fd) != 0) return eid_error("pipe failed (%s)", strerror(errno)), -1;
    pid_t pid = spawn_fork(o->die_with_parent);
    if (pid < 0) return close(fd[0]), close(fd[1]), -1;
    if (pid == 0) child(argv, o, fd[0], fd[1]);
    close(fd[1]);
    size_t cap = 1 << 14, len = 0;
    char *buf = eid_xmalloc(cap);
    ssize_t k;
    while ((k = read(fd[0], buf + len, cap - len - 1)) != 0) {
        if (k < 0) {
            if (errno == EINTR) continue;
            break;
        }
        len += (size_t)k;
        if (len + 1 == cap) buf = eid_xrealloc(buf, cap *= 2);
    }
    buf[len] = 0;
    close(fd[0]);
    int st = spawn_wait(pid, NULL);
    if (st < 0) return free(buf), -1;
    *out = buf;
    return st;
}
