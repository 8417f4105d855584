#!/usr/bin/env bash
# compare_pytorch.sh [BUILD] — the PyTorch forms of bench/compare_pytorch.py against tests/ref
# (`--check`: every form of every mixer, one layer in fp32 vs the float64 reference, rel err < 1e-4,
# gradients in float64 < 1e-8; 2-layer models' logits and labelled-row loss vs ref_model.forward),
# a negative control (weights scaled by 1 + 1e-3 must fail the check) and an argument error.
# Skipped (0 passed, 0 failed) when /usr/bin/python3 cannot import torch. About 10 s.
# Ends with "compare_pytorch: N passed, M failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
PY=/usr/bin/python3
S=bench/compare_pytorch.py

if ! $PY -c "import torch" 2>/dev/null; then
    echo "skip: $PY cannot import torch (python3-torch is not installed): compare_pytorch --check not run"
    echo "compare_pytorch: 0 passed, 0 failed"
    exit 0
fi

pass=0; fail=0
ok()  { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

# 1. every check of --check counts as one test
out=$($PY "$S" --check 2>&1); rc=$?
summary=$(printf '%s\n' "$out" | sed -n 's/^compare_pytorch --check: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
printf '%s\n' "$out" | grep -E '^  (ok|FAIL) ' | sed 's/^  //'
if [ -z "$summary" ]; then
    printf '%s\n' "$out" | tail -5
    bad "--check printed no summary (exit $rc)"
else
    set -- $summary
    pass=$((pass + $1)); fail=$((fail + $2))
    if [ "$2" = 0 ] && [ $rc -ne 0 ]; then bad "--check exit $rc with 0 failures"; fi
    if [ "$2" != 0 ] && [ $rc -eq 0 ]; then bad "--check exit 0 with $2 failures"; fi
    if [ "$1" -lt 30 ]; then bad "--check ran only $1 checks (expected every form of six mixers)"; fi
fi

# 2. negative control: a 1e-3 change of the PyTorch side's weights must be caught
out=$(COMPARE_PYTORCH_PERTURB=1e-3 $PY "$S" --check --mixers longhorn,gla 2>&1); rc=$?
nf=$(printf '%s\n' "$out" | sed -n 's/^compare_pytorch --check: [0-9]* passed, \([0-9]*\) failed$/\1/p')
if [ $rc -eq 1 ] && [ "${nf:-0}" -ge 4 ]; then ok "perturbed weights are caught ($nf checks fail, exit 1)"
else bad "perturbed weights not caught (exit $rc, ${nf:-no} failures)"; fi

# 3. usage error
$PY "$S" --mixers nonexistent >/dev/null 2>&1; rc=$?
if [ $rc -eq 2 ]; then ok "unknown mixer is a usage error (exit 2)"; else bad "unknown mixer: exit $rc, expected 2"; fi

echo "compare_pytorch: $pass passed, $fail failed"
[ $fail -eq 0 ]
