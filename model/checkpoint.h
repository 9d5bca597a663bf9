/* model/checkpoint.h: a Hugging Face checkpoint directory as a whole:
 * config.json (+ generation_config.json) and the safetensors weights, checked
 * against each other; and the writer of a complete checkpoint directory that
 * every pruning rule ends with (config with unknown keys kept, generation
 * config, tokenizer files, weights single or sharded).
 *
 * Tensor names and shapes are those of transformers' Qwen2ForCausalLM /
 * LlamaForCausalLM state dicts:
 *   model.embed_tokens.weight [V, H]          model.norm.weight [H]
 *   lm_head.weight [V, H] (absent when tie_word_embeddings)
 *   model.layers.L.{input,post_attention}_layernorm.weight [H]
 *   model.layers.L.self_attn.{q,k,v,o}_proj.weight  [nh*hd, H] [kv*hd, H] x2 [H, nh*hd]
 *   model.layers.L.self_attn.{q,k,v}_proj.bias when qkv_bias, o_proj.bias [H] when o_bias
 *   model.layers.L.mlp.{gate,up}_proj.weight [I, H], down_proj.weight [H, I]
 *   (+ biases [I], [I], [H] when mlp_bias) */
#ifndef FLAB_MODEL_CHECKPOINT_H
#define FLAB_MODEL_CHECKPOINT_H
#include "model/config.h"
#include "model/safetensors.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char *dir;
    ModelConfig cfg;
    SafeTensors *st;
} Checkpoint;

/* Loads dir's config and weights and checks that every tensor the config
 * implies is present with its shape (extra tensors are ignored, as
 * transformers does).  On error ck is zeroed; the message names the file and
 * the tensor or key. */
int ckpt_open(const char *dir, Checkpoint *ck);
void ckpt_close(Checkpoint *ck);

/* Checks tensors against cfg: each expected tensor present with the right
 * shape; with strict, any other tensor is an error too (a leftover of a
 * pruned layer, say).  `what` names the checkpoint in messages. */
int ckpt_check_tensors(const ModelConfig *cfg, const StWriteTensor *t, size_t n,
                       bool strict, const char *what);

typedef struct {
    /* Directory of the checkpoint this one derives from: its
     * generation_config.json is carried over (ids remapped), and with
     * copy_tokenizer its tokenizer files too. NULL: neither. */
    const char *src_dir;
    bool copy_tokenizer;
    size_t max_shard_bytes;   /* 0: HF's 5 GB */
    /* Vocabulary pruning: id_map[old] = new id, or -1 if removed; bos, eos,
     * pad and decoder_start ids in config.json and generation_config.json
     * are rewritten through it.  NULL: ids unchanged. */
    const int32_t *id_map;
    size_t id_map_len;
} CkptWriteOptions;

/* Writes a complete checkpoint into dir (created if needed): weights
 * (checked strictly against cfg first), config.json from cfg (unknown keys
 * of cfg->raw kept), generation_config.json and tokenizer files per opt.
 * Every file is written durably (temp + fsync + rename). */
int ckpt_write(const char *dir, const ModelConfig *cfg, const StWriteTensor *t, size_t n,
               const CkptWriteOptions *opt);

/* The tokenizer files copied by ckpt_write (NULL-terminated). */
extern const char *const ckpt_tokenizer_files[];
#endif
