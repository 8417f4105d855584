/* gemm_onednn.c — matrix products through oneDNN's matmul primitive (core/gemm_onednn.h): bf16
 * operands with fp32 accumulation (--precision bf16), and plain fp32 (one of the libraries the
 * per-shape plan of core/gemm_plan.h chooses from).
 *
 * Why per-call rounding for bf16: the operands are eidetic's fp32 tensors (master weights,
 * activations), so every call rounds A and B to bf16 once (O(MK + KN) against the product's O(MNK))
 * and oneDNN's matmul does the multiply with fp32 accumulation. Weight buffers with a bf16 mirror
 * (refreshed after each optimizer step) are read from the mirror instead: the same bits, no rounding
 * pass. fp32 products read the operands where they are, with their strides.
 *
 * Products with few rows (decoding: one token per sequence) whose weight operand has a mirror read a
 * packed copy of it instead: oneDNN's bf16 kernels multiply pairs of bf16 values along K, so a weight
 * in plain row-major layout is re-arranged inside every call, which costs more than streaming it (a
 * 768 x 50280 head at one row, measured: 2.9 ms plain, 1.4 ms packed; docs/performance.md "Mixed
 * precision"). The packed copy is made once, in the layout the primitive asks for, and thrown away when
 * its mirror is re-synced or dropped.
 *
 * Primitives are cached per (operand type, shape, transposes, strides, alpha, beta, team size). They
 * run with a user-owned scratchpad (one per thread) and a per-thread stream, so data-parallel shards
 * may call concurrently. Inside a parallel region (a shard) a product runs on its caller's thread
 * only: the primitive is made for one thread there, because oneDNN divides the work among the threads
 * it was created for. */
#include "core/gemm_onednn.h"
#include "core/bf16.h"
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dnnl_engine_t g_engine;
static pthread_once_t g_engine_once = PTHREAD_ONCE_INIT;
static void engine_init(void) {
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) g_engine = NULL;
}

