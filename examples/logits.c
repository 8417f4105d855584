/* logits.c — logits of many token sequences with libeidetic's parallel forward pass, printed as
 * text, for checking the library against `eidetic forward --tokens-file`:
 *
 *   ./logits CKPT_DIR TOKENS_FILE [THREADS]
 *
 * TOKENS_FILE holds one comma list of token ids per line. Each sequence is computed on its own
 * (a batch of one) and printed as one line per position: "SEQ POS v_0 v_1 ... v_{V-1}" with the
 * logits in C's exact hexadecimal float notation (%a), so nothing is lost in printing. */
#include <eidetic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s CKPT_DIR TOKENS_FILE [THREADS]\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[2], "r");
    if (!f) return fprintf(stderr, "logits: cannot open %s\n", argv[2]), 1;
    eidetic_model *m = NULL;
    if (eidetic_init(argc == 4 ? atoi(argv[3]) : 0) != EIDETIC_OK || eidetic_model_load(argv[1], &m) != EIDETIC_OK) {
        fprintf(stderr, "logits: error: %s\n", eidetic_last_error());
        return fclose(f), 1;
    }
    int V = eidetic_model_vocab_size(m), rc = 0;
    char line[65536];
    for (int seq = 0; rc == 0 && fgets(line, sizeof line, f); seq++) {
        int tok[4096], T = 0;
        for (char *p = line; *p && *p != '\n' && T < 4096;) {
            char *end;
            tok[T++] = (int)strtol(p, &end, 10);
            if (end == p) { rc = 1; break; }
            p = *end == ',' ? end + 1 : end;
        }
        float *lg = rc ? NULL : malloc(sizeof(float) * (size_t)T * V);
        if (!lg || eidetic_model_logits(m, tok, 1, T, lg) != EIDETIC_OK) {
            fprintf(stderr, "logits: line %d: %s\n", seq + 1, lg ? eidetic_last_error() : "malformed token list");
            rc = 1;
        }
        for (int t = 0; rc == 0 && t < T; t++) {
            printf("%d %d", seq, t);
            for (int v = 0; v < V; v++) printf(" %a", (double)lg[(size_t)t * V + v]);
            printf("\n");
        }
        free(lg);
    }
    fclose(f);
    eidetic_model_free(m);
    return rc;
}
