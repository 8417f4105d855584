/* checkpoint.c — config.json and model.safetensors. */
#include "io/checkpoint.h"
#include "io/files.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *basename_of(const char *p) {
    const char *b = strrchr(p, '/');
    return b ? b + 1 : p;
}
#include "core/gemm_onednn.h"
#include "io/safetensors.h"
#include "io/strict.h"
#include "io/hf_config.h"
#include <limits.h>

int ensure_dir(const char *dir) {
    struct stat st;
    if (stat(dir, &st) == 0) return S_ISDIR(st.st_mode) ? 0 : (eid_error("%s: exists and is not a directory", dir), -1);
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return eid_error("%s: cannot create directory (%s)", dir, strerror(errno)), -1;
    return 0;
}

int ckpt_dir_exists(const char *dir) {
    char p[1024];
    snprintf(p, sizeof p, "%s/config.json", dir);
    struct stat st;
    return stat(p, &st) == 0;
}

/* Per-layer fields: name, pointer offset into LayerCfg. Only non-zero fields are written. */
#define INT_FIELDS(X) X(d_ff) X(expand) X(d_state) X(d_conv) X(dt_rank) X(num_heads) X(num_kv_heads) X(head_dim) \
    X(headdim) X(ngroups) X(window) X(gate_low_rank_dim) X(max_len) X(chunk) X(no_rope) X(bidir) \
    X(ssm_heads) X(qk_norm) X(untied) X(mem_size) X(mem_topk)
#define STR_FIELDS(X) X(ssm) X(score) /* names (B'MOJO's SSM mixer and innovation score); "" = default */
#define DBL_FIELDS(X) X(expand_k) X(expand_v) X(rope_theta) X(gate_logit_normalizer) X(g_norm_eps)

/* The "statex" record (docs/statex.md §7): how a StateX surgery made this model. */
static void statex_to_json(const StatexRecord *r, cJSON *j) {
    cJSON *o = cJSON_AddObjectToObject(j, "statex");
    cJSON_AddStringToObject(o, "source", r->source);
    cJSON_AddStringToObject(o, "method", r->method);
    if (r->merge_heads) cJSON_AddNumberToObject(o, "merge_heads", r->merge_heads);
    if (r->state_mult) cJSON_AddNumberToObject(o, "state_mult", r->state_mult);
    cJSON_AddBoolToObject(o, "keep_resets", r->keep_resets);
    if (r->k_scale[0]) cJSON_AddStringToObject(o, "k_scale", r->k_scale);
    cJSON_AddNumberToObject(o, "seed", (double)r->seed);
    cJSON *arr = cJSON_AddArrayToObject(o, "layers");
    for (int i = 0; i < r->n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "layer", r->layer[i]);
        cJSON_AddNumberToObject(e, "state_before", (double)r->before_state[i]);
        cJSON_AddNumberToObject(e, "params_before", (double)r->before_params[i]);
        cJSON_AddItemToArray(arr, e);
    }
}

int config_to_json(const ModelCfg *c, char **out) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "eidetic");
    cJSON_AddNumberToObject(j, "format_version", 1);
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(j, "d_model", c->d_model);
    cJSON_AddNumberToObject(j, "n_layer", c->n_layer);
    cJSON_AddBoolToObject(j, "tie_embeddings", c->tie_embeddings);
    cJSON_AddNumberToObject(j, "norm_eps", c->norm_eps);
    if (c->max_pos > 0) cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_pos);
    cJSON_AddNumberToObject(j, "d_ff", c->n_layer ? c->layer[0].d_ff : 0);
    cJSON *arr = cJSON_AddArrayToObject(j, "layers");
    for (int i = 0; i < c->n_layer; i++) {
        const LayerCfg *l = &c->layer[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "mixer", l->mixer);
#define PUT_INT(f) if (l->f || !strcmp(#f, "d_ff")) cJSON_AddNumberToObject(o, #f, l->f);
#define PUT_DBL(f) if (l->f != 0) cJSON_AddNumberToObject(o, #f, l->f);
        INT_FIELDS(PUT_INT)
        DBL_FIELDS(PUT_DBL)
#define PUT_STR(f) if (l->f[0]) cJSON_AddStringToObject(o, #f, l->f);
        STR_FIELDS(PUT_STR)
        cJSON_AddItemToArray(arr, o);
    }
    if (c->statex.present) statex_to_json(&c->statex, j);
    *out = cJSON_Print(j);
    cJSON_Delete(j);
    return 0;
}

