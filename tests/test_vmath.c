/* test_vmath.c — the vectorisable fp32 exp/log/log1p of core/vmath.h against libm in double. */
#include "core/vmath.h"
#include "testutil.h"

/* max relative error of f against ref over n points evenly spaced in [lo, hi] */
static double sweep(float (*f)(float), double (*ref)(double), double lo, double hi, int n, double *worst_x) {
    double worst = 0;
    for (int i = 0; i <= n; i++) {
        float x = (float)(lo + (hi - lo) * i / n);
        double want = ref((double)x), got = f(x);
        double rel = fabs(got - want) / fabs(want);
        if (!(rel <= worst)) worst = rel, *worst_x = x;
    }
    return worst;
}

int main(void) {
    double wx = 0, e;
    e = sweep(eid_expf, exp, -87.0, 88.0, 2000003, &wx);
    CHECK(e < 2e-7, "eid_expf: max rel err %.3g at x = %g (want < 2e-7)", e, wx);
    e = sweep(eid_expf, exp, -1e-3, 1e-3, 100001, &wx);
    CHECK(e < 2e-7, "eid_expf near 0: max rel err %.3g at x = %g", e, wx);
    CHECK(eid_expf(-1000.0f) >= 0 && eid_expf(-1000.0f) < 1e-37f, "eid_expf(-1000) = %g (want ~0)", eid_expf(-1000.0f));
    CHECK(isfinite(eid_expf(1000.0f)) && eid_expf(1000.0f) > 1e38f, "eid_expf(1000) = %g (clamped, finite)", eid_expf(1000.0f));
    CHECK(eid_expf(0.0f) == 1.0f, "eid_expf(0) = %.9g", eid_expf(0.0f));
    e = sweep(eid_logf, log, 1e-30, 1e30, 2000003, &wx);
    CHECK(e < 3e-7, "eid_logf: max rel err %.3g at x = %g", e, wx);
    double abs_err = 0;
    for (int i = 0; i <= 100000; i++) {
        float x = 0.5f + 1.5f * i / 100000;
        double d = fabs(eid_logf(x) - log((double)x));
        if (d > abs_err) abs_err = d;
    }
    CHECK(abs_err < 1.2e-7, "eid_logf on [0.5, 2]: max abs err %.3g", abs_err);
    e = sweep(eid_log1pf, log1p, -0.999, 5e8, 2000003, &wx);
    CHECK(e < 4e-7, "eid_log1pf: max rel err %.3g at x = %g", e, wx);
    e = sweep(eid_log1pf, log1p, -1e-6, 1e-6, 100001, &wx);
    CHECK(e < 4e-7, "eid_log1pf near 0: max rel err %.3g at x = %g", e, wx);
    /* huge, infinite and NaN input (docs/reliability.md): no undefined behaviour (the sanitizer build
     * runs this), libm's ordering and NaN propagation; finite and infinite arguments saturate */
    volatile float big = 1e30f, inf = INFINITY, nan = NAN;
    CHECK(isnan(eid_expf(nan)) && isnan(exp((double)nan)), "eid_expf(NaN) = %g (want NaN, as libm)", eid_expf(nan));
    CHECK(isnan(eid_expf(-nan)), "eid_expf(-NaN) = %g (want NaN)", eid_expf(-nan));
    CHECK(eid_expf(-big) >= 0 && eid_expf(-big) < 1e-37f, "eid_expf(-1e30) = %g (want ~0)", eid_expf(-big));
    CHECK(eid_expf(-inf) >= 0 && eid_expf(-inf) < 1e-37f, "eid_expf(-inf) = %g (want ~0, libm 0)", eid_expf(-inf));
    CHECK(eid_expf(big) > 1e38f, "eid_expf(1e30) = %g (want >= 1.7e38, saturated)", eid_expf(big));
    CHECK(eid_expf(inf) > 1e38f, "eid_expf(inf) = %g (want >= 1.7e38, saturated; libm inf)", eid_expf(inf));
    CHECK(eid_expf(88.0f) <= eid_expf(inf) && eid_expf(-inf) <= eid_expf(-87.0f), "eid_expf is monotone at the clamps");
    /* a deliberately wrong reference must fail: the sweep can detect errors */
    e = sweep(eid_expf, exp2, -10, 10, 1001, &wx);
    CHECK(e > 1e-3, "sweep detects a wrong function (rel err %.3g)", e);
    return t_summary("test_vmath");
}
