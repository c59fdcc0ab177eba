/* The two-core split (see parallel.h). One job at a time: its pieces are
 * claimed by this thread and one helper thread from a shared job word; a
 * caller finding the pool busy (another thread's job) runs serially. The
 * helper is the library's only global thread: started on first use, it
 * spins (sched_yield) for a while after a job, since during training the
 * next one follows within microseconds, then sleeps on a condition
 * variable. OpenBLAS runs single-threaded inside each piece when selut
 * splits the products itself (blas.c), so no other pool competes for the
 * second core. */
#include "parallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "blas.h"

#define PAR_MAX_CHUNKS 16
#define SPIN_ROUNDS 20000
#define PAR_MIN_DEFAULT ((size_t)65536)

/* job word: generation (24 bits) | pieces [lo, hi) not claimed yet (20 bits
 * each). The caller claims from the front (lo), the helper from the back
 * (hi): with both on time, each runs the same half of the pieces call after
 * call, so a result an op wrote is read by the next op on the core that has
 * it in its cache (a [1000 x 1000] add_row at 2 threads: 0.045-0.048 ms
 * with fixed halves against 0.053-0.055 with the pieces dealt alternately,
 * docs/performance.md "Sixth round"); a late helper still only takes what is
 * left. Who runs a piece never changes what it computes. */
#define JOB(gen, lo, hi) (((uint64_t)(gen) << 40) | ((uint64_t)(lo) << 20) | (uint64_t)(hi))
#define JOB_GEN(w) ((unsigned)((w) >> 40))
#define JOB_LO(w) ((unsigned)(((w) >> 20) & 0xfffff))
#define JOB_HI(w) ((unsigned)((w)&0xfffff))

static pthread_mutex_t par_busy = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static pthread_mutex_t par_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t par_cv = PTHREAD_COND_INITIALIZER;
static _Atomic uint64_t par_job;
static atomic_uint par_done; /* pieces finished in the current job */
static atomic_int par_sleeping;
/* written before the job word is published, stable until the job is done */
static sl_range_fn par_range;
static sl_task_fn par_task;
static const void *par_ctx;
static size_t par_n, par_chunk;
static int par_state; /* 0 not started, 1 running, -1 could not start (under par_busy) */
static _Atomic size_t par_min_v; /* 0: SELUT_SPLIT_MIN not read yet */

size_t sl_par_min(void) {
  size_t m = atomic_load_explicit(&par_min_v, memory_order_relaxed);
  if (m) return m;
  const char *e = getenv("SELUT_SPLIT_MIN");
  char *end = NULL;
  unsigned long long v = e ? strtoull(e, &end, 10) : 0;
  m = e && end != e ? (v >= 1024 ? (size_t)v : SIZE_MAX) : PAR_MIN_DEFAULT; /* 0: never split */
  atomic_store_explicit(&par_min_v, m, memory_order_relaxed);
  return m;
}

int sl_par_active(void) { return par_state >= 0 && sl_get_num_threads() >= 2; }

/* Claims the next piece of job `gen` from its front or its back; 0 when the
 * job is over or replaced. */
static int par_claim(unsigned gen, int back, unsigned *idx) {
  uint64_t w = atomic_load_explicit(&par_job, memory_order_acquire);
  for (;;) {
    unsigned lo = JOB_LO(w), hi = JOB_HI(w);
    if (JOB_GEN(w) != gen || lo >= hi) return 0;
    uint64_t next = back ? JOB(gen, lo, hi - 1) : JOB(gen, lo + 1, hi);
    if (atomic_compare_exchange_weak_explicit(&par_job, &w, next, memory_order_acq_rel, memory_order_acquire)) {
      *idx = back ? hi - 1 : lo;
      return 1;
    }
  }
}

static void par_run_pieces(unsigned gen, int back) {
  unsigned i;
  while (par_claim(gen, back, &i)) {
    if (par_range) {
      size_t b = (size_t)i * par_chunk, e = b + par_chunk < par_n ? b + par_chunk : par_n;
      par_range(par_ctx, b, e);
    } else {
      par_task(par_ctx, i);
    }
    atomic_fetch_add_explicit(&par_done, 1, memory_order_release);
  }
}

