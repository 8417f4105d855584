#!/usr/bin/env bash
# The text phone book and the fine-tuning stage (docs/birdie.md "Fine-tuning and birdie-tiny",
# docs/tasks.md §3.2): the birdie-tiny preset end to end at a tiny step count (Birdie pre-training on
# text, then fine-tuning on phonebook-text, the digit accuracy printed and equal to `eidetic eval`'s);
# stopped inside either stage and resumed == uninterrupted; --init fine-tuning from a text checkpoint
# takes its tokenizer; refusals name their flag, print one error and write nothing.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"

mkdir -p "$T/txt"
for i in $(seq 1 60); do printf 'Entry %d: a hacker is one who enjoys %d intellectual challenges.\n\nParagraph %d of some words.\n\n' $i $i $i; done > "$T/txt/a.txt"
expect_ok "prepare" "$E" prepare --out "$T/ds" --docs para --val-fraction 0.2 --no-progress "$T/txt"
S=(--d-model 32 --d-ff 0 --batch 4 --birdie-candidates 16 --eval-examples 8 --threads 1 --quiet)
A=(--preset birdie-tiny --data "$T/ds" "${S[@]}" --steps 3 --finetune-steps 3)
expect_ok "birdie-tiny on a prepared set" "$E" train "${A[@]}" --out "$T/a"
acc=$(sed -n 's/^accuracy: //p' "$T/out")
[ -n "$acc" ] && ok || bad "no 'accuracy:' line: $(cat "$T/out")"
n=$(grep -c '"finetune":1' "$T/a/metrics.jsonl")
[ "$n" -eq 3 ] && ok || bad "expected 3 fine-tuning steps in metrics.jsonl, got $n"
sed -n 3p "$T/a/metrics.jsonl" | grep -q '"val_loss"' && ok || bad "no corpus validation at the end of pre-training"
grep -q '"birdie_mode"' "$T/a/metrics.jsonl" && ok || bad "no controller decision during pre-training"
grep '"finetune":1' "$T/a/metrics.jsonl" | grep -q '"birdie_mode"' && bad "controller decisions during fine-tuning" || ok
tail -1 "$T/a/metrics.jsonl" | grep -q '"test_acc"' && ok || bad "no task evaluation at the end"
# the fine-tuning stage: a constant lr (--finetune-lr), no warm-up
grep '"finetune":1' "$T/a/metrics.jsonl" | grep -q '"lr":0.001,' && ok || bad "fine-tuning lr is not the preset's 1e-3"
[ -f "$T/a/current/eidetic_tokenizer.json" ] && ok || bad "checkpoint without its tokenizer"
grep -q '"vocab_size":[[:space:]]*448' "$T/a/config.json" && ok || bad "vocab: 320 text ids + Birdie's block, rounded: 448"
# eval reads the task and the tokenizer from the checkpoint: the same digit accuracy
expect_ok "eval" "$E" eval --ckpt "$T/a" --examples 8 --batch 2 --threads 1
e=$(sed -n 's/^accuracy: //p' "$T/out")
[ -n "$e" ] && [ "$e" = "$acc" ] && ok || bad "eval accuracy '$e' differs from train's '$acc'"
grep -q 'phonebook-text' "$T/err" && ok || bad "eval did not run phonebook-text: $(tail -1 "$T/err")"
# stopped in pre-training, at the boundary and in fine-tuning, then resumed: the same run
strip() { sed 's/"tokens_per_s":[0-9]*,"elapsed_s":[0-9.]*//' "$1"; }
for k in 2 3 4; do
    expect_ok "stop after $k" "$E" train "${A[@]}" --stop-after $k --out "$T/s$k"
    expect_ok "resume $k" "$E" train --resume "$T/s$k" --stop-after 0 --quiet
    cmp -s "$T/a/current/model.safetensors" "$T/s$k/current/model.safetensors" && ok || bad "stopped after $k: resumed weights differ"
    diff <(strip "$T/a/metrics.jsonl") <(strip "$T/s$k/metrics.jsonl") >/dev/null && ok || bad "stopped after $k: metrics differ"
done
# the embedded corpus (the preset's default data), when the Jargon File is installed
if [ -f /usr/share/doc/jargon-text/jargon.txt.gz ]; then
    EIDETIC_CACHE="$T/cache" expect_ok "birdie-tiny on the embedded corpus" "$E" train --preset birdie-tiny "${S[@]}" \
        --steps 2 --finetune-steps 2 --out "$T/emb"
    grep -q '^accuracy: ' "$T/out" && ok || bad "embedded corpus: no accuracy line"
fi
# --init: fine-tune a text checkpoint on the phone book; its tokenizer comes along
P=(--task phonebook-text --seq-len 320 --min-len 4 --max-len 8 --max-queries 2 --digits 6)
expect_ok "--init fine-tuning" "$E" train --init "$T/a" "${P[@]}" --batch 4 --steps 2 --eval-examples 4 --threads 1 --quiet --out "$T/i"
[ -f "$T/i/current/eidetic_tokenizer.json" ] && ok || bad "--init run without the tokenizer"
cmp -s "$T/a/current/eidetic_tokenizer.json" "$T/i/current/eidetic_tokenizer.json" && ok || bad "--init run has another tokenizer"
# a token-task checkpoint has no tokenizer: refused for a text task, in train --init and in eval
expect_ok "token model" "$E" train --preset tiny --steps 1 --eval-examples 4 --threads 1 --quiet --out "$T/tok"
EXPECT_ONE_ERROR=1 expect_fail "--init without tokenizer" "carries none" "$E" train --init "$T/tok" "${P[@]}" --steps 1 --quiet --out "$T/x0"
EXPECT_ONE_ERROR=1 expect_fail "eval without tokenizer" "carries none" "$E" eval --ckpt "$T/tok" "${P[@]}" --examples 2
# refusals: one clear error naming the flag, nothing written
EXPECT_ONE_ERROR=1 expect_fail "negative --finetune-steps" "--finetune-steps: must be >= 0" "$E" train "${A[@]}" --finetune-steps -1 --out "$T/x1"
EXPECT_ONE_ERROR=1 expect_fail "bad --finetune-lr" "--finetune-lr" "$E" train "${A[@]}" --finetune-lr abc --out "$T/x2"
EXPECT_ONE_ERROR=1 expect_fail "negative --finetune-lr" "--finetune-lr: must be in" "$E" train "${A[@]}" --finetune-lr -1 --out "$T/x3"
EXPECT_ONE_ERROR=1 expect_fail "--finetune-steps without pre-training" "--finetune-steps 3: a fine-tuning stage follows" \
    "$E" train "${P[@]}" --vocab 320 --steps 2 --finetune-steps 3 --quiet --out "$T/x4"
EXPECT_ONE_ERROR=1 expect_fail "phonebook-text --format single" "--format: phonebook-text formats" "$E" train "${A[@]}" --format single --out "$T/x5"
EXPECT_ONE_ERROR=1 expect_fail "phonebook-text --first-names 65" "--first-names" "$E" train "${A[@]}" --first-names 65 --out "$T/x6"
EXPECT_ONE_ERROR=1 expect_fail "rows too short for the book" "--seq-len 128: 8 entries" "$E" train "${A[@]}" --seq-len 128 --out "$T/x7"
for d in x0 x1 x2 x3 x4 x5 x6 x7; do
    if [ -e "$T/$d" ]; then bad "$d: a refused run left an output directory"; else ok; fi
done
summary birdie_tiny
