"""Softmax attention mixer plugin ("attn", full causal) for tests/ref/ref_model.py — docs/layers.md §5.

Leaves (§0.2, §5.1, Llama names, no biases): q_proj.weight [H*dh, D], k_proj.weight [Hkv*dh, D],
v_proj.weight [Hkv*dh, D], o_proj.weight [D, H*dh].  Query head h reads kv head floor(h*Hkv/H).
RoPE (§5.2, Hugging Face Llama rotate-half) on q and k, position = token index (one segment),
base rope_theta.  Scores q.k/sqrt(dh), causal mask j <= i; sliding window W (swa.py) additionally
j > i - W.  Computed here as one explicit T x T softmax per head (the definition, not blocked).
"""
import math

import torch

from ref_model import F64, InputError


def sizes(lc, D, swa=False):
    """Engine defaults (docs/layers.md §5.6 + this project's choice): num_heads = 1 if D < 64 else the
    largest divisor of D that is <= D/64; head_dim = D/num_heads; num_kv_heads = num_heads;
    rope_theta = 10000.  swa needs window >= 1."""
    try:
        dh0 = int(lc.get("head_dim") or 0)
        H = int(lc.get("num_heads") or 0)
        if not H:
            if dh0:
                H = max(1, D // dh0)
            else:
                H = 1 if D < 64 else D // 64
                while H > 1 and D % H:
                    H -= 1
        dh = dh0 or (D // H)
        Hkv = int(lc.get("num_kv_heads") or H)
        theta = float(lc.get("rope_theta") or 10000.0)
        no_rope = bool(int(lc.get("no_rope") or 0))
        W = int(lc.get("window") or 0)
    except (TypeError, ValueError) as e:
        raise InputError(f"attention layer config: bad size field: {e}")
    if H < 1 or dh < 2 or dh % 2 or Hkv < 1 or H % Hkv:
        raise InputError(f"attention layer config: need H >= 1, even head_dim, Hkv dividing H; got {lc}")
    if not dh0 and D % H:
        raise InputError(f"attention layer config: d_model {D} not divisible by num_heads {H}")
    if swa and W < 1:
        raise InputError(f"swa layer config: window must be >= 1, got {lc.get('window')}")
    if not swa and W != 0:
        raise InputError(f"attn layer config: window must be 0, got {W}")
    return dict(H=H, Hkv=Hkv, dh=dh, theta=theta, W=W, no_rope=no_rope)


def rope(x, pos, theta):
    """x [T, n, dh]; pos [T].  x'[i] = x[i] cos - x[i+dh/2] sin ; x'[i+dh/2] = x[i+dh/2] cos + x[i] sin,
    angle = pos * theta^(-2i/dh)."""
    dh = x.shape[-1]
    half = dh // 2
    inv = torch.tensor([theta ** (-2.0 * i / dh) for i in range(half)], dtype=F64)
    ang = pos.to(F64)[:, None] * inv[None, :]                   # [T, half]
    c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * c - b * s, b * c + a * s], dim=-1)


def attention(q, k, v, W=0, prompt=0):
    """q [T,H,dh], k,v [T,Hkv,dh] (already rotated) -> o [T,H,dh]; explicit masked softmax.  prompt P:
    the prefix-LM mask of a bidirectional layer (docs/layers.md §5.3, §8.2): queries and keys both in
    [0, P) see each other (with a window, |i - j| < W)."""
    T, H, dh = q.shape
    Hkv = k.shape[1]
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = j <= i
    if W > 0:
        allowed = allowed & (j > i - W)
    both = (i < prompt) & (j < prompt)
    allowed = allowed | (both & ((i - j).abs() < W if W > 0 else both))
    o = torch.zeros_like(q)
    for h in range(H):
        g = h * Hkv // H
        s = (q[:, h, :] @ k[:, g, :].T) / math.sqrt(dh)          # [T, T]
        s = s.masked_fill(~allowed, float("-inf"))
        o[:, h, :] = torch.softmax(s, dim=-1) @ v[:, g, :]
    return o


def forward_bidir(W, m, lc, D, x, P, swa=False):
    return forward(W, m, lc, D, x, swa, prompt=P)


def forward(W, m, lc, D, x, swa=False, prompt=0):
    """x [T,D] (normed residual stream, one sequence) -> [T,D]."""
    s = sizes(lc, D, swa)
    H, Hkv, dh = s["H"], s["Hkv"], s["dh"]
    T = x.shape[0]
    q = (x @ W[m + "q_proj.weight"].T).reshape(T, H, dh)
    k = (x @ W[m + "k_proj.weight"].T).reshape(T, Hkv, dh)
    v = (x @ W[m + "v_proj.weight"].T).reshape(T, Hkv, dh)
    pos = torch.arange(T)
    if not s["no_rope"]:  # no_rope: the learned-position baseline (docs/layers.md §5.2)
        q, k = rope(q, pos, s["theta"]), rope(k, pos, s["theta"])
    o = attention(q, k, v, s["W"], prompt)
    return o.reshape(T, H * dh) @ W[m + "o_proj.weight"].T


