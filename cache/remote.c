/* cache/remote.c: opening a remote (URL -> transport), the progress
 * throttle, and remote_has.  Push and pull live in remote_push.c and
 * remote_pull.c, the ac entry format in remote_entry.c, the transports in
 * remote_http.c and remote_file.c (see remote.h for the invariants). */
#include "cache/remote_priv.h"
#include "util/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double remote_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void remote_tick_start(RemoteTick *t) {
    t->start = remote_now();
    t->last = t->start;
}

void remote_tick(FlabRemote *r, RemoteTick *t, const char *what, const char *hash,
                 int64_t done, int64_t total) {
    if (!r->progress || total < REMOTE_PROGRESS_MIN_BYTES) return;
    double now = remote_now();
    if (done < total && now - t->last < 0.5) return;
    t->last = now;
    r->progress(r->progress_ud, what, hash, done, total, now - t->start);
}

/* http(s)://host...: user:password@ in the authority is refused (R4). */
static int check_http_url(const char *url) {
    const char *auth = strstr(url, "://") + 3;
    size_t alen = strcspn(auth, "/?#");
    if (alen == 0) return flab_fail("remote '%s': no host in the URL", url);
    if (memchr(auth, '@', alen))
        return flab_fail("remote URL: credentials in the URL are not accepted; set "
                         "FLAB_REMOTE_USER and FLAB_REMOTE_PASSWORD (or FLAB_REMOTE_TOKEN) instead");
    if (auth[alen] == '?' || auth[alen] == '#' || strpbrk(auth + alen, "?#"))
        return flab_fail("remote '%s': a query or fragment is not supported", url);
    return 0;
}

static char *strip_slashes(const char *s, size_t keep_min) {
    char *d = flab_xstrdup(s);
    size_t n = strlen(d);
    while (n > keep_min && d[n - 1] == '/') d[--n] = 0;
    return d;
}

int remote_open(const char *url, FlabRemote **out) {
    *out = NULL;
    if (!url || !*url) return flab_fail("remote: empty URL");
    FlabRemote *r = flab_xcalloc(1, sizeof *r);
    r->jobs = 4;
    int rc;
    if (!strncmp(url, "file://", 7)) {
        if (url[7] != '/') {
            free(r);
            return flab_fail("remote '%s': a file remote needs an absolute path (file:///dir)", url);
        }
        r->url = flab_xstrdup(url);
        r->root = strip_slashes(url + 7, 1);
        r->t = &remote_file_transport;
        rc = remote_file_init(r);
    } else if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8)) {
        if (check_http_url(url) < 0) { free(r); return -1; }
        r->root = strip_slashes(url, strstr(url, "://") - url + 3);
        r->url = flab_xstrdup(r->root);
        r->t = &remote_http_transport;
        rc = remote_http_init(r);
    } else {
        free(r);
        return flab_fail("remote '%s': unsupported URL (use file:///dir or "
                         "http(s)://host[:port]/prefix)", url);
    }
    if (rc < 0) { remote_close(r); return -1; }
    *out = r;
    return 0;
}

void remote_close(FlabRemote *r) {
    if (!r) return;
    if (r->t && r->impl) r->t->close(r);
    free(r->url);
    free(r->root);
    free(r);
}

const char *remote_url(const FlabRemote *r) { return r->url; }

void remote_set_jobs(FlabRemote *r, int jobs) {
    r->jobs = jobs < 1 ? 1 : jobs > 32 ? 32 : jobs;
}

void remote_set_progress(FlabRemote *r, remote_progress_cb cb, void *ud) {
    r->progress = cb;
    r->progress_ud = ud;
}

int remote_has(FlabRemote *r, const char *key) {
    if (!flab_hash_is_valid(key)) return flab_fail("remote: bad key '%s'", key ? key : "(null)");
    char path[40];
    snprintf(path, sizeof path, "ac/%s", key);
    return r->t->head(r, path, NULL);
}