/* config.json is read strictly (docs/reliability.md "Strict inputs"): every number is checked
 * (integral, in range) before a cast, and a key this reader does not know is an error, so a file
 * meant for another program or version is never half-understood. */
#define CFG_INT_MAX (1 << 30)
static int get_int(const cJSON *o, const char *key, const char *where, int *dst, int required) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return required ? (eid_error("%s: missing required key \"%s\"", where, key), -1) : 0;
    char what[700];
    snprintf(what, sizeof what, "%s: \"%s\"", where, key);
    return strict_json_int(v, 0, CFG_INT_MAX, dst, what);
}

static int get_dbl(const cJSON *o, const char *key, const char *where, double *dst, double lo, double hi) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return 0;
    char what[700];
    snprintf(what, sizeof what, "%s: \"%s\"", where, key);
    return strict_json_double(v, lo, hi, dst, what);
}

/* what --lenient admits: an unknown top-level key whose value is metadata (a string, null, or a list
 * of strings, e.g. "model_type", "architectures", "torch_dtype" written by other exporters) */
static int is_metadata(const cJSON *v) {
    if (cJSON_IsString(v) || cJSON_IsNull(v)) return 1;
    if (!cJSON_IsArray(v)) return 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) if (!cJSON_IsString(e)) return 0;
    return 1;
}

static int check_keys(const cJSON *o, const char *const *known, int nk, const char *where, int lenient) {
    const cJSON *e;
    cJSON_ArrayForEach(e, o) {
        int k = 0;
        while (k < nk && strcmp(known[k], e->string)) k++;
        if (k < nk) continue;
        if (lenient && is_metadata(e)) continue;
        return eid_error("%s: unknown key \"%s\"%s", where, e->string,
                         lenient ? " (--lenient admits only string metadata keys)"
                                 : " (not an eidetic config key; --lenient admits extra string metadata keys)"), -1;
    }
    return 0;
}

static const char *const top_keys[] = {"format", "format_version", "vocab_size", "d_model", "n_layer",
                                       "tie_embeddings", "norm_eps", "max_position_embeddings", "d_ff", "layers",
                                       "statex"};
#define NAME_OF(f) #f,
static const char *const layer_keys[] = {"mixer", INT_FIELDS(NAME_OF) DBL_FIELDS(NAME_OF) STR_FIELDS(NAME_OF)};
#undef NAME_OF


/* a string value that must be one of `allowed` (NULL-terminated) and shorter than n */
static int get_word(const cJSON *o, const char *key, const char *where, const char *const *allowed, char *dst, size_t n,
                    int required) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return required ? (eid_error("%s: missing required key \"%s\"", where, key), -1) : 0;
    if (cJSON_IsString(v))
        for (int i = 0; allowed[i]; i++)
            if (!strcmp(v->valuestring, allowed[i])) return snprintf(dst, n, "%s", allowed[i]), 0;
    char list[128] = "";
    for (int i = 0; allowed[i]; i++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", allowed[i]);
    return eid_error("%s: \"%s\" must be one of %s", where, key, list), -1;
}

static const char *const statex_keys[] = {"source", "method", "merge_heads", "state_mult", "keep_resets", "k_scale",
                                          "seed", "layers"};
static const char *const statex_layer_keys[] = {"layer", "state_before", "params_before"};

