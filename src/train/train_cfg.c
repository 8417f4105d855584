/* train_cfg.c — option table, presets, config files. */
#include "train/train_cfg.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "core/runtime.h"
#include "io/checkpoint.h"
#include "io/strict.h"
#include "layers/layer.h"
#include "data/birdie_src.h"

#define O(n, t, f, h) {n, t, offsetof(TrainCfg, f), sizeof(((TrainCfg *)0)->f), h}
const OptDesc train_opts[] = {
    O("preset", OPT_STR, preset, "start from a named preset (see below); flags override it"),
    O("config", OPT_STR, config, "JSON file of options (same names as the flags); may hold a \"model\" section in config.json format"),
    O("layers", OPT_STR, layers, "comma list of mixers, one per block (e.g. longhorn,longhorn)"),
    O("d-model", OPT_INT, d_model, "model width D"),
    O("d-ff", OPT_INT, d_ff, "SwiGLU MLP hidden size after every mixer; 0 = no MLP"),
    O("d-state", OPT_INT, d_state, "recurrent state size N per channel (0 = mixer default)"),
    O("d-conv", OPT_INT, d_conv, "short-conv / depthwise conv width of every layer that has one (0 = mixer default)"),
    O("expand", OPT_INT, expand, "inner width factor E (0 = mixer default)"),
    O("num-heads", OPT_INT, num_heads, "heads of attn/swa/gla layers (0 = mixer default)"),
    O("num-kv-heads", OPT_INT, num_kv_heads, "key/value heads of attn/swa layers (grouped-query attention)"),
    O("headdim", OPT_INT, headdim, "Mamba-2 head dimension P (0 = default)"),
    O("window", OPT_INT, window, "sliding-window length W of sliding-window layers (0 = the layer's default: swa 64)"),
    O("learned-pos", OPT_FLAG, learned_pos, "add learned absolute positions (seq-len of them) to the embeddings (Zoology Fig. 2 attention)"),
    O("bidir", OPT_STR, bidir, "Birdie bidirectional layers (docs/layers.md §8): alternate (even layers), all, none, or a list of layer indices like 0,2"),
    O("no-rope", OPT_FLAG, no_rope, "attn/swa layers without RoPE (with --learned-pos: the Zoology Fig. 2 attention baseline)"),
    O("bmojo-ssm", OPT_STR, bmojo_ssm, "B'MOJO layers: the SSM mixer that writes the fading tokens (mamba2 default, longhorn, mamba, gla, hawk)"),
    O("bmojo-score", OPT_STR, bmojo_score, "bmojo layers: innovation score of the eidetic store: pred (default), random, none"),
    O("ssm-heads", OPT_INT, ssm_heads, "B'MOJO layers: num_heads of a GLA or Hawk SSM (0 = its default)"),
    O("qk-norm", OPT_FLAG, qk_norm, "B'MOJO layers: RMSNorm per head on q and k before RoPE"),
    O("untied-fading", OPT_FLAG, untied_fading, "B'MOJO layers: separate q/k/v projections for the fading tokens"),
    O("mem-size", OPT_INT, mem_size, "bmojo layers: tokens M in the eidetic store (0 = window W)"),
    O("mem-topk", OPT_INT, mem_topk, "bmojo layers: tokens k_e selected per chunk of W (0 = max(1, W/8))"),
    O("chunk", OPT_INT, chunk, "chunk length of scans / chunked forms / attention blocks (0 = default 64)"),
    O("vocab", OPT_INT, vocab_size, "vocabulary size V (model and task; with --data: default the tokenizer's rounded up to a multiple of 64)"),
    O("data", OPT_STR, data, "train a language model on a dataset directory made by eidetic prepare (rows of --seq-len tokens; docs/lm.md)"),
    O("objective", OPT_STR, objective, "pre-training objective over documents (--data, or the task's examples as documents): ntp, birdie (Birdie's mixture + controller, even layers bidirectional), birdie-causal (same, all causal), fixed (Birdie's objectives, fixed class-uniform mixture), ul2 (docs/birdie.md)"),
    O("birdie-val-rows", OPT_INT, birdie_val_rows, "Birdie controller: validation rows per objective configuration (0 = 2)"),
    O("birdie-candidates", OPT_INT, birdie_candidates, "Birdie controller: random candidate actions per decision, plus as many sharpened copies (0 = 512; the paper 2048)"),
    O("finetune-steps", OPT_INT, finetune_steps, "after the --steps steps of pre-training (--data or --objective), N steps of fine-tuning on --task (its labels: the answer only), a fresh optimizer at the constant --finetune-lr, no weight decay; the final accuracy is the task's (docs/birdie.md)"),
    O("finetune-lr", OPT_DBL, finetune_lr, "constant learning rate of the --finetune-steps stage (0 = --lr)"),
    TASK_OPTIONS(O),
    O("batch", OPT_INT, batch, "sequences per step"),
    O("shards", OPT_INT, shards, "split each batch into N data-parallel shards, one thread each (0 = auto: one per thread, i.e. the largest divisor of the batch <= threads, when d-model <= 256; else 1); results depend on N, not on the thread count. Multi-process (mpirun): N counts the shards of all ranks, N/ranks each, and results depend on N, not on the ranks"),
    O("steps", OPT_INT, steps, "optimizer steps"),
    O("warmup", OPT_INT, warmup, "linear warm-up steps"),
    O("lr", OPT_DBL, lr, "peak learning rate"),
    O("min-lr", OPT_DBL, min_lr, "final learning rate of the cosine schedule"),
    O("weight-decay", OPT_DBL, weight_decay, "AdamW decoupled weight decay (not on norms, biases, D)"),
    O("beta1", OPT_DBL, beta1, "AdamW beta1"),
    O("beta2", OPT_DBL, beta2, "AdamW beta2"),
    O("grad-clip", OPT_DBL, grad_clip, "clip the global gradient norm to this (0 = off)"),
    O("train-examples", OPT_LONG, train_examples, "training set size (examples cycle); 0 = fresh examples forever"),
    O("eval-every", OPT_INT, eval_every, "evaluate on the test stream every N steps (0 = only at the end)"),
    O("eval-examples", OPT_INT, eval_examples, "test examples per evaluation"),
    O("target-acc", OPT_DBL, target_acc, "stop early once test accuracy reaches this (0 = never)"),
    O("ckpt-every", OPT_INT, ckpt_every, "write a checkpoint every N steps (and always at the end)"),
    O("stop-after", OPT_INT, stop_after, "stop this invocation after N steps with a checkpoint, as if interrupted (0 = off)"),
    O("seed", OPT_U64, seed, "seed of initialisation and data"),
    O("threads", OPT_INT, threads, "threads (0 = all cores)"),
    O("save-dtype", OPT_STR, save_dtype, "dtype of model.safetensors in checkpoints: fp32 (default) or bf16 (half the bytes; the fp32 master weights go into training_state.safetensors, so --resume stays exact)"),
    O("precision", OPT_STR, precision, "matrix-product precision: fp32 (default, the reference), bf16 (oneDNN, fp32 accumulation; fp32 on CPUs without native bf16) or auto (bf16 for decoding where the CPU has native bf16, fp32 for the rest)"),
    O("gemm-plan", OPT_STR, gemm_plan, "which library multiplies each matrix shape: fixed (default: OpenBLAS for fp32, oneDNN for bf16), measure (time the candidates on the first product of each shape, keep the fastest, log it; saved in each checkpoint as gemm_plan.json and replayed by --resume) or a plan file to replay"),
    O("out", OPT_STR, out, "output directory: checkpoint, metrics.jsonl"),
    O("resume", OPT_STR, resume, "continue a run from its output directory"),
    O("quiet", OPT_FLAG, quiet, "no progress line"),
    O("init", OPT_STR, init, "start from this checkpoint's weights and architecture (e.g. one made by eidetic expand) with a fresh optimizer and schedule; the model flags do not apply"),
    O("freeze", OPT_STR, freeze, "comma list of parameter groups the optimizer leaves as they are: embeddings, norms, mixers, mlps, unexpanded (all but the StateX-expanded mixers), or block indices"),
    O("dist-timeout", OPT_DBL, dist_timeout, "multi-process runs (mpirun, docs/distributed.md): seconds a rank waits for the others in a collective before it ends the job (0 = forever); must exceed the longest evaluation + checkpoint"),
};
const int n_train_opts = sizeof train_opts / sizeof train_opts[0];

