#!/usr/bin/env bash
# Test-only Python references in .venv (never a run-time need of flab):
# HF tokenizers, safetensors, numpy.  Made over Debian's python3 with
# --system-site-packages so Debian's python3-torch is visible where installed.
set -euo pipefail
VENV=${FLAB_VENV:-.venv}
STAMP=$VENV/.flab-reqs-v1
REQS="tokenizers==0.19.1 safetensors==0.4.3 numpy==1.26.4"
[ -f "$STAMP" ] && exit 0
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
$PY -m venv --system-site-packages "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check $REQS
touch "$STAMP"
