# Drover build: every program into bin/ (or build/test/bin for the
# sanitizer build that `make test` uses), tests, install, demo.
#
#   make                 release build into bin/
#   make test            install deps, sanitizer build, unit + integration tests
#   make demo            install deps, build, run an all-in-one cluster and a job
#   make install PREFIX=/usr/local DESTDIR=
#   make bench           benchmarks under bench/

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
MODE    ?= release

ifeq ($(MODE),test)
OUT        := build/test
BINDIR     := build/test/bin
MODE_CFLAGS  := -O1 -g -Werror -fsanitize=address,undefined \
                -fno-sanitize-recover=all -fno-omit-frame-pointer
MODE_LDFLAGS := -fsanitize=address,undefined
else
OUT        := build/release
BINDIR     := bin
MODE_CFLAGS  := -O2 -g
MODE_LDFLAGS :=
endif

WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Wwrite-strings
PQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
ALL_CFLAGS  = -std=gnu11 $(WARN) -D_GNU_SOURCE -I. -I$(OUT)/gen $(PQ_CFLAGS) -pthread \
              $(MODE_CFLAGS) $(CFLAGS) -MMD -MP
ALL_LDFLAGS = -pthread $(MODE_LDFLAGS) $(LDFLAGS)
LIBS    := -lpq -lev -lssl -lcrypto -lcurl -ljansson -lhwloc -lhttp_parser -lm

LIB_SRC   := $(wildcard lib/*.c) $(wildcard integrations/*/*.c) \
             $(OUT)/gen/migrations.c
LIB_OBJ   := $(patsubst %.c,$(OUT)/%.o,$(filter-out $(OUT)/%,$(LIB_SRC))) \
             $(OUT)/gen/migrations.o
LIBDROVER := $(OUT)/libdrover.a

# Each program: <dir>/main.c holds main(); the rest of the folder is an
# archive that unit tests may link too.
PROG_DIRS := cli qmgr sched noded
prog_name  = $(if $(filter cli,$(1)),drover,drover-$(1))
PROG_ARCH  = $(foreach d,$(PROG_DIRS),$(OUT)/lib$(d).a)
PROGRAMS   := $(foreach d,$(PROG_DIRS),$(BINDIR)/$(call prog_name,$(d)))
PBS_LINKS  := qsub qstat qdel qhold qrls qalter qsig qrerun qmove pbsnodes pbsdsh qmgr
LINKS      := $(addprefix $(BINDIR)/,$(PBS_LINKS))

UNIT_SRC  := $(wildcard tests/unit/test-*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/unit/%,$(UNIT_SRC))

.PHONY: all deps test test-build unit integration demo install clean bench \
        bench-c1m bench-throughput bench-qstat bench-backfill format check-banned
all: $(PROGRAMS) $(LINKS)

deps:
	@scripts/deps.sh

$(OUT)/gen/migrations.c: $(sort $(wildcard sql/*.sql)) scripts/embed-sql.sh
	@mkdir -p $(dir $@)
	scripts/embed-sql.sh $(sort $(wildcard sql/*.sql)) > $@.tmp && mv $@.tmp $@

$(OUT)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(OUT)/gen/migrations.o: $(OUT)/gen/migrations.c
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBDROVER): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

define prog_rules
$(1)_OBJ := $$(patsubst %.c,$$(OUT)/%.o,$$(filter-out $(1)/main.c,$$(wildcard $(1)/*.c)))
$$(OUT)/lib$(1).a: $$($(1)_OBJ)
	@rm -f $$@
	ar rcs $$@ $$^
$$(BINDIR)/$(call prog_name,$(1)): $$(OUT)/$(1)/main.o $$(OUT)/lib$(1).a $$(LIBDROVER)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $$(LIBS)
endef
$(foreach d,$(PROG_DIRS),$(eval $(call prog_rules,$(d))))

$(LINKS): $(BINDIR)/drover
	ln -sf drover $@

# tests/unit/test-<prog>-*.c also link that program's archive.
unit_prog = $(firstword $(foreach d,$(PROG_DIRS),$(if $(filter test-$(d)-%,$(1)),$(d))))
.SECONDEXPANSION:
$(OUT)/unit/%: tests/unit/%.c tests/unit/unit.h $$(if $$(call unit_prog,$$*),$(OUT)/lib$$(call unit_prog,$$*).a) $(LIBDROVER)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(if $(call unit_prog,$*),$(OUT)/lib$(call unit_prog,$*).a) $(LIBDROVER) $(LIBS)

test-build:
	$(MAKE) MODE=test all $(patsubst tests/unit/%.c,build/test/unit/%,$(UNIT_SRC))

test: deps check-banned
	$(MAKE) test-build
	scripts/run-tests.sh

unit: deps
	$(MAKE) test-build
	scripts/run-tests.sh unit

integration: deps
	$(MAKE) test-build
	scripts/run-tests.sh integration

check-banned:
	@scripts/check-banned.sh

demo: deps
	$(MAKE) all
	scripts/demo.sh

# Benchmarks print their figures; docs/performance.md records them.
# make bench-c1m: 5,000 simulated nodes, 1,000 jobs x 1,000 tasks, with 1,
# 2 and 4 scheduler workers (C1M_WORKERS, C1M_ARGS to change).
C1M_WORKERS ?= 1 2 4
C1M_ARGS ?=
bench: bench-c1m bench-throughput bench-qstat

bench-c1m: deps
	$(MAKE) all
	@for w in $(C1M_WORKERS); do \
	    python3 bench/c1m.py --workers $$w $(C1M_ARGS) || exit 1; \
	done

# make bench-throughput: 2,000 trivial jobs through qsub (one loop, 8
# loops, one array) on one real noded, then on simulated nodes, and the
# Slurm peer (../shared/peers/slurm) side by side; TPUT_ARGS to change.
TPUT_ARGS ?=
bench-throughput: deps
	$(MAKE) all
	python3 bench/throughput.py $(TPUT_ARGS)

# make bench-qstat: qstat latency at 100,000 queued jobs (QSTAT_ARGS).
QSTAT_ARGS ?=
bench-qstat: deps
	$(MAKE) all
	python3 bench/qstat_scale.py $(QSTAT_ARGS)

# make bench-backfill: a seeded Lublin-Feitelson workload of 2,000 jobs
# (times compressed 16x) on 32 simulated 4-core nodes, replayed 200 times
# faster than real time, once in strict order and once with EASY backfill
# (BACKFILL_ARGS to change; --swf FILE replays a Parallel Workloads
# Archive trace).
BACKFILL_ARGS ?= --jobs 2000 --nodes 32 --cores 4 --max-run 3600 --compress 16 --scale 200
bench-backfill: deps
	$(MAKE) all
	python3 bench/replay.py $(BACKFILL_ARGS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	for l in $(PBS_LINKS); do ln -sf drover $(DESTDIR)$(PREFIX)/bin/$$l; done

format:
	clang-format -i $(wildcard lib/*.[ch] */*.[ch] tests/unit/*.[ch])

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
