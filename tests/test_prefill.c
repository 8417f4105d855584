/* test_prefill.c — model_prefill (model.h): a parallel pass over prompts leaves the decoder exactly
 * where the one-token step loop would. For hybrid stacks that include every registered mixer
 * (layers without ops->prefill are stepped inside model_prefill, so this holds either way):
 *   prompts of different lengths, left-padded with PAD in one batch, then steps == each sequence's
 *   own step loop (logits at the last prompt token, every later step's logits, every state);
 *   prefill(p1) then prefill(p2) == prefill(p1‖p2) == the step loop, at several split points. */
#include "core/runtime.h"
#include "kernels/seq.h"
#include "model_util.h"

#define MAXB 3

/* Sequence b alone, stepped from a fresh decoder over its n tokens: logits after every token
 * (out [n, V]) and the final state (st [Σ states of one sequence]). */
static void step_one(Model *m, const int *tok, int n, real *out, real *st) {
    int V = m->cfg.vocab_size;
    Decoder *d = decoder_new(m, 1);
    for (int t = 0; t < n; t++) memcpy(out + (size_t)t * V, decoder_step(m, d, &tok[t]), sizeof(real) * V);
    size_t o = 0;
    for (int s = 0; s < m->n_sub; s++) {
        size_t ss = model_state_floats(m, s);
        memcpy(st + o, d->state + d->state_off[s], sizeof(real) * ss), o += ss;
    }
    decoder_free(d);
}

static size_t seq_state_floats(Model *m) {
    size_t n = 0;
    for (int s = 0; s < m->n_sub; s++) n += model_state_floats(m, s);
    return n;
}

/* the state of sequence b of a batched decoder, in step_one's layout */
static void state_of(Model *m, Decoder *d, int b, real *st) {
    size_t o = 0;
    for (int s = 0; s < m->n_sub; s++) {
        size_t ss = model_state_floats(m, s);
        memcpy(st + o, d->state + d->state_off[s] + (size_t)b * ss, sizeof(real) * ss), o += ss;
    }
}

/* Is every sublayer's batched decode state sequence-major ([nseq, state_size], layer.h), as
 * model_prefill's per-sequence pointers need? Steps 3 sequences batched and one at a time. A layer
 * with a prefill must be; one without is reported and the padded-batch check is skipped. */
static int seq_major(Model *m, const char *layers) {
    enum { NB = 3, NT = 4 };
    int V = m->cfg.vocab_size, tok[NB][NT], ok = 1;
    size_t sf = seq_state_floats(m);
    real *ref = eid_xmalloc(sizeof(real) * NT * V), *st_ref = eid_xmalloc(sizeof(real) * (sf + 1)), *st = eid_xmalloc(sizeof(real) * (sf + 1));
    Decoder *d = decoder_new(m, NB);
    for (int b = 0; b < NB; b++) rand_tokens(tok[b], NT, V, 300 + b);
    for (int t = 0; t < NT; t++) {
        int tk[NB] = {tok[0][t], tok[1][t], tok[2][t]};
        decoder_step(m, d, tk);
    }
    for (int b = 0; b < NB; b++) {
        step_one(m, tok[b], NT, ref, st_ref);
        size_t o = 0;
        for (int s = 0; s < m->n_sub; s++) {
            size_t ss = model_state_floats(m, s);
            const real *x = d->state + d->state_off[s] + (size_t)b * ss;
            if (ss && t_rel_err(x, st_ref + o, ss, 1e-6) > 1e-9) {
                const LayerOps *ops = m->sub[s].op.ops;
                CHECK(!ops->prefill, "[%s] %s has a prefill but its batched step state is not [nseq, state_size]",
                      layers, ops->name);
                if (ok) printf("NOTE [%s]: %s's batched step state is not [nseq, state_size]: padded-batch prefill "
                               "check skipped until it is\n", layers, ops->name);
                ok = 0;
            }
            o += ss;
        }
    }
    decoder_free(d);
    free(ref), free(st_ref), free(st);
    return ok;
}

