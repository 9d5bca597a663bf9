/* tests/tools/ckpt_prune.c: writes a pruned copy of an HF checkpoint with
 * flab's checkpoint writer and gathers (model/checkpoint.h,
 * model/tensor_select.h).  Used by tests/test_checkpoint_ref.py to check that
 * transformers loads what flab writes and computes what the same pruning
 * done in PyTorch computes.
 *   ckpt_prune SRC DST [--drop L1,L2,..] [--ffn K] [--vocab N] [--shard SIZE]
 * --ffn K keeps neurons i*I/K (i < K) of every layer; --vocab N keeps token
 * ids [0, N) plus the bos/eos ids, in increasing order (the id map). */
#include "model/checkpoint.h"
#include "model/tensor_select.h"
#include "util/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int drop[64], ffn, vocab;
    size_t shard;
} Opts;

static int parse(int argc, char **argv, Opts *o) {
    memset(o, 0, sizeof *o);
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--drop")) {
            for (char *p = argv[i + 1]; *p;) {
                long L = strtol(p, &p, 10);
                if (L >= 0 && L < 64) o->drop[L] = 1;
                if (*p) p++;
            }
        } else if (!strcmp(argv[i], "--ffn")) o->ffn = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--vocab")) o->vocab = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--shard")) {
            if (st_parse_size(argv[i + 1], &o->shard) < 0) return -1;
        } else return flab_fail("unknown option %s", argv[i]);
    }
    return 0;
}

/* The kept token ids (increasing) and the old -> new map. */
static size_t vocab_keep(const ModelConfig *c, int n, int64_t *keep, int32_t *map) {
    size_t k = 0;
    for (int id = 0; id < c->vocab_size; id++) {
        int special = id == c->bos_token_id;
        for (int e = 0; e < c->n_eos; e++) special |= id == c->eos_token_ids[e];
        map[id] = -1;
        if (id < n || special) { map[id] = (int32_t)k; keep[k++] = id; }
    }
    return k;
}

/* One tensor of the pruned model (in w, data owned when *owned). */
static int prune_tensor(const StTensor *t, const Opts *o, const int64_t *neurons, const int64_t *keep, size_t n_keep,
                        StWriteTensor *w, int *owned) {
    const char *n = t->name;
    *owned = 1;
    if (o->vocab && (!strcmp(n, "model.embed_tokens.weight") || !strcmp(n, "lm_head.weight")))
        return st_select_rows(t, keep, n_keep, w);
    if (o->ffn && (strstr(n, "mlp.gate_proj.") || strstr(n, "mlp.up_proj.")))
        return st_select_rows(t, neurons, (size_t)o->ffn, w);
    if (o->ffn && strstr(n, "mlp.down_proj.weight"))
        return st_select_cols(t, neurons, (size_t)o->ffn, w);
    *owned = 0;
    *w = st_write_view(t);
    return 0;
}

int main(int argc, char **argv) {
    Opts o;
    if (argc < 3 || parse(argc, argv, &o) < 0) {
        fprintf(stderr, "usage: ckpt_prune SRC DST [--drop L,..] [--ffn K] [--vocab N] [--shard SIZE] %s\n",
                flab_errmsg());
        return 2;
    }
    Checkpoint ck;
    if (ckpt_open(argv[1], &ck) < 0) { fprintf(stderr, "error: %s\n", flab_errmsg()); return 1; }
    ModelConfig *c = &ck.cfg;
    size_t n = st_count(ck.st), m = 0, n_keep = 0;
    StWriteTensor *w = calloc(n + 1, sizeof *w);
    char **names = calloc(n + 1, sizeof *names);
    int *owned = calloc(n + 1, sizeof *owned), new_index[64], kept = 0, rc = 0;
    int64_t *neurons = calloc((size_t)o.ffn + 1, sizeof *neurons);
    int64_t *keep = calloc((size_t)c->vocab_size + 1, sizeof *keep);
    int32_t *map = calloc((size_t)c->vocab_size + 1, sizeof *map);
    for (int i = 0; i < o.ffn; i++) neurons[i] = (int64_t)i * c->intermediate_size / o.ffn;
    if (o.vocab) n_keep = vocab_keep(c, o.vocab, keep, map);
    for (int L = 0; L < c->num_hidden_layers && L < 64; L++) new_index[L] = o.drop[L] ? -1 : kept++;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const StTensor *t = st_at(ck.st, i);
        int L, k = 0;
        int in_layer = sscanf(t->name, "model.layers.%d.%n", &L, &k) == 1 && k > 0;
        if (in_layer && (L >= 64 || new_index[L] < 0)) continue;
        rc = prune_tensor(t, &o, neurons, keep, n_keep, &w[m], &owned[m]);
        if (in_layer) {
            names[m] = malloc(strlen(t->name) + 16);
            sprintf(names[m], "model.layers.%d.%s", new_index[L], t->name + k);
            w[m].name = names[m];
        }
        m++;
    }
    size_t orig_vocab = (size_t)c->vocab_size;
    c->num_hidden_layers = kept;
    if (o.ffn) c->intermediate_size = o.ffn;
    if (o.vocab) c->vocab_size = (int)n_keep;
    /* A pruned vocabulary needs the pruned tokenizer (not this tool's job). */
    CkptWriteOptions opt = {.src_dir = argv[1], .copy_tokenizer = !o.vocab,
                            .max_shard_bytes = o.shard, .id_map = o.vocab ? map : NULL,
                            .id_map_len = o.vocab ? orig_vocab : 0};
    if (rc == 0) rc = ckpt_write(argv[2], c, w, m, &opt);
    if (rc < 0) fprintf(stderr, "error: %s\n", flab_errmsg());
    for (size_t i = 0; i < m; i++) { free(names[i]); if (owned[i]) free((void *)w[i].data); }
    free(names); free(owned); free(w); free(neurons); free(keep); free(map);
    ckpt_close(&ck);
    return rc < 0 ? 1 : 0;
}
