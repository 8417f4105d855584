/* bench/gemv_stream.c — how fast one-row products stream their weights from memory: oneDNN's bf16
 * matmul (weights packed in the layout it asks for, and in the plain row-major layout) against
 * OpenBLAS's fp32 sgemv, at the weight shapes of a 130M Mamba decode step (docs/performance.md "Mixed
 * precision", the decode paragraph). It separates the library's streaming from eidetic's own per-token
 * work: a decode step cannot beat these rates.
 *   make build/bench/gemv_stream && OPENBLAS_CORETYPE=SKYLAKEX build/bench/gemv_stream [THREADS]
 * OpenBLAS may pick a narrower core than the CPU has on a VM (`eidetic` itself re-executes with the
 * right OPENBLAS_CORETYPE, docs/performance.md); this program does not, so it prints the core in use.
 * Cold reads: each shape is multiplied over enough copies of its weights (≈ 400 MB per layout) that no
 * copy is still in cache when it is read again; the best of 6 passes is reported. Each shape is read
 * from 4 KiB-page copies and from huge-page copies (what eidetic's large buffers get), alternated. A CPU without
 * AVX-512 BF16 runs oneDNN's emulation, which measures nothing about bf16 hardware (it says so). */
#include <cblas.h>
#include <dnnl.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CHECK(x)                                                                                                       \
    do {                                                                                                               \
        if ((x) != dnnl_success) {                                                                                     \
            fprintf(stderr, "gemv_stream: oneDNN refused %s\n", #x);                                                   \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
enum { PASSES = 6, MAX_COPIES = 4096 };
static const double TOTAL_BYTES = 400e6;

/* The rotating copies: 4 KiB pages, or on 2 MiB boundaries with MADV_HUGEPAGE (what eidetic's large
 * buffers get: eid_aligned_alloc, docs/performance.md "Huge pages"). */
static void *copies_alloc(size_t bytes, int huge) {
    size_t align = huge ? (size_t)2 << 20 : 4096, sz = (bytes + align - 1) / align * align;
    void *p = aligned_alloc(align, sz);
    if (!p) fprintf(stderr, "gemv_stream: out of memory\n"), exit(1);
    if (huge) madvise(p, sz, MADV_HUGEPAGE);
    else madvise(p, sz, MADV_NOHUGEPAGE); /* whatever the system's THP default */
    return p;
}

static int copies_for(size_t bytes) {
    int n = (int)(TOTAL_BYTES / (double)bytes);
    return n < 2 ? 2 : n > MAX_COPIES ? MAX_COPIES : n;
}

/* y[1,N] = x[1,K]·Wᵀ in bf16 with fp32 output, W [N,K] row-major (eidetic's weight layout), read from
 * rotating copies; packed: W in the layout the primitive picks (format "any"). The weights' values do
 * not matter to the time, so no reorder is run. GB/s; *impl: oneDNN's kernel. */
static double onednn_bf16(int N, int K, int packed, int huge, const char **impl) {
    dnnl_memory_desc_t a, c, w_req;
    dnnl_dims_t da = {1, K}, dw = {K, N}, dc = {1, N};
    CHECK(dnnl_memory_desc_init_by_tag(&a, 2, da, dnnl_bf16, dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_tag(&c, 2, dc, dnnl_f32, dnnl_ab));
    /* B [K,N] is W transposed: plain W is B in column-major order ("ba") */
    CHECK(dnnl_memory_desc_init_by_tag(&w_req, 2, dw, dnnl_bf16, packed ? dnnl_format_tag_any : dnnl_ba));
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    CHECK(dnnl_matmul_desc_init(&md, &a, &w_req, NULL, &c));
    CHECK(dnnl_primitive_desc_create(&pd, &md, NULL, g_engine, NULL));
    CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, impl));
    CHECK(dnnl_primitive_create(&prim, pd));
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    size_t bytes = dnnl_memory_desc_get_size(wmd), stride = (bytes + 4095) / 4096 * 4096;
    int n = copies_for(bytes);
    char *w = copies_alloc(stride * n, huge);
    uint16_t *x = aligned_alloc(64, ((size_t)K * 2 + 63) / 64 * 64);
    float *y = aligned_alloc(64, ((size_t)N * 4 + 63) / 64 * 64);
    if (!x || !y) fprintf(stderr, "gemv_stream: out of memory\n"), exit(1);
    for (size_t i = 0; i < stride * n; i++) w[i] = (char)((i % 5) ? 0x3c : 0); /* small finite bf16 values */
    for (int i = 0; i < K; i++) x[i] = 0x3f80;                                   /* 1.0 */
    dnnl_memory_t mx, my, *mw = malloc(sizeof *mw * n);
    CHECK(dnnl_memory_create(&mx, &a, g_engine, x));
    CHECK(dnnl_memory_create(&my, &c, g_engine, y));
    for (int i = 0; i < n; i++) CHECK(dnnl_memory_create(&mw[i], wmd, g_engine, w + stride * i));
    double best = 0;
    for (int p = 0; p < PASSES; p++) {
        double t0 = omp_get_wtime();
        for (int i = 0; i < n; i++) {
            dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw[i]}, {DNNL_ARG_DST, my}};
            CHECK(dnnl_primitive_execute(prim, g_stream, 3, args));
            CHECK(dnnl_stream_wait(g_stream));
        }
        double gbs = (double)bytes * n / (omp_get_wtime() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    for (int i = 0; i < n; i++) dnnl_memory_destroy(mw[i]);
    dnnl_memory_destroy(mx), dnnl_memory_destroy(my), dnnl_primitive_destroy(prim), dnnl_primitive_desc_destroy(pd);
    free(mw), free(w), free(x), free(y);
    return best;
}

/* the same product in fp32 through OpenBLAS (what `--precision fp32` decodes with). GB/s. */
static double openblas_sgemv(int N, int K, int huge) {
    size_t elems = (size_t)N * K, stride = (elems * 4 + 4095) / 4096 * 1024; /* floats per copy */
    int n = copies_for(elems * 4);
    float *w = copies_alloc(stride * 4 * n, huge), *x = aligned_alloc(64, (size_t)K * 4 + 64),
          *y = aligned_alloc(64, (size_t)N * 4 + 64);
    if (!x || !y) fprintf(stderr, "gemv_stream: out of memory\n"), exit(1);
    for (size_t i = 0; i < stride * n; i++) w[i] = 1e-3f * (float)(i % 7);
    for (int i = 0; i < K; i++) x[i] = 1;
    double best = 0;
    for (int p = 0; p < PASSES; p++) {
        double t0 = omp_get_wtime();
        for (int i = 0; i < n; i++) cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1, w + stride * i, K, x, 1, 0, y, 1);
        double gbs = (double)elems * 4 * n / (omp_get_wtime() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    free(w), free(x), free(y);
    return best;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : omp_get_max_threads();
    if (threads < 1) return fprintf(stderr, "usage: gemv_stream [THREADS >= 1]\n"), 2;
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    CHECK(dnnl_engine_create(&g_engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags));
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    int native = isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx;
    printf("gemv_stream: %d thread(s); OpenBLAS core %s; %s\n", threads, openblas_get_corename(),
           native ? "native bf16" : "NO native bf16: oneDNN emulates it, the bf16 column says nothing about bf16 hardware");
    /* a 130M Mamba layer (d 768, d_inner 1536, dt_rank 48, d_state 16) and the 50 280-token head */
    static const struct { const char *name; int N, K; } shapes[] = {
        {"in_proj", 3072, 768}, {"out_proj", 768, 1536}, {"x_proj", 80, 1536}, {"dt_proj", 1536, 48}, {"head", 50280, 768}};
    printf("| weight | N x K | oneDNN kernel packed / plain | bf16 packed GB/s, 4 KiB / huge pages | bf16 plain GB/s (huge) | "
           "fp32 sgemv GB/s, 4 KiB / huge pages | bf16 packed time / fp32 time (huge) |\n");
    printf("|---|---|---|---:|---:|---:|---:|\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s].N, K = shapes[s].K;
        const char *impl_packed, *impl_plain;
        double packed[2] = {0, 0}, fp32[2] = {0, 0}, v;
        for (int round = 0; round < 2; round++) /* the page sizes alternated: this VM's bandwidth drifts */
            for (int huge = 0; huge < 2; huge++) {
                if ((v = onednn_bf16(N, K, 1, huge, &impl_packed)) > packed[huge]) packed[huge] = v;
                if ((v = openblas_sgemv(N, K, huge)) > fp32[huge]) fp32[huge] = v;
            }
        double plain = onednn_bf16(N, K, 0, 1, &impl_plain);
        /* bytes halve in bf16, so the time ratio is (fp32 GB/s / 2) / bf16 GB/s */
        printf("| %s | %d x %d | %s / %s | %.1f / %.1f | %.1f | %.1f / %.1f | %.2f |\n", shapes[s].name, N, K, impl_packed,
               impl_plain, packed[0], packed[1], plain, fp32[0], fp32[1], fp32[1] / 2 / packed[1]);
    }
    dnnl_stream_destroy(g_stream);
    dnnl_engine_destroy(g_engine);
    return 0;
}
