/* cache/remote_http.c: the HTTP transport of the remote (libcurl).
 *
 * Plain GET / PUT / HEAD of <base>/cas/<hash> and <base>/ac/<key>, which any
 * WebDAV-enabled server with PUT answers (nginx `dav_methods PUT`,
 * bazel-remote).  Credentials (remote.h R4) come from the environment at
 * open: FLAB_REMOTE_TOKEN as "Authorization: Bearer", else FLAB_REMOTE_USER
 * and FLAB_REMOTE_PASSWORD as basic auth; they are handed to libcurl only
 * and never appear in a message.  Uploads of a batch run concurrently on
 * one curl multi handle (r->jobs connections); downloads are resumed with
 * a Range request from the current size of the temp file (R5).  Large
 * buffers (512 KiB receive, 2 MiB upload) keep loopback transfers near
 * the speed of the curl tool. */
#include "cache/remote_priv.h"
#include "util/error.h"
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ENTRY_BYTES (256u << 20)

typedef struct {
    struct curl_slist *headers;
    char *user, *password;
    CURL *easy;              /* reused for HEAD and GET */
} Http;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;
static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int remote_http_init(FlabRemote *r) {
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK) return flab_fail("remote %s: libcurl initialisation failed", r->url);
    Http *h = flab_xcalloc(1, sizeof *h);
    r->impl = h;
    const char *token = getenv("FLAB_REMOTE_TOKEN"), *user = getenv("FLAB_REMOTE_USER");
    if (token && *token) {
        size_t n = strlen(token) + 32;
        char *hdr = flab_xmalloc(n);
        snprintf(hdr, n, "Authorization: Bearer %s", token);
        h->headers = curl_slist_append(h->headers, hdr);
        explicit_bzero(hdr, n);
        free(hdr);
    } else if (user && *user) {
        const char *pw = getenv("FLAB_REMOTE_PASSWORD");
        h->user = flab_xstrdup(user);
        h->password = flab_xstrdup(pw ? pw : "");
    }
    h->easy = curl_easy_init();
    if (!h->easy) return flab_fail("remote %s: curl_easy_init failed", r->url);
    return 0;
}

static void http_close(FlabRemote *r) {
    Http *h = r->impl;
    if (h->easy) curl_easy_cleanup(h->easy);
    curl_slist_free_all(h->headers);
    if (h->password) explicit_bzero(h->password, strlen(h->password));
    free(h->user);
    free(h->password);
    free(h);
    r->impl = NULL;
}

static char *url_of(FlabRemote *r, const char *path) {
    size_t n = strlen(r->root) + strlen(path) + 2;
    char *u = flab_xmalloc(n);
    snprintf(u, n, "%s/%s", r->root, path);
    return u;
}

/* Options every request shares; url is copied by libcurl. */
static void setup(FlabRemote *r, CURL *e, const char *path, char *errbuf) {
    Http *h = r->impl;
    char *url = url_of(r, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    free(url);
    errbuf[0] = 0;
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);     /* a stalled server fails after 60 s */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
    if (h->headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
    if (h->user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, h->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, h->password);
    }
}

/* The error of a request that neither succeeded nor found "absent". */
static int request_error(FlabRemote *r, const char *method, const char *path, CURLcode cc,
                         long code, const char *errbuf) {
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
        cc == CURLE_OPERATION_TIMEDOUT)
        return flab_fail("remote %s: cannot reach the server (%s)", r->url,
                         errbuf[0] ? errbuf : curl_easy_strerror(cc));
    if (cc != CURLE_OK)
        return flab_fail("remote %s: %s %s failed: %s", r->url, method, path,
                         errbuf[0] ? errbuf : curl_easy_strerror(cc));
    if (code == 401 || code == 403)
        return flab_fail("remote %s: %s %s: authentication failed (HTTP %ld): check "
                         "FLAB_REMOTE_USER/FLAB_REMOTE_PASSWORD or FLAB_REMOTE_TOKEN",
                         r->url, method, path, code);
    return flab_fail("remote %s: %s %s: HTTP %ld", r->url, method, path, code);
}

static size_t discard(char *p, size_t s, size_t n, void *ud) { (void)p; (void)ud; return s * n; }

