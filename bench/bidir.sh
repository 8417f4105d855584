#!/usr/bin/env bash
# bench/bidir.sh — the cost of Birdie bidirectional layers (docs/birdie.md "Bidirectional layers in
# eidetic"): the same mixer and sizes trained causal (--bidir none) and bidirectional (--bidir all and
# alternate) on the phone book in its context-question format, whose rows are mostly prompt, so the
# reverse halves really run; runs alternate (none, all, alternate, none, ...) so the machine's noise
# falls on every mode alike. Training: the median of the per-step tokens/s in metrics.jsonl (first 3
# steps dropped). Decoding: `eidetic generate` of N and of 1 tokens from each checkpoint, the
# difference over N − 1 (so process start and checkpoint loading cancel): µs per decoded token.
#   nice -n 5 bash bench/bidir.sh [BUILD] [MIXER] [STEPS] [DECODE_TOKENS] [REPEATS] [THREADS]
# Prints one line per run, then per mode the median over repeats and its ratio to the causal one.
set -eu
E=${1:-build}/eidetic; MIX=${2:-longhorn}; STEPS=${3:-30}; NDEC=${4:-2000}; REP=${5:-3}; THR=${6:-1}
[ -x "$E" ] || { echo "bench/bidir.sh: $E not found (build first: make)" >&2; exit 1; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
common=(--preset pb-cpu --format cq --layers "$MIX,$MIX" --d-model 64 --batch 8 --steps "$STEPS" --eval-every 0
        --eval-examples 8 --threads "$THR" --quiet)
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
for rep in $(seq "$REP"); do
    for mode in none all alternate; do
        d="$T/$mode$rep"
        "$E" train "${common[@]}" --bidir "$mode" --out "$d" > /dev/null
        tps=$(grep -o '"tokens_per_s":[0-9.]*' "$d/metrics.jsonl" | tail -n +4 | cut -d: -f2 | median)
        s=$(now); "$E" generate --ckpt "$d" --prompt 1,2,3 --max-new 1 --threads "$THR" > /dev/null; m=$(now)
        "$E" generate --ckpt "$d" --prompt 1,2,3 --max-new "$NDEC" --threads "$THR" > /dev/null; e=$(now)
        us=$(awk -v s="$s" -v m="$m" -v e="$e" -v n="$NDEC" 'BEGIN {printf "%.2f", ((e - m) - (m - s)) * 1e6 / (n - 1)}')
        echo "$mode $tps $us" >> "$T/rows"
        echo "$MIX --bidir $mode run $rep: train $tps tokens/s, decode $us us/token"
    done
done
awk -v mix="$MIX" '
    { tps[$1] = tps[$1] " " $2; us[$1] = us[$1] " " $3 }
    function med(s,   a, n, i, j, t) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
        if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }; return a[int((n + 1) / 2)] }
    END {
        bt = med(tps["none"]); bu = med(us["none"])
        printf "%s, median of the runs: mode | train tokens/s | step cost vs causal | decode us/token | vs causal\n", mix
        split("none all alternate", ms, " ")
        for (k = 1; k <= 3; k++) { m = ms[k]; t = med(tps[m]); u = med(us[m])
            printf "%s | %s | %.3f | %s | %.3f\n", m, t, bt / t, u, u / bu }
    }' "$T/rows"
