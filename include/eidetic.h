/* eidetic.h — the public C API of libeidetic.a: load a checkpoint, compute logits, decode with the
 * recurrent state, run training steps. C11 and C++ compatible; includes nothing of the engine's
 * internal headers.
 *
 * Link: cc prog.c -Iinclude build/libeidetic.a -lopenblas -lcjson -lm -fopenmp
 * (the Makefile's BLAS_LIBS / CJSON_LIBS show the exact flags for this machine).
 *
 * Conventions
 * - Every function that can fail returns an eidetic_status; EIDETIC_OK (0) is success. On failure
 *   eidetic_last_error() gives a one-line message for the calling thread (what failed, which file or
 *   argument, what was expected). Outputs are written only on success.
 * - Handles are opaque and owned by the caller: each *_new / *_load is paired with its *_free.
 *   Free functions accept NULL.
 * - Arrays are row-major, sequence-major: tokens[s * seq_len + t] is token t of sequence s; logits
 *   [s * seq_len + t] * vocab_size + v. Logits are always float, whatever precision the library
 *   computes in.
 * - Thread safety: separate handles may be used on separate threads at the same time (this is
 *   tested under ThreadSanitizer). One handle, and the decoders and trainers made from it, must be
 *   used by one thread at a time. eidetic_init and eidetic_set_log_callback change process-wide
 *   settings: call them before other threads use the library.
 * - The library never exits, aborts on bad input or replaces the process. Out of memory and broken
 *   internal invariants (bugs) still abort, after logging a message.
 */
#ifndef EIDETIC_H
#define EIDETIC_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    EIDETIC_OK = 0,
    EIDETIC_ERR_ARGUMENT = 1, /* a NULL handle or pointer, a size <= 0, a token outside [0, vocab) */
    EIDETIC_ERR_LOAD = 2,     /* a checkpoint or config that cannot be read or is invalid */
    EIDETIC_ERR_SAVE = 3,     /* a checkpoint that cannot be written (directory, disk) */
    EIDETIC_ERR_RANGE = 4,    /* longer than the model's learned positions (max_position_embeddings) */
    EIDETIC_ERR_NUMERIC = 5,  /* a non-finite loss or gradient in a training step (nothing updated) */
} eidetic_status;

/* Label value for "no label at this position" in eidetic_trainer_step. */
#define EIDETIC_NO_LABEL (-100)

typedef struct eidetic_model eidetic_model;
typedef struct eidetic_decoder eidetic_decoder;
typedef struct eidetic_trainer eidetic_trainer;

/* ---- process-wide -------------------------------------------------------------------------- */

/* Sets the number of threads the library's kernels and BLAS use (n_threads <= 0: all cores, or
 * OMP_NUM_THREADS). Optional: the first call that needs it initialises with n_threads = 0. Call it
 * before other threads use the library. Unlike the `eidetic` program, the library does not restart
 * the process when OpenBLAS picked a narrower core than the CPU supports (it logs a warning: set
 * OPENBLAS_CORETYPE in the environment before the program starts). */
eidetic_status eidetic_init(int n_threads);

/* eidetic_init with flags: EIDETIC_INIT_VERBOSE also logs the BLAS core and the thread count (one
 * line through the log callback, as the `eidetic` program does at start).
 * Denormal floats: by default the library sets flush-to-zero (x86 FTZ and DAZ, ARM FZ) on each thread
 * that calls into it and on that thread's OpenMP workers, because a product meeting a denormal costs
 * ~100 cycles and a training run that underflowed ran 31x slower (docs/performance.md "Denormals").
 * Only values below 1.2e-38 change. EIDETIC_INIT_KEEP_DENORMALS leaves every thread's floating-point
 * mode as it is (pass it to the first eidetic_init_ex, before any other call). */
enum { EIDETIC_INIT_VERBOSE = 1, EIDETIC_INIT_KEEP_DENORMALS = 2 };
eidetic_status eidetic_init_ex(int n_threads, unsigned flags);

