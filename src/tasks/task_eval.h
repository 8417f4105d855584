/* task_eval.h — evaluate a model on a task's test stream with the task's scorer (docs/tasks.md per task).
 * Shared by the trainer's periodic evaluation and `eidetic eval`. */
#ifndef EIDETIC_TASK_EVAL_H
#define EIDETIC_TASK_EVAL_H
#include "model/model.h"
#include "tasks/task.h"

typedef struct {
    double accuracy;  /* the task's metric (task_score_name): mean over examples, or class-macro for MAD */
    double loss;      /* mean over examples of the batch mean cross-entropy, teacher-forced */
    double token_acc; /* teacher-forced: mean over examples of the fraction of correct labelled positions */
    double exact;     /* teacher-forced: fraction of examples with every labelled position correct */
    double macro;     /* teacher-forced: accuracy per target class, averaged over the classes that occur */
    double digit_tf;  /* digit tasks: teacher-forced digit accuracy (−1 otherwise) */
    long examples;
    int n_slices;     /* mqar-mix: per test slice */
    double slice_acc[TASK_MAX_SLICES];
} TaskEval;

/* n test examples (per slice for mqar-mix) in batches of `batch`; plans the model for it. Digit
 * accuracy (phone book) decodes greedily with the model's Decoder. */
int task_evaluate(Model *m, const TaskCfg *t, uint64_t seed, int n, int batch, TaskEval *out);

/* Greedy digit accuracy of one batch (exposed for tests): for example b the prompt is inputs up to
 * its first labelled position, the target its contiguous labels from there; generation stops at
 * the task's EOS or after the target's length. acc[b] = matching digit positions / target digits
 * (−1 when the target has no digit). */
void task_greedy_digits(Model *m, const TaskCfg *t, const int *inputs, const int *labels, int B, double *acc);

#endif
