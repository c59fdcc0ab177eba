/*
 * selut error model: every core function returns a status (SL_OK == 0,
 * negative codes on failure) or NULL, and records a human-readable message in
 * a thread-local buffer read with sl_last_error(). The core never prints,
 * exits or aborts.
 */
#ifndef SL_ERROR_H
#define SL_ERROR_H

enum {
  SL_OK = 0,
  SL_EINVAL = -1,  /* bad argument value */
  SL_ESHAPE = -2,  /* shapes do not fit together */
  SL_ENOMEM = -3,  /* allocation failed or size overflow */
  SL_EIO = -4,     /* file could not be read or written */
  SL_EFORMAT = -5, /* file contents are malformed */
  SL_ERANGE = -6,  /* index or value out of range */
  SL_ELIMIT = -7   /* a configured memory limit would be exceeded */
};

/* Message of the most recent failure on this thread ("" if none). */
const char *sl_last_error(void);
/* Status code of the most recent failure on this thread (SL_OK if none). */
int sl_last_status(void);
/* Records a printf-style message and returns code (so `return sl_fail(...)`). */
int sl_fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Like sl_fail but returns NULL, for constructors. */
void *sl_fail_null(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Forgets the last error. */
void sl_clear_error(void);

#endif