int eid_bf16_native(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

const char *eid_bf16_isa_name(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if ((isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx) return "avx512_core_amx";
    if ((isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16) return "avx512_core_bf16";
    if ((isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core) return "avx512_core (bf16 emulated)";
    if ((isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2) return "avx2 (bf16 emulated)";
    return "generic";
}

/* ---- rounding fp32 -> bf16 (core/bf16.h) ---- */

float eid_round_bf16(float x) { return eid_bf16_float(eid_bf16_bits(x)); }

void eid_bf16_from_real(uint16_t *dst, const real *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = eid_bf16_bits((float)src[i]);
}

/* dst[rows, cols] (contiguous) = bf16(src[rows, cols] with row stride ld) */
static void to_bf16(uint16_t *dst, const float *src, int rows, int cols, int ld) {
    int big = (size_t)rows * (size_t)cols >= (1u << 16) && !omp_in_parallel();
#pragma omp parallel for if (big) schedule(static)
    for (int r = 0; r < rows; r++) {
        const float *s = src + (size_t)r * ld;
        uint16_t *d = dst + (size_t)r * cols;
        for (int c = 0; c < cols; c++) d[c] = eid_bf16_bits(s[c]);
    }
}

/* ---- per-thread buffers (rounded operands, scratchpad, stream) ---- */
typedef struct {
    void *p;
    size_t cap;
} Buf;
static __thread Buf t_a, t_b, t_scratch;
static __thread dnnl_stream_t t_stream;

static void *buf_reserve(Buf *b, size_t bytes) {
    if (bytes <= b->cap) return b->p;
    void *p = realloc(b->p, bytes);
    if (!p) return NULL;
    b->p = p, b->cap = bytes;
    return p;
}

#ifndef EIDETIC_FP64 /* the mirrors and packed copies are bf16-only: not in the fp64 build */
static void packed_purge(const void *from, size_t bytes);
#endif

/* ---- bf16 mirrors of weight buffers (gemm_onednn.h) ---- */
#define MAX_MIRRORS 64
typedef struct {
    const float *w;
    size_t n;
    uint16_t *bf; /* the bf16 copy; NULL for a weight registered without one (packed copies only) */
} Mirror;
static Mirror g_mirror[MAX_MIRRORS];
static int g_n_mirror;
static pthread_mutex_t g_mirror_lock = PTHREAD_MUTEX_INITIALIZER;

#ifndef EIDETIC_FP64
/* The packed copies made from the mirror m (from its bf16 copy or from its fp32 weights) are stale. */
static void mirror_purge(const Mirror *m) {
    packed_purge(m->w, m->n * sizeof(float));
    packed_purge(m->bf, m->n * sizeof(uint16_t));
}
#endif

/* Makes or refreshes the mirror of w[0..n): with a bf16 copy (copy = 1) or registered only. */
static void mirror_set(const real *w, size_t n, int copy) {
#ifdef EIDETIC_FP64
    (void)w, (void)n, (void)copy;
#else
    pthread_mutex_lock(&g_mirror_lock);
    int i = 0;
    while (i < g_n_mirror && g_mirror[i].w != w) i++;
    if (i < g_n_mirror) mirror_purge(&g_mirror[i]); /* their weights change now */
    if (i < g_n_mirror && (g_mirror[i].n != n || !copy)) free(g_mirror[i].bf), g_mirror[i].bf = NULL;
    if (i == g_n_mirror && g_n_mirror < MAX_MIRRORS) g_n_mirror++;
    if (i < g_n_mirror) {
        Mirror *m = &g_mirror[i];
        if (copy && !m->bf) m->bf = eid_aligned_alloc_try(n * sizeof(uint16_t));
        m->w = w, m->n = n;
        if (m->bf) { /* one vectorised pass, in rows of 4096 so that it also runs on every thread */
            size_t rows = n / 4096, done = rows * 4096;
            if (rows) to_bf16(m->bf, w, (int)rows, 4096, 4096);
            eid_bf16_from_real(m->bf + done, w + done, n - done);
        }
        else if (copy) m->w = NULL, m->n = 0; /* no memory: products round per call */
    }
    pthread_mutex_unlock(&g_mirror_lock);
#endif
}

void eid_bf16_mirror_sync(const real *w, size_t n) { mirror_set(w, n, 1); }
void eid_bf16_mirror_register(const real *w, size_t n) { mirror_set(w, n, 0); }

void eid_bf16_mirror_drop(const real *w) {
#ifndef EIDETIC_FP64
    pthread_mutex_lock(&g_mirror_lock);
    for (int i = 0; i < g_n_mirror; i++)
        if (g_mirror[i].w == w) {
            mirror_purge(&g_mirror[i]);
            free(g_mirror[i].bf);
            g_mirror[i] = g_mirror[--g_n_mirror];
            g_mirror[g_n_mirror] = (Mirror){0};
            break;
        }
    pthread_mutex_unlock(&g_mirror_lock);
#else
    (void)w;
#endif
}

/* The mirror holding x (the whole rows x .. x + (rows−1)·ld + cols), or NULL; *bf receives x's bf16
 * copy when the mirror has one, else NULL. */
static const Mirror *mirror_of(const float *x, int rows, int cols, int ld, const uint16_t **bf) {
    const Mirror *r = NULL;
    size_t span = (size_t)(rows - 1) * (size_t)ld + (size_t)cols;
    pthread_mutex_lock(&g_mirror_lock);
    for (int i = 0; i < g_n_mirror && !r; i++) {
        const Mirror *m = &g_mirror[i];
        if (m->w && x >= m->w && x < m->w + m->n && (size_t)(x - m->w) + span <= m->n) r = m;
    }
    *bf = r && r->bf ? r->bf + (x - r->w) : NULL;
    pthread_mutex_unlock(&g_mirror_lock);
    return r;
}

/* x's bf16 copy if x lies in a mirror that has one, else NULL */
static const uint16_t *mirrored(const float *x, int rows, int cols, int ld) {
    const uint16_t *bf;
    mirror_of(x, rows, cols, ld, &bf);
    return bf;
}

int eid_bf16_is_mirrored(const real *x) {
#ifdef EIDETIC_FP64
    (void)x;
    return 0;
#else
    const uint16_t *bf;
    return mirror_of(x, 1, 1, 1, &bf) != NULL;
#endif
}

/* ---- primitive cache ---- */
typedef struct {
    int bf16, ta, tb, M, N, K, lda, ldb, ldc, team; /* bf16: operand type; lda/ldb: row strides as read */
    int packed; /* B is read from a packed copy in the layout the primitive chooses */
    float alpha, beta;
} Key;
typedef struct {
    Key key;
    dnnl_primitive_t prim;
    size_t scratch_bytes;
    int used;
} Entry;

#define CACHE_SLOTS 1024
static Entry g_cache[CACHE_SLOTS];
static pthread_mutex_t g_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static int key_eq(const Key *a, const Key *b) {
    return a->bf16 == b->bf16 && a->packed == b->packed && a->ta == b->ta && a->tb == b->tb && a->M == b->M && a->N == b->N && a->K == b->K && a->lda == b->lda &&
           a->ldb == b->ldb && a->ldc == b->ldc && a->team == b->team && a->alpha == b->alpha && a->beta == b->beta;
}

static uint64_t key_hash(const Key *k) {
    uint64_t h = 1469598103934665603ull;
    int v[11] = {k->bf16, k->ta, k->tb, k->M, k->N, k->K, k->lda, k->ldb, k->ldc, k->team, k->packed};
    for (int i = 0; i < 11; i++) h = (h ^ (uint64_t)(uint32_t)v[i]) * 1099511628211ull;
    uint32_t a, b;
    memcpy(&a, &k->alpha, 4), memcpy(&b, &k->beta, 4);
    h = (h ^ a) * 1099511628211ull;
    return (h ^ b) * 1099511628211ull;
}

/* op(B) [K,N] as stored: row stride ldb, or column stride ldb when transposed */
static int stored_b_md(dnnl_memory_desc_t *b, const Key *k) {
    dnnl_dims_t db = {k->K, k->N}, sb = {k->tb ? 1 : k->ldb, k->tb ? k->ldb : 1};
    return dnnl_memory_desc_init_by_strides(b, 2, db, k->bf16 ? dnnl_bf16 : dnnl_f32, sb) == dnnl_success ? 0 : -1;
}

/* The matmul for a key: A and B are bf16 (or fp32) operands as stored, with row strides lda/ldb (so op(A)
 * [M,K] has strides {lda,1}, or {1,lda} when transposed), C is fp32 with row stride ldc. alpha is an
 * output scale, beta a sum post-op: C = alpha·op(A)·op(B) + beta·C. A packed key leaves B's layout to
 * oneDNN (format "any"; the caller supplies B in the layout the primitive then reports). */
static dnnl_primitive_t make_primitive(const Key *k, size_t *scratch_bytes) {
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t da = {k->M, k->K}, db = {k->K, k->N}, dc = {k->M, k->N};
    dnnl_dims_t sa = {k->ta ? 1 : k->lda, k->ta ? k->lda : 1};
    dnnl_dims_t sc = {k->ldc, 1};
    dnnl_data_type_t t = k->bf16 ? dnnl_bf16 : dnnl_f32;
    int b_ok = k->packed ? dnnl_memory_desc_init_by_tag(&b, 2, db, t, dnnl_format_tag_any) == dnnl_success
                         : stored_b_md(&b, k) == 0;
    if (dnnl_memory_desc_init_by_strides(&a, 2, da, t, sa) != dnnl_success || !b_ok ||
        dnnl_memory_desc_init_by_strides(&c, 2, dc, dnnl_f32, sc) != dnnl_success)
        return NULL;
    dnnl_matmul_desc_t md;
    if (dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) != dnnl_success) return NULL;

    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    int ok = dnnl_primitive_attr_create(&attr) == dnnl_success &&
             dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success;
    if (ok && k->alpha != 1.0f) ok = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->alpha) == dnnl_success;
    if (ok && k->beta != 0.0f)
        ok = dnnl_post_ops_create(&po) == dnnl_success && dnnl_post_ops_append_sum(po, k->beta) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    if (ok) ok = dnnl_primitive_desc_create(&pd, &md, attr, g_engine, NULL) == dnnl_success;
    if (ok) {
        const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        *scratch_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
        if (dnnl_primitive_create(&prim, pd) != dnnl_success) prim = NULL;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return prim;
}

/* The cached primitive for k (made on first use). A full cache still works: the primitive is made
 * for this call and *owned is set so the caller destroys it. */
static dnnl_primitive_t lookup(const Key *k, size_t *scratch_bytes, int *owned) {
    *owned = 0;
    pthread_mutex_lock(&g_cache_lock);
    uint64_t h = key_hash(k);
    for (int probe = 0; probe < CACHE_SLOTS; probe++) {
        Entry *e = &g_cache[(h + (uint64_t)probe) % CACHE_SLOTS];
        if (e->used && key_eq(&e->key, k)) {
            *scratch_bytes = e->scratch_bytes;
            pthread_mutex_unlock(&g_cache_lock);
            return e->prim;
        }
        if (!e->used) {
            e->prim = make_primitive(k, &e->scratch_bytes);
            if (e->prim) e->key = *k, e->used = 1;
            *scratch_bytes = e->scratch_bytes;
            pthread_mutex_unlock(&g_cache_lock);
            return e->prim;
        }
    }
    pthread_mutex_unlock(&g_cache_lock);
    *owned = 1;
    return make_primitive(k, scratch_bytes);
}

/* This thread's stream, and the team size a primitive made now would use (1 inside a parallel
 * region: oneDNN reads it from omp_get_max_threads(), which there still names the outer count). */
static int thread_setup(int *team) {
    pthread_once(&g_engine_once, engine_init);
    if (!g_engine) return -1;
    int inside = omp_in_parallel();
    if (inside && omp_get_max_threads() != 1) omp_set_num_threads(1);
    if (!t_stream && dnnl_stream_create(&t_stream, g_engine, dnnl_stream_default_flags) != dnnl_success) {
        t_stream = NULL;
        return -1;
    }
    *team = inside ? 1 : omp_get_max_threads();
    return 0;
}

/* ---- packed copies of mirrored weights, for products with few rows ---- */
typedef struct {
    const void *src;       /* the mirrored operand as stored: in a bf16 copy, or the fp32 weights */
    dnnl_memory_desc_t md; /* the layout a primitive asked for */
    void *data;
} Packed;
#define MAX_PACKED 512
static Packed g_packed[MAX_PACKED];
static int g_n_packed;
static pthread_mutex_t g_packed_lock = PTHREAD_MUTEX_INITIALIZER;

/* bytes of bf16 weight copies read by products so far (eid_bf16_weight_bytes_read) */
static uint64_t g_weight_read;

#ifndef EIDETIC_FP64
/* Forgets the packed copies of operands inside from[0..bytes): their mirror is being re-synced or freed. */
static void packed_purge(const void *from, size_t bytes) {
    if (!from) return;
    const char *lo = from, *hi = lo + bytes;
    pthread_mutex_lock(&g_packed_lock);
    for (int i = 0; i < g_n_packed;) {
        const char *p = g_packed[i].src;
        if (p >= lo && p < hi) {
            free(g_packed[i].data);
            g_packed[i] = g_packed[--g_n_packed];
            g_packed[g_n_packed] = (Packed){0};
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&g_packed_lock);
}
#endif

/* B of key k (stored at src: bf16, or fp32 when src_f32, with k's strides) in the layout md: the cached
 * copy, or one made now by a oneDNN reorder (which rounds fp32 to bf16 to nearest even, as the mirrors
 * do). NULL when there is no room or memory (the caller multiplies the plain layout instead). */
static const void *packed_get(const Key *k, const void *src, int src_f32, const dnnl_memory_desc_t *md) {
    pthread_mutex_lock(&g_packed_lock);
    const void *found = NULL;
    for (int i = 0; i < g_n_packed && !found; i++)
        if (g_packed[i].src == src && dnnl_memory_desc_equal(&g_packed[i].md, md)) found = g_packed[i].data;
    if (found || g_n_packed == MAX_PACKED) {
        pthread_mutex_unlock(&g_packed_lock);
        return found;
    }
    size_t bytes = dnnl_memory_desc_get_size(md);
    void *data = eid_aligned_alloc_try(bytes);
    dnnl_memory_desc_t smd;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t from = NULL, to = NULL;
    Key stored = *k;
    stored.bf16 = !src_f32;
    int ok = data && stored_b_md(&smd, &stored) == 0 &&
             dnnl_reorder_primitive_desc_create(&rpd, &smd, g_engine, md, g_engine, NULL) == dnnl_success &&
             dnnl_primitive_create(&reorder, rpd) == dnnl_success &&
             dnnl_memory_create(&from, &smd, g_engine, (void *)src) == dnnl_success &&
             dnnl_memory_create(&to, md, g_engine, data) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        ok = dnnl_primitive_execute(reorder, t_stream, 2, args) == dnnl_success && dnnl_stream_wait(t_stream) == dnnl_success;
    }
    if (from) dnnl_memory_destroy(from);
    if (to) dnnl_memory_destroy(to);
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (ok) g_packed[g_n_packed++] = (Packed){src, *md, data};
    else free(data), data = NULL;
    pthread_mutex_unlock(&g_packed_lock);
    return data;
}

int eid_bf16_packed_count(void) {
    pthread_mutex_lock(&g_packed_lock);
    int n = g_n_packed;
    pthread_mutex_unlock(&g_packed_lock);
    return n;
}

uint64_t eid_bf16_weight_bytes_read(void) { return __atomic_load_n(&g_weight_read, __ATOMIC_RELAXED); }

/* Runs the cached primitive of k on operand buffers a, b (as the key describes them; for a packed key,
 * b is the mirrored operand as stored — bf16, or fp32 when b_f32 — and its packed copy is read) into
 * C. Returns 0, -1 when oneDNN refused, -2 when a packed copy could not be made (nothing was written:
 * run the plain key). */
static int run_matmul(const Key *k, const void *a, const void *b, int b_f32, float *C) {
    size_t scratch_bytes = 0;
    int owned;
    dnnl_primitive_t prim = lookup(k, &scratch_bytes, &owned);
    if (!prim) return -1;
    void *scratch = scratch_bytes ? buf_reserve(&t_scratch, scratch_bytes) : NULL;
    if (scratch_bytes && !scratch) {
        if (owned) dnnl_primitive_destroy(prim);
        return -1;
    }
    /* memory objects over the buffers, described exactly as the primitive was made */
    const_dnnl_primitive_desc_t pd;
    dnnl_primitive_get_primitive_desc(prim, &pd);
    const dnnl_memory_desc_t *ma_d = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *mb_d = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (k->packed) {
        if (!(b = packed_get(k, b, b_f32, mb_d))) {
            if (owned) dnnl_primitive_destroy(prim);
            return -2;
        }
        __atomic_fetch_add(&g_weight_read, (uint64_t)dnnl_memory_desc_get_size(mb_d), __ATOMIC_RELAXED);
    }
    const dnnl_memory_desc_t *mc_d = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *ms_d = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL, ms = NULL;
    int ok = dnnl_memory_create(&ma, ma_d, g_engine, (void *)a) == dnnl_success &&
             dnnl_memory_create(&mb, mb_d, g_engine, (void *)b) == dnnl_success &&
             dnnl_memory_create(&mc, mc_d, g_engine, C) == dnnl_success;
    if (ok && scratch_bytes) ok = dnnl_memory_create(&ms, ms_d, g_engine, scratch) == dnnl_success;
    if (ok) {
        /* past this point C may be partly written (beta applied): no fallback can redo it */
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}, {DNNL_ARG_SCRATCHPAD, ms}};
        if (dnnl_primitive_execute(prim, t_stream, scratch_bytes ? 4 : 3, args) != dnnl_success ||
            dnnl_stream_wait(t_stream) != dnnl_success) {
            fprintf(stderr, "eidetic: fatal: oneDNN failed to run a %s matmul (%d x %d x %d)\n", k->bf16 ? "bf16" : "fp32",
                    k->M, k->N, k->K);
            abort();
        }
    }
    if (ma) dnnl_memory_destroy(ma);
    if (mb) dnnl_memory_destroy(mb);
    if (mc) dnnl_memory_destroy(mc);
    if (ms) dnnl_memory_destroy(ms);
    if (owned) dnnl_primitive_destroy(prim);
    return ok ? 0 : -1;
}

/* op(A) in bf16: its weight mirror as stored (row stride lda), or rounded here into this thread's
 * contiguous buffer (row stride a_cols, returned in *ld). NULL when the buffer could not grow. */
static const uint16_t *a_operand(int ta, int M, int K, const float *A, int lda, int *ld, int *from_mirror) {
    int a_rows = ta ? K : M, a_cols = ta ? M : K;
    const uint16_t *a_mir = mirrored(A, a_rows, a_cols, lda);
    *from_mirror = a_mir != NULL, *ld = a_mir ? lda : a_cols;
    if (a_mir) return a_mir;
    uint16_t *a16 = buf_reserve(&t_a, (size_t)a_rows * a_cols * 2);
    if (a16) to_bf16(a16, A, a_rows, a_cols, lda);
    return a16;
}

int eid_gemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                  int ldb, float beta, float *C, int ldc) {
    int team;
    if (M <= 0 || N <= 0 || K <= 0 || thread_setup(&team) != 0) return -1;
    /* each operand: its weight mirror as stored, or rounded here into a contiguous buffer; a mirrored
     * weight times a few rows (decoding) is read from a packed copy (see the top of this file), made
     * from the mirror's bf16 copy or, for a weight registered without one, from its fp32 values */
    int b_rows = tb ? N : K, b_cols = tb ? K : N, a_ld, a_mir;
    const uint16_t *b_mir;
    int pack = mirror_of(B, b_rows, b_cols, ldb, &b_mir) != NULL && M <= EID_BF16_PACK_MAX_ROWS;
    const uint16_t *a_op = a_operand(ta, M, K, A, lda, &a_ld, &a_mir);
    if (!a_op) return -1;
    Key k = {1, ta, tb, M, N, K, a_ld, ldb, ldc, team, pack, alpha, beta};
    int rc = -2;
    if (pack) rc = run_matmul(&k, a_op, b_mir ? (const void *)b_mir : B, !b_mir, C);
    if (rc == -2) { /* not packed: B's bf16 copy, or B rounded here */
        k.packed = 0;
        uint16_t *b16 = b_mir ? NULL : buf_reserve(&t_b, (size_t)b_rows * b_cols * 2);
        if (!b_mir && !b16) return -1;
        if (!b_mir) to_bf16(b16, B, b_rows, b_cols, ldb), k.ldb = b_cols;
        rc = run_matmul(&k, a_op, b_mir ? (const void *)b_mir : b16, 0, C);
    }
    /* bf16 copies read in place (a packed copy counted itself) */
    uint64_t mirror_bytes = (a_mir ? (uint64_t)M * K * 2 : 0) + (b_mir && !k.packed ? (uint64_t)K * N * 2 : 0);
    if (rc == 0 && mirror_bytes) __atomic_fetch_add(&g_weight_read, mirror_bytes, __ATOMIC_RELAXED);
    return rc;
}

int eid_gemm_bf16_b16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const uint16_t *B16,
                      int ldb, float beta, float *C, int ldc) {
    int team;
    if (M <= 0 || N <= 0 || K <= 0 || thread_setup(&team) != 0) return -1;
    int a_ld, a_mir;
    const uint16_t *a_op = a_operand(ta, M, K, A, lda, &a_ld, &a_mir);
    if (!a_op) return -1;
    Key k = {1, ta, tb, M, N, K, a_ld, ldb, ldc, team, 0, alpha, beta};
    return run_matmul(&k, a_op, B16, 0, C);
}

int eid_gemm_onednn_f32(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                        int ldb, float beta, float *C, int ldc) {
    int team;
    if (M <= 0 || N <= 0 || K <= 0 || thread_setup(&team) != 0) return -1;
    Key k = {0, ta, tb, M, N, K, lda, ldb, ldc, team, 0, alpha, beta};
    return run_matmul(&k, A, B, 0, C);
}
