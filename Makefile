# weft - one GNU Makefile for the library, examples, tests, benchmarks and
# tools.  Each variant builds in its own folder, so they never mix:
#
#   make                    build/release: libweft.a, libweft.so, weft.pc,
#                           examples, tools
#   make test               install missing Debian packages, build, run
#                           every unit and stress test; ends with
#                           "N passed, N failed"
#   make test SAN=thread    the same under ThreadSanitizer  (build/thread)
#   make test SAN=address   under AddressSanitizer + UBSan  (build/address)
#   make test DEBUG=1       with WEFT_DEBUG checks          (build/debug)
#   make valgrind           examples and core unit tests under memcheck
#   make bench              benchmarks beside their anchors
#   make demo               the demonstration (the seed programs)
#   make install PREFIX=/usr/local
#   make CC=clang           any of the above with clang
#   make CONTEXT=ucontext   any of the above with the ucontext context
#                           switch instead of the assembly one
#                           (build/<variant>-ucontext)
#   make CC=aarch64-linux-gnu-gcc test
#                           cross build for aarch64 (build/aarch64-<variant>);
#                           the tests that need no Check run under qemu-user
#
# Sources are found by wildcard: a new src/<layer>/<file>.c, test, example
# or benchmark needs no edit here.

CC ?= cc
PREFIX ?= /usr/local
SAN ?=
DEBUG ?=

# The context switch (docs/ARCHITECTURE.md, "Context switch"): the assembly
# switch of the target's architecture (from the compiler, so a cross
# compiler picks its own), or CONTEXT=ucontext, which is also the default
# where no switch.S exists.  A target other than this machine's runs its
# tests under qemu-user.
ARCH := $(firstword $(subst -, ,$(shell $(CC) -dumpmachine)))
HOST_ARCH := $(shell uname -m)
CONTEXT ?= $(if $(wildcard src/platform/arch/$(ARCH)/switch.S),asm,ucontext)
ifeq ($(CONTEXT),ucontext)
  CONTEXT_SRC := src/platform/arch/ucontext.c
  CONTEXT_FLAGS := -DWEFT_CONTEXT_UCONTEXT
  VARIANT_SUFFIX := -ucontext
else ifeq ($(CONTEXT),asm)
  CONTEXT_SRC := src/platform/arch/$(ARCH)/switch.S
  CONTEXT_FLAGS :=
  VARIANT_SUFFIX :=
else
  $(error CONTEXT must be asm or ucontext)
endif
ifneq ($(ARCH),$(HOST_ARCH))
  CROSS := 1
  VARIANT_PREFIX := $(ARCH)-
  TEST_EXEC := env QEMU_LD_PREFIX=/usr/$(ARCH)-linux-gnu qemu-$(ARCH)
endif

ifeq ($(SAN),thread)
  VARIANT := thread
  SANFLAGS := -fsanitize=thread
  OPT := -O1
else ifeq ($(SAN),address)
  VARIANT := address
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
              -fno-omit-frame-pointer
  OPT := -O1
else ifneq ($(SAN),)
  $(error SAN must be thread or address)
else ifeq ($(DEBUG),1)
  VARIANT := debug
  SANFLAGS :=
  OPT := -O0 -DWEFT_DEBUG
else
  VARIANT := release
  SANFLAGS :=
  OPT := -O2
endif

BUILD ?= build
B := $(BUILD)/$(VARIANT_PREFIX)$(VARIANT)$(VARIANT_SUFFIX)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wno-unused-parameter
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(OPT) -g -pthread $(WARN) $(SANFLAGS) \
              $(CONTEXT_FLAGS) -Iinclude -Isrc $(CFLAGS)
LDFLAGS_ALL := -pthread $(SANFLAGS) $(LDFLAGS)

