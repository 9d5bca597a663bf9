/* kernels/cpu/cpu_internal.h: the CPU backend's private types, shared by its
 * files (cpu_backend.c: memory and weights; cpu_matmul.c; cpu_ops.c).
 *
 * Storage: activations are float32 arrays.  Weights are read in place from
 * the caller's memory (the safetensors mmap) in their own dtype: 2-D weights
 * are never converted as a whole; the matmul converts tiles on the fly
 * (GEMM) or reads bf16/f16 directly in its AVX2 dot kernel (GEMV), so a bf16
 * model costs its file size in memory, not twice that.  1-D weights (norm
 * gains, biases: tiny) are converted to float32 once at upload. */
#ifndef FLAB_KERNELS_CPU_INTERNAL_H
#define FLAB_KERNELS_CPU_INTERNAL_H
#include "kernels/ops.h"
#include "kernels/cpu/cpu_pool.h"

struct FlabBuf {
    float *data;
    size_t n;
};

struct FlabWeight {
    char *name;
    FlabDType dtype;
    int ndim;
    int64_t rows, cols;         /* 1-D: rows = 1, cols = n */
    const void *data;           /* caller's bytes (2-D) */
    float *f32;                 /* owned float32 copy (1-D only) */
    int quant;                  /* 1: a quantized Linear (cpu_qmatmul.c) */
    FlabQuantDesc q;            /* its checkpoint tensors (caller's bytes) */
    float *qscale;              /* FP8: owned float32 scales (n_scales) */
    struct CpuAwqPack *awq;     /* AWQ repacked for VNNI (cpu_awq_vnni.c), or NULL */
};

typedef struct {
    CpuPool *pool;
    int n_threads;
    float **scratch;            /* per-worker scratch, scratch_n floats each */
    size_t scratch_n;
} CpuImpl;

static inline CpuImpl *cpu_impl(FlabBackend *be) { return be->impl; }
/* Makes every worker's scratch at least n floats. */
void cpu_scratch_reserve(CpuImpl *impl, size_t n);

/* Row r of a 2-D weight converted to float32 into dst (cols floats). */
void cpu_weight_row_f32(const FlabWeight *w, int64_t r, float *dst);

/* 1 when the AVX2/FMA/F16C kernels may run (CPU has them and
 * FLAB_CPU_NO_AVX2 is unset or 0). */
int cpu_have_avx2(void);
/* The matmul_multi op (cpu_matmul.c). */
int cpu_matmul_multi(FlabBackend *be, int n, FlabBuf *const *y, const FlabBuf *x,
                     const FlabWeight *const *W, const FlabWeight *const *bias, int rows);

int cpu_matmul(FlabBackend *be, FlabBuf *y, const FlabBuf *x,
               const FlabWeight *W, const FlabWeight *bias, int rows,
               int accumulate);
void cpu_install_ops(FlabBackend *be);

/* Quantized Linear weights (cpu_qmatmul.c): upload checks q and keeps its
 * pointers; cpu_matmul hands weights with quant set to cpu_qmatmul. */
FlabWeight *cpu_upload_qweight(FlabBackend *be, const char *name,
                               const FlabQuantDesc *q);
int cpu_qmatmul(FlabBackend *be, FlabBuf *y, const FlabBuf *x,
                const FlabWeight *W, const float *bias, int rows, int accumulate);

/* AWQ INT4 / INT8 on AVX-512 VNNI (cpu_awq_vnni.c).  cpu_awq_pack returns
 * NULL when the CPU lacks it (or FLAB_CPU_NO_AVX512=1), for FP8, for a
 * group that is not a multiple of 8, or when there is no memory for the
 * copy; the float kernels then run on the checkpoint's bytes.
 * cpu_awq_matmul returns 1 (nothing written) when x holds a NaN or an Inf:
 * the caller runs the float kernel, which propagates them as the reference
 * does. */
typedef struct CpuAwqPack CpuAwqPack;
int cpu_have_avx512(void);        /* avx512f + bw (FP8 decode), and AVX2 allowed */
int cpu_have_avx512vnni(void);    /* and avx512vnni (AWQ) */
CpuAwqPack *cpu_awq_pack(CpuImpl *impl, const FlabQuantDesc *q);
void cpu_awq_free(CpuAwqPack *p);
int cpu_awq_matmul(CpuImpl *impl, const CpuAwqPack *p, float *y, const float *x,
                   const float *bias, int rows, int accumulate);
/* Decode (rows <= 4) of n packed weights over the same x, one pool run; 1
 * (nothing written) when it does not apply: more rows, packs with different
 * in or group, a non-finite x. */
int cpu_awq_decode_multi(CpuImpl *impl, int n, const CpuAwqPack *const *p, float *const *y,
                         const float *x, const float *const *bias, int rows, int accumulate);
#endif
