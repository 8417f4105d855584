/* birdie_obj.c — Birdie's objectives, span sampler, grid and row packing (birdie_obj.h,
 * docs/birdie.md §1–3). */
#include "data/birdie_obj.h"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "core/common.h"
#include "kernels/seq.h"

#define IGNORE (-100)

int birdie_model_vocab(int text_vocab) { return (text_vocab + BIRDIE_N_RESERVED + 63) / 64 * 64; }

/* ---- the grid (§3) ---- */

static BirdieArm arm_base(int cls, int lo, int hi, int paradigm) {
    BirdieArm a;
    memset(&a, 0, sizeof a);
    a.cls = cls, a.lo = lo, a.hi = hi, a.paradigm = paradigm;
    a.sc_lmin = 4, a.sc_lmax = 32, a.sc_amax = 8, a.sc_emax = 8; /* the paper's ranges (§2.9) */
    return a;
}

/* lo' = floor(w / (2r)) (§2.0), with a guard against 8/0.1 = 79.999… */
static int span_lo(double w, double r) { return (int)floor(w / (2 * r) + 1e-9); }

int birdie_grid(BirdieArm *arms) {
    int n = 0;
    static const int cp[2][2] = {{128, 256}, {512, 1024}};
    static const double rates[3] = {0.05, 0.15, 0.5}, widths[3] = {3, 8, 32};
    arms[n] = arm_base(BC_NTP, 8, 2048, -1), snprintf(arms[n++].name, 48, "ntp");
    arms[n] = arm_base(BC_PLM, 8, 2048, BR_P_PLM), snprintf(arms[n++].name, 48, "plm");
    for (int i = 0; i < 2; i++)
        arms[n] = arm_base(BC_COPY, cp[i][0], cp[i][1], BR_P_COPY), snprintf(arms[n++].name, 48, "copy/%d-%d", cp[i][0], cp[i][1]);
    for (int i = 0; i < 2; i++)
        for (int p = 0; p < 2; p++) {
            arms[n] = arm_base(BC_DESHUF, cp[i][0], cp[i][1], BR_P_DESHUF), arms[n].rate = p ? 1.0 : 0.5;
            snprintf(arms[n++].name, 48, "deshuffle/%d-%d/p%.1f", cp[i][0], cp[i][1], p ? 1.0 : 0.5);
        }
    /* infilling: 4 ranges x 3 rates x 3 widths, v1's filter (§3) */
    static const int ir[4][2] = {{128, 256}, {256, 512}, {512, 1024}, {1024, 2048}};
    for (int ri = 0; ri < 3; ri++)
        for (int wi = 0; wi < 3; wi++)
            for (int li = 0; li < 4; li++) {
                int lo = ir[li][0], hi = ir[li][1], lo2 = span_lo(widths[wi], rates[ri]);
                if (hi < lo2 || hi - lo2 < (hi - lo) / 4 || (widths[wi] <= 3 && hi > 256)) continue;
                arms[n] = arm_base(BC_INFILL, lo2, hi, BR_P_INFILL), arms[n].rate = rates[ri], arms[n].width = widths[wi];
                snprintf(arms[n++].name, 48, "infill/%d-%d/r%.2f/w%g", lo2, hi, rates[ri], widths[wi]);
            }
    /* autoencoding +- deshuffling: 3 ranges x 3 rates x 3 widths x shuffle */
    static const int ah[3] = {384, 768, 1536};
    for (int sh = 0; sh < 2; sh++)
        for (int ri = 0; ri < 3; ri++)
            for (int wi = 0; wi < 3; wi++)
                for (int li = 0; li < 3; li++) {
                    int lo2 = span_lo(widths[wi], rates[ri]);
                    arms[n] = arm_base(BC_AE, lo2, ah[li], sh ? BR_P_AE_DESHUF : BR_P_AE);
                    arms[n].rate = rates[ri], arms[n].width = widths[wi], arms[n].shuffle = sh;
                    snprintf(arms[n++].name, 48, "%s/%d-%d/r%.2f/w%g", sh ? "ae-deshuffle" : "ae", lo2, ah[li], rates[ri],
                             widths[wi]);
                }
    /* selective copying: spans 1..4 x query before/after x 2 context ranges */
    static const int sc[2][2] = {{384, 768}, {768, 1536}};
    for (int s = 1; s <= 4; s++)
        for (int q = 1; q >= 0; q--)
            for (int ci = 0; ci < 2; ci++) {
                arms[n] = arm_base(BC_SELCOPY, sc[ci][0], sc[ci][1], -1);
                arms[n].sc_spans = s, arms[n].sc_query_first = q;
                snprintf(arms[n++].name, 48, "selcopy/s%d/%s/%d-%d", s, q ? "query-context" : "context-query", sc[ci][0],
                         sc[ci][1]);
            }
    return n;
}

