#!/usr/bin/env bash
# generate --text (docs/lm.md "Generating text"): a tiny checkpoint with the byte tokenizer stored
# beside it → the prompt is encoded, the output streamed as valid UTF-8, stop strings end it without
# being printed, sampling is deterministic per seed; errors name the flag or the missing tokenizer.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
R="$T/run"
expect_ok "train tiny vocab 260" "$E" train --preset tiny --vocab 260 --steps 2 --out "$R" --quiet
expect_fail "--text without a tokenizer" "has no tokenizer.*--prompt" "$E" generate --ckpt "$R" --text "hi"
echo '{"type": "byte"}' > "$R/eidetic_tokenizer.json"   # what tok_save_dir writes for the byte tokenizer

utf8_ok() { /usr/bin/python3 -c "import sys; sys.stdin.buffer.read().decode('utf-8')" < "$1"; }
expect_ok "greedy text" "$E" generate --ckpt "$R" --text "héllo wörld" --max-new 24 --ignore-eos
cp "$T/out" "$T/greedy"
[ "$(wc -c < "$T/greedy")" -gt 1 ] && ok || bad "greedy printed nothing"
utf8_ok "$T/greedy" && ok || bad "greedy output is not valid UTF-8: $(od -c "$T/greedy" | head -3)"
expect_ok "sampled text" "$E" generate --ckpt "$R" --text "héllo" --max-new 64 --temperature 1.5 --seed 7 --ignore-eos
utf8_ok "$T/out" && ok || bad "sampled output (random bytes) is not valid UTF-8: $(od -c "$T/out" | head -3)"
cp "$T/out" "$T/s1"
expect_ok "sampled again" "$E" generate --ckpt "$R" --text "héllo" --max-new 64 --temperature 1.5 --seed 7 --ignore-eos
cmp -s "$T/out" "$T/s1" && ok || bad "same --seed gave different text"
expect_ok "other seed" "$E" generate --ckpt "$R" --text "héllo" --max-new 64 --temperature 1.5 --seed 8 --ignore-eos
cmp -s "$T/out" "$T/s1" && bad "--seed 8 gave the same 64 sampled bytes as --seed 7" || ok
expect_ok "top-k 1" "$E" generate --ckpt "$R" --text "héllo wörld" --max-new 24 --ignore-eos --temperature 2 --top-k 1 --seed 5
cmp -s "$T/out" "$T/greedy" && ok || bad "--top-k 1 differs from greedy"

# stop string: a piece of the greedy output from its middle; the output must be exactly what precedes
# its first occurrence (the stop string itself is not printed), then a newline
stop=$(/usr/bin/python3 -c "
import sys; s = open('$T/greedy', encoding='utf-8').read().rstrip('\n'); print(s[len(s)//2:len(s)//2+2], end='')")
expect_ok "stop" "$E" generate --ckpt "$R" --text "héllo wörld" --max-new 24 --ignore-eos --stop "zzz-never" --stop "$stop"
want=$(/usr/bin/python3 -c "
import sys; s = open('$T/greedy', encoding='utf-8').read().rstrip('\n'); print(s[:s.index(sys.argv[1])])" "$stop")
[ "$(cat "$T/out")" = "$want" ] && ok || bad "stop '$stop': got '$(cat "$T/out")', want '$want'"
expect_ok "stop never met" "$E" generate --ckpt "$R" --text "héllo wörld" --max-new 24 --ignore-eos --stop=qqqq
cmp -s "$T/out" "$T/greedy" && ok || bad "a stop string that never occurs changed the output"

# EOS (id 256 for the byte tokenizer) ends the text unless --ignore-eos: the same seed gives a prefix
# (up to the last character, which the end-of-stream flush may render differently), and over 12 seeds
# at a high temperature (each of 64 draws picks 256 with probability about 1/260) some run stops early
shorter=0
for seed in 1 2 3 4 5 6 7 8 9 10 11 12; do
    "$E" generate --ckpt "$R" --text "x" --max-new 64 --temperature 3 --seed $seed > "$T/eos" 2>&1 || bad "eos seed $seed"
    "$E" generate --ckpt "$R" --text "x" --max-new 64 --temperature 3 --seed $seed --ignore-eos > "$T/all" 2>&1
    r=$(/usr/bin/python3 -c "
a = open('$T/eos', encoding='utf-8').read().rstrip('\n'); b = open('$T/all', encoding='utf-8').read().rstrip('\n')
print('prefix' if b.startswith(a[:-1]) else 'no', 'short' if len(a) < len(b) - 1 else 'full')")
    case $r in "prefix short") shorter=$((shorter + 1)) ;; "prefix full") ;; *) bad "eos seed $seed: not a prefix" ;; esac
done
[ $shorter -ge 1 ] && ok || bad "no run of 12 stopped at EOS"
expect_ok "max-new 0" "$E" generate --ckpt "$R" --text "a" --max-new 0
[ "$(cat "$T/out")" = "" ] && ok || bad "--max-new 0 printed '$(cat "$T/out")'"

# bad flags name the flag
expect_fail "both prompt and text" "exactly one of --prompt" "$E" generate --ckpt "$R" --text "a" --prompt 1
expect_fail "top-k negative" "--top-k" "$E" generate --ckpt "$R" --text "a" --top-k -1
expect_fail "penalty < 1" "--repetition-penalty" "$E" generate --ckpt "$R" --text "a" --repetition-penalty 0.5
expect_fail "top-p 0" "--top-p" "$E" generate --ckpt "$R" --text "a" --top-p 0
expect_fail "stop without value" "--stop" "$E" generate --ckpt "$R" --text "a" --stop
expect_fail "stop empty" "--stop" "$E" generate --ckpt "$R" --text "a" --stop ""
expect_fail "stop with --prompt" "--stop and --ignore-eos need --text" "$E" generate --ckpt "$R" --prompt 1 --stop x
expect_fail "text not UTF-8" "--text: not valid UTF-8" "$E" generate --ckpt "$R" --text "$(printf 'a\xffb')"
echo '{"type": "nonsense"}' > "$R/eidetic_tokenizer.json"
expect_fail "broken tokenizer descriptor" "eidetic_tokenizer.json" "$E" generate --ckpt "$R" --text "a"
# a vocabulary larger than the model's: model vocab 200 < 257 byte tokens
R2="$T/small"
expect_ok "train tiny vocab 200" "$E" train --preset tiny --vocab 200 --steps 1 --out "$R2" --quiet
echo '{"type": "byte"}' > "$R2/eidetic_tokenizer.json"
expect_fail "tokenizer larger than model" "257 tokens but the model's vocab_size is 200" "$E" generate --ckpt "$R2" --text "a"
# --prompt with token ids is unchanged and ignores the tokenizer
expect_ok "prompt ids" "$E" generate --ckpt "$R2" --prompt 1,2,3 --max-new 5 --repetition-penalty 1.3 --top-k 5 --temperature 1
grep -qE '^[0-9]+(,[0-9]+){4}$' "$T/out" && ok || bad "--prompt did not print 5 token ids"
summary generate_text