/* Strict like the rest of config.json; layer indices are checked against n_layer by the caller. */
static int statex_from_json(const cJSON *o, const char *where0, StatexRecord *r) {
    char where[700];
    snprintf(where, sizeof where, "%s: statex", where0);
    memset(r, 0, sizeof *r);
    if (!cJSON_IsObject(o)) return eid_error("%s: must be an object {\"source\", \"method\", \"layers\", ...}", where), -1;
    if (check_keys(o, statex_keys, (int)(sizeof statex_keys / sizeof *statex_keys), where, 0)) return -1;
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(o, "source");
    if (!cJSON_IsString(src) || strlen(src->valuestring) >= sizeof r->source)
        return eid_error("%s: \"source\" must be a path string (under %zu bytes)", where, sizeof r->source), -1;
    snprintf(r->source, sizeof r->source, "%s", src->valuestring);
    static const char *const methods[] = {"reinit", "inherit", "zero", NULL}, *const scales[] = {"match", "none", NULL};
    if (get_word(o, "method", where, methods, r->method, sizeof r->method, 1) ||
        get_word(o, "k_scale", where, scales, r->k_scale, sizeof r->k_scale, 0))
        return -1;
    const cJSON *mh = cJSON_GetObjectItemCaseSensitive(o, "merge_heads"), *sm = cJSON_GetObjectItemCaseSensitive(o, "state_mult");
    char what[800];
    snprintf(what, sizeof what, "%s: \"merge_heads\"", where);
    if (mh && strict_json_int(mh, 1, 1 << 20, &r->merge_heads, what)) return -1;
    snprintf(what, sizeof what, "%s: \"state_mult\"", where);
    if (sm && strict_json_int(sm, 1, 512, &r->state_mult, what)) return -1;
    const cJSON *kr = cJSON_GetObjectItemCaseSensitive(o, "keep_resets");
    if (kr && !cJSON_IsBool(kr)) return eid_error("%s: \"keep_resets\" must be true or false", where), -1;
    r->keep_resets = cJSON_IsTrue(kr);
    long seed = 0;
    snprintf(what, sizeof what, "%s: \"seed\"", where);
    if (strict_json_long(cJSON_GetObjectItemCaseSensitive(o, "seed"), 0, 1L << 53, &seed, what)) return -1;
    r->seed = (uint64_t)seed;
    const cJSON *ls = cJSON_GetObjectItemCaseSensitive(o, "layers"), *e;
    if (!cJSON_IsArray(ls) || cJSON_GetArraySize(ls) < 1 || cJSON_GetArraySize(ls) > EID_MAX_LAYERS)
        return eid_error("%s: \"layers\" must be a list of 1 to %d {\"layer\", \"state_before\", \"params_before\"} "
                         "objects", where, EID_MAX_LAYERS), -1;
    cJSON_ArrayForEach(e, ls) {
        char lw[760];
        snprintf(lw, sizeof lw, "%s: layers[%d]", where, r->n);
        if (!cJSON_IsObject(e)) return eid_error("%s: must be an object", lw), -1;
        if (check_keys(e, statex_layer_keys, 3, lw, 0)) return -1;
        int li;
        snprintf(what, sizeof what, "%s: \"layer\"", lw);
        if (strict_json_int(cJSON_GetObjectItemCaseSensitive(e, "layer"), 0, EID_MAX_LAYERS - 1, &li, what)) return -1;
        if (r->n > 0 && li <= r->layer[r->n - 1])
            return eid_error("%s: layer indices must be strictly ascending (%d after %d)", lw, li, r->layer[r->n - 1]), -1;
        snprintf(what, sizeof what, "%s: \"state_before\"", lw);
        if (strict_json_long(cJSON_GetObjectItemCaseSensitive(e, "state_before"), 0, 1L << 53, &r->before_state[r->n], what))
            return -1;
        snprintf(what, sizeof what, "%s: \"params_before\"", lw);
        if (strict_json_long(cJSON_GetObjectItemCaseSensitive(e, "params_before"), 0, 1L << 53, &r->before_params[r->n], what))
            return -1;
        r->layer[r->n++] = li;
    }
    r->present = 1;
    return 0;
}

int config_from_json(const char *text, const char *where, ModelCfg *c) { return config_from_json_ex(text, where, c, 0); }

