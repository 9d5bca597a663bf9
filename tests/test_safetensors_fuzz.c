/* tests/test_safetensors_fuzz.c: a seeded mutation fuzzer for the
 * safetensors reader, the index reader and the config loader, run as part of
 * the suite (a few seconds).  Every mutated input must either load with all
 * the reader's invariants holding, or fail with a message naming the file;
 * never crash, leak (ASan build) or loop.  FLAB_FUZZ_ITERS=N runs longer;
 * FLAB_FUZZ_SEED=S changes the seed.  tests/fuzz/ has a libFuzzer harness
 * for open-ended runs (docs/MODEL_IO.md). */
#include "model/config.h"
#include "model/safetensors.h"
#include "tests/scratch_testlib.h"
#include "tests/testlib.h"
#include "util/error.h"
#include "util/file.h"
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t rng_state;
static uint64_t rnd(void) {  /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static size_t rnd_below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static char tmpdir[64];

/* Tokens that stress a JSON header parser where it matters. */
static const char *const dict[] = {
    "-1", "0", "1e400", "1.5", "18446744073709551615", "9007199254740993", "4294967296",
    "\"F64\"", "\"I64\"", "\"BF16\"", "\"F32\"", "\"F16\"", "[]", "{}", "null", "true",
    "\"\\ud800\"", "\"\\u0000\"", "[0,0]", "[1,2,3,4,5,6,7,8,9]", "\"__metadata__\"",
    "\"data_offsets\"", "\"shape\"", "\"dtype\"", "{\"a\":1}", ",", ":", "\"", "\xff", "\xc0\x80",
};

typedef struct { unsigned char *b; size_t n, cap; } Bytes;

static void bytes_set(Bytes *x, const void *src, size_t n) {
    if (n + 64 > x->cap) { x->cap = n + 64; x->b = realloc(x->b, x->cap); }
    memcpy(x->b, src, n);
    x->n = n;
}

static void splice(Bytes *x, size_t at, size_t del, const char *ins, size_t nins) {
    if (at > x->n) at = x->n;
    if (del > x->n - at) del = x->n - at;
    size_t n = x->n - del + nins;
    if (n + 1 > x->cap) { x->cap = n * 2 + 64; x->b = realloc(x->b, x->cap); }
    memmove(x->b + at + nins, x->b + at + del, x->n - at - del);
    memcpy(x->b + at, ins, nins);
    x->n = n;
}

static uint64_t header_len(const Bytes *x) {
    uint64_t h = 0;
    for (int i = 7; i >= 0 && x->n >= 8; i--) h = (h << 8) | x->b[i];
    return h;
}

static void set_header_len(Bytes *x, uint64_t h) {
    for (int i = 0; i < 8 && x->n >= 8; i++) x->b[i] = (unsigned char)(h >> (8 * i));
}

/* One random mutation, mostly inside the header where the parser lives.
 * Edits that change the header's size usually fix the length field too, so
 * the JSON (not only the length check) gets exercised. */
static void mutate(Bytes *x) {
    uint64_t hl = header_len(x);
    size_t hend = hl + 8 <= x->n ? (size_t)hl + 8 : x->n;
    size_t at = 8 + rnd_below(hend > 8 ? hend - 8 : 1);
    const char *tok = dict[rnd_below(sizeof dict / sizeof *dict)];
    switch (rnd_below(9)) {
    case 0: if (at < x->n) x->b[at] ^= (unsigned char)(1u << rnd_below(8)); break;
    case 1: if (at < x->n) x->b[at] = (unsigned char)rnd(); break;
    case 2: {  /* replace a run with a dictionary token */
        size_t del = rnd_below(6), old = x->n;
        splice(x, at, del, tok, strlen(tok));
        if (rnd_below(4)) set_header_len(x, hl + x->n - old);
        break;
    }
    case 3: {  /* change a digit */
        for (size_t i = 0; i < 64 && at < hend; i++, at++)
            if (x->b[at] >= '0' && x->b[at] <= '9') { x->b[at] = (unsigned char)('0' + rnd_below(10)); break; }
        break;
    }
    case 4: set_header_len(x, rnd_below(2) ? hl + rnd_below(17) - 8 : rnd()); break;
    case 5: x->n = rnd_below(x->n + 1); break;  /* truncate */
    case 6: {  /* duplicate a chunk of the header */
        size_t len = rnd_below(40), old = x->n;
        if (at + len > hend) len = hend > at ? hend - at : 0;
        char tmp[64];
        memcpy(tmp, x->b + at, len);
        splice(x, at, 0, tmp, len);
        set_header_len(x, hl + x->n - old);
        break;
    }
    case 7: {  /* delete a chunk */
        size_t old = x->n;
        splice(x, at, rnd_below(12), "", 0);
        if (rnd_below(4)) set_header_len(x, hl - (old - x->n));
        break;
    }
    default: {  /* grow or shrink the data section */
        char pad[8] = {0};
        if (rnd_below(2)) splice(x, x->n, 0, pad, 1 + rnd_below(8));
        else if (x->n > hend) x->n -= 1 + rnd_below(x->n - hend < 8 ? x->n - hend : 8);
        break;
    }
    }
}

/* Writes x to an anonymous in-memory file; its path is /proc/self/fd/N. */
static int memfile(const Bytes *x, char *path, size_t cap) {
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (x->n && write(fd, x->b, x->n) != (ssize_t)x->n) { close(fd); return -1; }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

/* The reader's invariants on an accepted file (see model/safetensors.c). */
static int invariants_hold(const SafeTensors *st, size_t file_size) {
    size_t total = 0;
    for (size_t i = 0; i < st_count(st); i++) {
        const StTensor *t = st_at(st, i);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS || numel * flab_dtype_size(t->dtype) != t->nbytes)
            return 0;
        if (i && strcmp(st_at(st, i - 1)->name, t->name) >= 0) return 0;
        if ((uintptr_t)t->data % flab_dtype_size(t->dtype)) return 0;
        volatile unsigned char sum = 0;  /* touch every byte: out of range faults */
        for (size_t k = 0; k < t->nbytes; k++) sum ^= ((const unsigned char *)t->data)[k];
        total += t->nbytes;
    }
    return total <= file_size;
}

static Bytes seed_file(void) {
    static float f[6] = {1, 2, 3, 4, 5, 6};
    static uint16_t h[5] = {1, 2, 3, 4, 5};
    StWriteTensor w[5] = {
        {.name = "model.embed_tokens.weight", .dtype = FLAB_BF16, .ndim = 2, .shape = {2, 2}, .data = h, .nbytes = 8},
        {.name = "b", .dtype = FLAB_F32, .ndim = 1, .shape = {6}, .data = f, .nbytes = 24},
        {.name = "c", .dtype = FLAB_F16, .ndim = 3, .shape = {1, 1, 1}, .data = h, .nbytes = 2},
        {.name = "scalar", .dtype = FLAB_F32, .ndim = 0, .data = f, .nbytes = 4},
        {.name = "empty", .dtype = FLAB_F16, .ndim = 2, .shape = {0, 3}, .data = h, .nbytes = 0},
    };
    char path[128];
    snprintf(path, sizeof path, "%s/seed.safetensors", tmpdir);
    Bytes x = {0};
    if (st_write_file(path, w, 5) < 0) return x;
    char *data;
    size_t n;
    if (flab_read_file(path, &data, &n) == 0) { bytes_set(&x, data, n); free(data); }
    return x;
}

/* Plain write (no fsync: thousands of iterations). */
static int write_plain(const char *path, const Bytes *x) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = x->n ? fwrite(x->b, 1, x->n, f) : 0;
    return fclose(f) == 0 && w == x->n ? 0 : -1;
}

