/* bf16_check.c — build/tests/test_bf16, single precision only (the bf16 path does not exist in the fp64
 * test build): --precision bf16 against fp32 (docs/performance.md "Mixed precision").
 *
 * This runs on CPUs without native bf16 too: EIDETIC_BF16_EMULATE=1 makes oneDNN emulate it, with the
 * same arithmetic (bf16 operands, fp32 accumulation; not the same bits: another summation order).
 * Tolerances, and why:
 *  - one product: the operands are rounded to bf16 (8 significant bits, relative error ≤ 2⁻⁹ each) and
 *    accumulated in fp32, so against a double-precision product of the *rounded* operands the error is
 *    fp32 accumulation only: ≤ 1e-5 · Σ|a||b| here. Against the unrounded fp32 product it is up to
 *    2·2⁻⁹ ≈ 4e-3 · Σ|a||b| per element (checked to be of that order, so the test sees bf16 did run).
 *  - a whole model (every mixer, 2 blocks + MLP, d_model 32): every matrix product adds ≈ 2⁻⁸ of
 *    relative noise. Measured (2026-12-06): the largest logit error over the largest logit 0.8–2.1e-2
 *    (GLA highest: its gates pass through several products), the loss 1e-5–7e-5 relative, the
 *    gradient vector 0.8–4.1e-2 relative in norm. Tolerances 5e-2, 1e-3 and 0.1: about 2x the worst,
 *    far below what a wrong product gives (errors of order 1).
 */
#include <omp.h>
#include <stdlib.h>
#include "core/gemm_onednn.h"
#include "core/gemm_plan.h"
#include "core/runtime.h"
#include "model_util.h"

static void fill(float *x, size_t n, Rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(2 * rng_uniform(r) - 1);
}

/* element (i, j) of op(X) for X stored row-major with stride ld */
static float at(const float *X, int trans, int ld, int i, int j) { return trans ? X[(size_t)j * ld + i] : X[(size_t)i * ld + j]; }

/* Checks one eid_gemm call in bf16 mode against double-precision references over the rounded and the
 * unrounded operands; with mirror_b, B is a weight with a bf16 mirror (read as it is, or packed when
 * M <= EID_BF16_PACK_MAX_ROWS). */
static void check_product_ex(int ta, int tb, int M, int N, int K, float alpha, float beta, int pad, int mirror_b, Rng *r) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t b_len = (size_t)(tb ? N : K) * ldb;
    float *A = malloc(sizeof(float) * (size_t)(ta ? K : M) * lda), *B = malloc(sizeof(float) * b_len);
    float *C = malloc(sizeof(float) * (size_t)M * ldc), *C0 = malloc(sizeof(float) * (size_t)M * ldc);
    fill(A, (size_t)(ta ? K : M) * lda, r), fill(B, b_len, r), fill(C0, (size_t)M * ldc, r);
    memcpy(C, C0, sizeof(float) * (size_t)M * ldc);
    int packed0 = eid_bf16_packed_count();
    if (mirror_b) eid_bf16_mirror_sync(B, b_len);
    eid_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (mirror_b) {
        int want = M <= EID_BF16_PACK_MAX_ROWS;
        CHECK(eid_bf16_packed_count() == packed0 + want, "mirrored B, %d rows: %s packed copy (%d held, %d before)",
              M, want ? "one" : "no", eid_bf16_packed_count(), packed0);
        eid_bf16_mirror_drop(B);
        CHECK(eid_bf16_packed_count() == packed0, "dropping the mirror frees its packed copies");
    }
    double worst_rounded = 0, worst_exact = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s_round = 0, s_exact = 0, s_abs = 0;
            for (int k = 0; k < K; k++) {
                float a = at(A, ta, lda, i, k), b = at(B, tb, ldb, k, j);
                s_round += (double)eid_round_bf16(a) * eid_round_bf16(b);
                s_exact += (double)a * b;
                s_abs += fabs((double)a * b);
            }
            double c0 = C0[(size_t)i * ldc + j], got = C[(size_t)i * ldc + j];
            double scale = fabs(alpha) * s_abs + fabs(beta * c0) + 1e-30;
            double e_round = fabs(got - (alpha * s_round + beta * c0)) / scale;
            double e_exact = fabs(got - (alpha * s_exact + beta * c0)) / scale;
            if (e_round > worst_rounded) worst_rounded = e_round;
            if (e_exact > worst_exact) worst_exact = e_exact;
        }
    CHECK(worst_rounded <= 1e-5, "bf16 gemm ta=%d tb=%d %dx%dx%d alpha %g beta %g pad %d: error vs the rounded-operand "
          "product %.3g (tol 1e-5)", ta, tb, M, N, K, alpha, beta, pad, worst_rounded);
    /* the path really rounded to bf16: the error against the fp32 operands is of bf16's order */
    CHECK(worst_exact > 1e-4 && worst_exact < 1e-2, "bf16 gemm ta=%d tb=%d %dx%dx%d: error vs fp32 operands %.3g, "
          "expected bf16's order (1e-4..1e-2)", ta, tb, M, N, K, worst_exact);
    free(A), free(B), free(C), free(C0);
}

