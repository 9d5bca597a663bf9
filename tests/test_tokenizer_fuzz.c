/* tests/test_tokenizer_fuzz.c: seeded mutation fuzzing of the tokenizer.json
 * loader and of the encoder/decoder (fixed seeds: reproducible, a few seconds;
 * run under `make asan` for memory errors and leaks).
 *
 *   - loader: small but complete tokenizer.json files (one SentencePiece-style,
 *     one byte-level) mutated as text (byte flips, deletions, insertions of JSON
 *     fragments, duplicated spans) and as trees (a random node replaced by a
 *     value of another type); every result must load or fail with a message,
 *     and what loads must encode and decode random text;
 *   - encoder: random bytes (an error exactly when the input is not UTF-8, as
 *     judged independently by utf8proc) and random Unicode mixes (combining
 *     marks, CJK, emoji, whitespace, special-token fragments), where decoding
 *     the ids must give back the NFC of the input (byte-level round trip). */
#include "model/tokenizer.h"
#include "tests/testlib.h"
#include "util/error.h"
#include <stdint.h>
#include <utf8proc.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static uint32_t below(uint32_t n) { return n ? rnd() % n : 0; }

static const char SP_JSON[] =
    "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
    "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},"
    "{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},"
    "{\"id\":9,\"content\":\"<t>\",\"single_word\":true,\"lstrip\":true,\"rstrip\":true,\"normalized\":true,\"special\":false}],"
    "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFKC\"},{\"type\":\"Prepend\",\"prepend\":\"\xE2\x96\x81\"},"
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xE2\x96\x81\"},{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"b+\"},\"content\":\"b\"}]},"
    "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\d+\"},\"behavior\":\"MergedWithPrevious\",\"invert\":false},"
    "{\"type\":\"Split\",\"pattern\":{\"String\":\"x\"},\"behavior\":\"Contiguous\",\"invert\":false},"
    "{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\",\"prepend_scheme\":\"first\",\"split\":true}]},"
    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
    "\"pair\":[],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}},"
    "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\xE2\x96\x81\"},\"content\":\" \"},"
    "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0},"
    "{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\",\"prepend_scheme\":\"always\"}]},"
    "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\",\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,"
    "\"fuse_unk\":true,\"byte_fallback\":true,\"ignore_merges\":false,"
    "\"vocab\":{\"<unk>\":0,\"<s>\":1,\"<0x41>\":2,\"<0xC3>\":3,\"<0xA9>\":4,\"\xE2\x96\x81\":5,\"a\":6,\"b\":7,\"ab\":8,\"<t>\":9,"
    "\"\xE2\x96\x81" "a\":10,\"\xE2\x96\x81" "ab\":11,\"1\":12,\"2\":13,\"12\":14,\"x\":15,\"xx\":16},"
    "\"merges\":[\"a b\",[\"\xE2\x96\x81\",\"a\"],\"\xE2\x96\x81" "a b\",\"1 2\",\"x x\"]}}";

/* A byte-level tokenizer: the 256 byte chars plus a few merges. */
static char *byte_level_json(void) {
    cJSON *root = cJSON_Parse("{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
        "\"added_tokens\":[{\"id\":260,\"content\":\"<|eot|>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],"
        "\"normalizer\":{\"type\":\"NFC\"},"
        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(?i:'s|'t)|\\\\p{L}+|\\\\p{N}|\\\\s+(?!\\\\S)|\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false},"
        "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":true}]},"
        "\"post_processor\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":\"ByteLevel\"},"
        "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":true,"
        "\"vocab\":{},\"merges\":[\"\xC4\xA0 a\",\"\xC4\xA0" "a b\",\"c d\"]}}");
    cJSON *vocab = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "vocab");
    for (int b = 0; b < 256; b++) {
        int cp = b <= 32 ? 256 + b : (b >= 127 && b <= 160) ? 256 + 33 + b - 127 : b == 173 ? 256 + 67 : b;
        utf8proc_uint8_t s[8] = {0};
        utf8proc_encode_char(cp, s);
        cJSON_AddNumberToObject(vocab, (char *)s, b);
    }
    cJSON_AddNumberToObject(vocab, "\xC4\xA0" "a", 256);
    cJSON_AddNumberToObject(vocab, "\xC4\xA0" "ab", 257);
    cJSON_AddNumberToObject(vocab, "cd", 258);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

/* ---- random text ------------------------------------------------------------------- */

