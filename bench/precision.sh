#!/usr/bin/env bash
# bench/precision.sh — training step time in fp32 against --precision bf16, per mixer, for configs
# A-d256 and B-d512 (docs/performance.md "Configurations" and "Mixed precision"); each pair runs back to
# back (fp32 then bf16) so both see the same machine. MFU is against the peak `eidetic bench` measures in
# the same process at the same precision (bf16 rows: the bf16 peak).
#   bash bench/precision.sh [BUILD] [MIXERS] [CONFIGS]
#   e.g. bash bench/precision.sh build longhorn,mamba A-d256,B-d512
# On a CPU without native bf16 the bf16 rows fall back to fp32 (and say so) unless EIDETIC_BF16_EMULATE=1
# is set, which measures oneDNN's emulation: correct numbers, not a speed anyone should use.
# GEMM_PLAN=measure runs both rows with --gemm-plan measure (the library per shape chosen by timing:
# in bf16 mode OpenBLAS / oneDNN fp32 are candidates too, so shapes where bf16 loses run in fp32).
set -eu
source "$(dirname "$0")/train_configs.sh"
E=${1:-build}/eidetic
MIXERS=${2:-longhorn,mamba,mamba2,gla,attn,swa,hawk,gated-ssm}
CONFIGS=${3:-A-d256,B-d512}
J=$(mktemp); trap 'rm -f "$J"' EXIT
for cfg in ${CONFIGS//,/ }; do
    a=($(train_config_args "$cfg")) || { echo "bench/precision.sh: unknown config $cfg (A-d128, A-d256, B-d512)" >&2; exit 1; }
    for mx in ${MIXERS//,/ }; do
        for p in fp32 bf16; do
            "$E" bench train --mixer "$mx" "${a[@]}" --vocab 8192 --precision "$p" ${GEMM_PLAN:+--gemm-plan "$GEMM_PLAN"} --json "$J" --no-plots \
                --out "$(dirname "$J")" > /dev/null 2>&1 || { echo "bench/precision.sh: $cfg $mx $p failed" >&2; exit 1; }
        done
    done
done
/usr/bin/python3 - "$J" <<'EOF'
import json, sys
rows = [r for r in (json.loads(l) for l in open(sys.argv[1]) if l.strip()) if r.get("suite") != "peak" and "d_model" in r]
by = {}
for r in rows:
    by.setdefault((r["d_model"], r["mixer"]), {})[r["precision"]] = r
measured = any(r.get("gemm_plan") == "measure" for r in rows)
extra = " bf16 run: shapes on oneDNN bf16 / all |" if measured else ""
print("| config | mixer | fp32 step ms | bf16 step ms | speed-up | fp32 MFU % | bf16 MFU % | fp32 peak GFLOP/s | bf16 peak GFLOP/s |" + extra)
print("|---|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if measured else ""))
if not any("bf16" in p for p in by.values()):
    print("no bf16 rows: this CPU has no native bf16, so --precision bf16 ran fp32 (EIDETIC_BF16_EMULATE=1 measures the emulation)")
for (d, mx), p in by.items():
    if "fp32" not in p or "bf16" not in p: continue
    f, b = p["fp32"], p["bf16"]
    cfg = "A-d256" if d == 256 else "B-d512" if d == 512 else "d%d" % d
    plan = " %s / %s |" % (b.get("gemm_plan_onednn_bf16", "-"), b.get("gemm_plan_shapes", "-")) if measured else ""
    print("| %s | %s | %.1f | %.1f | %.2fx | %.1f | %.1f | %.1f | %.1f |%s" % (cfg, mx, f["step_ms"], b["step_ms"],
          f["step_ms"] / b["step_ms"], f["mfu_pct"], b["mfu_pct"], f["peak_gflops"], b["peak_gflops"], plan))
EOF
