#!/usr/bin/env bash
# demo.sh: `make demo`.  Runs the example flabfile.ini (command targets) on a
# copy in a temporary directory and shows the engine's contract: a first
# build, a no-op rebuild, a one-parameter change that rebuilds only its
# dependents, `flab status` / `explain` / `show`, and a revert restored from
# the cache without running anything.  FLAB_DEMO_DIR=dir keeps the copy there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FLAB=${FLAB:-$here/flab}
dir=${FLAB_DEMO_DIR:-$(mktemp -d /tmp/flab-demo.XXXXXX)}
mkdir -p "$dir"
cp "$here/flabfile.ini" "$dir/flabfile.ini"
ln -sfn "$here/data" "$dir/data"
cd "$dir"
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "the target graph" "$FLAB" graph
step "first build: every target runs" "$FLAB" build -j2
step "second build: nothing to do" "$FLAB" build
step "the result" cat "$("$FLAB" path report)/report.txt"

sed -i 's/head -n 500/head -n 300/' flabfile.ini
echo
echo "== change one parameter: the vocabulary keeps 300 words instead of 500"
step "status: vocab and what depends on it are stale" "$FLAB" status
step "explain names what changed" "$FLAB" explain vocab
step "dry run" "$FLAB" build -n
step "build: only vocab, coverage and report run" "$FLAB" build
step "the new result" cat "$("$FLAB" path report)/report.txt"
step "show: artifact, key, files, metrics, provenance" "$FLAB" show report

sed -i 's/head -n 300/head -n 500/' flabfile.ini
echo
echo "== revert the change"
step "build: restored from the cache, nothing runs" "$FLAB" build
step "provenance log (latest 4 builds)" "$FLAB" log -n 4
echo
echo "demo directory: $dir (cache in $dir/.flab)"
