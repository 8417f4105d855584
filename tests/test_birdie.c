/* test_birdie.c — Birdie's objectives, span sampler, grid, packing and controller
 * (data/birdie_obj.h, data/birdie_src.h, train/birdie_ctl.h; docs/birdie.md). */
#include "data/birdie_obj.h"
#include "data/birdie_src.h"
#include "train/birdie_ctl.h"
#include "core/rng.h"
#include "model/model.h"
#include "testutil.h"

#define B0 100 /* reserved block base of the worked examples: text ids < 100 */
#define N_ (-100)

static int eq_row(const int32_t *got, const int *want, int n) {
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) return 0;
    return 1;
}

static int eq_flags(const uint8_t *got, const int *want, int n) {
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) return 0;
    return 1;
}

static void dump(const char *what, const int32_t *x, int n) {
    fprintf(stderr, "  %s:", what);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", x[i]);
    fputc('\n', stderr);
}

/* emits arm a with draw d on T and compares with the expected tokens/labels/flags */
static void worked(const char *name, const BirdieArm *a, const BirdieDraw *d, const int32_t *T, const int *wt,
                   const int *wl, const int *wf, int len) {
    int32_t tok[64], lab[64];
    uint8_t fl[64];
    int got = birdie_emit(a, d, T, B0, tok, lab, fl);
    int ok = got == len && eq_row(tok, wt, len) && eq_row(lab, wl, len) && eq_flags(fl, wf, len);
    CHECK(ok, "%s: worked example differs (length %d, expected %d)", name, got, len);
    CHECK(birdie_seg_len(a, d) == got, "%s: birdie_seg_len %d != emitted %d", name, birdie_seg_len(a, d), got);
    if (!ok) dump("tokens", tok, got), dump("labels", lab, got);
}

enum { S = FLAG_SEG_START, C = FLAG_CAUSAL, SC = FLAG_SEG_START | FLAG_CAUSAL };

static BirdieArm arm_of(int cls, int paradigm) {
    BirdieArm a;
    memset(&a, 0, sizeof a);
    a.cls = cls, a.paradigm = paradigm, a.lo = 1, a.hi = 64;
    a.sc_lmin = 4, a.sc_lmax = 32, a.sc_amax = 8, a.sc_emax = 8;
    return a;
}

