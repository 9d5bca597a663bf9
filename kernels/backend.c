/* kernels/backend.c: picks the backend behind the op table.
 * "cpu" always works; "cuda" needs a binary built with CUDA and a usable GPU
 * (else a clear error); "auto" takes cuda when both hold, else cpu. */
#include "kernels/ops.h"
#include "util/error.h"
#include <string.h>

#ifdef FLAB_HAVE_CUDA
/* Weak so that a build whose kernels/cuda/ is not there yet still links:
 * then the symbols are NULL and "cuda" reports that it is missing. */
#pragma weak flab_cuda_backend_create
#pragma weak flab_cuda_available
static int cuda_linked(void) { return flab_cuda_backend_create && flab_cuda_available; }
#endif

FlabBackend *flab_backend_create(const char *device, int threads) {
    if (!device || !strcmp(device, "cpu")) return flab_cpu_backend_create(threads);
    if (!strcmp(device, "cuda")) {
#ifdef FLAB_HAVE_CUDA
        if (!cuda_linked()) {
            flab_fail("--device cuda: this flab was built without the CUDA kernels");
            return NULL;
        }
        if (!flab_cuda_available()) {
            flab_fail("--device cuda: no usable CUDA GPU found (no driver or no device); "
                      "use --device cpu or auto");
            return NULL;
        }
        return flab_cuda_backend_create();
#else
        flab_fail("--device cuda: this flab was built without CUDA; use --device cpu or auto");
        return NULL;
#endif
    }
    if (!strcmp(device, "auto")) {
#ifdef FLAB_HAVE_CUDA
        if (cuda_linked() && flab_cuda_available()) return flab_cuda_backend_create();
#endif
        return flab_cpu_backend_create(threads);
    }
    flab_fail("--device %s: unknown device (want cpu, cuda or auto)", device);
    return NULL;
}

void flab_backend_destroy(FlabBackend *be) {
    if (be) be->destroy(be);
}
