/* cache/cache.h: the flab artifact cache (public API of cache/).
 *
 * The cache stores the outputs of builds ("artifacts": a directory of files)
 * under the build's key (32 lowercase hex chars, XXH3-128, computed by the
 * engine).  File contents live once in a content-addressed object store; an
 * SQLite index (WAL) maps key -> manifest (relpath -> object hash, size,
 * mode) + metrics + log; consumers read a read-only "materialised" directory
 * made of hard links to the objects (no copy of multi-GB weights).
 *
 * On-disk layout of a cache directory DIR (details in docs/CACHE.md):
 *   DIR/index.sqlite            the index (WAL; application_id 'FLAB', user_version)
 *   DIR/objects/ab/<hash>       object, mode 0444  (ab = first 2 hex chars of hash)
 *   DIR/objects/ab/<hash>.x     same content with the executable bit, mode 0555
 *   DIR/artifacts/<key>/...     materialised read-only artifact (hard links, dirs 0555)
 *   DIR/staging/<key>.<pid>.<n>/out   private staging dir of one running build
 *   DIR/staging/<key>.<pid>.<n>/log   the build's log file (stdout+stderr of the rule)
 *   DIR/locks/<key>.lock        per-key build lock (flock)
 *   DIR/locks/provenance.lock   serialises provenance commits
 *   DIR/provenance.git/         bare git repository: targets/<target>.json, one commit per build
 *
 * INVARIANTS (numbered so code and tests can cite them; checked by
 * cache_check_invariants() and relied upon by every reader):
 *
 *  I1  An artifact row exists in the index only if every object its manifest
 *      (and its log) names was written, fsynced and renamed into objects/
 *      before the row's transaction committed.  Readers never see a partial
 *      artifact: the row is the single commit point.
 *  I2  An object file objects/ab/<h>[.x] is read-only and its bytes hash to
 *      <h>, unless damaged from outside; cache_verify() detects damage, removes
 *      the object and drops every artifact row that names it.
 *  I3  Files under objects/ are never modified in place: created by rename of
 *      a fully written, fsynced temp file, removed only by gc/verify.
 *  I4  artifacts/<key> appears only by rename(2) of a fully built temp
 *      directory, so it is complete or absent.  cache_lookup() returns a
 *      directory only for a key with an index row, and (re)materialises the
 *      directory if it is missing.  A directory without a row is garbage.
 *  I5  At most one process (or thread) builds a given key at a time: the
 *      builder holds flock(LOCK_EX) on locks/<key>.lock from cache_begin()
 *      until cache_commit()/cache_abort(); a second builder waits and then
 *      finds the artifact already committed.  kill -9 releases the lock.
 *  I6  Everything else a crash can leave (temp files, objects without a row,
 *      staging dirs, half-built artifact temp dirs, lock files) is garbage:
 *      never read by lookups, removed by the next cache_begin() of that key
 *      or by cache_gc().
 *  I7  The index carries application_id 0x464C4142 ('FLAB') and
 *      user_version CACHE_INDEX_VERSION; a cache with another version is
 *      refused with a clear error, never misread.
 *  I8  A stat-cache entry is trusted only when path, size, mtime_ns, ctime_ns,
 *      inode and device all match AND the file was at least
 *      CACHE_STAT_SLACK_NS older (ctime and mtime) than the moment it was
 *      hashed, so a write in the same timestamp tick is never missed.
 *  I9  A provenance commit happens only after the artifact row committed;
 *      commits are serialised by locks/provenance.lock.  A crash between the
 *      two can lose a provenance entry, never invent one.
 *
 * Threads: a FlabCache handle may be used from several threads; public
 * functions serialise on an internal mutex (never held while waiting for a
 * build lock).  Several processes may open the same directory.
 *
 * Errors: every function returning int returns -1 on error with a message
 * from flab_errmsg() (util/error.h) naming the path or key; nothing is
 * printed.  Strings returned inside structs are owned by the struct and freed
 * by its *_free function. */
#ifndef FLAB_CACHE_CACHE_H
#define FLAB_CACHE_CACHE_H
#include <stddef.h>
#include <stdint.h>

