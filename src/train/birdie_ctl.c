/* birdie_ctl.c — Birdie's mixture controller (birdie_ctl.h, docs/birdie.md §4–5). */
#include "train/birdie_ctl.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/common.h"
#include "core/rng.h"
#include "io/files.h"

#define EPS_RMS 1e-8

BctlCfg bctl_default_cfg(void) { return (BctlCfg){64, 128, 4, 512, 200, 8}; }

/* ---- reward (§4) and exploration schedule (§5.5) ---- */

double bctl_reward(double lo, double ln) {
    const double e = 2.718281828459045;
    double d = (ln - lo) / lo, s = sqrt(lo * ln), r = -100 * e * tanh(e * s * d * d * d);
    if (isnan(r)) return 0;
    return r < -1 ? -1 : r > 1 ? 1 : r;
}

double bctl_explore_prob(double x) {
    if (x < 0.05) return 1.0;
    if (x < 0.10) return 0.5;
    if (x <= 0.45) return 0.375 + 0.125 * cos(M_PI * (x - 0.10) / 0.35);
    return 0.25;
}

/* ---- reward model: parameter layout ---- */

typedef struct {
    size_t g_in, v_in, W_in, gam[BCTL_MAX_LAYERS], Wf[BCTL_MAX_LAYERS], Wu[BCTL_MAX_LAYERS], Wo[BCTL_MAX_LAYERS],
        gam_out, W_head, b_head, n;
} Layout;

static Layout layout(const BirdieCtl *c) {
    int K = c->K, H = c->cfg.hidden, S = c->cfg.state;
    Layout l;
    size_t o = 0;
    l.g_in = o, o += 2 * K;
    l.v_in = o, o += 2 * K;
    l.W_in = o, o += (size_t)H * 2 * K;
    for (int i = 0; i < c->cfg.layers; i++) {
        l.gam[i] = o, o += H;
        l.Wf[i] = o, o += (size_t)S * H;
        l.Wu[i] = o, o += (size_t)3 * S * H;
        l.Wo[i] = o, o += (size_t)H * S;
    }
    l.gam_out = o, o += H;
    l.W_head = o, o += (size_t)K * H;
    l.b_head = o, o += K;
    l.n = o;
    return l;
}

static double sigm(double x) { return 1 / (1 + exp(-x)); }

/* y[r] = W[r,:]·x */
static void matvec(const double *W, int rows, int cols, const double *x, double *y) {
    for (int r = 0; r < rows; r++) {
        const double *w = W + (size_t)r * cols;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int k = 0; k < cols; k++) s += w[k] * x[k];
        y[r] = s;
    }
}

/* dx += Wᵀ dy; dW += dy xᵀ */
static void matvec_bwd(const double *W, int rows, int cols, const double *x, const double *dy, double *dx, double *dW) {
    for (int r = 0; r < rows; r++) {
        const double *w = W + (size_t)r * cols;
        double *dw = dW + (size_t)r * cols, g = dy[r];
        if (g == 0) continue;
        if (dx)
            for (int k = 0; k < cols; k++) dx[k] += w[k] * g;
        for (int k = 0; k < cols; k++) dw[k] += g * x[k];
    }
}

/* RMSNorm on the two halves of x[n] separately (§5.3's split norm): xn = normalised, out = gam·xn */
static void rms_fwd(const double *x, int n, const double *gam, double *xn, double *r, double *out) {
    int h = n / 2;
    for (int p = 0; p < 2; p++) {
        int a = p ? h : 0, b = p ? n : h;
        double ss = 0;
        for (int i = a; i < b; i++) ss += x[i] * x[i];
        r[p] = sqrt(ss / (b - a) + EPS_RMS);
        for (int i = a; i < b; i++) xn[i] = x[i] / r[p];
    }
    for (int i = 0; i < n; i++) out[i] = gam[i] * xn[i];
}

static void rms_bwd(const double *dout, int n, const double *gam, const double *xn, const double *r, double *dgam,
                    double *dx) {
    int h = n / 2;
    for (int p = 0; p < 2; p++) {
        int a = p ? h : 0, b = p ? n : h;
        double dot = 0;
        for (int i = a; i < b; i++) dot += dout[i] * gam[i] * xn[i];
        dot /= (b - a);
        for (int i = a; i < b; i++) {
            dgam[i] += dout[i] * xn[i];
            if (dx) dx[i] += (dout[i] * gam[i] - xn[i] * dot) / r[p];
        }
    }
}

