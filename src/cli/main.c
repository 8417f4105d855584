/* main.c — `eidetic <command> [options]`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "core/common.h"
#include "core/runtime.h"

static void usage(FILE *f) {
    fprintf(f,
            "eidetic — build, train, evaluate and run recurrent sequence models that remember what they read.\n\n"
            "usage: eidetic <command> [options]     (eidetic <command> --help for its options)\n\n"
            "commands:\n"
            "  train      train a model on a task (no options: the default preset, Longhorn on MQAR)\n"
            "  eval       evaluate a checkpoint on a task; prints 'accuracy: X'\n"
            "  info       architecture, parameter counts and recurrent state size per layer\n"
            "  expand     StateX: enlarge the recurrent state of chosen layers of a checkpoint (docs/statex.md)\n"
            "  generate   sample tokens from a checkpoint with the constant-memory recurrent step\n"
            "  forward    write the logits of a token sequence to a safetensors file\n"
            "  prepare    tokenise text files / directories / .gz into a dataset directory (docs/lm.md)\n"
            "  scorecard  train and evaluate a grid of mixers x sizes x tasks x lrs; tables and plots\n"
            "  bench      training and decoding speed, MFU, memory and scaling on this machine (tables)\n"
            "  plot       draw a run's metrics.jsonl with gnuplot: Birdie's objective mixture, rewards, loss\n");
}

/* If OpenBLAS picked narrower kernels than this CPU runs (0.3.21 misdetects some recent Xeons as
 * "Prescott", ~5x slow; or OPENBLAS_CORETYPE names an older core), set OPENBLAS_CORETYPE to the right
 * core and start the program again: OpenBLAS reads it only when it loads. The library never does
 * this (it must not replace its user's process); eid_runtime_setup() then logs what happened. */
static void reexec_for_blas(char **argv) {
    const char *want = eid_blas_better_core();
    if (!want || getenv("EIDETIC_KEEP_CORETYPE") || getenv("EIDETIC_NO_REEXEC") || getenv("EIDETIC_REEXEC_FROM"))
        return;
    const char *env_core = getenv("OPENBLAS_CORETYPE");
    setenv("EIDETIC_REEXEC_FROM", eid_blas_core(), 1);
    if (env_core) setenv("EIDETIC_REEXEC_ENV", env_core, 1);
    setenv("OPENBLAS_CORETYPE", want, 1);
    execv("/proc/self/exe", argv);
    /* execv failed: carry on slowly; eid_runtime_setup() warns that the core is weak */
    unsetenv("EIDETIC_REEXEC_FROM");
    unsetenv("EIDETIC_REEXEC_ENV");
    if (env_core) setenv("OPENBLAS_CORETYPE", env_core, 1);
    else unsetenv("OPENBLAS_CORETYPE");
}

int main(int argc, char **argv) {
    reexec_for_blas(argv);
    if (argc < 2) return usage(stderr), 2;
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) return usage(stdout), 0;
    const char *cmd = argv[1];
    if (!strcmp(cmd, "train")) return cmd_train(argc, argv);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc, argv);
    if (!strcmp(cmd, "info")) return cmd_info(argc, argv);
    if (!strcmp(cmd, "expand")) return cmd_expand(argc, argv);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc, argv);
    if (!strcmp(cmd, "forward")) return cmd_forward(argc, argv);
    if (!strcmp(cmd, "prepare")) return cmd_prepare(argc, argv);
    if (!strcmp(cmd, "scorecard")) return cmd_scorecard(argc, argv);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc, argv);
    if (!strcmp(cmd, "plot")) return cmd_plot(argc, argv);
    fprintf(stderr, "eidetic: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
