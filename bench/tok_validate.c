/* tok_validate.c — eidetic's side of bench/validate_bpe.sh (docs/lm.md "Tokenizers"): encodes each
 * document of a JSON array of strings with a tokenizer file, writes the ids (one line per document,
 * space-separated, the format of bench/validate_bpe.js), checks decode(encode(doc)) == doc, and
 * reports the encode speed. With --whole FILE it also times one encode of a whole text file.
 *   tok_validate TOKENIZER DOCS.json OUT.txt [--whole FILE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "core/common.h"
#include "text/tokenizer.h"

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long m = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)m + 1);
    *n = fread(b, 1, (size_t)m, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: tok_validate TOKENIZER DOCS.json OUT.txt [--whole FILE]\n");
        return 2;
    }
    Tokenizer *t = tok_load_file(argv[1]);
    if (!t) return fprintf(stderr, "tok_validate: %s\n", eid_last_error()), 1;
    size_t n;
    char *text = slurp(argv[2], &n);
    cJSON *docs = text ? cJSON_Parse(text) : NULL;
    FILE *out = fopen(argv[3], "w");
    if (!cJSON_IsArray(docs) || !out) return fprintf(stderr, "tok_validate: cannot read %s or write %s\n", argv[2], argv[3]), 1;
    int *ids = NULL;
    size_t cap = 0, bytes = 0, tokens = 0, bad_round = 0, ndocs = 0;
    double secs = 0;
    for (cJSON *d = docs->child; d; d = d->next, ndocs++) {
        size_t len = 0, m = strlen(d->valuestring);
        double t0 = eid_now();
        if (tok_encode(t, d->valuestring, m, &ids, &cap, &len)) return fprintf(stderr, "tok_validate: %s\n", eid_last_error()), 1;
        secs += eid_now() - t0;
        bytes += m;
        tokens += len;
        for (size_t i = 0; i < len; i++) fprintf(out, i ? " %d" : "%d", ids[i]);
        fputc('\n', out);
        size_t dn;
        char *back = tok_decode(t, ids, len, &dn);
        if (!back || dn != m || memcmp(back, d->valuestring, m)) bad_round++;
        free(back);
    }
    fclose(out);
    printf("eidetic %s: %zu documents, %zu bytes -> %zu tokens in %.3f s (%.1f MB/s), "
           "decode(encode(x)) != x: %zu\n", tok_kind(t), ndocs, bytes, tokens, secs, bytes / secs / 1e6, bad_round);
    if (argc == 6) {
        size_t wn, len = 0;
        char *w = slurp(argv[5], &wn);
        if (!w) return fprintf(stderr, "tok_validate: cannot read %s\n", argv[5]), 1;
        tok_free(t); /* a fresh tokenizer: its word cache starts empty */
        if (!(t = tok_load_file(argv[1]))) return fprintf(stderr, "tok_validate: %s\n", eid_last_error()), 1;
        for (int pass = 0; pass < 2; pass++) {
            len = 0;
            double t0 = eid_now();
            if (tok_encode(t, w, wn, &ids, &cap, &len)) return fprintf(stderr, "tok_validate: %s\n", eid_last_error()), 1;
            double s = eid_now() - t0;
            printf("eidetic %s: %s as one text, %s word cache: %zu bytes -> %zu tokens in %.3f s (%.1f MB/s)\n",
                   tok_kind(t), argv[5], pass ? "warm" : "cold", wn, len, s, wn / s / 1e6);
        }
        free(w);
    }
    free(ids);
    free(text);
    cJSON_Delete(docs);
    tok_free(t);
    return bad_round ? 1 : 0;
}