/* offsets inside one row's cache */
typedef struct { size_t xin_n, xin, r_in, x0, lay, lay_size, xo_n, r_out, xL, pred, total; } RowOff;
/* per layer: x (H), xn (H), r (2), f, u, gi, go, h (S each) */
static RowOff row_off(int K, int H, int S, int NL) {
    RowOff o;
    size_t p = 0;
    o.xin_n = p, p += 2 * K;
    o.xin = p, p += 2 * K;
    o.r_in = p, p += 2;
    o.x0 = p, p += H;
    o.lay = p, o.lay_size = (size_t)2 * H + 2 + 5 * S, p += o.lay_size * NL;
    o.xL = p, p += H;
    o.xo_n = p, p += H;
    o.r_out = p, p += 2;
    o.pred = p, p += K;
    o.total = p;
    return o;
}

/* per layer the state between rows: h and f of the previous row */
typedef struct {
    double h[BCTL_MAX_LAYERS][1024], f[BCTL_MAX_LAYERS][1024];
    int has;
} RmState;

/* One row through the reward model: X[2K] → pred[K]; cache row c (may be a scratch row); st carries
 * (h, f) of the previous row and is advanced. */
static void rm_row(const BirdieCtl *c, const Layout *l, const RowOff *o, const double *X, double *cr, RmState *st) {
    const double *w = c->w;
    int K = c->K, H = c->cfg.hidden, S = c->cfg.state;
    double tmp[2 * BCTL_MAX_ARMS], xs[4096];
    rms_fwd(X, 2 * K, w + l->g_in, cr + o->xin_n, cr + o->r_in, tmp);
    for (int i = 0; i < 2 * K; i++) cr[o->xin + i] = tmp[i] * w[l->v_in + i];
    double *x = cr + o->x0;
    matvec(w + l->W_in, H, 2 * K, cr + o->xin, x);
    for (int li = 0; li < c->cfg.layers; li++) {
        double *L = cr + o->lay + o->lay_size * li;
        double *lx = L, *xn = L + H, *r = L + 2 * H, *f = r + 2, *u = f + S, *gi = u + S, *go = gi + S, *h = go + S;
        memcpy(lx, x, sizeof(double) * H);
        rms_fwd(lx, H, w + l->gam[li], xn, r, xs);
        matvec(w + l->Wf[li], S, H, xs, f);
        matvec(w + l->Wu[li], 3 * S, H, xs, u); /* u, gi, go are consecutive */
        for (int k = 0; k < S; k++) {
            f[k] = sigm(f[k]);
            double up = u[k] * sigm(gi[k]) * (1 - f[k]);
            h[k] = st->has ? st->f[li][k] * st->h[li][k] + up : up;
        }
        double z[1024], y[1024];
        for (int k = 0; k < S; k++) z[k] = h[k] * sigm(go[k]);
        matvec(w + l->Wo[li], H, S, z, y);
        for (int i = 0; i < H; i++) x[i] = lx[i] + y[i];
        memcpy(st->h[li], h, sizeof(double) * S);
        memcpy(st->f[li], f, sizeof(double) * S);
    }
    st->has = 1;
    memcpy(cr + o->xL, x, sizeof(double) * H);
    rms_fwd(x, H, w + l->gam_out, cr + o->xo_n, cr + o->r_out, xs);
    matvec(w + l->W_head, K, H, xs, cr + o->pred);
    for (int k = 0; k < K; k++) cr[o->pred + k] += w[l->b_head + k];
}

static double *forward_seq(const BirdieCtl *c, const double *X, int T, RmState *st, RowOff *o) {
    Layout l = layout(c);
    *o = row_off(c->K, c->cfg.hidden, c->cfg.state, c->cfg.layers);
    double *cache = eid_xmalloc(sizeof(double) * o->total * (size_t)(T + 1));
    st->has = 0;
    for (int t = 0; t < T; t++) rm_row(c, &l, o, X + (size_t)t * 2 * c->K, cache + o->total * t, st);
    return cache;
}

