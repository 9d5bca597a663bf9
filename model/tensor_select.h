/* model/tensor_select.h: the gathers pruning is made of: chosen rows of a
 * tensor (vocabulary pruning: embedding / lm_head rows; FFN pruning:
 * gate_proj / up_proj rows and biases) or chosen columns (FFN pruning:
 * down_proj), into a new buffer ready for st_write_dir / ckpt_write. */
#ifndef FLAB_MODEL_TENSOR_SELECT_H
#define FLAB_MODEL_TENSOR_SELECT_H
#include "model/safetensors.h"

/* w = t with only the rows idx[0..k) (in that order) along dimension 0
 * (a 1-D tensor: its elements).  w->data is malloc'd and owned by the
 * caller (free((void *)w->data)); w->name is t->name.  An index out of
 * range is an error naming the tensor. */
int st_select_rows(const StTensor *t, const int64_t *idx, size_t k, StWriteTensor *w);

/* w = the 2-D tensor t with only the columns idx[0..k) (dimension 1). */
int st_select_cols(const StTensor *t, const int64_t *idx, size_t k, StWriteTensor *w);
#endif
