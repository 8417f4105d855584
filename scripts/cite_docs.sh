#!/usr/bin/env bash
# cite_docs.sh — keep every spec citation in the sources pointing at this repository's own docs/.
#
#   scripts/cite_docs.sh [ROOT]           rewrite citations in place (idempotent)
#   scripts/cite_docs.sh --check [ROOT]   rewrite nothing; list every bad citation, exit 1 if any
#
# ROOT defaults to the repository this script lives in. Files scanned: everything under src/, tests/,
# bench/ and scripts/ (plus the top-level Makefile and README.md), except this script.
#
# A citation names one of the spec files: layers.md, tasks.md, birdie.md, statex.md, architecture.md
# (any mention), results.md (only when a section sign follows: `results.md` alone is also the name of
# the scorecard's report file), or any path ending in shared/spec/NAME.md.
# The rewrite turns `NAME.md` and `…shared/spec/NAME.md` into `docs/NAME.md`; a name already preceded
# by a path (`docs/NAME.md`, `OUT/results.md`) is left as it is, so running it twice changes nothing.
# --check reports, one `file:line: why` per line:
#   - a citation that does not start with docs/ (what the rewrite would change);
#   - a docs/NAME.md citation whose file does not exist in ROOT/docs;
#   - a section number that has no heading in that file. The sections checked are the ones written
#     right after the file name: `docs/layers.md §1.2, §1.4`, `§2 and §3`, `§0.7(4)` (→ 0.7), `§5.`
#     (→ 5). A heading `## 3.` or `### 3.4 Title` defines sections 3 and 3.4.
set -u
mode=rewrite
if [ "${1:-}" = --check ]; then mode=check; shift; fi
case "${1:-}" in -*) echo "usage: $0 [--check] [ROOT]" >&2; exit 2 ;; esac
ROOT=${1:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"}
[ -d "$ROOT/docs" ] || { echo "error: $ROOT/docs: no docs/ directory (ROOT must be the repository root)" >&2; exit 2; }
cd "$ROOT" || exit 2

files=()
while IFS= read -r -d '' f; do
    case $f in ./scripts/cite_docs.sh) continue ;; esac
    grep -Iq . "$f" 2>/dev/null || continue # skip binary and empty files
    files+=("$f")
done < <(find ./src ./tests ./bench ./scripts ./Makefile ./README.md -type f \
             -not -path '*/__pycache__/*' -print0 2>/dev/null)
[ ${#files[@]} -gt 0 ] || { echo "error: no source files found under $ROOT" >&2; exit 2; }

MODE=$mode perl -CSD -Mutf8 -e '
use strict; use warnings;
my $mode = $ENV{MODE};
my $names = qr/(?:layers|tasks|birdie|statex|architecture)/;
# a citation that is not (yet) under docs/: a bare name, or a path ending in shared/spec/NAME.md
my $spec_path = qr{(?:[\w.\-]*/)*shared/spec/((?:$names|results))\.md};
my $bare      = qr{(?<![\w/.\-])($names)\.md|(?<![\w/.\-])(results)\.md(?=\s*§)};
my %sections; # docs file -> { section -> 1 }, read on first use
sub sections_of {
    my ($name) = @_;
    return $sections{$name} if exists $sections{$name};
    my %s; my $path = "docs/$name.md";
    if (open(my $fh, "<", $path)) {
        while (<$fh>) { $s{$1} = 1 if /^#{1,6}\s+([0-9]+(?:\.[0-9]+)*)\.?(?:\s|$)/; }
        close $fh;
        $sections{$name} = \%s;
    } else { $sections{$name} = undef; }
    return $sections{$name};
}
my $bad = 0;
for my $f (@ARGV) {
    open(my $fh, "<", $f) or die "error: $f: $!\n";
    my @lines = <$fh>; close $fh;
    (my $show = $f) =~ s{^\./}{};
    if ($mode eq "rewrite") {
        my $changed = 0;
        for (@lines) {
            my $old = $_;
            s{$spec_path}{docs/$1.md}g;
            s{$bare}{"docs/" . ($1 // $2) . ".md"}ge;
            $changed++ if $_ ne $old;
        }
        if ($changed) {
            open(my $out, ">", $f) or die "error: $f: $!\n";
            print $out @lines; close $out;
            print "$show: $changed line(s) rewritten\n";
        }
        next;
    }
    my $n = 0;
    for my $line (@lines) {
        $n++;
        while ($line =~ /$spec_path|$bare/g) {
            my $hit = $&;
            print "$show:$n: citation does not point at docs/: \"$hit\"\n"; $bad++;
        }
        while ($line =~ /(?<![\w.\-])docs\/([\w\-]+)\.md((?:\s*(?:,|\/|\band\b|\bor\b|\+)?\s*§\s*[0-9]+(?:\.[0-9]+)*)*)/g) {
            my ($name, $chain) = ($1, $2);
            next unless $name =~ /^(?:layers|tasks|birdie|statex|architecture|results)$/ || $chain ne "";
            my $secs = sections_of($name);
            if (!defined $secs) { print "$show:$n: docs/$name.md does not exist\n"; $bad++; next; }
            while ($chain =~ /§\s*([0-9]+(?:\.[0-9]+)*)/g) {
                next if $secs->{$1};
                print "$show:$n: docs/$name.md has no section $1\n"; $bad++;
            }
        }
    }
}
if ($mode eq "check") {
    if ($bad) { print STDERR "error: $bad bad citation(s); run scripts/cite_docs.sh to rewrite, and add missing sections to docs/\n"; exit 1; }
    print "cite_docs: all citations point at existing docs/ sections\n";
}
' -- "${files[@]}"
