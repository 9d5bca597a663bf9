/* tests/test_checkpoint.c: opening an HF checkpoint directory (config and
 * weights checked against each other) and writing pruned checkpoints. */
#include "model/checkpoint.h"
#include "model/tensor_select.h"
#include "tests/model_testlib.h"
#include "tests/scratch_testlib.h"
#include "tests/testlib.h"
#include "util/error.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <unistd.h>

#define FIX FIXTURE_DIR "/tiny-qwen2"

static char tmpdir[64];

static const char *tdir(const char *name) { return mt_path(tmpdir, name); }

static StWriteTensor *views(const SafeTensors *st, size_t *n) {
    *n = st_count(st);
    StWriteTensor *w = calloc(*n + 1, sizeof *w);
    for (size_t i = 0; i < *n; i++) w[i] = st_write_view(st_at(st, i));
    return w;
}

static void test_open_fixture(void) {
    Checkpoint ck;
    REQUIREF(ckpt_open(FIX, &ck) == 0, "%s", flab_errmsg());
    CHECK(ck.cfg.num_hidden_layers == 8 && st_count(ck.st) == 99);
    CHECK(!strcmp(ck.dir, FIX));
    ckpt_close(&ck);
    ckpt_close(&ck);
    CHECK(ckpt_open(FIXTURE_DIR, &ck) < 0 && ck.st == NULL);
}

/* Rewriting unchanged gives the same weights file and config values. */
static void test_write_unchanged(void) {
    Checkpoint ck, back;
    REQUIREF(ckpt_open(FIX, &ck) == 0, "%s", flab_errmsg());
    size_t n;
    StWriteTensor *w = views(ck.st, &n);
    CkptWriteOptions opt = {.src_dir = FIX, .copy_tokenizer = true};
    const char *out = tdir("same");
    REQUIREF(ckpt_write(out, &ck.cfg, w, n, &opt) == 0, "%s", flab_errmsg());
    char p[300], q[300];
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    CHECK(mt_files_equal(p, FIX "/model.safetensors"));
    snprintf(p, sizeof p, "%s/tokenizer.json", out);
    CHECK(mt_files_equal(p, FIX "/tokenizer.json"));
    snprintf(p, sizeof p, "%s/tokenizer_config.json", out);
    CHECK(mt_files_equal(p, FIX "/tokenizer_config.json"));
    snprintf(q, sizeof q, "%s/special_tokens_map.json", out);
    CHECK(!flab_path_exists(q));  /* not in the source: not invented */
    REQUIREF(ckpt_open(out, &back) == 0, "%s", flab_errmsg());
    CHECK(cJSON_Compare(back.cfg.raw, ck.cfg.raw, 1));
    CHECK(back.cfg.n_eos == 1 && back.cfg.eos_token_ids[0] == 2045);
    ckpt_close(&back);
    free(w);
    ckpt_close(&ck);
}

/* Drop layer 3: later layers are renamed, the config follows. */
static void test_write_layer_pruned(void) {
    Checkpoint ck, back;
    REQUIREF(ckpt_open(FIX, &ck) == 0, "%s", flab_errmsg());
    size_t n, m = 0;
    StWriteTensor *w = views(ck.st, &n);
    char (*names)[96] = calloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        int L, k = 0;
        if (sscanf(w[i].name, "model.layers.%d.%n", &L, &k) == 1 && k > 0) {
            if (L == 3) continue;
            snprintf(names[m], sizeof names[m], "model.layers.%d.%s", L > 3 ? L - 1 : L, w[i].name + k);
            w[i].name = names[m];
        }
        w[m++] = w[i];
    }
    ck.cfg.num_hidden_layers = 7;
    const char *out = tdir("pruned");
    CkptWriteOptions opt = {.src_dir = FIX, .max_shard_bytes = 2000000};
    REQUIREF(ckpt_write(out, &ck.cfg, w, m, &opt) == 0, "%s", flab_errmsg());
    REQUIREF(ckpt_open(out, &back) == 0, "%s", flab_errmsg());
    CHECK(back.cfg.num_hidden_layers == 7 && st_count(back.st) == 99 - 12);
    CHECK(st_file_count(back.st) > 1);
    const StTensor *a = st_find(back.st, "model.layers.3.mlp.up_proj.weight");
    const StTensor *b = st_find(ck.st, "model.layers.4.mlp.up_proj.weight");
    REQUIRE(a && b);
    CHECK(a->nbytes == b->nbytes && !memcmp(a->data, b->data, a->nbytes));
    CHECK(st_find(back.st, "model.layers.7.mlp.up_proj.weight") == NULL);
    ckpt_close(&back);
    /* A leftover of the removed layer is refused by the strict check. */
    StWriteTensor extra = st_write_view(st_find(ck.st, "model.layers.7.mlp.up_proj.weight"));
    w[m] = extra;
    CHECK(ckpt_write(tdir("leftover"), &ck.cfg, w, m + 1, &opt) < 0 &&
          strstr(flab_errmsg(), "\"model.layers.7.mlp.up_proj.weight\" is not part of a "
                                "Qwen2ForCausalLM with 7 layers"));
    free(names);
    free(w);
    ckpt_close(&ck);
}

