/* cmd_bench.c — `eidetic bench` (issue #5): training step time, achieved GFLOP/s and MFU against
 * the sgemm peak measured in the same run; decoding latency against the memory-bandwidth bound;
 * per-token cost vs sequence length; peak memory vs the planned memory. docs/performance.md.
 *
 * Every measured row runs in a child process (this binary, `bench --child train|decode` with one
 * configuration) so that its peak RSS is its own and a crash costs one row. The child prints one
 * JSON object on stdout; the parent collects them into Markdown tables (stdout, DIR/bench.md),
 * DIR/bench.jsonl (+ --json FILE, appended) and a gnuplot plot of the scaling rows. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "eidetic.h"
#include "cli/cli.h"
#include "core/common.h"
#include "io/files.h"
#include "io/opts.h"
#include "tools/spawn.h"

enum { S_PEAK = 1, S_TRAIN = 2, S_DECODE = 4, S_SCALING = 8, S_ALL = 15 };
/* Mixer lists come from the library's registry (eidetic_mixer_*): a new mixer is benchmarked
 * without touching this file. ALL_MIXERS: every one; DECODE_MIXERS: those whose decode state does
 * not grow with the context (no KV cache). */
static const char *registry_mixers(unsigned without, const char *sep) {
    static char buf[3][256];
    char *b = buf[without != 0 ? 1 : sep[1] ? 2 : 0];
    b[0] = 0;
    for (int i = 0; i < eidetic_mixer_count(); i++)
        if (!(eidetic_mixer_options(i) & without)) {
            size_t k = strlen(b);
            snprintf(b + k, sizeof buf[0] - k, "%s%s", k ? sep : "", eidetic_mixer_name(i));
        }
    return b;
}
#define ALL_MIXERS registry_mixers(0, ",")
#define DECODE_MIXERS registry_mixers(EIDETIC_MIXER_KV_CACHE, ",")
#define MIXER_NAMES registry_mixers(0, ", ") /* for messages */
/* a mixer's options (EIDETIC_MIXER_*), 0 if unknown */
static unsigned mixer_options(const char *name) { return eidetic_mixer_options(eidetic_mixer_index(name)); }
#define UNSET INT_MIN /* a flag not given */

typedef struct {
    int suites, threads, quick, steps, no_plots, repeat;
    double min_time;
    char out[512], json[512], mixers[256];
    /* one configuration: the train suite's single-config flags, and every child's */
    char loss[8];
    int d_model, n_layer, d_ff, seq_len, batch, vocab, kv_pairs, label_every, window, shards;
    double peak_gflops, bw_gbs; /* measured by the parent, handed to children */
    /* children only */
    char child[16], row[24], label[48];
    char precision[8]; /* --precision: fp32 (default) or bf16, for every row */
    char gemm_plan[512]; /* --gemm-plan: fixed (default), measure or a plan file, for every row */
    int context; /* decode: time the steps after this many tokens (scaling) */
    /* derived */
    int single, out_given;
    char exe[1024];
} BenchOpts;

#define O(n, t, f, h) {n, t, offsetof(BenchOpts, f), sizeof(((BenchOpts *)0)->f), h}
static const OptDesc bench_opts[] = {
    O("threads", OPT_INT, threads, "threads (default: all cores, or OMP_NUM_THREADS)"),
    O("precision", OPT_STR, precision, "matrix-product precision of every row: fp32 (default), bf16 (oneDNN; fp32 on CPUs without native bf16) or auto (bf16 for decoding products only)"),
    O("gemm-plan", OPT_STR, gemm_plan, "which library multiplies each matrix shape, in every row: fixed (default), measure (timed during the warm-up steps, fastest kept) or a plan file"),
    O("quick", OPT_FLAG, quick, "tiny sizes, seconds: a smoke test of the benchmark, not a measurement"),
    O("steps", OPT_INT, steps, "train rows: at least N timed steps (default 5; decoding: at least 100)"),
    O("min-time", OPT_DBL, min_time, "train rows: time steps for at least S seconds (default 1; median reported)"),
    O("repeat", OPT_INT, repeat, "train suite: run every row N times, in N passes over all rows, and report the pass with the median step (default 3; 1 with --quick or a single configuration)"),
    O("out", OPT_STR, out, "tables, JSON rows and plots go to DIR (default bench/results; with --json only FILE)"),
    O("json", OPT_STR, json, "append one JSON object per measured row to FILE"),
    O("no-plots", OPT_FLAG, no_plots, "no gnuplot plot of the scaling suite"),
    O("mixer", OPT_STR, mixers, "comma list of mixers for every suite (default every registered mixer; decode: those without a growing KV cache)"),
    O("d-model", OPT_INT, d_model, "train: one configuration of width D (flags not given: config A at d_model 128)"),
    O("n-layer", OPT_INT, n_layer, "train: layers"),
    O("d-ff", OPT_INT, d_ff, "train: SwiGLU MLP hidden size (0 = no MLP)"),
    O("seq-len", OPT_INT, seq_len, "train: sequence length"),
    O("batch", OPT_INT, batch, "train: batch size"),
    O("shards", OPT_INT, shards, "train: at most N data-parallel shards per batch (`eidetic train --shards`): the largest divisor of each row's batch <= N (default 0: as train, one per thread when d_model <= 256)"),
    O("loss", OPT_STR, loss, "train: mqar (loss at the K query positions) | lm (next token at every position)"),
    O("kv-pairs", OPT_INT, kv_pairs, "train, mqar loss: key-value pairs K (default seq-len / 16)"),
    O("label-every", OPT_INT, label_every, "train, lm loss: label every N-th position (default 1)"),
    O("vocab", OPT_INT, vocab, "vocabulary (default 8192)"),
    O("window", OPT_INT, window, "swa window W (default 64)"),
    O("peak-gflops", OPT_DBL, peak_gflops, "use this sgemm peak for MFU instead of measuring it"),
    O("bw-gbs", OPT_DBL, bw_gbs, "use this memory bandwidth (GB/s) instead of measuring it"),
    /* internal: how the parent runs one row in a child process */
    O("child", OPT_STR, child, NULL),
    O("row", OPT_STR, row, NULL),
    O("label", OPT_STR, label, NULL),
    O("context", OPT_INT, context, NULL),
};
#undef O
static const int n_bench_opts = sizeof bench_opts / sizeof bench_opts[0];

static void bench_help(void) {
    printf("usage: eidetic bench [suite...] [options]\n\n"
           "Measures this engine on this machine and prints Markdown tables with ratios (docs/performance.md).\n"
           "Each row runs in its own process, so its peak memory is its own. Progress and the estimated time\n"
           "left go to stderr; the full run takes a few minutes on 2 cores.\n\n"
           "suites (default all):\n"
           "  peak      sgemm GFLOP/s at the model's shapes and 1024^3 (max = the peak for MFU) and memory\n"
           "            read bandwidth of a 512 MiB buffer, GB/s (always measured: the other suites use them)\n"
           "  train     step time (forward + backward + AdamW), tokens/s, GFLOP/s, MFU %% and peak RSS vs\n"
           "            planned memory, per mixer, for config A (d_model 128 and 256, 2 layers, seq 256, batch\n"
           "            16, MQAR loss) and config B (d_model 512, 4 layers + SwiGLU, seq 1024, batch 4, LM loss)\n"
           "  decode    one-token step latency and tokens/s at batch 1 and 16, 24 layers x d_model 768\n"
           "            (the mixers whose state does not grow with the context), against the bandwidth bound\n"
           "  scaling   per-token train and decode cost at sequence lengths 256..16384 (table + plot)\n"
           "  all       all of the above\n\noptions:\n");
    for (int i = 0; i < n_bench_opts; i++) {
        if (!bench_opts[i].help) continue;
        const char *t = bench_opts[i].type == OPT_FLAG ? "" : bench_opts[i].type == OPT_STR ? " S" : bench_opts[i].type == OPT_DBL ? " X" : " N";
        char left[64];
        snprintf(left, sizeof left, "--%s%s", bench_opts[i].name, t);
        printf("  %-20s %s\n", left, bench_opts[i].help);
    }
    printf("\nOutputs: DIR/bench.md (the tables), DIR/bench.jsonl (one JSON object per row), DIR/scaling.png\n"
           "and .svg (gnuplot) and DIR/scaling.gp. Example, one configuration:\n"
           "  eidetic bench train --mixer mamba --d-model 256 --seq-len 512 --batch 8 --loss lm --json rows.jsonl\n");
}

/* ------------------------------------------------------------------ options ---- */

static int parse_suites(BenchOpts *o, int argc, char **argv, int *used) {
    static const char *names[] = {"peak", "train", "decode", "scaling", "all"};
    static const int bits[] = {S_PEAK, S_TRAIN, S_DECODE, S_SCALING, S_ALL};
    int i = 0;
    for (; i < argc && strncmp(argv[i], "--", 2) != 0; i++) {
        int k = 0;
        while (k < 5 && strcmp(argv[i], names[k]) != 0) k++;
        if (k == 5) return eid_error("unknown suite '%s' (known: peak, train, decode, scaling, all)", argv[i]), -1;
        o->suites |= bits[k];
    }
    *used = i;
    if (!o->suites) o->suites = S_ALL;
    return 0;
}

