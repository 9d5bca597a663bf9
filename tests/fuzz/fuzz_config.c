/* tests/fuzz/fuzz_config.c: libFuzzer harness for config.json loading.
 * The input is the text of config.json (no generation_config.json).
 * Build and run: tests/fuzz/run.sh config [seconds]  (docs/MODEL_IO.md). */
#include "model/config.h"
#include "util/error.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/flab-fuzzcfg-%ld", (long)getpid());
        mkdir(dir, 0700);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    ModelConfig c;
    if (model_config_load(dir, &c) == 0) {
        if (c.hidden_size <= 0 || c.head_dim <= 0 || c.num_key_value_heads <= 0 ||
            c.num_attention_heads % c.num_key_value_heads)
            abort();
        model_config_free(&c);
    } else if (!strstr(flab_errmsg(), "config.json")) {
        abort();
    }
    return 0;
}
