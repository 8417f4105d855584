#!/usr/bin/env bash
# statex.sh [BUILD] — `eidetic expand` (StateX, docs/statex.md): a new checkpoint is written (never in
# place, the source untouched), config.json carries the per-layer sizes and the statex record, `info`
# shows the per-layer deltas, the §7 no-op gives the source's logits, `train --init` post-trains the
# result (fresh optimizer, --freeze), an imported Hugging Face Mamba-2 checkpoint expands too, and
# every impossible request is refused with one error naming the layer or the option, nothing written.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"

S="$T/src"
expect_ok "train source" "$E" train --preset tiny --layers gla,mamba2,longhorn --num-heads 4 --steps 3 \
    --eval-examples 8 --out "$S" --quiet --threads 1
sum0=$(cat "$S"/current/model.safetensors "$S"/current/config.json | md5sum)
X="$T/x"
expect_ok "expand every=1" "$E" expand --ckpt "$S" --out "$X" --every 1 --merge-heads 1 --state-mult 2 --seed 3
grep -q "expanded 3 layers" "$T/out" && ok || bad "expand summary: $(cat "$T/out")"
[ -f "$X/config.json" ] && [ -f "$X/model.safetensors" ] && ok || bad "expand wrote no checkpoint"
ls "$T" | grep -q '\.tmp\.' && bad "a temporary directory was left behind" || ok
[ "$(cat "$S"/current/model.safetensors "$S"/current/config.json | md5sum)" = "$sum0" ] && ok || bad "the source changed"
python3 - "$X/config.json" <<'PY' && ok || bad "config.json of the result"
import json, sys
c = json.load(open(sys.argv[1]))
L, s = c["layers"], c["statex"]
assert L[0]["num_heads"] == 1 and L[1]["d_state"] == 2 * 16 and L[2]["d_state"] == 2 * 16, L
assert s["method"] == "reinit" and s["merge_heads"] == 1 and s["state_mult"] == 2 and s["seed"] == 3, s
assert [e["layer"] for e in s["layers"]] == [0, 1, 2] and s["k_scale"] == "match" and s["keep_resets"] is False, s
PY
expect_ok "info" "$E" info --ckpt "$X"
grep -q "statex: method reinit, merge_heads 1, state_mult 2, k_scale match" "$T/out" && ok || bad "info record: $(cat "$T/out")"
grep -qE "layer 0 \(gla\): state 128 -> 512 floats \(\+384, x4.00\)" "$T/out" && ok || bad "info gla delta: $(grep 'layer 0' "$T/out")"
grep -qE "layer 1 \(mamba2\): state .* floats .*mixer params .*\(\+" "$T/out" && ok || bad "info mamba2 delta"
# the same surgery twice gives the same bytes (seeded); another seed differs
expect_ok "expand again" "$E" expand --ckpt "$S" --out "$T/x2" --every 1 --merge-heads 1 --state-mult 2 --seed 3
cmp -s "$X/model.safetensors" "$T/x2/model.safetensors" && ok || bad "expand is not deterministic"
expect_ok "expand seed 4" "$E" expand --ckpt "$S" --out "$T/x3" --every 1 --merge-heads 1 --state-mult 2 --seed 4
cmp -s "$X/model.safetensors" "$T/x3/model.safetensors" && bad "the seed changes nothing" || ok

