/* bench/bench_layer_search.c: the KL layer search with prefix reuse vs the
 * naive search (a full forward per candidate), same model, same samples,
 * same run: wall time, FLOPs (model/calib.c's count), and whether both
 * chose the same plan.
 *   bench_layer_search MODEL_DIR [--samples N] [--len T] [--remove K]
 *                      [--threads N] [--seed S]
 * Samples are seeded random token ids (the search cost does not depend on
 * their values).  Prints "key value" lines. */
#include "model/calib.h"
#include "model/layer_search.h"
#include "util/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int run(Transformer *t, const CalibSet *set, int remove, int reuse, LsResult *r,
               double *secs) {
    CalibScorer sc;
    double t0 = now();
    if (calib_scorer_create(t, set, 1 << 20, 1, &sc)) return -1;
    LsOptions o = {LS_KL, remove, 1, reuse, NULL, NULL};
    int rc = layer_search(&sc, &o, r);
    calib_scorer_free(&sc);
    *secs = now() - t0;
    return rc;
}

int main(int argc, char **argv) {
    int n = 4, len = 64, remove = 2, threads = 0;
    unsigned long long seed = 1;
    if (argc < 2) {
        fprintf(stderr, "usage: bench_layer_search MODEL_DIR [--samples N] [--len T] [--remove K] "
                        "[--threads N] [--seed S]\n");
        return 2;
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--samples")) n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--len")) len = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--remove")) remove = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
    }
    FlabBackend *be = flab_backend_create("cpu", threads);
    Transformer *t = NULL;
    if (!be || transformer_load(argv[1], be, &t)) {
        fprintf(stderr, "error: %s\n", flab_errmsg());
        return 1;
    }
    int V = transformer_config(t)->vocab_size;
    int32_t **ids = malloc((size_t)n * sizeof *ids);
    int *lens = malloc((size_t)n * sizeof *lens);
    for (int s = 0; s < n; s++) {
        ids[s] = malloc((size_t)len * sizeof **ids);
        lens[s] = len;
        for (int p = 0; p < len; p++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            ids[s][p] = (int32_t)((seed >> 33) % (unsigned long long)(V < 32000 ? V : 32000));
        }
    }
    CalibSet set;
    calib_from_ids(&set, n, (const int32_t *const *)ids, lens);
    LsResult a, b;
    double ta, tb;
    if (run(t, &set, remove, 1, &a, &ta) || run(t, &set, remove, 0, &b, &tb)) {
        fprintf(stderr, "error: %s\n", flab_errmsg());
        return 1;
    }
    int same = a.n_removed == b.n_removed;
    for (int i = 0; same && i < a.n_removed; i++) same = a.removed[i] == b.removed[i];
    printf("model %s\nlayers %d\nsamples %d\nlen %d\nremove %d\n", argv[1],
           transformer_config(t)->num_hidden_layers, n, len, remove);
    printf("reuse_seconds %.3f\nnaive_seconds %.3f\nspeedup %.2f\n", ta, tb, tb / ta);
    printf("reuse_flops %.4g\nnaive_flops %.4g\nflops_ratio %.2f\n", a.flops, b.flops, b.flops / a.flops);
    printf("reuse_gflop_s %.1f\nnaive_gflop_s %.1f\n", a.flops / ta * 1e-9, b.flops / tb * 1e-9);
    printf("same_plan %s\nfinal_kl %.6g\n", same ? "yes" : "NO", a.kl);
    ls_result_free(&a);
    ls_result_free(&b);
    calib_free(&set);
    for (int s = 0; s < n; s++) free(ids[s]);
    free(ids);
    free(lens);
    transformer_free(t);
    flab_backend_destroy(be);
    return same ? 0 : 1;
}
