#!/usr/bin/env bash
# tests/test_ops_scalar.sh: the CPU op tests again with the AVX2 kernels
# switched off (FLAB_CPU_NO_AVX2=1), so the portable fallback kernels are
# checked against the reference ops too (same tolerances as test_ops.c).
set -u
FLAB_CPU_NO_AVX2=1 "$FLAB_BUILD/tests/test_ops" | sed -E 's/^(PASS|FAIL) /\1 scalar_/'
exit "${PIPESTATUS[0]}"