/* each name in a comma list is a known mixer */
static int check_mixers(const char *list) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    int n = 0;
    for (char *s = NULL, *t = strtok_r(buf, ",", &s); t; t = strtok_r(NULL, ",", &s), n++)
        if (eidetic_mixer_index(t) < 0) return eid_error("--mixer: unknown mixer '%s' (known: %s)", t, MIXER_NAMES), -1;
    return n ? 0 : (eid_error("--mixer: expected a comma list of mixers (known: %s)", MIXER_NAMES), -1);
}

static int check_range(int v, int lo, int hi, const char *flag) {
    if (v == UNSET) return 0;
    if (v < lo || v > hi) return eid_error("%s: must be in [%d, %d], got %d", flag, lo, hi, v), -1;
    return 0;
}

static int validate(BenchOpts *o) {
    if (check_range(o->threads, 0, 4096, "--threads") || check_range(o->steps, 1, 100000, "--steps") ||
        check_range(o->d_model, 1, 65536, "--d-model") || check_range(o->n_layer, 1, EIDETIC_MAX_LAYERS, "--n-layer") ||
        check_range(o->d_ff, 0, 1 << 20, "--d-ff") || check_range(o->seq_len, 2, 1 << 20, "--seq-len") ||
        check_range(o->batch, 1, 1 << 16, "--batch") || check_range(o->kv_pairs, 1, 1 << 20, "--kv-pairs") ||
        check_range(o->label_every, 1, 1 << 20, "--label-every") || check_range(o->vocab, 2, 1 << 24, "--vocab") ||
        check_range(o->window, 1, 1 << 24, "--window") || check_range(o->context, 0, 1 << 24, "--context") ||
        check_range(o->shards, 0, EIDETIC_MAX_SHARDS, "--shards") || check_range(o->repeat, 1, 100, "--repeat"))
        return -1;
    if (!(o->min_time >= 0 && o->min_time <= 3600)) return eid_error("--min-time: must be in [0, 3600] seconds, got %g", o->min_time), -1;
    if (o->peak_gflops < 0 || o->bw_gbs < 0) return eid_error("--peak-gflops/--bw-gbs: must be > 0"), -1;
    if (o->loss[0] && strcmp(o->loss, "mqar") && strcmp(o->loss, "lm"))
        return eid_error("--loss: expected mqar or lm, got '%s'", o->loss), -1;
    if (o->mixers[0] && check_mixers(o->mixers) != 0) return -1;
    if (o->child[0] && strcmp(o->child, "train") && strcmp(o->child, "decode"))
        return eid_error("--child: expected train or decode, got '%s'", o->child), -1;
    return 0;
}

static int bench_parse(BenchOpts *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->min_time = NAN, o->steps = UNSET, o->threads = 0, o->repeat = UNSET;
    o->d_model = o->n_layer = o->d_ff = o->seq_len = o->batch = o->kv_pairs = o->label_every = UNSET;
    o->vocab = o->window = UNSET;
    int used;
    if (parse_suites(o, argc - 2, argv + 2, &used) != 0) return -1;
    if (opts_parse(bench_opts, n_bench_opts, o, argc - 2 - used, argv + 2 + used, "bench") != 0) return -1;
    o->out_given = o->out[0] != 0;
    if (!o->out[0]) snprintf(o->out, sizeof o->out, "bench/results");
    if (isnan(o->min_time)) o->min_time = o->quick ? 0.05 : 1.0;
    o->single = o->d_model != UNSET || o->n_layer != UNSET || o->d_ff != UNSET || o->seq_len != UNSET ||
                o->batch != UNSET || o->loss[0] || o->kv_pairs != UNSET || o->label_every != UNSET;
    if (o->repeat == UNSET) o->repeat = o->quick || o->single || o->child[0] ? 1 : 3;
    return validate(o);
}

/* ------------------------------------------------------------ small helpers ---- */

/* a field of /proc/self/status in KiB (VmHWM: peak resident set of this process image), or -1 */
static double status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':') v = atof(line + n + 1);
    if (f) fclose(f);
    return v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void fmt_time(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e6) snprintf(buf, n, "--");
    else snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
}

/* The model of one row as config.json text (malloc'd): n_layer blocks of the mixer, tied head; a
 * sliding-window mixer gets window W; a mixer with a KV cache keeps max(2048, context) tokens so that
 * decoding after `context` tokens is full attention. */
static char *bench_config(const BenchOpts *o, const char *mixer) {
    unsigned opt = mixer_options(mixer); /* the options the mixer declares */
    char layer[160], *text = NULL;
    size_t len = 0;
    snprintf(layer, sizeof layer, "{\"mixer\": \"%s\"", mixer);
    if (opt & EIDETIC_MIXER_WINDOW) snprintf(layer + strlen(layer), sizeof layer - strlen(layer), ", \"window\": %d", o->window);
    if (opt & EIDETIC_MIXER_KV_CACHE)
        snprintf(layer + strlen(layer), sizeof layer - strlen(layer), ", \"max_len\": %d", EID_MAX(2048, o->context));
    FILE *f = open_memstream(&text, &len);
    fprintf(f, "{\"vocab_size\": %d, \"d_model\": %d, \"d_ff\": %d, \"tie_embeddings\": true, \"norm_eps\": 1e-5, "
               "\"layers\": [", o->vocab, o->d_model, o->d_ff);
    for (int i = 0; i < o->n_layer; i++) fprintf(f, "%s%s}", i ? ", " : "", layer);
    fprintf(f, "]}");
    fclose(f);
    return text;
}

/* The row's model with weights from seed 1; NULL + eid_error. */
static eidetic_model *bench_model(const BenchOpts *o, const char *mixer) {
    char *js = bench_config(o, mixer);
    eidetic_model *m = NULL;
    if (eidetic_model_from_config(js, 1, &m) != EIDETIC_OK) eid_error("%s", eidetic_last_error());
    free(js);
    return m;
}

/* The task configuration of an MQAR row (the library resolves it as `eidetic train` would). */
static eidetic_train_config *mqar_config(int vocab, int seq_len, int kv_pairs) {
    char v[16], l[16], k[16];
    snprintf(v, sizeof v, "%d", vocab), snprintf(l, sizeof l, "%d", seq_len), snprintf(k, sizeof k, "%d", kv_pairs);
    char *av[] = {"--task", "mqar", "--vocab", v, "--seq-len", l, "--kv-pairs", k};
    eidetic_train_config *c = NULL;
    if (eidetic_train_config_from_args(8, av, &c) != EIDETIC_OK) eid_error("%s", eidetic_last_error());
    return c;
}

/* ------------------------------------------------------------- train child ---- */

/* Synthetic batches, made before timing: MQAR from the task's data source (labels only at the K
 * query rows, with its flags, as the trainer reads it) or an LM stream (uniform random tokens, label = next token every label_every positions). */
#define N_BATCH 2
typedef struct {
    int *tokens, *labels;  /* [N_BATCH][B*T] */
    unsigned char *flags;  /* [N_BATCH][B*T] or NULL (the LM stream: one segment per row, all CAUSAL) */
    int max_labels;       /* per batch */
    size_t bytes;
} BenchData;

/* A uniform random token in [0, vocab) from a splitmix64 stream (the LM rows and decoding inputs:
 * any tokens do, the work of a step does not depend on them). */
static int random_token(uint64_t *state, int vocab) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (int)((z >> 11) % (uint64_t)vocab);
}

static int bench_data(const BenchOpts *o, BenchData *d) {
    int B = o->batch, T = o->seq_len;
    size_t n = (size_t)B * T;
    d->tokens = eid_xmalloc(sizeof(int) * n * N_BATCH), d->labels = eid_xmalloc(sizeof(int) * n * N_BATCH);
    d->bytes = 2 * sizeof(int) * n * N_BATCH;
    d->flags = NULL;
    if (!strcmp(o->loss, "mqar")) {
        eidetic_train_config *c = mqar_config(o->vocab, T, o->kv_pairs);
        eidetic_data *src = NULL;
        eidetic_train_info ti;
        if (!c) return -1;
        if (eidetic_data_from_train_config(c, 7, &src) != EIDETIC_OK || eidetic_train_config_info(c, &ti) != EIDETIC_OK)
            return eid_error("%s", eidetic_last_error()), eidetic_train_config_free(c), -1;
        d->flags = eid_xmalloc(n * N_BATCH), d->bytes += n * N_BATCH;
        int rc = 0;
        for (int k = 0; k < N_BATCH && rc == 0; k++)
            if (eidetic_data_next(src, B, d->tokens + k * n, d->labels + k * n, d->flags + k * n) != EIDETIC_OK)
                rc = (eid_error("%s", eidetic_last_error()), -1);
        d->max_labels = B * ti.labels_per_example;
        eidetic_data_free(src), eidetic_train_config_free(c);
        return rc;
    }
    int every = o->label_every;
    for (int k = 0; k < N_BATCH; k++)
        for (int b = 0; b < B; b++) {
            uint64_t r = 7 + 0x100000001b3ULL * ((uint64_t)k * B + b); /* one stream per row */
            int *x = d->tokens + k * n + (size_t)b * T, *y = d->labels + k * n + (size_t)b * T;
            int next = random_token(&r, o->vocab);
            for (int t = 0; t < T; t++) {
                x[t] = next;
                next = random_token(&r, o->vocab);
                y[t] = (t + 1) % every == 0 ? next : EIDETIC_NO_LABEL;
            }
        }
    d->max_labels = B * (T / every);
    return 0;
}

/* One training step: the library's (eidetic_trainer_step_batch: the trainer's train_step, with its
 * shards, gradient sum, norm, clip and AdamW). */
