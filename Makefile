# selut — one Makefile, plain GNU make + pkg-config.
#   make            build/libselut.a, build/libselut.so, build/selut.so, build/selut
#   make test       C (Criterion) + Lua suites        make test SAN=1  same under ASan+UBSan
#   make bench      benchmarks                         make deps        install Debian packages
#   make examples   C examples                         make clean
SHELL := /bin/bash
# ---- ARCH=aarch64 / CROSS= cross build: everything lives in mk/cross.mk ----
include mk/cross.mk
PKG_CONFIG ?= pkg-config
CC ?= cc
SAN ?=
BUILD ?= build$(if $(filter thread,$(SAN)),-tsan,$(if $(SAN),-san))
PREFIX ?= /usr/local

DEB_PACKAGES := build-essential pkg-config liblua5.4-dev lua5.4 libopenblas-dev libpng-dev zlib1g-dev \
                protobuf-c-compiler libprotobuf-c-dev python3-onnx \
                libcriterion-dev libreadline-dev dataset-fashion-mnist tmux \
                libopenmpi-dev openmpi-bin iproute2
PKGS := lua5.4 openblas libpng zlib libprotobuf-c

CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -Wall -Wextra -Werror -Wshadow -Wdouble-promotion -Wmissing-prototypes \
          -Wstrict-prototypes -Wwrite-strings -fPIC -fno-strict-aliasing
CPPFLAGS += -D_POSIX_C_SOURCE=200809L -MMD -MP -Icore -Ibindings
ifneq ($(MAKECMDGOALS),deps)
ifneq ($(MAKECMDGOALS),clean)
  MISSING := $(shell for p in $(PKGS) $(if $(filter rock install-rock,$(MAKECMDGOALS)),,criterion); do $(PKG_CONFIG) --exists $$p || echo $$p; done)
  ifneq ($(strip $(MISSING)),)
    $(error missing pkg-config packages: $(MISSING) -- run 'make deps' (or: apt-get install $(DEB_PACKAGES)))
  endif
  CPPFLAGS += $(shell $(PKG_CONFIG) --cflags $(PKGS))
  LIBS := $(shell $(PKG_CONFIG) --libs openblas libpng zlib libprotobuf-c) -lm -lpthread
  LUA_LIBS := $(shell $(PKG_CONFIG) --libs lua5.4)
  TEST_CFLAGS := $(shell $(PKG_CONFIG) --cflags criterion)
  TEST_LIBS := $(shell $(PKG_CONFIG) --libs criterion)
endif
endif

# MPI (docs/distributed.md): MPI=1 requires Open MPI, MPI=0 disables it, default:
# on when pkg-config finds ompi-c. Only $(BUILD)/selut_mpi.so (bindings/mpi/) sees
# mpi.h and links -lmpi; lua_dist.c dlopens it on selut.dist.init(), so nothing
# else loads Open MPI at start-up. A stamp rebuilds lua_dist.o when MPI changes.
ifeq ($(origin MPI),undefined)
  MPI := $(shell $(PKG_CONFIG) --exists ompi-c 2>/dev/null && echo 1 || echo 0)
endif
ifeq ($(MPI),1)
  ifeq ($(filter deps clean,$(MAKECMDGOALS)),)
    ifneq ($(shell $(PKG_CONFIG) --exists ompi-c && echo y),y)
      $(error MPI=1 but pkg-config cannot find ompi-c -- apt-get install libopenmpi-dev openmpi-bin)
    endif
  endif
  MPI_CPPFLAGS := -DSELUT_MPI $(shell $(PKG_CONFIG) --cflags ompi-c)
  MPI_CPPFLAGS += -DSL_MPI_GLUE_INSTALLED='"$(PREFIX)/lib/selut/selut_mpi.so"'
  MPI_LIBS := $(shell $(PKG_CONFIG) --libs ompi-c)
  MPI_GLUE := $(BUILD)/selut_mpi.so
endif

ifeq ($(SAN),thread)
  # ThreadSanitizer (make SAN=thread, into build-tsan/): for the thread pool's
  # races; OpenBLAS is not instrumented, so its own threads are not checked.
  # Target clones are off: their ifunc resolvers run before TSan's runtime.
  SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
  CFLAGS += $(SANFLAGS) -DSL_NO_CLONES
  LDFLAGS += $(SANFLAGS)
