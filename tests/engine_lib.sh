# tests/engine_lib.sh: helpers for the end-to-end shell tests of the real
# ./flab (tests/test_engine_*.sh, the rule tests, ...), sourced from the
# repository root.  Each check prints "PASS name" or "FAIL name: why"; every
# test runs in its own temporary directory $ROOT (/tmp/flab-e2e.XXXXXX),
# removed at exit; $REPO is the repository root.
set -u
FLAB=${FLAB:-$PWD/build/flab}
case "$FLAB" in /*) ;; *) FLAB=$PWD/$FLAB ;; esac
REPO=$PWD
export FLAB_PROGRESS=plain
unset FLAB_CACHE FLAB_FILE
ROOT=$(mktemp -d /tmp/flab-e2e.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
FAILS=0

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; FAILS=$((FAILS + 1)); }
# check NAME CONDITION-COMMAND... : PASS when the command succeeds.
check() { local n=$1; shift; if "$@"; then pass "$n"; else fail "$n" "$*"; fi; }

# new_project NAME: a fresh directory, cd into it.
new_project() { mkdir -p "$ROOT/$1" && cd "$ROOT/$1" || exit 1; }

# ran: the targets that ran since the last reset (commands append to ran.log).
ran() { sort ran.log 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
reset_ran() { : > ran.log; }
contains() { case "$1" in *"$2"*) return 0 ;; *) return 1 ;; esac; }
finish() { [ "$FAILS" = 0 ]; exit $?; }