static int http_head(FlabRemote *r, const char *path, int64_t *size) {
    Http *h = r->impl;
    char errbuf[CURL_ERROR_SIZE];
    curl_easy_reset(h->easy);
    setup(r, h->easy, path, errbuf);
    curl_easy_setopt(h->easy, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, discard);
    CURLcode cc = curl_easy_perform(h->easy);
    long code = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
    if (cc == CURLE_OK && code == 404) return 0;
    if (cc != CURLE_OK || code != 200) return request_error(r, "HEAD", path, cc, code, errbuf);
    curl_off_t len = -1;
    curl_easy_getinfo(h->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
    if (size) *size = len;
    return 1;
}

/* ---- GET into memory (ac entries) ------------------------------------------- */

typedef struct {
    char *buf;
    size_t len;
    int too_big;
} MemSink;

static size_t mem_write(char *p, size_t s, size_t n, void *ud) {
    MemSink *m = ud;
    size_t k = s * n;
    if (m->len + k > MAX_ENTRY_BYTES) { m->too_big = 1; return 0; }
    m->buf = flab_xrealloc(m->buf, m->len + k + 1);
    memcpy(m->buf + m->len, p, k);
    m->len += k;
    m->buf[m->len] = 0;
    return k;
}

static int http_get_mem(FlabRemote *r, const char *path, char **buf, size_t *len) {
    Http *h = r->impl;
    char errbuf[CURL_ERROR_SIZE];
    MemSink m = {0};
    curl_easy_reset(h->easy);
    setup(r, h->easy, path, errbuf);
    curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, mem_write);
    curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, &m);
    CURLcode cc = curl_easy_perform(h->easy);
    long code = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
    int rc = 1;
    if (m.too_big) rc = flab_fail("remote %s: %s is larger than %u bytes", r->url, path, MAX_ENTRY_BYTES);
    else if (cc == CURLE_OK && code == 404) rc = 0;
    else if (cc != CURLE_OK || code != 200) rc = request_error(r, "GET", path, cc, code, errbuf);
    if (rc != 1) { free(m.buf); return rc; }
    *buf = m.buf ? m.buf : flab_xstrdup("");
    *len = m.len;
    return 1;
}

/* ---- GET into a file, resumed ------------------------------------------------ */

typedef struct {
    FlabRemote *r;
    CURL *e;
    int fd;
    int64_t have, total;   /* have: bytes in fd before this write */
    int checked, keep, err;
    const char *hash;
    RemoteTick tick;
} FileSink;

static size_t file_write(char *p, size_t s, size_t n, void *ud) {
    FileSink *f = ud;
    size_t k = s * n;
    if (!f->checked) {
        long code = 0;
        curl_easy_getinfo(f->e, CURLINFO_RESPONSE_CODE, &code);
        f->checked = 1;
        f->keep = code == 200 || code == 206;
        if (code == 200 && f->have > 0) {   /* no Range support: start over */
            if (ftruncate(f->fd, 0) < 0 || lseek(f->fd, 0, SEEK_SET) < 0) { f->err = errno; return 0; }
            f->have = 0;
        }
    }
    if (!f->keep) return k;
    for (size_t done = 0; done < k;) {
        ssize_t w = write(f->fd, p + done, k - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) { f->err = errno; return 0; }
        done += (size_t)w;
    }
    f->have += (int64_t)k;
    remote_tick(f->r, &f->tick, "pull", f->hash, f->have, f->total);
    return k;
}

static int http_get_file(FlabRemote *r, const char *path, const char *hash, int fd, int64_t have,
                         int64_t total) {
    Http *h = r->impl;
    char errbuf[CURL_ERROR_SIZE];
    FileSink f = {.r = r, .e = h->easy, .fd = fd, .have = have, .total = total, .hash = hash};
    remote_tick_start(&f.tick);
    curl_easy_reset(h->easy);
    setup(r, h->easy, path, errbuf);
    curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, file_write);
    curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, &f);
    if (have > 0) curl_easy_setopt(h->easy, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)have);
    CURLcode cc = curl_easy_perform(h->easy);
    long code = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
    if (f.err) { errno = f.err; return flab_fail_errno("remote %s: GET %s: write", r->url, path); }
    if (cc == CURLE_OK && code == 404) return 0;
    if (cc == CURLE_OK && code == 416) return 1;   /* nothing beyond `have`: verification decides */
    if (cc != CURLE_OK || (code != 200 && code != 206))
        return request_error(r, "GET", path, cc, code, errbuf);
    if (f.have != total) remote_tick(r, &f.tick, "pull", hash, total, total);
    return 1;
}

