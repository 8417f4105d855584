#!/usr/bin/env bash
# Runs every test binary and the cross-implementation checks; ends with "N passed, N failed".
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
# every model call starts with the shared scratch zone full of NaN (src/model/model.c poison_scratch)
export EIDETIC_POISON_SCRATCH=1
pass=0; fail=0
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    out=$("$t" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[a-z_0-9]+: [0-9]+ passed, [0-9]+ failed$' | tail -1)
    if [ $rc -ne 0 ] || [ -z "$line" ]; then
        printf '%s\n' "$out" | grep -v -E ': [0-9]+ passed, [0-9]+ failed$' | tail -20
        echo "FAILED: $t (exit $rc)"
    fi
    [ -n "$line" ] && echo "$line"
    p=$(printf '%s' "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/'); f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed/\1/')
    pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
    if [ $rc -ne 0 ] && [ "${f:-0}" = 0 ]; then fail=$((fail + 1)); fi
done
for s in tests/cli/*.sh; do
    [ -f "$s" ] || continue
    out=$(bash "$s" "$BUILD" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E ': [0-9]+ passed, [0-9]+ failed$' | tail -1)
    [ $rc -ne 0 ] && { printf '%s\n' "$out" | tail -20; echo "FAILED: $s (exit $rc)"; }
    echo "${line:-$s: no summary}"
    p=$(printf '%s' "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/'); f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed/\1/')
    pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
    if [ $rc -ne 0 ] && [ "${f:-0}" = 0 ]; then fail=$((fail + 1)); fi
done
echo
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
