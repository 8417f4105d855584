#!/usr/bin/python3
"""Independent float64 reference for eidetic language models (spec: docs/layers.md).

The scaffold here implements what every model shares — §0.2 checkpoint format and tensor names,
§0.3 block structure (embedding, pre-norm residual blocks, RMSNorm, SwiGLU MLP, tied/untied head),
§0.5 depthwise causal conv (a helper for mixers) — and loads each layer's sequence mixer as a
plugin: a layer whose config says "mixer": NAME is computed by tests/ref/mixers/NAME.py, which
exposes

    forward(W, prefix, lc, D, x) -> [T, D] float64
        W: dict name -> float64 tensor (the whole checkpoint); prefix "backbone.layers.{i}.mixer.";
        lc: that layer's config dict; x: [T, D] float64, one sequence.
    make_params(lc, D, gen) -> {leaf: tensor}
        random parameters (leaf names under "mixer.") with moderate values; may fill size fields
        into lc so the written config.json is complete.
    selftest() -> [(name, ok, detail), ...]        (optional; run by the `selftest` command)
    forward_bidir(W, prefix, lc, D, x, P) -> [T, D]   (optional) the layer with "bidir": 1
        (docs/layers.md §8): tokens [0, P) are the prompt, the rest CAUSAL.  A checkpoint with a
        bidirectional layer whose plugin lacks it is refused.

Plugins may import helpers from this module (`from ref_model import silu, causal_conv, InputError`).
Run with Debian's /usr/bin/python3 (python3-torch, python3-numpy).  See README.md here.

Exit codes: 0 = pass/ok, 1 = mismatch/selftest failure, 2 = usage or input error.
"""
import argparse
import copy
import importlib.util
import json
import math
import os
import re
import struct
import sys
import tempfile

import numpy as np
import torch

# Plugins do `import ref_model`; when this file runs as a script, make that name resolve to this
# very module (not a second copy with its own InputError class).
sys.modules.setdefault("ref_model", sys.modules[__name__])

F64 = torch.float64
HERE = os.path.dirname(os.path.abspath(__file__))
MIXER_DIR = os.path.join(HERE, "mixers")


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
# shared math (§0.1, §0.3, §0.5) — also used by mixer plugins
# ----------------------------------------------------------------------------------------------
def silu(x):
    return x * torch.sigmoid(x)                       # §0.1


def rmsnorm(x, w, eps):                               # §0.3: w * x / sqrt(mean x^2 + eps)
    return w * x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)


def causal_conv(x, w, b=None):
    """§0.5: y_t[c] = b[c] + sum_j w[c,0,j] x_{t-K+1+j}[c], zero for s < 0.  x [T,C], w [C,1,K]."""
    T, K = x.shape[0], w.shape[2]
    xp = torch.cat([torch.zeros(K - 1, x.shape[1], dtype=x.dtype), x], 0)  # xp[t+j] = x_{t-K+1+j}
    y = sum(w[:, 0, j] * xp[j:j + T] for j in range(K))
    return y if b is None else b + y


def swiglu(x, W, p):                                  # §0.3: W_down (silu(W_gate x) * (W_up x))
    return (silu(x @ W[p + "mlp.gate_proj.weight"].T) * (x @ W[p + "mlp.up_proj.weight"].T)) \
        @ W[p + "mlp.down_proj.weight"].T


# ----------------------------------------------------------------------------------------------
# bidirectional layers (docs/layers.md §8), built from a plugin's own causal scan
# ----------------------------------------------------------------------------------------------
def rev_from(lc, count):
    """§8.2: the first reversed index of `count` (channels or heads), count when the layer is causal."""
    return (count + 1) // 2 if lc.get("bidir") else count


