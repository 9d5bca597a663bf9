/* engine/cli_artifact.c: `flab show TARGET`, `flab path TARGET`, `flab log [TARGET]`:
 * reading artifacts and provenance back from the cache. */
#include "engine/cli_common.h"
#include "engine/commands.h"
#include "engine/explain.h"
#include "cache/cache.h"
#include "util/error.h"
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What `show` and `path` work on: the open project with its keys, argv's
 * single positional TARGET, and that target's key looked up in the cache
 * (found: 1 with `a` filled, 0 not in the cache, -1 error). */
typedef struct {
    ProjectArgs pa;
    Project p;
    const Target *t;
    CacheArtifact a;
    int found;
} TargetLookup;

/* Opens the project, computes keys and looks the target up.  Prints errors
 * (usage, flabfile, unknown target); -1 then, with nothing left to free. */
static int lookup_open(int argc, char **argv, const char *usage, TargetLookup *tl) {
    memset(&tl->a, 0, sizeof tl->a);
    int bad = cli_parse_args(argc, argv, &tl->pa, NULL) < 0 || argc - optind != 1;
    if (bad) fprintf(stderr, "usage: %s\n", usage);
    if (bad || project_open(&tl->pa, &tl->p) < 0) { project_args_free(&tl->pa); return -1; }
    int ti = project_target(&tl->p, argv[optind]);
    if (ti < 0 || project_all_keys(&tl->p) < 0) {
        project_close(&tl->p);
        project_args_free(&tl->pa);
        return -1;
    }
    tl->t = &tl->p.g->targets[ti];
    tl->found = cache_lookup(tl->p.c, tl->t->key, &tl->a);
    return 0;
}

static void lookup_close(TargetLookup *tl) {
    cache_artifact_free(&tl->a);
    project_close(&tl->p);
    project_args_free(&tl->pa);
}

/* ---- show ------------------------------------------------------------------- */

typedef struct { const char *target; int shown; } ProvShow;

static int show_prov(const CacheProvEntry *e, void *ud) {
    ProvShow *s = ud;
    char when[64];
    cli_time((double)e->time, when, sizeof when);
    printf("provenance: commit %s (%s)\n", e->commit_id, when);
    cJSON *m = cJSON_Parse(e->manifest_json);
    const char *fields[] = {"host", "device", "start_time", "flab_version"};
    for (size_t i = 0; m && i < 4; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, fields[i]);
        if (cJSON_IsString(v)) printf("  %-12s %s\n", fields[i], v->valuestring);
    }
    const cJSON *d = m ? cJSON_GetObjectItemCaseSensitive(m, "duration_s") : NULL;
    if (cJSON_IsNumber(d)) printf("  %-12s %.3fs\n", "duration", d->valuedouble);
    const cJSON *sl = m ? cJSON_GetObjectItemCaseSensitive(m, "slurm") : NULL;
    char *slurm = sl ? cJSON_PrintUnformatted(sl) : NULL;   /* job id, node, resources */
    if (slurm) printf("  %-12s %s\n", "slurm", slurm);
    free(slurm);
    cJSON_Delete(m);
    s->shown = 1;
    return 1;   /* newest only */
}

static void show_artifact(Project *p, const Target *t, const CacheArtifact *a) {
    char when[64];
    cli_time(a->created_ns / 1e9, when, sizeof when);
    printf("artifact:  %s\n", a->dir);
    printf("built:     %s, %lld bytes in %zu files\n", when, (long long)a->total_bytes, a->nfiles);
    printf("files:\n");
    for (size_t i = 0; i < a->nfiles; i++) {
        const CacheFile *f = &a->files[i];
        if (f->hash[0]) printf("  %12lld  %.16s  %s\n", (long long)f->size, f->hash, f->relpath);
        else printf("  %12s  %-16s  %s/\n", "", "", f->relpath);
    }
    printf("metrics:   %s\n", a->metrics_json ? a->metrics_json : "{}");
    printf("log:       %s\n", a->log_path ? a->log_path : "(empty)");
    ProvShow ps = {t->name, 0};
    if (cache_provenance_log(p->c, t->name, show_prov, &ps) < 0)
        printf("provenance: unreadable: %s\n", flab_errmsg());
    else if (!ps.shown) printf("provenance: none recorded\n");
}

