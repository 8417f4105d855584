# eidetic — build.  `make` builds build/eidetic; `make test` builds and runs the test suite.
# Dependencies (Debian): libopenblas-dev (BLAS), libcjson-dev (JSON), gcc's libgomp (OpenMP).
CC      ?= cc
# -fno-trapping-math: nothing here reads floating-point exception flags; without it GCC will not
# if-convert (so not vectorise) loops whose selects guard a division, e.g. softplus = log1p(exp(x)).
# It changes no results.
OPT     ?= -O3 -march=native -ffp-contract=fast -fno-trapping-math
CFLAGS  ?= $(OPT) -Wall -Wextra -Wno-unused-parameter -g
# What the code needs to compile at all: a user's CFLAGS cannot drop these. -MMD -MP: header
# dependencies are tracked per object (build/**/*.d), so a header change rebuilds what includes it.
override CFLAGS += -std=c11 -fopenmp -D_GNU_SOURCE -MMD -MP
BUILD   ?= build
# OpenBLAS built for OpenMP (Debian: libopenblas-openmp-dev) shares our OpenMP thread pool, so BLAS
# calls and our own parallel loops never fight over the cores; the pthread build is a fallback.
MULTIARCH   := $(shell $(CC) -print-multiarch 2>/dev/null)
OB_OMP      := /usr/lib/$(MULTIARCH)/openblas-openmp
ifneq ($(wildcard $(OB_OMP)/libopenblas.so),)
BLAS_CFLAGS := -I/usr/include/$(MULTIARCH)/openblas-openmp
BLAS_LIBS   := -L$(OB_OMP) -Wl,-rpath,$(OB_OMP) -lopenblas
else
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/openblas)
BLAS_LIBS   := $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
endif
CJSON_CFLAGS:= $(shell pkg-config --cflags libcjson 2>/dev/null)
CJSON_LIBS  := $(shell pkg-config --libs libcjson 2>/dev/null || echo -lcjson)
CPPFLAGS += -Isrc -Iinclude $(BLAS_CFLAGS) $(CJSON_CFLAGS)
LDLIBS   += $(BLAS_LIBS) $(CJSON_LIBS) -lm -fopenmp

# libeidetic.a: everything but the command-line program (src/cli) and the tools on top of it
# (src/tools: scorecard, bench); src/api implements the public header include/eidetic.h.
LIB_SRC := $(wildcard src/core/*.c src/kernels/cpu/*.c src/layers/*.c src/model/*.c \
                      src/train/*.c src/tasks/*.c src/data/*.c src/io/*.c src/api/*.c)
CLI_SRC := $(wildcard src/cli/*.c src/tools/*.c)
TEST_SRC:= $(wildcard tests/test_*.c)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
# The test build is double precision (layers.md §0.1: fp64 in test builds) for tight gradient checks.
LIB64_OBJ:= $(LIB_SRC:%.c=$(BUILD)/fp64/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TESTS32  := $(BUILD)/tests/test_equiv_fp32

LIBA     := $(BUILD)/libeidetic.a
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))

.PHONY: all lib examples test clean deps-check bench
# object files are real products, never intermediates to delete after linking a test
.SECONDARY:
all: deps-check $(LIBA) $(BUILD)/eidetic
lib: deps-check $(LIBA)
examples: $(EXAMPLES)

deps-check:
	@printf '#include <cblas.h>\n' | $(CC) $(CPPFLAGS) -E -x c - >/dev/null 2>&1 || { \
	  echo "error: OpenBLAS headers not found (cblas.h). Install the Debian package: libopenblas-dev" >&2; exit 1; }
	@printf '#include <cjson/cJSON.h>\n' | $(CC) $(CPPFLAGS) -E -x c - >/dev/null 2>&1 || { \
	  echo "error: cJSON headers not found (cjson/cJSON.h). Install the Debian package: libcjson-dev" >&2; exit 1; }
	@printf '#include <omp.h>\nint main(void){return omp_get_max_threads()<1;}\n' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null || { \
	  echo "error: OpenMP not available in $(CC). Install the Debian package: libgomp1 (gcc) or libomp-dev (clang)" >&2; exit 1; }

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# The program is a client of the library it ships.
$(BUILD)/eidetic: $(CLI_OBJ) $(LIBA)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(LIBA) $(LDLIBS)

# Examples see only the public header (no -Isrc) and link only the library.
$(BUILD)/examples/%: examples/%.c include/eidetic.h $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) -Iinclude $(CFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/fp64/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -DEIDETIC_FP64 -c $< -o $@

$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(LIB64_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -DEIDETIC_FP64 -Itests -o $@ $< $(LIB64_OBJ) $(LDLIBS)

# The tools' spawn helper is not part of the library: its test links it on its own.
$(BUILD)/tests/test_spawn: tests/test_spawn.c $(wildcard tests/*.h) $(BUILD)/fp64/src/tools/spawn.o $(LIB64_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -DEIDETIC_FP64 -Itests -o $@ $< $(BUILD)/fp64/src/tools/spawn.o $(LIB64_OBJ) $(LDLIBS)

# The same equivalence test, single precision (what users run).
$(TESTS32): tests/test_equiv.c $(wildcard tests/*.h) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Itests -o $@ $< $(LIB_OBJ) $(LDLIBS)

test: all $(EXAMPLES) $(TESTS) $(TESTS32)
	@bash tests/run_all.sh $(BUILD)

bench: all
	@bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
