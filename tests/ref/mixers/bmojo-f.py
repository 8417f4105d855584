"""B'MOJO-F mixer plugin ("bmojo-f") for tests/ref/ref_model.py — docs/layers.md §6; with store=True the
eidetic store of "bmojo" (docs/layers.md §7, OUR design; bmojo.py).

Leaves (§6.2): ssm.* (the SSM plugin's own leaves, config field "ssm", default mamba2),
attn.q_proj.weight [H*dh, D], attn.k_proj.weight, attn.v_proj.weight [Hkv*dh, D], attn.o_proj.weight
[D, H*dh]; untied: attn.q_proj_f/k_proj_f/v_proj_f.weight; qk_norm: attn.q_norm.weight,
attn.k_norm.weight [dh]; bmojo with score pred: innov.weight [Hkv*dh, D].
Computed as the definition: one explicit softmax per query over the set of (key, value) pairs it
sees — raw keys j in (i-W, i], fading keys from F = SSM(x) at j in (i-2W, i-W], and for bmojo the
stored raw keys — not as the engine's merged passes.
"""
import math

import torch

from ref_model import F64, InputError, load_mixer

_attn = load_mixer("attn")
SSM_KEYS = ("expand", "d_state", "d_conv", "dt_rank", "headdim", "ngroups", "gate_low_rank_dim", "expand_k",
            "expand_v", "gate_logit_normalizer", "chunk")


def ssm_config(lc):
    """The SSM's own layer config: its size fields, num_heads from ssm_heads."""
    name = lc.get("ssm") or "mamba2"
    if name not in ("mamba2", "longhorn", "mamba", "gla", "hawk"):
        raise InputError(f"bmojo layer config: ssm must be mamba2, longhorn, mamba, gla or hawk, got {name!r}")
    s = {"mixer": name}
    for k in SSM_KEYS:
        if lc.get(k):
            s[k] = lc[k]
    if lc.get("ssm_heads"):
        s["num_heads"] = lc["ssm_heads"]
    return name, s