static void test_write_rejects_inconsistent(void) {
    Checkpoint ck;
    REQUIREF(ckpt_open(FIX, &ck) == 0, "%s", flab_errmsg());
    size_t n;
    StWriteTensor *w = views(ck.st, &n);
    const char *out = tdir("bad");
    /* config says 128 neurons, tensors have 512 */
    ck.cfg.intermediate_size = 128;
    CHECK(ckpt_write(out, &ck.cfg, w, n, NULL) < 0 &&
          strstr(flab_errmsg(), "\"model.layers.0.mlp.gate_proj.weight\": shape [512, 192] but "
                                "config.json implies [128, 192]"));
    ck.cfg.intermediate_size = 512;
    /* a missing tensor */
    CHECK(ckpt_write(out, &ck.cfg, w + 1, n - 1, NULL) < 0 &&
          strstr(flab_errmsg(), "\"lm_head.weight\" is missing"));
    /* kv heads that do not divide heads: shapes fine, config invalid */
    ck.cfg.num_key_value_heads = 4;
    ck.cfg.head_dim = 16;  /* 4 x 16 = 64 = k_proj rows; q 6 x 16 = 96 != 192 */
    CHECK(ckpt_write(out, &ck.cfg, w, n, NULL) < 0 && strstr(flab_errmsg(), "q_proj"));
    ck.cfg.num_key_value_heads = 2;
    ck.cfg.head_dim = 32;
    CHECK(!flab_path_exists(tdir("bad/model.safetensors")));
    free(w);
    ckpt_close(&ck);
}

/* Vocabulary pruning: bos/eos/pad ids go through the id map. */
static void test_write_id_map(void) {
    Checkpoint ck, back;
    REQUIREF(ckpt_open(FIX, &ck) == 0, "%s", flab_errmsg());
    size_t n;
    StWriteTensor *w = views(ck.st, &n);
    int32_t *map = calloc(2048, sizeof *map);
    for (int i = 0; i < 2048; i++) map[i] = i < 1000 ? i : i == 2045 ? 1000 : -1;
    /* Keep the weights' shapes: only ids are tested here. */
    CkptWriteOptions opt = {.src_dir = FIX, .id_map = map, .id_map_len = 2048};
    const char *out = tdir("ids");
    REQUIREF(ckpt_write(out, &ck.cfg, w, n, &opt) == 0, "%s", flab_errmsg());
    REQUIREF(ckpt_open(out, &back) == 0, "%s", flab_errmsg());
    CHECK(back.cfg.n_eos == 1 && back.cfg.eos_token_ids[0] == 1000);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(back.cfg.raw, "bos_token_id")));
    ckpt_close(&back);
    map[2045] = -1;
    CHECK(ckpt_write(out, &ck.cfg, w, n, &opt) < 0 &&
          strstr(flab_errmsg(), "\"eos_token_id\" 2045 was removed"));
    map[2045] = 1000;
    const char *src2 = tdir("src2");
    flab_mkdir_p(src2, 0755);
    char g[300];
    snprintf(g, sizeof g, "%s/generation_config.json", src2);
    const char *gen = "{\"eos_token_id\": 2045, \"suppress_tokens\": [7]}";
    REQUIRE(flab_write_file_atomic(g, gen, strlen(gen)) == 0);
    opt.src_dir = src2;
    CHECK(ckpt_write(out, &ck.cfg, w, n, &opt) < 0 &&
          strstr(flab_errmsg(), "\"suppress_tokens\" holds token ids"));
    opt.src_dir = FIX;
    opt.id_map_len = 100;
    CHECK(ckpt_write(out, &ck.cfg, w, n, &opt) < 0 &&
          strstr(flab_errmsg(), "outside the vocabulary"));
    free(map);
    free(w);
    ckpt_close(&ck);
}

