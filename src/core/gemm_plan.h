/* gemm_plan.h — which library multiplies each shape (docs/performance.md "Choosing the library per
 * shape", issue #18 item 4).
 *
 * eid_gemm (core/runtime.c) can run a product through OpenBLAS (sgemm / sgemv), oneDNN in fp32, or
 * oneDNN in bf16 (--precision bf16). Which is fastest depends on the shape and the CPU: on the
 * development Xeon oneDNN's fp32 matmul is 1.1-1.8x OpenBLAS's sgemm on the narrow products of small
 * models and equal on large ones. With --gemm-plan fixed (the default) the choice is the historical
 * one (OpenBLAS for fp32, oneDNN for bf16) and nothing is timed. With --gemm-plan measure, the first
 * product of each shape times every candidate library on that product's own operands (into a scratch
 * output: the caller's C is untouched), picks the fastest, logs the choice and keeps it for the rest of
 * the process.
 *
 * Why it is not the default: the libraries round differently, so the choice changes the low bits of
 * every result, and a timing can differ between two runs: measured plans are reproducible only when
 * replayed. A plan is therefore a value that can be written and read back (io/gemm_plan_file.h;
 * `train` keeps it in each checkpoint so that --resume replays it, bit-exactly), and a shape found in
 * the table is never re-measured. Entries hold the measured times for the log and the file; only
 * `use` decides.
 *
 * Thread-safe: lookups and measurements hold one mutex (a measurement happens once per shape). */
#ifndef EIDETIC_GEMM_PLAN_H
#define EIDETIC_GEMM_PLAN_H
#include <stddef.h>

enum { EID_GEMM_OPENBLAS = 0, EID_GEMM_ONEDNN_F32 = 1, EID_GEMM_ONEDNN_BF16 = 2, EID_GEMM_N_BACKENDS = 3 };
enum { EID_PLAN_FIXED = 0, EID_PLAN_MEASURE = 1 };
#define EID_GEMM_PLAN_MAX 4096 /* shapes per process; beyond it, products use the fixed choice */

/* What a choice depends on. team: the threads the product runs on (1 inside a data-parallel shard);
 * mirror: bf16 mode, 1 when an operand is read from a weight buffer's bf16 mirror (no rounding pass). */
typedef struct {
    int prec; /* EID_PREC_* in effect */
    int ta, tb, M, N, K, team, mirror;
} EidGemmShape;

typedef struct {
    EidGemmShape shape;
    int use;                        /* EID_GEMM_* */
    double us[EID_GEMM_N_BACKENDS]; /* best measured time per product in µs; < 0: not measured */
} EidGemmChoice;

const char *eid_gemm_backend_name(int backend); /* "openblas", "onednn-f32", "onednn-bf16" */
int eid_gemm_backend_parse(const char *name);   /* the inverse, or -1 */

/* EID_PLAN_FIXED or EID_PLAN_MEASURE; verbose: log each measured choice (one line per shape). */
void eid_gemm_plan_set_mode(int mode, int verbose);
int eid_gemm_plan_mode(void);

/* The table: cleared, filled from a file (put), listed in insertion order (count/get). put returns 0
 * when added, 1 when the shape is already planned (the entry in the table stays), -1 when the table
 * is full or the choice is malformed (eid_error says which). */
void eid_gemm_plan_clear(void);
int eid_gemm_plan_put(const EidGemmChoice *c);
int eid_gemm_plan_count(void);
int eid_gemm_plan_get(int i, EidGemmChoice *out);

/* For eid_gemm only. The library for shape s among cands[0..n) (n >= 1; fallback is the one fixed
 * mode would use, kept unless another is at least 5% faster). In measure mode a shape not in the table
 * is measured: run(backend, ctx, out) computes the product into `out`, a scratch copy of the caller's
 * output region C[0..c_span); it returns 0, or -1 when that library refused the shape (it then drops
 * out). Returns the chosen EID_GEMM_*. */
typedef int (*EidGemmRunFn)(int backend, void *ctx, float *out);
int eid_gemm_plan_choose(const EidGemmShape *s, const int *cands, int n, int fallback, EidGemmRunFn run, void *ctx,
                         const float *C, size_t c_span);

#endif