static void test_worked_examples(void) {
    const int32_t T[8] = {10, 11, 12, 13, 14, 15, 16, 17};
    const int G = B0 + BR_GEN;
    BirdieDraw d;
    memset(&d, 0, sizeof d);
    /* NTP (§1.2): tokens <gen> T0..T2, labels T0..T3, all CAUSAL, the first also SEG_START */
    BirdieArm ntp = arm_of(BC_NTP, -1);
    d.n = 4;
    worked("ntp", &ntp, &d, T, (int[]){G, 10, 11, 12}, (int[]){10, 11, 12, 13}, (int[]){SC, C, C, C}, 4);
    /* prefix LM, split 2, paradigm first then last */
    BirdieArm plm = arm_of(BC_PLM, BR_P_PLM);
    d.n = 4, d.k = 2, d.para_end = 0;
    worked("plm", &plm, &d, T, (int[]){B0 + BR_P_PLM, 10, 11, G, 12}, (int[]){N_, N_, N_, 12, 13},
           (int[]){S, 0, 0, C, C}, 5);
    d.para_end = 1;
    worked("plm/end", &plm, &d, T, (int[]){10, 11, B0 + BR_P_PLM, G, 12}, (int[]){N_, N_, N_, 12, 13},
           (int[]){S, 0, 0, C, C}, 5);
    /* the paper's example: prefix {4,5,6}, target {7,8,9} -> [4,5,6,<gen>,7,8], labels [-,-,-,7,8,9] */
    const int32_t P6[6] = {4, 5, 6, 7, 8, 9};
    BirdieArm plm0 = arm_of(BC_PLM, -1);
    d.n = 6, d.k = 3;
    worked("plm/paper", &plm0, &d, P6, (int[]){4, 5, 6, G, 7, 8}, (int[]){N_, N_, N_, 7, 8, 9},
           (int[]){S, 0, 0, C, C, C}, 6);
    /* copying */
    BirdieArm copy = arm_of(BC_COPY, BR_P_COPY);
    d.n = 3, d.para_end = 1;
    worked("copy", &copy, &d, T, (int[]){10, 11, 12, B0 + BR_P_COPY, G, 10, 11}, (int[]){N_, N_, N_, N_, 10, 11, 12},
           (int[]){S, 0, 0, 0, C, C, C}, 7);
    /* deshuffling: prefix[i] = T[perm[i]] */
    BirdieArm desh = arm_of(BC_DESHUF, BR_P_DESHUF);
    int perm[3] = {2, 0, 1};
    d.perm = perm, d.para_end = 0;
    worked("deshuffle", &desh, &d, T, (int[]){B0 + BR_P_DESHUF, 12, 10, 11, G, 10, 11},
           (int[]){N_, N_, N_, N_, 10, 11, 12}, (int[]){S, 0, 0, 0, C, C, C}, 7);
    /* infilling: spans [1,3) and [5,6) with sentinels 3 and 7; target = span then its sentinel (§2.6) */
    const int s3 = B0 + BR_S0 + 3, s7 = B0 + BR_S0 + 7;
    BirdieArm inf = arm_of(BC_INFILL, BR_P_INFILL);
    memset(&d, 0, sizeof d);
    d.n = 8, d.n_spans = 2, d.span_lo[0] = 1, d.span_hi[0] = 3, d.span_lo[1] = 5, d.span_hi[1] = 6;
    d.sentinel[0] = BR_S0 + 3, d.sentinel[1] = BR_S0 + 7, d.piece[0] = 0, d.piece[1] = 1, d.piece[2] = 2;
    worked("infill", &inf, &d, T,
           (int[]){B0 + BR_P_INFILL, 10, s3, 13, 14, s7, 16, 17, G, 11, 12, s3, 15},
           (int[]){N_, N_, N_, N_, N_, N_, N_, N_, 11, 12, s3, 15, s7}, (int[]){S, 0, 0, 0, 0, 0, 0, 0, C, C, C, C, C}, 13);
    /* autoencoding: same corrupted prefix, target = the whole original */
    BirdieArm ae = arm_of(BC_AE, BR_P_AE);
    worked("ae", &ae, &d, T,
           (int[]){B0 + BR_P_AE, 10, s3, 13, 14, s7, 16, 17, G, 10, 11, 12, 13, 14, 15, 16},
           (int[]){N_, N_, N_, N_, N_, N_, N_, N_, 10, 11, 12, 13, 14, 15, 16, 17},
           (int[]){S, 0, 0, 0, 0, 0, 0, 0, C, C, C, C, C, C, C, C}, 16);
    /* autoencoding + deshuffling: pieces [10] [s3 13 14] [s7 16 17] in order 2, 0, 1; nothing dropped */
    BirdieArm aed = arm_of(BC_AE, BR_P_AE_DESHUF);
    aed.shuffle = 1, d.piece[0] = 2, d.piece[1] = 0, d.piece[2] = 1, d.para_end = 1;
    worked("ae-deshuffle", &aed, &d, T,
           (int[]){s7, 16, 17, 10, s3, 13, 14, B0 + BR_P_AE_DESHUF, G, 10, 11, 12, 13, 14, 15, 16},
           (int[]){N_, N_, N_, N_, N_, N_, N_, N_, 10, 11, 12, 13, 14, 15, 16, 17},
           (int[]){S, 0, 0, 0, 0, 0, 0, 0, C, C, C, C, C, C, C, C}, 16);
    /* selective copying, the paper's A.5 example: context ABCDEF, span DE, start delimiter BC, end F */
    const int32_t ctx[6] = {20, 21, 22, 23, 24, 25};
    BirdieArm sc = arm_of(BC_SELCOPY, -1);
    sc.sc_query_first = 1;
    memset(&d, 0, sizeof d);
    d.n = 6, d.sc_n = 1, d.sc_pos[0] = 1, d.sc_a[0] = 2, d.sc_l[0] = 2, d.sc_e[0] = 1;
    const int cp = B0 + BR_SC_COPY, st = B0 + BR_SC_START, en = B0 + BR_SC_END, cx = B0 + BR_SC_CONTEXT,
              dn = B0 + BR_SC_DONE, sp = B0 + BR_SC_SEP;
    worked("selcopy/query-context", &sc, &d, ctx,
           (int[]){cp, st, 21, 22, en, 25, cx, 20, 21, 22, 23, 24, 25, G, 23, 24},
           (int[]){N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, 23, 24, dn},
           (int[]){S, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, C, C, C}, 16);
    sc.sc_query_first = 0;
    worked("selcopy/context-query", &sc, &d, ctx,
           (int[]){cx, 20, 21, 22, 23, 24, 25, cp, st, 21, 22, en, 25, G, 23, 24},
           (int[]){N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, 23, 24, dn},
           (int[]){S, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, C, C, C}, 16);
    /* two spans: separated by <sc_sep>, in instruction order */
    const int32_t c8[8] = {30, 31, 32, 33, 34, 35, 36, 37};
    sc.sc_query_first = 1, d.n = 8, d.sc_n = 2;
    d.sc_pos[0] = 4, d.sc_a[0] = 1, d.sc_l[0] = 2, d.sc_e[0] = 1; /* [34 | 35 36 | 37] */
    d.sc_pos[1] = 0, d.sc_a[1] = 1, d.sc_l[1] = 1, d.sc_e[1] = 1; /* [30 | 31 | 32] */
    worked("selcopy/2 spans", &sc, &d, c8,
           (int[]){cp, st, 34, en, 37, st, 30, en, 32, cx, 30, 31, 32, 33, 34, 35, 36, 37, G, 35, 36, sp, 31},
           (int[]){N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, 35, 36, sp, 31, dn},
           (int[]){S, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, C, C, C, C, C}, 23);
}

