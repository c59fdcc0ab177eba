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

#define SL_MAX_PARAMS 32 /* a GRU/LSTM holds 4 per layer (rnn.h) */
#define SL_MAX_HPARAMS 12 /* hyper-parameters a layer describes */
#define SL_MAX_BUFFERS 4 /* buffers a layer describes */

typedef struct sl_module sl_module;

/* ---- The layer descriptor (docs/architecture.md, "Adding a layer") ------
 * Each C layer type has one `const sl_layer` next to its kernels, listed once
 * in the registry (core/nn/registry.c). Everything that would otherwise
 * guess by the type name reads it: printing (sl_module_repr), the Lua
 * constructors, m.<hparam> fields, checkpoints (buffers), nn.init (parameter
 * roles), the statistics sheets (saturation), snn.check (flags) and
 * DataParallel (set_reducer). Optional hooks are NULL when they do not apply. */

typedef enum sl_value_kind { SL_VALUE_FLOAT, SL_VALUE_INT, SL_VALUE_BOOL } sl_value_kind;

/* A hyper-parameter: in sl_layer.args a constructor argument with its
 * default; from sl_module_hparams the module's value. Ints are exact up to
 * 2^53; bools are 0/1. */
typedef struct sl_hparam {
  const char *name;   /* PyTorch's name: "alpha", "p", "eps", "in_features" (static) */
  sl_value_kind kind;
  double value;
  unsigned flags;     /* SL_HP_* */
} sl_hparam;
enum {
  SL_HP_POSITIONAL = 1u << 0, /* printed without "name=" (BatchNorm1d's num_features) */
  SL_HP_HIDDEN = 1u << 1,     /* not printed (PyTorch hides it at its default) */
  SL_HP_REQUIRED = 1u << 2,   /* args only: no default */
};

/* How nn.init treats a parameter (PyTorch's fan rule: fan_in = numel /
 * shape[0], fan_out = shape[0] * receptive field). */
typedef enum sl_param_init {
  SL_INIT_KEEP, /* left as constructed (BatchNorm's weight) */
  SL_INIT_FAN,  /* drawn by the initializer from its fan-in / fan-out (2+ dims) */
  SL_INIT_ZERO, /* zeroed (biases) */
} sl_param_init;
typedef struct sl_param_spec {
  const char *name; /* "weight", "bias": the name sl_module_add_param is given */
  sl_param_init init;
} sl_param_spec;

/* A buffer: state a checkpoint keeps beside the parameters (PyTorch's
 * state_dict buffers), borrowed from the module. */
typedef struct sl_buffer {
  const char *name;  /* "running_mean" (static) */
  sl_tensor *tensor;
  bool integer;      /* holds an integer count: saved as I64 */
  bool scalar;       /* saved with shape [] (the tensor is [1]) */
} sl_buffer;

/* Facts about a layer type (sl_layer.flags). */
enum {
  SL_LAYER_ACTIVATION = 1u << 0,       /* an elementwise nonlinearity */
  SL_LAYER_SELF_NORMALIZING = 1u << 1, /* keeps the SELU fixed point (SELU, AlphaDropout) */
  SL_LAYER_STOCHASTIC = 1u << 2,       /* draws from its generator in training mode */
  SL_LAYER_NORMALIZATION = 1u << 3,    /* normalizes with batch statistics */
  SL_LAYER_OUTPUT = 1u << 4,           /* an output head (Softmax, LogSoftmax) */
  SL_LAYER_CONTAINER = 1u << 5,        /* holds child modules */
  /* backward reads state the forward left in the module (batch statistics,
   * a dropout key, pooling indices): a second forward before the backward
   * of the first overwrites it (the autograd path refuses that backward) */
  SL_LAYER_FORWARD_STATE = 1u << 6,
};

/* Where a unit counts as saturated (the statistics sheets' frac_saturated):
 * y < at (BELOW) or y <= at (ATMOST). */
typedef enum sl_saturation { SL_SAT_NONE, SL_SAT_BELOW, SL_SAT_ATMOST } sl_saturation;
#define SL_SATURATION 0.95 /* a unit within 5% of its lower bound's reach is saturated */

/* An in-place elementwise sum of n doubles across processes (SL_OK, or an
 * error set with sl_fail): synchronized batch statistics. */
typedef int (*sl_reduce_fn)(void *ctx, double *buf, int n);

