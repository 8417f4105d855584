/* birdie_obj.h — Birdie's pre-training objectives as a transformation of a token stream into packed
 * rows of (tokens, labels, flags) (docs/birdie.md §1–3).
 *
 * Reserved tokens. Every id this module adds lies in a block [base, base + BIRDIE_N_RESERVED) above
 * every text id (base = the text vocabulary: the tokenizer's, or a synthetic task's), so no text
 * token can collide with a sentinel, a paradigm token or <gen>. The model's vocabulary is
 * base + BIRDIE_N_RESERVED rounded up to a multiple of 64 (birdie_model_vocab).
 *
 * A sample. An objective configuration ("arm", one of the grid of §3) turns n text tokens T into
 * (prefix, target); the segment is prefix, <gen>, target[0 .. M−2]; labels −100 on the prefix and
 * target[0 .. M−1] from <gen> on; flags SEG_START on the first token, CAUSAL on <gen> and after
 * (§1.2). Next-token prediction has an empty prefix (all CAUSAL). The random choices of a sample are
 * drawn first into a BirdieDraw (birdie_draw), then laid out by birdie_emit, so the layout can be
 * tested on hand-made draws (tests/test_birdie.c) and the sampler separately.
 *
 * A row. birdie_row packs samples left to right into a row of L tokens: each sample draws its arm
 * from a categorical `action` over the arms, takes its text from the stream where the previous
 * sample stopped, and shrinks its source length to the space left (not below the arm's minimum);
 * when even that does not fit the rest of the row is PAD. Row content is a pure function of
 * (key, text position, action). */
#ifndef EIDETIC_BIRDIE_OBJ_H
#define EIDETIC_BIRDIE_OBJ_H
#include <stdint.h>
#include "core/rng.h"

/* reserved offsets (token id = base + offset) */
enum {
    BR_PAD = 0, BR_GEN, BR_EOS,  /* BR_EOS: document separator of synthetic streams (a corpus uses its tokenizer's) */
    BR_S0,                       /* 100 sentinels BR_S0 .. BR_S0 + 99 */
    BR_P_PLM = BR_S0 + 100, BR_P_COPY, BR_P_DESHUF, BR_P_INFILL, BR_P_AE, BR_P_AE_DESHUF,
    BR_SC_COPY, BR_SC_START, BR_SC_END, BR_SC_CONTEXT, BR_SC_SEP, BR_SC_DONE,
    BR_P_R, BR_P_X, BR_P_S,
    BIRDIE_N_RESERVED
};
#define BIRDIE_N_SENTINELS 100
#define BIRDIE_MAX_SC_SPANS 4

/* the seven objective classes of §3 (autoencoding ± deshuffling is one class) */
typedef enum { BC_NTP = 0, BC_PLM, BC_COPY, BC_DESHUF, BC_INFILL, BC_AE, BC_SELCOPY, BIRDIE_N_CLASSES } BirdieClass;
/* the classes' names in that order, as metrics.jsonl records them ("birdie_classes") and
 * `eidetic plot` labels them: ntp, prefix-lm, copying, deshuffling, infilling, autoencoding (with and
 * without deshuffling), selective-copying */
extern const char *const birdie_class_names[BIRDIE_N_CLASSES];

typedef struct {
    int cls;          /* BirdieClass */
    int lo, hi;       /* source length range in text tokens (infilling/AE: lo already floor(w/(2r))) */
    double rate;      /* infilling/AE: corruption rate r; deshuffling: fraction of positions shuffled */
    double width;     /* infilling/AE: mean span width w */
    int shuffle;      /* AE: 1 = autoencoding + deshuffling */
    double plm_split; /* prefix LM: 0 = k ~ U(max(4, n/2), n−4) (§2.2); > 0 = k = floor(split·n) (UL2 S) */
    int sc_spans;     /* selective copying: spans s (1..4) */
    int sc_query_first; /* selective copying: instructions before the context (query_context) */
    int sc_lmin, sc_lmax, sc_amax, sc_emax; /* selective copying: span length, delimiter lengths (§2.9) */
    int paradigm;     /* reserved offset of the paradigm token, −1 = none (NTP, selective copying) */
    char name[48];
} BirdieArm;

/* The 104 arms of §3 in table order (NTP, PLM, copying 2, deshuffling 4, infilling 26, AE 54,
 * selective copying 16); lengths as written for rows of 2048 tokens. arms[] must hold 104. */
