#!/usr/bin/env bash
# Test-only Python references in .venv (never a run-time need of flab):
# HF tokenizers, safetensors, numpy.  Made over Debian's python3 with
# --system-site-packages so Debian's python3-torch is visible where installed.
set -euo pipefail
VENV=${FLAB_VENV:-.venv}
STAMP=$VENV/.flab-reqs-v3
REQS="tokenizers==0.19.1 safetensors==0.4.3 numpy==1.26.4 pycocoevalcap==1.2"
[ -f "$STAMP" ] && exit 0
PY=/usr/bin/python3; [ -x $PY ] || PY=python3
$PY -m venv --system-site-packages "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check $REQS
# transformers/PEFT references for the model checks run on Debian's torch 1.13
# (python3-torch); --no-deps keeps pip from pulling a 5 GB PyPI torch.
if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check transformers==4.40.2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps peft==0.10.0 accelerate==0.29.3
fi
touch "$STAMP"
