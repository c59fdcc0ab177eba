/* GRU, LSTM, GRUCell and LSTMCell (rnn.h). A cell is a one-layer network
 * run for one step, so both share the kernels below.
 *
 * Forward, per layer: the input projection of every timestep is one sgemm
 * (T*N rows), then one sgemm per step for the recurrent projection and a
 * plain loop for the gates. Everything the backward needs is kept time-major
 * in one arena, grown only when the sequence or batch gets larger: hidden
 * states hs[l] ((T+1) x N x H, row 0 = h0), LSTM cell states cs[l] and
 * tanh(c) tc[l], and the activated gates (GRU: r, z, n and the recurrent
 * projection of n, needed for dr; LSTM: i, f, g, o).
 *
 * Backward, per layer from the top: one sgemm per step for dh_{t-1}, then
 * the parameter gradients and the input gradient as one sgemm each over all
 * timesteps. Sums in a fixed order (no FMA contraction by the build flags),
 * so 1 and 2 threads give the same bits (sl_sgemm_f32 guarantees it). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../tensor/alloc.h"
#include "../tensor/blas.h"
#include "../tensor/error.h"
#include "../tensor/vmath.h"
#include "rnn.h"

typedef struct rnn_state {
  sl_rnn_mode mode;
  bool cell;
  int64_t in, hid, layers;
  bool bias, batch_first, bidirectional;
  double dropout;
  int64_t proj_size;
  int64_t G; /* gates: 3 (GRU) or 4 (LSTM) */
  /* the last forward */
  int64_t T, N;
  bool batched, forwarded;
  sl_tensor *hn, *cn, *gh0, *gc0;
  float *arena;
  size_t cap;
  /* arena views for (T, N) */
  float *xt, *hs, *cs, *tc, *gates, *gi, *gh, *dgh, *da, *db, *dh, *dc;
} rnn_state;

static const char *rnn_type(const rnn_state *s) {
  if (s->cell) return s->mode == SL_RNN_GRU ? "GRUCell" : "LSTMCell";
  return s->mode == SL_RNN_GRU ? "GRU" : "LSTM";
}

#define L4(k) "weight_ih_l" #k, "weight_hh_l" #k, "bias_ih_l" #k, "bias_hh_l" #k
static const char *const layer_names[] = {L4(0), L4(1), L4(2), L4(3), L4(4), L4(5), L4(6), L4(7)};
#undef L4
static const char *const cell_names[] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
_Static_assert(sizeof layer_names / sizeof *layer_names == 4 * SL_RNN_MAX_LAYERS, "one name per parameter");

/* Parameter i of layer l (0 weight_ih, 1 weight_hh, 2 bias_ih, 3 bias_hh);
 * NULL for a bias of a layer without them. */
static float *param(const sl_module *m, int64_t l, int i) {
  const rnn_state *s = m->state;
  int per = s->bias ? 4 : 2;
  if (i >= per) return NULL;
  return m->params[l * per + i]->data;
}
static float *pgrad(const sl_module *m, int64_t l, int i) {
  const rnn_state *s = m->state;
  int per = s->bias ? 4 : 2;
  if (i >= per) return NULL;
  return m->grads[l * per + i]->data;
}

/* ---- the arena ---- */

static int ensure_arena(rnn_state *s, int64_t T, int64_t N) {
  int64_t H = s->hid, L = s->layers, TN = T * N, GH = s->G * H, wide = s->in > H ? s->in : H;
  bool lstm = s->mode == SL_RNN_LSTM;
  int64_t sizes[12] = {s->batch_first ? TN * s->in : 0, L * (T + 1) * N * H, lstm ? L * (T + 1) * N * H : 0,
                       lstm ? L * TN * H : 0, L * TN * 4 * H, TN * GH, N * GH, lstm ? 0 : TN * GH,
                       TN * wide, TN * wide, N * H, N * H};
  float **views[12] = {&s->xt, &s->hs, &s->cs, &s->tc, &s->gates, &s->gi, &s->gh, &s->dgh, &s->da, &s->db,
                       &s->dh, &s->dc};
  size_t total = 0;
  for (int i = 0; i < 12; i++) total += (size_t)sizes[i];
  if (total > s->cap) {
    float *a = sl_malloc(total * sizeof *a);
    if (!a) return sl_last_status();
    sl_free(s->arena);
    s->arena = a;
    s->cap = total;
  }
  size_t off = 0;
  for (int i = 0; i < 12; i++) {
    *views[i] = sizes[i] ? s->arena + off : NULL;
    off += (size_t)sizes[i];
  }
  return SL_OK;
}

/* ---- scalar pieces ---- */