/* Precision of the library's matrix products from now on (docs/performance.md "Mixed precision"):
 * "fp32" (the default and the reference), "bf16" (bf16 operands, fp32 accumulation and result,
 * through oneDNN; weights, optimizer, scans, norms, softmax and loss stay fp32) or "auto" (bf16 only
 * for decoding: products of at most 64 rows with a weight made for a decoder read packed bf16 weights,
 * half the bytes; fp32 for every other product, because on CPUs without AMX bf16 arithmetic is no
 * faster than fp32; logged). On a CPU without native bf16 a "bf16" or "auto" request logs one line and
 * keeps fp32 (EIDETIC_BF16_EMULATE=1 in the environment forces oneDNN's emulation, for tests).
 * EIDETIC_ERR_ARGUMENT for another name; *in_effect (may be NULL) receives "fp32", "bf16" or "auto". */
eidetic_status eidetic_set_precision(const char *name, int verbose, const char **in_effect);

/* Which library multiplies each matrix shape (docs/performance.md "Choosing the library per shape"):
 * "fixed" (the default: OpenBLAS for fp32, oneDNN for bf16), "measure" (the first product of each
 * shape times the candidate libraries and keeps the fastest; verbose logs each choice), or the path
 * of a plan file written by eidetic_save_gemm_plan (or by `eidetic train --gemm-plan measure` in its
 * checkpoints), replayed exactly; shapes it lacks are measured. Libraries round differently, so a
 * measured plan changes the low bits of results: replay the file to reproduce a run.
 * EIDETIC_ERR_ARGUMENT for a bad spec or a malformed file (the message names it). */
eidetic_status eidetic_set_gemm_plan(const char *spec, int verbose);
/* Writes the plan chosen so far (JSON) to path, crash-safe; EIDETIC_ERR_SAVE when it cannot. */
eidetic_status eidetic_save_gemm_plan(const char *path);
/* Shapes in the plan that use `library` ("openblas", "onednn-f32", "onednn-bf16"; NULL: all shapes);
 * -1 for another name. */
int eidetic_gemm_plan_count(const char *library);

/* Bytes of bf16 weight copies (mirrors and packed copies) that matrix products have read since the
 * process started: what a bf16 decode step streams in place of fp32 weights (`eidetic bench decode`
 * divides it by the steps to get the bytes of its bandwidth bound). 0 in fp32. */
unsigned long long eidetic_bf16_weight_bytes_read(void);

/* Threads the library's kernels and BLAS use (initialising with n_threads = 0 if needed). */
int eidetic_n_threads(void);
/* The OpenBLAS core type in use ("Haswell", "SkylakeX", ...); "unknown" if BLAS does not say. */
const char *eidetic_blas_core(void);

/* Best GFLOP/s of the library's matrix product C[M,N] = A[M,K]·B[K,N] (the one every layer uses; a
 * backend's own) over repetitions for at least min_seconds (and at least 3): the denominator of
 * model-FLOP utilisation. 2·M·N·K FLOPs per product. */
eidetic_status eidetic_measure_gemm(int M, int N, int K, double min_seconds, double *gflops);

/* The calling thread's message for its last failed call ("" if none). Valid until that thread's
 * next library call. */
const char *eidetic_last_error(void);

/* A short, constant name of a status code ("ok", "argument", "load", ...). */
const char *eidetic_status_name(eidetic_status s);

/* Log lines (information such as the BLAS core, and internal-error reports) go to `fn` instead of
 * stderr; level 1 = information, 0 = an internal error just before the process aborts. msg has no
 * trailing newline and is valid only during the call. fn = NULL restores stderr. `user` is passed
 * through. Set it before other threads use the library; fn may be called from any thread. */
