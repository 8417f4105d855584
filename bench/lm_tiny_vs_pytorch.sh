#!/usr/bin/env bash
# lm-tiny against PyTorch at equal wall-clock (docs/lm.md): eidetic's `train --preset lm-tiny` on 2
# threads, then the same model (bench/lm_tiny_pytorch.py: same initial weights, data rows, optimiser
# and schedule shape) trained with PyTorch on 2 threads for eidetic's training wall time, both
# evaluated on the same validation split (bits per byte over the same bytes).
# Usage: bash bench/lm_tiny_vs_pytorch.sh [build] [outdir]
# Needs Debian's python3-torch (/usr/bin/python3) and the prepared lm-tiny corpus (the preset makes it).
set -u
BUILD=${1:-build}; OUT=${2:-runs/lm_tiny_vs_pytorch}
E="$BUILD/eidetic"; NICE=${NICE:-5}; THREADS=${THREADS:-2}
CACHE=${EIDETIC_CACHE:-${XDG_CACHE_HOME:+$XDG_CACHE_HOME/eidetic}}; CACHE=${CACHE:-$HOME/.cache/eidetic}
DATA="$CACHE/jargon-byte"
mkdir -p "$OUT"

# 1. eidetic, the preset as a user runs it
if ! grep -q '^bits_per_byte:' "$OUT/eidetic.log" 2>/dev/null; then
    rm -rf "$OUT/eidetic"
    /usr/bin/time -f "wall_s %e user_s %U sys_s %S" nice -n "$NICE" "$E" train --preset lm-tiny --threads "$THREADS" \
        --quiet --out "$OUT/eidetic" > "$OUT/eidetic.log" 2>&1 || { cat "$OUT/eidetic.log"; exit 1; }
fi
W=$(tail -1 "$OUT/eidetic/metrics.jsonl" | sed -E 's/.*"elapsed_s":([0-9.]+).*/\1/')
echo "eidetic: $(grep -E '^(val_loss|bits_per_byte|wall_s)' "$OUT/eidetic.log" | tr '\n' ' ') train elapsed_s $W"

# 2. the same initial weights: one step at lr 1e-30 leaves every fp32 weight as initialised (seed 1)
if [ ! -f "$OUT/init/current/model.safetensors" ]; then
    rm -rf "$OUT/init"
    "$E" train --preset lm-tiny --steps 1 --lr 1e-30 --min-lr 0 --warmup 0 --eval-every 0 --threads 1 --quiet \
        --out "$OUT/init" > "$OUT/init.log" 2>&1 || { cat "$OUT/init.log"; exit 1; }
fi

# 3. faithfulness: PyTorch's validation loss of eidetic's trained weights against eidetic's own
if [ ! -f "$OUT/check.txt" ]; then
    { echo "eidetic eval:";  "$E" eval --ckpt "$OUT/eidetic" --data "$DATA" --threads "$THREADS" 2>/dev/null
      echo "pytorch eval of the same checkpoint:"
      nice -n "$NICE" /usr/bin/python3 "$(dirname "$0")/lm_tiny_pytorch.py" --data "$DATA" --init "$OUT/eidetic/current" \
          --eval-only --threads "$THREADS" 2>/dev/null; } > "$OUT/check.txt"
fi
cat "$OUT/check.txt"

# 4. PyTorch for the same wall-clock (its evaluations are not counted against it)
if [ ! -f "$OUT/pytorch.json" ]; then
    /usr/bin/time -f "wall_s %e user_s %U sys_s %S" nice -n "$NICE" /usr/bin/python3 "$(dirname "$0")/lm_tiny_pytorch.py" \
        --data "$DATA" --init "$OUT/init/current" --seconds "$W" --eval-every-s "$(echo "$W / 6" | bc -l)" \
        --threads "$THREADS" --out "$OUT/pytorch.json" > "$OUT/pytorch.log" 2>&1 || { cat "$OUT/pytorch.log"; exit 1; }
fi
echo "pytorch: $(grep -E '^(steps|tokens|train_seconds|train_cpu_seconds|val_loss|bits_per_byte|wall_s)' "$OUT/pytorch.log" | tr '\n' ' ')"
echo "eidetic curve (step tokens elapsed_s val_bpb):"
grep val_bpb "$OUT/eidetic/metrics.jsonl" | sed -E 's/.*"step":([0-9]+).*"elapsed_s":([0-9.]+).*"val_bpb":([0-9.]+).*/\1 \2 \3/' |
    awk '{printf "  %d %.3fM %.0f %.4f\n", $1, $1 * 2048 / 1e6, $2, $3}'
echo "pytorch curve (step tokens train_s val_bpb):"
/usr/bin/python3 -c "import json,sys; [print('  %d %.3fM %.0f %.4f' % (c['step'], c['step']*2048/1e6, c['train_s'], c['val_bpb'])) for c in json.load(open(sys.argv[1]))['curve']]" "$OUT/pytorch.json"
