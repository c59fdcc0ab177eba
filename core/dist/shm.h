/*
 * Shared memory for selut.dist.DataParallel on ranks of one machine
 * (docs/distributed.md, "One machine: a shared-memory step"). Plain POSIX:
 * the collective parts (who creates, agreeing on the name, barriers) are
 * bindings/lua_dist_shared.c's, through MPI. Internal: not reachable from
 * core/selut.h, so none of it is exported from libselut.so.
 */
#ifndef SL_DIST_SHM_H
#define SL_DIST_SHM_H
#include <stddef.h>

#include "tensor/alloc.h"
#include "tensor/tensor.h"

/* A key equal on ranks of one running machine (host name and boot id);
 * ranks compare it with an allreduce. */
long long sl_shm_node_key(void);
/* The segment's name from the creator's pid and a per-process serial. */
void sl_shm_name(char *buf, size_t n, long long pid, long long serial);
/* Unlinks segments left in /dev/shm by a creator that no longer runs
 * (selut-dp-<pid>-<serial> with no process <pid>, owned by this user);
 * returns how many. */
int sl_shm_sweep_stale(void);
/* Creates (the creator) or opens (the others) and maps bytes of the named
 * segment, zero-filled on creation; NULL with errno set on failure (the
 * creator unlinks what it made). */
float *sl_shm_map(const char *name, size_t bytes, int create);
void sl_shm_unlink(const char *name);
void sl_shm_unmap(float *base, size_t bytes);
/* A 1-D tensor over the whole mapping that unmaps it, and credits the
 * bytes back to the account `charged` (sl_mem_charge), when its last view
 * goes: parameters, gradients and optimizer state are rehomed into it. On
 * failure (NULL) the mapping is unmapped and credited at once. */
sl_tensor *sl_shm_wrap(float *base, size_t bytes, sl_mem_account *charged);
/* out[j] = sum over q of coef[q] * in[q][j] for j in [a, b), q in order:
 * ((c0 x0 + c1 x1) + c2 x2) + ... (coef NULL: a plain sum); out may be one
 * of in. */
void sl_shm_sum(float *out, float *const *in, const float *coef, int nin, size_t a, size_t b);

#endif
