/* hf_config.c — published Hugging Face config.json onto ModelCfg (docs/lm.md "Published checkpoints").
 * Supported: model_type "mamba" (MambaForCausalLM, state-spaces/mamba-*-hf), "mamba2" (Mamba2ForCausalLM)
 * and "gla" (GLAForCausalLM of fla-hub, flash-linear-attention's GLAConfig). Every key of that schema is
 * either mapped onto eidetic's fields, on the list of keys that do not change the forward pass
 * (initialisation-only or metadata), or checked to hold the one value eidetic computes; anything else
 * is an error naming the key, so a checkpoint is never loaded to compute something different. */
#include "io/hf_config.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>
#include "io/strict.h"

/* keys that leave the forward pass unchanged: metadata, generation defaults, initialisation-only
 * settings, and pad_vocab_size_multiple (already applied: the embedding has vocab_size rows) */
static const char *const harmless_keys[] = {
    "_name_or_path", "architectures", "model_type", "torch_dtype", "transformers_version", "use_cache",
    "bos_token_id", "eos_token_id", "pad_token_id", "initializer_range", "rescale_prenorm_residual",
    "time_step_scale", "time_step_min", "time_step_max", "time_step_init_scheme", "time_step_floor",
    "pad_vocab_size_multiple", "residual_in_fp32", "fused_add_norm", "use_mambapy"};
/* keys mapped or checked below */
static const char *const mapped_keys[] = {
    "vocab_size", "hidden_size", "d_model", "num_hidden_layers", "n_layer", "state_size", "expand",
    "intermediate_size", "d_inner", "conv_kernel", "time_step_rank", "layer_norm_epsilon", "tie_word_embeddings",
    "hidden_act", "use_bias", "use_conv_bias", "rms_norm", "ssm_cfg"};

/* transformers' Mamba2Config: the same classes (chunk_size is the SSD chunk, a compute choice) */
static const char *const harmless_keys2[] = {
    "_name_or_path", "architectures", "model_type", "torch_dtype", "transformers_version", "use_cache",
    "bos_token_id", "eos_token_id", "pad_token_id", "initializer_range", "rescale_prenorm_residual",
    "time_step_min", "time_step_max", "time_step_floor", "time_step_rank", "residual_in_fp32", "chunk_size"};
static const char *const mapped_keys2[] = {
    "vocab_size", "hidden_size", "num_hidden_layers", "state_size", "expand", "num_heads", "head_dim", "n_groups",
    "conv_kernel", "layer_norm_epsilon", "tie_word_embeddings", "hidden_act", "use_bias", "use_conv_bias",
    "rms_norm", "norm_before_gate", "time_step_limit"};

/* fla's GLAConfig: the fuse_* keys pick fused kernels (same computation), max_position_embeddings is
 * read only by hybrid attention layers (refused through "attn") */
static const char *const harmless_keys3[] = {
    "_name_or_path", "architectures", "model_type", "torch_dtype", "transformers_version", "use_cache",
    "bos_token_id", "eos_token_id", "pad_token_id", "initializer_range", "max_position_embeddings",
    "fuse_cross_entropy", "fuse_linear_cross_entropy", "fuse_swiglu", "use_l2warp"};
static const char *const mapped_keys3[] = {
    "vocab_size", "hidden_size", "num_hidden_layers", "num_heads", "num_kv_heads", "expand_k", "expand_v",
    "hidden_ratio", "intermediate_size", "norm_eps", "tie_word_embeddings", "use_short_conv", "conv_size",
    "share_conv_kernel", "feature_map", "attn_mode", "use_output_gate", "clamp_min", "hidden_act",
    "elementwise_affine", "use_gk", "use_gv", "attn", "fuse_norm", "attnres_block_size"};

#define NKEYS(a) (int)(sizeof a / sizeof *a)

static int in_list(const char *k, const char *const *l, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(k, l[i])) return 1;
    return 0;
}

int hf_config_detect(const char *text) {
    cJSON *j = cJSON_Parse(text);
    int hf = cJSON_IsObject(j) && !cJSON_GetObjectItemCaseSensitive(j, "format") &&
             (cJSON_GetObjectItemCaseSensitive(j, "model_type") || cJSON_GetObjectItemCaseSensitive(j, "architectures"));
    cJSON_Delete(j);
    return hf;
}

