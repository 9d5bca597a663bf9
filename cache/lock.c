/* cache/lock.c: advisory file locks (flock) of the cache.
 *
 * flock locks belong to an open file description, so two threads of one
 * process that open the lock file separately exclude each other exactly as
 * two processes do, and kill -9 releases them (I5).  gc may unlink a lock
 * file that nobody holds; a locker that raced with that unlink would hold a
 * lock on an orphaned inode, so after locking we check that the path still
 * names the inode we locked and start again if not. */
#include "cache/internal.h"
#include <stdio.h>
#include "util/error.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

static int lock_path(const char *path, int op, int *out) {
    for (;;) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return flab_fail_errno("%s: cannot open lock file", path);
        int rc;
        while ((rc = flock(fd, op)) < 0 && errno == EINTR) {}
        if (rc < 0) {
            int busy = errno == EWOULDBLOCK;
            if (!busy) flab_fail_errno("%s: flock", path);
            close(fd);
            return busy ? 1 : -1;
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
            *out = fd;
            return 0;
        }
        close(fd);   /* unlinked under us by gc: lock the new file */
    }
}

int cache_i_lock_file(const char *path, int nowait, int *fd) {
    return lock_path(path, LOCK_EX | (nowait ? LOCK_NB : 0), fd);
}

int cache_i_lock_file_shared(const char *path, int *fd) {
    return lock_path(path, LOCK_SH, fd);
}

void cache_i_unlock_file(int fd) {
    if (fd >= 0) close(fd);   /* closing the description drops the flock */
}

char *cache_i_key_lock_path(FlabCache *c, const char *key) {
    char name[48];
    snprintf(name, sizeof name, "%s.lock", key);
    return cache_i_join3(c->dir, "locks", name);
}