int config_from_json_ex(const char *text, const char *where, ModelCfg *c, int lenient) {
    memset(c, 0, sizeof *c);
    cJSON *j = cJSON_Parse(text);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return eid_error("%s: not valid JSON (expected an object with vocab_size, d_model, layers)", where), -1;
    }
    int rc = -1, d_ff = 0, version = 1;
    c->tie_embeddings = 1;
    if (check_keys(j, top_keys, (int)(sizeof top_keys / sizeof *top_keys), where, lenient)) goto done;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (fmt && !(cJSON_IsString(fmt) && !strcmp(fmt->valuestring, "eidetic"))) {
        eid_error("%s: \"format\" must be \"eidetic\"", where);
        goto done;
    }
    if (get_int(j, "format_version", where, &version, 0)) goto done;
    if (version != 1) { eid_error("%s: \"format_version\" %d is not supported (this build reads 1)", where, version); goto done; }
    if (get_int(j, "vocab_size", where, &c->vocab_size, 1) || get_int(j, "d_model", where, &c->d_model, 1) ||
        get_int(j, "d_ff", where, &d_ff, 0) || get_int(j, "max_position_embeddings", where, &c->max_pos, 0))
        goto done;
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(j, "tie_embeddings");
    if (tie) {
        if (!cJSON_IsBool(tie)) { eid_error("%s: \"tie_embeddings\" must be true or false", where); goto done; }
        c->tie_embeddings = cJSON_IsTrue(tie);
    }
    c->norm_eps = 1e-5;
    if (get_dbl(j, "norm_eps", where, &c->norm_eps, 1e-30, 1)) goto done;
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) < 1) {
        eid_error("%s: \"layers\" must be a non-empty list of {\"mixer\": ...} objects", where);
        goto done;
    }
    if (cJSON_GetArraySize(layers) > EID_MAX_LAYERS) { eid_error("%s: more than %d layers", where, EID_MAX_LAYERS); goto done; }
    int n = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, layers) {
        LayerCfg *l = &c->layer[n];
        char lw[600];
        snprintf(lw, sizeof lw, "%s: layers[%d]", where, n);
        if (!cJSON_IsObject(o)) { eid_error("%s: must be an object {\"mixer\": ...}", lw); goto done; }
        if (check_keys(o, layer_keys, (int)(sizeof layer_keys / sizeof *layer_keys), lw, 0)) goto done;
        const cJSON *mx = cJSON_GetObjectItemCaseSensitive(o, "mixer");
        if (!cJSON_IsString(mx) || strlen(mx->valuestring) >= EID_NAME_LEN) {
            eid_error("%s: \"mixer\" must be a mixer name string", lw);
            goto done;
        }
        snprintf(l->mixer, sizeof l->mixer, "%s", mx->valuestring);
        l->d_ff = d_ff;
#define GET_INT(f) if (get_int(o, #f, lw, &l->f, 0)) goto done;
#define GET_DBL(f) { double v_ = l->f; if (get_dbl(o, #f, lw, &v_, 0, 1e12)) goto done; l->f = v_; }
        INT_FIELDS(GET_INT)
        DBL_FIELDS(GET_DBL)
#define GET_STR(f)                                                                                         \
    {                                                                                                      \
        const cJSON *v_ = cJSON_GetObjectItemCaseSensitive(o, #f);                                         \
        if (v_ && (!cJSON_IsString(v_) || strlen(v_->valuestring) >= sizeof l->f)) {                       \
            eid_error("%s: \"%s\" must be a name string of at most %d characters", lw, #f, (int)sizeof l->f - 1); \
            goto done;                                                                                     \
        }                                                                                                  \
        if (v_) snprintf(l->f, sizeof l->f, "%s", v_->valuestring);                                        \
    }
        STR_FIELDS(GET_STR)
        n++;
    }
    c->n_layer = n;
    int nl = n;
    if (get_int(j, "n_layer", where, &nl, 0)) goto done;
    if (nl != n) { eid_error("%s: n_layer is %d but \"layers\" lists %d", where, nl, n); goto done; }
    const cJSON *sx = cJSON_GetObjectItemCaseSensitive(j, "statex");
    if (sx) {
        if (statex_from_json(sx, where, &c->statex)) goto done;
        if (c->statex.layer[c->statex.n - 1] >= n) {
            eid_error("%s: statex: layer %d out of range (the model has %d layers)", where, c->statex.layer[c->statex.n - 1], n);
            goto done;
        }
    }
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

int config_load(const char *path, ModelCfg *c) { return config_load_ex(path, c, 0); }

int config_load_ex(const char *path, ModelCfg *c, int lenient) {
    FILE *f = fopen(path, "rb");
    if (!f) return eid_error("%s: cannot open (%s)", path, strerror(errno)), -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (16 << 20)) return fclose(f), eid_error("%s: unreadable or too large", path), -1;
    char *buf = eid_xmalloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != (size_t)n || rerr)
        return free(buf), eid_error("%s: short read (%zu of %ld bytes)", path, got, n), -1;
    buf[got] = 0;
    int rc = config_from_json_ex(buf, path, c, lenient);
    free(buf);
    return rc;
}

