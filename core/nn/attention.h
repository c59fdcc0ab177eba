/*
 * Scaled dot-product attention and MultiheadAttention, matched to PyTorch
 * (torch.nn.MultiheadAttention's parameter layout, state_dict names, init,
 * masks; F.scaled_dot_product_attention's semantics). docs/api.md has the
 * Lua side.
 *
 * Masks are float tensors. A boolean mask holds only 0 and 1; an additive
 * ("float") mask is added to the scores before the softmax (-inf removes a
 * key). SL_MASK_AUTO reads a mask as boolean when every value is 0 or 1,
 * else as additive. The meaning of a boolean 1 follows PyTorch, which
 * differs between the two: in MultiheadAttention 1 = masked (PyTorch's
 * True = not allowed to attend); in scaled_dot_product_attention 1 = takes
 * part (PyTorch's True = attend). A query row whose keys are all masked
 * gives NaN, as in PyTorch.
 */
#ifndef SL_ATTENTION_H
#define SL_ATTENTION_H
#include "nn.h"

typedef enum sl_mask_type { SL_MASK_AUTO, SL_MASK_BOOL, SL_MASK_FLOAT } sl_mask_type;

/* ---- scaled dot-product attention ----
 * q (..., L, E), k (..., S, E), v (..., S, Ev) with the same leading dims
 * (at least one dim each side: L, S >= 1 rows of a matrix);
 * out (..., L, Ev) = softmax(q k^T * scale + mask) v, dropout on the
 * softmax when dropout_p > 0 (drawn from rng, one uniform per weight, kept
 * when u >= p, scaled by 1/(1-p)). attn_mask: (L, S) or (..., L, S) whose
 * leading dims each equal q's or are 1 (fewer dims broadcast from the
 * right). is_causal: key j > query i is masked (top-left aligned, PyTorch's
 * tril); not together with attn_mask (PyTorch's rule). scale <= 0 or NaN:
 * 1/sqrt(E). */
typedef struct sl_sdpa_opts {
  const sl_tensor *attn_mask;
  sl_mask_type mask_type;
  double dropout_p;
  bool is_causal;
  double scale;
} sl_sdpa_opts;

/* Buffers of one attention call, reused while shapes are stable; the
 * backward needs the forward's inputs again and the same context. */
typedef struct sl_sdpa sl_sdpa;
sl_sdpa *sl_sdpa_new(void);
void sl_sdpa_free(sl_sdpa *a);
/* *out is owned by a (overwritten by the next forward). */
int sl_sdpa_forward(sl_sdpa *a, const sl_tensor *q, const sl_tensor *k, const sl_tensor *v, const sl_sdpa_opts *o,
                    sl_rng *rng, const sl_tensor **out);
/* dL/dq, dL/dk, dL/dv for gout = dL/dout, after the matching forward with
 * the same q, k, v; owned by a. */
int sl_sdpa_backward(sl_sdpa *a, const sl_tensor *q, const sl_tensor *k, const sl_tensor *v, const sl_tensor *gout,
                     const sl_tensor **gq, const sl_tensor **gk, const sl_tensor **gv);
/* The output of the last forward, now owned by the caller (the next
 * forward makes a new one); NULL when there is none. */
sl_tensor *sl_sdpa_take_output(sl_sdpa *a);
/* The weights of the last forward (..., L, S), after dropout; owned by a. */
const sl_tensor *sl_sdpa_weights(sl_sdpa *a);

/* ---- MultiheadAttention ----
 * embed_dim E divisible by num_heads; parameters in_proj_weight (3E, E),
 * in_proj_bias (3E), out_proj.weight (E, E), out_proj.bias (E) (no biases
 * when bias is false). With rng: PyTorch's init (xavier_uniform_ on
 * in_proj_weight, out_proj.weight U(+-1/sqrt(E)), biases 0); zeros without.
 * dropout in [0, 1): on the attention weights in training mode. */
sl_module *sl_mha_new(int64_t embed_dim, int64_t num_heads, double dropout, bool bias, bool batch_first,
                      sl_rng *rng);
/* Whether m is a MultiheadAttention module (by its descriptor, not its name). */
bool sl_mha_is(const sl_module *m);

/* query (L, N, E) (batch_first: (N, L, E); unbatched: (L, E)), key and
 * value (S, N, E) alike. key_padding_mask (N, S) (unbatched: (S)), 1 =
 * ignore that key; attn_mask (L, S) or (N*num_heads, L, S), 1 = not allowed;
 * is_causal adds the causal mask (key j > query i), with attn_mask too.
 * need_weights: *weights is (N, L, S) averaged over heads or (N, H, L, S)
 * (unbatched without N), else NULL. */
typedef struct sl_mha_opts {
  const sl_tensor *key_padding_mask, *attn_mask;
  sl_mask_type mask_type;
  bool need_weights, average_attn_weights, is_causal;
} sl_mha_opts;
sl_mha_opts sl_mha_defaults(void); /* no masks, need_weights, average_attn_weights */

/* *out and *weights are owned by m (m->output is *out). */
int sl_mha_forward(sl_module *m, const sl_tensor *query, const sl_tensor *key, const sl_tensor *value,
                   const sl_mha_opts *o, const sl_tensor **out, const sl_tensor **weights);
/* After the matching forward with the same inputs: dL/dquery, dL/dkey,
 * dL/dvalue (owned by m; m->grad_input is *gq) for gout = dL/dout, and the
 * parameter gradients accumulated (+=). The returned weights take no
 * gradient. */
int sl_mha_backward(sl_module *m, const sl_tensor *query, const sl_tensor *key, const sl_tensor *value,
                    const sl_tensor *gout, const sl_tensor **gq, const sl_tensor **gk, const sl_tensor **gv);

#endif