void bctl_predict(const BirdieCtl *c, const double *X, int T, double *pred) {
    RmState *st = eid_xmalloc(sizeof *st);
    RowOff o;
    double *cache = forward_seq(c, X, T, st, &o);
    for (int t = 0; t < T; t++) memcpy(pred + (size_t)t * c->K, cache + o.total * t + o.pred, sizeof(double) * c->K);
    free(cache), free(st);
}

double bctl_loss_grad(const BirdieCtl *c, const double *X, const double *Y, int T, double *grad) {
    Layout l = layout(c);
    int K = c->K, H = c->cfg.hidden, S = c->cfg.state, NL = c->cfg.layers;
    RmState *st = eid_xmalloc(sizeof *st);
    RowOff o;
    double *cache = forward_seq(c, X, T, st, &o);
    const double *w = c->w;
    memset(grad, 0, sizeof(double) * c->n_w);
    /* loss = mean over rows and arms of (pred − Y)² */
    double loss = 0;
    double *dx = eid_xcalloc((size_t)T * H, sizeof(double)); /* d loss / d (residual stream) per row */
    double xs[4096], dxs[4096];
    for (int t = 0; t < T; t++) {
        double *cr = cache + o.total * t, dp[BCTL_MAX_ARMS];
        for (int k = 0; k < K; k++) {
            double e = cr[o.pred + k] - Y[(size_t)t * K + k];
            loss += e * e, dp[k] = 2 * e / ((double)T * K);
            grad[l.b_head + k] += dp[k];
        }
        for (int i = 0; i < H; i++) xs[i] = w[l.gam_out + i] * cr[o.xo_n + i];
        memset(dxs, 0, sizeof(double) * H);
        matvec_bwd(w + l.W_head, K, H, xs, dp, dxs, grad + l.W_head);
        rms_bwd(dxs, H, w + l.gam_out, cr + o.xo_n, cr + o.r_out, grad + l.gam_out, dx + (size_t)t * H);
    }
    double *dfn = eid_xcalloc(S, sizeof(double)), *carry = eid_xcalloc(S, sizeof(double));
    for (int li = NL - 1; li >= 0; li--) {
        memset(dfn, 0, sizeof(double) * S), memset(carry, 0, sizeof(double) * S);
        for (int t = T - 1; t >= 0; t--) {
            double *L = cache + o.total * t + o.lay + o.lay_size * li;
            double *lx = L, *xn = L + H, *r = L + 2 * H, *f = r + 2, *u = f + S, *gi = u + S, *go = gi + S, *h = go + S;
            double *Lp = t ? cache + o.total * (t - 1) + o.lay + o.lay_size * li : NULL;
            double *dxt = dx + (size_t)t * H;
            double z[1024], dz[1024], dugg[3 * 1024], daf[1024];
            for (int k = 0; k < S; k++) z[k] = h[k] * sigm(go[k]);
            memset(dz, 0, sizeof(double) * S);
            matvec_bwd(w + l.Wo[li], H, S, z, dxt, dz, grad + l.Wo[li]); /* the branch's output adds to the stream */
            double *du = dugg, *dgi = dugg + S, *dgo = dugg + 2 * S;
            for (int k = 0; k < S; k++) {
                double sgo = sigm(go[k]), sgi = sigm(gi[k]);
                double dh = dz[k] * sgo + carry[k];
                dgo[k] = dz[k] * h[k] * sgo * (1 - sgo);
                double dup = dh;
                double df = dfn[k] - dup * u[k] * sgi;
                if (Lp) {
                    const double *fp = Lp + 2 * H + 2, *hp = fp + 4 * S;
                    dfn[k] = dh * hp[k], carry[k] = fp[k] * dh;
                } else dfn[k] = 0, carry[k] = 0;
                du[k] = dup * sgi * (1 - f[k]);
                dgi[k] = dup * u[k] * sgi * (1 - sgi) * (1 - f[k]);
                daf[k] = df * f[k] * (1 - f[k]);
            }
            for (int i = 0; i < H; i++) xs[i] = w[l.gam[li] + i] * xn[i];
            memset(dxs, 0, sizeof(double) * H);
            matvec_bwd(w + l.Wf[li], S, H, xs, daf, dxs, grad + l.Wf[li]);
            matvec_bwd(w + l.Wu[li], 3 * S, H, xs, dugg, dxs, grad + l.Wu[li]);
            rms_bwd(dxs, H, w + l.gam[li], xn, r, grad + l.gam[li], dxt); /* dxt already holds the residual path */
            (void)lx;
        }
    }
    for (int t = 0; t < T; t++) {
        double *cr = cache + o.total * t, dxin[2 * BCTL_MAX_ARMS] = {0}, dn[2 * BCTL_MAX_ARMS];
        matvec_bwd(w + l.W_in, H, 2 * K, cr + o.xin, dx + (size_t)t * H, dxin, grad + l.W_in);
        for (int i = 0; i < 2 * K; i++) {
            double nrm = w[l.g_in + i] * cr[o.xin_n + i];
            grad[l.v_in + i] += dxin[i] * nrm;
            dn[i] = dxin[i] * w[l.v_in + i];
        }
        rms_bwd(dn, 2 * K, w + l.g_in, cr + o.xin_n, cr + o.r_in, grad + l.g_in, NULL);
    }
    free(dfn), free(carry), free(dx), free(cache), free(st);
    return loss / ((double)T * K);
}

