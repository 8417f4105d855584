#!/usr/bin/env bash
# Layering rules of the source tree (docs/design.md): data flows cli -> train/eval -> model -> layers
# -> kernels -> core, and options belong to layers.
#   R1  no file under src/kernels includes "layers/..." or "model/..."
#   R2  no file under src/layers includes "model/..."
#   R3  outside src/layers, nothing routes by mixer name: no strcmp/strncmp/strstr that compares with
#       a mixer name (a string literal naming a registered mixer), and no string literal made only of
#       mixer names ("swa", "longhorn,mamba", "attn+swa"): mixer lists come from the registry
#       (layer_count/layer_at) and per-mixer behaviour from LayerOps.options. Allowed: the preset
#       table of src/train/train_cfg.c (presets name their layers) and comments. Help text is
#       never matched (it holds other words besides mixer names).
#   R4  tools sit on the library: no file under src/tools includes "model/...", "layers/...",
#       "train/...", "tasks/...", "kernels/...", "data/..." or "core/runtime.h"; they use the public
#       include/eidetic.h (and the shared helpers: io/files.h, io/opts.h, core/common.h, tools/*.h)
# Mixer names are read from the layer files (.name = "..."), so a new mixer is covered unchanged.
# Each rule is then proven to fail on a violation planted in a temporary copy of src/.
set -u
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"

