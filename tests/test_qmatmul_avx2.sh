#!/usr/bin/env bash
# tests/test_qmatmul_avx2.sh: the quantized matmul tests again with the
# AVX-512 VNNI path switched off (FLAB_CPU_NO_AVX512=1), so that on a CPU
# that has it the AVX2 float kernels on the checkpoint layout are checked
# against the reference too (same tolerances as test_qmatmul.c and
# test_awq_vnni.c).  On a CPU without AVX-512 this repeats the default run.
set -u
rc=0
for t in test_qmatmul test_awq_vnni; do
  FLAB_CPU_NO_AVX512=1 "$FLAB_BUILD/tests/$t" | sed -E 's/^(PASS|FAIL|SKIP) /\1 avx2_/'
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
done
exit "$rc"
