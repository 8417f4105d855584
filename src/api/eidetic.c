/* eidetic.c — the public library API (include/eidetic.h) over the engine's model, decoder,
 * checkpoint and optimiser code. Handles wrap the internal objects; every entry point checks its
 * arguments, turns the engine's -1 + eid_error into a status code, and converts between the
 * engine's `real` and the API's float. */
#include "eidetic.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "core/gemm_onednn.h"
#include "core/runtime.h"
#include "data/source.h"
#include "io/checkpoint.h"
#include "io/gemm_plan_file.h"
#include "core/gemm_plan.h"
#include "kernels/seq.h"
#include "layers/layer.h"
#include "model/config.h"
#include "model/model.h"
#include "train/optim.h"
#include "train/shards.h"
#include "train/train_cfg.h"
#include "train/trainer.h"

/* The public constants are the engine's own. */
_Static_assert(EIDETIC_MAX_LAYERS == EID_MAX_LAYERS, "EIDETIC_MAX_LAYERS");
_Static_assert(EIDETIC_MAX_SHARDS == EID_MAX_SHARDS, "EIDETIC_MAX_SHARDS");
_Static_assert((int)EIDETIC_FLAG_SEG_START == (int)FLAG_SEG_START && (int)EIDETIC_FLAG_CAUSAL == (int)FLAG_CAUSAL &&
                   (int)EIDETIC_FLAG_PAD == (int)FLAG_PAD, "EIDETIC_FLAG_*");
_Static_assert((int)EIDETIC_MIXER_D_STATE == (int)LOPT_D_STATE && (int)EIDETIC_MIXER_EXPAND == (int)LOPT_EXPAND &&
                   (int)EIDETIC_MIXER_HEADS == (int)LOPT_HEADS && (int)EIDETIC_MIXER_KV_HEADS == (int)LOPT_KV_HEADS &&
                   (int)EIDETIC_MIXER_HEADDIM == (int)LOPT_HEADDIM && (int)EIDETIC_MIXER_WINDOW == (int)LOPT_WINDOW &&
                   (int)EIDETIC_MIXER_CHUNK == (int)LOPT_CHUNK && (int)EIDETIC_MIXER_D_CONV == (int)LOPT_D_CONV &&
                   (int)EIDETIC_MIXER_ROPE == (int)LOPT_ROPE && (int)EIDETIC_MIXER_KV_CACHE == (int)LOPT_MAX_LEN,
               "EIDETIC_MIXER_* are the layers' LOPT_* bits");
_Static_assert(sizeof(unsigned char) == sizeof(uint8_t), "flags are bytes");

struct eidetic_model {
    Model *m;
};
struct eidetic_decoder {
    eidetic_model *owner;
    Decoder *d;
    real *last; /* [n_seq, V] logits after the last consumed token */
};
struct eidetic_train_config {
    TrainCfg c; /* resolved */
};
struct eidetic_data {
    TaskCfg task; /* the source points at it */
    DataSource src;
};
struct eidetic_trainer {
    eidetic_model *owner;
    AdamW opt;
    OptimCfg oc;
    Shards sh;       /* made at the first step, when the batch size is known */
    int want_shards; /* 0 = automatic (shards_auto) */
};

/* ---- errors, initialisation ---- */

static _Thread_local char t_err[1024];
static int g_init_done;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void warn_weak_blas(void) {
    const char *want = eid_blas_better_core();
    if (want)
        eid_log("BLAS: OpenBLAS core %s is narrower than this CPU supports; matrix products may be up to ~5x "
                "slow. Set OPENBLAS_CORETYPE=%s in the environment before the program starts",
                eid_blas_core(), want);
}

static void default_init(void) {
    if (g_init_done) return;
    eid_runtime_setup(0, 0);
    warn_weak_blas();
    g_init_done = 1;
}

/* Every entry point: initialised, this thread's OpenMP settings applied (eid_runtime_enter), no
 * stale message. */
static void enter(void) {
    pthread_once(&g_once, default_init);
    eid_runtime_enter();
    t_err[0] = 0;
    eid_clear_error();
}

/* A failure: keep the engine's message (set with eid_error) for eidetic_last_error. */
static eidetic_status fail(eidetic_status s) {
    snprintf(t_err, sizeof t_err, "%s", eid_last_error());
    return s;
}

eidetic_status eidetic_init(int n_threads) { return eidetic_init_ex(n_threads, 0); }

