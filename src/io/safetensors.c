/* safetensors.c — see safetensors.h. */
#include "io/safetensors.h"
#include "io/files.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t dtype_size(const char *dt) {
    if (!strcmp(dt, "F64") || !strcmp(dt, "I64") || !strcmp(dt, "U64")) return 8;
    if (!strcmp(dt, "F32") || !strcmp(dt, "I32") || !strcmp(dt, "U32")) return 4;
    if (!strcmp(dt, "F16") || !strcmp(dt, "BF16") || !strcmp(dt, "I16") || !strcmp(dt, "U16")) return 2;
    if (!strcmp(dt, "I8") || !strcmp(dt, "U8") || !strcmp(dt, "BOOL")) return 1;
    return 0;
}

static int read_all(const char *path, uint8_t **out, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return eid_error("%s: cannot open (%s)", path, strerror(errno)), -1;
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return eid_error("%s: not a regular file", path), -1;
    }
    *n = (size_t)st.st_size;
    *out = eid_xmalloc(*n + 1);
    size_t got = fread(*out, 1, *n, fp);
    fclose(fp);
    if (got != *n) return free(*out), eid_error("%s: short read (%zu of %zu bytes)", path, got, *n), -1;
    return 0;
}

/* A header number that must be an integer in [0, 2^53] (exact in a double): shapes, offsets. */
static int header_uint(const cJSON *v, double *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d)) return -1;
    *out = d;
    return 0;
}

static int name_cmp(const void *x, const void *y) { return strcmp(*(const char *const *)x, *(const char *const *)y); }

typedef struct { double b, e; const char *name; } Span;
static int span_cmp(const void *x, const void *y) {
    const Span *a = x, *b = y;
    return a->b < b->b ? -1 : a->b > b->b ? 1 : a->e < b->e ? -1 : a->e > b->e;
}

/* Validate one header entry against the data section (safetensors' rules, checked strictly: dtype
 * known, shape of non-negative integers, data_offsets two integers inside the data, their length
 * exactly numel * dtype size). */
static int check_entry(const StFile *f, const cJSON *e, Span *sp) {
    if (!cJSON_IsObject(e))
        return eid_error("%s: tensor '%s' has a malformed header entry (need dtype, shape, data_offsets)", f->path,
                         e->string), -1;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return eid_error("%s: tensor '%s' has a malformed header entry (need dtype, shape, data_offsets)", f->path,
                         e->string), -1;
    const cJSON *k;
    cJSON_ArrayForEach(k, e) if (strcmp(k->string, "dtype") && strcmp(k->string, "shape") && strcmp(k->string, "data_offsets"))
        return eid_error("%s: tensor '%s' has an unknown header field \"%s\"", f->path, e->string, k->string), -1;
    size_t es = dtype_size(dt->valuestring);
    if (!es) return eid_error("%s: tensor '%s' has unknown dtype '%s'", f->path, e->string, dt->valuestring), -1;
    if (cJSON_GetArraySize(sh) > 8) return eid_error("%s: tensor '%s' has more than 8 dims", f->path, e->string), -1;
    double numel = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, sh) {
        double x;
        if (header_uint(d, &x) != 0 || x > 1099511627776.0)
            return eid_error("%s: tensor '%s' has a bad shape (expected non-negative integers)", f->path, e->string), -1;
        numel *= x;
    }
    double b, en;
    if (header_uint(cJSON_GetArrayItem(off, 0), &b) != 0 || header_uint(cJSON_GetArrayItem(off, 1), &en) != 0)
        return eid_error("%s: tensor '%s' has bad data_offsets (expected two non-negative integers)", f->path,
                         e->string), -1;
    if (en < b || en > (double)f->data_size)
        return eid_error("%s: tensor '%s' lies outside the file (offsets %.0f..%.0f, data is %zu bytes): file truncated or corrupt",
                         f->path, e->string, b, en, f->data_size), -1;
    if (en - b != numel * es)
        return eid_error("%s: tensor '%s' has %.0f bytes but its shape needs %.0f", f->path, e->string, en - b,
                         numel * es), -1;
    sp->b = b, sp->e = en, sp->name = e->string;
    return 0;
}

int st_open(StFile *f, const char *path) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    if (read_all(path, &f->bytes, &f->size) != 0) return -1;
    return st_parse(f);
}

int st_open_bytes(StFile *f, const char *name, const uint8_t *bytes, size_t n) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", name);
    f->bytes = eid_xmalloc(n + 1);
    if (n) memcpy(f->bytes, bytes, n);
    f->size = n;
    return st_parse(f);
}

