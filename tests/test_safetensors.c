/* tests/test_safetensors.c: reading, writing and validating safetensors.
 * The reference for the format is the fixture (written by Hugging Face's
 * safetensors): flab must read it and write it back byte for byte. */
#include "model/dtype_convert.h"
#include "model/safetensors.h"
#include "tests/model_testlib.h"
#include "tests/scratch_testlib.h"
#include "tests/testlib.h"
#include "util/error.h"
#include "util/file.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define FIX FIXTURE_DIR "/tiny-qwen2"

static char tmpdir[64];

static char *tpath(const char *name) { return mt_path(tmpdir, name); }

/* Writes a file: u64 header length (hlen, or strlen(header) when UINT64_MAX),
 * the header, then `data` zero bytes. */
static void write_raw(const char *path, const char *header, uint64_t hlen, size_t data) {
    size_t n = strlen(header);
    if (hlen == UINT64_MAX) hlen = n;
    unsigned char *buf = calloc(1, 8 + n + data + 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + 8, header, n);
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, 8 + n + data, f);
    fclose(f);
    free(buf);
}

static int same_tensors(const SafeTensors *a, const SafeTensors *b) {
    if (st_count(a) != st_count(b)) return 0;
    for (size_t i = 0; i < st_count(a); i++) {
        const StTensor *x = st_at(a, i), *y = st_at(b, i);
        if (strcmp(x->name, y->name) || x->dtype != y->dtype || x->ndim != y->ndim ||
            x->nbytes != y->nbytes || memcmp(x->shape, y->shape, sizeof x->shape) ||
            memcmp(x->data, y->data, x->nbytes))
            return 0;
    }
    return 1;
}

/* ---- reading ----------------------------------------------------------- */

static void test_open_fixture(void) {
    SafeTensors *st;
    REQUIREF(st_open(FIX, &st) == 0, "%s", flab_errmsg());
    CHECK(st_count(st) == 99);
    const StTensor *e = st_find(st, "model.embed_tokens.weight");
    REQUIRE(e);
    CHECK(e->dtype == FLAB_BF16 && e->ndim == 2 && e->shape[0] == 2048 && e->shape[1] == 192);
    CHECK(e->nbytes == 2048 * 192 * 2);
    CHECK(strstr(e->file, "model.safetensors") != NULL);
    const StTensor *qb = st_find(st, "model.layers.7.self_attn.q_proj.bias");
    REQUIRE(qb);
    CHECK(qb->ndim == 1 && qb->shape[0] == 192);
    CHECK(st_find(st, "model.layers.8.self_attn.q_proj.bias") == NULL);
    for (size_t i = 1; i < st_count(st); i++)
        CHECK(strcmp(st_at(st, i - 1)->name, st_at(st, i)->name) < 0);
    CHECK(st_at(st, st_count(st)) == NULL);
    CHECK(st_metadata(st, "format") && !strcmp(st_metadata(st, "format"), "pt"));
    CHECK(st_file_count(st) == 1);
    st_close(st);
}

static void test_open_forms(void) {
    SafeTensors *a, *b;
    REQUIREF(st_open(FIX "/model.safetensors", &a) == 0, "%s", flab_errmsg());
    REQUIREF(st_open_file(FIX "/model.safetensors", &b) == 0, "%s", flab_errmsg());
    CHECK(same_tensors(a, b));
    st_close(a);
    st_close(b);
    CHECK(st_open(FIXTURE_DIR, &a) < 0 && strstr(flab_errmsg(), "no model.safetensors"));
    CHECK(st_open(tpath("missing.safetensors"), &a) < 0 && strstr(flab_errmsg(), "missing"));
    char dir[200];
    snprintf(dir, sizeof dir, "%s/pickle", tmpdir);
    flab_mkdir_p(dir, 0755);
    FILE *f = fopen(tpath("pickle/pytorch_model.bin"), "wb");
    fclose(f);
    CHECK(st_open(dir, &a) < 0 && strstr(flab_errmsg(), "has pytorch_model.bin but no model.safetensors"));
    st_close(NULL);
}