#define CACHE_INDEX_VERSION 1
#define CACHE_APPLICATION_ID 0x464C4142 /* 'FLAB' */
#define FLAB_HASH_HEX_LEN 32            /* hex chars of an XXH3-128 digest */
#define CACHE_STAT_SLACK_NS 2000000000LL /* I8: 2 s (coarse-timestamp file systems) */

/* ===================================================================
 * Hashing (cache/hash.c): XXH3-128, written as 32 lowercase hex chars in
 * the canonical (big-endian) byte order, i.e. exactly what `xxhsum -H2`
 * prints.  out_hex buffers are char[FLAB_HASH_HEX_LEN + 1].
 * =================================================================== */

/* Hash of a byte buffer. */
void flab_hash_bytes(const void *data, size_t len, char out_hex[33]);

/* Streaming hasher, for keys.  flab_hasher_str/u64 add length-prefixed,
 * typed fields so that ("ab","c") and ("a","bc") hash differently; use them
 * (not raw update) to build keys from several fields. */
typedef struct FlabHasher FlabHasher;
FlabHasher *flab_hasher_new(void);
void flab_hasher_update(FlabHasher *h, const void *data, size_t len);
void flab_hasher_str(FlabHasher *h, const char *s);   /* NULL hashes as a distinct "null" */
void flab_hasher_u64(FlabHasher *h, uint64_t v);
void flab_hasher_digest(const FlabHasher *h, char out_hex[33]);  /* may continue updating */
void flab_hasher_free(FlabHasher *h);

/* Content hash of one regular file (mmap + XXH3, no stat cache).
 * Equals `xxhsum -H2 path`.  0 or -1. */
int flab_hash_file(const char *path, char out_hex[33]);

/* 1 if s is 32 lowercase hex chars, else 0. */
int flab_hash_is_valid(const char *s);

/* ===================================================================
 * Open / close (cache/index.c)
 * =================================================================== */
typedef struct FlabCache FlabCache;

/* Creates (mkdir -p) or opens the cache in dir.  Fails, with a message naming
 * the file, on an index of unknown application_id/version (I7).  0 or -1.
 * Durability: by default every durable step is fsynced (power-loss safe).
 * The environment variable FLAB_CACHE_FSYNC=0 turns fsync off for the whole
 * process (tests, benchmarks, scratch caches): kill -9 safety (all
 * invariants) is unchanged, only power-loss durability is given up. */
int cache_open(const char *dir, FlabCache **out);
void cache_close(FlabCache *c);             /* NULL is fine */
const char *cache_dir(const FlabCache *c);  /* absolute path of the cache dir */

/* ===================================================================
 * Input hashing with the stat cache (cache/statcache.c)
 * =================================================================== */

/* Content hash of a regular file, via the stat cache (I8): an unchanged file
 * is not re-read.  Follows symlinks.  0 or -1 (missing file names path). */
int cache_hash_file(FlabCache *c, const char *path, char out_hex[33]);

/* Content hash of a file (same as cache_hash_file) or of a directory.
 * Directory hash = XXH3-128 over the entries sorted by relative path
 * (bytewise), each written as
 *     "f <relpath>\0<x|->\0<file hash>\n"   regular file (x = any exec bit)
 *     "d <relpath>\0\n"                     sub-directory (so empty dirs count)
 * Symlinks are followed; dangling ones are an error.  Names starting with
 * ".flab" and VCS dirs are NOT skipped: the hash covers everything. */
int cache_hash_path(FlabCache *c, const char *path, char out_hex[33]);

/* Counters for tests and benchmarks (since cache_open). */
typedef struct {
    uint64_t files_hashed;     /* files actually read and hashed */
    uint64_t bytes_hashed;
    uint64_t stat_hits;        /* files answered by the stat cache */
} CacheStats;
void cache_get_stats(FlabCache *c, CacheStats *out);

/* ===================================================================
 * Artifacts: lookup (cache/artifacts.c, cache/materialize.c)
 * =================================================================== */
typedef struct {
    char *relpath;      /* "weights/model.safetensors"; '/'-separated */
    char hash[33];      /* object hash ("" for a directory entry) */
    int64_t size;
    unsigned mode;      /* 0644/0755-style permission bits of the file, or 040755 for a dir */
} CacheFile;

