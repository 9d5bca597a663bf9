/* model/tokenizer_load_parts.c: the pipeline components of tokenizer.json:
 * normalizer, pre_tokenizer, post_processor, decoder, added_tokens.
 *
 * Sequences are flattened into arrays applied in order.  Every component type
 * and option we do not implement is an error naming it: a tokenizer we cannot
 * reproduce exactly must not load. */
#include "model/tokenizer_internal.h"
#include "util/error.h"
#include <stdio.h>
#include <string.h>

static const char *type_of(const cJSON *j) {
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(j, "type");
    return cJSON_IsString(ty) ? ty->valuestring : NULL;
}

static const char *get_str(const cJSON *o, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

/* A boolean member; absent/null gives dflt, anything else but a bool gives -1. */
static int get_bool(const cJSON *o, const char *key, int dflt) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) return dflt;
    return cJSON_IsBool(j) ? cJSON_IsTrue(j) : -1;
}

static int bad_bool(const flab_tokenizer *t, const char *comp, const char *key) {
    return flab_fail("%s: %s: \"%s\" must be true or false", t->name, comp, key);
}

pcre2_code *tok_compile_regex(const flab_tokenizer *t, const char *pattern, int literal,
                              const char *what) {
    int err; PCRE2_SIZE off;
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);   /* UCP is invalid with LITERAL */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        flab_fail("%s: %s: cannot compile regex at offset %zu: %s", t->name, what, (size_t)off, (char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);   /* falls back to the interpreter if JIT is unavailable */
    return re;
}

/* {"String": s} or {"Regex": r} -> compiled pattern; *literal_out gets a copy of s. */
static pcre2_code *load_pattern(const flab_tokenizer *t, const cJSON *pat, const char *what,
                                char **literal_out) {
    const char *s = get_str(pat, "String"), *r = get_str(pat, "Regex");
    if (!cJSON_IsObject(pat) || (!s && !r)) {
        flab_fail("%s: %s: \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}", t->name, what);
        return NULL;
    }
    const char *p = s ? s : r;
    if (tok_utf8_check(p, strlen(p)) != strlen(p)) {
        flab_fail("%s: %s: pattern is not valid UTF-8", t->name, what);
        return NULL;
    }
    if (s && literal_out) *literal_out = flab_xstrdup(s);
    return tok_compile_regex(t, p, s != NULL, what);
}

/* ---- normalizer --------------------------------------------------------------- */

static int add_norm(flab_tokenizer *t, const cJSON *j);

static int add_norm_replace(flab_tokenizer *t, tok_norm *n, const cJSON *j) {
    const char *content = get_str(j, "content");
    if (!content) return flab_fail("%s: normalizer Replace: \"content\" must be a string", t->name);
    n->kind = NORM_REPLACE;
    n->re = load_pattern(t, cJSON_GetObjectItemCaseSensitive(j, "pattern"), "normalizer Replace", &n->a);
    if (!n->re) return -1;
    if (n->a) n->alen = strlen(n->a);
    n->b = flab_xstrdup(content); n->blen = strlen(content);
    return 0;
}

static int add_norm(flab_tokenizer *t, const cJSON *j) {
    const char *ty = type_of(j);
    if (!ty) return flab_fail("%s: normalizer without a \"type\"", t->name);
    if (strcmp(ty, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "normalizers");
        if (!cJSON_IsArray(list)) return flab_fail("%s: normalizer Sequence: \"normalizers\" must be an array", t->name);
        for (const cJSON *e = list->child; e; e = e->next) if (add_norm(t, e) < 0) return -1;
        return 0;
    }
    t->norms = flab_xrealloc(t->norms, (t->n_norms + 1) * sizeof *t->norms);
    tok_norm *n = &t->norms[t->n_norms++];
    memset(n, 0, sizeof *n);
    if (strcmp(ty, "NFC") == 0) n->kind = NORM_NFC;
    else if (strcmp(ty, "NFD") == 0) n->kind = NORM_NFD;
    else if (strcmp(ty, "NFKC") == 0) n->kind = NORM_NFKC;
    else if (strcmp(ty, "NFKD") == 0) n->kind = NORM_NFKD;
    else if (strcmp(ty, "Prepend") == 0) {
        const char *p = get_str(j, "prepend");
        if (!p) return flab_fail("%s: normalizer Prepend: \"prepend\" must be a string", t->name);
        if (tok_utf8_check(p, strlen(p)) != strlen(p)) return flab_fail("%s: normalizer Prepend: not UTF-8", t->name);
        n->kind = NORM_PREPEND; n->a = flab_xstrdup(p); n->alen = strlen(p);
    } else if (strcmp(ty, "Replace") == 0) {
        return add_norm_replace(t, n, j);
    } else {
        t->n_norms--;
        return flab_fail("%s: unsupported normalizer \"%s\"", t->name, ty);
    }
    return 0;
}