/* the grid: 104 arms, per-class counts of §3, infilling's surviving (r, w, [lo', hi]) */
static void test_grid(void) {
    BirdieArm a[BIRDIE_MAX_ARMS];
    int n = birdie_grid(a), count[BIRDIE_N_CLASSES] = {0}, ae_shuffle = 0;
    CHECK(n == 104, "grid: %d arms, expected 104", n);
    for (int i = 0; i < n; i++) count[a[i].cls]++, ae_shuffle += a[i].cls == BC_AE && a[i].shuffle;
    const int want[BIRDIE_N_CLASSES] = {1, 1, 2, 4, 26, 54, 16};
    for (int c = 0; c < BIRDIE_N_CLASSES; c++) CHECK(count[c] == want[c], "grid: class %d has %d arms, want %d", c, count[c], want[c]);
    CHECK(ae_shuffle == 27, "grid: %d AE+deshuffle arms, want 27", ae_shuffle);
    /* §3's infilling table, row by row: (r, w, lo', hi) */
    static const double inf[26][4] = {
        {0.05, 3, 30, 256},   {0.05, 8, 80, 256},   {0.05, 8, 80, 512},   {0.05, 8, 80, 1024},  {0.05, 8, 80, 2048},
        {0.05, 32, 320, 512}, {0.05, 32, 320, 1024}, {0.05, 32, 320, 2048}, {0.15, 3, 10, 256},  {0.15, 8, 26, 256},
        {0.15, 8, 26, 512},   {0.15, 8, 26, 1024},  {0.15, 8, 26, 2048},  {0.15, 32, 106, 256}, {0.15, 32, 106, 512},
        {0.15, 32, 106, 1024}, {0.15, 32, 106, 2048}, {0.5, 3, 3, 256},    {0.5, 8, 8, 256},     {0.5, 8, 8, 512},
        {0.5, 8, 8, 1024},    {0.5, 8, 8, 2048},    {0.5, 32, 32, 256},   {0.5, 32, 32, 512},   {0.5, 32, 32, 1024},
        {0.5, 32, 32, 2048}};
    int found = 0;
    for (int r = 0; r < 26; r++)
        for (int i = 0; i < n; i++)
            found += a[i].cls == BC_INFILL && a[i].rate == inf[r][0] && a[i].width == inf[r][1] && a[i].lo == (int)inf[r][2] &&
                     a[i].hi == (int)inf[r][3];
    CHECK(found == 26, "grid: %d of the 26 infilling arms of §3's table found", found);
    /* AE lo := floor(w/(2r)) */
    int ae_ok = 1;
    for (int i = 0; i < n; i++)
        if (a[i].cls == BC_AE) ae_ok &= a[i].lo == (int)floor(a[i].width / (2 * a[i].rate) + 1e-9) && (a[i].hi == 384 || a[i].hi == 768 || a[i].hi == 1536);
    CHECK(ae_ok, "grid: AE ranges");
    /* initial action: NTP 1/7, PLM 1/7, copying 1/14, deshuffling 1/28, infilling 1/182, AE 1/378, selcopy 1/112 */
    double act[104], sc[104], sum = 0;
    birdie_class_uniform(a, n, act, sc);
    for (int i = 0; i < n; i++) sum += act[i];
    const double per[BIRDIE_N_CLASSES] = {1.0 / 7, 1.0 / 7, 1.0 / 14, 1.0 / 28, 1.0 / 182, 1.0 / 378, 1.0 / 112};
    int act_ok = 1;
    for (int i = 0; i < n; i++) act_ok &= fabs(act[i] - per[a[i].cls]) < 1e-15 && fabs(sc[i] - 1.0 / want[a[i].cls]) < 1e-15;
    CHECK(act_ok && fabs(sum - 1) < 1e-12, "grid: initial action / reward scale (sum %.17g)", sum);
    /* UL2 */
    BirdieArm u[8];
    double w[8], ws = 0;
    int nu = birdie_ul2(u, w);
    for (int i = 0; i < nu; i++) ws += w[i];
    CHECK(nu == 7 && fabs(ws - 1) < 1e-12 && u[6].cls == BC_PLM && u[6].plm_split == 0.75 && u[4].width == 64 &&
              u[0].paradigm == BR_P_R && u[2].paradigm == BR_P_X && u[6].paradigm == BR_P_S,
          "ul2 mixture");
    /* every arm of every row length used here yields samples (its minimum fits an empty row) */
    for (int L = 128; L <= 2048; L *= 2) {
        BirdieArm g[104];
        birdie_grid(g);
        birdie_fit_lengths(g, 104, L);
        int32_t *text = eid_xmalloc(sizeof(int32_t) * L);
        int *work = eid_xmalloc(sizeof(int) * 3 * L), bad = -1;
        Rng r;
        rng_init(&r, 5, 0);
        for (int i = 0; i < L; i++) text[i] = (int32_t)rng_below(&r, 90);
        for (int k = 0; k < 104 && bad < 0; k++) {
            BirdieDraw d;
            if (!birdie_draw(&g[k], k, text, L, L, 0, &r, work, &d) || birdie_seg_len(&g[k], &d) > L) bad = k;
        }
        CHECK(bad < 0, "rows of %d: arm %d (%s) yields no sample in an empty row", L, bad, bad >= 0 ? g[bad].name : "");
        free(text), free(work);
    }
}

/* 10⁴ draws of the span sampler: mean span length vs the exact expectation of the sampler's law,
 * realised corruption vs r/(1 + 4r/3) (§2.5), distinct sentinels, no span cap at 20 */
