/* fuzz_metrics.c — libFuzzer harness for the reader of a run's metrics.jsonl that `eidetic plot`
 * draws (src/tools/metrics_read.h; docs/birdie.md "Birdie in eidetic"): the input is the file's text,
 * handed over in a buffer of exactly its size (the reader must not need a terminating NUL).
 * An accepted file must hold what the plot relies on: at least one line, steps growing from line to
 * line, every controller line with n_classes shares in [0, 1] summing to 1 within 1e-3, class names
 * (when given) non-empty, terminated and free of control characters. Anything ASan/UBSan reports, an
 * abort, or an accepted file that breaks these rules is a bug. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tools/metrics_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Metrics m;
    if (metrics_parse((const char *)data, size, "metrics.jsonl", &m) != 0) {
        if (m.rows || m.n || m.ctl || m.n_ctl) abort(); /* a refusal leaves nothing behind */
        return 0;
    }
    if (m.n < 1 || m.n_classes < 0 || m.n_classes > MR_MAX_CLASSES || (m.n_ctl > 0) != (m.n_classes > 0)) abort();
    int ctl = 0;
    for (int i = 0; i < m.n; i++) {
        const MetricsRow *r = &m.rows[i];
        if (r->step < 0 || (i && r->step <= m.rows[i - 1].step)) abort();
        if (r->ctl < 0) continue;
        if (r->ctl != ctl || r->ctl >= m.n_ctl || m.ctl[r->ctl].step != r->step) abort();
        const MetricsCtl *c = &m.ctl[ctl++];
        double s = 0;
        for (int j = 0; j < m.n_classes; j++) {
            if (!(c->mix[j] >= 0 && c->mix[j] <= 1)) abort();
            s += c->mix[j];
        }
        if (fabs(s - 1) > 1e-3) abort();
        if (memchr(c->mode, 0, sizeof c->mode) == NULL) abort();
    }
    if (ctl != m.n_ctl) abort();
    if (m.have_names)
        for (int j = 0; j < m.n_classes; j++) {
            const char *nm = m.class_names[j];
            size_t len = strnlen(nm, MR_NAME_LEN);
            if (len == 0 || len == MR_NAME_LEN) abort();
            for (size_t k = 0; k < len; k++)
                if ((unsigned char)nm[k] < 0x20 || nm[k] == 0x7f) abort();
        }
    metrics_free(&m);
    return 0;
}