int ckpt_save_model(const Model *m, const char *dir, long step) { return ckpt_save_model_dtype(m, dir, step, 0); }

int ckpt_save_model_dtype(const Model *m, const char *dir, long step, int bf16) {
    if (ensure_dir(dir) != 0) return -1;
    char path[1024], *js;
    config_to_json(&m->cfg, &js);
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = eid_write_atomic(path, js, strlen(js));
    free(js);
    if (rc) return -1;
    StWriter w;
    st_writer_init(&w);
    char sbuf[32];
    snprintf(sbuf, sizeof sbuf, "%ld", step);
    st_meta_set(&w, "format", "pt"); /* what Hugging Face loaders look for */
    st_meta_set(&w, "eidetic_step", sbuf);
    uint16_t *half = bf16 ? eid_xmalloc(sizeof(uint16_t) * m->n_reals) : NULL; /* alive until st_write */
    for (int i = 0; i < m->nparam; i++) {
        const ParamEntry *p = &m->param[i];
        if (!bf16) {
            st_add_real(&w, p->name, p->ndim, p->shape, m->w + p->offset);
            continue;
        }
        int64_t shape[EID_MAX_DIMS];
        for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
        eid_bf16_from_real(half + p->offset, m->w + p->offset, p->numel);
        st_add(&w, p->name, "BF16", p->ndim, shape, half + p->offset, p->numel * sizeof(uint16_t));
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rc = st_write(&w, path);
    free(half);
    return rc;
}

Model *ckpt_load_model(const char *dir, long *step) { return ckpt_load_model_ex(dir, step, 0); }

/* ---- the tensor files of a checkpoint: model.safetensors, or the shards a Hugging Face
 * model.safetensors.index.json lists ({"weight_map": {tensor: file}}) ---- */
#define MAX_SHARDS 64
typedef struct {
    int n;
    StFile f[MAX_SHARDS];
    cJSON *index;           /* parsed index.json (NULL: one file) */
    const cJSON *weight_map;
    char index_path[1024];
    int hf;                 /* Hugging Face names: backbone.embedding.weight is the embedding too */
    HfNaming nm;            /* how the files name eidetic's parameters (fla's GLA: model.layers.i.attn.*) */
} StSet;

static void set_close(StSet *s) {
    for (int i = 0; i < s->n; i++) st_close(&s->f[i]);
    cJSON_Delete(s->index);
    s->n = 0, s->index = NULL;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return eid_error("%s: cannot open (%s)", path, strerror(errno)), NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (16 << 20)) return fclose(f), eid_error("%s: unreadable or too large", path), NULL;
    char *buf = eid_xmalloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != (size_t)n || rerr) return free(buf), eid_error("%s: short read (%zu of %ld bytes)", path, got, n), NULL;
    buf[got] = 0;
    return buf;
}