def sizes(lc, D, store):
    s = _attn.sizes({k: lc.get(k) for k in ("num_heads", "num_kv_heads", "head_dim", "rope_theta", "no_rope")}, D)
    s["W"] = int(lc.get("window") or 64)
    s["qk"] = bool(int(lc.get("qk_norm") or 0))
    s["untied"] = bool(int(lc.get("untied") or 0))
    if store:
        s["score"] = lc.get("score") or "pred"
        if s["score"] not in ("pred", "random", "none"):
            raise InputError(f"bmojo layer config: score must be pred, random or none here, got {s['score']!r}")
        s["M"] = int(lc.get("mem_size") or s["W"])
        s["ke"] = int(lc.get("mem_topk") or max(1, s["W"] // 8))
    else:
        s["score"] = "none"
    return s


def head_norm(x, w):
    """x [T, n, dh]: RMSNorm per head (eps 1e-6) times w [dh]."""
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-6) * w


def unit(x):
    """x / rms(x) per row (0 for the zero row)."""
    r = torch.sqrt((x * x).mean(-1, keepdim=True))
    return torch.where(r > 0, x / torch.where(r > 0, r, torch.ones_like(r)), torch.zeros_like(x))


def splitmix_score(pos):
    """The `random` score: splitmix64 of the position, top 53 bits / 2^53."""
    M = (1 << 64) - 1
    z = (pos + 0x9E3779B97F4A7C15) & M
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    z ^= z >> 31
    return (z >> 11) / 9007199254740992.0


def store_lists(e, W, M, ke):
    """For each query t (one segment from 0): the positions of the stored tokens it sees — the ke
    largest e of each chunk of W (ties: later), chunks 0 .. c-2, the last M of them."""
    T = len(e)
    chosen = []
    for c in range(T // W):
        idx = list(range(c * W, (c + 1) * W))
        idx.sort(key=lambda j: (e[j], j), reverse=True)
        chosen.append(sorted(idx[:ke]))
    out = []
    for t in range(T):
        flat = [j for c in range(t // W - 1) for j in chosen[c]]
        out.append(flat[-M:] if M > 0 else [])
    return out


def forward(Wt, m, lc, D, x, store=False):
    s = sizes(lc, D, store)
    H, Hkv, dh, W = s["H"], s["Hkv"], s["dh"], s["W"]
    T = x.shape[0]
    name, slc = ssm_config(lc)
    F = load_mixer(name).forward(Wt, m + "ssm.", slc, D, x)
    a = m + "attn."
    f = "_f" if s["untied"] else ""
    q = (x @ Wt[a + "q_proj.weight"].T).reshape(T, H, dh)
    k = (x @ Wt[a + "k_proj.weight"].T).reshape(T, Hkv, dh)
    v = (x @ Wt[a + "v_proj.weight"].T).reshape(T, Hkv, dh)
    qf = (x @ Wt[a + f"q_proj{f}.weight"].T).reshape(T, H, dh)
    kf = (F @ Wt[a + f"k_proj{f}.weight"].T).reshape(T, Hkv, dh)
    vf = (F @ Wt[a + f"v_proj{f}.weight"].T).reshape(T, Hkv, dh)
    if s["qk"]:
        qn, kn = Wt[a + "q_norm.weight"], Wt[a + "k_norm.weight"]
        q, qf, k, kf = head_norm(q, qn), head_norm(qf, qn), head_norm(k, kn), head_norm(kf, kn)
    lists = [[] for _ in range(T)]
    if s["score"] != "none":
        if s["score"] == "pred":
            Fprev = torch.cat([torch.zeros(1, D, dtype=F64), F[:-1]], 0)
            e = ((unit(k.reshape(T, -1)) - unit(Fprev @ Wt[m + "innov.weight"].T)) ** 2).mean(-1).tolist()
        else:
            e = [splitmix_score(t) for t in range(T)]
        lists = store_lists(e, W, s["M"], s["ke"])
    pos = torch.arange(T)
    if not s["no_rope"]:
        q, qf = _attn.rope(q, pos, s["theta"]), _attn.rope(qf, pos, s["theta"])
        k, kf = _attn.rope(k, pos, s["theta"]), _attn.rope(kf, pos, s["theta"])
    o = torch.zeros(T, H, dh, dtype=F64)
    for i in range(T):
        for h in range(H):
            g = h * Hkv // H
            keys, vals, qs = [], [], []
            for j in range(max(0, i - W + 1), i + 1):
                keys.append(k[j, g]), vals.append(v[j, g]), qs.append(q[i, h])
            for j in range(max(0, i - 2 * W + 1), i - W + 1):
                keys.append(kf[j, g]), vals.append(vf[j, g]), qs.append(qf[i, h])
            for j in lists[i]:
                keys.append(k[j, g]), vals.append(v[j, g]), qs.append(q[i, h])
            sc = torch.stack([(qq * kk).sum() for qq, kk in zip(qs, keys)]) / math.sqrt(dh)
            o[i, h] = torch.softmax(sc, 0) @ torch.stack(vals)
    return o.reshape(T, H * dh) @ Wt[a + "o_proj.weight"].T


def make_params(lc, D, gen, store=False):
    """Random test parameters. Unset sizes: W = 3 (fading tokens from position 3 on), 2 query heads
    sharing 1 kv head when D % 4 == 0; bmojo: M = 4, k_e = 2 (the store from position 6 on)."""
    if not lc.get("num_heads") and not lc.get("head_dim"):
        lc["num_heads"] = 2 if D % 4 == 0 else 1
        lc.setdefault("num_kv_heads", 1)
    lc.setdefault("window", 3)
    if store:
        lc.setdefault("mem_size", 4)
        lc.setdefault("mem_topk", 2)
    s = sizes(lc, D, store)
    name, slc = ssm_config(lc)
    P = {"ssm." + leaf: t for leaf, t in load_mixer(name).make_params(slc, D, gen).items()}
    lc["ssm"] = name
    for k in SSM_KEYS:  # the SSM's resolved sizes, as the engine writes them back
        if slc.get(k):
            lc[k] = slc[k]
    if slc.get("num_heads"):
        lc["ssm_heads"] = slc["num_heads"]
    H, Hkv, dh = s["H"], s["Hkv"], s["dh"]
    lc.update(num_heads=H, num_kv_heads=Hkv, head_dim=dh, rope_theta=s["theta"], window=s["W"])
    if store:
        lc.update(score=s["score"], mem_size=s["M"], mem_topk=s["ke"])
    rn = lambda *shape: torch.randn(*shape, generator=gen, dtype=F64)
    mat = lambda o, i: rn(o, i) / math.sqrt(i)
    names = [("q_proj", H), ("k_proj", Hkv), ("v_proj", Hkv)]
    for n, heads in names:
        P[f"attn.{n}.weight"] = (1 if n == "v_proj" else 2) * mat(heads * dh, D)
        if s["untied"]:
            P[f"attn.{n}_f.weight"] = (1 if n == "v_proj" else 2) * mat(heads * dh, D)
    P["attn.o_proj.weight"] = mat(D, H * dh)
    if s["qk"]:
        P["attn.q_norm.weight"] = 1 + 0.2 * rn(dh)
        P["attn.k_norm.weight"] = 1 + 0.2 * rn(dh)
    if store and s["score"] == "pred":
        P["innov.weight"] = mat(Hkv * dh, D)
    return P


def selftest(store=False):
    """W >= T equals full causal attention (the paper's 'Transformers are a special case')."""
    g = torch.Generator().manual_seed(7)
    D, T = 8, 9
    lc = {"mixer": "bmojo-f", "window": T}
    P = make_params(lc, D, g)
    Wt = {"m." + k: v for k, v in P.items()}
    x = torch.randn(T, D, generator=g, dtype=F64)
    a = forward(Wt, "m.", lc, D, x)
    alc = {k: lc[k] for k in ("num_heads", "num_kv_heads", "head_dim", "rope_theta")}
    Wa = {"m." + k[5:]: v for k, v in P.items() if k.startswith("attn.")}
    b = _attn.forward(Wa, "m.", alc, D, x)
    err = ((a - b).abs().max() / b.abs().max()).item()
    return [("bmojo-f with W >= T == full attention", err < 1e-12, f"rel err {err:.3e}")]
