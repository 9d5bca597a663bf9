/* eval/csv.c: RFC 4180 CSV reader (see csv.h). */
#include "eval/csv.h"
#include "eval/strbuf.h"
#include "util/error.h"
#include <stdlib.h>
#include <string.h>

void csv_reader_init(CsvReader *r, const char *path, const char *text, size_t len) {
    r->text = text;
    r->end = text + len;
    r->path = path;
    r->line = 1;
}

void csv_record_free(CsvRecord *rec) {
    for (size_t i = 0; i < rec->n; i++) free(rec->fields[i]);
    free(rec->fields);
    memset(rec, 0, sizeof *rec);
}

static void add_field(CsvRecord *rec, StrBuf *b) {
    rec->fields = flab_xrealloc(rec->fields, (rec->n + 1) * sizeof *rec->fields);
    rec->fields[rec->n++] = sb_take(b);
}

/* A quoted field: p is just after the opening quote; returns the position
 * after the closing quote, or NULL when the file ends inside the quotes. */
static const char *read_quoted(CsvReader *r, const char *p, StrBuf *b) {
    for (; p < r->end; p++) {
        if (*p == '"') {
            if (p + 1 < r->end && p[1] == '"') { sb_putc(b, '"'); p++; continue; }
            return p + 1;
        }
        if (*p == '\n') r->line++;
        sb_putc(b, *p);
    }
    return NULL;
}

int csv_next(CsvReader *r, CsvRecord *rec) {
    memset(rec, 0, sizeof *rec);
    if (r->text >= r->end) return 0;
    rec->line = r->line;
    const char *p = r->text;
    StrBuf b = {0};
    for (;;) {
        if (p < r->end && *p == '"') {
            size_t start_line = r->line;
            p = read_quoted(r, p + 1, &b);
            if (!p) {
                free(sb_take(&b));
                csv_record_free(rec);
                return flab_fail("%s:%zu: unterminated quoted field", r->path, start_line);
            }
            if (p < r->end && *p != ',' && *p != '\n' && *p != '\r') {
                free(sb_take(&b));
                csv_record_free(rec);
                return flab_fail("%s:%zu: text after a closing quote", r->path, r->line);
            }
        } else {
            while (p < r->end && *p != ',' && *p != '\n' && *p != '\r') sb_putc(&b, *p++);
        }
        add_field(rec, &b);
        if (p < r->end && *p == ',') { p++; continue; }
        if (p < r->end && *p == '\r') p++;
        if (p < r->end && *p == '\n') { p++; r->line++; }
        break;
    }
    r->text = p;
    return 1;
}
