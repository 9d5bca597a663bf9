/* kernels/cpu/cpu_backend.c: the CPU backend's vtable, memory and weights.
 * The ops themselves live in cpu_matmul.c and cpu_ops.c. */
#include "kernels/cpu/cpu_internal.h"
#include "util/error.h"
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cpu_scratch_reserve(CpuImpl *impl, size_t n) {
    if (n <= impl->scratch_n) return;
    for (int i = 0; i < impl->n_threads; i++) {
        free(impl->scratch[i]);
        impl->scratch[i] = flab_xmalloc(n * sizeof(float));
    }
    impl->scratch_n = n;
}

static FlabBuf *cpu_alloc(FlabBackend *be, size_t n) {
    (void)be;
    FlabBuf *b = flab_xmalloc(sizeof *b);
    b->data = flab_xcalloc(n ? n : 1, sizeof(float));
    b->n = n;
    return b;
}

static void cpu_free_buf(FlabBackend *be, FlabBuf *b) {
    (void)be;
    if (!b) return;
    free(b->data);
    free(b);
}

static int cpu_upload(FlabBackend *be, FlabBuf *b, size_t offset,
                      const float *src, size_t n) {
    (void)be;
    if (offset + n > b->n)
        return flab_fail("cpu: upload of %zu floats at %zu overruns a buffer of %zu",
                         n, offset, b->n);
    memcpy(b->data + offset, src, n * sizeof(float));
    return 0;
}

static int cpu_download(FlabBackend *be, float *dst, const FlabBuf *b,
                        size_t offset, size_t n) {
    (void)be;
    if (offset + n > b->n)
        return flab_fail("cpu: download of %zu floats at %zu overruns a buffer of %zu",
                         n, offset, b->n);
    memcpy(dst, b->data + offset, n * sizeof(float));
    return 0;
}

static int cpu_copy(FlabBackend *be, FlabBuf *dst, size_t dst_off,
                    const FlabBuf *src, size_t src_off, size_t n) {
    (void)be;
    if (dst_off + n > dst->n || src_off + n > src->n)
        return flab_fail("cpu: copy of %zu floats overruns a buffer", n);
    memmove(dst->data + dst_off, src->data + src_off, n * sizeof(float));
    return 0;
}

static FlabWeight *cpu_upload_weight(FlabBackend *be, const char *name,
                                     FlabDType dtype, const void *data,
                                     int ndim, const int64_t *shape) {
    (void)be;
    if (ndim != 1 && ndim != 2) {
        flab_fail("cpu: weight %s: %d dimensions (want 1 or 2)", name, ndim);
        return NULL;
    }
    if (dtype != FLAB_F32 && dtype != FLAB_F16 && dtype != FLAB_BF16) {
        flab_fail("cpu: weight %s: dtype %d is not a float type (quantized weights go "
                  "through upload_qweight)", name, (int)dtype);
        return NULL;
    }
    FlabWeight *w = flab_xcalloc(1, sizeof *w);
    w->name = flab_xstrdup(name ? name : "?");
    w->dtype = dtype;
    w->ndim = ndim;
    w->rows = ndim == 2 ? shape[0] : 1;
    w->cols = ndim == 2 ? shape[1] : shape[0];
    w->data = data;
    if (ndim == 1) {
        w->f32 = flab_xmalloc((size_t)w->cols * sizeof(float));
        flab_to_f32(w->f32, data, dtype, (size_t)w->cols);
    }
    return w;
}

static void cpu_free_weight(FlabBackend *be, FlabWeight *w) {
    (void)be;
    if (!w) return;
    free(w->name);
    free(w->f32);
    free(w->qscale);
    cpu_awq_free(w->awq);
    free(w);
}

void cpu_weight_row_f32(const FlabWeight *w, int64_t r, float *dst) {
    size_t es = flab_dtype_size(w->dtype);
    flab_to_f32(dst, (const char *)w->data + (size_t)r * (size_t)w->cols * es,
                w->dtype, (size_t)w->cols);
}

static void cpu_destroy(FlabBackend *be) {
    CpuImpl *impl = be->impl;
    cpu_pool_destroy(impl->pool);
    for (int i = 0; i < impl->n_threads; i++) free(impl->scratch[i]);
    free(impl->scratch);
    free(impl);
    free(be);
}

FlabBackend *flab_cpu_backend_create(int threads) {
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads <= 0) threads = 1;
    /* Our pool owns the parallelism; OpenBLAS runs one sgemm per task. */
    openblas_set_num_threads(1);
    CpuImpl *impl = flab_xcalloc(1, sizeof *impl);
    impl->pool = cpu_pool_create(threads);
    impl->n_threads = cpu_pool_threads(impl->pool);
    impl->scratch = flab_xcalloc((size_t)impl->n_threads, sizeof(float *));
    FlabBackend *be = flab_xcalloc(1, sizeof *be);
    be->name = "cpu";
    be->impl = impl;
    be->destroy = cpu_destroy;
    be->alloc = cpu_alloc;
    be->free_buf = cpu_free_buf;
    be->upload = cpu_upload;
    be->download_f32 = cpu_download;
    be->copy = cpu_copy;
    be->upload_weight = cpu_upload_weight;
    be->free_weight = cpu_free_weight;
    be->upload_qweight = cpu_upload_qweight;
    be->matmul = cpu_matmul;
    cpu_install_ops(be);
    return be;
}
