# genq: build, test, demo. `make help` lists the targets.
#
# Objects go to build/<mode>/, binaries to bin/ (developer build) or build/<mode>/bin.
# Warnings are errors in the developer build (the default). Flags changes trigger a rebuild.

MODE     ?= dev
BUILDDIR := build/$(MODE)
CC       ?= cc
# librdkafka: by default the project's own static build of a pinned release (scripts/librdkafka
# says why Debian 12's 2.0.2 is not used), made once into a cache; RDKAFKA=system links the
# distribution's instead.
RDKAFKA  ?= pinned
ifeq ($(RDKAFKA),system)
RDKAFKA_PKGS := rdkafka
else
RDKAFKA_VERSION := $(shell sed -n 's/^VERSION=//p' scripts/librdkafka)
RDKAFKA_PREFIX  ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/genq/librdkafka-$(RDKAFKA_VERSION)
PKG_CONFIG_ENV  := PKG_CONFIG_PATH=$(RDKAFKA_PREFIX)/lib/pkgconfig$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH))
# Its .pc file names only libc's libraries; these are the ones it was built with.
RDKAFKA_PKGS := rdkafka-static libssl libzstd libsasl2
endif
# First: a static library's needs must come before the shared libraries that meet them.
PKGS     := $(RDKAFKA_PKGS) avro-c libcurl libpq jansson libcrypto zlib
SHELL    := /bin/bash
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo 0.1.0)

# Quiet by default: one "CC file.o" line per step, as git and redis print; V=1 shows the
# full command lines.
ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @printf '  %-6s %s\n' $(1) $(2)
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
            -Wmissing-prototypes -Wpointer-arith -Wvla -Wno-missing-field-initializers
CSTD     := -std=c11 -D_GNU_SOURCE
INC      := -Ilib -I. -Icmd -Ischemas -Iproducers -Iconsumers -Iconsumers/worker -Iconsumers/worker/bind -Iconsumers/worker/store -Iconsumers/worker/db -Iconsumers/events -Iconsumers/replay -Iconsumers/lag -Iconsumers/report -Imigrations
# -isystem: warnings in the libraries' headers are theirs (librdkafka 2.12's trip -Wextra).
PKG_CFLAGS = $(patsubst -I%,-isystem%,$(shell $(PKG_CONFIG_ENV) pkg-config --cflags $(PKGS) 2>/dev/null))
PKG_LIBS   = $(shell $(PKG_CONFIG_ENV) pkg-config --libs $(PKGS) 2>/dev/null)

ifeq ($(MODE),asan)
OPT      := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDMODE   := -fsanitize=address,undefined
BINDIR   := $(BUILDDIR)/bin
else ifeq ($(MODE),fuzz)
CC       := clang
OPT      := -O1 -g -fsanitize=fuzzer-no-link,address,undefined
LDMODE   := -fsanitize=address,undefined
BINDIR   := $(BUILDDIR)/bin
else ifeq ($(MODE),release)
WARN     := -Wall -Wextra -Wno-missing-field-initializers
OPT      := -O2 -g
BINDIR   := bin
else
OPT      := -O2 -g
BINDIR   := bin
endif

CFLAGS   := $(CSTD) $(OPT) $(WARN) $(INC) -MMD -MP -pthread
LDLIBS   := -pthread -lm

