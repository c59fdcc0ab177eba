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
 * faults once per 2 MB instead of once per 4 KB (5-10x faster). Cached bytes
 * are charged to no account: an account's bytes and cap count live blocks
 * only. The cache is bounded (BIG_CACHE_BYTES, BIG_CACHE_SLOTS) and emptied
 * by sl_alloc_trim, when an account is freed (a Lua state closes) and when
 * the system refuses memory. */
#define _DEFAULT_SOURCE 1 /* MADV_HUGEPAGE (a Linux advice outside POSIX) */
#include "alloc.h"

#include <pthread.h>
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
};

typedef struct block_header {
  size_t size;             /* bytes requested (and charged) */
  size_t capacity;         /* bytes usable after the header (>= size; more for a reused big block) */
  sl_mem_account *account; /* NULL: the default account of the freeing thread */
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

/* ---- the big-block cache ---- */

#define BIG_MIN ((size_t)1 << 20)         /* blocks from this size on are cached */
#define HUGE_PAGE ((size_t)2 << 20)       /* alignment and advice unit of big blocks */
#define BIG_CACHE_BYTES ((size_t)256 << 20) /* total cached */
#define BIG_CACHE_SLOTS 8

typedef struct big_block {
  char *base;      /* the block, header included */
  size_t capacity; /* usable bytes after the header */
} big_block;

static pthread_mutex_t big_mu = PTHREAD_MUTEX_INITIALIZER;
static big_block big_cache[BIG_CACHE_SLOTS]; /* oldest first */
static int big_count;
static size_t big_bytes;

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
    p = big_cache[best].base;
    *capacity = big_cache[best].capacity;
    big_bytes -= *capacity;
    memmove(big_cache + best, big_cache + best + 1, (size_t)(big_count - best - 1) * sizeof *big_cache);
    big_count--;
  }
  pthread_mutex_unlock(&big_mu);
  if (p) UNPOISON(p + HEADER, *capacity);
  return p;
}

/* Keeps a freed big block, dropping the oldest ones to stay within bounds;
 * a block larger than the whole cache is released at once. */
static void big_put(char *base, size_t capacity) {
  char *drop[BIG_CACHE_SLOTS + 1];
  int ndrop = 0;
  if (capacity > BIG_CACHE_BYTES) {
    free(base);
    return;
  }
  POISON(base + HEADER, capacity); /* a use after free still fails under ASan */
  pthread_mutex_lock(&big_mu);
  while (big_count > 0 && (big_count == BIG_CACHE_SLOTS || big_bytes + capacity > BIG_CACHE_BYTES)) {
    drop[ndrop++] = big_cache[0].base;
    big_bytes -= big_cache[0].capacity;
    memmove(big_cache, big_cache + 1, (size_t)(big_count - 1) * sizeof *big_cache);
    big_count--;
  }
  big_cache[big_count++] = (big_block){base, capacity};
  big_bytes += capacity;
  pthread_mutex_unlock(&big_mu);
  for (int i = 0; i < ndrop; i++) free(drop[i]);
}

void sl_alloc_trim(void) {
  big_block all[BIG_CACHE_SLOTS];
  pthread_mutex_lock(&big_mu);
  int n = big_count;
  memcpy(all, big_cache, (size_t)n * sizeof *all);
  big_count = 0;
  big_bytes = 0;
  pthread_mutex_unlock(&big_mu);
  for (int i = 0; i < n; i++) free(all[i].base);
}

size_t sl_alloc_cached_bytes(void) {
  pthread_mutex_lock(&big_mu);
  size_t b = big_bytes;
  pthread_mutex_unlock(&big_mu);
  return b;
}

/* A new block of n usable bytes after the header. One of 4 MB and more
 * starts on a huge page and asks for huge pages (advice only: without it,
 * 4 KB pages); smaller ones would waste too much of the 2 MB alignment. */
static char *block_new(size_t n) {
  size_t align = n >= 2 * HUGE_PAGE ? HUGE_PAGE : HEADER;
  void *p = NULL;
  if (posix_memalign(&p, align, n + HEADER) != 0) p = NULL;
  if (!p && n >= BIG_MIN && sl_alloc_cached_bytes()) {
    sl_alloc_trim();
    if (posix_memalign(&p, align, n + HEADER) != 0) p = NULL;
  }
#ifdef MADV_HUGEPAGE
  if (p && align == HUGE_PAGE) (void)madvise(p, (n + HEADER) / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
#endif
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
  if (!p && !(p = block_new(n))) return sl_fail_null(SL_ENOMEM, "out of memory allocating %zu bytes", n);
  block_header h = {n, capacity, current};
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
  if (h.capacity >= BIG_MIN)
    big_put(base, h.capacity);
  else
    free(base);
  thread_bytes -= h.size;
  sl_mem_account *a = resolve(h.account);
  a->bytes -= h.size;
  a->blocks--;
  if (a->closed && a->blocks == 0) free(a); /* the account outlived its owner: last block gone */
}

int sl_mem_charge(size_t n, sl_mem_account **charged) {
  sl_mem_account *a = resolve(current);
  if (a->limit && (n > a->limit || a->bytes > a->limit - n))
    return sl_fail(SL_ELIMIT, "memory limit exceeded: %zu bytes requested, %zu of %zu bytes in use", n, a->bytes,
                   a->limit);
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
void sl_set_memory_limit(size_t bytes) { resolve(current)->limit = bytes; }
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
  a->closed = 1;
  if (a->blocks == 0) free(a);
  sl_alloc_trim(); /* a unit of work ended (a Lua state closed): its cached blocks go back */
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
void sl_mem_account_set_limit(sl_mem_account *a, size_t bytes) { resolve(a)->limit = bytes; }
