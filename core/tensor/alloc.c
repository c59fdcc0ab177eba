/* Accounting allocator: every tensor byte goes through here, so tests can
 * count allocations per step and embedders can cap memory per account. Each
 * block carries a 64-byte header holding its size and its account (NULL for
 * the allocating thread's default account), which also keeps data 64-byte
 * aligned for vector loads.
 *
 * Big blocks (>= 1 MB) are kept in a small process-wide cache when freed and
 * handed out again for a request of the same or a slightly smaller size.
 * glibc maps blocks above 32 MB afresh on every malloc, and a fresh 40 MB
 * result costs 150-250 ms of page faults on a VM (50-100x the kernel that
 * fills it); a cached block's pages are already there. New big blocks are
 * 2 MB aligned and advised as huge pages, so the first touch of a block
 * faults once per 2 MB instead of once per 4 KB (5-10x faster). A block
 * freed by an explicit account stays counted against that account's cap
 * while cached (its `cached` bytes): the account's live bytes plus its
 * cached bytes never exceed its cap, the account's own cached blocks being
 * released first when a request needs the room, and a block it frees
 * without room under the cap goes back to the system. Blocks of a thread's
 * default account are cached uncounted, unless that account has a cap: then
 * they are not cached. The cache is bounded (BIG_CACHE_BYTES,
 * BIG_CACHE_SLOTS) and emptied by sl_alloc_trim, when an account is freed
 * (a Lua state closes) and when the system refuses memory. */
#define _DEFAULT_SOURCE 1 /* MADV_HUGEPAGE (a Linux advice outside POSIX) */
#include "alloc.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#include "error.h"

#define HEADER 64

struct sl_mem_account {
  size_t bytes;    /* charged and not yet freed */
  size_t limit;    /* 0 = none */
  uint64_t blocks; /* live blocks charged here */
  int closed;      /* sl_mem_account_free was called: freed with its last block */
  size_t cached;   /* capacity of the big blocks it freed that the cache keeps (under big_mu) */
};

typedef struct block_header {
  size_t size;             /* bytes requested (and charged) */
  size_t capacity;         /* bytes usable after the header (>= size; more for a reused big block) */
  sl_mem_account *account; /* NULL: the default account of the freeing thread */
  void *raw;               /* what the system allocator returned: the block starts up to 63 bytes in */
} block_header;
_Static_assert(sizeof(block_header) <= HEADER, "block header fits in front of the data");

static _Thread_local uint64_t alloc_count;
static _Thread_local size_t thread_bytes;
static _Thread_local sl_mem_account default_account;
static _Thread_local sl_mem_account *current; /* NULL = default_account */

/* Total RAM: requests beyond it fail at once instead of after overcommit. */
static size_t physical_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || size <= 0) return SIZE_MAX;
  return (size_t)pages * (size_t)size;
}

static sl_mem_account *resolve(const sl_mem_account *a) {
  return a ? (sl_mem_account *)a : &default_account;
}

/* Gives a block (header included) back to the system. */
static void block_release(char *base) {
  block_header h;
  memcpy(&h, base, sizeof h);
  free(h.raw);
}

/* ---- the big-block cache ---- */

#define BIG_MIN ((size_t)1 << 20)         /* blocks from this size on are cached */
#define HUGE_PAGE ((size_t)2 << 20)       /* alignment and advice unit of big blocks */
#define BIG_CACHE_BYTES ((size_t)256 << 20) /* total cached */
/* Lua frees the results a loop dropped in batches, at each collection (10-20
 * blocks for [1000 x 1000] results in bench/ops_vs_torch): with 8 slots the
 * surplus went back to the system, and 4 of every 13 fresh results faulted
 * in a new block (6-25 ms each, against 0.2 ms for the op). */
#define BIG_CACHE_SLOTS 32

typedef struct big_block {
  char *base;            /* the block, header included */
  size_t capacity;       /* usable bytes after the header */
  sl_mem_account *owner; /* the account whose cap counts it (its `cached`), or NULL */
} big_block;

static pthread_mutex_t big_mu = PTHREAD_MUTEX_INITIALIZER;
static big_block big_cache[BIG_CACHE_SLOTS]; /* oldest first */
static int big_count;
static size_t big_bytes;

/* Removes cache slot i (under big_mu), returning its block. */
static char *big_remove(int i) {
  char *base = big_cache[i].base;
  big_bytes -= big_cache[i].capacity;
  if (big_cache[i].owner) big_cache[i].owner->cached -= big_cache[i].capacity;
  memmove(big_cache + i, big_cache + i + 1, (size_t)(big_count - i - 1) * sizeof *big_cache);
  big_count--;
  return base;
}

/* A cached block of at least n bytes wasting at most an eighth of itself
 * (the smallest such, so a big block is not spent on a smaller request), or
 * NULL. */