eidetic_status eidetic_init_ex(int n_threads, unsigned flags) {
    if (flags & ~(unsigned)(EIDETIC_INIT_VERBOSE | EIDETIC_INIT_KEEP_DENORMALS)) {
        enter();
        return eid_error("eidetic_init_ex: unknown flags 0x%x", flags), fail(EIDETIC_ERR_ARGUMENT);
    }
    int verbose = (flags & EIDETIC_INIT_VERBOSE) != 0;
    if (flags & EIDETIC_INIT_KEEP_DENORMALS) eid_set_flush_denormals(0);
    eid_runtime_setup(n_threads, verbose); /* verbose: it reports a weak core itself */
    if (!g_init_done && !verbose) warn_weak_blas();
    g_init_done = 1;
    enter();
    return EIDETIC_OK;
}

eidetic_status eidetic_set_precision(const char *name, int verbose, const char **in_effect) {
    pthread_once(&g_once, default_init);
    enter();
    int want = name ? eid_precision_parse(name) : -1;
    if (want < 0) return eid_error("precision: expected fp32, bf16 or auto, got %s", name ? name : "NULL"), fail(EIDETIC_ERR_ARGUMENT);
    int got = eid_set_precision(want, verbose);
    if (in_effect) *in_effect = eid_precision_name(got);
    return EIDETIC_OK;
}

eidetic_status eidetic_set_gemm_plan(const char *spec, int verbose) {
    pthread_once(&g_once, default_init);
    enter();
    if (!spec) return eid_error("gemm plan: expected fixed, measure or a plan file, got NULL"), fail(EIDETIC_ERR_ARGUMENT);
    return gemm_plan_apply_spec(spec, verbose, "gemm plan") == 0 ? EIDETIC_OK : fail(EIDETIC_ERR_ARGUMENT);
}

eidetic_status eidetic_save_gemm_plan(const char *path) {
    pthread_once(&g_once, default_init);
    enter();
    if (!path) return eid_error("gemm plan: no path"), fail(EIDETIC_ERR_ARGUMENT);
    return gemm_plan_save(path) == 0 ? EIDETIC_OK : fail(EIDETIC_ERR_SAVE);
}

unsigned long long eidetic_bf16_weight_bytes_read(void) { return eid_bf16_weight_bytes_read(); }

int eidetic_gemm_plan_count(const char *library) { /* a getter: keeps the thread's last message */
    int want = library ? eid_gemm_backend_parse(library) : -1, n = 0;
    if (library && want < 0) return -1;
    for (int i = 0, total = eid_gemm_plan_count(); i < total; i++) {
        EidGemmChoice c;
        if (eid_gemm_plan_get(i, &c) == 0 && (!library || c.use == want)) n++;
    }
    return n;
}

int eidetic_n_threads(void) { /* a getter: keeps the thread's last message */
    pthread_once(&g_once, default_init);
    return eid_threads();
}

const char *eidetic_blas_core(void) { return eid_blas_core(); }

const char *eidetic_last_error(void) { return t_err; }

const char *eidetic_status_name(eidetic_status s) {
    switch (s) {
    case EIDETIC_OK: return "ok";
    case EIDETIC_ERR_ARGUMENT: return "argument";
    case EIDETIC_ERR_LOAD: return "load";
    case EIDETIC_ERR_SAVE: return "save";
    case EIDETIC_ERR_RANGE: return "range";
    case EIDETIC_ERR_NUMERIC: return "numeric";
    }
    return "unknown";
}

void eidetic_set_log_callback(eidetic_log_callback fn, void *user) { eid_set_log_sink(fn, user); }

#define NEED(cond, ...) \
    do { \
        if (!(cond)) return eid_error(__VA_ARGS__), fail(EIDETIC_ERR_ARGUMENT); \
    } while (0)

