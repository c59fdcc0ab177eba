/*
 * selut.sys: the few operating-system services scripts need and stock Lua
 * lacks — terminal detection (progress bars), recursive mkdir (run folders),
 * atomic file replacement (metrics logs), directory listing (checkpoint
 * clean-up), and the generator state (so a resumed run continues the same
 * random stream).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sl_lua.h"

static int sys_isatty(lua_State *L) {
  lua_Integer fd = luaL_optinteger(L, 1, 1);
  luaL_argcheck(L, fd >= 0 && fd <= 1024, 1, "file descriptor out of range");
  lua_pushboolean(L, isatty((int)fd));
  return 1;
}

/* mkdir -p: creates every missing component; an existing directory is fine. */
static int sys_mkdir(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, len > 0 && len < 4096, 1, "path must be 1 to 4095 bytes");
  char buf[4096];
  memcpy(buf, path, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    char saved = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
      return luaL_error(L, "mkdir: cannot create '%s': %s", buf, strerror(errno));
    buf[i] = saved;
  }
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
    return luaL_error(L, "mkdir: '%s' exists and is not a directory", path);
  lua_pushboolean(L, 1);
  return 1;
}

/* Writes data to path atomically: temp file in the same directory, fsync,
 * rename. A crash leaves either the old file or the complete new one. */
static int sys_write_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  char tmp[4200];
  if (snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path) >= (int)sizeof tmp)
    return luaL_argerror(L, 1, "path too long");
  int fd = mkstemp(tmp);
  if (fd < 0) return luaL_error(L, "write_file: cannot create a temporary file for '%s': %s", path, strerror(errno));
  size_t done = 0;
  int err = 0;
  while (done < n) {
    ssize_t w = write(fd, data + done, n - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += (size_t)w;
  }
  if (!err && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && !err) err = errno;
  if (!err) chmod(tmp, 0644); /* mkstemp creates 0600 */
  if (!err && rename(tmp, path) != 0) err = errno;
  if (err) {
    unlink(tmp);
    return luaL_error(L, "write_file: cannot write '%s': %s", path, strerror(err));
  }
  lua_pushboolean(L, 1);
  return 1;
}

#define SL_LUA_DIR "selut.dir"

/* The open directory lives in a box whose __gc closes it, so a memory error
 * raised while names are pushed (the state's cap) leaks nothing. */
static int dir_gc(lua_State *L) {
  DIR **d = luaL_checkudata(L, 1, SL_LUA_DIR);
  if (*d) closedir(*d);
  *d = NULL;
  return 0;
}

static int name_less(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The entry names of a directory (without "." and ".."), sorted bytewise so
 * the result does not depend on the file system's order. */
static int sys_listdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR **d = lua_newuserdatauv(L, sizeof *d, 0);
  *d = NULL;
  luaL_setmetatable(L, SL_LUA_DIR);
  if (!(*d = opendir(path))) return luaL_error(L, "listdir: cannot open '%s': %s", path, strerror(errno));
  lua_newtable(L);
  lua_Integer n = 0;
  for (struct dirent *e; (e = readdir(*d)) != NULL;) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  closedir(*d);
  *d = NULL;
  /* sort pointers to the table's strings (anchored there), then copy them out in order */
  const char **names = lua_newuserdatauv(L, (size_t)n * sizeof *names + 1, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, i);
    names[i - 1] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  qsort(names, (size_t)n, sizeof *names, name_less);
  lua_createtable(L, n < 1 << 20 ? (int)n : 0, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_pushstring(L, names[i - 1]);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

/* The generator state as an opaque 41-byte string (4 words, spare, flag). */
static int sys_get_rng_state(lua_State *L) {
  sl_lua_ctx *ctx = sl_lua_context(L);
  char buf[sizeof ctx->rng.s + sizeof ctx->rng.spare + 1];
  memcpy(buf, ctx->rng.s, sizeof ctx->rng.s);
  memcpy(buf + sizeof ctx->rng.s, &ctx->rng.spare, sizeof ctx->rng.spare);
  buf[sizeof buf - 1] = (char)ctx->rng.has_spare;
  lua_pushlstring(L, buf, sizeof buf);
  return 1;
}

static int sys_set_rng_state(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  sl_lua_ctx *ctx = sl_lua_context(L);
  size_t want = sizeof ctx->rng.s + sizeof ctx->rng.spare + 1;
  if (n != want) return luaL_argerror(L, 1, lua_pushfstring(L, "generator state of %d bytes, expected %d", (int)n, (int)want));
  memcpy(ctx->rng.s, s, sizeof ctx->rng.s);
  memcpy(&ctx->rng.spare, s + sizeof ctx->rng.s, sizeof ctx->rng.spare);
  ctx->rng.has_spare = s[want - 1] != 0;
  return 0;
}

static const luaL_Reg sys_funcs[] = {
    {"isatty", sys_isatty},
    {"mkdir", sys_mkdir},
    {"write_file", sys_write_file},
    {"listdir", sys_listdir},
    {"get_rng_state", sys_get_rng_state},
    {"set_rng_state", sys_set_rng_state},
    {NULL, NULL},
};

void sl_lua_open_sys(lua_State *L) {
  if (luaL_newmetatable(L, SL_LUA_DIR)) {
    lua_pushcfunction(L, dir_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  sl_lua_newlib(L, sys_funcs);
  lua_setfield(L, -2, "sys");
}