static char *big_take(size_t n, size_t *capacity) {
  char *p = NULL;
  pthread_mutex_lock(&big_mu);
  int best = -1;
  for (int i = 0; i < big_count; i++) {
    size_t c = big_cache[i].capacity;
    if (c >= n && c - n <= c / 8 && (best < 0 || c < big_cache[best].capacity)) best = i;
  }
  if (best >= 0) {
    *capacity = big_cache[best].capacity;
    p = big_remove(best);
  }
  pthread_mutex_unlock(&big_mu);
  if (p) UNPOISON(p + HEADER, *capacity);
  return p;
}

/* Keeps a freed big block, dropping the oldest ones to stay within bounds;
 * a block larger than the whole cache, or one its capped owner has no room
 * for (live bytes + cached bytes + this block over the cap), is released at
 * once. */
static void big_put(char *base, size_t capacity, sl_mem_account *owner) {
  char *drop[BIG_CACHE_SLOTS + 1];
  int ndrop = 0;
  pthread_mutex_lock(&big_mu);
  if (capacity > BIG_CACHE_BYTES ||
      (owner && owner->limit && (owner->bytes > owner->limit || owner->cached > owner->limit - owner->bytes ||
                                 capacity > owner->limit - owner->bytes - owner->cached))) {
    pthread_mutex_unlock(&big_mu);
    block_release(base);
    return;
  }
  POISON(base + HEADER, capacity); /* a use after free still fails under ASan */
  while (big_count > 0 && (big_count == BIG_CACHE_SLOTS || big_bytes + capacity > BIG_CACHE_BYTES))
    drop[ndrop++] = big_remove(0);
  big_cache[big_count++] = (big_block){base, capacity, owner};
  big_bytes += capacity;
  if (owner) owner->cached += capacity;
  pthread_mutex_unlock(&big_mu);
  for (int i = 0; i < ndrop; i++) block_release(drop[i]);
}

/* Releases a's cached blocks, oldest first, until its live bytes plus `more`
 * plus its cached bytes fit under its cap (all of them if they cannot). */
static void big_shed(sl_mem_account *a, size_t more) {
  char *drop[BIG_CACHE_SLOTS];
  int ndrop = 0;
  pthread_mutex_lock(&big_mu);
  for (int i = 0; i < big_count && a->limit && a->cached;) {
    size_t used = a->bytes + more;
    if (used <= a->limit && a->cached <= a->limit - used) break;
    if (big_cache[i].owner == a)
      drop[ndrop++] = big_remove(i);
    else
      i++;
  }
  pthread_mutex_unlock(&big_mu);
  for (int i = 0; i < ndrop; i++) block_release(drop[i]);
}

void sl_alloc_trim(void) {
  big_block all[BIG_CACHE_SLOTS];
  pthread_mutex_lock(&big_mu);
  int n = big_count;
  memcpy(all, big_cache, (size_t)n * sizeof *all);
  for (int i = 0; i < n; i++)
    if (all[i].owner) all[i].owner->cached -= all[i].capacity;
  big_count = 0;
  big_bytes = 0;
  pthread_mutex_unlock(&big_mu);
  for (int i = 0; i < n; i++) block_release(all[i].base);
}

size_t sl_alloc_cached_bytes(void) {
  pthread_mutex_lock(&big_mu);
  size_t b = big_bytes;
  pthread_mutex_unlock(&big_mu);
  return b;
}

/* A new block of n usable bytes after the header, its header's raw set. One
 * of 4 MB and more starts on a huge page and asks for huge pages (advice
 * only: without it, 4 KB pages); smaller ones would waste too much of the
 * 2 MB alignment. The others come from plain malloc, 64-byte aligned by
 * hand: glibc's posix_memalign carves its slack off into small free chunks
 * beside the block, which small objects then take, and the freed block is
 * then too small for the next request of the same size (it needs the slack
 * again). A loop freeing each result before making the next (Lua's young
 * collections) grew the heap by one block in three that way: 4000 [128 x
 * 784] results left 522 MB resident (tests/lua/memory.lua). A malloc'd
 * block is freed whole and fits the next request of its size exactly. */
static char *block_alloc(size_t n) {
  void *raw = NULL;
  char *p = NULL;
  if (n >= 2 * HUGE_PAGE) {
    if (posix_memalign(&raw, HUGE_PAGE, n + HEADER) != 0) return NULL;
    p = raw;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, (n + HEADER) / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
#endif
  } else {
    if (n > SIZE_MAX - 2 * HEADER || !(raw = malloc(n + 2 * HEADER))) return NULL;
    p = (char *)(((uintptr_t)raw + HEADER - 1) & ~(uintptr_t)(HEADER - 1));
  }
  memcpy(p + offsetof(block_header, raw), &raw, sizeof raw);
  return p;
}

/* block_alloc, after giving the cache's blocks back if the system refuses. */
static char *block_new(size_t n) {
  char *p = block_alloc(n);
  if (!p && n >= BIG_MIN && sl_alloc_cached_bytes()) {
    sl_alloc_trim();
    p = block_alloc(n);
  }
  return p;
}

