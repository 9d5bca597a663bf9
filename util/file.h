/* util/file.h: small whole-file helpers shared by every module. */
#ifndef FLAB_UTIL_FILE_H
#define FLAB_UTIL_FILE_H
#include <stddef.h>

/* Reads the whole file into a NUL-terminated malloc'd buffer (*len excludes
 * the NUL; len may be NULL).  Returns 0, or -1 with a message naming path. */
int flab_read_file(const char *path, char **data, size_t *len);

/* Writes data durably: temp file in the same directory, fsync, rename,
 * fsync of the directory.  Readers see the old file or the new, never half. */
int flab_write_file_atomic(const char *path, const void *data, size_t len);

/* mkdir -p; 0 on success (also when it exists). */
int flab_mkdir_p(const char *path, unsigned mode);

/* 1 if path exists (any type), 0 if not. */
int flab_path_exists(const char *path);
#endif