def bidir_scan(scan, P, rf, timed):
    """§8.1 from a causal scan(*args) -> [T, C, ...]: index >= rf along dim 1 runs right to left over
    the prompt [0, P) (the scan of the time-reversed prompt slice, reversed back) and is stateless at
    every CAUSAL position t >= P (the scan of that token alone); indices < rf are the causal scan of
    the whole sequence.  timed[j]: whether args[j] is per token (sliced and reversed) or shared."""
    def run(*args):
        cut = lambda a0, a1, flip: [(a[a0:a1].flip(0) if flip else a[a0:a1]) if tm else a
                                    for a, tm in zip(args, timed)]
        y = scan(*args).clone()
        T = next(a for a, tm in zip(args, timed) if tm).shape[0]
        if rf >= y.shape[1]:
            return y
        parts = [scan(*cut(0, P, True)).flip(0)] if P > 0 else []
        parts += [scan(*cut(t, t + 1, False)) for t in range(P, T)]
        y[:, rf:] = torch.cat(parts)[:, rf:]
        return y
    return run


# ----------------------------------------------------------------------------------------------
# mixer plugins
# ----------------------------------------------------------------------------------------------
_PLUGINS = {}


def plugin_path(name):
    return os.path.join(MIXER_DIR, f"{name}.py")


def load_mixer(name):
    """Import tests/ref/mixers/NAME.py (cached).  Unknown mixer -> InputError (exit 2)."""
    if name in _PLUGINS:
        return _PLUGINS[name]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*", name):  # e.g. gated-ssm
        raise InputError(f"bad mixer name {name!r}")
    path = plugin_path(name)
    if not os.path.isfile(path):
        raise InputError(f"unknown mixer {name!r}: no reference plugin (expected module "
                         f"tests/ref/mixers/{name}.py at {path})")
    spec = importlib.util.spec_from_file_location(f"ref_mixer_{name.replace('-', '_')}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for fn in ("forward", "make_params"):
        if not callable(getattr(mod, fn, None)):
            raise InputError(f"mixer plugin {path} does not define {fn}()")
    _PLUGINS[name] = mod
    return mod


def available_mixers():
    """Names of all plugins in tests/ref/mixers (files not starting with '_')."""
    return sorted(f[:-3] for f in os.listdir(MIXER_DIR)
                  if f.endswith(".py") and not f.startswith("_"))


def expected_mixer_shapes(mod, lc, D):
    """Shapes the plugin would produce for this lc: call make_params on a copy, throwaway RNG."""
    params = mod.make_params(copy.deepcopy(lc), D, torch.Generator().manual_seed(0))
    return {leaf: list(t.shape) for leaf, t in params.items()}


# ----------------------------------------------------------------------------------------------
# checkpoint loading (§0.2)
# ----------------------------------------------------------------------------------------------
def layer_d_ff(cfg, lc):
    """Per-layer d_ff overrides the top-level one (0 = no MLP), as the engine's config reader."""
    return int(lc.get("d_ff", cfg.get("d_ff", 0)) or 0)


def load_ckpt(ckpt):
    """-> (cfg, layers, W); layers[i] = (lc, plugin module, F).  Every tensor shape is checked."""
    try:
        with open(os.path.join(ckpt, "config.json")) as f:
            cfg = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read {ckpt}/config.json: {e}")
    W = read_safetensors(os.path.join(ckpt, "model.safetensors"))
    try:
        V, D, L = int(cfg["vocab_size"]), int(cfg["d_model"]), int(cfg["n_layer"])
        lcs = cfg["layers"]
        if not isinstance(lcs, list) or len(lcs) != L:
            raise InputError(f"config: n_layer={L} but \"layers\" is not a list of {L} entries")
        layers = []
        for i, lc in enumerate(lcs):
            if not isinstance(lc, dict) or not isinstance(lc.get("mixer"), str):
                raise InputError(f"config: layers[{i}] must be an object with a \"mixer\" name")
            layers.append((lc, load_mixer(lc["mixer"]), layer_d_ff(cfg, lc)))
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"config.json: missing/bad field: {e}")
    tied = bool(cfg.get("tie_embeddings", True))
    want = {"backbone.embeddings.weight": [V, D], "backbone.norm_f.weight": [D]}
    P = int(cfg.get("max_position_embeddings", 0) or 0)   # learned absolute positions (§0.2, §0.3)
    if P > 0:
        want["backbone.pos_embeddings.weight"] = [P, D]
    if not tied:
        want["lm_head.weight"] = [V, D]
    for i, (lc, mod, F) in enumerate(layers):
        p = f"backbone.layers.{i}."
        want[p + "norm.weight"] = [D]
        for leaf, shape in expected_mixer_shapes(mod, lc, D).items():
            want[p + "mixer." + leaf] = shape
        if F > 0:
            want.update({p + "mlp_norm.weight": [D], p + "mlp.gate_proj.weight": [F, D],
                         p + "mlp.up_proj.weight": [F, D], p + "mlp.down_proj.weight": [D, F]})
    for name, shape in want.items():
        if name not in W:
            raise InputError(f"checkpoint lacks tensor {name}")
        if list(W[name].shape) != shape:
            raise InputError(f"tensor {name}: shape {list(W[name].shape)}, expected {shape}")
    extra = sorted(set(W) - set(want))
    if extra:  # a tensor the reference would silently ignore is a mismatch in the making
        raise InputError(f"checkpoint has tensor(s) the reference does not use: {', '.join(extra[:5])}")
    return cfg, layers, W


