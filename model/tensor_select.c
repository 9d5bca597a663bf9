/* model/tensor_select.c: row and column gathers of checkpoint tensors (see
 * the header).  Bytes are copied as they are: no dtype conversion, so a
 * pruned tensor holds exactly the original values. */
#include "model/tensor_select.h"
#include "util/error.h"
#include <stdlib.h>
#include <string.h>

static int check_indices(const StTensor *t, const int64_t *idx, size_t k, int64_t limit,
                         const char *what) {
    for (size_t i = 0; i < k; i++)
        if (idx[i] < 0 || idx[i] >= limit)
            return flab_fail("%s: tensor \"%s\": %s index %lld out of range [0, %lld)", t->file,
                             t->name, what, (long long)idx[i], (long long)limit);
    return 0;
}

int st_select_rows(const StTensor *t, const int64_t *idx, size_t k, StWriteTensor *w) {
    if (t->ndim < 1)
        return flab_fail("%s: tensor \"%s\": a scalar has no rows", t->file, t->name);
    if (check_indices(t, idx, k, t->shape[0], "row") < 0) return -1;
    size_t row = t->shape[0] ? t->nbytes / (size_t)t->shape[0] : 0;
    char *out = flab_xmalloc(k * row + 1);
    for (size_t i = 0; i < k; i++)
        memcpy(out + i * row, (const char *)t->data + (size_t)idx[i] * row, row);
    *w = st_write_view(t);
    w->shape[0] = (int64_t)k;
    w->data = out;
    w->nbytes = k * row;
    return 0;
}

int st_select_cols(const StTensor *t, const int64_t *idx, size_t k, StWriteTensor *w) {
    if (t->ndim != 2)
        return flab_fail("%s: tensor \"%s\": column selection needs a 2-D tensor, it has %d "
                         "dimensions", t->file, t->name, t->ndim);
    if (check_indices(t, idx, k, t->shape[1], "column") < 0) return -1;
    size_t es = flab_dtype_size(t->dtype), rows = (size_t)t->shape[0];
    size_t in_row = (size_t)t->shape[1] * es;
    char *out = flab_xmalloc(rows * k * es + 1);
    const char *src = t->data;
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < k; i++)
            memcpy(out + (r * k + i) * es, src + r * in_row + (size_t)idx[i] * es, es);
    *w = st_write_view(t);
    w->shape[1] = (int64_t)k;
    w->data = out;
    w->nbytes = rows * k * es;
    return 0;
}