int tok_load_normalizer(flab_tokenizer *t, const cJSON *j) {
    if (!j || cJSON_IsNull(j)) return 0;
    return add_norm(t, j);
}

/* ---- pre-tokenizer -------------------------------------------------------------- */

#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static int load_split(flab_tokenizer *t, tok_pre *p, const cJSON *j) {
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious",
                                         "MergedWithNext", "Contiguous"};
    const char *b = get_str(j, "behavior");
    p->kind = PRE_SPLIT;
    size_t k = 0;
    while (b && k < 5 && strcmp(b, names[k]) != 0) k++;
    if (!b || k == 5) return flab_fail("%s: unsupported pre_tokenizer Split behavior \"%s\"", t->name, b ? b : "?");
    p->behavior = (enum tok_split_behavior)k;
    int inv = get_bool(j, "invert", 0);
    if (inv != 0) return flab_fail("%s: unsupported pre_tokenizer Split option \"invert\" (must be false)", t->name);
    p->re = load_pattern(t, cJSON_GetObjectItemCaseSensitive(j, "pattern"), "pre_tokenizer Split", NULL);
    return p->re ? 0 : -1;
}

static int load_metaspace(flab_tokenizer *t, tok_pre *p, const cJSON *j) {
    const char *r = get_str(j, "replacement"), *scheme = get_str(j, "prepend_scheme");
    p->kind = PRE_METASPACE;
    if (!r || !r[0] || tok_utf8_check(r, strlen(r)) != strlen(r) || tok_utf8_len((unsigned char)r[0]) != strlen(r))
        return flab_fail("%s: pre_tokenizer Metaspace: \"replacement\" must be one character", t->name);
    memcpy(p->repl, r, strlen(r)); p->repl_len = strlen(r);
    size_t adv; p->repl_cp = tok_utf8_decode(r, &adv);
    if (scheme) {
        if (strcmp(scheme, "always") == 0) p->prepend = PREPEND_ALWAYS;
        else if (strcmp(scheme, "first") == 0) p->prepend = PREPEND_FIRST;
        else if (strcmp(scheme, "never") == 0) p->prepend = PREPEND_NEVER;
        else return flab_fail("%s: unsupported Metaspace prepend_scheme \"%s\"", t->name, scheme);
    } else {
        int aps = get_bool(j, "add_prefix_space", 1);
        if (aps < 0) return bad_bool(t, "pre_tokenizer Metaspace", "add_prefix_space");
        p->prepend = aps ? PREPEND_ALWAYS : PREPEND_NEVER;
    }
    if ((p->split = get_bool(j, "split", 1)) < 0) return bad_bool(t, "pre_tokenizer Metaspace", "split");
    return 0;
}