static int get_int(const cJSON *j, const char *key, const char *where, int *dst, int required) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v) return required ? (eid_error("%s: missing required key \"%s\"", where, key), -1) : 0;
    char what[700];
    snprintf(what, sizeof what, "%s: \"%s\"", where, key);
    return strict_json_int(v, 1, 1 << 30, dst, what);
}

/* an optional alias (d_model for hidden_size, ...) must agree with the key it repeats */
static int check_alias(const cJSON *j, const char *key, int want, const char *where, const char *of) {
    int v = want;
    if (get_int(j, key, where, &v, 0)) return -1;
    if (v != want) return eid_error("%s: \"%s\" is %d but %s is %d", where, key, v, of, want), -1;
    return 0;
}

/* a boolean key eidetic supports with one value only (layers: "Mamba layers", "GLA layer") */
static int check_bool_of(const cJSON *j, const char *key, int want, const char *where, const char *layers) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return eid_error("%s: \"%s\" must be true or false", where, key), -1;
    if (cJSON_IsTrue(v) != want)
        return eid_error("%s: \"%s\": %s is not supported (eidetic's %s compute%s \"%s\": %s)", where, key,
                         want ? "false" : "true", layers, strstr(layers, "layers") ? "" : "s", key, want ? "true" : "false"), -1;
    return 0;
}

static int check_bool(const cJSON *j, const char *key, int want, const char *where) {
    return check_bool_of(j, key, want, where, "Mamba layers");
}

/* -> HF_MAMBA, HF_MAMBA2, HF_GLA or -1 + error */
static int check_model_type(const cJSON *j, const char *where) {
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "model_type");
    if (mt && !cJSON_IsString(mt)) return eid_error("%s: \"model_type\" must be a string", where), -1;
    int kind = 0;
    if (mt)
        kind = !strcmp(mt->valuestring, "mamba") ? HF_MAMBA : !strcmp(mt->valuestring, "mamba2") ? HF_MAMBA2
             : !strcmp(mt->valuestring, "gla") ? HF_GLA : -1;
    if (kind < 0)
        return eid_error("%s: \"model_type\": \"%s\" is not supported (this build loads Hugging Face \"mamba\", "
                         "\"mamba2\" and fla-hub \"gla\" checkpoints; docs/lm.md \"Published checkpoints\")", where,
                         mt->valuestring), -1;
    const cJSON *ar = cJSON_GetObjectItemCaseSensitive(j, "architectures"), *e;
    if (ar && !cJSON_IsArray(ar)) return eid_error("%s: \"architectures\" must be a list of strings", where), -1;
    if (ar) cJSON_ArrayForEach(e, ar) {
        int k = !cJSON_IsString(e) ? -1 : !strcmp(e->valuestring, "MambaForCausalLM") ? HF_MAMBA
              : !strcmp(e->valuestring, "Mamba2ForCausalLM") ? HF_MAMBA2
              : !strcmp(e->valuestring, "GLAForCausalLM") ? HF_GLA : -1;
        if (k < 0 || (kind && k != kind))
            return eid_error("%s: \"architectures\": %s is not supported (expected \"MambaForCausalLM\", "
                             "\"Mamba2ForCausalLM\" or \"GLAForCausalLM\", matching model_type)", where,
                             cJSON_IsString(e) ? e->valuestring : "a non-string entry"), -1;
        kind = k;
    }
    if (!kind) return eid_error("%s: neither \"model_type\" nor \"architectures\" names the model", where), -1;
    return kind;
}

