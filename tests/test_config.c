/* tests/test_config.c: config.json loading, validation and rewriting. */
#include "model/config.h"
#include "tests/scratch_testlib.h"
#include "tests/testlib.h"
#include "util/error.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpdir[64];

static const char *QWEN =
    "{\"architectures\":[\"Qwen2ForCausalLM\"],\"model_type\":\"qwen2\",\"hidden_size\":64,"
    "\"intermediate_size\":128,\"num_hidden_layers\":4,\"num_attention_heads\":4,"
    "\"num_key_value_heads\":2,\"vocab_size\":300,\"rms_norm_eps\":1e-05,"
    "\"rope_theta\":1000000.0,\"custom_key\":{\"nested\":[1,2,3]}%s}";

/* Writes dir/config.json = QWEN with `extra` spliced in ("" or ",\"k\":v"). */
static const char *cfg_dir(const char *name, const char *fmt, const char *extra,
                           const char *gen) {
    static char dir[200];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    flab_mkdir_p(dir, 0755);
    char path[300], text[4096];
    snprintf(text, sizeof text, fmt ? fmt : "%s", extra);   /* never NULL: for gcc -O1 + ASan */
    if (fmt == QWEN && *extra) {
        /* Keys in extra replace the base's (no duplicate keys). */
        char base[2048], more[2048];
        snprintf(base, sizeof base, QWEN, "");
        snprintf(more, sizeof more, "{%s}", extra + 1);
        cJSON *b = cJSON_Parse(base), *m = cJSON_Parse(more);
        for (cJSON *e = m->child; e; e = e->next) {
            cJSON_DeleteItemFromObjectCaseSensitive(b, e->string);
            cJSON_AddItemToObject(b, e->string, cJSON_Duplicate(e, 1));
        }
        char *out = cJSON_PrintUnformatted(b);
        snprintf(text, sizeof text, "%s", out);
        free(out);
        cJSON_Delete(b);
        cJSON_Delete(m);
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    flab_write_file_atomic(path, text, strlen(text));
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    if (gen) flab_write_file_atomic(path, gen, strlen(gen));
    else unlink(path);
    return dir;
}

static void test_fixture(void) {
    ModelConfig c;
    REQUIREF(model_config_load(FIXTURE_DIR "/tiny-qwen2", &c) == 0, "%s", flab_errmsg());
    CHECK(!strcmp(c.architecture, "Qwen2ForCausalLM"));
    CHECK(!strcmp(c.model_type, "qwen2"));
    CHECK(c.hidden_size == 192 && c.intermediate_size == 512 && c.num_hidden_layers == 8);
    CHECK(c.num_attention_heads == 6 && c.num_key_value_heads == 2 && c.head_dim == 32);
    CHECK(c.vocab_size == 2048 && c.max_position_embeddings == 2048);
    CHECK(c.rms_norm_eps == 1e-6 && c.rope_theta == 10000.0);
    CHECK(!c.tie_word_embeddings && c.qkv_bias && !c.o_bias && !c.mlp_bias);
    CHECK(c.bos_token_id == -1);
    CHECK(c.n_eos == 1 && c.eos_token_ids[0] == 2045);
    CHECK(c.raw != NULL);
    model_config_free(&c);
    model_config_free(&c);  /* idempotent */
}

static void test_qwen_defaults_and_eos(void) {
    ModelConfig c;
    const char *d = cfg_dir("q1", QWEN, ",\"eos_token_id\":[5,7],\"bos_token_id\":3",
                            "{\"eos_token_id\":[7,9],\"bos_token_id\":3}");
    REQUIREF(model_config_load(d, &c) == 0, "%s", flab_errmsg());
    CHECK(c.head_dim == 16 && c.max_position_embeddings == 32768);
    CHECK(c.rms_norm_eps == 1e-5 && c.rope_theta == 1e6);
    CHECK(c.bos_token_id == 3);
    CHECK(c.n_eos == 3 && c.eos_token_ids[0] == 5 && c.eos_token_ids[1] == 7 &&
          c.eos_token_ids[2] == 9);
    model_config_free(&c);
    d = cfg_dir("q2", QWEN, "", "{\"eos_token_id\":4}");
    REQUIREF(model_config_load(d, &c) == 0, "%s", flab_errmsg());
    CHECK(c.n_eos == 1 && c.eos_token_ids[0] == 4 && c.bos_token_id == -1);
    CHECK(c.num_key_value_heads == 2);
    model_config_free(&c);
}

static void test_llama(void) {
    static const char *LLAMA =
        "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":60,"
        "\"intermediate_size\":100,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
        "\"head_dim\":32,\"vocab_size\":32016,\"tie_word_embeddings\":true%s}";
    ModelConfig c;
    const char *d = cfg_dir("l1", LLAMA, ",\"attention_bias\":true,\"mlp_bias\":true,"
                            "\"rope_scaling\":null", NULL);
    REQUIREF(model_config_load(d, &c) == 0, "%s", flab_errmsg());
    CHECK(!strcmp(c.model_type, "llama") && c.head_dim == 32);  /* 4 does not divide 60 */
    CHECK(c.num_key_value_heads == 4 && c.max_position_embeddings == 2048);
    CHECK(c.qkv_bias && c.o_bias && c.mlp_bias && c.tie_word_embeddings);
    CHECK(c.bos_token_id == 1 && c.n_eos == 1 && c.eos_token_ids[0] == 2);  /* LlamaConfig */
    model_config_free(&c);
    d = cfg_dir("l2", LLAMA, ",\"rope_scaling\":{\"rope_type\":\"default\"},\"bos_token_id\":null,"
                "\"eos_token_id\":null", NULL);
    REQUIREF(model_config_load(d, &c) == 0, "%s", flab_errmsg());
    CHECK(!c.qkv_bias && !c.o_bias && c.bos_token_id == -1 && c.n_eos == 0);
    model_config_free(&c);
    /* model_type alone is enough when architectures is absent. */
    d = cfg_dir("l3", "{\"model_type\":\"llama\",\"hidden_size\":8,\"intermediate_size\":8,"
                "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"vocab_size\":10%s}", "", NULL);
    REQUIREF(model_config_load(d, &c) == 0, "%s", flab_errmsg());
    CHECK(!strcmp(c.architecture, "LlamaForCausalLM"));
    model_config_free(&c);
}

typedef struct { const char *extra, *gen, *expect; } BadCfg;

static void test_invalid(void) {
    static const BadCfg bad[] = {
        {",\"hidden_size\":0", NULL, "\"hidden_size\" is 0"},
        {",\"vocab_size\":-5", NULL, "\"vocab_size\" is -5"},
        {",\"num_hidden_layers\":2.5", NULL, "\"num_hidden_layers\" is not an integer"},
        {",\"intermediate_size\":\"128\"", NULL, "\"intermediate_size\" is not an integer"},
        {",\"num_attention_heads\":5", NULL, "\"num_attention_heads\" (5) does not divide"},
        {",\"num_key_value_heads\":3", NULL, "\"num_key_value_heads\" (3) does not divide"},
        {",\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.0}", NULL,
         "unsupported rope_scaling type \"linear\""},
        {",\"rope_scaling\":{\"rope_type\":\"llama3\"}", NULL,
         "unsupported rope_scaling type \"llama3\""},
        {",\"rope_scaling\":7", NULL, "\"rope_scaling\" is not an object"},
        {",\"hidden_act\":\"gelu\"", NULL, "\"hidden_act\""},
        {",\"use_sliding_window\":true", NULL, "\"use_sliding_window\""},
        {",\"tie_word_embeddings\":1", NULL, "\"tie_word_embeddings\" is not true or false"},
        {",\"rms_norm_eps\":0", NULL, "\"rms_norm_eps\" must be positive"},
        {",\"eos_token_id\":\"x\"", NULL, "\"eos_token_id\""},
        {",\"eos_token_id\":[1,2,3,4,5,6,7,8,9]", NULL, "more than 8"},
        {",\"bos_token_id\":-3", NULL, "\"bos_token_id\" is negative"},
        {",\"architectures\":[\"GPT2LMHeadModel\"]", NULL, "unsupported architecture \"GPT2LMHeadModel\""},
        {",\"architectures\":3", NULL, "\"architectures\""},
        {"", "{\"eos_token_id\":", "generation_config.json: not valid JSON"},
        {"", "{\"eos_token_id\":-1}", "generation_config.json: \"eos_token_id\""},
        {",\"head_dim\":0", NULL, "\"head_dim\" is 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ModelConfig c;
        const char *d = cfg_dir("bad", QWEN, bad[i].extra, bad[i].gen);
        int rc = model_config_load(d, &c);
        CHECKF(rc < 0, "case %zu (%s) accepted", i, bad[i].extra);
        if (rc == 0) { model_config_free(&c); continue; }
        CHECKF(strstr(flab_errmsg(), d) && strstr(flab_errmsg(), bad[i].expect),
               "case %zu: \"%s\" lacks \"%s\"", i, flab_errmsg(), bad[i].expect);
        CHECK(c.raw == NULL);
    }
}

static void test_missing_and_malformed(void) {
    static const char *missing[] = {"hidden_size", "intermediate_size", "num_hidden_layers",
                                    "num_attention_heads", "vocab_size"};
    for (size_t i = 0; i < 5; i++) {
        char text[1024];
        snprintf(text, sizeof text, QWEN, "");
        /* Rename the key so that it is missing. */
        char *k = strstr(text, missing[i]);
        REQUIRE(k);
        k[0] = 'X';
        const char *d = cfg_dir("miss", "%s", text, NULL);
        ModelConfig c;
        CHECK(model_config_load(d, &c) < 0);
        CHECKF(strstr(flab_errmsg(), "config.json: missing required key") &&
               strstr(flab_errmsg(), missing[i]), "%s", flab_errmsg());
    }
    ModelConfig c;
    CHECK(model_config_load(cfg_dir("m1", "%s", "{\"a\":", NULL), &c) < 0 &&
          strstr(flab_errmsg(), "config.json: not valid JSON"));
    CHECK(model_config_load(cfg_dir("m2", "%s", "[1]", NULL), &c) < 0 &&
          strstr(flab_errmsg(), "not a JSON object"));
    CHECK(model_config_load(cfg_dir("m3", "%s", "{\"a\":\"\xff\"}", NULL), &c) < 0 &&
          strstr(flab_errmsg(), "UTF-8"));
    CHECK(model_config_load(cfg_dir("m4", "%s", "{\"architectures\":[\"LlamaForCausalLM\"]}", NULL),
                            &c) < 0 && strstr(flab_errmsg(), "missing required key \"hidden_size\""));
    CHECK(model_config_load(cfg_dir("m5", "%s", "{}", NULL), &c) < 0 &&
          strstr(flab_errmsg(), "\"architectures\""));
    CHECK(model_config_load(cfg_dir("m7", "%s", "{\"model_type\":\"llama\",\"model_type\":\"qwen2\"}",
                                    NULL), &c) < 0 && strstr(flab_errmsg(), "duplicate key \"model_type\""));
    CHECK(model_config_load(cfg_dir("m6", "%s", "{\"model_type\":\"gpt2\"}", NULL), &c) < 0 &&
          strstr(flab_errmsg(), "unsupported model_type \"gpt2\""));
    CHECK(model_config_load("/nonexistent-flab-dir", &c) < 0 &&
          strstr(flab_errmsg(), "/nonexistent-flab-dir/config.json"));
}

/* Pruning rewrites sizes; every other key (unknown ones included) stays. */
static void test_write_keeps_unknown_keys(void) {
    ModelConfig c, back;
    REQUIREF(model_config_load(FIXTURE_DIR "/tiny-qwen2", &c) == 0, "%s", flab_errmsg());
    c.num_hidden_layers = 6;
    c.intermediate_size = 384;
    c.vocab_size = 1500;
    char dir[200];
    snprintf(dir, sizeof dir, "%s/written", tmpdir);
    flab_mkdir_p(dir, 0755);
    REQUIREF(model_config_write(dir, &c) == 0, "%s", flab_errmsg());
    REQUIREF(model_config_load(dir, &back) == 0, "%s", flab_errmsg());
    CHECK(back.num_hidden_layers == 6 && back.intermediate_size == 384 && back.vocab_size == 1500);
    CHECK(back.hidden_size == 192 && back.head_dim == 32 && back.rms_norm_eps == 1e-6);
    const cJSON *a = c.raw, *b = back.raw;
    CHECK(cJSON_GetArraySize(a) == cJSON_GetArraySize(b));
    for (const cJSON *e = a->child; e; e = e->next) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(b, e->string);
        CHECKF(f != NULL, "key %s lost", e->string);
        if (!f || !strcmp(e->string, "num_hidden_layers") || !strcmp(e->string, "intermediate_size") ||
            !strcmp(e->string, "vocab_size") || !strcmp(e->string, "max_window_layers"))
            continue;
        CHECKF(cJSON_Compare(e, f, 1), "key %s changed", e->string);
    }
    CHECK(cJSON_GetObjectItem(b, "max_window_layers")->valuedouble == 6);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(b, "sliding_window")));
    CHECK(cJSON_GetObjectItem(b, "head_dim") == NULL);  /* implied: not added */
    char *text;
    REQUIRE(flab_read_file("/dev/null", &text, NULL) == 0);
    free(text);
    char path[300];
    snprintf(path, sizeof path, "%s/config.json", dir);
    REQUIRE(flab_read_file(path, &text, NULL) == 0);
    CHECK(strstr(text, "\n  \"model_type\": \"qwen2\",\n") != NULL);  /* 2-space layout */
    CHECK(!strchr(text, '\t'));
    free(text);
    model_config_free(&back);
    /* Heads pruned so that heads x head_dim != hidden: head_dim is written. */
    c.num_attention_heads = 4;
    REQUIREF(model_config_write(dir, &c) == 0, "%s", flab_errmsg());
    REQUIREF(model_config_load(dir, &back) == 0, "%s", flab_errmsg());
    CHECK(back.num_attention_heads == 4 && back.head_dim == 32);
    model_config_free(&back);
    model_config_free(&c);
}