static size_t iterations(size_t dflt) {
    const char *e = getenv("FLAB_FUZZ_ITERS");
    return e && atol(e) > 0 ? (size_t)atol(e) : dflt;
}

static void seed_rng(uint64_t salt) {
    const char *e = getenv("FLAB_FUZZ_SEED");
    rng_state = (e ? strtoull(e, NULL, 10) : 20261124ull) * 0x9E3779B97F4A7C15ull + salt;
    if (!rng_state) rng_state = 1;
}

static void test_fuzz_safetensors_header(void) {
    Bytes seed = seed_file(), x = {0};
    REQUIREF(seed.n > 8, "seed: %s", flab_errmsg());
    seed_rng(1);
    size_t n = iterations(6000), accepted = 0, rejected = 0;
    for (size_t it = 0; it < n; it++) {
        bytes_set(&x, seed.b, seed.n);
        size_t k = 1 + rnd_below(4);
        for (size_t m = 0; m < k; m++) mutate(&x);
        char path[64];
        int fd = memfile(&x, path, sizeof path);
        REQUIRE(fd >= 0);
        SafeTensors *st = NULL;
        flab_error_clear();
        if (st_open_file(path, &st) == 0) {
            accepted++;
            CHECKF(invariants_hold(st, x.n), "iteration %zu: invariants broken", it);
            st_close(st);
        } else {
            rejected++;
            CHECKF(st == NULL && strstr(flab_errmsg(), path), "iteration %zu: message \"%s\"", it,
                   flab_errmsg());
        }
        close(fd);
    }
    /* The mutations must exercise both outcomes, or the fuzzer is blind. */
    CHECKF(accepted > n / 200 && rejected > n / 2, "accepted %zu rejected %zu", accepted, rejected);
    free(seed.b);
    free(x.b);
}

