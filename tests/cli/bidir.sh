#!/usr/bin/env bash
# --bidir (docs/layers.md §8, docs/birdie.md "Bidirectional layers in eidetic"): stored per layer in
# config.json, read back by a resumed run and by eval; bad values are refused with one clear error and
# nothing written.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"

R="$T/bd"
expect_ok "train alternate" "$E" train --preset tiny --layers longhorn,mamba2,gla --bidir alternate --steps 3 \
    --eval-examples 8 --out "$R" --quiet
n=$(grep -c '"bidir":' "$R/config.json")
if [ "$n" -eq 2 ]; then ok; else bad "alternate over 3 layers: expected 2 layers with bidir in config.json, got $n"; fi
expect_ok "resume keeps it" "$E" train --resume "$R" --steps 5 --quiet
n=$(grep -c '"bidir":' "$R/config.json")
if [ "$n" -eq 2 ]; then ok; else bad "resumed: expected 2 bidir layers, got $n"; fi
expect_ok "eval a bidir checkpoint" "$E" eval --ckpt "$R" --examples 8
L="$T/list"
expect_ok "train list" "$E" train --preset tiny --layers longhorn,longhorn,longhorn --bidir 1,2 --steps 2 \
    --eval-examples 8 --out "$L" --quiet
n=$(grep -c '"bidir":' "$L/config.json")
if [ "$n" -eq 2 ]; then ok; else bad "--bidir 1,2: expected 2 bidir layers, got $n"; fi

expect_fail "unknown value" "--bidir .*expected an integer" "$E" train --preset tiny --bidir sideways --steps 2 --out "$T/x1"
expect_fail "index out of range" "--bidir .*out of range" "$E" train --preset tiny --bidir 0,9 --steps 2 --out "$T/x2"
expect_fail "listed twice" "layer 0 listed twice" "$E" train --preset tiny --layers longhorn,longhorn --bidir 0,0 \
    --steps 2 --out "$T/x3"
# every mixer has a bidirectional form now: attention/swa with the prefix-LM mask, hawk, gated-ssm
A="$T/attn"
expect_ok "attn, swa, hawk, gated-ssm all bidir" "$E" train --preset tiny --layers attn,swa,hawk,gated-ssm --bidir all \
    --steps 2 --eval-examples 8 --out "$A" --quiet
n=$(grep -c '"bidir":' "$A/config.json")
if [ "$n" -eq 4 ]; then ok; else bad "--bidir all over attn,swa,hawk,gated-ssm: expected 4 bidir layers, got $n"; fi
# info marks the reverse half of a bidirectional layer and what its decode state carries
expect_ok "info of the alternate checkpoint" "$E" info --ckpt "$R"
n=$(grep -c "(bidir: +reverse half, 0 extra params)" "$T/out")
if [ "$n" -eq 2 ]; then ok; else bad "info --ckpt (alternate over 3 layers): expected 2 reverse-half lines, got $n"; fi
expect_ok "info hawk bidir" "$E" info --preset tiny --layers hawk,hawk,attn --bidir 0,2
# tiny: d_model 32, hawk R = 32: state = ring 3x32 + s 32 + marker = 129, reverse half = channels [16, 32)
grep -q "hawk (bidir: +reverse half, 0 extra params): 16 of the 129 state floats .* carried 113 floats" "$T/out" && ok \
    || bad "info: hawk's reverse half not reported as 16 of 129 floats: $(grep bidir "$T/out")"
n=$(grep -c "bidir" "$T/out")
if [ "$n" -eq 3 ]; then ok; else bad "info --bidir 0,2: expected hawk + attn lines and the total, got $n lines"; fi
grep -q "attn (bidir: prefix-LM mask" "$T/out" && ok || bad "info: bidirectional attention not marked"
grep -q "^bidirectional: 16 of those floats" "$T/out" && ok || bad "info: the total reverse half is not 16 floats"
expect_ok "info causal" "$E" info --preset tiny --layers hawk,hawk --bidir none
if grep -q bidir "$T/out"; then bad "info marks a causal model as bidirectional"; else ok; fi
# forward --prompt-len: the prompt flags reach the model (the logits change), bad values refused
expect_ok "forward, no prompt" "$E" forward --ckpt "$R" --tokens 5,6,7,8,9,10 --out "$T/f0.safetensors"
expect_ok "forward, prompt of 4" "$E" forward --ckpt "$R" --tokens 5,6,7,8,9,10 --prompt-len 4 --out "$T/f4.safetensors"
if cmp -s "$T/f0.safetensors" "$T/f4.safetensors"; then bad "forward --prompt-len 4: the same logits as without a prompt"; else ok; fi
expect_fail "prompt longer than the tokens" "--prompt-len 7: --tokens has only 6 tokens" "$E" forward --ckpt "$R" \
    --tokens 5,6,7,8,9,10 --prompt-len 7 --out "$T/f7.safetensors"
expect_fail "negative prompt" "--prompt-len must be >= 0" "$E" forward --ckpt "$R" --tokens 5,6 --prompt-len -1 \
    --out "$T/fm.safetensors"
for f in f7 fm; do if [ -e "$T/$f.safetensors" ]; then bad "$f: a refused forward wrote its output"; else ok; fi; done
for d in x1 x2 x3; do
    if [ -e "$T/$d" ]; then bad "$d: a refused run left an output directory"; else ok; fi
done
# a bad value in config.json is refused when loading
sed 's/"bidir":[[:space:]]*1/"bidir": 2/' "$R/config.json" > "$T/bad.json"
mkdir -p "$T/badck" && cp "$R"/*.safetensors "$T/badck/" 2>/dev/null; cp "$T/bad.json" "$T/badck/config.json"
expect_fail "bidir 2 in config.json" "bidir must be 0 or 1" "$E" eval --ckpt "$T/badck" --examples 8
summary bidir
