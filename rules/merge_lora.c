/* rules/merge_lora.c: the `merge` rule: a LoRA adapter folded into its base
 * checkpoint, W + (alpha / r) B A (model/lora_merge.c), written as a plain
 * HF checkpoint (config, generation config and tokenizer carried over) that
 * serves without PEFT.  dtype: the merged matrices' dtype (`base` keeps the
 * checkpoint's; f32 avoids re-rounding the sum to bf16). */
#include "model/dtype.h"
#include "model/lora.h"
#include "rules/rule.h"
#include <string.h>

static const RuleParam merge_params[] = {
    {"model", RULE_PATH, NULL, 0, -1, NULL, "base checkpoint directory or @target"},
    {"adapter", RULE_PATH, NULL, 0, -1, NULL, "PEFT adapter directory or @target (lora_train)"},
    {"dtype", RULE_STRING, "base", 0, -1, "base|f32|bf16|f16", "dtype of the merged matrices"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int run(RuleCtx *ctx) {
    const char *dt = rule_str(ctx, "dtype");
    int dtype = !strcmp(dt, "f32") ? FLAB_F32 : !strcmp(dt, "bf16") ? FLAB_BF16
              : !strcmp(dt, "f16") ? FLAB_F16 : -1;
    return lora_merge(rule_input(ctx, "model"), rule_input(ctx, "adapter"), ctx->out_dir, dtype);
}

const Rule rule_merge = {
    .name = "merge",
    .version = 1,
    .summary = "fold a LoRA adapter into its base checkpoint",
    .params = merge_params,
    .flags = 0,
    .run = run,
    .check = NULL,
};
