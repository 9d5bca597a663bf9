/* tests/tools/gen_jsonl.c: batched greedy completions of the "prompt" field
 * of the first N lines of a jsonl file, for the recovery measurement
 * (bench/lora_recovery.sh).  Writes one JSON object per line: the input
 * object plus "completion" (decoded text, cut at the first stop string
 * \nclass \ndef \n# \nif \nprint, as the fixture README's evaluation).
 *   gen_jsonl MODEL IN.jsonl OUT.jsonl N [BATCH] [MAX_NEW] */
#include "kernels/ops.h"
#include "model/tokenizer.h"
#include "model/transformer.h"
#include "util/error.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *stops[] = {"\nclass", "\ndef", "\n#", "\nif", "\nprint"};

static void cut_at_stops(char *s) {
    for (size_t i = 0; i < sizeof stops / sizeof *stops; i++) {
        char *p = strstr(s, stops[i]);
        if (p) *p = 0;
    }
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: gen_jsonl MODEL IN OUT N [BATCH] [MAX_NEW]\n"); return 2; }
    int N = atoi(argv[4]), B = argc > 5 ? atoi(argv[5]) : 16, max_new = argc > 6 ? atoi(argv[6]) : 128;
    char *txt = NULL;
    FlabBackend *be = flab_backend_create("cpu", 0);
    Transformer *t = NULL;
    flab_tokenizer *tok = flab_tok_load_dir(argv[1]);
    FILE *out = fopen(argv[3], "w");
    if (!be || !tok || !out || flab_read_file(argv[2], &txt, NULL) || transformer_load(argv[1], be, &t)) {
        fprintf(stderr, "gen_jsonl: %s\n", flab_errmsg());
        return 1;
    }
    cJSON **objs = calloc((size_t)N, sizeof *objs);
    int n = 0;
    for (char *sv = NULL, *ln = strtok_r(txt, "\n", &sv); ln && n < N; ln = strtok_r(NULL, "\n", &sv))
        if ((objs[n] = cJSON_Parse(ln))) n++;
    for (int b0 = 0; b0 < n; b0 += B) {
        int nb = n - b0 < B ? n - b0 : B;
        int32_t *ids[64], *gen[64];
        int lens[64], ng[64];
        for (int i = 0; i < nb; i++) {
            const char *p = cJSON_GetObjectItem(objs[b0 + i], "prompt")->valuestring;
            size_t k;
            flab_tok_encode(tok, p, strlen(p), (flab_tok_encode_opts){1, 1}, &ids[i], &k);
            lens[i] = (int)k;
        }
        TfBatch tb = {nb, (const int32_t *const *)ids, lens};
        TfGenerateOpts go = {.max_new_tokens = max_new};
        if (transformer_generate(t, &tb, &go, gen, ng)) { fprintf(stderr, "%s\n", flab_errmsg()); return 1; }
        for (int i = 0; i < nb; i++) {
            char *s = flab_tok_decode(tok, gen[i], (size_t)ng[i], 1, NULL);
            cut_at_stops(s);
            cJSON_AddStringToObject(objs[b0 + i], "completion", s);
            char *line = cJSON_PrintUnformatted(objs[b0 + i]);
            fprintf(out, "%s\n", line);
            free(line); free(s); free(ids[i]); free(gen[i]);
        }
        fprintf(stderr, "\r%d/%d", b0 + nb, n);
    }
    fprintf(stderr, "\n");
    fclose(out);
    for (int i = 0; i < n; i++) cJSON_Delete(objs[i]);
    free(objs); free(txt);
    transformer_free(t);
    flab_backend_destroy(be);
    flab_tok_free(tok);
    return 0;
}