# strip_code FILE: "LINE:code" per line, comments blanked (block comments across lines too) and, in
# train_cfg.c, the preset table blanked
strip_code() {
    awk -v preset="$([ "${1##*/}" = train_cfg.c ] && echo 1 || echo 0)" '
        { line = $0
          if (inc) { if (match(line, /\*\//)) { line = substr(line, RSTART + 2); inc = 0 } else line = "" }
          while (match(line, /\/\*/)) {
              pre = substr(line, 1, RSTART - 1); rest = substr(line, RSTART + 2)
              if (match(rest, /\*\//)) line = pre " " substr(rest, RSTART + 2)
              else { line = pre; inc = 1 }
          }
          sub(/\/\/.*/, "", line)
          if (preset && line ~ /static const Preset presets\[\] = \{/) intable = 1
          if (intable) { if (line ~ /^\};/) intable = 0; line = "" }
          printf "%d:%s\n", NR, line }' "$1"
}

# check SRC: prints one line per violation ("R<n> file:line: text"); returns 0 iff none
check() {
    local src=$1 names alt f hits="$T/hits.$$"
    # R1, R2
    grep -rnE '^\s*#\s*include\s+"(layers|model)/' "$src/kernels" | sed "s|^$src/|R1 |" > "$hits"
    grep -rnE '^\s*#\s*include\s+"model/' "$src/layers" | sed "s|^$src/|R2 |" >> "$hits"
    # R4
    grep -rnE '^\s*#\s*include\s+"((model|layers|train|tasks|kernels|data)/|core/runtime\.h")' "$src/tools" |
        sed "s|^$src/|R4 |" >> "$hits"
    # R3: mixer names from the layer files
    names=$(grep -hoE '\.name\s*=\s*"[a-z0-9_-]+"' "$src"/layers/*.c | sed -E 's/.*"(.*)"/\1/' | sort -u)
    [ -n "$names" ] || { echo "R3 no mixer names found in $src/layers" >&2; return 1; }
    alt=$(printf '%s\n' $names | paste -sd'|')
    local lit="\"($alt)([,+]($alt))*\""                    # a literal made only of mixer names
    local cmp="(strn?cmp|strstr)\([^;]*\"($alt)\""          # a comparison with a mixer name
    # io/hf_config.c is exempt: it translates a foreign format whose model_type names the mixer
    # (Hugging Face "mamba"/"mamba2" → our layer names), docs/lm.md "Published checkpoints".
    for f in $(find "$src" -name '*.[ch]' ! -path "$src/layers/*" ! -path "$src/io/hf_config.c" | sort); do
        strip_code "$f" | grep -E -e "$lit" -e "$cmp" | sed "s|^|R3 ${f#$src/}:|" >> "$hits"
    done
    cat "$hits" >&2
    [ ! -s "$hits" ]
}

SRC="$ROOT/src"
if check "$SRC" 2>"$T/violations"; then ok; else bad "layering violations in src/:"; cat "$T/violations"; fi

# every rule fails on a planted violation (in a copy)
plant() { # plant NAME RULE FILE TEXT: append TEXT to FILE of a fresh copy; check must fail naming RULE
    local name=$1 rule=$2 file=$3 text=$4
    rm -rf "$T/src" && cp -r "$SRC" "$T/src"
    printf '%s\n' "$text" >> "$T/src/$file"
    if check "$T/src" 2>"$T/v"; then bad "$name: planted violation not found"
    elif grep -q "^$rule " "$T/v"; then ok
    else bad "$name: reported as something else: $(head -2 "$T/v")"; fi
}
plant "kernel includes a layer header" R1 kernels/seq.h '#include "layers/layer.h"'
plant "kernel includes a model header" R1 kernels/cpu/xent.c '#include "model/model.h"'
plant "layer includes a model header" R2 layers/mlp.c '#include "model/config.h"'
plant "strcmp on a mixer name (train)" R3 train/train_cfg.c 'static int is_swa(const char *mixer) { return !strcmp(mixer, "swa"); }'
plant "strcmp on a mixer name (model)" R3 model/model.c 'static int is_lh(const LayerCfg *l) { return strcmp(l->mixer, "longhorn") == 0; }'
plant "strstr on a mixer name (scorecard)" R3 tools/scorecard.c 'static int has_attn(const char *s) { return strstr(s, "attn") != 0; }'
plant "hard-coded mixer list (bench)" R3 tools/cmd_bench.c 'static const char *const every_mixer = "longhorn,mamba,mamba2,gla,attn,swa";'
plant "hybrid spec literal (cli)" R3 tools/cmd_scorecard.c 'static const char *const hybrid = "longhorn+swa";'
plant "tool includes the model" R4 tools/cmd_bench.c '#include "model/model.h"'
plant "tool includes the trainer" R4 tools/scorecard.c '#include "train/trainer.h"'
plant "tool header includes a layer header" R4 tools/scorecard.h '#include "layers/layer.h"'
plant "tool includes a task" R4 tools/cmd_scorecard.c '  #  include "tasks/task.h"'
plant "tool includes a kernel" R4 tools/spawn.c '#include "kernels/seq.h"'
plant "tool includes a data source" R4 tools/cmd_bench.c '#include "data/source.h"'
plant "tool includes the runtime" R4 tools/cmd_bench.c '#include "core/runtime.h"'
# allowed: comments, help text, the preset table
rm -rf "$T/src" && cp -r "$SRC" "$T/src"
printf '%s\n' '/* e.g. strcmp(l->mixer, "swa") in a comment */' 'static const char *const help_text = "train longhorn and swa layers";' \
    >> "$T/src/tools/cmd_bench.c"
if check "$T/src" 2>"$T/v"; then ok; else bad "a comment or help text was reported: $(head -2 "$T/v")"; fi

# options belong to layers: a swa layer without --window takes its default (64), and each flag reaches
# only the layers that declare it (LayerOps.options)
RUN="--steps 3 --batch 4 --eval-examples 8 --threads 2 --quiet"
expect_ok "train --layers longhorn,swa (no --window)" "$E" train --layers longhorn,swa $RUN --out "$T/lhswa"
cfg=$(tr -d '[:space:]' < "$T/lhswa/config.json" 2>/dev/null)
printf '%s' "$cfg" | grep -qE '\{"mixer":"swa"[^}]*"window":64' && ok || bad "swa layer without its default window 64: $cfg"
printf '%s' "$cfg" | grep -qE '\{"mixer":"longhorn"[^}]*"window"' && bad "longhorn layer got a window: $cfg" || ok
expect_ok "train --layers longhorn,swa --window 16 --num-heads 2" "$E" train --layers longhorn,swa --window 16 \
    --num-heads 2 --d-model 32 $RUN --out "$T/lhswa16"
cfg=$(tr -d '[:space:]' < "$T/lhswa16/config.json" 2>/dev/null)
printf '%s' "$cfg" | grep -qE '\{"mixer":"swa"[^}]*"num_heads":2[^}]*"window":16' && ok || bad "--window/--num-heads did not reach swa: $cfg"
printf '%s' "$cfg" | grep -qE '\{"mixer":"longhorn"[^}]*("window"|"num_heads")' && bad "longhorn got swa's options: $cfg" || ok

summary layering
