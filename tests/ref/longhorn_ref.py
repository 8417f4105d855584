#!/usr/bin/python3
"""Independent float64 reference for the Longhorn language model (spec: shared/spec/layers.md).

Written from the equations in layers.md §0.2 (checkpoint names), §0.3 (block structure, RMSNorm,
SwiGLU MLP), §0.5 (depthwise causal conv) and §2.2 (Longhorn, diagonal form).  Run with Debian's
/usr/bin/python3 (python3-torch, python3-numpy).  See README.md in this directory.

Exit codes: 0 = pass/ok, 1 = mismatch/selftest failure, 2 = usage or input error.
"""
import argparse
import json
import math
import os
import struct
import sys
import tempfile

import numpy as np
import torch

F64 = torch.float64


class InputError(Exception):
    """Bad arguments / unreadable or inconsistent input (exit code 2)."""


# ----------------------------------------------------------------------------------------------
# safetensors reader / writer (own implementation: u64 LE header length, JSON header, raw LE data)
# ----------------------------------------------------------------------------------------------
_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}


def read_safetensors(path):
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}")
    if len(blob) < 8:
        raise InputError(f"{path}: too short for a safetensors file")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if 8 + hlen > len(blob):
        raise InputError(f"{path}: header length {hlen} exceeds file size")
    try:
        header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: bad JSON header: {e}")
    data = blob[8 + hlen:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = _DTYPES.get(info.get("dtype"))
        if dt is None:
            raise InputError(f"{path}: tensor {name}: unsupported dtype {info.get('dtype')}")
        shape = [int(s) for s in info["shape"]]
        a, b = (int(o) for o in info["data_offsets"])
        n = math.prod(shape)
        if not (0 <= a <= b <= len(data)) or b - a != n * dt.itemsize:
            raise InputError(f"{path}: tensor {name}: data_offsets {a},{b} inconsistent with "
                             f"shape {shape} {info['dtype']} (data section {len(data)} bytes)")
        arr = np.frombuffer(data, dtype=dt, count=n, offset=a).reshape(shape)
        out[name] = torch.from_numpy(arr.astype(np.float64))
    return out


def write_safetensors(path, tensors, dtype="F32"):
    dt = _DTYPES[dtype]
    header, chunks, off = {}, [], 0
    for name, t in tensors.items():
        raw = np.ascontiguousarray(t.detach().cpu().numpy(), dtype=dt).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)  # pad header so the data section is 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for c in chunks:
            f.write(c)


# ----------------------------------------------------------------------------------------------
# checkpoint loading (§0.2)
# ----------------------------------------------------------------------------------------------
def layer_sizes(cfg, lc):
    D = int(cfg["d_model"])
    if lc.get("mixer", "longhorn") != "longhorn":
        raise InputError(f"unsupported mixer {lc.get('mixer')!r} (this reference is Longhorn only)")
    if lc.get("form", "diagonal") != "diagonal":
        raise InputError(f"unsupported longhorn form {lc.get('form')!r} (only diagonal, §2.2)")
    E = int(lc.get("expand", 2))
    return dict(I=E * D, N=int(lc.get("d_state", 16)), K=int(lc.get("d_conv", 4)),
                R=int(lc.get("dt_rank") or math.ceil(D / 16)),
                F=int(lc.get("d_ff", cfg.get("d_ff", 0)) or 0))


