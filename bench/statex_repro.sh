#!/usr/bin/env bash
# statex_repro.sh [BUILD] [OUT] — the small-scale StateX analogue of docs/statex.md §4 ("Reproduction"
# there): per mixer (GLA, Mamba-2, Longhorn), pre-train two layers on MQAR, then post-train on a harder
# MQAR setting with equal steps, data and schedule (a) after `eidetic expand` of block 0 (reinit, the
# paper's default) and (b) without expansion (the LPT baseline). Prints one table row per arm:
# accuracy on the harder setting right after surgery (step 0) and after post-training, recurrent
# state per sequence and parameter count (a markdown table). Resumable: finished stages are skipped.
# Sizes by environment: MIXERS ("gla mamba2 longhorn"), SEEDS (post-training seeds, "1"),
# PRE_STEPS (1500), POST_STEPS (600), D (d_model; default 64, Longhorn 128: the widths at which the
# mixer table of docs/mqar_mixers.md solves MQAR L 64 K 4 in 1500 steps), EXPAND_LAYER (0), THREADS (1),
# PRE_TASK ("--seq-len 64 --kv-pairs 4"), PRE_BATCH (64), HARD_TASK ("--seq-len 128 --kv-pairs 16"), HARD_BATCH (32),
# PRE_FROM (the OUT of an earlier run: pre-training continues from its MIXER/pre checkpoints with
# `train --init`, lr PRE_LR (3e-3), warm-up 5%, cosine to 10% — a curriculum stage, e.g. L 64 K 4
# then L 256 K 16; unset: pre-training from scratch with the mixer presets), ARMS ("statex lpt"; also
# "inherit", "zero": the expansion with that --method, and "inherit-keep", "zero-keep": the same with
# --keep-resets; all post-trained like the others).
set -eu
BUILD=${1:-build}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
case $BUILD in /*) E="$BUILD/eidetic" ;; *) E="$ROOT/$BUILD/eidetic" ;; esac
O=${2:-/tmp/statex_repro}
MIXERS=${MIXERS:-"gla mamba2 longhorn"}
SEEDS=${SEEDS:-1}
PRE_STEPS=${PRE_STEPS:-1500}
POST_STEPS=${POST_STEPS:-600}
LAYER=${EXPAND_LAYER:-0}
TH=${THREADS:-1}
PRE="--task mqar ${PRE_TASK:---seq-len 64 --kv-pairs 4} --batch ${PRE_BATCH:-64}"
HARD="--task mqar ${HARD_TASK:---seq-len 128 --kv-pairs 16}"
HARD_BATCH=${HARD_BATCH:-32}
COMMON="--vocab 2048 --threads $TH --quiet"
# post-training recipe (docs/statex.md §4 shape: warm-up, cosine to 0, AdamW wd 0.1, beta2 0.95, clip 1.0;
# lr scaled to these tiny models), identical for both arms
POST="--warmup $((POST_STEPS / 20)) --lr 1e-3 --min-lr 0 --weight-decay 0.1 --beta2 0.95 --grad-clip 1 \
      --eval-every 0 --eval-examples 512"
mkdir -p "$O"

arch() { case $1 in gla) echo "--num-heads 4 --d-conv 4" ;; mamba2) echo "--d-state 8" ;; longhorn) echo "--d-state 4" ;; esac; }
width() { [ -n "${D:-}" ] && echo "$D" || { [ "$1" = longhorn ] && echo 128 || echo 64; }; }
grow() { case $1 in gla) echo "--merge-heads 1" ;; *) echo "--state-mult 4" ;; esac; }
# arms: statex (expand, reinit: the paper's default), inherit / zero (expand with that --method; zero is
# not a GLA method and is skipped for it), any of these + "-keep" (also --keep-resets: no reset of
# dt_bias, A_log, the norms), lpt (no expansion)
ARMS=${ARMS:-"statex lpt"}
method() { [ "$1" = statex ] || echo "$1"; }
expand_flags() { # statex -> (reinit, the default); inherit -> --method inherit; zero-keep -> ... --keep-resets
    local m=${1%-keep}
    [ "$m" = statex ] || echo "--method $m"
    [ "$m" = "$1" ] || echo "--keep-resets"
}
arm_name() {
    case $1 in
        lpt) echo "LPT (no expansion)" ;;
        statex) echo "StateX (expand block $LAYER, reinit)" ;;
        *-keep) echo "expand block $LAYER, ${1%-keep}, --keep-resets" ;;
        *) echo "expand block $LAYER, $1" ;;
    esac
}
acc() { "$E" eval --ckpt "$1" $HARD --examples 512 --threads "$TH" 2>/dev/null | awk '/^accuracy:/ {print $2}'; }

for mx in $MIXERS; do
    P="$O/$mx/pre"
    mkdir -p "$O/$mx"
    if [ ! -f "$O/$mx/pre.done" ]; then
        if [ -n "${PRE_FROM:-}" ]; then
            nice -n 5 "$E" train --init "$PRE_FROM/$mx/pre/current" $COMMON $PRE --steps "$PRE_STEPS" --lr "${PRE_LR:-3e-3}" \
                --warmup $((PRE_STEPS / 20)) --min-lr "$(awk -v l="${PRE_LR:-3e-3}" 'BEGIN {print l / 10}')" \
                --eval-every 250 --eval-examples 256 --target-acc 0.99 --seed 0 --out "$P" > "$O/$mx/pre.log" 2>&1
        else
            nice -n 5 "$E" train --preset "mqar-$mx" --layers "$mx,$mx" --d-model "$(width "$mx")" $(arch "$mx") $COMMON $PRE --steps "$PRE_STEPS" \
                --eval-every 250 --eval-examples 256 --target-acc 0.99 --seed 0 --out "$P" > "$O/$mx/pre.log" 2>&1
        fi
        touch "$O/$mx/pre.done"
    fi
    for s in $SEEDS; do
        for arm in $ARMS; do
            R="$O/$mx/$arm$s"
            case "$arm:$mx" in zero*:gla) continue ;; esac # GLA's methods are reinit and inherit
            if [ $arm = lpt ]; then
                init="$P/current"
            else # the expanded checkpoint of this arm: x (reinit), xinherit, xzero, xinherit-keep, ...
                init="$O/$mx/x$(method "$arm")$s"
                [ -d "$init" ] || "$E" expand --ckpt "$P" --out "$init" --layers "$LAYER" $(grow "$mx") \
                    $(expand_flags "$arm") --seed "$s" > /dev/null
            fi
            if [ ! -f "$R.done" ]; then
                echo "$(acc "$init")" > "$R.step0"
                nice -n 5 "$E" train --preset "mqar-$mx" --init "$init" $COMMON $HARD --batch "$HARD_BATCH" $POST --steps "$POST_STEPS" \
                    --seed "$s" --out "$R" > "$R.log" 2>&1
                touch "$R.done"
            fi
        done
    done
done

echo
echo "| mixer | arm | seed | pre-trained acc | acc at step 0 (hard) | final acc (hard) | state floats | parameters |"
echo "|---|---|---|---|---|---|---|---|"
for mx in $MIXERS; do
    pre=$(awk '/^accuracy:/ {print $2}' "$O/$mx/pre.log" | tail -1)
    for s in $SEEDS; do
        for arm in $ARMS; do
            R="$O/$mx/$arm$s"
            [ -f "$R.done" ] || continue # (zero:gla)
            fin=$(awk '/^accuracy:/ {print $2}' "$R.log" | tail -1)
            read -r st np < <("$E" info --ckpt "$R" | awk '/^total:/ {print $8, $2}')
            echo "| $mx | $(arm_name "$arm") | $s | $pre | $(cat "$R.step0") | $fin | $st | $np |"
        done
    done
done
