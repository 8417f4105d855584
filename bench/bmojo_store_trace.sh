#!/usr/bin/env bash
# bmojo_store_trace.sh CKPT [BUILD] [EXAMPLES] [K] — which tokens a trained `bmojo` model's innovation test
# puts in the store on MQAR (docs/bmojo.md "What the store holds"). Runs `eidetic eval` on EXAMPLES (8)
# MQAR test examples with K (8) pairs at the checkpoint's training length, in one batch under gdb, stops in k_bmojo_select (src/kernels/cpu/bmojo.c) once per
# layer, and reads each row's list of selected positions. MQAR puts its K key-value pairs first (key at
# even, value at odd positions), so the script prints, per layer, the selections that fall among the
# pairs and how many of them are value tokens (chance: half). Needs gdb and a build with -g (the
# Makefile's default flags).
set -eu
CKPT=${1:?usage: bmojo_store_trace.sh CKPT [BUILD] [EXAMPLES] [K]}
BUILD=${2:-build}
N=${3:-8}
K=${4:-8}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
case $BUILD in /*) E="$BUILD/eidetic" ;; *) E="$ROOT/$BUILD/eidetic" ;; esac
command -v gdb > /dev/null || { echo "bmojo_store_trace.sh: needs gdb (apt install gdb)" >&2; exit 3; }
NL=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1] + '/config.json'))['n_layer'])" "$CKPT")
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
{
    echo "set pagination off"; echo "set print elements 0"; echo "set print repeats unlimited"
    echo "break k_bmojo_select"; echo "run"
    for _ in $(seq "$NL"); do
        echo 'printf "B=%d T=%d W=%d ke=%d\n", B, T, W, ke'; echo 'set $s = sel'; echo 'set $n = B * T'
        echo "finish"; echo 'output *$s@$n'; echo 'printf "\n"'; echo "continue"
    done
    echo "kill"; echo "quit"
} > "$TMP/cmds"
gdb -batch -x "$TMP/cmds" --args "$E" eval --ckpt "$CKPT" --task mqar --kv-pairs "$K" --examples "$N" --batch "$N" --threads 1 > "$TMP/out" 2>&1 || true
/usr/bin/python3 - "$TMP/out" "$K" <<'EOF'
import re, sys
text = open(sys.argv[1]).read().splitlines()
K = int(sys.argv[2])
layer = 0
for i, line in enumerate(text):
    m = re.match(r"B=(\d+) T=(\d+) W=(\d+) ke=(\d+)", line)
    if not m: continue
    B, T, W, ke = map(int, m.groups())
    lst = next(l for l in text[i + 1:] if l.startswith("{"))
    v = [int(x) for x in re.findall(r"-?\d+", lst)]
    pairs = 2 * K
    sel = [p for b in range(B) for p in v[b * T:b * T + ke * ((pairs + W - 1) // W)] if p < pairs]
    odd = sum(p % 2 for p in sel)
    print("layer %d: %d rows, W %d, k_e %d: %d selections among the first %d positions (the pairs), %d on value "
          "tokens (%.0f%%; chance 50%%)" % (layer, B, W, ke, len(sel), pairs, odd, 100.0 * odd / max(1, len(sel))))
    layer += 1
if layer == 0: sys.exit("bmojo_store_trace.sh: gdb never stopped in k_bmojo_select (a bmojo checkpoint? built with -g?)")
EOF
