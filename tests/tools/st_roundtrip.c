/* tests/tools/st_roundtrip.c: reads a safetensors file / index / model dir
 * and writes it back with flab's writer; used by tests/test_safetensors_ref.py
 * to check flab's files against the reference `safetensors` package.
 *
 *   st_roundtrip IN OUT_DIR [--shard SIZE] [--dtype F32|F16|BF16]
 *   st_roundtrip IN --file OUT.safetensors [--dtype ...]
 *   st_roundtrip IN --list      (prints "name dtype d0,d1,.. nbytes" lines)
 * --dtype converts every tensor (through float32, round to nearest even). */
#include "model/dtype.h"
#include "model/dtype_convert.h"
#include "model/safetensors.h"
#include "util/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *convert(const StTensor *t, FlabDType to, size_t *nbytes) {
    size_t n = t->nbytes / flab_dtype_size(t->dtype);
    float *f = st_tensor_f32(t);
    void *out = malloc(n * flab_dtype_size(to) + 1);
    flab_from_f32(out, f, to, n);
    free(f);
    *nbytes = n * flab_dtype_size(to);
    return out;
}

static void list(const SafeTensors *st) {
    for (size_t i = 0; i < st_count(st); i++) {
        const StTensor *t = st_at(st, i);
        printf("%s %s ", t->name, st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) printf(d ? ",%lld" : "%lld", (long long)t->shape[d]);
        printf(" %zu\n", t->nbytes);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: st_roundtrip IN OUT_DIR [--shard SIZE] [--dtype D] | IN --file OUT | IN --list\n");
        return 2;
    }
    const char *in = argv[1], *out = argv[2], *file = NULL;
    size_t shard = 0;
    int to = -1, do_list = !strcmp(argv[2], "--list");
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--shard") && i + 1 < argc) {
            if (st_parse_size(argv[++i], &shard) < 0) { fprintf(stderr, "%s\n", flab_errmsg()); return 2; }
        } else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
            FlabDType d;
            if (st_dtype_parse(argv[++i], &d) < 0) { fprintf(stderr, "bad dtype\n"); return 2; }
            to = (int)d;
        } else if (!strcmp(argv[i], "--file") && i + 1 < argc) {
            file = argv[++i];
        }
    }
    SafeTensors *st;
    if (st_open(in, &st) < 0) { fprintf(stderr, "error: %s\n", flab_errmsg()); return 1; }
    if (do_list) { list(st); st_close(st); return 0; }
    size_t n = st_count(st);
    StWriteTensor *w = calloc(n + 1, sizeof *w);
    void **owned = calloc(n + 1, sizeof *owned);
    for (size_t i = 0; i < n; i++) {
        w[i] = st_write_view(st_at(st, i));
        if (to >= 0) {
            owned[i] = convert(st_at(st, i), (FlabDType)to, &w[i].nbytes);
            w[i].data = owned[i];
            w[i].dtype = (FlabDType)to;
        }
    }
    int rc = file ? st_write_file(file, w, n) : st_write_dir(out, w, n, shard);
    if (rc < 0) fprintf(stderr, "error: %s\n", flab_errmsg());
    for (size_t i = 0; i < n; i++) free(owned[i]);
    free(owned);
    free(w);
    st_close(st);
    return rc < 0 ? 1 : 0;
}
