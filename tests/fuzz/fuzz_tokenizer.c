/* tests/fuzz/fuzz_tokenizer.c: libFuzzer harness for the tokenizer.json
 * loader and the encoder (optional: the suite's seeded loop is
 * tests/test_tokenizer_fuzz.c).  Input: a tokenizer.json; when it loads, the
 * input's last 64 bytes are also encoded and decoded.  Build and run:
 *   tests/fuzz/run_fuzz_tokenizer.sh [SECONDS]
 */
#include "model/tokenizer.h"
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    flab_tokenizer *t = flab_tok_load_json((const char *)data, size, NULL, "fuzz.json");
    if (!t) return 0;
    size_t n = size < 64 ? size : 64;
    const char *text = (const char *)data + size - n;
    for (int mode = 0; mode < 2; mode++) {
        int32_t *ids; size_t nid;
        if (flab_tok_encode(t, text, n, (flab_tok_encode_opts){mode, mode}, &ids, &nid) == 0) {
            free(flab_tok_decode(t, ids, nid, mode, NULL));
            free(ids);
        }
    }
    flab_tok_free(t);
    return 0;
}