else ifneq ($(SAN),)
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  CFLAGS += $(SANFLAGS)
  LDFLAGS += $(SANFLAGS)
endif

CORE_SRC := $(sort $(wildcard core/*/*.c core/*.c))
BIND_SRC := $(filter-out bindings/selut_main.c,$(sort $(wildcard bindings/*.c)))
SCRIPTS := $(sort $(wildcard scripts/*.lua))
TEST_SRC := $(sort $(wildcard tests/c/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/onnx.pb-c.o
BIND_OBJ := $(BIND_SRC:%.c=$(BUILD)/%.o) $(BUILD)/sl_scripts.o
LIB_OBJ := $(CORE_OBJ) $(BIND_OBJ)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

SOVERSION := 0
LIBA := $(BUILD)/libselut.a
LIBSO := $(BUILD)/libselut.so
LUAMOD := $(BUILD)/selut.so
LAUNCHER := $(BUILD)/selut
TESTBIN := $(BUILD)/test_selut

.PHONY: all test test-c test-lua bench examples clean deps install uninstall
all: $(LIBA) $(LIBSO) $(LUAMOD) $(LAUNCHER)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
# Vectorized kernels (docs/performance.md): -O3 lets GCC vectorize them,
# -fno-math-errno turns sqrtf into one instruction and -fno-trapping-math lets
# the AVX2/SSE2 clones vectorize the selects; none changes a result bit.
$(BUILD)/core/tensor/vmath.o: CFLAGS += -O3 -fno-math-errno -fno-trapping-math
# ONNX's schema (third_party/onnx/onnx.proto, Apache-2.0) compiled by protoc-c;
# only core/io/onnx.c sees the generated header.
$(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h: third_party/onnx/onnx.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Ithird_party/onnx third_party/onnx/onnx.proto
$(BUILD)/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c
	$(CC) $(CPPFLAGS) -DNDEBUG -I$(BUILD)/gen $(filter-out -Wmissing-prototypes -Wshadow,$(CFLAGS)) -c $< -o $@
$(BUILD)/core/io/onnx.o: CPPFLAGS += -I$(BUILD)/gen
$(BUILD)/core/io/onnx.o: $(BUILD)/gen/onnx.pb-c.h
$(BUILD)/core/tensor/elementwise.o $(BUILD)/core/tensor/reduce.o $(BUILD)/core/nn/pool.o $(BUILD)/core/nn/conv.o $(BUILD)/core/nn/conv_unfold.o: CFLAGS += -O3 -fno-math-errno -fno-trapping-math
# selut.dist: SELUT_MPI (and MPI's headers, which only bindings/mpi/ includes)
# for lua_dist*.c and core/dist/comm.c (the glue's loader); rebuilt when MPI= changes
DIST_OBJ := $(filter $(BUILD)/bindings/lua_dist%.o,$(BIND_OBJ)) $(BUILD)/core/dist/comm.o
$(DIST_OBJ): CPPFLAGS += $(MPI_CPPFLAGS)
$(DIST_OBJ): $(BUILD)/.mpi-$(MPI)
$(BUILD)/.mpi-$(MPI):
	@mkdir -p $(dir $@) && rm -f $(BUILD)/.mpi-* && touch $@
all test: $(MPI_GLUE)
$(BUILD)/selut_mpi.so: bindings/mpi/selut_mpi.c core/dist/mpi_api.h
	$(CC) $(CPPFLAGS) $(MPI_CPPFLAGS) $(CFLAGS) -shared $(LDFLAGS) -o $@ $< $(MPI_LIBS)

# Lua scripts are embedded as byte arrays; chunk names point at the real files.
$(BUILD)/sl_scripts.c: bindings/embed_scripts.lua $(SCRIPTS)
	@mkdir -p $(dir $@)
	lua5.4 bindings/embed_scripts.lua $(SCRIPTS) > $@.tmp && mv $@.tmp $@
$(BUILD)/sl_scripts.o: $(BUILD)/sl_scripts.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^
# The exported surface (docs/architecture.md, "Exported symbols"): a version
# script making global only the functions the public headers declare, so the
# binding and shared-memory helpers stay internal. libselut.a keeps them all.
EXPORTS := $(BUILD)/libselut.map
$(EXPORTS): bindings/exports.lua $(wildcard core/*.h core/*/*.h) bindings/selut_lua.h
	@mkdir -p $(dir $@)
	lua5.4 bindings/exports.lua core/selut.h bindings/selut_lua.h > $@.tmp && mv $@.tmp $@
$(LIBSO): $(LIB_OBJ) $(EXPORTS)
	$(CC) -shared -Wl,-soname,libselut.so.$(SOVERSION) -Wl,--version-script=$(EXPORTS) $(LDFLAGS) -o $@ \
	  $(LIB_OBJ) $(LIBS)
	ln -sf libselut.so $@.$(SOVERSION)
# The Lua C module must NOT link liblua: the host interpreter provides it.
$(LUAMOD): $(LIB_OBJ) $(EXPORTS)
	$(CC) -shared -Wl,--version-script=$(EXPORTS) $(LDFLAGS) -o $@ $(LIB_OBJ) $(LIBS)
$(LAUNCHER): $(BUILD)/bindings/selut_main.o $(LIBA)
	$(CC) $(LDFLAGS) -Wl,-E -o $@ $^ $(LUA_LIBS) -lreadline $(LIBS)

$(BUILD)/tests/c/%.o: tests/c/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(TEST_CFLAGS) $(CFLAGS) -Wno-missing-prototypes -c $< -o $@
$(TESTBIN): $(TEST_OBJ) $(LIBA)
	$(CC) $(LDFLAGS) -Wl,-E -o $@ $^ $(TEST_LIBS) $(LUA_LIBS) $(LIBS)

# Criterion does not fail a test on a LeakSanitizer report, so the log is
# checked too (see docs/testing.md). Lua suites run inside the Criterion binary.
TEST_ENV := SELUT_ROOT=$(CURDIR) SELUT_LAUNCHER=$(CURDIR)/$(LAUNCHER) OPENBLAS_NUM_THREADS=1 $(CROSS_TEST_ENV)
ifneq ($(SAN),)
  TEST_ENV += ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
              LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0
endif
test: $(TESTBIN) $(LAUNCHER) $(LUAMOD) $(LIBSO) $(BUILD)/examples/embed/host $(BUILD)/examples/game/host
	@rm -f $(BUILD)/test.log
	@set -o pipefail 2>/dev/null; $(TEST_ENV) $(TESTBIN) -j2 --short-filename $(TESTARGS) 2>&1 | tee $(BUILD)/test.log; \
	  status=$$?; \
	  if grep -qE 'ERROR: (LeakSanitizer|AddressSanitizer)|runtime error:' $(BUILD)/test.log; then \
	    echo "sanitizer report found in $(BUILD)/test.log: failing"; exit 1; fi; \
	  [ $$status -eq 0 ] || exit $$status; \
	  $(TEST_ENV) tests/repl/test_repl.sh $(LAUNCHER)
	@$(TEST_ENV) tests/train/test_train.sh $(LAUNCHER)
	+@$(TEST_ENV) SANFLAGS="$(SANFLAGS)" CC="$(CC)" tests/embed/run.sh $(BUILD)
	@$(TEST_ENV) tests/embed/game.sh $(BUILD)
	@$(TEST_ENV) tests/cross/run.sh $(LAUNCHER)
	@if [ "$(MPI)" = 1 ]; then $(TEST_ENV) tests/mpi/run.sh $(LAUNCHER); else echo "tests/mpi: SKIPPED ($(if $(CROSS_TRIPLET),ARCH=$(ARCH): no Open MPI for $(ARCH) here, see docs/portability.md,built without MPI))"; fi
	@$(TEST_ENV) tests/onnx/run.sh $(LAUNCHER)

BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
$(BUILD)/bench/%: bench/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(LIBA) $(LUA_LIBS) $(LIBS)
bench: $(BENCH_BIN) $(LAUNCHER)
	@fail=0; for b in $(BENCH_BIN); do echo "== $$b"; $$b || { echo "($$b missed its target; the other benches still run)"; fail=1; }; done; \
	  if [ -x bench/run.sh ]; then bash bench/run.sh $(BUILD) || fail=1; fi; exit $$fail

EXAMPLE_SRC := $(sort $(wildcard examples/*.c examples/*/*.c))
EXAMPLE_BIN := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_SRC))
$(BUILD)/examples/%: examples/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(LIBA) $(LUA_LIBS) $(LIBS)
examples: $(EXAMPLE_BIN)

