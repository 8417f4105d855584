#!/usr/bin/env bash
# hf_load.sh [BUILD] — published Hugging Face Mamba, Mamba-2 and fla-hub GLA checkpoints (docs/lm.md "Published checkpoints"):
# tests/ref/hf_export.py builds tiny MambaForCausalLM checkpoints in the published formats (tied and
# untied heads, backbone.embedding/embeddings, sharded, BF16, F16, padded vocab) with reference logits
# from an independent float64 forward; `eidetic forward` must match (max rel err <= 1e-4). Then the
# strict-loading refusals: each planted fault gives one error naming the file and the key or tensor.
# Skipped when /usr/bin/python3 cannot import torch.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
PY=/usr/bin/python3
if ! $PY -c "import torch, numpy" 2>/dev/null; then
    echo "skip: $PY cannot import torch: hf_load not run"; summary hf_load; exit
fi
H="$T/hf"
$PY "$ROOT/tests/ref/hf_export.py" make "$H" || { bad "hf_export.py make"; summary hf_load; exit 1; }
TOK=$(cat "$H/tokens.txt")

for v in f32_tied f32_untied_alias sharded bf16 fp16 tied_head_stored m2_f32_tied m2_sharded_untied m2_bf16 \
         gla_f32_untied gla_conv_tied gla_bf16_sharded; do
    if "$E" forward --ckpt "$H/$v" --tokens "$TOK" --out "$T/$v.st" 2>"$T/err" &&
        $PY "$ROOT/tests/ref/hf_export.py" check "$H/$v/ref_logits.npy" "$T/$v.st" >"$T/out"; then ok
    else bad "logits $v: $(cat "$T/err" "$T/out" 2>/dev/null | tail -2)"; fi
done
# the decoder (prefill + one token at a time) gives the same logits
if "$E" forward --ckpt "$H/sharded" --recurrent --tokens "$TOK" --out "$T/r.st" 2>"$T/err" &&
    $PY "$ROOT/tests/ref/hf_export.py" check "$H/sharded/ref_logits.npy" "$T/r.st" >"$T/out"; then ok
else bad "recurrent logits: $(cat "$T/err" "$T/out" | tail -2)"; fi
expect_ok "generate" "$E" generate --ckpt "$H/bf16" --prompt 1,2,3 --max-new 4
for v in gla_f32_untied gla_conv_tied; do # GLA through the decoder (prefill + steps; short-conv rings)
    if "$E" forward --ckpt "$H/$v" --recurrent --tokens "$TOK" --out "$T/r.st" 2>"$T/err" &&
        $PY "$ROOT/tests/ref/hf_export.py" check "$H/$v/ref_logits.npy" "$T/r.st" >"$T/out"; then ok
    else bad "recurrent logits $v: $(cat "$T/err" "$T/out" | tail -2)"; fi
done
expect_ok "generate gla" "$E" generate --ckpt "$H/gla_conv_tied" --prompt 1,2,3 --max-new 4
# GLA's per-head output norm takes norm_eps (fla passes it): the same logits with eidetic's default
# eps 1e-5 there differ from eidetic's beyond the limit (0.25 in gla_conv_tied, 1e-6 in gla_f32_untied)
for v in gla_conv_tied gla_f32_untied; do
    if "$E" forward --ckpt "$H/$v" --tokens "$TOK" --out "$T/g.st" 2>/dev/null &&
        ! $PY "$ROOT/tests/ref/hf_export.py" check "$H/$v/ref_logits_gnorm_1e-5.npy" "$T/g.st" >/dev/null; then ok
    else bad "$v: logits do not depend on the output norm's eps"; fi
done
# the check can fail: logits of one variant against another's reference
if "$E" forward --ckpt "$H/f32_tied" --tokens "$TOK" --out "$T/a.st" 2>/dev/null &&
    ! $PY "$ROOT/tests/ref/hf_export.py" check "$H/fp16/ref_logits.npy" "$T/a.st" >/dev/null; then ok
else bad "check does not catch logits of a different model"; fi

