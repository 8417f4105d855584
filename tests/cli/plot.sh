#!/usr/bin/env bash
# `eidetic plot` (docs/birdie.md "Birdie in eidetic"): a tiny --objective birdie run is drawn (PNG, SVG,
# both); the mixture data holds one row per controller decision, equal to metrics.jsonl's class shares,
# each row summing to 1; the legend names the classes recorded by the run ("birdie_classes"); the
# script redraws from another directory; every error (missing run, no metrics, empty file, a line that
# is not JSON, a run without controller lines, bad flags, broken shares, a failing or missing gnuplot)
# exits non-zero with a message naming the file / line / flag, and replaces no earlier output.
# About 15 s (two tiny training runs).
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
command -v gnuplot >/dev/null || { bad "gnuplot not installed (scripts/setup.sh installs gnuplot-nox)"; summary plot; exit 1; }

A=(--preset pb-tiny --d-model 32 --steps 12 --birdie-candidates 16 --birdie-val-rows 1 --eval-examples 16 --threads 1 --quiet)
expect_ok "train a tiny birdie run" "$E" train "${A[@]}" --objective birdie --out "$T/run"
M="$T/run/metrics.jsonl"
nctl=$(grep -c '"birdie_class_mix"' "$M")
[ "$nctl" -ge 5 ] && ok || bad "expected >= 5 controller decisions in metrics.jsonl, got $nctl"
# the run names its classes once, in the controller's order
[ "$(grep -c '"birdie_classes"' "$M")" -eq 1 ] && ok || bad "\"birdie_classes\" not on exactly one line"
grep -q '"birdie_classes":\["ntp","prefix-lm","copying","deshuffling","infilling","autoencoding","selective-copying"\]' "$M" &&
    ok || bad "birdie_classes: $(grep -o '"birdie_classes":[^]]*]' "$M")"