static int check_keys(const cJSON *j, const char *where, int lenient, int kind) {
    const cJSON *e;
    cJSON_ArrayForEach(e, j) {
        if (kind == 1 && (in_list(e->string, mapped_keys, NKEYS(mapped_keys)) ||
                          in_list(e->string, harmless_keys, NKEYS(harmless_keys))))
            continue;
        if (kind == 2 && (in_list(e->string, mapped_keys2, NKEYS(mapped_keys2)) ||
                          in_list(e->string, harmless_keys2, NKEYS(harmless_keys2))))
            continue;
        if (kind == HF_GLA && (in_list(e->string, mapped_keys3, NKEYS(mapped_keys3)) ||
                               in_list(e->string, harmless_keys3, NKEYS(harmless_keys3))))
            continue;
        if (lenient && (cJSON_IsString(e) || cJSON_IsNull(e))) continue;
        return eid_error("%s: unknown key \"%s\" (not part of the Hugging Face %s config this build maps; "
                         "--lenient admits extra string metadata keys only)", where, e->string,
                         kind == 1 ? "Mamba" : kind == 2 ? "Mamba-2" : "fla GLA"), -1;
    }
    return 0;
}

/* the value-checked keys: hidden_act, use_bias, use_conv_bias, rms_norm, ssm_cfg */
static int check_fixed(const cJSON *j, const char *where) {
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "hidden_act");
    if (act && !(cJSON_IsString(act) && !strcmp(act->valuestring, "silu")))
        return eid_error("%s: \"hidden_act\": %s is not supported (eidetic's Mamba layers use \"silu\")", where,
                         cJSON_IsString(act) ? act->valuestring : "a non-string value"), -1;
    if (check_bool(j, "use_bias", 0, where) || check_bool(j, "use_conv_bias", 1, where) ||
        check_bool(j, "rms_norm", 1, where) || check_bool(j, "norm_before_gate", 0, where))
        return -1;
    const cJSON *lim = cJSON_GetObjectItemCaseSensitive(j, "time_step_limit");
    if (lim) /* transformers writes its default (0, inf) as [0.0, Infinity], which is not JSON */
        return eid_error("%s: \"time_step_limit\" is not supported (eidetic does not clamp the step size)", where), -1;
    const cJSON *ssm = cJSON_GetObjectItemCaseSensitive(j, "ssm_cfg");
    if (ssm && !(cJSON_IsObject(ssm) && !ssm->child))
        return eid_error("%s: \"ssm_cfg\" must be empty {} (per-layer SSM overrides are not supported)", where), -1;
    return 0;
}

static int map_sizes(const cJSON *j, const char *where, ModelCfg *c) {
    int L = 0, D = 0;
    LayerCfg l;
    memset(&l, 0, sizeof l);
    snprintf(l.mixer, sizeof l.mixer, "mamba");
    l.expand = 2, l.d_state = 16, l.d_conv = 4; /* MambaConfig's defaults */
    if (get_int(j, "vocab_size", where, &c->vocab_size, 1) || get_int(j, "hidden_size", where, &D, 1) ||
        get_int(j, "num_hidden_layers", where, &L, 1) || get_int(j, "state_size", where, &l.d_state, 0) ||
        get_int(j, "expand", where, &l.expand, 0) || get_int(j, "conv_kernel", where, &l.d_conv, 0))
        return -1;
    if (check_alias(j, "d_model", D, where, "hidden_size") || check_alias(j, "n_layer", L, where, "num_hidden_layers") ||
        check_alias(j, "intermediate_size", l.expand * D, where, "expand*hidden_size") ||
        check_alias(j, "d_inner", l.expand * D, where, "expand*hidden_size"))
        return -1;
    if (L > EID_MAX_LAYERS) return eid_error("%s: \"num_hidden_layers\" %d exceeds %d", where, L, EID_MAX_LAYERS), -1;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "time_step_rank");
    l.dt_rank = (D + 15) / 16; /* "auto": ceil(hidden_size / 16) */
    if (r && !(cJSON_IsString(r) && !strcmp(r->valuestring, "auto")) && get_int(j, "time_step_rank", where, &l.dt_rank, 0))
        return -1;
    c->norm_eps = 1e-5;
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(j, "layer_norm_epsilon");
    char what[700];
    snprintf(what, sizeof what, "%s: \"layer_norm_epsilon\"", where);
    if (eps && strict_json_double(eps, 1e-30, 1, &c->norm_eps, what)) return -1;
    c->d_model = D, c->n_layer = L;
    for (int i = 0; i < L; i++) c->layer[i] = l;
    return 0;
}

