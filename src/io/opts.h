/* opts.h — the one option parser of every command and tool: a table of OptDesc (flag name, type,
 * offset into a struct) parses "--name value" / "--name=value" argv, config-file keys (opt_set) and
 * prints help. Numbers go through the strict parser (io/strict.h). It lives beside the other input
 * parsers so the training config (train/train_cfg.h), the CLI (src/cli) and the tools (src/tools)
 * share it without the tools reaching into the trainer. */
#ifndef EIDETIC_OPTS_H
#define EIDETIC_OPTS_H
#include <stddef.h>
#include <stdio.h>

typedef enum { OPT_INT, OPT_LONG, OPT_U64, OPT_DBL, OPT_STR, OPT_FLAG } OptType;
typedef struct {
    const char *name; /* flag without "--" */
    OptType type;
    size_t offset, size;
    const char *help;
} OptDesc;

/* Parse argv (flags of opts, stored into base); unknown flags, missing values and bad numbers are
 * errors naming the flag (-1 + eid_error). cmd names the command in messages. */
int opts_parse(const OptDesc *opts, int n, void *base, int argc, char **argv, const char *cmd);
/* 1 when argv (already accepted by opts_parse with the same table) sets the option `name`. */
int opts_given(const OptDesc *opts, int n, int argc, char **argv, const char *name);
int opt_set(const OptDesc *o, void *base, const char *val, const char *where);
const OptDesc *opt_find(const OptDesc *opts, int n, const char *name); /* '_' matches '-' */
void opts_help(const OptDesc *opts, int n, FILE *f);

#endif