typedef void (*eidetic_log_callback)(int level, const char *msg, void *user);
void eidetic_set_log_callback(eidetic_log_callback fn, void *user);

/* ---- mixers (the layer registry) ----------------------------------------------------------- */

/* Sequence mixers this build knows, in registry order: index 0 .. eidetic_mixer_count() - 1. */
int eidetic_mixer_count(void);
const char *eidetic_mixer_name(int i);    /* "longhorn", ...; NULL if i is out of range */
int eidetic_mixer_index(const char *name); /* -1 if unknown */
/* Model options a mixer reads (the `eidetic train` flags routed to it), as EIDETIC_MIXER_* bits; 0
 * for an unknown index. A tool asks these instead of comparing mixer names. */
enum {
    EIDETIC_MIXER_D_STATE = 1 << 0,  /* --d-state */
    EIDETIC_MIXER_EXPAND = 1 << 1,   /* --expand */
    EIDETIC_MIXER_HEADS = 1 << 2,    /* --num-heads */
    EIDETIC_MIXER_KV_HEADS = 1 << 3, /* --num-kv-heads */
    EIDETIC_MIXER_HEADDIM = 1 << 4,  /* --headdim */
    EIDETIC_MIXER_WINDOW = 1 << 5,   /* --window (config.json "window"): a sliding window */
    EIDETIC_MIXER_CHUNK = 1 << 6,    /* --chunk */
    EIDETIC_MIXER_D_CONV = 1 << 7,   /* --d-conv */
    EIDETIC_MIXER_ROPE = 1 << 8,     /* --no-rope */
    EIDETIC_MIXER_KV_CACHE = 1 << 9, /* config.json "max_len": a KV cache that grows with the context */
};
unsigned eidetic_mixer_options(int i);

/* Limits of this build. */
#define EIDETIC_MAX_LAYERS 64 /* blocks per model */
#define EIDETIC_MAX_SHARDS 64 /* eidetic_trainer_params.shards */

/* ---- training configurations --------------------------------------------------------------- */

/* What `eidetic train` would run for a list of its flags: the default preset, then the flags, then
 * the same checks (task, model, optimiser). Handles are independent of models. */
typedef struct eidetic_train_config eidetic_train_config;

/* argv: train flags without the program and command names ("--layers", "mamba,mamba", "--task",
 * "copy", ...). EIDETIC_ERR_ARGUMENT with `eidetic train`'s message for an unknown flag, a bad value or
 * a configuration the engine rejects. */
eidetic_status eidetic_train_config_from_args(int argc, char *const *argv, eidetic_train_config **out);
void eidetic_train_config_free(eidetic_train_config *c);

typedef struct {
    char task[32];          /* resolved task name */
    int vocab_size, seq_len;
    int kv_pairs;           /* MQAR key-value pairs (as resolved; other tasks ignore it) */
    int labels_per_example; /* upper bound of labelled positions per example */
    int batch, steps, eval_every, eval_examples;
    double target_acc;      /* stop at this test accuracy (0 = off) */
} eidetic_train_info;
eidetic_status eidetic_train_config_info(const eidetic_train_config *c, eidetic_train_info *out);

/* ---- models -------------------------------------------------------------------------------- */

/* Loads a checkpoint directory (config.json + model.safetensors, as written by `eidetic train`).
 * *out receives a new handle (free with eidetic_model_free). EIDETIC_ERR_LOAD names the file and
 * the problem. */
eidetic_status eidetic_model_load(const char *dir, eidetic_model **out);
/* Load flags: EIDETIC_LOAD_LENIENT admits unknown top-level config.json keys whose value is a
 * string, null or a list of strings (metadata other exporters write); everything else stays strict. */
enum { EIDETIC_LOAD_LENIENT = 1 };
eidetic_status eidetic_model_load_ex(const char *dir, unsigned flags, eidetic_model **out);

/* A new model from a config.json text (the same format as a checkpoint's config.json), with fresh
 * weights drawn from `seed` (deterministic: the same seed gives the same weights). */
