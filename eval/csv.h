/* eval/csv.h: an RFC 4180 CSV reader (the CoT benchmark files).
 *
 * Fields are separated by ',', records by "\n" or "\r\n"; a field that
 * starts with '"' is quoted: it ends at a lone '"', "" inside stands for
 * one '"', and it may hold commas and newlines.  A record's line number is
 * the line where it starts (1-based), for error messages. */
#ifndef FLAB_EVAL_CSV_H
#define FLAB_EVAL_CSV_H
#include <stddef.h>

typedef struct {
    char **fields;
    size_t n;
    size_t line;
} CsvRecord;

typedef struct {
    const char *text, *end, *path;
    size_t line;
} CsvReader;

void csv_reader_init(CsvReader *r, const char *path, const char *text, size_t len);

/* Reads the next record into rec (free with csv_record_free).  Returns 1 for
 * a record, 0 at the end, -1 with "path:line: ..." on malformed input. */
int csv_next(CsvReader *r, CsvRecord *rec);
void csv_record_free(CsvRecord *rec);
#endif
