#!/usr/bin/env bash
# bmojo_budget.sh [BUILD] [OUT] — B'MOJO's recall-vs-memory-budget reproduction at CPU scale and its
# length generalisation (docs/bmojo.md "Recall vs memory budget"; published claims docs/results.md §7).
# For each TASK (mqar, passkey) and each window W, trains two-layer models of every row at one budget
# (same steps, batch, lr, data seed), then:
#   - the test accuracy at the training length L (from `eval`, EXAMPLES test examples),
#   - `eval --lengths` at the LENGTHS (default 2L and 4L: length generalisation),
#   - the decode-state bytes per sequence (`eidetic info`: fp32, whole model) for the x axis.
# Rows: bmojo with the store swept over M in MEMS (default W/4 W/2 W 2W 4W; M = 0 is bmojo-f, which the
# tests prove equal to bmojo with no store), bmojo-f, swa, the interleaved Mamba-2 + SWA hybrid (block 0
# Mamba-2, block 1 SWA), and the W-independent baselines Mamba-2, Longhorn and full attention (run once
# per task). Every attention-like layer: 1 head, RoPE, no learned positions (so that longer inputs have
# positions), except the row attn-lp: Zoology's Figure-2 attention (learned absolute positions, no
# RoPE; docs/mqar_mixers.md), evaluated at L only since its positions end there. Writes OUT/TASK/results.tsv, OUT/TASK/table.md and OUT/TASK/budget.png (accuracy vs
# log2 decode-state bytes, one marker per row; the store sweep joined by a line, as the state-size plot
# of docs/scorecard.md) and OUT/TASK/lengths.png (accuracy vs evaluation length).
# Resumable: a run with its `done` file, or an evaluation with its .txt, is not redone.
# Environment: TASKS ("mqar passkey"), WINDOWS ("16"), MEMS (the M values; default from W), KE (store
# tokens selected per chunk, default W/2), ROWS (subset of "attn attn-lp mamba2 longhorn swa hybrid bmojo-f
# bmojo"), L (128), K (8, MQAR pairs), STEPS (2000), BATCH (32), LR (3e-3), SEED (1), EXAMPLES (500),
# LENGTHS (default "2L 4L"), THREADS (1).
# docs/bmojo.md ran (two invocations side by side, one core each):
#   ROWS="bmojo" bash bench/bmojo_budget.sh build /tmp/bmojo_budget
#   ROWS="attn mamba2 longhorn swa hybrid bmojo-f" bash bench/bmojo_budget.sh build /tmp/bmojo_budget
set -eu
BUILD=${1:-build}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
case $BUILD in /*) E="$BUILD/eidetic" ;; *) E="$ROOT/$BUILD/eidetic" ;; esac
O=${2:-/tmp/bmojo_budget}
TASKS=${TASKS:-"mqar passkey"}; WINDOWS=${WINDOWS:-16}
ROWS=${ROWS:-"attn attn-lp mamba2 longhorn swa hybrid bmojo-f bmojo"}
L=${L:-128}; K=${K:-8}; STEPS=${STEPS:-2000}; BATCH=${BATCH:-32}; LR=${LR:-3e-3}; SEED=${SEED:-1}
EXAMPLES=${EXAMPLES:-500}; TH=${THREADS:-1}
LENGTHS=${LENGTHS:-"$((2 * L)) $((4 * L))"}
# VARIANT of the W-dependent rows: "" (RoPE), lp (learned absolute positions and no RoPE, as attn-lp;
# runs named ROW-lp-W..., evaluated at L only), rand (bmojo's store selected by the random score, the
# ablation of the innovation test; runs named bmojo-rand-W...)
case ${VARIANT:-} in
    "") SUF=""; VFLAGS="" ;;
    lp) SUF="-lp"; VFLAGS="--learned-pos --no-rope" ;;
    rand) SUF="-rand"; VFLAGS="--bmojo-score random" ;;
    *) echo "bmojo_budget.sh: unknown VARIANT '$VARIANT' (lp, rand)" >&2; exit 2 ;;
esac
mkdir -p "$O"

# the task's flags (train and eval alike; the vocabulary is train's); MQAR: the spec's V 8192 at L, K;
# passkey: 2 digits, V 128
task_flags() {
    case $1 in
        mqar) echo "--task mqar --kv-pairs $K" ;;
        passkey) echo "--task passkey --digits 2" ;;
        *) echo "bmojo_budget.sh: unknown task '$1' (mqar, passkey)" >&2; exit 2 ;;
    esac
}
# the mixer flags of one row at window W ("" for rows that do not depend on W)
row_flags() {  # row W M
    case $1 in
        attn) echo "--layers attn,attn" ;;
        attn-lp) echo "--layers attn,attn --learned-pos --no-rope" ;;
        mamba2) echo "--layers mamba2,mamba2" ;;
        longhorn) echo "--layers longhorn,longhorn" ;;
        swa) echo "--layers swa,swa --window $2" ;;
        hybrid) echo "--layers mamba2,swa --window $2" ;;
        bmojo-f) echo "--layers bmojo-f,bmojo-f --window $2" ;;
        bmojo) echo "--layers bmojo,bmojo --window $2 --mem-size $3 --mem-topk ${KE:-$(($2 / 2))}" ;;
    esac
}

run_one() {  # task dir flags...
    local task=$1 R=$2; shift 2
    local TF; TF=$(task_flags "$task")
    if [ ! -f "$R/done" ]; then
        rm -rf "$R"
        local t0; t0=$(date +%s)
        # mqar-256's recipe (d_model 128, no MLP, warm-up 100, no weight decay, batch, clip, early stop at
        # 0.99 test accuracy) with the length, task, mixers and budget set here
        local V=""; [ "$task" = passkey ] && V="--vocab 128"
        nice -n 5 "$E" train --preset mqar-256 $TF $V --seq-len "$L" --num-heads 1 "$@" --lr "$LR" \
            --batch "$BATCH" --steps "$STEPS" --eval-every 250 --eval-examples 200 --threads "$TH" \
            --seed "$SEED" --out "$R" > "$R.log" 2>&1 ||
            { echo "bmojo_budget.sh: $R failed (see $R.log)" >&2; exit 1; }
        echo "$(( $(date +%s) - t0 ))" > "$R/done"
    fi
    [ -s "$R/info.txt" ] || "$E" info --ckpt "$R" > "$R/info.txt"
    if [ ! -s "$R/eval.txt" ]; then
        local lens; lens=$(echo "$L $LENGTHS" | tr ' ' ',')
        # learned absolute positions exist only up to the training length
        case $R in */attn-lp | *-lp-W*) lens=$L ;; esac
        nice -n 5 "$E" eval --ckpt "$R" $TF --seq-len "$L" --lengths "$lens" --examples "$EXAMPLES" \
            --threads "$TH" > "$R/eval.tmp" 2> "$R/eval.log" && mv "$R/eval.tmp" "$R/eval.txt" ||
            { echo "bmojo_budget.sh: eval of $R failed (see $R/eval.log)" >&2; exit 1; }
    fi
}

