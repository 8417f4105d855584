#!/usr/bin/env bash
# The sanitizer pass (docs/reliability.md "Sanitizers"): every unit test, the CLI error tests
# (cli_errors.sh, strict.sh) and the fuzz regression inputs, built by `make asan-build` with
# ASan+UBSan (any report is fatal) and LeakSanitizer on. Ends with "N passed, N failed".
set -u
AB=${1:-build/asan}
cd "$(dirname "$0")/.."
export EIDETIC_POISON_SCRATCH=1 # as tests/run_all.sh
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=86
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
pass=0; fail=0
tally() { # NAME OUTPUT RC
    local line; line=$(printf '%s\n' "$2" | grep -E ': [0-9]+ passed, [0-9]+ failed$' | tail -1)
    if [ "$3" -ne 0 ] || [ -z "$line" ] || printf '%s' "$2" | grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:'; then
        printf '%s\n' "$2" | grep -v -E ': [0-9]+ passed, [0-9]+ failed$' | tail -25
        echo "FAILED under sanitizers: $1 (exit $3)"; fail=$((fail + 1))
    fi
    if [ -n "$line" ]; then
        echo "asan $line"
        local p f; p=$(printf '%s' "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/'); f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed/\1/')
        pass=$((pass + p)); fail=$((fail + f))
    fi
}
# Reduced set by default, to keep `make test` short on 2 cores: test_mamba2 (about 2 CPU-minutes
# under ASan; it passes at -O1, docs/reliability.md) and test_tasks (minutes of example generation
# under ASan) run only with EIDETIC_ASAN_FULL=1.
skip=" test_mamba2 test_tasks "
[ "${EIDETIC_ASAN_FULL:-0}" = 1 ] && skip=""
for t in "$AB"/tests/test_*; do
    [ -x "$t" ] || continue
    case "$skip" in *" $(basename "$t") "*) echo "asan: $(basename "$t") skipped (EIDETIC_ASAN_FULL=1 runs it)"; continue ;; esac
    out=$("$t" 2>&1); tally "$t" "$out" $?
done
for s in tests/cli/cli_errors.sh tests/cli/strict.sh; do
    out=$(bash "$s" "$AB" 2>&1); tally "$s" "$out" $?
done
echo
echo "sanitizer pass: $pass passed, $fail failed"
[ $fail -eq 0 ]