/* index.json: every weight_map value a plain file name in this directory; each file opened once */
static int set_open_index(StSet *s, const char *dir) {
    char *text = read_text(s->index_path);
    if (!text) return -1;
    s->index = cJSON_Parse(text);
    free(text);
    s->weight_map = cJSON_GetObjectItemCaseSensitive(s->index, "weight_map");
    if (!cJSON_IsObject(s->weight_map) || !s->weight_map->child)
        return eid_error("%s: expected {\"weight_map\": {tensor: file, ...}}", s->index_path), -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, s->index) if (strcmp(e->string, "weight_map") && strcmp(e->string, "metadata"))
        return eid_error("%s: unknown key \"%s\" (expected weight_map and metadata)", s->index_path, e->string), -1;
    cJSON_ArrayForEach(e, s->weight_map) {
        if (!cJSON_IsString(e) || !*e->valuestring || strchr(e->valuestring, '/') || !strcmp(e->valuestring, ".."))
            return eid_error("%s: weight_map[\"%s\"] must be a file name in the checkpoint directory", s->index_path,
                             e->string), -1;
        int k = 0;
        while (k < s->n && strcmp(basename_of(s->f[k].path), e->valuestring)) k++;
        if (k < s->n) continue;
        if (s->n == MAX_SHARDS) return eid_error("%s: more than %d shard files", s->index_path, MAX_SHARDS), -1;
        char path[1500];
        snprintf(path, sizeof path, "%s/%s", dir, e->valuestring);
        if (st_open(&s->f[s->n], path) != 0) return -1;
        s->n++;
    }
    return 0;
}

static int set_open(StSet *s, const char *dir, const HfNaming *nm) {
    memset(s, 0, sizeof *s);
    s->hf = nm && (nm->kind == HF_MAMBA || nm->kind == HF_MAMBA2);
    if (nm) s->nm = *nm;
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(s->index_path, sizeof s->index_path, "%s/model.safetensors.index.json", dir);
    if (stat(path, &st) != 0 && stat(s->index_path, &st) == 0) return set_open_index(s, dir);
    if (st_open(&s->f[0], path) != 0) return -1;
    s->n = 1;
    return 0;
}

/* the file holding tensor `name` (NULL: absent, no error set); a sharded checkpoint's tensor must be
 * where weight_map says */
static const StFile *set_find_exact(const StSet *s, const char *name) {
    StTensor t;
    if (!s->index) return st_find(&s->f[0], name, &t) == 0 ? &s->f[0] : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(s->weight_map, name);
    if (!e) return NULL;
    for (int k = 0; k < s->n; k++)
        if (!strcmp(basename_of(s->f[k].path), e->valuestring)) return st_find(&s->f[k], name, &t) == 0 ? &s->f[k] : NULL;
    return NULL;
}

/* Hugging Face names the embedding backbone.embeddings.weight (transformers) or backbone.embedding.weight
 * (mamba_ssm); one of the two, never both */
static const char *const EMB = "backbone.embeddings.weight", *const EMB_ALT = "backbone.embedding.weight";

static int set_read(const StSet *s, const char *param, int ndim, const int *shape, real *dst) {
    char name[160];
    hf_tensor_name(&s->nm, param, name, sizeof name);
    const StFile *f = set_find_exact(s, name);
    const char *stored = name;
    if (s->hf && !strcmp(name, EMB)) {
        const StFile *g = set_find_exact(s, EMB_ALT);
        if (f && g) return eid_error("%s: holds both '%s' and '%s'", g->path, EMB, EMB_ALT), -1;
        if (g) f = g, stored = EMB_ALT;
    }
    if (!f) {
        if (s->index && cJSON_GetObjectItemCaseSensitive(s->weight_map, name))
            return eid_error("%s: tensor '%s' is listed in weight_map but missing from its file", s->index_path, name), -1;
        return eid_error("%s: tensor '%s' is missing (checkpoint does not match config.json?)",
                         s->index ? s->index_path : s->f[0].path, name), -1;
    }
    return st_read_real(f, stored, ndim, shape, dst);
}

/* a stored tensor name that is one of the model's parameters (under the checkpoint's naming) */
static int is_param(const StSet *s, const Model *m, const char *name) {
    char stored[160];
    for (int k = 0; k < m->nparam; k++) {
        hf_tensor_name(&s->nm, m->param[k].name, stored, sizeof stored);
        if (!strcmp(stored, name)) return 1;
    }
    return 0;
}

/* Every stored tensor must be a model parameter (or an alias / a tied head checked by the caller), and
 * in a sharded checkpoint listed in weight_map under its own file. */