/* ---- presets ---- */
typedef struct {
    const char *name, *help;
    const char *layers;
    int d_model, d_ff, vocab, seq_len, kv, batch, steps, warmup, eval_every, eval_examples;
    double lr, target;
    long train_examples;
    const char *task;  /* NULL = mqar */
    const char *extra; /* more options, "name=value,..." (task sizes) */
} Preset;

static const Preset presets[] = {
    /* no weight decay: with 0.1 the last percent came slowly (0.982 after 3000 steps; without, 0.990-0.991
     * at 2750-3000 steps in three unsharded runs). With 2 data-parallel shards (2 threads) a 4000-step
     * cosine ended at 0.9895 and a 6000-step one reached 0.991 at 5250 (4 min), at the final code at 3500
     * (2 min 47 s); docs/mqar_mixers.md.
     * Early stop at 0.99 ends it before 6000. */
    {"default", "Longhorn x2, D=128, MQAR L=64 K=4, V=8192 (the first run; a few minutes on 2 cores)", "longhorn,longhorn",
     128, 0, 8192, 64, 4, 64, 6000, 100, 250, 1000, 1e-2, 0.99, 0, NULL, "weight-decay=0"},
    {"mqar-256", "Longhorn x2, D=128, MQAR L=256 K=16, V=8192", "longhorn,longhorn", 128, 0, 8192, 256, 16, 32, 6000,
     100, 250, 1000, 1e-2, 0.99, 0, NULL, "weight-decay=0"},
    /* one per mixer on MQAR L=64 K=4, d_model 128: the recipes of the mixer table (docs/mqar_mixers.md) */
    {"mqar-longhorn", "Longhorn x2 on MQAR L=64 K=4 (the table's recipe; default runs it for 6000 steps)", "longhorn,longhorn", 128, 0, 8192, 64, 4, 64, 4000, 100,
     250, 1000, 1e-2, 0.99, 0, NULL, "weight-decay=0"},
    {"mqar-mamba", "Mamba-1 x2 on MQAR L=64 K=4", "mamba,mamba", 128, 0, 8192, 64, 4, 64, 4000, 100, 250, 1000, 1e-2,
     0.99, 0, NULL, "weight-decay=0"},
    {"mqar-mamba2", "Mamba-2 x2 on MQAR L=64 K=4", "mamba2,mamba2", 128, 0, 8192, 64, 4, 64, 4000, 100, 250, 1000, 1e-2,
     0.99, 0, NULL, "weight-decay=0"},
    {"mqar-gla", "GLA x2 (2 heads, q/k/v short convs) on MQAR L=64 K=4", "gla,gla", 128, 0, 8192, 64, 4, 64, 4000, 100,
     250, 1000, 3e-3, 0.99, 0, NULL, "weight-decay=0,num-heads=2,d-conv=4"},
    {"mqar-attn", "attention x2, Zoology Fig. 2 baseline (1 head, learned positions, no RoPE) on MQAR L=64 K=4",
     "attn,attn", 128, 0, 8192, 64, 4, 64, 4500, 100, 250, 1000, 1e-3, 0.99, 0, NULL,
     "weight-decay=0,num-heads=1,learned-pos=1,no-rope=1"},
    {"mqar-swa", "sliding-window attention x2 (W=16, 1 head, learned positions) on MQAR L=64 K=4", "swa,swa", 128, 0,
     8192, 64, 4, 64, 4500, 100, 250, 1000, 1e-3, 0.99, 0, NULL,
     "weight-decay=0,num-heads=1,learned-pos=1,no-rope=1,window=16"},
    /* B'MOJO (docs/bmojo.md): window 16 < L = 64, so the window alone cannot hold the pairs; RoPE, 1 head */
    {"mqar-bmojo-f", "B'MOJO-F x2 (W=16 raw + 16 fading tokens from a Mamba-2 SSM, 1 head) on MQAR L=64 K=4",
     "bmojo-f,bmojo-f", 128, 0, 8192, 64, 4, 64, 4000, 100, 250, 1000, 3e-3, 0.99, 0, NULL,
     "weight-decay=0,num-heads=1,window=16"},
    {"mqar-bmojo", "B'MOJO x2 (bmojo-f + eidetic store M=16, k_e=2 per chunk, pred score; OUR design) on MQAR L=64 K=4",
     "bmojo,bmojo", 128, 0, 8192, 64, 4, 64, 4000, 100, 250, 1000, 3e-3, 0.99, 0, NULL,
     "weight-decay=0,num-heads=1,window=16"},
    /* Birdie's two mixers (docs/layers.md §12, §13) at Longhorn's recipe but lr 3e-3, which did better than
     * 1e-2 for both in 400-step runs (docs/layers.md §12.8) */
    {"mqar-hawk", "Hawk x2 (RG-LRU, R = D, 1 gate block, conv 4) on MQAR L=64 K=4", "hawk,hawk", 128, 0, 8192, 64, 4, 64,
     4000, 100, 250, 1000, 3e-3, 0.99, 0, NULL, "weight-decay=0"},
    {"mqar-gated-ssm", "Birdie's gated SSM x2 (R = D) on MQAR L=64 K=4", "gated-ssm,gated-ssm", 128, 0, 8192, 64, 4, 64,
     4000, 100, 250, 1000, 3e-3, 0.99, 0, NULL, "weight-decay=0"},
    {"tiny", "a seconds-long smoke run: Longhorn x2, D=32, V=512, L=32 K=2", "longhorn,longhorn", 32, 0, 512, 32, 2,
     32, 200, 10, 100, 256, 3e-3, 0, 0, NULL, NULL},
    /* a language model on the embedded corpus (the Jargon File, byte tokenizer; docs/lm.md "Quick start") */
    {"lm-tiny", "Longhorn LM x4 + MLP, D=128, on the Jargon File (bytes, L=128; prepared on first use); ~10 min on 2 cores",
     "longhorn,longhorn,longhorn,longhorn", 128, 256, 320, 128, 0, 16, 1500, 100, 250, 1, 3e-3, 0, 0, NULL, "weight-decay=0.1"},
    /* Birdie's protocol in miniature (docs/birdie.md "Fine-tuning and birdie-tiny"): pre-training with --objective birdie
     * on the embedded corpus, then fine-tuning on the text phone book (docs/tasks.md §3.2) with the answer
     * as the only label; prints the phone book's greedy digit accuracy. Hawk x2 (layer 0 bidirectional),
     * rows of 320 bytes: 4..8 entries, 1..2 queries, 6-digit numbers DDD-DDD */
    {"birdie-tiny", "Birdie on the Jargon File (Hawk x2 + MLP, D=128, L=320), then the text phone book fine-tuned; digit accuracy",
     "hawk,hawk", 128, 256, 320, 320, 0, 8, 600, 50, 0, 256, 3e-3, 0, 0, "phonebook-text",
     "weight-decay=0.1,objective=birdie,finetune-steps=1500,finetune-lr=1e-3,birdie-val-rows=1,birdie-candidates=128,"
     "min-len=4,max-len=8,min-queries=1,max-queries=2,digits=6"},
    /* one per task (docs/tasks.md): small CPU versions of each protocol */
    {"mqar-mix", "MQAR Protocol B (§1.6): mixture up to L=256, 7 test slices up to L=1024, random fill", "longhorn,longhorn",
     64, 0, 8192, 256, 0, 32, 3000, 50, 500, 100, 3e-3, 0, 0, "mqar-mix", "random-non-queries=1"},
    {"copy", "copy strings of 5..20 letters (§2), Longhorn x2 D=64", "longhorn,longhorn", 64, 0, 30, 48, 0, 32, 2000, 50,
     250, 256, 3e-3, 0.99, 0, "copy", "min-len=5,max-len=20"},
    {"prefix-ngram", "prefix n-gram lookup (§2), strings 5..20", "longhorn,longhorn", 64, 0, 30, 48, 0, 32, 2000, 50, 250,
     256, 3e-3, 0.99, 0, "prefix-ngram", "min-len=5,max-len=20,ngram=3"},
    {"suffix-ngram", "suffix n-gram lookup (§2), strings 5..20", "longhorn,longhorn", 64, 0, 30, 48, 0, 32, 2000, 50, 250,
     256, 3e-3, 0.99, 0, "suffix-ngram", "min-len=5,max-len=20,ngram=3"},
    {"pb-tiny", "phone book, 4..8 entries, 1..2 queries, 4 digits, 16+16 names (a fast smoke size)", "longhorn,longhorn",
     64, 0, 64, 96, 0, 32, 2000, 50, 250, 128, 3e-3, 0, 0, "phonebook",
     "min-len=4,max-len=8,min-queries=1,max-queries=2,digits=4,first-names=16,surnames=16"},
    {"pb-cpu", "phone book pb-cpu (§3.3): 20..60 entries, 1..8 queries, 6 digits, Birdie qcq format", "longhorn,longhorn",
     128, 0, 544, 720, 0, 16, 3000, 100, 500, 128, 2e-3, 0, 0, "phonebook", "min-len=20,max-len=60,min-queries=1,max-queries=8,digits=6"},
    {"selcopy", "selective copying (§4): V=16, 16 tokens, L+2M=256, Mamba x2 D=64", "mamba,mamba", 64, 0, 16, 256, 0, 32,
     2000, 50, 250, 256, 3e-3, 0.99, 0, "selcopy", "num-tokens=16"},
    {"induction", "induction heads (§5): V=16, L=256, Mamba x2 D=64", "mamba,mamba", 64, 0, 16, 257, 0, 32, 2000, 50, 250,
     256, 1e-3, 0.99, 0, "induction", NULL},
    {"assoc", "H3 associative recall (§6): V=20, L=40, 5000 train examples", "longhorn,longhorn", 64, 0, 20, 42, 0, 32,
     2000, 50, 250, 500, 1e-3, 0.99, 5000, "assoc", NULL},
    {"mad-recall", "MAD in-context recall (§7): V=16, L=128, width 128 with SwiGLU", "longhorn,longhorn", 128, 256, 16,
     127, 0, 64, 2000, 50, 250, 256, 1e-3, 0, 12800, "mad-recall", NULL},
    {"mad-noisy", "MAD noisy recall (§7): V=32 (16 noise), L=128, frac 0.2", "longhorn,longhorn", 128, 256, 32, 127, 0, 64,
     2000, 50, 250, 256, 1e-3, 0, 12800, "mad-noisy", NULL},
    {"mad-fuzzy", "MAD fuzzy recall (§7): V=16, L=128, motifs <= 3", "longhorn,longhorn", 128, 256, 16, 128, 0, 64, 2000,
     50, 250, 256, 1e-3, 0, 12800, "mad-fuzzy", NULL},
    {"mad-selcopy", "MAD selective copying (§7): V=16, L=256, 16 tokens", "longhorn,longhorn", 128, 256, 16, 256, 0, 64,
     2000, 50, 250, 256, 1e-3, 0, 12800, "mad-selcopy", NULL},
    {"mad-compress", "MAD compression, tied-head adaptation (§7): V=16, 31 tokens", "longhorn,longhorn", 128, 256, 16, 62,
     0, 64, 2000, 50, 250, 256, 1e-3, 0, 12800, "mad-compress", NULL},
    {"mad-memorize", "MAD memorization (§7): V=256, L=32, 256 train examples", "longhorn,longhorn", 128, 256, 256, 32, 0,
     64, 2000, 50, 250, 256, 1e-3, 0, 256, "mad-memorize", NULL},
    {"passkey", "passkey (§9.3): 1 needle, 5 digits, pattern haystack, L=256", "longhorn,longhorn", 64, 0, 128, 256, 0,
     32, 2000, 50, 250, 256, 3e-3, 0.99, 0, "passkey", NULL},
    {"niah", "needle in a haystack (§9.3): 4 needles, random filler, L=256", "longhorn,longhorn", 64, 0, 128, 256, 0, 32,
     2000, 50, 250, 256, 3e-3, 0.99, 0, "niah", NULL},
};
#define N_PRESETS (int)(sizeof presets / sizeof presets[0])

