/* cmd_expand.c — `eidetic expand`: StateX post-training state expansion of a checkpoint
 * (docs/statex.md). Reads SRC, writes a new checkpoint DST (never in place): into DST.tmp.PID, then
 * one rename. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli/cli.h"
#include "core/runtime.h"
#include "io/checkpoint.h"
#include "io/files.h"
#include "io/opts.h"
#include "io/strict.h"
#include "model/statex.h"
#include "text/tokenizer.h"
#include "train/rundir.h"

typedef struct {
    char ckpt[512], out[512], layers[256], method[16], k_scale[16];
    int every, merge_heads, state_mult, keep_resets, calib_batch, calib_len, lenient, threads;
    uint64_t seed;
} ExpandCfg;

#define O(n, t, f, h) {n, t, offsetof(ExpandCfg, f), sizeof(((ExpandCfg *)0)->f), h}
static const OptDesc expand_opts[] = {
    O("ckpt", OPT_STR, ckpt, "source checkpoint (or run) directory; only read"),
    O("out", OPT_STR, out, "the new checkpoint directory (must not exist)"),
    O("every", OPT_INT, every, "expand blocks i with i % N == 0, layer 0 included (docs/statex.md §1)"),
    O("layers", OPT_STR, layers, "expand these blocks instead, e.g. 1 or 0,2"),
    O("merge-heads", OPT_INT, merge_heads, "GLA: merge the heads into H' heads (H' divides num_heads; 1 = one head, §2)"),
    O("state-mult", OPT_INT, state_mult, "Mamba-2 / Longhorn: d_state N -> k*N (§3, §6)"),
    O("method", OPT_STR, method, "reinit (default: fresh weights, the paper's), inherit (GLA: read heads as one; "
                                 "Mamba-2/Longhorn: tile), zero (Mamba-2/Longhorn: old rows then zeros)"),
    O("keep-resets", OPT_FLAG, keep_resets, "skip the resets (GLA pre-mixer norm; Mamba-2 dt_bias, A_log, norm; Longhorn dt_proj.bias)"),
    O("k-scale", OPT_STR, k_scale, "Longhorn reinit: match (default: new key norms matched on a calibration batch) or none"),
    O("seed", OPT_U64, seed, "seed of the fresh draws and the calibration tokens (<= 2^53)"),
    O("calib-batch", OPT_INT, calib_batch, "calibration sequences (default 4)"),
    O("calib-len", OPT_INT, calib_len, "calibration sequence length (default 128)"),
    O("threads", OPT_INT, threads, "threads (0 = all cores)"),
    O("lenient", OPT_FLAG, lenient, "admit extra string metadata keys in the source config.json"),
};
#undef O
#define N_EXPAND_OPTS (int)(sizeof expand_opts / sizeof expand_opts[0])

static void expand_help(void) {
    printf("usage: eidetic expand --ckpt SRC --out DST (--every N | --layers LIST) [--merge-heads H'] [--state-mult k]\n"
           "                      [--method reinit|inherit|zero] [--keep-resets] [--k-scale match|none] [--seed S]\n\n"
           "StateX (docs/statex.md): enlarge the recurrent state of the selected blocks of a trained model - GLA\n"
           "merges heads, Mamba-2 and Longhorn multiply d_state - and write a new checkpoint whose config.json\n"
           "records the per-layer sizes and a \"statex\" record. Post-train it with eidetic train --init DST.\n"
           "StateX mixers: %s.\n\noptions:\n", statex_mixers());
    opts_help(expand_opts, N_EXPAND_OPTS, stdout);
}

static int to_plan(const ExpandCfg *e, StatexPlan *p) {
    memset(p, 0, sizeof *p);
    if (!e->ckpt[0]) return eid_error("--ckpt: the source checkpoint directory is required"), -1;
    if (!e->out[0]) return eid_error("--out: the new checkpoint directory is required"), -1;
    if (e->every && e->layers[0]) return eid_error("--every and --layers: give one of them"), -1;
    if (!e->every && !e->layers[0]) return eid_error("--every N or --layers LIST: which blocks to expand"), -1;
    if (e->every < 0 || (e->every == 0 && !e->layers[0])) return eid_error("--every: must be >= 1, got %d", e->every), -1;
    p->every = e->every;
    if (e->layers[0]) {
        int *v = NULL, n = 0;
        if (strict_int_list(e->layers, 0, 1 << 20, EID_MAX_LAYERS, &v, &n, "--layers") != 0) return -1;
        memcpy(p->list, v, sizeof(int) * n), p->n_list = n;
        free(v);
    }
    const char *m = e->method[0] ? e->method : "reinit";
    if (!strcmp(m, "reinit")) p->req.method = SX_REINIT;
    else if (!strcmp(m, "inherit")) p->req.method = SX_INHERIT;
    else if (!strcmp(m, "zero")) p->req.method = SX_ZERO;
    else return eid_error("--method: expected reinit, inherit or zero, got '%s'", e->method), -1;
    if (e->merge_heads < 0) return eid_error("--merge-heads: must be >= 1, got %d", e->merge_heads), -1;
    if (e->state_mult < 0) return eid_error("--state-mult: k must be >= 1, got %d", e->state_mult), -1;
    p->req.merge_heads = e->merge_heads, p->req.state_mult = e->state_mult, p->req.keep_resets = e->keep_resets;
    if (e->k_scale[0] && strcmp(e->k_scale, "match") && strcmp(e->k_scale, "none"))
        return eid_error("--k-scale: expected match or none, got '%s'", e->k_scale), -1;
    p->req.k_scale_none = !strcmp(e->k_scale, "none");
    if (e->seed > (1ULL << 53)) return eid_error("--seed: must be <= 2^53 (config.json keeps it as a JSON number)"), -1;
    p->seed = e->seed;
    if (e->calib_batch < 0 || e->calib_batch > 1024) return eid_error("--calib-batch: must be in [1, 1024]"), -1;
    if (e->calib_len < 0 || e->calib_len > 65536) return eid_error("--calib-len: must be in [1, 65536]"), -1;
    p->calib_batch = e->calib_batch, p->calib_len = e->calib_len;
    snprintf(p->source, sizeof p->source, "%s", e->ckpt);
    return 0;
}

int cmd_expand(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return expand_help(), 0;
    ExpandCfg e = {0};
    StatexPlan plan;
    if (opts_parse(expand_opts, N_EXPAND_OPTS, &e, argc - 2, argv + 2, "expand") != 0 || to_plan(&e, &plan) != 0)
        return cli_fail("expand");
    struct stat st;
    if (stat(e.out, &st) == 0)
        return eid_error("--out %s: already exists (expand writes a new checkpoint, never over one)", e.out), cli_fail("expand");
    eid_runtime_setup(e.threads, 0);
    char dir[1024], tmp[1100];
    if (rundir_locate(e.ckpt, dir, sizeof dir) != 0) return cli_fail("expand");
    double t0 = eid_now();
    Model *src = ckpt_load_model_ex(dir, NULL, e.lenient);
    if (!src) return cli_fail("expand");
    int found = 0;
    Tokenizer *tok = tok_load_dir(dir, &found);
    if (!tok && found) return model_free(src), cli_fail("expand");
    Model *dst = statex_expand(src, &plan);
    model_free(src);
    if (!dst) {
        if (tok) tok_free(tok);
        return cli_fail("expand");
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", e.out, (long)getpid());
    int rc = eid_remove_tree(tmp) == 0 && ckpt_save_model(dst, tmp, 0) == 0 && (!tok || tok_save_dir(tok, tmp) == 0) ? 0 : -1;
    if (rc == 0 && rename(tmp, e.out) != 0)
        rc = -1, eid_error("--out %s: cannot rename %s into place (%s)", e.out, tmp, strerror(errno));
    if (rc != 0) eid_remove_tree(tmp);
    else {
        char parent[1100];
        snprintf(parent, sizeof parent, "%s", e.out);
        char *sl = strrchr(parent, '/');
        if (sl) *sl = 0; else snprintf(parent, sizeof parent, ".");
        eid_fsync_dir(parent);
    }
    if (tok) tok_free(tok);
    if (rc != 0) return model_free(dst), cli_fail("expand");
    const StatexRecord *r = &dst->cfg.statex;
    printf("expanded %d layer%s of %s (%s) into %s in %.2f s: %zu parameters\n", r->n, r->n == 1 ? "" : "s", e.ckpt,
           r->method, e.out, eid_now() - t0, dst->n_weights);
    model_free(dst);
    return 0;
}
