/* engine/cli_cache.c: `flab gc` and `flab verify`: cache maintenance.
 *
 * gc also removes abandoned LoRA resume folders: <cache>/resume/<key>/ is
 * lora_train's resumable training state (rules/lora_train.c), deleted by
 * the rule when its artifact completes.  One is left behind when a build
 * was killed and the key then changed (parameters, data, model), or the
 * build finished in a way that skipped the cleanup.  gc removes it when
 * its key is not a target of the flabfile or is committed; a key whose
 * build is running (its lock is held) is skipped. */
#include "engine/cli_common.h"
#include "engine/commands.h"
#include "cache/cache.h"
#include "util/error.h"
#include <dirent.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned long long resume_bytes;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)ftw;
    if (flag == FTW_F || flag == FTW_SL) resume_bytes += (unsigned long long)sb->st_size;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

static int is_kept(const char *key, const char *const *keep, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(keep[i], key)) return 1;
    return 0;
}

/* 1 when resume/<key> is abandoned and no build of key runs (we then hold
 * the key's lock in *b: release it with cache_abort), else 0. */
static int resume_abandoned(FlabCache *c, const char *key, const char *const *keep, size_t n,
                            CacheBuild **b) {
    *b = NULL;
    if (cache_begin(c, key, CACHE_BEGIN_NOWAIT | CACHE_BEGIN_FORCE, b) != 0) {
        flab_error_clear();
        return 0;                              /* being built, or an error: leave it */
    }
    if (!is_kept(key, keep, n) || cache_lookup(c, key, NULL) == 1) return 1;
    cache_abort(*b);
    *b = NULL;
    return 0;
}

/* Removes (or counts, dry) the abandoned <cache>/resume/<key> folders. */
static unsigned gc_resume(FlabCache *c, const char *const *keep, size_t n, int dry,
                          unsigned long long *bytes) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/resume", cache_dir(c));
    DIR *d = opendir(dir);
    unsigned removed = 0;
    struct dirent *de;
    resume_bytes = 0;
    while (d && (de = readdir(d))) {
        CacheBuild *b;
        if (!flab_hash_is_valid(de->d_name) || !resume_abandoned(c, de->d_name, keep, n, &b)) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (dry || nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0) removed++;
        cache_abort(b);
    }
    if (d) closedir(d);
    *bytes = resume_bytes;
    return removed;
}

int cmd_gc(int argc, char **argv) {
    static const struct option longs[] = {
        {"keep-last", required_argument, NULL, 'K'}, {"dry-run", no_argument, NULL, 'n'}, {0, 0, 0, 0}};
    ProjectArgs pa = {0};
    CacheGcOptions go = {0};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "f:n", longs, NULL)) != -1) {
        if (c == 'f') pa.flabfile = optarg;
        else if (c == 'n') go.dry_run = 1;
        else if (c == 'K') go.keep_last = atoi(optarg);
        else { fprintf(stderr, "usage: flab gc [-f FLABFILE] [-n|--dry-run] [--keep-last N]\n"); return EXIT_USAGE; }
    }
    Project p;
    if (project_open(&pa, &p) < 0) return EXIT_USAGE;
    int rc = EXIT_USAGE;
    if (project_all_keys(&p) == 0) {
        const char **keep = flab_xmalloc((p.g->n + 1) * sizeof *keep);
        for (size_t i = 0; i < p.g->n; i++) keep[i] = p.g->targets[i].key;
        go.keep_keys = keep;
        go.n_keep = p.g->n;
        CacheGcReport rep = {0};
        if (cache_gc(p.c, &go, &rep) < 0) cli_error("gc: %s", flab_errmsg());
        else {
            printf("flab gc%s: %llu artifact%s removed, %llu object%s removed, %llu bytes freed\n",
                   go.dry_run ? " (dry run)" : "",
                   (unsigned long long)rep.artifacts_removed, rep.artifacts_removed == 1 ? "" : "s",
                   (unsigned long long)rep.objects_removed, rep.objects_removed == 1 ? "" : "s",
                   (unsigned long long)rep.bytes_freed);
            unsigned long long rb = 0;
            unsigned nr = gc_resume(p.c, keep, p.g->n, go.dry_run, &rb);
            if (nr && go.dry_run)
                printf("flab gc (dry run): %u abandoned LoRA resume folder%s removed\n", nr,
                       nr == 1 ? "" : "s");
            else if (nr)
                printf("flab gc: %u abandoned LoRA resume folder%s removed, %llu bytes freed\n", nr,
                       nr == 1 ? "" : "s", rb);
            rc = EXIT_OK;
        }
        free(keep);
    }
    project_close(&p);
    return rc;
}

static void report(const char *what, const char *detail, void *ud) {
    (void)ud;
    printf("  %s: %s\n", what, detail);
}

int cmd_verify(int argc, char **argv) {
    ProjectArgs pa;
    Project p;
    if (project_open_noargs(argc, argv, "flab verify [-f FLABFILE]", NULL, 0, &pa, &p) < 0)
        return EXIT_USAGE;
    CacheVerifyReport rep = {0};
    int rc = EXIT_USAGE;
    if (cache_verify(p.c, report, NULL, &rep) < 0) cli_error("verify: %s", flab_errmsg());
    else {
        printf("flab verify: %llu objects (%llu bytes) checked, %llu corrupt, %llu artifact%s dropped\n",
               (unsigned long long)rep.objects_checked, (unsigned long long)rep.bytes_checked,
               (unsigned long long)rep.objects_corrupt, (unsigned long long)rep.artifacts_dropped,
               rep.artifacts_dropped == 1 ? "" : "s");
        if (rep.objects_corrupt || rep.artifacts_dropped)
            printf("flab verify: damaged artifacts were removed; `flab build` rebuilds them\n");
        rc = rep.objects_corrupt || rep.artifacts_dropped ? EXIT_FAILED : EXIT_OK;
    }
    project_close(&p);
    project_args_free(&pa);
    return rc;
}
