#!/usr/bin/env bash
# `eidetic scorecard`: a tiny grid runs and writes results.csv / results.md / plots; a second run
# recomputes nothing; an interrupted grid restarts only its unfinished runs; lock files (live,
# dead, two processes on one directory, --jobs 2); time budgets (segmented runs are bit-exact with
# one run; a spent budget marks the run 'capped'); clear errors for bad flags. Tiny models: ~30 s.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
check() { local name=$1; shift; if "$@"; then ok; else bad "$name"; fi; }

# The tiny grid: 2 mixers x 1 d_model x 1 task x 2 lrs, a few steps each.
TASK='mqar --seq-len 16 --kv-pairs 2 --vocab 64'
GRID=("$E" scorecard --mixers longhorn,gla --d-models 16 --tasks "$TASK" --lrs 3e-3,1e-2 --batch 16
      --eval-every 10 --eval-examples 32 --length-examples 32 --lengths 1,2 --jobs 1 --threads 1)
grid() { "${GRID[@]}" "$@"; }
runs() { grep -c '^scorecard: run ' "$1"; }
mtimes() { stat -c '%i %Y.%y' "$1"/cells/*/result.json; }
csv_rows() { tail -n +2 "$1/results.csv" | wc -l; }
# one column of results.csv by name, one line per run (a real CSV reader: fields hold quoted commas)
csv_col() { /usr/bin/python3 -c 'import csv, sys
for r in csv.DictReader(open(sys.argv[1] + "/results.csv")): print(r[sys.argv[2]])' "$1" "$2"; }

# ---- help and bad flags ----
"$E" scorecard --help >"$T/help" 2>&1 && grep -q "usage: eidetic scorecard" "$T/help" && ok || bad "--help"
"$E" --help | grep -q scorecard && ok || bad "eidetic --help lists scorecard"
expect_fail "unknown option" "unknown option --bogus" "$E" scorecard --bogus
expect_fail "unknown mixer" "--mixers: unknown mixer 'nosuch'" "$E" scorecard --mixers longhorn,nosuch --dry-run
expect_fail "bad hybrid" "malformed hybrid" "$E" scorecard --mixers longhorn+ --dry-run
expect_fail "bad lr" "--lrs: expected a comma list of numbers" "$E" scorecard --lrs 1e-3,abc --dry-run
expect_fail "bad d_model" "--d-models: expected a comma list of integers" "$E" scorecard --d-models 0 --dry-run
expect_fail "empty list entry" "--d-models: empty entry" "$E" scorecard --d-models 64,,128 --dry-run
expect_fail "bad jobs" "--jobs: expected an integer >= 1" "$E" scorecard --jobs 0 --dry-run
expect_fail "bad budget" "--max-minutes: expected a number" "$E" scorecard --max-minutes -1 --dry-run
expect_fail "missing value" "--steps needs a value" "$E" scorecard --steps
expect_fail "bad steps" "--steps: expected an integer" "$E" scorecard --steps ten --dry-run
expect_fail "two grids" "choose one grid" "$E" scorecard --quick --full --dry-run
expect_fail "bad task flag" "unknown option --kv-pairz" "$E" scorecard --tasks 'mqar --kv-pairz 3' --dry-run
expect_fail "bad task value" "--kv-pairs" "$E" scorecard --tasks 'mqar --seq-len 16 --kv-pairs 40' --dry-run
expect_fail "task not flags" "expected train flags" "$E" scorecard --tasks 'mqar 64' --dry-run
expect_fail "reserved flag" "--out is set by the scorecard" "$E" scorecard --train-flags '--out x' --dry-run
expect_fail "bad train flag" "--train-flags '--bogus 1'" "$E" scorecard --train-flags '--bogus 1' --dry-run
expect_fail "bad lengths" "--lengths: expected" "$E" scorecard --lengths 1,x --dry-run
# the common option parser (opts_parse): --flag=value, ranges checked after parsing
expect_fail "too many lengths" "--lengths: at most 8 lengths" "$E" scorecard --lengths 1,2,3,4,5,6,7,8,9 --dry-run
expect_fail "NaN target" "--target-acc: expected a number \(finite\), got 'nan'" "$E" scorecard --target-acc nan --dry-run
expect_fail "seed 0" "--seed: expected an integer >= 1" "$E" scorecard --seed=0 --dry-run
expect_fail "flag with a value" "--dry-run: expected true or false" "$E" scorecard --dry-run=maybe
expect_ok "--flag=value" "$E" scorecard --dry-run=true --mixers=longhorn --d-models=32 --lrs=1e-3 --tasks=copy --steps=5
grep -q "longhorn-d32-copy-lr0.001" "$T/out" && grep -q -- "--steps 5" "$T/out" && ok || bad "--flag=value not applied: $(head -3 "$T/out")"
: >"$T/afile"
expect_fail "out is a file" "not a directory" grid --steps 10 --out "$T/afile/sc"

# ---- dry run: the cells, nothing written; an unknown task is 'unavailable', not an error ----
"$E" scorecard --dry-run --out "$T/dry" >"$T/dry.out" 2>"$T/dry.err"
check "quick dry run" [ $? -eq 0 ]
check "quick dry run writes nothing" [ ! -e "$T/dry" ]
check "quick grid covers 6 mixers x 4 tasks x 2 lrs" [ "$(grep -cE '^(longhorn|mamba|mamba2|gla|attn|swa)-d64-' "$T/dry.out")" -eq 48 ]
grep -q "estimated" "$T/dry.err" && ok || bad "dry run prints an estimate"
"$E" scorecard --tasks 'nosuchtask --seq-len 16' --mixers gla --lrs 1e-3 --dry-run >"$T/un.out" 2>"$T/un.err"
check "unknown task is not an error" [ $? -eq 0 ]
grep -q "unavailable" "$T/un.out" && grep -q "unknown task 'nosuchtask'" "$T/un.err" && ok || bad "unknown task reported unavailable"
"$E" scorecard --full --dry-run --out "$T/dry" >"$T/full.out" 2>&1
check "full grid: 6 mixers x 3 d x 6 tasks x 4 lrs" [ "$(grep -cE '^(longhorn|mamba|mamba2|gla|attn|swa)-d(64|128|256)-' "$T/full.out")" -eq 432 ]

# ---- a tiny grid: results.csv, results.md, plots ----
S="$T/sc"
grid --steps 20 --out "$S" >"$T/a.out" 2>"$T/a.err"
check "tiny grid runs" [ $? -eq 0 ]
check "4 runs" [ "$(runs "$T/a.err")" -eq 4 ]
check "results.csv: one row per run" [ "$(csv_rows "$S")" -eq 4 ]
check "csv statuses" [ "$(csv_col "$S" status | grep -cxE '(done|early-stop)')" -eq 4 ]
check "csv accuracies" [ "$(csv_col "$S" final_acc | grep -cE '^[01]\.[0-9]{4}$')" -eq 4 ]
check "csv state sizes" [ "$(csv_col "$S" zoology_bytes | grep -cE '^[0-9]+$')" -eq 4 ]
grep -q '^| longhorn | ' "$S/results.md" && grep -q '^| gla | ' "$S/results.md" && ok || bad "results.md table rows"
for p in state length loss_1; do
    for x in png svg; do [ -s "$S/plots/$p.$x" ] && ok || bad "plot $p.$x missing"; done
done
[ "$(head -c 4 "$S/plots/state.png" | tail -c 3)" = PNG ] && ok || bad "state.png is not a PNG"
grep -q "Based Fig.2: sliding window" "$S/plots/state.svg" && ok || bad "published points missing from the state plot"
check "length test cached" [ "$(ls "$S"/cells/*/lengths.json | wc -l)" -eq 2 ]

