/* source.h — where training and evaluation rows come from: one interface over every kind of data.
 *
 * A data source yields rows of (tokens, labels, per-token flags): tokens[T], labels[T] (−100 = no
 * label) and flags[T] (kernels/seq.h: SEG_START, CAUSAL, PAD). Row j of a stream is a pure function
 * of (seed, stream, j), so batches are reproducible and any process can build any part of one.
 *
 * Ranks. A run of W processes (world) reads the same global batch sequence as a one-process run:
 * global batch k holds rows [cursor, cursor + B) of the training stream, and rank r of W builds the
 * contiguous slice [r·B/W, (r+1)·B/W) of it. The ranks' slices, concatenated in rank order, are the
 * W = 1 batch bit for bit (W must divide B). Every rank advances the same cursor by B.
 *
 * State. What a source needs to continue exactly where it stopped (for the synthetic tasks: the
 * cursor alone) is saved as a short text by source_save and read back by source_restore; a
 * trainer stores it with its training state so that --resume continues the same rows.
 *
 * Implementations: the synthetic tasks (source_task_init: tasks/task.h behind the ops table).
 * A tokenised text corpus or Birdie's objectives are further SourceOps with their own cfg. */
#ifndef EIDETIC_SOURCE_H
#define EIDETIC_SOURCE_H
#include <stddef.h>
#include <stdint.h>
#include "kernels/seq.h"
#include "tasks/task.h"

typedef struct DataSource DataSource;

typedef struct {
    const char *name;
    /* rows [first, first + n) of `stream` into tokens/labels/flags [n*T] (flags may be NULL); with
     * wrap > 0 row index j reads example j mod wrap. 0, or −1 + eid_error. */
    int (*rows)(const DataSource *s, int stream, uint64_t first, uint64_t wrap, int n, int *tokens, int *labels,
                uint8_t *flags);
    int (*labels_per_row)(const DataSource *s); /* upper bound of labelled positions in one row */
    /* source state beyond the cursor as text (NULL: the cursor is all); restore −1 + eid_error */
    int (*save)(const DataSource *s, char *buf, size_t n);
    int (*restore)(DataSource *s, const char *text);
} SourceOps;

struct DataSource {
    const SourceOps *ops;
    const void *cfg;   /* the implementation's configuration (a TaskCfg for task sources) */
    uint64_t seed;     /* data seed */
    uint64_t wrap;     /* > 0: training row indices cycle modulo wrap (a finite training set) */
    int T;             /* tokens per row */
    int rank, world;   /* this process is rank of world (1 process: 0 of 1) */
    uint64_t cursor;   /* global training rows consumed (every rank holds the same value) */
};

/* A source over a synthetic task (tasks/task.h); t must stay alive and resolved. rank 0 of 1. */
void source_task_init(DataSource *s, const TaskCfg *t, uint64_t seed, uint64_t wrap);
/* This process's place among `world` readers. -1 + eid_error naming --rank/--world otherwise. */
int source_set_rank(DataSource *s, int rank, int world);
int source_labels_per_row(const DataSource *s);
/* The rows of global batch size B this rank reads per step: B / world. -1 + eid_error when world
 * does not divide B. */
int source_local_rows(const DataSource *s, int B);
/* The next global training batch of B rows: this rank's B/world rows into tokens/labels/flags
 * [(B/world)*T] (flags may be NULL); cursor += B. -1 + eid_error (nothing advanced). */
int source_next(DataSource *s, int B, int *tokens, int *labels, uint8_t *flags);
/* n rows of `stream` from global index `first`, ignoring rank, cursor and wrap (evaluation). */
int source_rows(const DataSource *s, int stream, uint64_t first, int n, int *tokens, int *labels, uint8_t *flags);
/* The state as text ("cursor=N" plus the implementation's own) and back. */
int source_save(const DataSource *s, char *buf, size_t n);
int source_restore(DataSource *s, const char *text);

#endif
