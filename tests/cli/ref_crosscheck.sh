#!/usr/bin/env bash
# ref_crosscheck.sh [BUILD] — the engine's logits against the independent float64 reference
# (tests/ref/ref_model.py; docs/layers.md §0.2 checkpoint format, §0.3 block structure, one plugin per
# mixer in tests/ref/mixers/).  For every mixer the engine registers that has a reference plugin:
# a 2-layer model of that mixer, and (other than longhorn) a longhorn + mixer hybrid; once, a model
# of all of them with SwiGLU MLPs (--d-ff-pattern 0,24) and an untied head; a GLA model with its
# optional short convs (d_conv 3); each mixer's model once more with --precision bf16 at 1e-1.  Each model is run with
# `eidetic forward` in the parallel form and with --recurrent (the one-token step); each run is one
# check at tol 1e-4 (max|c − ref| / max|ref|).  Bidirectional layers (docs/layers.md §8): a model of
# every mixer with --bidir alternate and one with --bidir all, run with a prompt of 9 tokens
# (--prompt-len: the rest CAUSAL; recurrent = prefill of prompt + <gen>, then steps), against the
# reference's own bidirectional computation (the reverse half = the causal scan over the reversed
# prompt, stateless after it; attention with the prefix-LM mask); and a check that the prompt flags
# change the logits (the same engine output must fail against the reference read causally).
# Ends with "ref_crosscheck: N passed, M failed".
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/../.." || exit 1
PY=/usr/bin/python3
REF="$PY tests/ref/ref_model.py"
EID="$BUILD/eidetic"

if ! $PY -c "import torch" 2>/dev/null; then
    echo "FAIL: $PY cannot import torch: python3-torch is missing (the setup script installs it)"
    echo "ref_crosscheck: 0 passed, 1 failed"
    exit 1
fi
if [ ! -x "$EID" ]; then
    echo "FAIL: $EID not found (build first: make)"
    echo "ref_crosscheck: 0 passed, 1 failed"
    exit 1
fi

# Mixers the engine offers: `train --layers nonexistent` prints "... (known: a, b, c)".
known=$("$EID" train --layers nonexistent 2>&1 | sed -n 's/.*(known: \(.*\)).*/\1/p' | tr -d ' ' | tr ',' ' ')
mixers=()
for m in $known; do
    if [ -f "tests/ref/mixers/$m.py" ]; then mixers+=("$m"); else echo "note: no reference plugin for mixer '$m' (tests/ref/mixers/$m.py); not checked"; fi
