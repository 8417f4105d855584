#!/usr/bin/env bash
# `eidetic bench`: a --quick run on tiny sizes (seconds) writes the tables, JSON rows and the plot
# data, every row's fields are present and sane (no timing assertions), --json appends one config's
# rows without touching a results directory, and bad flags fail with a clear one-line error.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"

# ---- help ----
"$E" bench --help >"$T/help" 2>&1 && grep -q "usage: eidetic bench" "$T/help" && ok || bad "bench --help"
for w in peak train decode scaling --quick --json --mixer --d-model --seq-len --loss; do
    grep -q -e "$w" "$T/help" && ok || bad "--help does not mention $w"
done
"$E" --help | grep -q "bench" && ok || bad "eidetic --help lists bench"

# ---- a quick run: two mixers, every suite ----
R="$T/res"
if "$E" bench --quick --mixer longhorn,swa --threads 1 --out "$R" --json "$T/rows.jsonl" >"$T/out" 2>"$T/err"; then ok
else bad "bench --quick failed: $(tail -3 "$T/err")"; fi
for h in "## Peak" "## Training step" "## Decoding" "## Scaling" "MFU" "RSS / planned" "% of bound" "alloc in step"; do
    grep -qF "$h" "$T/out" && ok || bad "tables lack '$h'"
done
[ -s "$R/bench.md" ] && cmp -s "$R/bench.md" "$T/out" && ok || bad "bench.md differs from the tables on stdout"
[ -s "$R/bench.jsonl" ] && cmp -s "$R/bench.jsonl" "$T/rows.jsonl" && ok || bad "bench.jsonl differs from --json FILE"
[ -s "$R/scaling.dat" ] && [ -s "$R/scaling.gp" ] && ok || bad "no scaling plot data"
grep -q "left)" "$T/err" && ok || bad "no progress lines with the time left on stderr"

# every row parses and is sane; prints one line per failed check
/usr/bin/python3 - "$R/bench.jsonl" >"$T/check" 2>&1 <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def by(s): return [r for r in rows if r.get("suite") == s]
def need(cond, msg):
    if not cond: print("bad:", msg)
peak = by("peak")
need(any(r["kind"] == "sgemm" and r["gflops"] > 0 for r in peak), "no sgemm peak row")
need(any(r["kind"] == "bandwidth" and r["gbs"] > 0 for r in peak), "no bandwidth row")
tr = by("train")
need(len(tr) == 4, f"train rows: {len(tr)} (want 2 configs x 2 mixers)")
for r in tr:
    w = f"train {r['label']} {r['mixer']}"
    need(r["step_ms"] > 0 and r["tokens_per_s"] > 0, f"{w}: step_ms / tokens_per_s")
    need(r["gflop_per_step"] > 0 and r["gflops"] > 0, f"{w}: gflop")
    need(0 < r["mfu_pct"] <= 100, f"{w}: mfu_pct {r['mfu_pct']}")
    need(r["planned_mb"] > 0 and r["rss_mb"] > 0 and r["mem_ratio"] > 0, f"{w}: memory")
    need(r["labels_per_step"] > 0 and r["params"] > 0, f"{w}: labels / params")
    need(r["shards"] >= 1 and r["batch"] % r["shards"] == 0, f"{w}: shards {r.get('shards')}")
need({r["loss"] for r in tr} == {"mqar", "lm"}, "train rows lack an mqar or lm config")
de = by("decode")
need(len(de) == 4 and {r["batch"] for r in de} == {1, 4}, f"decode rows: {[(r['mixer'], r['batch']) for r in de]}")
for r in de:
    need(r["step_ms"] > 0 and r["tokens_per_s"] > 0 and r["bytes_per_step"] > 0, f"decode {r['mixer']}: numbers")
    need(r["bound_tokens_per_s"] > 0 and r["pct_of_bound"] > 0, f"decode {r['mixer']}: bound")
    need(r["gemv_gbs"] > 0 and r["achieved_gbs"] > 0 and r["pct_of_gemv"] > 0, f"decode {r['mixer']}: gemv ceiling")
    need(r["alloc_in_step"] in ("none", "yes"), f"decode {r['mixer']}: alloc_in_step")
    need(r["steps_timed"] >= 20, f"decode {r['mixer']}: {r['steps_timed']} timed steps")
for s in ("scaling-train", "scaling-decode"):
    sc = by(s)
    need(sorted((r["mixer"], r["label"]) for r in sc) ==
         sorted((m, f"T{t}") for m in ("longhorn", "swa") for t in (256, 1024)), f"{s} rows")
    need(all(r["us_per_token"] > 0 for r in sc), f"{s}: us_per_token")
print(f"{len(rows)} rows checked")
EOF
if grep -q "rows checked" "$T/check" && ! grep -q "^bad" "$T/check"; then ok; else bad "rows: $(cat "$T/check")"; fi