# ----------------------------------------------------------------------------------------------
# model (float64), §0.3
# ----------------------------------------------------------------------------------------------
def mixer_forward(mod, W, p, lc, D, x, P):
    """One layer's mixer; a bidirectional layer (§8) through the plugin's forward_bidir."""
    if lc.get("bidir", 0) not in (0, 1, False, True):
        raise InputError(f"layer {p}: bidir must be 0 or 1, got {lc.get('bidir')!r}")
    if not lc.get("bidir"):
        return mod.forward(W, p, lc, D, x)
    if not callable(getattr(mod, "forward_bidir", None)):
        raise InputError(f"mixer {lc['mixer']!r} ({p}) is bidirectional but its plugin has no forward_bidir()")
    return mod.forward_bidir(W, p, lc, D, x, P)


def forward(cfg, layers, W, tokens, mixer_fn=None, prompt_len=0):
    """§0.3 block structure; returns logits [T, V] in float64.  mixer_fn(i, mod, W, prefix, lc, D, x)
    replaces the plugin call (used by selftests).  prompt_len P: tokens [0, P) are a prompt (no
    CAUSAL flag) that bidirectional layers read both ways (§8); 0: every token CAUSAL."""
    eps = float(cfg.get("norm_eps", 1e-5))
    D = int(cfg["d_model"])
    h = W["backbone.embeddings.weight"][torch.tensor(tokens)]
    if int(cfg.get("max_position_embeddings", 0) or 0) > 0:      # h = E[token] + P[pos] (§0.3)
        if len(tokens) > int(cfg["max_position_embeddings"]):
            raise InputError(f"{len(tokens)} tokens exceed max_position_embeddings")
        h = h + W["backbone.pos_embeddings.weight"][: len(tokens)]
    for i, (lc, mod, F) in enumerate(layers):
        p = f"backbone.layers.{i}."
        x = rmsnorm(h, W[p + "norm.weight"], eps)
        h = h + (mixer_fn(i, mod, W, p + "mixer.", lc, D, x) if mixer_fn
                 else mixer_forward(mod, W, p + "mixer.", lc, D, x, prompt_len))
        if F > 0:
            h = h + swiglu(rmsnorm(h, W[p + "mlp_norm.weight"], eps), W, p)
    head = W["backbone.embeddings.weight"] if cfg.get("tie_embeddings", True) else W["lm_head.weight"]
    return rmsnorm(h, W["backbone.norm_f.weight"], eps) @ head.T


