#!/usr/bin/env bash
# eidetic prepare --tokenizer spm (docs/lm.md "Datasets"): trains a SentencePiece model on a bounded
# sample of the corpus, stores it with the dataset, and a re-run into another directory gives the
# same bytes (the sample's path must not enter the model).
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
export EIDETIC_NO_REEXEC=1
C="$T/corpus"; mkdir -p "$C"
for i in $(seq 1 400); do printf 'paragraph %d about hackers, kludges and the jargon of %d machines.\n\n' $i $((i % 17)); done > "$C/a.txt"
"$E" prepare --out "$T/ds" --tokenizer spm --vocab 300 --docs para --no-progress "$C" >"$T/out" 2>"$T/err"
[ -d "$T/ds" ] && ok || bad "prepare spm: $(tail -3 "$T/err")"
grep -q '"kind":	"spm"' "$T/ds/manifest.json" && ok || bad "manifest: tokenizer kind not spm"
[ -f "$T/ds/tokenizer.model" ] && ok || bad "tokenizer.model not stored with the dataset"
expect_ok "prepare spm again" "$E" prepare --out "$T/ds2" --tokenizer spm --vocab 300 --docs para --no-progress "$C"
for f in train.tok val.tok manifest.json; do cmp -s "$T/ds/$f" "$T/ds2/$f" && ok || bad "spm re-run: $f differs"; done
[ ! -e "$T/ds.spm" ] && [ ! -e "$T/ds.sample.txt" ] && ok || bad "spm scratch files left behind"
summary prepare_spm
