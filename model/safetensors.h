/* model/safetensors.h: read (mmap) and write safetensors checkpoints.
 * CONTRACT of the skeleton: the names below are used by model/transformer and
 * the rules; the implementation (model/safetensors.c) may add functions.
 *
 * A SafeTensors is one .safetensors file or a sharded set behind a
 * model.safetensors.index.json; tensors point into read-only mmaps (no copy).
 * Every structural problem is an error naming the file and the tensor. */
#ifndef FLAB_MODEL_SAFETENSORS_H
#define FLAB_MODEL_SAFETENSORS_H
#include "model/dtype.h"
#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

typedef struct {
    const char *name;
    FlabDType dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;      /* into the mmap; little-endian */
    size_t nbytes;
    const char *file;      /* the shard it lives in */
} StTensor;

typedef struct SafeTensors SafeTensors;

/* path: a .safetensors file, a model.safetensors.index.json, or a model
 * directory (model.safetensors, else model.safetensors.index.json). */
int st_open(const char *path, SafeTensors **out);
void st_close(SafeTensors *st);
size_t st_count(const SafeTensors *st);
const StTensor *st_at(const SafeTensors *st, size_t i);        /* sorted by name */
const StTensor *st_find(const SafeTensors *st, const char *name); /* NULL if absent */

/* The two ways st_open dispatches, callable directly. */
int st_open_file(const char *path, SafeTensors **out);   /* one .safetensors */
int st_open_index(const char *index, SafeTensors **out); /* an index.json */
/* The files behind st (1 for a single file; the shards in index order). */
size_t st_file_count(const SafeTensors *st);
const char *st_file_path(const SafeTensors *st, size_t i);
/* A string of the first file's __metadata__ (e.g. "format"), or NULL. */
const char *st_metadata(const SafeTensors *st, const char *key);
/* "F32" / "F16" / "BF16", and back (-1 for any other name). */
const char *st_dtype_name(FlabDType t);
int st_dtype_parse(const char *s, FlabDType *out);

/* Writing: tensors are given by the caller (data in memory or mmap). */
typedef struct {
    const char *name;
    FlabDType dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
} StWriteTensor;

/* Writes dir/model.safetensors, or when the total exceeds max_shard_bytes
 * (0 = HF's default 5 GB) dir/model-0000N-of-0000M.safetensors plus
 * model.safetensors.index.json.  Tensors are written sorted by name, with
 * metadata {"format": "pt"}. */
int st_write_dir(const char *dir, const StWriteTensor *tensors, size_t n,
                 size_t max_shard_bytes);
/* Within each file the byte order is the reference writer's: dtype widest
 * first (F32, BF16, F16), then name (so every tensor stays aligned); for a
 * one-dtype checkpoint that is name order.  The sharded layout follows
 * huggingface_hub (name order, a new shard when the next tensor would pass
 * the limit); stale model files of an earlier checkpoint in dir are removed.
 * st_write_file writes one .safetensors file at path (durably, no index). */
int st_write_file(const char *path, const StWriteTensor *tensors, size_t n);
/* Parses a shard size like HF's max_shard_size: "5GB" = 5*10^9 bytes,
 * "500MiB" = 500*2^20, "1000" = bytes. */
int st_parse_size(const char *s, size_t *out);
/* A StWriteTensor that points at t's data (for read-modify-write). */
StWriteTensor st_write_view(const StTensor *t);
#endif
