/* test_api.c — the public library API (include/eidetic.h): error codes and messages for bad input,
 * model information, logits against the recurrent decoder, prefill splits, training steps (loss
 * goes down; a non-finite step changes nothing), save/load round trip, the log callback. main()
 * uses the public header only (and the engine's eid_log, to produce a log line).
 *
 * test_tools_api(): the functions the tools (src/tools: bench, scorecard) are built on, each checked
 * against the engine function it wraps — registry, training configurations, models from them, state
 * sizes, task data, trainer steps with flags (bit for bit equal to train_step), FLOP counts and
 * planned memory, the matrix-product measurements. That part includes internal headers. */
#include "eidetic.h"
#include <math.h>
#include <unistd.h>
#include "core/runtime.h"
#include "data/source.h"
#include "io/checkpoint.h"
#include "layers/layer.h"
#include "model/model.h"
#include "train/optim.h"
#include "train/shards.h"
#include "train/train_cfg.h"
#include "train/trainer.h"
#include "testutil.h"

static const char *CONFIG =
    "{\"vocab_size\": 40, \"d_model\": 16, \"n_layer\": 3, \"d_ff\": 0, \"layers\": ["
    "{\"mixer\": \"longhorn\"}, {\"mixer\": \"mamba2\", \"d_ff\": 32}, {\"mixer\": \"gla\"}]}";

static int n_logged;
static char last_log[512];
static void on_log(int level, const char *msg, void *user) {
    (void)level;
    n_logged += *(int *)user;
    snprintf(last_log, sizeof last_log, "%s", msg);
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = t_worst(d, fabs((double)a[i] - b[i]));
    return d;
}

/* The engine's own TrainCfg for train flags, as `eidetic train` resolves them. */
static int internal_cfg(TrainCfg *c, int argc, char **argv) {
    return preset_apply(c, "default") || opts_parse(train_opts, n_train_opts, c, argc, argv, "train") ||
           train_cfg_resolve(c);
}

/* Logits of an internal model at every position, as floats (what the API returns). */
static void internal_logits(Model *m, const int *tok, int B, int T, float *out) {
    size_t n = (size_t)B * T * m->cfg.vocab_size;
    real *all = malloc(sizeof(real) * n);
    model_plan(m, B, T, 1);
    model_trunk_forward(m, tok, NULL, B, T);
    model_logits_all(m, all);
    for (size_t i = 0; i < n; i++) out[i] = (float)all[i];
    free(all);
}