static void check_stack(const char *layers) {
    const int V = 19, D = 8, B = MAXB, C = 6;
    const int plen[MAXB] = {5, 13, 9}; /* prompt lengths: left padding of 8, 0 and 4 */
    int P = 13;
    Model *m = tiny_model(layers, V, D, 12, 1, 4, 77);
    size_t sf = seq_state_floats(m);
    int tok[MAXB][13 + 6];
    real *ref = eid_xmalloc(sizeof(real) * (13 + 6) * V), *st_ref = eid_xmalloc(sizeof(real) * (sf + 1));
    real *st = eid_xmalloc(sizeof(real) * (sf + 1));
    for (int b = 0; b < B; b++) rand_tokens(tok[b], (size_t)plen[b] + C, V, 100 + b);
    /* 1. left-padded batch: prefill then C steps */
    if (!seq_major(m, layers)) goto two_parts;
    int ptok[MAXB * 13];
    uint8_t pf[MAXB * 13];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < P; t++) {
            int pad = P - plen[b];
            ptok[b * P + t] = t < pad ? 0 : tok[b][t - pad];
            pf[b * P + t] = t < pad ? FLAG_PAD : FLAG_CAUSAL | (t == pad ? FLAG_SEG_START : 0);
        }
    Decoder *d = decoder_new(m, B);
    const real *lg = model_prefill(m, d, ptok, pf, B, P);
    CHECK(lg != NULL, "[%s] model_prefill failed: %s", layers, eid_last_error());
    double e_pre = 0, e_step = 0, e_state = 0;
    real *pre = eid_xmalloc(sizeof(real) * B * V), *steps = eid_xmalloc(sizeof(real) * B * C * V);
    memcpy(pre, lg, sizeof(real) * B * V);
    for (int c = 0; c < C; c++) {
        int tk[MAXB];
        for (int b = 0; b < B; b++) tk[b] = tok[b][plen[b] + c];
        memcpy(steps + (size_t)c * B * V, decoder_step(m, d, tk), sizeof(real) * B * V);
    }
    for (int b = 0; b < B; b++) {
        step_one(m, tok[b], plen[b] + C, ref, st_ref);
        e_pre = t_worst(e_pre, t_rel_err(pre + (size_t)b * V, ref + (size_t)(plen[b] - 1) * V, V, 1e-6));
        for (int c = 0; c < C; c++)
            e_step = t_worst(e_step, t_rel_err(steps + ((size_t)c * B + b) * V, ref + (size_t)(plen[b] + c) * V, V, 1e-6));
        state_of(m, d, b, st);
        e_state = t_worst(e_state, t_rel_err(st, st_ref, sf, 1e-6));
        CHECK(d->seq_pos[b] == plen[b] + C, "[%s] sequence %d has seen %d tokens, expected %d", layers, b,
              d->seq_pos[b], plen[b] + C);
    }
    CHECK(e_pre < 1e-9, "[%s] left-padded prefill: logits at the last prompt token vs step loop rel err %.3g", layers, e_pre);
    CHECK(e_step < 1e-9, "[%s] left-padded prefill then steps: logits vs step loop rel err %.3g", layers, e_step);
    CHECK(e_state < 1e-9, "[%s] left-padded prefill then steps: states vs step loop rel err %.3g", layers, e_state);
    decoder_free(d);
    free(pre), free(steps);
two_parts:;
    /* 2. prefill(p1) then prefill(p2) == the step loop (sequence 1, the longest) */
    int n = plen[1] + C, splits[] = {1, 4, 5, 9, n - 1};
    step_one(m, tok[1], n, ref, st_ref);
    double e_two = 0, e_two_st = 0;
    for (int k = 0; k < (int)(sizeof splits / sizeof *splits); k++) {
        int p = splits[k];
        d = decoder_new(m, 1);
        CHECK(model_prefill(m, d, tok[1], NULL, 1, p) != NULL, "[%s] prefill p1", layers);
        lg = model_prefill(m, d, tok[1] + p, NULL, 1, n - p);
        CHECK(lg != NULL, "[%s] prefill p2", layers);
        e_two = t_worst(e_two, t_rel_err(lg, ref + (size_t)(n - 1) * V, V, 1e-6));
        /* every position of the second part (model_prefill_logits_all) */
        real *all = eid_xmalloc(sizeof(real) * (size_t)(n - p) * V);
        model_prefill_logits_all(m, all);
        e_two = t_worst(e_two, t_rel_err(all, ref + (size_t)p * V, (size_t)(n - p) * V, 1e-6));
        free(all);
        state_of(m, d, 0, st);
        e_two_st = t_worst(e_two_st, t_rel_err(st, st_ref, sf, 1e-6));
        decoder_free(d);
    }
    CHECK(e_two < 1e-9, "[%s] prefill(p1) then prefill(p2): logits vs step loop rel err %.3g", layers, e_two);
    CHECK(e_two_st < 1e-9, "[%s] prefill(p1) then prefill(p2): state vs step loop rel err %.3g", layers, e_two_st);
    free(ref), free(st_ref), free(st);
    model_free(m);
}

int main(void) {
    eid_runtime_setup(2, 0);
    char all[512] = "";
    for (int i = 0; i < layer_count(); i++) {
        const char *x = layer_at(i)->name;
        char layers[128];
        snprintf(layers, sizeof layers, "%s,attn", x), check_stack(layers);
        snprintf(layers, sizeof layers, "swa,%s", x), check_stack(layers);
        snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", i ? "," : "", x);
    }
    check_stack(all);
    check_stack("pos:attn,swa"); /* learned positions continue per sequence */
    return t_summary("test_prefill");
}
