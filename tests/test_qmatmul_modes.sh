#!/usr/bin/env bash
# tests/test_qmatmul_modes.sh: the quantized matmul tests (test_qmatmul,
# test_awq_vnni) again in the CPU backend's other kernel modes, so that on a
# CPU with AVX-512 VNNI every implementation is checked against the
# reference (same tolerances):
#   scalar_  FLAB_CPU_NO_AVX2=1    portable loops (VNNI off too)
#   avx2_    FLAB_CPU_NO_AVX512=1  AVX2 float kernels on the checkpoint layout
# On a CPU without AVX-512 the avx2_ run repeats the default one.
set -u
rc=0
for mode in scalar:FLAB_CPU_NO_AVX2 avx2:FLAB_CPU_NO_AVX512; do
  for t in test_qmatmul test_awq_vnni; do
    env "${mode#*:}=1" "$FLAB_BUILD/tests/$t" | sed -E "s/^(PASS|FAIL|SKIP) /\1 ${mode%%:*}_/"
    [ "${PIPESTATUS[0]}" = 0 ] || rc=1
  done
done
exit "$rc"
