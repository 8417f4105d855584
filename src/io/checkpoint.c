/* checkpoint.c — config.json and model.safetensors. */
#include "io/checkpoint.h"
#include "io/files.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "io/safetensors.h"

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
    X(headdim) X(ngroups) X(window) X(gate_low_rank_dim) X(max_len) X(chunk) X(no_rope)
#define DBL_FIELDS(X) X(expand_k) X(expand_v) X(rope_theta) X(gate_logit_normalizer)

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
        cJSON_AddItemToArray(arr, o);
    }
    *out = cJSON_Print(j);
    cJSON_Delete(j);
    return 0;
}

static int get_int(const cJSON *o, const char *key, const char *where, int *dst, int required) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return required ? (eid_error("%s: missing required key \"%s\"", where, key), -1) : 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble)
        return eid_error("%s: \"%s\" must be an integer", where, key), -1;
    *dst = v->valueint;
    return 0;
}

int config_from_json(const char *text, const char *where, ModelCfg *c) {
    memset(c, 0, sizeof *c);
    cJSON *j = cJSON_Parse(text);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return eid_error("%s: not valid JSON (expected an object with vocab_size, d_model, layers)", where), -1;
    }
    int rc = -1, d_ff = 0;
    c->tie_embeddings = 1;
    if (get_int(j, "vocab_size", where, &c->vocab_size, 1) || get_int(j, "d_model", where, &c->d_model, 1) ||
        get_int(j, "d_ff", where, &d_ff, 0) || get_int(j, "max_position_embeddings", where, &c->max_pos, 0))
        goto done;
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(j, "tie_embeddings");
    if (tie) {
        if (!cJSON_IsBool(tie)) { eid_error("%s: \"tie_embeddings\" must be true or false", where); goto done; }
        c->tie_embeddings = cJSON_IsTrue(tie);
    }
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(j, "norm_eps");
    c->norm_eps = cJSON_IsNumber(eps) ? eps->valuedouble : 1e-5;
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
        const cJSON *mx = cJSON_GetObjectItemCaseSensitive(o, "mixer");
        if (!cJSON_IsString(mx) || strlen(mx->valuestring) >= EID_NAME_LEN) {
            eid_error("%s: \"mixer\" must be a mixer name string", lw);
            goto done;
        }
        snprintf(l->mixer, sizeof l->mixer, "%s", mx->valuestring);
        l->d_ff = d_ff;
#define GET_INT(f) if (get_int(o, #f, lw, &l->f, 0)) goto done;
#define GET_DBL(f) { const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, #f); \
        if (v && !cJSON_IsNumber(v)) { eid_error("%s: \"%s\" must be a number", lw, #f); goto done; } \
        if (v) l->f = v->valuedouble; }
        INT_FIELDS(GET_INT)
        DBL_FIELDS(GET_DBL)
        n++;
    }
    c->n_layer = n;
    int nl = n;
    if (get_int(j, "n_layer", where, &nl, 0)) goto done;
    if (nl != n) { eid_error("%s: n_layer is %d but \"layers\" lists %d", where, nl, n); goto done; }
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

int config_load(const char *path, ModelCfg *c) {
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
    int rc = config_from_json(buf, path, c);
    free(buf);
    return rc;
}

int ckpt_save_model(const Model *m, const char *dir, long step) {
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
    for (int i = 0; i < m->nparam; i++)
        st_add_real(&w, m->param[i].name, m->param[i].ndim, m->param[i].shape, m->w + m->param[i].offset);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    return st_write(&w, path);
}

Model *ckpt_load_model(const char *dir, long *step) {
    char path[1024];
    ModelCfg cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return eid_error("%s: no such checkpoint directory (expected config.json + model.safetensors)", dir), NULL;
    if (config_load(path, &cfg) != 0) return NULL;
    Model *m = model_new(&cfg);
    if (!m) return NULL;
    StFile f;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (st_open(&f, path) != 0) return model_free(m), NULL;
    for (int i = 0; i < m->nparam; i++)
        if (st_read_real(&f, m->param[i].name, m->param[i].ndim, m->param[i].shape, m->w + m->param[i].offset) != 0)
            return st_close(&f), model_free(m), NULL;
    for (int i = 0; i < m->nparam; i++) {
        const real *w = m->w + m->param[i].offset;
        int bad = 0;
        for (size_t k = 0; k < m->param[i].numel; k++) bad |= !isfinite((double)w[k]);
        if (bad) {
            eid_error("%s: tensor '%s' contains non-finite weights (NaN/Inf)", path, m->param[i].name);
            st_close(&f), model_free(m);
            return NULL;
        }
    }
    if (step) {
        const char *s = st_meta(&f, "eidetic_step");
        *step = s ? atol(s) : 0;
    }
    st_close(&f);
    return m;
}
