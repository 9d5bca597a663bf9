/* cache/remote.h: the team remote: push and pull of cache artifacts to a
 * shared directory (file://) or an HTTP content-addressed store (http://,
 * https://), as described in docs/REMOTE.md.
 *
 * Remote layout (the same for both kinds; bazel-remote-style paths, served
 * by any WebDAV-enabled HTTP server with PUT, e.g. nginx dav_methods):
 *   <root>/cas/<hash>    an object: the bytes of one file, hash = XXH3-128
 *                        (the local object store's hash, cache.h)
 *   <root>/ac/<key>      the artifact entry of a build key: JSON
 *                        {"format":"flab-ac-1", "key", "target", "metrics",
 *                         "log": {"hash","size"} (optional),
 *                         "files": [{"path","type":"dir"} |
 *                                   {"path","hash","size","mode":"0644"|"0755"}],
 *                         "provenance": {...}}   (the local provenance manifest)
 *
 * INVARIANTS
 *  R1  Push uploads every object of an artifact before its ac/<key> entry,
 *      so an entry on the remote names only objects that were uploaded
 *      completely (HTTP PUT and file:// temp + rename are atomic).
 *  R2  Uploads are idempotent: an object already on the remote with the
 *      expected size is not sent again (HEAD / stat first); identical
 *      concurrent pushes write identical bytes under identical names.
 *  R3  Nothing from the remote enters the local cache unverified: every
 *      downloaded object streams into a temp file (DIR/remote-parts/<hash>.part),
 *      is checked for its size and XXH3-128 hash, and only then is renamed
 *      into a staging directory and committed by cache_commit() (I1-I9 of
 *      cache.h hold for pulled artifacts exactly as for built ones).  A
 *      corrupt or truncated object is deleted, reported, and fails the pull.
 *  R4  Credentials come only from the environment (FLAB_REMOTE_TOKEN, or
 *      FLAB_REMOTE_USER + FLAB_REMOTE_PASSWORD); a URL with user:password@ is
 *      refused; no message, manifest or provenance entry contains them.
 *  R5  A partial download (.part) survives an interruption and is resumed
 *      (HTTP Range) by the next pull of the same object; a resumed file that
 *      fails verification is downloaded once more from the start.
 *
 * Errors: -1 with flab_errmsg() naming the remote (URL without
 * credentials), the object or key, and the cause (HTTP status, curl error,
 * authentication failure, hash mismatch).  Nothing is printed; progress
 * goes to the optional callback. */
#ifndef FLAB_CACHE_REMOTE_H
#define FLAB_CACHE_REMOTE_H
#include "cache/cache.h"
#include <stdint.h>

typedef struct FlabRemote FlabRemote;

/* Objects at least this large report progress (see remote_set_progress). */
#define REMOTE_PROGRESS_MIN_BYTES (32LL << 20)

/* Opens a remote from its URL: file:///abs/dir (created if missing) or
 * http(s)://host[:port][/prefix].  Reads credentials from the environment
 * (R4).  No network traffic yet.  0 or -1. */
int remote_open(const char *url, FlabRemote **out);
void remote_close(FlabRemote *r);   /* NULL is fine */

/* The URL as given, for messages (never holds credentials, R4). */
const char *remote_url(const FlabRemote *r);

/* Parallel uploads (HTTP: concurrent connections); default 4, 1..32. */
void remote_set_jobs(FlabRemote *r, int jobs);

/* Progress of one large object transfer: what = "push"/"pull", hash of the
 * object, bytes done / total, seconds since that transfer started.  Called
 * at most about twice a second per object, and once when it completes
 * (done == total).  Called from the calling thread. */
typedef void (*remote_progress_cb)(void *ud, const char *what, const char *hash,
                                   int64_t done, int64_t total, double seconds);
void remote_set_progress(FlabRemote *r, remote_progress_cb cb, void *ud);

typedef struct {
    uint64_t objects_sent, objects_skipped;   /* push: uploaded / already on the remote */
    uint64_t objects_fetched, objects_local;  /* pull: downloaded / already in the local store */
    uint64_t bytes_sent, bytes_fetched;
    uint64_t artifacts;                       /* artifacts pushed or pulled */
} RemoteStats;

/* 1 when the remote has an entry for key, 0 when not, -1 on error
 * (server unreachable, authentication...). */
int remote_has(FlabRemote *r, const char *key);

/* Uploads the committed local artifact `key` (its objects, its log, then
 * its ac entry, R1).  An artifact whose entry is already on the remote is
 * left as it is (stats->artifacts not incremented, returns 0).  A key not
 * in the local cache is an error.  stats may be NULL (else accumulated).
 * 0 or -1. */
int remote_push(FlabRemote *r, FlabCache *c, const char *key, RemoteStats *stats);

/* Downloads artifact `key` into the local cache (R3) unless it is already
 * committed there.  Returns 1 when the key is now in the local cache
 * (pulled, or already there), 0 when the remote has no entry for it, -1
 * on error (nothing is committed).  stats may be NULL. */
int remote_pull(FlabRemote *r, FlabCache *c, const char *key, RemoteStats *stats);
#endif
