/* bench/bench_tokenizer.c: load time and single-threaded encode speed of
 * flab's tokenizer (driven by bench/bench_tokenizer.py, which times HF
 * `tokenizers` on the same files in the same run).
 *
 *   bench_tokenizer MODEL_DIR CORPUS [REPEATS]
 * CORPUS: records [u32 len][UTF-8 text] (one per document).
 * Prints one JSON line: load_ms and load_cpu_ms (median of 5 loads: wall
 * and process CPU time), tokens, bytes,
 * encode_s (best of REPEATS passes, each with a fresh word cache) and
 * tokens_per_s, plus the same without the word cache. */
#include "model/tokenizer.h"
#include "util/error.h"
#include "util/file.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU time of this process: on a shared, overloaded machine closer to what
 * an idle machine's wall clock would show. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Encodes every record once; returns seconds, or -1. */
static double encode_all(flab_tokenizer *t, const char *corpus, size_t len, size_t *tokens) {
    size_t off = 0;
    *tokens = 0;
    double t0 = now();
    while (off + 4 <= len) {
        uint32_t n;
        memcpy(&n, corpus + off, 4);
        off += 4;
        if (off + n > len) break;
        int32_t *ids; size_t nid;
        if (flab_tok_encode(t, corpus + off, n, (flab_tok_encode_opts){1, 0}, &ids, &nid) < 0) return -1;
        *tokens += nid;
        free(ids);
        off += n;
    }
    return now() - t0;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: bench_tokenizer MODEL_DIR CORPUS [REPEATS]\n"); return 2; }
    int repeats = argc > 3 ? atoi(argv[3]) : 3;
    double loads[5], load_cpu[5];
    flab_tokenizer *t = NULL;
    for (int i = 0; i < 5; i++) {
        flab_tok_free(t);
        double t0 = now(), c0 = cpu_now();
        t = flab_tok_load_dir(argv[1]);
        loads[i] = (now() - t0) * 1e3;
        load_cpu[i] = (cpu_now() - c0) * 1e3;
        if (!t) { fprintf(stderr, "%s\n", flab_errmsg()); return 1; }
    }
    qsort(loads, 5, sizeof *loads, cmp_double);
    qsort(load_cpu, 5, sizeof *load_cpu, cmp_double);
    char *corpus; size_t len;
    if (flab_read_file(argv[2], &corpus, &len) < 0) { fprintf(stderr, "%s\n", flab_errmsg()); return 1; }
    double best = 1e30, best_nocache = 1e30;
    size_t tokens = 0, tokens_nc = 0;
    for (int r = 0; r < repeats; r++) {
        flab_tok_set_cache(t, 65536);
        double s = encode_all(t, corpus, len, &tokens);
        if (s < 0) { fprintf(stderr, "%s\n", flab_errmsg()); return 1; }
        if (s < best) best = s;
    }
    flab_tok_set_cache(t, 0);
    best_nocache = encode_all(t, corpus, len, &tokens_nc);
    printf("{\"load_ms\": %.2f, \"load_cpu_ms\": %.2f, \"vocab\": %d, \"bytes\": %zu, \"tokens\": %zu, \"encode_s\": %.4f, "
           "\"tokens_per_s\": %.0f, \"encode_nocache_s\": %.4f, \"tokens_per_s_nocache\": %.0f}\n",
           loads[2], load_cpu[2], (int)flab_tok_vocab_size(t), len, tokens, best, tokens / best, best_nocache,
           tokens_nc / best_nocache);
    free(corpus);
    flab_tok_free(t);
    return tokens == tokens_nc ? 0 : 1;
}
