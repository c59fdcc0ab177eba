/*
 * PNG writing with libpng's simplified API (png.h section 5): failures come
 * back as a 0 return and image.message, so no setjmp/longjmp is involved.
 * Files are written atomically: mkstemp in the target's directory, fsync,
 * rename.
 */
#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensor/alloc.h"
#include "tensor/error.h"
#include "viz/viz.h"

/* Thread-safe strerror (the XSI strerror_r under _POSIX_C_SOURCE). */
static const char *errno_str(int e, char *buf, size_t n) {
  if (strerror_r(e, buf, n) != 0) snprintf(buf, n, "error %d", e);
  return buf;
}

/* "dir/.name.XXXXXX" for path "dir/name" (dir may be empty). */
static char *temp_template(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
  const char *base = path + dirlen;
  size_t n = strlen(path) + 1 + 8; /* "." + ".XXXXXX" + NUL */
  char *t = sl_malloc(n);
  if (!t) return NULL;
  memcpy(t, path, dirlen);
  snprintf(t + dirlen, n - dirlen, ".%s.XXXXXX", base);
  return t;
}

/* Best effort: make the rename itself durable. */
static void sync_parent_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == path) snprintf(dir, sizeof dir, "/");
  else if ((size_t)(slash - path) < sizeof dir) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  else return;
  int fd = open(dir, O_RDONLY);
  if (fd < 0) return;
  (void)fsync(fd);
  (void)close(fd);
}

int sl_canvas_write_png(const sl_canvas *c, const char *path) {
  char ebuf[128];
  if (!c || !c->rgb || !path) return sl_fail(SL_EINVAL, "png: NULL canvas or path");
  if (!*path || path[strlen(path) - 1] == '/')
    return sl_fail(SL_EIO, "png: '%s' is not a file name", path);
  char *tmp = temp_template(path);
  if (!tmp) return sl_last_status();
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int e = errno;
    sl_free(tmp);
    return sl_fail(SL_EIO, "png: cannot write '%s': %s", path, errno_str(e, ebuf, sizeof ebuf));
  }
  int status = SL_OK;
  (void)fchmod(fd, 0644); /* mkstemp creates 0600; a picture is for sharing */
  FILE *f = fdopen(fd, "wb");
  if (!f) {
    int e = errno;
    close(fd);
    status = sl_fail(SL_EIO, "png: cannot write '%s': %s", path, errno_str(e, ebuf, sizeof ebuf));
    goto fail;
  }
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = (png_uint_32)c->width;
  img.height = (png_uint_32)c->height;
  img.format = PNG_FORMAT_RGB;
  if (!png_image_write_to_stdio(&img, f, 0, c->rgb, 0, NULL)) {
    status = sl_fail(SL_EIO, "png: cannot write '%s': libpng: %s", path, img.message);
    png_image_free(&img);
    fclose(f);
    goto fail;
  }
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
    int e = errno;
    fclose(f);
    status = sl_fail(SL_EIO, "png: cannot write '%s': %s", path, errno_str(e, ebuf, sizeof ebuf));
    goto fail;
  }
  if (fclose(f) != 0) {
    int e = errno;
    status = sl_fail(SL_EIO, "png: cannot write '%s': %s", path, errno_str(e, ebuf, sizeof ebuf));
    goto fail;
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    status = sl_fail(SL_EIO, "png: cannot rename '%s' to '%s': %s", tmp, path,
                     errno_str(e, ebuf, sizeof ebuf));
    goto fail;
  }
  sync_parent_dir(path);
  sl_free(tmp);
  return SL_OK;
fail:
  (void)unlink(tmp);
  sl_free(tmp);
  return status;
}