static void check_product(int ta, int tb, int M, int N, int K, float alpha, float beta, int pad, Rng *r) {
    check_product_ex(ta, tb, M, N, K, alpha, beta, pad, 0, r);
}

static void test_rounding(void) {
    CHECK(eid_round_bf16(1.0f) == 1.0f, "1 is a bf16");
    CHECK(eid_round_bf16(1.00390625f) == 1.0f, "1 + 2^-8 is a tie: to even (1)");
    CHECK(eid_round_bf16(1.01171875f) == 1.015625f, "1 + 3·2^-8 is a tie: to even (1 + 2^-6)");
    CHECK(eid_round_bf16(1.0048828125f) == 1.0078125f, "above the tie rounds up");
    CHECK(eid_round_bf16(-2.5f) == -2.5f, "exact negatives kept");
    CHECK(isinf(eid_round_bf16(INFINITY)) && eid_round_bf16(-INFINITY) < 0, "infinities kept");
    CHECK(isnan(eid_round_bf16(NAN)), "NaN stays NaN");
    CHECK(isinf(eid_round_bf16(3.4028235e38f)), "FLT_MAX rounds to infinity (nearest even)");
}

static void test_products(void) {
    Rng r;
    rng_init(&r, 7, 0);
    const int shapes[][3] = {{3, 5, 7}, {64, 48, 33}, {130, 97, 64}, {2, 300, 17}};
    const float alphas[] = {1.0f, 0.5f}, betas[] = {0.0f, 1.0f, 0.25f};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 3; b++)
                        check_product(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], alphas[a], betas[b], (s + ta) % 2 ? 3 : 0, &r);
}

/* Data-parallel shards call eid_gemm from a parallel region, concurrently: each thread's product must
 * be its own and whole. */
static void test_concurrent(void) {
    enum { M = 96, N = 80, K = 72 };
    Rng r;
    rng_init(&r, 9, 0);
    float *A = malloc(sizeof(float) * 2 * M * K), *B = malloc(sizeof(float) * 2 * K * N);
    float *C = calloc(2 * M * N, sizeof(float)), *ref = calloc(2 * M * N, sizeof(float));
    fill(A, 2 * M * K, &r), fill(B, 2 * K * N, &r);
    for (int t = 0; t < 2; t++) eid_gemm(0, 0, M, N, K, 1, A + t * M * K, K, B + t * K * N, N, 0, ref + t * M * N, N);
#pragma omp parallel for num_threads(2)
    for (int t = 0; t < 2; t++) eid_gemm(0, 0, M, N, K, 1, A + t * M * K, K, B + t * K * N, N, 0, C + t * M * N, N);
    CHECK(memcmp(C, ref, sizeof(float) * 2 * M * N) == 0, "bf16 products inside a parallel region equal those outside");
    free(A), free(B), free(C), free(ref);
}

/* A weight mirror gives the same bits as rounding per call (the same rounding, read from the copy),
 * for products and matrix-vector products; it follows a sync and is gone after a drop. */