static inline float sigm(float x) { /* finite on both branches */
  float e = sl_vm_expf(-fabsf(x));
  return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

/* rows of y (n x c) += b (c) */
static void add_rows(float *y, const float *b, int64_t n, int64_t c) {
  if (!b) return;
  for (int64_t r = 0; r < n; r++)
    for (int64_t j = 0; j < c; j++) y[r * c + j] += b[j];
}

/* g (c) += column sums of d (n x c), in double, rows in order */
static void colsum_acc(float *g, const float *d, int64_t n, int64_t c) {
  if (!g) return;
  for (int64_t j = 0; j < c; j++) {
    double acc = 0.0;
    for (int64_t r = 0; r < n; r++) acc += (double)d[r * c + j];
    g[j] += (float)acc;
  }
}

/* (A x B x C) <-> (B x A x C) */
static void swap01(float *dst, const float *src, int64_t a, int64_t b, int64_t c) {
  for (int64_t i = 0; i < a; i++)
    for (int64_t j = 0; j < b; j++) memcpy(dst + (j * a + i) * c, src + (i * b + j) * c, (size_t)c * sizeof *dst);
}

/* ---- one layer, forward ---- */

/* GRU step for row block (N x H): gi, gh (N x 3H) pre-activations (biases
 * in), writes gates (N x 4H: r, z, n, gh_n) and h. */
static void gru_step(float *h, float *gates, const float *gi, const float *gh, const float *hprev, int64_t N,
                     int64_t H) {
  for (int64_t n = 0; n < N; n++) {
    const float *a = gi + n * 3 * H, *b = gh + n * 3 * H, *hp = hprev + n * H;
    float *g = gates + n * 4 * H, *hr = h + n * H;
    for (int64_t j = 0; j < H; j++) {
      float r = sigm(a[j] + b[j]), z = sigm(a[H + j] + b[H + j]);
      g[j] = r;
      g[H + j] = z;
      g[3 * H + j] = b[2 * H + j];
      g[2 * H + j] = a[2 * H + j] + r * b[2 * H + j];
    }
    sl_vtanh_f32(g + 2 * H, g + 2 * H, (size_t)H);
    for (int64_t j = 0; j < H; j++) {
      float z = g[H + j], nn = g[2 * H + j];
      hr[j] = (hp[j] - nn) * z + nn; /* PyTorch's (h - n) * z + n */
    }
  }
}

static void lstm_step(float *h, float *c, float *tc, float *gates, const float *gi, const float *gh,
                      const float *cprev, int64_t N, int64_t H) {
  for (int64_t n = 0; n < N; n++) {
    const float *a = gi + n * 4 * H, *b = gh + n * 4 * H, *cp = cprev + n * H;
    float *g = gates + n * 4 * H;
    for (int64_t j = 0; j < 4 * H; j++) g[j] = a[j] + b[j];
    for (int64_t j = 0; j < H; j++) {
      g[j] = sigm(g[j]);
      g[H + j] = sigm(g[H + j]);
      g[3 * H + j] = sigm(g[3 * H + j]);
    }
    sl_vtanh_f32(g + 2 * H, g + 2 * H, (size_t)H);
    float *cr = c + n * H, *tr = tc + n * H, *hr = h + n * H;
    for (int64_t j = 0; j < H; j++) cr[j] = g[H + j] * cp[j] + g[j] * g[2 * H + j];
    sl_vtanh_f32(tr, cr, (size_t)H);
    for (int64_t j = 0; j < H; j++) hr[j] = g[3 * H + j] * tr[j];
  }
}

static void layer_forward(sl_module *m, int64_t l, const float *X, int64_t I) {
  rnn_state *s = m->state;
  int64_t T = s->T, N = s->N, H = s->hid, GH = s->G * H, TN = T * N;
  float *hs = s->hs + l * (T + 1) * N * H, *gates = s->gates + l * TN * 4 * H;
  sl_sgemm_f32(false, true, TN, GH, I, 1.0f, X, param(m, l, 0), 0.0f, s->gi);
  add_rows(s->gi, param(m, l, 2), TN, GH);
  for (int64_t t = 0; t < T; t++) {
    const float *hprev = hs + t * N * H;
    sl_sgemm_f32(false, true, N, GH, H, 1.0f, hprev, param(m, l, 1), 0.0f, s->gh);
    add_rows(s->gh, param(m, l, 3), N, GH);
    if (s->mode == SL_RNN_GRU) {
      gru_step(hs + (t + 1) * N * H, gates + t * N * 4 * H, s->gi + t * N * GH, s->gh, hprev, N, H);
    } else {
      float *cs = s->cs + l * (T + 1) * N * H;
      lstm_step(hs + (t + 1) * N * H, cs + (t + 1) * N * H, s->tc + l * TN * H + t * N * H,
                gates + t * N * 4 * H, s->gi + t * N * GH, s->gh, cs + t * N * H, N, H);
    }
  }
}

/* ---- one layer, backward ---- */

/* From dy (T x N x H, the gradient of the layer's outputs) and dh, dc (the
 * gradients of its last states, replaced by those of its initial states):
 * dgi (T*N x GH) = gradients of the input projections' pre-activations,
 * dgh those of the recurrent ones (the same array for an LSTM). */
static void layer_bptt(sl_module *m, int64_t l, const float *dy, float *dgi, float *dgh) {
  rnn_state *s = m->state;
  int64_t T = s->T, N = s->N, H = s->hid, GH = s->G * H, TN = T * N;
  const float *hs = s->hs + l * (T + 1) * N * H, *gates = s->gates + l * TN * 4 * H, *whh = param(m, l, 1);
  float *dh = s->dh, *dc = s->dc;
  for (int64_t t = T - 1; t >= 0; t--) {
    const float *g = gates + t * N * 4 * H, *dyt = dy ? dy + t * N * H : NULL;
    float *di = dgi + t * N * GH, *dr = dgh + t * N * GH;
    if (dyt)
      for (int64_t k = 0; k < N * H; k++) dh[k] += dyt[k];
    if (s->mode == SL_RNN_GRU) {
      const float *hp = hs + t * N * H;
      for (int64_t n = 0; n < N; n++) {
        const float *gn = g + n * 4 * H, *hpn = hp + n * H;
        float *dhn = dh + n * H, *din = di + n * GH, *drn = dr + n * GH;
        for (int64_t j = 0; j < H; j++) {
          float r = gn[j], z = gn[H + j], nn = gn[2 * H + j], ghn = gn[3 * H + j], d = dhn[j];
          float dan = d * (1.0f - z) * (1.0f - nn * nn);
          float daz = d * (hpn[j] - nn) * z * (1.0f - z);
          float dar = dan * ghn * r * (1.0f - r);
          din[j] = dar;
          din[H + j] = daz;
          din[2 * H + j] = dan;
          drn[j] = dar;
          drn[H + j] = daz;
          drn[2 * H + j] = dan * r;
          dhn[j] = d * z;
        }
      }
      /* dh_{t-1} = dh * z + dgh_t W_hh */
      sl_sgemm_f32(false, false, N, H, GH, 1.0f, dr, whh, 1.0f, dh);
    } else {
      const float *cp = s->cs + l * (T + 1) * N * H + t * N * H, *tc = s->tc + l * TN * H + t * N * H;
      for (int64_t n = 0; n < N; n++) {
        const float *gn = g + n * 4 * H, *cpn = cp + n * H, *tcn = tc + n * H;
        float *dhn = dh + n * H, *dcn = dc + n * H, *din = di + n * GH;
        for (int64_t j = 0; j < H; j++) {
          float i = gn[j], f = gn[H + j], gg = gn[2 * H + j], o = gn[3 * H + j], tcj = tcn[j];
          float d = dhn[j], dcj = dcn[j] + d * o * (1.0f - tcj * tcj);
          din[j] = dcj * gg * i * (1.0f - i);
          din[H + j] = dcj * cpn[j] * f * (1.0f - f);
          din[2 * H + j] = dcj * i * (1.0f - gg * gg);
          din[3 * H + j] = d * tcj * o * (1.0f - o);
          dcn[j] = dcj * f;
        }
      }
      sl_sgemm_f32(false, false, N, H, GH, 1.0f, di, whh, 0.0f, dh);
    }
  }
}

/* ---- shapes ---- */

static int check_state(const rnn_state *s, const sl_tensor *h, const char *name, int64_t N) {
  int64_t want[3];
  int nd = 0;
  if (!s->cell) want[nd++] = s->layers;
  if (s->batched) want[nd++] = N;
  want[nd++] = s->hid;
  bool ok = h->ndim == nd;
  for (int i = 0; ok && i < nd; i++) ok = h->shape[i] == want[i];
  if (ok) return SL_OK;
  char a[96], b[96];
  return sl_fail(SL_ESHAPE, "%s.forward: %s of shape %s expected, got %s", rnn_type(s), name,
                 sl_shape_str_raw(nd, want, b, sizeof b), sl_shape_str(h, a, sizeof a));
}

/* Reads T, N and batched from x (forward), or checks x against them. */
static int input_geometry(rnn_state *s, const sl_tensor *x, const char *what, int64_t *T, int64_t *N, bool *batched) {
  char a[96];
  const char *tn = s->batch_first ? "N x T" : "T x N";
  int full = s->cell ? 2 : 3;
  if ((x->ndim != full && x->ndim != full - 1) || x->shape[x->ndim - 1] != s->in) {
    if (s->cell)
      return sl_fail(SL_ESHAPE, "%s.%s: expected input of shape [N x %" PRId64 "] or [%" PRId64 "], got %s",
                     rnn_type(s), what, s->in, s->in, sl_shape_str(x, a, sizeof a));
    return sl_fail(SL_ESHAPE, "%s.%s: expected input of shape [%s x %" PRId64 "] or [T x %" PRId64 "], got %s",
                   rnn_type(s), what, tn, s->in, s->in, sl_shape_str(x, a, sizeof a));
  }
  *batched = x->ndim == full;
  if (s->cell) {
    *T = 1;
    *N = *batched ? x->shape[0] : 1;
  } else if (*batched) {
    *T = x->shape[s->batch_first ? 1 : 0];
    *N = x->shape[s->batch_first ? 0 : 1];
  } else {
    *T = x->shape[0];
    *N = 1;
  }
  if (*T == 0 || *N == 0)
    return sl_fail(SL_ESHAPE, "%s.%s: input %s is empty", rnn_type(s), what, sl_shape_str(x, a, sizeof a));
  return SL_OK;
}

/* shape of out (hid) / a state tensor for the current geometry */
static int out_shape(const rnn_state *s, int64_t *shape) {
  int nd = 0;
  if (s->cell) {
    if (s->batched) shape[nd++] = s->N;
  } else if (!s->batched) {
    shape[nd++] = s->T;
  } else {
    shape[nd++] = s->batch_first ? s->N : s->T;
    shape[nd++] = s->batch_first ? s->T : s->N;
  }
  shape[nd++] = s->hid;
  return nd;
}
static int state_shape(const rnn_state *s, int64_t *shape) {
  int nd = 0;
  if (!s->cell) shape[nd++] = s->layers;
  if (s->batched) shape[nd++] = s->N;
  shape[nd++] = s->hid;
  return nd;
}

/* ---- forward / backward ---- */

int sl_rnn_forward(sl_module *m, const sl_tensor *x, const sl_tensor *h0, const sl_tensor *c0,
                   const sl_tensor **out, const sl_tensor **hn, const sl_tensor **cn) {
  sl_rnn_mode mode;
  bool cell;
  if (!m || !x || !sl_rnn_info(m, &mode, &cell))
    return sl_fail(SL_EINVAL, "rnn forward: %s", !m || !x ? "NULL module or input" : "not a recurrent layer");
  rnn_state *s = m->state;
  const char *h0name = s->cell ? "hx" : "h0", *c0name = s->cell ? "cx" : "c0";
  if (mode == SL_RNN_GRU && c0)
    return sl_fail(SL_EINVAL, "%s.forward: a GRU has no cell state (%s given)", rnn_type(s), c0name);
  if (mode == SL_RNN_LSTM && (!h0) != (!c0))
    return sl_fail(SL_EINVAL, "%s.forward: %s and %s must be given together (got only %s)", rnn_type(s), h0name,
                   c0name, h0 ? h0name : c0name);
  s->forwarded = false; /* a failed forward leaves nothing to backpropagate */
  int64_t T, N;
  bool batched;
  int st = input_geometry(s, x, "forward", &T, &N, &batched);
  if (st) return st;
  s->batched = batched;
  if (h0 && (st = check_state(s, h0, h0name, N))) return st;
  if (c0 && (st = check_state(s, c0, c0name, N))) return st;
  if ((st = ensure_arena(s, T, N))) return st;
  int64_t shape[3];
  s->T = T;
  s->N = N;
  int nd = out_shape(s, shape);
  if ((st = sl_tensor_ensure(&m->output, nd, shape))) return st;
  if (!s->cell) {
    nd = state_shape(s, shape);
    if ((st = sl_tensor_ensure(&s->hn, nd, shape))) return st;
    if (mode == SL_RNN_LSTM && (st = sl_tensor_ensure(&s->cn, nd, shape))) return st;
  } else if (mode == SL_RNN_LSTM) {
    nd = state_shape(s, shape);
    if ((st = sl_tensor_ensure(&s->cn, nd, shape))) return st;
  }
  int64_t H = s->hid, L = s->layers, NH = N * H, TN = T * N;
  for (int64_t l = 0; l < L; l++) {
    float *hs = s->hs + l * (T + 1) * NH;
    if (h0) memcpy(hs, h0->data + l * NH, (size_t)NH * sizeof *hs);
    else memset(hs, 0, (size_t)NH * sizeof *hs);
    if (mode == SL_RNN_LSTM) {
      float *cs = s->cs + l * (T + 1) * NH;
      if (c0) memcpy(cs, c0->data + l * NH, (size_t)NH * sizeof *cs);
      else memset(cs, 0, (size_t)NH * sizeof *cs);
    }
  }
  const float *X = x->data;
  if (s->batch_first && batched && !s->cell) {
    swap01(s->xt, x->data, N, T, s->in);
    X = s->xt;
  }
  for (int64_t l = 0; l < L; l++) {
    layer_forward(m, l, X, l ? H : s->in);
    X = s->hs + l * (T + 1) * NH + NH;
  }
  const float *top = s->hs + (L - 1) * (T + 1) * NH + NH;
  if (s->batch_first && batched && !s->cell) swap01(m->output->data, top, T, N, H);
  else memcpy(m->output->data, top, (size_t)TN * H * sizeof(float));
  for (int64_t l = 0; l < L && !s->cell; l++) {
    memcpy(s->hn->data + l * NH, s->hs + l * (T + 1) * NH + T * NH, (size_t)NH * sizeof(float));
    if (mode == SL_RNN_LSTM)
      memcpy(s->cn->data + l * NH, s->cs + l * (T + 1) * NH + T * NH, (size_t)NH * sizeof(float));
  }
  if (s->cell && mode == SL_RNN_LSTM) memcpy(s->cn->data, s->cs + NH, (size_t)NH * sizeof(float));
  s->forwarded = true;
  m->forwards++; /* the autograd path's stamp (sl_module_forward's count) */
  if (out) *out = m->output;
  if (hn) *hn = s->cell ? m->output : s->hn;
  if (cn) *cn = mode == SL_RNN_LSTM ? s->cn : NULL;
  return SL_OK;
}

void sl_rnn_forward_results(const sl_module *m, const sl_tensor **hn, const sl_tensor **cn) {
  const rnn_state *s = m->state;
  *hn = s->cell ? m->output : s->hn;
  *cn = s->mode == SL_RNN_LSTM ? s->cn : NULL;
}

static int check_grad(const rnn_state *s, const sl_tensor *g, const sl_tensor *like, const char *name) {
  if (sl_tensor_same_shape(g, like)) return SL_OK;
  char a[96], b[96];
  return sl_fail(SL_ESHAPE, "%s.backward: gradient of %s of shape %s expected, got %s", rnn_type(s), name,
                 sl_shape_str(like, b, sizeof b), sl_shape_str(g, a, sizeof a));
}

int sl_rnn_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gout, const sl_tensor *ghn,
                    const sl_tensor *gcn, const sl_tensor **gx, const sl_tensor **gh0, const sl_tensor **gc0) {
  sl_rnn_mode mode;
  bool cell;
  if (!m || !x || !sl_rnn_info(m, &mode, &cell))
    return sl_fail(SL_EINVAL, "rnn backward: %s", !m || !x ? "NULL module or input" : "not a recurrent layer");
  rnn_state *s = m->state;
  if (!s->forwarded) return sl_fail(SL_EINVAL, "%s.backward: called before forward", rnn_type(s));
  int64_t T, N;
  bool batched;
  int st = input_geometry(s, x, "backward", &T, &N, &batched);
  if (st) return st;
  if (T != s->T || N != s->N || batched != s->batched) {
    char a[96];
    return sl_fail(SL_ESHAPE, "%s.backward: input %s is not the shape of the last forward's", rnn_type(s),
                   sl_shape_str(x, a, sizeof a));
  }
  const char *hnname = s->cell ? "h'" : "h_n", *cnname = s->cell ? "c'" : "c_n";
  if (ghn && s->cell)
    return sl_fail(SL_EINVAL, "%s.backward: a cell's h' is its output (give its gradient as gout)", rnn_type(s));
  if (gcn && mode == SL_RNN_GRU) return sl_fail(SL_EINVAL, "%s.backward: a GRU has no cell state", rnn_type(s));
  if (!gout && !ghn && !gcn) return sl_fail(SL_EINVAL, "%s.backward: no gradient given", rnn_type(s));
  if (gout && (st = check_grad(s, gout, m->output, s->cell ? "h'" : "output"))) return st;
  if (ghn && (st = check_grad(s, ghn, s->hn, hnname))) return st;
  if (gcn && (st = check_grad(s, gcn, s->cn, cnname))) return st;
  int64_t shape[3];
  int nd = state_shape(s, shape);
  if ((st = sl_tensor_ensure(&s->gh0, nd, shape))) return st;
  if (mode == SL_RNN_LSTM && (st = sl_tensor_ensure(&s->gc0, nd, shape))) return st;
  if ((st = sl_tensor_ensure(&m->grad_input, x->ndim, x->shape))) return st;
  int64_t H = s->hid, L = s->layers, NH = N * H, TN = T * N, GH = s->G * H;
  bool bf = s->batch_first && batched && !s->cell;
  /* dy of the top layer, time-major, in da (NULL: no gradient of out) */
  float *dy = NULL, *dx = s->db;
  if (gout) {
    dy = s->da;
    if (bf) swap01(dy, gout->data, N, T, H);
    else memcpy(dy, gout->data, (size_t)TN * H * sizeof *dy);
  }
  for (int64_t l = L - 1; l >= 0; l--) {
    if (ghn) memcpy(s->dh, ghn->data + l * NH, (size_t)NH * sizeof(float));
    else memset(s->dh, 0, (size_t)NH * sizeof(float));
    if (mode == SL_RNN_LSTM) {
      if (gcn) memcpy(s->dc, gcn->data + (s->cell ? 0 : l * NH), (size_t)NH * sizeof(float));
      else memset(s->dc, 0, (size_t)NH * sizeof(float));
    }
    float *dgi = s->gi, *dgh = mode == SL_RNN_GRU ? s->dgh : s->gi;
    layer_bptt(m, l, dy, dgi, dgh);
    memcpy(s->gh0->data + l * NH, s->dh, (size_t)NH * sizeof(float));
    if (mode == SL_RNN_LSTM) memcpy(s->gc0->data + l * NH, s->dc, (size_t)NH * sizeof(float));
    int64_t I = l ? H : s->in;
    const float *X = l ? s->hs + (l - 1) * (T + 1) * NH + NH : bf ? s->xt : x->data;
    const float *hprev = s->hs + l * (T + 1) * NH;
    sl_sgemm_f32(true, false, GH, I, TN, 1.0f, dgi, X, 1.0f, pgrad(m, l, 0));
    sl_sgemm_f32(true, false, GH, H, TN, 1.0f, dgh, hprev, 1.0f, pgrad(m, l, 1));
    colsum_acc(pgrad(m, l, 2), dgi, TN, GH);
    colsum_acc(pgrad(m, l, 3), dgh, TN, GH);
    if (l == 0 && m->skip_grad_input) break;
    sl_sgemm_f32(false, false, TN, I, GH, 1.0f, dgi, param(m, l, 0), 0.0f, dx);
    if (l) { /* the layer below gets dx as its dy */
      float *t = dx;
      dx = dy ? dy : s->da;
      dy = t;
    }
  }
  if (!m->skip_grad_input) {
    if (bf) swap01(m->grad_input->data, dx, T, N, s->in);
    else memcpy(m->grad_input->data, dx, (size_t)TN * s->in * sizeof(float));
  }
  if (gx) *gx = m->grad_input;
  if (gh0) *gh0 = s->gh0;
  if (gc0) *gc0 = mode == SL_RNN_LSTM ? s->gc0 : NULL;
  return SL_OK;
}

