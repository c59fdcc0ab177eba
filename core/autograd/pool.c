/*
 * The autograd pool (pool.h): free lists of nodes and metas, and cached
 * tensors in buckets by element count (a step's results come in a handful
 * of sizes). A tensor is cached only when nothing else can see it: the last
 * header reference, an unshared storage (no view), still the data it was
 * made with. Its history is dropped on the way in, so a cached tensor holds
 * no graph.
 */
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "../tensor/alloc.h"
#include "../tensor/error.h"

#define BUCKETS 32
#define BUCKET_MAX 4096

typedef struct bucket {
  int64_t numel;
  sl_tensor *head; /* chained through meta->pool_next */
  int count;
} bucket;

struct sl_ag_pool {
  sl_mem_account *account; /* its owner's account: no caching while it has a cap */
  sl_ag_node *nodes;
  int nnodes;
  struct sl_ag_meta *metas;
  int nmetas;
  bucket b[BUCKETS];
  size_t tensor_bytes; /* cached tensors */
  size_t bytes;        /* everything cached */
  bool draining;       /* nothing is cached while the caches are emptied */
  void (*reclaim)(void *ud);
  bool reclaiming;
  size_t since_reclaim; /* tensor bytes handed out since the last reclaim */
};

static _Thread_local sl_ag_pool *current;
static _Thread_local void *current_ud;

void sl_ag_pool_set_reclaim(sl_ag_pool *p, void (*reclaim)(void *ud)) { p->reclaim = reclaim; }

void *sl_ag_pool_set_user(void *ud) {
  void *prev = current_ud;
  current_ud = ud;
  return prev;
}

sl_ag_pool *sl_ag_pool_new(sl_mem_account *account) {
  sl_ag_pool *p = calloc(1, sizeof *p);
  if (!p) return sl_fail_null(SL_ENOMEM, "out of memory allocating an autograd pool");
  p->account = account;
  return p;
}

sl_ag_pool *sl_ag_pool_use(sl_ag_pool *p) {
  sl_ag_pool *prev = current;
  current = p;
  return prev;
}

size_t sl_ag_pool_bytes(const sl_ag_pool *p) { return p ? p->bytes : 0; }

void sl_ag_pool_drain(sl_ag_pool *p) {
  if (!p || p->draining) return;
  p->draining = true;
  while (p->nodes) {
    sl_ag_node *n = p->nodes;
    p->nodes = n->pool_next;
    sl_free(n);
  }
  p->nnodes = 0;
  for (int k = 0; k < BUCKETS; k++) {
    while (p->b[k].head) {
      sl_tensor *t = p->b[k].head;
      struct sl_ag_meta *m = t->ag;
      p->b[k].head = m->pool_next;
      m->pool_next = NULL;
      sl_tensor_release(t); /* its meta is freed, not cached (draining) */
    }
    p->b[k].count = 0;
  }
  while (p->metas) {
    struct sl_ag_meta *m = p->metas;
    p->metas = m->pool_next;
    sl_free(m);
  }
  p->nmetas = 0;
  p->tensor_bytes = p->bytes = 0;
  p->draining = false;
}

void sl_ag_pool_free(sl_ag_pool *p) {
  if (!p) return;
  sl_ag_pool_drain(p);
  if (current == p) current = NULL;
  free(p);
}

/* The current pool when it may cache: none while its owner has a memory cap
 * (what was cached then goes, so the cap sees only live bytes). */
static sl_ag_pool *active(void) {
  sl_ag_pool *p = current;
  if (!p || p->draining) return NULL;
  if (p->account && sl_mem_account_limit(p->account)) {
    if (p->bytes) sl_ag_pool_drain(p);
    return NULL;
  }
  return p;
}

sl_ag_node *sl_ag_pool_node(void) {
  sl_ag_pool *p = active();
  if (p && p->nodes) {
    sl_ag_node *n = p->nodes;
    p->nodes = n->pool_next;
    p->nnodes--;
    p->bytes -= sizeof *n;
    memset(n, 0, sizeof *n);
    return n;
  }
  return sl_calloc(1, sizeof(sl_ag_node));
}

void sl_ag_pool_node_put(sl_ag_node *n) {
  sl_ag_pool *p = active();
  if (!p || p->nnodes >= SL_AG_POOL_MAX_NODES) {
    sl_free(n);
    return;
  }
  n->pool_next = p->nodes;
  p->nodes = n;
  p->nnodes++;
  p->bytes += sizeof *n;
}