/* ---- init, schedule ---- */

static void rm_init(BirdieCtl *c, uint64_t seed) {
    Layout l = layout(c);
    int K = c->K, H = c->cfg.hidden, S = c->cfg.state;
    Rng r;
    rng_init(&r, rng_derive(seed, 0x5EED), 0);
    double *w = c->w;
    memset(w, 0, sizeof(double) * l.n);
    for (int i = 0; i < 2 * K; i++) w[l.g_in + i] = 1, w[l.v_in + i] = 0.1;
#define FILL(off, count, fan) for (size_t i = 0; i < (size_t)(count); i++) w[(off) + i] = (2 * rng_uniform(&r) - 1) / sqrt((double)(fan))
    FILL(l.W_in, (size_t)H * 2 * K, 2 * K);
    for (int li = 0; li < c->cfg.layers; li++) {
        for (int i = 0; i < H; i++) w[l.gam[li] + i] = 1;
        FILL(l.Wf[li], (size_t)S * H, H);
        FILL(l.Wu[li], (size_t)3 * S * H, H);
        FILL(l.Wo[li], (size_t)H * S, S * 4); /* small residual branches at the start */
    }
    for (int i = 0; i < H; i++) w[l.gam_out + i] = 1;
    FILL(l.W_head, (size_t)K * H, H * 4);
#undef FILL
}

int bctl_init(BirdieCtl *c, const BctlCfg *cfg, int K, const int *cls, const double *init_action, long total_steps,
              uint64_t seed) {
    memset(c, 0, sizeof *c);
    if (K < 1 || K > BCTL_MAX_ARMS) return eid_error("birdie controller: %d arms (1..%d)", K, BCTL_MAX_ARMS), -1;
    if (cfg->hidden < 2 || cfg->hidden % 2 || cfg->hidden > 1024 || cfg->state < 1 || cfg->state > 1024 ||
        cfg->layers < 1 || cfg->layers > BCTL_MAX_LAYERS || cfg->candidates < 1 || cfg->iters < 0 || cfg->top < 1)
        return eid_error("birdie controller: bad reward-model sizes (hidden even in [2, 1024], state [1, 1024], layers "
                         "[1, %d], candidates >= 1, top >= 1)", BCTL_MAX_LAYERS), -1;
    c->cfg = *cfg, c->K = K, c->total_steps = total_steps, c->seed = seed;
    int count[BCTL_MAX_ARMS] = {0};
    for (int k = 0; k < K; k++) {
        c->cls[k] = cls[k], count[cls[k]]++;
        if (cls[k] + 1 > c->n_classes) c->n_classes = cls[k] + 1;
    }
    for (int k = 0; k < K; k++) c->scale[k] = 1.0 / count[cls[k]], c->init_action[k] = c->action[k] = init_action[k];
    /* §5.1: 10, 50, 250, 500, 1000, 1500, 2000, then every 1000 to 32000; scaled by total/32000 [OURS] */
    static const long base[] = {10, 50, 250, 500, 1000, 1500, 2000};
    double f = total_steps / 32000.0;
    long prev = 0;
    for (int i = 0; i < 7 + 30; i++) {
        long s = i < 7 ? base[i] : 2000 + 1000L * (i - 6);
        long v = lround(s * f);
        if (v < 1) v = 1;
        if (v > prev && v <= total_steps && c->n_sched < BCTL_MAX_EVALS) c->sched[c->n_sched++] = v, prev = v;
    }
    c->uniform_until = lround(250 * f);
    Layout l = layout(c);
    c->n_w = l.n;
    c->w = eid_xmalloc(sizeof(double) * l.n), c->m = eid_xcalloc(l.n, sizeof(double)), c->v = eid_xcalloc(l.n, sizeof(double));
    rm_init(c, seed);
    return 0;
}