int birdie_ul2(BirdieArm *arms, double *w) {
    /* (rate, width, paradigm, weight): R, R, X, X, X, X; then S (prefix LM, split 0.75) */
    static const double spec[6][4] = {{0.15, 3, BR_P_R, 0.2}, {0.15, 8, BR_P_R, 0.2}, {0.5, 3, BR_P_X, 0.1},
                                      {0.5, 8, BR_P_X, 0.1},  {0.15, 64, BR_P_X, 0.1}, {0.5, 64, BR_P_X, 0.1}};
    for (int i = 0; i < 6; i++) {
        int lo = span_lo(spec[i][1], spec[i][0]);
        if (lo < 8) lo = 8;
        arms[i] = arm_base(BC_INFILL, lo, 1024, (int)spec[i][2]); /* source length [OURS] */
        arms[i].rate = spec[i][0], arms[i].width = spec[i][1], w[i] = spec[i][3];
        snprintf(arms[i].name, 48, "ul2-%s/r%.2f/w%g", spec[i][2] == BR_P_R ? "R" : "X", spec[i][0], spec[i][1]);
    }
    arms[6] = arm_base(BC_PLM, 8, 2048, BR_P_S), arms[6].plm_split = 0.75, w[6] = 0.2;
    snprintf(arms[6].name, 48, "ul2-S/plm0.75");
    return 7;
}

/* the smallest segment of arm a over n text tokens (no spans; selective copying at its largest
 * instructions) */
static int min_seg(const BirdieArm *a, int n) {
    int para = a->paradigm >= 0;
    switch (a->cls) {
    case BC_NTP: return n;
    case BC_PLM: return n + para;
    case BC_COPY: case BC_DESHUF: return 2 * n + para;
    case BC_INFILL: return n + 2 + para;
    case BC_AE: return 2 * n + para;
    default: /* selective copying: <sc_copy> (<sc_start> a <sc_end> e)·s <sc_context> n, then spans + separators */
        return 2 + a->sc_spans * (2 + a->sc_amax + a->sc_emax + a->sc_lmax + 1) + n;
    }
}

void birdie_fit_lengths(BirdieArm *arms, int n, int L) {
    double f = L < 2048 ? L / 2048.0 : 1.0;
    for (int i = 0; i < n; i++) {
        BirdieArm *a = &arms[i];
        if (f < 1) {
            a->lo = (int)floor(a->lo * f), a->hi = (int)floor(a->hi * f);
            if (a->cls == BC_SELCOPY) { /* spans and delimiters shrink too, never below the paper's minimum */
                a->sc_lmax = EID_MAX(a->sc_lmin, (int)floor(a->sc_lmax * f));
                a->sc_amax = EID_MAX(1, (int)floor(a->sc_amax * f)), a->sc_emax = EID_MAX(1, (int)floor(a->sc_emax * f));
            }
        }
        if (a->cls == BC_SELCOPY) /* the context must hold every super-span */
            a->lo = EID_MAX(a->lo, a->sc_spans * (a->sc_amax + a->sc_lmax + a->sc_emax));
        int minimum = a->cls == BC_PLM ? 8 : a->cls == BC_SELCOPY ? a->lo : 1;
        if (a->lo < minimum) a->lo = minimum;
        while (a->lo > 1 && min_seg(a, a->lo) > L) a->lo--;
        if (a->hi < a->lo) a->hi = a->lo;
    }
}

