/* api_threads.c — the library from two threads at once (issue #11 item 7): each thread loads its own
 * model handle from the same checkpoint and computes logits, decodes greedily and runs training
 * steps; the results must equal those of the same work done one thread after the other. Built with
 * -fsanitize=thread by tests/cli/threads_tsan.sh, which also requires zero ThreadSanitizer reports.
 *
 *   api_threads CKPT_DIR [--plant-race]
 *
 * --plant-race adds an unsynchronised counter both threads increment: ThreadSanitizer must report
 * it, which shows the check can fail. Uses only the public header. */
#include <eidetic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSEQ 2
#define LEN 16
#define NEW 8
#define STEPS 3

typedef struct {
    int id;
    const char *ckpt;
    float *logits, *after;    /* [NSEQ * LEN * V] before and after training */
    int tokens[NEW];          /* greedy continuation of a prompt */
    double loss[STEPS];
    int ok;
    char err[512];
} Work;

static int plant_race;
static long planted; /* written by both threads without a lock when --plant-race */

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static void *work(void *arg) {
    Work *w = arg;
    eidetic_model *m = NULL;
    eidetic_decoder *d = NULL;
    eidetic_trainer *tr = NULL;
    float *step = NULL;
    if (eidetic_model_load(w->ckpt, &m) != EIDETIC_OK) goto out;
    int V = eidetic_model_vocab_size(m);
    int tok[NSEQ * LEN], lab[NSEQ * LEN];
    for (int i = 0; i < NSEQ * LEN; i++) tok[i] = (i * 7 + w->id * 13 + 1) % V, lab[i] = EIDETIC_NO_LABEL;
    for (int i = 1; i < NSEQ * LEN; i += 2) lab[i - 1] = tok[i]; /* next-token labels on every other position */
    w->logits = malloc(sizeof(float) * NSEQ * LEN * V);
    w->after = malloc(sizeof(float) * NSEQ * LEN * V);
    step = malloc(sizeof(float) * V);
    if (!w->logits || !w->after || !step) goto out;
    if (eidetic_model_logits(m, tok, NSEQ, LEN, w->logits) != EIDETIC_OK) goto out;
    if (eidetic_decoder_new(m, 1, &d) != EIDETIC_OK || eidetic_decoder_prefill(d, tok, LEN / 2, step) != EIDETIC_OK)
        goto out;
    for (int i = 0; i < NEW; i++) {
        w->tokens[i] = argmax(step, V);
        if (plant_race) planted++;
        if (eidetic_decoder_step(d, &w->tokens[i], step) != EIDETIC_OK) goto out;
    }
    eidetic_trainer_params p = eidetic_trainer_default_params();
    p.lr = 3e-3;
    if (eidetic_trainer_new(m, &p, &tr) != EIDETIC_OK) goto out;
    for (int s = 0; s < STEPS; s++) {
        eidetic_step_result r;
        if (eidetic_trainer_step(tr, tok, lab, NSEQ, LEN, &r) != EIDETIC_OK) goto out;
        w->loss[s] = r.loss;
    }
    if (eidetic_model_logits(m, tok, NSEQ, LEN, w->after) != EIDETIC_OK) goto out;
    w->ok = 1;
out:
    if (!w->ok) snprintf(w->err, sizeof w->err, "%s", eidetic_last_error());
    free(step);
    eidetic_trainer_free(tr);
    eidetic_decoder_free(d);
    eidetic_model_free(m);
    return NULL;
}

static int same(const Work *a, const Work *b, size_t nl) {
    return a->ok && b->ok && !memcmp(a->logits, b->logits, nl) && !memcmp(a->after, b->after, nl) &&
           !memcmp(a->tokens, b->tokens, sizeof a->tokens) && !memcmp(a->loss, b->loss, sizeof a->loss);
}

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: %s CKPT_DIR [--plant-race]\n", argv[0]), 2;
    plant_race = argc > 2 && !strcmp(argv[2], "--plant-race");
    /* one thread per handle: the OpenMP runtime is not instrumented, so its own team synchronisation
     * would look like races; what is tested is the library's state across separate handles */
    eidetic_init(1);
    Work seq[2] = {{0, argv[1]}, {1, argv[1]}}, par[2] = {{0, argv[1]}, {1, argv[1]}};
    work(&seq[0]);
    work(&seq[1]);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, work, &par[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        if (!seq[i].ok || !par[i].ok) {
            fprintf(stderr, "api_threads: worker %d failed: %s\n", i, seq[i].ok ? par[i].err : seq[i].err);
            rc = 1;
            continue;
        }
        eidetic_model *m;
        eidetic_model_load(argv[1], &m);
        size_t nl = sizeof(float) * NSEQ * LEN * eidetic_model_vocab_size(m);
        eidetic_model_free(m);
        if (!same(&seq[i], &par[i], nl)) fprintf(stderr, "api_threads: worker %d differs from the sequential run\n", i), rc = 1;
        if (seq[0].ok && seq[1].ok && i == 1 && !memcmp(seq[0].logits, seq[1].logits, nl))
            fprintf(stderr, "api_threads: the two workers' inputs gave identical logits (test is blind)\n"), rc = 1;
    }
    for (int i = 0; i < 2; i++) free(seq[i].logits), free(seq[i].after), free(par[i].logits), free(par[i].after);
    if (!rc) printf("api_threads: 2 threads on separate handles = sequential (logits, %d greedy tokens, %d training steps)\n", NEW, STEPS);
    return rc;
}