static void test_tools_api(void) {
    /* process-wide */
    CHECK(eidetic_init_ex(2, 8) == EIDETIC_ERR_ARGUMENT, "init_ex: unknown flag refused");
    CHECK(eidetic_init_ex(2, 0) == EIDETIC_OK && eidetic_n_threads() == 2 && eid_threads() == 2, "threads");
    CHECK(!strcmp(eidetic_blas_core(), eid_blas_core()), "blas core");
    double g = -1;
    CHECK(eidetic_measure_gemm(64, 32, 16, 0, &g) == EIDETIC_OK && g > 0 && isfinite(g), "gemm GFLOP/s %g", g);
    CHECK(eidetic_measure_gemm(0, 32, 16, 0, &g) == EIDETIC_ERR_ARGUMENT && strstr(eidetic_last_error(), "M, N, K"),
          "gemm M = 0: %s", eidetic_last_error());
    CHECK(eidetic_measure_gemm(8, 8, 8, 0, NULL) == EIDETIC_ERR_ARGUMENT, "gemm NULL out");

    /* registry: the layers' own names and option bits, in registry order */
    CHECK(eidetic_mixer_count() == layer_count() && layer_count() >= 6, "mixer count %d", eidetic_mixer_count());
    for (int i = 0; i < layer_count(); i++) {
        CHECK(!strcmp(eidetic_mixer_name(i), layer_at(i)->name), "mixer %d name", i);
        CHECK(eidetic_mixer_options(i) == layer_at(i)->options, "mixer %s options", layer_at(i)->name);
        CHECK(eidetic_mixer_index(layer_at(i)->name) == i, "index of %s", layer_at(i)->name);
    }
    CHECK(eidetic_mixer_options(eidetic_mixer_index("swa")) & EIDETIC_MIXER_WINDOW, "swa has a window");
    CHECK(eidetic_mixer_options(eidetic_mixer_index("attn")) & EIDETIC_MIXER_KV_CACHE, "attn has a KV cache");
    CHECK(!(eidetic_mixer_options(eidetic_mixer_index("longhorn")) & (EIDETIC_MIXER_KV_CACHE | EIDETIC_MIXER_WINDOW)),
          "longhorn: neither");
    CHECK(eidetic_mixer_index("lstm") == -1 && eidetic_mixer_index(NULL) == -1 && eidetic_mixer_name(-1) == NULL &&
          eidetic_mixer_name(layer_count()) == NULL && eidetic_mixer_options(-1) == 0, "out of range");

    /* training configurations: what `eidetic train` resolves for the same flags */
    char *av[] = {"--layers", "mamba,attn", "--d-model", "32", "--task", "copy", "--vocab", "30", "--seq-len", "32",
                  "--min-len", "4", "--max-len", "12", "--batch", "8", "--steps", "7", "--eval-every", "5"};
    int ac = (int)(sizeof av / sizeof *av);
    eidetic_train_config *tc = NULL;
    CHECK(eidetic_train_config_from_args(ac, av, &tc) == EIDETIC_OK, "train config: %s", eidetic_last_error());
    TrainCfg ref;
    CHECK(internal_cfg(&ref, ac, av) == 0, "internal config");
    eidetic_train_info ti;
    CHECK(eidetic_train_config_info(tc, &ti) == EIDETIC_OK, "info");
    CHECK(!strcmp(ti.task, "copy") && ti.vocab_size == 30 && ti.seq_len == 32 && ti.batch == 8 && ti.steps == 7 &&
              ti.eval_every == 5, "info values: %s V%d L%d B%d", ti.task, ti.vocab_size, ti.seq_len, ti.batch);
    CHECK(ti.labels_per_example == task_labels_per_example(&ref.task) && ti.kv_pairs == ref.task.kv_pairs &&
              ti.eval_examples == ref.eval_examples && ti.target_acc == ref.target_acc,
          "info == the engine's TrainCfg (labels/example %d)", ti.labels_per_example);
    eidetic_train_config *bad = NULL;
    char *av_bad[] = {"--bogus", "1"};
    CHECK(eidetic_train_config_from_args(2, av_bad, &bad) == EIDETIC_ERR_ARGUMENT && !bad &&
              strstr(eidetic_last_error(), "unknown option --bogus"), "bad flag: %s", eidetic_last_error());
    char *av_kv[] = {"--seq-len", "16", "--kv-pairs", "40"};
    CHECK(eidetic_train_config_from_args(4, av_kv, &bad) == EIDETIC_ERR_ARGUMENT &&
              strstr(eidetic_last_error(), "--kv-pairs"), "bad value: %s", eidetic_last_error());
    char *av_res[] = {"--resume", "runs/x"};
    CHECK(eidetic_train_config_from_args(2, av_res, &bad) == EIDETIC_ERR_ARGUMENT, "--resume refused");

    /* a model of the configuration: the engine's model_new + model_init_params(seed), bit for bit */
    eidetic_model *m = NULL, *m0 = NULL;
    CHECK(eidetic_model_from_train_config(tc, 5, 0, &m) == EIDETIC_OK, "model from config: %s", eidetic_last_error());
    CHECK(eidetic_model_from_train_config(tc, 5, EIDETIC_MODEL_NO_INIT, &m0) == EIDETIC_OK, "model, no init");
    CHECK(eidetic_model_from_train_config(tc, 5, 2, &m0) == EIDETIC_ERR_ARGUMENT, "unknown model flag");
    Model *rm = model_new(&ref.model);
    model_init_params(rm, 5);
    enum { B = 2, T = 9 };
    int tok[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (i * 7 + 1) % 30;
    float *la = malloc(sizeof(float) * B * T * 30), *lb = malloc(sizeof(float) * B * T * 30);
    eidetic_model_logits(m, tok, B, T, la);
    internal_logits(rm, tok, B, T, lb);
    CHECK(!memcmp(la, lb, sizeof(float) * B * T * 30), "logits == the engine's model with the same seed");
    eidetic_model_logits(m0, tok, B, T, la);
    double zmax = 0;
    for (int i = 0; i < B * T * 30; i++) zmax = t_worst(zmax, fabs(la[i]));
    CHECK(zmax == 0, "NO_INIT: zero weights give zero logits (max %g)", zmax);
    CHECK(eidetic_model_n_params(m) == rm->n_weights && eidetic_model_n_params(m0) == rm->n_weights, "params");
    int S = eidetic_model_n_sublayers(m);
    CHECK(S == 2 && S == rm->n_sub, "sublayers %d", S);
    for (int s = 0; s < S; s++) {
        const Layer *l = &rm->sub[s].op;
        CHECK(eidetic_model_sublayer_options(m, s) == l->ops->options, "sublayer %d options", s);
        CHECK(eidetic_model_sublayer_zoology_floats(m, s, 32) == l->ops->zoology_state(l->cfg, 32, 32),
              "sublayer %d Zoology state", s);
        LayerCfg c = *l->cfg;
        c.max_len = 100;
        size_t want = (l->ops->options & LOPT_MAX_LEN) ? l->ops->state_size(&c, 32) : model_state_floats(rm, s);
        CHECK(eidetic_model_sublayer_state_floats_at(m, s, 100) == want, "sublayer %d state at 100 tokens: %zu vs %zu",
              s, eidetic_model_sublayer_state_floats_at(m, s, 100), want);
    }
    /* attn's cache grows with the context, mamba's state does not */
    size_t a1 = eidetic_model_sublayer_state_floats_at(m, 1, 100), a2 = eidetic_model_sublayer_state_floats_at(m, 1, 200),
           a3 = eidetic_model_sublayer_state_floats_at(m, 1, 300);
    CHECK(a2 > a1 && a3 - a2 == a2 - a1 &&
              eidetic_model_sublayer_state_floats_at(m, 0, 200) == eidetic_model_sublayer_state_floats(m, 0),
          "state at a context: KV cache grows, recurrent state fixed");
    CHECK(eidetic_model_sublayer_state_floats_at(m, 0, 0) == 0 && eidetic_model_sublayer_options(m, 9) == 0, "range");
    double gbs = -1;
    CHECK(eidetic_model_measure_gemv(m, 0, &gbs) == EIDETIC_OK && gbs > 0 && isfinite(gbs), "gemv GB/s %g", gbs);
    CHECK(eidetic_model_measure_gemv(m, -1, &gbs) == EIDETIC_ERR_ARGUMENT, "gemv: negative time");
    model_free(rm);
    eidetic_model_free(m), eidetic_model_free(m0);
    eidetic_train_config_free(tc);

    /* config check: eidetic_model_from_config's validation without a model */
    CHECK(eidetic_config_check(CONFIG) == EIDETIC_OK, "config check ok");
    CHECK(eidetic_config_check("{\"vocab_size\": 40, \"d_model\": 16, \"layers\": [{\"mixer\": \"lstm\"}]}") ==
              EIDETIC_ERR_LOAD && strstr(eidetic_last_error(), "lstm"), "config check: %s", eidetic_last_error());

    /* task data (MQAR, with flags) == the engine's source; a trainer step on it == train_step bit for bit */
    char *av_mq[] = {"--task", "mqar", "--vocab", "40", "--seq-len", "24", "--kv-pairs", "3"};
    CHECK(eidetic_train_config_from_args(8, av_mq, &tc) == EIDETIC_OK, "mqar config: %s", eidetic_last_error());
    CHECK(internal_cfg(&ref, 8, av_mq) == 0, "internal mqar config");
    enum { NB = 4, L = 24 };
    eidetic_data *data = NULL;
    CHECK(eidetic_data_from_train_config(tc, 9, &data) == EIDETIC_OK, "data");
    DataSource src;
    source_task_init(&src, &ref.task, 9, 0);
    int dt[2][NB * L], dl[2][NB * L], rt[NB * L], rl[NB * L];
    unsigned char df[2][NB * L];
    uint8_t rf[NB * L];
    for (int k = 0; k < 2; k++) {
        CHECK(eidetic_data_next(data, NB, dt[k], dl[k], df[k]) == EIDETIC_OK, "data next");
        source_next(&src, NB, rt, rl, rf);
        CHECK(!memcmp(dt[k], rt, sizeof rt) && !memcmp(dl[k], rl, sizeof rl) && !memcmp(df[k], rf, sizeof rf),
              "batch %d == the engine's source", k);
    }
    CHECK(df[0][0] & EIDETIC_FLAG_SEG_START, "first token starts a segment");
    CHECK(eidetic_data_next(data, 0, rt, rl, NULL) == EIDETIC_ERR_ARGUMENT, "data: n_seq 0");
    eidetic_data_free(data);

    const char *cfg = "{\"vocab_size\": 40, \"d_model\": 16, \"layers\": [{\"mixer\": \"longhorn\"}, {\"mixer\": \"swa\", \"window\": 8}]}";
    CHECK(eidetic_model_from_config(cfg, 3, &m) == EIDETIC_OK, "trainer model");
    ModelCfg mc;
    config_from_json(cfg, "cfg", &mc);
    rm = model_new(&mc);
    model_init_params(rm, 3);
    eidetic_trainer_params p = eidetic_trainer_default_params();
    p.lr = 3e-3, p.shards = 2;
    eidetic_trainer *tr = NULL;
    CHECK(eidetic_trainer_new(m, &p, &tr) == EIDETIC_OK, "trainer");
    eidetic_trainer_info info;
    CHECK(eidetic_trainer_get_info(tr, &info) == EIDETIC_OK && info.shards == 0 && info.activation_bytes == 0 &&
              info.state_bytes == 4 * sizeof(real) * rm->n_reals, "info before the first step");
    AdamW opt;
    adamw_init(&opt, rm);
    Shards sh;
    shards_init(&sh, rm, 2);
    shards_plan(&sh, NB, L, task_labels_per_example(&ref.task));
    OptimCfg oc = {.lr = p.lr, .min_lr = p.lr, .beta1 = p.beta1, .beta2 = p.beta2, .eps = p.eps,
                   .weight_decay = p.weight_decay, .grad_clip = p.grad_clip};
    int same = 1;
    for (int k = 0; k < 3; k++) {
        eidetic_batch b = {dt[k % 2], dl[k % 2], df[k % 2], NB, L};
        eidetic_step_result r;
        CHECK(eidetic_trainer_step_batch(tr, &b, &r) == EIDETIC_OK, "step %d: %s", k, eidetic_last_error());
        Batch rb = {dt[k % 2], dl[k % 2], df[k % 2], NB, L, 0};
        StepOut so;
        uint64_t f0 = eid_gemm_flops();
        CHECK(train_step(&sh, &opt, &oc, opt.t, &rb, 0, NULL, NULL, &so) == STEP_OK, "train_step %d", k);
        double flops = (double)(eid_gemm_flops() - f0);
        same &= r.loss == so.loss && r.grad_norm == so.grad_norm && r.n_labels == so.n_labels;
        CHECK(r.flops == flops && flops > 0, "step %d FLOPs %g == train_step's %g", k, r.flops, flops);
        CHECK(r.n_labels == NB * 3, "MQAR K=3: %d labels", r.n_labels);
    }
    CHECK(same, "loss, gradient norm, labels == train_step's, bit for bit");
    free(la), free(lb); /* vocabulary 40 now */
    la = malloc(sizeof(float) * B * T * 40), lb = malloc(sizeof(float) * B * T * 40);
    eidetic_model_logits(m, tok, B, T, la);
    internal_logits(rm, tok, B, T, lb);
    CHECK(!memcmp(la, lb, sizeof(float) * B * T * 40), "weights after 3 steps == train_step's, bit for bit");
    CHECK(eidetic_trainer_get_info(tr, &info) == EIDETIC_OK && info.shards == 2 &&
              info.activation_bytes == shards_bytes(&sh) && info.state_bytes == 4 * sizeof(real) * rm->n_reals,
          "planned memory == the engine's shards (%zu bytes)", info.activation_bytes);
    unsigned char bad_flags[NB * L];
    memcpy(bad_flags, df[0], sizeof bad_flags);
    bad_flags[5] = 0x80;
    eidetic_batch bb = {dt[0], dl[0], bad_flags, NB, L};
    CHECK(eidetic_trainer_step_batch(tr, &bb, NULL) == EIDETIC_ERR_ARGUMENT && strstr(eidetic_last_error(), "flags[5]"),
          "unknown flag bits: %s", eidetic_last_error());
    CHECK(eidetic_trainer_step_batch(tr, NULL, NULL) == EIDETIC_ERR_ARGUMENT, "NULL batch");
    shards_free(&sh);
    adamw_free(&opt);
    model_free(rm);
    eidetic_trainer_free(tr);
    eidetic_model_free(m);
    eidetic_train_config_free(tc);
    free(la), free(lb);
}

int main(void) {
    CHECK(eidetic_init(2) == EIDETIC_OK, "init");
    CHECK(!strcmp(eidetic_status_name(EIDETIC_ERR_RANGE), "range"), "status name");

    /* errors: codes and messages naming what was wrong */
    eidetic_model *m = NULL;
    CHECK(eidetic_model_load("/nonexistent/ckpt", &m) == EIDETIC_ERR_LOAD && !m, "missing checkpoint");
    CHECK(strstr(eidetic_last_error(), "/nonexistent/ckpt") != NULL, "message names the directory: %s",
          eidetic_last_error());
    CHECK(eidetic_model_load(NULL, &m) == EIDETIC_ERR_ARGUMENT, "NULL dir");
    CHECK(eidetic_model_from_config("{\"vocab_size\": 40", 1, &m) == EIDETIC_ERR_LOAD, "broken JSON");
    CHECK(eidetic_model_from_config(CONFIG, 7, &m) == EIDETIC_OK, "from config: %s", eidetic_last_error());
    CHECK(eidetic_last_error()[0] == 0, "no message after success");
    if (!m) return t_summary("test_api");

    /* information */
    int V = eidetic_model_vocab_size(m), S = eidetic_model_n_sublayers(m);
    CHECK(V == 40 && eidetic_model_d_model(m) == 16 && eidetic_model_max_positions(m) == 0, "sizes");
    CHECK(S == 4, "sublayers: 3 mixers + 1 MLP, got %d", S);
    CHECK(!strcmp(eidetic_model_sublayer_kind(m, 0), "longhorn") && !strcmp(eidetic_model_sublayer_kind(m, 2), "swiglu"),
          "kinds");
    CHECK(eidetic_model_sublayer_block(m, 2) == 1 && eidetic_model_sublayer_block(m, 3) == 2, "blocks");
    CHECK(eidetic_model_sublayer_kind(m, 4) == NULL && eidetic_model_sublayer_state_floats(m, -1) == 0, "out of range");
    size_t total = 16 * 40 + 16; /* tied embedding + final norm */
    for (int i = 0; i < S; i++) total += eidetic_model_sublayer_n_params(m, i);
    CHECK(total == eidetic_model_n_params(m), "sublayer params + embedding + final norm = %zu, total %zu", total,
          eidetic_model_n_params(m));
    CHECK(eidetic_model_sublayer_state_floats(m, 0) > 0 && eidetic_model_sublayer_state_floats(m, 2) == 0, "state sizes");

    /* logits of a batch == the recurrent decoder, stepping or prefilling in any split */
    enum { B = 2, T = 11 };
    int tok[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (i * 17 + 3) % V;
    float *par = malloc(sizeof(float) * B * T * V), *lg = malloc(sizeof(float) * B * V), *lg2 = malloc(sizeof(float) * B * V);
    CHECK(eidetic_model_logits(m, tok, B, T, par) == EIDETIC_OK, "logits");
    eidetic_decoder *d = NULL, *d2 = NULL;
    CHECK(eidetic_decoder_new(m, B, &d) == EIDETIC_OK && eidetic_decoder_new(m, B, &d2) == EIDETIC_OK, "decoders");
    double worst = 0;
    for (int t = 0; t < T; t++) {
        int col[B] = {tok[t], tok[T + t]};
        eidetic_decoder_step(d, col, lg);
        for (int b = 0; b < B; b++) worst = t_worst(worst, max_diff(lg + b * V, par + ((size_t)b * T + t) * V, V));
    }
    CHECK(worst < 1e-9, "recurrent step == parallel logits (max diff %g)", worst);
    CHECK(eidetic_decoder_position(d) == T, "position");
    /* prefill(first 4) then prefill(last 7) == the stepped state: same next-token logits */
    int a[B * 4], c[B * 7];
    for (int b = 0; b < B; b++) memcpy(a + b * 4, tok + b * T, sizeof(int) * 4), memcpy(c + b * 7, tok + b * T + 4, sizeof(int) * 7);
    CHECK(eidetic_decoder_prefill(d2, a, 4, NULL) == EIDETIC_OK && eidetic_decoder_prefill(d2, c, 7, lg2) == EIDETIC_OK, "prefill");
    CHECK(max_diff(lg, lg2, B * V) == 0, "prefill(p1) prefill(p2) == stepping");
    int next[B] = {1, 2};
    eidetic_decoder_step(d, next, lg), eidetic_decoder_step(d2, next, lg2);
    CHECK(max_diff(lg, lg2, B * V) == 0, "next step after prefill == after stepping");
    eidetic_decoder_reset(d2);
    CHECK(eidetic_decoder_position(d2) == 0, "reset");
    int bad[B] = {1, 40};
    CHECK(eidetic_decoder_step(d2, bad, lg2) == EIDETIC_ERR_ARGUMENT && strstr(eidetic_last_error(), "40"),
          "token outside the vocabulary: %s", eidetic_last_error());
    CHECK(eidetic_decoder_position(d2) == 0, "a refused token is not consumed");
    CHECK(eidetic_model_logits(m, tok, 0, T, par) == EIDETIC_ERR_ARGUMENT, "n_seq 0");
    /* per-token flags: a causal model ignores the prompt (no CAUSAL on the first 5 tokens); other bits refused */
    unsigned char fl[B * T];
    for (int i = 0; i < B * T; i++) fl[i] = (i % T == 0 ? EIDETIC_FLAG_SEG_START : 0) | (i % T >= 5 ? EIDETIC_FLAG_CAUSAL : 0);
    float *pf = malloc(sizeof(float) * B * T * V);
    CHECK(eidetic_model_logits(m, tok, B, T, par) == EIDETIC_OK &&
          eidetic_model_logits_flags(m, tok, fl, B, T, pf) == EIDETIC_OK && max_diff(pf, par, (size_t)B * T * V) == 0,
          "a causal model's logits do not depend on the prompt flags");
    fl[3] |= 0x10;
    CHECK(eidetic_model_logits_flags(m, tok, fl, B, T, pf) == EIDETIC_ERR_ARGUMENT && strstr(eidetic_last_error(), "flags[3]"),
          "flag bits other than EIDETIC_FLAG_* refused: %s", eidetic_last_error());
    CHECK(eidetic_decoder_prefill_all_flags(d2, tok, fl, T, pf) == EIDETIC_ERR_ARGUMENT && eidetic_decoder_position(d2) == 0,
          "prefill with bad flag bits refused, nothing consumed");
    CHECK(eidetic_decoder_prefill_all_flags(d2, tok, NULL, T, NULL) == EIDETIC_ERR_ARGUMENT, "prefill_all_flags: NULL logits");
    free(pf);
    CHECK(eidetic_decoder_step(NULL, bad, lg2) == EIDETIC_ERR_ARGUMENT, "NULL decoder");
    eidetic_decoder_free(d), eidetic_decoder_free(d2);

    /* training: loss goes down on a repeated batch; NaN lr is refused; a diverging step changes nothing */
    int lab[B * T];
    for (int i = 0; i < B * T; i++) lab[i] = i % 3 ? tok[(i * 5) % (B * T)] : EIDETIC_NO_LABEL;
    eidetic_trainer_params p = eidetic_trainer_default_params();
    p.lr = 1e-2;
    eidetic_trainer *tr = NULL;
    CHECK(eidetic_trainer_new(m, &p, &tr) == EIDETIC_OK, "trainer");
    eidetic_step_result r0, r;
    CHECK(eidetic_trainer_step(tr, tok, lab, B, T, &r0) == EIDETIC_OK, "step: %s", eidetic_last_error());
    CHECK(r0.n_labels == (B * T) - (B * T + 2) / 3 && r0.loss > 0 && r0.grad_norm > 0, "step result: %d labels",
          r0.n_labels);
    for (int s = 0; s < 30; s++) eidetic_trainer_step(tr, tok, lab, B, T, &r);
    CHECK(r.loss < 0.5 * r0.loss, "loss %g -> %g", r0.loss, r.loss);
    lab[0] = 40;
    CHECK(eidetic_trainer_step(tr, tok, lab, B, T, &r) == EIDETIC_ERR_ARGUMENT && strstr(eidetic_last_error(), "label 40"),
          "bad label: %s", eidetic_last_error());
    lab[0] = EIDETIC_NO_LABEL;
    CHECK(eidetic_trainer_set_lr(tr, NAN) == EIDETIC_ERR_ARGUMENT, "NaN lr");
    float *before = malloc(sizeof(float) * B * T * V), *after = malloc(sizeof(float) * B * T * V);
    eidetic_model_logits(m, tok, B, T, before);
    eidetic_trainer_set_lr(tr, 1e30);
    int diverged = 0;
    for (int s = 0; s < 5 && !diverged; s++) {
        eidetic_model_logits(m, tok, B, T, before);
        eidetic_status st = eidetic_trainer_step(tr, tok, lab, B, T, &r);
        diverged = st == EIDETIC_ERR_NUMERIC;
        CHECK(st == EIDETIC_OK || diverged, "huge lr: ok or numeric, got %d", st);
    }
    CHECK(diverged, "lr 1e30 diverges within 5 steps");
    eidetic_model_logits(m, tok, B, T, after);
    CHECK(!memcmp(before, after, sizeof(float) * B * T * V), "a non-finite step leaves the weights unchanged");
    eidetic_trainer_free(tr);

    /* save / load round trip; the log callback receives log lines */
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/eidetic_test_api_%d", (int)getpid());
    CHECK(eidetic_model_save(m, dir, 12) == EIDETIC_OK, "save: %s", eidetic_last_error());
    eidetic_model *m2 = NULL;
    CHECK(eidetic_model_load(dir, &m2) == EIDETIC_OK, "load: %s", eidetic_last_error());
    if (m2) {
        eidetic_model_logits(m2, tok, B, T, after);
        eidetic_model_logits(m, tok, B, T, before);
        CHECK(max_diff(before, after, B * T * V) < 1e-5, "reloaded logits (F32 on disk)");
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    int one = 1;
    eidetic_set_log_callback(on_log, &one);
    eid_log("checkpoint: %s (step %d)", "x", 3); /* what the library logs goes to the callback, not stderr */
    eidetic_set_log_callback(NULL, NULL);
    CHECK(n_logged == 1 && !strcmp(last_log, "checkpoint: x (step 3)"), "log callback: %d lines, '%s'", n_logged,
          last_log);
    eidetic_model_free(m2), eidetic_model_free(m);
    free(par), free(lg), free(lg2), free(before), free(after);
    test_tools_api();
    return t_summary("test_api");
}
