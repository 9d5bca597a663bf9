/* cache/remote_priv.h: what the remote's files share: the handle and the
 * transport interface that cache/remote_http.c (libcurl) and
 * cache/remote_file.c (a directory) implement.
 *
 * Paths given to a transport are relative to the remote root and always
 * "cas/<hash>" or "ac/<key>" (built by remote.c from validated hashes). */
#ifndef FLAB_CACHE_REMOTE_PRIV_H
#define FLAB_CACHE_REMOTE_PRIV_H
#include "cache/remote.h"
#include <stddef.h>
#include <stdint.h>

/* One upload of a batch: a file (path on disk) or bytes in memory. */
typedef struct {
    const char *path;         /* remote path */
    const char *file;         /* local source file, or NULL */
    const char *data;         /* in-memory body when file == NULL */
    size_t len;
    const char *hash;         /* for progress ("" for ac entries) */
    int64_t size;             /* body size */
} RemotePut;

typedef struct {
    /* 1 (exists; *size filled when size != NULL, -1 if unknown), 0 (absent), -1 error. */
    int (*head)(FlabRemote *r, const char *path, int64_t *size);
    /* Whole small body into memory: 1 (*buf malloc'd, NUL-terminated), 0 absent, -1. */
    int (*get_mem)(FlabRemote *r, const char *path, char **buf, size_t *len);
    /* Appends the object's bytes from offset `have` (the current size of the
     * open fd) to fd: a resumed download.  When the server cannot resume it
     * truncates fd and writes the whole body.  1 done, 0 absent, -1 error. */
    int (*get_file)(FlabRemote *r, const char *path, const char *hash, int fd, int64_t have,
                    int64_t total);
    /* Uploads n bodies, up to r->jobs at once.  0 when all succeeded, -1
     * (the first error) otherwise. */
    int (*put)(FlabRemote *r, const RemotePut *puts, size_t n);
    void (*close)(FlabRemote *r);
} RemoteTransport;

struct FlabRemote {
    char *url;                /* as given, without credentials */
    char *root;               /* file: absolute directory; http: base URL without trailing '/' */
    const RemoteTransport *t;
    void *impl;               /* transport state */
    int jobs;
    remote_progress_cb progress;
    void *progress_ud;
};

extern const RemoteTransport remote_http_transport;
extern const RemoteTransport remote_file_transport;
/* Transport setup: 0 or -1 (r->url and r->root set). */
int remote_http_init(FlabRemote *r);
int remote_file_init(FlabRemote *r);

/* The ac/<key> entry (format in remote.h), parsed and validated. */
typedef struct {
    char *target, *metrics_json, *provenance_json;  /* provenance_json may be NULL */
    char log_hash[33];                              /* "" when the build had no log */
    int64_t log_size;
    CacheFile *files;                               /* mode 040755 for directories */
    size_t nfiles;
} RemoteEntry;
/* The entry's JSON text (malloc'd) for a committed artifact a. */
char *remote_entry_build(const CacheArtifact *a, const char *log_hash, int64_t log_size,
                         const char *provenance_json);
/* Parses and validates text fetched for key (where names it in errors):
 * format, key, hashes, sizes, modes, and clean relative paths (no "..",
 * no absolute path, no empty component).  0 or -1; free with remote_entry_free. */
int remote_entry_parse(const char *text, const char *key, const char *where, RemoteEntry *e);
void remote_entry_free(RemoteEntry *e);

/* Progress throttle shared by the transports: calls r->progress for large
 * objects at most every 0.5 s and always when done == total. */
typedef struct {
    double start, last;
} RemoteTick;
void remote_tick_start(RemoteTick *t);
void remote_tick(FlabRemote *r, RemoteTick *t, const char *what, const char *hash,
                 int64_t done, int64_t total);
double remote_now(void);
#endif
