#!/bin/sh
# ui_tmux.sh — drives the real console in tmux: tabs, search, the detail view of a failed
# login, resize, escape sequences from the database, help, live refresh, plain locale
# without colour, and a clean exit. Then the same on a database decoded from the recorded
# captures (pcaps/demo.pcap and pcaps/smtp/escape-sequences.pcap, real Postfix and Dovecot
# dialogues): tabs, a search for a user, sorting, a failed POP3 login and its deciding
# line, resize, the trace of a message relayed in two hops (t), the security-finding
# filter (f), and a user name and a Subject carrying terminal escape sequences.
#
#   tests/ui_tmux.sh MAILTAP_BINARY DB   runs "MAILTAP_BINARY ui -d COPY_OF_DB" (make test)
#   tests/ui_tmux.sh                     builds tests/ui_data/make_demo_db.c and runs
#                                        $UI_CMD (a command taking the DB path last); the
#                                        real-capture part needs MAILTAP_BINARY: skipped
# DB must be made by tests/ui_data/make_demo_db (it is built when DB does not exist). The
# script works on a copy. Needs tmux and cc; skips (exit 0) when tmux is missing.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PASS=0 FAIL=0 SKIP=0
MAILTAP=""

if ! command -v tmux >/dev/null 2>&1; then
    echo "ui_tmux: tmux not installed: skipped"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi

