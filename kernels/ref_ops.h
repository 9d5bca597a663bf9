/* kernels/ref_ops.h: the reference implementation of every op in ops.h.
 *
 * Plain loops on host float32 arrays, float64 accumulation, no threads, no
 * tricks: obviously correct, slow.  Tests compare each backend op against
 * these (tests/test_ops.c) and the reference forward (model/reference.c)
 * uses them to check the model end to end.  Weights are passed as float32
 * (the caller converts with flab_to_f32).  Layouts are those of ops.h. */
#ifndef FLAB_KERNELS_REF_OPS_H
#define FLAB_KERNELS_REF_OPS_H
#include <stddef.h>
#include <stdint.h>

void ref_embedding(float *out, const float *table, int dim,
                   const int32_t *ids, int n);
/* y = (acc ? y : 0) + x W^T + b; W [out, in]; b may be NULL. */
void ref_matmul(float *y, const float *x, const float *W, const float *b,
                int rows, int in, int out, int acc);
void ref_rmsnorm(float *out, const float *x, const float *gain, int rows,
                 int dim, float eps);
void ref_rope(float *x, const int32_t *pos, int rows, int heads,
              int head_dim, float theta);
void ref_kv_store(float *ck, float *cv, const float *k, const float *v,
                  const int32_t *slot, const int32_t *pos, int rows,
                  int kv_heads, int head_dim, int max_len);
void ref_attention(float *out, const float *q, const float *ck,
                   const float *cv, const int32_t *slot, const int32_t *pos,
                   int rows, int heads, int kv_heads, int head_dim,
                   int max_len);
void ref_swiglu(float *out, const float *gate, const float *up, size_t n);
void ref_softmax(float *out, const float *x, int rows, int cols);
void ref_log_softmax(float *out, const float *x, int rows, int cols);
void ref_kl_rows(double *kl, const float *lp, const float *lq, int rows,
                 int cols);
void ref_cross_entropy(double *ce, const float *logits,
                       const int32_t *targets, int rows, int cols);
void ref_argmax(int32_t *out, const float *x, int rows, int cols);
#endif