typedef struct sl_layer {
  const char *type; /* PyTorch's class name: "Linear", "SELU", ... */
  unsigned flags;   /* SL_LAYER_* */
  int (*forward)(sl_module *m, const sl_tensor *x);
  int (*backward)(sl_module *m, const sl_tensor *x, const sl_tensor *gy);
  void (*destroy)(sl_module *m); /* frees type-specific state only; NULL: none */
  /* The parameters the layer may own and their init roles, ending with a
   * NULL name; NULL: none. */
  const sl_param_spec *params;
  /* Constructor arguments in PyTorch's order with defaults (ending with a
   * NULL name) and the constructor taking their values (args[i] for
   * argument i, kinds as declared) and the state's generator: a binding
   * builds the layer with no code of its own. NULL create: constructed by
   * its own function only. */
  const sl_hparam *args;
  sl_module *(*create)(const double *args, sl_rng *rng);
  /* The module's hyper-parameters in printing order (<= SL_MAX_HPARAMS). */
  int (*hparams)(const sl_module *m, sl_hparam *out);
  /* The module's buffers (<= SL_MAX_BUFFERS). */
  int (*buffers)(const sl_module *m, sl_buffer *out);
  /* The saturation rule of the module's output; *at is the threshold. */
  sl_saturation (*saturation)(const sl_module *m, double *at);
  /* Synchronize batch statistics across processes (NULL reduce: local). */
  int (*set_reducer)(sl_module *m, sl_reduce_fn reduce, void *ctx);
  /* PyTorch's repr written into buf, for a layer whose hyper-parameters are
   * not all numbers (Conv2d's kernel_size=(3, 3), padding=same); NULL: the
   * hparams are printed. */
  void (*repr)(const sl_module *m, char *buf, size_t n);
} sl_layer;
typedef sl_layer sl_module_vtable; /* the former name */

