#!/usr/bin/env bash
# The library used from two threads on separate model handles (issue #11 item 7), under
# ThreadSanitizer: the library is rebuilt with -fsanitize=thread (in BUILD/tsan, reused between
# runs), tests/tsan/api_threads.c loads one checkpoint into two handles and runs logits, greedy
# decoding and training steps on two pthreads; the results must equal a sequential run and TSan
# must report nothing. A planted unsynchronised counter must be reported, so the check can fail.
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
case $BUILD in /*) TB="$BUILD/tsan" ;; *) TB="$ROOT/$BUILD/tsan" ;; esac
cd "$ROOT"
export EIDETIC_NO_REEXEC=1 # the library never re-executes; keep the CLI's training run alike
MK=(env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -s -j2)
if ! "${MK[@]}" BUILD="$TB" OPT="-O1 -fsanitize=thread -fno-omit-frame-pointer" "$TB/libeidetic.a" >"$T/build" 2>&1; then
    bad "TSan build of libeidetic.a: $(tail -5 "$T/build")"; summary threads_tsan; exit 1
fi
LIBS=$("${MK[@]}" -p -n 2>/dev/null | sed -nE 's/^(BLAS_LIBS|CJSON_LIBS|SPM_LIBS|ICU_LIBS|ZLIB_LIBS|DNNL_LIBS) :?= //p' | tr '\n' ' ')
if ! cc -O1 -g -fsanitize=thread -fopenmp -Iinclude tests/tsan/api_threads.c "$TB/libeidetic.a" $LIBS -lm \
        -o "$TB/api_threads" 2>"$T/build"; then
    bad "TSan build of api_threads: $(tail -5 "$T/build")"; summary threads_tsan; exit 1
fi
R="$T/ckpt"
expect_ok "train" "$E" train --preset tiny --steps 10 --layers longhorn,mamba,mamba2,gla,swa --window 8 --out "$R" --quiet

run() { # some kernels map memory where TSan cannot shadow it with full ASLR: retry without it
    TSAN_OPTIONS="halt_on_error=0 exitcode=66 $TSAN_OPTIONS" "$TB/api_threads" "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if grep -q "unexpected memory mapping" "$T/err" && command -v setarch >/dev/null; then
        TSAN_OPTIONS="halt_on_error=0 exitcode=66" setarch "$(uname -m)" -R "$TB/api_threads" "$@" >"$T/out" 2>"$T/err"
        rc=$?
    fi
    return $rc
}
run "$R"; rc=$?
n=$(grep -c "WARNING: ThreadSanitizer" "$T/err")
[ $rc -eq 0 ] && [ "$n" -eq 0 ] && ok || bad "two threads: exit $rc, $n TSan reports: $(grep -A8 -m1 WARNING "$T/err" || tail -5 "$T/err")"
grep -q "= sequential" "$T/out" && ok || bad "two threads did not match the sequential run: $(tail -3 "$T/err")"
run "$R" --plant-race; rc=$?
[ $rc -eq 66 ] && grep -q "WARNING: ThreadSanitizer: data race" "$T/err" && grep -q "'planted'" "$T/err" && ok ||
    bad "the planted race was not reported (exit $rc): $(tail -5 "$T/err")"
summary threads_tsan