static void test_mirror(void) {
    enum { M = 33, N = 40, K = 24 };
    Rng r;
    rng_init(&r, 11, 0);
    float *W = malloc(sizeof(float) * N * K), *X = malloc(sizeof(float) * M * K);
    float *c_plain = malloc(sizeof(float) * M * N), *c_mir = malloc(sizeof(float) * M * N);
    fill(W, N * K, &r), fill(X, M * K, &r);
    for (int rows = M; rows >= 1; rows -= M - 1) { /* a product, then one row (matrix-vector) */
        eid_gemm(0, 1, rows, N, K, 1, X, K, W, K, 0, c_plain, N);
        CHECK(!eid_bf16_is_mirrored(W), "no mirror before a sync");
        eid_bf16_mirror_sync(W, (size_t)N * K);
        CHECK(eid_bf16_is_mirrored(W + 5), "mirror after a sync");
        eid_gemm(0, 1, rows, N, K, 1, X, K, W, K, 0, c_mir, N);
        eid_bf16_mirror_drop(W);
        CHECK(!eid_bf16_is_mirrored(W), "no mirror after a drop");
        if (rows > 1)
            CHECK(memcmp(c_plain, c_mir, sizeof(float) * rows * N) == 0, "mirrored product equals per-call rounding");
        else /* the unmirrored one-row product is fp32 gemv: bf16's error of the order 1e-3 */
            CHECK(t_rel_err(c_mir, c_plain, N, 1e-3) < 2e-2 && t_rel_err(c_mir, c_plain, N, 1e-3) > 0,
                  "one-row product from the mirror is bf16 (rel err %.3g vs fp32 gemv)", t_rel_err(c_mir, c_plain, N, 1e-3));
    }
    /* a stale mirror is the writer's bug: after a sync the new values are used */
    eid_bf16_mirror_sync(W, (size_t)N * K);
    for (int i = 0; i < N * K; i++) W[i] = -W[i];
    eid_bf16_mirror_sync(W, (size_t)N * K);
    eid_gemm(0, 1, M, N, K, 1, X, K, W, K, 0, c_mir, N);
    eid_bf16_mirror_drop(W);
    eid_gemm(0, 1, M, N, K, 1, X, K, W, K, 0, c_plain, N);
    CHECK(memcmp(c_plain, c_mir, sizeof(float) * M * N) == 0, "a re-synced mirror holds the new weights");
    free(W), free(X), free(c_plain), free(c_mir);
}

/* Products with few rows read a mirrored weight from a packed copy (decoding): every layout and
 * alpha/beta against the references; more rows than EID_BF16_PACK_MAX_ROWS read the mirror as it is; a
 * re-sync replaces the packed copy (new weights are used); concurrent first uses make one copy. */
static void test_packed(void) {
    Rng r;
    rng_init(&r, 13, 0);
    const int shapes[][3] = {{1, 300, 40}, {4, 97, 64}, {EID_BF16_PACK_MAX_ROWS, 48, 33}, {EID_BF16_PACK_MAX_ROWS + 1, 40, 24}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                check_product_ex(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], s % 2 ? 0.5f : 1.0f, tb ? 0.25f : 0.0f,
                                 (int)(s + tb) % 2 ? 3 : 0, 1, &r);

    enum { N = 200, K = 48 };
    float *W = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * 2 * K), *y = malloc(sizeof(float) * 2 * N);
    float *ref = malloc(sizeof(float) * 2 * N);
    fill(W, N * K, &r), fill(x, 2 * K, &r);
    eid_bf16_mirror_sync(W, (size_t)N * K);
    eid_gemm(0, 1, 1, N, K, 1, x, K, W, K, 0, y, N);
    for (int i = 0; i < N * K; i++) W[i] = -W[i];
    eid_bf16_mirror_sync(W, (size_t)N * K);
    CHECK(eid_bf16_packed_count() == 0, "a re-sync forgets the packed copy (%d held)", eid_bf16_packed_count());
    eid_gemm(0, 1, 1, N, K, 1, x, K, W, K, 0, ref, N);
    int negated = 1;
    for (int j = 0; j < N; j++) negated &= ref[j] == -y[j];
    CHECK(negated, "after a re-sync the packed copy holds the new (negated) weights");
    /* two threads' first products of the same shape: one packed copy, both results whole */
    eid_bf16_mirror_sync(W, (size_t)N * K);
#pragma omp parallel for num_threads(2)
    for (int t = 0; t < 2; t++) eid_gemm(0, 1, 1, N, K, 1, x + t * K, K, W, K, 0, y + t * N, N);
    CHECK(eid_bf16_packed_count() == 1, "concurrent first uses make one packed copy (%d held)", eid_bf16_packed_count());
    eid_gemm(0, 1, 1, N, K, 1, x + K, K, W, K, 0, ref + N, N);
    /* natively the same bits; oneDNN's emulation splits K by team size, so: fp32 accumulation's order */
    CHECK(t_rel_err(y, ref, 2 * N, 1e-3) < 1e-5, "packed products in a parallel region equal those outside "
          "(rel err %.3g)", t_rel_err(y, ref, 2 * N, 1e-3));
    eid_bf16_mirror_drop(W);
    CHECK(eid_bf16_packed_count() == 0, "no packed copy after the drop");
    free(W), free(x), free(y), free(ref);
}

