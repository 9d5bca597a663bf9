/* kernels/backend.c: picks the backend behind the op table.
 * "cpu" always works; "cuda" needs a binary built with CUDA and a usable GPU
 * (else a clear error); "auto" takes cuda when both hold, else cpu. */
#include "kernels/ops.h"
#include "util/error.h"
#include <string.h>


FlabBackend *flab_backend_create(const char *device, int threads) {
    if (!device || !strcmp(device, "cpu")) return flab_cpu_backend_create(threads);
    if (!strcmp(device, "cuda")) {
#ifdef FLAB_HAVE_CUDA
        /* flab_cuda_backend_create's own message carries the driver's reason
         * when there is no usable GPU. */
        FlabBackend *be = flab_cuda_backend_create();
        if (!be) flab_error_prefix("--device cuda: ");
        return be;
#else
        flab_fail("--device cuda: this flab was built without CUDA; use --device cpu or auto");
        return NULL;
#endif
    }
    if (!strcmp(device, "auto")) {
#ifdef FLAB_HAVE_CUDA
        if (flab_cuda_available()) return flab_cuda_backend_create();
#endif
        return flab_cpu_backend_create(threads);
    }
    flab_fail("--device %s: unknown device (want cpu, cuda or auto)", device);
    return NULL;
}

void flab_backend_destroy(FlabBackend *be) {
    if (be) be->destroy(be);
}
