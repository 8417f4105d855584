#!/usr/bin/env bash
# --gemm-plan (docs/performance.md "Choosing the library per shape"): measure logs one choice per shape
# and saves the plan in every checkpoint; a run replaying a plan file is bit-identical to the run that
# measured it (a fresh one and an interrupted + resumed one); fixed mode writes no plan; eval, forward,
# generate and bench take the flag; bad values and bad plan files are refused by name.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
tiny=(--preset tiny --steps 30 --eval-examples 16 --ckpt-every 10 --threads 1)

expect_ok "train measure" "$E" train "${tiny[@]}" --gemm-plan measure --out "$T/m"
grep -qE "gemm plan: fp32 [0-9]+x[0-9]+x[0-9]+ [NT][NT], 1 thread: openblas [0-9.]+ us, onednn-f32 [0-9.]+ us -> (openblas|onednn-f32)" "$T/err" &&
    ok || bad "measure: no 'gemm plan:' choice line in the log: $(head -3 "$T/err")"
P="$T/m/current/gemm_plan.json"
[ -s "$P" ] && ok || bad "measure: the checkpoint has no gemm_plan.json"
n_log=$(grep -c "gemm plan: " "$T/err"); n_file=$(grep -c '"precision"' "$P" 2>/dev/null)
[ "$n_log" -gt 0 ] && [ "$n_log" = "$n_file" ] && ok || bad "measure: $n_log choices logged, $n_file in the file"
/usr/bin/python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['eidetic_gemm_plan']==1 and j['entries']" "$P" &&
    ok || bad "measure: gemm_plan.json is not a plan"

# replay: the same libraries, the same bits — uninterrupted, and interrupted + resumed
cp "$P" "$T/plan.json"
expect_ok "train replay" "$E" train "${tiny[@]}" --gemm-plan "$T/plan.json" --out "$T/r1"
cmp -s "$T/m/current/model.safetensors" "$T/r1/current/model.safetensors" && ok ||
    bad "replay: weights differ from the run that measured the plan"
grep -q "gemm plan: " "$T/err" && bad "replay: shapes were measured again: $(grep -m1 'gemm plan: ' "$T/err")" || ok
expect_ok "train replay interrupted" "$E" train "${tiny[@]}" --gemm-plan "$T/plan.json" --stop-after 15 --out "$T/r2"
rm "$T/plan.json" # the resumed run must use the plan saved in its checkpoint
expect_ok "resume" "$E" train --resume "$T/r2"
cmp -s "$T/m/current/model.safetensors" "$T/r2/current/model.safetensors" && ok ||
    bad "replay: interrupted + resumed run differs from the uninterrupted one"

# a shape where the libraries differ makes the plan matter: forcing every entry to the other library
# changes the weights (so the equality above is not trivially true)
/usr/bin/python3 - "$P" "$T/flip.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
for e in j["entries"]:
    e["use"] = "openblas" if e["use"] == "onednn-f32" else "onednn-f32"
json.dump(j, open(sys.argv[2], "w"))
EOF
expect_ok "train flipped plan" "$E" train "${tiny[@]}" --gemm-plan "$T/flip.json" --out "$T/fl"
cmp -s "$T/m/current/model.safetensors" "$T/fl/current/model.safetensors" && bad "a flipped plan gave the same weights (plan ignored?)" || ok

# fixed (the default): no plan file, OpenBLAS's numbers as before
expect_ok "train fixed" "$E" train "${tiny[@]}" --out "$T/f"
[ -e "$T/f/current/gemm_plan.json" ] && bad "fixed: a gemm_plan.json was written" || ok
grep -q "gemm plan" "$T/err" && bad "fixed: gemm plan lines logged" || ok

# the other commands
expect_ok "eval measure" "$E" eval --ckpt "$T/m" --examples 16 --threads 1 --gemm-plan measure
grep -q "gemm plan: " "$T/err" && ok || bad "eval --gemm-plan measure: no choice logged"
expect_ok "eval replay" "$E" eval --ckpt "$T/m" --examples 16 --threads 1 --gemm-plan "$P"
expect_ok "forward replay" "$E" forward --ckpt "$T/m" --tokens 1,2,3 --out "$T/fw.bin" --gemm-plan "$P"
expect_ok "generate measure" "$E" generate --ckpt "$T/m" --prompt 1,2,3 --max-new 4 --gemm-plan measure
expect_ok "bench quick measure" "$E" bench train --quick --mixer longhorn --gemm-plan measure --threads 1 --json "$T/bench.jsonl"
grep -q '"gemm_plan_shapes": *[1-9]' "$T/bench.jsonl" && ok || bad "bench: the rows do not count the plan's shapes"
grep -q '"gemm_plan": *"measure"' "$T/bench.jsonl" && ok ||
    bad "bench: the rows do not record the gemm plan"

# bad values and bad files
expect_fail "bad spec" "--gemm-plan: expected fixed, measure or a plan file, got \"fastest\"" \
    "$E" train "${tiny[@]}" --gemm-plan fastest --out "$T/x"
printf '{"eidetic_gemm_plan": 1, "threads": 1, "entries": [{"precision": "fp32"}]}' > "$T/badplan.json"
expect_fail "bad plan file" "gemm plan .*badplan.json: entry 0: \"ta\": missing" "$E" eval --ckpt "$T/m" --gemm-plan "$T/badplan.json"
printf 'not json' > "$T/notjson.json"
expect_fail "not json" "gemm plan .*notjson.json: not valid JSON" "$E" forward --ckpt "$T/m" --tokens 1 --out "$T/fw2.bin" --gemm-plan "$T/notjson.json"
[ -e "$T/x" ] && bad "a refused --gemm-plan still created the run directory" || ok

summary gemm_plan