for task in $TASKS; do
    T="$O/$task"; mkdir -p "$T"
    for row in $ROWS; do
        case $row in
            attn | attn-lp | mamba2 | longhorn) run_one "$task" "$T/$row" $(row_flags "$row") ;;
            swa | hybrid | bmojo-f)
                for W in $WINDOWS; do run_one "$task" "$T/$row$SUF-W$W" $(row_flags "$row" "$W") $VFLAGS; done ;;
            bmojo)
                for W in $WINDOWS; do
                    for M in ${MEMS:-$((W / 4)) $((W / 2)) $W $((2 * W)) $((4 * W))}; do
                        run_one "$task" "$T/bmojo$SUF-W$W-M$M" $(row_flags bmojo "$W" "$M") $VFLAGS
                    done
                done ;;
            *) echo "bmojo_budget.sh: unknown row '$row'" >&2; exit 2 ;;
        esac
    done
done

# tables, TSVs and plots over every finished run in OUT (whatever invocation made it)
for task in $TASKS; do
    T="$O/$task"
    /usr/bin/python3 - "$T" "$task" "$L" <<'EOF' | tee "$T/table.md"
import os, re, sys
d, task, L = sys.argv[1], sys.argv[2], int(sys.argv[3])
def parse(run):
    ev = open(os.path.join(d, run, "eval.txt")).read()
    acc = {int(a): float(b) for a, b in re.findall(r"L=(\d+) accuracy: ([0-9.]+)", ev)}
    info = open(os.path.join(d, run, "info.txt")).read()
    m = re.search(r"recurrent state (\d+) floats = (\d+) bytes", info)
    p = re.search(r"total: (\d+) parameters", info)
    sb = int(m.group(2))
    if run in ("attn", "attn-lp"):
        # info reports full attention's KV cache at its capacity max_len (2048 by default, src/layers/
        # attention.c): 2 layers x (2 x d_model x cap + 1 token counter) floats. Decoding L tokens needs
        # cap = L, so the x axis takes the cache at the training length.
        sb = (sb - 8) * L // 2048 + 8
    wall = open(os.path.join(d, run, "done")).read().strip()
    steps = 0
    for line in open(os.path.join(d, run + ".log")):
        s = re.match(r"step (\d+)/", line)
        if s: steps = int(s.group(1))
    return acc, sb, int(p.group(1)), wall, steps
