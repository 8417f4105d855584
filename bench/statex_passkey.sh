#!/usr/bin/env bash
# statex_passkey.sh [BUILD] [OUT] — StateX vs LPT on the long-context axis (docs/statex.md §10,
# "Passkey vs length"): per mixer (GLA, Mamba-2, Longhorn; the sizes of statex_repro.sh), pre-train two
# layers on synthetic passkey retrieval (docs/tasks.md §9.3) at a short length, then post-train at a
# longer length with equal steps, data and schedule (a) after `eidetic expand` of block 0 (reinit, the
# paper's default) and (b) without expansion (the LPT baseline). Evaluates the pre-trained base, the
# expanded checkpoint before post-training (step 0) and both post-trained arms with `eval --lengths`,
# and prints a markdown table of accuracy (exact match of the digits) per length with state floats.
# Resumable: finished stages are skipped (delete OUT/MIXER/... to redo one).
# Sizes by environment: MIXERS ("gla mamba2 longhorn"), SEEDS (post-training seeds, "1"), TASK (passkey;
# niah takes the same flags but is untried at these sizes), DIGITS (2), PRE_LEN (64), POST_LEN (256),
# LENGTHS (64,128,256,512,1024), PRE_STEPS (1500, early stop at 0.99), POST_STEPS (800;
# POST_STEPS_<mixer> overrides it for one mixer), PRE_LR (1e-2), POST_LR (1e-3), BATCH (32), EXAMPLES
# (500 per length), D (d_model; default 64, Longhorn 128), EXPAND_LAYER (0), THREADS (1).
# docs/statex.md §10.1 ran: POST_STEPS_longhorn=400 bash bench/statex_passkey.sh build /tmp/statex_passkey
set -eu
BUILD=${1:-build}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
case $BUILD in /*) E="$BUILD/eidetic" ;; *) E="$ROOT/$BUILD/eidetic" ;; esac
O=${2:-/tmp/statex_passkey}
MIXERS=${MIXERS:-"gla mamba2 longhorn"}
SEEDS=${SEEDS:-1}
TASK=${TASK:-passkey}
DIGITS=${DIGITS:-2}
PRE_LEN=${PRE_LEN:-64}
POST_LEN=${POST_LEN:-256}
LENGTHS=${LENGTHS:-64,128,256,512,1024}
PRE_STEPS=${PRE_STEPS:-1500}
POST_STEPS=${POST_STEPS:-800}
PRE_LR=${PRE_LR:-1e-2}
POST_LR=${POST_LR:-1e-3}
BATCH=${BATCH:-32}
EXAMPLES=${EXAMPLES:-500}
LAYER=${EXPAND_LAYER:-0}
TH=${THREADS:-1}
TASKF="--task $TASK --digits $DIGITS"  # vocab 128 (keys 32..95, filler 96..127) at training
COMMON="--threads $TH --quiet"
# post-training recipe: the one of statex_repro.sh (docs/statex.md §4 shape: warm-up, cosine to 0,
# AdamW wd 0.1, beta2 0.95, clip 1.0), identical for both arms
POST="--lr $POST_LR --min-lr 0 --weight-decay 0.1 --beta2 0.95 --grad-clip 1 --eval-every 0 --eval-examples 256"
steps() { local v="POST_STEPS_$1"; echo "${!v:-$POST_STEPS}"; }
mkdir -p "$O"
T0=$(date +%s)

arch() { case $1 in gla) echo "--num-heads 4 --d-conv 4" ;; mamba2) echo "--d-state 8" ;; longhorn) echo "--d-state 4" ;; esac; }
width() { [ -n "${D:-}" ] && echo "$D" || { [ "$1" = longhorn ] && echo 128 || echo 64; }; }
grow() { case $1 in gla) echo "--merge-heads 1" ;; *) echo "--state-mult 4" ;; esac; }
# eval CKPT OUTFILE: one 'L=N accuracy: X' line per length; redone when a length of LENGTHS is missing
ev() {
    local L ok=1
    for L in ${LENGTHS//,/ }; do grep -q "^L=$L " "$2" 2>/dev/null || ok=0; done
    [ $ok = 1 ] && return 0
    nice -n 5 "$E" eval --ckpt "$1" $TASKF --seq-len "$PRE_LEN" --lengths "$LENGTHS" --examples "$EXAMPLES" --threads "$TH" \
        > "$2.tmp" 2> "$2.log" && mv "$2.tmp" "$2"
}

for mx in $MIXERS; do
    P="$O/$mx/pre"
    mkdir -p "$O/$mx"
    if [ ! -f "$O/$mx/pre.done" ]; then
        rm -rf "$P"
        nice -n 5 "$E" train --preset "mqar-$mx" --layers "$mx,$mx" --d-model "$(width "$mx")" $(arch "$mx") $COMMON \
            $TASKF --vocab 128 --seq-len "$PRE_LEN" --batch "$BATCH" --lr "$PRE_LR" --steps "$PRE_STEPS" \
            --eval-every 100 --eval-examples 256 --target-acc 0.99 --seed 0 --out "$P" > "$O/$mx/pre.log" 2>&1
        touch "$O/$mx/pre.done"
    fi
    ev "$P" "$O/$mx/pre.eval"
    for s in $SEEDS; do
        X="$O/$mx/x$s"
        [ -d "$X" ] || "$E" expand --ckpt "$P" --out "$X" --layers "$LAYER" $(grow "$mx") --seed "$s" > /dev/null
        ev "$X" "$O/$mx/x$s.eval"
        for arm in statex lpt; do
            R="$O/$mx/$arm$s"
            init=$([ $arm = statex ] && echo "$X" || echo "$P/current")
            if [ ! -f "$R.done" ]; then
                rm -rf "$R"
                nice -n 5 "$E" train --init "$init" $COMMON $TASKF --seq-len "$POST_LEN" --batch "$BATCH" $POST \
                    --steps "$(steps "$mx")" --warmup $(($(steps "$mx") / 20)) --seed "$s" --out "$R" > "$R.log" 2>&1
                touch "$R.done"
            fi
            ev "$R" "$R.eval"
        done
    done
done
echo "wall time of this invocation: $(( $(date +%s) - T0 )) s" >&2

# markdown table: one row per checkpoint, one column per evaluated length
hdr="| mixer | arm | seed | state floats |"
sep="|---|---|---|---|"
for L in ${LENGTHS//,/ }; do hdr="$hdr L=$L |"; sep="$sep---|"; done
printf "\n%s\n%s\n" "$hdr" "$sep"
row() { # mixer label seed ckpt evalfile
    local st cells=""
    st=$("$E" info --ckpt "$4" | awk '/^total:/ {print $8}')
    for L in ${LENGTHS//,/ }; do cells="$cells $(awk -v l="L=$L" '$1 == l {print $3}' "$5") |"; done
    printf "| %s | %s | %s | %s |%s\n" "$1" "$2" "$3" "$st" "$cells"
}
for mx in $MIXERS; do
    row "$mx" "base (pre-trained L $PRE_LEN)" - "$O/$mx/pre" "$O/$mx/pre.eval"
    for s in $SEEDS; do
        row "$mx" "StateX step 0 (expanded, not post-trained)" "$s" "$O/$mx/x$s" "$O/$mx/x$s.eval"
        row "$mx" "StateX (post-trained L $POST_LEN, $(steps "$mx") steps)" "$s" "$O/$mx/statex$s" "$O/$mx/statex$s.eval"
        row "$mx" "LPT (post-trained L $POST_LEN, $(steps "$mx") steps)" "$s" "$O/$mx/lpt$s" "$O/$mx/lpt$s.eval"
    done
done
printf "\npre-training (steps run, last test accuracy at L %s):\n" "$PRE_LEN"
for mx in $MIXERS; do
    printf "  %s: %s steps, %s\n" "$mx" "$(tail -1 "$O/$mx/pre/metrics.jsonl" | sed 's/.*"step":\([0-9]*\).*/\1/')" \
        "$(awk '/^accuracy:/ {print $2}' "$O/$mx/pre.log" | tail -1)"
done
