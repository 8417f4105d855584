/* metrics_read.c — the strict reader of metrics.jsonl for `eidetic plot` (metrics_read.h). */
#include "tools/metrics_read.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "core/common.h"

#define MR_MAX_STEP 1e15 /* steps are exact integers in a double well below 2^53 */

static const char *const num_keys[] = {"loss", "train_acc", "lr", "test_acc", "test_loss", "val_loss", "val_bpb"};

/* a number field: absent or null -> NaN; anything but a finite number is an error */
static int num_field(const cJSON *o, const char *key, double *out, const char *name, long line) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NAN;
    if (!it || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return eid_error("%s:%ld: \"%s\" is not a finite number", name, line, key), -1;
    *out = it->valuedouble;
    return 0;
}

/* an array of k finite numbers (k <= MR_MAX_CLASSES) into v; returns k, or -1 + eid_error */
static int num_array(const cJSON *a, const char *key, double *v, const char *name, long line) {
    if (!cJSON_IsArray(a)) return eid_error("%s:%ld: \"%s\" is not an array of numbers", name, line, key), -1;
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (k == MR_MAX_CLASSES) return eid_error("%s:%ld: \"%s\" has more than %d entries", name, line, key, MR_MAX_CLASSES), -1;
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
            return eid_error("%s:%ld: \"%s\" entry %d is not a finite number", name, line, key, k + 1), -1;
        v[k++] = e->valuedouble;
    }
    if (k == 0) return eid_error("%s:%ld: \"%s\" is empty", name, line, key), -1;
    return k;
}

/* names go into a data file's header and into gnuplot strings: printable, no control characters */
static int read_names(const cJSON *a, Metrics *m, const char *name, long line, int *count) {
    if (!cJSON_IsArray(a)) return eid_error("%s:%ld: \"birdie_classes\" is not an array of strings", name, line), -1;
    char names[MR_MAX_CLASSES][MR_NAME_LEN];
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (k == MR_MAX_CLASSES)
            return eid_error("%s:%ld: \"birdie_classes\" has more than %d names", name, line, MR_MAX_CLASSES), -1;
        if (!cJSON_IsString(e) || !e->valuestring[0] || strlen(e->valuestring) >= MR_NAME_LEN)
            return eid_error("%s:%ld: \"birdie_classes\" entry %d is not a name of 1 to %d characters", name, line, k + 1,
                             MR_NAME_LEN - 1), -1;
        for (const unsigned char *p = (const unsigned char *)e->valuestring; *p; p++)
            if (*p < 0x20 || *p == 0x7f)
                return eid_error("%s:%ld: \"birdie_classes\" entry %d holds a control character", name, line, k + 1), -1;
        snprintf(names[k++], MR_NAME_LEN, "%s", e->valuestring);
    }
    if (k == 0) return eid_error("%s:%ld: \"birdie_classes\" is empty", name, line), -1;
    if (m->have_names) {
        int same = k == *count;
        for (int j = 0; same && j < k; j++) same = !strcmp(names[j], m->class_names[j]);
        if (!same) return eid_error("%s:%ld: \"birdie_classes\" differs from an earlier line's", name, line), -1;
        return 0;
    }
    memcpy(m->class_names, names, sizeof names);
    m->have_names = 1, *count = k;
    return 0;
}

