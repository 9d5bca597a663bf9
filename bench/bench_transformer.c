/* bench/bench_transformer.c: CPU speed of the transformer on one model.
 *
 * usage: bench_transformer MODEL_DIR [--threads 2] [--prompt 128]
 *                          [--decode 32] [--reps 3] [--device cpu]
 * Prints `key value` lines:
 *   read_bw_1t_gbs, read_bw_gbs   memory read bandwidth (1 and N threads,
 *                                 best of 3 passes over a 1 GiB buffer)
 *   weight_bytes                  bytes of weight matrices read per token
 *   prefill_tok_s                 prompt tokens / s (one forward, logits of
 *                                 the last position; best of reps)
 *   decode_tok_s                  batch-1 greedy tokens / s after the prompt
 *                                 (KV cache; best of reps)
 *   decode_bound_tok_s            read_bw_gbs / weight_bytes
 *   decode_fraction_of_bound      best decode / bound from the best bandwidth
 *   decode_fraction_of_bound_paired  best over reps of (decode of a rep /
 *                                 bound from the bandwidth measured right
 *                                 after it): fairer on a loaded machine
 *   decode_fraction_of_bound_paired_median  the median of those per-rep
 *                                 fractions (the host's memory bandwidth
 *                                 swings 33 <-> 55-60 GB/s on this VM as
 *                                 other tenants come and go: one fast
 *                                 bandwidth reading should not decide)
 *   --dump-logits FILE            also writes the float32 logits [16, vocab]
 *                                 of the first 16 prompt tokens to FILE
 *                                 (bench_torch.py --compare checks them)
 *   peak_rss_mb                   getrusage max RSS after the model runs
 *                                 (before the bandwidth buffer)
 *   --serve                       instead of the above: load the model, print
 *                                 "ready", then answer stdin commands one line
 *                                 each, so that a driver (bench/bench_transformer.py)
 *                                 can interleave flab and torch runs:
 *                                   prefill   -> "prefill_s WALL cpu_s CPU"
 *                                   decode N  -> "decode_s WALL cpu_s CPU"
                                                (the N steps after an untimed prefill)
 *                                   quit
 *                                 (CPU = process CPU seconds, all threads) */
#include "model/transformer.h"
#include "util/error.h"
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- read bandwidth --------------------------------------------------------- */

typedef struct { const float *p; size_t n; float sum; } BwArg;

