/* gemm_plan_check.c — build/tests/test_gemm_plan, single precision only (the fp64 test build has no
 * oneDNN path): the per-shape library plan of eid_gemm (core/gemm_plan.h, io/gemm_plan_file.h;
 * docs/performance.md "Choosing the library per shape").
 *
 *  - oneDNN's fp32 matmul against a double-precision product, every transpose / alpha / beta / stride
 *    combination and the matrix-vector shapes: ≤ 1e-5 of Σ|a·b| (fp32 accumulation).
 *  - fixed mode records nothing and gives OpenBLAS's bits; measure mode plans a shape once (the
 *    entry names its candidates' times), leaves the caller's C as the chosen library alone makes it
 *    (the measurement writes a scratch copy), and a replayed entry forces its library: the result's
 *    bits equal that library called directly (and differ between the two libraries on a shape where
 *    they round differently, so the check can see a plan that is ignored).
 *  - the plan file: written and read back to the same table; every malformed form refused with a
 *    message naming the file and the entry; a bad file adds nothing.
 *  - the bf16 candidates (EIDETIC_BF16_EMULATE=1): in bf16 mode a forced onednn-bf16 entry gives bf16
 *    bits, a forced openblas entry fp32 bits. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include "core/gemm_onednn.h"
#include "core/gemm_plan.h"
#include "core/runtime.h"
#include "io/gemm_plan_file.h"
#include "testutil.h"

static float at(const float *X, int trans, int ld, int i, int j) { return trans ? X[(size_t)j * ld + i] : X[(size_t)i * ld + j]; }

static void fill(float *x, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) x[i] = (float)sin(0.731 * (double)(i + 1) * (seed + 1) + seed);
}

typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc;
    float *A, *B, *C0;
} Case;

static Case make_case(int ta, int tb, int M, int N, int K, int pad, unsigned seed) {
    Case c = {ta, tb, M, N, K, (ta ? M : K) + pad, (tb ? K : N) + pad, N + pad, NULL, NULL, NULL};
    size_t na = (size_t)(ta ? K : M) * c.lda, nb = (size_t)(tb ? N : K) * c.ldb, nc = (size_t)M * c.ldc;
    c.A = malloc(sizeof(float) * na), c.B = malloc(sizeof(float) * nb), c.C0 = malloc(sizeof(float) * nc);
    fill(c.A, na, seed), fill(c.B, nb, seed + 7), fill(c.C0, nc, seed + 13);
    return c;
}
static void free_case(Case *c) { free(c->A), free(c->B), free(c->C0); }
static float *copy_c(const Case *c) {
    float *C = malloc(sizeof(float) * (size_t)c->M * c->ldc);
    memcpy(C, c->C0, sizeof(float) * (size_t)c->M * c->ldc);
    return C;
}

/* worst |got − (alpha·Σab + beta·c0)| / (|alpha|·Σ|ab| + |beta·c0|) over the output */
static double err_vs_double(const Case *c, const float *C, float alpha, float beta) {
    double worst = 0;
    for (int i = 0; i < c->M; i++)
        for (int j = 0; j < c->N; j++) {
            double s = 0, sa = 0;
            for (int k = 0; k < c->K; k++) {
                double p = (double)at(c->A, c->ta, c->lda, i, k) * at(c->B, c->tb, c->ldb, k, j);
                s += p, sa += fabs(p);
            }
            double c0 = c->C0[(size_t)i * c->ldc + j], want = alpha * s + beta * c0;
            double e = fabs(C[(size_t)i * c->ldc + j] - want) / (fabs(alpha) * sa + fabs(beta * c0) + 1e-30);
            if (!(e <= worst)) worst = e;
        }
    return worst;
}

static int same_bits(const Case *c, const float *X, const float *Y) {
    return !memcmp(X, Y, sizeof(float) * (size_t)c->M * c->ldc);
}

