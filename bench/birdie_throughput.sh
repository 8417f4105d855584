#!/usr/bin/env bash
# birdie_throughput.sh — does building Birdie's objective rows starve training? (docs/birdie.md
# "Throughput"). 1) rows built per second by the source alone (bench/birdie_rows.c), 2) training
# tokens/s of the same model (the lm-tiny preset, --threads 1) with plain LM rows, --objective ntp,
# fixed (Birdie's objectives, no controller) and birdie (plus the controller's evaluations), in one run.
# Usage: bash bench/birdie_throughput.sh [BUILD] [STEPS]
set -eu
B=${1:-build}; STEPS=${2:-60}
make -s "$B/bench/birdie_rows" "$B/eidetic" >/dev/null
for o in ntp birdie ul2; do "$B/bench/birdie_rows" $o 512 4096; done
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
for o in plain ntp fixed birdie; do
    flag=; [ $o = plain ] || flag="--objective $o"
    "$B/eidetic" train --preset lm-tiny $flag --steps "$STEPS" --threads 1 --quiet --out "$T/$o" >/dev/null 2>&1
    tps=$(tail -1 "$T/$o/metrics.jsonl" | grep -o '"tokens_per_s":[0-9]*' | cut -d: -f2)
    echo "train lm-tiny $o: $tps row tokens/s over $STEPS steps (controller evaluations included)"
done