void bctl_free(BirdieCtl *c) {
    free(c->w), free(c->m), free(c->v);
    c->w = c->m = c->v = NULL;
}

int bctl_is_eval(const BirdieCtl *c, long step) {
    for (int i = 0; i < c->n_sched; i++)
        if (c->sched[i] == step) return 1;
    return 0;
}

/* ---- training the reward model (§5.3) ---- */

static int is_matrix(const Layout *l, const BirdieCtl *c, size_t i) {
    if (i >= l->W_in && i < l->W_in + (size_t)c->cfg.hidden * 2 * c->K) return 1;
    for (int li = 0; li < c->cfg.layers; li++)
        if (i >= l->Wf[li] && i < l->Wo[li] + (size_t)c->cfg.hidden * c->cfg.state) return 1;
    return i >= l->W_head && i < l->b_head;
}

static void rm_train(BirdieCtl *c, Rng *r) {
    int T = c->n_hist, K = c->K, iters = c->cfg.iters;
    Layout l = layout(c);
    double *X = eid_xmalloc(sizeof(double) * T * 2 * K), *Y = eid_xmalloc(sizeof(double) * T * K),
           *g = eid_xmalloc(sizeof(double) * c->n_w);
    uint8_t *mat = eid_xmalloc(c->n_w);
    for (size_t i = 0; i < c->n_w; i++) mat[i] = (uint8_t)is_matrix(&l, c, i);
    const double lr_lo = 5e-7, lr_hi = 5e-4, b1 = 0.9, b2 = 0.999, wd = 0.1;
    int rise = iters / 2 > 0 ? iters / 2 : 1;
    for (int it = 0; it < iters; it++) {
        for (int t = 0; t < T; t++) {
            for (int i = 0; i < 2 * K; i++) X[t * 2 * K + i] = c->hx[t][i] * (0.98 + 0.04 * rng_uniform(r));
            for (int k = 0; k < K; k++) Y[t * K + k] = c->hy[t][k] * (0.98 + 0.04 * rng_uniform(r));
        }
        c->rm_loss = bctl_loss_grad(c, X, Y, T, g);
        double nrm = 0;
        for (size_t i = 0; i < c->n_w; i++) nrm += g[i] * g[i];
        nrm = sqrt(nrm);
        double clip = nrm > 1.0 ? 1.0 / nrm : 1.0;
        double phase = it < rise ? (double)it / rise : (double)(iters - it) / (iters - rise);
        double lr = lr_lo + (lr_hi - lr_lo) * phase; /* one up-down cycle per evaluation */
        c->adam_t++;
        double bc1 = 1 - pow(b1, (double)c->adam_t), bc2 = 1 - pow(b2, (double)c->adam_t);
        for (size_t i = 0; i < c->n_w; i++) {
            double gi = g[i] * clip;
            c->m[i] = b1 * c->m[i] + (1 - b1) * gi;
            c->v[i] = b2 * c->v[i] + (1 - b2) * gi * gi;
            if (mat[i]) c->w[i] -= lr * wd * c->w[i];
            c->w[i] -= lr * (c->m[i] / bc1) / (sqrt(c->v[i] / bc2) + 1e-8);
        }
    }
    free(X), free(Y), free(g), free(mat);
}

/* ---- choosing an action (§5.4, §5.5) ---- */

