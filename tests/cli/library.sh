#!/usr/bin/env bash
# The library (include/eidetic.h, libeidetic.a) from outside: the example programs built against the
# public header only give the same greedy tokens as `eidetic generate` and bit-identical logits to
# `eidetic forward --tokens-file`; forward's many-sequence input rejects bad lines with FILE:LINE.
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
case $BUILD in /*) X="$BUILD/examples" ;; *) X="$ROOT/$BUILD/examples" ;; esac
[ -x "$X/decode" ] && [ -x "$X/logits" ] || { bad "examples not built (make examples)"; summary library; exit 1; }
command -v python3 >/dev/null || { bad "python3 is needed to compare logits"; summary library; exit 1; }

# the example includes nothing but <eidetic.h> and the C library
grep -hE '^#include' "$ROOT"/examples/*.c | grep -vE '<(eidetic|stdio|stdlib|string)\.h>' && bad "examples include internal headers" || ok
# the public header includes no internal header
grep -E '^#include' "$ROOT/include/eidetic.h" | grep -vq '<stddef.h>' && bad "eidetic.h includes more than <stddef.h>" || ok
# and it compiles as strict C11 and as C++ (where a C++ compiler is installed)
printf '#include <eidetic.h>\nint main(void) { return eidetic_init(1); }\n' >"$T/h.c"
cc -std=c11 -Wall -Wextra -pedantic -Werror -fsyntax-only -I"$ROOT/include" "$T/h.c" 2>"$T/err" && ok || bad "eidetic.h as C11: $(cat "$T/err")"
if command -v c++ >/dev/null; then
    c++ -std=c++11 -Wall -Wextra -pedantic -Werror -fsyntax-only -I"$ROOT/include" -x c++ "$T/h.c" 2>"$T/err" && ok ||
        bad "eidetic.h as C++: $(cat "$T/err")"
fi

# The library never re-executes the process to pick OpenBLAS's core (the CLI's main does, where
# OpenBLAS misdetects the CPU): run the CLI without it so both use the same BLAS kernels, bit for bit.
export EIDETIC_NO_REEXEC=1
R1="$T/mix"; R2="$T/pos"
expect_ok "train mixers" "$E" train --preset tiny --steps 20 --layers longhorn,mamba,mamba2,gla,swa --window 8 --out "$R1" --quiet
expect_ok "train learned positions" "$E" train --preset tiny --steps 20 --layers attn --learned-pos --out "$R2" --quiet

# 1. greedy decoding: the example (prefill + step through the API) == eidetic generate
for R in "$R1" "$R2"; do
    for p in 5 1,2,3 7,7,7,7,7,7,7,7,7,7,7; do
        a=$("$X/decode" "$R" "$p" 12 2 2>"$T/err") || bad "decode $R $p: $(cat "$T/err")"
        b=$("$E" generate --ckpt "$R" --prompt "$p" --max-new 12 --threads 2 2>"$T/err") || bad "generate: $(cat "$T/err")"
        [ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "decode $(basename "$R") prompt $p: example '$a' != generate '$b'"
    done
done

# 2. logits: the example (one sequence per call) == forward --tokens-file (likewise, whatever the other lines)
printf '1,2,3,4,5\n9,8,7,6,5\n3\n10,20,30,40,50,60,70,80,90,100,110,120,130,140,150,160,170\n4,4,4,4,4\n' >"$T/toks"
cmp_logits() { # CKPT: example's text vs forward's safetensors, bit for bit
    "$X/logits" "$1" "$T/toks" 2 >"$T/api.txt" 2>"$T/err" || { bad "logits example: $(cat "$T/err")"; return; }
    "$E" forward --ckpt "$1" --tokens-file "$T/toks" --out "$T/fwd.safetensors" --threads 2 2>"$T/err" ||
        { bad "forward --tokens-file: $(cat "$T/err")"; return; }
    python3 - "$T/fwd.safetensors" "$T/api.txt" <<'PY' && ok || bad "logits of $(basename "$1"): library != forward"
import json, struct, sys
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
hdr = json.loads(raw[8:8 + n]); base = 8 + n
api = {}
for line in open(sys.argv[2]):
    f = line.split(); api[(int(f[0]), int(f[1]))] = [float.fromhex(x) for x in f[2:]]
names = sorted((k for k in hdr if k.startswith('logits.')), key=lambda k: int(k.split('.')[1]))
assert len(names) == 5, names
rows = 0
for i, k in enumerate(names):
    T, V = hdr[k]['shape']; a, b = hdr[k]['data_offsets']
    vals = struct.unpack('<%df' % (T * V), raw[base + a:base + b])
    for t in range(T):
        got = api[(i, t)]
        assert len(got) == V and list(vals[t * V:(t + 1) * V]) == got, (k, t)
        rows += 1
assert rows == len(api), (rows, len(api))
PY
}
cmp_logits "$R1"
cmp_logits "$R2"
# --recurrent over a file runs too (values agree with the parallel pass to rounding, tested elsewhere)
expect_ok "forward --tokens-file --recurrent" "$E" forward --ckpt "$R1" --tokens-file "$T/toks" --recurrent --out "$T/rec.safetensors"
grep -q "logits of 5 sequences" "$T/err" && ok || bad "forward --tokens-file did not report 5 sequences: $(cat "$T/err")"

# 3. bad input: which line, what was expected
printf '1,2\n3,x\n' >"$T/b1"; printf '1,2\n\n3\n' >"$T/b2"; printf '1\n2\n99999\n' >"$T/b3"
printf '1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33\n' >"$T/b4"
: >"$T/b6"
EXPECT_ONE_ERROR=1 expect_fail "bad token on line 2" "b1:2: .*expected an integer" "$E" forward --ckpt "$R1" --tokens-file "$T/b1" --out "$T/o"
EXPECT_ONE_ERROR=1 expect_fail "empty line 2" "b2:2: empty line; expected a comma list" "$E" forward --ckpt "$R1" --tokens-file "$T/b2" --out "$T/o"
EXPECT_ONE_ERROR=1 expect_fail "vocab on line 3" "b3:3: token 99999 .*outside the vocabulary" "$E" forward --ckpt "$R1" --tokens-file "$T/b3" --out "$T/o"
EXPECT_ONE_ERROR=1 expect_fail "too long on line 1" "b4:1: 33 tokens exceed .* 32 learned positions" "$E" forward --ckpt "$R2" --tokens-file "$T/b4" --out "$T/o"
EXPECT_ONE_ERROR=1 expect_fail "empty file" "no sequences" "$E" forward --ckpt "$R1" --tokens-file "$T/b6" --out "$T/o"
EXPECT_ONE_ERROR=1 expect_fail "missing file" "tokens-file .*cannot open" "$E" forward --ckpt "$R1" --tokens-file "$T/nope" --out "$T/o"
EXPECT_ONE_ERROR=1 expect_fail "both inputs" "one of --tokens or --tokens-file" "$E" forward --ckpt "$R1" --tokens 1 --tokens-file "$T/toks" --out "$T/o"
[ ! -e "$T/o" ] && ok || bad "a failed forward wrote its output"
# the example reports library errors with the library's message
expect_fail "decode past learned positions" "learned positions" "$X/decode" "$R2" 1,2,3 40
expect_fail "decode bad checkpoint" "config.json" "$X/decode" "$T/nope" 1 3
summary library
