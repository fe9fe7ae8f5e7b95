# Makefile — `make` builds ./ssmlab, `make test` runs every test (release
# and AddressSanitizer+UBSan builds, PyTorch reference checks, end-to-end
# and man-page lint), `make bench` runs the benchmarks against PyTorch.
CC      := clang
PKGS    := gsl openblas ncursesw json-c zlib cairo fontconfig
ARCH    ?= -march=native
OPT     ?= -O2
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
# GSL's own CBLAS would shadow OpenBLAS: link OpenBLAS's CBLAS instead.
PKG_LIBS   := $(filter-out -lgslcblas,$(shell pkg-config --libs $(PKGS)))

# Open MPI (engine/dist.c, the only file that includes mpi.h): used when
# pkg-config finds ompi-c, unless MPI=0; without it ssmlab runs single-process.
MPI ?= $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1 || echo 0)
ifeq ($(MPI),1)
MPI_CFLAGS := -DSSMLAB_MPI $(shell pkg-config --cflags ompi-c)
MPI_LIBS   := $(shell pkg-config --libs ompi-c)
endif

CFLAGS  := -std=c11 -D_GNU_SOURCE -g $(OPT) $(ARCH) -Wall -Wextra -fopenmp \
           -I. $(PKG_CFLAGS) $(MPI_CFLAGS)
LDLIBS  := $(PKG_LIBS) $(MPI_LIBS) -lunistring -lm -lpthread -fopenmp
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRC  := $(wildcard engine/*.c data/*.c scenarios/*.c lab/*.c figures/*.c tui/*.c cli/*.c)
LIB_SRC  := $(filter-out cli/main.c,$(LIB_SRC))
# unit tests live by layer: tests/unit/LAYER/test_*.c, one binary each
TEST_SRC := $(wildcard tests/unit/*/test_*.c)
TESTS    := $(TEST_SRC:%.c=%)

REL  := build/rel
ASAN := build/asan
FUZZ := build/fuzz

all: ssmlab

# build/version.h holds SSM_VERSION; it is rewritten only when `git describe`
# changes, and the files that print or record the version depend on it.
VERSION_H := build/version.h
VERSIONED := cli/main cli/common cli/inspect_dump engine/checkpoint
$(VERSION_H): FORCE
	@mkdir -p build
	@echo '#define SSM_VERSION "0.1.0-$(VERSION)"' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(VERSIONED:%=$(REL)/%.o) $(VERSIONED:%=$(ASAN)/%.o) $(VERSIONED:%=$(FUZZ)/%.o): $(VERSION_H)
FORCE:

$(REL)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(ASAN)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -O1 -MMD -MP -c $< -o $@

# rebuilt from scratch: a moved or deleted source must not leave its old
# object behind in the archive
$(REL)/libssm.a: $(LIB_SRC:%.c=$(REL)/%.o)
	rm -f $@ && ar rcs $@ $^

$(ASAN)/libssm.a: $(LIB_SRC:%.c=$(ASAN)/%.o)
	rm -f $@ && ar rcs $@ $^

ssmlab: $(REL)/cli/main.o $(REL)/libssm.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(REL)/tests/%: $(REL)/tests/%.o $(REL)/libssm.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) -lcriterion

$(ASAN)/tests/%: $(ASAN)/tests/%.o $(ASAN)/libssm.a
	$(CC) $(CFLAGS) $(SANFLAGS) $^ -o $@ $(LDLIBS) -lcriterion

unit: $(TESTS:%=$(REL)/%)
unit-asan: $(TESTS:%=$(ASAN)/%)

# libFuzzer harnesses (tests/fuzz/fuzz_*.c, one per file reader) on a third
# build of the library, instrumented for coverage, ASan and UBSan.
# `make fuzz FUZZ_SECONDS=N` fuzzes each for N seconds, one at a time;
# `make fuzz-replay` runs the seeds and tests/fuzz/regressions/ once.
FUZZFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=undefined -DFUZZ_FIXTURES='"$(CURDIR)/tests/data"'
FUZZ_SRC  := $(filter-out tests/fuzz/fuzz_file.c,$(wildcard tests/fuzz/fuzz_*.c))
FUZZERS   := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ)/bin/%)
FUZZ_SECONDS ?= 60