/* Scalars (shape []) and empty tensors (shape [0]) are valid. */
static void test_scalar_and_empty(void) {
    const char *p = tpath("scalar.safetensors");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                 "\"b\":{\"dtype\":\"F16\",\"shape\":[0,3],\"data_offsets\":[4,4]}}    ",
              UINT64_MAX, 4);
    SafeTensors *st;
    REQUIREF(st_open(p, &st) == 0, "%s", flab_errmsg());
    CHECK(st_count(st) == 2);
    CHECK(st_find(st, "a")->ndim == 0 && st_find(st, "a")->nbytes == 4);
    CHECK(st_find(st, "b")->ndim == 2 && st_find(st, "b")->nbytes == 0);
    CHECK(st_metadata(st, "format") == NULL);
    st_close(st);
}

/* A header whose length is not a multiple of 4 leaves an F32 tensor
 * misaligned in the mmap: the reader hands out an aligned copy. */
static void test_misaligned_copy(void) {
    const char *p = tpath("misaligned.safetensors");
    const char *h = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    size_t n = strlen(h);
    unsigned char buf[128] = {0};
    buf[0] = (unsigned char)n;
    memcpy(buf + 8, h, n);
    float v[2] = {1.5f, -2.25f};
    memcpy(buf + 8 + n, v, 8);
    FILE *f = fopen(p, "wb");
    fwrite(buf, 1, 8 + n + 8, f);
    fclose(f);
    SafeTensors *st;
    REQUIREF(st_open(p, &st) == 0, "%s", flab_errmsg());
    const StTensor *t = st_find(st, "x");
    REQUIRE(t);
    CHECK((uintptr_t)t->data % 4 == 0);
    CHECK(!memcmp(t->data, v, 8));
    st_close(st);
}

/* ---- malformed files: an error naming the file (and tensor), no crash -- */

typedef struct {
    const char *what, *header;
    uint64_t hlen;      /* UINT64_MAX: the header's length */
    size_t data;
    const char *expect; /* a substring of the message besides the file name */
} Bad;

static const Bad bad_cases[] = {
    {"length beyond file", "{}", 1000, 0, "beyond the file"},
    {"huge length", "{}", UINT64_MAX - 1, 0, "beyond the file"},
    {"not json", "{\"a\":", UINT64_MAX, 0, "not valid JSON"},
    {"not utf8", "{\"\xff\xfe\":{}}", UINT64_MAX, 0, "UTF-8"},
    {"overlong utf8", "{\"\xc0\xaf\":{}}", UINT64_MAX, 0, "UTF-8"},
    {"array header", "[1,2]", UINT64_MAX, 0, "not a JSON object"},
    {"garbage after json", "{} x", UINT64_MAX, 0, "garbage"},
    {"unknown dtype", "{\"t\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,1]}}",
     UINT64_MAX, 1, "\"t\": unknown dtype"},
    {"I64 dtype", "{\"pos\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
     UINT64_MAX, 8, "\"pos\": dtype I64 is not supported"},
    {"F64 dtype", "{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
     UINT64_MAX, 8, "\"w\": dtype F64 is not supported"},
    {"dtype not string", "{\"t\":{\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,4]}}",
     UINT64_MAX, 4, "\"t\": \"dtype\""},
    {"negative dim", "{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
     UINT64_MAX, 4, "\"t\": shape[0]"},
    {"fractional dim", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
     UINT64_MAX, 4, "\"t\": shape[0]"},
    {"too many dims", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
     "\"data_offsets\":[0,4]}}", UINT64_MAX, 4, "\"t\": 9 dimensions"},
    {"shape overflow", "{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
     "\"data_offsets\":[0,4]}}", UINT64_MAX, 4, "\"t\": shape overflows"},
    {"shape not array", "{\"t\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}",
     UINT64_MAX, 4, "\"t\": \"shape\""},
    {"size mismatch", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}",
     UINT64_MAX, 4, "\"t\": data_offsets span 4 bytes but shape x dtype needs 8"},
    {"end before begin", "{\"t\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}",
     UINT64_MAX, 4, "\"t\": data_offsets end"},
    {"beyond data", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
     UINT64_MAX, 4, "\"t\": data_offsets [0, 8] beyond"},
    {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", UINT64_MAX, 8,
     "overlaps"},
    {"hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", UINT64_MAX, 12,
     "\"b\": 4 unused bytes"},
    {"trailing data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     UINT64_MAX, 12, "8 bytes of data after the last tensor"},
    {"duplicate names", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", UINT64_MAX, 8,
     "\"a\": duplicate name"},
    {"metadata not string", "{\"__metadata__\":{\"format\":1}}", UINT64_MAX, 0,
     "__metadata__ \"format\""},
    {"metadata not object", "{\"__metadata__\":[]}", UINT64_MAX, 0, "__metadata__ is not"},
    {"duplicate metadata", "{\"__metadata__\":{},\"__metadata__\":{}}", UINT64_MAX, 0,
     "duplicate __metadata__"},
    {"no offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", UINT64_MAX, 4,
     "\"t\": \"data_offsets\""},
    {"three offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,4]}}",
     UINT64_MAX, 4, "\"t\": \"data_offsets\""},
    {"entry not object", "{\"t\":[1]}", UINT64_MAX, 0, "\"t\": entry is not an object"},
    {"header too short", "{", UINT64_MAX, 0, "not plausible"},
};

