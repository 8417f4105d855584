#!/usr/bin/env bash
# Crash-safe training (docs/reliability.md "Crash-safe training", "Disk and I/O faults"):
#  - an uninterrupted reference run (tiny preset, 400 steps, a checkpoint every 8);
#  - the same run killed with SIGKILL 20 times (7 at named points inside the checkpoint write and
#    the metrics append via the test-only EIDETIC_FAULT hook, 13 at seeded random moments), each
#    kill followed by `info --ckpt` (the directory always loads) and `--resume`;
#  - within the same chain, SIGINT and SIGTERM: a checkpoint, exit 130/143 and a message saying
#    how to continue, no leftover files;
#  - `ulimit -f` during a checkpoint write: a clear error, the previous checkpoint intact, no litter;
#  then the chain's final model.safetensors and metrics.jsonl (without the wall-clock fields) must
#  equal the reference run's byte for byte. Also: a full 1 MiB tmpfs (if mounting is permitted) and
#  unwritable directories (run as nobody, if setpriv is there).
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
A=(--preset tiny --steps 400 --ckpt-every 8 --eval-every 50 --threads 1 --shards 1 --quiet)
RES=(--quiet --threads 1)
strip() { sed -E 's/,"tokens_per_s":[^,]*,"elapsed_s":[^,}]*//' "$1"; }
litter() { find "$1" -name '*.tmp.*' -o -name '.partial-*' -o -name '.current.*' -o -name '*.link.*' | head -3; }
cur() { readlink "$1/current"; }

REF=$T/ref
t0=$(date +%s.%N)
"$E" train "${A[@]}" --out "$REF" >/dev/null 2>"$T/err" && ok || bad "reference run: $(tail -1 "$T/err")"
W=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')

# ---- 20 kills, each followed by a load check and a resume ----
R=$T/k
first=1
# the next segment of the chain; run_bg execs so that $! is eidetic itself (what the kills hit)
run() { if [ $first = 1 ]; then "$E" train "${A[@]}" --out "$R"; else "$E" train --resume "$R" "${RES[@]}"; fi; }
run_bg() { if [ $first = 1 ]; then exec "$E" train "${A[@]}" --out "$R"; else exec "$E" train --resume "$R" "${RES[@]}"; fi; }
after_kill() { # NAME RC
    first=0
    [ "$2" = 137 ] && ok || bad "$1: expected a SIGKILL (137), got exit $2 (finished before the kill?)"
    "$E" info --ckpt "$R" >/dev/null 2>"$T/err" && ok || bad "$1: run directory does not load: $(tail -1 "$T/err")"
}
kills=0
for p in ckpt-begin:16 ckpt-after-weights:40 ckpt-after-state:64 ckpt-before-rename:88 ckpt-after-rename:112 \
         ckpt-after-switch:136 metrics-torn:157; do
    EIDETIC_FAULT=$p run >/dev/null 2>&1
    after_kill "kill at $p" $?
    kills=$((kills + 1))
done
# SIGINT, SIGTERM within the chain: finish the step, checkpoint, exit 128 + SIG with a hint
d=$(awk -v w="$W" 'BEGIN { d = w / 20; printf "%.2f", d < 0.2 ? 0.2 : d }')
for s in INT TERM; do
    run_bg >/dev/null 2>"$T/sig" &
    pid=$!
    sleep "$d"
    kill -$s $pid
    wait $pid
    rc=$?
    want=$([ $s = INT ] && echo 130 || echo 143)
    [ $rc = "$want" ] && ok || bad "SIG$s: exit $rc, expected $want: $(tail -2 "$T/sig")"
    grep -q "stopped by SIG$s at step [0-9]*; checkpoint written.*--resume" "$T/sig" && ok || bad "SIG$s: no message: $(cat "$T/sig")"
    [ -z "$(litter "$R")" ] && ok || bad "SIG$s left litter: $(litter "$R")"
done
# seeded random moments
# (each between 1% and 2.7% of the reference run's time, at least 0.02 s: about a quarter of the run in all)
delays=$(awk -v w="$W" 'BEGIN { srand(20261206); for (i = 0; i < 13; i++) { d = w * (0.01 + rand() / 60);
                                 printf "%.3f ", d < 0.02 ? 0.02 : d } }')
for d in $delays; do
    run_bg >/dev/null 2>"$T/kerr" &
    pid=$!
    sleep "$d"
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
    rc=$?
    [ $rc = 137 ] || cat "$T/kerr"
    after_kill "kill after ${d}s" $rc
    kills=$((kills + 1))
done
[ $kills = 20 ] && ok || bad "expected 20 kills, did $kills"
[ -z "$(litter "$R")" ] || true # litter of the last kill is removed by the next resume