$(FUZZ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(FUZZFLAGS) -O1 -MMD -MP -c $< -o $@

$(FUZZ)/libssm.a: $(LIB_SRC:%.c=$(FUZZ)/%.o)
	rm -f $@ && ar rcs $@ $^

$(FUZZ)/bin/%: $(FUZZ)/tests/fuzz/%.o $(FUZZ)/tests/fuzz/fuzz_file.o $(FUZZ)/libssm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined $^ -o $@ $(LDLIBS)

fuzz-build: $(FUZZERS)

fuzz: deps
	$(MAKE) -j$(JOBS) fuzz-build
	./tests/fuzz/run.sh fuzz $(FUZZ_SECONDS)

fuzz-replay: deps
	$(MAKE) -j$(JOBS) fuzz-build
	./tests/fuzz/run.sh replay

deps:
	@sh scripts/deps.sh

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
test: deps
	$(MAKE) -j$(JOBS) ssmlab unit unit-asan fuzz-build
	./tests/run.sh

bench: deps
	$(MAKE) ssmlab
	./bench/run.sh

# On a terminal the lab (ssmlab tui) trains the default model; otherwise the
# same preset trains headless with CSV on stdout.
run: deps
	$(MAKE) ssmlab
	@if [ -t 0 ] && [ -t 1 ] && [ "$${TERM:-dumb}" != dumb ]; then \
	    ./ssmlab tui scenarios/bytes-small.conf; \
	else ./ssmlab train scenarios/bytes-small.conf; fi

# The papers' experiment series over several seeds (hours on two cores; not
# run by make test): make experiments SERIES=mqar SEEDS=1-3
SERIES ?= all
SEEDS ?= 1-3
experiments: deps
	$(MAKE) ssmlab
	SERIES='$(SERIES)' SEEDS='$(SEEDS)' ./scripts/experiments.sh

# ThreadSanitizer (CI only, .ci/run: the build alone takes minutes on two
# cores): its own build of ssmlab in build/tsan, which tests/tsan.sh runs
# through the scripted lab, the lab's runs and checkpoints, and
# tui --bench-latency with two OpenMP threads; any report fails it.
# Criterion cannot run under TSAN (its BoxFort arena fails to map), so the
# engine thread and the lab are driven through `ssmlab tui --script`.
# libomp is not built with TSAN, and its own mutexes are reported as
# races: tests/tsan.supp suppresses them (called_from_lib:libomp.so, only
# libomp's internals), so OpenMP still runs with two threads.
TSAN := build/tsan
TSANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
$(VERSIONED:%=$(TSAN)/%.o): $(VERSION_H)
$(TSAN)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TSANFLAGS) -O1 -MMD -MP -c $< -o $@
$(TSAN)/libssm.a: $(LIB_SRC:%.c=$(TSAN)/%.o)
	rm -f $@ && ar rcs $@ $^
$(TSAN)/ssmlab: $(TSAN)/cli/main.o $(TSAN)/libssm.a
	$(CC) $(CFLAGS) $(TSANFLAGS) $^ -o $@ $(LDLIBS)
tsan: deps
	$(MAKE) -j$(JOBS) $(TSAN)/ssmlab
	./tests/tsan.sh

lint-man:
	mandoc -Tlint -W warning man/*.[0-9]
	@for f in man/*.[0-9]; do groff -man -ww -z $$f || exit 1; done

clean:
	rm -rf build ssmlab

.PHONY: all deps test bench run unit unit-asan fuzz fuzz-build fuzz-replay lint-man experiments \
        clean tsan FORCE
.SECONDARY:
-include $(shell find build -name '*.d' 2>/dev/null)
