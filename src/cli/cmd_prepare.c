/* cmd_prepare.c — `eidetic prepare`: text files, directories and .gz files → a tokenised dataset
 * directory (data/dataset.h; docs/lm.md "Datasets (`eidetic prepare`)"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"
#include "core/common.h"
#include "data/dataset.h"
#include "io/files.h"
#include "io/strict.h"
#include "text/tokenizer.h"

static void prepare_usage(FILE *f) {
    fprintf(f, "usage: eidetic prepare --out DIR [options] INPUT...\n\n"
               "INPUT: UTF-8 text files, .gz files, or directories (walked recursively, names sorted).\n"
               "  --out DIR              dataset directory to create (written as DIR.tmp, then renamed)\n"
               "  --force                replace an existing DIR\n"
               "  --tokenizer KIND       byte (default) | spm (SentencePiece trained on the inputs) | hf (a tokenizer.json)\n"
               "  --vocab N              spm: vocabulary size to train (default 4096)\n"
               "  --tokenizer-file F     hf: the Hugging Face tokenizer.json\n"
               "  --val-fraction F       fraction of documents for validation, chosen by a hash of each document (default 0.05)\n"
               "  --seed N               mixes into the split hash (default 0)\n"
               "  --docs file|para       a document is a whole file (default) or a blank-line separated paragraph\n"
               "  --sample-mb N          spm: MB of text to train the tokenizer on (default 16)\n"
               "  --no-progress          no progress bar on stderr\n"
               "Files that contain a NUL byte or are not valid UTF-8 are skipped, named on stderr and in manifest.json.\n");
}

int cmd_prepare(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return prepare_usage(stdout), 0;
    const char *out = NULL, *kind = "byte", *tok_file = NULL;
    const char **inputs = eid_xcalloc((size_t)argc, sizeof *inputs);
    int n_in = 0, vocab = 4096, sample_mb = 16;
    DsPrepareCfg cfg = {.val_fraction = 0.05, .progress = isatty(2)};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = strncmp(a, "--", 2) == 0 && strcmp(a, "--force") && strcmp(a, "--no-progress");
        if (takes && !v) { eid_error("%s: expected a value", a); goto fail; }
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--force")) cfg.force = 1;
        else if (!strcmp(a, "--no-progress")) cfg.progress = 0;
        else if (!strcmp(a, "--tokenizer")) kind = v;
        else if (!strcmp(a, "--tokenizer-file")) tok_file = v;
        else if (!strcmp(a, "--vocab")) { if (strict_int(v, 8, 1 << 24, &vocab, "--vocab") != 0) goto fail; }
        else if (!strcmp(a, "--sample-mb")) { if (strict_int(v, 1, 4096, &sample_mb, "--sample-mb") != 0) goto fail; }
        else if (!strcmp(a, "--val-fraction")) { if (strict_double(v, 0, 0.999999, &cfg.val_fraction, "--val-fraction") != 0) goto fail; }
        else if (!strcmp(a, "--seed")) { if (strict_u64(v, &cfg.seed, "--seed") != 0) goto fail; }
        else if (!strcmp(a, "--docs")) {
            if (!strcmp(v, "file")) cfg.docs = DS_DOCS_FILE;
            else if (!strcmp(v, "para")) cfg.docs = DS_DOCS_PARA;
            else { eid_error("--docs: expected file or para, got '%s'", v); goto fail; }
        } else if (takes) { eid_error("%s: unknown option for prepare (see eidetic prepare --help)", a); goto fail; }
        else { inputs[n_in++] = a; continue; }
        if (takes) i++;
    }
    if (!out) { eid_error("--out: the dataset directory to create is required"); goto fail; }
    if (n_in == 0) { eid_error("no INPUT files or directories given (an empty corpus)"); goto fail; }
    if (eid_file_exists(out) && !cfg.force) { eid_error("%s: already exists (use --force to replace it)", out); goto fail; }
    cfg.inputs = inputs, cfg.n_inputs = n_in, cfg.out = out;

    Tokenizer *tok = NULL;
    char side[1100];
    side[0] = 0;
    if (!strcmp(kind, "byte")) tok = tok_new_byte();
    else if (!strcmp(kind, "hf")) {
        if (!tok_file) { eid_error("--tokenizer hf: needs --tokenizer-file tokenizer.json"); goto fail; }
        tok = tok_load_file(tok_file);
    } else if (!strcmp(kind, "spm")) {
        char sample[1100];
        snprintf(side, sizeof side, "%s.spm", out);
        snprintf(sample, sizeof sample, "%s.sample.txt", out);
        if (eid_remove_tree(side) != 0 || eid_mkdir_p(side) != 0) goto fail;
        if (ds_write_sample(inputs, n_in, sample, (size_t)sample_mb << 20) == 0) tok = tok_spm_train(sample, vocab, side);
        remove(sample);
    } else { eid_error("--tokenizer: expected byte, spm or hf, got '%s'", kind); goto fail; }
    if (!tok) { if (side[0]) eid_remove_tree(side); goto fail; }
    DsStats st;
    int rc = ds_prepare(&cfg, tok, &st);
    if (side[0]) eid_remove_tree(side);
    tok_free(tok);
    if (rc != 0) goto fail;
    printf("prepared %s: %llu files (%llu skipped), train %llu documents / %llu tokens / %llu bytes, "
           "val %llu documents / %llu tokens / %llu bytes\n",
           out, (unsigned long long)st.files, (unsigned long long)st.skipped_files, (unsigned long long)st.docs[0],
           (unsigned long long)st.tokens[0], (unsigned long long)st.bytes[0], (unsigned long long)st.docs[1],
           (unsigned long long)st.tokens[1], (unsigned long long)st.bytes[1]);
    free(inputs);
    return 0;
fail:
    free(inputs);
    return cli_fail("prepare");
}
