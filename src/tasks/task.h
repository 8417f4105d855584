/* task.h — synthetic tasks: a seeded generator of (inputs, labels) and the standard metric.
 *
 * Example j of a stream is a pure function of (stream key, j): batches are reproducible, can be
 * generated in parallel, and the data cursor of a run is just the index of the next example.
 * Train and test streams use disjoint keys (tasks.md §0). */
#ifndef EIDETIC_TASK_H
#define EIDETIC_TASK_H
#include <stdint.h>

typedef struct {
    char name[16];          /* "mqar" */
    int vocab_size;         /* V */
    int seq_len;            /* L: model input length */
    int kv_pairs;           /* K */
    double power_a;         /* query-gap power law, 0.01 */
    int num_passes;         /* P, 1 */
    int random_non_queries; /* fill zeros with random tokens */
} TaskCfg;

enum { STREAM_TRAIN = 0, STREAM_TEST = 1 };

int task_resolve(TaskCfg *t);                          /* validate; -1 + eid_error naming the flag */
int task_labels_per_example(const TaskCfg *t);         /* upper bound, for planning */
/* One example: inputs[L], labels[L] (−100 = no label). */
void task_example(const TaskCfg *t, uint64_t seed, int stream, uint64_t index, int *inputs, int *labels);
/* B consecutive examples starting at `index` (parallel); with wrap > 0 example indices cycle
 * modulo wrap (a finite training set). */
void task_batch(const TaskCfg *t, uint64_t seed, int stream, uint64_t index, uint64_t wrap, int B, int *inputs,
                int *labels);

/* MQAR (tasks.md §1.1): lay out given keys, values and query gaps. */
void mqar_layout(int V, int L, int K, int P, const int *keys, const int *vals, const int *gaps, int *inputs,
                 int *labels);

#endif
