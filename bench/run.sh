#!/usr/bin/env bash
# `make bench`: the benchmark tables of docs/performance.md — `eidetic bench all` (training step,
# MFU, memory, decoding vs the bandwidth bound, scaling; a few minutes on 2 cores) into bench/results,
# then the PyTorch comparison (bench/compare_pytorch.py) when /usr/bin/python3 can import torch.
# Usage: bash bench/run.sh [BUILD] [more eidetic bench flags]   (BUILD default build)
set -u
BUILD=${1:-build}
[ $# -gt 0 ] && shift
cd "$(dirname "$0")/.."
E="$BUILD/eidetic"
[ -x "$E" ] || { echo "bench: $E not found: run make first (make bench builds it)" >&2; exit 1; }
"$E" bench all --out bench/results "$@" || exit $?
if [ ! -f bench/compare_pytorch.py ]; then
    echo "bench: bench/compare_pytorch.py not found: PyTorch comparison skipped" >&2
elif ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    echo "bench: PyTorch not importable by /usr/bin/python3: PyTorch comparison skipped" >&2
else
    /usr/bin/python3 bench/compare_pytorch.py --eidetic "$E" || exit $?
fi
