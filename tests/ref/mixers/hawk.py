"""Hawk mixer plugin for tests/ref/ref_model.py — docs/layers.md §12 (Griffin's recurrent block, RG-LRU).

Leaves (§12.3): linear_y.weight [R,D], linear_y.bias [R], linear_x.weight [R,D], linear_x.bias [R],
conv_1d.weight [R,1,K], conv_1d.bias [R], rg_lru.input_gate_weight [H,R/H,R/H] (applied as x.W per
block), rg_lru.input_gate_bias [H,R/H], rg_lru.recurrent_gate_weight, rg_lru.recurrent_gate_bias,
rg_lru.recurrent_param [R] (p = -Lambda), linear_out.weight [D,R], linear_out.bias [D].
Sizes: R = expand*D, H = num_heads, K = d_conv.  One sequence: its first token is a segment start.
"""
import math

import torch

from ref_model import F64, InputError, causal_conv


def sizes(lc, D):
    """§12.1, §12.6 defaults for absent (or 0) fields, as the engine resolves them."""
    try:
        E = int(lc.get("expand") or 1)
        H = int(lc.get("num_heads") or 1)
        K = int(lc.get("d_conv") or 4)
    except (TypeError, ValueError) as e:
        raise InputError(f"hawk layer config: bad size field: {e}")
    R = E * D
    if min(E, H, K) < 1 or R % H:
        raise InputError(f"hawk layer config: need positive sizes and num_heads dividing R={R}, got {lc}")
    return dict(R=R, H=H, W=R // H, K=K)


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def block_diag(x, Wt, b, H):
    """x [T,R] times the block-diagonal [H, W(in), W(out)] matrix, plus bias [H,W]."""
    T = x.shape[0]
    xs = x.reshape(T, H, -1)
    return torch.einsum("thi,hio->tho", xs, Wt).reshape(T, -1) + b.reshape(-1)


def rglru(xc, gr, gi, p):
    """§12.2 token by token: a = sigma(Lambda)^(8 r), Lambda = -p; h = a h + sqrt(1-a^2) (i x),
    the multiplier 1 and no carry at t = 0.  xc, gr, gi [T,R] (pre-activations); p [R]."""
    r, i = torch.sigmoid(gr), torch.sigmoid(gi)
    base = torch.sigmoid(-p)                                         # sigma(Lambda) in (0, 1)
    h = torch.zeros_like(p)
    out = []
    for t in range(xc.shape[0]):
        a = base ** (8 * r[t])
        if t == 0:
            h = i[t] * xc[t]
        else:
            h = a * h + torch.sqrt(1 - a * a) * (i[t] * xc[t])
        out.append(h)
    return torch.stack(out)


def rglru_gates(xc, gr, gi, p):
    """The same §12.2 gates as rglru, as a diagonal recurrence h_t = a_t h_{t-1} + b_t: b = m i x with
    the multiplier m = 1 at t = 0 (the segment start), sqrt(1 - a^2) elsewhere."""
    r, i = torch.sigmoid(gr), torch.sigmoid(gi)
    a = torch.sigmoid(-p) ** (8 * r)
    m = torch.sqrt(1 - a * a)
    m[0] = 1
    return a, m * i * xc


def linear_scan(a, b):
    """h_t = a_t h_{t-1} + b_t from h_{-1} = 0.  a, b [T,R]."""
    h, out = torch.zeros(a.shape[1], dtype=F64), []
    for t in range(a.shape[0]):
        h = a[t] * h + b[t]
        out.append(h)
    return torch.stack(out)


def forward(W, m, lc, D, x, lru=rglru):
    """§12.1: x [T,D] (the normed residual stream) -> mixer output [T,D]."""
    s = sizes(lc, D)
    yb = gelu_tanh(x @ W[m + "linear_y.weight"].T + W[m + "linear_y.bias"])
    xb = x @ W[m + "linear_x.weight"].T + W[m + "linear_x.bias"]
    xc = causal_conv(xb, W[m + "conv_1d.weight"], W[m + "conv_1d.bias"])
    gr = block_diag(xc, W[m + "rg_lru.recurrent_gate_weight"], W[m + "rg_lru.recurrent_gate_bias"], s["H"])
    gi = block_diag(xc, W[m + "rg_lru.input_gate_weight"], W[m + "rg_lru.input_gate_bias"], s["H"])
    h = lru(xc, gr, gi, W[m + "rg_lru.recurrent_param"])
    return (yb * h) @ W[m + "linear_out.weight"].T + W[m + "linear_out.bias"]


def forward_bidir(W, m, lc, D, x, P):
    """§8 (docs/layers.md): channels [R/2, R) of h run right to left over the prompt [0, P), with the
    same input term b_t (multiplier included) as the forward direction."""
    from ref_model import bidir_scan, rev_from
    rev = bidir_scan(linear_scan, P, rev_from(lc, sizes(lc, D)["R"]), (1, 1))
    return forward(W, m, lc, D, x, lru=lambda xc, gr, gi, p: rev(*rglru_gates(xc, gr, gi, p)))


def make_params(lc, D, gen):
    """Random test parameters (not the §12.4 init: larger, so the gates and the state matter)."""
    s = sizes(lc, D)
    R, H, Wd, K = s["R"], s["H"], s["W"], s["K"]
    lc.update(expand=R // D, num_heads=H, d_conv=K)
    rn = lambda *shape: torch.randn(*shape, generator=gen, dtype=F64)
    a0 = 0.5 + 0.49 * torch.rand(R, generator=gen, dtype=F64)       # sigma(Lambda) in [0.5, 0.99]
    return {"linear_y.weight": rn(R, D) / math.sqrt(D), "linear_y.bias": 0.2 * rn(R),
            "linear_x.weight": rn(R, D) / math.sqrt(D), "linear_x.bias": 0.2 * rn(R),
            "conv_1d.weight": rn(R, 1, K) / math.sqrt(K), "conv_1d.bias": 0.2 * rn(R),
            "rg_lru.input_gate_weight": rn(H, Wd, Wd) / math.sqrt(Wd), "rg_lru.input_gate_bias": 0.3 * rn(H, Wd),
            "rg_lru.recurrent_gate_weight": rn(H, Wd, Wd) / math.sqrt(Wd),
            "rg_lru.recurrent_gate_bias": 0.3 * rn(H, Wd),
            "rg_lru.recurrent_param": torch.log(1 / a0 - 1),
            "linear_out.weight": rn(D, R) / math.sqrt(R), "linear_out.bias": 0.2 * rn(D)}


def rglru_closed_form(xc, gr, gi, p):
    """The same recurrence unrolled: h_t = sum_{s<=t} (prod_{s<u<=t} a_u) m_s i_s x_s, products as
    exp of cumulative sums of log a = -8 r softplus(p)."""
    r, i = torch.sigmoid(gr), torch.sigmoid(gi)
    la = -8 * r * torch.nn.functional.softplus(p)                    # [T,R]
    m = torch.sqrt(-torch.expm1(2 * la))
    m[0] = 1
    b = m * i * xc
    Lc = torch.cumsum(la, 0)
    T = xc.shape[0]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    dec = torch.exp(Lc[:, None] - Lc[None, :]) * mask[:, :, None]   # [t,s,R]
    return torch.einsum("tsr,sr->tr", dec, b)


def selftest():
    g = torch.Generator().manual_seed(77)
    rn = lambda *s: torch.randn(*s, generator=g, dtype=F64)
    rel = lambda a, b: ((a - b).abs().max() / b.abs().max()).item()
    T, R = 10, 6
    xc, gr, gi, p = rn(T, R), rn(T, R), rn(T, R), rn(R) - 3
    out = [("RG-LRU loop == log-space closed form", rel(rglru(xc, gr, gi, p), rglru_closed_form(xc, gr, gi, p)) < 1e-12,
            f"rel err {rel(rglru(xc, gr, gi, p), rglru_closed_form(xc, gr, gi, p)):.3e}")]
    D, lc = 8, {"num_heads": 2, "d_conv": 3}
    W = {"m." + n: t for n, t in make_params(lc, D, g).items()}
    x = rn(9, D)
    full = forward(W, "m.", lc, D, x)
    diff = rel(forward(W, "m.", lc, D, x, lru=lambda xc, gr, gi, p: torch.sigmoid(gi) * xc), full)
    out.append(("recurrent state contributes", diff > 1e-2, f"rel change {diff:.3e} without the carry"))
    return out