static void test_malformed(void) {
    char path[300];
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
        const Bad *b = &bad_cases[i];
        snprintf(path, sizeof path, "%s/bad%02zu.safetensors", tmpdir, i);
        write_raw(path, b->header, b->hlen, b->data);
        SafeTensors *st = NULL;
        flab_error_clear();
        int rc = st_open(path, &st);
        CHECKF(rc < 0 && st == NULL, "%s: accepted", b->what);
        if (rc == 0) { st_close(st); continue; }
        CHECKF(strstr(flab_errmsg(), path) != NULL, "%s: message lacks the file: %s",
               b->what, flab_errmsg());
        CHECKF(strstr(flab_errmsg(), b->expect) != NULL, "%s: message \"%s\" lacks \"%s\"",
               b->what, flab_errmsg(), b->expect);
    }
}

static void test_short_files(void) {
    const char *p = tpath("short.safetensors");
    SafeTensors *st;
    for (int n = 0; n < 8; n++) {
        FILE *f = fopen(p, "wb");
        fwrite("\x02\0\0\0\0\0\0", 1, (size_t)n, f);
        fclose(f);
        CHECKF(st_open(p, &st) < 0 && strstr(flab_errmsg(), "too short"), "%d bytes: %s", n,
               flab_errmsg());
    }
    CHECK(st_open(tmpdir, &st) < 0);  /* a directory with no model files */
}

/* ---- sharded reading ------------------------------------------------------ */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static void make_shards(const char *dir) {
    char p[300];
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", UINT64_MAX, 4);
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    write_raw(p, "{\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", UINT64_MAX, 4);
    snprintf(p, sizeof p, "%s/extra.safetensors", dir);
    write_raw(p, "{\"c\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                 "\"d\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]}}", UINT64_MAX, 8);
}

