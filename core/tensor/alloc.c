/* Accounting allocator: every tensor byte goes through here, so tests can
 * count allocations per step and embedders can cap memory per account. Each
 * block carries a 64-byte header holding its size and its account (NULL for
 * the allocating thread's default account), which also keeps data 64-byte
 * aligned for vector loads. */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

#define HEADER 64

struct sl_mem_account {
  size_t bytes;    /* charged and not yet freed */
  size_t limit;    /* 0 = none */
  uint64_t blocks; /* live blocks charged here */
  int closed;      /* sl_mem_account_free was called: freed with its last block */
};

typedef struct block_header {
  size_t size;
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
  void *p = NULL;
  if (posix_memalign(&p, HEADER, n + HEADER) != 0 || !p)
    return sl_fail_null(SL_ENOMEM, "out of memory allocating %zu bytes", n);
  block_header h = {n, current};
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