/* Mamba2Config: I = expand·hidden_size = num_heads·head_dim; the gated RMSNorm inside the mixer uses a
 * fixed eps 1e-5 in eidetic, so layer_norm_epsilon must be 1e-5 */
static int map_sizes2(const cJSON *j, const char *where, ModelCfg *c) {
    int L = 0, D = 0, H = 0;
    LayerCfg l;
    memset(&l, 0, sizeof l);
    snprintf(l.mixer, sizeof l.mixer, "mamba2");
    l.expand = 2, l.d_state = 128, l.d_conv = 4, l.ngroups = 8, l.headdim = 64, H = 128; /* Mamba2Config's defaults */
    if (get_int(j, "vocab_size", where, &c->vocab_size, 1) || get_int(j, "hidden_size", where, &D, 1) ||
        get_int(j, "num_hidden_layers", where, &L, 1) || get_int(j, "state_size", where, &l.d_state, 0) ||
        get_int(j, "expand", where, &l.expand, 0) || get_int(j, "conv_kernel", where, &l.d_conv, 0) ||
        get_int(j, "num_heads", where, &H, 0) || get_int(j, "head_dim", where, &l.headdim, 0) ||
        get_int(j, "n_groups", where, &l.ngroups, 0))
        return -1;
    if ((long)H * l.headdim != (long)l.expand * D)
        return eid_error("%s: \"num_heads\"·\"head_dim\" = %ld must equal expand·hidden_size = %ld", where,
                         (long)H * l.headdim, (long)l.expand * D), -1;
    if (L > EID_MAX_LAYERS) return eid_error("%s: \"num_hidden_layers\" %d exceeds %d", where, L, EID_MAX_LAYERS), -1;
    c->norm_eps = 1e-6; /* Mamba2Config's default */
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(j, "layer_norm_epsilon");
    char what[700];
    snprintf(what, sizeof what, "%s: \"layer_norm_epsilon\"", where);
    if (eps && strict_json_double(eps, 1e-30, 1, &c->norm_eps, what)) return -1;
    if (c->norm_eps != 1e-5)
        return eid_error("%s: \"layer_norm_epsilon\": %g is not supported for Mamba-2 (eidetic's gated norm inside "
                         "the mixer uses 1e-5)", where, c->norm_eps), -1;
    c->d_model = D, c->n_layer = L;
    for (int i = 0; i < L; i++) c->layer[i] = l;
    return 0;
}

/* ---- fla-hub GLA (GLAForCausalLM): blocks of attn_norm → GatedLinearAttention, mlp_norm → GatedMLP
 * (SwiGLU), which are eidetic's GLA mixer and MLP sublayers ---- */

/* a key that is absent or null (fla's "not used") */
static const cJSON *non_null(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static int get_dbl(const cJSON *j, const char *key, const char *where, double lo, double hi, double *dst) {
    const cJSON *v = non_null(j, key);
    if (!v) return 0;
    char what[700];
    snprintf(what, sizeof what, "%s: \"%s\"", where, key);
    return strict_json_double(v, lo, hi, dst, what);
}

static int get_bool(const cJSON *j, const char *key, const char *where, int *dst) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return eid_error("%s: \"%s\" must be true or false", where, key), -1;
    *dst = cJSON_IsTrue(v);
    return 0;
}

