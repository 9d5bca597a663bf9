/* rules/vocab_corpus.h: the text corpus of collect_tokens, as a sequence of
 * texts.
 *
 * Inputs are files or directories (walked recursively in name order, entries
 * starting with '.' skipped).  A `.jsonl` file contributes one text per row:
 * the concatenation of the row's string fields named in `fields` (space
 * separated, in that order; a missing field contributes nothing; blank lines
 * are skipped; a file none of whose rows has any of the fields is skipped
 * and reported through the `skipped` callback, so one glob can cover
 * benchmarks of different formats).  Any other file contributes its
 * whole content as one text. */
#ifndef FLAB_RULES_VOCAB_CORPUS_H
#define FLAB_RULES_VOCAB_CORPUS_H
#include <stddef.h>

typedef struct {
    /* Once per text: source is "path" or "path:line" (path relative to
     * base_dir when under it).  0 to go on, -1 (with flab_fail) to stop. */
    int (*text)(const char *source, const char *text, size_t len, void *user);
    /* A .jsonl file with none of the fields (may be NULL). */
    void (*skipped)(const char *path, void *user);
    /* After each input path, with (index + 1, n), for progress (may be NULL). */
    void (*done)(size_t done, size_t total, void *user);
} VcCallbacks;

/* Walks paths[0..n) and calls cb per text; -1 with flab_fail naming the file
 * (and line) on bad input. */
int vc_walk(const char *const *paths, size_t n, const char *fields, const char *base_dir,
            const VcCallbacks *cb, void *user);
#endif
