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

/* The VmFlags of the mapping holding p (/proc/self/smaps), "" when not found. */
static void kt_vm_flags(const void *p, char *flags, size_t cap) {
    flags[0] = 0;
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return;
    char line[512];
    int inside = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') == line + strspn(line, "0123456789abcdef"))
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(flags, cap, "%s", line + 8);
            break;
        }
    }
    fclose(f);
}

/* eid_aligned_alloc: large buffers start on a 2 MiB boundary, zeroed, and are marked for transparent
 * huge pages ("hg" in smaps) unless EIDETIC_HUGEPAGES=0; small ones keep EID_ALIGN (common.c). */
static void kt_huge_pages(void) {
    size_t big = (5u << 20) + 123, small = 4096 + 7;
    unsigned char *b = eid_aligned_alloc(big), *s = eid_aligned_alloc(small);
    CHECK((uintptr_t)b % (2u << 20) == 0, "large allocation not on a 2 MiB boundary: %p", (void *)b);
    CHECK((uintptr_t)s % EID_ALIGN == 0, "small allocation not EID_ALIGN-aligned: %p", (void *)s);
    size_t nonzero = 0;
    for (size_t i = 0; i < big; i++) nonzero += b[i] != 0;
    for (size_t i = 0; i < small; i++) nonzero += s[i] != 0;
    CHECK(nonzero == 0, "eid_aligned_alloc: %zu bytes not zeroed", nonzero);
    FILE *thp = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (thp) { /* a kernel with THP: the advice must show on the mapping */
        fclose(thp);
        char flags[512];
        kt_vm_flags(b + (1u << 20), flags, sizeof flags);
        CHECK(strstr(flags, " hg") != NULL, "large allocation not advised for huge pages (VmFlags:%s)", flags);
        setenv("EIDETIC_HUGEPAGES", "0", 1);
        unsigned char *off = eid_aligned_alloc(big);
        kt_vm_flags(off + (1u << 20), flags, sizeof flags);
        CHECK(strstr(flags, " hg") == NULL, "EIDETIC_HUGEPAGES=0 still advised huge pages (VmFlags:%s)", flags);
        unsetenv("EIDETIC_HUGEPAGES");
        free(off);
    }
    free(b), free(s);
}

int main(void) {
    eid_runtime_setup(0, 0);
    kt_huge_pages();
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
