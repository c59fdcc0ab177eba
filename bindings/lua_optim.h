/*
 * Internal to selut.optim: the optimizer box shared by lua_optim.c (the
 * constructors, step, learning rate, selut.nn.utils) and lua_optim_state.c
 * (parameter groups, state, state_dict / load_state_dict). Not installed.
 */
#ifndef SL_LUA_OPTIM_H
#define SL_LUA_OPTIM_H
#include "sl_lua.h"

enum { OPT_SGD, OPT_ADAM, OPT_ADAMW, OPT_RMSPROP, OPT_ADAGRAD, OPT_KINDS };
extern const char *const sl_lua_optim_short[OPT_KINDS]; /* "SGD", "Adam", ...: type names in messages */

typedef struct loptim {
  sl_optim *o;
  int kind;
  int n;              /* tensors referenced so far (params[i], grads[i] for i < n) */
  sl_tensor **params; /* point into the trailing storage of this userdata */
  sl_tensor **grads;
} loptim;

/* The optimizer box at idx, raising on anything else or a released one. */
loptim *sl_lua_optim_check(lua_State *L, int idx);

/* lua_optim_state.c */
/* Group form {{params = entries, key = value...}, ...} at arg 1: replaces it
 * with the flat entry list and returns the stack index of the original list,
 * or 0 when arg 1 is a plain entry list. */
int sl_lua_optim_flatten_groups(lua_State *L);
/* After construction from the group form at `groups`: assigns parameters to
 * groups and applies each group's own options. */
void sl_lua_optim_apply_groups(lua_State *L, loptim *b, int groups, const char *const *allowed);
/* Pushes opt.param_groups of the optimizer at idx. */
void sl_lua_optim_push_groups(lua_State *L, int idx);
/* Adds state / state_dict / load_state_dict to the method table at the top
 * and makes the param_group metatable. */
void sl_lua_open_optim_state(lua_State *L);

#endif
