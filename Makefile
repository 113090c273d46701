# mailtap — build, test, demo. `make test` and `make demo` install what they need first.
CC      ?= cc
BUILD   ?= build
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes \
           -Wformat=2 -Wno-format-nonliteral -I.
LDLIBS  += -lnids -lpcap -lsqlite3 -lncursesw -ltinfo
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
                libcmocka-dev sqlite3 tmux python3

.PHONY: all deps test unit pcaptest uitest santest demo clean bench

all: mailtap

mailtap: $(BUILD)/mailtap
	cp $< $@

$(BUILD)/mailtap: $(BUILD)/main.o $(LIB_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(LIB_OBJ) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS) $(TEST_LDLIBS)

# Installs the Debian packages that are missing (needs root, or sudo).
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# Unit suites (cmocka), then the pcap suite, each printing its own summary.
test: deps
	$(MAKE) all unit pcaptest uitest

unit: $(TEST_BIN)
	@set -e; for t in $(TEST_BIN); do echo "== $$t"; $$t; done

pcaptest: mailtap
	python3 tests/pcap_suite.py --mailtap ./mailtap

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

# Decodes the bundled capture and opens the console (on a terminal; else prints the list).
demo: deps
	$(MAKE) all
	rm -f demo.db demo.db-wal demo.db-shm
	./mailtap read -d demo.db --port smtp:2526 --port pop3:1110 --port imap:1143 pcaps/demo.pcap
	@if [ -t 0 ] && [ -t 1 ]; then ./mailtap ui -d demo.db; else ./mailtap list -d demo.db; fi

clean:
	rm -rf build build-san mailtap demo.db demo.db-wal demo.db-shm