# LuaRocks (selut-scm-1.rockspec): the Lua module (and, with MPI, its glue beside
# it, where selut.dist.init() looks first), criterion not needed
.PHONY: rock install-rock
rock: $(LUAMOD) $(MPI_GLUE)
install-rock: $(LUAMOD) $(MPI_GLUE)
	@test -n "$(INST_LIBDIR)" || { echo 'install-rock: set INST_LIBDIR (luarocks does)'; exit 1; }
	install -d $(INST_LIBDIR) && install -m 755 $(LUAMOD) $(INST_LIBDIR)/selut.so
	$(if $(MPI_GLUE),install -m 755 $(MPI_GLUE) $(INST_LIBDIR)/selut_mpi.so)

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "deps: missing:$$missing"; \
	  echo "run as root: apt-get update && apt-get install -y$$missing"; exit 1; fi; \
	export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q$$missing
	@$(MAKE) --no-print-directory onnx-runtime

# ONNX Runtime for tests/onnx (npm; --ignore-scripts: its install script
# fetches GPU add-ons from outside the registry, the CPU runtime is in the package).
ONNXRUNTIME_VERSION := 1.30.0
.PHONY: onnx-runtime
onnx-runtime:
	@if [ -d tests/onnx/node_modules/onnxruntime-node ]; then echo "deps: onnxruntime-node present"; \
	else { command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm; }; } && \
	  npm install --prefix tests/onnx --no-save --no-audit --no-fund --ignore-scripts \
	  onnxruntime-node@$(ONNXRUNTIME_VERSION); fi

