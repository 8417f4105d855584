"""Mamba-2 (SSD) mixer plugin for tests/ref/ref_model.py — docs/layers.md §3.

Leaves (§0.2, §3.1), as Hugging Face Mamba2ForCausalLM: in_proj.weight [2I+2GN+H, D] rows
[z (I) ; x (I) ; B (G·N) ; C (G·N) ; dt (H)], conv1d.weight [I+2GN,1,K] and conv1d.bias [I+2GN]
over the channels [x ; B ; C], dt_bias [H], A_log [H], D [H], norm.weight [I], out_proj.weight [D,I].
Sizes: I = expand·D, P = headdim, H = I/P, G = ngroups, N = d_state, K = d_conv.
Defaults as the engine resolves them: expand 2, d_state 16, d_conv 4, ngroups 1, headdim 16 when it
divides I, else the largest divisor of I below 16.
"""
import math

import torch

from ref_model import F64, InputError, causal_conv, silu


def sizes(lc, D):
    try:
        E = int(lc.get("expand") or 2)
        I = E * D
        P = int(lc.get("headdim") or 0)
        if P == 0:
            P = min(16, I)
            while I % P:
                P -= 1
        s = dict(I=I, P=P, G=int(lc.get("ngroups") or 1), N=int(lc.get("d_state") or 16),
                 K=int(lc.get("d_conv") or 4))
    except (TypeError, ValueError) as e:
        raise InputError(f"mamba2 layer config: bad size field: {e}")
    if min(E, *s.values()) < 1 or I % P or (I // P) % s["G"]:
        raise InputError(f"mamba2 layer config: need positive sizes, headdim | d_inner, "
                         f"ngroups | heads; got {lc}")
    s["H"] = I // P
    return s


def softplus(x):
    """§0.1: x if x > 20 else log(1 + e^x)."""
    return torch.where(x > 20, x, torch.log1p(torch.exp(torch.clamp(x, max=20))))


def ssd_recurrent(x, Bm, Cm, delta, a, Dp, P, G):
    """§3.2 recurrence, one token at a time.  x [T,I]; Bm, Cm [T,G,N]; delta [T,H]; a, Dp [H]."""
    T, I = x.shape
    H, N = I // P, Bm.shape[2]
    S = torch.zeros(H, P, N, dtype=F64)
    ys = []
    for t in range(T):
        y = torch.empty(I, dtype=F64)
        for h in range(H):
            g = h * G // H                                             # head h uses group ⌊h·G/H⌋
            xh = x[t, h * P:(h + 1) * P]
            S[h] = torch.exp(delta[t, h] * a[h]) * S[h] + delta[t, h] * torch.outer(xh, Bm[t, g])
            y[h * P:(h + 1) * P] = S[h] @ Cm[t, g] + Dp[h] * xh
        ys.append(y)
    return torch.stack(ys)


def forward(W, m, lc, D, x, ssd=ssd_recurrent):
    """§3.2: x [T,D] (the normed residual stream, one sequence) -> mixer output [T,D]."""
    s = sizes(lc, D)
    I, P, H, G, N = s["I"], s["P"], s["H"], s["G"], s["N"]
    T = x.shape[0]
    zxbcdt = x @ W[m + "in_proj.weight"].T
    z, xBC, dt = zxbcdt[:, :I], zxbcdt[:, I:2 * I + 2 * G * N], zxbcdt[:, 2 * I + 2 * G * N:]
    xBC = silu(causal_conv(xBC, W[m + "conv1d.weight"], W[m + "conv1d.bias"]))   # §0.5
    xs, Bm, Cm = xBC[:, :I], xBC[:, I:I + G * N].reshape(T, G, N), xBC[:, I + G * N:].reshape(T, G, N)
    delta = softplus(dt + W[m + "dt_bias"])
    a = -torch.exp(W[m + "A_log"])
    y = ssd(xs, Bm, Cm, delta, a, W[m + "D"], P, G)
    y = y * silu(z)                                                    # gate first ...
    yg = y.reshape(T, G, I // G)                                       # ... then grouped RMSNorm
    y = (yg / torch.sqrt((yg * yg).mean(-1, keepdim=True) + 1e-5)).reshape(T, I) * W[m + "norm.weight"]
    return y @ W[m + "out_proj.weight"].T


def forward_bidir(W, m, lc, D, x, P):
    """§8 (docs/layers.md): heads [H/2, H) (columns from rev_from·P) run right to left over the prompt."""
    from ref_model import bidir_scan, rev_from
    s = sizes(lc, D)
    rf = rev_from(lc, s["H"]) * s["P"]
    return forward(W, m, lc, D, x, ssd=bidir_scan(ssd_recurrent, P, rf, (1, 1, 1, 1, 0, 0, 0, 0)))


def make_params(lc, D, gen):
    """Random test parameters (not the §3.1 init: Δ larger, so that the state and its decay matter).
    Fills the resolved sizes into lc."""
    s = sizes(lc, D)
    I, P, H, G, N, K = s["I"], s["P"], s["H"], s["G"], s["N"], s["K"]
    lc.update(expand=I // D, headdim=P, ngroups=G, d_state=N, d_conv=K)
    rn = lambda *shape: torch.randn(*shape, generator=gen, dtype=F64)
    ru = lambda *shape: torch.rand(*shape, generator=gen, dtype=F64)
    mat = lambda o, i: rn(o, i) / math.sqrt(i)
    CD = I + 2 * G * N
    return {"in_proj.weight": mat(2 * I + 2 * G * N + H, D),
            "conv1d.weight": rn(CD, 1, K) / math.sqrt(K), "conv1d.bias": 0.2 * rn(CD),
            "dt_bias": 3 * ru(H) - 2.5,                                 # Δ ≈ softplus(−2.5…0.5 + dt)
            "A_log": torch.log(1 + 15 * ru(H)),                          # a ∈ [−16, −1]
            "D": 1 + 0.3 * rn(H), "norm.weight": 1 + 0.2 * rn(I), "out_proj.weight": mat(D, I)}


# ----------------------------------------------------------------------------------------------
# selftest: the recurrence against the quadratic (attention-like) SSD form and torch's own ops
# ----------------------------------------------------------------------------------------------
def ssd_quadratic(x, Bm, Cm, delta, a, Dp, P, G):
    """y_t = Σ_{s≤t} exp(Σ_{s<r≤t} Δ_r a) (C_t·B_s) Δ_s x_s + D x_t, per head (the SSD 'dual' form)."""
    T, I = x.shape
    H = I // P
    cs = torch.cumsum(delta * a, 0)                                    # [T,H]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    out = torch.empty(T, I, dtype=F64)
    for h in range(H):
        g = h * G // H
        Lm = torch.where(mask, torch.exp((cs[:, None, h] - cs[None, :, h]).masked_fill(~mask, 0)),
                         torch.zeros((), dtype=F64))
        M = (Cm[:, g] @ Bm[:, g].T) * Lm * delta[None, :, h]
        xh = x[:, h * P:(h + 1) * P]
        out[:, h * P:(h + 1) * P] = M @ xh + Dp[h] * xh
    return out


def forward_torch_ops(W, m, lc, D, x):
    """The mixer with torch's conv1d / softplus / silu / group norm maths and the quadratic form."""
    F = torch.nn.functional
    s = sizes(lc, D)
    I, P, G, N, K = s["I"], s["P"], s["G"], s["N"], s["K"]
    T = x.shape[0]
    zxbcdt = F.linear(x, W[m + "in_proj.weight"])
    z, xBC, dt = torch.split(zxbcdt, [I, I + 2 * G * N, s["H"]], dim=-1)
    CD = xBC.shape[1]
    xBC = F.silu(F.conv1d(xBC.T[None], W[m + "conv1d.weight"], W[m + "conv1d.bias"], padding=K - 1,
                          groups=CD)[0, :, :T].T)
    xs, Bm, Cm = torch.split(xBC, [I, G * N, G * N], dim=-1)
    y = ssd_quadratic(xs, Bm.reshape(T, G, N), Cm.reshape(T, G, N), F.softplus(dt + W[m + "dt_bias"]),
                      -torch.exp(W[m + "A_log"]), W[m + "D"], P, G)
    y = y * F.silu(z)
    n = I // G
    y = torch.cat([c / torch.sqrt(torch.linalg.vector_norm(c, dim=-1, keepdim=True) ** 2 / n + 1e-5)
                   for c in y.split(n, dim=-1)], -1)
    return F.linear(y * W[m + "norm.weight"], W[m + "out_proj.weight"])


def selftest():
    g = torch.Generator().manual_seed(2468)
    rn = lambda *s: torch.randn(*s, generator=g, dtype=F64)
    rel = lambda a, b: ((a - b).abs().max() / b.abs().max()).item()
    out = []

    def check(name, err, tol):
        out.append((name, err <= tol, f"rel err {err:.3e} (tol {tol:g})"))

    T, P, G, N = 10, 3, 2, 4
    H = 4
    x, Bm, Cm = rn(T, H * P), rn(T, G, N), rn(T, G, N)
    delta, a, Dp = softplus(rn(T, H)), -torch.exp(rn(H)), rn(H)
    check("SSD recurrence == quadratic (dual) form",
          rel(ssd_recurrent(x, Bm, Cm, delta, a, Dp, P, G), ssd_quadratic(x, Bm, Cm, delta, a, Dp, P, G)), 1e-12)

    D, lc = 8, {"d_state": 4, "d_conv": 3, "headdim": 4, "ngroups": 2}
    W = {"m." + n: t for n, t in make_params(lc, D, g).items()}
    xin = rn(11, D)
    full = forward(W, "m.", lc, D, xin)
    check("mixer == mixer with torch conv1d/softplus/silu/vector_norm and the quadratic form",
          rel(forward_torch_ops(W, "m.", lc, D, xin), full), 1e-12)
    diff = rel(forward(W, "m.", lc, D, xin, ssd=lambda x, B, C, dl, a, Dp, P, G: Dp.repeat_interleave(P) * x), full)
    out.append(("recurrent state contributes", diff > 1e-2, f"rel change {diff:.3e} when S := 0"))
    return out
