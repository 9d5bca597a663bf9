/* cache/provenance.c: the provenance history, a bare git repository.
 *
 * DIR/provenance.git gets one commit per successful build on its HEAD
 * branch: the tree of the previous commit with targets/<target>.json
 * replaced by the build's manifest, message "build <target> <key>".  So
 * `git -C DIR/provenance.git log -p targets/x.json` shows how a target's
 * inputs, parameters and metrics evolved.
 *
 * Concurrency (I9): commits run under flock(locks/provenance.lock), so the
 * read-parent / write-commit / move-ref sequence is atomic across processes.
 * A kill -9 inside libgit2 can leave a stale ref ".lock" file; holding our
 * lock proves nobody is writing, so stale ones are removed first.  Objects
 * and refs are fsynced (GIT_OPT_ENABLE_FSYNC_GITDIR). */
#include "cache/internal.h"
#include <stdio.h>
#include "util/error.h"
#include <dirent.h>
#include <git2.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int git_fail(const char *what) {
    const git_error *e = git_error_last();
    return flab_fail("provenance.git: %s: %s", what, e && e->message ? e->message : "unknown error");
}

static int open_repo(FlabCache *c, git_repository **repo) {
    /* the repository is the cache's own (no hooks are ever run): a cache
     * shared between users must not be refused for its owner */
    git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
    char *path = cache_i_join(c->dir, "provenance.git");
    int rc = git_repository_open_bare(repo, path);
    if (rc < 0) rc = git_repository_init(repo, path, 1);
    free(path);
    return rc < 0 ? git_fail("open") : 0;
}

/* Removes *.lock files in refs/heads and the repository root (HEAD.lock). */
static void remove_stale_git_locks(FlabCache *c) {
    const char *dirs[] = {"provenance.git", "provenance.git/refs/heads"};
    for (int i = 0; i < 2; i++) {
        char *d = cache_i_join(c->dir, dirs[i]);
        DIR *dh = opendir(d);
        struct dirent *de;
        while (dh && (de = readdir(dh))) {
            size_t n = strlen(de->d_name);
            if (n > 5 && !strcmp(de->d_name + n - 5, ".lock")) {
                char *p = cache_i_join(d, de->d_name);
                unlink(p);
                free(p);
            }
        }
        if (dh) closedir(dh);
        free(d);
    }
}

/* The tree of HEAD's commit (NULL tree and parent for an empty history). */
static int head_commit(git_repository *repo, git_commit **parent) {
    git_oid oid;
    *parent = NULL;
    if (git_reference_name_to_id(&oid, repo, "HEAD") < 0) return 0;   /* unborn */
    return git_commit_lookup(parent, repo, &oid) < 0 ? git_fail("read HEAD") : 0;
}

static int empty_tree(git_repository *repo, git_tree **out) {
    git_treebuilder *tb;
    git_oid oid;
    if (git_treebuilder_new(&tb, repo, NULL) < 0) return git_fail("treebuilder");
    int rc = git_treebuilder_write(&oid, tb);
    git_treebuilder_free(tb);
    if (rc < 0 || git_tree_lookup(out, repo, &oid) < 0) return git_fail("empty tree");
    return 0;
}

static int commit_in_repo(git_repository *repo, const char *target, const char *key,
                          const char *json) {
    git_commit *parent = NULL;
    git_tree *base = NULL, *tree = NULL;
    git_signature *sig = NULL;
    git_oid blob, tree_oid, commit_oid;
    int rc = head_commit(repo, &parent);
    if (rc == 0 && (parent ? git_commit_tree(&base, parent) : empty_tree(repo, &base)) < 0)
        rc = parent ? git_fail("parent tree") : -1;
    if (rc == 0 && git_blob_create_from_buffer(&blob, repo, json, strlen(json)) < 0) rc = git_fail("blob");
    size_t plen = strlen(target) + 16;
    char *path = flab_xmalloc(plen), *msg = flab_xmalloc(plen + 48);
    snprintf(path, plen, "targets/%s.json", target);
    snprintf(msg, plen + 48, "build %s %s\n", target, key);
    git_tree_update upd = {.action = GIT_TREE_UPDATE_UPSERT, .id = blob,
                           .filemode = GIT_FILEMODE_BLOB, .path = path};
    if (rc == 0 && git_tree_create_updated(&tree_oid, repo, base, 1, &upd) < 0) rc = git_fail(path);
    if (rc == 0 && git_tree_lookup(&tree, repo, &tree_oid) < 0) rc = git_fail("new tree");
    if (rc == 0 && git_signature_now(&sig, "flab", "flab@localhost") < 0) rc = git_fail("signature");
    const git_commit *parents[1] = {parent};
    if (rc == 0 && git_commit_create(&commit_oid, repo, "HEAD", sig, sig, NULL, msg, tree,
                                     parent ? 1 : 0, parents) < 0)
        rc = git_fail("commit");
    git_signature_free(sig);
    git_tree_free(tree);
    git_tree_free(base);
    git_commit_free(parent);
    free(path);
    free(msg);
    return rc;
}

