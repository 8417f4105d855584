#!/usr/bin/env bash
# Multi-process training on this machine (docs/distributed.md "Measurements"), in one run:
#  - the step time of 1 process x 2 threads vs 2 ranks x 1 thread (mpirun -np 2) for the benchmark's
#    config A (Longhorn x2, d_model 128, MQAR T=256 K=16, batch 16, V=8192) and config B (Longhorn x4
#    + MLP 1376, d_model 512, LM T=1024, batch 4, V=8192: the Jargon File, byte tokens; as
#    `eidetic bench`'s rows, docs/performance.md), each from `eidetic train`'s metrics.jsonl (median
#    of the per-step wall-clock deltas after 2 warm-up steps);
#  - the gradient exchange's time per step inside those runs (metrics "comm_ms", rank 0: it includes
#    waiting for the slower rank), and alone (build/bench/mpi_reduce: after a barrier, on the
#    model's gradient size; eidetic's deterministic exchange vs Open MPI's MPI_Allreduce);
#  - the scaling projection of bench/mpi_model.sh (a model on paper) from those numbers.
# Usage: bash bench/mpi.sh [BUILD] [STEPS_A] [STEPS_B]     (BUILD default build; 20 and 6 steps)
# Writes the table to stdout and bench/results/mpi.md. A few minutes on 2 cores.
set -u
BUILD=${1:-build}
SA=${2:-20}
SB=${3:-6}
cd "$(dirname "$0")/.."
make -s MPI=1 BUILD="$BUILD" "$BUILD/eidetic-mpi" "$BUILD/bench/mpi_reduce" || exit 1
EM=$BUILD/eidetic-mpi
command -v mpirun >/dev/null || { echo "bench/mpi.sh: mpirun not found: bash scripts/setup.sh" >&2; exit 1; }
# the settings of tests/cli/mpi.sh (root in containers, shared memory only), but ranks busy-poll
# while they wait, as in production (no mpi_yield_when_idle)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe --bind-to none --mca btl self,vader)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
A=(--preset default --seq-len 256 --kv-pairs 16 --batch 16 --eval-every 0 --eval-examples 16 --steps "$SA")
B=(--preset lm-tiny --layers longhorn,longhorn,longhorn,longhorn --d-model 512 --d-ff 1376 --seq-len 1024 --batch 4
   --vocab 8192 --eval-every 0 --steps "$SB")
# median of a column of numbers
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# step ms: median of elapsed_s deltas after step 2; comm: median comm_ms after step 2
step_ms() { grep -o '"elapsed_s":[0-9.]*' "$1/metrics.jsonl" | cut -d: -f2 | awk 'NR > 1 { if (NR > 2) print ($1 - p) * 1000 } { p = $1 }' | median; }
comm_ms() { grep -o '"comm_ms":[0-9.]*' "$1/metrics.jsonl" | cut -d: -f2 | awk 'NR > 2' | median; }
params() { grep -o 'model: [0-9]* parameters' "$1" | head -1 | awk '{ print $2 }'; }
run1() { local out=$1; shift; "$EM" train "$@" --out "$out" >/dev/null 2>"$out.log" || { tail -3 "$out.log"; exit 1; }; }
runR() { local out=$1; shift; "${MPIRUN[@]}" -np 2 "$EM" train "$@" --out "$out" >/dev/null 2>"$out.log" || { tail -3 "$out.log"; exit 1; }; }

{
echo "bench/mpi.sh on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(date -u +%F), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| config | run | shards | step ms | comm ms/step (in run) |"
echo "|---|---|---|---|---|"
for cfg in A B; do
    if [ $cfg = A ]; then C=("${A[@]}"); s1=2; else C=("${B[@]}"); s1=1; fi
    run1 "$T/$cfg-1p" "${C[@]}" --threads 2 --shards $s1
    echo "| $cfg | 1 process x 2 threads | $s1 | $(step_ms "$T/$cfg-1p") | - |"
    if [ $s1 != 2 ]; then
        run1 "$T/$cfg-1p2" "${C[@]}" --threads 2 --shards 2
        echo "| $cfg | 1 process x 2 threads | 2 | $(step_ms "$T/$cfg-1p2") | - |"
    fi
    runR "$T/$cfg-2r" "${C[@]}" --threads 1 --shards 2
    echo "| $cfg | 2 ranks x 1 thread | 2 | $(step_ms "$T/$cfg-2r") | $(comm_ms "$T/$cfg-2r") |"
done
echo
echo "The gradient exchange alone (build/bench/mpi_reduce, 2 ranks, 20 repetitions after a barrier each):"
echo
for cfg in A B; do
    n=$(params "$T/$cfg-1p.log")
    echo "config $cfg ($n parameters):"
    # one thread per rank, as the 2-rank runs (idle OpenMP threads spinning beside a waiting rank
    # would be measured too)
    "${MPIRUN[@]}" -x OMP_NUM_THREADS=1 -np 2 "$BUILD/bench/mpi_reduce" "$n" 30 | tee "$T/$cfg-x" | sed 's/^/    /'
done
echo
echo "Projection (bench/mpi_model.sh, a model on paper): compute = the 2-rank step minus its exchange, host-side"
echo "exchange = the fastest deterministic exchange above (the closest to an unloaded machine)."
echo
for cfg in A B; do
    n=$(params "$T/$cfg-1p.log")
    tc=$(awk -v s="$(step_ms "$T/$cfg-2r")" -v c="$(comm_ms "$T/$cfg-2r")" 'BEGIN { print s - c }')
    loc=$(grep deterministic "$T/$cfg-x" | sed -E 's/.*fastest ([0-9.]+) ms.*/\1/')
    bash bench/mpi_model.sh "config $cfg" "$n" "$tc" "$loc"
    echo
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$T/table"
mkdir -p bench/results
cp "$T/table" bench/results/mpi.md
