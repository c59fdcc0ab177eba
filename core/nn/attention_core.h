/*
 * The attention engine shared by F.scaled_dot_product_attention
 * (attention.c) and MultiheadAttention (mha.c): B independent products
 * softmax(Q K^T * scale + masks) V over contiguous Q (B, L, E),
 * K (B, S, E), V (B, S, Ev), O (B, L, Ev). Internal to core/nn.
 */
#ifndef SL_ATTENTION_CORE_H
#define SL_ATTENTION_CORE_H
#include "attention.h"

typedef struct sl_attn_core {
  int64_t B, L, S, E, Ev;
  int64_t H;                /* batches per key_padding_mask row (kpm row = b / H) */
  float scale;
  double p;                 /* dropout probability */
  bool dropout;             /* the last forward dropped (p > 0) */
  bool causal;              /* key j > query i masked */
  const float *madd;        /* additive mask (B or 1, L, S), NULL: none */
  bool madd_batched;        /* madd has B matrices, else one shared */
  const float *kpm;         /* additive key mask (B / H, S), NULL: none */
  sl_tensor *P;             /* weights after dropout (caller shapes it: B*L*S elements) */
  float *A, *G;             /* softmax before dropout (dropout only), backward scratch */
  int64_t A_cap, G_cap;
  float *madd_buf, *kpm_buf;
  int64_t madd_cap, kpm_cap;
} sl_attn_core;

/* Grows *p to n floats (contents lost); SL_OK or the allocation failure. */
int sl_attn_grow(float **p, int64_t *cap, int64_t n);
void sl_attn_core_free(sl_attn_core *c);
/* Whether mask t is boolean (type AUTO: all values 0 or 1); an error naming
 * op and the mask when type is BOOL and a value is neither. */
int sl_attn_mask_kind(const sl_tensor *t, sl_mask_type type, const char *op, const char *name, bool *is_bool);
/* t as additive terms into *dst (grown): a boolean value equal to
 * masked_one becomes -inf, the other 0; an additive one is copied. */
int sl_attn_mask_to_add(float **dst, int64_t *cap, const sl_tensor *t, bool is_bool, bool masked_one);
/* Forward over c's shapes and masks; c->P must hold B*L*S floats. */
int sl_attn_core_forward(sl_attn_core *c, const float *Q, const float *K, const float *V, float *O, sl_rng *rng);
/* Gradients (written) after the matching forward. */
void sl_attn_core_backward(sl_attn_core *c, const float *Q, const float *K, const float *V, const float *gO,
                           float *gQ, float *gK, float *gV);

#endif
