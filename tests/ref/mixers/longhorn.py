"""Longhorn mixer plugin for tests/ref/ref_model.py — docs/layers.md §2 (diagonal form, §2.2).

Leaves (§0.2, §2.1): in_proj.weight [2I,D], conv1d.weight [I,1,K], conv1d.bias [I],
x_proj.weight [R+2N,I] rows [dt_low ; k ; q], dt_proj.weight [I,R], dt_proj.bias [I], D [I],
out_proj.weight [D,I].  Sizes: I = expand*D, N = d_state, K = d_conv, R = dt_rank.
"""
import math

import torch

from ref_model import F64, InputError, bidir_scan, causal_conv, rev_from, silu


def sizes(lc, D):
    """§2.6 defaults for absent (or 0) fields, as the engine resolves them."""
    if lc.get("form", "diagonal") != "diagonal":
        raise InputError(f"unsupported longhorn form {lc.get('form')!r} (only diagonal, §2.2)")
    try:
        E = int(lc.get("expand") or 2)
        s = dict(I=E * D, N=int(lc.get("d_state") or 16), K=int(lc.get("d_conv") or 4),
                 R=int(lc.get("dt_rank") or math.ceil(D / 16)))
    except (TypeError, ValueError) as e:
        raise InputError(f"longhorn layer config: bad size field: {e}")
    if min(E, *s.values()) < 1:
        raise InputError(f"longhorn layer config: sizes must be positive, got {lc}")
    return s


# ----------------------------------------------------------------------------------------------
# §2.2 scan and the mixer
# ----------------------------------------------------------------------------------------------
def longhorn_scan(u, k, q, beta, Dp):
    """§2.2 diagonal recurrence, step by step.  u,beta [T,I]; k,q [T,N]; Dp [I] -> y [T,I]."""
    T, I = u.shape
    S = torch.zeros(I, k.shape[1], dtype=F64)                       # S_{-1} = 0
    ys = []
    for t in range(T):
        K2 = (k[t] ** 2).sum()                                      # K2_t = sum_n k_t[n]^2
        eps = beta[t] / (1 + beta[t] * K2)                          # eps_t[i]
        A = 1 - eps[:, None] * k[t][None, :] ** 2                   # A_t[i,n]
        S = A * S + (eps * u[t])[:, None] * k[t][None, :]           # S_t
        ys.append(S @ q[t] + Dp * u[t])                             # y_t
    return torch.stack(ys)


def forward(W, m, lc, D, h, scan=longhorn_scan):
    """§2.2: h [T,D] (the normed residual stream) -> mixer output [T,D]."""
    s = sizes(lc, D)
    I, N, R = s["I"], s["N"], s["R"]
    xz = h @ W[m + "in_proj.weight"].T                              # [x ; z] = W_in h
    x, z = xz[:, :I], xz[:, I:]
    u = silu(causal_conv(x, W[m + "conv1d.weight"], W[m + "conv1d.bias"]))   # §0.5
    rkq = u @ W[m + "x_proj.weight"].T                              # [r ; k ; q] = W_x u
    r, k, q = rkq[:, :R], rkq[:, R:R + N], rkq[:, R + N:]
    beta = torch.sigmoid(r @ W[m + "dt_proj.weight"].T + W[m + "dt_proj.bias"])
    y = scan(u, k, q, beta, W[m + "D"])
    return (y * silu(z)) @ W[m + "out_proj.weight"].T               # out = W_out (y * silu(z))


def forward_bidir(W, m, lc, D, h, P):
    """§8 (docs/layers.md): channels [I/2, I) of the scan run right to left over the prompt [0, P)."""
    I = sizes(lc, D)["I"]
    return forward(W, m, lc, D, h, scan=bidir_scan(longhorn_scan, P, rev_from(lc, I), (1, 1, 1, 1, 0)))


