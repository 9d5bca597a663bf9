/* engine/flabfile.h: the flabfile as written (no rule knowledge yet).
 *
 * flabfile_load() reads an INI file with Debian's libinih and keeps, for
 * every section and every key, the line it came from, so that every later
 * error (engine/graph.c) can name file:line.  Syntax handled by inih:
 *   - `;` or `#` at the start of a line is a comment;
 *   - ` ;` (whitespace then ';') starts an inline comment: the rest of the
 *     line is dropped (write `a; b`, without the space, to keep a ';');
 *   - an indented line continues the previous key: its value is appended to
 *     the previous one after a '\n' (multi-line values, e.g. `run` scripts).
 * Checked here: duplicate sections (targets), a key set twice in a section,
 * keys before any section, bad target names, syntax errors.  Lines longer
 * than any limit are fine (inih's heap buffer grows).
 *
 * Overrides (`-D target.param=value`) replace or add an entry; their line
 * is FF_LINE_OVERRIDE so errors say "-D target.param". */
#ifndef FLAB_ENGINE_FLABFILE_H
#define FLAB_ENGINE_FLABFILE_H
#include <stddef.h>

#define FF_LINE_OVERRIDE (-1)
#define FF_GLOBAL_SECTION "flab"

typedef struct {
    char *key;
    char *value;
    int line;          /* 1-based; FF_LINE_OVERRIDE for -D */
} FfEntry;

typedef struct {
    char *name;
    int line;          /* line of the [name] header */
    FfEntry *entries;
    size_t n, cap;
} FfSection;

typedef struct {
    char *path;        /* as given (used in messages) */
    char *dir;         /* absolute directory of the flabfile */
    FfSection global;  /* [flab]; name NULL / n 0 when absent */
    FfSection *targets;
    size_t ntargets, cap;
} Flabfile;

/* Parses path.  0 and *out, or -1 with "path:line: what" in flab_errmsg. */
int flabfile_load(const char *path, Flabfile **out);
/* Same, from text (tests); name is used in messages, dir as the base dir. */
int flabfile_parse_string(const char *text, const char *name, const char *dir,
                          Flabfile **out);
void flabfile_free(Flabfile *ff);

/* The entry for key in s, or NULL. */
const FfEntry *ff_section_get(const FfSection *s, const char *key);
/* Target section by name, or NULL. */
FfSection *ff_find_target(const Flabfile *ff, const char *name);

/* Applies "target.param=value" (the split is at the last '.' before '=',
 * since target names may contain '.' but parameter names do not).
 * -1 with a message for malformed specs or unknown targets. */
int flabfile_override(Flabfile *ff, const char *spec);

/* Formats "path:line" (or "-D" for overrides) into buf; returns buf. */
const char *ff_where(const Flabfile *ff, int line, char *buf, size_t size);
#endif