double bctl_score(const BirdieCtl *c, const double *L, const double *a) {
    int K = c->K, T = c->n_hist;
    double *X = eid_xmalloc(sizeof(double) * (T + 1) * 2 * K), *pred = eid_xmalloc(sizeof(double) * (T + 1) * K);
    for (int t = 0; t < T; t++) memcpy(X + (size_t)t * 2 * K, c->hx[t], sizeof(double) * 2 * K);
    memcpy(X + (size_t)T * 2 * K, L, sizeof(double) * K), memcpy(X + (size_t)T * 2 * K + K, a, sizeof(double) * K);
    bctl_predict(c, X, T + 1, pred);
    double s = 0;
    for (int k = 0; k < K; k++) s += pred[(size_t)T * K + k] * c->scale[k]; /* the candidate's own row */
    free(X), free(pred);
    return s;
}

static void normalise(double *a, int K) {
    double s = 0;
    for (int k = 0; k < K; k++) s += a[k];
    for (int k = 0; k < K; k++) a[k] = s > 0 ? a[k] / s : 1.0 / K;
}

/* §5.4: the history is run once; each candidate is one more row from that state */
static void greedy(BirdieCtl *c, const double *L, Rng *r) {
    int K = c->K, N = 2 * c->cfg.candidates, top = c->cfg.top < N ? c->cfg.top : N;
    Layout l = layout(c);
    RowOff o;
    RmState *st = eid_xmalloc(sizeof *st), *cs = eid_xmalloc(sizeof *cs);
    double *X = eid_xmalloc(sizeof(double) * (c->n_hist + 1) * 2 * K);
    for (int t = 0; t < c->n_hist; t++) memcpy(X + (size_t)t * 2 * K, c->hx[t], sizeof(double) * 2 * K);
    double *cache = forward_seq(c, X, c->n_hist, st, &o);
    double *cand = eid_xmalloc(sizeof(double) * (size_t)N * K), *score = eid_xmalloc(sizeof(double) * N);
    double *row = eid_xmalloc(sizeof(double) * o.total), in[2 * BCTL_MAX_ARMS];
    for (int j = 0; j < c->cfg.candidates; j++) {
        double *a = cand + (size_t)j * K, *s4 = cand + (size_t)(j + c->cfg.candidates) * K;
        for (int k = 0; k < K; k++) a[k] = rng_uniform(r);
        normalise(a, K);
        for (int k = 0; k < K; k++) s4[k] = a[k] * a[k] * a[k] * a[k]; /* sharpened copy, renormalised [OURS] */
        normalise(s4, K);
    }
    memcpy(in, L, sizeof(double) * K);
    for (int j = 0; j < N; j++) {
        memcpy(in + K, cand + (size_t)j * K, sizeof(double) * K);
        memcpy(cs, st, sizeof *cs);
        rm_row(c, &l, &o, in, row, cs);
        double s = 0;
        for (int k = 0; k < K; k++) s += row[o.pred + k] * c->scale[k];
        score[j] = s;
    }
    /* mean of the `top` best (ties: lower index first) */
    double *acc = c->action;
    memset(acc, 0, sizeof(double) * K);
    uint8_t *used = eid_xcalloc(N, 1);
    for (int q = 0; q < top; q++) {
        int best = -1;
        for (int j = 0; j < N; j++)
            if (!used[j] && (best < 0 || score[j] > score[best])) best = j;
        used[best] = 1;
        for (int k = 0; k < K; k++) acc[k] += cand[(size_t)best * K + k] / top;
    }
    normalise(acc, K);
    free(used), free(st), free(cs), free(X), free(cache), free(cand), free(score), free(row);
}

/* §5.5: one or two distinct classes get random weights inside the class; the rest a small
 * loss-proportional weight; every entry times its loss; normalised */
static void explore(BirdieCtl *c, const double *L, Rng *r) {
    int K = c->K, nc = c->n_classes, n = nc >= 2 && rng_uniform(r) < 0.5 ? 2 : 1;
    int pick[2] = {(int)rng_below(r, (uint64_t)nc), -1};
    if (n == 2) {
        pick[1] = (int)rng_below(r, (uint64_t)(nc - 1));
        if (pick[1] >= pick[0]) pick[1]++;
    }
    double sp = 0.01 * n * K / (double)(K - n > 0 ? K - n : 1), csum[BCTL_MAX_ARMS] = {0};
    double *a = c->action;
    for (int k = 0; k < K; k++) {
        int in = c->cls[k] == pick[0] || c->cls[k] == pick[1];
        a[k] = in ? rng_uniform(r) : -1;
        if (in) csum[c->cls[k]] += a[k];
    }
    for (int k = 0; k < K; k++) {
        if (a[k] >= 0) a[k] = csum[c->cls[k]] > 0 ? a[k] / csum[c->cls[k]] : 0;
        else a[k] = L[k] * sp * c->scale[k]; /* L_k · s' / N_class(k) */
        a[k] *= L[k];
    }
    normalise(a, K);
}