static void to_float(float *dst, const real *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

/* ---- measurements of the library's matrix products ---- */

eidetic_status eidetic_measure_gemm(int M, int N, int K, double min_seconds, double *gflops) {
    enter();
    NEED(gflops, "eidetic_measure_gemm: gflops must not be NULL");
    NEED(M > 0 && N > 0 && K > 0, "eidetic_measure_gemm: M, N, K must be > 0, got %d, %d, %d", M, N, K);
    NEED(min_seconds >= 0 && min_seconds <= 3600, "eidetic_measure_gemm: min_seconds must be in [0, 3600], got %g",
         min_seconds);
    real *A = eid_aligned_alloc(sizeof(real) * M * K), *B = eid_aligned_alloc(sizeof(real) * K * N);
    real *C = eid_aligned_alloc(sizeof(real) * M * N);
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (real)((i % 7) * 0.01);
    for (size_t i = 0; i < (size_t)K * N; i++) B[i] = (real)((i % 5) * 0.01);
    eid_gemm(0, 0, M, N, K, 1, A, K, B, N, 0, C, N); /* warm-up: BLAS buffers, threads */
    double best = 0, spent = 0;
    for (int r = 0; r < 10000 && (r < 3 || spent < min_seconds); r++) {
        double t0 = eid_now();
        eid_gemm(0, 0, M, N, K, 1, A, K, B, N, 0, C, N);
        double dt = eid_now() - t0;
        spent += dt;
        best = EID_MAX(best, 2.0 * M * N * K / dt * 1e-9);
    }
    free(A), free(B), free(C);
    *gflops = best;
    return EIDETIC_OK;
}

/* ---- mixers ---- */

int eidetic_mixer_count(void) { return layer_count(); }
const char *eidetic_mixer_name(int i) { return layer_at(i) ? layer_at(i)->name : NULL; }
int eidetic_mixer_index(const char *name) {
    for (int i = 0; name && i < layer_count(); i++)
        if (!strcmp(layer_at(i)->name, name)) return i;
    return -1;
}
unsigned eidetic_mixer_options(int i) { return layer_at(i) ? layer_at(i)->options : 0; }

/* ---- training configurations ---- */

/* The value of --name / --name=value in argv, or NULL (as `eidetic train` finds --preset, --config). */
static const char *flag_value(int argc, char *const *argv, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < argc; i++) {
        if (!argv[i] || strncmp(argv[i], name, n) != 0) continue;
        if (argv[i][n] == '=') return argv[i] + n + 1;
        if (argv[i][n] == 0 && i + 1 < argc) return argv[i + 1];
    }
    return NULL;
}

eidetic_status eidetic_train_config_from_args(int argc, char *const *argv, eidetic_train_config **out) {
    enter();
    NEED(out && argc >= 0 && (argv || argc == 0), "eidetic_train_config_from_args: out must not be NULL, argc >= 0");
    for (int i = 0; i < argc; i++) NEED(argv[i], "eidetic_train_config_from_args: argv[%d] is NULL", i);
    NEED(!flag_value(argc, argv, "--resume"), "eidetic_train_config_from_args: --resume names a run, not a configuration");
    eidetic_train_config *h = eid_xcalloc(1, sizeof *h);
    TrainCfg *c = &h->c;
    const char *preset = flag_value(argc, argv, "--preset"), *cfg = flag_value(argc, argv, "--config");
    if (preset_apply(c, preset ? preset : "default") != 0 || (cfg && train_cfg_load_file(c, cfg, preset != NULL) != 0) ||
        opts_parse(train_opts, n_train_opts, c, argc, (char **)argv, "train") != 0 || train_cfg_resolve(c) != 0)
        return free(h), fail(EIDETIC_ERR_ARGUMENT);
    *out = h;
    return EIDETIC_OK;
}

void eidetic_train_config_free(eidetic_train_config *c) { free(c); }

eidetic_status eidetic_train_config_info(const eidetic_train_config *h, eidetic_train_info *out) {
    enter();
    NEED(h && out, "eidetic_train_config_info: config and out must not be NULL");
    const TrainCfg *c = &h->c;
    memset(out, 0, sizeof *out);
    snprintf(out->task, sizeof out->task, "%s", c->task.name);
    out->vocab_size = c->vocab_size, out->seq_len = c->task.seq_len, out->kv_pairs = c->task.kv_pairs;
    out->labels_per_example = task_labels_per_example(&c->task);
    out->batch = c->batch, out->steps = c->steps, out->eval_every = c->eval_every;
    out->eval_examples = c->eval_examples, out->target_acc = c->target_acc;
    return EIDETIC_OK;
}

/* ---- models ---- */

static eidetic_model *wrap(Model *m) {
    eidetic_model *h = eid_xcalloc(1, sizeof *h);
    h->m = m;
    return h;
}

eidetic_status eidetic_model_load(const char *dir, eidetic_model **out) { return eidetic_model_load_ex(dir, 0, out); }

eidetic_status eidetic_model_load_ex(const char *dir, unsigned flags, eidetic_model **out) {
    enter();
    NEED(dir && out, "eidetic_model_load: dir and out must not be NULL");
    NEED(!(flags & ~(unsigned)EIDETIC_LOAD_LENIENT), "eidetic_model_load_ex: unknown flags 0x%x", flags);
    Model *m = ckpt_load_model_ex(dir, NULL, (flags & EIDETIC_LOAD_LENIENT) != 0);
    if (!m) return fail(EIDETIC_ERR_LOAD);
    *out = wrap(m);
    return EIDETIC_OK;
}

eidetic_status eidetic_model_from_config(const char *config_json, unsigned long long seed, eidetic_model **out) {
    enter();
    NEED(config_json && out, "eidetic_model_from_config: config_json and out must not be NULL");
    ModelCfg c;
    memset(&c, 0, sizeof c);
    if (config_from_json(config_json, "config_json", &c) != 0) return fail(EIDETIC_ERR_LOAD);
    Model *m = model_new(&c);
    if (!m) return fail(EIDETIC_ERR_LOAD);
    model_init_params(m, (uint64_t)seed);
    *out = wrap(m);
    return EIDETIC_OK;
}

