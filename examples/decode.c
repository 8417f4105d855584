/* decode.c — greedy decoding with libeidetic: load a checkpoint, prefill a prompt, then take the
 * most likely next token, feed it back, repeat. Uses only the public header and the library:
 *
 *   cc -Iinclude examples/decode.c build/libeidetic.a -lopenblas -lcjson -lm -fopenmp
 *   ./decode CKPT_DIR 1,2,3 16 [THREADS]
 *
 * Prints the generated token ids, comma separated (as `eidetic generate` does with its default
 * greedy decoding). Exit status 0 on success, 1 with a message on stderr otherwise. */
#include <eidetic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "3,1,4" → a malloc'd array; NULL on a malformed list */
static int *parse_list(const char *s, int *n) {
    int cap = 16, k = 0, *v = malloc(sizeof(int) * cap);
    while (v && *s) {
        char *end;
        long x = strtol(s, &end, 10);
        if (end == s || x < 0 || x > 2147483647L || (*end && *end != ',') || (*end == ',' && !end[1]))
            return free(v), NULL;
        if (k == cap) {
            int *w = realloc(v, sizeof(int) * (cap *= 2));
            if (!w) return free(v), NULL;
            v = w;
        }
        v[k++] = (int)x;
        s = *end ? end + 1 : end;
    }
    if (v && k == 0) return free(v), NULL;
    *n = k;
    return v;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s CKPT_DIR PROMPT(3,1,4) MAX_NEW [THREADS]\n", argv[0]);
        return 2;
    }
    int np, max_new = atoi(argv[3]), threads = argc == 5 ? atoi(argv[4]) : 0;
    int *prompt = parse_list(argv[2], &np);
    if (!prompt || max_new < 0) {
        fprintf(stderr, "decode: expected PROMPT as a comma list of token ids and MAX_NEW >= 0\n");
        return 1;
    }
    eidetic_model *m = NULL;
    eidetic_decoder *d = NULL;
    float *logits = NULL;
    int rc = 1;
    if (eidetic_init(threads) != EIDETIC_OK || eidetic_model_load(argv[1], &m) != EIDETIC_OK ||
        eidetic_decoder_new(m, 1, &d) != EIDETIC_OK)
        goto out;
    int V = eidetic_model_vocab_size(m);
    logits = malloc(sizeof(float) * V);
    if (!logits || eidetic_decoder_prefill(d, prompt, np, logits) != EIDETIC_OK) goto out;
    for (int i = 0; i < max_new; i++) {
        int tok = argmax(logits, V);
        printf(i ? ",%d" : "%d", tok);
        if (i + 1 < max_new && eidetic_decoder_step(d, &tok, logits) != EIDETIC_OK) goto out;
    }
    printf("\n");
    rc = 0;
out:
    if (rc) fprintf(stderr, "decode: error: %s\n", logits || !m ? eidetic_last_error() : "out of memory");
    free(logits), free(prompt);
    eidetic_decoder_free(d);
    eidetic_model_free(m);
    return rc;
}
