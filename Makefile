# aiserve: one Makefile for three programs. Each module directory (lib, engine,
# server, server/wsgi, server/model, loadgen; the module is named by the last
# part: lib engine server wsgi model loadgen) holds a module.mk that names its
# pkg-config packages, extra libraries and the modules it links against; this
# file turns every module into a static library (lib<module>.a, the module's
# *.c without the folders of other modules below it), a Criterion test binary
# (<module>_tests, all *_test.c of the module) and, when it has a main.c, a
# program (linked with <module>_PROG_DEPS too).
#
#   make            build the three programs into $(BUILD)/
#   make test       install deps, then format check, unit tests (plain and
#                   ASan+UBSan), black-box tests, fuzz smoke; last line totals
#   make asan       build everything with ASan+UBSan into build-asan/
#   make demo       install deps, build, serve and load-test for a short while
#   make fuzz       build the libFuzzer targets (clang)
#   make soak       aiserve under a mixed load for SOAK_SECONDS (600), growth fitted
#   make install    programs, man pages, models, examples, systemd units
#                   (PREFIX, DESTDIR); make uninstall; make deb (deploy/install.mk)
#   make article    the article's experiments against real servers: article/report.md
#                   (ARTICLE_SECONDS=N of load per row, default 20)

BUILD ?= build
CC ?= cc
PKG_CONFIG ?= pkg-config
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra $(if $(CI),-Werror,)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ifeq ($(SAN),1)
CFLAGS += $(SAN_FLAGS)
LDFLAGS += $(SAN_FLAGS)
endif
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS)
ALL_CPPFLAGS = -I. -MMD -MP $(CPPFLAGS)
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
ALL_CPPFLAGS += -DAISERVE_VERSION='"$(VERSION)"'

.DEFAULT_GOAL := all
MODULE_DIRS := lib engine server server/wsgi server/model loadgen
MODULES := $(notdir $(MODULE_DIRS))
$(foreach d,$(MODULE_DIRS),$(eval $(notdir $(d))_DIR := $(d)))
include $(foreach d,$(MODULE_DIRS),$(wildcard $(d)/module.mk))

# pkgs_cflags/pkgs_libs: pkg-config output for a module and everything it links.
# Only recipes and recursive (=) variables use them, so pkg-config runs when
# something compiles or links, never while make reads this file: `make demo`
# and `make test` on a fresh machine install the packages before anything asks.
mod_closure = $(1) $($(1)_DEPS)
# uniq: the words of $(1), each at its first place (link order kept)
uniq = $(if $(1),$(firstword $(1)) $(call uniq,$(filter-out $(firstword $(1)),$(1))))
# prog_mods: what a module's program links, most dependent first
prog_mods = $(call uniq,$(foreach m,$($(1)_PROG_DEPS),$(call mod_closure,$(m))) $(call mod_closure,$(1)))
pc_cflags = $(if $(strip $(1)),$(shell $(PKG_CONFIG) --cflags $(1)))
pc_libs = $(if $(strip $(1)),$(shell $(PKG_CONFIG) --libs $(1)))

define MODULE
# a module folder below this one (server/wsgi in server) is that module's, not this one's
$(1)_ALL_SRCS := $$(shell find $$($(1)_DIR) $$(foreach d,$$(filter $$($(1)_DIR)/%,$(MODULE_DIRS)),-path $$(d) -prune -o) -name '*.c' -print | sort)
$(1)_SRCS := $$(filter-out $$($(1)_DIR)/main.c %_test.c $$($(1)_EXCLUDE),$$($(1)_ALL_SRCS))
$(1)_TEST_SRCS := $$(filter %_test.c,$$($(1)_ALL_SRCS))
$(1)_OBJS := $$(patsubst %.c,$(BUILD)/obj/%.o,$$($(1)_SRCS) $$($(1)_GEN_SRCS))
$(1)_TEST_OBJS := $$(patsubst %.c,$(BUILD)/obj/%.o,$$($(1)_TEST_SRCS))
$(1)_LIB := $(BUILD)/lib$(1).a
$(1)_PKG_ALL := $$(foreach m,$$(call mod_closure,$(1)),$$($$(m)_PKGS))
$(1)_LINK = $$(foreach m,$$(call mod_closure,$(1)),$(BUILD)/lib$$(m).a) \
	$$(call pc_libs,$$($(1)_PKG_ALL)) $$(foreach m,$$(call mod_closure,$(1)),$$($$(m)_LDLIBS)) -lpthread -lm

