#!/usr/bin/python3
"""Tiny Hugging Face Mamba and Mamba-2 checkpoints and their reference logits (docs/lm.md "Published checkpoints").

    hf_export.py make DIR      writes DIR/<variant>/ (config.json in transformers' MambaConfig schema with
                               the published key set, tensors named as MambaForCausalLM saves them) and
                               DIR/<variant>/ref_logits.npy for the tokens in DIR/tokens.txt
    hf_export.py check REF.npy OUT.safetensors   compares eidetic's `forward` output: max |a-b| / max |b|
                               must be <= 1e-4 (exit 1 otherwise)

Variants: f32 tied (backbone.embeddings.weight, padded vocab), untied with mamba_ssm's name
backbone.embedding.weight, sharded (model.safetensors.index.json + 2 files), bf16, fp16, tied with an
equal lm_head.weight stored.  The reference forward is the HF MambaForCausalLM computation written from
its equations: embedding, per layer h += mixer(RMSNorm(h)) (the mixer is tests/ref/mixers/mamba.py,
whose leaves and semantics are HF's), final RMSNorm, head = lm_head or the embedding; float64.
Run with /usr/bin/python3 (torch, numpy).
"""
import json
import os
import struct
import sys

import numpy as np


def check(ref_path, out_path):
    ref = np.load(ref_path)
    with open(out_path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    e = hdr["logits"]
    a, b = e["data_offsets"]
    got = np.frombuffer(data[a:b], dtype={"F32": "<f4", "F64": "<f8"}[e["dtype"]]).reshape(e["shape"])
    if got.shape != ref.shape:
        print(f"shape {got.shape} != reference {ref.shape}")
        return 1
    rel = float(np.abs(got - ref).max() / np.abs(ref).max())
    print(f"max rel err {rel:.3g}")
    return 0 if rel <= 1e-4 else 1


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "check":
    sys.exit(check(sys.argv[2], sys.argv[3]))    # numpy only: no torch start-up per comparison

import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "mixers")]
import ref_model  # noqa: E402  (plugins import helpers from it)
import mamba as mamba_mixer  # noqa: E402
import mamba2 as mamba2_mixer  # noqa: E402

D, L, N, E, K, R, V, V_TOK, EPS = 16, 2, 4, 2, 4, 2, 40, 37, 1e-5
TOKENS = [1, 5, 36, 2, 9, 9, 30, 4, 17, 0, 22, 35]


def hf_config(tie):
    """The key set of state-spaces/mamba-130m-hf's config.json, tiny sizes."""
    return {
        "architectures": ["MambaForCausalLM"], "bos_token_id": 0, "conv_kernel": K, "d_inner": E * D,
        "d_model": D, "eos_token_id": 0, "expand": E, "fused_add_norm": True, "hidden_act": "silu",
        "hidden_size": D, "initializer_range": 0.1, "intermediate_size": E * D, "layer_norm_epsilon": EPS,
        "model_type": "mamba", "n_layer": L, "num_hidden_layers": L, "pad_token_id": 0,
        "pad_vocab_size_multiple": 8, "rescale_prenorm_residual": False, "residual_in_fp32": True,
        "rms_norm": True, "ssm_cfg": {}, "state_size": N, "time_step_floor": 0.0001,
        "time_step_init_scheme": "random", "time_step_max": 0.1, "time_step_min": 0.001,
        "time_step_rank": R, "time_step_scale": 1.0, "torch_dtype": "float32",
        "transformers_version": "4.39.0.dev0", "use_bias": False, "use_cache": True, "use_conv_bias": True,
        "vocab_size": V, "tie_word_embeddings": tie}


H2, P2, G2 = 4, 8, 2   # Mamba-2: heads, head_dim (H2·P2 = E·D), n_groups


