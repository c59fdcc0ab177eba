/*
 * The core's one allocation wrapper. Counting allocations lets tests assert
 * "no heap allocation per training step"; memory accounts let an embedder cap
 * the tensor memory of each Lua state (or of any unit of work it chooses).
 *
 * Every block is charged to the thread's *current account*; the block
 * remembers its account, so freeing it credits that account whatever account
 * is current then (a tensor collected while another state runs is credited
 * to the state that made it). With no account made current, a thread uses
 * its own default account: pure C users see one counter and one limit per
 * thread, as before accounts existed.
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

/* Number of successful sl_malloc/sl_calloc calls on this thread so far,
 * whatever the account. */
uint64_t sl_alloc_count(void);
/* Bytes currently charged to the current account (the thread's default one
 * when none is current). */
size_t sl_alloc_bytes(void);
/* Caps the current account's bytes (0 = no limit). */
void sl_set_memory_limit(size_t bytes);
size_t sl_memory_limit(void);
/* Bytes allocated on this thread and not yet freed on it, whatever the
 * account (a block freed on another thread is subtracted there): for tests
 * that check everything made on a thread was given back. */
size_t sl_alloc_thread_bytes(void);

/* Freed blocks of 1 MB and more are kept (at most 256 MB in 32 blocks,
 * process-wide) and reused for requests of the same or a slightly smaller
 * size, whatever the account, so a loop making big results does not fault
 * their pages in again every time. A block freed by an explicit account
 * (sl_mem_account_new) counts against that account's cap while it is
 * cached: live bytes + cached bytes stay within the cap (its cached blocks
 * are released when a request, a charge or a lower cap needs the room, and
 * a block it frees without room is not cached). Blocks of a thread's
 * default account count against none, and are not cached while that
 * account has a cap. sl_alloc_trim returns them all to the system (also
 * done by sl_mem_account_free and when memory runs out);
 * sl_alloc_cached_bytes says how many bytes are kept. Thread-safe. */
void sl_alloc_trim(void);
size_t sl_alloc_cached_bytes(void);

/* ---- memory accounts ---- */

/* A byte counter with an optional cap. It is not thread-safe: one thread at
 * a time charges it (as one thread at a time runs a lua_State). */
typedef struct sl_mem_account sl_mem_account;

/* A new account: no bytes, no limit. Its own record comes from plain malloc
 * (never charged). NULL with SL_ENOMEM on failure. */
sl_mem_account *sl_mem_account_new(void);
/* Closes a (NULL: no-op). The record is freed at once when no block charged
 * to it is alive, else when the last such block is freed, so blocks may
 * outlive their account's owner (a host holding a tensor of a closed Lua
 * state). If a is current on this thread, the thread's default account
 * becomes current. a must not be current on another thread. */
void sl_mem_account_free(sl_mem_account *a);
/* Makes a the current account of this thread (NULL: the thread's default)
 * and returns the previous one (NULL for the default), to be restored with
 * another sl_mem_account_use. */
sl_mem_account *sl_mem_account_use(sl_mem_account *a);
/* The current account of this thread (NULL when it is the default). */
sl_mem_account *sl_mem_account_current(void);
/* Bytes of big blocks a freed that the cache keeps, counted against its
 * cap (0 for NULL, the default account). */
size_t sl_mem_account_cached(const sl_mem_account *a);
/* Bytes and live blocks charged to a (NULL: this thread's default account). */
size_t sl_mem_account_bytes(const sl_mem_account *a);
uint64_t sl_mem_account_blocks(const sl_mem_account *a);
/* The cap of a (NULL: this thread's default account); 0 = none. A request
 * that would take a's bytes over the cap fails with SL_ELIMIT. Lowering the
 * cap below the bytes in use frees nothing: later requests fail until enough
 * is freed. */
size_t sl_mem_account_limit(const sl_mem_account *a);
void sl_mem_account_set_limit(sl_mem_account *a, size_t bytes);
/* Memory the core did not allocate (a shared mapping) charged to the
 * current account as one live block of n bytes, under its cap (SL_ELIMIT);
 * *charged says which account (NULL: the thread's default) to give it back
 * to with sl_mem_credit once it is unmapped. */
int sl_mem_charge(size_t n, sl_mem_account **charged);
void sl_mem_credit(sl_mem_account *charged, size_t n);

#endif