const char *const birdie_class_names[BIRDIE_N_CLASSES] = {"ntp",       "prefix-lm",    "copying",          "deshuffling",
                                                         "infilling", "autoencoding", "selective-copying"};

void birdie_class_uniform(const BirdieArm *arms, int n, double *action, double *scale) {
    int count[BIRDIE_N_CLASSES] = {0}, classes = 0;
    for (int i = 0; i < n; i++) count[arms[i].cls]++;
    for (int c = 0; c < BIRDIE_N_CLASSES; c++) classes += count[c] > 0;
    for (int i = 0; i < n; i++) {
        if (action) action[i] = 1.0 / (classes * count[arms[i].cls]);
        if (scale) scale[i] = 1.0 / count[arms[i].cls];
    }
}

/* ---- one sample ---- */

/* segment length of infilling / AE with c text tokens, m of them masked in s spans */
static int span_seg(const BirdieArm *a, int c, int m, int s) {
    int para = a->paradigm >= 0;
    return a->cls == BC_INFILL ? c + 2 * s + para : 2 * c - m + s + para;
}

int birdie_seg_len(const BirdieArm *a, const BirdieDraw *d) {
    int n = d->n, para = a->paradigm >= 0;
    switch (a->cls) {
    case BC_NTP: return n;
    case BC_PLM: return n + para;
    case BC_COPY: case BC_DESHUF: return 2 * n + para;
    case BC_INFILL: case BC_AE: {
        int m = 0;
        for (int j = 0; j < d->n_spans; j++) m += d->span_hi[j] - d->span_lo[j];
        return span_seg(a, n, m, d->n_spans);
    }
    default: {
        int len = 2 + n;
        for (int j = 0; j < d->sc_n; j++) len += 2 + d->sc_a[j] + d->sc_e[j] + d->sc_l[j] + 1;
        return len;
    }
    }
}

int birdie_spans(const BirdieArm *a, int n, int space, Rng *r, BirdieDraw *d) {
    double rate = a->rate, w = a->width;
    int masked = 0, s = 0, end_n = n;
    for (int attempt = 0; attempt < 100 && s == 0; attempt++) {
        int pos = 0, last_end = 0, last_w = -1;
        masked = 0;
        while (pos < n) {
            int L = (int)(w + rng_normal(r)); /* C's truncation toward zero, as the reference sampler */
            if (L < 1) L = 1;
            int eligible = last_w == -1 || pos > EID_MAX(1, last_end + last_w / 3 + 1);
            if (s < BIRDIE_N_SENTINELS && eligible && rng_uniform(r) * L < rate) {
                int e = EID_MIN(pos + L, n);
                if (span_seg(a, e, masked + e - pos, s + 1) > space) break;
                d->span_lo[s] = pos, d->span_hi[s] = e, s++;
                masked += e - pos, last_end = pos + L, last_w = L, pos += L;
            } else {
                if (span_seg(a, pos + 1, masked, s) > space) break;
                pos++;
            }
        }
        end_n = EID_MIN(pos, n);
    }
    if (s == 0) { /* no span in 100 walks (tiny n or r): one span of one token [OURS] */
        while (end_n > 1 && span_seg(a, end_n, 1, 1) > space) end_n--;
        int p = (int)rng_below(r, (uint64_t)EID_MAX(end_n, 1));
        d->span_lo[0] = p, d->span_hi[0] = p + 1, s = 1, masked = 1;
    }
    d->n = end_n, d->n_spans = s;
    /* distinct sentinels: a partial Fisher-Yates shuffle of the 100 ids */
    int ids[BIRDIE_N_SENTINELS];
    for (int i = 0; i < BIRDIE_N_SENTINELS; i++) ids[i] = i;
    for (int i = 0; i < s; i++) {
        int j = i + (int)rng_below(r, (uint64_t)(BIRDIE_N_SENTINELS - i));
        int t = ids[i];
        ids[i] = ids[j], ids[j] = t;
        d->sentinel[i] = BR_S0 + ids[i];
    }
    return masked;
}