static void test_onednn_f32(void) {
    int shapes[][3] = {{7, 5, 9}, {1, 13, 11}, {13, 1, 11}, {33, 17, 65}};
    float ab[][2] = {{1, 0}, {0.75f, 1}, {-1.5f, 0.5f}};
    for (int s = 0; s < 4; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int q = 0; q < 3; q++)
                    for (int pad = 0; pad < 4; pad += 3) {
                        Case c = make_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], pad, (unsigned)(s + q));
                        float *C = copy_c(&c);
                        int rc = eid_gemm_onednn_f32(ta, tb, c.M, c.N, c.K, ab[q][0], c.A, c.lda, c.B, c.ldb, ab[q][1], C, c.ldc);
                        double e = rc == 0 ? err_vs_double(&c, C, ab[q][0], ab[q][1]) : 1;
                        CHECK(rc == 0 && e <= 1e-5, "onednn-f32 %dx%dx%d ta %d tb %d alpha %g beta %g pad %d: rc %d error %.3g",
                              c.M, c.N, c.K, ta, tb, (double)ab[q][0], (double)ab[q][1], pad, rc, e);
                        free(C), free_case(&c);
                    }
}

/* One plan entry forcing `use` for the shape of c (team: this thread's team size). */
static void force(const Case *c, int prec, int use) {
    EidGemmChoice ch = {{prec, c->ta, c->tb, c->M, c->N, c->K, eid_team_threads(), 0}, use, {-1, -1, -1}};
    CHECK(eid_gemm_plan_put(&ch) == 0, "plan: put %s", eid_gemm_backend_name(use));
}

static float *run_eid_gemm(const Case *c) {
    float *C = copy_c(c);
    eid_gemm(c->ta, c->tb, c->M, c->N, c->K, 0.5f, c->A, c->lda, c->B, c->ldb, 0.25f, C, c->ldc);
    return C;
}

static void test_modes(void) {
    /* a shape where the two libraries' sums round differently (checked below, so that "equal to the
     * forced library" means something) */
    Case c = make_case(0, 1, 48, 40, 300, 1, 3);
    float *ob = copy_c(&c), *dn = copy_c(&c);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c.M, c.N, c.K, 0.5f, c.A, c.lda, c.B, c.ldb, 0.25f, ob, c.ldc);
    CHECK(eid_gemm_onednn_f32(0, 1, c.M, c.N, c.K, 0.5f, c.A, c.lda, c.B, c.ldb, 0.25f, dn, c.ldc) == 0, "onednn-f32 ran");
    CHECK(!same_bits(&c, ob, dn), "the test shape must round differently in OpenBLAS and oneDNN");

    eid_gemm_plan_clear();
    eid_gemm_plan_set_mode(EID_PLAN_FIXED, 0);
    float *f = run_eid_gemm(&c);
    CHECK(same_bits(&c, f, ob) && eid_gemm_plan_count() == 0, "fixed: OpenBLAS's bits, nothing planned (%d entries)",
          eid_gemm_plan_count());

    eid_gemm_plan_set_mode(EID_PLAN_MEASURE, 0);
    float *m1 = run_eid_gemm(&c), *m2 = run_eid_gemm(&c);
    EidGemmChoice got;
    CHECK(eid_gemm_plan_count() == 1 && eid_gemm_plan_get(0, &got) == 0, "measure: one entry after two products, got %d",
          eid_gemm_plan_count());
    CHECK(got.shape.M == c.M && got.shape.N == c.N && got.shape.K == c.K && got.shape.ta == 0 && got.shape.tb == 1 &&
              got.shape.prec == EID_PREC_FP32 && got.shape.team == eid_team_threads(),
          "measure: the entry's shape");
    CHECK(got.us[EID_GEMM_OPENBLAS] > 0 && got.us[EID_GEMM_ONEDNN_F32] > 0 && got.us[EID_GEMM_ONEDNN_BF16] < 0,
          "measure: times of both fp32 libraries, none for bf16 (%g %g %g)", got.us[0], got.us[1], got.us[2]);
    CHECK(got.use == EID_GEMM_OPENBLAS || got.use == EID_GEMM_ONEDNN_F32, "measure: an fp32 library chosen");
    const float *want = got.use == EID_GEMM_OPENBLAS ? ob : dn;
    CHECK(same_bits(&c, m1, want) && same_bits(&c, m2, want),
          "measure: C is the chosen library's product, computed once (the timing used a scratch copy)");

    /* replay: an entry forces its library */
    for (int use = 0; use < 2; use++) {
        eid_gemm_plan_clear();
        force(&c, EID_PREC_FP32, use);
        float *r = run_eid_gemm(&c);
        CHECK(same_bits(&c, r, use ? dn : ob) && eid_gemm_plan_count() == 1, "replay %s: that library's bits",
              eid_gemm_backend_name(use));
        free(r);
    }
    /* a put of a planned shape keeps the first entry */
    EidGemmChoice other = {{EID_PREC_FP32, 0, 1, c.M, c.N, c.K, eid_team_threads(), 0}, EID_GEMM_OPENBLAS, {-1, -1, -1}};
    CHECK(eid_gemm_plan_put(&other) == 1, "put of a planned shape: 1 (kept)");
    EidGemmChoice bad = other;
    bad.use = EID_GEMM_ONEDNN_BF16;
    bad.shape.K = 1234;
    CHECK(eid_gemm_plan_put(&bad) == -1, "put: bf16 library for an fp32 entry refused");
    bad.use = EID_GEMM_OPENBLAS, bad.shape.M = 0;
    CHECK(eid_gemm_plan_put(&bad) == -1, "put: M 0 refused");

    /* matrix-vector shapes are planned too (decoding) */
    eid_gemm_plan_clear();
    Case v = make_case(0, 1, 1, 64, 96, 0, 5);
    float *vr = run_eid_gemm(&v);
    CHECK(eid_gemm_plan_count() == 1 && err_vs_double(&v, vr, 0.5f, 0.25f) <= 1e-5, "measure: a gemv shape planned and right");
    free(vr), free_case(&v);

    eid_gemm_plan_set_mode(EID_PLAN_FIXED, 0);
    eid_gemm_plan_clear();
    free(ob), free(dn), free(f), free(m1), free(m2), free_case(&c);
}