def split(run):  # "bmojo-lp-W16-M64" -> ("bmojo-lp", "16", "64"); "-" where a run has no W / M (bmojo-f: M 0)
    w = re.search(r"-W(\d+)", run); mm = re.search(r"-M(\d+)", run)
    name = re.sub(r"-W\d+.*", "", run)
    return name, w.group(1) if w else "-", mm.group(1) if mm else ("0" if name.startswith("bmojo-f") else "-")
def key(run):  # rows in a fixed order: baselines, then per window swa, hybrid, bmojo-f, bmojo by M
    order = ["attn", "attn-lp", "mamba2", "longhorn", "swa", "hybrid", "bmojo-f", "bmojo", "bmojo-rand",
             "swa-lp", "hybrid-lp", "bmojo-f-lp", "bmojo-lp"]
    name, W, M = split(run)
    return (0 if W == "-" else int(W), order.index(name) if name in order else 99, -1 if M == "-" else int(M))
runs = sorted((r for r in os.listdir(d) if os.path.isfile(os.path.join(d, r, "eval.txt"))), key=key)
if not runs: sys.exit(0)
lens = sorted({l for r in runs for l in parse(r)[0]})
tsv = open(os.path.join(d, "results.tsv"), "w")
tsv.write("run\tmixer\tW\tM\tstate_bytes\tlog2_state_bytes\tparams\tsteps\twall_s\t" +
          "\t".join("acc_L%d" % l for l in lens) + "\n")
print("| run (%s, trained at L %d) | W | M | decode state (bytes) | params | steps | wall s | %s |" %
      (task, L, " | ".join("acc L %d" % l for l in lens)))
