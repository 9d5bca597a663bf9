/* engine/cli_cache.c: `flab gc` and `flab verify`: cache maintenance. */
#include "engine/cli_common.h"
#include "engine/commands.h"
#include "cache/cache.h"
#include "util/error.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (cli_parse_args(argc, argv, &pa, NULL) < 0 || optind != argc) {
        fprintf(stderr, "usage: flab verify [-f FLABFILE]\n");
        project_args_free(&pa);
        return EXIT_USAGE;
    }
    Project p;
    if (project_open(&pa, &p) < 0) { project_args_free(&pa); return EXIT_USAGE; }
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