/* auto: bf16 only for few-row products of mirrored weights (decoding), the same bits as bf16 mode
 * there; every other product is fp32 OpenBLAS, bit for bit. */
static void test_auto(void) {
    enum { N = 96, K = 40, ROWS = EID_BF16_PACK_MAX_ROWS + 36 };
    Rng r;
    rng_init(&r, 17, 0);
    float *W = malloc(sizeof(float) * N * K), *X = malloc(sizeof(float) * ROWS * K);
    float *c32 = malloc(sizeof(float) * ROWS * N), *c16 = malloc(sizeof(float) * ROWS * N), *ca = malloc(sizeof(float) * ROWS * N);
    fill(W, N * K, &r), fill(X, ROWS * K, &r);
    for (int rows = 1; rows <= ROWS; rows += ROWS - 1) { /* one row (decoding), then many (prefill) */
        for (int mode = 0; mode < 3; mode++) {
            float *out = mode == 0 ? c32 : mode == 1 ? c16 : ca;
            eid_set_precision(mode == 0 ? EID_PREC_FP32 : mode == 1 ? EID_PREC_BF16 : EID_PREC_AUTO, 0);
            if (mode == 1) eid_bf16_mirror_sync(W, (size_t)N * K);
            if (mode == 2) eid_bf16_mirror_register(W, (size_t)N * K); /* as model_weights_changed does in auto */
            CHECK(eid_gemm_uses_bf16(rows, W) == (mode == 1 || (mode == 2 && rows <= EID_BF16_PACK_MAX_ROWS)),
                  "auto: eid_gemm_uses_bf16(%d rows) in mode %d", rows, mode);
            eid_gemm(0, 1, rows, N, K, 1, X, K, W, K, 0, out, N);
            if (mode) eid_bf16_mirror_drop(W);
        }
        size_t n = (size_t)rows * N;
        if (rows == 1)
            CHECK(memcmp(ca, c16, sizeof(float) * n) == 0 && memcmp(ca, c32, sizeof(float) * n) != 0,
                  "auto: a one-row product of a registered weight (packed from fp32) is the bf16 product "
                  "(packed from the bf16 copy): the same rounding");
        else
            CHECK(memcmp(ca, c32, sizeof(float) * n) == 0 && memcmp(ca, c16, sizeof(float) * n) != 0,
                  "auto: a %d-row product is the fp32 product", rows);
    }
    eid_set_precision(EID_PREC_AUTO, 0);
    CHECK(!eid_gemm_uses_bf16(1, W), "auto: a weight without a mirror stays fp32");
    /* a registered weight: known as a mirror, packed when used, re-registering forgets the copy */
    eid_bf16_mirror_register(W, (size_t)N * K);
    CHECK(eid_bf16_is_mirrored(W + 7) && eid_gemm_uses_bf16(1, W), "auto: a registered weight counts as mirrored");
    int held = eid_bf16_packed_count();
    eid_gemm(0, 1, 1, N, K, 1, X, K, W, K, 0, ca, N);
    CHECK(eid_bf16_packed_count() == held + 1, "auto: the first one-row product packs the registered weight");
    for (int i = 0; i < N * K; i++) W[i] = -W[i];
    eid_bf16_mirror_register(W, (size_t)N * K);
    CHECK(eid_bf16_packed_count() == held, "auto: re-registering drops the packed copy");
    eid_gemm(0, 1, 1, N, K, 1, X, K, W, K, 0, c16, N);
    int negated = 1;
    for (int j = 0; j < N; j++) negated &= c16[j] == -ca[j];
    CHECK(negated, "auto: after re-registering, the new (negated) weights are used");
    eid_bf16_mirror_drop(W);
    CHECK(eid_bf16_packed_count() == held && !eid_bf16_is_mirrored(W), "auto: the drop forgets the weight and its copy");
    CHECK(eid_precision() == EID_PREC_AUTO, "auto in effect (native or emulated)");
    CHECK(!strcmp(eid_precision_name(EID_PREC_AUTO), "auto") && eid_precision_parse("auto") == EID_PREC_AUTO, "auto's name");
    eid_set_precision(EID_PREC_BF16, 0);
    free(W), free(X), free(c32), free(c16), free(ca);
}

