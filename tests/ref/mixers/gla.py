"""GLA mixer plugin for tests/ref/ref_model.py — docs/layers.md §4 (gated linear attention, recurrent form §4.2).

Leaves (§0.2, §4.1): q_proj.weight [Dk,D], k_proj.weight [Dk,D], v_proj.weight [Dv,D],
g_proj.weight [Dv,D], gk_proj.0.weight [r,D], gk_proj.1.weight [Dk,r], gk_proj.1.bias [Dk],
g_norm.weight [dv], o_proj.weight [D,Dv].  Sizes: Dk = expand_k*D, Dv = expand_v*D, H = num_heads,
dk = Dk/H, dv = Dv/H, r = gate_low_rank_dim, tau = gate_logit_normalizer; g_norm's eps g_norm_eps (1e-5).
Optional short convs (§4.1), on when d_conv = K > 0: q_conv1d.weight [Dk,1,K], k_conv1d.weight [Dk,1,K],
v_conv1d.weight [Dv,1,K]; q, k, v = silu(causal_conv(projection)) (§0.5, no bias).
"""
import math

import torch

from ref_model import F64, InputError, causal_conv, silu


def sizes(lc, D):
    """§4.6 defaults for absent (or 0) fields, as the engine resolves them."""
    if any(lc.get(k) for k in ("q_conv1d", "use_short_conv")):
        raise InputError("gla: short convolutions are configured by d_conv (the conv width), not q_conv1d/use_short_conv")
    try:
        ek = float(lc.get("expand_k") or 0.5)
        ev = float(lc.get("expand_v") or 1.0)
        H = int(lc.get("num_heads") or 4)
        r = int(lc.get("gate_low_rank_dim") or 16)
        tau = float(lc.get("gate_logit_normalizer") or 16)
        K = int(lc.get("d_conv") or 0)
        eps = float(lc.get("g_norm_eps") or 1e-5)
    except (TypeError, ValueError) as e:
        raise InputError(f"gla layer config: bad size field: {e}")
    Dk, Dv = round(ek * D), round(ev * D)
    if abs(ek * D - Dk) > 1e-9 or abs(ev * D - Dv) > 1e-9 or Dk < 1 or Dv < 1:
        raise InputError(f"gla layer config: expand_k*D and expand_v*D must be positive integers, got {lc}")
    if H < 1 or Dk % H or Dv % H or r < 1 or tau <= 0:
        raise InputError(f"gla layer config: num_heads must divide Dk={Dk} and Dv={Dv}; got {lc}")
    if K < 0 or K > 16:
        raise InputError(f"gla layer config: d_conv must be 0 (off) or in [1, 16], got {K}")
    if not 0 <= eps <= 1:
        raise InputError(f"gla layer config: g_norm_eps must be in [0, 1], got {eps}")
    return dict(ek=ek, ev=ev, Dk=Dk, Dv=Dv, H=H, dk=Dk // H, dv=Dv // H, r=r, tau=tau, K=K, eps=eps)


def rmsnorm(x, w, eps=1e-5):
    return w * x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)


def gla_recurrent(q, k, v, gk):
    """§4.2 per head, token by token.  q, k, gk [T,H,dk]; v [T,H,dv] -> o [T,H,dv].
    S_t = diag(exp gk_t) S_{t-1} + k_t v_t^T ;  o_t = S_t^T q_t  (q already scaled)."""
    T, H, dk = q.shape
    S = torch.zeros(H, dk, v.shape[2], dtype=F64)
    out = []
    for t in range(T):
        S = torch.exp(gk[t])[:, :, None] * S + k[t][:, :, None] * v[t][:, None, :]
        out.append(torch.einsum("hkv,hk->hv", S, q[t]))
    return torch.stack(out)


def gla_pairwise(q, k, v, gk):
    """Second formulation for the selftest: o_t = sum_{s<=t} (q_t * prod_{s<u<=t} exp(gk_u)) . k_s v_s."""
    T = q.shape[0]
    out = torch.zeros(T, q.shape[1], v.shape[2], dtype=F64)
    for t in range(T):
        for s in range(t + 1):
            decay = torch.exp(gk[s + 1:t + 1].sum(0)) if t > s else torch.ones_like(gk[0])   # [H,dk]
            score = (q[t] * decay * k[s]).sum(-1)                                             # [H]
            out[t] += score[:, None] * v[s]
    return out


def forward(W, m, lc, D, h, core=gla_recurrent):
    """§4.2: h [T,D] (the normed residual stream) -> mixer output [T,D]."""
    s = sizes(lc, D)
    T, H, dk, dv = h.shape[0], s["H"], s["dk"], s["dv"]
    q, k, v = (h @ W[m + n + "_proj.weight"].T for n in "qkv")
    if s["K"] > 0:                                                        # §4.1 short conv + silu
        q, k, v = (silu(causal_conv(x, W[m + n + "_conv1d.weight"])) for x, n in zip((q, k, v), "qkv"))
    q = q.reshape(T, H, dk) / math.sqrt(dk)
    k = k.reshape(T, H, dk)
    v = v.reshape(T, H, dv)
    g = (h @ W[m + "g_proj.weight"].T).reshape(T, H, dv)
    pre = (h @ W[m + "gk_proj.0.weight"].T) @ W[m + "gk_proj.1.weight"].T + W[m + "gk_proj.1.bias"]
    gk = (torch.nn.functional.logsigmoid(pre) / s["tau"]).reshape(T, H, dk)
    o = core(q, k, v, gk)                                                 # [T,H,dv]
    y = rmsnorm(o, W[m + "g_norm.weight"], s["eps"]) * (g * torch.sigmoid(g))   # norm over dv, swish gate
    return y.reshape(T, H * dv) @ W[m + "o_proj.weight"].T