static void shuffle_ints(int *x, int n, Rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint64_t)i + 1), t = x[i];
        x[i] = x[j], x[j] = t;
    }
}

/* 1 when the run T[p .. p+len) occurs exactly once in T[0 .. n) */
static int occurs_once(const int32_t *T, int n, int p, int len) {
    int hits = 0;
    for (int q = 0; q + len <= n && hits < 2; q++) {
        int k = 0;
        while (k < len && T[q + k] == T[p + k]) k++;
        hits += k == len;
    }
    return hits == 1;
}

/* selective copying (§2.9): places d->sc_n super-spans in T[0 .. n); 1 on success */
static int selcopy_place(const BirdieArm *a, const int32_t *T, int n, Rng *r, BirdieDraw *d) {
    for (int redraw = 0; redraw < 10; redraw++) {
        int ok = 1;
        for (int j = 0; j < d->sc_n && ok; j++) {
            d->sc_l[j] = a->sc_lmin + (int)rng_below(r, (uint64_t)(a->sc_lmax - a->sc_lmin + 1));
            d->sc_a[j] = 1 + (int)rng_below(r, (uint64_t)a->sc_amax);
            d->sc_e[j] = 1 + (int)rng_below(r, (uint64_t)a->sc_emax);
            int len = d->sc_a[j] + d->sc_l[j] + d->sc_e[j], placed = 0;
            for (int attempt = 0; attempt < 32 && !placed && len <= n; attempt++) {
                int p = (int)rng_below(r, (uint64_t)(n - len + 1)), clash = 0;
                for (int i = 0; i < j; i++)
                    clash |= p < d->sc_pos[i] + d->sc_a[i] + d->sc_l[i] + d->sc_e[i] && d->sc_pos[i] < p + len;
                /* [OURS] the start delimiter must be unique in the context, or the answer is ambiguous */
                if (!clash && occurs_once(T, n, p, d->sc_a[j])) d->sc_pos[j] = p, placed = 1;
            }
            ok = placed;
        }
        if (ok) return 1;
    }
    return 0;
}