LIB_SRC  := $(sort $(wildcard lib/*.c schemas/*.c producers/*.c consumers/*.c consumers/*/*.c consumers/*/*/*.c migrations/*.c))
EMBED_IN := $(sort $(wildcard schemas/*.avsc schemas/history/*.avsc migrations/*.sql workflows/*.json))
EMBED_C  := $(BUILDDIR)/gen/embedded.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILDDIR)/%.o) $(BUILDDIR)/gen/embedded.o
LIBGENQ  := $(BUILDDIR)/libgenq.a
PRODUCER_SRC := $(sort $(wildcard lib/*.c schemas/*.c producers/producer*.c))
PRODUCER_OBJ := $(PRODUCER_SRC:%.c=$(BUILDDIR)/%.o) $(BUILDDIR)/gen/embedded.o
TEST_SRC := $(sort $(wildcard tests/unit/test_*.c))
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BINDIR)/tests/%)
GENQ     := $(BINDIR)/genq

.PHONY: all deps rdkafka test unit asan valgrind demo bench fuzz fuzz-long style style-check lint docs keda-check k8s-check monitoring-check image-check clean help soak comfyui-real comfyui-facts
all: $(GENQ) $(TEST_BIN) $(BINDIR)/libgenq-producer.a $(BINDIR)/genq-producer.pc

help:
	@echo "make            build bin/genq, the producer library and the unit tests"
	@echo "make test       build, start the stack, run unit + simulator + integration tests"
	@echo "make demo       the main job on the embedded stack (Kafka, PostgreSQL, simulator)"
	@echo "make unit       unit tests only (no stack)"
	@echo "make asan       unit tests built with AddressSanitizer and UBSan"
	@echo "make valgrind   unit tests under valgrind memcheck"
	@echo "make bench      benchmarks, results under bench/results/"
	@echo "make fuzz-long  a long fuzzing campaign"
	@echo "make style-check  clang-format check"
	@echo "make docs       regenerate docs/configuration.md from the configuration table"
	@echo "make k8s-check  check k8s/ and the Dockerfile offline (also part of make test)"
	@echo "make keda-check genq lag beside KEDA's own scaler (builds it once: ~30 min)"
	@echo "make monitoring-check  the Grafana dashboards and alerts, offline (SQL: make test)"
	@echo "make image-check  build the Dockerfile in chroots and run genq in it (root)"
	@echo "make comfyui-real   install the real ComfyUI 0.3.64 test peer into ~/.cache/genq (make test does it too)"
	@echo "make comfyui-facts  run the experiments behind tests/comfyreal/FACTS.md on the real server (long)"

# Debian packages: installed by the targets that need them, once.
deps:
	@scripts/deps build $(if $(filter system,$(RDKAFKA)),librdkafka-dev)

$(BUILDDIR)/.flags: deps rdkafka FORCE
	@mkdir -p $(BUILDDIR)
	@echo '$(CC) $(CFLAGS) $(PKG_CFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(PKG_CFLAGS)' > $@
FORCE:

# Quick when it is built already: the script checks its stamp.
rdkafka: deps
ifneq ($(RDKAFKA),system)
	@scripts/librdkafka $(RDKAFKA_PREFIX) >/dev/null
endif

$(BUILDDIR)/%.o: %.c $(BUILDDIR)/.flags
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(EMBED_C): $(EMBED_IN) scripts/embed
	@mkdir -p $(dir $@)
	$(call say,GEN,$@)
	$(Q)scripts/embed $(EMBED_IN) > $@.tmp && mv $@.tmp $@

$(BUILDDIR)/gen/embedded.o: $(EMBED_C) $(BUILDDIR)/.flags
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIBGENQ): $(LIB_OBJ)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)ar rcs $@ $^

$(GENQ): $(BUILDDIR)/cmd/genq.o $(LIBGENQ)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDMODE) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

# The library an upstream C service links to publish requests (header: producers/genq_producer.h).
$(BINDIR)/libgenq-producer.a: $(PRODUCER_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)ar rcs $@ $^

# The flags of the libraries, for the scripts that build against libgenq.a (tests/fuzz/run,
# bench/resolve/run): `make -s print-PKG_CFLAGS`.
print-%:
	@echo '$($*)'

# How a C service compiles and links against the library: the librdkafka it was built with
# (the pinned static one, or the system's), and the rest. `PKG_CONFIG_PATH=bin pkg-config
# --cflags --libs genq-producer`.
$(BINDIR)/genq-producer.pc: $(BUILDDIR)/.flags
	@mkdir -p $(dir $@)
	$(call say,GEN,$@)
	$(Q)printf '%s\n' 'Name: genq-producer' \
	    'Description: publish genq generation requests and cancels (libgenq-producer.a)' \
	    'Version: $(VERSION)' \
	    'Cflags: -I$(CURDIR)/producers -I$(CURDIR)/schemas -I$(CURDIR)/lib $(PKG_CFLAGS)' \
	    'Libs: $(CURDIR)/$(BINDIR)/libgenq-producer.a $(PKG_LIBS) -pthread -lm' > $@

$(BINDIR)/tests/%: $(BUILDDIR)/tests/unit/%.o $(LIBGENQ)
	@mkdir -p $(dir $@)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDMODE) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

unit: all
	@tests/run --unit-only --bindir $(BINDIR)

# The integration tests run their workers from the sanitizer build as well.
test: all
	@scripts/deps test
	@$(MAKE) --no-print-directory MODE=asan all
	@tests/run --bindir $(BINDIR) --asan-bindir build/asan/bin

asan:
	@$(MAKE) --no-print-directory MODE=asan all
	@ASAN_OPTIONS=detect_leaks=1 tests/run --unit-only --bindir build/asan/bin

valgrind: all
	@tests/run --unit-only --bindir $(BINDIR) --valgrind

demo: all
	@scripts/deps test
	@tests/demo --bindir $(BINDIR)

bench: all
	@scripts/deps test
	@bench/run --bindir $(BINDIR)

fuzz:
	@$(MAKE) --no-print-directory MODE=fuzz all
	@tests/fuzz/run --bindir build/fuzz/bin --seconds $${FUZZ_SECONDS:-20}

fuzz-long:
	@$(MAKE) --no-print-directory MODE=fuzz all
	@tests/fuzz/run --bindir build/fuzz/bin --seconds $${FUZZ_SECONDS:-1800}

STYLE_SRC = $(shell git ls-files '*.c' '*.h')
style:
	@scripts/deps dev
	clang-format -i $(STYLE_SRC)

# The Kubernetes manifests and the Dockerfile, offline (tests/k8s/; make test runs it too,
# with the alerts checked against a live worker's /metrics).
k8s-check: $(GENQ)
	@scripts/deps test
	python3 tests/k8s/check_dockerfile.py Dockerfile $(GENQ)
	GENQ=$(GENQ) tests/k8s/run

# The Grafana dashboards and the PrometheusRule, offline (tests/monitoring/; make test runs
# them too, with the SQL against a migrated database): fetches promtool once.
monitoring-check:
	@scripts/deps test
	tests/monitoring/run

# genq lag beside KEDA's own Kafka scaler (tests/integration/0401): builds the scaler from
# the Go module proxy once (about half an hour and 5 GB), then make test runs 0401 as well.
keda-check: all
	@scripts/deps test
	@GENQ_TEST_KEDA=1 tests/run --bindir $(BINDIR) --asan-bindir $(BINDIR) --only 0401

# The Dockerfile built in chroots, without a Docker engine (root; make test runs it too).
image-check:
	@scripts/deps image
	python3 tests/k8s/image_build.py Dockerfile

lint:
	@scripts/lint

# docs/configuration.md is generated from lib/cfg_table.c; tests/docs-check fails when stale.
docs: $(GENQ)
	$(GENQ) help config > docs/configuration.md

style-check:
	@scripts/deps dev
	clang-format --dry-run --Werror $(STYLE_SRC)

clean:
	rm -rf build bin

-include $(LIB_OBJ:.o=.d) $(BUILDDIR)/cmd/genq.d $(TEST_SRC:tests/unit/%.c=$(BUILDDIR)/tests/unit/%.d)

# The version lives in one generated header, rewritten only when `git describe` changes, so
# a new commit recompiles one file and a no-op `make` rebuilds and relinks nothing.
$(BUILDDIR)/gen/version.h: FORCE
	@mkdir -p $(dir $@)
	@echo '#define GQ_VERSION "$(VERSION)"' | cmp -s - $@ || echo '#define GQ_VERSION "$(VERSION)"' > $@
$(BUILDDIR)/lib/version.o: $(BUILDDIR)/gen/version.h
$(BUILDDIR)/lib/version.o: private CFLAGS += -include $(BUILDDIR)/gen/version.h

# The real ComfyUI 0.3.64 (CPU) as a test peer: installed once into ~/.cache/genq (tests/comfyreal/).
comfyui-real:
	@tests/comfyreal/install

# The experiments behind tests/comfyreal/FACTS.md (10-20 minutes): build/comfyreal-facts/.
comfyui-facts: comfyui-real
	@scripts/deps test
	@tests/comfyreal/facts
