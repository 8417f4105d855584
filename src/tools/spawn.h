/* spawn.h — the one process-spawn helper the tools share (scorecard cells, bench rows, gnuplot):
 * fork + exec with redirections, optional death with the parent, a wait that survives signals and
 * reports the child's CPU time, and a variant that captures the child's stdout. Errors return -1
 * with eid_error set. */
#ifndef EIDETIC_SPAWN_H
#define EIDETIC_SPAWN_H
#include <sys/types.h>

typedef struct {
    const char *in;   /* stdin from this file (e.g. "/dev/null"); NULL inherits */
    const char *out;  /* stdout to this file (truncated unless out_append); NULL inherits */
    const char *err;  /* stderr to this file (truncated unless err_append); the same string as `out`
                         shares one descriptor; NULL inherits */
    int out_append, err_append;
    int search_path;     /* look argv[0] up in PATH (execvp) instead of running it as given */
    int die_with_parent; /* SIGTERM when this process dies: an interrupted tool leaves no orphans */
} SpawnOpts;

/* Starts argv[0] with argv (NULL-terminated). In the child a redirection that cannot be opened
 * exits 126; a program that cannot be run exits 127 after a message on its stderr. Flushes stdio
 * first. Returns the child's pid, or -1. */
pid_t spawn_start(char *const *argv, const SpawnOpts *o);
/* Waits for pid (retrying on EINTR); returns its wait status (WIFEXITED/...), or -1. cpu_s, when
 * not NULL, is increased by the child's user + system CPU seconds. */
int spawn_wait(pid_t pid, double *cpu_s);
/* spawn_start + spawn_wait with the child's stdout captured into *out (malloc'd, NUL-terminated;
 * o->out is ignored). Returns the wait status, or -1 (then *out is NULL). */
int spawn_capture(char *const *argv, const SpawnOpts *o, char **out);
/* fork() for a worker process that runs this program's own code (no exec): returns 0 in the child,
 * the pid in the parent, -1 on failure; with die_with_parent the child gets SIGTERM when the parent
 * dies (and exits 130 at once if the parent is already gone). */
pid_t spawn_fork(int die_with_parent);

#endif
