/* cmd_info.c — `eidetic info`: architecture, parameters and recurrent state per layer. */
#include <string.h>
#include "cli/cli.h"
#include "core/runtime.h"
#include "io/checkpoint.h"
#include "train/train_cfg.h"

typedef struct {
    char ckpt[512];
    int lenient;
} InfoCfg;

#define O(n, t, f, h) {n, t, offsetof(InfoCfg, f), sizeof(((InfoCfg *)0)->f), h}
static const OptDesc info_opts[] = {
    O("ckpt", OPT_STR, ckpt, "checkpoint directory"),
    O("lenient", OPT_FLAG, lenient, "admit extra string metadata keys in config.json (docs/reliability.md)"),
};
#undef O
#define N_INFO_OPTS (int)(sizeof info_opts / sizeof info_opts[0])

/* The StateX record of an expanded checkpoint (docs/statex.md §7) and, per expanded layer, its
 * mixer's state and parameters before → after. */
static void print_statex(const Model *m) {
    const StatexRecord *r = &m->cfg.statex;
    printf("statex: method %s", r->method);
    if (r->merge_heads) printf(", merge_heads %d", r->merge_heads);
    if (r->state_mult) printf(", state_mult %d", r->state_mult);
    if (r->k_scale[0]) printf(", k_scale %s", r->k_scale);
    printf(", resets %s, seed %llu, source %s\n", r->keep_resets ? "kept" : "applied", (unsigned long long)r->seed, r->source);
    long ds = 0, dp = 0;
    for (int k = 0; k < r->n; k++) {
        int s = 0;
        while (s < m->n_sub && !(m->sub_block[s] == r->layer[k] && m->sub[s].op.ops != &mlp_ops)) s++;
        if (s == m->n_sub) continue;
        long st = (long)model_state_floats(m, s), np = 0;
        for (int j = 0; j < m->nparam; j++)
            if (m->param[j].owner == &m->sub[s].op) np += (long)m->param[j].numel;
        printf("  layer %d (%s): state %ld -> %ld floats (%+ld, x%.2f); mixer params %ld -> %ld (%+ld)\n", r->layer[k],
               m->sub[s].op.ops->name, r->before_state[k], st, st - r->before_state[k],
               r->before_state[k] ? (double)st / r->before_state[k] : 0.0, r->before_params[k], np, np - r->before_params[k]);
        ds += st - r->before_state[k], dp += np - r->before_params[k];
    }
    printf("statex total: state %+ld floats, parameters %+ld\n", ds, dp);
}

int cmd_info(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        printf("usage: eidetic info --ckpt DIR [--lenient]\n       eidetic info [train options: --preset, --layers, --d-model, ...]\n\n"
               "Per layer: mixer, parameter count, recurrent decode state (floats and bytes, fp32) and the Zoology\n"
               "state_size convention (docs/tasks.md §1.4, bytes = 4 x sum) to place results on published plots.\n"
               "A bidirectional layer (--bidir, docs/layers.md §8) gets a second line: the reverse half of its state\n"
               "(stateless at decode, so not carried) or, for attention, the prefix-LM mask.\n");
        return 0;
    }
    Model *m = NULL;
    int L = 0, by_ckpt = 0;
    for (int i = 2; i < argc; i++) by_ckpt |= !strcmp(argv[i], "--ckpt") || !strncmp(argv[i], "--ckpt=", 7);
    if (by_ckpt) { /* only --ckpt and --lenient: any other flag is an error, not silently ignored */
        InfoCfg ic = {0};
        if (opts_parse(info_opts, N_INFO_OPTS, &ic, argc - 2, argv + 2, "info --ckpt") != 0) return cli_fail("info");
        m = ckpt_load_model_ex(ic.ckpt, NULL, ic.lenient);
        if (!m) return cli_fail("info");
    } else {
        TrainCfg c;
        preset_apply(&c, "default");
        for (int i = 2; i + 1 < argc; i++)
            if (!strcmp(argv[i], "--preset") && preset_apply(&c, argv[i + 1]) != 0) return cli_fail("info");
        if (opts_parse(train_opts, n_train_opts, &c, argc - 2, argv + 2, "info") != 0) return cli_fail("info");
        if (c.config[0] && train_cfg_load_file(&c, c.config, 1) != 0) return cli_fail("info");
        if (train_cfg_resolve(&c) != 0) return cli_fail("info");
        m = model_new(&c.model);
        if (!m) return cli_fail("info");
        L = c.task.seq_len;
    }
    const ModelCfg *c = &m->cfg;
    printf("model: vocab %d, d_model %d, %d layers, %s head, norm_eps %g\n", c->vocab_size, c->d_model, c->n_layer,
           c->tie_embeddings ? "tied" : "untied", c->norm_eps);
    if (c->max_pos > 0)
        printf("learned absolute positions: %d x %d (backbone.pos_embeddings.weight); sequences of at most %d tokens\n",
               c->max_pos, c->d_model, c->max_pos);
    printf("%-5s %-10s %6s %12s %14s %12s %16s\n", "layer", "mixer", "d_ff", "params", "state floats", "state bytes",
           "zoology state");
    size_t tot_state = 0, tot_rev = 0;
    double tot_zoo = 0;
    for (int s = 0; s < m->n_sub; s++) {
        const Layer *l = &m->sub[s].op;
        size_t np = (size_t)c->d_model; /* the sublayer's pre-norm */
        for (int j = 0; j < m->nparam; j++)
            if (m->param[j].owner == l) np += m->param[j].numel;
        size_t st = model_state_floats(m, s);
        double zoo = l->ops->zoology_state(l->cfg, c->d_model, L);
        tot_state += st, tot_zoo += zoo;
        printf("%-5d %-10s %6d %12zu %14zu %12zu %16.0f\n", m->sub_block[s], l->ops->name, l->cfg->d_ff, np, st,
               st * 4, zoo);
        if (l->cfg->bidir) { /* docs/layers.md §8.2, §8.4: same parameters; what the decode state carries */
            size_t rev = l->ops->reverse_state ? l->ops->reverse_state(l->cfg, c->d_model) : 0;
            tot_rev += rev;
            if (l->ops->reverse_state)
                printf("      %s (bidir: +reverse half, 0 extra params): %zu of the %zu state floats run right to left "
                       "over the prompt; stateless at decode, carried %zu floats\n",
                       l->ops->name, rev, st, st - rev);
            else
                printf("      %s (bidir: prefix-LM mask, 0 extra params): the prompt reads both ways; decode state "
                       "unchanged (the KV ring)\n", l->ops->name);
        }
    }
    printf("total: %zu parameters (%.2f M); recurrent state %zu floats = %zu bytes per sequence; "
           "Zoology state size %.0f (x4 = %.0f bytes)\n",
           m->n_weights, m->n_weights / 1e6, tot_state, tot_state * 4, tot_zoo, tot_zoo * 4);
    if (tot_rev)
        printf("bidirectional: %zu of those floats are reverse halves (scratch at decode); carried between tokens "
               "%zu floats = %zu bytes per sequence\n", tot_rev, tot_state - tot_rev, (tot_state - tot_rev) * 4);
    if (c->statex.present) print_statex(m);
    model_free(m);
    return 0;
}
