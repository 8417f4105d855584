/* cmd_forward.c — `eidetic forward`: logits of one token sequence at every position, written as a
 * safetensors file ("logits" [T, V] F32), for checking against other implementations. */
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "core/runtime.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "train/train_cfg.h"

typedef struct {
    char ckpt[512], tokens[65536], out[512];
    int threads, recurrent, lenient;
} FwdCfg;

#define O(n, t, f, h) {n, t, offsetof(FwdCfg, f), sizeof(((FwdCfg *)0)->f), h}
static const OptDesc fwd_opts[] = {
    O("ckpt", OPT_STR, ckpt, "checkpoint directory"),
    O("lenient", OPT_FLAG, lenient, "admit extra string metadata keys in config.json (docs/reliability.md)"),
    O("tokens", OPT_STR, tokens, "comma list of token ids"),
    O("out", OPT_STR, out, "output .safetensors file"),
    O("recurrent", OPT_FLAG, recurrent, "compute with the one-token recurrent step instead of the parallel forward"),
    O("threads", OPT_INT, threads, "threads (0 = all cores)"),
};
#undef O
#define N_FWD_OPTS (int)(sizeof fwd_opts / sizeof fwd_opts[0])

int cmd_forward(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        printf("usage: eidetic forward --ckpt DIR --tokens 3,1,4 --out FILE.safetensors [--recurrent]\n\noptions:\n");
        opts_help(fwd_opts, N_FWD_OPTS, stdout);
        return 0;
    }
    FwdCfg c = {0};
    if (opts_parse(fwd_opts, N_FWD_OPTS, &c, argc - 2, argv + 2, "forward") != 0) return cli_fail("forward");
    if (!c.ckpt[0] || !c.tokens[0] || !c.out[0])
        return fprintf(stderr, "eidetic forward: error: --ckpt, --tokens and --out are required\n"), 1;
    int *tok, T;
    if (parse_token_list(c.tokens, &tok, &T, "--tokens") != 0) return cli_fail("forward");
    eid_runtime_init(argv, c.threads, 0);
    Model *m = ckpt_load_model_ex(c.ckpt, NULL, c.lenient);
    if (!m) return free(tok), cli_fail("forward");
    if (model_check_tokens(m, tok, T, "--tokens") != 0) return free(tok), model_free(m), cli_fail("forward");
    int V = m->cfg.vocab_size;
    real *logits = eid_xmalloc(sizeof(real) * (size_t)T * V);
    /* a model with learned positions refuses longer inputs the same way in both forms (docs/reliability.md) */
    if (m->cfg.max_pos > 0 && T > m->cfg.max_pos) {
        eid_error("--tokens: %d tokens exceed this model's %d learned positions (max_position_embeddings); give at "
                  "most %d", T, m->cfg.max_pos, m->cfg.max_pos);
        return free(logits), free(tok), model_free(m), cli_fail("forward");
    }
    if (c.recurrent) {
        Decoder *d = decoder_new(m, 1);
        for (int t = 0; t < T; t++) memcpy(logits + (size_t)t * V, decoder_step(m, d, &tok[t]), sizeof(real) * V);
        decoder_free(d);
    } else {
        if (model_plan(m, 1, T, 1) != 0) return free(logits), free(tok), model_free(m), cli_fail("forward");
        model_trunk_forward(m, tok, NULL, 1, T);
        model_logits_all(m, logits);
    }
    float *f32 = eid_xmalloc(sizeof(float) * (size_t)T * V);
    for (size_t i = 0; i < (size_t)T * V; i++) f32[i] = (float)logits[i];
    StWriter w;
    st_writer_init(&w);
    int64_t shape[2] = {T, V};
    st_add(&w, "logits", "F32", 2, shape, f32, sizeof(float) * (size_t)T * V);
    int rc = st_write(&w, c.out);
    free(f32), free(logits), free(tok);
    model_free(m);
    if (rc) return cli_fail("forward");
    fprintf(stderr, "eidetic: wrote logits [%d, %d] to %s\n", T, V, c.out);
    return 0;
}