int birdie_draw(const BirdieArm *a, int ai, const int32_t *T, int avail, int space, int allow_short, Rng *r,
                int *perm_buf, BirdieDraw *d) {
    memset(d, 0, sizeof *d);
    d->arm = ai;
    d->para_end = rng_uniform(r) < 0.5;
    int para = a->paradigm >= 0;
    int n = a->lo + (int)rng_below(r, (uint64_t)(a->hi - a->lo + 1));
    if (n > avail) n = avail;
    int lo = allow_short ? 1 : a->lo;
    switch (a->cls) {
    case BC_NTP: n = EID_MIN(n, space); break;
    case BC_PLM: n = EID_MIN(n, space - para), lo = EID_MAX(lo, 8); break;
    case BC_COPY: case BC_DESHUF: n = EID_MIN(n, (space - para) / 2); break;
    case BC_INFILL: case BC_AE: n = EID_MIN(n, space - para - 2); break;
    default: break;
    }
    if (n < lo || n < 1) return 0;
    d->n = n;
    switch (a->cls) {
    case BC_PLM:
        if (a->plm_split > 0) d->k = EID_MAX(1, EID_MIN(n - 1, (int)floor(a->plm_split * n)));
        else {
            double lo_k = EID_MAX(4.0, 0.5 * n), hi_k = n - 4.0;
            d->k = (int)floor(lo_k + rng_uniform(r) * (hi_k - lo_k));
        }
        break;
    case BC_DESHUF: {
        /* perm_buf[0..n): the prefix's source positions; scratch after it holds the chosen positions */
        int *perm = perm_buf, *pick = perm_buf + n, m = (int)floor(a->rate * n + 1e-9);
        for (int i = 0; i < n; i++) perm[i] = i, pick[i] = i;
        for (int i = 0; i < m; i++) { /* m distinct positions */
            int j = i + (int)rng_below(r, (uint64_t)(n - i)), t = pick[i];
            pick[i] = pick[j], pick[j] = t;
        }
        int *val = pick + n; /* a uniform permutation of the chosen positions */
        memcpy(val, pick, sizeof(int) * m);
        shuffle_ints(val, m, r);
        for (int i = 0; i < m; i++) perm[pick[i]] = val[i];
        d->perm = perm;
        break;
    }
    case BC_INFILL: case BC_AE:
        birdie_spans(a, n, space, r, d);
        if (d->n < lo) return 0;
        for (int i = 0; i <= d->n_spans; i++) d->piece[i] = i;
        if (a->shuffle) shuffle_ints(d->piece, d->n_spans + 1, r);
        break;
    case BC_SELCOPY: {
        /* instructions and answer at their largest bound the context's share of the space */
        int room = space - (2 + a->sc_spans * (2 + a->sc_amax + a->sc_emax + a->sc_lmax + 1));
        if (n > room) n = room;
        if (n < lo || n < 1) return 0;
        d->n = n;
        for (d->sc_n = a->sc_spans; d->sc_n > 0; d->sc_n--) /* fewer spans only when none fits [OURS] */
            if (selcopy_place(a, T, n, r, d)) break;
        if (d->sc_n == 0) return 0;
        break;
    }
    default: break;
    }
    return 1;
}

static int put(int32_t *x, int q, const int32_t *src, int n) {
    memcpy(x + q, src, sizeof(int32_t) * (size_t)n);
    return q + n;
}

/* the corrupted text: spans replaced by their sentinels, pieces in d->piece order (identity when
 * not shuffled); piece 0 = text before the first span, piece j = sentinel j−1 + the text after span j−1 */
static int corrupted(const BirdieDraw *d, const int32_t *T, int base, int32_t *out, int q) {
    for (int pi = 0; pi <= d->n_spans; pi++) {
        int j = d->piece[pi];
        int from = j == 0 ? 0 : d->span_hi[j - 1], to = j < d->n_spans ? d->span_lo[j] : d->n;
        if (j > 0) out[q++] = base + d->sentinel[j - 1];
        q = put(out, q, T + from, to - from);
    }
    return q;
}