int cache_i_provenance_commit(FlabCache *c, const char *target, const char *key,
                              const char *manifest_json) {
    char *lock = cache_i_join3(c->dir, "locks", "provenance.lock");
    int fd = -1, rc = cache_i_lock_file(lock, 0, &fd);
    free(lock);
    if (rc < 0) return -1;
    git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, cache_i_sync_enabled());
    git_repository *repo = NULL;
    remove_stale_git_locks(c);
    rc = open_repo(c, &repo);
    cache_i_crashpoint("provenance repo open");
    if (rc == 0) rc = commit_in_repo(repo, target, key, manifest_json);
    git_repository_free(repo);
    cache_i_unlock_file(fd);
    return rc;
}

/* ---- reading the history --------------------------------------------------- */

/* Splits "build <target> <key>\n" (target may contain spaces, key cannot). */
static int parse_message(const char *msg, char **target, char key[33]) {
    if (strncmp(msg, "build ", 6)) return 0;
    const char *t = msg + 6, *end = t + strcspn(t, "\n");
    const char *sp = end;
    while (sp > t && sp[-1] != ' ') sp--;
    if (sp <= t + 1 || end - sp != 32) return 0;
    memcpy(key, sp, 32);
    key[32] = 0;
    *target = strndup(t, (size_t)(sp - 1 - t));
    return *target != NULL;
}

static char *manifest_at(git_repository *repo, git_commit *commit, const char *target) {
    git_tree *tree = NULL;
    git_tree_entry *entry = NULL;
    git_blob *blob = NULL;
    char *out = NULL, path[4096];
    snprintf(path, sizeof path, "targets/%s.json", target);
    if (git_commit_tree(&tree, commit) == 0 && git_tree_entry_bypath(&entry, tree, path) == 0 &&
        git_blob_lookup(&blob, repo, git_tree_entry_id(entry)) == 0) {
        size_t n = (size_t)git_blob_rawsize(blob);
        out = flab_xmalloc(n + 1);
        memcpy(out, git_blob_rawcontent(blob), n);
        out[n] = 0;
    }
    git_blob_free(blob);
    git_tree_entry_free(entry);
    git_tree_free(tree);
    return out;
}

/* Calls cb for one commit if it matches; 1 = cb asked to stop. */
static int visit(git_repository *repo, const git_oid *oid, const char *want, cache_prov_cb cb, void *ud) {
    git_commit *commit;
    if (git_commit_lookup(&commit, repo, oid) < 0) return git_fail("read commit");
    char *target = NULL, key[33], id[GIT_OID_HEXSZ + 1];
    int rc = 0;
    if (parse_message(git_commit_message(commit), &target, key) && (!want || !strcmp(want, target))) {
        char *manifest = manifest_at(repo, commit, target);
        git_oid_tostr(id, sizeof id, oid);
        CacheProvEntry e = {id, target, key, (int64_t)git_commit_time(commit),
                            git_commit_message(commit), manifest ? manifest : "{}"};
        rc = cb(&e, ud) ? 1 : 0;
        free(manifest);
    }
    free(target);
    git_commit_free(commit);
    return rc;
}

int cache_provenance_log(FlabCache *c, const char *target, cache_prov_cb cb, void *ud) {
    char *path = cache_i_join(c->dir, "provenance.git");
    git_repository *repo = NULL;
    git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
    int rc = git_repository_open_bare(&repo, path);
    free(path);
    if (rc < 0) return 0;   /* no build committed yet */
    git_revwalk *walk = NULL;
    git_oid oid;
    rc = 0;
    if (git_revwalk_new(&walk, repo) < 0) rc = git_fail("revwalk");
    else {
        git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
        if (git_revwalk_push_head(walk) < 0) { git_revwalk_free(walk); git_repository_free(repo); return 0; }
        while (rc == 0 && git_revwalk_next(&oid, walk) == 0) rc = visit(repo, &oid, target, cb, ud);
    }
    git_revwalk_free(walk);
    git_repository_free(repo);
    return rc < 0 ? -1 : 0;
}
