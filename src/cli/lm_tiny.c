/* lm_tiny.c — the `lm-tiny` preset: the embedded default corpus (Debian's jargon-text, public
 * domain, installed by scripts/setup.sh) and a generated sample after training (docs/lm.md). */
#include "cli/lm_tiny.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/common.h"
#include "data/dataset.h"
#include "io/checkpoint.h"
#include "io/files.h"
#include "model/model.h"
#include "text/tokenizer.h"
#include "train/rundir.h"

#define JARGON_SYSTEM "/usr/share/doc/jargon-text/jargon.txt.gz"
#define JARGON_EXTRACTED "jargon-text/usr/share/doc/jargon-text/jargon.txt.gz" /* setup.sh's dpkg -x fallback */

static void cache_dir(char *out, size_t n) {
    const char *e = getenv("EIDETIC_CACHE"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    if (e && *e) snprintf(out, n, "%s", e);
    else if (x && *x) snprintf(out, n, "%s/eidetic", x);
    else snprintf(out, n, "%s/.cache/eidetic", h && *h ? h : ".");
}

int lm_tiny_corpus(char *out, size_t n) {
    char cache[700], src[800], manifest[900];
    cache_dir(cache, sizeof cache);
    snprintf(out, n, "%s/jargon-byte", cache);
    snprintf(manifest, sizeof manifest, "%s/manifest.json", out);
    if (eid_file_exists(manifest)) return 0;
    snprintf(src, sizeof src, "%s", JARGON_SYSTEM);
    if (!eid_file_exists(src)) snprintf(src, sizeof src, "%s/%s", cache, JARGON_EXTRACTED);
    if (!eid_file_exists(src))
        return eid_error("preset lm-tiny: the Jargon File is not installed (%s nor %s/%s): run `bash scripts/setup.sh` "
                         "(it installs Debian's jargon-text), or `cd %s && apt-get download jargon-text && dpkg -x "
                         "jargon-text_*.deb jargon-text`", JARGON_SYSTEM, cache, JARGON_EXTRACTED, cache), -1;
    if (eid_mkdir_p(cache) != 0) return -1;
    const char *inputs[1] = {src};
    DsPrepareCfg cfg = {.inputs = inputs, .n_inputs = 1, .out = out, .val_fraction = 0.05, .docs = DS_DOCS_PARA,
                        .progress = 1};
    Tokenizer *tok = tok_new_byte();
    DsStats st;
    fprintf(stderr, "lm-tiny: preparing %s into %s (once)\n", src, out);
    int rc = ds_prepare(&cfg, tok, &st);
    tok_free(tok);
    return rc;
}

void lm_sample(const char *run_dir) {
    static const char prompt[] = "hacker n. ";
    enum { N_NEW = 200 };
    char dir[1024];
    int found = 0;
    if (rundir_locate(run_dir, dir, sizeof dir) != 0) return;
    Model *m = ckpt_load_model(dir, NULL);
    Tokenizer *tok = m ? tok_load_dir(dir, &found) : NULL;
    int *ids = NULL;
    size_t cap = 0, len = 0;
    Decoder *d = NULL;
    if (!tok || tok_encode(tok, prompt, strlen(prompt), &ids, &cap, &len) != 0) goto done;
    d = decoder_new(m, 1);
    if (decoder_room(m, d, (long)len + N_NEW) != 0) goto done;
    const real *logits = model_prefill(m, d, ids, NULL, 1, (int)len);
    printf("sample (greedy): %s", prompt);
    TokStream ts = {0};
    char piece[TOK_MAX_PIECE + 16];
    ts.started = 1;
    for (int i = 0; i < N_NEW && logits; i++) {
        int best = 0, V = tok_vocab_size(tok);
        for (int v = 1; v < V; v++)
            if (logits[v] > logits[best]) best = v;
        if (best == tok_eos_id(tok)) break;
        int k = tok_stream_push(tok, &ts, best, piece, sizeof piece);
        if (k > 0) fwrite(piece, 1, (size_t)k, stdout);
        logits = decoder_step(m, d, &best);
    }
    int k = tok_stream_flush(&ts, piece, sizeof piece);
    if (k > 0) fwrite(piece, 1, (size_t)k, stdout);
    printf("\n");
done:
    decoder_free(d);
    free(ids);
    tok_free(tok);
    model_free(m);
}