eidetic_status eidetic_model_from_config(const char *config_json, unsigned long long seed, eidetic_model **out);

/* A new model of a training configuration's architecture, weights drawn from `seed` as `eidetic
 * train --seed` draws them. flags: EIDETIC_MODEL_NO_INIT leaves the weights zero (to read sizes
 * without the cost of drawing them). */
enum { EIDETIC_MODEL_NO_INIT = 1 };
eidetic_status eidetic_model_from_train_config(const eidetic_train_config *c, unsigned long long seed, unsigned flags,
                                               eidetic_model **out);

/* Checks a config.json text as eidetic_model_from_config would (EIDETIC_ERR_LOAD with the same
 * message), without building the model. */
eidetic_status eidetic_config_check(const char *config_json);

/* Writes config.json + model.safetensors into dir (created if missing; each file replaced
 * atomically), recording `step` in the metadata. The result loads with eidetic_model_load and with
 * every `eidetic` command that takes --ckpt. */
eidetic_status eidetic_model_save(const eidetic_model *m, const char *dir, long step);

void eidetic_model_free(eidetic_model *m); /* frees decoders' and trainers' models too: free those first */

int eidetic_model_vocab_size(const eidetic_model *m);
int eidetic_model_d_model(const eidetic_model *m);
/* Learned absolute positions: the longest sequence the model takes; 0 = no limit. */
int eidetic_model_max_positions(const eidetic_model *m);
/* Number of trainable parameters (not counting alignment padding). */
size_t eidetic_model_n_params(const eidetic_model *m);

/* Sublayers, in order: each block's mixer, then its MLP when the block has one. */
int eidetic_model_n_sublayers(const eidetic_model *m);
/* Kind of sublayer i: its mixer ("longhorn", "mamba", "mamba2", "gla", "attn", "swa", ...) or
 * "swiglu" for an MLP; NULL if i is out of range. */
const char *eidetic_model_sublayer_kind(const eidetic_model *m, int i);
/* Block index (0-based) sublayer i belongs to; -1 if out of range. */
int eidetic_model_sublayer_block(const eidetic_model *m, int i);
/* Parameters of sublayer i, its pre-norm included; 0 if out of range. */
size_t eidetic_model_sublayer_n_params(const eidetic_model *m, int i);
/* Recurrent state of sublayer i per decoded sequence, in floats (0 for an MLP or out of range). The
 * state a decoder keeps is the sum over sublayers, per sequence. */
size_t eidetic_model_sublayer_state_floats(const eidetic_model *m, int i);

/* Mixer options of sublayer i (EIDETIC_MIXER_* bits; 0 for an MLP or out of range). */
unsigned eidetic_model_sublayer_options(const eidetic_model *m, int i);
/* Recurrent state of sublayer i per sequence after `context` tokens, in floats: for a layer with a
 * KV cache (EIDETIC_MIXER_KV_CACHE) the cache of `context` tokens, otherwise the fixed state
 * (= eidetic_model_sublayer_state_floats). 0 for an MLP, out of range or context < 1. */
size_t eidetic_model_sublayer_state_floats_at(const eidetic_model *m, int i, int context);
/* The same state in the Zoology convention (docs/tasks.md §1.4: what the papers' state-size axis
 * counts) for sequences of seq_len tokens, in floats. 0 for an MLP or out of range. */
double eidetic_model_sublayer_zoology_floats(const eidetic_model *m, int i, int seq_len);

/* Best GB/s of the library's matrix-vector product (M = 1, as a decoding step makes them) over every
 * weight matrix of m, repeated for at least min_seconds (and at least 5): the ceiling of a decoding
 * step built on BLAS. Weights are read, never changed. */
eidetic_status eidetic_model_measure_gemv(const eidetic_model *m, double min_seconds, double *gbs);