# rows of a data block: non-comment, non-blank lines of block IDX (blocks are separated by two blank lines)
block() { awk -v want="$2" 'BEGIN { b = 0; blank = 0 } /^$/ { blank++; next }
    { if (blank >= 2) b++; blank = 0 } /^#/ { next } b == want { print }' "$1"; }
# check_shares FILE: every mixture row has 3 + 7 columns whose shares sum to 1 within 1e-3; prints the bad rows
check_shares() { block "$1" 0 | awk '{ s = 0; for (i = 4; i <= NF; i++) s += $i
    if (NF != 10 || s < 0.999 || s > 1.001) print "row " NR ": " NF " columns, sum " s }'; }
# the checker fails on a bad row (so the checks below can fail)
printf '# mixture\n10 1 init 0.5 0.5 0.5 0 0 0 0\n' > "$T/planted.dat"
[ -n "$(check_shares "$T/planted.dat")" ] && ok || bad "check_shares missed a row summing to 1.5"

# ---- the mixture, PNG ----
expect_ok "plot --what mixture" "$E" plot --run "$T/run" --what mixture --out "$T/p/mix.png"
P="$T/p/mix"
[ -s "$P.png" ] && [ "$(head -c 4 "$P.png" | od -An -c | tr -d ' ')" = "211PNG" ] && ok || bad "mix.png missing or not a PNG"
[ ! -e "$P.svg" ] && ok || bad "an SVG was drawn without --format svg"
rows=$(block "$P.dat" 0 | wc -l)
[ "$rows" -eq "$nctl" ] && ok || bad "mixture rows: $rows, controller decisions in metrics.jsonl: $nctl"
badrows=$(check_shares "$P.dat")
[ -z "$badrows" ] && ok || bad "mixture rows not summing to 1: $badrows"
# the rows are metrics.jsonl's decisions: step and the seven shares, as written
grep '"birdie_class_mix"' "$M" | sed -E 's/.*"step":([0-9]+).*"birdie_class_mix":\[([^]]*)\].*/\1 \2/; s/,/ /g' > "$T/want"
block "$P.dat" 0 | awk '{ printf "%s", $1; for (i = 4; i <= NF; i++) printf " %s", $i; printf "\n" }' > "$T/got"
diff -q "$T/want" "$T/got" >/dev/null && ok || bad "mixture rows differ from metrics.jsonl: $(diff "$T/want" "$T/got" | head -4)"
block "$P.dat" 0 | awk '$3 !~ /^(init|uniform|explore|greedy)$/ { exit 1 }' && ok || bad "a mixture row without its mode"
grep -qF "array names[7] = ['ntp', 'prefix-lm', 'copying', 'deshuffling', 'infilling', 'autoencoding', 'selective-copying']" "$P.gp" &&
    ok || bad "the legend does not name the run's classes: $(grep 'array names' "$P.gp")"
grep -q "decisions over 7 classes" "$T/out" && ok || bad "no summary line: $(cat "$T/out")"
ls -A "$T/p" | grep -q '\.plot-' && bad "temporary files left: $(ls -A "$T/p")" || ok
# the script redraws the image from any directory (it finds its data beside itself)
cp "$P.png" "$T/mix.first.png" && rm "$P.png"
(cd / && gnuplot "$P.gp" >/dev/null 2>&1) && [ -s "$P.png" ] && ok || bad "gnuplot mix.gp from / did not redraw mix.png"
# lines instead of areas
expect_ok "plot --style lines" "$E" plot "$T/run" --what mixture --style lines --out "$T/p/lines.png"
grep -q 'with steps' "$T/p/lines.gp" && [ -s "$T/p/lines.png" ] && ok || bad "--style lines"

# ---- SVG, both, all panels, the default output ----
expect_ok "plot --format svg" "$E" plot --run "$T/run" --what mixture --format svg --out "$T/p/svgonly"
grep -q '<svg' "$T/p/svgonly.svg" 2>/dev/null && [ ! -e "$T/p/svgonly.png" ] && ok || bad "--format svg: no SVG (or a PNG too)"
expect_ok "plot --out x.svg" "$E" plot --run "$T/run" --what rewards --out "$T/p/rew.svg"
grep -q '<svg' "$T/p/rew.svg" 2>/dev/null && ok || bad "--out x.svg did not draw an SVG"
rows=$(block "$T/p/rew.dat" 0 | wc -l)
[ "$rows" -eq "$nctl" ] && ok || bad "rewards rows: $rows, expected $nctl"
block "$T/p/rew.dat" 0 | awk 'NF != 12 { exit 1 }' && ok || bad "rewards rows: expected step eval mode + 7 rewards + total + rm loss"
expect_ok "plot (all, default output, both formats)" "$E" plot "$T/run" --format both
[ -s "$T/run/plots/all.png" ] && [ -s "$T/run/plots/all.svg" ] && [ -s "$T/run/plots/all.gp" ] && ok ||
    bad "default output: $(ls "$T/run/plots" 2>&1)"
nblocks=$(grep -c '^# \(mixture\|rewards\|loss\|evaluations\):' "$T/run/plots/all.dat")
[ "$nblocks" -eq 4 ] && ok || bad "all: expected 4 data blocks, got $nblocks"
[ "$(block "$T/run/plots/all.dat" 2 | wc -l)" -eq "$(wc -l < "$M")" ] && ok || bad "loss rows != metrics lines"
[ "$(block "$T/run/plots/all.dat" 3 | wc -l)" -eq "$(grep -c '"test_acc"' "$M")" ] && ok || bad "evaluation rows != evaluated steps"
grep -q 'multiplot layout 3,1' "$T/run/plots/all.gp" && ok || bad "all: not three panels"

expect_ok "plot --what rewards,loss --title" "$E" plot "$T/run" --what rewards,loss --title "two panels" --out "$T/p/two.png"
grep -q 'multiplot layout 2,1 title .two panels.' "$T/p/two.gp" && [ "$(grep -c '^# \(rewards\|loss\|evaluations\):' "$T/p/two.dat")" -eq 3 ] &&
    ! grep -q '^# mixture' "$T/p/two.dat" && ok || bad "--what rewards,loss: $(grep multiplot "$T/p/two.gp")"

# ---- --no-render, gnuplot missing, gnuplot failing ----
expect_ok "--no-render" "$E" plot "$T/run" --what mixture --no-render --out "$T/nr/m.png"
[ -s "$T/nr/m.dat" ] && [ -s "$T/nr/m.gp" ] && [ ! -e "$T/nr/m.png" ] && ok || bad "--no-render: $(ls "$T/nr" 2>&1)"
mkdir -p "$T/bin"
PATH="$T/bin" "$E" plot "$T/run" --what mixture --out "$T/ng/m.png" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 3 ] && grep -q "gnuplot not found.*draw the image with: gnuplot $T/ng/m.gp" "$T/err" && [ -s "$T/ng/m.dat" ] &&
    [ -s "$T/ng/m.gp" ] && [ ! -e "$T/ng/m.png" ] && ok || bad "no gnuplot: rc=$rc (want 3): $(cat "$T/err")"
printf '#!/bin/sh\necho "fake gnuplot: line 1: boom" >&2\nexit 1\n' > "$T/bin/gnuplot" && chmod +x "$T/bin/gnuplot"
cp "$P.png" "$T/before.png"; cp "$P.dat" "$T/before.dat"; cp "$P.gp" "$T/before.gp"
PATH="$T/bin:$PATH" "$E" plot "$T/run" --what mixture --out "$P.png" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "gnuplot failed (exit status 1): fake gnuplot: line 1: boom" "$T/err" && ok || bad "failing gnuplot: rc=$rc: $(cat "$T/err")"
cmp -s "$T/before.png" "$P.png" && cmp -s "$T/before.dat" "$P.dat" && cmp -s "$T/before.gp" "$P.gp" && ok ||
    bad "a failed plot replaced earlier outputs"