print("|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(lens))
import math
for r in runs:
    acc, sb, params, wall, steps = parse(r)
    name, W, M = split(r)
    tsv.write("%s\t%s\t%s\t%s\t%d\t%.3f\t%d\t%d\t%s\t%s\n" % (r, name, W, M, sb, math.log2(sb), params, steps,
              wall, "\t".join("%.4f" % acc[l] if l in acc else "nan" for l in lens)))
    print("| %s | %s | %s | %d | %d | %d | %s | %s |" % (r, W, M, sb, params, steps, wall,
          " | ".join("%.3f" % acc[l] if l in acc else "-" for l in lens)))
tsv.close()
EOF
    [ -s "$T/results.tsv" ] || continue
    command -v gnuplot > /dev/null || continue
    # budget.dat: one block per mixer family (gnuplot index), rows "log2 bytes, accuracy at L, label"
    /usr/bin/python3 - "$T" "$L" <<'EOF'
import csv, sys
d, L = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(d + "/results.tsv"), delimiter="\t"))
fam = {}
for r in rows:
    f = r["mixer"] + ("" if r["W"] == "-" else " W=" + r["W"])
    if r["mixer"].startswith("bmojo-f"):  # M = 0 starts the store sweep of its family
        f = r["mixer"].replace("bmojo-f", "bmojo") + " W=" + r["W"]
    fam.setdefault(f, []).append(r)
with open(d + "/budget.dat", "w") as out, open(d + "/budget.names", "w") as names:
    for f, rs in fam.items():
        rs.sort(key=lambda r: -1 if r["M"] == "-" else int(r["M"]))
        for r in rs:
            out.write("%s %s %s\n" % (r["log2_state_bytes"], r["acc_L" + L],
                                      "M=" + r["M"] if r["M"] != "-" else '""'))
        out.write("\n\n"); names.write(f + "\n")
lens = [k for k in rows[0] if k.startswith("acc_L")]
def in_lengths_plot(r):  # every run evaluated at all lengths; of bmojo only the largest store per window
    if any(r[k] == "nan" for k in lens): return False
    if r["mixer"] != "bmojo": return True
    return int(r["M"]) == max(int(x["M"]) for x in rows if x["mixer"] == "bmojo" and x["W"] == r["W"])
with open(d + "/lengths.dat", "w") as out, open(d + "/lengths.names", "w") as names:
    for r in filter(in_lengths_plot, rows):
        for k in lens: out.write("%s %s\n" % (k[5:], r[k]))
        out.write("\n\n"); names.write(r["run"] + "\n")
EOF
    # one plot command over the blocks of DAT (gnuplot index i, titled by line i of NAMES); EXTRA is
    # appended to every block's curve, LABELS (optional) adds a labelled copy of each block
    plot_blocks() {  # DAT NAMES EXTRA [LABELS]
        local i=0 sep="" name
        echo -n "plot "
        while read -r name; do
            echo -n "${sep}'$1' index $i using 1:2 with linespoints pt $((i + 4)) $3 title '$name'"
            [ -z "${4:-}" ] || echo -n ", '' index $i using 1:2:3 with labels $4 notitle"
            sep=", "; i=$((i + 1))
        done < "$2"
        echo
    }
    {
        echo "set terminal pngcairo size 800,480 font ',9'; set output '$T/budget.png'"
        echo "set title \"$task at L $L: accuracy vs decode state (equal budgets; store sweep joined, M = 0 is bmojo-f)\" noenhanced"
        echo "set xlabel 'log2(decode-state bytes per sequence, fp32)'; set ylabel 'test accuracy'; set yrange [0:1.05]"
        echo "set key outside right noenhanced; set grid"
        plot_blocks "$T/budget.dat" "$T/budget.names" "ps 1.2" "offset 0.8,0.6 font ',7'"
        echo "set output '$T/lengths.png'"
        echo "set title \"$task trained at L $L, evaluated at longer L (largest store per window for bmojo)\" noenhanced"
        echo "set xlabel 'evaluation length L'; set logscale x 2; set ylabel 'test accuracy'"
        plot_blocks "$T/lengths.dat" "$T/lengths.names" ""
    } > "$T/budget.gp"
    gnuplot "$T/budget.gp" 2> "$T/budget.gp.log" || echo "bmojo_budget.sh: gnuplot failed (see $T/budget.gp.log)" >&2
done