static size_t random_unicode(char *out, size_t cap) {
    static const char *const frags[] = {"<|eot|>", "<s>", "<t>", "\xE2\x96\x81", " ", "  ", "\n", "\r\n", "\t",
                                        "ab", "12", "x", "'s", "'T", "e\xCC\x81", "<unk>", "<0x41>"};
    static const int32_t ranges[][2] = {{0x20, 0x7E}, {0x00, 0x1F}, {0xA0, 0x24F}, {0x300, 0x36F}, {0x4E00, 0x4E80},
                                        {0x1F600, 0x1F64F}, {0x2000, 0x200F}, {0xAC00, 0xAC40}, {0x10000, 0x10FFFF}};
    size_t n = 0, parts = below(24);
    for (size_t p = 0; p < parts && n + 16 < cap; p++) {
        if (below(3) == 0) {
            const char *f = frags[below(sizeof frags / sizeof *frags)];
            memcpy(out + n, f, strlen(f)); n += strlen(f);
            continue;
        }
        const int32_t *r = ranges[below(sizeof ranges / sizeof *ranges)];
        int32_t cp = r[0] + (int32_t)below((uint32_t)(r[1] - r[0] + 1));
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0) cp = 'S';   /* no NUL: utf8proc_NFC stops there */
        n += (size_t)utf8proc_encode_char(cp, (utf8proc_uint8_t *)out + n);
    }
    out[n] = 0;
    return n;
}

