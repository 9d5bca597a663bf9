/* engine/flabfile.c: flabfile parsing on top of libinih (see flabfile.h).
 *
 * inih does not report line numbers to the handler (Debian builds it
 * without INI_HANDLER_LINENO), so we feed it through our own reader that
 * counts physical lines and notes section headers and indentation; since
 * inih calls the handler right after reading the line it belongs to, the
 * reader's counters describe the handler's current line.  Parsing stops at
 * the first error (ini_stop_on_first_error) so counters and calls never
 * drift apart. */
#include "engine/flabfile.h"
#include "util/error.h"
#include "util/file.h"
#include <ctype.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *text;       /* remaining input */
    const char *name;       /* file name for messages */
    Flabfile *ff;
    int lineno;             /* physical line of the chunk last read */
    int at_eol;             /* last chunk ended a line */
    int indented;           /* current line starts with whitespace */
    FfSection *cur;         /* section of the last header read */
    size_t *slots;          /* open-addressing set of target indices + 1, by name */
    size_t nslots;
    char err[1024];         /* our own error, if the handler failed */
} Parser;

/* ---- sections and entries ------------------------------------------------ */

static void section_add(FfSection *s, const char *key, const char *value, int line) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        s->entries = flab_xrealloc(s->entries, s->cap * sizeof *s->entries);
    }
    s->entries[s->n++] = (FfEntry){flab_xstrdup(key), flab_xstrdup(value), line};
}

static void section_free(FfSection *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->entries[i].key);
        free(s->entries[i].value);
    }
    free(s->entries);
    free(s->name);
}

const FfEntry *ff_section_get(const FfSection *s, const char *key) {
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->entries[i].key, key)) return &s->entries[i];
    return NULL;
}

FfSection *ff_find_target(const Flabfile *ff, const char *name) {
    for (size_t i = 0; i < ff->ntargets; i++)
        if (!strcmp(ff->targets[i].name, name)) return &ff->targets[i];
    return NULL;
}

/* Target names: letters, digits and _ . - / ; not starting with '/' or '.'. */
static int valid_target_name(const char *s) {
    if (!*s || *s == '/' || *s == '.' || *s == '-') return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_.-/", *s)) return 0;
    return 1;
}

/* ---- a set of target names, so 10^4 sections parse in linear time ---------- */