static int set_check_unexplained(const StSet *s, const Model *m, int hf_tied_head) {
    for (int k = 0; k < s->n; k++)
        for (int t = 0; t < st_tensor_count(&s->f[k]); t++) {
            const char *name = st_tensor_name(&s->f[k], t);
            if (s->index) {
                const cJSON *e = cJSON_GetObjectItemCaseSensitive(s->weight_map, name);
                if (!e || strcmp(e->valuestring, basename_of(s->f[k].path)))
                    return eid_error("%s: tensor '%s' is not listed under this file in %s", s->f[k].path, name,
                                     s->index_path), -1;
            }
            if (is_param(s, m, name) || (s->hf && !strcmp(name, EMB_ALT)) || (hf_tied_head && !strcmp(name, "lm_head.weight")))
                continue;
            return eid_error("%s: tensor '%s' is not part of the model config.json describes (%d tensors expected)",
                             s->f[k].path, name, m->nparam), -1;
        }
    return 0;
}

/* tie_word_embeddings true and lm_head.weight stored anyway: it must equal the embedding exactly */
static int check_tied_head(const StSet *s, const Model *m) {
    if (!set_find_exact(s, "lm_head.weight")) return 0;
    const ModelCfg *c = &m->cfg;
    int shape[2] = {c->vocab_size, c->d_model};
    size_t n = (size_t)c->vocab_size * c->d_model;
    real *head = eid_xmalloc(sizeof(real) * n);
    int rc = set_read(s, "lm_head.weight", 2, shape, head);
    if (rc == 0 && memcmp(head, m->embed, sizeof(real) * n) != 0)
{
        eid_error("%s: \"tie_word_embeddings\" is true but tensor 'lm_head.weight' differs from the embedding",
                  s->index ? s->index_path : s->f[0].path);
        rc = -1;
    }
    free(head);
    return rc;
}

/* Strict (docs/reliability.md "Strict inputs"): config.json as above, or a Hugging Face config
 * (io/hf_config.h); the tensor files must hold exactly the tensors that config implies (none missing,
 * none unexplained), each with the expected shape, dtype F32, F64, BF16 or F16 and finite values.
 * --lenient relaxes only config.json metadata keys. */
Model *ckpt_load_model_ex(const char *dir, long *step, int lenient) {
    char path[1024];
    ModelCfg cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return eid_error("%s: no such checkpoint directory (expected config.json + model.safetensors)", dir), NULL;
    char *text = read_text(path);
    if (!text) return NULL;
    int hf = hf_config_detect(text), tie = 1;
    HfNaming nm = {0};
    int rc = hf ? hf_config_from_json_ex(text, path, &cfg, &tie, lenient, &nm) : config_from_json_ex(text, path, &cfg, lenient);
    free(text);
    if (rc != 0) return NULL;
    Model *m = model_new(&cfg);
    if (!m) return NULL;
    StSet s;
    if (set_open(&s, dir, hf ? &nm : NULL) != 0) return set_close(&s), model_free(m), NULL;
    for (int i = 0; i < m->nparam; i++)
        if (set_read(&s, m->param[i].name, m->param[i].ndim, m->param[i].shape, m->w + m->param[i].offset) != 0)
            return set_close(&s), model_free(m), NULL;
    if (set_check_unexplained(&s, m, hf && tie) != 0 || (hf && tie && check_tied_head(&s, m) != 0))
        return set_close(&s), model_free(m), NULL;
    for (int i = 0; i < m->nparam; i++)
        for (size_t k = 0; k < m->param[i].numel; k++)
            if (!isfinite((double)m->w[m->param[i].offset + k])) {
                char stored[160];
                hf_tensor_name(&s.nm, m->param[i].name, stored, sizeof stored);
                eid_error("%s/%s: tensor '%s' holds a non-finite value (NaN/Inf) at element %zu", dir,
                          s.index ? "model-*.safetensors (sharded)" : "model.safetensors", stored, k);
                return set_close(&s), model_free(m), NULL;
            }
    if (step) {
        const char *sv = st_meta(&s.f[0], "eidetic_step");
        char what[1100];
        snprintf(what, sizeof what, "%s: metadata \"eidetic_step\"", s.f[0].path);
        *step = 0;
        if (sv && strict_long(sv, 0, LONG_MAX, step, what) != 0) return set_close(&s), model_free(m), NULL;
    }
    set_close(&s);
    return m;
}
