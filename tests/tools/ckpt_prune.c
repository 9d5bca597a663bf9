/* tests/tools/ckpt_prune.c: writes a pruned copy of an HF checkpoint with
 * flab's checkpoint writer: layers removed and/or the FFN cut to its first K
 * neurons.  Used by tests/test_checkpoint_ref.py to check that transformers
 * loads what flab writes and computes what the same pruning done in PyTorch
 * computes.
 *   ckpt_prune SRC DST [--drop L1,L2,..] [--ffn K] [--shard SIZE] */
#include "model/checkpoint.h"
#include "util/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "model.layers.L.rest" -> L (or -1) and rest. */
static int layer_of(const char *name, const char **rest) {
    int L, k = 0;
    if (sscanf(name, "model.layers.%d.%n", &L, &k) == 1 && k > 0) { *rest = name + k; return L; }
    return -1;
}

/* Rows [0, k) of a [R, C] tensor, or columns [0, k) (down_proj). */
static void *cut(const StTensor *t, int k, int cols, StWriteTensor *w) {
    size_t es = flab_dtype_size(t->dtype), R = (size_t)t->shape[0];
    size_t C = t->ndim == 2 ? (size_t)t->shape[1] : 1;
    size_t nr = cols ? R : (size_t)k, nc = cols ? (size_t)k : C;
    char *out = malloc(nr * nc * es + 1);
    for (size_t r = 0; r < nr; r++)
        memcpy(out + r * nc * es, (const char *)t->data + r * C * es, nc * es);
    if (cols) w->shape[1] = k; else w->shape[0] = k;
    w->nbytes = nr * nc * es;
    w->data = out;
    return out;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: ckpt_prune SRC DST [--drop L,..] [--ffn K] [--shard SIZE]\n"); return 2; }
    int drop[64] = {0}, ffn = 0;
    size_t shard = 0;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--drop"))
            for (char *p = argv[i + 1]; *p;) { long L = strtol(p, &p, 10); if (L >= 0 && L < 64) drop[L] = 1; if (*p) p++; }
        else if (!strcmp(argv[i], "--ffn")) ffn = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--shard") && st_parse_size(argv[i + 1], &shard) < 0) { fprintf(stderr, "%s\n", flab_errmsg()); return 2; }
    }
    Checkpoint ck;
    if (ckpt_open(argv[1], &ck) < 0) { fprintf(stderr, "error: %s\n", flab_errmsg()); return 1; }
    size_t n = st_count(ck.st), m = 0;
    StWriteTensor *w = calloc(n + 1, sizeof *w);
    char **names = calloc(n + 1, sizeof *names);
    void **owned = calloc(n + 1, sizeof *owned);
    int new_index[64], kept = 0;
    for (int L = 0; L < ck.cfg.num_hidden_layers && L < 64; L++) new_index[L] = drop[L] ? -1 : kept++;
    for (size_t i = 0; i < n; i++) {
        const StTensor *t = st_at(ck.st, i);
        const char *rest;
        int L = layer_of(t->name, &rest);
        if (L >= 0 && (L >= 64 || new_index[L] < 0)) continue;
        StWriteTensor v = st_write_view(t);
        if (L >= 0) {
            names[m] = malloc(strlen(t->name) + 16);
            sprintf(names[m], "model.layers.%d.%s", new_index[L], rest);
            v.name = names[m];
            if (ffn > 0 && (strstr(rest, "gate_proj") || strstr(rest, "up_proj")))
                owned[m] = cut(t, ffn, 0, &v);
            else if (ffn > 0 && strstr(rest, "down_proj.weight"))
                owned[m] = cut(t, ffn, 1, &v);
        }
        w[m++] = v;
    }
    ck.cfg.num_hidden_layers = kept;
    if (ffn > 0) ck.cfg.intermediate_size = ffn;
    CkptWriteOptions opt = {.src_dir = argv[1], .copy_tokenizer = true, .max_shard_bytes = shard};
    int rc = ckpt_write(argv[2], &ck.cfg, w, m, &opt);
    if (rc < 0) fprintf(stderr, "error: %s\n", flab_errmsg());
    for (size_t i = 0; i < m; i++) { free(names[i]); free(owned[i]); }
    free(names); free(owned); free(w);
    ckpt_close(&ck);
    return rc < 0 ? 1 : 0;
}