typedef struct {
    char key[33];
    char *target;        /* target name recorded at commit */
    char *dir;           /* absolute path of the read-only materialised directory */
    char *metrics_json;  /* JSON text given at commit ("{}" if none) */
    char *log_path;      /* read-only file holding the build log, or NULL if the log was empty */
    int64_t created_ns;  /* commit time, ns since the epoch */
    int64_t total_bytes; /* sum of file sizes */
    CacheFile *files;    /* manifest: every file and directory, sorted by relpath */
    size_t nfiles;
} CacheArtifact;
void cache_artifact_free(CacheArtifact *a);   /* frees members, not a itself; zeroes it */

/* 1 and *out filled (materialising artifacts/<key> if missing) when key is
 * committed; 0 when not; -1 on error.  out may be NULL (then nothing is
 * materialised: a cheap existence check).  Fast path: one indexed SQLite
 * query plus one stat() when the directory is there. */
int cache_lookup(FlabCache *c, const char *key, CacheArtifact *out);

/* Calls cb for each committed artifact, oldest first (manifest not loaded:
 * files = NULL, nfiles = its number of manifest entries);
 * cb returns nonzero to stop.  0 or -1. */
typedef int (*cache_artifact_cb)(const CacheArtifact *a, void *ud);
int cache_list(FlabCache *c, cache_artifact_cb cb, void *ud);

/* ===================================================================
 * Building (cache/build.c, cache/objects.c, cache/materialize.c, cache/provenance.c)
 *
 *   CacheBuild *b;
 *   int r = cache_begin(c, key, 0, &b);
 *   if (r == 1) -> someone else committed it meanwhile: cache_lookup().
 *   if (r == 0) -> run the rule writing into cache_build_outdir(b), its
 *                  stdout/stderr into cache_build_logpath(b), then either
 *                  cache_commit(b, ...) or cache_abort(b).
 * =================================================================== */
typedef struct CacheBuild CacheBuild;

/* Flags of cache_begin (macros, so callers can test for them with #ifdef). */
#define CACHE_BEGIN_NOWAIT 1  /* return 2 instead of waiting while another builder holds the key */
#define CACHE_BEGIN_FORCE 2   /* build even if the key is committed (flab build -B); the
                                 commit then replaces the artifact */

/* Takes the per-key lock (I5; waits unless CACHE_BEGIN_NOWAIT), removes any
 * stale staging of this key (I6), creates an empty private staging dir.
 * Returns 0 (*out = build, you must commit or abort it), 1 (key already
 * committed; *out = NULL, nothing to do), 2 (NOWAIT and busy; *out = NULL),
 * -1 error. */
int cache_begin(FlabCache *c, const char *key, int flags, CacheBuild **out);

const char *cache_build_outdir(const CacheBuild *b);  /* absolute; rule writes its outputs here */
const char *cache_build_logpath(const CacheBuild *b); /* absolute; an existing empty file */
const char *cache_build_key(const CacheBuild *b);

/* Commits the staged outputs as artifact `key` (I1-I4):
 *   1. walks outdir (symlinks followed; dangling symlink / fifo / socket = error),
 *      hashes every file, fsyncs it, renames it into objects/ (an existing
 *      object with that hash is kept and the staged copy dropped: dedup);
 *      the log file too if non-empty;
 *   2. one SQLite transaction writes the artifact row + manifest;
 *   3. materialises artifacts/<key> (temp dir + rename);
 *   4. provenance: commits targets/<target>.json to provenance.git.  The
 *      JSON is provenance_json (a JSON object or NULL) with "target", "key",
 *      "outputs" ({relpath: {"hash","size","mode"}}), "metrics" and "log"
 *      (hash of the log object, when non-empty) added (overriding same-named
 *      fields), commit message "build <target> <key>".  JSON numbers pass
 *      through cJSON as doubles: give integers above 2^53 (ns timestamps)
 *      as strings.
 * metrics_json: a JSON object or NULL ("{}").  Invalid JSON is an error.
 * Always consumes b (lock released, staging removed), success or not.
 * On success fills *out (if out != NULL).  0 or -1. */
