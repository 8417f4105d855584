/* cmd_generate.c — `eidetic generate`: greedy / temperature / top-p sampling with the one-token
 * recurrent step. Memory is constant in the number of tokens (the state, not a growing cache). */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "cli/cli.h"
#include "core/rng.h"
#include "core/runtime.h"
#include "io/checkpoint.h"
#include "train/train_cfg.h"

typedef struct {
    char ckpt[512], prompt[8192];
    int max_new, top_k_unused, threads, lenient;
    double temperature, top_p;
    uint64_t seed;
} GenCfg;

#define O(n, t, f, h) {n, t, offsetof(GenCfg, f), sizeof(((GenCfg *)0)->f), h}
static const OptDesc gen_opts[] = {
    O("ckpt", OPT_STR, ckpt, "checkpoint directory"),
    O("lenient", OPT_FLAG, lenient, "admit extra string metadata keys in config.json (docs/reliability.md)"),
    O("prompt", OPT_STR, prompt, "comma list of token ids"),
    O("max-new", OPT_INT, max_new, "tokens to generate (default 16)"),
    O("temperature", OPT_DBL, temperature, "0 = greedy (default); > 0 samples from softmax(logits / T)"),
    O("top-p", OPT_DBL, top_p, "nucleus sampling mass in (0, 1] (default 1)"),
    O("seed", OPT_U64, seed, "sampling seed"),
    O("threads", OPT_INT, threads, "threads (0 = all cores)"),
};
#undef O
#define N_GEN_OPTS (int)(sizeof gen_opts / sizeof gen_opts[0])

typedef struct { real p; int id; } Cand;
static int cand_desc(const void *a, const void *b) {
    real x = ((const Cand *)a)->p, y = ((const Cand *)b)->p;
    return x < y ? 1 : x > y ? -1 : ((const Cand *)a)->id - ((const Cand *)b)->id;
}

/* Index of the first non-finite logit, or -1 (docs/reliability.md "Numerical faults"). */
static int first_nonfinite(const real *logits, int V) {
    for (int v = 0; v < V; v++)
        if (!isfinite((double)logits[v])) return v;
    return -1;
}

/* Pick the next token: argmax, or a sample from the temperature-scaled softmax restricted to the
 * smallest set of most likely tokens whose mass reaches top_p. cand is scratch [V]. */
static int sample(const real *logits, int V, double temp, double top_p, Rng *r, Cand *cand) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (temp <= 0) return best;
    double sum = 0;
    for (int v = 0; v < V; v++) {
        cand[v].p = (real)exp((logits[v] - logits[best]) / temp);
        cand[v].id = v;
        sum += cand[v].p;
    }
    qsort(cand, V, sizeof *cand, cand_desc);
    double keep = 0;
    int n = 0;
    while (n < V && (n == 0 || keep < top_p * sum)) keep += cand[n++].p;
    double u = rng_uniform(r) * keep, acc = 0;
    for (int i = 0; i < n; i++)
        if ((acc += cand[i].p) > u) return cand[i].id;
    return cand[n - 1].id;
}

int cmd_generate(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        printf("usage: eidetic generate --ckpt DIR --prompt 1,2,3 [options]\n\nPrints the generated token ids, comma "
               "separated. Decoding uses each layer's recurrent step: memory does not grow with length.\n\noptions:\n");
        opts_help(gen_opts, N_GEN_OPTS, stdout);
        return 0;
    }
    GenCfg g = {.max_new = 16, .top_p = 1, .seed = 1};
    if (opts_parse(gen_opts, N_GEN_OPTS, &g, argc - 2, argv + 2, "generate") != 0) return cli_fail("generate");
    if (!g.ckpt[0] || !g.prompt[0]) return fprintf(stderr, "eidetic generate: error: --ckpt and --prompt are required\n"), 1;
    if (g.max_new < 0 || g.temperature < 0 || !(g.top_p > 0 && g.top_p <= 1))
        return fprintf(stderr, "eidetic generate: error: need --max-new >= 0, --temperature >= 0, --top-p in (0, 1]\n"), 1;
    int *prompt, np;
    if (parse_token_list(g.prompt, &prompt, &np, "--prompt") != 0) return cli_fail("generate");
    eid_runtime_setup(g.threads, 0);
    Model *m = ckpt_load_model_ex(g.ckpt, NULL, g.lenient);
    if (!m) return free(prompt), cli_fail("generate");
    if (model_check_tokens(m, prompt, np, "--prompt") != 0) return free(prompt), model_free(m), cli_fail("generate");
    int V = m->cfg.vocab_size;
    Decoder *d = decoder_new(m, 1);
    if (decoder_room(m, d, (long)np + g.max_new) != 0) /* prompt + new tokens must fit learned positions */
        return free(prompt), decoder_free(d), model_free(m), cli_fail("generate");
    Cand *cand = eid_xmalloc(sizeof(Cand) * V);
    Rng r;
    rng_init(&r, rng_derive(g.seed, 0x6E6), 0);
    const real *logits = model_prefill(m, d, prompt, NULL, 1, np); /* the prompt in one parallel pass */
    if (!logits) return free(cand), free(prompt), decoder_free(d), model_free(m), cli_fail("generate");
    /* tokens are printed only once all logits are known finite: a failed run prints no tokens */
    int *out = eid_xmalloc(sizeof(int) * (g.max_new > 0 ? g.max_new : 1)), rc = 0;
    for (int i = 0; i < g.max_new; i++) {
        int bad = first_nonfinite(logits, V);
        if (bad >= 0) {
            eid_error("%s: the logits after %d prompt and %d generated tokens are not finite (NaN/Inf at token %d): "
                      "the weights overflow the recurrent step", g.ckpt, np, i, bad);
            rc = -1;
            break;
        }
        out[i] = sample(logits, V, g.temperature, g.top_p, &r, cand);
        if (i + 1 < g.max_new) logits = decoder_step(m, d, &out[i]);
    }
    if (rc == 0) {
        for (int i = 0; i < g.max_new; i++) printf(i ? ",%d" : "%d", out[i]);
        printf("\n");
    }
    free(out), free(cand), free(prompt);
    decoder_free(d);
    model_free(m);
    return rc ? cli_fail("generate") : 0;
}
