"""Mamba-1 (S6) mixer plugin for tests/ref/ref_model.py — docs/layers.md §1.

Leaves (§0.2, §1.1), as Hugging Face MambaForCausalLM: in_proj.weight [2I,D] rows [x ; z],
conv1d.weight [I,1,K], conv1d.bias [I], x_proj.weight [R+2N,I] rows [dt_low ; B ; C],
dt_proj.weight [I,R], dt_proj.bias [I], A_log [I,N], D [I], out_proj.weight [D,I].
Sizes: I = expand*D, N = d_state, K = d_conv, R = dt_rank (defaults §1.5).
"""
import math

import torch

from ref_model import F64, InputError, bidir_scan, causal_conv, rev_from, silu


def sizes(lc, D):
    """§1.5 defaults for absent (or 0) fields, as the engine resolves them."""
    try:
        E = int(lc.get("expand") or 2)
        s = dict(I=E * D, N=int(lc.get("d_state") or 16), K=int(lc.get("d_conv") or 4),
                 R=int(lc.get("dt_rank") or math.ceil(D / 16)))
    except (TypeError, ValueError) as e:
        raise InputError(f"mamba layer config: bad size field: {e}")
    if min(E, *s.values()) < 1:
        raise InputError(f"mamba layer config: sizes must be positive, got {lc}")
    return s


def softplus(x):
    """§0.1: x if x > 20 else log(1 + e^x)."""
    return torch.where(x > 20, x, torch.log1p(torch.exp(torch.clamp(x, max=20))))


# ----------------------------------------------------------------------------------------------
# §1.2 scan and the mixer
# ----------------------------------------------------------------------------------------------
def mamba_scan(u, delta, A, Bm, Cm, Dp):
    """§1.2 recurrence, one token at a time.  u, delta [T,I]; A [I,N]; Bm, Cm [T,N]; Dp [I]."""
    T, I = u.shape
    h = torch.zeros(I, A.shape[1], dtype=F64)                      # h_{-1} = 0
    ys = []
    for t in range(T):
        dA = torch.exp(delta[t][:, None] * A)                      # exp(Δ_t[d] A[d,n])
        h = dA * h + (delta[t] * u[t])[:, None] * Bm[t][None, :]   # + Δ_t[d] B_t[n] u_t[d]
        ys.append(h @ Cm[t] + Dp * u[t])                           # y_t[d] = Σ_n h C + D u
    return torch.stack(ys)


def forward(W, m, lc, D, x, scan=mamba_scan):
    """§1.2: x [T,D] (the normed residual stream, one sequence) -> mixer output [T,D]."""
    s = sizes(lc, D)
    I, N, R = s["I"], s["N"], s["R"]
    xz = x @ W[m + "in_proj.weight"].T                              # [x ; z] = W_in h
    xi, z = xz[:, :I], xz[:, I:]
    u = silu(causal_conv(xi, W[m + "conv1d.weight"], W[m + "conv1d.bias"]))   # §0.5
    rbc = u @ W[m + "x_proj.weight"].T                              # [r ; B ; C] = W_x u
    r, Bm, Cm = rbc[:, :R], rbc[:, R:R + N], rbc[:, R + N:]
    delta = softplus(r @ W[m + "dt_proj.weight"].T + W[m + "dt_proj.bias"])
    A = -torch.exp(W[m + "A_log"])
    y = scan(u, delta, A, Bm, Cm, W[m + "D"])
    return (y * silu(z)) @ W[m + "out_proj.weight"].T               # out = W_out (y * silu(z))


def forward_bidir(W, m, lc, D, x, P):
    """§8 (docs/layers.md): channels [I/2, I) of the scan run right to left over the prompt [0, P)."""
    I = sizes(lc, D)["I"]
    return forward(W, m, lc, D, x, scan=bidir_scan(mamba_scan, P, rev_from(lc, I), (1, 1, 0, 1, 1, 0)))