int cache_commit(CacheBuild *b, const char *target, const char *metrics_json,
                 const char *provenance_json, CacheArtifact *out);

/* Drops the build: staging removed, lock released, nothing recorded.
 * Read the log (cache_build_logpath) BEFORE aborting if you want to show it.
 * NULL is fine. */
void cache_abort(CacheBuild *b);

/* ===================================================================
 * Target records, for `flab explain` and `flab status` (cache/records.c)
 * =================================================================== */

/* Remembers the latest build of `target`: its key and the engine's
 * explanation data (any JSON text: params, input keys...).  Also appends
 * (target, key, time) to the build history used by cache_gc keep_last.
 * 0 or -1. */
int cache_record_target(FlabCache *c, const char *target, const char *key,
                        const char *explain_json);

/* 1 when target has a record: key_out filled and *explain_json a malloc'd
 * copy (caller frees; explain_json may be NULL to skip); 0 when none; -1 error. */
int cache_last_target(FlabCache *c, const char *target, char key_out[33],
                      char **explain_json);

/* ===================================================================
 * Provenance (cache/provenance.c)
 * =================================================================== */
typedef struct {
    const char *commit_id;     /* 40 hex */
    const char *target;
    const char *key;
    int64_t time;              /* commit time, seconds since the epoch */
    const char *message;       /* "build <target> <key>" */
    const char *manifest_json; /* the targets/<target>.json of that commit */
} CacheProvEntry;
typedef int (*cache_prov_cb)(const CacheProvEntry *e, void *ud);  /* nonzero stops */

/* Walks provenance commits newest first, only those of `target` when it is
 * non-NULL.  Strings are valid during the callback only.  An empty history
 * is fine (0, no calls).  0 or -1. */
int cache_provenance_log(FlabCache *c, const char *target, cache_prov_cb cb, void *ud);

/* ===================================================================
 * Verify and gc (cache/verify.c, cache/gc.c, cache/objscan.c)
 * =================================================================== */
typedef struct {
    uint64_t objects_checked, objects_corrupt, bytes_checked;
    uint64_t artifacts_dropped;     /* rows removed because an object was bad or missing */
    uint64_t dirs_removed;          /* materialised dirs that differed from their manifest
                                       (removed; the next lookup rebuilds them) */
} CacheVerifyReport;
/* what: "corrupt object", "missing object", "dropped artifact", ...; detail: hash/key/path. */
typedef void (*cache_report_cb)(const char *what, const char *detail, void *ud);

/* Re-hashes every object; a corrupt object is removed, and every artifact
 * naming a corrupt or missing object is dropped (row + materialised dir) so
 * the next build rebuilds it.  A materialised directory that differs from
 * its manifest (file added or removed by hand) is removed and rebuilt on the
 * next lookup.  Each finding goes to cb (may be NULL).
 * Returns 0 (whether or not damage was found: see rep), or -1 on error. */
int cache_verify(FlabCache *c, cache_report_cb cb, void *ud, CacheVerifyReport *rep);

typedef struct {
    const char *const *keep_keys; /* artifacts to keep (e.g. current flabfile's keys) */
    size_t n_keep;
    int keep_last;                /* also keep, per target, the keys of its last N builds (0: none) */
    int dry_run;                  /* report only */
} CacheGcOptions;
typedef struct {
    uint64_t artifacts_removed, objects_removed, bytes_freed;
} CacheGcReport;

/* Drops artifacts not kept, then objects no row names, stale staging dirs,
 * stray materialised dirs and temp files (I6).  Skips keys being built.
 * bytes_freed counts object bytes whose last link went away.  0 or -1. */
int cache_gc(FlabCache *c, const CacheGcOptions *opt, CacheGcReport *rep);

/* ===================================================================
 * Debug (cache/check.c)
 * =================================================================== */

/* Checks I1, I2 (sizes and modes; content only when deep != 0), I4 and I7
 * on the whole cache.  0 when they hold; -1 with a message naming the
 * first violation. */
int cache_check_invariants(FlabCache *c, int deep);
#endif
