/* test_kernels.c — every k_* kernel against a naive reference on random shapes (the model is
 * ggml's test-backend-ops): a second backend is checked kernel by kernel with this same file.
 * Each kernel family has its checks in tests/kernels/kt_<family>.h; this file runs them all. */
#include "core/rng.h"
#include "core/runtime.h"
#include "kernels/kernels.h"
#include "kernels/seq.h"
#include "testutil.h"

static void kt_fill(real *x, size_t n, Rng *r, double scale) {
    for (size_t i = 0; i < n; i++) x[i] = (real)(scale * rng_normal(r));
}
static double grad_rel_kt(double a, double n) { return fabs(a - n) / fmax(1e-3, fabs(a) + fabs(n)); }
static real *kt_alloc(size_t n) { return eid_aligned_alloc((n ? n : 1) * sizeof(real)); }

/* Random flags for B rows of T tokens: SEG_START at row starts and now and then inside, PAD with
 * probability p_pad (never on a row's first token when `first_real`), CAUSAL elsewhere. */
static uint8_t *kt_flags(Rng *r, int B, int T, double p_seg, double p_pad) {
    uint8_t *f = eid_xcalloc((size_t)B * T, 1);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            uint8_t v = FLAG_CAUSAL;
            if (t == 0 || rng_uniform(r) < p_seg) v |= FLAG_SEG_START;
            if (t > 0 && rng_uniform(r) < p_pad) v = FLAG_PAD;
            f[(size_t)b * T + t] = v;
        }
    return f;
}

#include "kernels/kt_conv.h"
#include "kernels/kt_scan.h"
#include "kernels/kt_chunked.h"
#include "kernels/kt_attn.h"
#include "kernels/kt_bmojo.h"
#include "kernels/kt_model.h"
#include "kernels/kt_more.h"
#include "kernels/kt_linrec.h"

/* k_scale: x[N, C] (stride ld) *= a, the padding between rows untouched (StateX, docs/statex.md) */
static void kt_scale(void) {
    real x[12];
    for (int i = 0; i < 12; i++) x[i] = (real)(i + 1);
    k_scale(x, 4, 3, 3, (real)0.5);
    int ok = 1;
    for (int i = 0; i < 12; i++) ok &= x[i] == (real)((i % 4 == 3) ? i + 1 : 0.5 * (i + 1));
    CHECK(ok, "k_scale: wrong values or touched the row padding");
}

int main(void) {
    eid_runtime_setup(0, 0);
    kt_scale();
    kt_conv();
    kt_scan();
    kt_chunked();
    kt_attn();
    kt_bmojo();
    kt_model();
    kt_more();
    kt_linrec();
    return t_summary("test_kernels");
}
