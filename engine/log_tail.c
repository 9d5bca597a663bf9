/* engine/log_tail.c: keeps a ring of the last N lines while reading a log. */
#include "engine/log_tail.h"
#include "util/error.h"
#include <stdlib.h>
#include <string.h>

char *log_tail_read(FILE *f, size_t max_lines, int *cut) {
    char **ring = flab_xcalloc(max_lines, sizeof *ring);
    size_t n = 0, cap = 0;
    char *buf = NULL;
    while (getline(&buf, &cap, f) > 0) {
        free(ring[n % max_lines]);
        ring[n % max_lines] = flab_xstrdup(buf);
        n++;
    }
    free(buf);
    size_t first = n > max_lines ? n - max_lines : 0, len = 1;
    for (size_t i = first; i < n; i++) len += strlen(ring[i % max_lines]) + 1;
    char *out = flab_xmalloc(len), *p = out;
    for (size_t i = first; i < n; i++) {
        size_t l = strlen(ring[i % max_lines]);
        memcpy(p, ring[i % max_lines], l);
        p += l;
        if (l == 0 || p[-1] != '\n') *p++ = '\n';
    }
    *p = 0;
    for (size_t i = 0; i < max_lines; i++) free(ring[i]);
    free(ring);
    *cut = first > 0;
    return out;
}
