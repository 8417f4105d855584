#!/usr/bin/env bash
# The task suite through the CLI: every task trains a few steps with a tiny model from its preset,
# is evaluated with its own scorer (eval defaults to the training task), length extrapolation
# (eval --lengths, JSON out), Protocol B slices, and one-line errors naming the flag.
set -u
EXPECT_ONE_ERROR=1 # every error is one line
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
ACC='^accuracy: [01]\.[0-9]+$'
TINY="--d-model 16 --d-ff 0 --steps 3 --batch 4 --eval-examples 8 --threads 2 --quiet"

for p in copy prefix-ngram suffix-ngram pb-tiny selcopy induction assoc mad-recall mad-noisy mad-fuzzy mad-selcopy \
         mad-compress mad-memorize passkey niah; do
    expect_ok "train $p" "$E" train --preset "$p" $TINY --out "$T/$p"
    grep -qE "$ACC" "$T/out" && ok || bad "train $p does not end with 'accuracy: X'"
    expect_ok "eval $p" "$E" eval --ckpt "$T/$p" --examples 16 --threads 2
    grep -qE "$ACC" "$T/out" && ok || bad "eval $p does not print 'accuracy: X'"
    tn=$p; [ "$p" = pb-tiny ] && tn=phonebook
    grep -q " on $tn L=" "$T/err" && ok || bad "eval $p did not default to the training task $tn: $(cat "$T/err")"
done

# the scorer named per task
"$E" eval --ckpt "$T/copy" --examples 8 --threads 2 2>&1 >/dev/null | grep -q "exact match" && ok || bad "copy is not scored by exact match"
"$E" eval --ckpt "$T/pb-tiny" --examples 8 --threads 2 2>&1 >/dev/null | grep -q "greedy" && ok || bad "phonebook is not scored by greedy digit accuracy"
"$E" eval --ckpt "$T/mad-recall" --examples 8 --threads 2 2>&1 >/dev/null | grep -q "macro" && ok || bad "MAD is not scored class-macro"

# length extrapolation (§10): one line per length, JSON out
expect_ok "train tiny mqar" "$E" train --preset tiny --steps 3 --out "$T/mq" --quiet --threads 2
expect_ok "eval --lengths" "$E" eval --ckpt "$T/mq" --examples 16 --lengths 32,64,128 --out "$T/len.json" --threads 2
[ "$(grep -cE '^L=(32|64|128) accuracy: [01]\.[0-9]+$' "$T/out")" -eq 3 ] && ok || bad "eval --lengths did not print 3 lines: $(cat "$T/out")"
/usr/bin/python3 - "$T/len.json" <<'EOF' && ok || bad "--out JSON: wrong content"
import json, sys
j = json.load(open(sys.argv[1]))
ls = j["lengths"]
assert [r["length"] for r in ls] == [32, 64, 128], ls
assert [r["kv_pairs"] for r in ls] == [2, 4, 8], ls          # K scales with L
assert all(0 <= r["accuracy"] <= 1 for r in ls)
EOF
expect_ok "copy --lengths" "$E" eval --ckpt "$T/copy" --examples 8 --lengths 48,96 --threads 2
[ "$(grep -c 'accuracy' "$T/out")" -eq 2 ] && ok || bad "copy --lengths"
expect_ok "passkey --lengths --depth" "$E" eval --ckpt "$T/passkey" --examples 8 --lengths 256,512 --depth 0.5 --threads 2
[ "$(grep -c 'accuracy' "$T/out")" -eq 2 ] && ok || bad "passkey --lengths"
expect_ok "eval another task" "$E" eval --ckpt "$T/mq" --task mqar --seq-len 64 --kv-pairs 4 --examples 8 --threads 2

# Protocol B: trains on the mixture, evaluates 7 slices (one line each) and their mean
expect_ok "train mqar-mix" "$E" train --preset mqar-mix $TINY --vocab 2048 --out "$T/mix"
expect_ok "eval mqar-mix" "$E" eval --ckpt "$T/mix" --examples 4 --out "$T/mix.json" --threads 2
[ "$(grep -c '^slice L=' "$T/out")" -eq 7 ] && grep -qE "$ACC" "$T/out" && ok || bad "mqar-mix eval: $(cat "$T/out")"
/usr/bin/python3 -c "import json; j=json.load(open('$T/mix.json')); assert len(j['result']['slices'])==7" && ok || bad "mqar-mix JSON slices"

# errors: one line, naming the flag
expect_fail "unknown task" "--task: unknown task 'nope'" "$E" train --task nope --out "$T/x"
expect_fail "copy too long" "--seq-len" "$E" train --preset copy --max-len 100 --out "$T/x"
expect_fail "copy vocab" "--vocab" "$E" train --preset copy --vocab 20 --out "$T/x"
expect_fail "pb format" "--format" "$E" train --preset pb-tiny --format xml --out "$T/x"
expect_fail "pb queries" "--max-queries" "$E" train --preset pb-tiny --max-queries 20 --out "$T/x"
expect_fail "mad-recall even" "--seq-len" "$E" train --preset mad-recall --seq-len 128 --out "$T/x"
expect_fail "noisy frac" "--frac-noise" "$E" train --preset mad-noisy --frac-noise 1 --out "$T/x"
expect_fail "passkey depth" "--depth" "$E" train --preset passkey --depth deep --out "$T/x"
expect_fail "bad mix" "--mix" "$E" train --preset mqar-mix --mix 64:4 --out "$T/x"
expect_fail "bad lengths" "--lengths" "$E" eval --ckpt "$T/mq" --lengths 32,abc
expect_fail "odd length" "--lengths 63" "$E" eval --ckpt "$T/mq" --lengths 63
expect_fail "mix lengths" "--slices" "$E" eval --ckpt "$T/mix" --lengths 512
expect_fail "out dir" "--out" "$E" eval --ckpt "$T/mq" --examples 4 --out "$T/no/such/dir.json"

summary tasks