def load_ckpt(ckpt):
    try:
        with open(os.path.join(ckpt, "config.json")) as f:
            cfg = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read {ckpt}/config.json: {e}")
    W = read_safetensors(os.path.join(ckpt, "model.safetensors"))
    try:
        V, D, L = int(cfg["vocab_size"]), int(cfg["d_model"]), int(cfg["n_layer"])
        layers = cfg.get("layers") or [{"mixer": "longhorn"}] * L
        if len(layers) != L:
            raise InputError(f"config: n_layer={L} but {len(layers)} layer entries")
        sizes = [layer_sizes(cfg, lc) for lc in layers]
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"config.json: missing/bad field: {e}")
    tied = bool(cfg.get("tie_embeddings", True))
    want = {"backbone.embeddings.weight": [V, D], "backbone.norm_f.weight": [D]}
    if not tied:
        want["lm_head.weight"] = [V, D]
    for i, s in enumerate(sizes):
        p, m = f"backbone.layers.{i}.", f"backbone.layers.{i}.mixer."
        I, N, K, R, F = s["I"], s["N"], s["K"], s["R"], s["F"]
        want.update({p + "norm.weight": [D], m + "in_proj.weight": [2 * I, D],
                     m + "conv1d.weight": [I, 1, K], m + "conv1d.bias": [I],
                     m + "x_proj.weight": [R + 2 * N, I], m + "dt_proj.weight": [I, R],
                     m + "dt_proj.bias": [I], m + "D": [I], m + "out_proj.weight": [D, I]})
        if F > 0:
            want.update({p + "mlp_norm.weight": [D], p + "mlp.gate_proj.weight": [F, D],
                         p + "mlp.up_proj.weight": [F, D], p + "mlp.down_proj.weight": [D, F]})
    for name, shape in want.items():
        if name not in W:
            raise InputError(f"checkpoint lacks tensor {name}")
        if list(W[name].shape) != shape:
            raise InputError(f"tensor {name}: shape {list(W[name].shape)}, expected {shape}")
    return cfg, sizes, W


# ----------------------------------------------------------------------------------------------
# model (float64)
# ----------------------------------------------------------------------------------------------
def silu(x):
    return x * torch.sigmoid(x)                       # §0.1


def rmsnorm(x, w, eps):                               # §0.3: w * x / sqrt(mean x^2 + eps)
    return w * x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)


def causal_conv(x, w, b):
    """§0.5: y_t[c] = b[c] + sum_j w[c,0,j] x_{t-K+1+j}[c], zero for s < 0.  x [T,I], w [I,1,K]."""
    T, K = x.shape[0], w.shape[2]
    xp = torch.cat([torch.zeros(K - 1, x.shape[1], dtype=x.dtype), x], 0)  # xp[t+j] = x_{t-K+1+j}
    return b + sum(w[:, 0, j] * xp[j:j + T] for j in range(K))


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


def longhorn_mixer(h, W, m, s, scan=longhorn_scan):
    I, N, R = s["I"], s["N"], s["R"]
    xz = h @ W[m + "in_proj.weight"].T                              # [x ; z] = W_in h
    x, z = xz[:, :I], xz[:, I:]
    u = silu(causal_conv(x, W[m + "conv1d.weight"], W[m + "conv1d.bias"]))
    rkq = u @ W[m + "x_proj.weight"].T                              # [r ; k ; q] = W_x u
    r, k, q = rkq[:, :R], rkq[:, R:R + N], rkq[:, R + N:]
    beta = torch.sigmoid(r @ W[m + "dt_proj.weight"].T + W[m + "dt_proj.bias"])
    y = scan(u, k, q, beta, W[m + "D"])
    return (y * silu(z)) @ W[m + "out_proj.weight"].T               # out = W_out (y * silu(z))


def forward(cfg, sizes, W, tokens, scan=longhorn_scan):
    """§0.3 block structure; returns logits [T, V] in float64."""
    eps = float(cfg.get("norm_eps", 1e-5))
    h = W["backbone.embeddings.weight"][torch.tensor(tokens)]
    for i, s in enumerate(sizes):
        p = f"backbone.layers.{i}."
        h = h + longhorn_mixer(rmsnorm(h, W[p + "norm.weight"], eps), W, p + "mixer.", s, scan)
        if s["F"] > 0:                                              # SwiGLU MLP
            x = rmsnorm(h, W[p + "mlp_norm.weight"], eps)
            h = h + (silu(x @ W[p + "mlp.gate_proj.weight"].T) * (x @ W[p + "mlp.up_proj.weight"].T)) \
                @ W[p + "mlp.down_proj.weight"].T
    head = W["backbone.embeddings.weight"] if cfg.get("tie_embeddings", True) else W["lm_head.weight"]
    return rmsnorm(h, W["backbone.norm_f.weight"], eps) @ head.T


