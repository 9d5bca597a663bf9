#!/usr/bin/env bash
# Checks the Debian packages flab builds against; installs the missing ones
# when it can (root + apt-get), otherwise says exactly what to install.
# With --test, also the test-only references and servers the suite starts
# (Debian's torch for transformers/PEFT checks, nginx, Slurm).
set -euo pipefail
PKGS="build-essential libsqlite3-dev libxxhash-dev xxhash libgit2-dev libinih-dev
      libopenblas-dev libpcre2-dev libutf8proc-dev libcjson-dev libcurl4-openssl-dev
      python3 python3-venv sqlite3 git jq"
TEST_PKGS="python3-torch python3-numpy nginx apache2-utils slurm-wlm munge"
[ "${1:-}" = --test ] && PKGS="$PKGS $TEST_PKGS"
# not_installed PKG...: sets MISSING to " p1 p2" for the ones not installed;
# one dpkg-query for all (one `dpkg -s` per package took 0.5 s of every `make demo`)
not_installed() {
  local installed p
  installed=" $(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null |
               awk '$2 == "installed" { printf "%s ", $1 }')"
  MISSING=""
  for p in "$@"; do
    case "$installed" in *" $p "*) ;; *) MISSING="$MISSING $p" ;; esac
  done
}
not_installed $PKGS; missing=$MISSING
# Optional test toolchains (MultiPL-E's ruby and kotlin, chromium for the
# report's render test): installed when we can, else their tests print SKIP.
if [ "${1:-}" = --test ]; then
  not_installed ruby kotlin chromium; opt_missing=$MISSING
  if [ -n "$opt_missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "flab: installing optional test toolchains:$opt_missing"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $opt_missing >/dev/null ||
        echo "flab: could not install$opt_missing; their tests will print SKIP" >&2
    else
      echo "flab: optional test toolchains missing:$opt_missing (their tests print SKIP;" \
           "sudo apt-get install -y --no-install-recommends$opt_missing)" >&2
    fi
  fi
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "flab: installing missing packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq $missing >/dev/null
else
  echo "flab: missing packages:$missing" >&2
  echo "flab: run: sudo apt-get install -y$missing" >&2
  exit 1
fi