/* Logits at every position of n_seq sequences of seq_len tokens each, computed in parallel over
 * time (the training forward pass). tokens: [n_seq * seq_len]; logits: [n_seq * seq_len * vocab]
 * floats, caller-allocated. Sequences do not see one another, but the batch shape can change the
 * last bits (BLAS blocking): `eidetic forward` computes each sequence as a batch of one (n_seq 1),
 * and with the same OpenBLAS core the values are identical. */
eidetic_status eidetic_model_logits(eidetic_model *m, const int *tokens, int n_seq, int seq_len, float *logits);
/* The same with per-token flags (EIDETIC_FLAG_* bits, [n_seq * seq_len], NULL = eidetic_model_logits):
 * tokens without EIDETIC_FLAG_CAUSAL form a prompt that bidirectional layers read both ways (docs/layers.md
 * §8). Other bits: EIDETIC_ERR_ARGUMENT. */
eidetic_status eidetic_model_logits_flags(eidetic_model *m, const int *tokens, const unsigned char *flags, int n_seq,
                                          int seq_len, float *logits);

/* ---- decoding ------------------------------------------------------------------------------ */

/* A decoder for n_seq sequences decoded in lockstep, holding each sublayer's recurrent state
 * (constant memory in the number of tokens). It uses m, which must outlive it. */
eidetic_status eidetic_decoder_new(eidetic_model *m, int n_seq, eidetic_decoder **out);
void eidetic_decoder_free(eidetic_decoder *d);
/* Back to the empty state (position 0). */
void eidetic_decoder_reset(eidetic_decoder *d);
/* Tokens consumed so far (per sequence). */
long eidetic_decoder_position(const eidetic_decoder *d);

/* Feeds a prompt of n_tokens tokens per sequence (tokens: [n_seq * n_tokens], sequence-major) and
 * leaves the state exactly as stepping through it would. logits (optional, may be NULL):
 * [n_seq * vocab] floats, the logits after the prompt's last token. May be called repeatedly:
 * prefill(a) then prefill(b) equals prefill(a‖b). EIDETIC_ERR_RANGE if the prompt would pass the
 * model's learned positions (nothing is consumed then). */
eidetic_status eidetic_decoder_prefill(eidetic_decoder *d, const int *tokens, int n_tokens, float *logits);
/* The same pass, writing the logits at every prompt position: logits_all [n_seq * n_tokens * vocab]
 * floats (caller-allocated), what eidetic_decoder_step would have returned token by token. */
eidetic_status eidetic_decoder_prefill_all(eidetic_decoder *d, const int *tokens, int n_tokens, float *logits_all);
/* eidetic_decoder_prefill_all with per-token flags ([n_seq * n_tokens], as eidetic_model_logits_flags):
 * a prompt without EIDETIC_FLAG_CAUSAL followed by its first CAUSAL token (<gen>) is read bidirectionally by
 * bidirectional layers, and decoding continues causally from the state left (docs/layers.md §8.4). */
eidetic_status eidetic_decoder_prefill_all_flags(eidetic_decoder *d, const int *tokens, const unsigned char *flags,
                                                 int n_tokens, float *logits_all);

/* Feeds one token per sequence (tokens: [n_seq]) and writes the next-token logits, [n_seq * vocab]
 * floats (caller-allocated, not optional). */
eidetic_status eidetic_decoder_step(eidetic_decoder *d, const int *tokens, float *logits);

/* ---- training ------------------------------------------------------------------------------ */

typedef struct {
    double lr;           /* learning rate of each step (constant unless changed with _set_lr) */
    double beta1, beta2; /* AdamW moment decays */
    double eps;          /* AdamW denominator epsilon */
    double weight_decay; /* decoupled; never applied to norms, biases and other no-decay tensors */
    double grad_clip;    /* global gradient-norm clip; 0 = none */
    int shards;          /* data-parallel shards of each batch (must divide n_seq); 0 = automatic */
} eidetic_trainer_params;