/* ---- the layer protocol ---- */

static int rnn_forward(sl_module *m, const sl_tensor *x) { return sl_rnn_forward(m, x, NULL, NULL, NULL, NULL, NULL); }

static int rnn_backward(sl_module *m, const sl_tensor *x, const sl_tensor *gy) {
  return sl_rnn_backward(m, x, gy, NULL, NULL, NULL, NULL, NULL);
}

static void rnn_destroy(sl_module *m) {
  rnn_state *s = m->state;
  if (!s) return;
  sl_tensor_release(s->hn);
  sl_tensor_release(s->cn);
  sl_tensor_release(s->gh0);
  sl_tensor_release(s->gc0);
  sl_free(s->arena);
  sl_free(s);
}

static int rnn_hparams(const sl_module *m, sl_hparam *out) {
  const rnn_state *s = m->state;
  int k = 0;
  out[k++] = (sl_hparam){"input_size", SL_VALUE_INT, (double)s->in, SL_HP_POSITIONAL};
  out[k++] = (sl_hparam){"hidden_size", SL_VALUE_INT, (double)s->hid, SL_HP_POSITIONAL};
  if (!s->cell) out[k++] = (sl_hparam){"num_layers", SL_VALUE_INT, (double)s->layers, s->layers == 1 ? SL_HP_HIDDEN : 0};
  out[k++] = (sl_hparam){"bias", SL_VALUE_BOOL, s->bias, s->bias ? SL_HP_HIDDEN : 0};
  if (s->cell) return k;
  out[k++] = (sl_hparam){"batch_first", SL_VALUE_BOOL, s->batch_first, s->batch_first ? 0 : SL_HP_HIDDEN};
  out[k++] = (sl_hparam){"dropout", SL_VALUE_FLOAT, s->dropout, s->dropout != 0 ? 0 : SL_HP_HIDDEN};
  out[k++] = (sl_hparam){"bidirectional", SL_VALUE_BOOL, s->bidirectional, s->bidirectional ? 0 : SL_HP_HIDDEN};
  if (s->mode == SL_RNN_LSTM)
    out[k++] = (sl_hparam){"proj_size", SL_VALUE_INT, (double)s->proj_size, s->proj_size ? 0 : SL_HP_HIDDEN};
  return k;
}