/* The bf16 decoder (it streams the mirror) against the fp32 parallel forward. */
static void test_decoder(const char *mixer) {
    const int V = 40, D = 32, T = 40;
    char layers[64];
    snprintf(layers, sizeof layers, "%s,%s", mixer, mixer);
    Model *m = tiny_model(layers, V, D, 48, 1, 16, 3);
    int tok[T];
    rand_tokens(tok, T, V, 4);
    model_plan(m, 1, T, T);
    eid_set_precision(EID_PREC_FP32, 0);
    model_trunk_forward(m, tok, NULL, 1, T);
    real *full = malloc(sizeof(real) * T * V), *dec = malloc(sizeof(real) * T * V);
    model_logits_all(m, full);
    eid_set_precision(EID_PREC_BF16, 0);
    Decoder *d = decoder_new(m, 1);
    CHECK(eid_bf16_is_mirrored(m->w), "%s: a bf16 decoder mirrors the weights", mixer);
    for (int t = 0; t < T; t++) memcpy(dec + (size_t)t * V, decoder_step(m, d, &tok[t]), sizeof(real) * V);
    double e = t_rel_err(dec, full, (size_t)T * V, 1e-3);
    CHECK(e < 5e-2 && e > 0, "%s: bf16 decoder vs fp32 forward: rel err %.3g (expected (0, 5e-2))", mixer, e);
    decoder_free(d);
    real *w = m->w;
    model_free(m);
    CHECK(!eid_bf16_is_mirrored(w), "%s: model_free drops the mirror", mixer);
    eid_set_precision(EID_PREC_FP32, 0);
    free(full), free(dec);
}

/* Logits, loss and every gradient of a small model, bf16 against fp32. */
static void test_model(const char *mixer) {
    const int V = 40, D = 32, B = 2, T = 48;
    char layers[64];
    snprintf(layers, sizeof layers, "%s,%s", mixer, mixer);
    Model *m = tiny_model(layers, V, D, 48, 0, 16, 5);
    int tok[B * T], lab[B * T];
    rand_tokens(tok, B * T, V, 1), rand_tokens(lab, B * T, V, 2);
    Batch b = {tok, lab, NULL, B, T, 0};
    model_plan(m, B, T, B * T);
    real *logit[2], *grad[2];
    double loss[2];
    for (int p = 0; p < 2; p++) {
        eid_set_precision(p ? EID_PREC_BF16 : EID_PREC_FP32, 0);
        model_zero_grad(m);
        LossOut lo;
        model_trunk_forward(m, tok, NULL, B, T);
        model_loss(m, &b, &lo);
        model_backward(m, &b);
        loss[p] = lo.loss;
        logit[p] = malloc(sizeof(real) * B * T * V);
        model_logits_all(m, logit[p]);
        grad[p] = malloc(sizeof(real) * m->n_reals);
        memcpy(grad[p], m->grad, sizeof(real) * m->n_reals);
    }
    eid_set_precision(EID_PREC_FP32, 0);
    double e_logit = t_rel_err(logit[1], logit[0], (size_t)B * T * V, 1e-3);
    double num = 0, den = 0;
    for (size_t i = 0; i < m->n_reals; i++) {
        double d = (double)grad[1][i] - grad[0][i];
        num += d * d, den += (double)grad[0][i] * grad[0][i];
    }
    double e_grad = sqrt(num / (den + 1e-30)), e_loss = fabs(loss[1] - loss[0]) / loss[0];
    printf("  %-10s bf16 vs fp32: logits %.2e, loss %.2e, gradient (norm) %.2e\n", mixer, e_logit, e_loss, e_grad);
    CHECK(e_logit < 5e-2, "%s: bf16 logits vs fp32: rel err %.3g (tol 5e-2)", mixer, e_logit);
    CHECK(e_loss < 1e-3, "%s: bf16 loss vs fp32: rel err %.3g (tol 1e-3)", mixer, e_loss);
    CHECK(e_grad < 0.1, "%s: bf16 gradient vs fp32: rel err in norm %.3g (tol 0.1)", mixer, e_grad);
    CHECK(e_logit > 0, "%s: bf16 changed the logits at all (the bf16 path ran)", mixer);
    for (int p = 0; p < 2; p++) free(logit[p]), free(grad[p]);
    model_free(m);
}

/* One model in bf16, planned with fp32 saved activations (p = 0) and with act16 (p = 1): logits,
 * gradients and planned bytes of each. */