static void test_write_layer_types(void) {
    ModelConfig c, back;
    const char *d = cfg_dir("lt", QWEN, ",\"layer_types\":[\"full_attention\",\"full_attention\","
                            "\"full_attention\",\"full_attention\"]", NULL);
    REQUIREF(model_config_load(d, &c) == 0, "%s", flab_errmsg());
    c.num_hidden_layers = 2;
    REQUIREF(model_config_write(d, &c) == 0, "%s", flab_errmsg());
    REQUIREF(model_config_load(d, &back) == 0, "%s", flab_errmsg());
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(back.raw, "layer_types")) == 2);
    model_config_free(&back);
    model_config_free(&c);
    d = cfg_dir("lt2", QWEN, ",\"layer_types\":[\"a\",\"b\",\"a\",\"b\"]", NULL);
    REQUIREF(model_config_load(d, &c) == 0, "%s", flab_errmsg());
    c.num_hidden_layers = 2;
    CHECK(model_config_write(d, &c) < 0 && strstr(flab_errmsg(), "\"layer_types\""));
    model_config_free(&c);
    CHECK(model_config_write(d, &c) < 0);  /* no raw JSON */
}

int main(void) {
    if (scratch_make(tmpdir, sizeof tmpdir, "/tmp/flab-cfg-XXXXXX")) return 1;
    RUN(test_fixture);
    RUN(test_qwen_defaults_and_eos);
    RUN(test_llama);
    RUN(test_invalid);
    RUN(test_missing_and_malformed);
    RUN(test_write_keeps_unknown_keys);
    RUN(test_write_layer_types);
    if (scratch_remove(tmpdir)) return 1;
    return TEST_SUMMARY();
}
