/* source.c — data sources (source.h): the rank slicing, the cursor and its saved state, and the
 * synthetic-task implementation. */
#include "data/source.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/common.h"

/* ---- synthetic tasks: row j = task example j; flags from the example's real length ---- */

static int task_rows(const DataSource *s, int stream, uint64_t first, uint64_t wrap, int n, int *tokens, int *labels,
                     uint8_t *flags) {
    task_batch((const TaskCfg *)s->cfg, s->seed, stream, first, wrap, n, tokens, labels, flags);
    return 0;
}

static int task_labels(const DataSource *s) { return task_labels_per_example((const TaskCfg *)s->cfg); }

static const SourceOps task_source_ops = {"task", task_rows, task_labels, NULL, NULL};

void source_task_init(DataSource *s, const TaskCfg *t, uint64_t seed, uint64_t wrap) {
    memset(s, 0, sizeof *s);
    s->ops = &task_source_ops, s->cfg = t, s->seed = seed, s->wrap = wrap, s->T = t->seq_len;
    s->rank = 0, s->world = 1;
}

/* ---- common to every source ---- */

int source_set_rank(DataSource *s, int rank, int world) {
    if (world < 1) return eid_error("--world: must be >= 1, got %d", world), -1;
    if (rank < 0 || rank >= world) return eid_error("--rank: must be in [0, %d), got %d", world, rank), -1;
    s->rank = rank, s->world = world;
    return 0;
}

int source_labels_per_row(const DataSource *s) { return s->ops->labels_per_row(s); }

int source_local_rows(const DataSource *s, int B) {
    if (B < 1 || B % s->world)
        return eid_error("--batch %d: must be a positive multiple of the %d ranks reading it", B, s->world), -1;
    return B / s->world;
}

int source_next(DataSource *s, int B, int *tokens, int *labels, uint8_t *flags) {
    int b = source_local_rows(s, B);
    if (b < 0) return -1;
    if (s->ops->rows(s, STREAM_TRAIN, s->cursor + (uint64_t)s->rank * b, s->wrap, b, tokens, labels, flags) != 0)
        return -1;
    s->cursor += (uint64_t)B;
    return 0;
}

int source_rows(const DataSource *s, int stream, uint64_t first, int n, int *tokens, int *labels, uint8_t *flags) {
    return s->ops->rows(s, stream, first, 0, n, tokens, labels, flags);
}

int source_save(const DataSource *s, char *buf, size_t n) {
    int k = snprintf(buf, n, "cursor=%" PRIu64, s->cursor);
    if (k < 0 || (size_t)k >= n) return eid_error("source_save: buffer of %zu bytes too small", n), -1;
    if (s->ops->save) {
        buf[k++] = ' ';
        return s->ops->save(s, buf + k, n - (size_t)k);
    }
    return 0;
}

int source_restore(DataSource *s, const char *text) {
    char *end;
    if (strncmp(text, "cursor=", 7) != 0 || text[7] < '0' || text[7] > '9')
        return eid_error("data source state '%.40s': expected \"cursor=N\"", text), -1;
    uint64_t c = strtoull(text + 7, &end, 10);
    if (*end && *end != ' ') return eid_error("data source state '%.40s': bad cursor", text), -1;
    if (*end == ' ' && !s->ops->restore)
        return eid_error("data source state '%.40s': a %s source has no state beyond its cursor", text, s->ops->name), -1;
    if (*end == ' ' && s->ops->restore(s, end + 1) != 0) return -1;
    s->cursor = c;
    return 0;
}
