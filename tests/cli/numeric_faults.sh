#!/usr/bin/env bash
# Numerical faults (docs/reliability.md "Numerical faults"): NaN injected (test-only EIDETIC_FAULT
# hook) into a weight, a gradient and the learning rate stops the run with the step and the first
# tensor where it appeared, keeping the last good checkpoint, which then resumes bit-exactly; NaN,
# Inf or negative AdamW moments and NaN weights in a run directory are refused on load naming the
# tensor; finite but huge weights make forward and generate fail instead of writing NaN logits.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
A=(--preset tiny --steps 40 --ckpt-every 8 --eval-every 20 --threads 1 --shards 1 --quiet)
strip() { sed -E 's/,"tokens_per_s":[^,]*,"elapsed_s":[^,}]*//' "$1"; }
REF=$T/ref
expect_ok "reference run" "$E" train "${A[@]}" --out "$REF"

# one injection per run: the error names the step and the tensor, step 16 stays current, and a
# resume without the fault ends exactly like the reference
inject() { # NAME FAULT PATTERN
    local R=$T/$1
    EIDETIC_FAULT=$2 "$E" train "${A[@]}" --out "$R" >/dev/null 2>"$T/err"
    local rc=$?
    [ $rc = 1 ] && grep -qE -e "$3" "$T/err" && ok || bad "$1: exit $rc: $(cat "$T/err")"
    grep -q "last good checkpoint in $R (step 16)" "$T/err" && ok || bad "$1: no mention of the kept checkpoint: $(cat "$T/err")"
    [ "$(readlink "$R/current")" = checkpoints/step-00000016 ] && ok || bad "$1: current is $(readlink "$R/current")"
    [ "$(wc -l < "$R/metrics.jsonl")" -ge 16 ] && ok || bad "$1: metrics lost"
    "$E" train --resume "$R" --quiet --threads 1 >/dev/null 2>"$T/err" && ok || bad "$1: resume: $(tail -1 "$T/err")"
    cmp -s "$R/model.safetensors" "$REF/model.safetensors" && diff -q <(strip "$R/metrics.jsonl") <(strip "$REF/metrics.jsonl") >/dev/null &&
        ok || bad "$1: the resumed run differs from the reference"
}
inject nan-weight nan-weight:21 "non-finite loss at step 21 .*first in weight tensor 'backbone\.[a-z0-9_.]+'"
inject nan-grad nan-grad:21 "non-finite gradient at step 21 .*first in gradient tensor '[a-z0-9_.]+'"
inject nan-lr nan-lr:21 "step 21: the learning rate is nan"
# a schedule that computes a NaN learning rate from the flags
expect_fail "--min-lr nan" "--min-lr: expected a number \(finite\), got 'nan'" "$E" train "${A[@]}" --warmup 0 --min-lr nan --out "$T/mlr"

# crafted run directories: moments and weights (python edits one tensor of the current checkpoint)
poke() { # FILE TENSOR VALUE: set every element of TENSOR (F32/F64) to VALUE
    /usr/bin/python3 - "$@" <<'PY'
import json, struct, sys
p, name, val = sys.argv[1], sys.argv[2], float(sys.argv[3])
b = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
e = h[name]; s, t = e['data_offsets']; f = {'F32': '<f', 'F64': '<d'}[e['dtype']]; w = struct.calcsize(f)
b[8 + n + s:8 + n + t] = struct.pack(f, val) * ((t - s) // w)
open(p, 'wb').write(b)
PY
}
W=backbone.layers.0.mixer.in_proj.weight
for c in "exp_avg nan NaN or Inf" "exp_avg inf NaN or Inf" "exp_avg_sq nan NaN or Inf" "exp_avg_sq -1e-3 negative values"; do
    set -- $c
    D=$T/m-$1-$2
    cp -rL "$REF" "$D" 2>/dev/null || cp -r "$REF" "$D"
    rm -rf "$D/checkpoints" "$D/current" "$D/lock" # a plain directory (the older layout) with real files
    poke "$D/training_state.safetensors" "optimizer.$1.$W" "$2" || bad "poke failed"
    expect_fail "moments $1=$2" "training_state.safetensors: tensor 'optimizer\.$1\.$W' holds $3" \
        "$E" train --resume "$D" --steps 48 --quiet
done
D=$T/w-nan
cp -rL "$REF" "$D"; rm -rf "$D/checkpoints" "$D/current" "$D/lock"
poke "$D/model.safetensors" "$W" nan
expect_fail "NaN weight on resume" "model.safetensors: tensor '$W' holds a non-finite value" "$E" train --resume "$D" --steps 48 --quiet
expect_fail "NaN weight in eval" "model.safetensors: tensor '$W' holds a non-finite value" "$E" eval --ckpt "$D"

# finite but huge weights: the forward pass overflows; no NaN logits are written or sampled
D=$T/huge
cp -rL "$REF" "$D"; rm -rf "$D/checkpoints" "$D/current" "$D/lock"
poke "$D/model.safetensors" backbone.norm_f.weight 3e38 # every weight finite; the final norm overflows
expect_fail "forward huge" "logits at position 0 .*not finite.*nothing written" "$E" forward --ckpt "$D" --tokens 1,2,3 --out "$T/l.st"
[ -e "$T/l.st" ] && bad "forward wrote a logits file" || ok
err=$("$E" generate --ckpt "$D" --prompt 1,2,3 --max-new 4 2>&1 >"$T/gen"); rc=$?
[ $rc = 1 ] && printf '%s' "$err" | grep -q "not finite" && ok || bad "generate huge: exit $rc: $err"
[ -s "$T/gen" ] && bad "generate printed tokens from NaN logits: $(cat "$T/gen")" || ok

summary numeric_faults
