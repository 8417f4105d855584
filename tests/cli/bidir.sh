#!/usr/bin/env bash
# --bidir (docs/layers.md §8, docs/birdie.md "Bidirectional layers in eidetic"): stored per layer in
# config.json, read back by a resumed run and by eval; bad values are refused with one clear error and
# nothing written.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"

R="$T/bd"
expect_ok "train alternate" "$E" train --preset tiny --layers longhorn,mamba2,gla --bidir alternate --steps 3 \
    --eval-examples 8 --out "$R" --quiet
n=$(grep -c '"bidir":' "$R/config.json")
if [ "$n" -eq 2 ]; then ok; else bad "alternate over 3 layers: expected 2 layers with bidir in config.json, got $n"; fi
expect_ok "resume keeps it" "$E" train --resume "$R" --steps 5 --quiet
n=$(grep -c '"bidir":' "$R/config.json")
if [ "$n" -eq 2 ]; then ok; else bad "resumed: expected 2 bidir layers, got $n"; fi
expect_ok "eval a bidir checkpoint" "$E" eval --ckpt "$R" --examples 8
L="$T/list"
expect_ok "train list" "$E" train --preset tiny --layers longhorn,longhorn,longhorn --bidir 1,2 --steps 2 \
    --eval-examples 8 --out "$L" --quiet
n=$(grep -c '"bidir":' "$L/config.json")
if [ "$n" -eq 2 ]; then ok; else bad "--bidir 1,2: expected 2 bidir layers, got $n"; fi

expect_fail "unknown value" "--bidir .*expected an integer" "$E" train --preset tiny --bidir sideways --steps 2 --out "$T/x1"
expect_fail "index out of range" "--bidir .*out of range" "$E" train --preset tiny --bidir 0,9 --steps 2 --out "$T/x2"
expect_fail "listed twice" "layer 0 listed twice" "$E" train --preset tiny --layers longhorn,longhorn --bidir 0,0 \
    --steps 2 --out "$T/x3"
# every mixer has a bidirectional form now: attention/swa with the prefix-LM mask, hawk, gated-ssm
A="$T/attn"
expect_ok "attn, swa, hawk, gated-ssm all bidir" "$E" train --preset tiny --layers attn,swa,hawk,gated-ssm --bidir all \
    --steps 2 --eval-examples 8 --out "$A" --quiet
n=$(grep -c '"bidir":' "$A/config.json")
if [ "$n" -eq 4 ]; then ok; else bad "--bidir all over attn,swa,hawk,gated-ssm: expected 4 bidir layers, got $n"; fi
for d in x1 x2 x3; do
    if [ -e "$T/$d" ]; then bad "$d: a refused run left an output directory"; else ok; fi
done
# a bad value in config.json is refused when loading
sed 's/"bidir":[[:space:]]*1/"bidir": 2/' "$R/config.json" > "$T/bad.json"
mkdir -p "$T/badck" && cp "$R"/*.safetensors "$T/badck/" 2>/dev/null; cp "$T/bad.json" "$T/badck/config.json"
expect_fail "bidir 2 in config.json" "bidir must be 0 or 1" "$E" eval --ckpt "$T/badck" --examples 8
summary bidir
