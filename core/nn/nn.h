/*
 * The layer protocol. A module owns its parameters, their gradients and its
 * output / grad-input buffers; buffers are allocated on first use and reused
 * (resized only when the batch shape changes), so a training step allocates
 * nothing once shapes are stable.
 *
 *   forward(m, x)        computes m->output from x (x: (N, in) for Linear)
 *   backward(m, x, gy)   WRITES m->grad_input = dL/dx and ACCUMULATES (+=)
 *                        parameter gradients into m->grads[i]; x is the
 *                        input given to the matching forward, gy = dL/dy.
 *   zero_grad(m)         sets every parameter gradient to 0.
 *
 * The returned output / grad_input pointers stay owned by the module and are
 * overwritten by the next call (Torch7 semantics); clone to keep them.
 */
#ifndef SL_NN_H
#define SL_NN_H
#include <stdbool.h>
#include <stdint.h>

#include "../tensor/random.h"
#include "../tensor/tensor.h"

#define SL_MAX_PARAMS 4

typedef struct sl_module sl_module;

typedef struct sl_module_vtable {
  const char *type; /* "Linear", "SELU", ... (PyTorch class names) */
  int (*forward)(sl_module *m, const sl_tensor *x);
  int (*backward)(sl_module *m, const sl_tensor *x, const sl_tensor *gy);
  void (*destroy)(sl_module *m); /* frees type-specific state only */
} sl_module_vtable;

struct sl_module {
  const sl_module_vtable *vt;
  int refcount;
  bool training;                       /* default true */
  sl_tensor *output;                   /* owned, reused */
  sl_tensor *grad_input;               /* owned, reused */
  int nparams;
  sl_tensor *params[SL_MAX_PARAMS];    /* owned */
  sl_tensor *grads[SL_MAX_PARAMS];     /* owned, same shapes */
  const char *param_names[SL_MAX_PARAMS]; /* "weight", "bias" (static strings) */
  sl_rng *rng;                         /* borrowed; dropout layers only */
  bool skip_grad_input;                /* set only inside sl_module_backward_params */
  void *state;                         /* type-specific */
  /* Sequential only: children (owned references). */
  int nchildren;
  int cap_children;
  sl_module **children;
};

/* Generic entry points (dispatch through vt, validate arguments). */
int sl_module_forward(sl_module *m, const sl_tensor *x, const sl_tensor **y);
int sl_module_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gy,
                       const sl_tensor **gx);
/* Like sl_module_backward, for a caller that does not need dL/dx (the first
 * layer of a net: its input is data). Parameter gradients accumulate exactly
 * as in sl_module_backward; a Linear (or a Sequential starting with one)
 * skips the input-gradient sgemm, and m->grad_input is then unspecified. */
int sl_module_backward_params(sl_module *m, const sl_tensor *x, const sl_tensor *gy);
void sl_module_zero_grad(sl_module *m);            /* recursive */
void sl_module_train(sl_module *m, bool training); /* recursive */
sl_module *sl_module_retain(sl_module *m);
void sl_module_release(sl_module *m);

/* Layers. Constructors return refcount-1 modules or NULL (sl_last_error).
 * Linear weights start as PyTorch's default U(-1/sqrt(in), 1/sqrt(in)) only
 * when rng != NULL; otherwise zero (call an init function). */
sl_module *sl_linear_new(int64_t in_features, int64_t out_features, bool bias, sl_rng *rng);
sl_module *sl_selu_new(void);
sl_module *sl_selu_new_custom(double alpha, double scale);
sl_module *sl_elu_new(double alpha);
sl_module *sl_relu_new(void);
sl_module *sl_leaky_relu_new(double negative_slope);
/* SELU, ELU, ReLU in place (PyTorch's inplace=True): forward overwrites its
 * input with the result and returns that same tensor as the output; backward
 * works from the result (PyTorch's elu_/relu_ formula, no exp: for SELU/ELU
 * it loses relative accuracy where x << 0, which the out-of-place gradient
 * keeps) and fails if the tensor was written in place again since the
 * forward. SL_EINVAL for other modules. */
