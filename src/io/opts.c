/* opts.c — the common option parser (io/opts.h). */
#include "io/opts.h"
#include <float.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include "core/common.h"
#include "io/strict.h"

const OptDesc *opt_find(const OptDesc *opts, int n, const char *name) {
    char norm[128];
    snprintf(norm, sizeof norm, "%s", name);
    for (char *p = norm; *p; p++)
        if (*p == '_') *p = '-';
    for (int i = 0; i < n; i++)
        if (!strcmp(opts[i].name, norm)) return &opts[i];
    return NULL;
}

int opt_set(const OptDesc *o, void *base, const char *val, const char *where) {
    void *dst = (char *)base + o->offset;
    char what[200];
    snprintf(what, sizeof what, "%s --%s", where, o->name);
    switch (o->type) { /* one strict parser for every number (io/strict.h) */
    case OPT_INT: return strict_int(val, INT_MIN, INT_MAX, (int *)dst, what);
    case OPT_LONG: return strict_long(val, LONG_MIN, LONG_MAX, (long *)dst, what);
    case OPT_U64: return strict_u64(val, (uint64_t *)dst, what);
    case OPT_DBL: return strict_double(val, -DBL_MAX, DBL_MAX, (double *)dst, what);
    case OPT_STR:
        if (strlen(val) >= o->size) return eid_error("%s --%s: value too long (max %zu chars)", where, o->name, o->size - 1), -1;
        snprintf(dst, o->size, "%s", val);
        return 0;
    case OPT_FLAG:
        if (!strcmp(val, "1") || !strcmp(val, "true")) *(int *)dst = 1;
        else if (!strcmp(val, "0") || !strcmp(val, "false")) *(int *)dst = 0;
        else return eid_error("%s --%s: expected true or false, got '%s'", where, o->name, val), -1;
        return 0;
    }
    return -1;
}

/* The name of option argument a ("--name" or "--name=value") into name[128], *eq at its '=' (or NULL).
 * -1 when the name does not fit. */
static int arg_name(const char *a, char name[128], const char **eq) {
    *eq = strchr(a + 2, '=');
    size_t len = *eq ? (size_t)(*eq - a - 2) : strlen(a + 2);
    if (len >= 128) return -1;
    memcpy(name, a + 2, len), name[len] = 0;
    return 0;
}

int opts_parse(const OptDesc *opts, int n, void *base, int argc, char **argv, const char *cmd) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return eid_error("%s: unexpected argument '%s' (options start with --; see eidetic %s --help)", cmd, a, cmd), -1;
        char name[128];
        const char *eq;
        if (arg_name(a, name, &eq) != 0) return eid_error("%s: option too long: %s", cmd, a), -1;
        const OptDesc *o = opt_find(opts, n, name);
        if (!o) return eid_error("%s: unknown option --%s (see eidetic %s --help)", cmd, name, cmd), -1;
        const char *val;
        if (eq) val = eq + 1;
        else if (o->type == OPT_FLAG) val = "1";
        else if (i + 1 < argc) val = argv[++i];
        else return eid_error("%s: option --%s needs a value", cmd, o->name), -1;
        if (opt_set(o, base, val, cmd) != 0) return -1;
    }
    return 0;
}

int opts_given(const OptDesc *opts, int n, int argc, char **argv, const char *name) {
    const OptDesc *want = opt_find(opts, n, name);
    for (int i = 0; want && i < argc; i++) {
        char nm[128];
        const char *eq;
        if (strncmp(argv[i], "--", 2) != 0 || arg_name(argv[i], nm, &eq) != 0) continue;
        const OptDesc *o = opt_find(opts, n, nm); /* as opts_parse finds it: '_' matches '-' */
        if (o == want) return 1;
        if (o && !eq && o->type != OPT_FLAG) i++; /* skip its value */
    }
    return 0;
}

void opts_help(const OptDesc *opts, int n, FILE *f) {
    for (int i = 0; i < n; i++) {
        const char *t = opts[i].type == OPT_FLAG ? "" : opts[i].type == OPT_STR ? " S" : opts[i].type == OPT_DBL ? " X" : " N";
        char left[64];
        snprintf(left, sizeof left, "--%s%s", opts[i].name, t);
        fprintf(f, "  %-24s %s\n", left, opts[i].help);
    }
}

