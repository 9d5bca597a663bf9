/* tests/test_config.c: config.json loading, validation and rewriting. */
#include "model/config.h"
#include "tests/testlib.h"
#include "util/error.h"
#include "util/file.h"
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <unistd.h>

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
}

int main(void) {
    RUN(test_fixture);
    return TEST_SUMMARY();
}
