/*
 * Recycling for the autograd path, so a training step allocates nothing once
 * warm (the explicit protocol's modules reuse their buffers; a recorded call
 * cannot, since its result outlives the call). A pool caches what a step
 * throws away: nodes, per-tensor autograd state, and the tensors the autograd
 * code makes itself (layer outputs, gradients, loss values). A tensor goes
 * back only when its last reference goes (header and storage both unshared),
 * so a tensor that anything still holds is never reused.
 *
 * A pool belongs to one owner (a Lua state) and is current on one thread at
 * a time, like a memory account (the bindings switch both together). With no
 * current pool, or while the current memory account has a cap, everything is
 * allocated and freed as usual: a capped state sees exactly the bytes it uses.
 * Cached blocks stay charged to the account that allocated them; the pool
 * counts them (sl_ag_pool_bytes) so an owner can tell cached from live bytes.
 * Bounded: at most SL_AG_POOL_MAX_BYTES of tensors and SL_AG_POOL_MAX_NODES
 * nodes (and twice as many metas); past that, blocks are freed.
 */
#ifndef SL_AG_POOL_H
#define SL_AG_POOL_H
#include <stddef.h>

#include "autograd.h"
#include "../tensor/alloc.h"

#define SL_AG_POOL_MAX_BYTES ((size_t)256 << 20)
#define SL_AG_POOL_MAX_NODES 8192

typedef struct sl_ag_pool sl_ag_pool;

/* A new empty pool for the owner of account (NULL: the thread's default
 * account), whose cap turns caching off; its record comes from plain malloc
 * (never charged). NULL with SL_ENOMEM. */
sl_ag_pool *sl_ag_pool_new(sl_mem_account *account);
/* Frees every cached block and the pool (NULL: no-op). If p is current on
 * this thread, no pool is current afterwards. */
void sl_ag_pool_free(sl_ag_pool *p);
/* Makes p current on this thread (NULL: none) and returns the previous one. */
sl_ag_pool *sl_ag_pool_use(sl_ag_pool *p);
/* Garbage the owner holds but has not released yet (Lua boxes waiting for
 * the collector) can be asked back: on a miss, once SL_AG_POOL_RECLAIM_BYTES
 * were handed out since the last time, the pool calls reclaim(ud) (which
 * releases what it can, e.g. a full collection) and looks again. ud is the
 * thread's current one (sl_ag_pool_set_user), so the owner can tell which of
 * its threads is running. reclaim must not free anything the running core
 * call uses without a reference. */
#define SL_AG_POOL_RECLAIM_BYTES ((size_t)32 << 20)
void sl_ag_pool_set_reclaim(sl_ag_pool *p, void (*reclaim)(void *ud));
/* Sets this thread's ud for reclaim and returns the previous one. */
void *sl_ag_pool_set_user(void *ud);
/* Frees every cached block, keeping the pool. */
void sl_ag_pool_drain(sl_ag_pool *p);
/* Bytes of the cached blocks (as charged to their accounts); 0 for NULL. */
size_t sl_ag_pool_bytes(const sl_ag_pool *p);

/* ---- for core/autograd ---- */
/* A zeroed node / meta from the current pool, or freshly allocated. */
sl_ag_node *sl_ag_pool_node(void);
void sl_ag_pool_node_put(sl_ag_node *n);
struct sl_ag_meta *sl_ag_pool_meta(void);
void sl_ag_pool_meta_put(struct sl_ag_meta *m);
/* An uninitialized tensor of this shape with refcount 1 and a (reset) meta,
 * from the pool when one of as many elements is cached; it returns there
 * through sl_ag_release. NULL on failure. */
sl_tensor *sl_ag_tensor_empty(int ndim, const int64_t *shape);
/* sl_tensor_release, except that a tensor made by sl_ag_tensor_empty whose
 * last reference this is (storage unshared, not resized) is cached. */
void sl_ag_release(sl_tensor *t);
/* Clears t's autograd history (grad_fn, grad, flags), keeping its meta:
 * for a tensor about to be reused as a fresh result. */
void sl_ag_meta_reset(struct sl_ag_meta *m);

#endif
