/* main.c — `eidetic <command> [options]`. */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "core/common.h"

static void usage(FILE *f) {
    fprintf(f,
            "eidetic — build, train, evaluate and run recurrent sequence models that remember what they read.\n\n"
            "usage: eidetic <command> [options]     (eidetic <command> --help for its options)\n\n"
            "commands:\n"
            "  train      train a model on a task (no options: the default preset, Longhorn on MQAR)\n"
            "  eval       evaluate a checkpoint on a task; prints 'accuracy: X'\n"
            "  info       architecture, parameter counts and recurrent state size per layer\n"
            "  generate   sample tokens from a checkpoint with the constant-memory recurrent step\n"
            "  forward    write the logits of a token sequence to a safetensors file\n"
            "  scorecard  train and evaluate a grid of mixers x sizes x tasks x lrs; tables and plots\n"
            "  bench      training and decoding speed, MFU, memory and scaling on this machine (tables)\n");
}

int main(int argc, char **argv) {
    if (argc < 2) return usage(stderr), 2;
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) return usage(stdout), 0;
    const char *cmd = argv[1];
    if (!strcmp(cmd, "train")) return cmd_train(argc, argv);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc, argv);
    if (!strcmp(cmd, "info")) return cmd_info(argc, argv);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc, argv);
    if (!strcmp(cmd, "forward")) return cmd_forward(argc, argv);
    if (!strcmp(cmd, "scorecard")) return cmd_scorecard(argc, argv);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc, argv);
    fprintf(stderr, "eidetic: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