# ---- the same command again recomputes nothing ----
before=$(mtimes "$S")
grid --steps 20 --out "$S" >/dev/null 2>"$T/b.err"
check "rerun succeeds" [ $? -eq 0 ]
check "rerun trains nothing" [ "$(runs "$T/b.err")" -eq 0 ]
grep -q "length test" "$T/b.err" && bad "rerun repeated the length test" || ok
check "rerun leaves results untouched" [ "$before" = "$(mtimes "$S")" ]
grep -q "4/4 runs finished" "$T/b.err" && ok || bad "rerun summary"

# ---- interrupted: kill after the first run finished; a restart runs only the others ----
I="$T/int"
"${GRID[@]}" --steps 400 --out "$I" --no-plots >/dev/null 2>"$T/i1.err" &
pid=$! # the scorecard itself (not a subshell), as an interrupt from the terminal would reach it
for _ in $(seq 1 600); do
    [ "$(ls "$I"/cells/*/result.json 2>/dev/null | wc -l)" -ge 1 ] && break
    sleep 0.05
done
kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null
n1=$(ls "$I"/cells/*/result.json 2>/dev/null | wc -l)
check "interrupted after the first run" [ "$n1" -ge 1 -a "$n1" -lt 4 ]
sleep 0.3
pgrep -f -- "$I/cells" >/dev/null && bad "a training process outlived the killed scorecard" || ok
first=$(mtimes "$I")
grid --steps 400 --out "$I" --no-plots >/dev/null 2>"$T/i2.err"
check "restart finishes" [ $? -eq 0 ]
check "restart runs only the unfinished runs" [ "$(runs "$T/i2.err")" -eq $((4 - n1)) ]
check "finished runs untouched" [ "$(mtimes "$I" | grep -cxF -f <(printf '%s\n' "$first"))" -eq "$n1" ]
check "all 4 finished" [ "$(ls "$I"/cells/*/result.json | wc -l)" -eq 4 ]

