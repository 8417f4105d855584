#!/usr/bin/env bash
# eidetic prepare --tokenizer spm (docs/lm.md "Datasets"): trains a SentencePiece model on a bounded
# sample of the corpus, stores it with the dataset, and a re-run gives the same bytes. Passes once
# the SentencePiece tokenizer (src/text/tok_spm.c) is implemented; until then prepare must fail
# cleanly with nothing left behind.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
export EIDETIC_NO_REEXEC=1
C="$T/corpus"; mkdir -p "$C"
for i in $(seq 1 400); do printf 'paragraph %d about hackers, kludges and the jargon of %d machines.\n\n' $i $((i % 17)); done > "$C/a.txt"
if ! "$E" prepare --out "$T/ds" --tokenizer spm --vocab 300 --docs para --no-progress "$C" >"$T/out" 2>"$T/err" &&
    grep -q "SentencePiece training is not built yet" "$T/err"; then
    # the placeholder tokenizer (before the SentencePiece branch lands): one clean error, nothing left
    [ "$(grep -c 'error:' "$T/err")" -eq 1 ] && ok || bad "placeholder: $(cat "$T/err")"
    [ ! -e "$T/ds" ] && [ ! -e "$T/ds.tmp" ] && [ ! -e "$T/ds.spm" ] && [ ! -e "$T/ds.sample.txt" ] && ok ||
        bad "a failed spm prepare left files: $(ls "$T")"
    echo "prepare_spm: SentencePiece is the placeholder in this build: checked its clean refusal only"
    summary prepare_spm; exit
fi
[ -d "$T/ds" ] && ok || bad "prepare spm: $(tail -3 "$T/err")"
grep -q '"kind":	"spm"' "$T/ds/manifest.json" && ok || bad "manifest: tokenizer kind not spm"
[ -f "$T/ds/tokenizer.model" ] && ok || bad "tokenizer.model not stored with the dataset"
expect_ok "prepare spm again" "$E" prepare --out "$T/ds2" --tokenizer spm --vocab 300 --docs para --no-progress "$C"
for f in train.tok val.tok manifest.json; do cmp -s "$T/ds/$f" "$T/ds2/$f" && ok || bad "spm re-run: $f differs"; done
[ ! -e "$T/ds.spm" ] && [ ! -e "$T/ds.sample.txt" ] && ok || bad "spm scratch files left behind"
summary prepare_spm
