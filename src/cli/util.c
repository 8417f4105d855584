/* util.c — shared CLI helpers. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "io/gemm_plan_file.h"
#include "core/common.h"
#include "core/runtime.h"
#include "io/strict.h"

int cli_fail(const char *cmd) {
    fprintf(stderr, "eidetic %s: error: %s\n", cmd, eid_last_error());
    return 1;
}

int cli_wants_help(int argc, char **argv) {
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

/* token ids: a strict comma list (io/strict.h), so "1,2," and "1, 2" are errors */
int parse_token_list(const char *s, int **out, int *n, const char *flag) {
    return strict_int_list(s, 0, INT_MAX, 1 << 24, out, n, flag);
}

int cli_set_gemm_plan(const char *value, int verbose) { return gemm_plan_apply_spec(value, verbose, "--gemm-plan"); }

int cli_set_precision(const char *value, int verbose) {
    if (!value[0]) return eid_set_precision(EID_PREC_FP32, 0), 0;
    int p = eid_precision_parse(value);
    if (p < 0) return eid_error("--precision: expected fp32, bf16 or auto, got \"%s\"", value), -1;
    eid_set_precision(p, verbose);
    return 0;
}
