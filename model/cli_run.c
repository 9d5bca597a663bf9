/* model/cli_run.c: `flab logits` and `flab generate`.
 *
 *   flab logits MODEL_DIR [--device D] [--threads N] --json TEXT
 *       -> {"ids": [...], "logits": [[...], ...]}   one row per position
 *   flab generate MODEL_DIR [--device D] [--threads N] [--max-new-tokens N]
 *                 [--stop STR]... [--stats] [--json] PROMPT
 *       -> the continuation (decoded with special tokens, like HF decode), or
 *          {"prompt_ids": [...], "ids": [...], "text": "..."} with --json
 * Greedy decoding; stops at the model's eos ids (config + generation_config),
 * at a --stop string appearing in the decoded continuation, or after
 * --max-new-tokens (default 128).  --stats prints time and peak memory to
 * stderr.  Text is tokenized like HF's encode(text) (special tokens parsed,
 * post-processor applied). */
#include "engine/commands.h"
#include "model/batch_generate.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "util/error.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_STOPS 16

typedef struct {
    const char *model_dir, *device, *text;
    int threads, max_new, json, stats;
    const char *stops[MAX_STOPS];
    int n_stops;
} RunArgs;

static int parse_args(int argc, char **argv, RunArgs *a, int is_generate) {
    memset(a, 0, sizeof *a);
    a->device = "auto";
    a->max_new = 128;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(s, "--device") && has) a->device = argv[++i];
        else if (!strcmp(s, "--threads") && has) a->threads = atoi(argv[++i]);
        else if (!strcmp(s, "--json")) a->json = 1;
        else if (is_generate && !strcmp(s, "--max-new-tokens") && has) a->max_new = atoi(argv[++i]);
        else if (is_generate && !strcmp(s, "--stats")) a->stats = 1;
        else if (is_generate && !strcmp(s, "--stop") && has && a->n_stops < MAX_STOPS)
            a->stops[a->n_stops++] = argv[++i];
        else if (s[0] == '-' && s[1] == '-') {
            fprintf(stderr, "flab %s: unknown or incomplete option %s\n", argv[0], s);
            return -1;
        } else if (!a->model_dir) a->model_dir = s;
        else if (!a->text) a->text = s;
        else {
            fprintf(stderr, "flab %s: unexpected argument %s\n", argv[0], s);
            return -1;
        }
    }
    if (!a->model_dir || !a->text || (!is_generate && !a->json) || a->max_new <= 0) {
        fprintf(stderr, is_generate
                ? "usage: flab generate MODEL_DIR [--device cpu|cuda|auto] [--threads N] "
                  "[--max-new-tokens N] [--stop STR]... [--stats] [--json] PROMPT\n"
                : "usage: flab logits MODEL_DIR [--device cpu|cuda|auto] [--threads N] "
                  "--json TEXT\n");
        return -1;
    }
    return 0;
}

/* Loads tokenizer + backend + model and encodes a->text. */
typedef struct {
    flab_tokenizer *tok;
    FlabBackend *be;
    Transformer *t;
    int32_t *ids;
    size_t n_ids;
} Session;

static int session_open(const RunArgs *a, Session *s) {
    memset(s, 0, sizeof *s);
    flab_tok_encode_opts eo = {1, 1};
    if (!(s->tok = flab_tok_load_dir(a->model_dir)) ||
        flab_tok_encode(s->tok, a->text, strlen(a->text), eo, &s->ids, &s->n_ids))
        return -1;
    if (s->n_ids == 0) return flab_fail("the text tokenizes to no tokens");
    if (!(s->be = flab_backend_create(a->device, a->threads))) return -1;
    return transformer_load(a->model_dir, s->be, &s->t);
}

static void session_close(Session *s) {
    transformer_free(s->t);
    flab_backend_destroy(s->be);
    flab_tok_free(s->tok);
    free(s->ids);
}