/* lr 1e-3, betas 0.9 / 0.999, eps 1e-8, weight decay 0.1, clip 1.0, shards 0 — the `eidetic train`
 * defaults apart from its learning-rate schedule. */
eidetic_trainer_params eidetic_trainer_default_params(void);

/* An AdamW trainer for m (fresh moments). It updates m's weights in place; m must outlive it. */
eidetic_status eidetic_trainer_new(eidetic_model *m, const eidetic_trainer_params *p, eidetic_trainer **out);
void eidetic_trainer_free(eidetic_trainer *t);
eidetic_status eidetic_trainer_set_lr(eidetic_trainer *t, double lr);

typedef struct {
    double loss;      /* mean cross-entropy over the labelled positions */
    double grad_norm; /* global L2 norm of the gradient before clipping */
    int n_labels;     /* labelled positions */
    int n_correct;    /* of which the argmax was right */
    double flops;     /* matrix-product FLOPs of the step (2·M·N·K per product the library ran while the
                       * step did; products run by other threads at the same time count too) */
} eidetic_step_result;

/* One optimisation step on a batch: forward, mean cross-entropy over positions whose label is not
 * EIDETIC_NO_LABEL, backward, gradient-norm clipping, AdamW. tokens, labels: [n_seq * seq_len];
 * labels in [0, vocab) or EIDETIC_NO_LABEL. out may be NULL. A non-finite loss or gradient returns
 * EIDETIC_ERR_NUMERIC and leaves the weights unchanged. */
eidetic_status eidetic_trainer_step(eidetic_trainer *t, const int *tokens, const int *labels, int n_seq, int seq_len,
                                    eidetic_step_result *out);

/* Per-token flags of a batch (the data sources' flags; docs/design.md "Data sources"). */
enum {
    EIDETIC_FLAG_SEG_START = 1, /* the first token of an example (a segment) */
    EIDETIC_FLAG_CAUSAL = 2,    /* a token of the causal part */
    EIDETIC_FLAG_PAD = 4,       /* padding: changes no state, carries no label */
};
typedef struct {
    const int *tokens, *labels;  /* [n_seq * seq_len] each, as in eidetic_trainer_step */
    const unsigned char *flags;  /* [n_seq * seq_len] EIDETIC_FLAG_* bits, or NULL (one causal segment per row) */
    int n_seq, seq_len;
} eidetic_batch;
/* eidetic_trainer_step with per-token flags (flags holding other bits: EIDETIC_ERR_ARGUMENT). */
eidetic_status eidetic_trainer_step_batch(eidetic_trainer *t, const eidetic_batch *b, eidetic_step_result *out);

typedef struct {
    int shards;              /* data-parallel shards of each batch (0 before the first step) */
    size_t state_bytes;      /* weights + gradients + the two AdamW moments */
    size_t activation_bytes; /* every shard's planned activations and the replicas' gradients (0 before the first step) */
} eidetic_trainer_info;
eidetic_status eidetic_trainer_get_info(const eidetic_trainer *t, eidetic_trainer_info *out);

/* ---- synthetic task data ------------------------------------------------------------------- */

/* Batches of a training configuration's task: its training stream from `seed`, as `eidetic train`
 * reads them (the same rows for the same seed). */
typedef struct eidetic_data eidetic_data;
eidetic_status eidetic_data_from_train_config(const eidetic_train_config *c, unsigned long long seed, eidetic_data **out);
void eidetic_data_free(eidetic_data *d);
/* The next n_seq rows: tokens, labels (EIDETIC_NO_LABEL where none), flags (may be NULL) of
 * [n_seq * seq_len] each, caller-allocated. */
eidetic_status eidetic_data_next(eidetic_data *d, int n_seq, int *tokens, int *labels, unsigned char *flags);

#ifdef __cplusplus
}
#endif
#endif