const char *preset_list(void) {
    static char buf[8192];
    if (!buf[0])
        for (int i = 0; i < N_PRESETS; i++) {
            size_t k = strlen(buf);
            snprintf(buf + k, sizeof buf - k, "  %-13s %s\n", presets[i].name, presets[i].help);
        }
    return buf;
}

/* a preset's "name=value,..." options (task sizes) through the option table */
static int preset_extra(TrainCfg *c, const Preset *p) {
    char buf[512], where[64];
    if (!p->extra) return 0;
    snprintf(buf, sizeof buf, "%s", p->extra);
    snprintf(where, sizeof where, "preset %s", p->name);
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        const OptDesc *o = eq ? (*eq = 0, opt_find(train_opts, n_train_opts, kv)) : NULL;
        if (!o) eid_fatal("%s: bad option '%s'", where, kv); /* a broken table entry, not user input */
        if (opt_set(o, c, eq + 1, where) != 0) return -1;
    }
    return 0;
}

int preset_apply(TrainCfg *c, const char *name) {
    for (int i = 0; i < N_PRESETS; i++) {
        const Preset *p = &presets[i];
        if (strcmp(p->name, name)) continue;
        memset(c, 0, sizeof *c);
        snprintf(c->preset, sizeof c->preset, "%s", p->name);
        snprintf(c->layers, sizeof c->layers, "%s", p->layers);
        c->d_model = p->d_model, c->d_ff = p->d_ff, c->vocab_size = p->vocab;
        snprintf(c->task.name, sizeof c->task.name, "%s", p->task ? p->task : "mqar");
        c->task.seq_len = p->seq_len, c->task.kv_pairs = p->kv, c->task.power_a = 0.01, c->task.num_passes = 1;
        c->batch = p->batch, c->steps = p->steps, c->warmup = p->warmup;
        c->lr = p->lr, c->min_lr = p->lr * 0.1, c->weight_decay = 0.1, c->beta1 = 0.9, c->beta2 = 0.999;
        c->grad_clip = 1.0;
        c->train_examples = p->train_examples;
        c->eval_every = p->eval_every, c->eval_examples = p->eval_examples, c->target_acc = p->target;
        c->ckpt_every = 1000, c->seed = 1, c->dist_timeout = 600;
        snprintf(c->out, sizeof c->out, "runs/%s", p->name);
        return preset_extra(c, p);
    }
    return eid_error("--preset: unknown preset '%s'; presets:\n%s", name, preset_list()), -1;
}

