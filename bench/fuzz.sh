#!/usr/bin/env bash
# bench/fuzz.sh [SECONDS] [HARNESS...] — runs each libFuzzer harness (fuzz/fuzz_*.c, built by
# `make fuzz` into build/fuzz/) for SECONDS (default 60) under ASan+UBSan, one after the other,
# niced. The working corpus lives in build/fuzz/corpus/<harness>/ (grown from fuzz/seeds/<harness>/,
# never committed); any crash, leak or timeout input is copied to fuzz/regress/<harness>/, where
# tests/cli/fuzz_regress.sh replays it in every `make test`. Prints executions per harness.
set -u
cd "$(dirname "$0")/.."
N=${1:-60}; shift || true
BUILD=${BUILD:-build}
command -v "${FUZZ_CC:-clang}" >/dev/null || { echo "bench/fuzz.sh: clang not found (scripts/setup.sh installs it)" >&2; exit 1; }
make -s fuzz BUILD="$BUILD" >/dev/null || { echo "bench/fuzz.sh: make fuzz failed" >&2; exit 1; }
hs=("$@")
[ ${#hs[@]} -gt 0 ] || for s in fuzz/fuzz_*.c; do hs+=("$(basename "$s" .c)"); done
export OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
printf '%-20s %8s %12s %10s %8s %7s\n' harness seconds executions exec/s corpus crashes
status=0
for h in "${hs[@]}"; do
    bin="$BUILD/fuzz/$h"; [ -x "$bin" ] || { echo "bench/fuzz.sh: no $bin" >&2; status=1; continue; }
    corpus="$BUILD/fuzz/corpus/$h"; art="$BUILD/fuzz/artifacts/$h"; mkdir -p "$corpus" "$art"
    dict=""; d="fuzz/${h#fuzz_}.dict"; [ -f "$d" ] && dict="-dict=$d"
    log="$BUILD/fuzz/$h.log"
    nice -n 10 "$bin" "$corpus" "fuzz/seeds/$h" $dict -max_total_time="$N" -timeout=10 -rss_limit_mb=2048 \
        -max_len=8192 -print_final_stats=1 -artifact_prefix="$art/" >"$log" 2>&1
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
    rate=$(grep -E '^stat::average_exec_per_sec' "$log" | tail -1 | awk '{print $2}')
    found=0
    for f in "$art"/*; do
        [ -f "$f" ] || continue
        mkdir -p "fuzz/regress/$h"; cp "$f" "fuzz/regress/$h/$(basename "$f")"; rm -f "$f"; found=$((found + 1)); status=1
    done
    [ $found -gt 0 ] && { echo "  $h: crash inputs copied to fuzz/regress/$h/ (log: $log)"; grep -E 'ERROR|SUMMARY' "$log" | head -3; }
    printf '%-20s %8s %12s %10s %8s %7s\n' "$h" "$N" "${execs:-?}" "${rate:-?}" "$(ls "$corpus" | wc -l)" "$found"
done
exit $status
