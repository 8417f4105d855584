/* test_train.c — training smoke tests: a tiny model overfits one fixed batch; the learning-rate
 * schedule and gradient clipping behave as documented. */
#include "core/runtime.h"
#include "model_util.h"
#include "tasks/task.h"
#include "train/optim.h"

static void overfit_one_batch(const char *layers) {
    TaskCfg t = {.name = "mqar", .vocab_size = 64, .seq_len = 16, .kv_pairs = 2};
    task_resolve(&t);
    const int B = 4, L = 16;
    int in[B * L], lab[B * L];
    task_batch(&t, 1, STREAM_TRAIN, 0, 0, B, in, lab);
    Model *m = tiny_model(layers, 64, 16, 0, 1, 0, 3);
    OptimCfg oc = {.lr = 1e-2, .min_lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .total_steps = 300};
    AdamW o;
    adamw_init(&o, m);
    model_plan(m, B, L, B * L);
    Batch b = {in, lab, NULL, B, L};
    LossOut lo, first = {0};
    for (int s = 0; s < 300; s++) {
        model_zero_grad(m);
        model_trunk_forward(m, in, NULL, B, L);
        model_loss(m, &b, &lo);
        if (s == 0) first = lo;
        model_backward(m, &b);
        adamw_step(&o, m, &oc, oc.lr, 1);
    }
    CHECK(lo.loss < 0.05 * first.loss, "[%s] did not overfit one batch: loss %.4f -> %.4f", layers, first.loss, lo.loss);
    CHECK(lo.accuracy == 1.0, "[%s] accuracy on the memorised batch %.3f", layers, lo.accuracy);
    adamw_free(&o);
    model_free(m);
}

static void schedule(void) {
    OptimCfg c = {.lr = 1.0, .min_lr = 0.1, .warmup = 10, .total_steps = 110};
    CHECK(fabs(lr_at(&c, 0) - 0.1) < 1e-12, "warm-up starts at lr/warmup");
    CHECK(fabs(lr_at(&c, 9) - 1.0) < 1e-12, "warm-up ends at lr");
    CHECK(fabs(lr_at(&c, 60) - 0.55) < 1e-12, "cosine midpoint is (lr+min)/2: %g", lr_at(&c, 60));
    CHECK(fabs(lr_at(&c, 110) - 0.1) < 1e-12, "cosine ends at min_lr");
}

/* no weight decay on parameters flagged decay = 0 (norms, biases, D) */
static void decay_mask(void) {
    Model *m = tiny_model("longhorn", 16, 8, 0, 1, 0, 1);
    AdamW o;
    adamw_init(&o, m);
    model_zero_grad(m);
    real *before = eid_xmalloc(sizeof(real) * m->n_reals);
    memcpy(before, m->w, sizeof(real) * m->n_reals);
    OptimCfg c = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.5};
    adamw_step(&o, m, &c, 0.1, 1); /* zero gradients: only decay moves weights */
    int bad = 0;
    for (int j = 0; j < m->nparam; j++) {
        const ParamEntry *p = &m->param[j];
        real w0 = before[p->offset], w1 = m->w[p->offset];
        int nodecay = strstr(p->name, "norm") || strstr(p->name, "bias") || strstr(p->name, ".D");
        if (nodecay ? w1 != w0 : fabs(w1 - 0.95 * w0) > 1e-12 * fabs(w0)) bad++, fprintf(stderr, "  decay wrong on %s\n", p->name);
    }
    CHECK(bad == 0, "%d tensors decayed wrongly", bad);
    free(before);
    adamw_free(&o);
    model_free(m);
}

int main(void) {
    eid_runtime_init(NULL, 2, 0);
    overfit_one_batch("longhorn,longhorn");
    schedule();
    decay_mask();
    return t_summary("test_train");
}