static void opt_to_json(cJSON *j, const OptDesc *o, const void *base) {
    const void *src = (const char *)base + o->offset;
    switch (o->type) {
    case OPT_INT: case OPT_FLAG: cJSON_AddNumberToObject(j, o->name, *(const int *)src); break;
    case OPT_LONG: cJSON_AddNumberToObject(j, o->name, (double)*(const long *)src); break;
    case OPT_U64: { char b[32]; snprintf(b, sizeof b, "%llu", (unsigned long long)*(const uint64_t *)src);
        cJSON_AddStringToObject(j, o->name, b); break; }
    case OPT_DBL: cJSON_AddNumberToObject(j, o->name, *(const double *)src); break;
    case OPT_STR: cJSON_AddStringToObject(j, o->name, (const char *)src); break;
    }
}

char *train_cfg_to_json(const TrainCfg *c) {
    cJSON *j = cJSON_CreateObject();
    for (int i = 0; i < n_train_opts; i++)
        if (strcmp(train_opts[i].name, "config") && strcmp(train_opts[i].name, "resume"))
            opt_to_json(j, &train_opts[i], c);
    char *mj;
    config_to_json(&c->model, &mj);
    cJSON_AddItemToObject(j, "model", cJSON_Parse(mj));
    free(mj);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

int train_cfg_apply_json(TrainCfg *c, const char *text, const char *where) {
    cJSON *j = cJSON_Parse(text);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return eid_error("%s: not valid JSON (expected an object of option names)", where), -1;
    }
    int rc = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, j) {
        if (!strcmp(e->string, "model")) {
            char *mtext = cJSON_PrintUnformatted(e), w[600];
            snprintf(w, sizeof w, "%s: \"model\"", where);
            rc = config_from_json(mtext, w, &c->model);
            free(mtext);
            if (rc) break;
            c->model_from_file = 1;
            continue;
        }
        const OptDesc *o = opt_find(train_opts, n_train_opts, e->string);
        if (!o || !strcmp(o->name, "config")) {
            rc = -1, eid_error("%s: unknown key \"%s\" (keys are the train flags without --)", where, e->string);
            break;
        }
        char val[600];
        if (cJSON_IsString(e)) snprintf(val, sizeof val, "%s", e->valuestring);
        else if (cJSON_IsBool(e)) snprintf(val, sizeof val, "%s", cJSON_IsTrue(e) ? "true" : "false");
        else if (cJSON_IsNumber(e)) {
            /* checked (finite, integral, in range) before it is formatted for opt_set */
            char what[700];
            snprintf(what, sizeof what, "%s: \"%s\"", where, e->string);
            if (o->type == OPT_DBL) {
                double d;
                if ((rc = strict_json_double(e, -DBL_MAX, DBL_MAX, &d, what)) != 0) break;
                snprintf(val, sizeof val, "%.17g", d);
            } else if (o->type == OPT_STR) {
                rc = -1, eid_error("%s: expected a string", what);
                break;
            } else {
                long v;
                if ((rc = strict_json_long(e, o->type == OPT_INT ? INT_MIN : o->type == OPT_U64 ? 0 : LONG_MIN,
                                           o->type == OPT_INT ? INT_MAX : LONG_MAX, &v, what)) != 0)
                    break;
                snprintf(val, sizeof val, "%ld", v);
            }
        } else {
            rc = -1, eid_error("%s: \"%s\" must be a string, number or boolean", where, e->string);
            break;
        }
        if ((rc = opt_set(o, c, val, where)) != 0) break;
    }
    cJSON_Delete(j);
    return rc;
}