static void *par_worker(void *arg) {
  (void)arg;
  unsigned seen = 0;
  for (;;) {
    int spins = 0;
    while (JOB_GEN(atomic_load(&par_job)) == seen) {
      if (++spins < SPIN_ROUNDS) {
        sched_yield();
        continue;
      }
      pthread_mutex_lock(&par_mu);
      atomic_store(&par_sleeping, 1);
      while (JOB_GEN(atomic_load(&par_job)) == seen) pthread_cond_wait(&par_cv, &par_mu);
      atomic_store(&par_sleeping, 0);
      pthread_mutex_unlock(&par_mu);
    }
    seen = JOB_GEN(atomic_load(&par_job));
    par_run_pieces(seen, 1);
  }
  return NULL;
}

/* Takes the pool (starting the helper on first use); 0 when the caller
 * must run the job itself. */
static int par_acquire(void) {
  if (par_state < 0 || sl_get_num_threads() < 2 || pthread_mutex_trylock(&par_busy) != 0) return 0;
  if (par_state == 0) {
    pthread_t t;
    pthread_attr_t attr;
    int ok = pthread_attr_init(&attr) == 0;
    ok = ok && pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0;
    ok = ok && pthread_create(&t, &attr, par_worker, NULL) == 0;
    par_state = ok ? 1 : -1;
    if (!ok) {
      pthread_mutex_unlock(&par_busy);
      return 0;
    }
  }
  return 1;
}

static void par_run(unsigned nch) {
  atomic_store_explicit(&par_done, 0, memory_order_relaxed);
  unsigned gen = (JOB_GEN(atomic_load(&par_job)) + 1) & 0xffffff;
  atomic_store(&par_job, JOB(gen, 0, nch)); /* publishes the fields set by the caller */
  if (atomic_load(&par_sleeping)) {
    pthread_mutex_lock(&par_mu);
    pthread_cond_signal(&par_cv);
    pthread_mutex_unlock(&par_mu);
  }
  par_run_pieces(gen, 0);
  while (atomic_load_explicit(&par_done, memory_order_acquire) != nch) sched_yield(); /* a piece in the helper */
  pthread_mutex_unlock(&par_busy);
}

void sl_par_for(size_t n, sl_range_fn fn, const void *ctx) {
  if (n < sl_par_min() || !par_acquire()) {
    fn(ctx, 0, n);
    return;
  }
  size_t chunk = (n + PAR_MAX_CHUNKS - 1) / PAR_MAX_CHUNKS;
  if (chunk < SL_PAR_CHUNK_MIN) chunk = SL_PAR_CHUNK_MIN;
  chunk = (chunk + 15) & ~(size_t)15; /* piece borders on 64-byte boundaries */
  par_range = fn, par_task = NULL, par_ctx = ctx, par_n = n, par_chunk = chunk;
  par_run((unsigned)((n + chunk - 1) / chunk));
}

void sl_par_tasks(unsigned ntasks, sl_task_fn fn, const void *ctx) {
  if (ntasks <= 1 || ntasks > 64 || !par_acquire()) {
    for (unsigned i = 0; i < ntasks; i++) fn(ctx, i);
    return;
  }
  par_range = NULL, par_task = fn, par_ctx = ctx;
  par_run(ntasks);
}

typedef struct pieces_job {
  sl_range_fn fn;
  const void *ctx;
  size_t n;
  unsigned parts;
} pieces_job;

static void pieces_task(const void *vj, unsigned i) {
  const pieces_job *j = vj;
  size_t b = j->n * i / j->parts, e = j->n * (i + 1) / j->parts;
  if (b < e) j->fn(j->ctx, b, e);
}

void sl_par_pieces(size_t n, size_t work, sl_range_fn fn, const void *ctx) {
  if (n < 2 || work < sl_par_min() || sl_get_num_threads() < 2) {
    if (n) fn(ctx, 0, n);
    return;
  }
  pieces_job j = {fn, ctx, n, n < PAR_MAX_CHUNKS ? (unsigned)n : PAR_MAX_CHUNKS};
  sl_par_tasks(j.parts, pieces_task, &j);
}

