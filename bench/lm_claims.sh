#!/usr/bin/env bash
# Longhorn's language-modelling claims at CPU scale (docs/lm.md, last section): Longhorn vs Mamba-1,
# with GLA and attention as references, at about equal parameters and the same token budget on the
# Jargon File, byte tokenizer. Prints two tables: validation bits per byte against tokens seen
# (sample efficiency) and validation loss at 1x, 4x, 16x the training length (extrapolation).
#
# Usage: bash bench/lm_claims.sh [build] [outdir]   (resumable: finished runs and evals are skipped)
# Environment: STEPS (600), BATCH (16), SEQ (256), EVAL_EVERY (60), LR (3e-3), SEEDS ("1"),
#   MIXERS ("longhorn mamba gla attn"), JOBS (2 runs side by side, one thread each), NICE (5).
#
# Corpus: the Jargon File cut at line boundaries into files of at most 16 KiB (`split -C 16384`,
# 103 files) and prepared with `--docs file --val-fraction 0.1 --seed 1`: 8 validation documents,
# 130 795 bytes. Not the lm-tiny preset's `--docs para` dataset: there a document is one
# blank-line separated entry (142 bytes on average) and every recurrence resets at each document
# start, so evaluating at 4x or 16x the training length would measure nothing.
set -u
BUILD=${1:-build}; OUT=${2:-runs/lm_claims}
E="$(cd "$(dirname "$BUILD/eidetic")" && pwd)/eidetic"
STEPS=${STEPS:-600}; BATCH=${BATCH:-16}; SEQ=${SEQ:-256}; EVAL_EVERY=${EVAL_EVERY:-60}; LR=${LR:-3e-3}
SEEDS=${SEEDS:-1}; MIXERS=${MIXERS:-"longhorn mamba gla attn"}; JOBS=${JOBS:-2}; NICE=${NICE:-5}
JARGON=${JARGON:-/usr/share/doc/jargon-text/jargon.txt.gz}
mkdir -p "$OUT"
DATA="$OUT/data"

if [ ! -f "$DATA/manifest.json" ]; then
    [ -f "$JARGON" ] || { echo "lm_claims: $JARGON missing: run scripts/setup.sh (Debian jargon-text)" >&2; exit 1; }
    rm -rf "$OUT/chunks" && mkdir -p "$OUT/chunks"
    zcat "$JARGON" | split -C 16384 -d -a 3 --additional-suffix=.txt - "$OUT/chunks/jargon-" || exit 1
    "$E" prepare --out "$DATA" --docs file --val-fraction 0.1 --seed 1 --no-progress "$OUT/chunks" || exit 1
fi

# About equal parameters: Longhorn and Mamba-1 (expand 2, N 16) with d_ff 256 have 0.885 M and
# 0.901 M; GLA and attention are lighter per layer, so their SwiGLU MLPs are wider.
dff_of() { case $1 in gla) echo 368 ;; attn) echo 384 ;; *) echo 256 ;; esac; }

train_one() { # mixer seed
    local mx=$1 seed=$2 run="$OUT/$1-s$2"
    grep -q '^bits_per_byte:' "$run.log" 2>/dev/null && return 0
    rm -rf "$run"
    local cmd="$E train --data $DATA --layers $mx,$mx,$mx,$mx --d-model 128 --d-ff $(dff_of "$mx") --seq-len $SEQ"
    cmd="$cmd --batch $BATCH --steps $STEPS --warmup 50 --lr $LR --weight-decay 0.1 --eval-every $EVAL_EVERY"
    cmd="$cmd --seed $seed --threads 1 --quiet --out $run"
    echo "$cmd" > "$run.cmd"
    /usr/bin/time -f "wall_s %e user_s %U" nice -n "$NICE" $cmd > "$run.log" 2>&1
}

eval_one() { # mixer seed length
    local run="$OUT/$1-s$2" L=$3 f="$OUT/$1-s$2.eval$3"
    grep -q '^loss:' "$f" 2>/dev/null && return 0
    local b=$((16384 / L)); [ "$b" -lt 1 ] && b=1
    local cmd="$E eval --ckpt $run --data $DATA --seq-len $L --batch $b --threads 1"
    echo "$cmd" > "$f.cmd"
    nice -n "$NICE" $cmd > "$f" 2>&1
}

jobs_list=()
for seed in $SEEDS; do for mx in $MIXERS; do jobs_list+=("$mx $seed"); done; done
running=0
for j in "${jobs_list[@]}"; do
    ( set -- $j; train_one "$1" "$2" && for L in $SEQ $((4 * SEQ)) $((16 * SEQ)); do eval_one "$1" "$2" "$L"; done ) &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait

python3 "$(dirname "$0")/lm_claims_table.py" "$OUT" "$SEQ" $SEEDS -- $MIXERS | tee "$OUT/results.md"