/* ---- constructors ---- */

static const sl_param_spec cell_params[] = {{"weight_ih", SL_INIT_FAN}, {"weight_hh", SL_INIT_FAN},
                                            {"bias_ih", SL_INIT_ZERO}, {"bias_hh", SL_INIT_ZERO}, {NULL, 0}};
#define P4(k) {"weight_ih_l" #k, SL_INIT_FAN}, {"weight_hh_l" #k, SL_INIT_FAN}, {"bias_ih_l" #k, SL_INIT_ZERO}, \
              {"bias_hh_l" #k, SL_INIT_ZERO}
static const sl_param_spec layer_params[] = {P4(0), P4(1), P4(2), P4(3), P4(4), P4(5), P4(6), P4(7), {NULL, 0}};
#undef P4

#define RNN_ARGS                                                                                             \
  {"input_size", SL_VALUE_INT, 0, SL_HP_REQUIRED}, {"hidden_size", SL_VALUE_INT, 0, SL_HP_REQUIRED},          \
      {"num_layers", SL_VALUE_INT, 1, 0}, {"bias", SL_VALUE_BOOL, 1, 0}, {"batch_first", SL_VALUE_BOOL, 0, 0}, \
      {"dropout", SL_VALUE_FLOAT, 0, 0}, {"bidirectional", SL_VALUE_BOOL, 0, 0}
static const sl_hparam gru_args[] = {RNN_ARGS, {NULL, SL_VALUE_INT, 0, 0}};
static const sl_hparam lstm_args[] = {RNN_ARGS, {"proj_size", SL_VALUE_INT, 0, 0}, {NULL, SL_VALUE_INT, 0, 0}};
#undef RNN_ARGS
static const sl_hparam cell_args[] = {{"input_size", SL_VALUE_INT, 0, SL_HP_REQUIRED},
                                      {"hidden_size", SL_VALUE_INT, 0, SL_HP_REQUIRED},
                                      {"bias", SL_VALUE_BOOL, 1, 0},
                                      {NULL, SL_VALUE_INT, 0, 0}};

static sl_module *gru_create(const double *a, sl_rng *rng);
static sl_module *lstm_create(const double *a, sl_rng *rng);
static sl_module *gru_cell_create(const double *a, sl_rng *rng);
static sl_module *lstm_cell_create(const double *a, sl_rng *rng);

const sl_layer sl_rnn_layers[4] = {
    {.type = "GRU", .flags = SL_LAYER_FORWARD_STATE, .forward = rnn_forward, .backward = rnn_backward, .destroy = rnn_destroy,
     .params = layer_params, .args = gru_args, .create = gru_create, .hparams = rnn_hparams},
    {.type = "LSTM", .flags = SL_LAYER_FORWARD_STATE, .forward = rnn_forward, .backward = rnn_backward, .destroy = rnn_destroy,
     .params = layer_params, .args = lstm_args, .create = lstm_create, .hparams = rnn_hparams},
    {.type = "GRUCell", .flags = SL_LAYER_FORWARD_STATE, .forward = rnn_forward, .backward = rnn_backward, .destroy = rnn_destroy,
     .params = cell_params, .args = cell_args, .create = gru_cell_create, .hparams = rnn_hparams},
    {.type = "LSTMCell", .flags = SL_LAYER_FORWARD_STATE, .forward = rnn_forward, .backward = rnn_backward, .destroy = rnn_destroy,
     .params = cell_params, .args = cell_args, .create = lstm_cell_create, .hparams = rnn_hparams},
};

bool sl_rnn_info(const sl_module *m, sl_rnn_mode *mode, bool *cell) {
  if (!m || m->vt < sl_rnn_layers || m->vt >= sl_rnn_layers + 4) return false;
  const rnn_state *s = m->state;
  if (mode) *mode = s->mode;
  if (cell) *cell = s->cell;
  return true;
}

static sl_module *build(sl_rnn_mode mode, bool cell, int64_t in, int64_t hid, int64_t layers, bool bias,
                        bool batch_first, double dropout, bool bidirectional, int64_t proj_size, sl_rng *rng) {
  const sl_layer *l = &sl_rnn_layers[(cell ? 2 : 0) + (mode == SL_RNN_LSTM)];
  const char *type = l->type;
  const int64_t big = (int64_t)1 << 31;
  if (in < 1 || in > big) return sl_fail_null(SL_EINVAL, "%s: input_size must be >= 1, got %" PRId64, type, in);
  if (hid < 1 || hid > big) return sl_fail_null(SL_EINVAL, "%s: hidden_size must be >= 1, got %" PRId64, type, hid);
  if (layers < 1 || layers > SL_RNN_MAX_LAYERS)
    return sl_fail_null(SL_EINVAL, "%s: num_layers must be in 1..%d, got %" PRId64, type, SL_RNN_MAX_LAYERS, layers);
  if (!(dropout >= 0 && dropout <= 1))
    return sl_fail_null(SL_EINVAL, "%s: dropout must be in [0, 1], got %g", type, dropout);
  if (dropout != 0)
    return sl_fail_null(SL_EINVAL, "%s: dropout between layers is not supported (got %g; expected 0)", type, dropout);
  if (bidirectional) return sl_fail_null(SL_EINVAL, "%s: bidirectional=true is not supported", type);
  if (proj_size != 0) return sl_fail_null(SL_EINVAL, "%s: proj_size is not supported (got %" PRId64 ", expected 0)", type, proj_size);
  sl_module *m = sl_module_new(l);
  rnn_state *s = m ? sl_calloc(1, sizeof *s) : NULL;
  if (!s) {
    sl_module_release(m);
    return NULL;
  }
  m->state = s;
  *s = (rnn_state){.mode = mode, .cell = cell, .in = in, .hid = hid, .layers = layers, .bias = bias,
                   .batch_first = batch_first, .bidirectional = bidirectional, .dropout = dropout,
                   .proj_size = proj_size, .G = mode == SL_RNN_GRU ? 3 : 4};
  int64_t GH = s->G * hid;
  for (int64_t k = 0; k < layers; k++) {
    const char *const *names = cell ? cell_names : layer_names + 4 * k;
    int64_t wih[2] = {GH, k ? hid : in}, whh[2] = {GH, hid}, b[1] = {GH};
    if (sl_module_add_param(m, names[0], 2, wih) || sl_module_add_param(m, names[1], 2, whh) ||
        (bias && (sl_module_add_param(m, names[2], 1, b) || sl_module_add_param(m, names[3], 1, b)))) {
      sl_module_release(m);
      return NULL;
    }
  }
  if (rng) { /* PyTorch's reset_parameters: every parameter U(-1/sqrt(hidden), 1/sqrt(hidden)), in order */
    float bound = (float)(1.0 / sqrt((double)hid));
    for (int i = 0; i < m->nparams; i++)
      sl_rng_fill_uniform_f32(rng, m->params[i]->data, (size_t)m->params[i]->numel, -bound, bound);
  }
  return m;
}

sl_module *sl_rnn_new(sl_rnn_mode mode, int64_t input_size, int64_t hidden_size, int64_t num_layers, bool bias,
                      bool batch_first, double dropout, bool bidirectional, int64_t proj_size, sl_rng *rng) {
  return build(mode, false, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
               proj_size, rng);
}

sl_module *sl_rnn_cell_new(sl_rnn_mode mode, int64_t input_size, int64_t hidden_size, bool bias, sl_rng *rng) {
  return build(mode, true, input_size, hidden_size, 1, bias, false, 0, false, 0, rng);
}

static sl_module *gru_create(const double *a, sl_rng *rng) {
  return sl_rnn_new(SL_RNN_GRU, (int64_t)a[0], (int64_t)a[1], (int64_t)a[2], a[3] != 0, a[4] != 0, a[5], a[6] != 0,
                    0, rng);
}
static sl_module *lstm_create(const double *a, sl_rng *rng) {
  return sl_rnn_new(SL_RNN_LSTM, (int64_t)a[0], (int64_t)a[1], (int64_t)a[2], a[3] != 0, a[4] != 0, a[5],
                    a[6] != 0, (int64_t)a[7], rng);
}
static sl_module *gru_cell_create(const double *a, sl_rng *rng) {
  return sl_rnn_cell_new(SL_RNN_GRU, (int64_t)a[0], (int64_t)a[1], a[2] != 0, rng);
}
static sl_module *lstm_cell_create(const double *a, sl_rng *rng) {
  return sl_rnn_cell_new(SL_RNN_LSTM, (int64_t)a[0], (int64_t)a[1], a[2] != 0, rng);
}