int birdie_emit(const BirdieArm *a, const BirdieDraw *d, const int32_t *T, int base, int32_t *tok, int32_t *lab,
                uint8_t *fl) {
    int n = d->n, q = 0, para = a->paradigm >= 0;
    if (para && !d->para_end) tok[q++] = base + a->paradigm;
    switch (a->cls) {
    case BC_PLM: q = put(tok, q, T, d->k); break;
    case BC_COPY: q = put(tok, q, T, n); break;
    case BC_DESHUF:
        for (int i = 0; i < n; i++) tok[q++] = T[d->perm[i]];
        break;
    case BC_INFILL: case BC_AE: q = corrupted(d, T, base, tok, q); break;
    case BC_SELCOPY: {
        int32_t *ins = tok + (a->sc_query_first ? q : q + 1 + n), k = 0;
        ins[k++] = base + BR_SC_COPY;
        for (int j = 0; j < d->sc_n; j++) {
            ins[k++] = base + BR_SC_START;
            k = put(ins, k, T + d->sc_pos[j], d->sc_a[j]);
            ins[k++] = base + BR_SC_END;
            k = put(ins, k, T + d->sc_pos[j] + d->sc_a[j] + d->sc_l[j], d->sc_e[j]);
        }
        int32_t *ctx = tok + (a->sc_query_first ? q + k : q);
        ctx[0] = base + BR_SC_CONTEXT;
        put(ctx, 1, T, n);
        q += k + 1 + n;
        break;
    }
    default: break;
    }
    if (para && d->para_end) tok[q++] = base + a->paradigm;
    int P = q, M = 0;
    int32_t *tg = lab + P; /* the target, written where its labels go */
    switch (a->cls) {
    case BC_NTP: M = put(tg, 0, T, n); break;
    case BC_PLM: M = put(tg, 0, T + d->k, n - d->k); break;
    case BC_INFILL:
        for (int j = 0; j < d->n_spans; j++) {
            M = put(tg, M, T + d->span_lo[j], d->span_hi[j] - d->span_lo[j]);
            tg[M++] = base + d->sentinel[j];
        }
        break;
    case BC_SELCOPY:
        for (int j = 0; j < d->sc_n; j++) {
            if (j) tg[M++] = base + BR_SC_SEP;
            M = put(tg, M, T + d->sc_pos[j] + d->sc_a[j], d->sc_l[j]);
        }
        tg[M++] = base + BR_SC_DONE;
        break;
    default: M = put(tg, 0, T, n); break; /* copying, deshuffling, autoencoding: the original */
    }
    tok[P] = base + BR_GEN;
    for (int i = 0; i + 1 < M; i++) tok[P + 1 + i] = tg[i];
    for (int i = 0; i < P; i++) lab[i] = IGNORE, fl[i] = 0;
    for (int i = 0; i < M; i++) fl[P + i] = FLAG_CAUSAL;
    fl[0] |= FLAG_SEG_START;
    return P + M;
}

/* ---- a row ---- */

static int pick_arm(const double *action, int n, Rng *r) {
    double total = 0, u;
    for (int i = 0; i < n; i++) total += action[i];
    u = rng_uniform(r) * total;
    for (int i = 0; i < n; i++) {
        if (u < action[i]) return i;
        u -= action[i];
    }
    for (int i = n - 1; i >= 0; i--) /* rounding: the last arm with weight */
        if (action[i] > 0) return i;
    return 0;
}

uint64_t birdie_row(const BirdieArm *arms, int n_arms, const double *action, const BirdieText *txt, uint64_t pos,
                    uint64_t key, int L, int base, int32_t *tok, int32_t *lab, uint8_t *fl, int *work, BirdieStats *st) {
    Rng r;
    rng_init(&r, key, 0);
    int q = 0, min_space = EID_MAX(2, EID_MIN(64, L / 4));
    uint64_t used = 0;
    int32_t *text = (int32_t *)work; /* the stream from the current position, at most the space left */
    BirdieDraw d;
    while (L - q >= min_space) {
        int ai = pick_arm(action, n_arms, &r), space = L - q;
        for (int i = 0; i < space; i++) text[i] = txt->tok[(pos + used + (uint64_t)i) % txt->n];
        if (!birdie_draw(&arms[ai], ai, text, space, space, q == 0, &r, work + L, &d)) break;
        int len = birdie_emit(&arms[ai], &d, text, base, tok + q, lab + q, fl + q);
        q += len, used += (uint64_t)d.n;
        if (st) {
            st->samples++, st->text_tokens += d.n, st->per_class[arms[ai].cls]++;
            for (int j = 0; j < d.n_spans; j++) st->masked += d.span_hi[j] - d.span_lo[j];
            st->spans += d.n_spans;
            for (int i = q - len; i < q; i++) st->labels += lab[i] != IGNORE;
        }
    }
    for (int i = q; i < L; i++) tok[i] = base + BR_PAD, lab[i] = IGNORE, fl[i] = FLAG_PAD;
    if (st) st->pad += L - q;
    return used;
}
