#!/usr/bin/env bash
# hf_load.sh [BUILD] — published Hugging Face Mamba and Mamba-2 checkpoints (docs/lm.md "Published checkpoints"):
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

for v in f32_tied f32_untied_alias sharded bf16 fp16 tied_head_stored m2_f32_tied m2_sharded_untied m2_bf16; do
    if "$E" forward --ckpt "$H/$v" --tokens "$TOK" --out "$T/$v.st" 2>"$T/err" &&
        $PY "$ROOT/tests/ref/hf_export.py" check "$H/$v/ref_logits.npy" "$T/$v.st" >"$T/out"; then ok
    else bad "logits $v: $(cat "$T/err" "$T/out" 2>/dev/null | tail -2)"; fi
done
# the decoder (prefill + one token at a time) gives the same logits
if "$E" forward --ckpt "$H/sharded" --recurrent --tokens "$TOK" --out "$T/r.st" 2>"$T/err" &&
    $PY "$ROOT/tests/ref/hf_export.py" check "$H/sharded/ref_logits.npy" "$T/r.st" >"$T/out"; then ok
else bad "recurrent logits: $(cat "$T/err" "$T/out" | tail -2)"; fi
expect_ok "generate" "$E" generate --ckpt "$H/bf16" --prompt 1,2,3 --max-new 4
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
expect_fail "gla" "\"model_type\": \"gla\" is not supported" fwd gla
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