static int parse_line(const char *s, const char *name, long line, Metrics *m, int *n_names, long *names_line) {
    cJSON *o = cJSON_ParseWithOpts(s, NULL, 1);
    if (!o) return eid_error("%s:%ld: not JSON", name, line), -2; /* -2: metrics_parse may skip a torn last line */
    int rc = -1;
    MetricsRow r;
    MetricsCtl c;
    memset(&r, 0, sizeof r), memset(&c, 0, sizeof c);
    r.ctl = -1;
    c.eval = -1, c.total_reward = c.rm_loss = NAN;
    for (int j = 0; j < MR_MAX_CLASSES; j++) c.mix[j] = c.reward[j] = NAN;
    if (!cJSON_IsObject(o)) {
        eid_error("%s:%ld: not a JSON object", name, line);
        goto out;
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "step");
    if (!cJSON_IsNumber(st) || !(st->valuedouble >= 0) || st->valuedouble > MR_MAX_STEP ||
        st->valuedouble != floor(st->valuedouble)) {
        eid_error("%s:%ld: no \"step\" (a whole number >= 0)", name, line);
        goto out;
    }
    r.step = c.step = (long)st->valuedouble;
    if (m->n && r.step <= m->rows[m->n - 1].step) {
        eid_error("%s:%ld: step %ld after step %ld: the steps of one run grow from line to line", name, line, r.step,
                  m->rows[m->n - 1].step);
        goto out;
    }
    double *dst[] = {&r.loss, &r.train_acc, &r.lr, &r.test_acc, &r.test_loss, &r.val_loss, &r.val_bpb};
    for (int i = 0; i < 7; i++) {
        if (num_field(o, num_keys[i], dst[i], name, line) != 0) goto out;
        if (!isnan(*dst[i])) m->has[i] = 1;
    }
    const cJSON *ft = cJSON_GetObjectItemCaseSensitive(o, "finetune");
    r.finetune = cJSON_IsNumber(ft) && ft->valuedouble != 0;
    const cJSON *cn = cJSON_GetObjectItemCaseSensitive(o, "birdie_classes");
    if (cn) {
        if (read_names(cn, m, name, line, n_names) != 0) goto out;
        if (*names_line == 0) *names_line = line;
    }
    const cJSON *mix = cJSON_GetObjectItemCaseSensitive(o, "birdie_class_mix");
    if (mix) {
        int k = num_array(mix, "birdie_class_mix", c.mix, name, line);
        if (k < 0) goto out;
        if (m->n_classes && k != m->n_classes) {
            eid_error("%s:%ld: \"birdie_class_mix\" has %d classes, earlier lines %d", name, line, k, m->n_classes);
            goto out;
        }
        double sum = 0;
        for (int j = 0; j < k; j++) {
            if (c.mix[j] < 0 || c.mix[j] > 1) {
                eid_error("%s:%ld: \"birdie_class_mix\" share %d is %g, outside [0, 1]", name, line, j + 1, c.mix[j]);
                goto out;
            }
            sum += c.mix[j];
        }
        if (fabs(sum - 1) > 1e-3) {
            eid_error("%s:%ld: the \"birdie_class_mix\" shares sum to %.6f, not 1", name, line, sum);
            goto out;
        }
        m->n_classes = k, r.ctl = m->n_ctl;
        const cJSON *rw = cJSON_GetObjectItemCaseSensitive(o, "birdie_class_reward");
        if (rw) {
            int kr = num_array(rw, "birdie_class_reward", c.reward, name, line);
            if (kr < 0) goto out;
            if (kr != k) {
                eid_error("%s:%ld: \"birdie_class_reward\" has %d classes, \"birdie_class_mix\" %d", name, line, kr, k);
                goto out;
            }
            m->has[MR_F_REWARD] = 1;
        }
        if (num_field(o, "birdie_total_reward", &c.total_reward, name, line) != 0 ||
            num_field(o, "birdie_rm_loss", &c.rm_loss, name, line) != 0)
            goto out;
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(o, "birdie_eval");
        if (ev) {
            if (!cJSON_IsNumber(ev) || !(ev->valuedouble >= 0) || ev->valuedouble > 1e9 || ev->valuedouble != floor(ev->valuedouble)) {
                eid_error("%s:%ld: \"birdie_eval\" is not a whole number >= 0", name, line);
                goto out;
            }
            c.eval = (int)ev->valuedouble;
        }
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "birdie_mode");
        if (md) {
            size_t len = cJSON_IsString(md) ? strlen(md->valuestring) : 0;
            int good = len > 0 && len < sizeof c.mode;
            for (size_t i = 0; good && i < len; i++) {
                char c = md->valuestring[i];
                good = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
            }
            if (!good) {
                eid_error("%s:%ld: \"birdie_mode\" is not a word of 1 to %zu letters", name, line, sizeof c.mode - 1);
                goto out;
            }
            memcpy(c.mode, md->valuestring, len + 1);
        }
    } else if (cJSON_GetObjectItemCaseSensitive(o, "birdie_class_reward")) {
        eid_error("%s:%ld: \"birdie_class_reward\" without \"birdie_class_mix\"", name, line);
        goto out;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 256;
        m->rows = realloc(m->rows, sizeof *m->rows * (size_t)m->cap);
        if (!m->rows) eid_fatal("out of memory");
    }
    m->rows[m->n++] = r;
    if (r.ctl >= 0) {
        if (m->n_ctl == m->cap_ctl) {
            m->cap_ctl = m->cap_ctl ? 2 * m->cap_ctl : 64;
            m->ctl = realloc(m->ctl, sizeof *m->ctl * (size_t)m->cap_ctl);
            if (!m->ctl) eid_fatal("out of memory");
        }
        m->ctl[m->n_ctl++] = c;
    }
    rc = 0;
