#!/usr/bin/env bash
# plot_scorecard.sh OUT/plots — draws the plots of `eidetic scorecard` (which calls it) from the data
# files in OUT/plots, as PNG and SVG: state.*, length.*, loss_N.* (see scripts/scorecard.gp).
# Exit status: 0 ok, 2 bad argument, 3 gnuplot missing, else gnuplot's.
set -euo pipefail
dir=${1:-}
if [ -z "$dir" ] || [ ! -f "$dir/vars.gp" ]; then
    echo "plot_scorecard: usage: plot_scorecard.sh OUT/plots (a directory written by eidetic scorecard, with vars.gp)" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v gnuplot >/dev/null 2>&1; then
    echo "plot_scorecard: gnuplot not found (Debian: apt-get install gnuplot-nox)" >&2
    exit 3
fi
# pngcairo draws antialiased text; the libgd png terminal is the fallback
png=png
gnuplot -e 'set terminal' 2>&1 | grep -q pngcairo && png=pngcairo
for fmt in "$png" svg; do
    gnuplot -e "dir='$dir'; pub='$here/published_mqar.dat'; fmt='$fmt'" "$here/scorecard.gp"
done