static void test_sharded_index(void) {
    char dir[200], idx[300];
    snprintf(dir, sizeof dir, "%s/shards", tmpdir);
    flab_mkdir_p(dir, 0755);
    make_shards(dir);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    write_text(idx, "{\"metadata\":{\"total_size\":8},\"weight_map\":{"
                    "\"a\":\"model-00001-of-00002.safetensors\","
                    "\"b\":\"model-00002-of-00002.safetensors\"}}");
    SafeTensors *st;
    REQUIREF(st_open(dir, &st) == 0, "%s", flab_errmsg());
    CHECK(st_count(st) == 2 && st_file_count(st) == 2);
    CHECK(strstr(st_find(st, "b")->file, "model-00002-of-00002") != NULL);
    st_close(st);
    static const struct { const char *map, *expect; } bad[] = {
        {"{\"a\":\"model-00002-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\"}",
         "\"a\": in the weight_map but not in shard"},
        {"{\"a\":\"model-00002-of-00002.safetensors\",\"b\":\"model-00001-of-00002.safetensors\"}",
         "the weight_map says"},
        {"{\"a\":\"model-00001-of-00002.safetensors\",\"c\":\"extra.safetensors\"}",
         "\"d\" in"},
        {"{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"../x.safetensors\"}",
         "not a shard file name"},
        {"{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"nothere.safetensors\"}",
         "nothere.safetensors"},
        {"{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\","
         "\"c\":\"model-00002-of-00002.safetensors\"}", "\"c\": in the weight_map but not"},
        {"[]", "weight_map"},
        {"{\"a\":\"model-00001-of-00002.safetensors\",\"a\":\"model-00001-of-00002.safetensors\","
         "\"b\":\"model-00002-of-00002.safetensors\"}", "duplicate key \"a\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[600];
        snprintf(text, sizeof text, "{\"weight_map\":%s}", bad[i].map);
        write_text(idx, text);
        int rc = st_open(idx, &st);
        CHECKF(rc < 0, "case %zu accepted", i);
        if (rc == 0) { st_close(st); continue; }
        CHECKF(strstr(flab_errmsg(), bad[i].expect) && strstr(flab_errmsg(), dir),
               "case %zu: %s", i, flab_errmsg());
    }
    write_text(idx, "{\"weight_map\": ");
    CHECK(st_open(idx, &st) < 0 && strstr(flab_errmsg(), "not valid JSON"));
}

/* ---- writing --------------------------------------------------------------- */

static StWriteTensor *views(const SafeTensors *st) {
    StWriteTensor *w = calloc(st_count(st) + 1, sizeof *w);
    for (size_t i = 0; i < st_count(st); i++) w[i] = st_write_view(st_at(st, i));
    return w;
}

/* The fixture was written by HF's safetensors: ours must be the same bytes. */
static void test_write_fixture_identical(void) {
    SafeTensors *st, *back;
    REQUIREF(st_open(FIX, &st) == 0, "%s", flab_errmsg());
    StWriteTensor *w = views(st);
    char dir[200];
    snprintf(dir, sizeof dir, "%s/single", tmpdir);
    REQUIREF(st_write_dir(dir, w, st_count(st), 0) == 0, "%s", flab_errmsg());
    CHECK(mt_files_equal(FIX "/model.safetensors", tpath("single/model.safetensors")));
    CHECK(!flab_path_exists(tpath("single/model.safetensors.index.json")));
    REQUIREF(st_open(dir, &back) == 0, "%s", flab_errmsg());
    CHECK(same_tensors(st, back));
    st_close(back);
    free(w);
    st_close(st);
}

static void test_write_sharded(void) {
    SafeTensors *st, *back;
    REQUIREF(st_open(FIX, &st) == 0, "%s", flab_errmsg());
    StWriteTensor *w = views(st);
    char dir[200];
    snprintf(dir, sizeof dir, "%s/sharded", tmpdir);
    flab_mkdir_p(dir, 0755);
    write_text(tpath("sharded/model.safetensors"), "stale");
    write_text(tpath("sharded/model-00002-of-00003.safetensors"), "stale");
    /* 1 MB shards: the 786432-byte embeddings fill most of one each. */
    REQUIREF(st_write_dir(dir, w, st_count(st), 1000000) == 0, "%s", flab_errmsg());
    CHECK(!flab_path_exists(tpath("sharded/model.safetensors")));
    CHECK(!flab_path_exists(tpath("sharded/model-00002-of-00003.safetensors")));
    CHECK(flab_path_exists(tpath("sharded/model.safetensors.index.json")));
    REQUIREF(st_open(dir, &back) == 0, "%s", flab_errmsg());
    CHECK(same_tensors(st, back));
    CHECKF(st_file_count(back) == 9, "%zu shards", st_file_count(back));
    CHECK(flab_path_exists(tpath("sharded/model-00009-of-00009.safetensors")));
    st_close(back);
    /* Writing a single file again removes the shards and the index. */
    REQUIREF(st_write_dir(dir, w, st_count(st), 0) == 0, "%s", flab_errmsg());
    CHECK(!flab_path_exists(tpath("sharded/model.safetensors.index.json")));
    CHECK(!flab_path_exists(tpath("sharded/model-00001-of-00009.safetensors")));
    CHECK(mt_files_equal(FIX "/model.safetensors", tpath("sharded/model.safetensors")));
    free(w);
    st_close(st);
}

/* Rewriting a checkpoint into its own directory from its own mmap is safe:
 * the new files are renamed over the old, whose mappings stay valid. */
static void test_write_in_place(void) {
    char dir[200], *data;
    size_t len;
    snprintf(dir, sizeof dir, "%s/inplace", tmpdir);
    flab_mkdir_p(dir, 0755);
    REQUIRE(flab_read_file(FIX "/model.safetensors", &data, &len) == 0);
    REQUIRE(flab_write_file_atomic(tpath("inplace/model.safetensors"), data, len) == 0);
    free(data);
    SafeTensors *st, *ref, *back;
    REQUIREF(st_open(dir, &st) == 0, "%s", flab_errmsg());
    StWriteTensor *w = views(st);
    REQUIREF(st_write_dir(dir, w, st_count(st), 3000000) == 0, "%s", flab_errmsg());
    CHECK(!flab_path_exists(tpath("inplace/model.safetensors")));
    REQUIREF(st_open(dir, &back) == 0, "%s", flab_errmsg());
    REQUIREF(st_open(FIX, &ref) == 0, "%s", flab_errmsg());
    CHECK(same_tensors(back, ref) && same_tensors(st, ref));
    st_close(back);
    free(w);
    st_close(st);
    /* and back to one file from the shards */
    REQUIREF(st_open(dir, &st) == 0, "%s", flab_errmsg());
    w = views(st);
    REQUIREF(st_write_dir(dir, w, st_count(st), 0) == 0, "%s", flab_errmsg());
    CHECK(mt_files_equal(FIX "/model.safetensors", tpath("inplace/model.safetensors")));
    CHECK(!flab_path_exists(tpath("inplace/model.safetensors.index.json")));
    CHECK(same_tensors(st, ref));
    free(w);
    st_close(st);
    st_close(ref);
}

/* A tensor above the limit gets its own shard; sizes at the limit fit. */
static void test_shard_assignment(void) {
    static float big[100], small[10];
    StWriteTensor w[4] = {
        {.name = "a", .dtype = FLAB_F32, .ndim = 1, .shape = {10}, .data = small, .nbytes = 40},
        {.name = "b", .dtype = FLAB_F32, .ndim = 1, .shape = {100}, .data = big, .nbytes = 400},
        {.name = "c", .dtype = FLAB_F32, .ndim = 1, .shape = {10}, .data = small, .nbytes = 40},
        {.name = "d", .dtype = FLAB_F32, .ndim = 1, .shape = {10}, .data = small, .nbytes = 40},
    };
    char dir[200];
    snprintf(dir, sizeof dir, "%s/assign", tmpdir);
    REQUIREF(st_write_dir(dir, w, 4, 80) == 0, "%s", flab_errmsg());
    SafeTensors *st;
    REQUIREF(st_open(dir, &st) == 0, "%s", flab_errmsg());
    /* huggingface_hub: b (above the limit) is shard 1 at once; a + c = 80
     * fits, d closes it as shard 2; d is shard 3. */
    CHECK(st_file_count(st) == 3);
    CHECK(strstr(st_find(st, "a")->file, "model-00002-of-00003"));
    CHECK(strstr(st_find(st, "b")->file, "model-00001-of-00003"));
    CHECK(strstr(st_find(st, "c")->file, "model-00002-of-00003"));
    CHECK(strstr(st_find(st, "d")->file, "model-00003-of-00003"));
    st_close(st);
    char *idx;
    REQUIRE(flab_read_file(tpath("assign/model.safetensors.index.json"), &idx, NULL) == 0);
    CHECK(strstr(idx, "\"total_size\": 520") != NULL);
    CHECK(strstr(idx, "\"weight_map\": {\n    \"a\": \"model-00002-of-00003.safetensors\",\n") != NULL);
    free(idx);
}

/* Mixed dtypes: file order F32, BF16, F16 (the reference's), all aligned. */
static void test_write_mixed_dtypes(void) {
    static uint16_t h[3] = {1, 2, 3}, bf[1] = {7};
    static float f[2] = {1, 2};
    StWriteTensor w[3] = {
        {.name = "a.half", .dtype = FLAB_F16, .ndim = 1, .shape = {3}, .data = h, .nbytes = 6},
        {.name = "b.bf", .dtype = FLAB_BF16, .ndim = 2, .shape = {1, 1}, .data = bf, .nbytes = 2},
        {.name = "c.float", .dtype = FLAB_F32, .ndim = 1, .shape = {2}, .data = f, .nbytes = 8},
    };
    const char *p = tpath("mixed.safetensors");
    REQUIREF(st_write_file(p, w, 3) == 0, "%s", flab_errmsg());
    char *text;
    size_t len;
    REQUIRE(flab_read_file(p, &text, &len) == 0);
    const char *want = "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"c.float\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b.bf\":{\"dtype\":\"BF16\",\"shape\":[1,1],\"data_offsets\":[8,10]},"
        "\"a.half\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[10,16]}}";
    uint64_t hl = 0;
    memcpy(&hl, text, 8);
    CHECK(hl % 8 == 0 && hl >= strlen(want) && hl - strlen(want) < 8);
    CHECK(!memcmp(text + 8, want, strlen(want)));
    for (size_t i = strlen(want); i < hl; i++) CHECK(text[8 + i] == ' ');
    free(text);
    SafeTensors *st;
    REQUIREF(st_open(p, &st) == 0, "%s", flab_errmsg());
    CHECK(!memcmp(st_find(st, "a.half")->data, h, 6));
    CHECK(!memcmp(st_find(st, "c.float")->data, f, 8));
    st_close(st);
}

static void test_write_rejects(void) {
    static float f[4];
    StWriteTensor ok = {.name = "x", .dtype = FLAB_F32, .ndim = 1, .shape = {4}, .data = f, .nbytes = 16};
    StWriteTensor w[2] = {ok, ok};
    const char *p = tpath("rej.safetensors");
    CHECK(st_write_file(p, w, 2) < 0 && strstr(flab_errmsg(), "\"x\": given twice"));
    w[1].name = "y";
    w[1].nbytes = 12;
    CHECK(st_write_file(p, w, 2) < 0 && strstr(flab_errmsg(), "\"y\": 12 bytes given"));
    w[1].nbytes = 16;
    w[1].shape[0] = -4;
    CHECK(st_write_file(p, w, 2) < 0 && strstr(flab_errmsg(), "negative"));
    w[1].shape[0] = 4;
    w[1].name = "__metadata__";
    CHECK(st_write_file(p, w, 2) < 0 && strstr(flab_errmsg(), "invalid name"));
    w[1].name = "bad\xff";
    CHECK(st_write_file(p, w, 2) < 0 && strstr(flab_errmsg(), "invalid name"));
    w[1].name = "y";
    w[1].ndim = 9;
    CHECK(st_write_file(p, w, 2) < 0 && strstr(flab_errmsg(), "9 dimensions"));
    CHECK(!flab_path_exists(p));
    w[1].ndim = 1;
    REQUIRE(st_write_file(p, w, 2) == 0);
}

/* Names needing JSON escapes survive the round trip. */
static void test_write_escaped_names(void) {
    static float f[1] = {3};
    StWriteTensor w[3] = {
        {.name = "q\"uote\\back", .dtype = FLAB_F32, .ndim = 1, .shape = {1}, .data = f, .nbytes = 4},
        {.name = "tab\tnl\n\x01", .dtype = FLAB_F32, .ndim = 1, .shape = {1}, .data = f, .nbytes = 4},
        {.name = "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80", .dtype = FLAB_F32, .ndim = 1, .shape = {1}, .data = f, .nbytes = 4},
    };
    char dir[200];
    snprintf(dir, sizeof dir, "%s/esc", tmpdir);
    REQUIREF(st_write_dir(dir, w, 3, 4) == 0, "%s", flab_errmsg());  /* sharded: index too */
    SafeTensors *st;
    REQUIREF(st_open(dir, &st) == 0, "%s", flab_errmsg());
    for (int i = 0; i < 3; i++) CHECKF(st_find(st, w[i].name) != NULL, "name %d", i);
    st_close(st);
}

/* bf16 -> f32 -> bf16 is exact; f32 -> f16 -> f32 -> f16 is stable. */
static void test_dtype_convert(void) {
    SafeTensors *st;
    REQUIREF(st_open(FIX, &st) == 0, "%s", flab_errmsg());
    const StTensor *t = st_find(st, "model.layers.0.mlp.down_proj.weight");
    REQUIRE(t && t->dtype == FLAB_BF16);
    size_t n = t->nbytes / 2;
    float *f = st_tensor_f32(t);
    uint16_t *bf = malloc(n * 2), *h = malloc(n * 2), *h2 = malloc(n * 2);
    flab_from_f32(bf, f, FLAB_BF16, n);
    CHECK(!memcmp(bf, t->data, t->nbytes));
    flab_from_f32(h, f, FLAB_F16, n);
    float *g = malloc(n * 4);
    flab_to_f32(g, h, FLAB_F16, n);
    flab_from_f32(h2, g, FLAB_F16, n);
    CHECK(!memcmp(h, h2, n * 2));
    size_t close_enough = 0;
    for (size_t i = 0; i < n; i++) close_enough += fabsf(g[i] - f[i]) <= 1e-3f * fabsf(f[i]) + 6e-8f;
    CHECK(close_enough == n);  /* f16 keeps 11 bits: relative error <= 2^-11 */
    free(f); free(bf); free(h); free(h2); free(g);
    st_close(st);
}

static void test_parse_size(void) {
    size_t n = 0;
    CHECK(st_parse_size("5GB", &n) == 0 && n == 5000000000ull);
    CHECK(st_parse_size("5GiB", &n) == 0 && n == 5ull << 30);
    CHECK(st_parse_size("200MB", &n) == 0 && n == 200000000ull);
    CHECK(st_parse_size("1.5KB", &n) == 0 && n == 1500);
    CHECK(st_parse_size("4096", &n) == 0 && n == 4096);
    CHECK(st_parse_size("5XB", &n) < 0 && strstr(flab_errmsg(), "5XB"));
    CHECK(st_parse_size("-1GB", &n) < 0);
    CHECK(st_parse_size("", &n) < 0);
}

int main(void) {
    if (scratch_make(tmpdir, sizeof tmpdir, "/tmp/flab-st-XXXXXX")) return 1;
    RUN(test_open_fixture);
    RUN(test_open_forms);
    RUN(test_scalar_and_empty);
    RUN(test_misaligned_copy);
    RUN(test_malformed);
    RUN(test_short_files);
    RUN(test_sharded_index);
    RUN(test_write_fixture_identical);
    RUN(test_write_sharded);
    RUN(test_write_in_place);
    RUN(test_shard_assignment);
    RUN(test_write_mixed_dtypes);
    RUN(test_write_rejects);
    RUN(test_write_escaped_names);
    RUN(test_dtype_convert);
    RUN(test_parse_size);
    if (scratch_remove(tmpdir)) return 1;
    return TEST_SUMMARY();
}