# ----------------------------------------------------------------------------------------------
# random checkpoint
# ----------------------------------------------------------------------------------------------
def make_ckpt(out, seed, V, D, mixers, ff_pattern, tied, layer_opts=(), max_pos=0, bidir=()):
    """mixers: one name per layer; layer_opts: [(mixer or None, key, value)] applied to each
    matching layer's config before its plugin's make_params; bidir: indices of bidirectional layers."""
    g = torch.Generator().manual_seed(seed)
    rn = lambda *shape: torch.randn(*shape, generator=g, dtype=F64)
    mat = lambda o, i: rn(o, i) / math.sqrt(i)                      # moderate scale, ~unit outputs
    W = {"backbone.embeddings.weight": 0.5 * rn(V, D)}     # small: mixers matter
    layers = []
    for i, name in enumerate(mixers):
        mod = load_mixer(name)
        F = ff_pattern[i % len(ff_pattern)]
        p = f"backbone.layers.{i}."
        lc = {"mixer": name}
        for scope, k, v in layer_opts:
            if scope in (None, name):
                lc[k] = v
        W[p + "norm.weight"] = 1 + 0.2 * rn(D)
        for leaf, t in mod.make_params(lc, D, g).items():
            W[p + "mixer." + leaf] = t
        if F > 0:
            W.update({p + "mlp_norm.weight": 1 + 0.2 * rn(D), p + "mlp.gate_proj.weight": mat(F, D),
                      p + "mlp.up_proj.weight": mat(F, D), p + "mlp.down_proj.weight": mat(D, F)})
        lc["d_ff"] = F
        if i in bidir:
            lc["bidir"] = 1
        layers.append(lc)
    W["backbone.norm_f.weight"] = 1 + 0.2 * rn(D)
    if max_pos > 0:
        W["backbone.pos_embeddings.weight"] = 0.5 * rn(max_pos, D)
    if not tied:
        W["lm_head.weight"] = rn(V, D) / math.sqrt(D)
    cfg = {"format": "eidetic", "format_version": 1, "vocab_size": V, "d_model": D,
           "n_layer": len(layers), "tie_embeddings": tied, "norm_eps": 1e-5, "d_ff": 0,
           "layers": layers}
    if max_pos > 0:
        cfg["max_position_embeddings"] = max_pos
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    write_safetensors(os.path.join(out, "model.safetensors"), W, "F32")


# ----------------------------------------------------------------------------------------------
# self-test: the scaffold, then every plugin's own selftest()
# ----------------------------------------------------------------------------------------------
def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def selftest():
    g = torch.Generator().manual_seed(1234)
    rn = lambda *s: torch.randn(*s, generator=g, dtype=F64)
    results = []

    def check(name, err, tol):
        results.append((name, err <= tol, f"rel err {err:.3e} (tol {tol:g})"))

    T, C = 9, 6
    x, w, b = rn(T, C), rn(C, 1, 4), rn(C)
    conv_t = torch.nn.functional.conv1d(x.T[None], w, b, padding=3, groups=C)[0, :, :T].T
    check("causal conv == torch conv1d(groups=C) with left padding", rel_err(causal_conv(x, w, b), conv_t), 1e-13)

    # bidir_scan (§8.1) against the rule written out: S_r[t] = a_t S_r[t+1] + b_t inside the prompt,
    # b_t at its last token and at every CAUSAL token; forward channels untouched
    a, b, P, rf = torch.rand(T, C, generator=g, dtype=F64), rn(T, C), 5, 3
    def lin(a, b):
        h, out = torch.zeros(a.shape[1], dtype=F64), []
        for t in range(a.shape[0]):
            h = a[t] * h + b[t]
            out.append(h)
        return torch.stack(out)
    want = lin(a, b)
    for t in reversed(range(T)):
        want[t, rf:] = b[t, rf:] + (a[t, rf:] * want[t + 1, rf:] if t + 1 < P else 0)
    check("bidir_scan == the reverse recurrence with the CAUSAL cut", rel_err(bidir_scan(lin, P, rf, (1, 1))(a, b), want), 1e-14)

    names = available_mixers()
    with tempfile.TemporaryDirectory() as d:
        for name in names:
            # a 3-layer model of this mixer with MLPs on layers 1 and 3 and an untied head
            ck = os.path.join(d, name)
            try:
                make_ckpt(ck, 7, V=40, D=16, mixers=[name] * 3, ff_pattern=[24, 0], tied=False)
                cfg, layers, W = load_ckpt(ck)
            except InputError as e:
                results.append((f"[{name}] make-ckpt / load round trip", False, str(e)))
                continue
            toks = [int(t) for t in torch.randint(0, 40, (11,), generator=g)]
            full = forward(cfg, layers, W, toks)
            check(f"[{name}] causality: logits(prefix of 5) == first 5 rows of logits(11)",
                  rel_err(forward(cfg, layers, W, toks[:5]), full[:5]), 1e-13)
            # the mixer must mix: changing token 0 changes the logits at t = 1
            moved = forward(cfg, layers, W, [(toks[0] + 1) % 40] + toks[1:])
            chg = rel_err(moved[1:2], full[1:2])
            results.append((f"[{name}] earlier tokens reach later positions", chg > 1e-3,
                            f"rel change at t=1 {chg:.3e}"))
        p = os.path.join(d, "x.safetensors")
        t = rn(5, 7)
        write_safetensors(p, {"logits": t}, "F64")
        check("safetensors F64 write/read roundtrip", rel_err(read_safetensors(p)["logits"], t), 0.0)

    for name in names:
        mod = load_mixer(name)
        if callable(getattr(mod, "selftest", None)):
            results += [(f"[{name}] {n}", ok, det) for n, ok, det in mod.selftest()]

    fails = [n for n, ok, _ in results if not ok]
    for n, ok, det in results:
        print(f"  {'ok  ' if ok else 'FAIL'} {n}: {det}")
    print(f"selftest (mixers: {', '.join(names) or 'none'}):",
          "PASS" if not fails else "FAIL " + ", ".join(fails))
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