def hf_config2(tie):
    """The key set of a transformers Mamba2Config (mamba2-130m converted to HF), tiny sizes."""
    return {
        "architectures": ["Mamba2ForCausalLM"], "bos_token_id": 0, "chunk_size": 256, "conv_kernel": K,
        "eos_token_id": 0, "expand": E, "head_dim": P2, "hidden_act": "silu", "hidden_size": D,
        "initializer_range": 0.1, "layer_norm_epsilon": EPS, "model_type": "mamba2", "n_groups": G2,
        "norm_before_gate": False, "num_heads": H2, "num_hidden_layers": L, "pad_token_id": 0,
        "rescale_prenorm_residual": False, "residual_in_fp32": True, "rms_norm": True, "state_size": N,
        "tie_word_embeddings": tie, "time_step_floor": 0.0001, "time_step_max": 0.1, "time_step_min": 0.001,
        "time_step_rank": 1, "torch_dtype": "float32", "transformers_version": "4.44.0.dev0",
        "use_bias": False, "use_cache": True, "use_conv_bias": True, "vocab_size": V}


def weights2(gen, tie):
    """Mamba2ForCausalLM's tensors (float64)."""
    def rnd(*shape, s=1.0):
        return torch.randn(*shape, generator=gen, dtype=torch.float64) * s
    I, CD = E * D, E * D + 2 * G2 * N
    W = {"backbone.embeddings.weight": rnd(V, D, s=0.5), "backbone.norm_f.weight": 1 + rnd(D, s=0.1)}
    for i in range(L):
        p = f"backbone.layers.{i}."
        W[p + "norm.weight"] = 1 + rnd(D, s=0.1)
        m = p + "mixer."
        W[m + "in_proj.weight"] = rnd(2 * I + 2 * G2 * N + H2, D, s=D ** -0.5)
        W[m + "conv1d.weight"] = rnd(CD, 1, K, s=K ** -0.5)
        W[m + "conv1d.bias"] = rnd(CD, s=0.2)
        W[m + "dt_bias"] = 3 * torch.rand(H2, generator=gen, dtype=torch.float64) - 2.5
        W[m + "A_log"] = torch.log(1 + 15 * torch.rand(H2, generator=gen, dtype=torch.float64))
        W[m + "D"] = 1 + rnd(H2, s=0.1)
        W[m + "norm.weight"] = 1 + rnd(I, s=0.1)
        W[m + "out_proj.weight"] = rnd(D, I, s=I ** -0.5)
    if not tie:
        W["lm_head.weight"] = rnd(V, D, s=0.5)
    return W


def weights(gen, tie):
    """MambaForCausalLM's tensors (float64, moderate random values)."""
    def rnd(*shape, s=1.0):
        return torch.randn(*shape, generator=gen, dtype=torch.float64) * s
    I = E * D
    W = {"backbone.embeddings.weight": rnd(V, D, s=0.5), "backbone.norm_f.weight": 1 + rnd(D, s=0.1)}
    for i in range(L):
        p = f"backbone.layers.{i}."
        W[p + "norm.weight"] = 1 + rnd(D, s=0.1)
        m = p + "mixer."
        W[m + "in_proj.weight"] = rnd(2 * I, D, s=D ** -0.5)
        W[m + "conv1d.weight"] = rnd(I, 1, K, s=K ** -0.5)
        W[m + "conv1d.bias"] = rnd(I, s=0.1)
        W[m + "x_proj.weight"] = rnd(R + 2 * N, I, s=I ** -0.5)
        W[m + "dt_proj.weight"] = rnd(I, R, s=R ** -0.5)
        dt = torch.exp(torch.rand(I, generator=gen, dtype=torch.float64) * (np.log(0.1) - np.log(1e-3)) + np.log(1e-3))
        W[m + "dt_proj.bias"] = dt + torch.log(-torch.expm1(-dt))            # softplus^-1(dt)
        W[m + "A_log"] = torch.log(torch.arange(1, N + 1, dtype=torch.float64)).repeat(I, 1) + rnd(I, N, s=0.1)
        W[m + "D"] = 1 + rnd(I, s=0.1)
        W[m + "out_proj.weight"] = rnd(D, I, s=I ** -0.5)
    if not tie:
        W["lm_head.weight"] = rnd(V, D, s=0.5)
    return W