int cmd_show(int argc, char **argv) {
    TargetLookup tl;
    if (lookup_open(argc, argv, "flab show [-f FLABFILE] [-D T.P=V]... TARGET", &tl) < 0)
        return EXIT_USAGE;
    const Target *t = tl.t;
    Project *p = &tl.p;
    CacheArtifact *a = &tl.a;
    printf("target:    %s (rule %s, version %d)\n", t->name, t->rule->name, t->rule->version);
    printf("key:       %s\n", t->key);
    for (size_t i = 0; i < t->nparams; i++) {
        printf("  %-14s = ", t->rule->params[i].name);
        for (const char *s = t->values[i]; *s; s++) {   /* indent continuation lines */
            if (*s == '\n') printf("\n%19s", "");
            else putchar(*s);
        }
        putchar('\n');
    }
    int rc = EXIT_OK;
    if (tl.found == 1) { printf("state:     fresh\n"); show_artifact(p, t, a); }
    else if (tl.found == 0) {
        Explanation e;
        if (explain_target(p->g, t, &p->store, &e) == 0) {
            printf("state:     stale (%s)\n", explanation_summary(&e));
            if (e.last_key[0] && cache_lookup(p->c, e.last_key, a) == 1) {
                printf("last build (key %s):\n", e.last_key);
                show_artifact(p, t, a);
            }
            explanation_free(&e);
        }
        rc = EXIT_FAILED;
    } else { cli_error("%s", flab_errmsg()); rc = EXIT_USAGE; }
    lookup_close(&tl);
    return rc;
}

/* ---- path ------------------------------------------------------------------- */

int cmd_path(int argc, char **argv) {
    TargetLookup tl;
    if (lookup_open(argc, argv, "flab path [-f FLABFILE] [-D T.P=V]... TARGET", &tl) < 0)
        return EXIT_USAGE;
    const Target *t = tl.t;
    int rc = EXIT_OK;
    if (tl.found == 1) printf("%s\n", tl.a.dir);
    else if (tl.found == 0) {
        cli_error("%s is not built (its key %.12s is not in the cache): run flab build %s",
                  t->name, t->key, t->name);
        rc = EXIT_FAILED;
    } else { cli_error("%s", flab_errmsg()); rc = EXIT_USAGE; }
    lookup_close(&tl);
    return rc;
}

/* ---- log -------------------------------------------------------------------- */

typedef struct { long left; int verbose; } LogWalk;

static int print_entry(const CacheProvEntry *e, void *ud) {
    LogWalk *w = ud;
    char when[64];
    cli_time((double)e->time, when, sizeof when);
    printf("%.12s  %s  %-28s %.12s\n", e->commit_id, when, e->target, e->key);
    if (w->verbose) {
        cJSON *m = cJSON_Parse(e->manifest_json);
        char *pretty = m ? cJSON_Print(m) : NULL;
        printf("%s\n", pretty ? pretty : e->manifest_json);
        free(pretty);
        cJSON_Delete(m);
    }
    return --w->left == 0;
}

int cmd_log(int argc, char **argv) {
    ProjectArgs pa = {0};
    LogWalk w = {-1, 0};
    optind = 1;
    int c;
    while ((c = getopt(argc, argv, "f:n:v")) != -1) {
        if (c == 'f') pa.flabfile = optarg;
        else if (c == 'n') w.left = atol(optarg) > 0 ? atol(optarg) : -1;
        else if (c == 'v') w.verbose = 1;
        else { fprintf(stderr, "usage: flab log [-f FLABFILE] [-n N] [-v] [TARGET]\n"); return EXIT_USAGE; }
    }
    if (argc - optind > 1) { fprintf(stderr, "usage: flab log [-f FLABFILE] [-n N] [-v] [TARGET]\n"); return EXIT_USAGE; }
    Project p;
    if (project_open(&pa, &p) < 0) return EXIT_USAGE;
    const char *target = NULL;
    int rc = EXIT_OK;
    if (optind < argc) {
        int ti = project_target(&p, argv[optind]);
        if (ti < 0) rc = EXIT_USAGE; else target = p.g->targets[ti].name;
    }
    if (rc == EXIT_OK && cache_provenance_log(p.c, target, print_entry, &w) < 0) {
        cli_error("%s", flab_errmsg());
        rc = EXIT_USAGE;
    }
    project_close(&p);
    return rc;
}