def forward_bidir(W, m, lc, D, h, P):
    """§8 (docs/layers.md): heads [H/2, H) run right to left over the prompt [0, P)."""
    from ref_model import bidir_scan, rev_from
    H = sizes(lc, D)["H"]
    return forward(W, m, lc, D, h, core=bidir_scan(gla_recurrent, P, rev_from(lc, H), (1, 1, 1, 1)))


def make_params(lc, D, gen):
    """Random test parameters (not the §4.1 init: larger, so the state and the gate matter).
    Fills the resolved sizes into lc."""
    s = sizes(lc, D)
    Dk, Dv, r, dv = s["Dk"], s["Dv"], s["r"], s["dv"]
    lc.update(expand_k=s["ek"], expand_v=s["ev"], num_heads=s["H"], gate_low_rank_dim=r,
              gate_logit_normalizer=s["tau"])
    K = s["K"]
    if K > 0:
        lc.update(d_conv=K)
    rn = lambda *shape: torch.randn(*shape, generator=gen, dtype=F64)
    mat = lambda o, i: rn(o, i) / math.sqrt(i)                            # ~unit outputs
    return {"q_proj.weight": mat(Dk, D), "k_proj.weight": mat(Dk, D), "v_proj.weight": mat(Dv, D),
            "g_proj.weight": mat(Dv, D), "gk_proj.0.weight": mat(r, D), "gk_proj.1.weight": 2 * mat(Dk, r),
            # logsigmoid(pre)/tau spread from ~0 to ~-0.5 per token at tau = 16
            "gk_proj.1.bias": 12 * torch.rand(Dk, generator=gen, dtype=F64) - 8,
            "g_norm.weight": 1 + 0.2 * rn(dv), "o_proj.weight": mat(D, Dv),
            **({"q_conv1d.weight": rn(Dk, 1, K) / math.sqrt(K), "k_conv1d.weight": rn(Dk, 1, K) / math.sqrt(K),
                "v_conv1d.weight": rn(Dv, 1, K) / math.sqrt(K)} if K > 0 else {})}


def selftest():
    g = torch.Generator().manual_seed(4321)
    rn = lambda *s: torch.randn(*s, generator=g, dtype=F64)
    rel = lambda a, b: ((a - b).abs().max() / b.abs().max()).item()
    out = []

    def check(name, err, tol):
        out.append((name, err <= tol, f"rel err {err:.3e} (tol {tol:g})"))

    T, H, dk, dv = 9, 2, 3, 4
    q, k, v = rn(T, H, dk), rn(T, H, dk), rn(T, H, dv)
    gk = torch.nn.functional.logsigmoid(2 * rn(T, H, dk))
    check("recurrence == pairwise-decay form", rel(gla_recurrent(q, k, v, gk), gla_pairwise(q, k, v, gk)), 1e-12)

    D, lc = 8, {"num_heads": 2, "expand_k": 1, "gate_low_rank_dim": 3}
    W = {"m." + n: t for n, t in make_params(lc, D, g).items()}
    h = rn(11, D)
    full = forward(W, "m.", lc, D, h)
    check("mixer with pairwise core == mixer with recurrent core",
          rel(forward(W, "m.", lc, D, h, core=gla_pairwise), full), 1e-12)
    # state matters: keep only the current token's k v^T
    diff = rel(forward(W, "m.", lc, D, h, core=lambda q, k, v, gk: torch.einsum("thk,thk,thv->thv", q, k, v)), full)
    out.append(("recurrent state contributes", diff > 1e-2, f"rel change {diff:.3e} when S_(t-1) := 0"))
    # §4.2 written with torch's own modules (Linear / RMSNorm by hand / F.silu) on one token = step 0
    x0 = h[:1]
    q0 = x0 @ W["m.q_proj.weight"].T / math.sqrt(4)
    k0, v0 = x0 @ W["m.k_proj.weight"].T, x0 @ W["m.v_proj.weight"].T
    o0 = torch.stack([(q0[0, i * 4:(i + 1) * 4] * k0[0, i * 4:(i + 1) * 4]).sum() * v0[0, i * 4:(i + 1) * 4]
                      for i in range(2)])
    gg = (x0 @ W["m.g_proj.weight"].T).reshape(2, 4)
    y0 = (rmsnorm(o0, W["m.g_norm.weight"]) * torch.nn.functional.silu(gg)).reshape(1, 8) @ W["m.o_proj.weight"].T
    check("first token (S_0 = k_0 v_0^T, no decay) by hand", rel(full[:1], y0), 1e-12)
    return out