__attribute__((target("avx2")))
static void *bw_read(void *va) {
    BwArg *a = va;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 32 <= a->n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(a->p + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(a->p + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(a->p + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(a->p + i + 24));
    }
    float out[8];
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    a->sum = out[0] + out[7];
    return NULL;
}

/* Best of 3 passes over a 1 GiB buffer (allocated once, kept: the caller
 * frees it with read_bandwidth(0)).  The buffer holds no two equal pages:
 * a repeating pattern (it used to be i & 7) lets the hypervisor merge the
 * pages into one, after which the "DRAM" read ran from cache at 55-60 GB/s
 * instead of ~34 on this VM and the bound was inflated 1.7x. */
static double read_bandwidth(int threads) {
    static float *buf;
    size_t bytes = (size_t)1 << 30, n = bytes / 4;
    if (threads == 0) { free(buf); buf = NULL; return 0; }
    if (!buf) {
        buf = aligned_alloc(64, bytes);
        for (size_t i = 0; i < n; i++) buf[i] = (float)((uint32_t)(i * 2654435761u) >> 8);
    }
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        pthread_t th[64];
        BwArg args[64];
        double t0 = now();
        for (int i = 0; i < threads; i++) {
            args[i] = (BwArg){buf + n / threads * i, n / threads, 0};
            pthread_create(&th[i], NULL, bw_read, &args[i]);
        }
        for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
        double gbs = bytes / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    return best;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- model timings ----------------------------------------------------------- */

static int bench_prefill(Transformer *t, const int32_t *ids, int n, double *sec) {
    const int32_t *idp = ids;
    TfBatch b = {1, &idp, &n};
    TfForwardOpts o = {.last_only = 1};
    const FlabBuf *lg;
    double t0 = now();
    if (transformer_forward(t, &b, &o, &lg)) return -1;
    int32_t top;
    if (transformer_backend(t)->argmax(transformer_backend(t), &top, NULL, lg, 1,
                                       transformer_config(t)->vocab_size))
        return -1;
    *sec = now() - t0;
    return 0;
}

/* Prefill (untimed), then n_dec greedy single-row steps (timed: wall *sec,
 * process CPU *cpu_sec unless NULL). */
static int bench_decode(Transformer *t, const int32_t *ids, int n, int n_dec, double *sec,
                        double *cpu_sec) {
    FlabBackend *be = transformer_backend(t);
    int V = transformer_config(t)->vocab_size;
    TfKvCache *kv = tf_kv_create(t, 1, n + n_dec + 1);
    if (!kv) return -1;
    int32_t *slot = calloc((size_t)n, 4), *pos = malloc((size_t)n * 4), last = n - 1, tok;
    for (int i = 0; i < n; i++) pos[i] = i;
    const FlabBuf *lg;
    int rc = transformer_step(t, kv, ids, slot, pos, n, &last, 1, NULL, &lg) ||
             be->argmax(be, &tok, NULL, lg, 1, V);
    double t0 = now(), c0 = cpu_now();
    for (int i = 0; !rc && i < n_dec; i++) {
        int32_t s = 0, p = n + i;
        rc = transformer_step(t, kv, &tok, &s, &p, 1, NULL, 0, NULL, &lg) ||
             be->argmax(be, &tok, NULL, lg, 1, V);
    }
    *sec = now() - t0;
    if (cpu_sec) *cpu_sec = cpu_now() - c0;
    free(slot); free(pos);
    tf_kv_free(t, kv);
    return rc ? -1 : 0;
}

/* Teacher-forced logits of ids[0..n) to a raw float32 file. */
static int dump_logits(Transformer *t, const int32_t *ids, int n, const char *path) {
    size_t cnt = (size_t)n * transformer_config(t)->vocab_size;
    float *lg = malloc(cnt * sizeof(float));
    const int32_t *idp = ids;
    TfBatch b = {1, &idp, &n};
    int rc = transformer_logits_host(t, &b, NULL, lg);
    FILE *f = rc ? NULL : fopen(path, "wb");
    if (!rc && (!f || fwrite(lg, sizeof(float), cnt, f) != cnt)) rc = flab_fail("%s: cannot write", path);
    if (f && fclose(f)) rc = flab_fail("%s: cannot write", path);
    free(lg);
    return rc;
}

/* The --serve loop (see the header); returns the exit status. */
static int serve(Transformer *t, const int32_t *ids, int prompt) {
    char line[64];
    printf("ready\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        int n_dec = 0;
        double sec, c0 = cpu_now();
        if (!strncmp(line, "quit", 4)) break;
        if (!strncmp(line, "prefill", 7)) {
            if (bench_prefill(t, ids, prompt, &sec)) return 1;
            printf("prefill_s %.6f cpu_s %.6f\n", sec, cpu_now() - c0);
        } else if (sscanf(line, "decode %d", &n_dec) == 1 && n_dec > 0) {
            double cpu_sec;
            if (bench_decode(t, ids, prompt, n_dec, &sec, &cpu_sec)) return 1;
            printf("decode_s %.6f cpu_s %.6f\n", sec, cpu_sec);
        } else {
            printf("error unknown command\n");
        }
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR [--threads N] [--prompt N] [--decode N] "
                        "[--reps N] [--device D]\n", argv[0]);
        return 2;
    }
    int threads = 2, prompt = 128, n_dec = 32, reps = 3;
    const char *device = "cpu", *dump = NULL;
    int serve_mode = 0;
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--serve")) serve_mode = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--serve")) { i--; continue; }
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--prompt")) prompt = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--decode")) n_dec = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--device")) device = argv[i + 1];
        else if (!strcmp(argv[i], "--dump-logits")) dump = argv[i + 1];
    }
    FlabBackend *be = flab_backend_create(device, threads);
    Transformer *t = NULL;
    if (!be || transformer_load(argv[1], be, &t)) {
        fprintf(stderr, "bench_transformer: %s\n", flab_errmsg());
        return 1;
    }
    int V = transformer_config(t)->vocab_size;
    int32_t *ids = malloc((size_t)prompt * 4);
    unsigned s = 12345;
    for (int i = 0; i < prompt; i++) { s = s * 1103515245u + 12345u; ids[i] = (int32_t)((s >> 8) % (unsigned)(V < 50000 ? V : 50000)); }
    /* Each decode rep is paired with a bandwidth measurement right after it,
     * so that on a shared machine the fraction compares like with like. */
    double best_pre = 1e30, best_dec = 1e30, sec, bw = 0, rss_mb = 0, best_frac = 0, fracs[64];
    double wb = (double)transformer_weight_bytes(t);
    if (serve_mode) {
        int rc = serve(t, ids, prompt);
        if (rc) fprintf(stderr, "bench_transformer: %s\n", flab_errmsg());
        transformer_free(t);
        flab_backend_destroy(be);
        free(ids);
        return rc;
    }
    if (dump && dump_logits(t, ids, prompt < 16 ? prompt : 16, dump)) goto fail;
    for (int r = 0; r < reps; r++) {
        if (bench_prefill(t, ids, prompt, &sec)) goto fail;
        if (sec < best_pre) best_pre = sec;
        if (bench_decode(t, ids, prompt, n_dec, &sec, NULL)) goto fail;
        if (sec < best_dec) best_dec = sec;
        if (r == 0) rss_mb = flab_peak_rss_bytes() / 1048576.0;  /* before the buffer */
        double bw_r = read_bandwidth(threads), frac = n_dec / sec / (bw_r * 1e9 / wb);
        if (bw_r > bw) bw = bw_r;
        if (frac > best_frac) best_frac = frac;
        if (r < 64) fracs[r] = frac;
    }
    double bw1 = read_bandwidth(1), dec = n_dec / best_dec;
    read_bandwidth(0);
    printf("device %s\nthreads %d\nprompt_tokens %d\ndecode_tokens %d\n", be->name, threads,
           prompt, n_dec);
    printf("read_bw_1t_gbs %.2f\nread_bw_gbs %.2f\nweight_bytes %.0f\n", bw1, bw, wb);
    printf("prefill_tok_s %.2f\ndecode_tok_s %.2f\n", prompt / best_pre, dec);
    printf("decode_bound_tok_s %.2f\ndecode_fraction_of_bound %.3f\n", bw * 1e9 / wb,
           dec / (bw * 1e9 / wb));
    printf("decode_fraction_of_bound_paired %.3f\n", best_frac);
    printf("decode_fraction_of_bound_paired_median %.3f\n", median(fracs, reps < 64 ? reps : 64));
    printf("peak_rss_mb %.0f\n", rss_mb);
    transformer_free(t);
    flab_backend_destroy(be);
    free(ids);
    return 0;
fail:
    fprintf(stderr, "bench_transformer: %s\n", flab_errmsg());
    return 1;
}
