/*
 * Convolutions and the layers that go with them in an image network, matched
 * to PyTorch: Conv1d/Conv2d (weight (out, in/groups, [kh,] kw), bias (out)),
 * MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and Flatten. Inputs are batched
 * (N, C, [H,] W) or unbatched (C, [H,] W) like PyTorch's; sizes and offsets
 * here are 0-based C values (the Lua bindings convert dims).
 */
#ifndef SL_CONV_H
#define SL_CONV_H
#include "nn.h"

/* Per spatial dim, (h, w) for Conv2d; Conv1d reads element [0] only. */
typedef struct sl_conv_opts {
  int64_t stride[2];      /* 1 */
  int64_t padding[2];     /* zeros before each spatial dim: 0 */
  int64_t padding_end[2]; /* zeros after; -1 (the default): = padding. Differs only for PyTorch's
                           * padding='same' with an even dilated kernel (one more at the end) */
  int64_t dilation[2];    /* 1 */
  int64_t groups;         /* 1; divides in and out channels */
  bool bias;              /* true */
} sl_conv_opts;

sl_conv_opts sl_conv_defaults(void);

/* Conv2d(in, out, kernel (kh, kw)) and Conv1d(in, out, kernel). With rng,
 * PyTorch's reset_parameters: weight and bias from U(+-1/sqrt(fan_in)),
 * fan_in = in/groups * kernel area; without, zeros (call an initializer).
 * SL_EINVAL naming the argument for sizes < 1, negative padding, groups not
 * dividing in or out. forward: SL_ESHAPE for a wrong rank or channel count,
 * or a dilated kernel larger than the padded input. The im2col buffers are
 * kept by the module and reused (no allocation per step once shapes are
 * stable); they hold at most SL_CONV_COL_MAX floats, the batch being taken
 * in chunks of samples when it needs more. */
#define SL_CONV_COL_MAX ((int64_t)1 << 21)
/* Caps m's im2col buffer at max_floats (>= 1; a chunk is still at least one
 * sample): less memory, narrower products. SL_EINVAL for another module. */
int sl_conv_set_col_max(sl_module *m, int64_t max_floats);
sl_module *sl_conv2d_new(int64_t in_channels, int64_t out_channels, const int64_t kernel[2], sl_conv_opts o,
                         sl_rng *rng);
sl_module *sl_conv1d_new(int64_t in_channels, int64_t out_channels, int64_t kernel, sl_conv_opts o, sl_rng *rng);

/* The hyper-parameters of a Conv1d/Conv2d (nd = 1 or 2; 1-D values in [0]).
 * SL_EINVAL for another module. */
typedef struct sl_conv_info {
  int nd;
  int64_t in_channels, out_channels, kernel[2];
  sl_conv_opts o;
} sl_conv_info;
int sl_conv_info_of(const sl_module *m, sl_conv_info *info);

/* Pools over (N, C, H, W) or (C, H, W). stride 0 = the kernel size
 * (PyTorch's default stride=None). padding <= kernel/2 (PyTorch's rule),
 * padded with -inf for max and zeros for average. ceil_mode: the last
 * window may start in the right padding (PyTorch's rule: it must start
 * inside the input or the left padding). AvgPool2d divides by the window
 * clipped to the padded input (count_include_pad = true, PyTorch's default)
 * or by its part inside the input (false). MaxPool2d's backward routes each
 * gradient to the first maximum of its window (NaN counts as the maximum),
 * as PyTorch. */
typedef struct sl_pool_opts {
  int64_t stride[2];   /* 0: kernel */
  int64_t padding[2];  /* 0 */
  int64_t dilation[2]; /* 1 (max only) */
  bool ceil_mode;      /* false */
  bool count_include_pad; /* true (average only) */
} sl_pool_opts;
sl_pool_opts sl_pool_defaults(void);
sl_module *sl_maxpool2d_new(const int64_t kernel[2], sl_pool_opts o);
sl_module *sl_avgpool2d_new(const int64_t kernel[2], sl_pool_opts o);
/* Output (oh, ow); each window [floor(i*H/oh), ceil((i+1)*H/oh)). */
sl_module *sl_adaptive_avgpool2d_new(const int64_t output_size[2]);

typedef struct sl_pool_info {
  int64_t kernel[2]; /* adaptive: the output size */
  sl_pool_opts o;
} sl_pool_info;
int sl_pool_info_of(const sl_module *m, sl_pool_info *info);

/* Flatten dims start..end (0-based, negative counts from the end, PyTorch's
 * defaults 1 and -1) into one; the output is a copy in the module's buffer. */
sl_module *sl_flatten_new(int start_dim, int end_dim);
int sl_flatten_dims(const sl_module *m, int *start_dim, int *end_dim);

#endif