def make_params(lc, D, gen, swa=False):
    """Random test parameters (moderate: scores O(1), so the softmax is neither flat nor one-hot).
    Unset sizes default to a GQA test shape: 2 query heads sharing 1 kv head when D % 4 == 0."""
    if not lc.get("num_heads") and not lc.get("head_dim"):
        lc["num_heads"] = 2 if D % 4 == 0 else 1
        lc.setdefault("num_kv_heads", 1)
    if swa and not lc.get("window"):
        lc["window"] = 4
    s = sizes(lc, D, swa)
    H, Hkv, dh = s["H"], s["Hkv"], s["dh"]
    lc.update(num_heads=H, num_kv_heads=Hkv, head_dim=dh, rope_theta=s["theta"])
    if swa:
        lc["window"] = s["W"]
    else:
        lc["max_len"] = int(lc.get("max_len") or 2048)
    rn = lambda *shape: torch.randn(*shape, generator=gen, dtype=F64)
    mat = lambda o, i: rn(o, i) / math.sqrt(i)
    return {"q_proj.weight": 2 * mat(H * dh, D), "k_proj.weight": 2 * mat(Hkv * dh, D),
            "v_proj.weight": mat(Hkv * dh, D), "o_proj.weight": mat(D, H * dh)}


# ----------------------------------------------------------------------------------------------
# selftest: the masked softmax against a token-by-token KV-cache loop; RoPE properties
# ----------------------------------------------------------------------------------------------
def attention_loop(q, k, v, W=0):
    """Decode form: per query i, a python loop over the visible cache entries."""
    T, H, dh = q.shape
    Hkv = k.shape[1]
    o = torch.zeros_like(q)
    for i in range(T):
        lo = 0 if W == 0 else max(0, i - W + 1)
        for h in range(H):
            g = h * Hkv // H
            sc = [float(q[i, h] @ k[j, g]) / math.sqrt(dh) for j in range(lo, i + 1)]
            mx = max(sc)
            e = [math.exp(a - mx) for a in sc]
            z = sum(e)
            o[i, h] = sum((e[j - lo] / z) * v[j, g] for j in range(lo, i + 1))
    return o


def selftest(swa=False):
    g = torch.Generator().manual_seed(4321)
    rn = lambda *s: torch.randn(*s, generator=g, dtype=F64)
    rel = lambda a, b: ((a - b).abs().max() / b.abs().max()).item()
    out = []

    def check(name, err, tol):
        out.append((name, err <= tol, f"rel err {err:.3e} (tol {tol:g})"))

    T, H, Hkv, dh = 9, 4, 2, 6
    q, k, v = rn(T, H, dh), rn(T, Hkv, dh), rn(T, Hkv, dh)
    for W in ([3, 1, 20] if swa else [0]):
        check(f"masked softmax == per-token KV-cache loop (H=4, Hkv=2, W={W})",
              rel(attention(q, k, v, W), attention_loop(q, k, v, W)), 1e-12)
    if swa:
        check("window W >= T == full causal attention", rel(attention(q, k, v, T), attention(q, k, v, 0)), 0.0)
    # RoPE: a rotation (norm kept) and scores depend only on the position difference
    x, y = rn(1, 1, dh), rn(1, 1, dh)
    p = lambda n: torch.tensor([n])
    check("RoPE keeps the norm", abs(rope(x, p(5), 100.0).norm() - x.norm()).item(), 1e-12)
    s1 = float((rope(x, p(7), 100.0) * rope(y, p(3), 100.0)).sum())
    s2 = float((rope(x, p(14), 100.0) * rope(y, p(10), 100.0)).sum())
    check("RoPE scores depend on the position difference only", abs(s1 - s2) / abs(s1), 1e-12)
    # rotate-half convention: dimension 0 pairs with dimension dh/2
    e0 = torch.zeros(1, 1, dh, dtype=F64)
    e0[0, 0, 0] = 1
    r = rope(e0, p(1), 100.0)[0, 0]
    check("rotate-half pairs i with i + dh/2", (r - torch.tensor([math.cos(1)] + [0] * (dh // 2 - 1) + [math.sin(1)]
                                                                   + [0] * (dh // 2 - 1), dtype=F64)).abs().max().item(), 1e-15)
    return out
