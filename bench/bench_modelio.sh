#!/usr/bin/env bash
# bench/bench_modelio.sh: safetensors write/read throughput of flab against
# the reference `safetensors` package on the same synthetic checkpoint.
#   BUILD=build bench/bench_modelio.sh [MB]     (default 256)
set -eu
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-$PWD/.venv/bin/python}
mb=${1:-256}
tmp=$(mktemp -d /tmp/flab-bench-st-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "== flab ($mb MB BF16, 64 tensors)"
"$BUILD/bench/bench_safetensors" "$tmp/flab" "$mb"
rm -rf "$tmp/flab"
echo "== safetensors $("$PYTHON" -c 'import safetensors; print(safetensors.__version__)') (numpy, same tensors as uint16)"
"$PYTHON" - "$tmp" "$mb" <<'PY'
import os, sys, time
import numpy as np
from safetensors.numpy import save_file, load_file
d, mb = sys.argv[1], int(sys.argv[2])
n = 64
per = mb * 1000000 // n // 2 // 1024 * 1024
x = (np.arange(per, dtype=np.uint64) * 2654435761 >> 16).astype(np.uint16).reshape(-1, 1024)
t = {f"model.layers.{i}.mlp.up_proj.weight": x for i in range(n)}
total = n * per * 2 / 1e6
t0 = time.time()
save_file(t, f"{d}/py.safetensors", metadata={"format": "pt"})
fd = os.open(f"{d}/py.safetensors", os.O_RDONLY); os.fsync(fd); os.close(fd)
print(f"write_single_MBps {total / (time.time() - t0):.0f} MB/s (with fsync)")
t0 = time.time()
r = load_file(f"{d}/py.safetensors")
s = sum(int(v.view(np.uint64).sum()) for v in r.values())
print(f"read_single_MBps {total / (time.time() - t0):.0f} MB/s (load_file copies)")
PY