/* the GLAConfig keys that select a computation eidetic's GLA layer does not do: refused by name */
static int check_fixed_gla(const cJSON *j, const char *where) {
    const cJSON *v;
    if ((v = non_null(j, "feature_map")))
        return eid_error("%s: \"feature_map\": %s is not supported (eidetic's GLA layer applies no feature map to "
                         "q and k; only null)", where, cJSON_IsString(v) ? v->valuestring : "a non-string value"), -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "attn_mode")) &&
        !(cJSON_IsString(v) && (!strcmp(v->valuestring, "chunk") || !strcmp(v->valuestring, "fused_chunk") ||
                                !strcmp(v->valuestring, "fused_recurrent"))))
        return eid_error("%s: \"attn_mode\": %s is not supported (expected \"chunk\", \"fused_chunk\" or "
                         "\"fused_recurrent\": the same computation)", where,
                         cJSON_IsString(v) ? v->valuestring : "a non-string value"), -1;
    if ((v = non_null(j, "clamp_min")))
        return eid_error("%s: \"clamp_min\" is not supported (eidetic's GLA layer does not clamp the log forget "
                         "gates; only null)", where), -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "hidden_act")) && !(cJSON_IsString(v) && !strcmp(v->valuestring, "swish")))
        return eid_error("%s: \"hidden_act\": %s is not supported (eidetic's GLA output gate and MLP use \"swish\")",
                         where, cJSON_IsString(v) ? v->valuestring : "a non-string value"), -1;
    if ((v = non_null(j, "attn")))
        return eid_error("%s: \"attn\" is not supported (hybrid GLA + attention layers are not mapped; only null)",
                         where), -1;
    if ((v = non_null(j, "attnres_block_size")))
        return eid_error("%s: \"attnres_block_size\" is not supported (attention residuals are not mapped; only "
                         "null)", where), -1;
    if (check_bool_of(j, "use_output_gate", 1, where, "GLA layer") ||
        check_bool_of(j, "elementwise_affine", 1, where, "GLA layer") ||
        check_bool_of(j, "use_gk", 1, where, "GLA layer") || check_bool_of(j, "use_gv", 0, where, "GLA layer"))
        return -1;
    int conv = 0, shared = 0, fuse = 1;
    if (get_bool(j, "use_short_conv", where, &conv) || get_bool(j, "share_conv_kernel", where, &shared) ||
        get_bool(j, "fuse_norm", where, &fuse))
        return -1;
    if (conv && shared)
        return eid_error("%s: \"share_conv_kernel\": true with \"use_short_conv\": true is not supported (older fla "
                         "versions then ran one shared convolution; eidetic's GLA layer has separate q, k, v "
                         "convolutions)", where), -1;
    return 0;
}

/* fla's GatedMLP: intermediate_size, else 2/3 · hidden_ratio (default 4) · hidden_size rounded up to 256 */
static int gla_d_ff(const cJSON *j, const char *where, int D, int *d_ff) {
    if (non_null(j, "intermediate_size")) return get_int(j, "intermediate_size", where, d_ff, 1);
    double ratio = 4;
    if (get_dbl(j, "hidden_ratio", where, 1e-3, 1e3, &ratio)) return -1;
    long f = (long)((double)D * ratio * 2 / 3); /* Python's int(hidden_size * hidden_ratio * 2 / 3) */
    f = 256 * ((f + 255) / 256);
    if (f < 1 || f > (1 << 30)) return eid_error("%s: the MLP size from \"hidden_ratio\" is out of range", where), -1;
    *d_ff = (int)f;
    return 0;
}

static int map_sizes_gla(const cJSON *j, const char *where, ModelCfg *c, HfNaming *nm) {
    int L = 0, D = 0, kv = 0, conv = 0;
    LayerCfg l;
    memset(&l, 0, sizeof l);
    snprintf(l.mixer, sizeof l.mixer, "gla");
    l.num_heads = 4, l.expand_k = 0.5, l.expand_v = 1, l.d_conv = 4; /* GLAConfig's defaults */
    l.gate_low_rank_dim = 16, l.gate_logit_normalizer = 16;         /* fixed in fla's GLA block */
    c->norm_eps = 1e-6;
    nm->fused_g_norm = 1;
    if (get_int(j, "vocab_size", where, &c->vocab_size, 1) || get_int(j, "hidden_size", where, &D, 1) ||
        get_int(j, "num_hidden_layers", where, &L, 1) || get_int(j, "num_heads", where, &l.num_heads, 0) ||
        get_int(j, "conv_size", where, &l.d_conv, 0) || get_dbl(j, "expand_k", where, 1e-9, 1e6, &l.expand_k) ||
        get_dbl(j, "expand_v", where, 1e-9, 1e6, &l.expand_v) || get_dbl(j, "norm_eps", where, 1e-30, 1, &c->norm_eps) ||
        get_bool(j, "use_short_conv", where, &conv) || get_bool(j, "fuse_norm", where, &nm->fused_g_norm) ||
        gla_d_ff(j, where, D, &l.d_ff))
        return -1;
    if (non_null(j, "num_kv_heads") && get_int(j, "num_kv_heads", where, &kv, 1)) return -1;
    if (kv && kv != l.num_heads)
        return eid_error("%s: \"num_kv_heads\": %d is not supported (grouped keys and values; eidetic's GLA layer "
                         "needs num_kv_heads null or equal to num_heads, %d)", where, kv, l.num_heads), -1;
    /* fla truncates int(hidden_size·expand); eidetic needs exact integers */
    if (l.expand_k * D != floor(l.expand_k * D) || l.expand_v * D != floor(l.expand_v * D))
        return eid_error("%s: \"expand_k\"·hidden_size = %g and \"expand_v\"·hidden_size = %g must be integers", where,
                         l.expand_k * D, l.expand_v * D), -1;
    if (L > EID_MAX_LAYERS) return eid_error("%s: \"num_hidden_layers\" %d exceeds %d", where, L, EID_MAX_LAYERS), -1;
    if (!conv) l.d_conv = 0;
    l.g_norm_eps = c->norm_eps; /* fla's per-head output norm uses the model's norm_eps */
    c->d_model = D, c->n_layer = L;
    for (int i = 0; i < L; i++) c->layer[i] = l;
    return 0;
}

