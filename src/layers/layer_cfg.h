/* layer_cfg.h — one layer's configuration (type and sizes). Lives with the layers: each layer's
 * resolve() fills its defaults; the model's config (model/config.h) holds a list of these. */
#ifndef EIDETIC_LAYER_CFG_H
#define EIDETIC_LAYER_CFG_H

#define EID_NAME_LEN 16

typedef struct {
    char mixer[EID_NAME_LEN]; /* "longhorn", ... (layers/registry.c) */
    int d_ff;                 /* SwiGLU hidden size of this block's MLP; 0 = no MLP */
    /* mixer size fields; 0 = the mixer's default (filled in by its resolve()) */
    int expand, d_state, d_conv, dt_rank;
    int num_heads, num_kv_heads, head_dim, headdim, ngroups, window, gate_low_rank_dim;
    double expand_k, expand_v;
    double rope_theta;            /* attention RoPE base (10000) */
    int no_rope;                  /* attention without RoPE (the Zoology Fig. 2 baseline, docs/layers.md §5.2) */
    double gate_logit_normalizer; /* GLA τ (16) */
    double g_norm_eps;            /* GLA: eps of the per-head output RMSNorm (0 = 1e-5; fla-hub checkpoints: norm_eps) */
    int max_len;                  /* full attention: decode KV-cache capacity in tokens */
    int bidir; /* 1: Birdie bidirectional layer (docs/layers.md §8; the mixer declares LOPT_BIDIR) */
    int chunk; /* scan chunk length for saved states / chunked forms (default 64) */
    /* B'MOJO (docs/layers.md §6, §7; docs/bmojo.md): the fading SSM and the eidetic store */
    char ssm[EID_NAME_LEN];   /* the SSM mixer that writes the fading tokens (default mamba2) */
    char score[EID_NAME_LEN]; /* bmojo innovation score: pred (default), random, none */
    int ssm_heads;            /* num_heads of the SSM (GLA, Hawk); 0 = its default */
    int qk_norm;              /* 1: RMSNorm per head on q and k before RoPE */
    int untied;               /* 1: separate fading projections q_proj_f, k_proj_f, v_proj_f */
    int mem_size, mem_topk;   /* bmojo store: M tokens (0 = W), k_e selected per chunk (0 = max(1, W/8)) */
} LayerCfg;

#endif
