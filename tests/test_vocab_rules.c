/* tests/test_vocab_rules.c: the collect_tokens and prune_vocab rules run
 * in-process (no engine: a RuleCtx filled by hand), so ASan/LSan see their
 * whole run; plus their error paths: a tokens artifact of another tokenizer,
 * a corrupt tokens.json, a corpus with bad jsonl. */
#include "rules/rule_priv.h"
#include "tests/testlib.h"
#include "util/error.h"
#include "util/file.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const Rule rule_collect_tokens, rule_prune_vocab;

#define MAXP 8

typedef struct {
    RuleCtx ctx;
    struct RuleCtxPriv priv;
    const char *values[MAXP];
    const char *const *inputs[MAXP];
    const char *in_store[MAXP][4];
    size_t ninputs[MAXP];
} Harness;

/* Sets param name to value; an input parameter gets the value as its one input. */
static void set(Harness *h, const char *name, const char *value) {
    int i = rule_param_index(h->ctx.rule, name);
    if (i < 0) return;
    h->values[i] = value;
    if (rule_type_is_input(h->ctx.rule->params[i].type)) {
        h->in_store[i][0] = value;
        h->inputs[i] = h->in_store[i];
        h->ninputs[i] = 1;
    }
}

static void init(Harness *h, const Rule *r, const char *out_dir) {
    memset(h, 0, sizeof *h);
    h->ctx.rule = r;
    h->ctx.target = r->name;
    h->ctx.out_dir = out_dir;
    h->ctx.base_dir = "/";
    h->ctx.priv = &h->priv;
    for (size_t i = 0; i < rule_nparams(r); i++) h->values[i] = r->params[i].def;
    h->priv.values = h->values;
    h->priv.inputs = h->inputs;
    h->priv.ninputs = h->ninputs;
    h->priv.metrics = cJSON_CreateObject();
    h->priv.progress_fd = -1;
}

static int run(Harness *h) {
    int rc = h->ctx.rule->run(&h->ctx);
    cJSON_Delete(h->priv.metrics);
    return rc;
}

static char root[64];
static char fix[4096];

static char *path_in(const char *sub) {
    static char buf[8][4200];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, sub);
    return buf[k];
}

static int write_str(const char *path, const char *s) {
    return flab_write_file_atomic(path, s, strlen(s));
}

/* Runs rule r into out with `model` and one more parameter name = value. */
static int run_on_model(const Rule *r, const char *model, const char *name, const char *value,
                        const char *out) {
    Harness h;
    flab_mkdir_p(out, 0755);
    init(&h, r, out);
    set(&h, "model", model);
    set(&h, name, value);
    return run(&h);
}

static int collect(const char *model, const char *corpus, const char *out) {
    return run_on_model(&rule_collect_tokens, model, "corpus", corpus, out);
}

static int prune(const char *model, const char *tokens, const char *out) {
    return run_on_model(&rule_prune_vocab, model, "tokens", tokens, out);
}

static void test_collect_and_prune(void) {
    REQUIRE(write_str(path_in("c.jsonl"),
                      "{\"prompt\": \"def f(x):\\n\", \"canonical_solution\": \"    return x * 2\\n\"}\n"
                      "\n{\"prompt\": \"# \\u00e9t\\u00e9\\n\"}\n") == 0);
    REQUIREF(collect(fix, path_in("c.jsonl"), path_in("tok")) == 0, "%s", flab_errmsg());
    CHECK(flab_path_exists(path_in("tok/tokens.json")) && flab_path_exists(path_in("tok/corpus.jsonl")));
    REQUIREF(prune(fix, path_in("tok"), path_in("pruned")) == 0, "%s", flab_errmsg());
    const char *files[] = {"config.json", "generation_config.json", "model.safetensors",
                           "tokenizer.json", "tokenizer_config.json", "id_map.json"};
    for (size_t i = 0; i < 6; i++) {
        char sub[64];
        snprintf(sub, sizeof sub, "pruned/%s", files[i]);
        CHECKF(flab_path_exists(path_in(sub)), "%s", files[i]);
    }
}

/* A copy of the fixture whose tokenizer.json has one more trailing byte. */
static void test_other_tokenizer_refused(void) {
    REQUIRE(flab_mkdir_p(path_in("other"), 0755) == 0);
    const char *copy[] = {"config.json", "generation_config.json", "model.safetensors",
                          "tokenizer_config.json", "tokenizer.json"};
    for (size_t i = 0; i < 5; i++) {
        char src[4200], dst[64], *data;
        size_t len;
        snprintf(src, sizeof src, "%s/%s", fix, copy[i]);
        snprintf(dst, sizeof dst, "other/%s", copy[i]);
        REQUIRE(flab_read_file(src, &data, &len) == 0);
        if (i == 4) data[len++] = ' ';   /* over the NUL flab_read_file adds */
        int rc = flab_write_file_atomic(path_in(dst), data, len);
        free(data);
        REQUIRE(rc == 0);
    }
    CHECK(prune(path_in("other"), path_in("tok"), path_in("pruned2")) < 0);
    CHECK(strstr(flab_errmsg(), "not the tokenizer the tokens target was collected with") != NULL);
}

static void test_bad_tokens_json(void) {
    REQUIRE(flab_mkdir_p(path_in("badtok"), 0755) == 0);
    REQUIRE(write_str(path_in("badtok/tokens.json"), "{\"format\": \"other\"}") == 0);
    CHECK(prune(fix, path_in("badtok"), path_in("pruned3")) < 0);
    CHECK(strstr(flab_errmsg(), "flab-tokens-1") != NULL);
}

static void test_bad_corpus(void) {
    REQUIRE(write_str(path_in("bad.jsonl"), "{\"prompt\": \"x\"}\n[1, 2]\n") == 0);
    CHECK(collect(fix, path_in("bad.jsonl"), path_in("tok4")) < 0);
    CHECK(strstr(flab_errmsg(), "bad.jsonl:2") != NULL);
    REQUIRE(write_str(path_in("bin.txt"), "ok \xff\xfe") == 0);
    CHECK(collect(fix, path_in("bin.txt"), path_in("tok5")) < 0);
    CHECK(strstr(flab_errmsg(), "bin.txt") != NULL);
    REQUIRE(flab_write_file_atomic(path_in("nul.txt"), "a\0b", 3) == 0);
    CHECK(collect(fix, path_in("nul.txt"), path_in("tok6")) < 0);
    CHECK(strstr(flab_errmsg(), "NUL") != NULL);
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/flab-vocab-rules.XXXXXX");
    if (!mkdtemp(root)) return 1;
    if (!realpath("tests/fixtures/tiny-qwen2", fix)) return 1;
    RUN(test_collect_and_prune);
    RUN(test_other_tokenizer_refused);
    RUN(test_bad_tokens_json);
    RUN(test_bad_corpus);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) return 1;
    return TEST_SUMMARY();
}