static void test_span_stats(void) {
    /* (r, w, n): n long enough for many span cycles, short enough to stay under the 100-sentinel cap */
    static const double cfg[3][3] = {{0.15, 8, 1024}, {0.5, 3, 256}, {0.05, 32, 4096}};
    for (int c = 0; c < 3; c++) {
        BirdieArm a = arm_of(BC_INFILL, BR_P_INFILL);
        a.rate = cfg[c][0], a.width = cfg[c][1];
        Rng r;
        rng_init(&r, 42 + c, 0);
        long masked = 0, spans = 0, text = 0, max_spans = 0, dup = 0, interior = 0, interior_len = 0;
        int n = (int)cfg[c][2];
        for (int it = 0; it < 10000; it++) {
            BirdieDraw d;
            memset(&d, 0, sizeof d);
            masked += birdie_spans(&a, n, 1 << 20, &r, &d);
            text += d.n, spans += d.n_spans;
            if (d.n_spans > max_spans) max_spans = d.n_spans;
            for (int j = 0; j < d.n_spans; j++) {
                if (d.span_hi[j] < n) interior++, interior_len += d.span_hi[j] - d.span_lo[j];
                for (int k = 0; k < j; k++) dup += d.sentinel[j] == d.sentinel[k];
            }
        }
        /* a span of proposed length L starts with probability r/L, so accepted lengths follow
         * p(L)·(1/L) normalised: E = 1 / E[1/L] with L = max(1, trunc(w + N(0,1))) */
        double pl[80] = {0}, e1 = 0;
        for (int i = -8000; i <= 8000; i++) { /* integrate the normal on a fine grid */
            double z = i / 1000.0, p = exp(-z * z / 2) / sqrt(2 * M_PI) / 1000.0;
            int L = (int)(a.width + z);
            pl[L < 1 ? 1 : L] += p;
        }
        for (int L = 1; L < 80; L++) e1 += pl[L] / L;
        double want_len = 1 / e1, got_len = (double)interior_len / interior;
        /* steady state: a span (mean want_len), then floor(L/3) + 2 ineligible positions, then a geometric
         * wait with success probability q = r·E[1/L] per position: rate = mean span / mean cycle */
        double q = a.rate * e1, gap = 0;
        for (int L = 1; L < 80; L++) gap += pl[L] / L / e1 * (L / 3 + 2); /* over accepted lengths */
        double exact = want_len / (want_len + gap + (1 - q) / q);
        double rate = (double)masked / text, want_rate = a.rate / (1 + 4 * a.rate / 3);
        CHECK(fabs(rate - exact) < 0.06 * exact, "spans r=%.2f w=%g: realised rate %.4f, steady state %.4f", a.rate,
              a.width, rate, exact);
        CHECK(fabs(got_len - want_len) < 0.02 * want_len, "spans r=%.2f w=%g: mean length %.3f, expected %.3f", a.rate,
              a.width, got_len, want_len);
        CHECK(fabs(rate - want_rate) < 0.15 * want_rate, "spans r=%.2f w=%g: realised rate %.4f, docs/birdie.md ~%.4f",
              a.rate, a.width, rate, want_rate);
        CHECK(dup == 0, "spans: %ld repeated sentinels inside a sample (§9 v1 flaw 15)", dup);
        if (c == 1) CHECK(max_spans > 20 && max_spans <= 100, "spans r=0.5 w=3 n=256: at most %ld spans (no 20-span cap, ≤ 100)", max_spans);
        printf("span sampler r=%.2f w=%g n=%d: mean length %.3f (law %.3f), realised rate %.4f (steady state %.4f, "
               "r/(1+4r/3) = %.4f)\n", a.rate, a.width, n, got_len, want_len, rate, exact, want_rate);
    }
}

