#!/usr/bin/env bash
# Multi-process training with MPI (docs/distributed.md), on this machine's loopback:
#  - mpirun -np 2 (1 and 2 shards per rank) and -np 3 (uneven gradient slices) train to the same
#    model.safetensors bytes and the same metrics (less wall-clock fields) as one process with the
#    same --shards; the same for a hybrid model (longhorn + sliding-window attention + MLP);
#  - resume across a rank-count change: 2 ranks -> 1 process and 1 process -> 2 ranks continue the
#    same trajectory bit for bit; 4 ranks for a 2-shard run is refused with a clear error, as is a
#    fresh run whose --shards the ranks cannot split;
#  - a rank killed (SIGKILL) mid-run: mpirun exits non-zero, the last checkpoint loads and resumes
#    (2 ranks, and 1 process) to the uninterrupted run's bytes;
#  - a rank that hangs: the other rank's watchdog (--dist-timeout) ends the job with a message.
# Needs build/eidetic-mpi (make test builds it when mpicc exists) and mpirun: when either is absent
# this test FAILS (scripts/setup.sh installs Open MPI); it never skips.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
EM="$(dirname "$E")/eidetic-mpi"
if ! command -v mpirun >/dev/null 2>&1 || [ ! -x "$EM" ]; then
    bad "MPI: mpirun ($(command -v mpirun || echo absent)) or $EM (make mpi) missing: run scripts/setup.sh, then make mpi"
    summary mpi
    exit 1
fi
# Open MPI settings for containers and shared machines: root is allowed (containers run as root);
# more ranks than cores (--oversubscribe); shared memory and self only (no network interface is
# needed or probed on one host: btl self,vader); the single-copy mechanism off (CMA's
# process_vm_readv is denied in many containers; harmless here); ranks yield the core while waiting
# (mpi_yield_when_idle: 2 shared cores); no binding of ranks to cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(timeout -k 5 120 mpirun --oversubscribe --bind-to none --mca btl self,vader
        --mca btl_vader_single_copy_mechanism none --mca mpi_yield_when_idle 1)
A=(--preset tiny --steps 6 --eval-every 3 --ckpt-every 2 --threads 1 --quiet)
strip() { sed -E 's/,"tokens_per_s":[^,]*,"elapsed_s":[^,}]*//; s/,"ranks":[0-9]+,"comm_ms":[^,}]*//' "$1"; }
same_run() { # NAME DIR_REFERENCE DIR: identical weights, identical metrics
    if cmp -s "$2/model.safetensors" "$3/model.safetensors"; then ok; else bad "$1: model.safetensors differs from $2's"; fi
    if [ "$(strip "$2/metrics.jsonl")" = "$(strip "$3/metrics.jsonl")" ] && [ -s "$3/metrics.jsonl" ]; then ok
    else bad "$1: metrics differ: $(diff <(strip "$2/metrics.jsonl") <(strip "$3/metrics.jsonl") | head -4)"; fi
}
one() { "$EM" train "$@" >/dev/null 2>"$T/err" || bad "one process $*: $(tail -2 "$T/err")"; }
ranks() { local n=$1; shift; "${MPIRUN[@]}" -np "$n" "$EM" train "$@" >"$T/out" 2>"$T/err" || bad "mpirun -np $n $*: $(tail -3 "$T/err")"; }

# ---- the same bits as one process with the same shard count ----
one "${A[@]}" --shards 2 --out "$T/ref2"
ranks 2 "${A[@]}" --shards 2 --out "$T/r2"
same_run "2 ranks x 1 shard" "$T/ref2" "$T/r2"
grep -q '"ranks":2,"comm_ms"' "$T/r2/metrics.jsonl" && ok || bad "2 ranks: metrics lack ranks/comm_ms"
[ "$(grep -c '^accuracy:' "$T/out")" = 1 ] && ok || bad "2 ranks: expected one 'accuracy:' line (rank 0), got: $(cat "$T/out")"
one "${A[@]}" --shards 4 --out "$T/ref4"
ranks 2 "${A[@]}" --shards 4 --out "$T/r4"
same_run "2 ranks x 2 shards" "$T/ref4" "$T/r4"
one "${A[@]}" --batch 24 --shards 6 --out "$T/ref6"
ranks 3 "${A[@]}" --batch 24 --shards 6 --out "$T/r6"
same_run "3 ranks x 2 shards (uneven slices)" "$T/ref6" "$T/r6"
H=(--layers longhorn,swa --d-ff 64 --window 8 --num-heads 2)
one "${A[@]}" "${H[@]}" --shards 2 --out "$T/refh"
ranks 2 "${A[@]}" "${H[@]}" --shards 2 --out "$T/rh"
same_run "hybrid longhorn,swa + MLP, 2 ranks" "$T/refh" "$T/rh"
# the control: another shard count changes the bits (so the comparisons above can fail)
cmp -s "$T/ref2/model.safetensors" "$T/ref4/model.safetensors" && bad "--shards 2 and 4 gave the same bits: the test cannot tell" || ok