/* A config that implies more layers than the weights hold. */
static void test_open_mismatch(void) {
    const char *d = tdir("mismatch");
    flab_mkdir_p(d, 0755);
    char *text;
    REQUIRE(flab_read_file(FIX "/config.json", &text, NULL) == 0);
    char *k = strstr(text, "\"num_hidden_layers\": 8");
    REQUIRE(k);
    k[strlen("\"num_hidden_layers\": ")] = '9';
    char p[300];
    snprintf(p, sizeof p, "%s/config.json", d);
    REQUIRE(flab_write_file_atomic(p, text, strlen(text)) == 0);
    free(text);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    Checkpoint ck;
    char *abs = realpath(FIX "/model.safetensors", NULL);
    REQUIRE(abs && symlink(abs, p) == 0);
    free(abs);
    CHECK(ckpt_open(d, &ck) < 0 && strstr(flab_errmsg(), "\"model.layers.8.input_layernorm.weight\" is missing"));
}

static void test_select_rows_cols(void) {
    SafeTensors *st;
    REQUIREF(st_open(FIX, &st) == 0, "%s", flab_errmsg());
    const StTensor *e = st_find(st, "model.embed_tokens.weight");
    const StTensor *d = st_find(st, "model.layers.0.mlp.down_proj.weight");
    const StTensor *b = st_find(st, "model.layers.0.self_attn.k_proj.bias");
    REQUIRE(e && d && b);
    int64_t rows[3] = {2047, 0, 5};
    StWriteTensor w;
    REQUIREF(st_select_rows(e, rows, 3, &w) == 0, "%s", flab_errmsg());
    CHECK(w.ndim == 2 && w.shape[0] == 3 && w.shape[1] == 192 && w.nbytes == 3 * 192 * 2);
    CHECK(!strcmp(w.name, e->name) && w.dtype == FLAB_BF16);
    for (int i = 0; i < 3; i++)
        CHECK(!memcmp((const char *)w.data + i * 384, (const char *)e->data + rows[i] * 384, 384));
    free((void *)w.data);
    int64_t cols[2] = {511, 1};
    REQUIREF(st_select_cols(d, cols, 2, &w) == 0, "%s", flab_errmsg());
    CHECK(w.shape[0] == 192 && w.shape[1] == 2 && w.nbytes == 192 * 2 * 2);
    const uint16_t *src = d->data, *got = w.data;
    int ok = 1;
    for (int r = 0; r < 192; r++)
        ok &= got[r * 2] == src[r * 512 + 511] && got[r * 2 + 1] == src[r * 512 + 1];
    CHECK(ok);
    free((void *)w.data);
    int64_t el[2] = {63, 0};  /* 1-D: elements */
    REQUIREF(st_select_rows(b, el, 2, &w) == 0, "%s", flab_errmsg());
    CHECK(w.ndim == 1 && w.shape[0] == 2 && !memcmp(w.data, (const uint16_t *)b->data + 63, 2));
    free((void *)w.data);
    int64_t bad = 2048;
    CHECK(st_select_rows(e, &bad, 1, &w) < 0 &&
          strstr(flab_errmsg(), "\"model.embed_tokens.weight\": row index 2048 out of range"));
    bad = -1;
    CHECK(st_select_cols(d, &bad, 1, &w) < 0 && strstr(flab_errmsg(), "column index -1"));
    CHECK(st_select_cols(b, el, 1, &w) < 0 && strstr(flab_errmsg(), "needs a 2-D tensor"));
    REQUIREF(st_select_rows(e, rows, 0, &w) == 0, "%s", flab_errmsg());  /* empty is fine */
    CHECK(w.shape[0] == 0 && w.nbytes == 0);
    free((void *)w.data);
    st_close(st);
}

int main(void) {
    if (scratch_make(tmpdir, sizeof tmpdir, "/tmp/flab-ckpt-XXXXXX")) return 1;
    RUN(test_open_fixture);
    RUN(test_write_unchanged);
    RUN(test_write_layer_pruned);
    RUN(test_write_rejects_inconsistent);
    RUN(test_write_id_map);
    RUN(test_open_mismatch);
    RUN(test_select_rows_cols);
    if (scratch_remove(tmpdir)) return 1;
    return TEST_SUMMARY();
}
