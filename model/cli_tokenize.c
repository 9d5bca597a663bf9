/* model/cli_tokenize.c: `flab tokenize` and `flab detokenize`.
 *
 *   flab tokenize MODEL_DIR [--json] [--no-special] [TEXT | -]
 *     Prints the ids of TEXT (stdin when TEXT is "-" or absent) on one line,
 *     separated by spaces.  Like HF `tokenizer.encode(text)`: added tokens in
 *     the text are parsed and the post-processor adds its tokens (e.g. <s>).
 *     --no-special: no special tokens at all: special added tokens in the text
 *     are tokenized as plain text (HF encode_special_tokens / transformers'
 *     split_special_tokens) and the post-processor adds none
 *     (add_special_tokens=False).  --json prints {"ids": [...], "tokens": [...]}.
 *   flab detokenize MODEL_DIR [--skip-special] IDS...
 *     Prints the text of the ids (each argument may hold several, separated by
 *     spaces or commas; "-" reads them from stdin), exactly, with no newline
 *     added: HF decode(ids, skip_special_tokens=False) unless --skip-special.
 * MODEL_DIR needs only tokenizer.json (and optionally tokenizer_config.json).
 * Exit codes: 0 ok, 1 failure (bad tokenizer, invalid UTF-8, unknown id), 2 usage. */
#include "engine/commands.h"
#include "model/tokenizer.h"
#include "util/error.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = flab_xmalloc(cap + 1);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += r;
        if (n == cap) buf = flab_xrealloc(buf, (cap *= 2) + 1);
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static int print_json(const flab_tokenizer *t, const int32_t *ids, size_t n) {
    cJSON *o = cJSON_CreateObject(), *ja = cJSON_AddArrayToObject(o, "ids"), *jt = cJSON_AddArrayToObject(o, "tokens");
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(ja, cJSON_CreateNumber(ids[i]));
        cJSON_AddItemToArray(jt, cJSON_CreateString(flab_tok_id_to_token(t, ids[i], NULL)));
    }
    char *s = cJSON_PrintUnformatted(o);
    printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *dir = NULL, *text = NULL;
    int json = 0, no_special = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--no-special")) no_special = 1;
        else if (!dir) dir = argv[i];
        else if (!text) text = argv[i];
        else { fprintf(stderr, "flab tokenize: unexpected argument '%s'\n", argv[i]); return 2; }
    }
    if (!dir) { fprintf(stderr, "usage: flab tokenize MODEL_DIR [--json] [--no-special] [TEXT | -]\n"); return 2; }
    flab_tokenizer *t = flab_tok_load_dir(dir);
    if (!t) { fprintf(stderr, "flab tokenize: %s\n", flab_errmsg()); return 1; }
    size_t len;
    char *owned = NULL;
    if (!text || !strcmp(text, "-")) text = owned = read_stdin(&len);
    else len = strlen(text);
    int32_t *ids; size_t n;
    flab_tok_encode_opts o = {!no_special, !no_special};
    int rc = flab_tok_encode(t, text, len, o, &ids, &n);
    if (rc < 0) fprintf(stderr, "flab tokenize: %s\n", flab_errmsg());
    else if (json) print_json(t, ids, n);
    else {
        for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", (int)ids[i]);
        printf("\n");
    }
    free(ids); free(owned);
    flab_tok_free(t);
    return rc < 0 ? 1 : 0;
}

/* Appends the ids in s (separated by spaces, commas, newlines, brackets). */
static int parse_ids(const char *s, int32_t **ids, size_t *n, size_t *cap) {
    while (*s) {
        if (strchr(" ,\t\r\n[]", *s)) { s++; continue; }
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX)
            return flab_fail("not a token id: '%.20s'", s);
        if (*n == *cap) { *cap = *cap ? *cap * 2 : 64; *ids = flab_xrealloc(*ids, *cap * sizeof **ids); }
        (*ids)[(*n)++] = (int32_t)v;
        s = end;
    }
    return 0;
}

int cmd_detokenize(int argc, char **argv) {
    const char *dir = NULL;
    int skip = 0;
    int32_t *ids = NULL; size_t n = 0, cap = 0;
    int rc = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        if (!strcmp(argv[i], "--skip-special")) skip = 1;
        else if (!dir) dir = argv[i];
        else if (!strcmp(argv[i], "-")) {
            size_t len;
            char *in = read_stdin(&len);
            rc = parse_ids(in, &ids, &n, &cap);
            free(in);
        } else rc = parse_ids(argv[i], &ids, &n, &cap);
    }
    if (rc < 0) { fprintf(stderr, "flab detokenize: %s\n", flab_errmsg()); free(ids); return 2; }
    if (!dir) { fprintf(stderr, "usage: flab detokenize MODEL_DIR [--skip-special] IDS...\n"); free(ids); return 2; }
    flab_tokenizer *t = flab_tok_load_dir(dir);
    if (!t) { fprintf(stderr, "flab detokenize: %s\n", flab_errmsg()); free(ids); return 1; }
    size_t len;
    char *text = flab_tok_decode(t, ids, n, skip, &len);
    if (!text) { fprintf(stderr, "flab detokenize: %s\n", flab_errmsg()); rc = 1; }
    else fwrite(text, 1, len, stdout);
    free(text); free(ids);
    flab_tok_free(t);
    return rc < 0 ? 1 : rc;
}