struct sl_module {
  const sl_layer *vt;                  /* its descriptor */
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
  uint64_t forwards;                   /* forwards run (sl_module_forward): the autograd path's stamp */
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

/* For implementers of C layers: a zeroed module of descriptor l with
 * refcount 1, training mode on and no parameters; NULL on allocation
 * failure. */
sl_module *sl_module_new(const sl_layer *l);
/* Adds a zero-filled parameter and its zero gradient of this shape under a
 * static name ("weight"); SL_EINVAL past SL_MAX_PARAMS. */
int sl_module_add_param(sl_module *m, const char *name, int ndim, const int64_t *shape);
/* The module's PyTorch class name ("Linear", "Sequential", ...). */
const char *sl_module_type(const sl_module *m);

/* ---- The registry and what reads the descriptors (core/nn/registry.c) -- */

/* Every C layer type, NULL-terminated, in registry order. */
const sl_layer *const *sl_layers(void);
/* The descriptor of a type name ("Hardtanh"), NULL when there is none. */
const sl_layer *sl_layer_find(const char *type);
/* A module of layer l from its constructor arguments (values in the order of
 * l->args); SL_EINVAL when l has no generic constructor. */
sl_module *sl_layer_create(const sl_layer *l, const double *args, sl_rng *rng);
/* The module's hyper-parameters / buffers into out (SL_MAX_HPARAMS /
 * SL_MAX_BUFFERS entries); returns how many (0 when it has none). */
int sl_module_hparams(const sl_module *m, sl_hparam *out);
int sl_module_buffers(const sl_module *m, sl_buffer *out);
/* The init role of parameter i (by its name in the descriptor; KEEP when
 * the descriptor does not list it). */
sl_param_init sl_module_param_init(const sl_module *m, int i);
/* The saturation rule of the module's output (SL_SAT_NONE for most). */
sl_saturation sl_module_saturation(const sl_module *m, double *at);
/* The share of the n units of an output y that are saturated under rule
 * with threshold at (below: y < at, atmost: y <= at; 0 for SL_SAT_NONE or
 * n = 0): nn.stats and the statistics sheets. */
double sl_saturated_fraction(sl_saturation rule, double at, const float *y, int64_t n);
/* Synchronized batch statistics for layers with set_reducer (batchnorm.h
 * explains the protocol); SL_EINVAL for other layers. */
int sl_module_set_reducer(sl_module *m, sl_reduce_fn reduce, void *ctx);
/* Writes PyTorch's repr into buf ("ELU(alpha=0.5, inplace=true)"; numbers
 * as Lua prints them, booleans true/false) and returns buf. */
const char *sl_module_repr(const sl_module *m, char *buf, size_t n);

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
/* AlphaDropout's affine constants for drop probability p (docs/snn.md):
 * kept units become a*x + b, dropped units become `dropped` = a*alpha' + b. */
void sl_alpha_dropout_coeffs(double p, double *a, double *b, double *dropped);
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
/* Cross entropy with labels numbered from label_base (0 for C callers, 1 for
 * the Lua API) so error messages name the label as the caller wrote it.
 * sl_cross_entropy_forward/backward are the label_base = 0 forms. */
int sl_cross_entropy_forward_ex(const sl_tensor *logits, const sl_tensor *labels, int label_base,
                                double *loss);
int sl_cross_entropy_backward_ex(sl_tensor *grad, const sl_tensor *logits, const sl_tensor *labels,
                                 int label_base);

/* Optimizers over a fixed list of (param, grad) pairs; state buffers are
 * allocated at construction, step() allocates nothing. */
typedef struct sl_optim sl_optim;
typedef struct sl_sgd_opts { double lr, momentum, dampening, weight_decay; bool nesterov; } sl_sgd_opts;
typedef struct sl_adam_opts { double lr, beta1, beta2, eps, weight_decay; bool amsgrad_unused; bool decoupled /* AdamW */; } sl_adam_opts;
/* PyTorch's defaults for the option structs. */
sl_sgd_opts sl_sgd_defaults(double lr);  /* momentum 0, dampening 0, wd 0, no nesterov */
sl_adam_opts sl_adam_defaults(void);     /* lr 1e-3, betas (0.9, 0.999), eps 1e-8, wd 0 */
sl_adam_opts sl_adamw_defaults(void);    /* as Adam with decoupled = true, wd 1e-2 */
/* "SGD", "Adam", "AdamW", "RMSprop" or "Adagrad". */
const char *sl_optim_type(const sl_optim *o);
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

/* RMSprop and Adagrad (PyTorch 1.13 rules and defaults: RMSprop lr 1e-2,
 * alpha 0.99, eps 1e-8; Adagrad lr 1e-2, eps 1e-10). RMSprop's state per
 * parameter is square_avg[, momentum_buffer if momentum > 0][, grad_avg if
 * centered]; Adagrad's is sum (starting at initial_accumulator_value). */
typedef struct sl_rmsprop_opts { double lr, alpha, eps, weight_decay, momentum; bool centered; } sl_rmsprop_opts;
typedef struct sl_adagrad_opts { double lr, lr_decay, weight_decay, initial_accumulator_value, eps; } sl_adagrad_opts;
sl_rmsprop_opts sl_rmsprop_defaults(void);
sl_adagrad_opts sl_adagrad_defaults(void);
sl_optim *sl_rmsprop_new(sl_tensor **params, sl_tensor **grads, int n, sl_rmsprop_opts opts);
sl_optim *sl_adagrad_new(sl_tensor **params, sl_tensor **grads, int n, sl_adagrad_opts opts);

/* Parameter groups (PyTorch's param_groups). A new optimizer has one group
 * holding the constructor's options; sl_optim_set_groups (before the first
 * step) puts parameter i in group group_of[i] of ngroups, each starting from
 * those options. Hyperparameters are read and written by name: "lr",
 * "weight_decay", "momentum", "beta1", ... (sl_optim_group_key lists this
 * optimizer's; NULL past the end); set validates the value and refuses the
 * fixed ones (nesterov, centered, initial_accumulator_value). sl_optim_set_lr
 * sets every group's lr; sl_optim_get_lr reads group 0's. */
int sl_optim_set_groups(sl_optim *o, int ngroups, const int *group_of);
int sl_optim_group_count(const sl_optim *o);
int sl_optim_param_group(const sl_optim *o, int i); /* -1 past the end */
const char *sl_optim_group_key(const sl_optim *o, int i);
int sl_optim_group_get(const sl_optim *o, int group, const char *key, double *v);
int sl_optim_group_set(sl_optim *o, int group, const char *key, double v);

/* torch.nn.utils.clip_grad_norm_ / clip_grad_value_ over n gradients, in
 * place. clip_grad_norm stores the total p-norm (p > 0, INFINITY for the
 * max norm) before clipping in *total_norm; max_norm must be > 0.
 * clip_grad_value clamps every element to [-v, v], v >= 0. */
int sl_clip_grad_norm(sl_tensor *const *grads, int n, double max_norm, double p, double *total_norm);
int sl_clip_grad_value(sl_tensor *const *grads, int n, double clip_value);

#endif
