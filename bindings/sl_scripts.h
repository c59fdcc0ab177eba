/* The Lua half of selut (the .lua files in scripts/), embedded at build time. */
#ifndef SL_SCRIPTS_H
#define SL_SCRIPTS_H
#include <stddef.h>

typedef struct sl_script {
  const char *module;    /* "selut.nn" for scripts/nn.lua */
  const char *chunkname; /* "@scripts/nn.lua" so tracebacks name the file */
  const char *source;
  size_t size;
} sl_script;

extern const sl_script sl_scripts[]; /* terminated by a NULL module */

#endif