int bctl_update(BirdieCtl *c, long step, const double *L) {
    int K = c->K;
    Rng r;
    rng_init(&r, rng_derive(rng_derive(c->seed, 0xC0DE), (uint64_t)c->n_evals), 0);
    for (int k = 0; k < K; k++)
        if (!(L[k] > 0) || !isfinite(L[k]))
            return eid_error("birdie controller: validation loss of arm %d is %g at step %ld", k, L[k], step), -1;
    if (c->n_evals++ == 0) {
        memcpy(c->L_old, L, sizeof(double) * K);
        memcpy(c->action, c->init_action, sizeof(double) * K);
        c->last_mode = BCTL_INIT;
        return 0;
    }
    for (int k = 0; k < K; k++) c->reward[k] = bctl_reward(c->L_old[k], L[k]);
    if (c->n_hist == BCTL_MAX_HIST) { /* keep the most recent rows */
        memmove(c->hx[0], c->hx[1], sizeof c->hx[0] * (BCTL_MAX_HIST - 1));
        memmove(c->hy[0], c->hy[1], sizeof c->hy[0] * (BCTL_MAX_HIST - 1));
        c->n_hist--;
    }
    memcpy(c->hx[c->n_hist], c->L_old, sizeof(double) * K);
    memcpy(c->hx[c->n_hist] + K, c->action, sizeof(double) * K);
    memcpy(c->hy[c->n_hist], c->reward, sizeof(double) * K);
    c->n_hist++;
    rm_train(c, &r);
    double x = c->total_steps > 0 ? (double)step / c->total_steps : 1;
    if (step < c->uniform_until) memcpy(c->action, c->init_action, sizeof(double) * K), c->last_mode = BCTL_UNIFORM;
    else if (rng_uniform(&r) < bctl_explore_prob(x)) explore(c, L, &r), c->last_mode = BCTL_EXPLORE;
    else greedy(c, L, &r), c->last_mode = BCTL_GREEDY;
    memcpy(c->L_old, L, sizeof(double) * K);
    return 0;
}

/* ---- state ---- */

#define BCTL_MAGIC "EIDBCTL1"

typedef struct {
    char magic[8];
    int32_t K, hidden, state, layers, n_evals, n_hist, last_mode, pad;
    int64_t n_w, adam_t;
} BctlHeader;

int bctl_save(const BirdieCtl *c, const char *path) {
    BctlHeader h = {{0}, c->K, c->cfg.hidden, c->cfg.state, c->cfg.layers, c->n_evals, c->n_hist, c->last_mode, 0,
                    (int64_t)c->n_w, c->adam_t};
    memcpy(h.magic, BCTL_MAGIC, 8);
    size_t K = (size_t)c->K;
    const void *parts[] = {&h, c->L_old, c->action, c->reward, c->hx, c->hy, c->w, c->m, c->v, &c->rm_loss};
    size_t sizes[] = {sizeof h, K * 8, K * 8, K * 8, sizeof c->hx, sizeof c->hy, c->n_w * 8, c->n_w * 8, c->n_w * 8, 8};
    return eid_write_parts_atomic(path, parts, sizes, 10);
}

