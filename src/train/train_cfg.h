/* train_cfg.h — everything a training run needs, as one struct with a table of options.
 * The same table parses command-line flags (--kebab-case), config files (JSON keys, kebab or
 * snake case), presets, prints the resolved config, and is stored in the training state. */
#ifndef EIDETIC_TRAIN_CFG_H
#define EIDETIC_TRAIN_CFG_H
#include <stdint.h>
#include "io/opts.h"
#include "model/config.h"
#include "tasks/task.h"
#include "train/optim.h"

typedef struct {
    char preset[32];
    /* architecture (ignored when a "model" section comes from --config or when resuming) */
    char layers[512];
    int d_model, d_ff, d_state, expand, vocab_size;
    int num_heads, num_kv_heads, headdim, window, chunk, d_conv; /* per-mixer sizes, 0 = the mixer's default */
    char bidir[256]; /* --bidir: alternate | all | none | comma list of layer indices ("" = none) */
    int learned_pos, no_rope; /* the Zoology Fig. 2 attention baseline: learned positions, no RoPE */
    char bmojo_ssm[16], bmojo_score[16]; /* B'MOJO layers (docs/bmojo.md); "" = the layer's default */
    int ssm_heads, qk_norm, untied_fading, mem_size, mem_topk;
    /* task */
    TaskCfg task;
    /* optimisation */
    int batch, steps, warmup;
    int shards; /* data-parallel shards of each batch (train/shards.h); 0 = auto: one per thread */
    double lr, min_lr, weight_decay, beta1, beta2, grad_clip;
    long train_examples; /* size of the training set; 0 = a fresh example every time */
    /* evaluation, checkpoints */
    int eval_every, eval_examples, ckpt_every;
    int stop_after; /* end this invocation after N steps, checkpointed (resume continues) */
    double target_acc;
    uint64_t seed;
    int threads, quiet;
    double dist_timeout; /* multi-process runs: seconds a rank waits in a collective before ending the job */
    char precision[8]; /* --precision: "" or "fp32" = fp32, "bf16" (core/runtime.h) */
    char gemm_plan[512]; /* --gemm-plan: "" or "fixed", "measure", or a plan file (core/gemm_plan.h) */
    char save_dtype[8]; /* --save-dtype: "" or "fp32", "bf16" (model.safetensors in BF16; masters in the training state) */
    char out[512], resume[512], config[512];
    char init[512];   /* --init: start from this checkpoint's weights (StateX post-training, docs/statex.md §4) */
    char freeze[256]; /* --freeze: parameter groups left untouched by the optimizer (train/freeze.c) */
    char data[512]; /* a dataset directory (eidetic prepare): train a language model on it instead of a task */
    char objective[16]; /* --objective: "" (the task's rows / plain LM) or ntp | birdie | birdie-causal | fixed | ul2 (docs/birdie.md) */
    int birdie_val_rows, birdie_candidates; /* controller: validation rows per arm, candidate actions (0 = defaults) */
    /* a fine-tuning stage after pre-training (docs/birdie.md "Fine-tuning and birdie-tiny"): steps (0 = none) on
     * --task after the --steps steps of --data / --objective, a fresh optimizer at the constant lr */
    int finetune_steps;
    double finetune_lr; /* 0 = --lr */
    ModelCfg model; /* resolved architecture */
    int model_from_file; /* model came from --config's "model" section */
} TrainCfg;

extern const OptDesc train_opts[];
extern const int n_train_opts;

int preset_apply(TrainCfg *c, const char *name); /* -1 + eid_error listing presets */
const char *preset_list(void);
char *train_cfg_to_json(const TrainCfg *c); /* malloc'd */
int train_cfg_apply_json(TrainCfg *c, const char *text, const char *where);
int train_cfg_load_file(TrainCfg *c, const char *path, int preset_from_flag);
int train_cfg_resolve(TrainCfg *c); /* task + model + optimiser checks */
void train_cfg_print(const TrainCfg *c, FILE *f);
OptimCfg train_cfg_optim(const TrainCfg *c);
OptimCfg train_cfg_finetune_optim(const TrainCfg *c); /* the --finetune-steps stage's: constant lr, no weight decay */

#endif