out:
    cJSON_Delete(o);
    return rc;
}

int metrics_parse(const char *text, size_t n, const char *name, Metrics *m) {
    memset(m, 0, sizeof *m);
    char *buf = NULL;
    size_t cap = 0;
    long line = 0, names_line = 0;
    int n_names = 0, rc = 0;
    for (size_t p = 0; p < n && rc == 0;) {
        const char *nl = memchr(text + p, '\n', n - p);
        size_t len = nl ? (size_t)(nl - (text + p)) : n - p;
        line++;
        if (len + 1 > cap) {
            cap = len + 1 > 2 * cap ? len + 1 : 2 * cap;
            buf = realloc(buf, cap);
            if (!buf) eid_fatal("out of memory");
        }
        memcpy(buf, text + p, len), buf[len] = 0;
        p += len + (nl != NULL);
        if (len && buf[len - 1] == '\r') buf[--len] = 0;
        if (memchr(buf, 0, len)) {
            eid_error("%s:%ld: not JSON (a NUL byte)", name, line), rc = -1;
            break;
        }
        size_t w = 0;
        while (w < len && (buf[w] == ' ' || buf[w] == '\t')) w++;
        if (w == len) continue; /* a blank line */
        rc = parse_line(buf, name, line, m, &n_names, &names_line);
        if (rc == -2 && !nl) m->torn_tail = 1, rc = 0; /* the line being written: skipped */
        else if (rc != 0) rc = -1;
    }
    free(buf);
    if (rc == 0 && m->n == 0)
        eid_error("%s: no metrics line%s (no training step recorded yet?)", name, m->torn_tail ? " but an unfinished one" : ""),
            rc = -1;
    if (rc == 0 && m->have_names && m->n_classes && n_names != m->n_classes)
        eid_error("%s:%ld: \"birdie_classes\" names %d classes, \"birdie_class_mix\" has %d", name, names_line, n_names,
                  m->n_classes), rc = -1;
    if (rc == 0 && m->have_names && !m->n_classes)
        eid_error("%s:%ld: \"birdie_classes\" but no line with \"birdie_class_mix\"", name, names_line), rc = -1;
    if (rc != 0) {
        int torn = m->torn_tail;
        metrics_free(m);
        m->torn_tail = torn;
    }
    return rc;
}

int metrics_read(const char *path, Metrics *m) {
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "rb");
    if (!f) return eid_error("%s: cannot open (%s)", path, strerror(errno)), -1;
    size_t n = 0, cap = 1 << 16;
    char *text = eid_xmalloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            text = realloc(text, cap);
            if (!text) eid_fatal("out of memory");
        }
        size_t got = fread(text + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) return free(text), eid_error("%s: read error", path), -1;
    if (n == 0) return free(text), eid_error("%s: empty file (no training step recorded yet)", path), -1;
    int rc = metrics_parse(text, n, path, m);
    free(text);
    return rc;
}

void metrics_free(Metrics *m) {
    free(m->rows), free(m->ctl);
    memset(m, 0, sizeof *m);
}