/* ---- the file ---- */
static int count_after(const char *json) {
    eid_gemm_plan_clear();
    int rc = gemm_plan_from_json(json, "plan.json");
    return rc == 0 ? eid_gemm_plan_count() : -1;
}

static void expect_refused(const char *json, const char *needle) {
    eid_gemm_plan_clear();
    int rc = gemm_plan_from_json(json, "plan.json");
    const char *msg = eid_last_error();
    CHECK(rc == -1 && strstr(msg, "plan.json") && strstr(msg, needle) && eid_gemm_plan_count() == 0,
          "refused (\"%s\" in the message, nothing added): %s -> rc %d, \"%s\"", needle, json, rc, msg);
}

#define ENTRY(extra) "{\"precision\":\"fp32\",\"ta\":0,\"tb\":1,\"m\":8,\"n\":9,\"k\":10,\"team\":1,\"mirror\":0,\"use\":\"openblas\"" extra "}"
#define PLAN(entries) "{\"eidetic_gemm_plan\":1,\"threads\":1,\"entries\":[" entries "]}"

static void test_file(void) {
    /* round trip through the writer */
    eid_gemm_plan_clear();
    EidGemmChoice a = {{EID_PREC_FP32, 1, 0, 100, 200, 300, 2, 0}, EID_GEMM_ONEDNN_F32, {12.5, 10.25, -1}};
    EidGemmChoice b = {{EID_PREC_BF16, 0, 0, 1, 50280, 768, 1, 1}, EID_GEMM_ONEDNN_BF16, {-1, -1, 3.0}};
    CHECK(eid_gemm_plan_put(&a) == 0 && eid_gemm_plan_put(&b) == 0, "file: two entries");
    char *text = gemm_plan_to_json();
    CHECK(count_after(text) == 2, "file: the written plan reads back (%s)", eid_last_error());
    EidGemmChoice ra, rb;
    CHECK(eid_gemm_plan_get(0, &ra) == 0 && eid_gemm_plan_get(1, &rb) == 0 && !memcmp(&ra.shape, &a.shape, sizeof a.shape) &&
              !memcmp(&rb.shape, &b.shape, sizeof b.shape) && ra.use == a.use && rb.use == b.use && ra.us[1] == 10.25 &&
              rb.us[2] == 3.0 && ra.us[2] < 0,
          "file: the same entries, in order, with their times");
    /* loading on top keeps existing entries (a shape already planned stays as it is) */
    CHECK(gemm_plan_from_json(text, "plan.json") == 0 && eid_gemm_plan_count() == 2, "file: loading twice adds nothing");
    free(text);

    CHECK(count_after(PLAN(ENTRY(""))) == 1, "file: minimal entry (no us)");
    CHECK(count_after(PLAN("")) == 0, "file: no entries");
    expect_refused("", "not valid JSON");
    expect_refused("[1]", "expected a JSON object");
    expect_refused("{\"eidetic_gemm_plan\":2,\"threads\":1,\"entries\":[]}", "version 2");
    expect_refused("{\"eidetic_gemm_plan\":1,\"entries\":[]}", "\"threads\": missing");
    expect_refused("{\"eidetic_gemm_plan\":1,\"threads\":1,\"entries\":{}}", "\"entries\": expected an array");
    expect_refused("{\"eidetic_gemm_plan\":1,\"threads\":1,\"entries\":[],\"x\":1}", "unknown key \"x\"");
    expect_refused(PLAN(ENTRY(",\"extra\":1")), "entry 0: unknown key \"extra\"");
    expect_refused(PLAN(ENTRY("") "," ENTRY("")), "entry 1: the same shape as entry 0");
    expect_refused(PLAN(ENTRY("") ",1"), "entry 1: expected an object");
    expect_refused(PLAN("{\"precision\":\"fp16\",\"ta\":0,\"tb\":1,\"m\":8,\"n\":9,\"k\":10,\"team\":1,\"mirror\":0,\"use\":\"openblas\"}"),
                   "expected fp32 or bf16");
    expect_refused(PLAN("{\"precision\":\"auto\",\"ta\":0,\"tb\":1,\"m\":8,\"n\":9,\"k\":10,\"team\":1,\"mirror\":0,\"use\":\"openblas\"}"),
                   "expected fp32 or bf16, got \"auto\"");
    expect_refused(PLAN("{\"precision\":\"fp32\",\"ta\":2,\"tb\":1,\"m\":8,\"n\":9,\"k\":10,\"team\":1,\"mirror\":0,\"use\":\"openblas\"}"),
                   "\"ta\"");
    expect_refused(PLAN("{\"precision\":\"fp32\",\"ta\":0,\"tb\":1,\"m\":0,\"n\":9,\"k\":10,\"team\":1,\"mirror\":0,\"use\":\"openblas\"}"),
                   "\"m\"");
    expect_refused(PLAN("{\"precision\":\"fp32\",\"ta\":0,\"tb\":1,\"m\":8,\"n\":9.5,\"k\":10,\"team\":1,\"mirror\":0,\"use\":\"openblas\"}"),
                   "\"n\"");
    expect_refused(PLAN("{\"precision\":\"fp32\",\"ta\":0,\"tb\":1,\"m\":8,\"n\":9,\"team\":1,\"mirror\":0,\"use\":\"openblas\"}"),
                   "\"k\": missing");
    expect_refused(PLAN("{\"precision\":\"fp32\",\"ta\":0,\"tb\":1,\"m\":8,\"n\":9,\"k\":10,\"team\":1,\"mirror\":0,\"use\":\"mkl\"}"),
                   "got \"mkl\"");
    expect_refused(PLAN("{\"precision\":\"fp32\",\"ta\":0,\"tb\":1,\"m\":8,\"n\":9,\"k\":10,\"team\":1,\"mirror\":0,\"use\":\"onednn-bf16\"}"),
                   "onednn-bf16 in an fp32 entry");
    expect_refused(PLAN(ENTRY(",\"us\":{\"gpu\":1}")), "not a library");
    expect_refused(PLAN(ENTRY(",\"us\":{\"openblas\":-1}")), "\"us\": \"openblas\"");
    expect_refused(PLAN(ENTRY(",\"us\":{\"openblas\":1,\"openblas\":2}")), "given twice");
    expect_refused(PLAN(ENTRY(",\"us\":[1]")), "expected an object of times");
    /* an error after good entries adds none of them */
    expect_refused(PLAN(ENTRY("") ",{\"bad\":1}"), "entry 1");
    eid_gemm_plan_clear();
}

