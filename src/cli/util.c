/* util.c — shared CLI helpers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "core/common.h"

int cli_fail(const char *cmd) {
    fprintf(stderr, "eidetic %s: error: %s\n", cmd, eid_last_error());
    return 1;
}

int cli_wants_help(int argc, char **argv) {
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

int parse_token_list(const char *s, int **out, int *n, const char *flag) {
    int cap = 64, k = 0;
    int *v = eid_xmalloc(sizeof(int) * cap);
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > 2147483647L) {
            free(v);
            return eid_error("%s: expected a comma list of non-negative token ids, got '%s'", flag, s), -1;
        }
        if (k == cap) v = eid_xrealloc(v, sizeof(int) * (cap *= 2));
        v[k++] = (int)x;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p) {
            free(v);
            return eid_error("%s: unexpected '%c' in token list '%s'", flag, *p, s), -1;
        }
    }
    if (k == 0) return free(v), eid_error("%s: empty token list", flag), -1;
    *out = v, *n = k;
    return 0;
}