/* Sharded: a valid two-shard dir, then mutate the index text. */
static void test_fuzz_index(void) {
    static float f[4];
    StWriteTensor w[3] = {
        {.name = "a", .dtype = FLAB_F32, .ndim = 1, .shape = {4}, .data = f, .nbytes = 16},
        {.name = "b", .dtype = FLAB_F32, .ndim = 1, .shape = {4}, .data = f, .nbytes = 16},
        {.name = "c", .dtype = FLAB_F32, .ndim = 1, .shape = {2}, .data = f, .nbytes = 8},
    };
    char dir[128], idx[200];
    snprintf(dir, sizeof dir, "%s/idx", tmpdir);
    REQUIREF(st_write_dir(dir, w, 3, 20) == 0, "%s", flab_errmsg());
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    char *text;
    size_t len;
    REQUIRE(flab_read_file(idx, &text, &len) == 0);
    Bytes seed = {0}, x = {0};
    bytes_set(&seed, text, len);
    free(text);
    seed_rng(2);
    size_t n = iterations(6000) / 6, accepted = 0;
    for (size_t it = 0; it < n; it++) {
        bytes_set(&x, seed.b, seed.n);
        size_t at = rnd_below(x.n);
        const char *tok = dict[rnd_below(sizeof dict / sizeof *dict)];
        if (rnd_below(2)) splice(&x, at, rnd_below(4), tok, strlen(tok));
        else if (at < x.n) x.b[at] ^= (unsigned char)(1u << rnd_below(8));
        REQUIRE(write_plain(idx, &x) == 0);
        SafeTensors *st = NULL;
        if (st_open(dir, &st) == 0) {
            accepted++;
            CHECK(st_count(st) <= 3 && invariants_hold(st, 1u << 20));
            st_close(st);
        } else {
            CHECKF(st == NULL && strstr(flab_errmsg(), dir), "iteration %zu: \"%s\"", it,
                   flab_errmsg());
        }
    }
    CHECK(accepted > 0);
    free(seed.b);
    free(x.b);
}

static void test_fuzz_config(void) {
    char *text;
    size_t len;
    REQUIRE(flab_read_file(FIXTURE_DIR "/tiny-qwen2/config.json", &text, &len) == 0);
    Bytes seed = {0}, x = {0};
    bytes_set(&seed, text, len);
    free(text);
    char path[200];
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    seed_rng(3);
    size_t n = iterations(6000) / 6, accepted = 0;
    for (size_t it = 0; it < n; it++) {
        bytes_set(&x, seed.b, seed.n);
        for (size_t m = 0; m < 1 + rnd_below(3); m++) {
            size_t at = rnd_below(x.n);
            const char *tok = dict[rnd_below(sizeof dict / sizeof *dict)];
            if (rnd_below(2)) splice(&x, at, rnd_below(4), tok, strlen(tok));
            else if (at < x.n) x.b[at] = (unsigned char)('0' + rnd_below(10));
        }
        REQUIRE(write_plain(path, &x) == 0);
        ModelConfig c;
        if (model_config_load(tmpdir, &c) == 0) {
            accepted++;
            CHECK(c.hidden_size > 0 && c.num_attention_heads > 0 && c.head_dim > 0 &&
                  c.num_attention_heads % c.num_key_value_heads == 0 && c.n_eos <= FLAB_MAX_EOS);
            model_config_free(&c);
        } else {
            CHECKF(strstr(flab_errmsg(), "config.json"), "iteration %zu: \"%s\"", it, flab_errmsg());
        }
    }
    CHECK(accepted > 0);
    free(seed.b);
    free(x.b);
}

int main(void) {
    if (scratch_make(tmpdir, sizeof tmpdir, "/tmp/flab-fuzz-XXXXXX")) return 1;
    RUN(test_fuzz_safetensors_header);
    RUN(test_fuzz_index);
    RUN(test_fuzz_config);
    if (scratch_remove(tmpdir)) return 1;
    return TEST_SUMMARY();
}
