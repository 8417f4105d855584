#!/usr/bin/python3
"""Tiny Hugging Face Mamba, Mamba-2 and fla-hub GLA checkpoints and their reference logits (docs/lm.md "Published checkpoints").

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
GLA variants are fla's GLAForCausalLM (fla-org/flash-linear-attention, fla/models/gla): config.json with
GLAConfig's key set, tensors model.embeddings / model.layers.i.{attn_norm, attn.*, mlp_norm, mlp.*} /
model.norm / lm_head; the reference block is h += gla(RMSNorm(h)), h += SwiGLU(RMSNorm(h)) with the mixer
of tests/ref/mixers/gla.py (its output norm's eps = norm_eps, as fla passes it).
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
import gla as gla_mixer  # noqa: E402

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


HG = 2   # GLA heads: Dk = 8 (dk 4), Dv = 16 (dv 8); gate rank 16 and tau 16 are fixed by fla's GLA block


def gla_config(tie, **over):
    """The key set fla's GLAConfig writes with save_pretrained (as in fla-hub/gla-*), tiny sizes."""
    c = {"architectures": ["GLAForCausalLM"], "attn": None, "attn_mode": "chunk", "attnres_block_size": None,
         "bos_token_id": 1, "clamp_min": None, "conv_size": K, "elementwise_affine": True, "eos_token_id": 2,
         "expand_k": 0.5, "expand_v": 1, "feature_map": None, "fuse_cross_entropy": True,
         "fuse_linear_cross_entropy": False, "fuse_norm": True, "fuse_swiglu": True, "hidden_act": "swish",
         "hidden_ratio": 4, "hidden_size": D, "initializer_range": 0.02, "intermediate_size": None,
         "max_position_embeddings": 2048, "model_type": "gla", "norm_eps": 1e-6, "num_heads": HG,
         "num_hidden_layers": L, "num_kv_heads": None, "pad_token_id": None, "tie_word_embeddings": tie,
         "torch_dtype": "float32", "transformers_version": "4.53.0", "use_cache": True, "use_gk": True,
         "use_gv": False, "use_l2warp": False, "use_output_gate": True, "use_short_conv": False, "vocab_size": V}
    c.update(over)
    return c


def gla_d_ff(cfg):
    """fla's GatedMLP size: intermediate_size, else int(2/3 * hidden_ratio * hidden_size) rounded up to 256."""
    if cfg.get("intermediate_size") is not None:
        return cfg["intermediate_size"]
    f = int(cfg["hidden_size"] * (cfg.get("hidden_ratio") or 4) * 2 / 3)
    return 256 * ((f + 255) // 256)


def gla_layer_cfg(cfg):
    return {"num_heads": cfg["num_heads"], "expand_k": cfg["expand_k"], "expand_v": cfg["expand_v"],
            "gate_low_rank_dim": 16, "gate_logit_normalizer": 16, "g_norm_eps": cfg["norm_eps"],
            "d_conv": cfg["conv_size"] if cfg["use_short_conv"] else 0}


def weights_gla(gen, cfg):
    """GLAForCausalLM's tensors (float64) under fla's names."""
    def rnd(*shape, s=1.0):
        return torch.randn(*shape, generator=gen, dtype=torch.float64) * s
    F = gla_d_ff(cfg)
    W = {"model.embeddings.weight": rnd(V, D, s=0.5), "model.norm.weight": 1 + rnd(D, s=0.1)}
    for i in range(L):
        p = f"model.layers.{i}."
        W[p + "attn_norm.weight"] = 1 + rnd(D, s=0.1)
        for leaf, t in gla_mixer.make_params(gla_layer_cfg(cfg), D, gen).items():
            if leaf == "g_norm.weight" and cfg["fuse_norm"]:
                leaf = "g_norm_swish_gate.weight"     # FusedRMSNormGated's name
            W[p + "attn." + leaf] = t
        W[p + "mlp_norm.weight"] = 1 + rnd(D, s=0.1)
        W[p + "mlp.gate_proj.weight"] = rnd(F, D, s=D ** -0.5)
        W[p + "mlp.up_proj.weight"] = rnd(F, D, s=D ** -0.5)
        W[p + "mlp.down_proj.weight"] = rnd(D, F, s=F ** -0.5)
    if not cfg["tie_word_embeddings"]:
        W["lm_head.weight"] = rnd(V, D, s=0.5)
    return W


def reference_logits_gla(W, tokens, cfg, g_norm_eps=None):
    """fla GLAForCausalLM forward, float64: [T, V] (g_norm_eps: override the output norm's eps, to show
    that the check sees it)."""
    eps, lc = cfg["norm_eps"], gla_layer_cfg(cfg)
    if g_norm_eps is not None:
        lc["g_norm_eps"] = g_norm_eps
    emb = W["model.embeddings.weight"]
    h = emb[torch.tensor(tokens)]
    for i in range(L):
        p = f"model.layers.{i}."
        m = p + "attn."
        Wm = dict(W, **{m + "g_norm.weight": W.get(m + "g_norm_swish_gate.weight", W.get(m + "g_norm.weight"))})
        h = h + gla_mixer.forward(Wm, m, lc, D, ref_model.rmsnorm(h, W[p + "attn_norm.weight"], eps))
        h = h + ref_model.swiglu(ref_model.rmsnorm(h, W[p + "mlp_norm.weight"], eps), W, p)
    hn = ref_model.rmsnorm(h, W["model.norm.weight"], eps)
    return hn @ W.get("lm_head.weight", emb).T


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


def write_variant(root, name, W, tie, dtype="F32", shards=1, torch_dtype="float32", ref=True, cfg=None):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    if cfg is None:
        cfg = (hf_config2 if "backbone.layers.0.mixer.dt_bias" in W else hf_config)(tie)
    cfg = dict(cfg, torch_dtype=torch_dtype)
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
    if "model.embeddings.weight" in W:
        np.save(os.path.join(d, "ref_logits.npy"), reference_logits_gla(ref, TOKENS, cfg).numpy())
        # the output norm with eidetic's own default eps instead of norm_eps: must not match
        np.save(os.path.join(d, "ref_logits_gnorm_1e-5.npy"), reference_logits_gla(ref, TOKENS, cfg, 1e-5).numpy())
        return
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
    # fla-hub GLA: the default GLAConfig (fused g_norm name, MLP from hidden_ratio, untied, norm_eps 1e-6);
    # short convs + unfused g_norm + explicit intermediate_size + tied head, with a norm_eps large enough
    # (0.25) that the output norm's eps shows in the logits; BF16 in 2 shards
    gcfg = gla_config(False)
    g_plain = weights_gla(gen, gcfg)
    write_variant(root, "gla_f32_untied", g_plain, False, cfg=gcfg)
    ccfg = gla_config(True, use_short_conv=True, share_conv_kernel=False, fuse_norm=False, intermediate_size=24,
                      hidden_ratio=None, norm_eps=0.25)
    write_variant(root, "gla_conv_tied", weights_gla(gen, ccfg), True, cfg=ccfg)
    write_variant(root, "gla_bf16_sharded", g_plain, False, dtype="BF16", shards=2, torch_dtype="bfloat16", cfg=gcfg)
    write_variant(root, "gla_bad_eidetic_name", dict(g_plain, **{"backbone.layers.0.mixer.q_proj.weight":
                                                                   g_plain["model.layers.0.attn.q_proj.weight"]}),
                  False, cfg=gcfg, ref=False)
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
