/* Thread-local last-error message: the core's only error channel. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Room for two paths and an MPI error string (MPI_MAX_ERROR_STRING is 256
 * in Open MPI and MPICH); a longer message ends in "..." to show the cut. */
static _Thread_local char last_message[2048];
static _Thread_local int last_status;

const char *sl_last_error(void) { return last_message; }

int sl_last_status(void) { return last_status; }

static void record(int code, const char *fmt, va_list ap) {
  last_status = code;
  int n = vsnprintf(last_message, sizeof last_message, fmt, ap);
  if (n >= (int)sizeof last_message) memcpy(last_message + sizeof last_message - 4, "...", 4);
}

int sl_fail(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  record(code, fmt, ap);
  va_end(ap);
  return code;
}

void *sl_fail_null(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  record(code, fmt, ap);
  va_end(ap);
  return NULL;
}

void sl_clear_error(void) {
  last_status = SL_OK;
  last_message[0] = '\0';
}