struct sl_ag_meta *sl_ag_pool_meta(void) {
  sl_ag_pool *p = active();
  if (p && p->metas) {
    struct sl_ag_meta *m = p->metas;
    p->metas = m->pool_next;
    p->nmetas--;
    p->bytes -= sizeof *m;
    memset(m, 0, sizeof *m);
    return m;
  }
  return sl_calloc(1, sizeof(struct sl_ag_meta));
}

void sl_ag_pool_meta_put(struct sl_ag_meta *m) {
  sl_ag_pool *p = active();
  if (!p || p->nmetas >= 2 * SL_AG_POOL_MAX_NODES) {
    sl_free(m);
    return;
  }
  m->pool_next = p->metas;
  p->metas = m;
  p->nmetas++;
  p->bytes += sizeof *m;
}

void sl_ag_meta_reset(struct sl_ag_meta *m) {
  sl_tensor *g = m->grad;
  sl_ag_node *n = m->grad_fn;
  m->grad = NULL;
  m->grad_fn = NULL;
  m->requires_grad = m->retain_grad = false;
  sl_ag_release(g);
  sl_ag_node_release(n);
}

static bucket *find(sl_ag_pool *p, int64_t numel) {
  for (int k = 0; k < BUCKETS; k++)
    if (p->b[k].numel == numel && p->b[k].count > 0) return &p->b[k];
  return NULL;
}

sl_tensor *sl_ag_tensor_empty(int ndim, const int64_t *shape) {
  int64_t numel;
  if (sl_shape_check(ndim, shape, &numel)) return NULL;
  sl_ag_pool *p = active();
  bucket *b = p ? find(p, numel) : NULL;
  if (p && !b && p->reclaim && !p->reclaiming && p->since_reclaim >= SL_AG_POOL_RECLAIM_BYTES && current_ud) {
    p->since_reclaim = 0;
    p->reclaiming = true;
    p->reclaim(current_ud); /* garbage comes back through sl_ag_release */
    p->reclaiming = false;
    if (current == p && active() == p) b = find(p, numel);
  }
  if (p) p->since_reclaim += (size_t)numel * sizeof(float);
  if (b) {
    sl_tensor *t = b->head;
    struct sl_ag_meta *m = t->ag;
    b->head = m->pool_next;
    b->count--;
    m->pool_next = NULL;
    p->tensor_bytes -= m->pool_bytes;
    p->bytes -= m->pool_bytes;
    t->ndim = ndim;
    memset(t->shape, 0, sizeof t->shape);
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    return t;
  }
  size_t before = sl_alloc_bytes();
  sl_tensor *t = sl_tensor_empty(ndim, shape);
  if (!t) return NULL;
  size_t made = sl_alloc_bytes() - before;
  struct sl_ag_meta *m = sl_ag_meta_of(t);
  if (!m) {
    sl_tensor_release(t);
    return NULL;
  }
  m->pooled = true;
  m->pool_numel = numel;
  m->pool_data = t->data;
  m->pool_bytes = made + sizeof *m;
  m->pool = p;
  return t;
}

/* Caches t (the caller's last reference): false when there is no room. */
static bool tensor_put(sl_ag_pool *p, sl_tensor *t) {
  struct sl_ag_meta *m = t->ag;
  if (m->grad || m->grad_fn) sl_ag_meta_reset(m); /* may cache other tensors first */
  if (p->tensor_bytes + m->pool_bytes > SL_AG_POOL_MAX_BYTES) return false;
  bucket *b = NULL;
  for (int k = 0; k < BUCKETS && !b; k++)
    if (p->b[k].numel == t->numel && p->b[k].count > 0) b = &p->b[k];
  for (int k = 0; k < BUCKETS && !b; k++)
    if (p->b[k].count == 0) b = &p->b[k];
  if (!b || b->count >= BUCKET_MAX) return false;
  b->numel = t->numel;
  m->requires_grad = m->retain_grad = false;
  m->pool_next = b->head;
  b->head = t;
  b->count++;
  p->tensor_bytes += m->pool_bytes;
  p->bytes += m->pool_bytes;
  return true;
}

void sl_ag_release(sl_tensor *t) {
  if (!t) return;
  if (t->refcount == 1 && t->ag) {
    struct sl_ag_meta *m = t->ag;
    sl_ag_pool *p;
    if (m->pooled && (p = active()) && m->pool == p && t->numel == m->pool_numel && t->data == m->pool_data &&
        sl_tensor_storage_refcount(t) == 1 && tensor_put(p, t))
      return;
  }
  sl_tensor_release(t);
}
