/* test_spawn.c — the tools' process-spawn helper (src/tools/spawn.h): exit statuses, captured
 * stdout, redirections (truncate, append, stdout and stderr into one file), a program that cannot
 * run (127) or a redirection that cannot be opened (126), CPU time, worker forks. */
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"
#include "tools/spawn.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    static char buf[4096];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
    return buf;
}

static int status_of(char *const *argv, const SpawnOpts *o, double *cpu) {
    pid_t pid = spawn_start(argv, o);
    return pid < 0 ? -1 : spawn_wait(pid, cpu);
}

int main(void) {
    char dir[64], out[96], both[96];
    snprintf(dir, sizeof dir, "/tmp/eidetic_test_spawn_%d", (int)getpid());
    snprintf(out, sizeof out, "%s/out", dir), snprintf(both, sizeof both, "%s/both", dir);
    CHECK(mkdir(dir, 0755) == 0, "mkdir %s", dir);

    char *echo[] = {"/bin/sh", "-c", "echo one; echo two >&2; exit 3", NULL};
    char *buf = NULL;
    SpawnOpts quiet = {.err = "/dev/null"};
    int st = spawn_capture(echo, &quiet, &buf);
    CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 3, "exit status 3, got %d", st);
    CHECK(buf && !strcmp(buf, "one\n"), "captured stdout only: '%s'", buf ? buf : "(null)");
    free(buf);

    SpawnOpts so = {.in = "/dev/null", .out = both, .err = both};
    st = status_of(echo, &so, NULL);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3, "status");
    CHECK(!strcmp(slurp(both), "one\ntwo\n"), "stdout and stderr share a file: '%s'", slurp(both));
    so = (SpawnOpts){.out = out, .err = both, .err_append = 1};
    status_of(echo, &so, NULL);
    CHECK(!strcmp(slurp(out), "one\n"), "stdout truncated: '%s'", slurp(out));
    CHECK(!strcmp(slurp(both), "one\ntwo\ntwo\n"), "stderr appended: '%s'", slurp(both));

    char *cat[] = {"/bin/cat", NULL};
    so = (SpawnOpts){.in = out};
    st = spawn_capture(cat, &so, &buf);
    CHECK(st == 0 && buf && !strcmp(buf, "one\n"), "stdin from a file");
    free(buf);

    char *missing[] = {"/nonexistent/program", NULL};
    so = (SpawnOpts){.err = both};
    st = status_of(missing, &so, NULL);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 127 && strstr(slurp(both), "cannot run /nonexistent/program"),
          "a program that cannot run exits 127 with a message: %d '%s'", st, slurp(both));
    char *path_sh[] = {"sh", "-c", "exit 0", NULL};
    so = (SpawnOpts){.search_path = 1};
    CHECK(status_of(path_sh, &so, NULL) == 0, "search_path finds sh");
    st = status_of(path_sh, &quiet, NULL);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 127, "without search_path, 'sh' is a relative path");
    so = (SpawnOpts){.out = "/nonexistent/dir/file", .err = both};
    st = status_of(echo, &so, NULL);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 126, "an unopenable redirection exits 126");

    char *busy[] = {"/bin/sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done", NULL};
    double cpu = 0;
    CHECK(status_of(busy, NULL, &cpu) == 0 && cpu > 0 && cpu < 60, "CPU time of the child: %g s", cpu);

    pid_t pid = spawn_fork(1);
    if (pid == 0) _exit(7);
    st = spawn_wait(pid, NULL);
    CHECK(pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 7, "worker fork");
    CHECK(spawn_wait(pid, NULL) == -1 && strstr(eid_last_error(), "waiting for process"), "waiting twice fails: %s",
          eid_last_error());

    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    CHECK(system(rm) == 0, "cleanup");
    return t_summary("test_spawn");
}