int st_parse(StFile *f) {
    const char *path = f->path;
    if (f->size < 8) return st_close(f), eid_error("%s: too short to be a safetensors file (%zu bytes)", path, f->size), -1;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | f->bytes[i];
    if (hl == 0 || hl > f->size - 8 || hl > (100u << 20))
        return st_close(f), eid_error("%s: header length %llu does not fit the %zu-byte file: truncated or not safetensors",
                                      path, (unsigned long long)hl, f->size), -1;
    f->header = cJSON_ParseWithLength((const char *)f->bytes + 8, (size_t)hl);
    if (!f->header || !cJSON_IsObject((cJSON *)f->header))
        return st_close(f), eid_error("%s: header is not valid JSON: file corrupt", path), -1;
    f->data = f->bytes + 8 + hl;
    f->data_size = f->size - 8 - hl;
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, (cJSON *)f->header) n++;
    /* names are unique (a duplicate would make lookups ambiguous): sorted, neighbours compared */
    const char **names = eid_xmalloc(sizeof(char *) * (size_t)(n + 1));
    n = 0;
    cJSON_ArrayForEach(e, (cJSON *)f->header) names[n++] = e->string;
    qsort(names, (size_t)n, sizeof *names, name_cmp);
    for (int i = 1; i < n; i++)
        if (!strcmp(names[i - 1], names[i])) {
            eid_error("%s: header lists '%s' twice: file corrupt", path, names[i]);
            return free(names), st_close(f), -1;
        }
    free(names);
    Span *sp = eid_xmalloc(sizeof(Span) * (size_t)(n + 1));
    n = 0;
    cJSON_ArrayForEach(e, (cJSON *)f->header) {
        if (!strcmp(e->string, "__metadata__")) {
            const cJSON *v;
            int okm = cJSON_IsObject(e);
            if (okm) cJSON_ArrayForEach(v, e) okm &= cJSON_IsString(v);
            if (!okm)
                return free(sp), st_close(f),
                       eid_error("%s: \"__metadata__\" must map strings to strings: file corrupt", path), -1;
            continue;
        }
        if (check_entry(f, e, &sp[n]) != 0) return free(sp), st_close(f), -1;
        n++;
    }
    /* the tensors tile the data section exactly: no overlap, no hole, nothing after the last */
    qsort(sp, (size_t)n, sizeof *sp, span_cmp);
    double at = 0;
    for (int i = 0; i < n; i++) {
        if (sp[i].b != at) {
            const char *why = sp[i].b < at ? "overlaps the tensor before it" : "leaves a gap before it";
            eid_error("%s: tensor '%s' (offsets %.0f..%.0f) %s: file corrupt", path, sp[i].name, sp[i].b, sp[i].e, why);
            return free(sp), st_close(f), -1;
        }
        at = sp[i].e;
    }
    free(sp);
    if (at != (double)f->data_size)
        return st_close(f), eid_error("%s: %.0f bytes after the last tensor: file corrupt", path, (double)f->data_size - at),
               -1;
    f->ntensors = n;
    return 0;
}

int st_tensor_count(const StFile *f) { return f->ntensors; }

const char *st_tensor_name(const StFile *f, int i) {
    const cJSON *e;
    cJSON_ArrayForEach(e, (cJSON *)f->header) {
        if (!strcmp(e->string, "__metadata__")) continue;
        if (i-- == 0) return e->string;
    }
    return NULL;
}

void st_close(StFile *f) {
    if (f->header) cJSON_Delete((cJSON *)f->header);
    free(f->bytes);
    f->bytes = NULL, f->header = NULL;
}

int st_find(const StFile *f, const char *name, StTensor *t) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive((cJSON *)f->header, name);
    if (!e || !strcmp(name, "__metadata__")) return -1;
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape"), *d;
    t->dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype")->valuestring;
    t->ndim = 0;
    cJSON_ArrayForEach(d, sh) t->shape[t->ndim++] = (int64_t)d->valuedouble;
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    size_t b = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble, en = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
    t->data = f->data + b;
    t->nbytes = en - b;
    return 0;
}

const char *st_meta(const StFile *f, const char *key) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive((cJSON *)f->header, "__metadata__");
    const cJSON *v = m ? cJSON_GetObjectItemCaseSensitive(m, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *s) {
    size_t k = snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++) k += snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)s[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* bfloat16: the top 16 bits of a float32 */
static float bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/* IEEE binary16 -> float (subnormals, Inf and NaN included; the NaN check after load rejects those) */
static float f16_to_float(uint16_t h) {
    int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 1024), e - 25);
    return sign ? -v : v;
}

