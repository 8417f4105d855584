/* gemm_plan_file.c — the per-shape library plan as a JSON file (io/gemm_plan_file.h). */
#include "io/gemm_plan_file.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/common.h"
#include "core/gemm_plan.h"
#include "core/runtime.h"
#include "io/files.h"
#include "io/strict.h"

#define PLAN_VERSION 1
#define MAX_FILE_BYTES (16 << 20)

/* Only the listed keys may appear in object o (where: for the error). */
static int only_keys(const cJSON *o, const char *const *keys, const char *where) {
    for (const cJSON *e = o->child; e; e = e->next) {
        int known = 0;
        for (int i = 0; keys[i] && !known; i++) known = e->string && !strcmp(e->string, keys[i]);
        if (!known) return eid_error("%s: unknown key \"%s\"", where, e->string ? e->string : "?"), -1;
    }
    return 0;
}

static int int_key(const cJSON *o, const char *key, int lo, int hi, int *out, const char *where) {
    char what[320];
    snprintf(what, sizeof what, "%s: \"%s\"", where, key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return eid_error("%s: missing (an integer in [%d, %d])", what, lo, hi), -1;
    return strict_json_int(v, lo, hi, out, what);
}

static int string_key(const cJSON *o, const char *key, const char **out, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v) || !v->valuestring) return eid_error("%s: \"%s\": expected a string", where, key), -1;
    *out = v->valuestring;
    return 0;
}

static int parse_entry(const cJSON *e, EidGemmChoice *c, const char *where) {
    static const char *const keys[] = {"precision", "ta", "tb", "m", "n", "k", "team", "mirror", "use", "us", NULL};
    if (!cJSON_IsObject(e)) return eid_error("%s: expected an object", where), -1;
    if (only_keys(e, keys, where) != 0) return -1;
    const char *prec, *use;
    EidGemmShape *s = &c->shape;
    if (string_key(e, "precision", &prec, where) != 0) return -1;
    if ((s->prec = eid_precision_parse(prec)) < 0 || s->prec == EID_PREC_AUTO) /* a product's own precision */
        return eid_error("%s: \"precision\": expected fp32 or bf16, got \"%s\"", where, prec), -1;
    if (int_key(e, "ta", 0, 1, &s->ta, where) || int_key(e, "tb", 0, 1, &s->tb, where) ||
        int_key(e, "m", 1, 1 << 30, &s->M, where) || int_key(e, "n", 1, 1 << 30, &s->N, where) ||
        int_key(e, "k", 1, 1 << 30, &s->K, where) || int_key(e, "team", 1, 4096, &s->team, where) ||
        int_key(e, "mirror", 0, 1, &s->mirror, where) || string_key(e, "use", &use, where))
        return -1;
    if ((c->use = eid_gemm_backend_parse(use)) < 0)
        return eid_error("%s: \"use\": expected openblas, onednn-f32 or onednn-bf16, got \"%s\"", where, use), -1;
    if (c->use == EID_GEMM_ONEDNN_BF16 && s->prec != EID_PREC_BF16)
        return eid_error("%s: \"use\": onednn-bf16 in an fp32 entry", where), -1;
    for (int b = 0; b < EID_GEMM_N_BACKENDS; b++) c->us[b] = -1;
    const cJSON *us = cJSON_GetObjectItemCaseSensitive(e, "us");
    if (!us) return 0;
    if (!cJSON_IsObject(us)) return eid_error("%s: \"us\": expected an object of times per library", where), -1;
    for (const cJSON *t = us->child; t; t = t->next) {
        int b = t->string ? eid_gemm_backend_parse(t->string) : -1;
        char what[320];
        snprintf(what, sizeof what, "%s: \"us\": \"%s\"", where, t->string ? t->string : "?");
        if (b < 0) return eid_error("%s: not a library (openblas, onednn-f32, onednn-bf16)", what), -1;
        if (c->us[b] >= 0) return eid_error("%s: given twice", what), -1;
        if (strict_json_double(t, 0, 1e12, &c->us[b], what) != 0) return -1;
    }
    return 0;
}

static int same_shape(const EidGemmShape *a, const EidGemmShape *b) { return !memcmp(a, b, sizeof *a); }