static void bench_step(eidetic_trainer *t, const eidetic_batch *b, eidetic_step_result *r) {
    if (eidetic_trainer_step_batch(t, b, r) != EIDETIC_OK) eid_fatal("bench: %s", eidetic_last_error());
}

static void row_common(cJSON *j, const BenchOpts *o, const eidetic_model *m) {
    const char *mixer = eidetic_model_sublayer_kind(m, 0);
    cJSON_AddStringToObject(j, "suite", o->row[0] ? o->row : o->child);
    cJSON_AddStringToObject(j, "label", o->label);
    cJSON_AddStringToObject(j, "mixer", mixer);
    cJSON_AddStringToObject(j, "precision", o->precision);
    cJSON_AddStringToObject(j, "gemm_plan", o->gemm_plan[0] ? o->gemm_plan : "fixed");
    if (eidetic_gemm_plan_count(NULL) > 0) { /* --gemm-plan measure or a file: what the plan chose */
        cJSON_AddNumberToObject(j, "gemm_plan_shapes", eidetic_gemm_plan_count(NULL));
        cJSON_AddNumberToObject(j, "gemm_plan_onednn_f32", eidetic_gemm_plan_count("onednn-f32"));
        cJSON_AddNumberToObject(j, "gemm_plan_onednn_bf16", eidetic_gemm_plan_count("onednn-bf16"));
    }
    cJSON_AddNumberToObject(j, "d_model", o->d_model);
    cJSON_AddNumberToObject(j, "n_layer", o->n_layer);
    cJSON_AddNumberToObject(j, "d_ff", o->d_ff);
    cJSON_AddNumberToObject(j, "vocab", o->vocab);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "threads", eidetic_n_threads());
    cJSON_AddNumberToObject(j, "params", (double)eidetic_model_n_params(m));
    if (mixer_options(mixer) & EIDETIC_MIXER_WINDOW) cJSON_AddNumberToObject(j, "window", o->window);
}

static void row_print(cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    cJSON_Delete(j);
}

/* --shards N: the largest divisor of the batch that is at most N (as `eidetic train --shards`) */
static int shards_for(int batch, int n) {
    int k = EID_MIN(EID_MIN(n, batch), EIDETIC_MAX_SHARDS);
    while (k > 1 && batch % k) k--;
    return EID_MAX(k, 1);
}

static int child_train(const BenchOpts *o) {
    double base_kb = status_kb("VmRSS");
    BenchData d;
    if (bench_data(o, &d) != 0) return -1;
    eidetic_model *m = bench_model(o, o->mixers);
    if (!m) return -1;
    int B = o->batch, T = o->seq_len;
    eidetic_trainer_params tp = eidetic_trainer_default_params();
    tp.lr = 1e-4, tp.shards = o->shards > 0 ? shards_for(B, o->shards) : 0; /* 0: the library's automatic count */
    eidetic_trainer *tr;
    if (eidetic_trainer_new(m, &tp, &tr) != EIDETIC_OK) return eid_error("%s", eidetic_last_error()), -1;
    size_t n = (size_t)B * T;
    eidetic_batch bt[N_BATCH];
    for (int k = 0; k < N_BATCH; k++) bt[k] = (eidetic_batch){d.tokens + k * n, d.labels + k * n, d.flags ? d.flags + k * n : NULL, B, T};
    /* warm-up: 2 steps, or 1 when a step takes over a second; the FLOP count of the last one is
     * the step's matrix work (the same every step) */
    long step = 0;
    double flops = 0;
    eidetic_step_result sr = {0};
    double tw = eid_now();
    for (int w = 0; w < 2 && (w == 0 || eid_now() - tw < 1.0); w++, step++) {
        bench_step(tr, &bt[step % N_BATCH], &sr);
        flops = sr.flops;
    }
    int warm = (int)step, cap = 10000, ns = 0;
    double *t = eid_xmalloc(sizeof(double) * cap), loss = 0, t0 = eid_now();
    while (ns < cap && (ns < o->steps || eid_now() - t0 < o->min_time)) {
        double s = eid_now();
        bench_step(tr, &bt[step % N_BATCH], &sr);
        t[ns++] = eid_now() - s, step++;
        loss = sr.loss;
    }
    double lo = t[0], hi = t[0];
    for (int i = 0; i < ns; i++) lo = EID_MIN(lo, t[i]), hi = EID_MAX(hi, t[i]);
    double med = median(t, ns), gflop = flops * 1e-9, gflops = gflop / med;
    /* weights, gradients, 2 AdamW moments; every shard's activations and the replicas' gradients */
    eidetic_trainer_info ti;
    eidetic_trainer_get_info(tr, &ti);
    double w_b = (double)ti.state_bytes, act_b = (double)ti.activation_bytes;
    double planned = w_b + act_b + d.bytes, rss = status_kb("VmHWM") * 1024.0;
    cJSON *j = cJSON_CreateObject();
    row_common(j, o, m);
    cJSON_AddNumberToObject(j, "seq_len", T);
    cJSON_AddStringToObject(j, "loss", o->loss);
    if (!strcmp(o->loss, "mqar")) cJSON_AddNumberToObject(j, "kv_pairs", o->kv_pairs);
    else cJSON_AddNumberToObject(j, "label_every", o->label_every);
    cJSON_AddNumberToObject(j, "shards", ti.shards);
    cJSON_AddNumberToObject(j, "labels_per_step", sr.n_labels);
    cJSON_AddNumberToObject(j, "warmup_steps", warm);
    cJSON_AddNumberToObject(j, "steps_timed", ns);
    cJSON_AddNumberToObject(j, "step_ms", med * 1e3);
    cJSON_AddNumberToObject(j, "step_ms_min", lo * 1e3);
    cJSON_AddNumberToObject(j, "step_ms_max", hi * 1e3);
    cJSON_AddNumberToObject(j, "tokens_per_s", n / med);
    cJSON_AddNumberToObject(j, "us_per_token", med * 1e6 / n);
    cJSON_AddNumberToObject(j, "gflop_per_step", gflop);
    cJSON_AddNumberToObject(j, "gflops", gflops);
    cJSON_AddNumberToObject(j, "peak_gflops", o->peak_gflops);
    cJSON_AddNumberToObject(j, "mfu_pct", o->peak_gflops > 0 ? 100 * gflops / o->peak_gflops : NAN);
    cJSON_AddNumberToObject(j, "rss_mb", rss / 1048576);
    cJSON_AddNumberToObject(j, "base_mb", base_kb * 1024.0 / 1048576);
    cJSON_AddNumberToObject(j, "weights_mb", w_b / 1048576); /* weights + grads + 2 AdamW moments */
    cJSON_AddNumberToObject(j, "act_mb", act_b / 1048576);
    cJSON_AddNumberToObject(j, "data_mb", d.bytes / 1048576.0);
    cJSON_AddNumberToObject(j, "planned_mb", planned / 1048576);
    cJSON_AddNumberToObject(j, "mem_ratio", rss / planned);
    cJSON_AddNumberToObject(j, "loss_value", loss);
    row_print(j);
    free(t), free(d.tokens), free(d.labels), free(d.flags);
    eidetic_trainer_free(tr);
    eidetic_model_free(m);
    return 0;
}

/* ------------------------------------------------------------ decode child ---- */