int sl_activation_set_inplace(sl_module *m, bool inplace);
bool sl_activation_inplace(const sl_module *m);
sl_module *sl_tanh_new(void);
sl_module *sl_sigmoid_new(void);
sl_module *sl_gelu_new(void);
sl_module *sl_softmax_new(void);     /* over the last dim */
sl_module *sl_log_softmax_new(void); /* over the last dim */
/* p in [0, 1) (else SL_EINVAL naming p); rng borrowed, required (non-NULL),
 * and must outlive the module. Training mode draws one sl_rng_uniform per
 * element (kept when u >= p) and keeps the mask for backward; evaluation
 * mode and p = 0 are the identity and draw nothing. */
sl_module *sl_dropout_new(double p, sl_rng *rng);
sl_module *sl_alpha_dropout_new(double p, sl_rng *rng);
/* Data parallelism (docs/distributed.md): each training forward reads
 * *sample_offset = k (>= 0; NULL = 0) and masks element i of its input
 * (n, ...) as element k*(numel/n) + i of the draw: the rows of a process that
 * holds rows k+1..k+n of a global batch get exactly their one-process mask
 * when the processes draw the same keys. Borrowed; must outlive the module.
 * SL_EINVAL when m is not a Dropout/AlphaDropout. */
int sl_dropout_bind_sample_offset(sl_module *m, const int64_t *sample_offset);
/* Sequential: forward chains the children's outputs; backward walks them in
 * reverse, giving child i the output of child i-1 as its input (so call it
 * after the matching forward). Its output / grad_input are the last / first
 * child's buffers (shared references). A module instance may appear only
 * once in a container (adding it twice is SL_EINVAL). */
sl_module *sl_sequential_new(void);
/* Appends child (takes a new reference). */
int sl_sequential_add(sl_module *seq, sl_module *child);

/* Raw kernels on arrays (destination first). Backward from the input x,
 * as PyTorch's out-of-place gradient; at x == 0 the negative branch. */
#define SL_SELU_ALPHA 1.6732632423543772848170429916717
#define SL_SELU_SCALE 1.0507009873554804934193349852946
void sl_selu_forward_f32(float *y, const float *x, size_t n);
void sl_selu_backward_f32(float *gx, const float *x, const float *gy, size_t n);
void sl_elu_forward_f32(float *y, const float *x, size_t n, float alpha, float scale);
void sl_elu_backward_f32(float *gx, const float *x, const float *gy, size_t n,
                         float alpha, float scale);
void sl_relu_forward_f32(float *y, const float *x, size_t n);
void sl_relu_backward_f32(float *gx, const float *x, const float *gy, size_t n);

/* Initializers (draw from rng; biases set to 0). Apply to every Linear
 * inside m (recursively). */
int sl_init_lecun_normal(sl_module *m, sl_rng *rng);   /* N(0, 1/fan_in) */
int sl_init_he_normal(sl_module *m, sl_rng *rng);      /* N(0, 2/fan_in) */
int sl_init_xavier_uniform(sl_module *m, sl_rng *rng); /* U(+-sqrt(6/(in+out))) */

/* Losses (mean reduction). Labels are 0-based class indices stored as floats,
 * one per row of logits. grad must have logits' shape; it is written. */
int sl_cross_entropy_forward(const sl_tensor *logits, const sl_tensor *labels, double *loss);
int sl_cross_entropy_backward(sl_tensor *grad, const sl_tensor *logits, const sl_tensor *labels);
int sl_mse_forward(const sl_tensor *pred, const sl_tensor *target, double *loss);
int sl_mse_backward(sl_tensor *grad, const sl_tensor *pred, const sl_tensor *target);

/* Optimizers over a fixed list of (param, grad) pairs; state buffers are
 * allocated at construction, step() allocates nothing. */
typedef struct sl_optim sl_optim;
typedef struct sl_sgd_opts { double lr, momentum, dampening, weight_decay; bool nesterov; } sl_sgd_opts;
typedef struct sl_adam_opts { double lr, beta1, beta2, eps, weight_decay; bool amsgrad_unused; bool decoupled /* AdamW */; } sl_adam_opts;
/* PyTorch defaults: SGD lr required (no default), momentum 0; Adam lr 1e-3,
 * betas (0.9, 0.999), eps 1e-8, weight_decay 0 (AdamW: 1e-2). */
