#!/usr/bin/env bash
# Speed of two builds measured in one run, alternating them so that the machine's slow spells hit
# both alike: the `eidetic bench` training rows of config A (d_model 128 and 256, every mixer) and
# the default training job's tokens/s. Prints a Markdown table of medians and NEW/OLD ratios
# (> 1 = NEW is faster for tokens/s; step ms ratios are NEW/OLD time, < 1 = NEW faster).
#   bash bench/compare_builds.sh OLD_BINARY NEW_BINARY [ROUNDS=3] [MIXERS=all]
# (NO_DEFAULT_JOB=1 skips the default-job rows.)
set -euo pipefail
old=${1:?usage: compare_builds.sh OLD_BINARY NEW_BINARY [ROUNDS] [MIXERS]}
new=${2:?usage: compare_builds.sh OLD_BINARY NEW_BINARY [ROUNDS] [MIXERS]}
rounds=${3:-3}
mixers=${4:-longhorn,mamba,mamba2,gla,attn,swa}
for b in "$old" "$new"; do [ -x "$b" ] || { echo "compare_builds: $b: not an executable" >&2; exit 1; }; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step_ms() { # binary mixer d_model → median step ms of one bench row
    local f="$tmp/row.json"
    rm -f "$f"
    "$1" bench train --mixer "$2" --d-model "$3" --repeat 1 --peak-gflops 300 --bw-gbs 50 --json "$f" --out "$tmp/out" --no-plots >/dev/null 2>&1
    python3 -c "import json,sys; r=[json.loads(l) for l in open('$f') if '\"suite\":\"train\"' in l.replace(' ','')]; print(round(r[-1]['step_ms'], 2))"
}
default_tps() { # binary → tokens/s of the default job over 300 steps (after the first 50)
    rm -rf "$tmp/run"
    "$1" train --steps 300 --eval-every 0 --out "$tmp/run" >/dev/null 2>&1
    python3 -c "
import json
r=[json.loads(l) for l in open('$tmp/run/metrics.jsonl')]
a=[x for x in r if x['step']==50][0]; b=r[-1]  # default job: batch 64 x 64 tokens
print(round((b['step']-a['step'])*64*64/(b['elapsed_s']-a['elapsed_s'])))"
}
median() { python3 -c "import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

echo "| row | OLD | NEW | NEW/OLD |"
echo "|---|---:|---:|---:|"
for d in 128 256; do
    for m in ${mixers//,/ }; do
        o=(); n=()
        for ((r = 0; r < rounds; r++)); do
            o+=("$(step_ms "$old" "$m" "$d")"); n+=("$(step_ms "$new" "$m" "$d")")
        done
        mo=$(median "${o[@]}"); mn=$(median "${n[@]}")
        printf '| A d%s %s step ms (runs: old %s; new %s) | %.2f | %.2f | %.3f |\n' "$d" "$m" "${o[*]}" "${n[*]}" "$mo" "$mn" \
            "$(python3 -c "print($mn/$mo)")"
    done
done
[ "${NO_DEFAULT_JOB:-0}" = 1 ] && exit 0
o=(); n=()
for ((r = 0; r < rounds; r++)); do o+=("$(default_tps "$old")"); n+=("$(default_tps "$new")"); done
mo=$(median "${o[@]}"); mn=$(median "${n[@]}")
printf '| default job tokens/s (runs: old %s; new %s) | %.0f | %.0f | %.3f |\n' "${o[*]}" "${n[*]}" "$mo" "$mn" \
    "$(python3 -c "print($mn/$mo)")"
