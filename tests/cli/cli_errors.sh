#!/usr/bin/env bash
# CLI behaviour: every subcommand's --help, a tiny end-to-end run (train → eval → info → forward →
# generate → resume), and clear one-line errors with a non-zero exit for bad input of every kind.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"

for c in train eval info generate forward; do
    expect_ok "$c --help" "$E" "$c" --help
    grep -q "usage: eidetic $c" "$T/out" || bad "$c --help prints no usage"
done
expect_fail "no command" "usage" "$E"
expect_fail "unknown command" "unknown command" "$E" frobnicate

# a tiny run end to end
R="$T/run"
expect_ok "train tiny" "$E" train --preset tiny --steps 30 --out "$R" --quiet
grep -qE '^accuracy: [01]\.[0-9]+$' "$T/out" && ok || bad "train does not end with 'accuracy: X'"
[ -s "$R/metrics.jsonl" ] && [ "$(wc -l < "$R/metrics.jsonl")" -eq 30 ] && ok || bad "metrics.jsonl does not hold one line per step"
/usr/bin/python3 -c "import json,sys; [json.loads(l) for l in open('$R/metrics.jsonl')]" 2>/dev/null && ok || bad "metrics.jsonl lines are not JSON"
expect_ok "eval" "$E" eval --ckpt "$R" --examples 64
grep -qE '^accuracy: [01]\.[0-9]+$' "$T/out" && ok || bad "eval does not print 'accuracy: X'"
expect_ok "info ckpt" "$E" info --ckpt "$R"
grep -q "total:" "$T/out" && ok || bad "info prints no total"
expect_ok "info preset" "$E" info --preset mqar-256
for p in mqar-longhorn mqar-mamba mqar-mamba2 mqar-gla mqar-attn mqar-swa mqar-hawk mqar-gated-ssm; do
    expect_ok "info preset $p" "$E" info --preset "$p"
done
expect_ok "forward" "$E" forward --ckpt "$R" --tokens 1,2,3,4 --out "$T/l.safetensors"
expect_ok "generate" "$E" generate --ckpt "$R" --prompt 1,2,3 --max-new 5
grep -qE '^[0-9]+(,[0-9]+){4}$' "$T/out" && ok || bad "generate did not print 5 tokens"
expect_ok "generate sampled" "$E" generate --ckpt "$R" --prompt 1,2,3 --max-new 5 --temperature 0.8 --top-p 0.9 --seed 4
expect_ok "resume to 40" "$E" train --resume "$R" --steps 40 --quiet
[ "$(wc -l < "$R/metrics.jsonl")" -eq 40 ] && ok || bad "resume did not append 10 metric lines"

# bad flags and values
expect_fail "unknown flag" "unknown option --bogus" "$E" train --bogus 1
expect_fail "bad int" "expected an integer" "$E" train --steps ten
expect_fail "bad number" "expected a number" "$E" train --lr fast
expect_fail "missing value" "needs a value" "$E" train --steps
expect_fail "bad preset" "unknown preset" "$E" train --preset nope
# task sizes so large that their sums and products overflowed int (fuzz_cli): refused with the true size
expect_fail "selcopy huge --num-tokens" "selcopy needs .*>= 2545090873" "$E" train --preset selcopy --num-tokens 1272545436 --out "$T/x"
expect_fail "mad-selcopy huge --num-tokens" "= 4000000001" "$E" train --task mad-selcopy --num-tokens 2000000000 --out "$T/x"
expect_fail "n-gram huge --ngram" "= 2147483649" "$E" train --task prefix-ngram --ngram 2147483647 --out "$T/x"
expect_fail "phonebook huge names" "= 4294966032 tokens" "$E" train --task phonebook --first-names 2147483000 --surnames 2147483000 --out "$T/x"
expect_fail "bad mixer" "unknown mixer 'lstm'" "$E" train --layers lstm --out "$T/x"
expect_fail "shards not dividing the batch" "--shards 3 must divide --batch 64" "$E" train --shards 3 --out "$T/x"
expect_fail "negative shards" "--shards: must be in \\[0, 64\\]" "$E" train --shards -1 --out "$T/x"
expect_fail "negative batch" "--batch" "$E" train --batch -1 --out "$T/x"
expect_fail "kv too many" "--kv-pairs" "$E" train --preset tiny --kv-pairs 99 --out "$T/x"
expect_fail "bad lr" "--lr" "$E" train --lr 0 --out "$T/x"
echo '{"steps": "many"}' > "$T/c.json"
expect_fail "config bad value" "c.json.*expected an integer" "$E" train --config "$T/c.json"
echo '{"stepz": 3}' > "$T/c2.json"
expect_fail "config unknown key" "unknown key" "$E" train --config "$T/c2.json"
echo '{' > "$T/c3.json"
expect_fail "config not json" "not valid JSON" "$E" train --config "$T/c3.json"
expect_fail "config missing" "cannot open" "$E" train --config "$T/none.json"

# bad checkpoints: errors name the file; the checkpoint on disk is left as it was
expect_fail "eval no ckpt" "no such checkpoint" "$E" eval --ckpt "$T/none"
cp -r "$R" "$T/broken"
head -c 100 "$R/model.safetensors" > "$T/broken/model.safetensors"
expect_fail "eval truncated" "model.safetensors.*(truncated|short)" "$E" eval --ckpt "$T/broken"
expect_fail "forward bad token" "outside the vocabulary" "$E" forward --ckpt "$R" --tokens 1,99999 --out "$T/l2.st"
expect_fail "forward bad list" "token" "$E" forward --ckpt "$R" --tokens 1,x --out "$T/l2.st"
expect_fail "generate bad top-p" "top-p" "$E" generate --ckpt "$R" --prompt 1 --top-p 2
sum1=$(md5sum < "$R/model.safetensors")
expect_fail "resume with --out" "drop --out" "$E" train --resume "$R" --out "$T/other"
[ "$sum1" = "$(md5sum < "$R/model.safetensors")" ] && ok || bad "a failed command changed the checkpoint"
expect_fail "resume missing" "cannot open" "$E" train --resume "$T/none"

# a run that diverges stops with a clear error and leaves its last checkpoint untouched:
# huge (finite) embeddings overflow the forward pass to inf/NaN
cp -r "$R" "$T/diverge"
/usr/bin/python3 - "$T/diverge/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
s, e = h['backbone.embeddings.weight']['data_offsets']
b[8 + n + s:8 + n + e] = struct.pack('<f', 3e38) * ((e - s) // 4)
open(p, 'wb').write(b)
PY
sum2=$(md5sum < "$T/diverge/model.safetensors")
expect_fail "diverging run" "non-finite (loss|gradient).*untouched" "$E" train --resume "$T/diverge" --steps 50 --quiet
[ "$sum2" = "$(md5sum < "$T/diverge/model.safetensors")" ] && ok || bad "a diverging run changed its checkpoint"

summary cli_errors
