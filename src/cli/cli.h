/* cli.h — subcommands of the `eidetic` program. Each returns the process exit code. */
#ifndef EIDETIC_CLI_H
#define EIDETIC_CLI_H
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_expand(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_prepare(int argc, char **argv);
int cmd_scorecard(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_plot(int argc, char **argv);
/* helpers */
int cli_fail(const char *cmd);                                  /* prints the last error, returns 1 */
int cli_wants_help(int argc, char **argv);
/* Applies --precision VALUE ("" = fp32): 0, or -1 + eid_error naming the flag. */
int cli_set_precision(const char *value, int verbose);
/* --gemm-plan: fixed (default), measure, or a plan file to replay (core/gemm_plan.h) */
#define CLI_GEMM_PLAN_HELP                                                                                            \
    "which library multiplies each matrix shape: fixed (default: OpenBLAS for fp32, oneDNN for bf16), measure (time " \
    "the candidates on the first product of each shape and keep the fastest; logged) or a plan file to replay "     \
    "(gemm_plan.json of a train checkpoint)"
int cli_set_gemm_plan(const char *value, int verbose);
int parse_token_list(const char *s, int **out, int *n, const char *flag); /* "3,1,4" */
#endif