static int valid_utf8_ref(const char *s, size_t n) {
    utf8proc_int32_t cp;
    for (size_t i = 0; i < n;) {
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* Encodes and decodes; returns 0, or -1 on a failure that is not an error message. */
static void exercise(flab_tokenizer *t, const char *text, size_t n) {
    for (int mode = 0; mode < 2; mode++) {
        int32_t *ids; size_t nid;
        if (flab_tok_encode(t, text, n, (flab_tok_encode_opts){mode, mode}, &ids, &nid) < 0) {
            CHECK(flab_errmsg()[0]);
            continue;
        }
        char *back = flab_tok_decode(t, ids, nid, mode, NULL);
        if (!back) CHECK(flab_errmsg()[0]);
        free(back); free(ids);
    }
}

/* ---- loader fuzzing ------------------------------------------------------------------- */

static char *mutate_text(const char *src) {
    static const char *const frags[] = {"null", "{", "}", "[", "]", ",", ":", "\"", "-1", "1e300", "true", "0",
                                        "\"Sequence\"", "\"type\"", "\\u0000", "\xff", "\"\"", "[[]]", "{}", "\\"};
    size_t n = strlen(src), cap = n * 2 + 64;
    char *s = malloc(cap);
    memcpy(s, src, n + 1);
    int muts = 1 + (int)below(4);
    for (int m = 0; m < muts && n > 2; m++) {
        size_t at = below((uint32_t)n), len = 1 + below(8);
        switch (below(4)) {
        case 0: s[at] = (char)below(256); if (!s[at]) s[at] = '"'; break;
        case 1: if (at + len > n) len = n - at; memmove(s + at, s + at + len, n - at - len + 1); n -= len; break;
        case 2: {
            const char *f = frags[below(sizeof frags / sizeof *frags)];
            size_t fl = strlen(f);
            if (n + fl + 1 > cap) break;
            memmove(s + at + fl, s + at, n - at + 1); memcpy(s + at, f, fl); n += fl;
            break;
        }
        default:
            if (at + len > n) len = n - at;
            if (n + len + 1 > cap) break;
            memmove(s + at + len, s + at, n - at + 1); n += len;   /* duplicates s[at..at+len) */
        }
    }
    return s;
}

static int count_nodes(const cJSON *j) {
    int n = 1;
    for (const cJSON *c = j->child; c; c = c->next) n += count_nodes(c);
    return n;
}

static cJSON *nth_node(cJSON *j, int *k) {
    if ((*k)-- == 0) return j;
    for (cJSON *c = j->child; c; c = c->next) { cJSON *r = nth_node(c, k); if (r) return r; }
    return NULL;
}

static cJSON *random_value(void) {
    switch (below(7)) {
    case 0: return cJSON_CreateNull();
    case 1: return cJSON_CreateNumber((double)below(600) - 5);
    case 2: return cJSON_CreateString(below(2) ? "" : "\xE2\x96\x81 a");
    case 3: return cJSON_CreateBool(below(2));
    case 4: return cJSON_CreateArray();
    case 5: return cJSON_CreateObject();
    default: return cJSON_CreateNumber(1e12);
    }
}

static char *mutate_tree(const char *src) {
    cJSON *j = cJSON_Parse(src);
    int muts = 1 + (int)below(3);
    for (int m = 0; m < muts; m++) {
        int k = 1 + (int)below((uint32_t)count_nodes(j) - 1);
        cJSON *node = nth_node(j, &k);
        if (!node) continue;
        cJSON *v = random_value();
        /* swap in place: keep the key and position, replace type and value */
        cJSON *next = node->next, *prev = node->prev;
        char *key = node->string;
        cJSON_Delete(node->child);
        if (node->valuestring) free(node->valuestring);
        *node = *v;
        node->next = next; node->prev = prev; node->string = key;
        v->child = NULL; v->valuestring = NULL;
        cJSON_Delete(v);
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static void fuzz_loader(const char *base, int iters, int *loaded) {
    char text[256];
    for (int i = 0; i < iters; i++) {
        char *m = below(2) ? mutate_text(base) : mutate_tree(base);
        flab_tokenizer *t = flab_tok_load_json(m, strlen(m), below(4) == 0 ? m : NULL, "fuzz.json");
        if (!t) CHECK(strstr(flab_errmsg(), "fuzz.json"));
        else {
            (*loaded)++;
            for (int k = 0; k < 3; k++) { size_t n = random_unicode(text, sizeof text); exercise(t, text, n); }
            int32_t ids[4] = {(int32_t)below(300), (int32_t)below(20), 1, 0};
            free(flab_tok_decode(t, ids, 4, 0, NULL));
        }
        flab_tok_free(t);
        free(m);
    }
}

/* The unmutated base must load; of `rounds` mutations of it, more than
 * min_loaded must load too, so that loaded tokenizers get exercised. */
static void fuzz_loader_base(const char *base, const char *name, int rounds, int min_loaded) {
    flab_tokenizer *t = flab_tok_load_json(base, strlen(base), NULL, name);
    REQUIREF(t, "base does not load: %s", flab_errmsg());
    flab_tok_free(t);
    int loaded = 0;
    fuzz_loader(base, rounds, &loaded);
    CHECKF(loaded > min_loaded, "%s: %d of %d mutations loaded", name, loaded, rounds);
}

static void test_fuzz_loader_sp(void) { fuzz_loader_base(SP_JSON, "sp.json", 3000, 100); }

static void test_fuzz_loader_byte_level(void) {
    char *base = byte_level_json();
    fuzz_loader_base(base, "bl.json", 600, 20);
    free(base);
}

/* ---- encoder fuzzing --------------------------------------------------------------------- */

static void test_fuzz_random_bytes(void) {
    flab_tokenizer *t = flab_tok_load_dir(FIXTURE_DIR "/tiny-qwen2");
    REQUIRE(t);
    char buf[96];
    for (int i = 0; i < 20000; i++) {
        size_t n = below(sizeof buf);
        for (size_t k = 0; k < n; k++) buf[k] = (char)(below(3) ? below(128) : 128 + below(128));
        int32_t *ids; size_t nid;
        int rc = flab_tok_encode(t, buf, n, (flab_tok_encode_opts){1, 1}, &ids, &nid);
        CHECKF((rc == 0) == valid_utf8_ref(buf, n), "iteration %d: rc %d", i, rc);
        if (rc == 0) free(ids);
    }
    flab_tok_free(t);
}

static void test_fuzz_round_trip(void) {
    char *bl = byte_level_json();
    flab_tokenizer *toks[3] = {flab_tok_load_dir(FIXTURE_DIR "/tiny-qwen2"), flab_tok_load_json(bl, strlen(bl), NULL, "bl"),
                               flab_tok_load_json(SP_JSON, strlen(SP_JSON), NULL, "sp")};
    free(bl);
    REQUIRE(toks[0] && toks[1] && toks[2]);
    char text[512];
    for (int i = 0; i < 6000; i++) {
        size_t n = random_unicode(text, sizeof text);
        /* byte-level: decode(encode(x)) == NFC(x) when special tokens are not split off
           (with them, text after a token is normalized on its own, as in HF) */
        for (int k = 0; k < 2; k++) {
            int32_t *ids; size_t nid, dlen;
            REQUIRE(flab_tok_encode(toks[k], text, n, (flab_tok_encode_opts){0, i & 1}, &ids, &nid) == 0);
            char *back = flab_tok_decode(toks[k], ids, nid, 0, &dlen);
            utf8proc_uint8_t *nfc = utf8proc_NFC((const utf8proc_uint8_t *)text);
            const char *want = (const char *)nfc;
            CHECKF(back && dlen == strlen(want) && memcmp(back, want, dlen) == 0, "tokenizer %d, text %.60s", k, text);
            free(nfc); free(back); free(ids);
        }
        exercise(toks[0], text, n);
        exercise(toks[2], text, n);
    }
    for (int k = 0; k < 3; k++) flab_tok_free(toks[k]);
}

int main(int argc, char **argv) {
    if (argc > 1) rng = strtoull(argv[1], NULL, 0) | 1;
    RUN(test_fuzz_loader_sp);
    RUN(test_fuzz_loader_byte_level);
    RUN(test_fuzz_random_bytes);
    RUN(test_fuzz_round_trip);
    return TEST_SUMMARY();
}