static size_t name_hash(const char *s) {
    size_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Index of the target called name, or -1; inserts index `add` when absent and add >= 0. */
static long name_set(Parser *p, const char *name, long add) {
    Flabfile *ff = p->ff;
    if (add >= 0 && 2 * (ff->ntargets + 1) > p->nslots) {   /* grow and re-insert */
        free(p->slots);
        p->nslots = p->nslots ? 2 * p->nslots : 64;
        p->slots = flab_xcalloc(p->nslots, sizeof *p->slots);
        for (size_t i = 0; i < ff->ntargets; i++) {
            size_t h = name_hash(ff->targets[i].name) & (p->nslots - 1);
            while (p->slots[h]) h = (h + 1) & (p->nslots - 1);
            p->slots[h] = i + 1;
        }
    }
    if (!p->nslots) return -1;
    size_t h = name_hash(name) & (p->nslots - 1);
    for (; p->slots[h]; h = (h + 1) & (p->nslots - 1))
        if (!strcmp(ff->targets[p->slots[h] - 1].name, name)) return (long)p->slots[h] - 1;
    if (add >= 0) p->slots[h] = (size_t)add + 1;
    return -1;
}

/* ---- the reader: counts lines, records section headers -------------------- */

static int on_header(Parser *p, const char *line) {
    const char *end = strchr(line, ']');
    if (!end) return 0;   /* inih reports the syntax error */
    char name[512];
    size_t n = (size_t)(end - line - 1);
    if (n >= sizeof name) n = sizeof name - 1;
    memcpy(name, line + 1, n);
    name[n] = 0;
    Flabfile *ff = p->ff;
    if (!strcmp(name, FF_GLOBAL_SECTION)) {
        if (ff->global.name) {
            snprintf(p->err, sizeof p->err, "%s:%d: duplicate [%s] section (first at line %d)",
                     p->name, p->lineno, name, ff->global.line);
            return -1;
        }
        ff->global.name = flab_xstrdup(name);
        ff->global.line = p->lineno;
        p->cur = &ff->global;
        return 0;
    }
    long old_index = name_set(p, name, -1);
    FfSection *old = old_index >= 0 ? &ff->targets[old_index] : NULL;
    if (old) {
        snprintf(p->err, sizeof p->err, "%s:%d: duplicate target [%s] (first defined at line %d)",
                 p->name, p->lineno, name, old->line);
        return -1;
    }
    if (!valid_target_name(name)) {
        snprintf(p->err, sizeof p->err, "%s:%d: bad target name [%s]: use letters, digits "
                 "and _ . - / (not starting with / . or -)", p->name, p->lineno, name);
        return -1;
    }
    if (ff->ntargets == ff->cap) {
        ff->cap = ff->cap ? 2 * ff->cap : 16;
        ff->targets = flab_xrealloc(ff->targets, ff->cap * sizeof *ff->targets);
    }
    FfSection *s = &ff->targets[ff->ntargets];
    memset(s, 0, sizeof *s);
    s->name = flab_xstrdup(name);
    name_set(p, name, (long)ff->ntargets);
    ff->ntargets++;
    s->line = p->lineno;
    p->cur = s;
    return 0;
}

static char *reader(char *buf, int size, void *stream) {
    Parser *p = stream;
    if (p->err[0] || !*p->text) return NULL;   /* our error: stop feeding inih */
    const char *nl = strchr(p->text, '\n');
    size_t len = nl ? (size_t)(nl - p->text) + 1 : strlen(p->text);
    if (len > (size_t)size - 1) len = (size_t)size - 1;
    memcpy(buf, p->text, len);
    buf[len] = 0;
    p->text += len;
    if (p->at_eol) {   /* a new physical line starts */
        p->lineno++;
        p->indented = buf[0] == ' ' || buf[0] == '\t';
        const char *s = buf;
        while (isspace((unsigned char)*s)) s++;
        if (*s == '[' && on_header(p, s) < 0) return NULL;
    }
    p->at_eol = len > 0 && buf[len - 1] == '\n';
    return buf;
}

/* ---- the handler: one call per key line or continuation line ------------- */

static int handler(void *user, const char *section, const char *key, const char *value) {
    Parser *p = user;
    (void)section;   /* p->cur already names it, with its line */
    if (!p->cur) {
        snprintf(p->err, sizeof p->err, "%s:%d: '%s' outside of any [section]",
                 p->name, p->lineno, key);
        return 0;
    }
    FfSection *s = p->cur;
    if (p->indented && s->n && !strcmp(s->entries[s->n - 1].key, key)) {
        FfEntry *e = &s->entries[s->n - 1];   /* continuation: join with '\n' */
        size_t a = strlen(e->value), b = strlen(value);
        e->value = flab_xrealloc(e->value, a + b + 2);
        if (a) e->value[a++] = '\n';
        memcpy(e->value + a, value, b + 1);
        return 1;
    }
    const FfEntry *old = ff_section_get(s, key);
    if (old) {
        snprintf(p->err, sizeof p->err, "%s:%d: '%s' set twice in [%s] (first at line %d)",
                 p->name, p->lineno, key, s->name, old->line);
        return 0;
    }
    section_add(s, key, value, p->lineno);
    return 1;
}

/* ---- entry points ---------------------------------------------------------- */

int flabfile_parse_string(const char *text, const char *name, const char *dir,
                          Flabfile **out) {
    Flabfile *ff = flab_xcalloc(1, sizeof *ff);
    ff->path = flab_xstrdup(name);
    ff->dir = flab_xstrdup(dir);
    Parser p = {.text = text, .name = name, .ff = ff, .at_eol = 1};
    /* Debian's libinih exposes its compile-time options as globals. */
    ini_use_stack = false;
    ini_allow_realloc = true;
    ini_max_line = INT_MAX / 2;
    ini_stop_on_first_error = true;
    ini_allow_multiline = true;
    ini_allow_inline_comments = true;
    int r = ini_parse_stream(reader, &p, handler, &p);
    free(p.slots);
    if (p.err[0]) r = flab_fail("%s", p.err);
    else if (r > 0) r = flab_fail("%s:%d: syntax error (expected [target], name = value, "
                                  "or a comment)", name, r);
    else if (r < 0) r = flab_fail("%s: cannot parse (inih error %d)", name, r);
    if (r) { flabfile_free(ff); return -1; }
    *out = ff;
    return 0;
}

int flabfile_load(const char *path, Flabfile **out) {
    char *text;
    if (flab_read_file(path, &text, NULL) < 0) return -1;
    char *abs = realpath(path, NULL);
    if (!abs) { free(text); return flab_fail_errno("%s", path); }
    char *slash = strrchr(abs, '/');
    if (slash == abs) slash[1] = 0; else *slash = 0;
    int r = flabfile_parse_string(text, path, abs, out);
    free(abs);
    free(text);
    return r;
}

void flabfile_free(Flabfile *ff) {
    if (!ff) return;
    section_free(&ff->global);
    for (size_t i = 0; i < ff->ntargets; i++) section_free(&ff->targets[i]);
    free(ff->targets);
    free(ff->path);
    free(ff->dir);
    free(ff);
}

int flabfile_override(Flabfile *ff, const char *spec) {
    const char *eq = strchr(spec, '=');
    const char *dot = NULL;
    for (const char *s = spec; eq && s < eq; s++) if (*s == '.') dot = s;
    if (!eq || !dot || dot == spec || dot + 1 == eq)
        return flab_fail("-D %s: expected TARGET.PARAM=VALUE", spec);
    char *target = strndup(spec, (size_t)(dot - spec));
    char *key = strndup(dot + 1, (size_t)(eq - dot - 1));
    FfSection *s = ff_find_target(ff, target);
    int r = 0;
    if (!s) r = flab_fail("-D %s: no target [%s] in %s", spec, target, ff->path);
    else if (!strcmp(key, "rule")) r = flab_fail("-D %s: the rule of a target cannot be overridden", spec);
    else {
        FfEntry *e = (FfEntry *)ff_section_get(s, key);
        if (e) { free(e->value); e->value = flab_xstrdup(eq + 1); e->line = FF_LINE_OVERRIDE; }
        else section_add(s, key, eq + 1, FF_LINE_OVERRIDE);
    }
    free(target);
    free(key);
    return r;
}

const char *ff_where(const Flabfile *ff, int line, char *buf, size_t size) {
    if (line == FF_LINE_OVERRIDE) snprintf(buf, size, "-D");
    else snprintf(buf, size, "%s:%d", ff->path, line);
    return buf;
}