/* draws of every arm: invariants of §1–2 and the public-code flaws of §9 */
static void test_draw_invariants(void) {
    BirdieArm g[104];
    birdie_grid(g);
    int L = 1024;
    birdie_fit_lengths(g, 104, L);
    int32_t *text = eid_xmalloc(sizeof(int32_t) * L), *tok = eid_xmalloc(sizeof(int32_t) * L),
            *lab = eid_xmalloc(sizeof(int32_t) * L);
    uint8_t *fl = eid_xmalloc(L);
    int *work = eid_xmalloc(sizeof(int) * 3 * L);
    Rng tr;
    rng_init(&tr, 77, 0);
    for (int i = 0; i < L; i++) text[i] = (int32_t)rng_below(&tr, 90); /* ids < 90 < base 100 */
    int layout_bad = 0, ntp_copy = 0, perm_bad = 0, desh_frac_bad = 0, ae_keep_bad = 0, ae_shuffled = 0,
        ae_shuf_draws = 0, sc_bad = 0, sc_fewer = 0, infill_bad = 0, para_bad = 0, para_end = 0, para_n = 0;
    double moved50 = 0, moved100 = 0;
    int n50 = 0, n100 = 0;
    Rng r;
    rng_init(&r, 3, 0);
    for (int it = 0; it < 20; it++)
        for (int k = 0; k < 104; k++) {
            const BirdieArm *a = &g[k];
            BirdieDraw d;
            if (!birdie_draw(a, k, text, L, L, 0, &r, work, &d)) { layout_bad++; continue; }
            int len = birdie_emit(a, &d, text, B0, tok, lab, fl);
            /* layout: SEG_START only first; CAUSAL from <gen> on; labels exactly on the CAUSAL tokens; label[i] = tok[i+1] */
            int P = 0;
            while (P < len && !(fl[P] & FLAG_CAUSAL)) P++;
            int ok = len <= L && P < len && tok[P] == B0 + BR_GEN && (fl[0] & FLAG_SEG_START);
            for (int i = 1; i < len; i++) ok &= !(fl[i] & FLAG_SEG_START);
            for (int i = 0; i < len; i++) ok &= (i >= P) == ((fl[i] & FLAG_CAUSAL) != 0) && (i >= P) == (lab[i] != N_);
            for (int i = P; i + 1 < len; i++) ok &= lab[i] == tok[i + 1];
            layout_bad += !ok;
            int M = len - P;
            /* paradigm token of the class at the start or just before <gen> (§1.4) */
            if (a->paradigm >= 0) {
                para_n++;
                int at_end = P >= 1 && tok[P - 1] == B0 + a->paradigm, at_start = tok[0] == B0 + a->paradigm;
                para_bad += at_end == at_start;
                para_end += at_end;
            }
            /* §9 flaw 1: NTP has an empty prefix and predicts the next token: not a copying task */
            if (a->cls == BC_NTP) ntp_copy += P != 0 || lab[0] != text[0] || (M > 1 && tok[1] != text[0]);
            /* §9 flaw 8 (+ v1 flaw 12): deshuffling's prefix is a permutation of the target's tokens; the
             * 50% setting moves at most half of the positions */
            if (a->cls == BC_DESHUF) {
                int cnt[100] = {0}, moved = 0, para = a->paradigm >= 0;
                for (int i = 0; i < d.n; i++) cnt[text[i]]++, moved += d.perm[i] != i;
                for (int i = 0; i < P; i++)
                    if (tok[i] < B0) cnt[tok[i]]--;
                for (int v = 0; v < 100; v++) perm_bad += cnt[v] != 0;
                perm_bad += P != d.n + para;
                if (a->rate < 1) moved50 += (double)moved / d.n, n50++, desh_frac_bad += moved > d.n / 2;
                else moved100 += (double)moved / d.n, n100++;
            }
            /* AE (± deshuffle): the prefix holds every unmasked token and one sentinel per span (v1 flaws 14,
             * 16), the target is the whole text; with shuffle the piece order changes (v2 flaw 3) */
            if (a->cls == BC_AE) {
                int unmasked = d.n, sent = 0;
                for (int j = 0; j < d.n_spans; j++) unmasked -= d.span_hi[j] - d.span_lo[j];
                int text_in_prefix = 0;
                for (int i = 0; i < P; i++) text_in_prefix += tok[i] < B0, sent += tok[i] >= B0 + BR_S0 && tok[i] < B0 + BR_S0 + 100;
                ae_keep_bad += text_in_prefix != unmasked || sent != d.n_spans || M != d.n ||
                               memcmp(lab + P, text, sizeof(int32_t) * d.n) != 0;
                if (a->shuffle && d.n_spans >= 2) {
                    ae_shuf_draws++;
                    int ident = 1;
                    for (int j = 0; j <= d.n_spans; j++) ident &= d.piece[j] == j;
                    ae_shuffled += !ident;
                }
            }
            /* infilling: target = spans with their sentinels; single reserved-id sentinels (v2 flaw 7) */
            if (a->cls == BC_INFILL) {
                int m = 0;
                for (int j = 0; j < d.n_spans; j++) m += d.span_hi[j] - d.span_lo[j] + 1;
                infill_bad += M != m || lab[len - 1] != B0 + d.sentinel[d.n_spans - 1];
            }
            /* selective copying: each answer span lies in the context and follows a start delimiter that
             * occurs exactly once in it (v2 flaw 6, v1 flaw 17) */
            if (a->cls == BC_SELCOPY) {
                for (int j = 0; j < d.sc_n; j++) {
                    int p = d.sc_pos[j], end = p + d.sc_a[j] + d.sc_l[j] + d.sc_e[j], hits = 0;
                    sc_bad += end > d.n || p < 0;
                    for (int q = 0; q + d.sc_a[j] <= d.n; q++) hits += !memcmp(text + q, text + p, sizeof(int32_t) * d.sc_a[j]);
                    sc_bad += hits != 1;
                }
                if (d.sc_n != a->sc_spans) sc_fewer++;
            }
        }
    CHECK(layout_bad == 0, "draws: %d samples break the segment layout of §1.2", layout_bad);
    CHECK(para_bad == 0, "draws: %d samples without their paradigm token exactly once at the start or end", para_bad);
    CHECK(para_end > para_n / 3 && para_end < 2 * para_n / 3, "draws: paradigm at the end %d of %d times (p = 0.5)", para_end, para_n);
    CHECK(ntp_copy == 0, "NTP is next-token prediction, not copying (§9 v2 flaw 1): %d bad", ntp_copy);
    CHECK(perm_bad == 0, "deshuffling: prefix is not a token permutation of the target (§9 v2 flaw 8): %d", perm_bad);
    CHECK(desh_frac_bad == 0 && n50 > 0 && moved50 / n50 < 0.5 && moved100 / n100 > 0.9,
          "deshuffling 50%% vs 100%% (§9 v1 flaw 12): moved fractions %.3f and %.3f", moved50 / n50, moved100 / n100);
    CHECK(ae_keep_bad == 0, "autoencoding: %d samples drop or add text (§9 v1 flaws 14, 16)", ae_keep_bad);
    CHECK(ae_shuf_draws > 0 && ae_shuffled > ae_shuf_draws / 2, "AE+deshuffle shuffles (§9 v2 flaw 3): %d of %d", ae_shuffled,
          ae_shuf_draws);
    CHECK(infill_bad == 0, "infilling targets: %d bad", infill_bad);
    CHECK(sc_bad == 0, "selective copying: %d spans outside the context or with ambiguous delimiters", sc_bad);
    CHECK(sc_fewer <= 2, "selective copying: %d of 320 samples placed fewer spans than configured", sc_fewer);
    /* §9 v2 flaw 2: each arm's own hyper-parameters reach the sampler: realised rates differ by r */
    double rate[3] = {0};
    for (int c = 0; c < 3; c++) {
        BirdieArm a = arm_of(BC_INFILL, BR_P_INFILL);
        a.rate = (double[]){0.05, 0.15, 0.5}[c], a.width = 8;
        long m = 0, t = 0;
        for (int it = 0; it < 200; it++) {
            BirdieDraw d;
            m += birdie_spans(&a, 512, 1 << 20, &r, &d), t += d.n;
        }
        rate[c] = (double)m / t;
    }
    CHECK(rate[0] < rate[1] && rate[1] < rate[2], "infilling rates reach the sampler: %.3f %.3f %.3f", rate[0], rate[1], rate[2]);
    /* §9 v1 flaw 19 / v2 flaw 11: reserved ids distinct, above the text, <gen> is not EOS */
    CHECK(BR_GEN != BR_EOS && BR_S0 + 99 < BR_P_PLM && BIRDIE_N_RESERVED == 118, "reserved block layout");
    free(text), free(tok), free(lab), free(fl), free(work);
}

