"""Gated-SSM mixer plugin for tests/ref/ref_model.py — docs/layers.md §13 (Birdie's gated SSM).

Leaves (§13.3): i_proj.weight, z_proj.weight, o_proj.weight, f_proj.weight [R,D] and
out_proj.weight [D,R], no biases.  R = expand*D.
  i = sigma(W_i x), z = W_z x, o = gelu(W_o x) (exact, erf), f = sigma(W_f x)
  h_t = f_t * h_{t-1} + i_t * z_t,  out = W_out (o * h)
"""
import math

import torch

from ref_model import F64, InputError


def sizes(lc, D):
    try:
        E = int(lc.get("expand") or 1)
    except (TypeError, ValueError) as e:
        raise InputError(f"gated-ssm layer config: bad size field: {e}")
    if E < 1:
        raise InputError(f"gated-ssm layer config: expand must be positive, got {lc}")
    return dict(R=E * D)


def scan(f, v):
    """h_t = f_t h_{t-1} + v_t from h_{-1} = 0, token by token.  f, v [T,R]."""
    h = torch.zeros(f.shape[1], dtype=F64)
    out = []
    for t in range(f.shape[0]):
        h = f[t] * h + v[t]
        out.append(h)
    return torch.stack(out)


def forward(W, m, lc, D, x, rec=scan):
    proj = lambda n: x @ W[m + n + ".weight"].T
    i, z, f = torch.sigmoid(proj("i_proj")), proj("z_proj"), torch.sigmoid(proj("f_proj"))
    o = torch.nn.functional.gelu(proj("o_proj"))                   # exact (erf) GeLU
    return (o * rec(f, i * z)) @ W[m + "out_proj.weight"].T


def forward_bidir(W, m, lc, D, x, P):
    """§8 (docs/layers.md): channels [R/2, R) run right to left over the prompt [0, P)."""
    from ref_model import bidir_scan, rev_from
    return forward(W, m, lc, D, x, rec=bidir_scan(scan, P, rev_from(lc, sizes(lc, D)["R"]), (1, 1)))


def make_params(lc, D, gen):
    R = sizes(lc, D)["R"]
    lc.update(expand=R // D)
    rn = lambda *shape: torch.randn(*shape, generator=gen, dtype=F64)
    w = {n: rn(R, D) / math.sqrt(D) for n in ("i_proj.weight", "z_proj.weight", "o_proj.weight")}
    w["f_proj.weight"] = 2 * rn(R, D) / math.sqrt(D)                # forget gates spread over (0, 1)
    w["out_proj.weight"] = rn(D, R) / math.sqrt(R)
    return w


def selftest():
    g = torch.Generator().manual_seed(5)
    rn = lambda *s: torch.randn(*s, generator=g, dtype=F64)
    rel = lambda a, b: ((a - b).abs().max() / b.abs().max()).item()
    T, R = 9, 4
    f, v = torch.sigmoid(rn(T, R)), rn(T, R)
    Lc = torch.cumsum(torch.log(f), 0)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    closed = torch.einsum("tsr,sr->tr", torch.exp(Lc[:, None] - Lc[None, :]) * mask[:, :, None], v)
    e = rel(scan(f, v), closed)
    out = [("scan loop == log-space closed form", e < 1e-12, f"rel err {e:.3e}")]
    D, lc = 6, {}
    W = {"m." + n: t for n, t in make_params(lc, D, g).items()}
    x = rn(8, D)
    diff = rel(forward(W, "m.", lc, D, x, rec=lambda f, v: v), forward(W, "m.", lc, D, x))
    out.append(("recurrent state contributes", diff > 1e-2, f"rel change {diff:.3e} without the carry"))
    return out
