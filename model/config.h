/* model/config.h: the HF config.json of a Qwen2 / Llama causal LM.
 * CONTRACT of the skeleton: the fields below are used by model/transformer
 * and the rules; the implementation (model/config.c) may add more. */
#ifndef FLAB_MODEL_CONFIG_H
#define FLAB_MODEL_CONFIG_H
#include <stdbool.h>

#define FLAB_MAX_EOS 8

typedef struct {
    char architecture[64];     /* "Qwen2ForCausalLM" | "LlamaForCausalLM" */
    char model_type[32];       /* "qwen2" | "llama" */
    int hidden_size;
    int intermediate_size;
    int num_hidden_layers;
    int num_attention_heads;
    int num_key_value_heads;
    int head_dim;              /* from config, else hidden_size / heads */
    int vocab_size;            /* may exceed the tokenizer's ids */
    int max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    bool tie_word_embeddings;
    bool qkv_bias;             /* Qwen2: always; Llama: attention_bias */
    bool o_bias;               /* Llama attention_bias; Qwen2: never */
    bool mlp_bias;             /* Llama mlp_bias */
    int bos_token_id;          /* -1 if null */
    int eos_token_ids[FLAB_MAX_EOS]; /* config's, then generation_config's */
    int n_eos;
    void *raw;                 /* the parsed cJSON object: unknown keys survive a rewrite */
} ModelConfig;

/* Loads dir/config.json (and dir/generation_config.json when present). */
int model_config_load(const char *dir, ModelConfig *cfg);
void model_config_free(ModelConfig *cfg);
/* Writes dir/config.json from raw with the numeric fields above updated
 * (pruned layers, intermediate size, vocab size); keeps every other key. */
int model_config_write(const char *dir, const ModelConfig *cfg);

/* Added by the implementation. */
/* Parses a JSON object file (UTF-8 checked); a cJSON *, or NULL + error. */
void *model_json_load(const char *path);
/* A cJSON value printed in transformers' 2-space layout, ending in "\n". */
char *model_json_print(const void *json);
#endif
