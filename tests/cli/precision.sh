#!/usr/bin/env bash
# --precision and --save-dtype (docs/performance.md "Mixed precision"): the bf16 path trains and resumes
# bit-exactly (oneDNN's emulation where the CPU has no bf16: the same arithmetic), the fallback says so,
# BF16 checkpoints are the rounded fp32 weights and resume from the exact masters, bad values are refused.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
tiny=(--preset tiny --steps 40 --eval-examples 16 --ckpt-every 10 --quiet)

# fallback or native: one log line either way (not --quiet: a native bf16 line is information, the
# fallback a warning printed even then)
"$E" train --preset tiny --steps 2 --eval-examples 16 --precision bf16 --out "$T/fb" > /dev/null 2> "$T/fb.err"
grep -qE "precision: (this CPU has no native bf16 .*using fp32|bf16 matrix products)" "$T/fb.err" && ok ||
    bad "bf16 request: no precision log line: $(cat "$T/fb.err")"

# bf16 (emulated if need be): trains, differs from fp32, resumes bit-exactly
export EIDETIC_BF16_EMULATE=1
expect_ok "train bf16" "$E" train "${tiny[@]}" --precision bf16 --out "$T/b1"
expect_ok "train bf16 interrupted" "$E" train "${tiny[@]}" --precision bf16 --stop-after 20 --out "$T/b2"
expect_ok "resume bf16" "$E" train --resume "$T/b2" --quiet
cmp -s "$T/b1/current/model.safetensors" "$T/b2/current/model.safetensors" && ok ||
    bad "bf16: interrupted + resumed run differs from the uninterrupted one"
grep -aqE 'precision[^,]{0,8}bf16' "$T/b2/current/training_state.safetensors" && ok ||
    bad "bf16: the training state does not record the precision"
unset EIDETIC_BF16_EMULATE
expect_ok "train fp32" "$E" train "${tiny[@]}" --out "$T/f1"
cmp -s "$T/b1/current/model.safetensors" "$T/f1/current/model.safetensors" && bad "bf16 run equals the fp32 run bit for bit (bf16 path not taken?)" || ok

# --save-dtype bf16: half the bytes, BF16 on disk = round(fp32 weights), exact masters, resumable
expect_ok "save bf16" "$E" train "${tiny[@]}" --save-dtype bf16 --out "$T/s1"
expect_ok "save bf16 interrupted" "$E" train "${tiny[@]}" --save-dtype bf16 --stop-after 20 --out "$T/s2"
expect_ok "resume save bf16" "$E" train --resume "$T/s2" --quiet
cmp -s "$T/s1/current/model.safetensors" "$T/s2/current/model.safetensors" && ok ||
    bad "save-dtype bf16: interrupted + resumed run differs from the uninterrupted one"
/usr/bin/python3 - "$T/f1/current" "$T/s1/current" <<'EOF' && ok || bad "save-dtype bf16: BF16 file or masters do not match the fp32 run"
import json, struct, sys
import numpy as np
def read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
    out = {}
    for k, v in h.items():
        s, e = v["data_offsets"]
        raw = b[8 + n + s:8 + n + e]
        out[k] = (v["dtype"], np.frombuffer(raw, np.uint16 if v["dtype"] == "BF16" else np.float32).copy())
    return out
f32 = read(sys.argv[1] + "/model.safetensors")
b16 = read(sys.argv[2] + "/model.safetensors")
st = read(sys.argv[2] + "/training_state.safetensors")
assert set(f32) == set(b16), "tensor names differ"
for k, (dt, w) in f32.items():
    assert dt == "F32" and b16[k][0] == "BF16", (k, dt, b16[k][0])
    u = w.view(np.uint32).astype(np.uint64)
    want = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)   # round to nearest even
    assert np.array_equal(b16[k][1], want), "BF16 of " + k
    assert np.array_equal(st["master." + k][1], w), "master." + k
EOF
f=$(stat -c %s "$T/f1/current/model.safetensors"); s=$(stat -c %s "$T/s1/current/model.safetensors")
[ $((s * 100 / f)) -le 55 ] && ok || bad "save-dtype bf16: $s bytes vs fp32 $f (expected about half)"
expect_ok "eval a BF16 checkpoint" "$E" eval --ckpt "$T/s1" --examples 16
grep -q "accuracy" "$T/out" && ok || bad "eval of a BF16 checkpoint printed no accuracy"
expect_ok "generate from a BF16 checkpoint" "$E" generate --ckpt "$T/s1" --prompt 1,2,3 --max-new 2 --precision bf16

# generate's default is auto, logged either way: bf16 decoding where the CPU has bf16, else fp32
expect_ok "generate, default precision" "$E" generate --ckpt "$T/f1" --prompt 1,2,3 --max-new 4
grep -qE "precision: auto: (bf16 for decoding|fp32 \(this CPU has no native bf16)" "$T/err" && ok ||
    bad "generate: no auto precision line: $(cat "$T/err")"
cp "$T/out" "$T/gen_auto"
EIDETIC_BF16_EMULATE=1 expect_ok "generate auto (emulated)" "$E" generate --ckpt "$T/f1" --prompt 1,2,3 --max-new 4
grep -q "precision: auto: bf16 for decoding" "$T/err" && ok || bad "generate auto (emulated): $(cat "$T/err")"
expect_ok "generate --precision fp32" "$E" generate --ckpt "$T/f1" --prompt 1,2,3 --max-new 4 --precision fp32
grep -q "precision" "$T/err" && bad "generate --precision fp32 logged a precision line: $(cat "$T/err")" || ok
[ "$(wc -w < "$T/out")" -eq "$(wc -w < "$T/gen_auto")" ] && ok || bad "generate: auto and fp32 differ in length"

# bad values name the flag
EXPECT_ONE_ERROR=1
expect_fail "train --precision fp16" "--precision: expected fp32, bf16 or auto" "$E" train --precision fp16 --out "$T/x"
expect_fail "train --save-dtype f16" "--save-dtype: expected fp32 or bf16" "$E" train --save-dtype f16 --out "$T/x"
expect_fail "eval --precision" "--precision: expected fp32, bf16 or auto" "$E" eval --ckpt "$T/f1" --precision int8
expect_fail "generate --precision" "--precision: expected fp32, bf16 or auto" "$E" generate --ckpt "$T/f1" --prompt 1 --precision x
expect_fail "forward --precision" "precision: expected fp32, bf16 or auto" "$E" forward --ckpt "$T/f1" --tokens 1,2 --out "$T/l.st" --precision 16
expect_fail "bench --precision" "--precision: expected fp32, bf16 or auto" "$E" bench train --quick --precision fp8
[ ! -e "$T/x" ] && ok || bad "a refused run left $T/x behind"
summary precision
