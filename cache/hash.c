/* cache/hash.c: XXH3-128 content hashing, written the way `xxhsum -H2` does.
 *
 * Digests are printed from XXH128_canonicalFromHash (big-endian high64 then
 * low64), so a file's hash here equals the first column of `xxhsum -H2`.
 * Files are hashed through mmap in 64 MiB windows with MAP_POPULATE, which
 * reads page-cached data at memory speed without a copy; where mmap is not
 * possible (pipes, special files) a read() loop does the same job. */
#include "cache/internal.h"
#include <stdio.h>
#include "util/error.h"
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

struct FlabHasher { XXH3_state_t *st; };

static void canonical_hex(XXH128_hash_t h, char out[33]) {
    XXH128_canonical_t canon;
    XXH128_canonicalFromHash(&canon, h);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[canon.digest[i] >> 4];
        out[2 * i + 1] = digits[canon.digest[i] & 15];
    }
    out[32] = 0;
}

void flab_hash_bytes(const void *data, size_t len, char out_hex[33]) {
    canonical_hex(XXH3_128bits(data, len), out_hex);
}

int flab_hash_is_valid(const char *s) {
    if (!s) return 0;
    for (int i = 0; i < FLAB_HASH_HEX_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return s[FLAB_HASH_HEX_LEN] == 0;
}

/* ---- streaming hasher ------------------------------------------------ */

FlabHasher *flab_hasher_new(void) {
    FlabHasher *h = flab_xmalloc(sizeof *h);
    h->st = XXH3_createState();
    if (!h->st) { free(h); return NULL; }
    XXH3_128bits_reset(h->st);
    return h;
}

void flab_hasher_update(FlabHasher *h, const void *data, size_t len) {
    XXH3_128bits_update(h->st, data, len);
}

/* Typed, length-prefixed fields: a tag byte, then the length, then bytes. */
void flab_hasher_str(FlabHasher *h, const char *s) {
    if (!s) { flab_hasher_update(h, "N", 1); return; }
    uint64_t n = strlen(s);
    flab_hasher_update(h, "S", 1);
    flab_hasher_update(h, &n, sizeof n);
    flab_hasher_update(h, s, n);
}

void flab_hasher_u64(FlabHasher *h, uint64_t v) {
    flab_hasher_update(h, "U", 1);
    flab_hasher_update(h, &v, sizeof v);
}

void flab_hasher_digest(const FlabHasher *h, char out_hex[33]) {
    canonical_hex(XXH3_128bits_digest(h->st), out_hex);
}

void flab_hasher_free(FlabHasher *h) {
    if (!h) return;
    XXH3_freeState(h->st);
    free(h);
}

/* ---- files ------------------------------------------------------------ */

#define MAP_WINDOW ((size_t)64 << 20)

static int hash_fd_read(int fd, XXH3_state_t *st) {
    size_t cap = (size_t)1 << 20;
    char *buf = flab_xmalloc(cap);
    for (;;) {
        ssize_t r = read(fd, buf, cap);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { free(buf); return -1; }
        if (r == 0) break;
        XXH3_128bits_update(st, buf, (size_t)r);
    }
    free(buf);
    return 0;
}

static int hash_fd_mmap(int fd, int64_t size, XXH3_state_t *st) {
    for (int64_t off = 0; off < size; off += (int64_t)MAP_WINDOW) {
        size_t len = (size_t)(size - off) < MAP_WINDOW ? (size_t)(size - off) : MAP_WINDOW;
        void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, off);
        if (p == MAP_FAILED) return -1;
        XXH3_128bits_update(st, p, len);
        munmap(p, len);
    }
    return 0;
}

/* Hashes the whole content of fd from offset 0.  size < 0: unknown
 * (read to EOF).  0, or -1 with errno set. */
int cache_i_hash_file_fd(int fd, int64_t size, char hex[33]) {
    XXH3_state_t *st = XXH3_createState();
    if (!st) { errno = ENOMEM; return -1; }
    XXH3_128bits_reset(st);
    int rc;
    if (size > 0 && hash_fd_mmap(fd, size, st) == 0) rc = 0;
    else {
        XXH3_128bits_reset(st);
        rc = lseek(fd, 0, SEEK_SET) < 0 && size > 0 ? -1 : hash_fd_read(fd, st);
    }
    if (rc == 0) canonical_hex(XXH3_128bits_digest(st), hex);
    XXH3_freeState(st);
    return rc;
}

int flab_hash_file(const char *path, char out_hex[33]) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return flab_fail_errno("%s: cannot open", path);
    struct stat st;
    if (fstat(fd, &st) < 0) { close(fd); return flab_fail_errno("%s: stat", path); }
    if (S_ISDIR(st.st_mode)) { close(fd); return flab_fail("%s: is a directory", path); }
    int rc = cache_i_hash_file_fd(fd, S_ISREG(st.st_mode) ? st.st_size : -1, out_hex);
    if (rc < 0) flab_fail_errno("%s: read", path);
    close(fd);
    return rc;
}