# ---- resume across a rank-count change (the shard count is the run's: docs/distributed.md) ----
ranks 2 "${A[@]}" --shards 2 --stop-after 3 --out "$T/c21"
"$EM" train --resume "$T/c21" --quiet --threads 1 >/dev/null 2>"$T/err" || bad "resume 2 ranks -> 1: $(tail -2 "$T/err")"
same_run "2 ranks then 1 process" "$T/ref2" "$T/c21"
one "${A[@]}" --shards 2 --stop-after 3 --out "$T/c12"
ranks 2 --resume "$T/c12" --quiet --threads 1
same_run "1 process then 2 ranks" "$T/ref2" "$T/c12"
one "${A[@]}" --shards 2 --stop-after 3 --out "$T/c14"
before=$(readlink "$T/c14/current")
"${MPIRUN[@]}" -np 4 "$EM" train --resume "$T/c14" --quiet --threads 1 >/dev/null 2>"$T/err"
rc=$?
[ $rc -ne 0 ] && grep -q "uses 2 shards in all, which 4 ranks cannot split evenly" "$T/err" && ok ||
    bad "4 ranks resuming a 2-shard run: rc=$rc, expected a refusal: $(grep error "$T/err" | head -2)"
[ "$(readlink "$T/c14/current")" = "$before" ] && "$E" info --ckpt "$T/c14" >/dev/null 2>&1 && ok || bad "refused resume changed the run"

# a fresh run whose shard count the ranks cannot split: a clear error, non-zero exit
"${MPIRUN[@]}" -np 2 "$EM" train "${A[@]}" --shards 3 --batch 24 --out "$T/bad" >/dev/null 2>"$T/err"
rc=$?
[ $rc -ne 0 ] && grep -q -- "--shards 3: not a multiple of the 2 ranks" "$T/err" && ok ||
    bad "--shards 3 on 2 ranks: rc=$rc: $(grep error "$T/err" | head -2)"
# Birdie's objectives are single-process for now: several ranks refuse --objective, nothing written
"${MPIRUN[@]}" -np 2 "$EM" train "${A[@]}" --shards 2 --objective ntp --out "$T/obj" >/dev/null 2>"$T/err"
rc=$?
[ $rc -ne 0 ] && grep -q -- "does not take --objective yet" "$T/err" && [ ! -e "$T/obj/config.json" ] && ok ||
    bad "--objective on 2 ranks: rc=$rc, expected a refusal: $(grep error "$T/err" | head -2)"

# ---- a rank killed mid-run: non-zero exit, the last checkpoint intact and resumable ----
# (MPMD: rank 1 alone gets EIDETIC_FAULT=step-kill:5, SIGKILL at the start of step 5; checkpoints every 2)
kill_run() { "${MPIRUN[@]}" -np 1 "$EM" train "${A[@]}" --shards 2 --out "$1" : \
             -np 1 env EIDETIC_FAULT=$2 "$EM" train "${A[@]}" --shards 2 --out "$1"; }
kill_run "$T/k" step-kill:5 >/dev/null 2>"$T/err"
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && ok || bad "killed rank: mpirun exit $rc, expected non-zero (not the timeout): $(tail -3 "$T/err")"
[ "$(readlink "$T/k/current")" = checkpoints/step-00000004 ] && ok || bad "killed rank: current is $(readlink "$T/k/current"), expected step 4"
"$E" info --ckpt "$T/k" >/dev/null 2>"$T/err2" && ok || bad "killed rank: checkpoint does not load: $(tail -1 "$T/err2")"
cp -r "$T/k" "$T/k1"
ranks 2 --resume "$T/k" --quiet --threads 1
same_run "killed rank, resumed with 2 ranks" "$T/ref2" "$T/k"
"$EM" train --resume "$T/k1" --quiet --threads 1 >/dev/null 2>"$T/err" || bad "killed rank, resume with 1 process: $(tail -2 "$T/err")"
same_run "killed rank, resumed with 1 process" "$T/ref2" "$T/k1"

# ---- a rank that hangs: the other's watchdog ends the job within the timeout ----
t0=$(date +%s)
A=("${A[@]}" --dist-timeout 2)
kill_run "$T/h" step-hang:5 >/dev/null 2>"$T/err"
rc=$?
dt=$(($(date +%s) - t0))
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $dt -lt 60 ] && ok || bad "hung rank: mpirun exit $rc after ${dt}s, expected non-zero within 60 s"
grep -q "rank 0 of 2: no answer from the other ranks for 2 s" "$T/err" && ok || bad "hung rank: no watchdog message: $(grep -i error "$T/err" | head -3)"
"$E" info --ckpt "$T/h" >/dev/null 2>&1 && [ "$(readlink "$T/h/current")" = checkpoints/step-00000004 ] && ok ||
    bad "hung rank: checkpoint step 4 not intact ($(readlink "$T/h/current"))"
summary mpi