int st_read_real(const StFile *f, const char *name, int ndim, const int *shape, real *dst) {
    StTensor t;
    if (st_find(f, name, &t) != 0)
        return eid_error("%s: tensor '%s' is missing (checkpoint does not match config.json?)", f->path, name), -1;
    int64_t want[8];
    for (int i = 0; i < ndim; i++) want[i] = shape[i];
    int same = t.ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t.shape[i] == want[i];
    if (!same) {
        char a[96], b[96];
        shape_str(a, sizeof a, t.ndim, t.shape), shape_str(b, sizeof b, ndim, want);
        return eid_error("%s: tensor '%s' has shape %s, expected %s from config.json", f->path, name, a, b), -1;
    }
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    if (!strcmp(t.dtype, "F32")) {
        for (size_t i = 0; i < n; i++) {
            float v;
            memcpy(&v, t.data + 4 * i, 4);
            dst[i] = v;
        }
    } else if (!strcmp(t.dtype, "F64")) {
        for (size_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, t.data + 8 * i, 8);
            dst[i] = (real)v;
        }
    } else if (!strcmp(t.dtype, "BF16") || !strcmp(t.dtype, "F16")) {
        int bf = t.dtype[0] == 'B'; /* published checkpoints are often stored in half precision: widen exactly */
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, t.data + 2 * i, 2);
            dst[i] = (real)(bf ? bf16_to_float(h) : f16_to_float(h));
        }
    } else {
        return eid_error("%s: tensor '%s' has dtype %s; expected F32, F64, BF16 or F16", f->path, name, t.dtype), -1;
    }
    return 0;
}

void st_writer_init(StWriter *w) { memset(w, 0, sizeof *w); }

void st_add(StWriter *w, const char *name, const char *dtype, int ndim, const int64_t *shape, const void *data,
            size_t nbytes) {
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->t = eid_xrealloc(w->t, sizeof *w->t * w->cap);
        if (!w->t) eid_fatal("out of memory");
    }
    struct StOut *o = &w->t[w->n++];
    snprintf(o->name, sizeof o->name, "%s", name);
    o->dtype = dtype, o->ndim = ndim, o->data = data, o->nbytes = nbytes;
    for (int i = 0; i < ndim; i++) o->shape[i] = shape[i];
}

/* Tensors are always written as F32 or F64 matching `real`; data must stay alive until st_write. */
void st_add_real(StWriter *w, const char *name, int ndim, const int *shape, const real *data) {
    int64_t s[8];
    size_t n = 1;
    for (int i = 0; i < ndim; i++) s[i] = shape[i], n *= shape[i];
    st_add(w, name, REAL_NAME, ndim, s, data, n * sizeof(real));
}

void st_meta_set(StWriter *w, const char *key, const char *val) {
    if (w->nmeta == 32) eid_fatal("too many safetensors metadata entries");
    snprintf(w->meta_key[w->nmeta], 64, "%s", key);
    w->meta_val[w->nmeta++] = eid_xstrdup(val);
}

static void writer_free(StWriter *w) {
    for (int i = 0; i < w->nmeta; i++) free(w->meta_val[i]);
    free(w->t);
    memset(w, 0, sizeof *w);
}


int st_write(StWriter *w, const char *path) {
    cJSON *h = cJSON_CreateObject();
    if (w->nmeta) {
        cJSON *m = cJSON_AddObjectToObject(h, "__metadata__");
        for (int i = 0; i < w->nmeta; i++) cJSON_AddStringToObject(m, w->meta_key[i], w->meta_val[i]);
    }
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        cJSON *e = cJSON_AddObjectToObject(h, w->t[i].name);
        cJSON_AddStringToObject(e, "dtype", w->t[i].dtype);
        cJSON *s = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < w->t[i].ndim; d++) cJSON_AddItemToArray(s, cJSON_CreateNumber((double)w->t[i].shape[d]));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + w->t[i].nbytes)));
        off += w->t[i].nbytes;
    }
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t jl = strlen(js), padded = EID_CDIV(jl, 8) * 8; /* pad the header with spaces to 8 bytes */
    char *hdr = eid_xmalloc(8 + padded);
    uint64_t hl = padded;
    for (int i = 0; i < 8; i++) hdr[i] = (char)((hl >> (8 * i)) & 0xff);
    memcpy(hdr + 8, js, jl);
    memset(hdr + 8 + jl, ' ', padded - jl);
    free(js);
    int np = w->n + 1;
    const void **parts = eid_xmalloc(sizeof(void *) * np);
    size_t *sizes = eid_xmalloc(sizeof(size_t) * np);
    parts[0] = hdr, sizes[0] = 8 + padded;
    for (int i = 0; i < w->n; i++) parts[i + 1] = w->t[i].data, sizes[i + 1] = w->t[i].nbytes;
    int rc = eid_write_parts_atomic(path, parts, sizes, np);
    free(parts), free(sizes), free(hdr);
    writer_free(w);
    return rc;
}
