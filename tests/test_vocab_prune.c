/* tests/test_vocab_prune.c: model/vocab_prune.h without the engine: the
 * always-kept set, the merge closure, the id map and the rewritten
 * tokenizer files, on the tiny-qwen2 fixture (byte-level BPE) and on a small
 * hand-written tokenizer with a TemplateProcessing post-processor. */
#include "model/tokenizer.h"
#include "model/vocab_prune.h"
#include "tests/testlib.h"
#include "util/error.h"
#include <stdint.h>

#define FIX "tests/fixtures/tiny-qwen2"

static const char *sample =
    "def add(a, b):\n    \"\"\"Return a + b.\"\"\"\n    return a + b\n<|endoftext|>";

static int count_bits(const uint8_t *keep, int32_t n, uint8_t why) {
    int c = 0;
    for (int32_t i = 0; i < n; i++) c += (keep[i] & why) != 0;
    return c;
}

/* Every merge with a kept result has kept parts. */
static int closure_holds(const flab_tokenizer *t, const uint8_t *keep) {
    for (size_t r = 0; r < flab_tok_n_merges(t); r++) {
        int32_t a, b, res;
        flab_tok_merge(t, r, &a, &b, &res);
        if (keep[res] && (!keep[a] || !keep[b])) return 0;
    }
    return 1;
}

/* keep = the tokens of text + the always-kept set + closure. */
static uint8_t *keep_for(flab_tokenizer *t, const char *text, int32_t n) {
    uint8_t *keep = calloc((size_t)n, 1);
    int32_t *ids;
    size_t k;
    if (flab_tok_encode(t, text, strlen(text), (flab_tok_encode_opts){1, 0}, &ids, &k) < 0) {
        free(keep);
        return NULL;
    }
    for (size_t i = 0; i < k; i++) keep[ids[i]] |= VP_CORPUS;
    free(ids);
    vp_mark_always(t, keep, n);
    vp_merge_closure(t, keep, n);
    return keep;
}

static flab_tokenizer *load_pruned(const flab_tokenizer *t, const int32_t *map, int32_t n) {
    cJSON *j = vp_prune_tokenizer_json(t, map, n);
    if (!j) return NULL;
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    flab_tokenizer *p = flab_tok_load_json(text, strlen(text), NULL, "pruned");
    free(text);
    return p;
}

static void test_always_kept_fixture(void) {
    flab_tokenizer *t = flab_tok_load_dir(FIX);
    REQUIREF(t, "%s", flab_errmsg());
    int32_t n = flab_tok_vocab_size(t);
    uint8_t *keep = calloc((size_t)n, 1);
    vp_mark_always(t, keep, n);
    CHECK(n == 2048);
    CHECK(count_bits(keep, n, VP_BYTE) == 256);
    CHECK(count_bits(keep, n, VP_ADDED) == 3);
    CHECK(keep[2045] & VP_SPECIAL_ID);   /* eos = pad */
    CHECK(count_bits(keep, n, 0xff) == 259);
    CHECK(vp_merge_closure(t, keep, n) == 0);   /* bytes need no merges */
    free(keep);
    flab_tok_free(t);
}

/* Keeping one long token alone pulls in its whole merge tree, and the
 * pruned tokenizer still builds that token from its bytes. */
static void test_closure_single_tokens(void) {
    flab_tokenizer *t = flab_tok_load_dir(FIX);
    REQUIREF(t, "%s", flab_errmsg());
    int32_t n = flab_tok_vocab_size(t), *map = malloc((size_t)n * sizeof *map);
    for (int32_t id = 2044; id > 2044 - 40; id -= 7) {
        uint8_t *keep = calloc((size_t)n, 1);
        vp_mark_always(t, keep, n);
        keep[id] |= VP_CORPUS;
        size_t added = vp_merge_closure(t, keep, n);
        size_t len;
        const char *s = flab_tok_id_to_token(t, id, &len);
        CHECKF(closure_holds(t, keep), "closure of %d", (int)id);
        /* a token of 3+ characters is built from at least one merged token */
        CHECKF(len < 3 || added > 0, "token %d '%s' added nothing", (int)id, s);
        vp_id_map(keep, n, map);
        flab_tokenizer *p = load_pruned(t, map, n);
        CHECKF(p != NULL, "%s", flab_errmsg());
        char *text = flab_tok_decode(t, &id, 1, 0, NULL);
        int32_t *ids = NULL;
        size_t k = 0;
        if (p && text && flab_tok_encode(p, text, strlen(text), (flab_tok_encode_opts){1, 0}, &ids, &k) == 0)
            CHECKF(k == 1 && ids[0] == map[id], "token %d re-encodes to %zu tokens", (int)id, k);
        free(ids); free(text); free(keep);
        flab_tok_free(p);
    }
    free(map);
    flab_tok_free(t);
}

