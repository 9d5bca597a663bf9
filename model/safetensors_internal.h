/* model/safetensors_internal.h: helpers shared by the model I/O files
 * (safetensors reader and writer, config, checkpoint); not a public API. */
#ifndef FLAB_MODEL_SAFETENSORS_INTERNAL_H
#define FLAB_MODEL_SAFETENSORS_INTERNAL_H
#include <stddef.h>

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
int st_utf8_valid(const char *s, size_t n);
/* malloc'd "dir/name". */
char *st_path_join(const char *dir, const char *name);
#endif
