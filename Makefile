# eidetic — build.  `make` builds build/eidetic; `make test` builds and runs the test suite.
# Dependencies (Debian): libopenblas-dev (BLAS), libcjson-dev (JSON), gcc's libgomp (OpenMP),
# libicu-dev (Unicode classes and NFC for tokenizers), libdnnl-dev (oneDNN: bf16 matrix products), libsentencepiece-dev + g++ (SentencePiece: the
# one C++ file, src/text/tok_spm.cc, behind an extern "C" boundary).
CC      ?= cc
CXX     ?= g++
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
ICU_CFLAGS  := $(shell pkg-config --cflags icu-uc 2>/dev/null)
ICU_LIBS    := $(shell pkg-config --libs icu-uc 2>/dev/null || echo -licuuc -licudata)
CPPFLAGS += -Isrc -Iinclude $(BLAS_CFLAGS) $(CJSON_CFLAGS) $(ICU_CFLAGS)
SPM_LIBS    := -lsentencepiece -lsentencepiece_train -lstdc++
ZLIB_LIBS   := -lz
# oneDNN (libdnnl-dev): bf16 matrix products for --precision bf16, and fp32 ones for --gemm-plan (src/core/gemm_onednn.c)
DNNL_LIBS   := -ldnnl
LDLIBS   += $(BLAS_LIBS) $(CJSON_LIBS) $(SPM_LIBS) $(ICU_LIBS) $(ZLIB_LIBS) $(DNNL_LIBS) -lm -fopenmp
# C++ objects take the C flags but C++17 (the SentencePiece headers need it)
CXXSTD  := -std=c++17

