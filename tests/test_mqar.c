/* test_mqar.c — the MQAR generator (docs/tasks.md §1.1): worked example, structure of every example,
 * value ranges, determinism, disjoint streams, random fill, power-law gaps, and argument checks. */
#include "core/runtime.h"
#include "tasks/task.h"
#include "testutil.h"

static void worked_example(void) {
    int keys[2] = {3, 5}, vals[2] = {9, 14}, gaps[2] = {1, 0}, in[12], lab[12];
    mqar_layout(16, 12, 2, 1, keys, vals, gaps, in, lab);
    int want_in[12] = {3, 9, 5, 14, 5, 0, 3, 0, 0, 0, 0, 0};
    int want_lab[12] = {-100, -100, -100, -100, 14, -100, 9, -100, -100, -100, -100, -100};
    CHECK(!memcmp(in, want_in, sizeof in), "worked example inputs differ");
    CHECK(!memcmp(lab, want_lab, sizeof lab), "worked example labels differ");
}

/* Every structural promise of one example. */
static int check_example(const TaskCfg *t, const int *in, const int *lab) {
    int V = t->vocab_size, L = t->seq_len, K = t->kv_pairs, C = 2 * K * t->num_passes, nlab = 0, ok = 1;
    for (int i = 0; i < K; i++) {
        int k = in[2 * i], v = in[2 * i + 1];
        ok &= k >= 1 && k < V / 2 && v >= V / 2 && v < V;
        for (int j = 0; j < i; j++) ok &= in[2 * j] != k && in[2 * j + 1] != v; /* distinct */
    }
    for (int p = 0; p < L; p++) {
        if (lab[p] == -100) continue;
        nlab++;
        ok &= p >= C && (p - C) % 2 == 0; /* queries at even offsets of the query region */
        int found = 0;                   /* the label is the value paired with the queried key */
        for (int i = 0; i < K; i++)
            if (in[2 * i] == in[p]) found = 1, ok &= lab[p] == in[2 * i + 1];
        ok &= found;
    }
    return ok && nlab == K;
}

static void generator(void) {
    TaskCfg t = {.name = "mqar", .vocab_size = 8192, .seq_len = 64, .kv_pairs = 4};
    CHECK(task_resolve(&t) == 0, "resolve: %s", eid_last_error());
    int in[64], lab[64], in2[64], lab2[64], bad = 0;
    for (int j = 0; j < 500; j++) {
        task_example(&t, 1, STREAM_TRAIN, j, in, lab);
        bad += !check_example(&t, in, lab);
    }
    CHECK(bad == 0, "%d of 500 examples break the MQAR layout", bad);
    task_example(&t, 1, STREAM_TRAIN, 7, in, lab);
    task_example(&t, 1, STREAM_TRAIN, 7, in2, lab2);
    CHECK(!memcmp(in, in2, sizeof in) && !memcmp(lab, lab2, sizeof lab), "same seed and index must repeat");
    task_example(&t, 1, STREAM_TEST, 7, in2, lab2);
    CHECK(memcmp(in, in2, sizeof in) != 0, "train and test streams must differ");
    task_example(&t, 2, STREAM_TRAIN, 7, in2, lab2);
    CHECK(memcmp(in, in2, sizeof in) != 0, "different seeds must differ");
    /* batch == examples one by one, and wrap cycles a finite training set */
    int bin[3 * 64], blab[3 * 64];
    task_batch(&t, 1, STREAM_TRAIN, 6, 0, 3, bin, blab, NULL);
    CHECK(!memcmp(bin + 64, in, sizeof in), "task_batch must equal task_example");
    task_batch(&t, 1, STREAM_TRAIN, 9, 8, 3, bin, blab, NULL); /* indices 9,10,11 mod 8 = 1,2,3 */
    task_example(&t, 1, STREAM_TRAIN, 1, in2, lab2);
    CHECK(!memcmp(bin, in2, sizeof in2), "wrap must cycle example indices");
    /* test stream: no example equal to any of the first train examples (disjoint streams) */
    int same = 0;
    for (int j = 0; j < 200; j++) {
        task_example(&t, 1, STREAM_TEST, j, in2, lab2);
        for (int i = 0; i < 200 && !same; i++) {
            task_example(&t, 1, STREAM_TRAIN, i, in, lab);
            same += !memcmp(in, in2, sizeof in);
        }
    }
    CHECK(same == 0, "a test example repeats a train example");
}

static void power_law_gaps(void) {
    /* a = 0.01 strongly favours short gaps: the first query slot is used far more than the last */
    TaskCfg t = {.name = "mqar", .vocab_size = 8192, .seq_len = 256, .kv_pairs = 4};
    task_resolve(&t);
    int in[256], lab[256], first = 0, last = 0, C = 8;
    for (int j = 0; j < 2000; j++) {
        task_example(&t, 3, STREAM_TRAIN, j, in, lab);
        first += lab[C] != -100;
        last += lab[254] != -100;
    }
    CHECK(first > 5 * (last + 1), "gap distribution not power-law: slot 0 used %d times, last slot %d", first, last);
}

static void random_fill(void) {
    TaskCfg t = {.name = "mqar", .vocab_size = 512, .seq_len = 64, .kv_pairs = 4, .random_non_queries = 1};
    task_resolve(&t);
    int in[64], lab[64], zeros = 0, labels = 0;
    for (int j = 0; j < 50; j++) {
        task_example(&t, 1, STREAM_TRAIN, j, in, lab);
        for (int p = 0; p < 64; p++) zeros += in[p] == 0, labels += lab[p] != -100;
    }
    CHECK(zeros < 50, "random_non_queries left %d zero fillers", zeros);
    CHECK(labels == 200, "random_non_queries changed the label count (%d)", labels);
}

static void bad_arguments(void) {
    TaskCfg t = {.name = "mqar", .vocab_size = 8192, .seq_len = 63, .kv_pairs = 4};
    CHECK(task_resolve(&t) != 0 && strstr(eid_last_error(), "--seq-len"), "odd length must be rejected naming --seq-len");
    TaskCfg t2 = {.name = "mqar", .vocab_size = 8192, .seq_len = 64, .kv_pairs = 20};
    CHECK(task_resolve(&t2) != 0 && strstr(eid_last_error(), "--kv-pairs"), "too many pairs must be rejected");
    TaskCfg t3 = {.name = "mqar", .vocab_size = 60, .seq_len = 64, .kv_pairs = 4};
    CHECK(task_resolve(&t3) != 0 && strstr(eid_last_error(), "--vocab"), "vocab <= L must be rejected");
    TaskCfg t4 = {.name = "nope", .vocab_size = 8192, .seq_len = 64, .kv_pairs = 4};
    CHECK(task_resolve(&t4) != 0 && strstr(eid_last_error(), "--task"), "unknown task must be rejected");
}

int main(void) {
    eid_runtime_setup(2, 0);
    worked_example();
    generator();
    power_law_gaps();
    random_fill();
    bad_arguments();
    return t_summary("test_mqar");
}