# ---- one configuration, --json only: appends its rows, writes no results directory ----
n0=$(wc -l < "$T/rows.jsonl")
if (cd "$T" && "$E" bench train --quick --mixer gla --d-model 16 --n-layer 1 --seq-len 32 --batch 2 --loss lm \
      --threads 1 --peak-gflops 100 --bw-gbs 10 --json "$T/rows.jsonl" >"$T/out1" 2>"$T/err1"); then ok
else bad "single config: $(tail -3 "$T/err1")"; fi
[ "$(wc -l < "$T/rows.jsonl")" -eq $((n0 + 1)) ] && ok || bad "--json did not append exactly one row"
tail -1 "$T/rows.jsonl" | grep -q '"mixer":"gla".*"seq_len":32.*"loss":"lm"' && ok || bad "the appended row is not the config asked for"
[ ! -e "$T/bench" ] && ok || bad "--json without --out wrote a results directory"
grep -q "d16 L1 ff0 T32 B2 lm" "$T/out1" && ok || bad "single-config row not labelled by its sizes"

# ---- --repeat: every train row in each pass, the median pass reported with all passes ----
if "$E" bench train --quick --mixer attn --repeat 3 --threads 1 --peak-gflops 100 --bw-gbs 10 --out "$T/rep" \
      >"$T/outr" 2>"$T/errr"; then ok; else bad "--repeat 3: $(tail -3 "$T/errr")"; fi
/usr/bin/python3 - "$T/rep/bench.jsonl" >"$T/checkr" 2>&1 <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tr = [r for r in rows if r["suite"] == "train"]
ps = [r for r in rows if r["suite"] == "train-pass"]
ok = len(tr) == 2 and len(ps) == 6 and all(r["passes"] == 3 and len(r["step_ms_passes"]) == 3 for r in tr)
for r in tr:
    mine = sorted(p["step_ms"] for p in ps if p["label"] == r["label"])
    ok = ok and r["step_ms"] == mine[1] and sorted(r["step_ms_passes"]) == mine
print("ok" if ok else f"bad: {len(tr)} rows, {len(ps)} pass rows: {tr}")
EOF
grep -qx ok "$T/checkr" && ok || bad "--repeat rows: $(cat "$T/checkr")"
grep -q "(pass 3/3)" "$T/errr" && grep -qF "passes ms" "$T/outr" && ok || bad "--repeat: no pass progress or column"
expect_fail "bad repeat" "--repeat: must be in" "$E" bench --repeat 0

# ---- decoding with a KV cache: no byte count, so no bound (null in the JSON, n/a in the table) ----
if "$E" bench decode --quick --mixer attn --threads 1 --bw-gbs 10 --out "$T/kv" >"$T/outk" 2>"$T/errk"; then ok
else bad "decode attn: $(tail -3 "$T/errk")"; fi
/usr/bin/python3 - "$T/kv/bench.jsonl" >"$T/checkk" 2>&1 <<'EOF'
import json, sys
de = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
de = [r for r in de if r.get("suite") == "decode"]
ok = len(de) == 2 and all(r["step_ms"] > 0 and r["bound_tokens_per_s"] is None and r["pct_of_bound"] is None
                          and r["bytes_per_step"] is None and r["pct_of_gemv"] is None for r in de)
print("ok" if ok else f"bad: {de}")
EOF
grep -qx ok "$T/checkk" && ok || bad "decode attn rows: $(cat "$T/checkk")"
grep -q "^| .*attn | 1 | .* | n/a | .* | n/a | n/a |" "$T/outk" && ok || bad "decode attn table: no n/a bound"

# ---- bad input: one clear line, non-zero exit ----
expect_fail "unknown suite" "unknown suite 'frob'" "$E" bench frob
expect_fail "bad number" "--steps: expected an integer, got 'x'" "$E" bench --steps x
expect_fail "bad float" "--min-time: expected a number" "$E" bench --min-time soon
expect_fail "negative threads" "--threads: must be in" "$E" bench --threads -1
expect_fail "unknown mixer" "--mixer: unknown mixer 'lstm'" "$E" bench --mixer lstm
expect_fail "bad loss" "--loss: expected mqar or lm" "$E" bench train --loss ce
expect_fail "bad kv-pairs" "--kv-pairs 30 with --seq-len 64" "$E" bench train --seq-len 64 --kv-pairs 30 --out "$T/x"
[ ! -e "$T/x" ] && ok || bad "a rejected configuration created its output directory"
expect_fail "unknown option" "unknown option --bogus" "$E" bench --bogus
expect_fail "missing value" "--steps needs a value" "$E" bench train --steps
expect_fail "suite after flags" "unexpected argument 'train'" "$E" bench --quick train

summary bench
