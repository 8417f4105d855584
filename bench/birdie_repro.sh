#!/usr/bin/env bash
# birdie_repro.sh [BUILD] [OUT] — Birdie's phone-book reproduction at CPU scale (docs/birdie.md
# "The reproduction at CPU scale"; published Fig. 1 in docs/results.md §9). For every mixer and every
# pre-training procedure: pre-train two layers + SwiGLU MLP on the embedded Jargon File with the same
# token budget (`--objective ntp | birdie-causal | birdie`), fine-tune on the text phone book of
# docs/tasks.md §3.2 with the same budget (answer-only loss, constant lr, no weight decay), then the greedy
# digit accuracy on books of EVAL_ENTRIES entries with x = 1, 2, ... queried numbers (`eval
# --min-queries x --max-queries x`). Prints a markdown table (one row per run, the published x = 1 value
# beside; also in OUT/table.md), writes OUT/results.tsv and OUT/phonebook.png (accuracy vs x, one panel
# per mixer, the mean over seeds). Runs live in OUT/seed-S/MIXER-OBJECTIVE.
# Resumable: a finished run (its done file) or evaluation (its x=N.txt) is not redone.
# Environment: MIXERS ("hawk gated-ssm longhorn attn"), OBJECTIVES ("ntp birdie-causal birdie"),
# PRE_STEPS (1000), FT_STEPS (2500), FT_LR (1e-3), BATCH (8), SEQ (320), ENTRIES ("4 4" = min max
# entries while fine-tuning), QUERIES ("1 4"), DIGITS (4), NAMES (16: first names = surnames),
# EVAL_ENTRIES (4), XS ("1 2 3 4"), EXAMPLES (256 books per x), THREADS (1), SEEDS ("1 2").
# docs/birdie.md "The reproduction at CPU scale" ran (each invocation on one core; several at once with
# different MIXERS share OUT safely):
#   SEEDS=1 bash bench/birdie_repro.sh build /tmp/birdie_repro
#   SEEDS=2 MIXERS="hawk longhorn" bash bench/birdie_repro.sh build /tmp/birdie_repro
#   SEEDS=2 MIXERS=gated-ssm OBJECTIVES=ntp bash bench/birdie_repro.sh build /tmp/birdie_repro
set -eu
BUILD=${1:-build}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
case $BUILD in /*) E="$BUILD/eidetic" ;; *) E="$ROOT/$BUILD/eidetic" ;; esac
O=${2:-/tmp/birdie_repro}
MIXERS=${MIXERS:-"hawk gated-ssm longhorn attn"}
OBJECTIVES=${OBJECTIVES:-"ntp birdie-causal birdie"}
PRE_STEPS=${PRE_STEPS:-1000}; FT_STEPS=${FT_STEPS:-2500}; FT_LR=${FT_LR:-1e-3}
BATCH=${BATCH:-8}; SEQ=${SEQ:-320}
read -r EMIN EMAX <<< "${ENTRIES:-4 4}"; read -r QMIN QMAX <<< "${QUERIES:-1 4}"
DIGITS=${DIGITS:-4}; NAMES=${NAMES:-16}; EVAL_ENTRIES=${EVAL_ENTRIES:-4}
XS=${XS:-"1 2 3 4"}; EXAMPLES=${EXAMPLES:-256}; TH=${THREADS:-1}; SEEDS=${SEEDS:-"1 2"}
BOOK="--digits $DIGITS --first-names $NAMES --surnames $NAMES"
mkdir -p "$O"

for SEED in $SEEDS; do
for m in $MIXERS; do
    for obj in $OBJECTIVES; do
        R="$O/seed-$SEED/$m-$obj"
        mkdir -p "$O/seed-$SEED"
        if [ ! -f "$R/done" ]; then
            rm -rf "$R"
            t0=$(date +%s)
            # birdie-tiny's architecture and pre-training recipe (docs/birdie.md "Fine-tuning and
            # birdie-tiny"); the flags below set the mixer, the procedure and the shared budgets
            nice -n 5 "$E" train --preset birdie-tiny --layers "$m,$m" --objective "$obj" --seed "$SEED" \
                --seq-len "$SEQ" --batch "$BATCH" --steps "$PRE_STEPS" --finetune-steps "$FT_STEPS" \
                --finetune-lr "$FT_LR" --min-len "$EMIN" --max-len "$EMAX" --min-queries "$QMIN" \
                --max-queries "$QMAX" $BOOK --threads "$TH" --out "$R" > "$R.log" 2>&1 ||
                { echo "birdie_repro.sh: $m $obj seed $SEED failed (see $R.log)" >&2; exit 1; }
            echo "$(( $(date +%s) - t0 ))" > "$R/done"
        fi
        for x in $XS; do
            f="$R/x=$x.txt"
            [ -s "$f" ] && continue
            nice -n 5 "$E" eval --ckpt "$R" --min-len "$EVAL_ENTRIES" --max-len "$EVAL_ENTRIES" \
                --min-queries "$x" --max-queries "$x" --examples "$EXAMPLES" --threads "$TH" > "$f.tmp" 2> "$f.log" &&
                mv "$f.tmp" "$f" || { echo "birdie_repro.sh: eval $m $obj seed $SEED x=$x failed (see $f.log)" >&2; exit 1; }
        done
    done
done
done

# table, TSV and plot
/usr/bin/python3 - "$O" "$MIXERS" "$OBJECTIVES" "$XS" <<'EOF' | tee "$O/table.md"
import json, os, re, sys
out, mixers, objs, xs = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
seeds = sorted((d[5:] for d in os.listdir(out) if d.startswith("seed-")), key=int)
# published digit accuracy (%) at x = 1 (docs/results.md §9, Fig. 1, read off the figure +-3 points)
pub = {("hawk", "birdie"): "98-99", ("hawk", "birdie-causal"): "99", ("hawk", "ntp"): "18",
       ("gated-ssm", "birdie"): "99", ("gated-ssm", "birdie-causal"): "99", ("gated-ssm", "ntp"): "17",
       ("attn", "birdie"): "~100", ("attn", "ntp"): "~100"}
def acc(path):
    try: m = re.findall(r"accuracy: ([0-9.]+)", open(path).read())
    except OSError: return None
    return float(m[-1]) if m else None
def bpb(run):
    try: rows = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl")) if l.strip()]
    except OSError: return None
    v = [r["val_bpb"] for r in rows if "val_bpb" in r and not r.get("finetune")]
    return v[-1] if v else None
tsv = open(os.path.join(out, "results.tsv"), "w")
tsv.write("mixer\tobjective\tseed\t" + "\t".join("x=" + x for x in xs) + "\n")
print("| mixer | pre-training | seed | val bpb after pre-training | " + " | ".join("x=%s" % x for x in xs) +
      " | published x=1 (%) | wall s |")
print("|---|---|---:|---:|" + "---:|" * len(xs) + "---:|---:|")
for m in mixers:
    for o in objs:
        runs = []
        for sd in seeds:
            run = os.path.join(out, "seed-%s" % sd, "%s-%s" % (m, o))
            a = [acc(os.path.join(run, "x=%s.txt" % x)) for x in xs]
            if all(v is None for v in a): continue
            runs.append(a)
            b = bpb(run)
            try: wall = open(os.path.join(run, "done")).read().strip()
            except OSError: wall = "?"
            tsv.write("%s\t%s\t%s\t%s\n" % (m, o, sd, "\t".join("nan" if v is None else "%.4f" % v for v in a)))
            print("| %s | %s | %s | %s | %s | %s | %s |" % (m, o, sd, "%.3f" % b if b is not None else "-",
                  " | ".join("-" if v is None else "%.3f" % v for v in a), pub.get((m, o), "-"), wall))
        with open(os.path.join(out, "%s-%s.dat" % (m, o)), "w") as dat:  # the mean over seeds, per x
            for i, x in enumerate(xs):
                v = [r[i] for r in runs if r[i] is not None]
                if v: dat.write("%s %.4f %d\n" % (x, sum(v) / len(v), len(v)))
tsv.close()
EOF
if command -v gnuplot > /dev/null; then
    n=0; for m in $MIXERS; do n=$((n + 1)); done
    {
        echo "set terminal pngcairo size $((n * 360)),340 font ',9'; set output '$O/phonebook.png'"
        echo "set multiplot layout 1,$n title 'Birdie phone book at CPU scale: greedy digit accuracy vs queried numbers (mean over seeds; chance 0.1)'"
        echo "set yrange [0:1]; set xlabel 'queried numbers x'; set key top right; set grid"
        c=2
        for m in $MIXERS; do
            echo -n "set title '$m'; set ylabel 'digit accuracy'; plot "
            sep=""
            for obj in $OBJECTIVES; do
                echo -n "$sep'$O/$m-$obj.dat' using 1:2 with linespoints title '$obj'"
                sep=", "
            done
            echo ", 0.1 with lines dt 2 lc 'gray' title 'chance'"
        done
        echo "unset multiplot"
    } > "$O/phonebook.gp"
    gnuplot "$O/phonebook.gp" 2> "$O/phonebook.gp.log" || echo "birdie_repro.sh: gnuplot failed (see $O/phonebook.gp.log)" >&2
fi