eidetic_status eidetic_config_check(const char *config_json) {
    enter();
    NEED(config_json, "eidetic_config_check: config_json must not be NULL");
    ModelCfg c;
    if (config_from_json(config_json, "config_json", &c) != 0) return fail(EIDETIC_ERR_LOAD);
    return EIDETIC_OK;
}

eidetic_status eidetic_model_from_train_config(const eidetic_train_config *c, unsigned long long seed, unsigned flags,
                                               eidetic_model **out) {
    enter();
    NEED(c && out, "eidetic_model_from_train_config: config and out must not be NULL");
    NEED(!(flags & ~(unsigned)EIDETIC_MODEL_NO_INIT), "eidetic_model_from_train_config: unknown flags 0x%x", flags);
    Model *m = model_new(&c->c.model);
    if (!m) return fail(EIDETIC_ERR_LOAD);
    if (!(flags & EIDETIC_MODEL_NO_INIT)) model_init_params(m, (uint64_t)seed);
    *out = wrap(m);
    return EIDETIC_OK;
}

eidetic_status eidetic_model_save(const eidetic_model *h, const char *dir, long step) {
    enter();
    NEED(h && dir, "eidetic_model_save: model and dir must not be NULL");
    NEED(step >= 0, "eidetic_model_save: step must be >= 0, got %ld", step);
    if (ckpt_save_model(h->m, dir, step) != 0) return fail(EIDETIC_ERR_SAVE);
    return EIDETIC_OK;
}

void eidetic_model_free(eidetic_model *h) {
    if (!h) return;
    model_free(h->m);
    free(h);
}

int eidetic_model_vocab_size(const eidetic_model *h) { return h ? h->m->cfg.vocab_size : 0; }
int eidetic_model_d_model(const eidetic_model *h) { return h ? h->m->cfg.d_model : 0; }
int eidetic_model_max_positions(const eidetic_model *h) { return h ? h->m->cfg.max_pos : 0; }
size_t eidetic_model_n_params(const eidetic_model *h) { return h ? h->m->n_weights : 0; }
int eidetic_model_n_sublayers(const eidetic_model *h) { return h ? h->m->n_sub : 0; }

static int sub_ok(const eidetic_model *h, int i) { return h && i >= 0 && i < h->m->n_sub; }

const char *eidetic_model_sublayer_kind(const eidetic_model *h, int i) {
    return sub_ok(h, i) ? h->m->sub[i].op.ops->name : NULL;
}
int eidetic_model_sublayer_block(const eidetic_model *h, int i) { return sub_ok(h, i) ? h->m->sub_block[i] : -1; }

size_t eidetic_model_sublayer_n_params(const eidetic_model *h, int i) {
    if (!sub_ok(h, i)) return 0;
    const Model *m = h->m;
    const Layer *l = &m->sub[i].op;
    size_t n = (size_t)m->cfg.d_model; /* the sublayer's pre-norm */
    for (int j = 0; j < m->nparam; j++)
        if (m->param[j].owner == l) n += m->param[j].numel;
    return n;
}

size_t eidetic_model_sublayer_state_floats(const eidetic_model *h, int i) {
    return sub_ok(h, i) ? model_state_floats(h->m, i) : 0;
}

unsigned eidetic_model_sublayer_options(const eidetic_model *h, int i) {
    return sub_ok(h, i) ? h->m->sub[i].op.ops->options : 0;
}

size_t eidetic_model_sublayer_state_floats_at(const eidetic_model *h, int i, int context) {
    if (!sub_ok(h, i) || context < 1) return 0;
    const Layer *l = &h->m->sub[i].op;
    if (!(l->ops->options & LOPT_MAX_LEN)) return model_state_floats(h->m, i);
    LayerCfg c = *l->cfg; /* the same layer with a cache of `context` tokens */
    c.max_len = context;
    return l->ops->state_size(&c, h->m->cfg.d_model);
}

double eidetic_model_sublayer_zoology_floats(const eidetic_model *h, int i, int seq_len) {
    if (!sub_ok(h, i)) return 0;
    const Layer *l = &h->m->sub[i].op;
    return l->ops->zoology_state(l->cfg, h->m->cfg.d_model, seq_len);
}