typedef struct {
    real *logit[2], *grad[2];
    size_t bytes[2], kept[2], zone[2]; /* the plan, its kept slices, its shared scratch zone */
    size_t saved16;                    /* bytes take_act16 registered (bf16 copies, aligned) */
    size_t saved_fp32;                 /* the same activations' bytes in fp32 (aligned) */
    int n_act16, n_mlp;
    int nested_more; /* sublayers whose count includes a wrapped layer's (B'MOJO) */
} Act16Runs;

static void act16_runs(Model *m, int B, int T, int V, Act16Runs *r) {
    int tok[B * T], lab[B * T];
    uint8_t flags[B * T]; /* a second segment in the first row, a PAD token in the second */
    rand_tokens(tok, B * T, V, 1), rand_tokens(lab, B * T, V, 2);
    memset(flags, 0, sizeof flags);
    flags[0] = flags[T / 2] = flags[T] = FLAG_SEG_START, flags[T + 5] = FLAG_PAD, lab[T + 5] = -100;
    Batch b = {tok, lab, flags, B, T, 0};
    eid_set_precision(EID_PREC_BF16, 0);
    r->n_act16 = r->n_mlp = r->nested_more = 0, r->saved16 = r->saved_fp32 = 0;
    for (int p = 0; p < 2; p++) {
        m->act16_off = !p;
        if (model_plan(m, B, T, B * T) != 0) CHECK(0, "plan failed: %s", eid_last_error());
        r->bytes[p] = model_act_bytes(m), r->kept[p] = m->act.scratch_off, r->zone[p] = m->act.scratch_max;
        for (int s = 0; s < m->n_sub; s++) {
            const Layer *l = &m->sub[s].op;
            r->n_act16 += p && l->act16, r->n_mlp += p && l->ops == &mlp_ops;
            CHECK(p || l->n_saved16 == 0, "%s: without act16 nothing is registered in bf16", l->ops->name);
            CHECK(p || l->act16_kept + l->act16_kept_fp32 == 0, "%s: without act16 no bf16 bytes are counted", l->ops->name);
            size_t own16 = 0, own32 = 0; /* this layer's registrations; a wrapper's count adds its sublayer's */
            for (int i = 0; p && i < l->n_saved16; i++)
                own16 += EID_CDIV(l->saved16[i].n * 2, EID_ALIGN) * EID_ALIGN,
                    own32 += EID_CDIV(l->saved16[i].n * 4, EID_ALIGN) * EID_ALIGN;
            CHECK(!p || (l->act16_kept >= own16 && l->act16_kept_fp32 >= own32), "%s: act16 byte count below its own registrations",
                  l->ops->name);
            r->saved16 += p ? l->act16_kept : 0, r->saved_fp32 += p ? l->act16_kept_fp32 : 0;
            r->nested_more += p && l->act16_kept > own16;
        }
        model_zero_grad(m);
        LossOut lo;
        model_trunk_forward(m, tok, flags, B, T);
        model_loss(m, &b, &lo);
        model_backward(m, &b);
        r->logit[p] = malloc(sizeof(real) * B * T * V);
        model_logits_all(m, r->logit[p]);
        r->grad[p] = malloc(sizeof(real) * m->n_reals);
        memcpy(r->grad[p], m->grad, sizeof(real) * m->n_reals);
    }
    m->act16_off = 0;
    eid_set_precision(EID_PREC_FP32, 0);
}

static void act16_free(Act16Runs *r) {
    for (int p = 0; p < 2; p++) free(r->logit[p]), free(r->grad[p]);
}

/* Relative error in norm of act16's gradient against fp32 saved activations' (both bf16 products);
 * *down_diff: Σ|diff| over the last MLP's down_proj gradient. */
static double act16_grad_err(const Model *m, const Act16Runs *r, double *down_diff) {
    double num = 0, den = 0;
    *down_diff = 0;
    for (int j = 0; j < m->nparam; j++) {
        const ParamEntry *pe = &m->param[j];
        int is_down = strstr(pe->name, "mlp.down_proj.weight") != NULL && pe->layer == m->sub_block[m->n_sub - 1];
        for (size_t i = pe->offset; i < pe->offset + pe->numel; i++) {
            double d = (double)r->grad[1][i] - r->grad[0][i];
            if (is_down) *down_diff += fabs(d);
            num += d * d, den += (double)r->grad[0][i] * r->grad[0][i];
        }
    }
    return sqrt(num / (den + 1e-30));
}