/* heap in use (small blocks + mmapped blocks) */
static size_t heap_bytes(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static double read_gbs(size_t mib, double min_s);

/* One decoding step of the library (eidetic_decoder_step: the model's decoder_step and the logits
 * out); a failure here is a bug in the row's setup. */
static void decode_step(eidetic_decoder *d, const int *tokens, float *logits) {
    if (eidetic_decoder_step(d, tokens, logits) != EIDETIC_OK) eid_fatal("bench: %s", eidetic_last_error());
}

/* Decoding: random tokens, one per sequence per step. Without --context: 10 warm-up steps, then at
 * least 100 timed steps and --min-time / 4 seconds (median). With --context T: T tokens, the last
 * min(64, T/4) timed (median), so the row is the cost of a step after T tokens of context. */
static int child_decode(const BenchOpts *o) {
    char *js = bench_config(o, o->mixers);
    int bad = eidetic_config_check(js) != EIDETIC_OK;
    free(js);
    if (bad) return eid_error("%s", eidetic_last_error()), -1;
    /* this row's own read bandwidth, measured just before it (this VM's bandwidth drifts by up to 2x
     * within minutes); freed before the model exists, so the row's peak RSS is the model's */
    double bw = o->quick ? o->bw_gbs : read_gbs(256, 0.25);
    eidetic_model *m = bench_model(o, o->mixers);
    if (!m) return -1;
    /* the BLAS ceiling of a step: one matrix-vector product over every weight matrix, nothing else */
    double gemv = NAN;
    if (!o->context && eidetic_model_measure_gemv(m, o->quick ? 0.01 : 0.25, &gemv) != EIDETIC_OK)
        return eid_error("%s", eidetic_last_error()), eidetic_model_free(m), -1;
    int nseq = o->batch, V = o->vocab;
    eidetic_decoder *dec;
    if (eidetic_decoder_new(m, nseq, &dec) != EIDETIC_OK) return eid_error("%s", eidetic_last_error()), eidetic_model_free(m), -1;
    float *logits = eid_xmalloc(sizeof(float) * (size_t)nseq * V); /* the step's output, written every step */
    int warm, timed;
    if (o->context > 0) timed = EID_MAX(1, EID_MIN(64, o->context / 4)), warm = o->context - timed;
    else warm = o->quick ? 3 : 10, timed = EID_MAX(o->quick ? 20 : 100, o->steps);
    int total = warm + timed;
    int *tok = eid_xmalloc(sizeof(int) * (size_t)total * nseq);
    uint64_t r = 11;
    for (size_t i = 0; i < (size_t)total * nseq; i++) tok[i] = random_token(&r, V);
    /* with a context exactly `timed` steps (positions must not run on); else at least `timed` steps
     * and at least --min-time / 4 seconds */
    int cap = o->context ? timed : EID_MAX(timed, 100000);
    double *t = eid_xmalloc(sizeof(double) * cap), t_all = 0;
    for (int s = 0; s < warm; s++) decode_step(dec, tok + (size_t)s * nseq, logits);
    double hwm0 = status_kb("VmHWM"); /* first: reading /proc allocates stdio buffers */
    size_t heap0 = heap_bytes();
    unsigned long long bf16_read0 = eidetic_bf16_weight_bytes_read();
    int ns = 0;
    while (ns < cap && (ns < timed || t_all < o->min_time / 4)) {
        const int *x = tok + (size_t)(warm + ns % timed) * nseq;
        double s0 = eid_now();
        decode_step(dec, x, logits);
        t[ns] = eid_now() - s0;
        t_all += t[ns++];
    }
    /* allocation = heap in use changed (malloc'd and mmapped blocks); RSS growth is reported apart:
     * it also counts first touches of planned memory (a KV cache filling up) and stack */
    size_t heap1 = heap_bytes();
    int alloc = heap1 != heap0;
    double rss_growth = status_kb("VmHWM") - hwm0;
    double med = median(t, ns);
    double state = 0;
    for (int s = 0; s < eidetic_model_n_sublayers(m); s++) state += (double)eidetic_model_sublayer_state_floats(m, s);
    /* bytes one step must move: every parameter once (the embedding table = the tied head, read in
     * full by the logits product; the nseq embedding rows are in it), the state read and written. In
     * bf16 the weights the products read as bf16 copies count at the bytes read (half, plus a packed
     * copy's padding: eidetic_bf16_weight_bytes_read), the rest at 4 bytes. */
    double bf16_b = (double)(eidetic_bf16_weight_bytes_read() - bf16_read0) / ns;
    double w_b = (double)eidetic_model_n_params(m) * sizeof(float) - bf16_b, st_b = state * nseq * sizeof(float);
    double bytes = w_b + 2 * st_b, bound = bw > 0 ? bw * 1e9 / bytes * nseq : NAN;
    /* a KV cache is planned for its whole capacity, but a step reads only the tokens in it so far: no
     * byte count, so no bound (null in the JSON, n/a in the table) */
    int kv = 0;
    for (int s = 0; s < eidetic_model_n_sublayers(m); s++) kv |= (eidetic_model_sublayer_options(m, s) & EIDETIC_MIXER_KV_CACHE) != 0;
    if (kv) st_b = bytes = bound = NAN;
    cJSON *j = cJSON_CreateObject();
    row_common(j, o, m);
    if (o->context) cJSON_AddNumberToObject(j, "context", o->context);
    cJSON_AddNumberToObject(j, "warmup_steps", warm);
    cJSON_AddNumberToObject(j, "steps_timed", ns);
    cJSON_AddNumberToObject(j, "step_ms", med * 1e3);
    cJSON_AddNumberToObject(j, "us_per_token", med * 1e6 / nseq);
    cJSON_AddNumberToObject(j, "tokens_per_s", nseq / med);
    cJSON_AddNumberToObject(j, "weight_bytes", w_b);
    cJSON_AddNumberToObject(j, "weight_bytes_bf16", bf16_b);
    cJSON_AddNumberToObject(j, "state_bytes", st_b);
    cJSON_AddNumberToObject(j, "bytes_per_step", bytes);
    cJSON_AddNumberToObject(j, "bw_gbs", bw);
    cJSON_AddNumberToObject(j, "bw_gbs_start", o->bw_gbs);
    cJSON_AddNumberToObject(j, "bound_tokens_per_s", bound);
    cJSON_AddNumberToObject(j, "pct_of_bound", 100 * (nseq / med) / bound);
    cJSON_AddNumberToObject(j, "achieved_gbs", bytes / med * 1e-9);
    cJSON_AddNumberToObject(j, "gemv_gbs", gemv);
    cJSON_AddNumberToObject(j, "pct_of_gemv", 100 * bytes / med * 1e-9 / gemv);
    cJSON_AddStringToObject(j, "alloc_in_step", alloc ? "yes" : "none");
    cJSON_AddNumberToObject(j, "heap_growth_bytes", (double)heap1 - (double)heap0);
    cJSON_AddNumberToObject(j, "rss_growth_kb", rss_growth);
    cJSON_AddNumberToObject(j, "rss_mb", status_kb("VmHWM") / 1024);
    row_print(j);
    free(t), free(tok), free(logits);
    eidetic_decoder_free(dec);
    eidetic_model_free(m);
    return 0;
}

/* -------------------------------------------------------------- peak suite ---- */

typedef struct {
    int M, N, K;
    const char *what;
} Shape;

/* best GFLOP/s of the library's matrix product C[M,N] = A[M,K]·B[K,N] (eidetic_measure_gemm) */
static double sgemm_gflops(int M, int N, int K, double min_s) {
    double g = 0;
    if (eidetic_measure_gemm(M, N, K, min_s, &g) != EIDETIC_OK) eid_fatal("bench: %s", eidetic_last_error());
    return g;
}

/* Read bandwidth: all threads sum a buffer far larger than the last-level cache; 64 independent
 * accumulators per thread so that the adds vectorise and never limit the loads. */
static volatile float g_sink;
static double read_gbs(size_t mib, double min_s) {
    size_t n = mib << 18; /* floats */
    float *p = eid_aligned_alloc(n * sizeof(float));
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) p[i] = 1.0f;
    double best = 0, spent = 0;
    for (int r = 0; r < 1000 && (r < 3 || spent < min_s); r++) {
        double t0 = eid_now(), total = 0;
#pragma omp parallel reduction(+ : total)
        {
            float acc[64] = {0};
#pragma omp for schedule(static) nowait
            for (size_t i = 0; i < n; i += 64)
                for (int j = 0; j < 64; j++) acc[j] += p[i + j];
            for (int j = 0; j < 64; j++) total += acc[j];
        }
        double dt = eid_now() - t0;
        g_sink = (float)total;
        spent += dt;
        best = EID_MAX(best, n * sizeof(float) / dt * 1e-9);
    }
    free(p);
    return best;
}

static cJSON *peak_row(const char *kind, const char *what, double v) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "suite", "peak");
    cJSON_AddStringToObject(j, "kind", kind);
    cJSON_AddStringToObject(j, "shape", what);
    cJSON_AddNumberToObject(j, kind[0] == 's' ? "gflops" : "gbs", v);
    cJSON_AddNumberToObject(j, "threads", eidetic_n_threads());
    cJSON_AddStringToObject(j, "blas_core", eidetic_blas_core());
    return j;
}

/* ------------------------------------------------------------------- parent ---- */

typedef struct {
    char kind[8], row[24], label[48], mixer[32], loss[8];
    int d_model, n_layer, d_ff, seq_len, batch, vocab, kv_pairs, label_every, context, steps;
    int pass, passes; /* train rows: pass k of `passes` (--repeat) */
    double min_time, est_s;
} Job;

typedef struct {
    BenchOpts *o;
    Job *jobs;
    int n, cap, failed;
    cJSON *rows; /* array of every row, peak rows first */
    FILE *jsonl;  /* DIR/bench.jsonl, or NULL */
    int json_fd;  /* --json FILE (O_APPEND), or -1 */
    double t_start, est_done, real_done;
    cJSON *pass_rows; /* --repeat: rows of the passes so far, until the median pass is emitted */
} Bench;