static int add_pre(flab_tokenizer *t, const cJSON *j) {
    const char *ty = type_of(j);
    if (!ty) return flab_fail("%s: pre_tokenizer without a \"type\"", t->name);
    if (strcmp(ty, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "pretokenizers");
        if (!cJSON_IsArray(list)) return flab_fail("%s: pre_tokenizer Sequence: \"pretokenizers\" must be an array", t->name);
        for (const cJSON *e = list->child; e; e = e->next) if (add_pre(t, e) < 0) return -1;
        return 0;
    }
    if (t->byte_level)
        return flab_fail("%s: unsupported pre_tokenizer \"%s\" after ByteLevel (ByteLevel must come last)", t->name, ty);
    t->pres = flab_xrealloc(t->pres, (t->n_pres + 1) * sizeof *t->pres);
    tok_pre *p = &t->pres[t->n_pres++];
    memset(p, 0, sizeof *p);
    if (strcmp(ty, "Split") == 0) return load_split(t, p, j);
    if (strcmp(ty, "Metaspace") == 0) return load_metaspace(t, p, j);
    if (strcmp(ty, "ByteLevel") == 0) {
        int use_regex = get_bool(j, "use_regex", 1);
        p->kind = PRE_BYTELEVEL;
        if ((p->add_prefix_space = get_bool(j, "add_prefix_space", 1)) < 0)
            return bad_bool(t, "pre_tokenizer ByteLevel", "add_prefix_space");
        if (use_regex < 0) return bad_bool(t, "pre_tokenizer ByteLevel", "use_regex");
        if (use_regex && !(p->re = tok_compile_regex(t, GPT2_PATTERN, 0, "pre_tokenizer ByteLevel"))) return -1;
        p->behavior = SPLIT_ISOLATED;
        t->byte_level = 1;
        return 0;
    }
    t->n_pres--;
    return flab_fail("%s: unsupported pre_tokenizer \"%s\"", t->name, ty);
}

int tok_load_pre_tokenizer(flab_tokenizer *t, const cJSON *j) {
    if (!j || cJSON_IsNull(j)) return 0;
    return add_pre(t, j);
}

/* ---- decoder ---------------------------------------------------------------------- */

static int load_dec_replace(flab_tokenizer *t, tok_dec *d, const cJSON *j) {
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j, "pattern");
    const char *s = get_str(pat, "String"), *content = get_str(j, "content");
    if (!s || !content)
        return flab_fail("%s: unsupported decoder Replace (needs {\"String\": ...} pattern and string content)", t->name);
    if (!s[0]) return flab_fail("%s: decoder Replace: empty pattern", t->name);
    d->kind = DEC_REPLACE;
    d->a = flab_xstrdup(s); d->alen = strlen(s);
    d->b = flab_xstrdup(content); d->blen = strlen(content);
    return 0;
}

static int load_dec_strip(flab_tokenizer *t, tok_dec *d, const cJSON *j) {
    const char *c = get_str(j, "content");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "start"), *sp = cJSON_GetObjectItemCaseSensitive(j, "stop");
    if (!c || !c[0] || tok_utf8_len((unsigned char)c[0]) != strlen(c) || tok_utf8_check(c, strlen(c)) != strlen(c) ||
        !cJSON_IsNumber(st) || !cJSON_IsNumber(sp) || st->valuedouble < 0 || sp->valuedouble < 0 ||
        st->valuedouble > 1e6 || sp->valuedouble > 1e6)
        return flab_fail("%s: decoder Strip: needs one-character \"content\" and numbers \"start\", \"stop\"", t->name);
    size_t adv;
    d->kind = DEC_STRIP; d->strip_cp = tok_utf8_decode(c, &adv);
    d->start = (int)st->valuedouble; d->stop = (int)sp->valuedouble;
    return 0;
}

static int load_dec_metaspace(flab_tokenizer *t, tok_dec *d, const cJSON *j) {
    const char *r = get_str(j, "replacement"), *scheme = get_str(j, "prepend_scheme");
    if (!r || !r[0] || tok_utf8_check(r, strlen(r)) != strlen(r))
        return flab_fail("%s: decoder Metaspace: \"replacement\" must be a character", t->name);
    d->kind = DEC_METASPACE; d->a = flab_xstrdup(r); d->alen = strlen(r);
    if (scheme) {
        if (strcmp(scheme, "never") == 0) d->prepend_never = 1;
        else if (strcmp(scheme, "always") != 0 && strcmp(scheme, "first") != 0)
            return flab_fail("%s: unsupported Metaspace prepend_scheme \"%s\"", t->name, scheme);
    } else {
        int aps = get_bool(j, "add_prefix_space", 1);
        if (aps < 0) return bad_bool(t, "decoder Metaspace", "add_prefix_space");
        d->prepend_never = !aps;
    }
    return 0;
}