/* Activations saved in bf16 for backward (Layer.act16, planned under --precision bf16) against the
 * same bf16 run with fp32 saved activations. The forward computes with the fp32 values either way, so
 * the outputs are bit for bit; backward reads the rounded copies (take_act16: the mixers' scan and
 * elementwise inputs; the MLP's gate and up), so the gradients move by that rounding — measured and
 * bounded at 2e-2, half what the bf16 products themselves move them against fp32 for GLA (measured
 * 0.8e-3-8.6e-3: docs/performance.md "Memory"). A second segment and a PAD token run through both.
 * The last MLP's down_proj gradient (a bf16 product of the
 * saved h whose dy is the same in both runs) stays bit for bit. Each registered activation keeps a
 * bf16 copy instead of an fp32 slice, its fp32 form moving to the shared scratch zone; each MLP keeps
 * gate, up and h in bf16 instead of gate and up in fp32. */
static void test_act16(const char *mixer) {
    const int V = 40, D = 32, B = 2, T = 48, F = 48;
    char layers[64];
    snprintf(layers, sizeof layers, "%s,%s", mixer, mixer);
    /* without MLPs */
    Model *m = tiny_model(layers, V, D, 0, 0, 16, 5);
    Act16Runs r;
    act16_runs(m, B, T, V, &r);
    CHECK(r.n_act16 == m->n_sub, "%s: every sublayer planned with act16 (%d of %d)", mixer, r.n_act16, m->n_sub);
    CHECK(r.saved16 > 0, "%s: the mixer keeps some activations in bf16", mixer);
    /* B'MOJO's count includes its inner SSM's registrations (layer_plan_nested), and only its */
    int nested = !strncmp(mixer, "bmojo", 5);
    CHECK(r.nested_more == (nested ? 2 : 0), "%s: %d sublayers count a wrapped layer's bf16 bytes (expected %d)", mixer,
          r.nested_more, nested ? 2 : 0);
    size_t own = r.saved_fp32 - r.saved16, less = r.kept[0] - r.kept[1];
    CHECK(less == own && r.zone[1] >= r.zone[0],
          "%s, no MLP: act16 keeps %zu bytes (scratch %zu), fp32 saved %zu (%zu); registered %zu in bf16 (%zu in fp32)",
          mixer, r.kept[1], r.zone[1], r.kept[0], r.zone[0], r.saved16, r.saved_fp32);
    CHECK(memcmp(r.logit[0], r.logit[1], sizeof(real) * B * T * V) == 0, "%s, no MLP: act16 leaves the outputs bit for bit", mixer);
    double dd, e = act16_grad_err(m, &r, &dd);
    printf("  %-10s act16 vs fp32 saved activations (both bf16 products), no MLP: gradient (norm) %.2e\n", mixer, e);
    CHECK(e > 0 && e < 2e-2, "%s, no MLP: act16 gradient vs fp32 saved activations: rel err in norm %.3g (expected (0, 2e-2))",
          mixer, e);
    act16_free(&r);
    model_free(m);
    /* with MLPs */
    m = tiny_model(layers, V, D, F, 0, 16, 5);
    act16_runs(m, B, T, V, &r);
    CHECK(r.n_mlp == 2, "%s: two MLPs planned with act16", mixer);
    /* each MLP keeps gate and up in fp32 (h recomputed), or gate, up and h in bf16 */
    size_t mf = (size_t)B * T * F, want = (size_t)r.n_mlp *
                (2 * EID_CDIV(mf * 4, EID_ALIGN) - 3 * EID_CDIV(mf * 2, EID_ALIGN)) * EID_ALIGN;
    want += r.saved_fp32 - r.saved16;
    CHECK(r.kept[0] - r.kept[1] == want, "%s: bf16 saved activations keep %zu bytes less (expected %zu)", mixer,
          r.kept[0] - r.kept[1], want);
    CHECK(memcmp(r.logit[0], r.logit[1], sizeof(real) * B * T * V) == 0, "%s: act16 leaves the outputs bit for bit", mixer);
    e = act16_grad_err(m, &r, &dd);
    printf("  %-10s act16 vs fp32 saved activations (both bf16 products): gradient (norm) %.2e, %zu bytes less\n",
           mixer, e, r.bytes[0] - r.bytes[1]);
    CHECK(dd == 0, "%s: act16: down_proj's gradient (from bf16 h) bit for bit (sum |diff| %.3g)", mixer, dd);
    CHECK(e > 0 && e < 2e-2, "%s: act16 gradient vs fp32 saved activations: rel err in norm %.3g (expected (0, 2e-2))", mixer, e);
    act16_free(&r);
    /* prefill (its own forward form, state carried, a PAD column) under act16: the same logits and
     * decode state bit for bit as without */
    int tok[B * T];
    uint8_t flags[B * T];
    rand_tokens(tok, B * T, V, 3);
    memset(flags, 0, sizeof flags);
    flags[0] = flags[T] = FLAG_SEG_START, flags[T + 5] = FLAG_PAD;
    real *pl[2], *st[2];
    size_t sf = 0;
    eid_set_precision(EID_PREC_BF16, 0);
    for (int p = 0; p < 2; p++) {
        m->act16_off = !p;
        Decoder *dec = decoder_new(m, B);
        model_prefill(m, dec, tok, flags, B, T);
        CHECK(m->sub[m->n_sub - 1].op.act16 == p, "%s: prefill planned with act16 = %d", mixer, p);
        pl[p] = malloc(sizeof(real) * B * T * V), model_prefill_logits_all(m, pl[p]);
        sf = dec->state_floats, st[p] = malloc(sizeof(real) * sf), memcpy(st[p], dec->state, sizeof(real) * sf);
        decoder_free(dec);
    }
    m->act16_off = 0;
    eid_set_precision(EID_PREC_FP32, 0);
    CHECK(memcmp(pl[0], pl[1], sizeof(real) * B * T * V) == 0 && memcmp(st[0], st[1], sizeof(real) * sf) == 0,
          "%s: prefill under act16: logits and state bit for bit", mixer);
    for (int p = 0; p < 2; p++) free(pl[p]), free(st[p]);
    model_free(m);
}

