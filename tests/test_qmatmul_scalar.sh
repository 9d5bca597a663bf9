#!/usr/bin/env bash
# tests/test_qmatmul_scalar.sh: the quantized matmul tests again with the
# AVX2 kernels switched off (FLAB_CPU_NO_AVX2=1, which also turns off the
# AVX-512 VNNI path): the portable kernels are checked against the
# reference too (same tolerances as test_qmatmul.c and test_awq_vnni.c).
set -u
rc=0
for t in test_qmatmul test_awq_vnni; do
  FLAB_CPU_NO_AVX2=1 "$FLAB_BUILD/tests/$t" | sed -E 's/^(PASS|FAIL|SKIP) /\1 scalar_/'
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
done
exit "$rc"
