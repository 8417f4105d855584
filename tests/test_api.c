/* test_api.c — the public library API (include/eidetic.h): error codes and messages for bad input,
 * model information, logits against the recurrent decoder, prefill splits, training steps (loss
 * goes down; a non-finite step changes nothing), save/load round trip, the log callback. Uses the
 * public header only (and the engine's eid_log, to produce a log line). */
#include "eidetic.h"
#include <math.h>
#include <unistd.h>
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
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
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
        for (int b = 0; b < B; b++) worst = fmax(worst, max_diff(lg + b * V, par + ((size_t)b * T + t) * V, V));
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
    return t_summary("test_api");
}