static int add_dec(flab_tokenizer *t, const cJSON *j) {
    const char *ty = type_of(j);
    if (!ty) return flab_fail("%s: decoder without a \"type\"", t->name);
    if (strcmp(ty, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "decoders");
        if (!cJSON_IsArray(list)) return flab_fail("%s: decoder Sequence: \"decoders\" must be an array", t->name);
        for (const cJSON *e = list->child; e; e = e->next) if (add_dec(t, e) < 0) return -1;
        return 0;
    }
    t->decs = flab_xrealloc(t->decs, (t->n_decs + 1) * sizeof *t->decs);
    tok_dec *d = &t->decs[t->n_decs++];
    memset(d, 0, sizeof *d);
    if (strcmp(ty, "ByteLevel") == 0) { d->kind = DEC_BYTELEVEL; return 0; }
    if (strcmp(ty, "ByteFallback") == 0) { d->kind = DEC_BYTEFALLBACK; return 0; }
    if (strcmp(ty, "Fuse") == 0) { d->kind = DEC_FUSE; return 0; }
    if (strcmp(ty, "Replace") == 0) return load_dec_replace(t, d, j);
    if (strcmp(ty, "Strip") == 0) return load_dec_strip(t, d, j);
    if (strcmp(ty, "Metaspace") == 0) return load_dec_metaspace(t, d, j);
    t->n_decs--;
    return flab_fail("%s: unsupported decoder \"%s\"", t->name, ty);
}

int tok_load_decoder(flab_tokenizer *t, const cJSON *j) {
    if (!j || cJSON_IsNull(j)) return 0;
    t->has_decoder = 1;
    return add_dec(t, j);
}

/* ---- post-processor ------------------------------------------------------------------ */

/* One item of TemplateProcessing "single". */
static int load_tmpl_item(flab_tokenizer *t, const cJSON *item, const cJSON *specials, tok_tmpl_item *out) {
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(item, "Sequence");
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(item, "SpecialToken");
    out->ids = NULL; out->n_ids = -1;
    if (cJSON_IsObject(seq)) {
        const char *id = get_str(seq, "id");
        if (!id || strcmp(id, "A") != 0) return flab_fail("%s: post_processor TemplateProcessing: single uses sequence \"%s\"", t->name, id ? id : "?");
        return 0;
    }
    const char *name = cJSON_IsObject(sp) ? get_str(sp, "id") : NULL;
    const cJSON *def = name ? cJSON_GetObjectItemCaseSensitive(specials, name) : NULL;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(def, "ids");
    if (!cJSON_IsArray(ids))
        return flab_fail("%s: post_processor TemplateProcessing: special token \"%s\" has no ids", t->name, name ? name : "?");
    int n = cJSON_GetArraySize(ids), k = 0;
    out->ids = flab_xmalloc((size_t)(n + 1) * sizeof(int32_t));
    out->n_ids = n;
    for (const cJSON *e = ids->child; e; e = e->next, k++) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 2147483646.0)
            return flab_fail("%s: post_processor TemplateProcessing: bad id of \"%s\"", t->name, name);
        out->ids[k] = (int32_t)e->valuedouble;
    }
    return 0;
}

static int load_template(flab_tokenizer *t, const cJSON *j) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(j, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(j, "special_tokens");
    if (!cJSON_IsArray(single)) return flab_fail("%s: post_processor TemplateProcessing: \"single\" must be an array", t->name);
    t->tmpls = flab_xrealloc(t->tmpls, (t->n_tmpls + 1) * sizeof *t->tmpls);
    tok_template *tp = &t->tmpls[t->n_tmpls++];
    size_t n = (size_t)cJSON_GetArraySize(single);
    tp->items = flab_xcalloc(n + 1, sizeof *tp->items);
    tp->n = 0;
    for (const cJSON *e = single->child; e; e = e->next)
        if (load_tmpl_item(t, e, specials, &tp->items[tp->n++]) < 0) return -1;
    return 0;
}