ls -A "$T/p" | grep -q '\.plot-' && bad "temporary files left after a failure: $(ls -A "$T/p")" || ok

# ---- errors, each naming what is wrong ----
EXPECT_ONE_ERROR=1
expect_fail "no run" "no run directory" "$E" plot
expect_fail "missing run" "--run $T/nosuch: No such file or directory" "$E" plot --run "$T/nosuch"
mkdir -p "$T/nometrics" "$T/empty"
expect_fail "no metrics.jsonl" "$T/nometrics/metrics.jsonl: not found" "$E" plot "$T/nometrics"
: > "$T/empty/metrics.jsonl"
expect_fail "empty metrics.jsonl" "$T/empty/metrics.jsonl: empty file" "$E" plot "$T/empty"
mkdir -p "$T/bad"
sed '3s/.*/{"step":3,"loss":/' "$M" > "$T/bad/metrics.jsonl"
expect_fail "a line that is not JSON" "$T/bad/metrics.jsonl:3: not JSON" "$E" plot "$T/bad" --out "$P.png"
cmp -s "$T/before.png" "$P.png" && cmp -s "$T/before.dat" "$P.dat" && ok || bad "a refused plot replaced earlier outputs"
sed '2s/"birdie_class_mix":\[[0-9.]*,/"birdie_class_mix":[0.9,/' "$M" > "$T/bad/metrics.jsonl"
expect_fail "shares not summing to 1" "$T/bad/metrics.jsonl:2: the \"birdie_class_mix\" shares sum to" "$E" plot "$T/bad"
sed '4s/"step":4,/"step":2,/' "$M" > "$T/bad/metrics.jsonl"
expect_fail "steps going back" "$T/bad/metrics.jsonl:4: step 2 after step 3" "$E" plot "$T/bad"
sed '5s/"loss":[0-9.]*/"loss":"x"/' "$M" > "$T/bad/metrics.jsonl"
expect_fail "a field of the wrong type" "$T/bad/metrics.jsonl:5: \"loss\" is not a finite number" "$E" plot "$T/bad"
expect_fail "bad --what" "--what: unknown panel 'bogus'" "$E" plot "$T/run" --what bogus
expect_fail "bad --format" "--format: expected png, svg or both, got 'gif'" "$E" plot "$T/run" --format gif
expect_fail "bad --style" "--style: expected stacked or lines" "$E" plot "$T/run" --style dots
expect_fail "bad --out extension" "--out $T/x.pdf: the image must end in .png or .svg" "$E" plot "$T/run" --out "$T/x.pdf"
expect_fail "--out against --format" "the extension contradicts --format svg" "$E" plot "$T/run" --out "$T/x.png" --format svg
expect_fail "unknown option" "unknown option --bogus" "$E" plot "$T/run" --bogus
expect_fail "--out a directory" "--out $T/p: a directory; give the image's file name" "$E" plot "$T/run" --out "$T/p"
EXPECT_ONE_ERROR=0
# a run being written: its unfinished last line is skipped with a note
mkdir -p "$T/live" && cp "$M" "$T/live/metrics.jsonl" && printf '{"step":13,"loss":5.1,"train_a' >> "$T/live/metrics.jsonl"
expect_ok "an unfinished last line" "$E" plot "$T/live" --what mixture --out "$T/live/m.png"
grep -q "ends in an unfinished line" "$T/err" && [ -s "$T/live/m.png" ] && ok || bad "unfinished line: $(cat "$T/err")"

# ---- a run without Birdie's controller ----
expect_ok "train without --objective" "$E" train "${A[@]}" --steps 3 --out "$T/plain"
expect_fail "mixture of a plain run" "$T/plain/metrics.jsonl: no controller lines: was the run trained with --objective birdie\|birdie-causal\?" \
    "$E" plot "$T/plain" --what mixture
expect_fail "rewards of a plain run" "no controller lines" "$E" plot "$T/plain" --what rewards
expect_ok "all panels of a plain run: the loss" "$E" plot "$T/plain" --out "$T/plain.png"
grep -q "drawing the loss only" "$T/err" && [ -s "$T/plain.png" ] && ! grep -q multiplot "$T/plain.gp" && ok ||
    bad "plain run, all: $(cat "$T/err")"
# help
"$E" plot --help > "$T/help" && grep -q -- "--what" "$T/help" && grep -q -- "--format" "$T/help" && grep -q "Exit status" "$T/help" &&
    ok || bad "plot --help"
"$E" --help | grep -q '^  plot ' && ok || bad "eidetic --help does not list plot"
summary plot
