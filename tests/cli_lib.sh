# cli_lib.sh — what the CLI tests (tests/cli/*.sh) share; sourced, never run on its own.
#   source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
# gives E (the eidetic binary of BUILD, relative to the repo or absolute), T (a temp dir removed on
# exit), pass/fail counters, ok/bad, expect_ok, expect_fail and summary NAME (prints the
# "NAME: N passed, M failed" line run_all.sh reads, and returns non-zero on any failure).
# EXPECT_ONE_ERROR=1 makes expect_fail also require exactly one "error:" line.
BUILD=${1:-build}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case $BUILD in /*) E="$BUILD/eidetic" ;; *) E="$ROOT/$BUILD/eidetic" ;; esac # absolute: make BUILD=/tmp/x test
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# expect_fail NAME PATTERN CMD...: non-zero exit and stderr matching PATTERN
expect_fail() {
    local name=$1 pat=$2; shift 2
    local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
    if [ $rc -ne 0 ] && printf "%s" "$err" | grep -qiE -e "$pat" &&
        { [ "${EXPECT_ONE_ERROR:-0}" != 1 ] || [ "$(printf "%s\n" "$err" | grep -c 'error:')" -eq 1 ]; }; then ok
    else bad "$name (rc=$rc): $err"; fi
}
# expect_ok NAME CMD...: exit 0 (stdout in $T/out, stderr in $T/err)
expect_ok() {
    local name=$1; shift
    if "$@" >"$T/out" 2>"$T/err"; then ok; else bad "$name: $(tail -3 "$T/err")"; fi
}
summary() {
    echo "$1: $pass passed, $fail failed"
    [ $fail -eq 0 ]
}