# libeidetic.a: everything but the command-line program (src/cli) and the tools on top of it
# (src/tools: scorecard, bench); src/api implements the public header include/eidetic.h.
LIB_SRC := $(wildcard src/core/*.c src/kernels/cpu/*.c src/layers/*.c src/model/*.c \
                      src/train/*.c src/tasks/*.c src/data/*.c src/io/*.c src/api/*.c \
                      src/text/*.c)
LIB_CXX := $(wildcard src/text/*.cc)
CLI_SRC := $(wildcard src/cli/*.c src/tools/*.c)
TEST_SRC:= $(wildcard tests/test_*.c)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(LIB_CXX:%.cc=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
# The test build is double precision (docs/layers.md §0.1: fp64 in test builds) for tight gradient checks.
LIB64_OBJ:= $(LIB_SRC:%.c=$(BUILD)/fp64/%.o) $(LIB_CXX:%.cc=$(BUILD)/fp64/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TESTS32  := $(BUILD)/tests/test_equiv_fp32 $(BUILD)/tests/test_bf16 $(BUILD)/tests/test_gemm_plan

LIBA     := $(BUILD)/libeidetic.a
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))

.PHONY: all lib examples test clean deps-check bench mpi
# object files are real products, never intermediates to delete after linking a test
.SECONDARY:
all: deps-check $(LIBA) $(BUILD)/eidetic $(if $(filter 1,$(MPI)),$(BUILD)/eidetic-mpi)
lib: deps-check $(LIBA)
examples: $(EXAMPLES)

deps-check:
	@printf '#include <cblas.h>\n' | $(CC) $(CPPFLAGS) -E -x c - >/dev/null 2>&1 || { \
	  echo "error: OpenBLAS headers not found (cblas.h). Install the Debian package: libopenblas-dev" >&2; exit 1; }
	@printf '#include <cjson/cJSON.h>\n' | $(CC) $(CPPFLAGS) -E -x c - >/dev/null 2>&1 || { \
	  echo "error: cJSON headers not found (cjson/cJSON.h). Install the Debian package: libcjson-dev" >&2; exit 1; }
	@printf '#include <omp.h>\nint main(void){return omp_get_max_threads()<1;}\n' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null || { \
	  echo "error: OpenMP not available in $(CC). Install the Debian package: libgomp1 (gcc) or libomp-dev (clang)" >&2; exit 1; }
	@printf '#include <unicode/uchar.h>\n#include <unicode/unorm2.h>\n' | $(CC) $(CPPFLAGS) -E -x c - >/dev/null 2>&1 || { \
	  echo "error: ICU headers not found (unicode/uchar.h). Install the Debian package: libicu-dev" >&2; exit 1; }
	@printf '#include <oneapi/dnnl/dnnl.h>\n' | $(CC) $(CPPFLAGS) -E -x c - >/dev/null 2>&1 || { \
	  echo "error: oneDNN headers not found (oneapi/dnnl/dnnl.h). Install the Debian package: libdnnl-dev" >&2; exit 1; }
	@command -v $(CXX) >/dev/null 2>&1 || { \
	  echo "error: no C++ compiler ($(CXX)) for src/text/tok_spm.cc. Install the Debian package: g++" >&2; exit 1; }
	@printf '#include <sentencepiece_processor.h>\n#include <sentencepiece_trainer.h>\n' | $(CXX) $(CPPFLAGS) $(CXXSTD) -E -x c++ - >/dev/null 2>&1 || { \
	  echo "error: SentencePiece headers not found (sentencepiece_processor.h). Install the Debian package: libsentencepiece-dev" >&2; exit 1; }

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# The program is a client of the library it ships.
$(BUILD)/eidetic: $(CLI_OBJ) $(LIBA)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(LIBA) $(LDLIBS)

# Multi-process training (docs/distributed.md): `make MPI=1` (or `make mpi`) also links
# build/eidetic-mpi, the same program with src/train/dist.c compiled by mpicc (Open MPI: Debian's
# libopenmpi-dev + openmpi-bin); every other object is the default build's, and libeidetic.a and
# build/eidetic stay free of MPI. The MPI dist.o comes before the archive, so the archive's is unused.
MPICC    ?= mpicc
MPI_DIST := $(BUILD)/mpi/src/train/dist.o
$(MPI_DIST): src/train/dist.c
	@mkdir -p $(dir $@)
	@command -v $(MPICC) >/dev/null 2>&1 || { \
	  echo "error: $(MPICC) not found: install the Debian packages libopenmpi-dev openmpi-bin (scripts/setup.sh)" >&2; exit 1; }
	$(MPICC) $(CPPFLAGS) $(CFLAGS) -DEIDETIC_MPI -c $< -o $@
$(BUILD)/eidetic-mpi: $(CLI_OBJ) $(MPI_DIST) $(LIBA)
	$(MPICC) $(CFLAGS) -o $@ $(CLI_OBJ) $(MPI_DIST) $(LIBA) $(LDLIBS)
mpi: deps-check $(BUILD)/eidetic-mpi
# bench/mpi.sh's timing of the gradient exchange alone (not part of `all`)
$(BUILD)/bench/mpi_reduce: bench/mpi_reduce.c $(MPI_DIST) $(LIBA)
	@mkdir -p $(dir $@)
	$(MPICC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(MPI_DIST) $(LIBA) $(LDLIBS)
# bench/birdie_throughput.sh's row-construction timer (not part of `all`)
$(BUILD)/bench/birdie_rows: bench/birdie_rows.c $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

# bench/validate_bpe.sh's encoder (not part of `all`)
$(BUILD)/bench/tok_validate: bench/tok_validate.c $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

# Examples see only the public header (no -Isrc) and link only the library.
$(BUILD)/examples/%: examples/%.c include/eidetic.h $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) -Iinclude $(CFLAGS) -o $@ $< $(LIBA) $(LDLIBS)

# bench/isa_peak.c: fp32 FMA against bf16 dot-product throughput of one core (docs/performance.md
# "Mixed precision"); stand-alone, built with the tests so that it keeps compiling
$(BUILD)/bench/isa_peak: bench/isa_peak.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -o $@ $<

# bench/gemv_stream.c: cold streaming of one-row products, oneDNN bf16 against OpenBLAS fp32
# (docs/performance.md "Mixed precision"); stand-alone, built with the tests so that it keeps compiling
$(BUILD)/bench/gemv_stream: bench/gemv_stream.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -fopenmp $(BLAS_CFLAGS) -o $@ $< $(BLAS_LIBS) $(DNNL_LIBS) -fopenmp

# bench/plan_memory.c: the activation memory a training step plans, fp32 / bf16 / bf16 saved activations
# (docs/performance.md "Memory"); internal API, built with the tests so that it keeps compiling
$(BUILD)/bench/plan_memory: bench/plan_memory.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS)

# the RG-LRU gate loops take square roots of values >= 0 only; without errno they vectorise
$(BUILD)/src/kernels/cpu/linrec.o: CFLAGS += -fno-math-errno
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/fp64/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -DEIDETIC_FP64 -c $< -o $@

$(BUILD)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(filter-out -std=c11,$(CFLAGS)) $(CXXSTD) -c $< -o $@

$(BUILD)/fp64/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(filter-out -std=c11,$(CFLAGS)) $(CXXSTD) -DEIDETIC_FP64 -c $< -o $@

$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h tests/kernels/*.h) $(LIB64_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -DEIDETIC_FP64 -Itests -o $@ $< $(LIB64_OBJ) $(LDLIBS)

# The tools' spawn helper is not part of the library: its test links it on its own.
$(BUILD)/tests/test_spawn: tests/test_spawn.c $(wildcard tests/*.h tests/kernels/*.h) $(BUILD)/fp64/src/tools/spawn.o $(LIB64_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -DEIDETIC_FP64 -Itests -o $@ $< $(BUILD)/fp64/src/tools/spawn.o $(LIB64_OBJ) $(LDLIBS)

# The same equivalence test, single precision (what users run).
$(BUILD)/tests/test_equiv_fp32: tests/test_equiv.c $(wildcard tests/*.h tests/kernels/*.h) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Itests -o $@ $< $(LIB_OBJ) $(LDLIBS)

# --precision bf16 against fp32: single precision only (no bf16 path in the fp64 build)
$(BUILD)/tests/test_bf16: tests/bf16_check.c $(wildcard tests/*.h tests/kernels/*.h) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Itests -o $@ $< $(LIB_OBJ) $(LDLIBS)

# the per-shape library plan (--gemm-plan): single precision only, like the bf16 path
$(BUILD)/tests/test_gemm_plan: tests/gemm_plan_check.c $(wildcard tests/*.h tests/kernels/*.h) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Itests -o $@ $< $(LIB_OBJ) $(LDLIBS)

# the normal suite, then the same unit tests and the CLI error tests once more under ASan+UBSan
# (make asan; docs/reliability.md "Sanitizers"); the fuzz regression inputs run in both.
# (build/eidetic-mpi too when mpicc is there; tests/cli/mpi.sh fails loudly when it is not)
HAVE_MPICC := $(shell command -v $(MPICC) 2>/dev/null)
test: all $(EXAMPLES) $(BUILD)/bench/isa_peak $(BUILD)/bench/gemv_stream $(BUILD)/bench/plan_memory $(TESTS) $(TESTS32) asan-build $(if $(HAVE_MPICC),$(BUILD)/eidetic-mpi)
	@bash tests/run_all.sh $(BUILD); a=$$?; echo; echo "== sanitizer pass (ASan+UBSan+LSan, $(ASAN_BUILD)) =="; \
	  bash tests/run_asan.sh $(ASAN_BUILD); b=$$?; [ $$a -eq 0 ] && [ $$b -eq 0 ]

bench: all
	@bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- sanitizers and fuzzing (docs/reliability.md) ----
# `make asan`: the library, unit tests and CLI built with AddressSanitizer + UndefinedBehaviorSanitizer
# (float-cast-overflow too: GCC's "undefined" leaves it out), any report fatal, LeakSanitizer on; runs
# the unit tests and the CLI error tests (tests/run_asan.sh). -O1 keeps the pass short.
ASAN_BUILD := $(BUILD)/asan
SAN_FLAGS  := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_CFLAGS:= -O1 -g -march=native -ffp-contract=fast -fno-trapping-math -Wall -Wextra -Wno-unused-parameter $(SAN_FLAGS)
ASAN_LIB   := $(LIB_SRC:%.c=$(ASAN_BUILD)/%.o) $(LIB_CXX:%.cc=$(ASAN_BUILD)/%.o)
ASAN_LIB64 := $(LIB_SRC:%.c=$(ASAN_BUILD)/fp64/%.o) $(LIB_CXX:%.cc=$(ASAN_BUILD)/fp64/%.o)
ASAN_TESTS := $(TEST_SRC:tests/%.c=$(ASAN_BUILD)/tests/%) $(ASAN_BUILD)/tests/test_gemm_plan
# the fuzz harnesses' target functions run on the seeds and regression inputs by a plain gcc driver
FUZZ_SRC   := $(wildcard fuzz/fuzz_*.c)
FUZZ_REGRESS := $(FUZZ_SRC:fuzz/%.c=$(ASAN_BUILD)/fuzz/%)

$(ASAN_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ASAN_CFLAGS) -std=c11 -fopenmp -D_GNU_SOURCE -MMD -MP -c $< -o $@
$(ASAN_BUILD)/fp64/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ASAN_CFLAGS) -std=c11 -fopenmp -D_GNU_SOURCE -MMD -MP -DEIDETIC_FP64 -c $< -o $@
$(ASAN_BUILD)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(ASAN_CFLAGS) $(CXXSTD) -fopenmp -D_GNU_SOURCE -MMD -MP -c $< -o $@
$(ASAN_BUILD)/fp64/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(ASAN_CFLAGS) $(CXXSTD) -fopenmp -D_GNU_SOURCE -MMD -MP -DEIDETIC_FP64 -c $< -o $@
$(ASAN_BUILD)/eidetic: $(CLI_SRC:%.c=$(ASAN_BUILD)/%.o) $(ASAN_LIB)
	$(CC) $(ASAN_CFLAGS) -fopenmp -o $@ $^ $(LDLIBS)
$(ASAN_BUILD)/tests/%: tests/%.c $(wildcard tests/*.h tests/kernels/*.h) $(ASAN_LIB64)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ASAN_CFLAGS) -std=c11 -fopenmp -D_GNU_SOURCE -DEIDETIC_FP64 -Itests -o $@ $< $(ASAN_LIB64) $(LDLIBS)
# the plan's reader, table and measurement under the sanitizers (single precision, as it runs)
$(ASAN_BUILD)/tests/test_gemm_plan: tests/gemm_plan_check.c $(wildcard tests/*.h tests/kernels/*.h) $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ASAN_CFLAGS) -std=c11 -fopenmp -D_GNU_SOURCE -Itests -o $@ $< $(ASAN_LIB) $(LDLIBS)
$(ASAN_BUILD)/tests/test_spawn: tests/test_spawn.c $(wildcard tests/*.h tests/kernels/*.h) $(ASAN_BUILD)/fp64/src/tools/spawn.o $(ASAN_LIB64)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ASAN_CFLAGS) -std=c11 -fopenmp -D_GNU_SOURCE -DEIDETIC_FP64 -Itests -o $@ $< $(ASAN_BUILD)/fp64/src/tools/spawn.o $(ASAN_LIB64) $(LDLIBS)
# (the tools' metrics.jsonl reader, src/tools/metrics_read.c, is not in the library: linked on its own)
$(ASAN_BUILD)/fuzz/%: fuzz/%.c fuzz/driver.c $(ASAN_BUILD)/src/cli/util.o $(ASAN_BUILD)/src/tools/metrics_read.o $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ASAN_CFLAGS) -std=c11 -fopenmp -D_GNU_SOURCE -o $@ $< fuzz/driver.c $(ASAN_BUILD)/src/cli/util.o \
	  $(ASAN_BUILD)/src/tools/metrics_read.o $(ASAN_LIB) $(LDLIBS)

.PHONY: asan asan-build fuzz fuzz-regress
asan-build: $(ASAN_BUILD)/eidetic $(ASAN_TESTS) $(FUZZ_REGRESS)
fuzz-regress: $(FUZZ_REGRESS)
	@bash tests/cli/fuzz_regress.sh $(BUILD)
asan: asan-build
	@bash tests/run_asan.sh $(ASAN_BUILD)

# `make fuzz`: libFuzzer binaries (clang) in build/fuzz/, the library compiled with the same
# sanitizers; bench/fuzz.sh N runs each for N seconds. Needs clang with libclang_rt.fuzzer.
# Compiled without -fopenmp (the pragmas are ignored: serial, deterministic executions; clang 14
# crashes on UBSan + OpenMP SIMD reductions); omp_* calls link against libomp via LDLIBS' -fopenmp.
FUZZ_CC    ?= clang
FUZZ_CXX   ?= clang++
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_CFLAGS:= -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -Wno-unknown-pragmas -Wno-pass-failed
FUZZ_LIB   := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o) $(LIB_CXX:%.cc=$(FUZZ_BUILD)/obj/%.o) $(FUZZ_BUILD)/obj/src/cli/util.o \
              $(FUZZ_BUILD)/obj/src/tools/metrics_read.o
FUZZ_BINS  := $(FUZZ_SRC:fuzz/%.c=$(FUZZ_BUILD)/%)
$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -std=c11 -D_GNU_SOURCE -MMD -MP -c $< -o $@
# (-fno-sanitize=vptr: its runtime is C++-only and the harnesses link with the C driver)
$(FUZZ_BUILD)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(CPPFLAGS) $(FUZZ_CFLAGS) -fno-sanitize=vptr -fsanitize=fuzzer-no-link $(CXXSTD) -D_GNU_SOURCE -MMD -MP -c $< -o $@
$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_LIB)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -std=c11 -D_GNU_SOURCE -o $@ $< $(FUZZ_LIB) $(LDLIBS)
fuzz: $(FUZZ_BINS)
