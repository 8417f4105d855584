#!/usr/bin/env bash
# --objective (docs/birdie.md "Birdie in eidetic"): Birdie's objectives over a task's examples and over
# a prepared dataset; the controller's decisions in metrics.jsonl and its state in every checkpoint;
# an interrupted and resumed run equals an uninterrupted one bit for bit; refusals write nothing.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"

A=(--preset pb-tiny --d-model 32 --steps 12 --birdie-candidates 16 --birdie-val-rows 1 --eval-examples 16 --threads 1 --quiet)
expect_ok "birdie on the phone book's examples" "$E" train "${A[@]}" --objective birdie --out "$T/a"
n=$(grep -c '"birdie_mode"' "$T/a/metrics.jsonl")
if [ "$n" -ge 10 ]; then ok; else bad "expected >= 10 controller decisions in metrics.jsonl, got $n"; fi
grep -q '"birdie_mode":"greedy"\|"birdie_mode":"explore"' "$T/a/metrics.jsonl" && ok || bad "no greedy/explore decision logged"
[ -f "$T/a/current/birdie_controller.bin" ] && ok || bad "checkpoint without birdie_controller.bin"
# the vocabulary: pb-tiny's 64 ids + the reserved block (118) rounded up to 64 = 192
grep -q '"vocab_size":[[:space:]]*192' "$T/a/config.json" && ok || bad "config.json vocab_size is not 192: $(grep vocab_size "$T/a/config.json")"
# birdie: even layers bidirectional (longhorn has the form); birdie-causal: none
n=$(grep -c '"bidir":' "$T/a/config.json")
if [ "$n" -eq 1 ]; then ok; else bad "birdie over 2 layers: expected 1 bidirectional layer, got $n"; fi
# interrupted after 5 steps, resumed: the same weights, controller state and metrics
expect_ok "birdie stopped" "$E" train "${A[@]}" --objective birdie --out "$T/b" --stop-after 5
expect_ok "birdie resumed" "$E" train --resume "$T/b" --stop-after 0 --quiet
cmp -s "$T/a/current/model.safetensors" "$T/b/current/model.safetensors" && ok || bad "resumed weights differ"
cmp -s "$T/a/current/birdie_controller.bin" "$T/b/current/birdie_controller.bin" && ok || bad "resumed controller differs"
strip() { sed 's/"tokens_per_s":[0-9]*,"elapsed_s":[0-9.]*//' "$1"; }
diff <(strip "$T/a/metrics.jsonl") <(strip "$T/b/metrics.jsonl") >/dev/null && ok || bad "resumed metrics (mixtures) differ"
for o in ntp fixed ul2 birdie-causal; do
    expect_ok "$o" "$E" train "${A[@]}" --steps 3 --objective $o --out "$T/$o"
    if grep -q '"birdie_mode"' "$T/$o/metrics.jsonl"; then
        [ $o = birdie-causal ] && ok || bad "$o: no controller expected"
    else
        [ $o = birdie-causal ] && bad "birdie-causal: controller decisions missing" || ok
    fi
done
n=$(grep -c '"bidir":' "$T/birdie-causal/config.json")
if [ "$n" -eq 0 ]; then ok; else bad "birdie-causal: $n bidirectional layers"; fi
# over a prepared dataset
mkdir -p "$T/txt"
for i in $(seq 1 40); do printf 'Document %d: the quick brown fox %d jumps over the lazy dog.\n\nAnother paragraph %d with some words.\n\n' $i $i $i; done > "$T/txt/a.txt"
expect_ok "prepare" "$E" prepare --out "$T/ds" --docs para --val-fraction 0.2 --no-progress "$T/txt"
expect_ok "birdie on --data" "$E" train --preset lm-tiny --data "$T/ds" --d-model 32 --d-ff 0 --layers longhorn,longhorn \
    --seq-len 64 --batch 4 --steps 4 --objective birdie --birdie-candidates 16 --birdie-val-rows 1 --threads 1 --quiet --out "$T/d"
grep -q '^val_loss:' "$T/out" && ok || bad "--data: no val_loss printed"
# refusals: one clear error, nothing written
EXPECT_ONE_ERROR=1 expect_fail "unknown objective" "--objective: unknown objective 'bogus'" "$E" train "${A[@]}" --objective bogus --out "$T/x1"
EXPECT_ONE_ERROR=1 expect_fail "birdie-causal with --bidir" "birdie-causal: every layer is causal" "$E" train "${A[@]}" \
    --objective birdie-causal --bidir all --out "$T/x2"
EXPECT_ONE_ERROR=1 expect_fail "rows too short" "at least 16 tokens" "$E" train --preset lm-tiny --data "$T/ds" --seq-len 8 \
    --objective ntp --steps 2 --quiet --out "$T/x3"
for d in x1 x2 x3; do
    if [ -e "$T/$d" ]; then bad "$d: a refused run left an output directory"; else ok; fi
done
# validation documents too short for some arm: refused at the start, naming the arm, nothing written
mkdir -p "$T/short" && printf 'a tiny validation text\n' > "$T/short/a.txt"
for i in $(seq 1 60); do printf "the quick brown fox %d jumps over the lazy dog and runs far away\\n" $i > "$T/short/b$i.txt"; done
expect_ok "prepare (short)" "$E" prepare --out "$T/sds" --val-fraction 0.05 --no-progress "$T/short"
"$E" train --data "$T/sds" --objective birdie --layers longhorn,longhorn --d-model 32 --seq-len 2048 --batch 2 \
    --steps 3 --threads 1 --quiet --out "$T/x4" >/dev/null 2>"$T/err"
rc=$?
[ $rc -ne 0 ] && grep -q "has no answer token in its 2 validation rows" "$T/err" && [ ! -e "$T/x4" ] && ok ||
    bad "short validation documents: rc=$rc, expected a refusal naming the arm: $(tail -1 "$T/err")"
summary birdie
