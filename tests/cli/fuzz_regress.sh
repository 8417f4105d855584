#!/usr/bin/env bash
# Fuzz regression inputs (docs/reliability.md "Fuzzing"): every file in fuzz/regress/<harness>/ (inputs
# that once crashed a harness) and fuzz/seeds/<harness>/ runs through that harness's target function
# in a plain driver built with gcc -fsanitize=address,undefined (make asan-build puts them in
# BUILD/asan/fuzz/), so no libFuzzer is needed. A self-check first proves the driver would catch a
# planted one-byte heap over-read.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
case $BUILD in /*) AB="$BUILD" ;; *) AB="$ROOT/$BUILD" ;; esac
case $AB in */asan) ;; *) AB="$AB/asan" ;; esac
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:exitcode=86
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=86
export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0
export OMP_NUM_THREADS=1
n=0
for src in "$ROOT"/fuzz/fuzz_*.c; do
    h=$(basename "$src" .c); d="$AB/fuzz/$h"
    if [ ! -x "$d" ]; then bad "$h: driver $d not built (make asan-build)"; continue; fi
    if [ $n -eq 0 ]; then # the self-check, once: a planted over-read must be reported
        printf 'abc' > "$T/planted"
        out=$(EIDETIC_FUZZ_PLANTED=1 "$d" "$T/planted" 2>&1); rc=$?
        [ $rc -ne 0 ] && printf '%s' "$out" | grep -q "heap-buffer-overflow" && ok ||
            bad "planted over-read not detected by $d (rc=$rc)"
    fi
    files=()
    for f in "$ROOT/fuzz/seeds/$h"/* "$ROOT/fuzz/regress/$h"/*; do [ -f "$f" ] && files+=("$f"); done
    [ ${#files[@]} -gt 0 ] || { bad "$h: no seeds or regression inputs"; continue; }
    out=$(timeout 600 "$d" "${files[@]}" 2>&1); rc=$? # a hang (once a fuzzer timeout) fails, with rc 124
    if [ $rc -eq 0 ] && ! printf '%s' "$out" | grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:'; then ok
    else bad "$h on ${#files[@]} inputs (rc=$rc): $(printf '%s\n' "$out" | grep -E 'ERROR|runtime error|SUMMARY|#[0-9] ' | head -12)"; fi
    n=$((n + ${#files[@]}))
done
echo "fuzz_regress: ran $n inputs"
summary fuzz_regress