/* ---- PUT, several at once ------------------------------------------------------ */

typedef struct {
    FlabRemote *r;
    const RemotePut *p;
    CURL *e;
    int fd;
    int64_t off;
    RemoteTick tick;
    char errbuf[CURL_ERROR_SIZE];
} PutJob;

static size_t put_read(char *buf, size_t s, size_t n, void *ud) {
    PutJob *j = ud;
    size_t want = s * n;
    if (j->off >= j->p->size) return 0;
    if ((int64_t)want > j->p->size - j->off) want = (size_t)(j->p->size - j->off);
    ssize_t got;
    if (j->fd < 0) {
        memcpy(buf, j->p->data + j->off, want);
        got = (ssize_t)want;
    } else {
        do got = pread(j->fd, buf, want, j->off); while (got < 0 && errno == EINTR);
        if (got <= 0) return CURL_READFUNC_ABORT;   /* the local object shrank or failed */
    }
    j->off += got;
    remote_tick(j->r, &j->tick, "push", j->p->hash, j->off, j->p->size);
    return (size_t)got;
}

static int put_seek(void *ud, curl_off_t offset, int origin) {
    PutJob *j = ud;
    if (origin != SEEK_SET || offset < 0 || offset > j->p->size) return CURL_SEEKFUNC_FAIL;
    j->off = offset;
    return CURL_SEEKFUNC_OK;
}

static int put_start(FlabRemote *r, CURLM *m, PutJob *j) {
    if (j->p->file && (j->fd = open(j->p->file, O_RDONLY | O_CLOEXEC)) < 0)
        return flab_fail_errno("%s: open", j->p->file);
    j->e = curl_easy_init();
    if (!j->e) return flab_fail("remote %s: curl_easy_init failed", r->url);
    setup(r, j->e, j->p->path, j->errbuf);
    curl_easy_setopt(j->e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(j->e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)j->p->size);
    curl_easy_setopt(j->e, CURLOPT_READFUNCTION, put_read);
    curl_easy_setopt(j->e, CURLOPT_READDATA, j);
    curl_easy_setopt(j->e, CURLOPT_SEEKFUNCTION, put_seek);
    curl_easy_setopt(j->e, CURLOPT_SEEKDATA, j);
    curl_easy_setopt(j->e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(j->e, CURLOPT_PRIVATE, j);
    remote_tick_start(&j->tick);
    curl_multi_add_handle(m, j->e);
    return 0;
}

static void put_end(CURLM *m, PutJob *j) {
    if (j->e) { curl_multi_remove_handle(m, j->e); curl_easy_cleanup(j->e); }
    if (j->fd >= 0) close(j->fd);
    j->e = NULL;
    j->fd = -1;
}

/* Collects finished uploads; the first failure becomes the error. */
static int put_reap(FlabRemote *r, CURLM *m, size_t *running, int rc) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        PutJob *j = NULL;
        long code = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        CURLcode cc = msg->data.result;
        if (rc == 0 && (cc != CURLE_OK || (code != 200 && code != 201 && code != 204)))
            rc = request_error(r, "PUT", j->p->path, cc, code, j->errbuf);
        put_end(m, j);
        (*running)--;
    }
    return rc;
}

static int http_put(FlabRemote *r, const RemotePut *puts, size_t n) {
    CURLM *m = curl_multi_init();
    if (!m) return flab_fail("remote %s: curl_multi_init failed", r->url);
    PutJob *jobs = flab_xcalloc(n, sizeof *jobs);
    size_t next = 0, running = 0;
    int rc = 0;
    while (rc == 0 && (next < n || running)) {
        while (rc == 0 && next < n && running < (size_t)r->jobs) {
            jobs[next] = (PutJob){.r = r, .p = &puts[next], .fd = -1};
            rc = put_start(r, m, &jobs[next++]);
            running++;
        }
        int still = 0;
        curl_multi_perform(m, &still);
        rc = put_reap(r, m, &running, rc);
        if (rc == 0 && running) curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    for (size_t i = 0; i < next; i++) put_end(m, &jobs[i]);
    free(jobs);
    curl_multi_cleanup(m);
    return rc;
}

const RemoteTransport remote_http_transport = {
    .head = http_head,
    .get_mem = http_get_mem,
    .get_file = http_get_file,
    .put = http_put,
    .close = http_close,
};