# ----------------------------------------------------------------------------------------------
# random checkpoint
# ----------------------------------------------------------------------------------------------
def make_ckpt(out, seed, V, D, L, N, E, K, R, ff_pattern, tied):
    g = torch.Generator().manual_seed(seed)
    rn = lambda *shape: torch.randn(*shape, generator=g, dtype=F64)
    mat = lambda o, i: rn(o, i) / math.sqrt(i)                      # moderate scale, ~unit outputs
    I = E * D
    W = {"backbone.embeddings.weight": 0.5 * rn(V, D)}     # small: mixers matter
    layers = []
    for i in range(L):
        F = ff_pattern[i % len(ff_pattern)]
        p, m = f"backbone.layers.{i}.", f"backbone.layers.{i}.mixer."
        W.update({p + "norm.weight": 1 + 0.2 * rn(D), m + "in_proj.weight": mat(2 * I, D),
                  m + "conv1d.weight": rn(I, 1, K) / math.sqrt(K), m + "conv1d.bias": 0.2 * rn(I),
                  m + "x_proj.weight": mat(R + 2 * N, I), m + "dt_proj.weight": mat(I, R),
                  m + "dt_proj.bias": 4 * torch.rand(I, generator=g, dtype=F64) - 2,  # beta spread
                  m + "D": 1 + 0.3 * rn(I), m + "out_proj.weight": mat(D, I)})
        if F > 0:
            W.update({p + "mlp_norm.weight": 1 + 0.2 * rn(D), p + "mlp.gate_proj.weight": mat(F, D),
                      p + "mlp.up_proj.weight": mat(F, D), p + "mlp.down_proj.weight": mat(D, F)})
        layers.append({"mixer": "longhorn", "expand": E, "d_state": N, "d_conv": K, "dt_rank": R,
                       "d_ff": F})
    W["backbone.norm_f.weight"] = 1 + 0.2 * rn(D)
    if not tied:
        W["lm_head.weight"] = rn(V, D) / math.sqrt(D)
    cfg = {"format": "eidetic", "format_version": 1, "vocab_size": V, "d_model": D, "n_layer": L,
           "tie_embeddings": tied, "norm_eps": 1e-5, "d_ff": 0, "layers": layers}
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    write_safetensors(os.path.join(out, "model.safetensors"), W, "F32")


# ----------------------------------------------------------------------------------------------
# self-test: the reference checked against second formulations
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
    fails = []

    def check(name, a, b, tol):
        err = ((a - b).abs().max() / b.abs().max()).item()
        ok = err <= tol
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: rel err {err:.3e} (tol {tol:g})")
        if not ok:
            fails.append(name)

    T, I, N = 9, 6, 5
    u, k, q, Dp = rn(T, I), rn(T, N), rn(T, N), rn(I)
    beta = torch.sigmoid(2 * rn(T, I))
    check("scan loop == cumulative-product closed form", longhorn_scan(u, k, q, beta, Dp),
          scan_closed_form(u, k, q, beta, Dp), 1e-12)
    k1, q1 = rn(T, 1), rn(T, 1)
    check("scan loop (N=1) == direct argmin of the online-regression objective",
          longhorn_scan(u, k1, q1, beta, Dp), scan_argmin(u, k1, q1, beta, Dp), 1e-12)
    x, w, b = rn(T, I), rn(I, 1, 4), rn(I)
    conv_t = torch.nn.functional.conv1d(x.T[None], w, b, padding=3, groups=I)[0, :, :T].T
    check("causal conv == torch conv1d(groups=I) with left padding", causal_conv(x, w, b), conv_t, 1e-13)

    with tempfile.TemporaryDirectory() as d:
        make_ckpt(d, 7, V=40, D=8, L=3, N=4, E=2, K=3, R=2, ff_pattern=[0, 24], tied=False)
        cfg, sizes, W = load_ckpt(d)
        toks = [int(t) for t in torch.randint(0, 40, (11,), generator=g)]
        full = forward(cfg, sizes, W, toks)
        check("model with closed-form scan == model with loop scan",
              forward(cfg, sizes, W, toks, scan=scan_closed_form), full, 1e-12)
        check("causality: logits(prefix of 5) == first 5 rows of logits(11)",
              forward(cfg, sizes, W, toks[:5]), full[:5], 1e-13)
        p = os.path.join(d, "x.safetensors")
        write_safetensors(p, {"logits": full}, "F64")
        check("safetensors F64 write/read roundtrip", read_safetensors(p)["logits"], full, 0.0)
        # state must matter: zeroing the recurrent part must change the output noticeably
        nostate = forward(cfg, sizes, W, toks, scan=lambda u, k, q, be, Dp: Dp * u)
        diff = ((nostate - full).abs().max() / full.abs().max()).item()
        print(f"  {'ok  ' if diff > 1e-2 else 'FAIL'} recurrent state contributes: rel change {diff:.3e}")
        if diff <= 1e-2:
            fails.append("state contributes")
    print("selftest:", "PASS" if not fails else "FAIL " + ", ".join(fails))
    return 0 if not fails else 1


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------
def parse_tokens(s, V):
    try:
        toks = [int(t) for t in s.split(",") if t.strip() != ""]
    except ValueError:
        raise InputError(f"--tokens must be comma-separated integers, got {s!r}")
    if not toks:
        raise InputError("--tokens is empty")
    bad = [t for t in toks if not 0 <= t < V]
    if bad:
        raise InputError(f"token {bad[0]} out of range [0, {V})")
    return toks