LIB_SRC := $(sort $(wildcard src/*/*.c)) $(CONTEXT_SRC)
LIB_OBJ := $(addprefix $(B)/obj/,$(addsuffix .o,$(basename $(LIB_SRC))))
LIB_PIC := $(addprefix $(B)/pic/,$(addsuffix .o,$(basename $(LIB_SRC))))

CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

SUPPORT_SRC := $(wildcard tests/support/*.c)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
STRESS_SRC := $(sort $(wildcard tests/stress/stress_*.c))
# A cross build has no Check for its target: it builds and runs only the
# tests that can also be built without it (-DWEFT_NO_CHECK).
ifdef CROSS
  CHECK_CFLAGS := -DWEFT_NO_CHECK
  CHECK_LIBS :=
  SUPPORT_SRC :=
  UNIT_SRC := tests/unit/test_context.c
  STRESS_SRC :=
endif
TEST_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%) \
            $(STRESS_SRC:tests/stress/%.c=$(B)/tests/%)

EXAMPLE_SRC := $(sort $(wildcard examples/*.c))
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(B)/examples/%)

TOOL_SRC := $(sort $(wildcard tools/*.c))
TOOL_BIN := $(TOOL_SRC:tools/%.c=$(B)/tools/%)

BENCH_SRC := $(sort $(wildcard bench/micro/bench_*.c))
BENCH_BIN := $(BENCH_SRC:bench/micro/%.c=$(B)/bench/%)
# The network benchmarks (bench/net/run-echo.sh runs them): servers and the
# load client, each its own program.
NET_BENCH_SRC := $(sort $(wildcard bench/net/*.c))
NET_BENCH_BIN := $(NET_BENCH_SRC:bench/net/%.c=$(B)/bench/net/%)

HEADERS := $(wildcard include/*.h include/weft/*.h) \
           $(wildcard src/*/*.h)

.PHONY: all lib examples tools tests test stress bench demo install valgrind \
        uninstall clean deps format
.SECONDARY:

all: lib examples tools

lib: $(B)/libweft.a $(B)/libweft.so $(B)/weft.pc

$(B)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(B)/pic/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fPIC -c $< -o $@

$(B)/obj/%.o: %.S $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(B)/pic/%.o: %.S $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fPIC -c $< -o $@

$(B)/libweft.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/libweft.so: $(LIB_PIC)
	$(CC) -shared -Wl,-soname,libweft.so.0 -o $@ $^ $(LDFLAGS_ALL)

$(B)/weft.pc: weft.pc.in
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|0.1.0|g' $< > $@

examples: $(EXAMPLE_BIN)
$(B)/examples/%: examples/%.c $(B)/libweft.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $< -o $@ $(B)/libweft.a $(LDFLAGS_ALL)

tools: $(TOOL_BIN)
$(B)/tools/%: tools/%.c $(B)/libweft.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $< -o $@ $(B)/libweft.a $(LDFLAGS_ALL)

tests: deps $(TEST_BIN) $(EXAMPLE_BIN)
$(B)/tests/test_%: tests/unit/test_%.c $(SUPPORT_SRC) $(B)/libweft.a $(HEADERS) \
                   $(wildcard tests/support/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(CHECK_CFLAGS) -Itests/support $< $(SUPPORT_SRC) \
	    -o $@ $(B)/libweft.a $(CHECK_LIBS) $(LDFLAGS_ALL)
$(B)/tests/stress_%: tests/stress/stress_%.c $(SUPPORT_SRC) $(B)/libweft.a \
                     $(HEADERS) $(wildcard tests/support/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(CHECK_CFLAGS) -Itests/support $< $(SUPPORT_SRC) \
	    -o $@ $(B)/libweft.a $(CHECK_LIBS) $(LDFLAGS_ALL)

# Runs every test binary (each Check test in its own process, with a
# timeout) and prints the totals.  WEFT_EXAMPLES_DIR lets the example tests
# find the example programs of this variant.
test: tests
	@WEFT_EXAMPLES_DIR=$(abspath $(B))/examples VARIANT=$(VARIANT) \
	    WEFT_TEST_EXEC='$(TEST_EXEC)' sh tools/run-tests.sh $(TEST_BIN)

# The examples and the park/lock/event unit tests under Valgrind memcheck.
valgrind: tests
	@sh tools/run-valgrind.sh $(B)

stress: tests
	@VARIANT=$(VARIANT) WEFT_TEST_EXEC='$(TEST_EXEC)' sh tools/run-tests.sh \
	    $(STRESS_SRC:tests/stress/%.c=$(B)/tests/%)

$(B)/bench/%: bench/micro/%.c $(B)/libweft.a $(HEADERS) \
              $(wildcard bench/micro/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $< -o $@ $(B)/libweft.a $(LDFLAGS_ALL)

$(B)/bench/net/%: bench/net/%.c $(B)/libweft.a $(HEADERS) \
                  $(wildcard bench/micro/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $< -o $@ $(B)/libweft.a $(LDFLAGS_ALL)

bench: deps $(BENCH_BIN) $(NET_BENCH_BIN)
	@sh tools/run-bench.sh $(B)/bench

demo: all
	@$(B)/tools/weft-demo $(B)/examples

deps:
	@sh tools/install-deps.sh

install: lib
	install -d $(DESTDIR)$(PREFIX)/include/weft $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/weft.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/weft/*.h $(DESTDIR)$(PREFIX)/include/weft/
	install -m 644 $(B)/libweft.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(B)/libweft.so $(DESTDIR)$(PREFIX)/lib/libweft.so.0.1.0
	ln -sf libweft.so.0.1.0 $(DESTDIR)$(PREFIX)/lib/libweft.so.0
	ln -sf libweft.so.0 $(DESTDIR)$(PREFIX)/lib/libweft.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|0.1.0|g' weft.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/weft.pc

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/weft $(DESTDIR)$(PREFIX)/include/weft.h
	rm -f $(DESTDIR)$(PREFIX)/lib/libweft.* $(DESTDIR)$(PREFIX)/lib/pkgconfig/weft.pc

format:
	clang-format -i $(LIB_SRC) $(HEADERS) $(UNIT_SRC) $(STRESS_SRC) \
	    $(EXAMPLE_SRC) $(TOOL_SRC) $(BENCH_SRC) $(NET_BENCH_SRC)

clean:
	rm -rf build