# ---- ulimit -f: the training state (281 KB) cannot be written; EFBIG is reported, not SIGXFSZ ----
before=$(cur "$R")
(ulimit -f 200; exec "$E" train --resume "$R" "${RES[@]}") >/dev/null 2>"$T/fsz"
rc=$?
[ $rc = 1 ] && ok || bad "ulimit -f: exit $rc, expected 1: $(tail -2 "$T/fsz")"
grep -q "training_state.safetensors.*File too large.*previous checkpoint in .* is intact" "$T/fsz" && ok ||
    bad "ulimit -f: unclear message: $(cat "$T/fsz")"
[ "$(cur "$R")" = "$before" ] && ok || bad "ulimit -f: current checkpoint changed ($before -> $(cur "$R"))"
[ -z "$(litter "$R")" ] && ok || bad "ulimit -f left litter: $(litter "$R")"

# ---- the end of the chain: bit-exact with the reference ----
run >/dev/null 2>"$T/err" && ok || bad "final resume: $(tail -1 "$T/err")"
cmp -s "$R/model.safetensors" "$REF/model.safetensors" && ok || bad "weights after 20 kills + resumes differ from the uninterrupted run"
diff <(strip "$R/metrics.jsonl") <(strip "$REF/metrics.jsonl") >"$T/mdiff" && ok ||
    bad "metrics.jsonl after the kills differs from the uninterrupted run: $(head -4 "$T/mdiff")"
[ "$(ls "$R/checkpoints")" = "$(ls "$REF/checkpoints")" ] && ok || bad "kept checkpoints: $(ls "$R/checkpoints" | tr '\n' ' ')"

# ---- a full file system: a 1 MiB tmpfs holds two checkpoints (420 KB each) but not a third ----
if unshare -m true 2>/dev/null; then
    mkdir -p "$T/mnt"
    E="$E" M="$T/mnt" A="${A[*]}" unshare -m bash -c '
        mount -t tmpfs -o size=1M tmpfs "$M" || exit 77
        "$E" train $A --out "$M/run" >/dev/null 2>"$M/err"; echo "rc=$?"
        cat "$M/err"; readlink "$M/run/current"
        "$E" info --ckpt "$M/run" >/dev/null 2>&1 && echo loads
        find "$M/run" -name ".partial-*" -o -name "*.tmp.*" | sed "s/^/litter: /"' >"$T/full" 2>&1
    if grep -q "^rc=" "$T/full"; then
        grep -q "^rc=1$" "$T/full" && ok || bad "full disk: expected exit 1: $(cat "$T/full")"
        grep -q "No space left on device.*previous checkpoint in .* (step 8) is intact" "$T/full" && ok ||
            bad "full disk: unclear message: $(cat "$T/full")"
        grep -q "^checkpoints/step-00000008$" "$T/full" && grep -q "^loads$" "$T/full" && ok ||
            bad "full disk: the step-8 checkpoint is not current or does not load: $(cat "$T/full")"
        grep -q "^litter" "$T/full" && bad "full disk left litter: $(grep litter "$T/full")" || ok
    else echo "crash.sh: skipped the full-tmpfs check (mount not permitted: $(head -1 "$T/full"))"; fi
else echo "crash.sh: skipped the full-tmpfs check (unshare -m not permitted)"; fi

# ---- unwritable directories (as nobody; root ignores permissions) ----
if command -v setpriv >/dev/null && setpriv --reuid=nobody --regid=nogroup --clear-groups true 2>/dev/null; then
    NB=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
    U=$T/u
    "$E" train "${A[@]}" --stop-after 16 --out "$U" >/dev/null 2>&1
    chmod 755 "$T"; chmod -R a+rX "$U"
    sum=$(md5sum < "$U/model.safetensors")
    # the whole run directory read-only: metrics.jsonl cannot be opened
    "${NB[@]}" "$E" train --resume "$U" "${RES[@]}" >/dev/null 2>"$T/ro"
    rc=$?
    [ $rc = 1 ] && grep -q "metrics.jsonl.*Permission denied" "$T/ro" && ok || bad "read-only run dir: exit $rc: $(cat "$T/ro")"
    # only checkpoints/ read-only: metrics are written, the checkpoint write fails
    chmod 777 "$U"; chmod 666 "$U/metrics.jsonl"
    "${NB[@]}" "$E" train --resume "$U" "${RES[@]}" >/dev/null 2>"$T/ro2"
    rc=$?
    [ $rc = 1 ] && grep -q "checkpoints/.partial-step-00000024.*Permission denied.*previous checkpoint in .* (step 16) is intact" "$T/ro2" &&
        ok || bad "read-only checkpoints/: exit $rc: $(cat "$T/ro2")"
    [ "$sum" = "$(md5sum < "$U/model.safetensors")" ] && [ "$(cur "$U")" = checkpoints/step-00000016 ] && ok ||
        bad "unwritable: the checkpoint changed"
    "$E" train --resume "$U" "${RES[@]}" --steps 32 >/dev/null 2>"$T/err" && ok || bad "resume after the unwritable runs: $(tail -1 "$T/err")"
else echo "crash.sh: skipped the unwritable-directory check (setpriv to nobody not available)"; fi

summary crash
