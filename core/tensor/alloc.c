/* Accounting allocator: every tensor byte goes through here, so tests can
 * count allocations per step and embedders can cap memory. Each block carries
 * a 64-byte header holding its size, which also keeps data 64-byte aligned
 * for vector loads. */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

#define HEADER 64

static _Thread_local uint64_t alloc_count;

/* Total RAM: requests beyond it fail at once instead of after overcommit. */
static size_t physical_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || size <= 0) return SIZE_MAX;
  return (size_t)pages * (size_t)size;
}
static _Thread_local size_t alloc_bytes;
static _Thread_local size_t memory_limit;

void *sl_malloc(size_t n) {
  if (n > SIZE_MAX - HEADER)
    return sl_fail_null(SL_ENOMEM, "allocation of %zu bytes overflows size_t", n);
  if (memory_limit && (n > memory_limit || alloc_bytes > memory_limit - n))
    return sl_fail_null(SL_ELIMIT,
                        "memory limit exceeded: %zu bytes requested, %zu of %zu bytes in use",
                        n, alloc_bytes, memory_limit);
  if (n > ((size_t)1 << 30) && n > physical_memory())
    return sl_fail_null(SL_ENOMEM, "out of memory: %zu bytes requested, more than this machine's %zu bytes of RAM",
                        n, physical_memory());
  void *p = NULL;
  if (posix_memalign(&p, HEADER, n + HEADER) != 0 || !p)
    return sl_fail_null(SL_ENOMEM, "out of memory allocating %zu bytes", n);
  memcpy(p, &n, sizeof n);
  alloc_count++;
  alloc_bytes += n;
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
  size_t n;
  memcpy(&n, base, sizeof n);
  alloc_bytes -= n;
  free(base);
}

uint64_t sl_alloc_count(void) { return alloc_count; }
size_t sl_alloc_bytes(void) { return alloc_bytes; }
void sl_set_memory_limit(size_t bytes) { memory_limit = bytes; }
size_t sl_memory_limit(void) { return memory_limit; }