static int add_post(flab_tokenizer *t, const cJSON *j) {
    const char *ty = type_of(j);
    if (!ty) return flab_fail("%s: post_processor without a \"type\"", t->name);
    if (strcmp(ty, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "processors");
        if (!cJSON_IsArray(list)) return flab_fail("%s: post_processor Sequence: \"processors\" must be an array", t->name);
        for (const cJSON *e = list->child; e; e = e->next) if (add_post(t, e) < 0) return -1;
        return 0;
    }
    if (strcmp(ty, "ByteLevel") == 0) return 0;   /* only touches offsets */
    if (strcmp(ty, "TemplateProcessing") == 0) return load_template(t, j);
    return flab_fail("%s: unsupported post_processor \"%s\"", t->name, ty);
}

int tok_load_post_processor(flab_tokenizer *t, const cJSON *j) {
    if (!j || cJSON_IsNull(j)) return 0;
    return add_post(t, j);
}

/* ---- added tokens -------------------------------------------------------------------- */

static int load_added_one(flab_tokenizer *t, const cJSON *e, flab_added_token *a) {
    const char *content = get_str(e, "content");
    if (!cJSON_IsObject(e) || !content || !content[0])
        return flab_fail("%s: added_tokens: each entry needs a non-empty \"content\"", t->name);
    if (tok_utf8_check(content, strlen(content)) != strlen(content))
        return flab_fail("%s: added token \"%.40s\" is not valid UTF-8", t->name, content);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
    if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= (double)(1 << 24) ||
        id->valuedouble != (double)(int64_t)id->valuedouble)
        return flab_fail("%s: added token \"%.40s\": id must be an integer in [0, 2^24)", t->name, content);
    a->id = (int32_t)id->valuedouble; a->content = content;
    a->special = get_bool(e, "special", 0);
    a->normalized = get_bool(e, "normalized", !a->special);
    a->lstrip = get_bool(e, "lstrip", 0); a->rstrip = get_bool(e, "rstrip", 0);
    a->single_word = get_bool(e, "single_word", 0);
    if (a->special < 0 || a->normalized < 0 || a->lstrip < 0 || a->rstrip < 0 || a->single_word < 0)
        return flab_fail("%s: added token \"%.40s\": flags must be true or false", t->name, content);
    return 0;
}

int tok_load_added_tokens(flab_tokenizer *t, const cJSON *j) {
    size_t n = cJSON_IsArray(j) ? (size_t)cJSON_GetArraySize(j) : 0;
    if (j && !cJSON_IsNull(j) && !cJSON_IsArray(j)) return flab_fail("%s: \"added_tokens\" must be an array", t->name);
    t->added = flab_xcalloc(n + 1, sizeof *t->added);
    tok_strmap_init(&t->added_map, n);
    for (const cJSON *e = n ? j->child : NULL; e; e = e->next) {
        flab_added_token *a = &t->added[t->n_added];
        if (load_added_one(t, e, a) < 0) return -1;
        if (tok_strmap_put(&t->added_map, a->content, strlen(a->content), a->id)) {
            /* HF keeps one entry per content: the later one replaces the earlier */
            for (size_t k = 0; k < t->n_added; k++)
                if (strcmp(t->added[k].content, a->content) == 0) { t->added[k] = *a; break; }
            continue;
        }
        t->n_added++;
    }
    int32_t max_id = t->n_ids - 1;
    for (size_t k = 0; k < t->n_added; k++) if (t->added[k].id > max_id) max_id = t->added[k].id;
    if (max_id >= t->n_ids) {
        t->id_str = flab_xrealloc(t->id_str, (size_t)(max_id + 1) * sizeof *t->id_str);
        t->id_len = flab_xrealloc(t->id_len, (size_t)(max_id + 1) * sizeof *t->id_len);
        for (int32_t i = t->n_ids; i <= max_id; i++) { t->id_str[i] = NULL; t->id_len[i] = 0; }
        t->n_ids = max_id + 1;
    }
    t->is_special = flab_xcalloc((size_t)t->n_ids + 1, 1);
    for (size_t k = 0; k < t->n_added; k++) {
        flab_added_token *a = &t->added[k];
        t->id_str[a->id] = (char *)a->content; t->id_len[a->id] = (uint32_t)strlen(a->content);
        if (a->special) t->is_special[a->id] = 1;
    }
    tok_trie_build(&t->trie_raw, t, 0);
    tok_trie_build(&t->trie_norm, t, 1);
    return 0;
}