def ref_logits(ckpt, tokens):
    cfg, sizes, W = load_ckpt(ckpt)
    return forward(cfg, sizes, W, parse_tokens(tokens, int(cfg["vocab_size"])))


def main(argv=None):
    ap = argparse.ArgumentParser(description="float64 Longhorn reference (layers.md §0, §2.2)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-ckpt", help="write a random checkpoint directory (F32)")
    mk.add_argument("--out", required=True)
    mk.add_argument("--seed", type=int, required=True)
    for flag, dflt in [("--vocab", 64), ("--d-model", 16), ("--layers", 2), ("--d-state", 4),
                       ("--expand", 2), ("--d-conv", 4), ("--dt-rank", 1)]:
        mk.add_argument(flag, type=int, default=dflt)
    mk.add_argument("--d-ff-pattern", default="0,48", help="per-layer d_ff, cycled over layers")
    mk.add_argument("--untied", action="store_true", help="write a separate lm_head.weight")
    lg = sub.add_parser("logits", help="write reference logits [T,V] F32")
    cp = sub.add_parser("compare", help="compare a logits file against the reference")
    for p in (lg, cp):
        p.add_argument("--ckpt", required=True)
        p.add_argument("--tokens", required=True)
    lg.add_argument("--out", required=True)
    lg.add_argument("--f64", action="store_true", help="write F64 instead of F32")
    cp.add_argument("--logits", required=True)
    cp.add_argument("--tol", type=float, default=1e-4)
    sub.add_parser("selftest", help="check the reference against second formulations")
    a = ap.parse_args(argv)

    if a.cmd == "make-ckpt":
        try:
            ff = [int(v) for v in a.d_ff_pattern.split(",")]
        except ValueError:
            raise InputError(f"--d-ff-pattern must be comma-separated integers, got {a.d_ff_pattern!r}")
        if min(a.vocab, a.d_model, a.layers, a.d_state, a.expand, a.d_conv, a.dt_rank) < 1 or min(ff) < 0:
            raise InputError("sizes must be positive (d_ff >= 0)")
        make_ckpt(a.out, a.seed, a.vocab, a.d_model, a.layers, a.d_state, a.expand, a.d_conv,
                  a.dt_rank, ff, not a.untied)
        print(f"wrote checkpoint {a.out}")
        return 0
    if a.cmd == "logits":
        lo = ref_logits(a.ckpt, a.tokens)
        write_safetensors(a.out, {"logits": lo}, "F64" if a.f64 else "F32")
        print(f"wrote logits {list(lo.shape)} to {a.out}")
        return 0
    if a.cmd == "compare":
        ref = ref_logits(a.ckpt, a.tokens)
        got = read_safetensors(a.logits)
        if "logits" not in got:
            print(f"FAIL: {a.logits} has no tensor 'logits' (has {sorted(got)})")
            return 1
        c = got["logits"]
        if list(c.shape) != list(ref.shape):
            print(f"FAIL: shape {list(c.shape)} != reference {list(ref.shape)}")
            return 1
        if not torch.isfinite(c).all():
            print(f"FAIL: {int((~torch.isfinite(c)).sum())} non-finite values in {a.logits}")
            return 1
        diff = (c - ref).abs()
        rel = (diff.max() / ref.abs().max()).item()
        t, v = divmod(int(diff.argmax()), ref.shape[1])
        print(f"max_rel_err: {rel:.3e}  (worst at t={t} v={v}: got {c[t, v].item():.8g} "
              f"ref {ref[t, v].item():.8g}; max|ref| {ref.abs().max().item():.4g})")
        ok = rel <= a.tol
        print(("PASS" if ok else "FAIL") + f" (tol {a.tol:g})")
        return 0 if ok else 1
    return selftest()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