int main(void) {
    eid_runtime_setup(2, 0);
    setenv("EIDETIC_BF16_EMULATE", "1", 1); /* same arithmetic natively; this CPU may lack bf16 */
    test_rounding();
    CHECK(eid_set_precision(EID_PREC_BF16, 0) == EID_PREC_BF16, "bf16 mode available (native or emulated)");
    test_products();
    test_concurrent();
    test_mirror();
    test_packed();
    test_auto();
    for (int i = 0; i < layer_count(); i++) test_model(layer_at(i)->name);
    for (int i = 0; i < layer_count(); i++) test_act16(layer_at(i)->name);
    { /* a measured plan may run act16's products in fp32: no bf16 saved activations then; replanned back */
        Model *m = tiny_model("mamba", 40, 32, 48, 0, 16, 5);
        eid_set_precision(EID_PREC_BF16, 0);
        eid_gemm_plan_set_mode(EID_PLAN_MEASURE, 0);
        model_plan(m, 2, 16, 32);
        int with_plan = m->sub[0].op.act16 + m->sub[1].op.act16;
        eid_gemm_plan_set_mode(EID_PLAN_FIXED, 0);
        model_plan(m, 2, 16, 32);
        int fixed = m->sub[0].op.act16 + m->sub[1].op.act16;
        eid_set_precision(EID_PREC_FP32, 0);
        model_plan(m, 2, 16, 32);
        int fp32 = m->sub[0].op.act16 + m->sub[1].op.act16;
        CHECK(with_plan == 0 && fixed == 2 && fp32 == 0, "act16 only under bf16 with the fixed plan (measured plan %d, fixed %d, fp32 %d)",
              with_plan, fixed, fp32);
        eid_gemm_plan_clear();
        model_free(m);
    }
    for (int i = 0; i < layer_count(); i++) {
        eid_set_precision(EID_PREC_BF16, 0);
        test_decoder(layer_at(i)->name);
    }
    /* without the override a CPU lacking bf16 keeps fp32 */
    unsetenv("EIDETIC_BF16_EMULATE");
    int got = eid_set_precision(EID_PREC_BF16, 0);
    CHECK(got == (eid_bf16_native() ? EID_PREC_BF16 : EID_PREC_FP32), "fallback: bf16 only where the CPU has it");
    got = eid_set_precision(EID_PREC_AUTO, 0);
    CHECK(got == (eid_bf16_native() ? EID_PREC_AUTO : EID_PREC_FP32), "auto: fp32 where the CPU has no bf16");
    eid_set_precision(EID_PREC_FP32, 0);
    CHECK(eid_precision() == EID_PREC_FP32, "back to fp32");
    CHECK(eid_precision_parse("bf16") == EID_PREC_BF16 && eid_precision_parse("fp16") == -1, "names parsed");
    return t_summary("test_bf16");
}
