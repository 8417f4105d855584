/* test_sample.c — the next-token sampler (src/text/sample.h): greedy = argmax with ties to the lowest
 * id, top-k and top-p keep exactly the right mass, the CTRL repetition penalty, and determinism. */
#include "testutil.h"
#include "text/sample.h"

static Sampler *mk(double T, int k, double p, double pen, int V) {
    SampleCfg c = {.temperature = T, .top_k = k, .top_p = p, .rep_penalty = pen};
    return sampler_new(&c, V);
}

static void test_greedy(void) {
    real lg[6] = {0.5, 2, -1, 2, 1.9, 0};
    Sampler *s = mk(0, 0, 1, 1, 6);
    Rng r;
    rng_init(&r, 7, 0);
    CHECK(sampler_pick(s, lg, NULL, 0, &r) == 1, "greedy: argmax with the tie 1/3 broken to the lowest id");
    lg[3] = 2.5;
    CHECK(sampler_pick(s, lg, NULL, 0, &r) == 3, "greedy follows the argmax");
    sampler_free(s);
}

static void test_topk_topp_mass(void) {
    real lg[5] = {0, 1, 2, 3, 4}; /* softmax ∝ e^v */
    double z = 0, e[5];
    for (int v = 0; v < 5; v++) z += e[v] = exp(v);
    Sampler *s = mk(1, 0, 1, 1, 5);
    int n = sampler_dist(s, lg, NULL, 0);
    CHECK(n == 5 && s->order[0] == 4 && s->order[4] == 0, "full distribution, most likely first (n=%d)", n);
    CHECK(fabs(s->prob[0] - e[4] / z) < 1e-15 && fabs(s->prob[4] - e[0] / z) < 1e-15, "softmax exact");
    sampler_free(s);

    s = mk(1, 2, 1, 1, 5);
    n = sampler_dist(s, lg, NULL, 0);
    CHECK(n == 2 && s->order[0] == 4 && s->order[1] == 3, "top-k keeps the 2 largest (n=%d)", n);
    CHECK(fabs(s->prob[0] - e[4] / (e[4] + e[3])) < 1e-15, "top-k renormalises over the kept set");
    sampler_free(s);

    /* p just below / at / just above the mass of the top two */
    double m2 = (e[4] + e[3]) / z;
    s = mk(1, 0, m2 - 1e-9, 1, 5);
    CHECK(sampler_dist(s, lg, NULL, 0) == 2, "top-p below the top-2 mass keeps 2");
    sampler_free(s);
    s = mk(1, 0, m2 + 1e-9, 1, 5);
    n = sampler_dist(s, lg, NULL, 0);
    CHECK(n == 3, "top-p just above the top-2 mass keeps 3 (n=%d)", n);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += s->prob[i];
    CHECK(fabs(sum - 1) < 1e-15 && fabs(s->prob[2] - e[2] / (e[4] + e[3] + e[2])) < 1e-15, "top-p renormalised exactly");
    sampler_free(s);
    s = mk(1, 0, 1e-6, 1, 5);
    CHECK(sampler_dist(s, lg, NULL, 0) == 1, "tiny top-p keeps the most likely token");
    sampler_free(s);
    /* top-k and top-p together: top-p over the top-k renormalised mass */
    s = mk(1, 3, 0.9, 1, 5);
    n = sampler_dist(s, lg, NULL, 0);
    CHECK(n == 2, "top-k 3 then top-p 0.9 of that keeps 2 (n=%d)", n); /* e4/(e4+e3+e2) = .665 < .9 ≤ .910 */
    sampler_free(s);
    /* ties in top-k: the lower id is kept */
    real tie[4] = {1, 3, 3, 3};
    s = mk(1, 2, 1, 1, 4);
    n = sampler_dist(s, tie, NULL, 0);
    CHECK(n == 2 && s->order[0] == 1 && s->order[1] == 2, "top-k tie → lower ids (%d %d)", s->order[0], s->order[1]);
    sampler_free(s);
}

static void test_penalty(void) {
    real lg[4] = {2, -2, 1.5, 0.5};
    int ctx[3] = {0, 1, 0}; /* 0 twice: penalised once */
    Sampler *s = mk(1, 0, 1, 2, 4);
    sampler_dist(s, lg, ctx, 3);
    CHECK(s->logit[0] == 1 && s->logit[1] == -4 && s->logit[2] == 1.5 && s->logit[3] == 0.5,
          "CTRL: positive / 2, negative * 2, once per distinct token (%g %g)", s->logit[0], s->logit[1]);
    sampler_free(s);
    s = mk(0, 0, 1, 2, 4);
    Rng r;
    rng_init(&r, 1, 0);
    CHECK(sampler_pick(s, lg, ctx, 3, &r) == 2, "greedy after the penalty picks the unpenalised 1.5");
    CHECK(sampler_pick(s, lg, NULL, 0, &r) == 0, "no context → no penalty (seen[] was cleared)");
    sampler_free(s);
}

static void test_determinism(void) {
    enum { V = 50, N = 200 };
    real lg[V];
    for (int v = 0; v < V; v++) lg[v] = (real)sin(v * 1.3);
    Sampler *s = mk(0.8, 20, 0.95, 1.1, V);
    int a[N], b[N], differ = 0, hist[V] = {0};
    for (int pass = 0; pass < 2; pass++) {
        Rng r;
        rng_init(&r, rng_derive(42, 0x6E6), 0);
        for (int i = 0; i < N; i++) (pass ? b : a)[i] = sampler_pick(s, lg, pass ? b : a, i, &r);
    }
    for (int i = 0; i < N; i++) differ += a[i] != b[i], hist[a[i]]++;
    CHECK(differ == 0, "same seed → same tokens (%d differ)", differ);
    int distinct = 0;
    for (int v = 0; v < V; v++) distinct += hist[v] > 0;
    CHECK(distinct > 3 && distinct <= 20, "samples spread over the top-20 only (%d distinct)", distinct);
    sampler_free(s);
    /* empirical frequencies follow the distribution */
    real two[2] = {0, (real)log(3.0)}; /* p = 1/4, 3/4 */
    s = mk(1, 0, 1, 1, 2);
    Rng r;
    rng_init(&r, 9, 0);
    int ones = 0;
    for (int i = 0; i < 20000; i++) ones += sampler_pick(s, two, NULL, 0, &r);
    CHECK(fabs(ones / 20000.0 - 0.75) < 0.015, "frequency of p=3/4 token: %g", ones / 20000.0);
    sampler_free(s);
}

static void test_bad_cfg(void) {
    CHECK(mk(-1, 0, 1, 1, 4) == NULL, "negative temperature refused");
    CHECK(mk(1, -1, 1, 1, 4) == NULL, "negative top-k refused");
    CHECK(mk(1, 0, 0, 1, 4) == NULL && mk(1, 0, 1.5, 1, 4) == NULL, "top-p outside (0,1] refused");
    CHECK(mk(1, 0, 1, 0.5, 4) == NULL, "penalty < 1 refused");
}

int main(void) {
    test_greedy();
    test_topk_topp_mass();
    test_penalty();
    test_determinism();
    test_bad_cfg();
    return t_summary("test_sample");
}
