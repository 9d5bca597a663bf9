/* tests/tools/lora_steps.c: a few LoRA optimiser steps on fixed data, for
 * tests/test_lora_peft.py to compare with PEFT + torch.optim.AdamW.
 *   lora_steps MODEL_DIR ADAPTER_DIR OUT_DIR IDS...
 * Starts from the adapter (adapter_model.safetensors + adapter_config.json),
 * no dropout; the ids form 2 sequences (first half, second half), one
 * micro-batch each, accumulated into each step (grad_accum 2); rows
 * < PROMPT - 1 are masked.  3 steps: lr 1e-2 peak, warmup 1, cosine over 3,
 * AdamW betas (0.9, 0.95), eps 1e-6, weight decay 0.1, clip 0.05.  Writes
 * OUT_DIR/adapter_model.safetensors and prints each step's loss. */
#include "model/lora.h"
#include "util/error.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#define PROMPT 8
#define STEPS 3

int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: lora_steps MODEL ADAPTER OUT IDS...\n"); return 2; }
    char w[PATH_MAX], c[PATH_MAX];
    snprintf(w, sizeof w, "%s/adapter_model.safetensors", argv[2]);
    snprintf(c, sizeof c, "%s/adapter_config.json", argv[2]);
    LoraConfig lc;
    LoraModel *m = NULL;
    int n = argc - 4, half = n / 2, rc = 1;
    int32_t *ids = malloc((size_t)n * sizeof(int32_t));
    uint8_t *score = malloc((size_t)n);
    for (int i = 0; i < n; i++) ids[i] = atoi(argv[4 + i]);
    if (lora_adapter_read_config(c, &lc) || (lc.dropout = 0, lora_model_create(argv[1], &lc, 1, &m)) ||
        lora_adapter_load(m, w, c))
        goto out;
    LoraAdamW opt = {1e-2, 0.9, 0.95, 1e-6, 0.1, 0.05};
    int lens[2][1] = {{half}, {n - half}};
    for (int i = 0; i < n; i++) score[i] = (i < half ? i : i - half) >= PROMPT - 1;
    double denom = (half - PROMPT) + (n - half - PROMPT);
    for (long s = 0; s < STEPS; s++) {
        double loss = 0, ls, gn;
        long cnt;
        for (int a = 0; a < 2; a++) {
            LoraBatch b = {1, ids + (a ? half : 0), lens[a], score + (a ? half : 0)};
            if (lora_step_fwd_bwd(m, &b, denom, 1, &ls, &cnt)) goto out;
            loss += ls;
        }
        if (lora_adamw_step(m, &opt, lora_lr_at(opt.lr, s, 1, STEPS, 1), s + 1, &gn)) goto out;
        printf("step %ld loss %.9f grad_norm %.9g\n", s + 1, loss / denom, gn);
    }
    rc = lora_adapter_write(m, argv[3], argv[1]) ? 1 : 0;
out:
    if (rc) fprintf(stderr, "lora_steps: %s\n", flab_errmsg());
    lora_model_free(m);
    free(ids);
    free(score);
    return rc;
}
