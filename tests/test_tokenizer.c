/* tests/test_tokenizer.c: unit tests of model/tokenizer.h on the tiny-qwen2
 * fixture (golden ids computed by HF transformers), the API other modules use,
 * and the errors for unsupported or broken tokenizer.json files.  The
 * exhaustive differential comparison with HF is tests/test_tokenizer_hf.py. */
#include "model/tokenizer.h"
#include "tests/testlib.h"
#include "util/error.h"
#include "util/file.h"
#include <stdint.h>

#define QWEN FIXTURE_DIR "/tiny-qwen2"

static flab_tokenizer *qwen(void) {
    flab_tokenizer *t = flab_tok_load_dir(QWEN);
    if (!t) printf("load: %s\n", flab_errmsg());
    return t;
}

static int ids_equal(const int32_t *a, size_t na, const cJSON *arr) {
    if ((size_t)cJSON_GetArraySize(arr) != na) return 0;
    size_t i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) if ((int32_t)e->valuedouble != a[i]) return 0;
    return 1;
}

/* Encodes every golden text/prompt and compares with the ids in golden.json. */
static void test_golden_ids(void) {
    char *g; size_t glen;
    REQUIRE(flab_read_file(QWEN "/golden.json", &g, &glen) == 0);
    cJSON *j = cJSON_Parse(g);
    free(g);
    flab_tokenizer *t = qwen();
    REQUIRE(j && t);
    int n = 0;
    const char *lists[2][3] = {{"forward", "text", "ids"}, {"greedy", "prompt", "prompt_ids"}};
    for (int l = 0; l < 2; l++) {
        const cJSON *arr = cJSON_GetObjectItem(j, lists[l][0]);
        for (const cJSON *e = arr ? arr->child : NULL; e; e = e->next, n++) {
            const char *text = cJSON_GetObjectItem(e, lists[l][1])->valuestring;
            int32_t *ids; size_t nid;
            CHECK(flab_tok_encode(t, text, strlen(text), (flab_tok_encode_opts){1, 1}, &ids, &nid) == 0);
            CHECKF(ids_equal(ids, nid, cJSON_GetObjectItem(e, lists[l][2])), "%s: %.40s", lists[l][0], text);
            size_t dlen;
            char *back = flab_tok_decode(t, ids, nid, 0, &dlen);
            CHECKF(back && dlen == strlen(text) && memcmp(back, text, dlen) == 0, "round trip %.40s", text);
            free(back); free(ids);
        }
    }
    CHECK(n >= 2);
    flab_tok_free(t);
    cJSON_Delete(j);
}

static void test_vocab_api(void) {
    flab_tokenizer *t = qwen();
    REQUIRE(t);
    CHECK(flab_tok_vocab_size(t) == 2048);
    CHECK(flab_tok_token_to_id(t, "<|endoftext|>", 13) == 2045);
    CHECK(flab_tok_eos(t) == 2045 && flab_tok_pad(t) == 2045 && flab_tok_bos(t) == -1);
    CHECK(flab_tok_n_added(t) == 3 && flab_tok_added(t, 2)->id == 2047 && flab_tok_added(t, 2)->special);
    CHECK(flab_tok_is_special(t, 2046) && !flab_tok_is_special(t, 100));
    CHECK(flab_tok_n_merges(t) == 1789);
    int32_t l, r, res;
    flab_tok_merge(t, 0, &l, &r, &res);
    size_t n;
    const char *s = flab_tok_id_to_token(t, res, &n);
    CHECK(s && n == 4 && !memcmp(s, "\xC4\xA0\xC4\xA0", 4));   /* "ĠĠ" */
    CHECK(l == r && l == flab_tok_byte_token(t, ' '));
    CHECK(flab_tok_is_byte_level(t));
    for (int b = 0; b < 256; b++) CHECK(flab_tok_byte_token(t, (uint8_t)b) >= 0);
    CHECK(flab_tok_id_to_token(t, 5000, NULL) == NULL && flab_tok_id_to_token(t, -1, NULL) == NULL);
    const cJSON *j = flab_tok_json(t);
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(j, "model")));
    flab_tok_free(t);
}

typedef struct { char out[512]; size_t n; int count; } pieces_acc;
static int collect_piece(const char *p, size_t len, int32_t added, void *user) {
    pieces_acc *a = user;
    int w = snprintf(a->out + a->n, sizeof a->out - a->n, "%s%.*s", a->count++ ? "|" : "",
                     added >= 0 ? 3 : (int)len, added >= 0 ? "<A>" : p);
    a->n += (size_t)w;
    return 0;
}

static void test_pretokenize(void) {
    flab_tokenizer *t = qwen();
    REQUIRE(t);
    pieces_acc a = {{0}, 0, 0};
    const char *text = "def f(x):\n    return x1<|endoftext|>";
    CHECK(flab_tok_pretokenize(t, text, strlen(text), 1, collect_piece, &a) == 0);
    CHECKF(!strcmp(a.out, "def| f|(x|):\n|   | return| x|1|<A>"), "got %.300s", a.out);
    flab_tok_free(t);
}

static void test_special_modes(void) {
    flab_tokenizer *t = qwen();
    REQUIRE(t);
    const char *text = "a<|im_start|>b";
    int32_t *ids; size_t n;
    REQUIRE(flab_tok_encode(t, text, strlen(text), (flab_tok_encode_opts){1, 1}, &ids, &n) == 0);
    CHECK(n == 3 && ids[1] == 2046);
    free(ids);
    REQUIRE(flab_tok_encode(t, text, strlen(text), (flab_tok_encode_opts){0, 0}, &ids, &n) == 0);
    CHECK(n > 3);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] < 2045);
    free(ids);
    REQUIRE(flab_tok_encode(t, "", 0, (flab_tok_encode_opts){1, 1}, &ids, &n) == 0);
    CHECK(n == 0);
    free(ids);
    int32_t sp[] = {97, 2045, 98};
    char *s = flab_tok_decode(t, sp, 3, 1, NULL);
    CHECK(s && !strcmp(s, "ab"));
    free(s);
    flab_tok_free(t);
}