# cfg NAME EDIT: copy f32_tied to NAME with config.json edited by the Python expression EDIT on c
cfg() {
    cp -r "$H/f32_tied" "$H/$1"
    $PY -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); $2; json.dump(c, open(p,'w'))" "$H/$1/config.json"
}
fwd() { "$E" forward --ckpt "$H/$1" --tokens "$TOK" --out "$T/x.st" "${@:2}"; }
EXPECT_ONE_ERROR=1
cfg exact 'c["exact"]=True'
expect_fail "unknown key" "$H/exact/config.json: unknown key \"exact\"" fwd exact
expect_fail "unknown key, lenient" "unknown key \"exact\"" fwd exact --lenient
cfg note 'c["note"]="converted by hand"'
expect_fail "unknown string key" "config.json: unknown key \"note\"" fwd note
expect_ok "unknown string key, lenient" fwd note --lenient
cfg bias 'c["use_bias"]=True'
expect_fail "use_bias" "bias/config.json: \"use_bias\": true is not supported" fwd bias
cfg convb 'c["use_conv_bias"]=False'
expect_fail "use_conv_bias" "\"use_conv_bias\": false is not supported" fwd convb
cfg act 'c["hidden_act"]="gelu"'
expect_fail "hidden_act" "\"hidden_act\": gelu is not supported" fwd act
cfg ssm 'c["ssm_cfg"]={"d_state": 8}'
expect_fail "ssm_cfg" "\"ssm_cfg\" must be empty" fwd ssm
cfg m2 'c["model_type"]="mamba2"'
expect_fail "architectures vs model_type" "\"architectures\": MambaForCausalLM is not supported .*matching model_type" fwd m2
cfg gla 'c["model_type"]="gla"; c["architectures"]=["GLAForCausalLM"]'
expect_fail "gla keys on a mamba config" "gla/config.json: unknown key \"conv_kernel\" \(not part of the Hugging Face fla GLA" fwd gla
cfg rwkv 'c["model_type"]="rwkv"'
expect_fail "model_type rwkv" "\"model_type\": \"rwkv\" is not supported" fwd rwkv
cfg inner 'c["intermediate_size"]=48'
expect_fail "intermediate_size" "\"intermediate_size\" is 48 but expand\\*hidden_size is 32" fwd inner
cfg nl 'c["n_layer"]=3'
expect_fail "n_layer alias" "\"n_layer\" is 3 but num_hidden_layers is 2" fwd nl
cfg vocab 'c["vocab_size"]=37'
expect_fail "vocab rows" "backbone.embeddings.weight' has shape \\[40, 16\\], expected \\[37, 16\\]" fwd vocab
cfg rank 'c["time_step_rank"]="auto"'
expect_fail "time_step_rank auto (1) vs stored 2" "x_proj.weight' has shape" fwd rank
# Mamba-2 (cfg2: the same from m2_f32_tied)
cfg2() {
    cp -r "$H/m2_f32_tied" "$H/$1"
    $PY -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); $2; json.dump(c, open(p,'w'))" "$H/$1/config.json"
}
cfg2 m2nbg 'c["norm_before_gate"]=True'
expect_fail "norm_before_gate" "\"norm_before_gate\": true is not supported" fwd m2nbg
cfg2 m2lim 'c["time_step_limit"]=[0.0, 1.0]'
expect_fail "time_step_limit" "\"time_step_limit\" is not supported" fwd m2lim
cfg2 m2eps 'c["layer_norm_epsilon"]=1e-6'
expect_fail "mamba2 eps" "\"layer_norm_epsilon\": 1e-06 is not supported for Mamba-2" fwd m2eps
cfg2 m2heads 'c["num_heads"]=3'
expect_fail "num_heads*head_dim" "\"num_heads\".\"head_dim\" = 24 must equal expand.hidden_size = 32" fwd m2heads
cfg2 m2mamba1key 'c["time_step_rank"]=1; c["d_inner"]=32'
expect_fail "mamba1 key in mamba2" "unknown key \"d_inner\" \(not part of the Hugging Face Mamba-2 config" fwd m2mamba1key
cfg2 m2groups 'c["n_groups"]=3'
expect_fail "n_groups not dividing heads" "ngroups must divide the number of heads" fwd m2groups
# fla-hub GLA (cfg3: edits of gla_f32_untied): every key eidetic cannot compute exactly is refused by name
cfg3() {
    cp -r "$H/gla_f32_untied" "$H/$1"
    $PY -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); $2; json.dump(c, open(p,'w'))" "$H/$1/config.json"
}
cfg3 gfm 'c["feature_map"]="relu"'
expect_fail "gla feature_map" "gfm/config.json: \"feature_map\": relu is not supported" fwd gfm
cfg3 gclamp 'c["clamp_min"]=-8.0'
expect_fail "gla clamp_min" "\"clamp_min\" is not supported" fwd gclamp
cfg3 gnogate 'c["use_output_gate"]=False'
expect_fail "gla use_output_gate" "\"use_output_gate\": false is not supported" fwd gnogate
cfg3 gkv 'c["num_kv_heads"]=1'
expect_fail "gla num_kv_heads" "\"num_kv_heads\": 1 is not supported" fwd gkv
cfg3 ghyb 'c["attn"]={"layers": [1], "num_heads": 2}'
expect_fail "gla hybrid attn" "\"attn\" is not supported \(hybrid" fwd ghyb
cfg3 gshare 'c["use_short_conv"]=True; c["share_conv_kernel"]=True'
expect_fail "gla share_conv_kernel" "\"share_conv_kernel\": true with \"use_short_conv\": true is not supported" fwd gshare
cfg3 gact 'c["hidden_act"]="powlu"'
expect_fail "gla hidden_act" "\"hidden_act\": powlu is not supported" fwd gact
cfg3 gaff 'c["elementwise_affine"]=False'
expect_fail "gla elementwise_affine" "\"elementwise_affine\": false is not supported" fwd gaff
cfg3 ggv 'c["use_gv"]=True'
expect_fail "gla use_gv" "\"use_gv\": true is not supported" fwd ggv
cfg3 gek 'c["expand_k"]=0.3'
expect_fail "gla expand_k" "\"expand_k\".hidden_size = 4.8 .* must be integers" fwd gek
cfg3 gmode 'c["attn_mode"]="parallel"'
expect_fail "gla attn_mode" "\"attn_mode\": parallel is not supported" fwd gmode
cfg3 gres 'c["attnres_block_size"]=2'
expect_fail "gla attnres_block_size" "\"attnres_block_size\" is not supported" fwd gres
cfg3 gexact 'c["exact"]=True'
expect_fail "gla unknown key" "unknown key \"exact\" \(not part of the Hugging Face fla GLA config" fwd gexact
cfg3 gfuse 'c["fuse_norm"]=False'
expect_fail "gla fuse_norm names g_norm" "tensor 'model.layers.0.attn.g_norm.weight' is missing" fwd gfuse
cfg3 gconv 'c["use_short_conv"]=True'
expect_fail "gla use_short_conv without conv tensors" "tensor 'model.layers.0.attn.q_conv1d.weight' is missing" fwd gconv
cfg3 gff 'c["intermediate_size"]=24'
expect_fail "gla intermediate_size" "'model.layers.0.mlp.gate_proj.weight' has shape \[256, 16\], expected \[24, 16\]" fwd gff
expect_fail "gla eidetic name in an fla file" "tensor 'backbone.layers.0.mixer.q_proj.weight' is not part" fwd gla_bad_eidetic_name
expect_fail "extra tensor" "bad_extra_tensor/model.safetensors: tensor 'backbone.layers.0.mixer.extra' is not part" fwd bad_extra_tensor
expect_fail "missing tensor" "bad_missing_tensor/model.safetensors: tensor 'backbone.layers.1.mixer.D' is missing" fwd bad_missing_tensor
expect_fail "tied head differs" "\"tie_word_embeddings\" is true but tensor 'lm_head.weight' differs" fwd bad_tied_head
expect_fail "untied without head" "tensor 'lm_head.weight' is missing" fwd bad_untied_no_head
cp -r "$H/sharded" "$H/sh_unlisted"
$PY -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); del c['weight_map']['backbone.norm_f.weight']; json.dump(c, open(p,'w'))" \
    "$H/sh_unlisted/model.safetensors.index.json"
expect_fail "shard tensor not in weight_map" "tensor 'backbone.norm_f.weight' is (missing|not listed)" fwd sh_unlisted
cp -r "$H/sharded" "$H/sh_path"
$PY -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['weight_map']['lm_head.weight']='../x'; json.dump(c, open(p,'w'))" \
    "$H/sh_path/model.safetensors.index.json"
expect_fail "shard path escapes" "weight_map\\[\"lm_head.weight\"\\] must be a file name" fwd sh_path
rm "$H/sharded/model-00002-of-00002.safetensors"
expect_fail "shard file missing" "model-00002-of-00002.safetensors: cannot open" fwd sharded
summary hf_load