def make_params(lc, D, gen):
    """Random test parameters (not the §2.1 init: larger, so the state matters).  Fills the
    resolved sizes into lc."""
    s = sizes(lc, D)
    I, N, K, R = s["I"], s["N"], s["K"], s["R"]
    lc.update(expand=I // D, d_state=N, d_conv=K, dt_rank=R)
    rn = lambda *shape: torch.randn(*shape, generator=gen, dtype=F64)
    mat = lambda o, i: rn(o, i) / math.sqrt(i)                      # ~unit outputs
    return {"in_proj.weight": mat(2 * I, D),
            "conv1d.weight": rn(I, 1, K) / math.sqrt(K), "conv1d.bias": 0.2 * rn(I),
            "x_proj.weight": mat(R + 2 * N, I), "dt_proj.weight": mat(I, R),
            "dt_proj.bias": 4 * torch.rand(I, generator=gen, dtype=F64) - 2,  # beta spread ~0.12-0.88
            "D": 1 + 0.3 * rn(I), "out_proj.weight": mat(D, I)}


# ----------------------------------------------------------------------------------------------
# selftest: the scan checked against second formulations
# ----------------------------------------------------------------------------------------------
def scan_closed_form(u, k, q, beta, Dp):
    """§2.2 unrolled: S_t = sum_{s<=t} (prod_{s<r<=t} A_r) * b_s, via log-space cumulative sums."""
    K2 = (k ** 2).sum(-1, keepdim=True)                              # [T,1]
    eps = beta / (1 + beta * K2)                                     # [T,I]
    A = 1 - eps[:, :, None] * k[:, None, :] ** 2                     # [T,I,N], all > 0
    b = (eps * u)[:, :, None] * k[:, None, :]                        # [T,I,N]
    Lc = torch.cumsum(torch.log(A), 0)                               # [T,I,N]
    T = u.shape[0]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))            # s <= t
    dec = torch.exp(Lc[:, None] - Lc[None, :]) * mask[:, :, None, None]  # [t,s,I,N]
    S = torch.einsum("tsin,sin->tin", dec, b)
    return torch.einsum("tin,tn->ti", S, q) + Dp * u


def scan_argmin(u, k, q, beta, Dp):
    """§2 objective solved directly: S_t[i,:] = argmin |S-S_{t-1}|^2 + beta_i (S k - u_i)^2
    = (S_{t-1}[i,:] + beta_i u_i k^T)(I + beta_i k k^T)^{-1}.  Equals §2.2 only when N = 1."""
    T, I = u.shape
    N = k.shape[1]
    S = torch.zeros(I, N, dtype=F64)
    ys = []
    for t in range(T):
        kk = k[t][:, None] @ k[t][None, :]
        S = torch.stack([torch.linalg.solve(torch.eye(N, dtype=F64) + beta[t, i] * kk,
                                            S[i] + beta[t, i] * u[t, i] * k[t]) for i in range(I)])
        ys.append(S @ q[t] + Dp * u[t])
    return torch.stack(ys)


def selftest():
    g = torch.Generator().manual_seed(1234)
    rn = lambda *s: torch.randn(*s, generator=g, dtype=F64)
    rel = lambda a, b: ((a - b).abs().max() / b.abs().max()).item()
    out = []

    def check(name, err, tol):
        out.append((name, err <= tol, f"rel err {err:.3e} (tol {tol:g})"))

    T, I, N = 9, 6, 5
    u, k, q, Dp = rn(T, I), rn(T, N), rn(T, N), rn(I)
    beta = torch.sigmoid(2 * rn(T, I))
    check("scan loop == cumulative-product closed form",
          rel(longhorn_scan(u, k, q, beta, Dp), scan_closed_form(u, k, q, beta, Dp)), 1e-12)
    k1, q1 = rn(T, 1), rn(T, 1)
    check("scan loop (N=1) == direct argmin of the online-regression objective",
          rel(longhorn_scan(u, k1, q1, beta, Dp), scan_argmin(u, k1, q1, beta, Dp)), 1e-12)

    # whole mixer on random parameters: closed-form scan, and the state's share of the output
    D, lc = 8, {"d_state": 4, "d_conv": 3, "dt_rank": 2}
    W = {"m." + n: t for n, t in make_params(lc, D, g).items()}
    h = rn(11, D)
    full = forward(W, "m.", lc, D, h)
    check("mixer with closed-form scan == mixer with loop scan",
          rel(forward(W, "m.", lc, D, h, scan=scan_closed_form), full), 1e-12)
    diff = rel(forward(W, "m.", lc, D, h, scan=lambda u, k, q, be, Dp: Dp * u), full)
    out.append(("recurrent state contributes", diff > 1e-2, f"rel change {diff:.3e} when S := 0"))
    return out
