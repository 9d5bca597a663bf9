/* bench/bench_safetensors.c: throughput of flab's safetensors writer and
 * reader on a synthetic BF16 checkpoint (run by bench/bench_modelio.sh).
 *   bench_safetensors DIR [MB]      (default 256 MB, in 64 tensors)
 * Prints one line per measurement: "name value unit". Writes are durable
 * (fsync), so the write numbers include the disk. */
#include "model/safetensors.h"
#include "util/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double read_through(const char *dir, size_t *count, double *open_ms) {
    SafeTensors *st;
    double t0 = now();
    if (st_open(dir, &st) < 0) { fprintf(stderr, "%s\n", flab_errmsg()); exit(1); }
    *open_ms = (now() - t0) * 1e3;
    unsigned long long sum = 0;
    size_t bytes = 0;
    for (size_t i = 0; i < st_count(st); i++) {
        const StTensor *t = st_at(st, i);
        const unsigned long long *p = t->data;
        for (size_t k = 0; k < t->nbytes / 8; k++) sum += p[k];
        bytes += t->nbytes;
    }
    double s = now() - t0;
    *count = st_count(st);
    st_close(st);
    if (sum == 42) puts("");  /* keep the loop */
    return bytes / 1e6 / s;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: bench_safetensors DIR [MB]\n"); return 2; }
    size_t mb = argc > 2 ? (size_t)atol(argv[2]) : 256, n = 64;
    size_t per = mb * 1000000 / n / 2 / 1024 * 1024;  /* BF16 elements per tensor */
    uint16_t *data = malloc(per * 2);
    for (size_t i = 0; i < per; i++) data[i] = (uint16_t)(i * 2654435761u >> 16);
    StWriteTensor *w = calloc(n, sizeof *w);
    char (*names)[64] = calloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "model.layers.%zu.mlp.up_proj.weight", i);
        w[i] = (StWriteTensor){.name = names[i], .dtype = FLAB_BF16, .ndim = 2,
                               .shape = {(int64_t)(per / 1024), 1024}, .data = data, .nbytes = per * 2};
    }
    double total = n * per * 2 / 1e6;
    char single[512], sharded[512];
    snprintf(single, sizeof single, "%s/single", argv[1]);
    snprintf(sharded, sizeof sharded, "%s/sharded", argv[1]);
    double t0 = now();
    if (st_write_dir(single, w, n, 0) < 0) { fprintf(stderr, "%s\n", flab_errmsg()); return 1; }
    printf("write_single_MBps %.0f MB/s (%.0f MB)\n", total / (now() - t0), total);
    t0 = now();
    if (st_write_dir(sharded, w, n, total * 1e6 / 4) < 0) { fprintf(stderr, "%s\n", flab_errmsg()); return 1; }
    printf("write_sharded_MBps %.0f MB/s (4 shards)\n", total / (now() - t0));
    size_t count;
    double open_ms, r = read_through(single, &count, &open_ms);
    printf("open_single_ms %.2f ms (%zu tensors)\nread_single_MBps %.0f MB/s\n", open_ms, count, r);
    r = read_through(sharded, &count, &open_ms);
    printf("open_sharded_ms %.2f ms\nread_sharded_MBps %.0f MB/s\n", open_ms, r);
    free(names);
    free(w);
    free(data);
    return 0;
}