eidetic_status eidetic_model_measure_gemv(const eidetic_model *h, double min_seconds, double *gbs) {
    enter();
    NEED(h && gbs, "eidetic_model_measure_gemv: model and gbs must not be NULL");
    NEED(min_seconds >= 0 && min_seconds <= 3600, "eidetic_model_measure_gemv: min_seconds must be in [0, 3600], got %g",
         min_seconds);
    const Model *m = h->m;
    int cols = 1, rows = 1;
    for (int j = 0; j < m->nparam; j++)
        if (m->param[j].ndim == 2) rows = EID_MAX(rows, m->param[j].shape[0]), cols = EID_MAX(cols, m->param[j].shape[1]);
    real *x = eid_aligned_alloc(sizeof(real) * (size_t)EID_MAX(rows, cols)), *y = eid_aligned_alloc(sizeof(real) * (size_t)rows);
    for (int i = 0; i < cols; i++) x[i] = 1.0f / (1 + i);
    double best = 0, spent = 0;
    for (int r = 0; r < 1000 && (r < 5 || spent < min_seconds); r++) {
        double t0 = eid_now(), bytes = 0;
        for (int j = 0; j < m->nparam; j++) {
            const ParamEntry *p = &m->param[j];
            if (p->ndim != 2) continue;
            uint64_t bf0 = eid_bf16_weight_bytes_read(); /* a bf16 copy read instead: its bytes */
            eid_gemm(0, 1, 1, p->shape[0], p->shape[1], 1, x, p->shape[1], m->w + p->offset, p->shape[1], 0, y, p->shape[0]);
            uint64_t bf = eid_bf16_weight_bytes_read() - bf0;
            bytes += bf ? (double)bf : (double)p->numel * sizeof(real);
        }
        double dt = eid_now() - t0;
        spent += dt;
        best = EID_MAX(best, bytes / dt * 1e-9);
    }
    free(x), free(y);
    *gbs = best;
    return EIDETIC_OK;
}

/* Sequences of T tokens must fit the learned positions. */
static int check_len(const Model *m, long T) {
    if (m->cfg.max_pos > 0 && T > m->cfg.max_pos)
        return eid_error("sequence length %ld exceeds this model's %d learned positions (max_position_embeddings)",
                         T, m->cfg.max_pos), -1;
    return 0;
}

static int bad_flags(const unsigned char *flags, size_t n, const char *fn) {
    for (size_t i = 0; flags && i < n; i++)
        if (flags[i] & ~(EIDETIC_FLAG_SEG_START | EIDETIC_FLAG_CAUSAL | EIDETIC_FLAG_PAD))
            return eid_error("%s: flags[%zu] = 0x%x holds bits other than EIDETIC_FLAG_*", fn, i, flags[i]), 1;
    return 0;
}

eidetic_status eidetic_model_logits(eidetic_model *h, const int *tokens, int n_seq, int seq_len, float *logits) {
    return eidetic_model_logits_flags(h, tokens, NULL, n_seq, seq_len, logits);
}

eidetic_status eidetic_model_logits_flags(eidetic_model *h, const int *tokens, const unsigned char *flags, int n_seq,
                                          int seq_len, float *logits) {
    enter();
    NEED(h && tokens && logits, "eidetic_model_logits: model, tokens and logits must not be NULL");
    NEED(n_seq > 0 && seq_len > 0, "eidetic_model_logits: n_seq and seq_len must be > 0, got %d and %d", n_seq,
         seq_len);
    Model *m = h->m;
    size_t n = (size_t)n_seq * seq_len, V = (size_t)m->cfg.vocab_size;
    if (model_check_tokens(m, tokens, n, "tokens") != 0) return fail(EIDETIC_ERR_ARGUMENT);
    if (check_len(m, seq_len) != 0) return fail(EIDETIC_ERR_RANGE);
    if (bad_flags(flags, n, "eidetic_model_logits_flags")) return fail(EIDETIC_ERR_ARGUMENT);
    if (model_plan(m, n_seq, seq_len, 1) != 0) return fail(EIDETIC_ERR_RANGE);
    model_trunk_forward(m, tokens, flags, n_seq, seq_len);
    real *all = eid_xmalloc(sizeof(real) * n * V);
    model_logits_all(m, all);
    to_float(logits, all, n * V);
    free(all);
    return EIDETIC_OK;
}

/* ---- decoding ---- */

eidetic_status eidetic_decoder_new(eidetic_model *h, int n_seq, eidetic_decoder **out) {
    enter();
    NEED(h && out, "eidetic_decoder_new: model and out must not be NULL");
    NEED(n_seq > 0, "eidetic_decoder_new: n_seq must be > 0, got %d", n_seq);
    eidetic_decoder *d = eid_xcalloc(1, sizeof *d);
    d->owner = h;
    d->d = decoder_new(h->m, n_seq);
    d->last = eid_xcalloc((size_t)n_seq * h->m->cfg.vocab_size, sizeof(real));
    *out = d;
    return EIDETIC_OK;
}