done
if [ ${#mixers[@]} -eq 0 ]; then
    echo "FAIL: no checkable mixer (engine lists: '${known}')"
    echo "ref_crosscheck: 0 passed, 1 failed"
    exit 1
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
TOKENS=3,1,4,1,5,9,2,6,5,3,5,8,9,7,9,3,2,3,8,4,62,0    # 22 tokens < vocab 64
# Small sizes that hold with d_model 16, scoped to their mixer (MIXER.KEY=VALUE): swa's window
# shorter than the sequence (§5.3); Mamba-2 heads that divide I = 32 and a small state (§3.7,
# whose defaults P = 64, N = 128 do not fit); two heads for GLA and attention (dk, dh >= 4).
OPTS=(--vocab 64 --d-model 16
      --layer-opt swa.window=5 --layer-opt swa.num_heads=2 --layer-opt attn.num_heads=2
      --layer-opt mamba2.headdim=8 --layer-opt mamba2.d_state=8 --layer-opt gla.num_heads=2
      --layer-opt hawk.num_heads=2)

pass=0; fail=0
PROMPT=0    # --prompt-len for both sides (0: no flags, every token causal)
check() {   # check NAME CKPT [--recurrent]
    local name=$1 ck=$2; shift 2
    local out="$TMP/logits.safetensors" msg
    rm -f "$out"
    if ! msg=$("$EID" forward --ckpt "$ck" --tokens "$TOKENS" --prompt-len $PROMPT --out "$out" --threads 1 "$@" 2>&1); then
        fail=$((fail + 1)); echo "FAIL $name: eidetic forward failed: $(printf '%s' "$msg" | grep -v BLAS | tail -2)"
        return
    fi
    if msg=$($REF compare --ckpt "$ck" --tokens "$TOKENS" --prompt-len $PROMPT --logits "$out" --tol "${TOL:-1e-4}" 2>&1); then
        pass=$((pass + 1)); echo "ok   $name: $(printf '%s' "$msg" | head -1 | cut -d' ' -f1-2)"
    else
        fail=$((fail + 1)); echo "FAIL $name: $(printf '%s' "$msg" | tr '\n' ' ')"
    fi
}
model() {   # model NAME SEED make-ckpt-args... : build the checkpoint, check both forms
    local name=$1 seed=$2; shift 2
    local ck="$TMP/$name" msg
    if ! msg=$($REF make-ckpt --out "$ck" --seed "$seed" "${OPTS[@]}" "$@" 2>&1); then
        fail=$((fail + 2)); echo "FAIL $name: make-ckpt failed: $msg"
        return
    fi
    check "$name parallel" "$ck"
    check "$name recurrent" "$ck" --recurrent
}

seed=1
for m in "${mixers[@]}"; do
    model "$m" $seed --layers-spec "$m,$m" --d-ff-pattern 0; seed=$((seed + 1))
    # hybrid with longhorn, when longhorn itself is checkable
    if [ "$m" = longhorn ] || ! printf '%s\n' "${mixers[@]}" | grep -qx longhorn; then continue; fi
    model "longhorn+$m" $seed --layers-spec "longhorn,$m" --d-ff-pattern 0; seed=$((seed + 1))
done
# --precision bf16 (docs/performance.md "Mixed precision"): each mixer's two-layer model, both forms,
# at bf16's tolerance 1e-1 — 8-bit mantissas in every matrix product gave 3e-3..5.6e-2 of max|logit|
# here (B'MOJO-F's one-token step highest); a wrong product (transpose, stride) is off by O(1) — with oneDNN's emulation where the CPU has no native bf16; and the bf16 logits
# must miss the fp32 tolerance (bf16 really ran)
for m in "${mixers[@]}"; do
    EIDETIC_BF16_EMULATE=1 TOL=1e-1 check "$m bf16 parallel" "$TMP/$m" --precision bf16
    EIDETIC_BF16_EMULATE=1 TOL=1e-1 check "$m bf16 recurrent" "$TMP/$m" --recurrent --precision bf16
done
m=${mixers[0]}
if EIDETIC_BF16_EMULATE=1 "$EID" forward --ckpt "$TMP/$m" --tokens "$TOKENS" --out "$TMP/bf.safetensors" --threads 1 \
        --precision bf16 >/dev/null 2>&1 \
    && ! $REF compare --ckpt "$TMP/$m" --tokens "$TOKENS" --logits "$TMP/bf.safetensors" --tol 1e-4 >/dev/null 2>&1; then
    pass=$((pass + 1)); echo "ok   $m bf16: the logits differ from fp32's beyond its 1e-4 (bf16 products ran)"
else
    fail=$((fail + 1)); echo "FAIL $m bf16: the bf16 logits match the reference at fp32's tolerance (bf16 did not run?)"
fi
# GLA with its optional short convs on q, k, v (docs/layers.md §4.1; d_conv = 3)
if printf '%s\n' "${mixers[@]}" | grep -qx gla; then
    model "gla+conv" $seed --layers-spec gla,gla --d-ff-pattern 0 --layer-opt gla.d_conv=3; seed=$((seed + 1))
fi
# the Zoology Fig. 2 attention baseline: learned absolute positions, attention without RoPE (§0.3, §5.2)
if printf '%s\n' "${mixers[@]}" | grep -qx attn && printf '%s\n' "${mixers[@]}" | grep -qx swa; then
    model "learned-pos[attn,swa]" $seed --layers-spec attn,swa --d-ff-pattern 0,24 --max-pos 40 \
        --layer-opt attn.no_rope=1 --layer-opt swa.no_rope=1; seed=$((seed + 1))
fi
if printf '%s\n' "${mixers[@]}" | grep -qx bmojo; then   # B'MOJO with another SSM, QK-norm, untied fading projections
    model "bmojo[longhorn,qk,untied]" $seed --layers-spec bmojo,bmojo-f --d-ff-pattern 0 --layer-opt ssm=longhorn \
        --layer-opt qk_norm=1 --layer-opt untied=1 --layer-opt bmojo.mem_size=2 --layer-opt bmojo.mem_topk=1; seed=$((seed + 1))
    model "bmojo[gla,random]" $seed --layers-spec bmojo,bmojo --d-ff-pattern 0 --layer-opt ssm=gla \
        --layer-opt bmojo.score=random; seed=$((seed + 1))
fi
all=$(IFS=,; echo "${mixers[*]}")
[ ${#mixers[@]} -eq 1 ] && all="$all,$all"     # at least two layers, so the MLP pattern bites
model "mlp+untied[$all]" $seed --layers-spec "$all" --d-ff-pattern 0,24 --untied; seed=$((seed + 1))

# bidirectional layers: every mixer that has a bidirectional form (the engine refuses the others:
# B'MOJO's layers have none yet), even layers (alternate) and all layers, a prompt of 9 tokens
PROMPT=9
bidir=()
for m in "${mixers[@]}"; do
    "$EID" info --layers "$m,$m" --bidir all >/dev/null 2>&1 && bidir+=("$m")
done
all=$(IFS=,; echo "${bidir[*]}")
[ ${#bidir[@]} -eq 1 ] && all="$all,$all"
model "bidir-alternate[$all]" $seed --layers-spec "$all" --d-ff-pattern 0,24 --bidir alternate; seed=$((seed + 1))
model "bidir-all[$all]" $seed --layers-spec "$all" --d-ff-pattern 0 --bidir all
# a checkpoint written by `eidetic train --bidir alternate` (its config.json as the engine writes it)
if msg=$("$EID" train --preset tiny --vocab 64 --layers longhorn,hawk,mamba,attn --bidir alternate --steps 3 \
    --eval-examples 8 --out "$TMP/trained-bidir" --quiet --threads 1 2>&1); then
    check "trained --bidir alternate[longhorn,hawk,mamba,attn] parallel" "$TMP/trained-bidir"
    check "trained --bidir alternate[longhorn,hawk,mamba,attn] recurrent" "$TMP/trained-bidir" --recurrent
else
    fail=$((fail + 2)); echo "FAIL trained --bidir alternate: eidetic train failed: $(printf '%s' "$msg" | tail -2)"
fi
# the flags matter: the engine's bidirectional logits do not match the reference read causally
ck="$TMP/bidir-all[$all]"
if "$EID" forward --ckpt "$ck" --tokens "$TOKENS" --prompt-len 9 --out "$TMP/bl.safetensors" --threads 1 >/dev/null 2>&1 \
    && ! $REF compare --ckpt "$ck" --tokens "$TOKENS" --prompt-len 0 --logits "$TMP/bl.safetensors" --tol 1e-4 >/dev/null 2>&1; then
    pass=$((pass + 1)); echo "ok   bidir: the prompt flags change the logits (no match against the causal reading)"
else
    fail=$((fail + 1)); echo "FAIL bidir: the engine's logits with a prompt match the reference read causally"
fi

echo "ref_crosscheck: $pass passed, $fail failed"
[ $fail -eq 0 ]