# §7 no-op: Mamba-2 zero with the resets kept leaves the logits as they were
TOK=1,5,9,2,7,3,8,4,6,10,11,12
expect_ok "expand zero" "$E" expand --ckpt "$S" --out "$T/z" --layers 1 --state-mult 4 --method zero --keep-resets
expect_ok "forward src" "$E" forward --ckpt "$S/current" --tokens $TOK --out "$T/a.st"
expect_ok "forward zero" "$E" forward --ckpt "$T/z" --tokens $TOK --out "$T/b.st"
python3 - "$T/a.st" "$T/b.st" <<'PY' && ok || bad "mamba2 zero --keep-resets changed the logits"
import json, struct, sys
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); t = h["logits"]
    s, e = t["data_offsets"]; raw = b[8 + n + s:8 + n + e]
    return struct.unpack("<%d%s" % (len(raw) // (4 if t["dtype"] == "F32" else 8), "f" if t["dtype"] == "F32" else "d"), raw)
a, b = load(sys.argv[1]), load(sys.argv[2])
err = max(abs(x - y) for x, y in zip(a, b)) / max(1e-6, max(abs(x) for x in a))
assert len(a) == len(b) and err < 1e-5, err
PY

# post-training from the expanded checkpoint: fresh optimizer and schedule, frozen groups untouched
P="$T/post"
expect_ok "train --init" "$E" train --preset tiny --init "$T/z" --steps 4 --warmup 1 --lr 3e-4 --min-lr 0 --weight-decay 0.1 \
    --beta2 0.95 --grad-clip 1 --freeze unexpanded --eval-examples 8 --out "$P" --threads 1
grep -q "tensors frozen" "$T/err" && ok || bad "no freeze log line"
python3 - "$T/z/model.safetensors" "$P/current/model.safetensors" <<'PY' && ok || bad "--freeze unexpanded: a frozen tensor moved or the expanded mixers did not train"
import json, struct, sys
def tensors(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a.keys() == b.keys()
for k in a:
    expanded = k.startswith("backbone.layers.1.mixer.") or k == "backbone.layers.1.norm.weight"  # --layers 1
    assert (a[k] != b[k]) == expanded or (expanded and k.endswith("bias")), k
PY
expect_ok "resume an --init run" "$E" train --resume "$P" --steps 6 --quiet
expect_fail "--init with an architecture flag" "--layers: the architecture comes from --init" "$E" train --preset tiny \
    --init "$X" --layers gla --out "$T/bad1"
expect_fail "--init missing" "no such checkpoint directory" "$E" train --preset tiny --init "$T/nothing" --out "$T/bad2"
expect_fail "--freeze unknown" "--freeze: unknown group 'embedding'" "$E" train --preset tiny --init "$X" \
    --freeze embedding --steps 2 --out "$T/bad3"
expect_fail "--freeze unexpanded without record" "no StateX record" "$E" train --preset tiny --freeze unexpanded \
    --steps 2 --out "$T/bad4"

# refusals: one error naming the layer / option, nothing written
EXPECT_ONE_ERROR=1
expect_fail "H' not dividing H" "layer 0: gla: --merge-heads 3 must divide num_heads 4" "$E" expand --ckpt "$S" --out "$T/r1" --layers 0 --merge-heads 3
expect_fail "k < 1" "--state-mult: k must be >= 1" "$E" expand --ckpt "$S" --out "$T/r2" --layers 1 --state-mult -1
expect_fail "no k" "layer 1: mamba2: --state-mult k is required" "$E" expand --ckpt "$S" --out "$T/r3" --layers 1
expect_fail "index out of range" "--layers: layer index 7 out of range" "$E" expand --ckpt "$S" --out "$T/r4" --layers 7 --state-mult 2
expect_fail "zero for GLA" "layer 0: gla: --method zero" "$E" expand --ckpt "$S" --out "$T/r5" --layers 0 --merge-heads 1 --method zero
expect_fail "unknown method" "--method: expected reinit, inherit or zero" "$E" expand --ckpt "$S" --out "$T/r6" --layers 1 --state-mult 2 --method grow
expect_fail "unused option" "--merge-heads: no selected layer merges heads" "$E" expand --ckpt "$S" --out "$T/r7" --layers 1 --state-mult 2 --merge-heads 1
expect_fail "both selections" "--every and --layers" "$E" expand --ckpt "$S" --out "$T/r8" --layers 1 --every 2 --state-mult 2
expect_fail "no selection" "--every N or --layers LIST" "$E" expand --ckpt "$S" --out "$T/r9" --state-mult 2
expect_fail "out exists" "already exists" "$E" expand --ckpt "$S" --out "$X" --layers 1 --state-mult 2
expect_fail "bad list" "--layers" "$E" expand --ckpt "$S" --out "$T/r10" --layers 1,,2 --state-mult 2
M="$T/mamba1"
expect_ok "train mamba" "$E" train --preset tiny --layers mamba,mamba --steps 2 --eval-examples 8 --out "$M" --quiet --threads 1
expect_fail "mixer without a method" "layer 0 \(mamba\): this mixer has no StateX method \(mixers with one: " "$E" expand --ckpt "$M" --out "$T/r11" --every 1 --state-mult 2
for d in r1 r2 r3 r4 r5 r6 r7 r8 r9 r10 r11; do [ -e "$T/$d" ] && bad "$d: a refused expand wrote $T/$d" || ok; done
EXPECT_ONE_ERROR=0

# an imported Hugging Face Mamba-2 checkpoint (tests/ref/hf_export.py; needs torch)
PY=/usr/bin/python3
if $PY -c "import torch, numpy" 2>/dev/null && $PY "$ROOT/tests/ref/hf_export.py" make "$T/hf" >/dev/null 2>&1; then
    expect_ok "expand HF mamba2" "$E" expand --ckpt "$T/hf/m2_f32_tied" --out "$T/hfx" --every 1 --state-mult 2
    grep -q '"statex"' "$T/hfx/config.json" && ok || bad "HF expand: no statex record"
    V=$(python3 -c "import json; print(json.load(open('$T/hfx/config.json'))['vocab_size'])")
    expect_ok "train --init HF expanded" "$E" train --preset tiny --vocab "$V" --init "$T/hfx" --steps 2 \
        --eval-examples 8 --out "$T/hfp" --quiet --threads 1
else echo "skip: no torch: the Hugging Face Mamba-2 expansion not run"; fi
summary statex