void eidetic_decoder_free(eidetic_decoder *d) {
    if (!d) return;
    decoder_free(d->d);
    free(d->last);
    free(d);
}

void eidetic_decoder_reset(eidetic_decoder *d) {
    if (d) decoder_reset(d->d);
}

long eidetic_decoder_position(const eidetic_decoder *d) { return d ? d->d->pos : 0; }

/* The one place the API consumes a prompt. Until the engine's parallel prefill (model_prefill,
 * docs/design.md) lands this steps token by token, which leaves exactly the stepping state by
 * definition; switching is this function's body. tokens: [nseq, n] sequence-major; the logits after
 * the last token go to d->last. */
/* The prompt in one parallel pass (model_prefill): every layer's prefill leaves the state where
 * stepping token by token would. */
static int api_prefill(eidetic_decoder *d, const int *tokens, const uint8_t *flags, int n) {
    Model *m = d->owner->m;
    const real *lg = model_prefill(m, d->d, tokens, flags, d->d->nseq, n);
    if (!lg) return -1;
    memcpy(d->last, lg, sizeof(real) * d->d->nseq * m->cfg.vocab_size);
    return 0;
}

static eidetic_status prefill(eidetic_decoder *d, const int *tokens, const uint8_t *flags, int n_tokens, float *logits,
                              float *logits_all) {
    enter();
    NEED(d && tokens, "eidetic_decoder_prefill: decoder and tokens must not be NULL");
    NEED(n_tokens > 0, "eidetic_decoder_prefill: n_tokens must be > 0, got %d", n_tokens);
    Model *m = d->owner->m;
    int S = d->d->nseq, V = m->cfg.vocab_size;
    if (model_check_tokens(m, tokens, (size_t)S * n_tokens, "prompt") != 0) return fail(EIDETIC_ERR_ARGUMENT);
    if (bad_flags(flags, (size_t)S * n_tokens, "eidetic_decoder_prefill")) return fail(EIDETIC_ERR_ARGUMENT);
    if (decoder_room(m, d->d, n_tokens) != 0) return fail(EIDETIC_ERR_RANGE);
    if (api_prefill(d, tokens, flags, n_tokens) != 0) return fail(EIDETIC_ERR_ARGUMENT);
    if (logits) to_float(logits, d->last, (size_t)S * V);
    if (logits_all) {
        real *all = eid_xmalloc(sizeof(real) * (size_t)S * n_tokens * V);
        model_prefill_logits_all(m, all);
        to_float(logits_all, all, (size_t)S * n_tokens * V);
        free(all);
    }
    return EIDETIC_OK;
}

eidetic_status eidetic_decoder_prefill(eidetic_decoder *d, const int *tokens, int n_tokens, float *logits) {
    return prefill(d, tokens, NULL, n_tokens, logits, NULL);
}

eidetic_status eidetic_decoder_prefill_all(eidetic_decoder *d, const int *tokens, int n_tokens, float *logits_all) {
    NEED(logits_all, "eidetic_decoder_prefill_all: logits_all must not be NULL");
    return prefill(d, tokens, NULL, n_tokens, NULL, logits_all);
}

eidetic_status eidetic_decoder_prefill_all_flags(eidetic_decoder *d, const int *tokens, const unsigned char *flags,
                                                 int n_tokens, float *logits_all) {
    NEED(logits_all, "eidetic_decoder_prefill_all_flags: logits_all must not be NULL");
    return prefill(d, tokens, flags, n_tokens, NULL, logits_all);
}

eidetic_status eidetic_decoder_step(eidetic_decoder *d, const int *tokens, float *logits) {
    enter();
    NEED(d && tokens && logits, "eidetic_decoder_step: decoder, tokens and logits must not be NULL");
    Model *m = d->owner->m;
    int S = d->d->nseq, V = m->cfg.vocab_size;
    if (model_check_tokens(m, tokens, (size_t)S, "tokens") != 0) return fail(EIDETIC_ERR_ARGUMENT);
    if (decoder_room(m, d->d, 1) != 0) return fail(EIDETIC_ERR_RANGE);
    const real *lg = decoder_step(m, d->d, tokens);
    to_float(logits, lg, (size_t)S * V); /* d->last is prefill's alone: no second copy here */
    return EIDETIC_OK;
}

/* ---- training ---- */

eidetic_trainer_params eidetic_trainer_default_params(void) {
    return (eidetic_trainer_params){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1,
                                    .grad_clip = 1.0, .shards = 0};
}

