#!/usr/bin/env bash
# scripts/cite_docs.sh: --check passes on the repository (every citation points at an existing docs/
# section), and fails, naming file, line and reason, on bad citations planted in a temporary copy:
# a bare spec name, a shared/spec path, a section missing from docs/, a docs file that does not
# exist. The rewrite turns the bare/path citations into docs/ ones, is idempotent, and leaves
# non-citations (an output file named results.md) alone.
# The planted citations are assembled at run time so that this file itself holds none.
source "$(dirname "$0")/../cli_lib.sh" "${1:-build}"
S="$ROOT/scripts/cite_docs.sh"

# ---- the repository itself ----
if out=$(bash "$S" --check "$ROOT" 2>&1); then ok; else bad "repository --check: $(printf '%s\n' "$out" | head -5)"; fi

# ---- a temporary copy (docs/ and the scanned trees only) ----
C="$T/repo"
mkdir -p "$C"
(cd "$ROOT" && cp -r docs src tests bench scripts "$C"/) 2>/dev/null
rm -f "$C/tests/cli/cite_docs.sh"
bash "$S" --check "$C" >/dev/null 2>&1 && ok || bad "copy --check before planting"

L=layers; TK=tasks; R=results; SP=shared/spec; SS='§'
f="$C/src/layers/planted.c"
{
    printf '/* first line */\n'
    printf '/* bare name: %s.md %s2.2 */\n' "$L" "$SS"                     # line 2
    printf '/* spec path: ../../%s/%s.md %s1.1 */\n' "$SP" "$TK" "$SS"     # line 3
    printf '/* missing section: docs/%s.md %s2.2, %s99.9 */\n' "$L" "$SS" "$SS" # line 4
    printf '/* missing file: docs/%s.md %s1 */\n' nosuchdoc "$SS"          # line 5
    printf '/* not a citation: OUT/%s.md and %s.md table */\n' "$R" "$R"   # line 6
} >"$f"

out=$(bash "$S" --check "$C" 2>&1); rc=$?
[ $rc -ne 0 ] && ok || bad "--check passed with planted bad citations"
for want in "planted.c:2: citation does not point at docs/" "planted.c:3: citation does not point at docs/" \
            "planted.c:4: docs/$L.md has no section 99.9" "planted.c:5: docs/nosuchdoc.md does not exist"; do
    printf '%s\n' "$out" | grep -qF "$want" && ok || bad "--check output lacks '$want': $out"
done
printf '%s\n' "$out" | grep -q 'planted.c:6:' && bad "--check flagged a non-citation: $out" || ok
printf '%s\n' "$out" | grep -q 'planted.c:4: docs/layers.md has no section 2.2' && bad "existing section 2.2 flagged" || ok

# ---- rewrite: fixes lines 2-3, keeps 4-6, idempotent ----
bash "$S" "$C" >/dev/null 2>&1 || bad "rewrite exited non-zero"
[ "$(sed -n 2p "$f")" = "/* bare name: docs/$L.md ${SS}2.2 */" ] && ok || bad "bare name not rewritten: $(sed -n 2p "$f")"
[ "$(sed -n 3p "$f")" = "/* spec path: docs/$TK.md ${SS}1.1 */" ] && ok || bad "spec path not rewritten: $(sed -n 3p "$f")"
[ "$(sed -n 6p "$f")" = "/* not a citation: OUT/$R.md and $R.md table */" ] && ok || bad "non-citation changed: $(sed -n 6p "$f")"
cp "$f" "$T/once"
bash "$S" "$C" >/dev/null 2>&1
cmp -s "$f" "$T/once" && ok || bad "rewrite is not idempotent"
out=$(bash "$S" --check "$C" 2>&1)
printf '%s\n' "$out" | grep -q 'does not point at docs/' && bad "citations left after rewrite: $out" || ok

# ---- only the two unfixable lines remain; removing them makes --check pass again ----
sed -i '4,5d' "$f"
bash "$S" --check "$C" >/dev/null 2>&1 && ok || bad "--check still fails after removing the bad lines: $(bash "$S" --check "$C" 2>&1 | head -3)"

summary cite_docs