int train_cfg_load_file(TrainCfg *c, const char *path, int preset_from_flag) {
    FILE *f = fopen(path, "rb");
    if (!f) return eid_error("--config %s: cannot open (%s)", path, strerror(errno)), -1;
    char *buf = eid_xmalloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    int more = fgetc(f) != EOF, err = ferror(f);
    fclose(f);
    if (err || more) {
        free(buf);
        return eid_error("--config %s: %s", path, err ? "read error" : "larger than 1 MiB: not an options file"), -1;
    }
    buf[n] = 0;
    /* a "preset" key in the file is the base the file's other keys modify (a --preset flag wins) */
    cJSON *j = cJSON_Parse(buf);
    const cJSON *p = j ? cJSON_GetObjectItemCaseSensitive(j, "preset") : NULL;
    int rc = 0;
    if (cJSON_IsString(p) && !preset_from_flag) {
        char cfgpath[512];
        snprintf(cfgpath, sizeof cfgpath, "%s", c->config);
        rc = preset_apply(c, p->valuestring);
        snprintf(c->config, sizeof c->config, "%s", cfgpath);
    }
    cJSON_Delete(j);
    if (rc == 0) rc = train_cfg_apply_json(c, buf, path);
    free(buf);
    return rc;
}

/* --bidir: which layers are bidirectional (docs/layers.md §8.2: "alternate" = even layers, as the paper);
 * modelcfg_resolve then refuses a mixer without a bidirectional form. */