static int check_params(const eidetic_trainer_params *p) {
    if (!(p->lr >= 0) || !isfinite(p->lr)) return eid_error("trainer: lr must be finite and >= 0, got %g", p->lr), -1;
    if (!(p->beta1 >= 0 && p->beta1 < 1) || !(p->beta2 >= 0 && p->beta2 < 1))
        return eid_error("trainer: beta1 and beta2 must be in [0, 1), got %g and %g", p->beta1, p->beta2), -1;
    if (!(p->eps > 0)) return eid_error("trainer: eps must be > 0, got %g", p->eps), -1;
    if (!(p->weight_decay >= 0)) return eid_error("trainer: weight_decay must be >= 0, got %g", p->weight_decay), -1;
    if (!(p->grad_clip >= 0)) return eid_error("trainer: grad_clip must be >= 0 (0 = off), got %g", p->grad_clip), -1;
    if (p->shards < 0 || p->shards > EID_MAX_SHARDS)
        return eid_error("trainer: shards must be in [0, %d] (0 = automatic), got %d", EID_MAX_SHARDS, p->shards), -1;
    return 0;
}

eidetic_status eidetic_trainer_new(eidetic_model *h, const eidetic_trainer_params *p, eidetic_trainer **out) {
    enter();
    NEED(h && p && out, "eidetic_trainer_new: model, params and out must not be NULL");
    if (check_params(p) != 0) return fail(EIDETIC_ERR_ARGUMENT);
    eidetic_trainer *t = eid_xcalloc(1, sizeof *t);
    t->owner = h;
    t->oc = (OptimCfg){.lr = p->lr, .min_lr = p->lr, .beta1 = p->beta1, .beta2 = p->beta2, .eps = p->eps,
                       .weight_decay = p->weight_decay, .grad_clip = p->grad_clip};
    t->want_shards = p->shards;
    adamw_init(&t->opt, h->m);
    model_weights_changed(h->m);
    *out = t;
    return EIDETIC_OK;
}

void eidetic_trainer_free(eidetic_trainer *t) {
    if (!t) return;
    if (t->sh.rep[0]) shards_free(&t->sh);
    adamw_free(&t->opt);
    free(t);
}

eidetic_status eidetic_trainer_set_lr(eidetic_trainer *t, double lr) {
    enter();
    NEED(t, "eidetic_trainer_set_lr: trainer must not be NULL");
    NEED(lr >= 0 && isfinite(lr), "eidetic_trainer_set_lr: lr must be finite and >= 0, got %g", lr);
    t->oc.lr = t->oc.min_lr = lr;
    return EIDETIC_OK;
}

/* The step itself: shard gradients, norm, clipping, AdamW, as the trainer's loop does
 * (src/train/trainer.c). -1 + eid_error; *numeric = 1 when the failure is a non-finite value. */
/* One step through the engine's only optimizer step (train/trainer.h: train_step); the trainer's
 * schedule has warmup 0 and total_steps 0, so lr_at gives the constant lr it holds. */
static int api_train_step(eidetic_trainer *t, const Batch *b, int per_example, LossOut *lo, double *gn_out,
                          int *numeric) {
    *numeric = 0;
    if (shards_plan(&t->sh, b->B, b->T, per_example) != 0) return -1;
    StepOut so;
    int st = train_step(&t->sh, &t->opt, &t->oc, t->opt.t, b, 0, NULL, NULL, &so);
    if (st < 0) return -1;
    lo->loss = so.loss, lo->accuracy = so.accuracy, lo->n_labels = so.n_labels;
    if (st == STEP_DIVERGED)
        return *numeric = 1, eid_error("trainer: non-finite %s (lower the learning rate)",
                                       isfinite(so.loss) ? "gradient norm" : "loss"), -1;
    *gn_out = so.grad_norm;
    return 0;
}

eidetic_status eidetic_trainer_step(eidetic_trainer *t, const int *tokens, const int *labels, int n_seq, int seq_len,
                                    eidetic_step_result *out) {
    eidetic_batch b = {tokens, labels, NULL, n_seq, seq_len};
    return eidetic_trainer_step_batch(t, &b, out);
}

