#!/usr/bin/env bash
# bench/gemm_plan.sh — training step time with --gemm-plan fixed (OpenBLAS for every fp32 product)
# against --gemm-plan measure (the fastest library per shape, timed during the warm-up steps), per mixer
# and configuration (docs/performance.md "Choosing the library per shape"). Each pair runs back to back
# (fixed, then measure) so both see the same machine; ORDER=reverse runs measure first, to see whether
# the order matters on a loaded machine.
#   bash bench/gemm_plan.sh [BUILD] [MIXERS] [CONFIGS] [PRECISION]
#   e.g. bash bench/gemm_plan.sh build longhorn,mamba2,gla A-d128,A-d256,B-d512 fp32
# THREADS (default: all cores) by environment.
set -eu
source "$(dirname "$0")/train_configs.sh"
E=${1:-build}/eidetic
MIXERS=${2:-longhorn,mamba,mamba2,gla,attn,swa,hawk,gated-ssm}
CONFIGS=${3:-A-d128,A-d256,B-d512}
PREC=${4:-fp32}
TH=()
[ -n "${THREADS:-}" ] && TH=(--threads "$THREADS")
PLANS="fixed measure"
[ "${ORDER:-}" = reverse ] && PLANS="measure fixed"
J=$(mktemp); trap 'rm -f "$J"' EXIT
for cfg in ${CONFIGS//,/ }; do
    a=($(train_config_args "$cfg")) || { echo "bench/gemm_plan.sh: unknown config $cfg (A-d128, A-d256, B-d512)" >&2; exit 1; }
    for mx in ${MIXERS//,/ }; do
        for plan in $PLANS; do
            "$E" bench train --mixer "$mx" "${a[@]}" --vocab 8192 --precision "$PREC" --gemm-plan "$plan" "${TH[@]}" \
                --json "$J" --no-plots --out "$(dirname "$J")" > /dev/null 2>&1 ||
                { echo "bench/gemm_plan.sh: $cfg $mx $plan failed" >&2; exit 1; }
        done
    done
done
/usr/bin/python3 - "$J" <<'PY'
import json, sys
rows = [r for r in (json.loads(l) for l in open(sys.argv[1]) if l.strip()) if r.get("suite") != "peak" and "d_model" in r]
by = {}
for r in rows:
    cfg = {128: "A-d128", 256: "A-d256", 512: "B-d512"}.get(r["d_model"], "d%d" % r["d_model"])
    by.setdefault((cfg, r["mixer"]), {})[r.get("gemm_plan", "fixed")] = r
print("| config | mixer | precision | fixed step ms | measure step ms | speed-up | fixed MFU % | measure MFU % |")
print("|---|---|---|---:|---:|---:|---:|---:|")
for (cfg, mx), p in by.items():
    if "fixed" not in p or "measure" not in p: continue
    f, m = p["fixed"], p["measure"]
    print("| %s | %s | %s | %.1f | %.1f | %.2fx | %.1f | %.1f |" % (cfg, mx, f["precision"], f["step_ms"], m["step_ms"],
          f["step_ms"] / m["step_ms"], f["mfu_pct"], m["mfu_pct"]))
PY