/* the rows of a comma list, one callback per mixer (strtok on a copy) */
#define FOR_MIXERS(list, mx)                                                                                      \
    char mx##_buf[256];                                                                                           \
    snprintf(mx##_buf, sizeof mx##_buf, "%.255s", list);                                                             \
    for (char *mx##_s = NULL, *mx = strtok_r(mx##_buf, ",", &mx##_s); mx; mx = strtok_r(NULL, ",", &mx##_s))

static Job *job_add(Bench *b, const char *kind, const char *row, const char *label, const char *mixer) {
    if (b->n == b->cap) b->jobs = eid_xrealloc(b->jobs, sizeof(Job) * (size_t)(b->cap = b->cap ? 2 * b->cap : 64));
    Job *j = &b->jobs[b->n++];
    memset(j, 0, sizeof *j);
    snprintf(j->kind, sizeof j->kind, "%s", kind), snprintf(j->row, sizeof j->row, "%s", row);
    snprintf(j->label, sizeof j->label, "%s", label), snprintf(j->mixer, sizeof j->mixer, "%s", mixer);
    j->vocab = b->o->vocab, j->min_time = b->o->min_time, j->steps = b->o->steps;
    return j;
}

/* Rough seconds of a job, for the progress line only: matrix work at a third of the peak (6·N·P for
 * the weights, attention's T² terms), decoding at the bandwidth, plus process start-up. */
static double job_estimate(const Job *j, double peak, double bw) {
    double D = j->d_model, P = j->n_layer * (6 * D * D + 3 * D * j->d_ff), V = j->vocab;
    unsigned opt = mixer_options(j->mixer);
    int attn = (opt & EIDETIC_MIXER_KV_CACHE) != 0, swa = (opt & EIDETIC_MIXER_WINDOW) != 0;
    double rate = EID_MAX(peak, 10) * 1e9 / 3, bwr = EID_MAX(bw, 1) * 1e9;
    double init = (P + V * D) * 2e-8 + 0.1;
    if (!strcmp(j->kind, "train")) {
        double N = (double)j->batch * j->seq_len, span = attn ? j->seq_len / 2.0 : swa ? 64 : 0;
        double labels = !strcmp(j->loss, "mqar") ? j->batch * j->kv_pairs : N / j->label_every;
        double step = (6 * N * P + 6 * labels * V * D + 12 * N * span * D * j->n_layer) / rate * 1.5;
        double warm = step > 1 ? 1 : 2;
        return init + step * warm + EID_MAX(step * j->steps, j->min_time);
    }
    double per = ((P + V * D) * 4 + (attn ? 8.0 * D * j->n_layer * j->context / 2 : 0)) / bwr + 2e-5 * j->n_layer;
    return init + per * (j->context ? j->context : 110 + 0.25 * j->min_time / per);
}

static void jobs_train(Bench *b) {
    BenchOpts *o = b->o;
    typedef struct { const char *label; int D, L, F, T, B; const char *loss; int K, every; } Cfg;
    static const Cfg full[] = {{"A-d128", 128, 2, 0, 256, 16, "mqar", 16, 0},
                               {"A-d256", 256, 2, 0, 256, 16, "mqar", 16, 0},
                               {"B-d512", 512, 4, 1376, 1024, 4, "lm", 0, 1}};
    static const Cfg quick[] = {{"A-d32", 32, 2, 0, 64, 4, "mqar", 4, 0}, {"B-d64", 64, 2, 192, 128, 2, "lm", 0, 1}};
    const Cfg *cs = o->quick ? quick : full;
    int nc = o->quick ? 2 : 3;
    Cfg one = cs[0];
    if (o->single) { /* one configuration: config A's sizes where a flag is not given */
        one.label = "custom";
        if (o->d_model != UNSET) one.D = o->d_model;
        if (o->n_layer != UNSET) one.L = o->n_layer;
        if (o->d_ff != UNSET) one.F = o->d_ff;
        if (o->seq_len != UNSET) one.T = o->seq_len;
        if (o->batch != UNSET) one.B = o->batch;
        if (o->loss[0]) one.loss = o->loss;
        one.K = o->kv_pairs != UNSET ? o->kv_pairs : EID_MAX(1, one.T / 16);
        one.every = o->label_every != UNSET ? o->label_every : 1;
        cs = &one, nc = 1;
    }
    /* --repeat: whole passes over every row, so that a slow spell of a shared machine (seconds to
     * minutes on this VM) falls on one pass of a row, not on all of them */
    for (int pass = 0; pass < o->repeat; pass++)
        for (int c = 0; c < nc; c++) {
            FOR_MIXERS(o->mixers[0] ? o->mixers : ALL_MIXERS, mx) {
                Job *j = job_add(b, "train", "train", cs[c].label, mx);
                j->d_model = cs[c].D, j->n_layer = cs[c].L, j->d_ff = cs[c].F, j->seq_len = cs[c].T, j->batch = cs[c].B;
                snprintf(j->loss, sizeof j->loss, "%s", cs[c].loss);
                j->kv_pairs = cs[c].K, j->label_every = cs[c].every;
                j->pass = pass, j->passes = o->repeat;
            }
        }
}

static void jobs_decode(Bench *b) {
    BenchOpts *o = b->o;
    int D = o->quick ? 64 : 768, L = o->quick ? 2 : 24, batches[2] = {1, o->quick ? 4 : 16};
    FOR_MIXERS(o->mixers[0] ? o->mixers : DECODE_MIXERS, mx)
        for (int k = 0; k < 2; k++) {
            char label[48];
            snprintf(label, sizeof label, "%dx d%d", L, D);
            Job *j = job_add(b, "decode", "decode", label, mx);
            j->d_model = D, j->n_layer = L, j->batch = batches[k];
        }
}

static const int scale_full[] = {256, 1024, 4096, 16384}, scale_quick[] = {256, 1024};

static void jobs_scaling(Bench *b) {
    BenchOpts *o = b->o;
    int nT = o->quick ? 2 : 4, D = o->quick ? 32 : 128;
    const int *Ts = o->quick ? scale_quick : scale_full;
    FOR_MIXERS(o->mixers[0] ? o->mixers : ALL_MIXERS, mx)
        for (int k = 0; k < nT; k++) {
            char label[48];
            snprintf(label, sizeof label, "T%d", Ts[k]);
            Job *j = job_add(b, "train", "scaling-train", label, mx);
            j->d_model = D, j->n_layer = 2, j->seq_len = Ts[k], j->batch = 1;
            snprintf(j->loss, sizeof j->loss, "lm");
            j->label_every = 16, j->steps = o->quick ? 1 : 2, j->min_time = o->min_time / 4;
            j = job_add(b, "decode", "scaling-decode", label, mx);
            j->d_model = D, j->n_layer = 2, j->batch = 1, j->context = Ts[k];
        }
}

/* argv of the child that measures one job */
typedef struct {
    char *v[64];
    char s[64][64];
    int n;
} Args;
static void arg(Args *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->s[a->n], sizeof a->s[a->n], fmt, ap);
    va_end(ap);
    a->v[a->n] = a->s[a->n];
    a->v[++a->n] = NULL;
}

static void job_args(const Bench *b, const Job *j, Args *a) {
    const BenchOpts *o = b->o;
    a->n = 0;
    arg(a, "%s", o->exe), arg(a, "bench"), arg(a, "--child"), arg(a, "%s", j->kind), arg(a, "--row"), arg(a, "%s", j->row);
    arg(a, "--label"), arg(a, "%s", j->label), arg(a, "--mixer"), arg(a, "%s", j->mixer);
    arg(a, "--d-model"), arg(a, "%d", j->d_model), arg(a, "--n-layer"), arg(a, "%d", j->n_layer);
    arg(a, "--d-ff"), arg(a, "%d", j->d_ff), arg(a, "--batch"), arg(a, "%d", j->batch);
    arg(a, "--vocab"), arg(a, "%d", j->vocab), arg(a, "--window"), arg(a, "%d", o->window);
    arg(a, "--threads"), arg(a, "%d", eidetic_n_threads()), arg(a, "--steps"), arg(a, "%d", j->steps);
    arg(a, "--min-time"), arg(a, "%g", j->min_time), arg(a, "--shards"), arg(a, "%d", o->shards);
    arg(a, "--peak-gflops"), arg(a, "%.6g", o->peak_gflops), arg(a, "--bw-gbs"), arg(a, "%.6g", o->bw_gbs);
    if (!strcmp(j->kind, "train")) {
        arg(a, "--seq-len"), arg(a, "%d", j->seq_len), arg(a, "--loss"), arg(a, "%s", j->loss);
        if (!strcmp(j->loss, "mqar")) arg(a, "--kv-pairs"), arg(a, "%d", j->kv_pairs);
        else arg(a, "--label-every"), arg(a, "%d", j->label_every);
    } else if (j->context) {
        arg(a, "--context"), arg(a, "%d", j->context);
    }
    if (o->precision[0]) arg(a, "--precision"), arg(a, "%s", o->precision);
    if (o->gemm_plan[0]) arg(a, "--gemm-plan"), arg(a, "%s", o->gemm_plan);
    if (o->quick) arg(a, "--quick");
}

/* Run the child; its last stdout line is the row. NULL (a message on stderr) if it failed. */
static cJSON *run_child(const Bench *b, const Job *j) {
    Args a;
    job_args(b, j, &a);
    SpawnOpts so = {.die_with_parent = 1}; /* an interrupted bench leaves no orphan */
    char *buf;
    int st = spawn_capture(a.v, &so, &buf);
    if (st < 0) return fprintf(stderr, "bench: %s\n", eid_last_error()), NULL;
    size_t len = strlen(buf);
    while (len && buf[len - 1] == '\n') buf[--len] = 0;
    char *line = strrchr(buf, '\n');
    cJSON *row = WIFEXITED(st) && WEXITSTATUS(st) == 0 ? cJSON_Parse(line ? line + 1 : buf) : NULL;
    if (!row) {
        fprintf(stderr, "bench: error: %s %s %s failed (%s %d); command:", j->row, j->label, j->mixer,
                WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        for (int i = 0; i < a.n; i++) fprintf(stderr, " %s", a.v[i]);
        fprintf(stderr, "\n");
    }
    free(buf);
    return row;
}

/* one JSON line to DIR/bench.jsonl and --json FILE (one write per line: append-safe) */
static void write_row(Bench *b, const cJSON *row) {
    char *s = cJSON_PrintUnformatted(row);
    size_t n = strlen(s);
    s = eid_xrealloc(s, n + 2), s[n] = '\n', s[n + 1] = 0;
    if (b->jsonl) fputs(s, b->jsonl), fflush(b->jsonl);
    if (b->json_fd >= 0 && write(b->json_fd, s, n + 1) != (ssize_t)(n + 1))
        fprintf(stderr, "bench: warning: short write to %s\n", b->o->json);
    free(s);
}

/* a row goes to the JSON outputs and to the collected array (the tables) */
static void emit(Bench *b, cJSON *row) {
    write_row(b, row);
    cJSON_AddItemToArray(b->rows, row);
}

static double num(const cJSON *row, const char *key);
static const char *str(const cJSON *row, const char *key);

/* A row of one pass (--repeat > 1): written to the JSON outputs as suite "train-pass", kept aside;
 * after the last pass the row of the median pass (by step time) is emitted as the row, with every
 * pass's median step in "step_ms_passes". */
static void emit_pass(Bench *b, cJSON *row, const Job *j) {
    cJSON_AddNumberToObject(row, "pass", j->pass);
    cJSON *raw = cJSON_Duplicate(row, 1);
    cJSON_ReplaceItemInObject(raw, "suite", cJSON_CreateString("train-pass"));
    write_row(b, raw);
    cJSON_Delete(raw);
    if (!b->pass_rows) b->pass_rows = cJSON_CreateArray();
    cJSON_AddItemToArray(b->pass_rows, row);
}

static int by_step_ms(const void *a, const void *b) {
    double x = num(*(cJSON *const *)a, "step_ms"), y = num(*(cJSON *const *)b, "step_ms");
    return (x > y) - (x < y);
}

/* the median pass of each (label, mixer), in first-pass order */
static void emit_pass_medians(Bench *b) {
    if (!b->pass_rows) return;
    const cJSON *r, *q;
    cJSON_ArrayForEach(r, b->pass_rows) {
        if (num(r, "pass") != 0) continue;
        const cJSON *same[100];
        int n = 0;
        cJSON_ArrayForEach(q, b->pass_rows)
            if (n < 100 && !strcmp(str(q, "label"), str(r, "label")) && !strcmp(str(q, "mixer"), str(r, "mixer")))
                same[n++] = q;
        cJSON *steps = cJSON_CreateArray();
        for (int k = 0; k < n; k++) cJSON_AddItemToArray(steps, cJSON_CreateNumber(num(same[k], "step_ms")));
        qsort(same, (size_t)n, sizeof *same, by_step_ms);
        cJSON *med = cJSON_Duplicate(same[(n - 1) / 2], 1);
        cJSON_DeleteItemFromObject(med, "pass");
        cJSON_AddNumberToObject(med, "passes", n);
        cJSON_AddItemToObject(med, "step_ms_passes", steps);
        emit(b, med);
    }
    cJSON_Delete(b->pass_rows);
    b->pass_rows = NULL;
}

/* v with `prec` decimals into buf[32], or "n/a" when it is not a number. */
static const char *fmt_or_na(char *buf, double v, int prec) {
    if (isnan(v)) snprintf(buf, 32, "n/a");
    else snprintf(buf, 32, "%.*f", prec, v);
    return buf;
}

static double num(const cJSON *row, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}
static const char *str(const cJSON *row, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void run_jobs(Bench *b) {
    BenchOpts *o = b->o;
    double est_total = 0;
    for (int i = 0; i < b->n; i++) est_total += b->jobs[i].est_s = job_estimate(&b->jobs[i], o->peak_gflops, o->bw_gbs);
    for (int i = 0; i < b->n; i++) {
        Job *j = &b->jobs[i];
        double elapsed = eid_now() - b->t_start;
        /* left = estimate of what remains, scaled by how the estimates have fared so far */
        double scale = b->est_done > 0 ? EID_MAX(0.2, EID_MIN(5.0, b->real_done / b->est_done)) : 1;
        char e[16], l[16];
        fmt_time(elapsed, e, sizeof e), fmt_time((est_total - b->est_done) * scale, l, sizeof l);
        char pass[48] = "";
        if (j->passes > 1) snprintf(pass, sizeof pass, " (pass %d/%d)", j->pass + 1, j->passes);
        fprintf(stderr, "bench: [%d/%d] %s %s %s b%d%s ... (%s elapsed, ~%s left)\n", i + 1, b->n, j->row, j->label,
                j->mixer, j->batch, pass, e, l);
        double t0 = eid_now();
        cJSON *row = run_child(b, j);
        b->real_done += eid_now() - t0, b->est_done += j->est_s;
        if (!row) { b->failed++; continue; }
        fprintf(stderr, "bench:        %.3f ms/step, %.0f tokens/s\n", num(row, "step_ms"), num(row, "tokens_per_s"));
        if (j->passes > 1) emit_pass(b, row, j);
        else emit(b, row);
        if (j->passes > 1 && (i + 1 == b->n || b->jobs[i + 1].passes <= 1)) emit_pass_medians(b);
    }
    emit_pass_medians(b);
}

/* sgemm at 1024³ and the shapes of the models' largest products (M = batch·seq); bandwidth. */
static void run_peak(Bench *b) {
    BenchOpts *o = b->o;
    static const Shape full[] = {{1024, 1024, 1024, "1024^3"},
                                 {4096, 512, 128, "A-d128 in_proj: (16x256) x 512 x 128"},
                                 {4096, 1024, 256, "A-d256 in_proj: (16x256) x 1024 x 256"},
                                 {4096, 2048, 512, "B-d512 in_proj: (4x1024) x 2048 x 512"},
                                 {4096, 8192, 512, "B-d512 LM head: (4x1024) x 8192 x 512"}};
    static const Shape quick[] = {{256, 256, 256, "256^3"}, {512, 512, 512, "512^3"}, {256, 128, 32, "A-d32 in_proj"}};
    const Shape *sh = o->quick ? quick : full;
    int ns = o->quick ? 3 : 5;
    double peak = 0;
    if (o->peak_gflops <= 0) {
        fprintf(stderr, "bench: measuring the sgemm peak (%d shapes) and the memory bandwidth\n", ns);
        for (int i = 0; i < ns; i++) {
            double g = sgemm_gflops(sh[i].M, sh[i].N, sh[i].K, o->quick ? 0.02 : 0.3);
            char what[96];
            snprintf(what, sizeof what, "%dx%dx%d %s", sh[i].M, sh[i].N, sh[i].K, sh[i].what);
            emit(b, peak_row("sgemm", what, g));
            peak = EID_MAX(peak, g);
        }
        o->peak_gflops = peak;
    }
    if (o->bw_gbs <= 0) {
        size_t mib = o->quick ? 64 : 512;
        char what[64];
        snprintf(what, sizeof what, "read %zu MiB", mib);
        o->bw_gbs = read_gbs(mib, o->quick ? 0.02 : 0.5);
        emit(b, peak_row("bandwidth", what, o->bw_gbs));
    }
    fprintf(stderr, "bench: sgemm peak %.1f GFLOP/s, read bandwidth %.1f GB/s (%d threads)\n", o->peak_gflops,
            o->bw_gbs, eidetic_n_threads());
}

/* ------------------------------------------------------------------ report ---- */

static void md_peak(FILE *f, const Bench *b) {
    const BenchOpts *o = b->o;
    fprintf(f, "## Peak (this run: %d thread%s, BLAS core %s)\n\n", eidetic_n_threads(), eidetic_n_threads() == 1 ? "" : "s",
            eidetic_blas_core());
    fprintf(f, "| measurement | GFLOP/s or GB/s | of peak |\n|---|---:|---:|\n");
    const cJSON *r;
    cJSON_ArrayForEach(r, b->rows) {
        if (strcmp(str(r, "suite"), "peak")) continue;
        if (!strcmp(str(r, "kind"), "sgemm"))
            fprintf(f, "| sgemm %s | %.1f GFLOP/s | %.0f%% |\n", str(r, "shape"), num(r, "gflops"),
                    100 * num(r, "gflops") / o->peak_gflops);
        else fprintf(f, "| memory %s, all threads | %.1f GB/s | |\n", str(r, "shape"), num(r, "gbs"));
    }
    fprintf(f, "\nsgemm peak (max above) = **%.1f GFLOP/s**: the denominator of MFU. Read bandwidth = **%.1f GB/s**: "
               "the denominator of the decoding bound.\n\n", o->peak_gflops, o->bw_gbs);
}

/* a row of the same suite, label and mixer, for the "x <first registered mixer>" ratio */
static const cJSON *find_row(const Bench *b, const char *suite, const char *label, const char *mixer, int batch) {
    const cJSON *r;
    cJSON_ArrayForEach(r, b->rows)
        if (!strcmp(str(r, "suite"), suite) && !strcmp(str(r, "label"), label) && !strcmp(str(r, "mixer"), mixer) &&
            (batch < 0 || num(r, "batch") == batch))
            return r;
    return NULL;
}

static void md_train(FILE *f, const Bench *b) {
    const BenchOpts *o = b->o;
    fprintf(f, "## Training step: forward + backward + AdamW (median step)\n\n");
    if (o->single)
        fprintf(f, "One configuration from the flags (config A where a flag was not given).\n");
    else if (o->quick)
        fprintf(f, "--quick: tiny sizes (A-d32: 2 layers, seq 64, batch 4, MQAR K=4; B-d64: 2 layers + SwiGLU 192, "
                   "seq 128, batch 2, LM), vocab %d. Not a measurement.\n", o->vocab);
    else
        fprintf(f, "- **A**: d_model 128 / 256, 2 layers, no MLP, vocab %d, seq 256, batch 16; synthetic MQAR batches "
                   "(K = 16 key-value pairs), loss only at the 16 query positions per example.\n"
                   "- **B**: d_model 512, 4 layers, each with a SwiGLU MLP (d_ff 1376 = 8D/3 rounded up to 32), vocab %d, "
                   "seq 1024, batch 4; LM loss at every position (labels = next token of a uniform random token "
                   "stream).\n", o->vocab, o->vocab);
    fprintf(f, "- swa window %d; attn and the other mixers at their layer defaults. GFLOP/step = every matrix product "
               "of one step counted by eid_gemm (2·M·N·K each); scans, convolutions, norms, softmax and AdamW are in "
               "the time but not in the count. MFU = GFLOP/s ÷ sgemm peak (%.1f GFLOP/s). Planned memory = weights + "
               "gradients + 2 AdamW moments + the activation plan + the batches; peak RSS is the child process's "
               "VmHWM, which also holds the binary, libraries and BLAS/OpenMP buffers (before the model: 'base'). "
               "shards: data-parallel shards of the batch, as `eidetic train` runs it (src/train/shards.h).%s\n\n",
            o->window, o->peak_gflops,
            o->repeat > 1 ? " Every row ran in each of the passes over all rows (--repeat); the row shown is the pass "
                            "with the median step, 'passes ms' lists every pass's median step." : "");
    const char *ref = eidetic_mixer_name(0); /* the ratio column's reference: the first registered mixer */
    fprintf(f, "| config | mixer | params | shards | step ms | passes ms | × %s | tokens/s | GFLOP/step | GFLOP/s | "
               "MFU %% | peak RSS MB | base MB | planned MB | RSS / planned |\n"
               "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n", ref);
    const cJSON *r;
    cJSON_ArrayForEach(r, b->rows) {
        if (strcmp(str(r, "suite"), "train")) continue;
        const cJSON *lh = find_row(b, "train", str(r, "label"), ref, -1);
        char rel[32] = "";
        if (lh) snprintf(rel, sizeof rel, "%.2f", num(r, "step_ms") / num(lh, "step_ms"));
        char cfg[96];
        snprintf(cfg, sizeof cfg, "%s", str(r, "label"));
        if (!strcmp(cfg, "custom"))
            snprintf(cfg, sizeof cfg, "d%.0f L%.0f ff%.0f T%.0f B%.0f %s", num(r, "d_model"), num(r, "n_layer"),
                     num(r, "d_ff"), num(r, "seq_len"), num(r, "batch"), str(r, "loss"));
        char passes[128] = "-";
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(r, "step_ms_passes"), *p;
        if (cJSON_IsArray(ps)) {
            size_t n = 0;
            cJSON_ArrayForEach(p, ps) n += (size_t)snprintf(passes + n, n < sizeof passes ? sizeof passes - n : 0, "%s%.4g", n ? " / " : "", p->valuedouble);
        }
        fprintf(f, "| %s | %s | %.2fM | %.0f | %.2f | %s | %s | %.0f | %.2f | %.1f | %.1f | %.0f | %.0f | %.0f | %.2f |\n", cfg,
                str(r, "mixer"), num(r, "params") / 1e6, num(r, "shards"), num(r, "step_ms"), passes, rel,
                num(r, "tokens_per_s"), num(r, "gflop_per_step"), num(r, "gflops"), num(r, "mfu_pct"), num(r, "rss_mb"),
                num(r, "base_mb"), num(r, "planned_mb"), num(r, "mem_ratio"));
    }
    fprintf(f, "\n");
}

static void md_decode(FILE *f, const Bench *b) {
    const BenchOpts *o = b->o;
    const cJSON *r, *first = NULL;
    cJSON_ArrayForEach(r, b->rows) if (!first && !strcmp(str(r, "suite"), "decode")) first = r;
    fprintf(f, "## Decoding: one token for each of `batch` sequences per step\n\n");
    if (first && !o->quick && num(first, "d_model") == 768)
        fprintf(f, "Model: 24 layers × d_model 768, vocab %d, tied head, random weights — Mamba-130m's shape%s "
                   "(%.1fM parameters).\n", o->vocab, o->vocab == 50280 ? "" : " with a smaller vocabulary than its 50280",
                num(first, "params") / 1e6);
    fprintf(f, "Median of ≥ 100 steps after 10 warm-up steps. Bytes per step = 4 × (every parameter once: the "
               "embedding table is the tied LM head, read in full by the logits product, and holds the batch's "
               "embedding rows) + 2 × 4 × batch × state floats (the recurrent state read and written); with "
               "--precision bf16 or auto the weights the products read from bf16 copies count at the bytes read "
               "(eidetic_bf16_weight_bytes_read: half, plus the packed copies' padding). "
               "Bound tokens/s = read bandwidth ÷ bytes per step × batch, with the read bandwidth measured by the "
               "row itself just before it (256 MiB, all threads; this VM's bandwidth drifts by up to 2x within "
               "minutes — the start-up measurement above was %.1f GB/s). 'BLAS gemv GB/s': one matrix-vector "
               "product (eid_gemm, M = 1: OpenBLAS sgemv in fp32, oneDNN from packed bf16 weights in bf16) over every weight matrix of the model and nothing else — "
               "the ceiling of a step built on BLAS; '%% of gemv' = the step's bytes/s ÷ that (n/a with a KV cache: "
               "a step reads only its filled part, so no byte count). 'alloc in step': "
               "whether the heap in use (mallinfo2: malloc'd + mmapped blocks) changed over the timed steps; 'RSS "
               "growth': peak RSS gained over them (first touches of planned memory count here, not as "
               "allocation).\n\n", o->bw_gbs);
    fprintf(f, "| model | batch | step ms | µs/token | tokens/s | MB/step | read GB/s | bound tokens/s | %% of bound | "
               "BLAS gemv GB/s | step GB/s | %% of gemv | alloc in step | RSS growth KB | peak RSS MB |\n"
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n");
    cJSON_ArrayForEach(r, b->rows) {
        if (strcmp(str(r, "suite"), "decode")) continue;
        char mb[32], bound[32], pct[32], step_gbs[32], pct_gemv[32]; /* n/a for a KV cache (child_decode) */
        fprintf(f, "| %s %s | %.0f | %.3f | %.1f | %.0f | %s | %.1f | %s | %s | %.1f | %s | %s | %s | %.0f | %.0f |\n",
                str(r, "label"), str(r, "mixer"), num(r, "batch"), num(r, "step_ms"), num(r, "us_per_token"),
                num(r, "tokens_per_s"), fmt_or_na(mb, num(r, "bytes_per_step") / 1048576, 1), num(r, "bw_gbs"),
                fmt_or_na(bound, num(r, "bound_tokens_per_s"), 0), fmt_or_na(pct, num(r, "pct_of_bound"), 1),
                num(r, "gemv_gbs"), fmt_or_na(step_gbs, num(r, "achieved_gbs"), 1),
                fmt_or_na(pct_gemv, num(r, "pct_of_gemv"), 1), str(r, "alloc_in_step"), num(r, "rss_growth_kb"),
                num(r, "rss_mb"));
    }
    fprintf(f, "\n");
}

static void md_scaling(FILE *f, const Bench *b) {
    const BenchOpts *o = b->o;
    int nT = o->quick ? 2 : 4;
    const int *Ts = o->quick ? scale_quick : scale_full;
    fprintf(f, "## Scaling with sequence length: µs per token\n\n"
               "d_model %d, 2 layers, batch 1, vocab %d. train = one training step (forward + backward + AdamW, LM "
               "loss at every 16th position) ÷ T; decode = median step after T tokens (the last min(64, T/4) of T "
               "decoded tokens). Recurrent mixers should stay flat; attention grows with T (swa: window %d). "
               "Plot: scaling.png / scaling.svg.\n\n", o->quick ? 32 : 128, o->vocab, o->window);
    fprintf(f, "| mixer |");
    for (int k = 0; k < nT; k++) fprintf(f, " train T=%d |", Ts[k]);
    fprintf(f, " train %d/%d |", Ts[nT - 1], Ts[0]);
    for (int k = 0; k < nT; k++) fprintf(f, " decode T=%d |", Ts[k]);
    fprintf(f, " decode %d/%d |\n|---|", Ts[nT - 1], Ts[0]);
    for (int k = 0; k < 2 * nT + 2; k++) fprintf(f, "---:|");
    fprintf(f, "\n");
    FOR_MIXERS(o->mixers[0] ? o->mixers : ALL_MIXERS, mx) {
        fprintf(f, "| %s |", mx);
        for (int pass = 0; pass < 2; pass++) {
            const char *suite = pass ? "scaling-decode" : "scaling-train";
            double v[8];
            for (int k = 0; k < nT; k++) {
                char label[48];
                snprintf(label, sizeof label, "T%d", Ts[k]);
                const cJSON *r = find_row(b, suite, label, mx, -1);
                v[k] = r ? num(r, "us_per_token") : NAN;
                if (r) fprintf(f, " %.2f |", v[k]);
                else fprintf(f, " — |");
            }
            if (isnan(v[0]) || isnan(v[nT - 1])) fprintf(f, " — |");
            else fprintf(f, " %.2f |", v[nT - 1] / v[0]);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
}

/* DIR/scaling.dat (one block per mixer: T, train µs/token, decode µs/token) and DIR/scaling.gp;
 * gnuplot draws scaling.png and scaling.svg (log-log, train and decode panels). */
static int write_plot(const Bench *b) {
    const BenchOpts *o = b->o;
    int nT = o->quick ? 2 : 4, nm = 0;
    const int *Ts = o->quick ? scale_quick : scale_full;
    char path[1100], names[512] = "";
    snprintf(path, sizeof path, "%s/scaling.dat", o->out);
    FILE *f = fopen(path, "w");
    if (!f) return eid_error("%s: cannot write (%s)", path, strerror(errno)), -1;
    FOR_MIXERS(o->mixers[0] ? o->mixers : ALL_MIXERS, mx) {
        fprintf(f, "# %s: T train_us_per_token decode_us_per_token\n", mx);
        for (int k = 0; k < nT; k++) {
            char label[48];
            snprintf(label, sizeof label, "T%d", Ts[k]);
            const cJSON *tr = find_row(b, "scaling-train", label, mx, -1), *de = find_row(b, "scaling-decode", label, mx, -1);
            fprintf(f, "%d %g %g\n", Ts[k], tr ? num(tr, "us_per_token") : NAN, de ? num(de, "us_per_token") : NAN);
        }
        fprintf(f, "\n\n");
        size_t k = strlen(names);
        snprintf(names + k, sizeof names - k, "%s%s", nm++ ? " " : "", mx);
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/scaling.gp", o->out);
    if (!(f = fopen(path, "w"))) return eid_error("%s: cannot write (%s)", path, strerror(errno)), -1;
    char tics[128] = "";
    for (int k = 0; k < nT; k++) {
        size_t l = strlen(tics);
        snprintf(tics + l, sizeof tics - l, "%s%d", k ? ", " : "", Ts[k]);
    }
    fprintf(f, "# scaling.gp — written by `eidetic bench`; run from anywhere: gnuplot %s\n"
               "dir = '%s'\nnames = '%s'\n"
               "set datafile missing 'nan'\nset logscale xy\nset grid lc rgb '#dddddd'\nset key top left font ',9'\n"
               "set xtics (%s)\nset xrange [%g:%g]\n"
               "set xlabel 'sequence length T (tokens)'\nset ylabel 'µs per token'\n"
               "do for [fmt in 'png svg'] {\n"
               "  if (fmt eq 'svg') { set terminal svg size 1200,480 dynamic noenhanced font 'sans,11' } else {\n"
               "    if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size 1200,480 noenhanced font 'sans,10' }"
               " else { set terminal png size 1200,480 noenhanced } }\n"
               "  set output dir.'/scaling.'.fmt\n"
               "  set multiplot layout 1,2 title 'eidetic bench: per-token cost vs sequence length (d_model %d, 2 layers, batch 1, %d thread%s)'\n"
               "  set title 'training step (forward + backward + AdamW) / T'\n"
               "  plot for [i=1:words(names)] dir.'/scaling.dat' index (i-1) using 1:2 with linespoints lw 2 pt 7 title word(names, i)\n"
               "  set title 'one decoding step after T tokens'\n"
               "  plot for [i=1:words(names)] dir.'/scaling.dat' index (i-1) using 1:3 with linespoints lw 2 pt 7 title word(names, i)\n"
               "  unset multiplot\n  unset output\n}\n",
            path, o->out, names, tics, Ts[0] / 1.4, Ts[nT - 1] * 1.4, o->quick ? 32 : 128, eidetic_n_threads(),
            eidetic_n_threads() == 1 ? "" : "s");
    fclose(f);
    char log[1100];
    snprintf(log, sizeof log, "%s/plot.log", o->out);
    char *av[] = {"gnuplot", path, NULL};
    SpawnOpts so = {.out = log, .err = log, .search_path = 1};
    pid_t pid = spawn_start(av, &so);
    int st = pid < 0 ? -1 : spawn_wait(pid, NULL);
    if (st < 0) return -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
        return eid_error("plot: gnuplot not found (Debian: apt-get install gnuplot-nox); tables are written"), -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return eid_error("plot: gnuplot failed, see %s", log), -1;
    return 0;
}

static char *report(const Bench *b) {
    const BenchOpts *o = b->o;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fprintf(f, "# eidetic bench%s\n\n", o->quick ? " --quick (tiny sizes: a smoke test, not a measurement)" : "");
    md_peak(f, b);
    if (o->suites & S_TRAIN) md_train(f, b);
    if (o->suites & S_DECODE) md_decode(f, b);
    if (o->suites & S_SCALING) md_scaling(f, b);
    fclose(f);
    return text;
}

/* Every job's model and data are valid (the same checks the child makes, in a fraction of a second). */
static int jobs_check(const Bench *b) {
    for (int i = 0; i < b->n; i++) {
        Job *j = &b->jobs[i];
        BenchOpts c = *b->o;
        c.d_model = j->d_model, c.n_layer = j->n_layer, c.d_ff = j->d_ff, c.context = j->context;
        char *js = bench_config(&c, j->mixer);
        int bad = eidetic_config_check(js) != EIDETIC_OK;
        free(js);
        if (bad) return eid_error("%s", eidetic_last_error()), -1;
        if (!strcmp(j->kind, "train") && !strcmp(j->loss, "mqar")) {
            eidetic_train_config *t = mqar_config(j->vocab, j->seq_len, j->kv_pairs);
            if (!t) return -1;
            eidetic_train_config_free(t);
        }
        if (!strcmp(j->kind, "train") && strcmp(j->loss, "mqar") && j->seq_len < j->label_every)
            return eid_error("--label-every %d: longer than --seq-len %d (no labels)", j->label_every, j->seq_len), -1;
    }
    return 0;
}

static int bench_main(BenchOpts *o) {
    Bench b = {.o = o, .rows = cJSON_CreateArray(), .json_fd = -1, .t_start = eid_now()};
    if (o->vocab == UNSET) o->vocab = o->quick ? 512 : 8192;
    if (o->window == UNSET) o->window = 64;
    if (o->steps == UNSET) o->steps = o->quick ? 1 : 5; /* ≥ 5 timed steps: a 3-step median of 2-s steps was noisy */
    ssize_t k = readlink("/proc/self/exe", o->exe, sizeof o->exe - 1);
    if (k <= 0) return eid_error("cannot find the eidetic binary (/proc/self/exe)"), -1;
    o->exe[k] = 0;
    /* build every job first: a bad configuration fails before anything runs */
    if (o->suites & S_TRAIN) jobs_train(&b);
    if (o->suites & S_DECODE) jobs_decode(&b);
    if (o->suites & S_SCALING) jobs_scaling(&b);
    if (jobs_check(&b) != 0) return -1;
    int write_dir = o->out_given || !o->json[0];
    char path[1100];
    if (write_dir) {
        if (eid_mkdir_p(o->out) != 0) return -1;
        snprintf(path, sizeof path, "%s/bench.jsonl", o->out);
        if (!(b.jsonl = fopen(path, "w"))) return eid_error("%s: cannot write (%s)", path, strerror(errno)), -1;
    }
    if (o->json[0] && (b.json_fd = open(o->json, O_WRONLY | O_CREAT | O_APPEND, 0644)) < 0)
        return eid_error("--json %s: cannot open (%s)", o->json, strerror(errno)), -1;
    run_peak(&b);
    run_jobs(&b);
    char *text = report(&b);
    fputs(text, stdout);
    fflush(stdout);
    int rc = 0;
    if (write_dir) {
        snprintf(path, sizeof path, "%s/bench.md", o->out);
        rc = eid_write_text_atomic(path, text);
        if (rc == 0 && (o->suites & S_SCALING) && !o->no_plots && write_plot(&b) != 0) {
            fprintf(stderr, "bench: warning: %s\n", eid_last_error());
        }
        fprintf(stderr, "bench: wrote %s/bench.md, bench.jsonl%s (%.0f s)\n", o->out,
                (o->suites & S_SCALING) && !o->no_plots ? ", scaling.png/svg" : "", eid_now() - b.t_start);
    }
    free(text);
    if (b.jsonl) fclose(b.jsonl);
    if (b.json_fd >= 0) close(b.json_fd);
    cJSON_Delete(b.rows);
    free(b.jobs);
    if (rc != 0) return -1;
    if (b.failed) return eid_error("%d of %d rows failed (their errors are above)", b.failed, b.n), -1;
    return 0;
}

int cmd_bench(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return bench_help(), 0;
    BenchOpts o;
    if (bench_parse(&o, argc, argv) != 0) return cli_fail("bench");
    if (eidetic_init_ex(o.threads, o.child[0] ? 0 : EIDETIC_INIT_VERBOSE) != EIDETIC_OK) return cli_fail("bench");
    const char *prec = "fp32";
    if (eidetic_set_precision(o.precision[0] ? o.precision : "fp32", !o.child[0], &prec) != EIDETIC_OK)
        return eid_error("--precision: expected fp32, bf16 or auto, got \"%s\"", o.precision), cli_fail("bench");
    snprintf(o.precision, sizeof o.precision, "%s", prec); /* the rows record what ran */
    if (eidetic_set_gemm_plan(o.gemm_plan[0] ? o.gemm_plan : "fixed", 0) != EIDETIC_OK) return cli_fail("bench");
    if (o.child[0]) {
        /* a child measures one configuration, fully given by the parent */
        if (o.vocab == UNSET || o.d_model == UNSET || o.n_layer == UNSET || o.batch == UNSET || !o.mixers[0])
            return eid_error("--child: needs --mixer, --vocab, --d-model, --n-layer and --batch"), cli_fail("bench");
        if (o.d_ff == UNSET) o.d_ff = 0;
        if (o.window == UNSET) o.window = 64;
        if (o.steps == UNSET) o.steps = 5;
        int rc;
        if (!strcmp(o.child, "train")) {
            if (o.seq_len == UNSET || !o.loss[0]) return eid_error("--child train: needs --seq-len and --loss"), cli_fail("bench");
            if (o.label_every == UNSET) o.label_every = 1;
            rc = child_train(&o);
        } else {
            rc = child_decode(&o);
        }
        return rc == 0 ? 0 : cli_fail("bench");
    }
    return bench_main(&o) == 0 ? 0 : cli_fail("bench");
}