static void test_id_map_dense(void) {
    uint8_t keep[8] = {1, 0, 0, 4, 2, 0, 16, 0};
    int32_t map[8];
    CHECK(vp_id_map(keep, 8, map) == 4);
    int32_t want[8] = {0, -1, -1, 1, 2, -1, 3, -1};
    CHECK(!memcmp(map, want, sizeof want));
}

/* The rewritten fixture tokenizer: kept tokens at their new ids, merges of
 * kept tokens only, added tokens renumbered, same tokens on the text. */
static void test_rewrite_fixture(void) {
    flab_tokenizer *t = flab_tok_load_dir(FIX);
    REQUIREF(t, "%s", flab_errmsg());
    int32_t n = flab_tok_vocab_size(t), *map = malloc((size_t)n * sizeof *map);
    uint8_t *keep = keep_for(t, sample, n);
    REQUIRE(keep);
    CHECK(closure_holds(t, keep));
    int32_t kept = vp_id_map(keep, n, map);
    flab_tokenizer *p = load_pruned(t, map, n);
    REQUIREF(p, "%s", flab_errmsg());
    CHECK(flab_tok_vocab_size(p) == kept && kept < n && kept > 259);
    for (int32_t id = 0; id < n; id++) {
        if (map[id] < 0) continue;
        size_t la, lb;
        const char *a = flab_tok_id_to_token(t, id, &la), *b = flab_tok_id_to_token(p, map[id], &lb);
        CHECKF(b && la == lb && !memcmp(a, b, la), "id %d -> %d", (int)id, (int)map[id]);
    }
    size_t want_merges = 0;
    for (size_t r = 0; r < flab_tok_n_merges(t); r++) {
        int32_t a, b, res;
        flab_tok_merge(t, r, &a, &b, &res);
        want_merges += keep[a] && keep[b] && keep[res];
    }
    CHECK(flab_tok_n_merges(p) == want_merges && want_merges < flab_tok_n_merges(t));
    CHECK(flab_tok_n_added(p) == 3 && flab_tok_added(p, 0)->id == map[2045]);
    CHECK(flab_tok_is_special(p, map[2047]));
    int32_t *ia, *ib;
    size_t na, nb;
    flab_tok_encode_opts o = {1, 0};
    REQUIRE(flab_tok_encode(t, sample, strlen(sample), o, &ia, &na) == 0);
    REQUIRE(flab_tok_encode(p, sample, strlen(sample), o, &ib, &nb) == 0);
    CHECK(na == nb);
    for (size_t i = 0; i < na && i < nb; i++) CHECKF(map[ia[i]] == ib[i], "token %zu", i);
    free(ia); free(ib); free(keep); free(map);
    flab_tok_free(p);
    flab_tok_free(t);
}

/* A hand-made BPE: ▁abc built by ▁ a -> ▁a, b c -> bc, ▁a bc -> ▁abc; a decoy
 * merge c a -> ca (id 1) and <s> at id 9 in a TemplateProcessing. */
static const char *tiny_json =
    "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
    "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,"
    "\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":9,\"content\":\"<s>\","
    "\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],"
    "\"normalizer\":null,\"pre_tokenizer\":null,"
    "\"post_processor\":{\"type\":\"TemplateProcessing\","
    "\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
    "\"pair\":[{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],"
    "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[9],\"tokens\":[\"<s>\"]}}},"
    "\"decoder\":null,\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\","
    "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":false,"
    "\"byte_fallback\":false,\"vocab\":{\"<unk>\":0,\"ca\":1,\"\xe2\x96\x81\":2,\"a\":3,\"b\":4,"
    "\"c\":5,\"\xe2\x96\x81" "a\":6,\"bc\":7,\"\xe2\x96\x81" "abc\":8,\"<s>\":9},"
    "\"merges\":[\"\xe2\x96\x81 a\",\"b c\",\"\xe2\x96\x81" "a bc\",\"c a\"]}}";