void *sl_malloc(size_t n) {
  sl_mem_account *a = resolve(current);
  if (n > SIZE_MAX - HEADER)
    return sl_fail_null(SL_ENOMEM, "allocation of %zu bytes overflows size_t", n);
  if (a->limit && (n > a->limit || a->bytes > a->limit - n))
    return sl_fail_null(SL_ELIMIT,
                        "memory limit exceeded: %zu bytes requested, %zu of %zu bytes in use",
                        n, a->bytes, a->limit);
  if (n > ((size_t)1 << 30) && n > physical_memory())
    return sl_fail_null(SL_ENOMEM, "out of memory: %zu bytes requested, more than this machine's %zu bytes of RAM",
                        n, physical_memory());
  size_t capacity = n;
  char *p = n >= BIG_MIN ? big_take(n, &capacity) : NULL;
  if (a->limit) big_shed(a, n); /* its cached blocks give way to the request */
  if (!p && !(p = block_new(n))) return sl_fail_null(SL_ENOMEM, "out of memory allocating %zu bytes", n);
  block_header h;
  memcpy(&h, p, sizeof h); /* a new or cached block: its raw is set */
  h.size = n;
  h.capacity = capacity;
  h.account = current;
  memcpy(p, &h, sizeof h);
  alloc_count++;
  thread_bytes += n;
  a->bytes += n;
  a->blocks++;
  return (char *)p + HEADER;
}

void *sl_calloc(size_t count, size_t size) {
  if (size && count > SIZE_MAX / size)
    return sl_fail_null(SL_ENOMEM, "allocation of %zu x %zu bytes overflows size_t", count, size);
  void *p = sl_malloc(count * size);
  if (p) memset(p, 0, count * size);
  return p;
}

void sl_free(void *p) {
  if (!p) return;
  char *base = (char *)p - HEADER;
  block_header h;
  memcpy(&h, base, sizeof h);
  thread_bytes -= h.size;
  sl_mem_account *a = resolve(h.account);
  a->bytes -= h.size;
  a->blocks--;
  if (h.capacity < BIG_MIN || (!h.account && a->limit)) /* a capped default account: not cached */
    block_release(base);
  else if (!h.account) /* a thread's default account (thread-local): counted by none */
    big_put(base, h.capacity, NULL);
  else /* a closed account's record goes with its last block: nothing may point to it */
    big_put(base, h.capacity, a->closed ? NULL : a);
  if (a->closed && a->blocks == 0) free(a); /* the account outlived its owner: last block gone */
}

int sl_mem_charge(size_t n, sl_mem_account **charged) {
  sl_mem_account *a = resolve(current);
  if (a->limit && (n > a->limit || a->bytes > a->limit - n))
    return sl_fail(SL_ELIMIT, "memory limit exceeded: %zu bytes requested, %zu of %zu bytes in use", n, a->bytes,
                   a->limit);
  if (a->limit) big_shed(a, n);
  a->bytes += n;
  a->blocks++; /* like a block: the account record stays until the credit */
  *charged = current;
  return SL_OK;
}

void sl_mem_credit(sl_mem_account *charged, size_t n) {
  sl_mem_account *a = resolve(charged);
  a->bytes -= n;
  a->blocks--;
  if (a->closed && a->blocks == 0) free(a);
}

uint64_t sl_alloc_count(void) { return alloc_count; }
size_t sl_alloc_bytes(void) { return resolve(current)->bytes; }
void sl_set_memory_limit(size_t bytes) { sl_mem_account_set_limit(current, bytes); }
size_t sl_memory_limit(void) { return resolve(current)->limit; }
size_t sl_alloc_thread_bytes(void) { return thread_bytes; }

/* ---- accounts ---- */

sl_mem_account *sl_mem_account_new(void) {
  sl_mem_account *a = calloc(1, sizeof *a);
  if (!a) return sl_fail_null(SL_ENOMEM, "out of memory allocating a memory account");
  return a;
}

void sl_mem_account_free(sl_mem_account *a) {
  if (!a) return;
  if (current == a) current = NULL;
  sl_alloc_trim(); /* a unit of work ended (a Lua state closed): its cached blocks go back */
  a->closed = 1;
  if (a->blocks == 0) free(a);
}

sl_mem_account *sl_mem_account_use(sl_mem_account *a) {
  sl_mem_account *prev = current;
  current = a;
  return prev;
}

sl_mem_account *sl_mem_account_current(void) { return current; }
size_t sl_mem_account_bytes(const sl_mem_account *a) { return resolve(a)->bytes; }
uint64_t sl_mem_account_blocks(const sl_mem_account *a) { return resolve(a)->blocks; }
size_t sl_mem_account_limit(const sl_mem_account *a) { return resolve(a)->limit; }
void sl_mem_account_set_limit(sl_mem_account *a, size_t bytes) {
  resolve(a)->limit = bytes;
  if (a && bytes) big_shed(a, 0); /* its cached blocks fit under the new cap */
}

size_t sl_mem_account_cached(const sl_mem_account *a) {
  if (!a) return 0;
  pthread_mutex_lock(&big_mu);
  size_t c = a->cached;
  pthread_mutex_unlock(&big_mu);
  return c;
}
