/* test_equiv.c — built twice: fp64 (with the other tests) and fp32 (what users run). For every
 * registered mixer, in a 2-layer model with an MLP, the parallel forward's logits equal the
 * one-token decoder's over a sequence that crosses several chunk boundaries. */
#include "core/runtime.h"
#include "model_util.h"

static const char *mixers[] = {"longhorn", "mamba", "mamba2", "gla", "attn", "swa", "hawk", "gated-ssm"};

int main(void) {
    eid_runtime_setup(2, 0);
#ifdef EIDETIC_FP64
    const double tol = 1e-9;
    const char *name = "test_equiv";
#else
    const double tol = 2e-4;
    const char *name = "test_equiv_fp32";
#endif
    const int V = 50, D = 16, T = 150;
    for (size_t k = 0; k < sizeof mixers / sizeof *mixers + 1; k++) {
        int baseline = k == sizeof mixers / sizeof *mixers; /* + the learned-position attention baseline */
        if (!baseline && !layer_find(mixers[k])) continue;
        char layers[64];
        if (baseline) snprintf(layers, sizeof layers, "pos:attn,attn");
        else snprintf(layers, sizeof layers, "%s,%s", mixers[k], mixers[k]);
        Model *m = tiny_model(layers, V, D, 24, 1, 32, 11);
        int tok[T];
        rand_tokens(tok, T, V, 3);
        model_plan(m, 1, T, T);
        model_trunk_forward(m, tok, NULL, 1, T);
        real *full = eid_xmalloc(sizeof(real) * T * V), *dec = eid_xmalloc(sizeof(real) * T * V);
        model_logits_all(m, full);
        Decoder *d = decoder_new(m, 1);
        for (int t = 0; t < T; t++) memcpy(dec + (size_t)t * V, decoder_step(m, d, &tok[t]), sizeof(real) * V);
        double e = t_rel_err(dec, full, (size_t)T * V, 1e-3);
        CHECK(e < tol, "%s: decoder vs parallel forward rel err %.3g (tol %.1g)", layers, e, tol);
        decoder_free(d);
        free(full), free(dec);
        model_free(m);
    }
    return t_summary(name);
}