$$($(1)_OBJS) $$($(1)_TEST_OBJS): ALL_CPPFLAGS += $$(call pc_cflags,$$($(1)_PKG_ALL))

$$($(1)_LIB): $$($(1)_OBJS)
	@mkdir -p $$(@D)
	rm -f $$@ && ar rcs $$@ $$^

$(BUILD)/tests/$(1)_tests: $$($(1)_TEST_OBJS) $$(foreach m,$$(call mod_closure,$(1)),$(BUILD)/lib$$(m).a)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$($(1)_TEST_OBJS) $$($(1)_LINK) $$(shell $(PKG_CONFIG) --libs criterion)

ifneq ($$($(1)_PROG),)
$(1)_PROG_PKGS = $$(foreach m,$$(call prog_mods,$(1)),$$($$(m)_PKGS))
$(BUILD)/obj/$$($(1)_DIR)/main.o: ALL_CPPFLAGS += $$(call pc_cflags,$$($(1)_PROG_PKGS))
$(BUILD)/$$($(1)_PROG): $(BUILD)/obj/$$($(1)_DIR)/main.o $$(foreach m,$$(call prog_mods,$(1)),$(BUILD)/lib$$(m).a)
	$$(CC) $$(LDFLAGS) -o $$@ $(BUILD)/obj/$$($(1)_DIR)/main.o \
		$$(foreach m,$$(call prog_mods,$(1)),$(BUILD)/lib$$(m).a) $$(call pc_libs,$$($(1)_PROG_PKGS)) \
		$$(foreach m,$$(call prog_mods,$(1)),$$($$(m)_LDLIBS)) -lpthread -lm
PROGS += $(BUILD)/$$($(1)_PROG)
$$($(1)_PROG): $(BUILD)/$$($(1)_PROG)
.PHONY: $$($(1)_PROG)
endif
ifneq ($$($(1)_TEST_SRCS),)
UNIT_TESTS += $(BUILD)/tests/$(1)_tests
endif
endef
$(foreach m,$(MODULES),$(eval $(call MODULE,$(m))))

include deploy/install.mk

.PHONY: all test unit asan demo fuzz format format-check clean bench soak
all: $(PROGS) $(UNIT_TESTS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

unit: $(UNIT_TESTS)

asan:
	$(MAKE) BUILD=build-asan SAN=1 all

test:
	@scripts/install-deps.sh
	@scripts/run-tests.sh

demo:
	@scripts/install-deps.sh
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

bench: all
	@bench/run-all.sh

# aiserve under a long mixed load, RSS and fds sampled and fitted (SOAK_SECONDS=600)
soak: all
	@/usr/bin/python3 scripts/soak.py

.PHONY: article
article: all
	@/usr/bin/python3 scripts/article/run.py

# ---- libFuzzer targets: fuzz/<module>_<name>.c links lib<module>.a built with clang
FUZZ_SRCS := $(wildcard fuzz/*.c)
FUZZ_BINS := $(patsubst fuzz/%.c,build-fuzz/%,$(FUZZ_SRCS))
fuzz: $(FUZZ_BINS)
build-fuzz/%: fuzz/%.c FORCE
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang SAN=1 \
		CFLAGS="-O1 -g -fsanitize=fuzzer-no-link" \
		build-fuzz/lib$(firstword $(subst _, ,$*)).a $(foreach m,$($(firstword $(subst _, ,$*))_DEPS),build-fuzz/lib$(m).a)
	clang -std=gnu11 -I. -O1 -g -fsanitize=fuzzer,address,undefined -o $@ $< \
		build-fuzz/lib$(firstword $(subst _, ,$*)).a \
		$(foreach m,$($(firstword $(subst _, ,$*))_DEPS),build-fuzz/lib$(m).a) \
		$(call pc_libs,$(foreach m,$(call mod_closure,$(firstword $(subst _, ,$*))),$($(m)_PKGS))) \
		$(foreach m,$(call mod_closure,$(firstword $(subst _, ,$*))),$($(m)_LDLIBS)) -lpthread -lm
FORCE:

# ---- formatting: clang-format owns the layout of our C (generated code excluded)
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' | grep -v -E '(^|/)(third_party|generated)/|\.pb-c\.')
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	@clang-format --dry-run -Werror $(FORMAT_FILES) && echo "format-check: ok"

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