def make_params(lc, D, gen):
    """Random test parameters (not the §1.1 init: Δ larger, so that the state matters).  Fills the
    resolved sizes into lc."""
    s = sizes(lc, D)
    I, N, K, R = s["I"], s["N"], s["K"], s["R"]
    lc.update(expand=I // D, d_state=N, d_conv=K, dt_rank=R)
    rn = lambda *shape: torch.randn(*shape, generator=gen, dtype=F64)
    ru = lambda *shape: torch.rand(*shape, generator=gen, dtype=F64)
    mat = lambda o, i: rn(o, i) / math.sqrt(i)                      # ~unit outputs
    A_log = torch.log(torch.arange(1, N + 1, dtype=F64)).repeat(I, 1) + 0.3 * (2 * ru(I, N) - 1)
    return {"in_proj.weight": mat(2 * I, D),
            "conv1d.weight": rn(I, 1, K) / math.sqrt(K), "conv1d.bias": 0.2 * rn(I),
            "x_proj.weight": mat(R + 2 * N, I), "dt_proj.weight": mat(I, R),
            "dt_proj.bias": 3 * ru(I) - 2.5,                          # Δ ≈ softplus(−2.5…0.5) ≈ 0.08…0.97
            "A_log": A_log, "D": 1 + 0.3 * rn(I), "out_proj.weight": mat(D, I)}


# ----------------------------------------------------------------------------------------------
# selftest: the scan and the mixer checked against second formulations
# ----------------------------------------------------------------------------------------------
def scan_closed_form(u, delta, A, Bm, Cm, Dp):
    """§1.2 unrolled: h_t = Σ_{s≤t} exp(A·Σ_{s<r≤t} Δ_r) ⊙ Δ_s u_s B_s, via cumulative sums of Δ."""
    T = u.shape[0]
    cs = torch.cumsum(delta, 0)                                      # [T,I]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))            # s <= t
    gap = (cs[:, None, :] - cs[None, :, :]) * mask[:, :, None]       # [t,s,I] Σ_{s<r≤t} Δ_r
    dec = torch.exp(gap[..., None] * A) * mask[:, :, None, None]     # [t,s,I,N]
    b = (delta * u)[:, :, None] * Bm[:, None, :]                     # [s,I,N]
    h = torch.einsum("tsin,sin->tin", dec, b)
    return torch.einsum("tin,tn->ti", h, Cm) + Dp * u


def forward_torch_ops(W, m, lc, D, x):
    """The mixer with torch's own conv1d / softplus / silu and the closed-form scan."""
    F = torch.nn.functional
    s = sizes(lc, D)
    I, N, R, K = s["I"], s["N"], s["R"], s["K"]
    xz = F.linear(x, W[m + "in_proj.weight"])
    xi, z = xz[:, :I], xz[:, I:]
    T = x.shape[0]
    c = F.conv1d(xi.T[None], W[m + "conv1d.weight"], W[m + "conv1d.bias"], padding=K - 1, groups=I)[0, :, :T].T
    u = F.silu(c)
    rbc = F.linear(u, W[m + "x_proj.weight"])
    r, Bm, Cm = rbc[:, :R], rbc[:, R:R + N], rbc[:, R + N:]
    delta = F.softplus(F.linear(r, W[m + "dt_proj.weight"], W[m + "dt_proj.bias"]))
    y = scan_closed_form(u, delta, -torch.exp(W[m + "A_log"]), Bm, Cm, W[m + "D"])
    return F.linear(y * F.silu(z), W[m + "out_proj.weight"])


def selftest():
    g = torch.Generator().manual_seed(4321)
    rn = lambda *s: torch.randn(*s, generator=g, dtype=F64)
    rel = lambda a, b: ((a - b).abs().max() / b.abs().max()).item()
    out = []

    def check(name, err, tol):
        out.append((name, err <= tol, f"rel err {err:.3e} (tol {tol:g})"))

    T, I, N = 9, 6, 5
    u, Bm, Cm, Dp = rn(T, I), rn(T, N), rn(T, N), rn(I)
    delta = softplus(rn(T, I))
    A = -torch.exp(0.5 * rn(I, N))
    check("scan loop == cumulative-sum closed form",
          rel(mamba_scan(u, delta, A, Bm, Cm, Dp), scan_closed_form(u, delta, A, Bm, Cm, Dp)), 1e-12)

    D, lc = 8, {"d_state": 4, "d_conv": 3, "dt_rank": 2}
    W = {"m." + n: t for n, t in make_params(lc, D, g).items()}
    x = rn(11, D)
    full = forward(W, "m.", lc, D, x)
    check("mixer == mixer with torch conv1d/softplus/silu and closed-form scan",
          rel(forward_torch_ops(W, "m.", lc, D, x), full), 1e-12)
    diff = rel(forward(W, "m.", lc, D, x, scan=lambda u, dl, A, B, C, Dp: Dp * u), full)
    out.append(("recurrent state contributes", diff > 1e-2, f"rel change {diff:.3e} when h := 0"))
    return out
