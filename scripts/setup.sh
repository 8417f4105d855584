#!/usr/bin/env bash
# Installs what eidetic needs on Debian/Ubuntu when it is missing (idempotent; quiet when all is there).
#   build:  gcc, g++, make, pkg-config, OpenBLAS (OpenMP build), cJSON, ICU (Unicode classes and NFC for
#           Hugging Face tokenizers), SentencePiece (libsentencepiece-dev: subword tokenizers)
#   tests:  python3 with torch + numpy (the independent reference implementations in tests/ref/)
#   plots:  gnuplot-nox (eidetic scorecard draws its plots with it)
#   fuzzing: clang (make fuzz / bench/fuzz.sh: libFuzzer; the test command's sanitizer pass uses gcc)
#   text:   zlib (eidetic prepare reads .gz), jargon-text (the Jargon File, public domain: the
#           embedded corpus of `eidetic train --preset lm-tiny`, docs/lm.md "Quick start")
#   MPI:    libopenmpi-dev, openmpi-bin (Open MPI: build/eidetic-mpi, multi-process training and its tests,
#           docs/distributed.md)
set -euo pipefail
pkgs=(gcc g++ make pkg-config libc6-dev libopenblas-openmp-dev libcjson-dev libicu-dev libsentencepiece-dev python3 python3-torch python3-numpy gnuplot-nox clang zlib1g-dev jargon-text libdnnl-dev libopenmpi-dev openmpi-bin)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "setup: missing packages (${missing[*]}) and no apt-get: install them with your package manager" >&2
        exit 1
    fi
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Minimal Docker images drop /usr/share/doc on install (/etc/dpkg/dpkg.cfg.d path-exclude): then
# unpack the package into eidetic's cache, where the lm-tiny preset also looks (src/cli/lm_tiny.c).
JARGON=/usr/share/doc/jargon-text/jargon.txt.gz
if [ ! -f "$JARGON" ]; then
    CACHE="${EIDETIC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eidetic}"
    if [ ! -f "$CACHE/jargon-text$JARGON" ]; then
        echo "setup: $JARGON is missing (docs excluded by dpkg?): unpacking jargon-text into $CACHE/jargon-text" >&2
        mkdir -p "$CACHE"
        (cd "$CACHE" && rm -f jargon-text_*.deb && apt-get download jargon-text >/dev/null &&
            dpkg -x jargon-text_*.deb jargon-text && rm -f jargon-text_*.deb) ||
            { echo "setup: could not fetch jargon-text: run 'cd $CACHE && apt-get download jargon-text && dpkg -x jargon-text_*.deb jargon-text'" >&2; exit 1; }
    fi
fi