/* packed rows: deterministic in (key, pos, action); every sample starts with SEG_START; PAD at the tail */
static void test_rows(void) {
    BirdieSource b;
    CHECK(birdie_source_init(&b, BOBJ_BIRDIE, 256, 60) == 0, "source init");
    static int32_t txt[5000];
    for (int i = 0; i < 5000; i++) txt[i] = i % 97 == 96 ? 59 : (i * 31 + i / 7) % 59;
    b.text[0] = (BirdieText){txt, 5000}, b.text[1] = (BirdieText){txt, 2000};
    DataSource s, s2;
    source_birdie_init(&s, &b, 9);
    source_birdie_init(&s2, &b, 9);
    int tok[8 * 256], lab[8 * 256], tok2[8 * 256], lab2[8 * 256];
    uint8_t fl[8 * 256], fl2[8 * 256];
    source_next(&s, 8, tok, lab, fl);
    source_next(&s, 8, tok, lab, fl); /* rows 8..15 */
    source_rows(&s2, STREAM_TRAIN, 8, 8, tok2, lab2, fl2);
    CHECK(!memcmp(tok, tok2, sizeof tok) && !memcmp(lab, lab2, sizeof lab) && !memcmp(fl, fl2, sizeof fl),
          "rows are a pure function of (seed, index)");
    int segs = 0, bad = 0, vocab_bad = 0, labelled = 0;
    for (int i = 0; i < 8 * 256; i++) {
        segs += (fl[i] & FLAG_SEG_START) != 0;
        vocab_bad += tok[i] < 0 || tok[i] >= 60 + BIRDIE_N_RESERVED || lab[i] >= 60 + BIRDIE_N_RESERVED;
        labelled += lab[i] != N_;
        if (fl[i] & FLAG_PAD) bad += lab[i] != N_ || tok[i] != 60 + BR_PAD || (i % 256 < 255 && !(fl[i + 1] & FLAG_PAD));
    }
    CHECK(segs > 8 && bad == 0 && vocab_bad == 0 && labelled > 256, "packing: %d segments in 8 rows, %d bad pads, %d ids out of range",
          segs, bad, vocab_bad);
    /* save/restore of the action */
    char st[4096];
    b.action[0] = 0.123456789;
    CHECK(source_save(&s, st, sizeof st) == 0, "save");
    double keep = b.action[0];
    b.action[0] = 0;
    CHECK(source_restore(&s, st) == 0 && b.action[0] == keep && s.cursor == 16, "restore: %s", eid_last_error());
    CHECK(source_restore(&s, "cursor=3 action=1,2") != 0, "restore refuses a short action");
    birdie_source_free(&b);
}

/* through the model: perturbing one packed sample changes no other sample's logits (recurrences reset at
 * SEG_START, attention stays in its segment), for causal and bidirectional layers */
static void test_packing_isolation(void) {
    const char *stacks[] = {"longhorn,attn", "mamba2,gla", "hawk,gated-ssm"};
    for (int si = 0; si < 3; si++) {
        for (int bidir = 0; bidir < 2; bidir++) {
            int V = 60 + BIRDIE_N_RESERVED, T = 96;
            ModelCfg c;
            memset(&c, 0, sizeof c);
            c.vocab_size = birdie_model_vocab(60), c.d_model = 16, c.tie_embeddings = 1, c.norm_eps = 1e-5;
            if (modelcfg_set_layers(&c, stacks[si], 0) != 0) { CHECK(0, "%s", eid_last_error()); continue; }
            if (bidir) c.layer[0].bidir = 1;
            if (modelcfg_resolve(&c) != 0) {
                if (bidir) continue; /* a mixer without a bidirectional form */
                CHECK(0, "%s: %s", stacks[si], eid_last_error());
                continue;
            }
            Model *m = model_new(&c);
            if (!m) { CHECK(0, "%s", eid_last_error()); continue; }
            model_init_params(m, 3);
            (void)V;
            /* one row: copy sample, AE sample, NTP sample */
            int32_t tok[96], lab[96];
            uint8_t fl[96];
            int32_t txt[64];
            for (int i = 0; i < 64; i++) txt[i] = (i * 13 + 5) % 60;
            BirdieArm copy = arm_of(BC_COPY, BR_P_COPY), ae = arm_of(BC_AE, BR_P_AE), ntp = arm_of(BC_NTP, -1);
            BirdieDraw d;
            memset(&d, 0, sizeof d);
            int q = 0, starts[4];
            d.n = 10, d.para_end = 1;
            starts[0] = q, q += birdie_emit(&copy, &d, txt, 60, tok + q, lab + q, fl + q);
            d.n = 16, d.n_spans = 1, d.span_lo[0] = 3, d.span_hi[0] = 6, d.sentinel[0] = BR_S0 + 4;
            d.piece[0] = 0, d.piece[1] = 1;
            starts[1] = q, q += birdie_emit(&ae, &d, txt + 10, 60, tok + q, lab + q, fl + q);
            memset(&d, 0, sizeof d);
            d.n = 20;
            starts[2] = q, q += birdie_emit(&ntp, &d, txt + 26, 60, tok + q, lab + q, fl + q);
            starts[3] = q;
            for (int i = q; i < T; i++) tok[i] = 60 + BR_PAD, lab[i] = N_, fl[i] = FLAG_PAD;
            int Vm = m->cfg.vocab_size;
            real *l0 = eid_xmalloc(sizeof(real) * T * Vm), *l1 = eid_xmalloc(sizeof(real) * T * Vm);
            model_plan(m, 1, T, T);
            model_trunk_forward(m, tok, fl, 1, T);
            model_logits_all(m, l0);
            for (int seg = 0; seg < 3; seg++) {
                int32_t t2[96];
                memcpy(t2, tok, sizeof t2);
                int mid = (starts[seg] + starts[seg + 1]) / 2;
                t2[mid] = (t2[mid] + 1) % 60; /* a prompt or answer token of this sample */
                model_trunk_forward(m, t2, fl, 1, T);
                model_logits_all(m, l1);
                double other = 0, own = 0;
                for (int t = 0; t < starts[3]; t++) {
                    double dmax = 0;
                    for (int v = 0; v < Vm; v++) dmax = t_worst(dmax, fabs((double)l1[(size_t)t * Vm + v] - l0[(size_t)t * Vm + v]));
                    if (t >= starts[seg] && t < starts[seg + 1]) own = t_worst(own, dmax);
                    else other = t_worst(other, dmax);
                }
                CHECK(other == 0 && own > 0, "%s%s: perturbing sample %d moves other samples' logits by %g (own %g)",
                      stacks[si], bidir ? " (layer 0 bidirectional)" : "", seg, other, own);
            }
            free(l0), free(l1);
            model_free(m);
        }
    }
}