static int set_bidir(ModelCfg *m, const char *spec) {
    for (int i = 0; i < m->n_layer; i++) m->layer[i].bidir = 0;
    if (!spec[0] || !strcmp(spec, "none")) return 0;
    if (!strcmp(spec, "all") || !strcmp(spec, "alternate")) {
        for (int i = 0; i < m->n_layer; i++) m->layer[i].bidir = !strcmp(spec, "all") || i % 2 == 0;
        return 0;
    }
    int *idx = NULL, n = 0;
    if (strict_int_list(spec, 0, m->n_layer - 1, m->n_layer, &idx, &n,
                        "--bidir (expected alternate, all, none or a comma list of layer indices)") != 0)
        return -1;
    for (int k = 0; k < n; k++) {
        if (m->layer[idx[k]].bidir) {
            int twice = idx[k];
            free(idx);
            return eid_error("--bidir: layer %d listed twice", twice), -1;
        }
        m->layer[idx[k]].bidir = 1;
    }
    free(idx);
    return 0;
}

int train_cfg_resolve(TrainCfg *c) {
    if (c->vocab_size <= 0) return eid_error("--vocab: must be > 0"), -1;
    c->task.vocab_size = c->vocab_size;
    if (c->finetune_steps < 0) return eid_error("--finetune-steps: must be >= 0, got %d", c->finetune_steps), -1;
    if (c->finetune_steps > 0 && !c->data[0] && !c->objective[0])
        return eid_error("--finetune-steps %d: a fine-tuning stage follows pre-training on --data or with --objective; "
                         "without either, train the task directly (--steps)", c->finetune_steps), -1;
    if (c->steps >= 1 && c->finetune_steps > INT_MAX - c->steps)
        return eid_error("--finetune-steps %d: --steps + --finetune-steps exceeds %d", c->finetune_steps, INT_MAX), -1;
    if (!(c->finetune_lr >= 0) || c->finetune_lr > 10)
        return eid_error("--finetune-lr: must be in [0, 10] (0 = --lr), got %g", c->finetune_lr), -1;
    if (c->data[0] && !c->finetune_steps) { /* a language model: the task contributes only its row length */
        if (c->task.seq_len < 1) return eid_error("--seq-len: must be >= 1, got %d", c->task.seq_len), -1;
    } else if (task_resolve(&c->task) != 0) return -1;
    if (!c->model_from_file) {
        ModelCfg *m = &c->model;
        memset(m, 0, sizeof *m);
        m->vocab_size = c->vocab_size, m->d_model = c->d_model, m->tie_embeddings = 1, m->norm_eps = 1e-5;
        if (c->d_model <= 0) return eid_error("--d-model: must be > 0, got %d", c->d_model), -1;
        if (c->d_ff < 0) return eid_error("--d-ff: must be >= 0, got %d", c->d_ff), -1;
        if (modelcfg_set_layers(m, c->layers, c->d_ff) != 0) return -1;
        /* each option goes to the layers that declare it (LayerOps.options); 0 keeps the layer's default */
        for (int i = 0; i < m->n_layer; i++) {
            LayerCfg *l = &m->layer[i];
            unsigned o = layer_find(l->mixer)->options; /* known: modelcfg_set_layers checked the names */
            if (o & LOPT_D_STATE) l->d_state = c->d_state;
            if (o & LOPT_EXPAND) l->expand = c->expand;
            if (o & LOPT_HEADS) l->num_heads = c->num_heads;
            if (o & LOPT_KV_HEADS) l->num_kv_heads = c->num_kv_heads;
            if (o & LOPT_HEADDIM) l->headdim = c->headdim;
            if (o & LOPT_WINDOW) l->window = c->window;
            if (o & LOPT_CHUNK) l->chunk = c->chunk;
            if ((o & LOPT_D_CONV) && c->d_conv) l->d_conv = c->d_conv;
            if (o & LOPT_ROPE) l->no_rope = c->no_rope;
            if (o & LOPT_BMOJO) {
                snprintf(l->ssm, sizeof l->ssm, "%s", c->bmojo_ssm);
                l->ssm_heads = c->ssm_heads, l->qk_norm = c->qk_norm, l->untied = c->untied_fading;
            }
            if (o & LOPT_STORE) {
                snprintf(l->score, sizeof l->score, "%s", c->bmojo_score);
                l->mem_size = c->mem_size, l->mem_topk = c->mem_topk;
            }
        }
        if (set_bidir(m, c->bidir) != 0) return -1;
        if (!strcmp(c->objective, "birdie") && !c->bidir[0]) /* docs/birdie.md: even layers bidirectional where the mixer has that form */
            for (int i = 0; i < m->n_layer; i += 2) m->layer[i].bidir = (layer_find(m->layer[i].mixer)->options & LOPT_BIDIR) != 0;
        if (!strcmp(c->objective, "birdie-causal") && c->bidir[0] && strcmp(c->bidir, "none"))
            return eid_error("--objective birdie-causal: every layer is causal; drop --bidir %s", c->bidir), -1;
        if (c->objective[0]) m->vocab_size = birdie_model_vocab(c->vocab_size); /* + the reserved block (docs/birdie.md) */
        if (c->learned_pos) m->max_pos = c->task.seq_len;
        if (modelcfg_resolve(m) != 0) return -1;
    } else if (c->model.vocab_size != (c->objective[0] ? birdie_model_vocab(c->vocab_size) : c->vocab_size)) {
        return eid_error("--vocab %d differs from the model section's vocab_size %d", c->vocab_size, c->model.vocab_size), -1;
    }
    if (c->objective[0] && birdie_objective_parse(c->objective) < 0) return -1;
    if (c->birdie_val_rows < 0 || c->birdie_candidates < 0)
        return eid_error("--birdie-val-rows/--birdie-candidates: must be >= 0 (0 = default)"), -1;
    if (c->precision[0] && eid_precision_parse(c->precision) < 0)
        return eid_error("--precision: expected fp32, bf16 or auto, got \"%s\"", c->precision), -1;
    if (c->save_dtype[0] && strcmp(c->save_dtype, "fp32") && strcmp(c->save_dtype, "bf16"))
        return eid_error("--save-dtype: expected fp32 or bf16, got \"%s\"", c->save_dtype), -1;
    if (c->batch < 1) return eid_error("--batch: must be >= 1, got %d", c->batch), -1;
    if (c->steps < 1) return eid_error("--steps: must be >= 1, got %d", c->steps), -1;
    /* the shard count is global: with R ranks (docs/distributed.md) up to 64 per rank */
    if (c->shards < 0 || c->shards > 64 * 4096)
        return eid_error("--shards: must be in [0, 64] per rank (0 = auto; R ranks: up to 64·R), got %d", c->shards), -1;
    if (c->shards > 0 && c->batch % c->shards)
        return eid_error("--shards %d must divide --batch %d (each shard takes batch/shards examples)", c->shards, c->batch), -1;
    if (c->warmup < 0) return eid_error("--warmup: must be >= 0"), -1;
    if (!(c->lr > 0) || c->lr > 10) return eid_error("--lr: must be in (0, 10], got %g", c->lr), -1;
    if (c->min_lr < 0 || c->min_lr > c->lr) return eid_error("--min-lr: must be in [0, lr], got %g", c->min_lr), -1;
    if (c->weight_decay < 0) return eid_error("--weight-decay: must be >= 0"), -1;
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
        return eid_error("--beta1/--beta2: must be in [0, 1)"), -1;
    if (c->grad_clip < 0) return eid_error("--grad-clip: must be >= 0"), -1;
    if (c->train_examples < 0) return eid_error("--train-examples: must be >= 0"), -1;
    if (c->stop_after < 0) return eid_error("--stop-after: must be >= 0"), -1;
    if (!(c->dist_timeout >= 0)) return eid_error("--dist-timeout: must be >= 0 seconds, got %g", c->dist_timeout), -1;
    if (c->eval_every < 0 || c->ckpt_every < 0) return eid_error("--eval-every/--ckpt-every: must be >= 0"), -1;
    if (c->eval_examples < 1) return eid_error("--eval-examples: must be >= 1"), -1;
    if (c->target_acc < 0 || c->target_acc > 1) return eid_error("--target-acc: must be in [0, 1]"), -1;
    if (!c->out[0]) return eid_error("--out: an output directory is required"), -1;
    return 0;
}

void train_cfg_print(const TrainCfg *c, FILE *f) {
    char *s = train_cfg_to_json(c);
    fprintf(f, "resolved config:\n%s\n", s);
    free(s);
}

OptimCfg train_cfg_optim(const TrainCfg *c) {
    return (OptimCfg){.lr = c->lr, .min_lr = c->min_lr, .beta1 = c->beta1, .beta2 = c->beta2, .eps = 1e-8,
                      .weight_decay = c->weight_decay, .grad_clip = c->grad_clip, .warmup = c->warmup,
                      .total_steps = c->steps};
}

OptimCfg train_cfg_finetune_optim(const TrainCfg *c) {
    OptimCfg o = train_cfg_optim(c);
    o.lr = o.min_lr = c->finetune_lr > 0 ? c->finetune_lr : c->lr; /* constant (Birdie §4.3: fixed lr, no decay) */
    o.weight_decay = 0, o.warmup = 0, o.total_steps = c->finetune_steps;
    return o;
}
