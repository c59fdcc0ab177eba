/*
 * selut.rl's kernels (the C half under scripts/rl.lua's algorithms): row
 * copies and draws into preallocated buffer tensors (core/rl/buffer.h) and
 * the PPO / DQN loss gradients and sampling (core/rl/loss.h). Nothing here
 * allocates per call.
 */
#include <string.h>

#include "sl_lua.h"

/* ---- rows of the buffers (scripts/rl.lua) ---- */

/* Rows of t: a 1-D tensor is n rows of 1. */
static int64_t nrows(const sl_tensor *t) { return t->shape[0]; }
static int64_t rowlen(const sl_tensor *t) { return t->numel / (t->shape[0] ? t->shape[0] : 1); }

/* rl.copy_rows(dst, i, src[, j=1[, n=#src rows - j + 1]]): dst rows i..i+n-1 = src rows j..j+n-1 */
static int rl_copy_rows(lua_State *L) {
  sl_tensor *dst = sl_lua_checktensor(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  sl_tensor *src = sl_lua_checktensor(L, 3);
  lua_Integer j = luaL_optinteger(L, 4, 1);
  luaL_argcheck(L, j >= 1 && j <= nrows(src), 4, lua_pushfstring(L, "source row %I out of range [1, %I]", j, (lua_Integer)nrows(src)));
  lua_Integer n = luaL_optinteger(L, 5, nrows(src) - j + 1);
  char b1[64], b2[64];
  if (rowlen(dst) != rowlen(src))
    return luaL_error(L, "copy_rows: rows of %s and %s differ in size", sl_lua_shapestr(dst, b1, sizeof b1),
                      sl_lua_shapestr(src, b2, sizeof b2));
  luaL_argcheck(L, n >= 0 && j + n - 1 <= nrows(src), 5, lua_pushfstring(L, "%I rows from row %I exceed the source's %I", n, j, (lua_Integer)nrows(src)));
  luaL_argcheck(L, i >= 1 && i + n - 1 <= nrows(dst), 2,
                lua_pushfstring(L, "%I rows at row %I exceed the destination's %I", n, i, (lua_Integer)nrows(dst)));
  int64_t m = rowlen(dst);
  memmove(dst->data + (i - 1) * m, src->data + (j - 1) * m, (size_t)(n * m) * sizeof(float));
  return 0;
}

/* rl.gather_rows(dst, src, idx): dst row k = src row idx[k] (1-based, idx a float tensor of #dst rows) */
static int rl_gather_rows(lua_State *L) {
  sl_tensor *dst = sl_lua_checktensor(L, 1), *src = sl_lua_checktensor(L, 2), *idx = sl_lua_checktensor(L, 3);
  char b1[64], b2[64];
  if (rowlen(dst) != rowlen(src))
    return luaL_error(L, "gather_rows: rows of %s and %s differ in size", sl_lua_shapestr(dst, b1, sizeof b1),
                      sl_lua_shapestr(src, b2, sizeof b2));
  if (idx->numel != nrows(dst))
    return luaL_error(L, "gather_rows: %d indices for %d destination rows", (int)idx->numel, (int)nrows(dst));
  int64_t bad = sl_rows_bad_index(idx->data, idx->numel, nrows(src));
  if (bad >= 0)
    return luaL_error(L, "gather_rows: index %f at position %d out of range [1, %d]", (double)idx->data[bad],
                      (int)bad + 1, (int)nrows(src));
  sl_gather_rows_f32(dst->data, src->data, rowlen(dst), idx->data, idx->numel);
  return 0;
}

/* rl.randint_(idx, n): fills idx with uniform integers in [1, n] from the state's generator */
static int rl_randint_(lua_State *L) {
  sl_tensor *idx = sl_lua_checktensor(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 1 && n <= (1 << 24), 2, lua_pushfstring(L, "n must be in [1, 16777216], got %I", n));
  sl_randint_f32(idx->data, idx->numel, (uint64_t)n, &sl_lua_context(L)->rng);
  lua_settop(L, 1);
  return 1;
}

/* rl.randperm_(idx): fills idx with a permutation of 1..#idx (Fisher-Yates, the state's generator) */
static int rl_randperm_(lua_State *L) {
  sl_tensor *idx = sl_lua_checktensor(L, 1);
  luaL_argcheck(L, idx->numel <= (1 << 24), 1, "at most 16777216 elements");
  sl_randperm_f32(idx->data, idx->numel, &sl_lua_context(L)->rng);
  lua_settop(L, 1);
  return 1;
}


/* ---- loss kernels (core/rl/loss.h) ---- */

/* The tensor at arg with numel == rows * cols (any shape), raising otherwise. */
static float *checkbuf(lua_State *L, int arg, int64_t rows, int64_t cols, const char *what) {
  sl_tensor *t = sl_lua_checktensor(L, arg);
  if (t->numel != rows * cols) {
    char b[64];
    luaL_argerror(L, arg, lua_pushfstring(L, "%s has shape %s, expected %d elements", what,
                                          sl_lua_shapestr(t, b, sizeof b), (int)(rows * cols)));
  }
  return t->data;
}

/* Batch and width of a 2-D output tensor at arg. */
static sl_tensor *checkout2(lua_State *L, int arg, const char *what) {
  sl_tensor *t = sl_lua_checktensor(L, arg);
  if (t->ndim != 2) {
    char b[64];
    luaL_argerror(L, arg, lua_pushfstring(L, "%s has shape %s, expected [batch x n]", what, sl_lua_shapestr(t, b, sizeof b)));
  }
  return t;
}

static int push_stats(lua_State *L, const sl_ppo_stats *st) {
  lua_pushnumber(L, st->policy_loss);
  lua_pushnumber(L, st->entropy);
  lua_pushnumber(L, st->clip_fraction);
  lua_pushnumber(L, st->approx_kl);
  return 4;
}

/* rl.ppo_categorical_grad(logits, actions, old_logp, adv, clip, ent_coef, grad)
 * -> policy_loss, entropy, clip_fraction, approx_kl */
static int rl_ppo_categorical_grad(lua_State *L) {
  sl_tensor *z = checkout2(L, 1, "logits");
  int64_t B = z->shape[0], K = z->shape[1];
  float *a = checkbuf(L, 2, B, 1, "actions"), *old = checkbuf(L, 3, B, 1, "old log probs");
  float *adv = checkbuf(L, 4, B, 1, "advantages");
  double clip = luaL_checknumber(L, 5), ent = luaL_checknumber(L, 6);
  float *g = checkbuf(L, 7, B, K, "gradient");
  sl_ppo_stats st;
  sl_lua_check(L, sl_ppo_categorical_grad(z->data, a, old, adv, B, K, clip, ent, g, &st));
  return push_stats(L, &st);
}

/* rl.ppo_gaussian_grad(mean, log_std, actions, old_logp, adv, clip, ent_coef, grad_mean, grad_log_std) -> stats */
static int rl_ppo_gaussian_grad(lua_State *L) {
  sl_tensor *mu = checkout2(L, 1, "mean");
  int64_t B = mu->shape[0], K = mu->shape[1];
  float *ls = checkbuf(L, 2, K, 1, "log_std"), *a = checkbuf(L, 3, B, K, "actions");
  float *old = checkbuf(L, 4, B, 1, "old log probs"), *adv = checkbuf(L, 5, B, 1, "advantages");
  double clip = luaL_checknumber(L, 6), ent = luaL_checknumber(L, 7);
  float *gm = checkbuf(L, 8, B, K, "mean gradient"), *gls = checkbuf(L, 9, K, 1, "log_std gradient");
  sl_ppo_stats st;
  sl_lua_check(L, sl_ppo_gaussian_grad(mu->data, ls, a, old, adv, B, K, clip, ent, gm, gls, &st));
  return push_stats(L, &st);
}

/* rl.dqn_targets(q_online_next or nil, q_target_next, rewards, dones, gamma, y) */
static int rl_dqn_targets(lua_State *L) {
  sl_tensor *qt = checkout2(L, 2, "target next q");
  int64_t B = qt->shape[0], K = qt->shape[1];
  float *qo = lua_isnil(L, 1) ? NULL : checkbuf(L, 1, B, K, "online next q");
  float *r = checkbuf(L, 3, B, 1, "rewards"), *d = checkbuf(L, 4, B, 1, "dones");
  double gamma = luaL_checknumber(L, 5);
  float *y = checkbuf(L, 6, B, 1, "targets");
  sl_dqn_targets(qo, qt->data, r, d, B, K, gamma, y);
  return 0;
}

/* rl.dqn_huber_grad(q, actions, y, grad) -> loss */
static int rl_dqn_huber_grad(lua_State *L) {
  sl_tensor *q = checkout2(L, 1, "q");
  int64_t B = q->shape[0], K = q->shape[1];
  float *a = checkbuf(L, 2, B, 1, "actions"), *y = checkbuf(L, 3, B, 1, "targets"), *g = checkbuf(L, 4, B, K, "gradient");
  double loss;
  sl_lua_check(L, sl_dqn_huber_grad(q->data, a, y, B, K, g, &loss));
  lua_pushnumber(L, loss);
  return 1;
}

/* rl.categorical_sample(logits, actions[, logp[, deterministic]]): one 1-based index per row */
static int rl_categorical_sample(lua_State *L) {
  sl_tensor *z = checkout2(L, 1, "logits");
  int64_t B = z->shape[0], K = z->shape[1];
  float *a = checkbuf(L, 2, B, 1, "actions");
  float *lp = lua_isnoneornil(L, 3) ? NULL : checkbuf(L, 3, B, 1, "log probs");
  int det = lua_toboolean(L, 4);
  sl_categorical_sample(z->data, B, K, det ? NULL : &sl_lua_context(L)->rng, a, lp);
  return 0;
}

/* rl.normalize_(x[, n]): the first n elements (default all) become (x - mean) / (std + 1e-8),
 * std unbiased (torch.std), as PPO normalizes advantages; returns mean, std */
static int rl_normalize_(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  lua_Integer n = luaL_optinteger(L, 2, t->numel);
  luaL_argcheck(L, n >= 1 && n <= t->numel, 2, "count out of range");
  double m, sd;
  sl_normalize_f32(t->data, n, &m, &sd);
  lua_pushnumber(L, m);
  lua_pushnumber(L, sd);
  return 2;
}

/* rl.sumsq(t) -> sum of squares (double accumulation), for gradient norms */
static int rl_sumsq(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  lua_pushnumber(L, sl_sumsq_f32(t->data, t->numel));
  return 1;
}

/* rl.gae_(buf, last_values, last_dones, gamma, lambda): a RolloutBuffer's
   advantages and returns over its first buf.step steps (shapes checked in Lua) */
static int rl_gae_(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer S = (lua_getfield(L, 1, "step"), lua_tointeger(L, -1)), N = (lua_getfield(L, 1, "n_envs"), lua_tointeger(L, -1));
  const char *fields[] = {"values", "rewards", "episode_starts", "advantages", "returns"};
  sl_tensor *t[5];
  for (int i = 0; i < 5; i++) {
    lua_getfield(L, 1, fields[i]);
    t[i] = sl_lua_checktensor(L, -1);
    luaL_argcheck(L, t[i]->numel >= S * N, 1, "buffer tensors shorter than step x n_envs");
  }
  sl_tensor *lv = sl_lua_checktensor(L, 2), *ld = sl_lua_checktensor(L, 3);
  luaL_argcheck(L, lv->numel == N && ld->numel == N, 2, "last values and dones must have n_envs elements");
  sl_gae(t[0]->data, t[1]->data, t[2]->data, lv->data, ld->data, S, N, luaL_checknumber(L, 4), luaL_checknumber(L, 5),
         t[3]->data, t[4]->data);
  return 0;
}

/* ---- episode bookkeeping (core/rl/episode.h) ---- */

/* The tensor at arg, raising unless it has n elements. */
static float *checkn(lua_State *L, int arg, int64_t n, const char *what) {
  sl_tensor *t = sl_lua_checktensor(L, arg);
  if (t->numel != n) {
    char b[64];
    luaL_argerror(L, arg, lua_pushfstring(L, "%s has shape %s, expected %d elements", what,
                                          sl_lua_shapestr(t, b, sizeof b), (int)n));
  }
  return t->data;
}

/* rl.first_nonfinite(t) -> position (1-based) and value of the first NaN or infinite element, or nil */
static int rl_first_nonfinite(lua_State *L) {
  sl_tensor *t = sl_lua_checktensor(L, 1);
  int64_t k = sl_first_nonfinite_f32(t->data, t->numel);
  if (k < 0) return lua_pushnil(L), 1;
  lua_pushinteger(L, (lua_Integer)k + 1);
  lua_pushnumber(L, (lua_Number)t->data[k]);
  return 2;
}

/* rl.any_timeout(terminated, truncated) -> whether some episode was truncated and not terminated */
static int rl_any_timeout(lua_State *L) {
  sl_tensor *te = sl_lua_checktensor(L, 1);
  float *tr = checkn(L, 2, te->numel, "truncated");
  lua_pushboolean(L, sl_any_timeout(te->data, tr, te->numel));
  return 1;
}

/* rl.episode_starts_(starts, terminated, truncated): starts = terminated or truncated (1 / 0) */
static int rl_episode_starts_(lua_State *L) {
  sl_tensor *st = sl_lua_checktensor(L, 1);
  float *te = checkn(L, 2, st->numel, "terminated"), *tr = checkn(L, 3, st->numel, "truncated");
  sl_episode_starts(te, tr, st->numel, st->data);
  return 0;
}

/* rl.timeout_bootstrap_(rewards, values, terminated, truncated, gamma): rewards += gamma * values
   where an episode was truncated and not terminated */
static int rl_timeout_bootstrap_(lua_State *L) {
  sl_tensor *rw = sl_lua_checktensor(L, 1);
  float *v = checkn(L, 2, rw->numel, "values"), *te = checkn(L, 3, rw->numel, "terminated");
  float *tr = checkn(L, 4, rw->numel, "truncated");
  sl_timeout_bootstrap(rw->data, v, te, tr, rw->numel, luaL_checknumber(L, 5));
  return 0;
}

static const luaL_Reg rl_funcs[] = {{"gae_", rl_gae_},
                                    {"copy_rows", rl_copy_rows},
                                    {"gather_rows", rl_gather_rows},
                                    {"randint_", rl_randint_},
                                    {"randperm_", rl_randperm_},
                                    {"ppo_categorical_grad", rl_ppo_categorical_grad},
                                    {"ppo_gaussian_grad", rl_ppo_gaussian_grad},
                                    {"dqn_targets", rl_dqn_targets},
                                    {"dqn_huber_grad", rl_dqn_huber_grad},
                                    {"categorical_sample", rl_categorical_sample},
                                    {"normalize_", rl_normalize_},
                                    {"sumsq", rl_sumsq},
                                    {"first_nonfinite", rl_first_nonfinite},
                                    {"any_timeout", rl_any_timeout},
                                    {"episode_starts_", rl_episode_starts_},
                                    {"timeout_bootstrap_", rl_timeout_bootstrap_},
                                    {NULL, NULL}};

void sl_lua_open_rl_ops(lua_State *L) { sl_lua_newlib(L, rl_funcs); }