int birdie_grid(BirdieArm *arms);
/* The UL2 baseline (§3): 7 arms with their fixed weights into arms[], w[]; returns 7. */
int birdie_ul2(BirdieArm *arms, double *w);
/* Scales every arm's length range by f = min(1, L/2048) [OURS, docs/birdie.md "Rows shorter than
 * 2048"] and caps it so the arm's smallest segment fits an empty row of L tokens. */
void birdie_fit_lengths(BirdieArm *arms, int n, int L);
/* §3's initial action (uniform over the classes present, uniform inside a class) and reward
 * scale s_k = 1/N_class(k); either may be NULL. */
void birdie_class_uniform(const BirdieArm *arms, int n, double *action, double *scale);

/* The random choices of one sample. */
typedef struct {
    int arm;            /* index into the arm table (informational) */
    int n;              /* text tokens consumed */
    int para_end;       /* 1: paradigm token at the end of the prefix (before <gen>), 0: at its start */
    int k;              /* prefix LM split */
    int *perm;          /* deshuffling: prefix[i] = T[perm[i]] (n entries, caller's buffer) */
    int n_spans;        /* infilling / AE: spans [span_lo, span_hi) in order, sentinel offsets */
    int span_lo[BIRDIE_N_SENTINELS], span_hi[BIRDIE_N_SENTINELS], sentinel[BIRDIE_N_SENTINELS];
    int piece[BIRDIE_N_SENTINELS + 1]; /* AE + deshuffling: order of the pieces 0..n_spans */
    int sc_n;           /* selective copying: spans, each [start delim a | span l | end delim e] at pos */
    int sc_pos[BIRDIE_MAX_SC_SPANS], sc_a[BIRDIE_MAX_SC_SPANS], sc_l[BIRDIE_MAX_SC_SPANS], sc_e[BIRDIE_MAX_SC_SPANS];
} BirdieDraw;

/* Segment length of arm a on n text tokens with draw d (d's spans must already be drawn). */
int birdie_seg_len(const BirdieArm *a, const BirdieDraw *d);
/* Lays out one sample of arm a over text T[0 .. d->n) at tok/lab/fl (which must hold its
 * birdie_seg_len tokens); base = first reserved id. Returns the segment length. */
int birdie_emit(const BirdieArm *a, const BirdieDraw *d, const int32_t *T, int base, int32_t *tok, int32_t *lab,
                uint8_t *fl);

/* Span-corruption sampler (§2.5) over n tokens, rate r, mean width w: at most 100 spans with
 * distinct sentinels; `budget` (> 0) stops the walk once the segment would not fit:
 * fits(consumed, masked, spans) is checked through the arm (infilling / AE). Sets d->n_spans, the
 * spans, the sentinels and d->n (shortened when the budget stopped the walk). Returns the masked
 * token count. */
int birdie_spans(const BirdieArm *a, int n, int space, Rng *r, BirdieDraw *d);

/* Draws a sample of arm a (index ai) for up to `avail` text tokens T (the stream from the current
 * position) in `space` tokens of row. 1 with d filled (d->n ≤ avail, birdie_seg_len ≤ space); 0 when
 * the arm's minimum does not fit (`allow_short`: shrink below the minimum instead, for an empty
 * row); perm_buf holds ≥ space ints. */
int birdie_draw(const BirdieArm *a, int ai, const int32_t *T, int avail, int space, int allow_short, Rng *r,
                int *perm_buf, BirdieDraw *d);

/* Per-row statistics (realised corruption etc.), summed by birdie_row when non-NULL. */
typedef struct {
    long samples, text_tokens, masked, spans, labels, pad, fallback;
    long per_class[BIRDIE_N_CLASSES];
} BirdieStats;

/* A text stream: documents separated by `eos`, read cyclically. */
typedef struct {
    const int32_t *tok;
    uint64_t n;
} BirdieText;

/* One packed row of L tokens: samples drawn with key `key` from `action` over arms[n_arms], text
 * from position pos of txt (cyclic). Returns the text tokens consumed. work: ≥ 3·L ints. */
uint64_t birdie_row(const BirdieArm *arms, int n_arms, const double *action, const BirdieText *txt, uint64_t pos,
                    uint64_t key, int L, int base, int32_t *tok, int32_t *lab, uint8_t *fl, int *work, BirdieStats *st);

/* The model vocabulary for a text vocabulary of `text_vocab` ids: room for the reserved block,
 * rounded up to a multiple of 64. */
int birdie_model_vocab(int text_vocab);

#endif
