#!/usr/bin/env bash
# Strict inputs (docs/reliability.md "Strict inputs"): every bad input below must exit with status
# exactly 1 and print exactly one "error:" line that names what was wrong; the good ones still work.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"

# strict_fail NAME PATTERN CMD...: exit status exactly 1, one error line, matching PATTERN
strict_fail() {
    local name=$1 pat=$2; shift 2
    local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
    local n; n=$(printf "%s\n" "$err" | grep -c 'error:')
    if [ $rc -eq 1 ] && [ "$n" -eq 1 ] && printf "%s" "$err" | grep -qiE -e "$pat"; then ok
    else bad "$name (rc=$rc, $n error lines): $err"; fi
}

R="$T/run"; P="$T/pos"
expect_ok "train tiny" "$E" train --preset tiny --steps 3 --eval-examples 8 --out "$R" --quiet
expect_ok "train learned-pos" "$E" train --preset tiny --layers attn --learned-pos --steps 3 --eval-examples 8 --out "$P" --quiet
L32=$(seq -s, 1 32); L33=$(seq -s, 1 33)

# numbers: whole string, range, overflow, the flag named
strict_fail "int overflow" "--steps: 2147483648 is out of range" "$E" train --steps 2147483648 --out "$T/x"
strict_fail "int with space" "--steps: expected an integer" "$E" train --steps " 5" --out "$T/x"
strict_fail "int with suffix" "--steps: expected an integer" "$E" train --steps 5k --out "$T/x"
strict_fail "hex int" "--batch: expected an integer" "$E" train --batch 0x10 --out "$T/x"
strict_fail "nan lr" "--lr: expected a number \\(finite\\)" "$E" train --lr nan --out "$T/x"
strict_fail "inf lr" "--lr: expected a number \\(finite\\)" "$E" train --lr inf --out "$T/x"
strict_fail "overflowing double" "--lr: 1e999 is out of range" "$E" train --lr 1e999 --out "$T/x"
strict_fail "negative seed" "--seed: expected a non-negative integer" "$E" train --seed -1 --out "$T/x"
strict_fail "seed overflow" "--seed: 18446744073709551616 is out of range" "$E" train --seed 18446744073709551616 --out "$T/x"
strict_fail "num-passes overflow" "--num-passes 536870912 with --seq-len 32" "$E" train --preset tiny --num-passes 536870912 --out "$T/x"
strict_fail "mix K wraps" "--mix entry 1 .*K: 4294967298 is out of range" "$E" train --task mqar-mix --mix 64:4294967298:1 --seq-len 64 --out "$T/x"
strict_fail "mix trailing comma" "--mix entry 2" "$E" train --task mqar-mix --mix 64:4:1, --seq-len 64 --out "$T/x"
strict_fail "mix missing part" "--mix entry 1 .*expected L:K:N" "$E" train --task mqar-mix --mix 64:4 --seq-len 64 --out "$T/x"
strict_fail "slices space" "--slices entry 1 .*L: expected an integer" "$E" train --task mqar-mix --slices " 64:4" --seq-len 256 --out "$T/x"
strict_fail "depth junk" "--depth" "$E" train --preset passkey --depth 0.5x --out "$T/x"

# token and length lists
strict_fail "trailing comma" "--tokens: item 3 of '1,2,' is empty" "$E" forward --ckpt "$R" --tokens 1,2, --out "$T/l.st"
strict_fail "spaces in list" "--tokens: expected an integer .*' 2 '" "$E" forward --ckpt "$R" --tokens "1, 2 ,3" --out "$T/l.st"
strict_fail "token overflow" "--tokens: 2147483648 is out of range" "$E" forward --ckpt "$R" --tokens 2147483648 --out "$T/l.st"
strict_fail "prompt empty item" "--prompt: item 2" "$E" generate --ckpt "$R" --prompt 1,,2
strict_fail "lengths trailing comma" "--lengths: item 2" "$E" eval --ckpt "$R" --lengths 32, --examples 4

# unknown flags are errors for every subcommand, also with --ckpt
strict_fail "info --ckpt --bogus" "unknown option --bogus" "$E" info --ckpt "$R" --bogus 3
strict_fail "info --ckpt --steps" "unknown option --steps" "$E" info --ckpt "$R" --steps 3
strict_fail "eval --bogus" "unknown option --bogus" "$E" eval --ckpt "$R" --bogus 3
strict_fail "forward --bogus" "unknown option --bogus" "$E" forward --ckpt "$R" --tokens 1 --out "$T/l.st" --bogus
strict_fail "generate --bogus" "unknown option --bogus" "$E" generate --ckpt "$R" --prompt 1 --bogus=1

# options files: JSON numbers checked before any cast
echo '{"steps": 1e10}' > "$T/o1.json"
strict_fail "options file int overflow" "o1.json: \"steps\": 10000000000 is out of range" "$E" train --config "$T/o1.json" --out "$T/x"
echo '{"steps": 2.5}' > "$T/o2.json"
strict_fail "options file fraction" "o2.json: \"steps\": expected an integer" "$E" train --config "$T/o2.json" --out "$T/x"
echo '{"lr": 1e999}' > "$T/o3.json"
strict_fail "options file inf" "o3.json: \"lr\": expected a number \\(finite\\)" "$E" train --config "$T/o3.json" --out "$T/x"