/* bf16 mode (emulated where the CPU has no native bf16): a forced library decides the rounding */
static void test_bf16_candidates(void) {
    if (eid_set_precision(EID_PREC_BF16, 0) != EID_PREC_BF16) {
        CHECK(0, "bf16 mode unavailable (EIDETIC_BF16_EMULATE=1 is set by main)");
        return;
    }
    Case c = make_case(0, 0, 24, 20, 64, 0, 9);
    eid_gemm_plan_set_mode(EID_PLAN_MEASURE, 0);
    eid_gemm_plan_clear();
    force(&c, EID_PREC_BF16, EID_GEMM_OPENBLAS);
    float *r32 = run_eid_gemm(&c);
    CHECK(err_vs_double(&c, r32, 0.5f, 0.25f) <= 1e-5, "bf16 mode, forced openblas: fp32 accuracy");
    eid_gemm_plan_clear();
    force(&c, EID_PREC_BF16, EID_GEMM_ONEDNN_BF16);
    float *r16 = run_eid_gemm(&c);
    double e = err_vs_double(&c, r16, 0.5f, 0.25f);
    CHECK(e > 1e-4 && e < 1e-2, "bf16 mode, forced onednn-bf16: bf16's error order, got %.3g", e);
    /* measuring in bf16 mode times the three libraries */
    eid_gemm_plan_clear();
    float *rm = run_eid_gemm(&c);
    EidGemmChoice got;
    CHECK(eid_gemm_plan_get(0, &got) == 0 && got.us[0] > 0 && got.us[1] > 0 && got.us[2] > 0,
          "bf16 measure: three candidates timed");
    eid_gemm_plan_clear();
    eid_gemm_plan_set_mode(EID_PLAN_FIXED, 0);
    eid_set_precision(EID_PREC_FP32, 0);
    free(r32), free(r16), free(rm), free_case(&c);
}

