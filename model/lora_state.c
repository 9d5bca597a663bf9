/* model/lora_state.c: the resumable training state of a LoraModel (see
 * model/lora.h).  Layout (little-endian):
 *   "FLABLORA" | u32 version | u32 r | u32 layers | u32 target_mask |
 *   i64 step | u64 extra_len | per adapted module in (layer, module) order:
 *   A, B, mA, vA, mB, vB (float32) | extra | u64 XXH3 of everything before.
 * Written to a temp file then renamed, so a kill leaves the previous state. */
#include "model/lora_internal.h"
#include "util/error.h"
#include "util/file.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define STATE_MAGIC "FLABLORA"
#define STATE_VERSION 1u

typedef struct { char *p; size_t n, cap; } Buf;

static void put(Buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = flab_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void each_array(const LoraModel *m, Buf *w, const char **rd, int writing) {
    for (int l = 0; l < m->ck.cfg.num_hidden_layers; l++)
        for (int i = 0; i < LORA_NMOD; i++) {
            const LoraLinear *li = &m->layers[l].lin[i];
            if (!li->A) continue;
            size_t na = (size_t)m->lc.r * li->in * 4, nb = (size_t)m->lc.r * li->out * 4;
            float *arr[6] = {li->A, li->B, li->mA, li->vA, li->mB, li->vB};
            size_t sz[6] = {na, nb, na, na, nb, nb};
            for (int k = 0; k < 6; k++) {
                if (writing) put(w, arr[k], sz[k]);
                else { memcpy(arr[k], *rd, sz[k]); *rd += sz[k]; }
            }
        }
}

static size_t arrays_bytes(const LoraModel *m) {
    size_t n = 0;
    for (int l = 0; l < m->ck.cfg.num_hidden_layers; l++)
        for (int i = 0; i < LORA_NMOD; i++) {
            const LoraLinear *li = &m->layers[l].lin[i];
            if (li->A) n += (size_t)m->lc.r * (li->in + li->out) * 4 * 3;
        }
    return n;
}

int lora_state_save(const LoraModel *m, const char *path, long step, const void *extra,
                    size_t extra_len) {
    Buf b = {0};
    uint32_t hdr[4] = {STATE_VERSION, (uint32_t)m->lc.r, (uint32_t)m->ck.cfg.num_hidden_layers,
                       m->lc.target_mask};
    int64_t st = step;
    uint64_t el = extra_len;
    put(&b, STATE_MAGIC, 8); put(&b, hdr, sizeof hdr); put(&b, &st, 8); put(&b, &el, 8);
    each_array(m, &b, NULL, 1);
    if (extra_len) put(&b, extra, extra_len);
    uint64_t h = XXH3_64bits(b.p, b.n);
    put(&b, &h, 8);
    int rc = flab_write_file_atomic(path, b.p, b.n);
    free(b.p);
    return rc;
}

int lora_state_load(LoraModel *m, const char *path, long *step, void *extra, size_t extra_len) {
    if (!flab_path_exists(path)) return 0;
    char *d = NULL;
    size_t n = 0;
    if (flab_read_file(path, &d, &n)) return -1;
    size_t want = 8 + 16 + 16 + arrays_bytes(m) + extra_len + 8;
    uint32_t hdr[4];
    int64_t st;
    uint64_t el, h;
    int rc = -1;
    if (n != want || memcmp(d, STATE_MAGIC, 8)) { flab_fail("%s: not a flab LoRA state of this setup (size %zu, expected %zu)", path, n, want); goto out; }
    memcpy(hdr, d + 8, 16); memcpy(&st, d + 24, 8); memcpy(&el, d + 32, 8); memcpy(&h, d + n - 8, 8);
    if (hdr[0] != STATE_VERSION) { flab_fail("%s: state version %u, expected %u", path, hdr[0], STATE_VERSION); goto out; }
    if (hdr[1] != (uint32_t)m->lc.r || hdr[2] != (uint32_t)m->ck.cfg.num_hidden_layers ||
        hdr[3] != m->lc.target_mask || el != extra_len) { flab_fail("%s: state of a different LoRA setup", path); goto out; }
    if (XXH3_64bits(d, n - 8) != h) { flab_fail("%s: checksum mismatch (corrupt state)", path); goto out; }
    const char *rd = d + 40;
    each_array(m, NULL, &rd, 0);
    if (extra_len) memcpy(extra, rd, extra_len);
    *step = (long)st;
    rc = 1;
out:
    free(d);
    return rc;
}