eidetic_status eidetic_trainer_step_batch(eidetic_trainer *t, const eidetic_batch *bt, eidetic_step_result *out) {
    enter();
    NEED(t && bt, "eidetic_trainer_step: trainer and batch must not be NULL");
    const int *tokens = bt->tokens, *labels = bt->labels;
    int n_seq = bt->n_seq, seq_len = bt->seq_len;
    NEED(tokens && labels, "eidetic_trainer_step: trainer, tokens and labels must not be NULL");
    NEED(n_seq > 0 && seq_len > 0, "eidetic_trainer_step: n_seq and seq_len must be > 0, got %d and %d", n_seq,
         seq_len);
    Model *m = t->owner->m;
    size_t n = (size_t)n_seq * seq_len;
    if (model_check_tokens(m, tokens, n, "tokens") != 0) return fail(EIDETIC_ERR_ARGUMENT);
    for (size_t i = 0; bt->flags && i < n; i++)
        NEED(!(bt->flags[i] & ~(EIDETIC_FLAG_SEG_START | EIDETIC_FLAG_CAUSAL | EIDETIC_FLAG_PAD)),
             "eidetic_trainer_step: flags[%zu] = 0x%x holds bits other than EIDETIC_FLAG_*", i, bt->flags[i]);
    int per_example = 0, total = 0;
    for (int s = 0; s < n_seq; s++) {
        int k = 0;
        for (int i = 0; i < seq_len; i++) {
            int y = labels[(size_t)s * seq_len + i];
            if (y == EIDETIC_NO_LABEL) continue;
            if (y < 0 || y >= m->cfg.vocab_size)
                return eid_error("labels: label %d at position %zu is outside [0, %d) and is not EIDETIC_NO_LABEL "
                                 "(%d)", y, (size_t)s * seq_len + i, m->cfg.vocab_size, EIDETIC_NO_LABEL),
                       fail(EIDETIC_ERR_ARGUMENT);
            k++;
        }
        per_example = EID_MAX(per_example, k), total += k;
    }
    NEED(total > 0, "eidetic_trainer_step: the batch has no labels (every label is EIDETIC_NO_LABEL)");
    if (check_len(m, seq_len) != 0) return fail(EIDETIC_ERR_RANGE);
    if (!t->sh.rep[0]) { /* first step: fix the shard count (it then stays, so results are reproducible) */
        int want = t->want_shards ? t->want_shards : shards_auto(&m->cfg, n_seq, eid_threads());
        NEED(n_seq % want == 0, "eidetic_trainer_step: shards %d must divide n_seq %d", want, n_seq);
        if (shards_init(&t->sh, m, want) != 0) return memset(&t->sh, 0, sizeof t->sh), fail(EIDETIC_ERR_ARGUMENT);
    }
    NEED(n_seq % t->sh.n == 0, "eidetic_trainer_step: n_seq %d is not a multiple of the trainer's %d shards", n_seq,
         t->sh.n);
    Batch b = {tokens, labels, bt->flags, n_seq, seq_len, 0};
    LossOut lo = {0};
    double gn = 0;
    int numeric;
    uint64_t flops0 = eid_gemm_flops();
    if (api_train_step(t, &b, per_example, &lo, &gn, &numeric) != 0)
        return fail(numeric ? EIDETIC_ERR_NUMERIC : EIDETIC_ERR_ARGUMENT);
    double flops = (double)(eid_gemm_flops() - flops0);
    if (out) *out = (eidetic_step_result){.loss = lo.loss, .grad_norm = gn, .n_labels = lo.n_labels,
                                          .n_correct = lo.n_correct, .flops = flops};
    return EIDETIC_OK;
}

eidetic_status eidetic_trainer_get_info(const eidetic_trainer *t, eidetic_trainer_info *out) {
    enter();
    NEED(t && out, "eidetic_trainer_get_info: trainer and out must not be NULL");
    const Model *m = t->owner->m;
    out->shards = t->sh.rep[0] ? t->sh.n : 0;
    out->state_bytes = 4 * sizeof(real) * m->n_reals; /* weights, gradients, 2 AdamW moments */
    out->activation_bytes = t->sh.rep[0] ? shards_bytes(&t->sh) : 0;
    return EIDETIC_OK;
}

/* ---- synthetic task data ---- */

eidetic_status eidetic_data_from_train_config(const eidetic_train_config *c, unsigned long long seed, eidetic_data **out) {
    enter();
    NEED(c && out, "eidetic_data_from_train_config: config and out must not be NULL");
    eidetic_data *d = eid_xcalloc(1, sizeof *d);
    d->task = c->c.task; /* resolved with the config */
    source_task_init(&d->src, &d->task, (uint64_t)seed, (uint64_t)c->c.train_examples);
    *out = d;
    return EIDETIC_OK;
}

void eidetic_data_free(eidetic_data *d) { free(d); }

eidetic_status eidetic_data_next(eidetic_data *d, int n_seq, int *tokens, int *labels, unsigned char *flags) {
    enter();
    NEED(d && tokens && labels, "eidetic_data_next: data, tokens and labels must not be NULL");
    NEED(n_seq > 0, "eidetic_data_next: n_seq must be > 0, got %d", n_seq);
    if (source_next(&d->src, n_seq, tokens, labels, flags) != 0) return fail(EIDETIC_ERR_ARGUMENT);
    return EIDETIC_OK;
}
