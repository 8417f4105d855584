#!/usr/bin/env bash
# bmojo.sh — the B'MOJO mixers from the command line (docs/bmojo.md): a tiny model trained with every
# B'MOJO flag, its config.json naming the SSM and the score, `info` printing a constant decode state,
# forward == forward --recurrent, resume; and the flags' errors.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"

TINY=(--vocab 64 --d-model 16 --seq-len 32 --kv-pairs 2 --batch 4 --steps 4 --eval-every 4 --eval-examples 8
      --threads 1 --quiet --window 4)
OPTS=(--layers bmojo,bmojo-f --bmojo-ssm longhorn --qk-norm --untied-fading --mem-size 3 --mem-topk 2 --num-kv-heads 1
      --num-heads 2)
expect_ok "train bmojo" "$E" train "${TINY[@]}" "${OPTS[@]}" --out "$T/m"
cfg="$T/m/config.json"
S='[[:space:]]*'
if grep -q "\"ssm\":$S\"longhorn\"" "$cfg" && grep -q "\"score\":$S\"pred\"" "$cfg" && grep -q "\"mem_size\":${S}3" "$cfg" &&
    grep -q "\"qk_norm\":${S}1" "$cfg" && grep -q "\"untied\":${S}1" "$cfg"; then ok; else bad "config.json lacks the B'MOJO fields: $(cat "$cfg")"; fi
expect_ok "info" "$E" info --ckpt "$T/m"
if grep -qE '^0 +bmojo ' "$T/out" && grep -qE '^1 +bmojo-f ' "$T/out"; then ok; else bad "info: $(cat "$T/out")"; fi
expect_ok "forward" "$E" forward --ckpt "$T/m" --tokens 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --out "$T/a.st" --threads 1
expect_ok "forward --recurrent" "$E" forward --ckpt "$T/m" --tokens 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 --out "$T/b.st" --recurrent --threads 1
if [ -s "$T/a.st" ] && [ -s "$T/b.st" ]; then ok; else bad "forward wrote no logits"; fi
# interrupted at step 2 and resumed == the uninterrupted run (bit-exact weights)
expect_ok "train stop-after" "$E" train "${TINY[@]}" "${OPTS[@]}" --out "$T/r" --stop-after 2
expect_ok "resume" "$E" train --resume "$T/r" --threads 1 --quiet
if cmp -s "$T/m/model.safetensors" "$T/r/model.safetensors"; then ok; else bad "resumed bmojo run differs from the uninterrupted one"; fi
# errors name the flag or field and what was expected
expect_fail "bad score" "score must be pred" "$E" train "${TINY[@]}" --layers bmojo --bmojo-score surprise --out "$T/x1"
expect_fail "bad ssm" "ssm must be one of" "$E" train "${TINY[@]}" --layers bmojo-f --bmojo-ssm swa --out "$T/x2"
mkdir -p "$T/c" && cp "$T/m/model.safetensors" "$T/c/" && # a store field on the bmojo-f layer of config.json
    python3 -c "import json,sys; c=json.load(open(sys.argv[1])); c['layers'][1]['mem_size']=4; json.dump(c, open(sys.argv[2],'w'))" "$cfg" "$T/c/config.json"
expect_fail "store field on bmojo-f" "config.json.*mem_size.*belong" "$E" info --ckpt "$T/c"
sed 's/"longhorn"/"lstm"/' "$cfg" > "$T/c/config.json"
expect_fail "unknown ssm in config.json" "config.json.*ssm must be one of" "$E" info --ckpt "$T/c"
expect_fail "k_e > W" "mem_topk" "$E" train "${TINY[@]}" --layers bmojo --mem-topk 9 --out "$T/x4"
expect_fail "headdim for longhorn" "headdim" "$E" train "${TINY[@]}" --layers bmojo --bmojo-ssm longhorn --headdim 4 --out "$T/x5"
summary bmojo
