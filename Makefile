# mailtap — build, test, demo. `make test` and `make demo` install what they need first.
CC      ?= cc
BUILD   ?= build
# Benchmark scratch (generated captures, bare loops): set before any rule names it (a rule's
# prerequisites are expanded as it is read: bench-replay's once named /bin/gen_capture).
BENCH_DIR ?= build-bench
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes \
           -Wformat=2 -Wno-format-nonliteral -I.
LDLIBS  += -lnids -lpcap -lsqlite3 -lncursesw -ltinfo -lm -pthread
TEST_LDLIBS = -lcmocka

ifeq ($(SAN),1)
BUILD   := build-san
CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# Every layer's .c files are the library; main.c is the program; tests/test_*.c are
# cmocka suites linked against the library.
LIB_SRC  := $(sort $(wildcard capture/*.c reassembly/*.c protocols/*.c store/*.c cli/*.c ui/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HEADERS  := $(wildcard */*.h)

DEB_PACKAGES := gcc make pkg-config libpcap-dev libnids-dev libsqlite3-dev libncurses-dev \
                libcmocka-dev sqlite3 tmux python3 iproute2 tcpreplay ethtool groff-base man-db

.PHONY: all deps test unit pcaptest uitest sensortest replaytest santest demo clean bench

all: mailtap

# Renamed into place: a running ./mailtap (a live capture, a console) cannot be overwritten.
mailtap: $(BUILD)/mailtap
	cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/mailtap: $(BUILD)/main.o $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(LIB_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS) $(TEST_LDLIBS)

# Installs the Debian packages of a list that are missing (needs root, or sudo).
define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
endef

deps:
	$(call install_missing,$(DEB_PACKAGES))

# Unit suites (cmocka), then the pcap, console, sensor, live-replay and install suites,
# each printing its own summary.
test: deps
	$(MAKE) all unit pcaptest uitest sensortest replaytest installtest

unit: $(TEST_BIN)
	@set -e; for t in $(TEST_BIN); do echo "== $$t"; $$t; done

pcaptest: mailtap
	python3 tests/pcap_suite.py --mailtap ./mailtap

# `mailtap capture` as a sensor, in private network namespaces: signals, privilege drop,
# the interface vanishing, stats, workers; one-sided and lossy captures, retention.
sensortest: mailtap
	python3 tests/sensor_suite.py --mailtap ./mailtap

# Live capture vs offline decoding: captures replayed with tcpreplay over a veth pair
# between two private namespaces (prints SKIPPED where namespaces are not permitted).
replaytest: mailtap
	tests/replay_netns.sh ./mailtap

# Live capture at stepped rates: REPLAY_MB (200), REPLAY_RATES, WORKERS, BUFFER_MB.
bench-replay: mailtap $(BENCH_DIR)/bin/gen_capture
	bench/replay_rates.sh --mailtap ./mailtap

# The real console driven through tmux: keys in, screen out.
uitest: mailtap
	tests/ui_tmux.sh ./mailtap $(BUILD)/ui-test.db

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
SAN_TEST_BIN := $(TEST_SRC:tests/%.c=build-san/tests/%)
santest: deps
	$(MAKE) SAN=1 build-san/mailtap $(SAN_TEST_BIN)
	@set -e; for t in $(SAN_TEST_BIN); do echo "== $$t"; $$t; done
	python3 tests/pcap_suite.py --mailtap build-san/mailtap
	tests/ui_tmux.sh build-san/mailtap build-san/ui-test.db
	python3 tests/sensor_suite.py --mailtap build-san/mailtap

# Decodes the bundled capture and opens the console (on a terminal; else prints the list).
demo: deps
	$(MAKE) all
	rm -f demo.db demo.db-wal demo.db-shm
	./mailtap read -d demo.db --local 127.0.0.1/32 --local ::1/128 --port smtp:2526 --port pop3:1110 --port imap:1143 pcaps/demo.pcap
	@if [ -t 0 ] && [ -t 1 ]; then ./mailtap ui -d demo.db; else ./mailtap list -d demo.db; fi

clean:
	rm -rf build build-san mailtap demo.db demo.db-wal demo.db-shm

# ---- fuzzing (tests/fuzz/) ------------------------------------------------------------
# libFuzzer targets built with clang, AddressSanitizer and UndefinedBehaviorSanitizer into
# build-fuzz/. `make fuzz FUZZ_SECONDS=N [FUZZ_JOBS=2]` runs each for N seconds;
# `make fuzz-smoke` replays tests/fuzz/regressions/ and runs each for 20 s (exit 1 on a
# crash). tests/fuzz/make_seeds.py regenerates tests/fuzz/corpus/ from pcaps/.
FUZZ_CC      ?= clang
FUZZ_BUILD   := build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_JOBS    ?= 1
FUZZ_CFLAGS  := -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -I. -g -O1 -fno-omit-frame-pointer \
                -Wall -Wextra -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_LIB_SRC := $(sort $(wildcard protocols/*.c reassembly/*.c)) capture/linklayer.c \
                capture/source.c cli/localnets.c tests/fuzz/fuzz_check.c tests/fuzz/fuzz_decoder.c
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_TARGETS := fuzz_smtp fuzz_pop3 fuzz_imap fuzz_linereader fuzz_packet fuzz_pcapfile \
                fuzz_dns fuzz_tls fuzz_words
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)

.PHONY: fuzz-deps fuzz-build fuzz fuzz-smoke
.SECONDARY: $(FUZZ_LIB_OBJ) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/obj/tests/fuzz/%.o)

fuzz-deps:
	$(call install_missing,clang libclang-rt-14-dev)

fuzz-build: fuzz-deps
	$(MAKE) $(FUZZ_BINS)

$(FUZZ_BUILD)/obj/%.o: %.c $(HEADERS) $(wildcard tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ -lnids -lpcap

fuzz: fuzz-build
	FUZZ_TARGETS="$(FUZZ_TARGETS)" tests/fuzz/run.sh fuzz $(FUZZ_SECONDS) $(FUZZ_JOBS)

fuzz-smoke: fuzz-build
	FUZZ_TARGETS="$(FUZZ_TARGETS)" tests/fuzz/run.sh smoke 20 $(FUZZ_JOBS)
# ---- end of fuzzing ---------------------------------------------------------------------

# --- bench (bench/): generated captures, floors, mailtap and tshark timed in one run -----
# `make bench` (BENCH_MB=64 for a quick try); the scratch directory is $(BENCH_DIR).
BENCH_BIN := $(BENCH_DIR)/bin/gen_capture $(BENCH_DIR)/bin/bare_pcap $(BENCH_DIR)/bin/bare_nids

$(BENCH_DIR)/bin/gen_capture: bench/gen_capture.c
	@mkdir -p $(dir $@); echo '*' > $(BENCH_DIR)/.gitignore
	$(CC) $(CFLAGS) -o $@ $< -lm

$(BENCH_DIR)/bin/bare_pcap: bench/bare_pcap.c bench/capture_file.h
	@mkdir -p $(dir $@); echo '*' > $(BENCH_DIR)/.gitignore
	$(CC) $(CFLAGS) -o $@ $< -lpcap

$(BENCH_DIR)/bin/bare_nids: bench/bare_nids.c bench/capture_file.h
	@mkdir -p $(dir $@); echo '*' > $(BENCH_DIR)/.gitignore
	$(CC) $(CFLAGS) -o $@ $< -lnids -lpcap

bench: mailtap $(BENCH_BIN)
	python3 bench/bench.py --mailtap ./mailtap --bin $(BENCH_DIR)/bin --dir $(BENCH_DIR)
# --- end bench ----------------------------------------------------------------------------

# --- install (docs/mailtap.1, contrib/): `make install [PREFIX=/usr] [DESTDIR=/tmp/pkg]` ---
# Installs what `make` built (run `make` first as yourself: install only rebuilds when the
# binary is out of date), the man page (uncompressed: man reads it as is, packaging tools
# compress), the systemd unit with BINDIR and SYSCONFDIR written into it, and the example
# settings as $(SYSCONFDIR)/default/mailtap when none is there yet. `make uninstall`
# removes them; the settings only while unchanged. `make installtest` checks both.
PREFIX         ?= /usr/local
DESTDIR        ?=
BINDIR         ?= $(PREFIX)/bin
MANDIR         ?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR     ?= /etc
INSTALL        ?= install

.PHONY: install uninstall installtest

install: mailtap docs/mailtap.1 contrib/mailtap.service contrib/mailtap.default
	$(INSTALL) -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSCONFDIR)/default
	$(INSTALL) -m 0755 mailtap $(DESTDIR)$(BINDIR)/mailtap
	$(INSTALL) -m 0644 docs/mailtap.1 $(DESTDIR)$(MANDIR)/man1/mailtap.1
	sed -e 's|/usr/local/bin/mailtap|$(BINDIR)/mailtap|g' \
	    -e 's|/etc/default/mailtap|$(SYSCONFDIR)/default/mailtap|g' \
	    contrib/mailtap.service > $(DESTDIR)$(SYSTEMDUNITDIR)/mailtap.service.tmp
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/mailtap.service.tmp
	mv -f $(DESTDIR)$(SYSTEMDUNITDIR)/mailtap.service.tmp $(DESTDIR)$(SYSTEMDUNITDIR)/mailtap.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/default/mailtap ]; then \
	  echo "kept $(DESTDIR)$(SYSCONFDIR)/default/mailtap (the example: contrib/mailtap.default)"; \
	else \
	  echo "$(INSTALL) -m 0644 contrib/mailtap.default $(DESTDIR)$(SYSCONFDIR)/default/mailtap"; \
	  $(INSTALL) -m 0644 contrib/mailtap.default $(DESTDIR)$(SYSCONFDIR)/default/mailtap; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/mailtap $(DESTDIR)$(MANDIR)/man1/mailtap.1 \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/mailtap.service
	@if cmp -s contrib/mailtap.default $(DESTDIR)$(SYSCONFDIR)/default/mailtap; then \
	  echo "rm -f $(DESTDIR)$(SYSCONFDIR)/default/mailtap"; \
	  rm -f $(DESTDIR)$(SYSCONFDIR)/default/mailtap; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/default/mailtap ]; then \
	  echo "kept $(DESTDIR)$(SYSCONFDIR)/default/mailtap (edited)"; \
	fi

installtest: mailtap
	MAKE="$(MAKE)" tests/install_test.sh
# --- end install --------------------------------------------------------------------------