/* ---- controller ---- */

static void test_reward(void) {
    /* docs/birdie.md §4's checks */
    static const double ck[7][3] = {{4.5, 4.2, 0.952}, {0.6, 0.5207, 0.954}, {3.0, 2.99, 0.0001}, {3.0, 2.9, 0.081},
                                    {3.0, 2.8, 0.63},  {3.0, 3.1, -0.084},  {2.0, 1.8, 1.0}};
    for (int i = 0; i < 7; i++) {
        double r = bctl_reward(ck[i][0], ck[i][1]), tol = fabs(ck[i][2]) < 0.01 ? 5e-5 : 0.006;
        CHECK(fabs(r - ck[i][2]) < tol, "reward %g -> %g: %.5f, expected %.4f", ck[i][0], ck[i][1], r, ck[i][2]);
    }
    CHECK(bctl_reward(NAN, 1) == 0 && bctl_reward(3, 0.1) == 1 && bctl_reward(3, 30) == -1, "reward: NaN -> 0, clipped");
    /* §5.5 exploration by training progress (not by controller updates, §9 v1 flaw 18) */
    CHECK(bctl_explore_prob(0.01) == 1 && bctl_explore_prob(0.07) == 0.5 && fabs(bctl_explore_prob(0.10) - 0.5) < 1e-12 &&
              fabs(bctl_explore_prob(0.45) - 0.25) < 1e-12 && bctl_explore_prob(0.9) == 0.25 &&
              fabs(bctl_explore_prob(0.275) - 0.375) < 1e-12,
          "exploration schedule");
}

static BctlCfg small_cfg(int H, int S, int NL) {
    BctlCfg c = bctl_default_cfg();
    c.hidden = H, c.state = S, c.layers = NL, c.candidates = 256;
    return c;
}

typedef struct { BirdieCtl *c; const double *X, *Y; int T; } RmCtx;
static double rm_loss_fn(void *p) {
    RmCtx *x = p;
    double *g = eid_xmalloc(sizeof(double) * x->c->n_w), l = bctl_loss_grad(x->c, x->X, x->Y, x->T, g);
    free(g);
    return l;
}

/* the reward model's hand-written backward against finite differences */
static void test_rm_gradient(void) {
    BirdieCtl c;
    int cls[3] = {0, 1, 1};
    double a0[3] = {0.5, 0.25, 0.25};
    BctlCfg cfg = small_cfg(4, 3, 2);
    CHECK(bctl_init(&c, &cfg, 3, cls, a0, 1000, 7) == 0, "bctl_init");
    Rng r;
    rng_init(&r, 11, 0);
    for (size_t i = 0; i < c.n_w; i++) c.w[i] += 0.3 * (2 * rng_uniform(&r) - 1); /* no special values */
    int T = 5;
    double X[5 * 6], Y[5 * 3];
    for (int i = 0; i < T * 6; i++) X[i] = 0.2 + 3 * rng_uniform(&r);
    for (int i = 0; i < T * 3; i++) Y[i] = 2 * rng_uniform(&r) - 1;
    double *g = eid_xmalloc(sizeof(double) * c.n_w);
    bctl_loss_grad(&c, X, Y, T, g);
    RmCtx ctx = {&c, X, Y, T};
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < c.n_w; i++) {
        double keep = c.w[i], h = 1e-5;
        c.w[i] = keep + h;
        double lp = rm_loss_fn(&ctx);
        c.w[i] = keep - h;
        double lm = rm_loss_fn(&ctx);
        c.w[i] = keep;
        double fd = (lp - lm) / (2 * h), err = fabs(fd - g[i]) / fmax(1e-6, fabs(fd) + fabs(g[i]));
        if (err != err || err > worst) worst = err, at = i; /* a NaN sticks and fails */
    }
    CHECK(worst < 1e-5, "reward model gradient: worst relative error %.3g at parameter %zu of %zu", worst, at, c.n_w);
    /* §9 v2 flaw 4: a candidate is scored at its own row: the score equals the full-sequence prediction at the
     * last row, and different candidates get different scores */
    c.n_hist = 4;
    for (int t = 0; t < 4; t++) memcpy(c.hx[t], X + t * 6, sizeof(double) * 6), memcpy(c.hy[t], Y + t * 3, sizeof(double) * 3);
    double pred[5 * 3], cand[3] = {0.7, 0.2, 0.1}, cand2[3] = {0.1, 0.1, 0.8}, Xc[5 * 6];
    memcpy(Xc, X, sizeof(double) * 24), memcpy(Xc + 24, X + 24, sizeof(double) * 3), memcpy(Xc + 27, cand, sizeof cand);
    bctl_predict(&c, Xc, 5, pred);
    double want = 0;
    for (int k = 0; k < 3; k++) want += pred[12 + k] * c.scale[k];
    double s1 = bctl_score(&c, X + 24, cand), s2 = bctl_score(&c, X + 24, cand2);
    CHECK(fabs(s1 - want) < 1e-12 && fabs(s1 - s2) > 1e-9, "candidate scored at its own row: %.9g vs %.9g (other %.9g)", s1,
          want, s2);
    free(g);
    bctl_free(&c);
}