static void test_invalid_utf8(void) {
    flab_tokenizer *t = qwen();
    REQUIRE(t);
    int32_t *ids; size_t n;
    CHECK(flab_tok_encode(t, "ok\xC3(", 4, (flab_tok_encode_opts){1, 1}, &ids, &n) < 0);
    CHECKF(strstr(flab_errmsg(), "not valid UTF-8 (byte 2"), "%s", flab_errmsg());
    CHECK(flab_tok_encode(t, "\xED\xA0\x80", 3, (flab_tok_encode_opts){1, 1}, &ids, &n) < 0);   /* surrogate */
    int32_t bad = 4000;
    CHECK(flab_tok_decode(t, &bad, 1, 0, NULL) == NULL && strstr(flab_errmsg(), "id 4000"));
    flab_tok_free(t);
}

/* The word cache must never change results. */
static void test_cache_transparent(void) {
    flab_tokenizer *a = qwen(), *b = qwen();
    REQUIRE(a && b);
    flab_tok_set_cache(b, 0);
    char *src; size_t len;
    REQUIRE(flab_read_file("model/tokenizer_bpe.c", &src, &len) == 0);
    for (int rep = 0; rep < 2; rep++) {
        int32_t *x, *y; size_t nx, ny;
        REQUIRE(flab_tok_encode(a, src, len, (flab_tok_encode_opts){1, 1}, &x, &nx) == 0);
        REQUIRE(flab_tok_encode(b, src, len, (flab_tok_encode_opts){1, 1}, &y, &ny) == 0);
        CHECK(nx == ny && !memcmp(x, y, nx * sizeof *x));
        free(x); free(y);
    }
    free(src);
    flab_tok_free(a); flab_tok_free(b);
}

/* ---- errors for unsupported / broken files ------------------------------------------ */

static char *fixture_json(void) {
    char *s; size_t n;
    if (flab_read_file(QWEN "/tokenizer.json", &s, &n) < 0) return NULL;
    return s;
}

/* Loads the fixture with one top-level member replaced by `value` (JSON). */
static int load_with(const char *path1, const char *path2, const char *value, char *err, size_t errlen) {
    char *s = fixture_json();
    cJSON *j = cJSON_Parse(s);
    free(s);
    cJSON *parent = path2 ? cJSON_GetObjectItem(j, path1) : j;
    cJSON_ReplaceItemInObject(parent, path2 ? path2 : path1, cJSON_Parse(value));
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    flab_tokenizer *t = flab_tok_load_json(text, strlen(text), NULL, "x.json");
    free(text);
    snprintf(err, errlen, "%s", t ? "" : flab_errmsg());
    flab_tok_free(t);
    return t ? 0 : -1;
}

static void test_unsupported(void) {
    static const struct { const char *p1, *p2, *value, *msg; } cases[] = {
        {"pre_tokenizer", NULL, "{\"type\":\"Digits\",\"individual_digits\":true}", "unsupported pre_tokenizer \"Digits\""},
        {"normalizer", NULL, "{\"type\":\"Lowercase\"}", "unsupported normalizer \"Lowercase\""},
        {"decoder", NULL, "{\"type\":\"WordPiece\"}", "unsupported decoder \"WordPiece\""},
        {"post_processor", NULL, "{\"type\":\"BertProcessing\"}", "unsupported post_processor \"BertProcessing\""},
        {"model", "dropout", "0.1", "unsupported BPE option \"dropout\""},
        {"model", "continuing_subword_prefix", "\"##\"", "continuing_subword_prefix"},
        {"model", "end_of_word_suffix", "\"</w>\"", "end_of_word_suffix"},
        {"model", "type", "\"WordPiece\"", "unsupported model \"WordPiece\""},
        {"model", "merges", "[\"zz qq\"]", "not in the vocab"},
        {"model", "merges", "[\"a b c\"]", "is not \"left right\""},
        {"model", "vocab", "{\"a\": -1}", "non-negative integer"},
        {"truncation", NULL, "{\"max_length\": 8}", "unsupported \"truncation\""},
        {"pre_tokenizer", NULL, "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\",\"invert\":false}", "cannot compile regex"},
        {"pre_tokenizer", NULL, "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"ByteLevel\"},{\"type\":\"Metaspace\",\"replacement\":\"_\"}]}", "after ByteLevel"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512];
        CHECKF(load_with(cases[i].p1, cases[i].p2, cases[i].value, err, sizeof err) < 0, "case %zu loaded", i);
        CHECKF(strstr(err, cases[i].msg) && strstr(err, "x.json"), "case %zu: %.300s", i, err);
    }
    flab_tokenizer *t = flab_tok_load_json("{\"model\": [", 11, NULL, "broken.json");
    CHECK(!t && strstr(flab_errmsg(), "broken.json: invalid JSON"));
}

int main(void) {
    RUN(test_golden_ids);
    RUN(test_vocab_api);
    RUN(test_pretokenize);
    RUN(test_special_modes);
    RUN(test_invalid_utf8);
    RUN(test_cache_transparent);
    RUN(test_unsupported);
    return TEST_SUMMARY();
}