def reference_logits(W, tokens):
    """HF MambaForCausalLM forward, float64: [T, V]."""
    emb = W.get("backbone.embeddings.weight", W.get("backbone.embedding.weight"))
    h = emb[torch.tensor(tokens)]
    lc = {"expand": E, "d_state": N, "d_conv": K, "dt_rank": R, "headdim": P2, "ngroups": G2}
    mixer = mamba2_mixer if "backbone.layers.0.mixer.dt_bias" in W else mamba_mixer
    for i in range(L):
        p = f"backbone.layers.{i}."
        h = h + mixer.forward(W, p + "mixer.", lc, D, ref_model.rmsnorm(h, W[p + "norm.weight"], EPS))
    hn = ref_model.rmsnorm(h, W["backbone.norm_f.weight"], EPS)
    return hn @ W.get("lm_head.weight", emb).T


def round_to(W, dtype):
    """The weights as a half-precision file stores them (round to nearest even), back in float64."""
    return {k: v.to(dtype).to(torch.float64) for k, v in W.items()}


def raw_bytes(t, dtype):
    if dtype == "BF16":   # numpy has no bfloat16: the top half of each float32 after torch's rounding
        return (t.to(torch.bfloat16).to(torch.float32).numpy().astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
    if dtype == "F16":    # torch's rounding, the same as round_to (numpy's may differ by an ulp)
        return t.to(torch.float16).numpy().astype("<f2").tobytes()
    return t.numpy().astype("<f4").tobytes()


def write_safetensors(path, W, dtype):
    header, blobs, off = {}, [], 0
    for name, t in W.items():
        b = raw_bytes(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_variant(root, name, W, tie, dtype="F32", shards=1, torch_dtype="float32", ref=True):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    cfg = (hf_config2 if "backbone.layers.0.mixer.dt_bias" in W else hf_config)(tie)
    cfg["torch_dtype"] = torch_dtype
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), W, dtype)
    else:
        names, wmap = list(W), {}
        for s in range(shards):
            fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = {k: W[k] for k in names[s::shards]}
            write_safetensors(os.path.join(d, fn), part, dtype)
            wmap.update({k: fn for k in part})
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": wmap}, f, indent=2)
    if not ref:
        return
    ref = round_to(W, {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}[dtype])
    np.save(os.path.join(d, "ref_logits.npy"), reference_logits(ref, TOKENS).numpy())


def make(root):
    gen = torch.Generator().manual_seed(12)
    tied, untied = weights(gen, True), weights(gen, False)
    write_variant(root, "f32_tied", tied, True)
    alias = {("backbone.embedding.weight" if k == "backbone.embeddings.weight" else k): v for k, v in untied.items()}
    write_variant(root, "f32_untied_alias", alias, False)
    write_variant(root, "sharded", untied, False, shards=2)
    write_variant(root, "bf16", tied, True, dtype="BF16", torch_dtype="bfloat16")
    write_variant(root, "fp16", untied, False, dtype="F16", torch_dtype="float16")
    head = dict(tied, **{"lm_head.weight": tied["backbone.embeddings.weight"]})
    write_variant(root, "tied_head_stored", head, True)
    m2_tied, m2_untied = weights2(gen, True), weights2(gen, False)
    write_variant(root, "m2_f32_tied", m2_tied, True)
    write_variant(root, "m2_sharded_untied", m2_untied, False, shards=3)
    write_variant(root, "m2_bf16", m2_untied, False, dtype="BF16", torch_dtype="bfloat16")
    # planted faults for the strict-loading tests (tests/cli/hf_load.sh)
    write_variant(root, "bad_extra_tensor", dict(tied, **{"backbone.layers.0.mixer.extra": torch.zeros(3)}), True)
    write_variant(root, "bad_missing_tensor", {k: v for k, v in tied.items() if k != "backbone.layers.1.mixer.D"}, True,
                  ref=False)
    write_variant(root, "bad_tied_head", dict(tied, **{"lm_head.weight": untied["lm_head.weight"]}), True, ref=False)
    write_variant(root, "bad_untied_no_head", tied, False, ref=False)
    with open(os.path.join(root, "tokens.txt"), "w") as f:
        f.write(",".join(map(str, TOKENS)))
    assert max(TOKENS) < V_TOK <= V   # the padded rows V_TOK..V-1 are never a token


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
        sys.exit(0)
    print(__doc__)
    sys.exit(2)