# config.json: numbers, unknown keys; --lenient admits only string metadata
mkcfg() { rm -rf "$T/$1"; cp -r "$R" "$T/$1"; /usr/bin/python3 -c "
import json,sys; p='$T/$1/config.json'; c=json.load(open(p)); exec(sys.argv[1]); json.dump(c, open(p,'w'))" "$2"; }
mkcfg c1 "c['layers'][0]['chunk']=1e10"
strict_fail "config chunk 1e10 (info)" "config.json: layers\[0\]: \"chunk\": 10000000000 is out of range" "$E" info --ckpt "$T/c1"
strict_fail "config chunk 1e10 (eval)" "\"chunk\"" "$E" eval --ckpt "$T/c1" --examples 4
mkcfg c2 "c['exact']=True"
strict_fail "config unknown key" "unknown key \"exact\"" "$E" info --ckpt "$T/c2"
strict_fail "config unknown key, lenient" "unknown key \"exact\"" "$E" info --ckpt "$T/c2" --lenient
mkcfg c3 "c['layers'][1]['mlp_hidden']=64"
strict_fail "config unknown layer key" "layers\[1\]: unknown key \"mlp_hidden\"" "$E" forward --ckpt "$T/c3" --tokens 1 --out "$T/l.st"
mkcfg c4 "c['model_type']='longhorn'; c['architectures']=['LonghornForCausalLM']"
strict_fail "config metadata, strict" "unknown key \"model_type\"" "$E" info --ckpt "$T/c4"
expect_ok "config metadata, --lenient" "$E" info --ckpt "$T/c4" --lenient
mkcfg c5 "c['d_model']=32.5"
strict_fail "config fractional size" "\"d_model\": expected an integer" "$E" info --ckpt "$T/c5"

# model.safetensors: unexplained, missing, mis-shaped, wrong dtype, NaN tensors
mkst() { rm -rf "$T/$1"; cp -r "$R" "$T/$1"; /usr/bin/python3 - "$T/$1/model.safetensors" "$2" <<'PY'
import json, struct, sys
p, op = sys.argv[1], sys.argv[2]
b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n]); data = b[8 + n:]
meta = h.pop('__metadata__', None)
t = {k: (v, data[v['data_offsets'][0]:v['data_offsets'][1]]) for k, v in h.items()}
name = 'backbone.embeddings.weight'
if op == 'extra': t['lm_head.bias'] = ({'dtype': 'F32', 'shape': [4]}, b'\0' * 16)
if op == 'missing': del t['backbone.norm_f.weight']
if op == 'shape': v, d = t[name]; v['shape'] = [v['shape'][1], v['shape'][0]]
if op == 'dtype': v, d = t[name]; v['dtype'] = 'I32'
if op == 'nan': v, d = t[name]; t[name] = (v, struct.pack('<f', float('nan')) + d[4:])
out, off = {}, 0
for k, (v, d) in t.items():
    out[k] = {'dtype': v['dtype'], 'shape': v['shape'], 'data_offsets': [off, off + len(d)]}; off += len(d)
if meta: out['__metadata__'] = meta
hj = json.dumps(out).encode(); hj += b' ' * (-len(hj) % 8)
open(p, 'wb').write(struct.pack('<Q', len(hj)) + hj + b''.join(d for v, d in t.values()))
PY
}
mkst s1 extra
strict_fail "unexplained tensor" "model.safetensors: tensor 'lm_head.bias' is not part of the model" "$E" info --ckpt "$T/s1"
strict_fail "unexplained tensor, lenient too" "lm_head.bias" "$E" forward --ckpt "$T/s1" --tokens 1 --out "$T/l.st" --lenient
mkst s2 missing
strict_fail "missing tensor" "tensor 'backbone.norm_f.weight' is missing" "$E" info --ckpt "$T/s2"
mkst s3 shape
strict_fail "wrong shape" "backbone.embeddings.weight' has shape" "$E" eval --ckpt "$T/s3" --examples 4
mkst s4 dtype
strict_fail "wrong dtype" "dtype I32; expected F32, F64, BF16 or F16" "$E" generate --ckpt "$T/s4" --prompt 1
mkst s5 nan
strict_fail "NaN weight" "backbone.embeddings.weight' holds a non-finite value" "$E" info --ckpt "$T/s5"

# learned positions: refused past the table, in every command
expect_ok "forward at the limit" "$E" forward --ckpt "$P" --tokens "$L32" --out "$T/l.st"
strict_fail "forward past positions" "33 tokens exceed this model's 32 learned positions" "$E" forward --ckpt "$P" --tokens "$L33" --out "$T/l.st"
strict_fail "forward --recurrent past positions" "33 tokens exceed this model's 32 learned positions" "$E" forward --ckpt "$P" --tokens "$L33" --out "$T/l.st" --recurrent
strict_fail "generate past positions" "32 learned positions" "$E" generate --ckpt "$P" --prompt "$L32" --max-new 1
strict_fail "eval --lengths past positions" "32 learned positions" "$E" eval --ckpt "$P" --lengths 64 --examples 4
expect_ok "eval --lengths at the limit" "$E" eval --ckpt "$P" --lengths 32 --examples 4

summary strict