sl_optim *sl_sgd_new(sl_tensor **params, sl_tensor **grads, int n, sl_sgd_opts opts);
sl_optim *sl_adam_new(sl_tensor **params, sl_tensor **grads, int n, sl_adam_opts opts);
int sl_optim_step(sl_optim *o);
void sl_optim_zero_grad(sl_optim *o);
void sl_optim_free(sl_optim *o);
double sl_optim_get_lr(const sl_optim *o);
void sl_optim_set_lr(sl_optim *o, double lr);
/* State for checkpoints: the i-th state tensor (momentum buffer, exp_avg,
 * exp_avg_sq, ...) with a name like "0.momentum_buffer"; NULL past the end.
 * The step counter is exposed separately. */
int sl_optim_state_count(const sl_optim *o);
sl_tensor *sl_optim_state_tensor(const sl_optim *o, int i, const char **name);
int64_t sl_optim_get_step(const sl_optim *o);
void sl_optim_set_step(sl_optim *o, int64_t step);
/* For data-parallel owners of the parameters (selut.dist's shared-memory
 * DataParallel): one step over flat arrays of n elements laid out like the
 * parameters, with the state arrays at the same offsets (s0: SGD momentum or
 * Adam exp_avg; s1: Adam exp_avg_sq; NULL where state_kinds says there is
 * none). Advances the step counter like sl_optim_step. */
int sl_optim_step_flat(sl_optim *o, float *p, const float *g, float *s0, float *s1, size_t n);
int sl_optim_state_kinds(const sl_optim *o); /* state tensors per parameter: 0, 1 (SGD momentum) or 2 (Adam) */
int sl_optim_param_count(const sl_optim *o);
sl_tensor *sl_optim_param(const sl_optim *o, int i); /* NULL past the end */
/* owner non-NULL (a static string): sl_optim_step then fails with a message
 * naming it, since the owner steps the parameters; NULL undoes that. */
void sl_optim_set_external(sl_optim *o, const char *owner);

/* Learning-rate schedules as plain functions of the epoch/step. */
double sl_lr_step(double base_lr, int64_t epoch, int64_t step_size, double gamma);
double sl_lr_cosine(double base_lr, int64_t t, int64_t t_max, double eta_min);

/* ---- Additions (issue 3) ---------------------------------------------- */

/* For implementers of C modules: a zeroed module with refcount 1, training
 * mode on and no parameters; NULL on allocation failure. */
sl_module *sl_module_new(const sl_module_vtable *vt);
/* Adds a zero-filled parameter and its zero gradient of this shape under a
 * static name ("weight"); SL_EINVAL past SL_MAX_PARAMS. */
int sl_module_add_param(sl_module *m, const char *name, int ndim, const int64_t *shape);
/* The module's PyTorch class name ("Linear", "Sequential", ...). */
const char *sl_module_type(const sl_module *m);

/* Cross entropy with labels numbered from label_base (0 for C callers, 1 for
 * the Lua API) so error messages name the label as the caller wrote it.
 * sl_cross_entropy_forward/backward are the label_base = 0 forms. */
int sl_cross_entropy_forward_ex(const sl_tensor *logits, const sl_tensor *labels, int label_base,
                                double *loss);
int sl_cross_entropy_backward_ex(sl_tensor *grad, const sl_tensor *logits, const sl_tensor *labels,
                                 int label_base);

/* AlphaDropout's affine constants for drop probability p (DESIGN.md §2):
 * kept units become a*x + b, dropped units become `dropped` = a*alpha' + b. */
void sl_alpha_dropout_coeffs(double p, double *a, double *b, double *dropped);

/* PyTorch's defaults for the option structs. */
sl_sgd_opts sl_sgd_defaults(double lr);  /* momentum 0, dampening 0, wd 0, no nesterov */
sl_adam_opts sl_adam_defaults(void);     /* lr 1e-3, betas (0.9, 0.999), eps 1e-8, wd 0 */
sl_adam_opts sl_adamw_defaults(void);    /* as Adam with decoupled = true, wd 1e-2 */
/* "SGD", "Adam" or "AdamW". */
const char *sl_optim_type(const sl_optim *o);

#endif