int gemm_plan_from_json(const char *text, const char *what) {
    static const char *const keys[] = {"eidetic_gemm_plan", "threads", "entries", NULL};
    cJSON *j = cJSON_Parse(text);
    if (!j) return eid_error("%s: not valid JSON (a gemm plan written by eidetic was expected)", what), -1;
    int rc = -1, version, threads, n = 0;
    EidGemmChoice *c = NULL;
    const cJSON *entries = NULL;
    if (!cJSON_IsObject(j)) {
        eid_error("%s: expected a JSON object", what);
        goto done;
    }
    entries = cJSON_GetObjectItemCaseSensitive(j, "entries");
    if (only_keys(j, keys, what) != 0 || int_key(j, "eidetic_gemm_plan", 1, 1000000, &version, what) != 0 ||
        int_key(j, "threads", 1, 4096, &threads, what) != 0)
        goto done;
    if (version != PLAN_VERSION) {
        eid_error("%s: \"eidetic_gemm_plan\": version %d, this build reads %d", what, version, PLAN_VERSION);
        goto done;
    }
    if (!cJSON_IsArray(entries)) {
        eid_error("%s: \"entries\": expected an array", what);
        goto done;
    }
    n = cJSON_GetArraySize(entries);
    if (n > EID_GEMM_PLAN_MAX) {
        eid_error("%s: %d entries, at most %d", what, n, EID_GEMM_PLAN_MAX);
        goto done;
    }
    c = eid_xmalloc(sizeof *c * (size_t)(n ? n : 1));
    int i = 0;
    for (const cJSON *e = entries->child; e; e = e->next, i++) {
        char where[300];
        snprintf(where, sizeof where, "%s: entry %d", what, i);
        if (parse_entry(e, &c[i], where) != 0) goto done;
        for (int k = 0; k < i; k++)
            if (same_shape(&c[k].shape, &c[i].shape)) {
                eid_error("%s: the same shape as entry %d", where, k);
                goto done;
            }
    }
    if (eid_gemm_plan_count() + n > EID_GEMM_PLAN_MAX) {
        eid_error("%s: the plan would exceed %d shapes", what, EID_GEMM_PLAN_MAX);
        goto done;
    }
    for (i = 0; i < n; i++)
        if (eid_gemm_plan_put(&c[i]) < 0) goto done;
    rc = 0;
done:
    free(c);
    cJSON_Delete(j);
    return rc;
}

char *gemm_plan_to_json(void) {
    int n = eid_gemm_plan_count();
    size_t cap = 128 + (size_t)n * 256, len = 0;
    char *out = eid_xmalloc(cap);
    len += (size_t)snprintf(out + len, cap - len, "{\"eidetic_gemm_plan\": %d, \"threads\": %d, \"entries\": [",
                            PLAN_VERSION, eid_threads());
    for (int i = 0; i < n; i++) {
        EidGemmChoice c;
        if (eid_gemm_plan_get(i, &c) != 0) break;
        const EidGemmShape *s = &c.shape;
        len += (size_t)snprintf(out + len, cap - len,
                                "%s\n  {\"precision\": \"%s\", \"ta\": %d, \"tb\": %d, \"m\": %d, \"n\": %d, \"k\": %d, "
                                "\"team\": %d, \"mirror\": %d, \"use\": \"%s\", \"us\": {",
                                i ? "," : "", eid_precision_name(s->prec), s->ta, s->tb, s->M, s->N, s->K, s->team,
                                s->mirror, eid_gemm_backend_name(c.use));
        int first = 1;
        for (int b = 0; b < EID_GEMM_N_BACKENDS; b++)
            if (c.us[b] >= 0) {
                len += (size_t)snprintf(out + len, cap - len, "%s\"%s\": %.3f", first ? "" : ", ",
                                        eid_gemm_backend_name(b), c.us[b]);
                first = 0;
            }
        len += (size_t)snprintf(out + len, cap - len, "}}");
    }
    snprintf(out + len, cap - len, "%s]}\n", n ? "\n" : "");
    return out;
}

int gemm_plan_load(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return eid_error("gemm plan %s: cannot open (%s)", path, strerror(errno)), -1;
    char *buf = eid_xmalloc(MAX_FILE_BYTES);
    size_t n = fread(buf, 1, MAX_FILE_BYTES - 1, f);
    int more = fgetc(f) != EOF, err = ferror(f);
    fclose(f);
    int rc = -1;
    if (err || more)
        eid_error("gemm plan %s: %s", path, err ? "read error" : "larger than 16 MiB: not a plan");
    else if (memchr(buf, 0, n))
        eid_error("gemm plan %s: a NUL byte: not a JSON text", path);
    else {
        buf[n] = 0;
        char what[600];
        snprintf(what, sizeof what, "gemm plan %s", path);
        rc = gemm_plan_from_json(buf, what);
    }
    free(buf);
    return rc;
}

int gemm_plan_save(const char *path) {
    char *text = gemm_plan_to_json();
    int rc = eid_write_text_atomic(path, text);
    free(text);
    return rc;
}

int gemm_plan_apply_spec(const char *value, int verbose, const char *flag) {
    if (!value[0] || !strcmp(value, "fixed")) return eid_gemm_plan_set_mode(EID_PLAN_FIXED, 0), 0;
#ifdef EIDETIC_FP64
    return eid_error("%s %s: the fp64 test build has only the fixed plan", flag, value), -1;
#else
    if (strcmp(value, "measure") != 0 && gemm_plan_load(value) != 0) {
        if (!eid_file_exists(value))
            return eid_error("%s: expected fixed, measure or a plan file, got \"%s\" (no such file)", flag, value), -1;
        return -1;
    }
    eid_gemm_plan_set_mode(EID_PLAN_MEASURE, verbose);
    return 0;
#endif
}