def parse_value(v):
    """KEY=VALUE value: int, else float, else true/false, else the string."""
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def parse_layer_opt(s):
    """'KEY=VALUE' (every layer) or 'MIXER.KEY=VALUE' (only layers of that mixer)."""
    m = re.fullmatch(r"(?:([A-Za-z][A-Za-z0-9_-]*)\.)?([A-Za-z_][A-Za-z0-9_]*)=(.+)", s)
    if not m:
        raise InputError(f"--layer-opt must be KEY=VALUE or MIXER.KEY=VALUE, got {s!r}")
    return m.group(1), m.group(2), parse_value(m.group(3))


def ref_logits(ckpt, tokens, prompt_len=0):
    cfg, layers, W = load_ckpt(ckpt)
    toks = parse_tokens(tokens, int(cfg["vocab_size"]))
    if not 0 <= prompt_len <= len(toks):
        raise InputError(f"--prompt-len {prompt_len} outside [0, {len(toks)}] (the number of tokens)")
    return forward(cfg, layers, W, toks, prompt_len=prompt_len)


def parse_bidir(spec, n):
    """--bidir as `eidetic train`: alternate (even layers), all, none, or a comma list of indices."""
    if spec in ("none", ""):
        return set()
    if spec in ("alternate", "all"):
        return {i for i in range(n) if spec == "all" or i % 2 == 0}
    try:
        idx = {int(v) for v in spec.split(",")}
    except ValueError:
        raise InputError(f"--bidir must be alternate, all, none or a comma list of layer indices, got {spec!r}")
    if any(not 0 <= i < n for i in idx):
        raise InputError(f"--bidir {spec}: index out of range [0, {n})")
    return idx