static void print_ids(const int32_t *ids, size_t n) {
    putchar('[');
    for (size_t i = 0; i < n; i++) printf(i ? ",%d" : "%d", ids[i]);
    putchar(']');
}

int cmd_logits(int argc, char **argv) {
    RunArgs a;
    Session s;
    if (parse_args(argc, argv, &a, 0)) return 2;
    if (session_open(&a, &s)) goto fail;
    int n = (int)s.n_ids, V = transformer_config(s.t)->vocab_size;
    float *lg = malloc((size_t)n * V * sizeof(float));
    const int32_t *idp = s.ids;
    TfBatch b = {1, &idp, &n};
    if (!lg || transformer_logits_host(s.t, &b, NULL, lg)) { free(lg); goto fail; }
    printf("{\"ids\":");
    print_ids(s.ids, s.n_ids);
    printf(",\"logits\":[");
    for (int r = 0; r < n; r++) {
        if (r) putchar(',');
        putchar('[');
        for (int c = 0; c < V; c++) printf(c ? ",%.9g" : "%.9g", lg[(size_t)r * V + c]);
        putchar(']');
    }
    printf("]}\n");
    free(lg);
    session_close(&s);
    return 0;
fail:
    fprintf(stderr, "flab logits: %s\n", flab_errmsg());
    session_close(&s);
    return 1;
}

/* Stop-string check on the decoded continuation. */
typedef struct { const RunArgs *a; flab_tokenizer *tok; } StopCtx;

static int stop_on_string(void *vctx, int seq, const int32_t *gen, int n_gen) {
    (void)seq;
    StopCtx *c = vctx;
    return flab_gen_stop_hit(c->tok, gen, n_gen, c->a->stops, (size_t)c->a->n_stops);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void print_generation(const RunArgs *a, const Session *s, const int32_t *gen,
                             int n_gen, const char *text) {
    if (!a->json) {
        fputs(text, stdout);
        if (!*text || text[strlen(text) - 1] != '\n') putchar('\n');
        return;
    }
    printf("{\"prompt_ids\":");
    print_ids(s->ids, s->n_ids);
    printf(",\"ids\":");
    print_ids(gen, (size_t)n_gen);
    cJSON *str = cJSON_CreateString(text);
    char *js = cJSON_PrintUnformatted(str);
    printf(",\"text\":%s}\n", js);
    free(js);
    cJSON_Delete(str);
}

int cmd_generate(int argc, char **argv) {
    RunArgs a;
    Session s;
    if (parse_args(argc, argv, &a, 1)) return 2;
    double t0 = now_s();
    if (session_open(&a, &s)) goto fail;
    double t1 = now_s();
    int n = (int)s.n_ids, n_gen = 0;
    int32_t *gen = NULL;
    const int32_t *idp = s.ids;
    TfBatch b = {1, &idp, &n};
    StopCtx sc = {&a, s.tok};
    TfGenerateOpts go = {.max_new_tokens = a.max_new, .stop = stop_on_string, .stop_ctx = &sc};
    if (transformer_generate(s.t, &b, &go, &gen, &n_gen)) goto fail;
    double t2 = now_s();
    char *text = flab_tok_decode(s.tok, gen, (size_t)n_gen, 0, NULL);
    if (!text) { free(gen); goto fail; }
    print_generation(&a, &s, gen, n_gen, text);
    if (a.stats)
        fprintf(stderr, "flab generate: device %s, load %.2f s, %d prompt + %d new tokens in "
                "%.2f s (%.1f tok/s), peak RSS %.0f MB\n", s.be->name, t1 - t0, n, n_gen,
                t2 - t1, n_gen / (t2 - t1), flab_peak_rss_bytes() / 1048576.0);
    free(text);
    free(gen);
    session_close(&s);
    return 0;
fail:
    fprintf(stderr, "flab generate: %s\n", flab_errmsg());
    session_close(&s);
    return 1;
}
