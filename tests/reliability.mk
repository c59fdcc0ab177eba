# Reliability targets, included by the Makefile:
#   make fuzz          libFuzzer targets (clang, ASan+UBSan) in build-fuzz/fuzz/
#   make fuzz-run FUZZ_TIME=1800 [FUZZ_TARGET=fuzz_idx]   run them niced, corpus in build-fuzz/corpus/
#   make fuzz-replay   replay tests/fuzz/corpus + regressions with $(CC) (part of `make test`)
#   make valgrind      memcheck over the C and Lua suites: 0 errors, 0 bytes definitely lost
#   make coverage      gcov line coverage of core/ and bindings/ (gcovr)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS := $(FUZZ_SRC:tests/fuzz/%.c=%)
FUZZ_BUILD ?= build-fuzz
FUZZ_CC ?= clang
FUZZ_TIME ?= 1800
FUZZ_TARGET ?= $(FUZZ_TARGETS)

ifneq ($(FUZZ),)
  CFLAGS += -fsanitize=fuzzer-no-link -Wno-error # clang warns where gcc does not; gcc -Werror gates CI
endif

.PHONY: fuzz fuzz-bins fuzz-run fuzz-replay valgrind coverage

fuzz:
	$(MAKE) SAN=1 FUZZ=1 CC=$(FUZZ_CC) BUILD=$(FUZZ_BUILD) fuzz-bins

FUZZ_BIN := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)
fuzz-bins: $(FUZZ_BIN)
$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz_util.h $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -fsanitize=fuzzer -o $@ $< $(LIBA) $(LUA_LIBS) $(LIBS)

# Each target runs niced for FUZZ_TIME seconds, two at a time, on a working
# corpus seeded from the committed one; new crashes land in $(FUZZ_BUILD)/crashes/.
# The timeout is generous: niced runs on a busy machine stall for seconds.
fuzz-run: fuzz
	@mkdir -p $(FUZZ_BUILD)/crashes
	@printf '%s\n' $(FUZZ_TARGET) | xargs -P 2 -I{} sh -c '\
	  mkdir -p $(FUZZ_BUILD)/corpus/{} && cp -n tests/fuzz/corpus/{}/* $(FUZZ_BUILD)/corpus/{}/ 2>/dev/null; \
	  ASAN_OPTIONS=allocator_may_return_null=1 nice -n 19 $(FUZZ_BUILD)/fuzz/{} -max_total_time=$(FUZZ_TIME) \
	    -rss_limit_mb=2048 -timeout=60 -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/crashes/{}- \
	    $$([ -f tests/fuzz/{}.dict ] && echo -dict=tests/fuzz/{}.dict) $(FUZZ_BUILD)/corpus/{} > $(FUZZ_BUILD)/{}.log 2>&1; \
	  echo "{}: exit $$? (log $(FUZZ_BUILD)/{}.log)"'

# Replay: the same target sources linked with a plain main (tests/fuzz/replay.c).
REPLAY_BIN := $(FUZZ_TARGETS:%=$(BUILD)/fuzz-replay/%)
$(BUILD)/fuzz-replay/%: tests/fuzz/%.c tests/fuzz/replay.c tests/fuzz/fuzz_util.h $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< tests/fuzz/replay.c $(LIBA) $(LUA_LIBS) $(LIBS)
fuzz-replay: $(REPLAY_BIN)
	@for t in $(FUZZ_TARGETS); do \
	  $(TEST_ENV) $(BUILD)/fuzz-replay/$$t tests/fuzz/corpus/$$t $$([ -d tests/fuzz/regressions/$$t ] && echo tests/fuzz/regressions/$$t) || \
	    { echo "fuzz-replay: $$t failed"; exit 1; }; done
test: fuzz-replay

# ---- valgrind: memcheck over the C and Lua suites (Criterion's workers and
# the launcher children are traced; system binaries are not). OpenBLAS is
# kept to AVX2 kernels, which valgrind can run. Fails on any memcheck error
# or any definitely-lost byte in any process.
VALGRIND_BUILD ?= build-valgrind
VALGRIND_ARGS ?=
valgrind:
	$(MAKE) BUILD=$(VALGRIND_BUILD) $(VALGRIND_BUILD)/test_selut $(VALGRIND_BUILD)/selut
	@rm -rf $(VALGRIND_BUILD)/vg && mkdir -p $(VALGRIND_BUILD)/vg
	-SELUT_ROOT=$(CURDIR) SELUT_LAUNCHER=$(CURDIR)/$(VALGRIND_BUILD)/selut OPENBLAS_NUM_THREADS=1 \
	  OPENBLAS_CORETYPE=Haswell SELUT_VALGRIND=1 \
	  valgrind --tool=memcheck --trace-children=yes --trace-children-skip='/bin/*,/usr/bin/*,*/sh' \
	  --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --error-exitcode=99 \
	  --log-file=$(CURDIR)/$(VALGRIND_BUILD)/vg/%p.log \
	  $(VALGRIND_BUILD)/test_selut -j1 --short-filename $(VALGRIND_ARGS) 2>&1 | tee $(VALGRIND_BUILD)/valgrind.log
	@bash tests/valgrind_check.sh $(VALGRIND_BUILD)

# ---- coverage: gcov line coverage of core/ and bindings/ over `make test`
COV_BUILD ?= build-cov
coverage:
	@command -v gcovr >/dev/null || { echo "coverage: gcovr missing: apt-get install gcovr"; exit 1; }
	@find $(COV_BUILD) -name '*.gcda' -delete 2>/dev/null || true
	-CFLAGS="-O0 -g --coverage" LDFLAGS="--coverage" $(MAKE) BUILD=$(COV_BUILD) test
	gcovr -r . --object-directory $(COV_BUILD) --filter 'core/' --filter 'bindings/' --exclude 'bindings/selut_main.c' \
	  --print-summary --txt $(COV_BUILD)/coverage.txt --html-details $(COV_BUILD)/coverage.html
	@echo "per-directory line coverage:"; bash tests/coverage_summary.sh $(COV_BUILD)/coverage.txt