static void test_rewrite_template(void) {
    flab_tokenizer *t = flab_tok_load_json(tiny_json, strlen(tiny_json), NULL, "tiny");
    REQUIREF(t, "%s", flab_errmsg());
    int32_t n = flab_tok_vocab_size(t), map[10];
    REQUIRE(n == 10);
    uint8_t keep[10] = {0};
    keep[8] = VP_CORPUS;
    vp_mark_always(t, keep, n);
    CHECK(vp_merge_closure(t, keep, n) == 6);
    CHECK(keep[0] && keep[9] && !keep[1]);
    CHECK(vp_id_map(keep, n, map) == 9 && map[9] == 8 && map[8] == 7);
    cJSON *j = vp_prune_tokenizer_json(t, map, n);
    REQUIREF(j, "%s", flab_errmsg());
    const cJSON *pp = cJSON_GetObjectItem(j, "post_processor");
    const cJSON *ids = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(pp, "special_tokens"), "<s>"), "ids");
    CHECK(cJSON_GetArrayItem(ids, 0) && cJSON_GetArrayItem(ids, 0)->valueint == 8);
    const cJSON *merges = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "merges");
    CHECK(cJSON_GetArraySize(merges) == 3);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    flab_tokenizer *p = flab_tok_load_json(text, strlen(text), NULL, "pruned");
    free(text);
    REQUIREF(p, "%s", flab_errmsg());
    int32_t *out;
    size_t k;
    const char *word = "\xe2\x96\x81" "abc";
    REQUIRE(flab_tok_encode(p, word, strlen(word), (flab_tok_encode_opts){1, 1}, &out, &k) == 0);
    CHECK(k == 2 && out[0] == 8 && out[1] == 7);
    free(out);
    flab_tok_free(p);
    flab_tok_free(t);
}

static void test_rewrite_tokenizer_config(void) {
    int32_t map[4] = {0, -1, 1, 2};
    const char *cfg = "{\"eos_token\": \"</s>\", \"added_tokens_decoder\": "
                      "{\"1\": {\"content\": \"x\"}, \"3\": {\"content\": \"</s>\"}}}";
    char *out = vp_prune_tokenizer_config(cfg, map, 4, "cfg");
    REQUIREF(out, "%s", flab_errmsg());
    cJSON *o = cJSON_Parse(out);
    const cJSON *d = cJSON_GetObjectItem(o, "added_tokens_decoder");
    CHECK(cJSON_GetArraySize(d) == 1 && cJSON_GetObjectItem(d, "2"));
    CHECK(!strcmp(cJSON_GetObjectItem(o, "eos_token")->valuestring, "</s>"));
    cJSON_Delete(o);
    free(out);
    CHECK(vp_prune_tokenizer_config("[1]", map, 4, "cfg") == NULL && strstr(flab_errmsg(), "cfg"));
}

/* An added token that is not kept cannot be renumbered: a clear error. */
static void test_rewrite_refuses_removed_added_token(void) {
    flab_tokenizer *t = flab_tok_load_json(tiny_json, strlen(tiny_json), NULL, "tiny");
    REQUIREF(t, "%s", flab_errmsg());
    uint8_t keep[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    int32_t map[10];
    vp_id_map(keep, 10, map);
    cJSON *j = vp_prune_tokenizer_json(t, map, 10);
    CHECK(j == NULL && strstr(flab_errmsg(), "not kept"));
    cJSON_Delete(j);
    flab_tok_free(t);
}

int main(void) {
    RUN(test_always_kept_fixture);
    RUN(test_closure_single_tokens);
    RUN(test_id_map_dense);
    RUN(test_rewrite_fixture);
    RUN(test_rewrite_template);
    RUN(test_rewrite_tokenizer_config);
    RUN(test_rewrite_refuses_removed_added_token);
    return TEST_SUMMARY();
}