def cmd_make_ckpt(a):
    try:
        ff = [int(v) for v in a.d_ff_pattern.split(",")]
    except ValueError:
        raise InputError(f"--d-ff-pattern must be comma-separated integers, got {a.d_ff_pattern!r}")
    spec = [m.strip() for m in a.layers_spec.split(",")]
    if not all(spec):
        raise InputError(f"--layers-spec must be a comma list of mixer names, got {a.layers_spec!r}")
    n = a.layers if a.layers is not None else len(spec)     # --layers N: cycle the spec to N layers
    if min(a.vocab, a.d_model, n) < 1 or min(ff) < 0:
        raise InputError("sizes must be positive (d_ff >= 0)")
    opts = [parse_layer_opt(s) for s in a.layer_opt]
    for key in ("d_state", "expand", "d_conv", "dt_rank"):  # Longhorn/Mamba shorthands
        v = getattr(a, key)
        if v is not None:
            if v < 1:
                raise InputError(f"--{key.replace('_', '-')} must be positive")
            opts.append((None, key, v))
    make_ckpt(a.out, a.seed, a.vocab, a.d_model, [spec[i % len(spec)] for i in range(n)], ff,
              not a.untied, opts, a.max_pos, parse_bidir(a.bidir, n))
    print(f"wrote checkpoint {a.out}")
    return 0


def cmd_compare(a):
    ref = ref_logits(a.ckpt, a.tokens, a.prompt_len)
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


def main(argv=None, prog=None):
    ap = argparse.ArgumentParser(prog=prog, description="float64 eidetic model reference "
                                 "(docs/layers.md §0; mixers from tests/ref/mixers/NAME.py)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-ckpt", help="write a random checkpoint directory (F32)")
    mk.add_argument("--out", required=True)
    mk.add_argument("--seed", type=int, required=True)
    mk.add_argument("--vocab", type=int, default=64)
    mk.add_argument("--d-model", type=int, default=16)
    mk.add_argument("--layers-spec", default="longhorn,longhorn",
                    help="comma list, one mixer per layer (default longhorn,longhorn)")
    mk.add_argument("--layers", type=int, default=None,
                    help="number of layers (cycles --layers-spec; default: its length)")
    mk.add_argument("--d-ff-pattern", default="0,48", help="per-layer d_ff, cycled over layers")
    mk.add_argument("--untied", action="store_true", help="write a separate lm_head.weight")
    mk.add_argument("--max-pos", type=int, default=0,
                    help="learned absolute positions: max_position_embeddings (0 = none)")
    mk.add_argument("--layer-opt", action="append", default=[], metavar="[MIXER.]KEY=VALUE",
                    help="set a per-layer config field before make_params (repeatable); "
                         "MIXER. limits it to layers of that mixer")
    mk.add_argument("--bidir", default="none",
                    help="bidirectional layers (docs/layers.md §8): alternate (even), all, none, or a list 0,2")
    for flag in ("--d-state", "--expand", "--d-conv", "--dt-rank"):
        mk.add_argument(flag, type=int, default=None,
                        help=f"shorthand for --layer-opt {flag[2:].replace('-', '_')}=N")
    lg = sub.add_parser("logits", help="write reference logits [T,V] F32")
    cp = sub.add_parser("compare", help="compare a logits file against the reference")
    for p in (lg, cp):
        p.add_argument("--ckpt", required=True)
        p.add_argument("--tokens", required=True)
        p.add_argument("--prompt-len", type=int, default=0,
                       help="tokens [0, P) are a prompt that bidirectional layers read both ways (default 0)")
    lg.add_argument("--out", required=True)
    lg.add_argument("--f64", action="store_true", help="write F64 instead of F32")
    cp.add_argument("--logits", required=True)
    cp.add_argument("--tol", type=float, default=1e-4)
    sub.add_parser("selftest", help="check the scaffold and every mixer plugin")
    a = ap.parse_args(argv)

    if a.cmd == "make-ckpt":
        return cmd_make_ckpt(a)
    if a.cmd == "logits":
        lo = ref_logits(a.ckpt, a.tokens, a.prompt_len)
        write_safetensors(a.out, {"logits": lo}, "F64" if a.f64 else "F32")
        print(f"wrote logits {list(lo.shape)} to {a.out}")
        return 0
    if a.cmd == "compare":
        return cmd_compare(a)
    return selftest()


def run(argv=None, prog=None):
    try:
        sys.exit(main(argv, prog))
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    run()
