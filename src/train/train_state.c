/* train_state.c — see train_state.h. */
#include "train/train_state.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "io/safetensors.h"

int train_state_save(const char *dir, const TrainCfg *c, const Model *m, const AdamW *o, const TrainState *s) {
    char path[1024];
    if (snprintf(path, sizeof path, "%s/training_state.safetensors", dir) >= (int)sizeof path)
        return eid_error("%s: path too long", dir), -1;
    StWriter w;
    st_writer_init(&w);
    char b[64], name[160];
    snprintf(b, sizeof b, "%ld", s->step), st_meta_set(&w, "eidetic_step", b);
    snprintf(b, sizeof b, "%ld", o->t), st_meta_set(&w, "adam_t", b);
    snprintf(b, sizeof b, "%llu", (unsigned long long)s->cursor), st_meta_set(&w, "data_cursor", b);
    snprintf(b, sizeof b, "%llu", (unsigned long long)c->seed), st_meta_set(&w, "seed", b);
    if (s->metrics_bytes >= 0) snprintf(b, sizeof b, "%lld", s->metrics_bytes), st_meta_set(&w, "metrics_bytes", b);
    char *js = train_cfg_to_json(c);
    st_meta_set(&w, "train_config", js);
    free(js);
    for (int i = 0; i < m->nparam; i++) {
        const ParamEntry *p = &m->param[i];
        snprintf(name, sizeof name, "optimizer.exp_avg.%s", p->name);
        st_add_real(&w, name, p->ndim, p->shape, o->m + p->offset);
        snprintf(name, sizeof name, "optimizer.exp_avg_sq.%s", p->name);
        st_add_real(&w, name, p->ndim, p->shape, o->v + p->offset);
        if (!strcmp(c->save_dtype, "bf16")) { /* model.safetensors holds them rounded: keep them exact here */
            snprintf(name, sizeof name, "master.%s", p->name);
            st_add_real(&w, name, p->ndim, p->shape, m->w + p->offset);
        }
    }
    return st_write(&w, path);
}

/* A non-negative decimal integer of metadata KEY (no sign, no trailing text, no overflow). */
static int meta_int(const StFile *f, const char *key, long long max, long long *v, int required) {
    const char *s = st_meta(f, key);
    if (!s) {
        if (required) return eid_error("%s: metadata \"%s\" missing: not an eidetic training state", f->path, key), -1;
        *v = -1;
        return 0;
    }
    char *end;
    errno = 0;
    long long x = (*s >= '0' && *s <= '9') ? strtoll(s, &end, 10) : -1;
    if (x < 0 || errno || *end || x > max)
        return eid_error("%s: metadata \"%s\" is \"%.40s\"; expected an integer in [0, %lld]", f->path, key, s, max), -1;
    *v = x;
    return 0;
}

int train_first_nonfinite(const Model *m, const real *x) {
    for (int i = 0; i < m->nparam; i++) {
        const real *p = x + m->param[i].offset;
        int bad = 0;
        for (size_t k = 0; k < m->param[i].numel; k++) bad |= !isfinite((double)p[k]);
        if (bad) return i;
    }
    return -1;
}

int train_state_load(const char *path, Model *m, AdamW *o, TrainState *s) {
    StFile f;
    memset(o, 0, sizeof *o);
    if (st_open(&f, path) != 0) return -1;
    long long step, t, cur, mb;
    if (meta_int(&f, "eidetic_step", 1LL << 40, &step, 1) || meta_int(&f, "adam_t", 1LL << 40, &t, 1) ||
        meta_int(&f, "data_cursor", (long long)(~0ULL >> 2), &cur, 1) ||
        meta_int(&f, "metrics_bytes", 1LL << 50, &mb, 0))
        goto fail;
    adamw_init(o, m);
    char name[160];
    for (int i = 0; i < m->nparam; i++) {
        const ParamEntry *p = &m->param[i];
        snprintf(name, sizeof name, "optimizer.exp_avg.%s", p->name);
        if (st_read_real(&f, name, p->ndim, p->shape, o->m + p->offset)) goto fail;
        snprintf(name, sizeof name, "optimizer.exp_avg_sq.%s", p->name);
        if (st_read_real(&f, name, p->ndim, p->shape, o->v + p->offset)) goto fail;
    }
    /* fp32 master weights (a run saved with --save-dtype bf16): they, not the BF16 model file, are the
     * weights to continue from. All or none. */
    snprintf(name, sizeof name, "master.%s", m->param[0].name);
    StTensor probe;
    if (st_find(&f, name, &probe) == 0) {
        for (int i = 0; i < m->nparam; i++) {
            const ParamEntry *p = &m->param[i];
            snprintf(name, sizeof name, "master.%s", p->name);
            if (st_read_real(&f, name, p->ndim, p->shape, m->w + p->offset)) goto fail;
        }
        int badw = train_first_nonfinite(m, m->w);
        if (badw >= 0) {
            eid_error("%s: tensor 'master.%s' holds NaN or Inf: refusing a corrupt training state", path, m->param[badw].name);
            goto fail;
        }
    }
    int bad = train_first_nonfinite(m, o->m);
    if (bad >= 0) {
        eid_error("%s: tensor 'optimizer.exp_avg.%s' holds NaN or Inf: refusing a corrupt optimizer state", path,
                  m->param[bad].name);
        goto fail;
    }
    for (int i = 0; i < m->nparam; i++) {
        const real *v = o->v + m->param[i].offset;
        int neg = 0, nf = 0;
        for (size_t k = 0; k < m->param[i].numel; k++) nf |= !isfinite((double)v[k]), neg |= v[k] < 0;
        if (nf || neg) {
            eid_error("%s: tensor 'optimizer.exp_avg_sq.%s' holds %s: refusing a corrupt optimizer state", path,
                      m->param[i].name, nf ? "NaN or Inf" : "negative values (second moments are squares)");
            goto fail;
        }
    }
    o->t = (long)t;
    s->step = (long)step, s->adam_t = (long)t, s->cursor = (uint64_t)cur, s->metrics_bytes = mb;
    st_close(&f);
    return 0;
fail:
    adamw_free(o);
    st_close(&f);
    return -1;
}