TMP=$(mktemp -d /tmp/ui_tmux.XXXXXX)
SESSION="mailtap_ui_test_$$"
cleanup() {
    tmux kill-session -t "$SESSION" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

CFLAGS="-std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -O1 -I$ROOT"
MAKE_DB="$TMP/make_demo_db"
if ! cc $CFLAGS -o "$MAKE_DB" "$ROOT/tests/ui_data/make_demo_db.c" "$ROOT/store/store.c" \
        "$ROOT/store/search_build.c" "$ROOT/protocols/session.c" "$ROOT/protocols/text.c" \
        -lsqlite3 -pthread; then
    echo "ui_tmux: cannot build make_demo_db"
    echo "0 passed, 1 failed"
    exit 1
fi

DB="$TMP/demo.db"
if [ $# -ge 2 ]; then
    if [ -f "$2" ]; then
        cp "$2" "$DB"
        [ -f "$2-wal" ] && cp "$2-wal" "$DB-wal"
    else
        "$MAKE_DB" "$2" && cp "$2" "$DB"
    fi
    MAILTAP="$1"
    CMD="$MAILTAP ui -d $DB"
else
    "$MAKE_DB" "$DB" || exit 1
    CMD="${UI_CMD:?set UI_CMD to a console command (e.g. a driver calling ui_run), or pass MAILTAP_BINARY DB} $DB"
fi

ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
not_ok() {
    FAIL=$((FAIL + 1)); echo "FAIL $1"
    echo "---- screen ----"; screen; echo "----------------"
}
screen() { tmux capture-pane -t "$SESSION" -p 2>/dev/null; }
keys() { tmux send-keys -t "$SESSION" "$@"; sleep 0.3; }
# Esc must travel alone: ESC and the next key in one write read as Alt-key.
# wait_for TEXT [SECONDS]: true once TEXT (fixed string) is on screen
wait_for() {
    i=0; limit=$(( ${2:-5} * 5 ))
    while [ $i -lt $limit ]; do
        screen | grep -qF -- "$1" && return 0
        sleep 0.2; i=$((i + 1))
    done
    return 1
}
expect() { if wait_for "$2" "${3:-5}"; then ok "$1"; else not_ok "$1 (wanted: $2)"; fi; }
expect_not() { if screen | grep -qF -- "$2"; then not_ok "$1 (unwanted: $2)"; else ok "$1"; fi; }

start() {   # start ENV... : the console in a fresh 100x30 window
    rm -f "$TMP/rc"
    tmux kill-session -t "$SESSION" 2>/dev/null
    tmux new-session -d -s "$SESSION" -x 100 -y 30 \
        "env $* $CMD; echo \$? > $TMP/rc"
}
wait_exit() {
    i=0
    while [ $i -lt 50 ] && [ ! -f "$TMP/rc" ]; do sleep 0.1; i=$((i + 1)); done
    [ -f "$TMP/rc" ] && [ "$(cat "$TMP/rc")" = 0 ]
}

# ---- UTF-8, colour ----------------------------------------------------------------------
start TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8
expect "opens on the All tab" " 1 All "
expect "All lists sessions" "alex@example.com"
expect "filter line" "Filter: no filter"
TITLE=$(tmux display -t "$SESSION" -p '#{pane_title}')

keys Tab
expect "Outbound SMTP header" "Recipient(s)"
expect "Outbound SMTP rows" "relay_denied"
expect_not "Outbound SMTP has no POP3 rows" "erin"
keys Tab
expect "Inbound SMTP rows" "nobody@example.org"
keys Tab
expect "POP3 header" "Counters"
expect "POP3 rows" "retr=2/50K del=2"
keys Tab
expect "IMAP rows" "frank"
keys Tab
expect "DNS header" "Question"
keys Tab
expect "Summary tab" "Top failure reasons"
keys BTab
expect "Shift-Tab goes back" "Question"
keys 1

keys / e r i n Enter
expect "search narrows the list" 'search "erin"'
expect "search finds the user" "192.168.1.20"
expect "two sessions match" "2 sessions"
keys Enter
expect "detail of the failed login" "Session #"
expect "deciding line shown" "-ERR [AUTH] Authentication failed."
expect "status explained" "the server rejected the password"
if tmux capture-pane -t "$SESSION" -p -e | grep -a 'S: -ERR \[AUTH\]' | grep -qa "$(printf '\033')\[[0-9;]*7m"; then
    ok "deciding line highlighted (reverse)"
else
    not_ok "deciding line highlighted (reverse)"
fi
keys / Q U I T
expect "detail search prompt" "/QUIT"
if tmux capture-pane -t "$SESSION" -p -e | grep -a 'C: ' | grep -qaE "$(printf '\033')\[[0-9;]*(7|43)mQUIT"; then
    ok "detail search highlights the match"
else
    not_ok "detail search highlights the match"
fi
keys Enter
keys Escape
expect "Esc goes back to the list" "Filter: search"
keys c
expect "c clears the filter" "Filter: no filter"

# a wide screen: the server's port and the line that decided each row, in the list
tmux resize-window -t "$SESSION" -x 140 -y 30
sleep 0.5
keys 4
expect "wide: a Reply column" "Reply"
expect "wide: the deciding line in the row" "-ERR [AUTH] Authentic"
expect "wide: a Port column" "Port"
if screen | grep -F "retr=2/50K" | grep -qE ' 110 +[^ ]'; then
    ok "wide: the server's port in the row"
else
    not_ok "wide: the server's port in the row"
fi
keys 1

tmux resize-window -t "$SESSION" -x 80 -y 24
sleep 0.5
expect "resize re-flows the columns" "01-07 16:54:00"
expect_not "no wide layout left after resize" "2026-01-07 16:54:00"
if [ "$(screen | LC_ALL=C.UTF-8 wc -L)" -le 80 ] && \
   [ "$(screen | wc -l)" -le 24 ] && screen | sed -n 1p | grep -q '^ 1 All' && \
   screen | sed -n 24p | grep -qF '? help'; then
    ok "80x24 screen is clean"
else
    not_ok "80x24 screen is clean"
fi
expect "narrow: every tab named, Summary included" "7 Sum"

keys / m a l l o r y Enter
keys Enter
expect "escape sequences shown as text" 'Hello\x1b[2J\x1b]0;pwned\x07World'
expect "screen not cleared by the subject" "Session #"
[ "$(tmux display -t "$SESSION" -p '#{pane_title}')" = "$TITLE" ] && ok "title not changed" \
    || not_ok "title not changed"
keys Escape
keys c
keys / r a w u s e r Enter
expect "search finds the raw row" "raw@evil.exa"
keys Enter
expect "raw bytes from the database replaced" "rawuser?[2J?]0;pwned??31m?end"
keys G
expect "raw transcript line guarded" "rawline ?[2J?]0;pwned?done"
expect "raw detail still framed" "Session #"
[ "$(tmux display -t "$SESSION" -p '#{pane_title}')" = "$TITLE" ] && ok "title not changed by raw bytes" \
    || not_ok "title not changed by raw bytes"
keys Escape
keys c

keys ?
expect "help lists keys" "Shift-Tab"
expect "help lists the search key" "search: the list narrows"
keys q
expect "help closes" "Filter: no filter"

# live: the selection stays on its session while new ones arrive above
keys j j
expect "selection moved" " 3/12"
"$MAKE_DB" --add 3 "$DB" >/dev/null
expect "new sessions noticed" "3 new sessions above" 4
expect "selection kept on the same session" " 6/15"
keys g
expect "g shows the newest" "live3@exampl"

keys q
wait_exit && ok "q quits with status 0" || not_ok "q quits with status 0"

# ---- plain locale, NO_COLOR ---------------------------------------------------------------
start TERM=xterm-256color LANG=C LC_ALL=C NO_COLOR=1
expect "plain locale opens" "alex@example.com"
expect "plain locale status bar is ASCII" "| 15 sessions"
keys / g r e y Enter Enter
expect "UTF-8 subject shown ASCII-safe" "Subject Gr??e aus K?ln - ??????"
keys Escape
keys q
wait_exit && ok "plain locale quits with status 0" || not_ok "plain locale quits with status 0"

# ---- real captures: Postfix and Dovecot recorded on loopback (pcaps/README.md) ----------
if [ -n "$MAILTAP" ]; then
    REAL="$TMP/real.db"
    if "$MAILTAP" read -q -d "$REAL" --port smtp:2526 --port pop3:1110 --port imap:1143 \
            "$ROOT/pcaps/demo.pcap" "$ROOT/pcaps/smtp/escape-sequences.pcap" >"$TMP/read.log" 2>&1
    then
        ok "real: captures decoded"
    else
        not_ok "real: captures decoded ($(cat "$TMP/read.log"))"
    fi
    CMD="$MAILTAP ui -d $REAL"
    start TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8
    # The demo grows with the recorded scenarios: check what every version of it holds.
    expect "real: opens on the All tab" " 1 All "
    expect "real: loopback sessions listed" "127.0.0.1"
    TITLE=$(tmux display -t "$SESSION" -p '#{pane_title}')
    keys Tab
    expect "real: Outbound SMTP tab" "Recipient(s)"
    keys Tab
    expect "real: Inbound SMTP rows" "delivered"
    expect_not "real: Inbound SMTP has no POP3 rows" "login_disabled"
    keys Tab
    expect "real: POP3 tab" "Counters"
    expect "real: POP3 rows (carol's)" "carol"
    expect_not "real: POP3 has no IMAP rows" "dave"
    keys Tab
    expect "real: IMAP rows (dave's)" "dave"
    keys S
    expect "real: summary" "Top failure reasons"
    expect "real: summary names the escape user harmlessly" 'mallory\x1b[2J\x1b]0;pwned\x07'
    expect "real: summary counts the DNS lookups" " resolved "
    keys G
    expect "real: summary chart from the first session to the last" "Sessions per minute from"
    keys 1

    keys / c a
    sleep 0.5
    expect_not "real: 2 characters wait for Enter" 'search "ca"'
    keys r
    expect "real: from 3 characters the list narrows as you type" 'search "car"'
    keys o l Enter
    expect "real: search for a user" 'search "carol"'
    expect "real: her four POP3 sessions" "4 sessions"
    expect_not "real: nobody else" "dave"
    keys 4
    keys s
    expect "real: s sorts by status" "by status Z-A, newest first"
    keys o
    expect "real: o reverses it" "by status A-Z, oldest first"
    keys Enter
    expect "real: the failed POP3 login opens" "pop3 · auth_failed"
    expect "real: its deciding line" "-ERR [AUTH] Authentication failed."
    expect "real: explained" "the server rejected the password"
    if tmux capture-pane -t "$SESSION" -p -e | grep -a 'S: -ERR \[AUTH\]' | \
            grep -qa "$(printf '\033')\[[0-9;]*7m"; then
        ok "real: deciding line highlighted (reverse)"
    else
        not_ok "real: deciding line highlighted (reverse)"
    fi
    keys Escape
    expect "real: back to the list" "Filter: search"

    tmux resize-window -t "$SESSION" -x 80 -y 24
    sleep 0.5
    expect "real: resize re-flows the columns" "Time (UTC)"
    if [ "$(screen | LC_ALL=C.UTF-8 wc -L)" -le 80 ] && [ "$(screen | wc -l)" -le 24 ] && \
       screen | sed -n 1p | grep -q '^ 1 All' && screen | sed -n 24p | grep -qF '? help'; then
        ok "real: 80x24 screen is clean"
    else
        not_ok "real: 80x24 screen is clean"
    fi
    # 60 columns: the day stays in the time column (it was cut to the time, so rows of
    # different days looked alike).
    tmux resize-window -t "$SESSION" -x 60 -y 24
    sleep 0.5
    if screen | sed -n 4p | grep -qE '^[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} '; then
        ok "real: 60 columns keep the day"
    else
        not_ok "real: 60 columns keep the day ($(screen | sed -n 4p))"
    fi
    tmux resize-window -t "$SESSION" -x 80 -y 24
    sleep 0.5

    # t in the detail view: the hops of the message relayed in two hops (pcaps/relay/
    # two-hops.pcap: one Message-ID, the inbound session and the relay to 127.0.0.4)
    keys 1
    keys c
    keys / r e l a y . e x a m p l e Enter
    expect "real: the relayed message's sessions" 'search "relay.example"'
    keys g Enter   # the two rows' order depends on the sort in force: take the inbound one
    if ! wait_for "127.0.0.1 port 25  mta.example.test" 2; then keys Escape; keys j Enter; fi
    expect "real: the inbound relay session opens" "127.0.0.1 port 25  mta.example.test"
    keys t
    expect "real: t traces the message" "Trace of Message-ID <relay-two-hops.1@client.example.test>"
    expect "real: the trace has two hops" "2 hops"
    if [ "$(screen | grep -E '^[ ●*] [0-9-]+ [0-9:]+  #[0-9]+ smtp ' | grep -c 'delivered')" = 2 ]; then
        ok "real: both hops listed (#ids, delivered twice)"
    else
        not_ok "real: both hops listed (#ids, delivered twice)"
    fi
    expect "real: the current session's hop is marked" "● "
    expect "real: the relay hop" "-> 127.0.0.4:25  delivered"
    keys j Enter
    expect "real: Enter opens the other hop" "127.0.0.4 port 25  relay.example"
    keys Escape
    expect "real: Esc goes back to the trace" "Trace of Message-ID"
    keys Escape
    expect "real: Esc goes back to the detail" "127.0.0.1 port 25  mta.example.test"
    keys Escape
    expect "real: and back to the list" 'Filter: search "relay.example"'

    # f: the finding field (the two sessions with an expired certificate, pcaps/tls)
    keys c
    keys f Up C-u c e r t _ e x p i r e d Enter
    expect "real: the finding is in the filter line" "Filter: finding: cert_expired"
    # the CLI's answer to the same filter: as many rows, at the same times
    "$MAILTAP" list -d "$REAL" --finding cert_expired | tail -n +2 | \
        sed -E 's/^ *[0-9]+ [0-9]{4}-([0-9-]{5} [0-9:]{8}) .*/\1/' | sort >"$TMP/expired.cli"
    N_EXPIRED=$(wc -l <"$TMP/expired.cli")
    expect "real: only the expired-certificate sessions" "· $N_EXPIRED session"
    screen | sed -n '4,22p' | grep -E '^([0-9]{4}-)?[0-9]{2}-[0-9]{2} ' | \
        sed -E 's/^([0-9]{4}-)?([0-9-]{5} [0-9:]{8}) .*/\2/' | sort >"$TMP/expired.ui"
    if [ "$N_EXPIRED" -gt 0 ] && cmp -s "$TMP/expired.cli" "$TMP/expired.ui"; then
        ok "real: the $N_EXPIRED rows are the CLI's --finding cert_expired"
    else
        not_ok "real: the rows are the CLI's --finding cert_expired ($(cat "$TMP/expired.cli" | tr '\n' ,))"
    fi
    keys f Up C-u b o g u s Enter
    expect "real: an unknown finding is refused" "Finding: not a security finding"
    keys Escape
    keys c
    expect "real: c clears the finding" "Filter: no filter"
    # a time range no session is in: the filter, not an empty database, empties the list
    keys f Down Down C-u 2 0 9 9 - 0 1 - 0 1 Enter
    expect "real: an empty list under a status filter says so" "No session matches the filter"
    keys c

    keys 1
    keys c
    keys / m a l l o r y Enter
    expect "real: the escape user is found" 'search "mallory"'
    keys Enter
    expect "real: user name escapes shown as text" 'mallory\x1b[2J\x1b]0;pwned\x07'
    expect "real: its SMTP AUTH failure" "535 5.7.8"
    if screen | sed -n 1p | grep -qF 'Session #' && screen | grep -qF 'Transcript' && \
       screen | tail -n 1 | grep -qF '? help'; then
        ok "real: screen not cleared by the user name"
    else
        not_ok "real: screen not cleared by the user name"
    fi
    [ "$(tmux display -t "$SESSION" -p '#{pane_title}')" = "$TITLE" ] && \
        ok "real: title not changed by the user name" || \
        not_ok "real: title not changed by the user name"
    keys Escape
    keys c
    keys / x 1 b [ 3 1 m Enter
    expect "real: the escape subject is found" 'search "x1b[31m"'
    keys Enter
    expect "real: Subject escapes (CSI, OSC, C1) shown as text" \
        'mailtap test: \x1b[31mred\x1b[0m \x1b]0;x\x07 \xc2\x9b2J end'
    if screen | sed -n 1p | grep -qF 'Session #' && screen | grep -qF 'Transcript' && \
       screen | tail -n 1 | grep -qF '? help'; then
        ok "real: screen not cleared by the subject"
    else
        not_ok "real: screen not cleared by the subject"
    fi
    [ "$(tmux display -t "$SESSION" -p '#{pane_title}')" = "$TITLE" ] && \
        ok "real: title not changed by the subject" || not_ok "real: title not changed by the subject"
    keys Escape
    keys q
    wait_exit && ok "real: q quits with status 0" || not_ok "real: q quits with status 0"
    # The sensor's capture-health warning outranks the key hint on the bottom line.
    sqlite3 "$REAL" "INSERT INTO sensor_stats(ts_us, packets, kernel_drops, interface_drops,
        sessions, source, streams, run, health) VALUES(4102444800000000, 10, 0, 0, 1, 'eth9',
        0, 99, 'only client-to-server traffic on port 25 for 60 s (4 connections): check that
        the mirror port copies both directions')"
    start TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8
    expect "real: capture health on the bottom line" "capture health: only client-to-server traffic on port 25"
    expect "real: status bar names the source" "eth9"
    keys q
    wait_exit && ok "real: q quits with status 0" || not_ok "real: q quits with status 0"

    # "Also open": a opens the session a refusal blames (the POP3 mailbox lock's holder),
    # Esc comes back; a session that names none says so.
    LOCKED="$TMP/locked.db"
    "$MAILTAP" read -q -d "$LOCKED" "$ROOT/pcaps/walkthrough/pop3-mailbox-locked.pcap" \
        >"$TMP/read.log" 2>&1 || not_ok "also open: capture decoded ($(cat "$TMP/read.log"))"
    CMD="$MAILTAP ui -d $LOCKED"
    start TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8
    expect "also open: the refused login listed" "temp_failed"
    keys j Enter
    expect "also open: the refusal's detail" "Session #1 "
    expect "also open: names the lock's holder" "Also open #3 from 127.0.0.1"
    expect "also open: the title names the key" "t trace, a also open)"
    keys a
    expect "also open: a opens the holder" "Session #3 "
    expect "also open: says which of how many" "Also open of #1: 1 of 1; Esc: back."
    keys a
    expect "also open: a again stays on the only one" "Session #3 "
    keys Escape
    expect "also open: Esc comes back to the refusal" "Session #1 "
    keys Escape
    expect "also open: Esc again: the list" "temp_failed"
    keys j Enter
    expect "also open: the holder's own detail" "Session #3 "
    keys a
    expect "also open: none named, said so" "No other session to open"
    keys Escape
    keys q
    wait_exit && ok "also open: q quits with status 0" || not_ok "also open: q quits with status 0"
    # ten sessions fill an IMAP limit, five are named: a says how many there are in all
    "$MAILTAP" read -q -d "$TMP/limit.db" "$ROOT/pcaps/walkthrough/imap-connection-limit.pcap" \
        >"$TMP/read.log" 2>&1 || not_ok "also open: capture decoded ($(cat "$TMP/read.log"))"
    CMD="$MAILTAP ui -d $TMP/limit.db"
    start TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8
    expect "also open: the refused login listed first" "temp_failed"
    keys Enter
    expect "also open: the refusal names five and more" "and 5 more"
    keys a
    expect "also open: which of those listed, how many in all" "1 of 5 listed (10 in all)"
    keys a a a a
    expect "also open: the fifth listed" "5 of 5 listed (10 in all)"
    keys a
    expect "also open: after the fifth, the first again" "1 of 5 listed (10 in all)"
    keys Escape
    keys Escape
    keys q
    wait_exit && ok "also open: q quits with status 0" || not_ok "also open: q quits with status 0"
    # read --ui: LIVE while the decoder writes, DONE once the read has finished (it said
    # LIVE to the end); quitting leaves no write-ahead log behind (it left one).
    UIDB="$TMP/read-ui.db"
    CMD="$MAILTAP read --ui -d $UIDB $ROOT/pcaps/demo.pcap"
    start TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8
    expect "read --ui: the read's sessions appear" "dns_failed"
    expect "read --ui: DONE once the read has finished" "7 Summary" && \
        expect "read --ui: DONE at the top right" " DONE"
    expect_not "read --ui: no longer LIVE" " LIVE"
    expect "read --ui: the status bar says it is done" "✓ $ROOT/pcaps/demo.pcap │ packets 825"
    keys q
    wait_exit && ok "read --ui: q quits with status 0" || not_ok "read --ui: q quits with status 0"
    if [ ! -s "$UIDB-wal" ] && [ "$(sqlite3 "$UIDB" 'SELECT count(*) FROM sessions')" -gt 30 ]; then
        ok "read --ui: every session written, no write-ahead log left"
    else
        not_ok "read --ui: every session written, no write-ahead log left ($(ls -l "$UIDB"*))"
    fi
    # Ctrl-C (or SIGTERM, SIGHUP) in a --ui console ends the decoder too, and the console
    # prints its summary: it left the decoder running, orphaned, reading and writing.
    UIDB="$TMP/read-ui-ctrlc.db"
    mkfifo "$TMP/feed"
    (cat "$ROOT/pcaps/smtp/delivered.pcap"; sleep 30) > "$TMP/feed" &
    FEEDER=$!
    CMD="$MAILTAP read --ui -d $UIDB $TMP/feed"
    start TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8
    expect "read --ui from a pipe that stays open: LIVE" " LIVE"
    keys C-c
    i=0
    while [ $i -lt 50 ] && pgrep -f "read --ui -d $UIDB" >/dev/null; do sleep 0.1; i=$((i + 1)); done
    if pgrep -f "read --ui -d $UIDB" >/dev/null; then
        not_ok "read --ui: Ctrl-C ends the decoder too"
        pkill -f "read --ui -d $UIDB"
    else
        ok "read --ui: Ctrl-C ends the decoder too"
    fi
    kill "$FEEDER" 2>/dev/null
    # read --ui of a file that cannot be read beside a good one: the console says so (it
    # showed ✓ and DONE; the warning was printed only after quitting); q exits 1.
    head -c 3000 /dev/urandom > "$TMP/garbage.pcap"
    CMD="$MAILTAP read --ui -d $TMP/read-ui-bad.db $TMP/garbage.pcap $ROOT/pcaps/smtp/delivered.pcap"
    start TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8
    expect "read --ui with a bad file: DONE, ERRORS" "DONE, ERRORS"
    expect "read --ui with a bad file: where the messages are" "read-ui-bad.db.log"
    expect "read --ui with a bad file: no check mark" "! $ROOT/pcaps/smtp/delivered.pcap"
    keys q
    i=0
    while [ $i -lt 50 ] && [ ! -f "$TMP/rc" ]; do sleep 0.1; i=$((i + 1)); done
    [ "$(cat "$TMP/rc" 2>/dev/null)" = 1 ] && ok "read --ui with a bad file: q exits 1" ||
        not_ok "read --ui with a bad file: q exits 1 (got $(cat "$TMP/rc" 2>/dev/null))"
    # A read-only database in a directory the user may not write (a copy on a read-only
    # share): the lists opened it, the Summary's own connection could not make the -shm
    # file and the console refused to start. As nobody when root (root writes anywhere).
    if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
        RO="$TMP/ro"
        mkdir -p "$RO"
        cp "$TMP/read-ui-bad.db" "$RO/ro.db"
        chmod 444 "$RO/ro.db"
        chmod 555 "$RO"
        chmod 755 "$TMP"
        CMD="setpriv --reuid=65534 --regid=65534 --clear-groups $MAILTAP ui -d $RO/ro.db"
        start TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8
        expect "read-only database in a read-only directory: the list" "delivered"
        keys 7
        expect "read-only database in a read-only directory: the Summary" "1 session"
        keys q   # the Summary closes, then the console
        keys q
        wait_exit && ok "read-only database: q exits 0" ||
            not_ok "read-only database: q exits 0 (got $(cat "$TMP/rc" 2>/dev/null))"
        chmod 755 "$RO"
    fi
else
    SKIP=$((SKIP + 1))
    echo "skip real captures: needs MAILTAP_BINARY (tests/ui_tmux.sh MAILTAP_BINARY DB)"
fi

if [ "$SKIP" -gt 0 ]; then echo "$PASS passed, $FAIL failed, $SKIP skipped"
else echo "$PASS passed, $FAIL failed"; fi
[ "$FAIL" -eq 0 ]
