/* tests/fuzz/fuzz_safetensors.c: libFuzzer harness for the safetensors
 * reader.  The input is a whole .safetensors file; it must load with the
 * reader's invariants or fail with a message, never crash or leak.
 * Build and run: tests/fuzz/run.sh safetensors [seconds]  (docs/MODEL_IO.md). */
#include "model/safetensors.h"
#include "util/error.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0) return 0;
    if (size && write(fd, data, size) != (ssize_t)size) { close(fd); return 0; }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    SafeTensors *st = NULL;
    if (st_open_file(path, &st) == 0) {
        size_t total = 0;
        for (size_t i = 0; i < st_count(st); i++) {
            const StTensor *t = st_at(st, i);
            volatile unsigned char x = 0;
            for (size_t k = 0; k < t->nbytes; k++) x ^= ((const unsigned char *)t->data)[k];
            total += t->nbytes;
            if (i && strcmp(st_at(st, i - 1)->name, t->name) >= 0) abort();
            if ((uintptr_t)t->data % flab_dtype_size(t->dtype)) abort();
        }
        if (total > size) abort();
        st_close(st);
    } else if (!strstr(flab_errmsg(), path)) {
        abort();  /* every error names the file */
    }
    close(fd);
    return 0;
}
