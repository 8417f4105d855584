#!/usr/bin/env bash
# eidetic prepare, train --data and eval --data (docs/lm.md): the CLI's refusals (one clear error
# naming the file, non-zero exit, nothing half-written) and a short language-model run whose
# validation perplexity is finite and whose loss falls.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
export EIDETIC_NO_REEXEC=1

C="$T/corpus"; mkdir -p "$C/sub"
for i in $(seq 1 60); do printf 'entry %d: the quick brown fox %d jumps over the lazy dog.\nsecond line %d.\n\n' $i $((i * 7)) $i; done > "$C/a.txt"
for i in $(seq 1 30); do printf 'caf\xc3\xa9 number %d, na\xc3\xafve r\xc3\xa9sum\xc3\xa9.\n\n' $i; done | gzip > "$C/sub/b.txt.gz"
printf 'bad \xff\xfe bytes\n' > "$C/latin1.txt"
D="$T/ds"
expect_ok "prepare" "$E" prepare --out "$D" --docs para --val-fraction 0.2 --no-progress "$C"
grep -q "(1 skipped)" "$T/out" && ok || bad "prepare: skipped count missing: $(cat "$T/out")"
grep -q "latin1.txt: not UTF-8 text" "$T/err" && ok || bad "prepare: skipped file not named: $(cat "$T/err")"
grep -q '"utf8_bytes"' "$D/manifest.json" && ok || bad "manifest lacks utf8_bytes"
# byte-identical re-run
expect_ok "prepare again" "$E" prepare --out "$T/ds2" --docs para --val-fraction 0.2 --no-progress "$C"
for f in train.tok val.tok manifest.json eidetic_tokenizer.json; do
    cmp -s "$D/$f" "$T/ds2/$f" && ok || bad "re-run: $f differs"
done

# refusals
EXPECT_ONE_ERROR=1
expect_fail "existing output" "$D: already exists \\(use --force" "$E" prepare --out "$D" --no-progress "$C"
expect_ok "force" "$E" prepare --out "$T/ds2" --force --docs para --val-fraction 0.2 --no-progress "$C"
mkdir -p "$T/empty"
expect_fail "empty directory" "empty corpus" "$E" prepare --out "$T/e1" --no-progress "$T/empty"
expect_fail "only non-UTF-8" "empty corpus.*1 skipped" "$E" prepare --out "$T/e2" --no-progress "$C/latin1.txt"
[ ! -e "$T/e2" ] && [ ! -e "$T/e2.tmp" ] && ok || bad "a failed prepare left a directory behind"
expect_fail "unreadable input" "$T/nope: cannot read input" "$E" prepare --out "$T/e3" --no-progress "$T/nope"
expect_fail "bad val fraction" "--val-fraction" "$E" prepare --out "$T/e4" --val-fraction 1.5 "$C"
expect_fail "bad docs" "--docs: expected file or para" "$E" prepare --out "$T/e4" --docs lines "$C"
expect_fail "unknown tokenizer" "--tokenizer: expected byte, spm or hf" "$E" prepare --out "$T/e4" --tokenizer wordpiece "$C"
expect_fail "hf without file" "--tokenizer-file" "$E" prepare --out "$T/e4" --tokenizer hf "$C"

# a short language-model run: finite perplexity, falling loss, checkpoint carries the tokenizer
R="$T/run"
TR=(train --data "$D" --layers longhorn --d-model 32 --seq-len 32 --batch 8 --lr 1e-2 --warmup 5 --eval-every 20 --threads 1 --quiet)
expect_ok "train --data" "$E" "${TR[@]}" --steps 60 --out "$R"
grep -qE '^perplexity: [0-9.]+$' "$T/out" && grep -qE '^bits_per_byte: [0-9.]+$' "$T/out" && ok || bad "train --data output: $(cat "$T/out")"
first=$(head -1 "$R/metrics.jsonl" | sed 's/.*"loss":\([0-9.]*\).*/\1/')
last=$(grep val_loss "$R/metrics.jsonl" | tail -1 | sed 's/.*"val_loss":\([0-9.]*\).*/\1/')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b + 0 < a - 0.5) }' && ok || bad "loss did not fall: first train loss $first, last val loss $last"
[ -f "$R/current/eidetic_tokenizer.json" ] && ok || bad "the checkpoint carries no tokenizer"
expect_ok "eval --data" "$E" eval --ckpt "$R" --data "$D" --threads 1
ppl=$(sed -n 's/^perplexity: //p' "$T/out"); bpb=$(sed -n 's/^bits_per_byte: //p' "$T/out")
awk -v p="$ppl" -v b="$bpb" 'BEGIN { exit !(p > 1 && p < 257 && b > 0 && b < 9) }' && ok || bad "eval --data: perplexity '$ppl', bits per byte '$bpb'"
# without --data (or --task), a language model is evaluated on the dataset it was trained on: the same
# numbers, said on stderr; --out writes them as JSON
expect_ok "eval, LM default" "$E" eval --ckpt "$R" --threads 1 --out "$T/lm_eval.json"
[ "$(sed -n 's/^bits_per_byte: //p' "$T/out")" = "$bpb" ] && ok || bad "eval without --data: $(cat "$T/out") (with --data: $bpb)"
grep -q "trained as a language model on $D: evaluating its validation split" "$T/err" && ok || bad "eval LM default not said: $(cat "$T/err")"
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['data']==sys.argv[2] and abs(j['bits_per_byte']-float(sys.argv[3]))<1e-4 and j['tokens']>0" \
    "$T/lm_eval.json" "$D" "$bpb" && ok || bad "eval --out on a dataset: $(cat "$T/lm_eval.json" 2>&1)"
