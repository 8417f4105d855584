/* cmd_forward.c — `eidetic forward`: logits at every position of one token sequence (--tokens) or of
 * many (--tokens-file, one comma list per line), written as a safetensors file, for checking
 * against other implementations. A client of the public library API (include/eidetic.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "eidetic.h"
#include "io/safetensors.h"
#include "train/train_cfg.h"

typedef struct {
    char ckpt[512], tokens[65536], tokens_file[512], out[512];
    int threads, recurrent, lenient, prompt_len;
    char precision[8];
    char gemm_plan[512];
} FwdCfg;

#define O(n, t, f, h) {n, t, offsetof(FwdCfg, f), sizeof(((FwdCfg *)0)->f), h}
static const OptDesc fwd_opts[] = {
    O("ckpt", OPT_STR, ckpt, "checkpoint directory"),
    O("tokens", OPT_STR, tokens, "comma list of token ids: one sequence, written as \"logits\" [T, V]"),
    O("tokens-file", OPT_STR, tokens_file,
      "file with one comma list of token ids per line: sequence i (line i+1) written as \"logits.i\" [T_i, V]"),
    O("lenient", OPT_FLAG, lenient, "admit extra string metadata keys in config.json (docs/reliability.md)"),
    O("out", OPT_STR, out, "output .safetensors file"),
    O("recurrent", OPT_FLAG, recurrent, "compute with the decoder instead of the parallel forward: the first half of each sequence by prefill, the rest one token at a time"),
    O("threads", OPT_INT, threads, "threads (0 = all cores)"),
    O("prompt-len", OPT_INT, prompt_len,
      "the first P tokens of each sequence are a prompt (no CAUSAL flag), the rest CAUSAL: bidirectional layers "
      "read the prompt both ways (docs/layers.md §8); with --recurrent the prefill is the prompt and the next "
      "token (<gen>), then steps. 0 (default): no flags, every token causal"),
    O("precision", OPT_STR, precision, "matrix-product precision: fp32 (default, the reference), bf16 (oneDNN, fp32 accumulation; fp32 on CPUs without native bf16) or auto (bf16 for decoding where the CPU has native bf16, fp32 for the rest)"),
    O("gemm-plan", OPT_STR, gemm_plan, CLI_GEMM_PLAN_HELP),
};
#undef O
#define N_FWD_OPTS (int)(sizeof fwd_opts / sizeof fwd_opts[0])

typedef struct {
    int n, cap;
    int **tok, *len, *line;
} SeqList;

static void seqs_add(SeqList *s, int *tok, int len, int line) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->tok = eid_xrealloc(s->tok, sizeof(int *) * s->cap);
        s->len = eid_xrealloc(s->len, sizeof(int) * s->cap);
        s->line = eid_xrealloc(s->line, sizeof(int) * s->cap);
    }
    s->tok[s->n] = tok, s->len[s->n] = len, s->line[s->n] = line, s->n++;
}

static void seqs_free(SeqList *s) {
    for (int i = 0; i < s->n; i++) free(s->tok[i]);
    free(s->tok), free(s->len), free(s->line);
}

/* One comma list per line; a final newline is optional. Errors name FILE:LINE and what was expected. */
static int read_tokens_file(const char *path, SeqList *s) {
    FILE *f = fopen(path, "r");
    if (!f) return eid_error("--tokens-file %s: cannot open (%s)", path, strerror(errno)), -1;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0;
    while ((len = getline(&buf, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = 0;
        char where[600];
        snprintf(where, sizeof where, "--tokens-file %s:%d", path, lineno);
        if (len == 0) {
            eid_error("%s: empty line; expected a comma list of token ids (one sequence per line)", where);
            rc = -1;
            break;
        }
        int *tok, n;
        if (parse_token_list(buf, &tok, &n, where) != 0) { rc = -1; break; }
        seqs_add(s, tok, n, lineno);
    }
    if (rc == 0 && ferror(f)) rc = -1, eid_error("--tokens-file %s: read error (%s)", path, strerror(errno));
    if (rc == 0 && s->n == 0) rc = -1, eid_error("--tokens-file %s: no sequences (expected one comma list of token "
                                                 "ids per line)", path);
    free(buf);
    fclose(f);
    return rc;
}

static int api_fail(void) {
    fprintf(stderr, "eidetic forward: error: %s\n", eidetic_last_error());
    return 1;
}

/* Flags of n rows of T tokens with a prompt of P tokens: SEG_START first, CAUSAL from P on; NULL when P
 * is 0 (no flags: every token causal). */
static unsigned char *prompt_flags(int n, int T, int P) {
    if (P <= 0) return NULL;
    unsigned char *f = eid_xmalloc((size_t)n * T);
    for (int k = 0; k < n; k++)
        for (int t = 0; t < T; t++)
            f[(size_t)k * T + t] = (t == 0 ? EIDETIC_FLAG_SEG_START : 0) | (t >= P ? EIDETIC_FLAG_CAUSAL : 0);
    return f;
}

/* Logits of sequences [i0, i0+n), all of length T, computed as one batch, into out[k] ([T, V] floats
 * each). P: prompt length (0 = no flags). */
static int logits_of(eidetic_model *m, const SeqList *s, int i0, int n, int recurrent, int P, float **out) {
    int T = s->len[i0], V = eidetic_model_vocab_size(m);
    if (recurrent) { /* the first half (or prompt + <gen>) through the decoder's prefill, the rest by steps */
        eidetic_decoder *d;
        if (eidetic_decoder_new(m, n, &d) != EIDETIC_OK) return -1;
        int half = P > 0 ? EID_MIN(P + 1, T) : T / 2, rc = 0;
        unsigned char *fl = prompt_flags(n, half, P);
        int *col = eid_xmalloc(sizeof(int) * (size_t)n * (half > 1 ? half : 1));
        float *lg = eid_xmalloc(sizeof(float) * (size_t)n * (half > 1 ? half : 1) * V);
        if (half > 0) {
            for (int k = 0; k < n; k++) memcpy(col + (size_t)k * half, s->tok[i0 + k], sizeof(int) * half);
            if (eidetic_decoder_prefill_all_flags(d, col, fl, half, lg) != EIDETIC_OK) rc = -1;
            for (int k = 0; k < n && rc == 0; k++) memcpy(out[k], lg + (size_t)k * half * V, sizeof(float) * (size_t)half * V);
        }
        for (int t = half; t < T && rc == 0; t++) {
            for (int k = 0; k < n; k++) col[k] = s->tok[i0 + k][t];
            if (eidetic_decoder_step(d, col, lg) != EIDETIC_OK) rc = -1;
            for (int k = 0; k < n && rc == 0; k++) memcpy(out[k] + (size_t)t * V, lg + (size_t)k * V, sizeof(float) * V);
        }
        free(col), free(lg), free(fl);
        eidetic_decoder_free(d);
        return rc;
    }
    unsigned char *fl = prompt_flags(n, T, P);
    int *tok = eid_xmalloc(sizeof(int) * (size_t)n * T);
    for (int k = 0; k < n; k++) memcpy(tok + (size_t)k * T, s->tok[i0 + k], sizeof(int) * T);
    float *all = eid_xmalloc(sizeof(float) * (size_t)n * T * V);
    int rc = eidetic_model_logits_flags(m, tok, fl, n, T, all) == EIDETIC_OK ? 0 : -1;
    for (int k = 0; k < n && rc == 0; k++) memcpy(out[k], all + (size_t)k * T * V, sizeof(float) * (size_t)T * V);
    free(tok), free(all), free(fl);
    return rc;
}

int cmd_forward(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        printf("usage: eidetic forward --ckpt DIR (--tokens 3,1,4 | --tokens-file FILE) --out FILE.safetensors "
               "[--recurrent]\n\noptions:\n");
        opts_help(fwd_opts, N_FWD_OPTS, stdout);
        return 0;
    }
    FwdCfg c = {0};
    if (opts_parse(fwd_opts, N_FWD_OPTS, &c, argc - 2, argv + 2, "forward") != 0) return cli_fail("forward");
    if (!c.ckpt[0] || !c.out[0] || !c.tokens[0] == !c.tokens_file[0])
        return fprintf(stderr, "eidetic forward: error: --ckpt, --out and one of --tokens or --tokens-file are "
                               "required\n"), 1;
    if (c.prompt_len < 0)
        return fprintf(stderr, "eidetic forward: error: --prompt-len must be >= 0 (tokens of the prompt), got %d\n",
                       c.prompt_len), 1;
    SeqList s = {0};
    if (c.tokens[0]) {
        int *tok, T;
        if (parse_token_list(c.tokens, &tok, &T, "--tokens") != 0) return cli_fail("forward");
        seqs_add(&s, tok, T, 0);
    } else if (read_tokens_file(c.tokens_file, &s) != 0) {
        return seqs_free(&s), cli_fail("forward");
    }
    eidetic_init(c.threads);
    if (eidetic_set_precision(c.precision[0] ? c.precision : "fp32", 0, NULL) != EIDETIC_OK)
        return seqs_free(&s), api_fail();
    if (eidetic_set_gemm_plan(c.gemm_plan[0] ? c.gemm_plan : "fixed", 0) != EIDETIC_OK) return seqs_free(&s), api_fail();
    eidetic_model *m;
    if (eidetic_model_load_ex(c.ckpt, c.lenient ? EIDETIC_LOAD_LENIENT : 0, &m) != EIDETIC_OK) return seqs_free(&s), api_fail();
    int V = eidetic_model_vocab_size(m), P = eidetic_model_max_positions(m);
    for (int i = 0; i < s.n; i++) { /* name the line before any work */
        char where[600];
        if (c.tokens[0]) snprintf(where, sizeof where, "--tokens");
        else snprintf(where, sizeof where, "--tokens-file %s:%d", c.tokens_file, s.line[i]);
        for (int t = 0; t < s.len[i]; t++)
            if (s.tok[i][t] >= V) {
                fprintf(stderr, "eidetic forward: error: %s: token %d at position %d is outside the vocabulary "
                                "[0, %d)\n", where, s.tok[i][t], t, V);
                return seqs_free(&s), eidetic_model_free(m), 1;
            }
        if (c.prompt_len > s.len[i]) {
            fprintf(stderr, "eidetic forward: error: --prompt-len %d: %s has only %d tokens; expected a prompt of at "
                            "most the sequence's length\n", c.prompt_len, where, s.len[i]);
            return seqs_free(&s), eidetic_model_free(m), 1;
        }
        if (P > 0 && s.len[i] > P) {
            fprintf(stderr, "eidetic forward: error: %s: %d tokens exceed this model's %d learned positions "
                            "(max_position_embeddings); expected at most %d\n", where, s.len[i], P, P);
            return seqs_free(&s), eidetic_model_free(m), 1;
        }
    }
    float **lg = eid_xcalloc(s.n, sizeof(float *));
    for (int i = 0; i < s.n; i++) lg[i] = eid_xmalloc(sizeof(float) * (size_t)s.len[i] * V);
    int rc = 0;
    /* Each sequence on its own (a batch of one): batching changes the BLAS blocking and so the last bits,
     * and a sequence's logits must not depend on the other lines of the file. */
    for (int i = 0; i < s.n && rc == 0; i++) rc = logits_of(m, &s, i, 1, c.recurrent, c.prompt_len, lg + i);
    if (rc != 0) rc = api_fail();
    for (int i = 0; i < s.n && rc == 0; i++) /* docs/reliability.md "Numerical faults": never write NaN/Inf */
        for (size_t j = 0; j < (size_t)s.len[i] * V; j++)
            if (!isfinite(lg[i][j])) {
                fprintf(stderr, "eidetic forward: error: %s: the logits at position %zu%s are not finite (NaN/Inf): "
                                "the weights overflow the forward pass; nothing written to %s\n",
                        c.ckpt, j / V, c.tokens[0] ? "" : " of a --tokens-file line", c.out);
                rc = 1;
                break;
            }
    if (rc == 0) {
        StWriter w;
        st_writer_init(&w);
        for (int i = 0; i < s.n; i++) {
            int64_t shape[2] = {s.len[i], V};
            char name[32]; /* st_add copies it */
            if (c.tokens[0]) snprintf(name, sizeof name, "logits");
            else snprintf(name, sizeof name, "logits.%d", i);
            st_add(&w, name, "F32", 2, shape, lg[i], sizeof(float) * (size_t)s.len[i] * V);
        }
        if (st_write(&w, c.out) != 0) rc = cli_fail("forward");
        else if (c.tokens[0]) fprintf(stderr, "eidetic: wrote logits [%d, %d] to %s\n", s.len[0], V, c.out);
        else fprintf(stderr, "eidetic: wrote logits of %d sequences (logits.0 .. logits.%d) to %s\n", s.n, s.n - 1, c.out);
    }
    for (int i = 0; i < s.n; i++) free(lg[i]);
    free(lg);
    seqs_free(&s);
    eidetic_model_free(m);
    return rc;
}