# make install PREFIX=/usr/local (DESTDIR supported); make uninstall
LUA_CMOD_DIR ?= $(PREFIX)/lib/x86_64-linux-gnu/lua/5.4
INSTALLED_HEADERS := core/selut.h $(sort $(wildcard core/*/*.h)) bindings/selut_lua.h
.PHONY: $(BUILD)/selut.pc # regenerated on every install: PREFIX may differ
$(BUILD)/selut.pc: Makefile
	@mkdir -p $(dir $@)
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include/selut' '' \
	  'Name: selut' 'Description: scriptable self-normalizing neural networks (C core + Lua 5.4)' \
	  'Version: 0.1.0' 'Requires.private: openblas libpng zlib' \
	  'Libs: -L$${libdir} -lselut -llua5.4 $(LIBS)' \
	  'Cflags: -I$${includedir} -I$${includedir}/core $(shell $(PKG_CONFIG) --cflags lua5.4)' > $@
install: all $(BUILD)/selut.pc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(LUA_CMOD_DIR) \
	  $(DESTDIR)$(PREFIX)/share/doc/selut
	install -m 755 $(LAUNCHER) $(DESTDIR)$(PREFIX)/bin/selut
	install -m 644 $(LIBA) $(DESTDIR)$(PREFIX)/lib/libselut.a
	install -m 755 $(LIBSO) $(DESTDIR)$(PREFIX)/lib/libselut.so.$(SOVERSION)
	ln -sf libselut.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libselut.so
	install -m 755 $(LUAMOD) $(DESTDIR)$(LUA_CMOD_DIR)/selut.so
	install -m 644 $(BUILD)/selut.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/selut.pc
	$(if $(MPI_GLUE),install -D -m 755 $(MPI_GLUE) $(DESTDIR)$(PREFIX)/lib/selut/selut_mpi.so)
	for h in $(INSTALLED_HEADERS); do install -D -m 644 $$h $(DESTDIR)$(PREFIX)/include/selut/$$h; done
	install -m 644 bindings/selut_lua.h $(DESTDIR)$(PREFIX)/include/selut/selut_lua.h
	install -m 644 README.md $(wildcard docs/*.md) $(DESTDIR)$(PREFIX)/share/doc/selut/
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/selut $(DESTDIR)$(PREFIX)/lib/libselut.a $(DESTDIR)$(PREFIX)/lib/libselut.so \
	  $(DESTDIR)$(PREFIX)/lib/libselut.so.$(SOVERSION) $(DESTDIR)$(LUA_CMOD_DIR)/selut.so \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/selut.pc $(DESTDIR)$(PREFIX)/lib/selut/selut_mpi.so
	rm -rf $(DESTDIR)$(PREFIX)/include/selut $(DESTDIR)$(PREFIX)/share/doc/selut

clean:
	rm -rf build build-san

# fuzz, fuzz-replay (run by test), valgrind, coverage
include tests/reliability.mk

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