expect_ok "eval, LM, a task asked for" "$E" eval --ckpt "$R" --task mqar --seq-len 64 --examples 16 --threads 1
grep -qE '^accuracy: [0-9.]+$' "$T/out" && ok || bad "eval --task on an LM checkpoint: $(cat "$T/out")"

expect_fail "vocab smaller than the tokenizer's" "--vocab 100: smaller than the vocabulary of the dataset's tokenizer \\(257" \
    "$E" "${TR[@]}" --steps 2 --vocab 100 --out "$T/r2"
# a corrupted shard: named
cp -r "$D" "$T/dsbad"; head -c 100 "$D/train.tok" > "$T/dsbad/train.tok"
expect_fail "truncated shard" "$T/dsbad/train.tok: truncated" "$E" "${TR[@]}" --data "$T/dsbad" --steps 2 --out "$T/r3"
printf 'GARBAGEGARBAGEGARBAGEGARBAGEGARBAGEGARBAGEGARBAGEGARBAGEGARBAGEGARBAGE' > "$T/dsbad/train.tok"
expect_fail "foreign shard" "$T/dsbad/train.tok: not an eidetic token shard" "$E" "${TR[@]}" --data "$T/dsbad" --steps 2 --out "$T/r3"
expect_fail "eval --data corrupted" "$T/dsbad/train.tok" "$E" eval --ckpt "$R" --data "$T/dsbad"
# task options have nothing to act on with a dataset: refused by name, not ignored
expect_fail "eval --data --examples" "--examples applies to a task, not to --data" "$E" eval --ckpt "$R" --data "$D" --examples 5
expect_fail "eval --data --task" "--task mqar and --data $D: one or the other" "$E" eval --ckpt "$R" --data "$D" --task mqar
expect_fail "eval LM --lengths" "--lengths applies to a task; .* give --task NAME" "$E" eval --ckpt "$R" --lengths 32,64
expect_fail "eval LM --kv_pairs" "--kv-pairs applies to a task" "$E" eval --ckpt "$R" --kv_pairs=2
mv "$D" "$T/ds_moved"
expect_fail "eval LM, dataset moved" "trained as a language model on $D, which is not there now .*give --data DIR" "$E" eval --ckpt "$R"
mv "$T/ds_moved" "$D"
# a checkpoint without training state (an exported or expanded one): neither a task nor a dataset to assume
mkdir -p "$T/bare" && cp "$R/current/config.json" "$R/current/model.safetensors" "$R/current/eidetic_tokenizer.json" "$T/bare/"
expect_fail "eval, no training state" "no training state .* or --data DIR --seq-len L" "$E" eval --ckpt "$T/bare"
expect_ok "eval --data, no training state" "$E" eval --ckpt "$T/bare" --data "$D" --seq-len 32 --threads 1
[ "$(sed -n 's/^bits_per_byte: //p' "$T/out")" = "$bpb" ] && ok || bad "eval of the bare copy: $(cat "$T/out") (run: $bpb)"
# resuming with another tokenizer than the run's is refused
rm "$R/current/eidetic_tokenizer.json"
expect_fail "resume, other tokenizer" "not the one the run in .* was trained with" "$E" train --resume "$R" --steps 80
# a task checkpoint has no tokenizer
expect_ok "task run" "$E" train --preset tiny --steps 2 --eval-examples 8 --out "$T/task" --quiet
expect_fail "eval --data on a task checkpoint" "carries no tokenizer" "$E" eval --ckpt "$T/task" --data "$D"
summary prepare
