/* tests/test_safetensors.c: reading, writing and validating safetensors. */
#include "model/safetensors.h"
#include "tests/testlib.h"
#include "util/error.h"
#include "util/file.h"
#include <stdlib.h>
#include <unistd.h>

#define FIX FIXTURE_DIR "/tiny-qwen2"

static void test_open_fixture(void) {
    SafeTensors *st;
    REQUIREF(st_open(FIX, &st) == 0, "%s", flab_errmsg());
    CHECK(st_count(st) == 99);
    const StTensor *e = st_find(st, "model.embed_tokens.weight");
    REQUIRE(e);
    CHECK(e->dtype == FLAB_BF16 && e->ndim == 2 && e->shape[0] == 2048 && e->shape[1] == 192);
    CHECK(e->nbytes == 2048 * 192 * 2);
    CHECK(strstr(e->file, "model.safetensors") != NULL);
    const StTensor *qb = st_find(st, "model.layers.7.self_attn.q_proj.bias");
    REQUIRE(qb);
    CHECK(qb->ndim == 1 && qb->shape[0] == 192);
    CHECK(st_find(st, "model.layers.8.self_attn.q_proj.bias") == NULL);
    for (size_t i = 1; i < st_count(st); i++)
        CHECK(strcmp(st_at(st, i - 1)->name, st_at(st, i)->name) < 0);
    CHECK(st_at(st, st_count(st)) == NULL);
    CHECK(st_metadata(st, "format") && !strcmp(st_metadata(st, "format"), "pt"));
    st_close(st);
}

int main(void) {
    RUN(test_open_fixture);
    return TEST_SUMMARY();
}