# ---- locks: a live holder is waited for, then (once dead) taken over; a dead holder at once ----
L="$T/lock"
ids=$(grid --steps 20 --out "$L" --dry-run 2>/dev/null | awk 'NR > 1 {print $1}')
id1=$(echo "$ids" | sed -n 1p); id2=$(echo "$ids" | sed -n 2p)
mkdir -p "$L/cells"
sleep 3 & live=$!
true & dead=$!; wait $dead
echo "$live 0 $(hostname)" >"$L/cells/$id1.lock"
echo "$dead 0 $(hostname)" >"$L/cells/$id2.lock"
grid --steps 20 --out "$L" --no-plots >/dev/null 2>"$T/l.err"
check "locked grid finishes" [ $? -eq 0 ]
grep -q "waiting for 1 run claimed by another process (pid $live)" "$T/l.err" && ok || bad "did not wait for the live holder"
check "every run exactly once" [ "$(runs "$T/l.err")" -eq 4 ]
check "no lock left" [ "$(ls "$L"/cells/*.lock 2>/dev/null | wc -l)" -eq 0 ]
wait $live 2>/dev/null

# ---- two scorecards on one directory, and --jobs 2: every run exactly once ----
P="$T/par"
grid --steps 60 --out "$P" --no-plots >/dev/null 2>"$T/p1.err" & p1=$!
grid --steps 60 --out "$P" --no-plots >/dev/null 2>"$T/p2.err" & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
check "two processes succeed" [ $r1 -eq 0 -a $r2 -eq 0 ]
check "two processes: each run once" [ $(( $(runs "$T/p1.err") + $(runs "$T/p2.err") )) -eq 4 ]
J="$T/jobs"
grid --steps 60 --out "$J" --no-plots --jobs 2 >/dev/null 2>"$T/j.err"
check "--jobs 2 succeeds" [ $? -eq 0 ]
check "--jobs 2: each run once" [ "$(runs "$T/j.err")" -eq 4 -a "$(ls "$J"/cells/*/result.json | wc -l)" -eq 4 ]

# ---- time budgets: segments of eval_every steps are bit-exact with one run; a spent budget caps ----
grid --steps 40 --out "$T/seg" --no-plots --lengths none --max-minutes-per-cell 100 >/dev/null 2>&1
grid --steps 40 --out "$T/one" --no-plots --lengths none --max-minutes-per-cell 0 >/dev/null 2>&1
check "segmented == one run" [ "$(csv_col "$T/seg" final_acc; csv_col "$T/seg" best_acc)" = "$(csv_col "$T/one" final_acc; csv_col "$T/one" best_acc)" ]
grid --steps 400 --out "$T/cap" --no-plots --lengths none --max-minutes-per-cell 0.00001 >/dev/null 2>&1
check "capped status" [ "$(csv_col "$T/cap" status | grep -cx capped)" -eq 4 ]
check "capped after the first segment" [ "$(csv_col "$T/cap" steps_done | sort -u)" = "10" ]

# ---- report only: tables from what is there, pending runs marked ----
"$E" scorecard --mixers longhorn,gla,swa --d-models 16 --tasks "$TASK" --lrs 3e-3,1e-2 --batch 16 --eval-every 10 \
    --eval-examples 32 --steps 20 --jobs 1 --threads 1 --lengths 1,2 --length-examples 32 --out "$S" --report-only --no-plots >/dev/null 2>&1
check "report-only" [ $? -eq 0 ]
check "report-only marks pending runs" [ "$(csv_col "$S" status | grep -cx pending)" -eq 2 ]

summary scorecard