/* auto mode: a plan entry records the precision its product ran at — bf16 for a one-row product of a
 * mirrored weight (three candidates), fp32 for a many-row product (two) — never "auto" */
static void test_auto_entries(void) {
    if (eid_set_precision(EID_PREC_AUTO, 0) != EID_PREC_AUTO) {
        CHECK(0, "auto mode unavailable (EIDETIC_BF16_EMULATE=1 is set by main)");
        return;
    }
    enum { N = 48, K = 32, M = 100 };
    float *W = malloc(sizeof(float) * N * K), *X = malloc(sizeof(float) * M * K), *Y = malloc(sizeof(float) * M * N);
    fill(W, N * K, 3), fill(X, M * K, 4);
    eid_bf16_mirror_sync(W, (size_t)N * K);
    eid_gemm_plan_set_mode(EID_PLAN_MEASURE, 0);
    eid_gemm_plan_clear();
    eid_gemm(0, 1, 1, N, K, 1, X, K, W, K, 0, Y, N);
    eid_gemm(0, 1, M, N, K, 1, X, K, W, K, 0, Y, N);
    EidGemmChoice one, many;
    CHECK(eid_gemm_plan_count() == 2 && eid_gemm_plan_get(0, &one) == 0 && eid_gemm_plan_get(1, &many) == 0,
          "auto measure: two entries");
    CHECK(one.shape.prec == EID_PREC_BF16 && one.shape.M == 1 && one.us[2] > 0, "auto: the one-row entry is bf16, three candidates");
    CHECK(many.shape.prec == EID_PREC_FP32 && many.shape.M == M && many.us[2] < 0 && many.use != EID_GEMM_ONEDNN_BF16,
          "auto: the %d-row entry is fp32, no bf16 candidate", M);
    eid_bf16_mirror_drop(W);
    eid_gemm_plan_clear();
    eid_gemm_plan_set_mode(EID_PLAN_FIXED, 0);
    eid_set_precision(EID_PREC_FP32, 0);
    free(W), free(X), free(Y);
}

int main(void) {
    setenv("EIDETIC_BF16_EMULATE", "1", 1);
    eid_runtime_setup(2, 0);
    test_onednn_f32();
    test_modes();
    test_file();
    test_bf16_candidates();
    test_auto_entries();
    return t_summary("test_gemm_plan");
}