void hf_tensor_name(const HfNaming *nm, const char *name, char *out, size_t cap) {
    int i, n = 0;
    if (!nm || nm->kind != HF_GLA) { snprintf(out, cap, "%s", name); return; }
    if (!strcmp(name, "backbone.embeddings.weight")) snprintf(out, cap, "model.embeddings.weight");
    else if (!strcmp(name, "backbone.norm_f.weight")) snprintf(out, cap, "model.norm.weight");
    else if (sscanf(name, "backbone.layers.%d.%n", &i, &n) == 1 && n > 0) {
        const char *rest = name + n;
        if (!strcmp(rest, "norm.weight")) snprintf(out, cap, "model.layers.%d.attn_norm.weight", i);
        else if (!strcmp(rest, "mixer.g_norm.weight"))
            snprintf(out, cap, "model.layers.%d.attn.%s.weight", i, nm->fused_g_norm ? "g_norm_swish_gate" : "g_norm");
        else if (!strncmp(rest, "mixer.", 6)) snprintf(out, cap, "model.layers.%d.attn.%s", i, rest + 6);
        else snprintf(out, cap, "model.layers.%d.%s", i, rest); /* mlp_norm.weight, mlp.{gate,up,down}_proj.weight */
    } else snprintf(out, cap, "%s", name); /* lm_head.weight */
}

int hf_config_from_json(const char *text, const char *where, ModelCfg *c, int *tie, int lenient) {
    HfNaming nm;
    return hf_config_from_json_ex(text, where, c, tie, lenient, &nm);
}

int hf_config_from_json_ex(const char *text, const char *where, ModelCfg *c, int *tie, int lenient, HfNaming *nm) {
    memset(c, 0, sizeof *c);
    memset(nm, 0, sizeof *nm);
    cJSON *j = cJSON_Parse(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return eid_error("%s: not valid JSON (expected a Hugging Face config object)", where), -1;
    }
    int rc = -1, kind = check_model_type(j, where);
    if (kind < 0 || check_keys(j, where, lenient, kind)) goto done;
    nm->kind = kind;
    if (kind == HF_GLA ? check_fixed_gla(j, where) || map_sizes_gla(j, where, c, nm)
                       : check_fixed(j, where) || (kind == 1 ? map_sizes(j, where, c) : map_sizes2(j, where, c)))
        goto done;
    *tie = kind == 1; /* MambaConfig's default true, Mamba2Config's and GLAConfig's false */
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "tie_word_embeddings");
    if (t && !cJSON_IsBool(t)) { eid_error("%s: \"tie_word_embeddings\" must be true or false", where); goto done; }
    if (t) *tie = cJSON_IsTrue(t);
    c->tie_embeddings = *tie;
    if (modelcfg_resolve(c) != 0) {
        char msg[900];
        snprintf(msg, sizeof msg, "%s", eid_last_error());
        eid_error("%s: %s", where, msg);
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(j);
    return rc;
}