int bctl_load(BirdieCtl *c, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return eid_error("%s: cannot open the Birdie controller state", path), -1;
    BctlHeader h;
    size_t K = (size_t)c->K;
    int ok = fread(&h, sizeof h, 1, f) == 1 && !memcmp(h.magic, BCTL_MAGIC, 8);
    if (ok && (h.K != c->K || h.hidden != c->cfg.hidden || h.state != c->cfg.state || h.layers != c->cfg.layers ||
               h.n_w != (int64_t)c->n_w || h.n_hist < 0 || h.n_hist > BCTL_MAX_HIST || h.n_evals < 0 || h.adam_t < 0)) {
        fclose(f);
        return eid_error("%s: Birdie controller state for %d arms / reward model %dx%dx%d, expected %d arms / %dx%dx%d",
                         path, h.K, h.hidden, h.state, h.layers, c->K, c->cfg.hidden, c->cfg.state, c->cfg.layers), -1;
    }
    double *tmp[3] = {c->L_old, c->action, c->reward};
    for (int i = 0; i < 3 && ok; i++) ok = fread(tmp[i], 8, K, f) == K;
    ok = ok && fread(c->hx, sizeof c->hx, 1, f) == 1 && fread(c->hy, sizeof c->hy, 1, f) == 1 &&
         fread(c->w, 8, c->n_w, f) == c->n_w && fread(c->m, 8, c->n_w, f) == c->n_w &&
         fread(c->v, 8, c->n_w, f) == c->n_w && fread(&c->rm_loss, 8, 1, f) == 1 && fgetc(f) == EOF;
    fclose(f);
    if (!ok) return eid_error("%s: not a complete Birdie controller state (magic %s, sizes from its header)", path, BCTL_MAGIC), -1;
    int bad = 0;
    for (size_t i = 0; i < K; i++) bad |= !(c->action[i] >= 0) || !isfinite(c->action[i]) || !isfinite(c->L_old[i]) || !isfinite(c->reward[i]);
    for (size_t i = 0; i < c->n_w; i++) bad |= !isfinite(c->w[i]) || !isfinite(c->m[i]) || !(c->v[i] >= 0) || !isfinite(c->v[i]);
    for (int t = 0; t < h.n_hist; t++)
        for (size_t i = 0; i < K; i++) bad |= !isfinite(c->hx[t][i]) || !isfinite(c->hx[t][K + i]) || !isfinite(c->hy[t][i]);
    if (bad || h.n_evals < h.n_hist || h.last_mode < 0 || h.last_mode > BCTL_GREEDY)
        return eid_error("%s: Birdie controller state holds non-finite or out-of-range values (refusing a corrupt state)", path), -1;
    c->n_evals = h.n_evals, c->n_hist = h.n_hist, c->last_mode = h.last_mode, c->adam_t = h.adam_t;
    return 0;
}

int bctl_log_json(const BirdieCtl *c, char *buf, size_t n) {
    static const char *modes[] = {"init", "uniform", "explore", "greedy"};
    double mix[BCTL_MAX_ARMS] = {0}, rew[BCTL_MAX_ARMS] = {0}, total = 0;
    int cnt[BCTL_MAX_ARMS] = {0};
    for (int k = 0; k < c->K; k++) mix[c->cls[k]] += c->action[k], rew[c->cls[k]] += c->reward[k], cnt[c->cls[k]]++;
    size_t q = (size_t)snprintf(buf, n, "\"birdie_eval\":%d,\"birdie_mode\":\"%s\",\"birdie_class_mix\":[", c->n_evals,
                                modes[c->last_mode]);
    for (int j = 0; j < c->n_classes && q < n; j++) q += (size_t)snprintf(buf + q, n - q, "%s%.5f", j ? "," : "", mix[j]);
    if (q < n) q += (size_t)snprintf(buf + q, n - q, "],\"birdie_class_reward\":[");
    for (int j = 0; j < c->n_classes && q < n; j++) {
        double m = cnt[j] ? rew[j] / cnt[j] : 0;
        total += m;
        q += (size_t)snprintf(buf + q, n - q, "%s%.5f", j ? "," : "", m);
    }
    if (q < n) q += (size_t)snprintf(buf + q, n - q, "],\"birdie_total_reward\":%.5f,\"birdie_rm_loss\":%.6g,\"birdie_mix\":[", total, c->rm_loss);
    for (int k = 0; k < c->K && q < n; k++) q += (size_t)snprintf(buf + q, n - q, "%s%.4g", k ? "," : "", c->action[k]);
    if (q < n) q += (size_t)snprintf(buf + q, n - q, "]");
    if (q >= n) return eid_error("bctl_log_json: buffer too small"), -1;
    return 0;
}
