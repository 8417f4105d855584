/* vmath.h — exp and log1p that the compiler can vectorise (fp32 build).
 *
 * libm's expf/log1pf are scalar calls: inside the per-element loops of activations, gates, decays
 * and the softmax they cost more than the arithmetic around them (profiles: 6–16% of a training
 * step). These are branch-free Cephes-style polynomials that `#pragma omp simd` loops vectorise.
 * eid_expf: max relative error 8e-8 over [−87, 88] (< 1 ulp); arguments are clamped to that range,
 * so exp(x < −87) returns 1.6e-38 rather than a denormal or 0, and exp(x > 88) returns 1.7e38
 * rather than inf (no caller relies on either: decays and softmax arguments are ≤ 0, sigmoid and
 * softplus saturate long before); ±inf and ±1e30 saturate the same way, and NaN gives NaN as libm
 * does (so a non-finite loss stays visible); no input reaches undefined behaviour. eid_log1pf: < 2 ulp for x > −1.
 * The fp64 (test) build uses libm (common.h), so gradient checks stay exact; the fp32 build is
 * checked against it (test_equiv_fp32) and against the PyTorch reference (tests/ref). */
#ifndef EIDETIC_VMATH_H
#define EIDETIC_VMATH_H
#include <stdint.h>
#include <string.h>

static inline float eid_expf(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(x / ln 2) */
    float r = x - n * 0.693359375f;                                       /* ln 2, high part */
    r = r + n * 2.12194440e-4f;                                           /* ln 2, low part */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^n. NaN input: n is NaN, which must not reach the int conversion (undefined); nc = 0 instead,
     * and p (NaN) makes the result NaN as libm's. The shift is done unsigned: n + 127 is in [1, 254]
     * after the clamp, but a signed shift would be undefined for any negative value. */
    float nc = n == n ? n : 0.0f;
    uint32_t e = (uint32_t)((int32_t)nc + 127) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}

/* natural log of a positive normal float */
static inline float eid_logf(float x) {
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    int32_t e = ((bits >> 23) & 0xff) - 126;          /* x = m·2^e, m in [0.5, 1) */
    int32_t mb = (bits & 0x807fffff) | 0x3f000000;
    float m;
    memcpy(&m, &mb, sizeof m);
    int small = m < 0.707106781186547524f;
    float fe = (float)(e - small);
    float f = small ? m + m - 1.0f : m - 1.0f;          /* f in [−0.29, 0.41] */
    float z = f * f;
    float y = 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z;
    y += -2.12194440e-4f * fe;
    y += -0.5f * z;
    return f + y + 0.693359375f * fe;
}

/* log(1 + x) for x > −1, accurate for tiny x: u = 1 + x rounds; log(u) − ((u − 1) − x)/u corrects
 * for that rounding to first order (x tiny: u = 1 and the result is x). No branch and no select on
 * u − 1 == 0, so loops around it vectorise (GCC 12 would not if-convert the select form). */
static inline float eid_log1pf(float x) {
    float u = 1.0f + x;
    return eid_logf(u) - ((u - 1.0f) - x) / u;
}

#endif