/* a synthetic contextual bandit: every arm's loss falls by 10% times the weight on arm 3 (class 2) */
static void bandit_losses(const double *action, int eval, double *L) {
    for (int k = 0; k < 6; k++) L[k] = (3.0 + 0.1 * k + 0.01 * (eval % 3)) * (1 - 0.1 * action[3]);
}

static int bandit_run(BirdieCtl *c, int from, int to, double traj[][6], int modes[]) {
    double L[6];
    int ev = from;
    for (int i = 0; i < c->n_sched && ev < to; i++) {
        if (i < from) continue;
        bandit_losses(c->action, ev, L);
        if (bctl_update(c, c->sched[i], L) != 0) return -1;
        memcpy(traj[ev], c->action, sizeof(double) * 6);
        modes[ev] = c->last_mode;
        ev++;
    }
    return ev;
}

static void test_bandit_and_resume(void) {
    int cls[6] = {0, 1, 1, 2, 2, 2};
    double a0[6];
    BirdieArm fake[6];
    for (int k = 0; k < 6; k++) memset(&fake[k], 0, sizeof fake[k]), fake[k].cls = cls[k];
    birdie_class_uniform(fake, 6, a0, NULL);
    BctlCfg cfg = small_cfg(16, 32, 2);
    cfg.iters = 100; /* a quarter of the default work: seconds, not tens of seconds */
    BirdieCtl c;
    CHECK(bctl_init(&c, &cfg, 6, cls, a0, 32000, 5) == 0, "init");
    CHECK(c.n_sched == 37 && c.sched[0] == 10 && c.sched[2] == 250 && c.sched[6] == 2000 && c.sched[36] == 32000,
          "schedule of §5.1: %d evaluations", c.n_sched);
    static double traj[64][6], traj2[64][6];
    int modes[64], modes2[64];
    int n = bandit_run(&c, 0, 64, traj, modes);
    double greedy_best = 0;
    int n_greedy = 0, n_explore = 0, late = 0;
    for (int e = 0; e < n; e++) {
        if (e >= 10 && modes[e] == BCTL_GREEDY) greedy_best += traj[e][3], n_greedy++;
        if (e >= 20) late++, n_explore += modes[e] == BCTL_EXPLORE;
    }
    greedy_best /= n_greedy ? n_greedy : 1;
    printf("bandit: %d evaluations, %d greedy after the 10th; mean weight on the best arm %.3f (initial %.3f); %d of %d "
           "late decisions explored\n", n, n_greedy, greedy_best, a0[3], n_explore, late);
    CHECK(n == 37 && n_greedy >= 8 && greedy_best > 3 * a0[3],
          "bandit: the mixture concentrates on the best arm (mean greedy weight %.3f, initial %.3f)", greedy_best, a0[3]);
    CHECK(n_explore > 0 && n_explore < late, "bandit: late exploration %d of %d", n_explore, late);
    /* resume: a controller saved after evaluation 12 and loaded into a fresh one continues bit-exactly */
    BirdieCtl a, b;
    bctl_init(&a, &cfg, 6, cls, a0, 32000, 5);
    bandit_run(&a, 0, 12, traj2, modes2);
    const char *path = "/tmp/eidetic_test_birdie_ctl.bin";
    CHECK(bctl_save(&a, path) == 0, "save: %s", eid_last_error());
    bctl_init(&b, &cfg, 6, cls, a0, 32000, 5);
    CHECK(bctl_load(&b, path) == 0, "load: %s", eid_last_error());
    int n2 = bandit_run(&b, 12, 64, traj2, modes2);
    CHECK(n2 == n && !memcmp(traj, traj2, sizeof(double) * 6 * n) && !memcmp(modes, modes2, sizeof(int) * n),
          "resume after evaluation 12 gives the same mixture trajectory");
    /* a state for another controller shape is refused */
    BirdieCtl d;
    BctlCfg other = small_cfg(8, 32, 2);
    other.iters = 100;
    bctl_init(&d, &other, 6, cls, a0, 32000, 5);
    CHECK(bctl_load(&d, path) != 0 && strstr(eid_last_error(), path), "load refuses another shape: %s", eid_last_error());
    remove(path);
    bctl_free(&a), bctl_free(&b), bctl_free(&c), bctl_free(&d);
}

int main(void) {
    test_reward();
    test_rm_gradient();
    test_bandit_and_resume();
    test_worked_examples();
    test_grid();
    test_span_stats();
    test_draw_invariants();
    test_rows();
    test_packing_isolation();
    return t_summary("test_birdie");
}
