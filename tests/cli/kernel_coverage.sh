#!/usr/bin/env bash
# Every kernel declared in src/kernels/*.h (a function named k_*) is checked by the kernel test
# (tests/test_kernels.c and tests/kernels/kt_*.h), so a second backend can be checked kernel by
# kernel (docs/design.md). Then the check is proven to fail on a planted, untested kernel.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
uncovered() { # SRC_KERNELS TESTS_DIR → untested kernel names, one per line
    for k in $(grep -ohE '\bk_[a-z0-9_]+\(' "$1"/*.h | tr -d '(' | sort -u); do
        grep -qw "$k" "$2"/test_kernels.c "$2"/kernels/*.h || echo "$k"
    done
}
u=$(uncovered "$ROOT/src/kernels" "$ROOT/tests")
[ -z "$u" ] && ok || bad "kernels without a check in tests/test_kernels.c or tests/kernels/: $(echo $u)"
mkdir -p "$T/k" && cp "$ROOT"/src/kernels/*.h "$T/k/"
echo 'void k_planted_untested(real *x, int n);' >> "$T/k/kernels.h"
[ "$(uncovered "$T/k" "$ROOT/tests")" != "" ] && printf '%s' "$(uncovered "$T/k" "$ROOT/tests")" | grep -q k_planted_untested \
    && ok || bad "a planted untested kernel was not reported"
summary kernel_coverage
