/*
 * The core's one allocation wrapper. Counting allocations lets tests assert
 * "no heap allocation per training step"; the optional byte limit lets an
 * embedder cap tensor memory per thread (one Lua state per thread).
 */
#ifndef SL_ALLOC_H
#define SL_ALLOC_H
#include <stddef.h>
#include <stdint.h>

/* malloc/calloc/free with accounting. Failure sets sl_last_error (SL_ENOMEM or
 * SL_ELIMIT) and returns NULL. Sizes are checked for overflow. 64-byte aligned. */
void *sl_malloc(size_t n);
void *sl_calloc(size_t count, size_t size);
void sl_free(void *p);

/* Number of successful sl_malloc/sl_calloc calls on this thread so far. */
uint64_t sl_alloc_count(void);
/* Bytes currently allocated through sl_malloc on this thread. */
size_t sl_alloc_bytes(void);
/* Caps sl_alloc_bytes on this thread (0 = no limit). */
void sl_set_memory_limit(size_t bytes);
size_t sl_memory_limit(void);

#endif
