#!/usr/bin/env bash
# replay_netns.sh — proves that `mailtap capture` on a live interface decodes exactly what
# `mailtap read` decodes from the same capture file. Offline tests never exercise the live
# path (libpcap's packet ring, the BPF filter, SIGTERM ending the capture, sessions still
# open at the stop); this one does, without touching any host interface:
#
#   1. two private network namespaces joined by a veth pair (names carry our PID, so runs
#      in parallel do not collide); the veth ends are created directly inside the
#      namespaces, so replayed traffic can never reach a host interface;
#   2. `mailtap capture -i VETH` runs in the receiving namespace; we wait until it reports
#      that it is capturing (its stderr), not a blind sleep;
#   3. tcpreplay sends the capture from the other namespace at a modest rate; we wait
#      until the receiving veth has counted every packet and mailtap has gone idle, then
#      stop it with SIGTERM;
#   4. checks: exit status 0, kernel drops 0 (mailtap's summary on stderr), every packet
#      that matches the filter seen, and the sessions (protocol, addresses and ports,
#      status, how they ended, user, sender, recipients, messages, flags ...: see
#      tests/replay_util.py; not timestamps, which live are the replay time) identical to
#      `mailtap read` of the same file.
#
# Cases: a generated capture (bench/gen_capture.c --profile sessions: 462 SMTP/POP3/IMAP
# sessions on the standard ports, with refused and unanswered connections, retransmitted
# and reordered segments) with the default filter; pcaps/demo.pcap (real Postfix/Dovecot
# dialogues, DNS, TLS, IPv6, recorded on loopback: nonstandard ports, hence --port/--local
# and an explicit filter, and frames over 1500 bytes, hence a 64 KiB MTU on the veth); the
# generated capture cut short, so that 208 sessions are still open when SIGTERM arrives and
# must be flushed exactly as `mailtap read` flushes them at the end of the file.
#
# Offloads: the veth's GRO (off by default) could merge segments before the capture
# socket sees them; when ethtool is present it is turned off explicitly with the VLAN
# offloads, and in every case the packet count check would catch merged segments.
#
#   tests/replay_netns.sh [MAILTAP]      from the repository root (make test); needs root
# Prints "replay: N passed, M failed"; exits 1 on a failure. When network namespaces are
# not permitted (an unprivileged container) it prints "replay: SKIPPED: ..." and exits 0.
# Needs tcpreplay (make deps installs it), iproute2, python3, cc; ethtool is optional.
# Leaves nothing behind: the namespaces (and with them the veths), the temporary directory
# and the background processes are removed by a trap on every exit path.
set -eu
set -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAILTAP=${1:-$ROOT/mailtap}
case $MAILTAP in /*) ;; *) MAILTAP=$PWD/$MAILTAP ;; esac
cd "$ROOT"
RATE_MBPS=${REPLAY_RATE_MBPS:-20}

NS_CAP=mailtap-cap-$$          # receiving namespace: mailtap capture
NS_REP=mailtap-rep-$$          # sending namespace: tcpreplay
IF_CAP=mtc$$                   # veth end in NS_CAP
IF_REP=mtr$$                   # veth end in NS_REP
TMP=""
MT_PID=""
TR_PID=""
NS_MADE=""

say() { echo "replay: $*"; }
util() { python3 "$ROOT/tests/replay_util.py" "$@"; }

cleanup() {
    set +e
    for pid in $TR_PID $MT_PID; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null
            for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        fi
    done
    for ns in $NS_MADE; do ip netns del "$ns" 2>/dev/null; done
    [ -n "$TMP" ] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
trap 'exit 141' PIPE

if ! command -v tcpreplay >/dev/null 2>&1; then
    say "FAILED: tcpreplay is not installed (make deps installs it; or: apt-get install -y tcpreplay)"
    say "0 passed, 1 failed"
    exit 1
fi
if [ ! -x "$MAILTAP" ]; then
    say "FAILED: $MAILTAP not found: build it first (make)"
    say "0 passed, 1 failed"
    exit 1
fi
TMP=$(mktemp -d /tmp/mailtap-replay.XXXXXX)
# mailtap capture run as root gives up root for an unprivileged user (-Z) once the interface
# and the database are open: it must still reach its database (in a 1777 case directory).
chmod 711 "$TMP"
# A private copy: ./mailtap may be rebuilt while we run (offline and live must match).
cp "$MAILTAP" "$TMP/mailtap"
MAILTAP=$TMP/mailtap

# --- the namespaces ---------------------------------------------------------------------
if ! out=$(ip netns add "$NS_CAP" 2>&1); then
    case $out in
    *"ermission denied"*|*"peration not permitted"*|*"not supported"*)
        say "SKIPPED: network namespaces not permitted here ($(echo "$out" | head -1))"
        exit 0 ;;
    esac
    say "FAILED: ip netns add: $out"
    say "0 passed, 1 failed"
    exit 1
fi
NS_MADE=$NS_CAP
ip netns add "$NS_REP"
NS_MADE="$NS_CAP $NS_REP"
for ns in $NS_CAP $NS_REP; do
    # No IPv6 autoconfiguration chatter (router solicitations, MLD) on the link.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || true
done
if ! out=$(ip link add "$IF_REP" netns "$NS_REP" type veth peer name "$IF_CAP" netns "$NS_CAP" 2>&1); then
    say "FAILED: cannot create the veth pair: $out"
    say "0 passed, 1 failed"
    exit 1
fi
for pair in "$NS_CAP $IF_CAP" "$NS_REP $IF_REP"; do
    set -- $pair
    ip -n "$1" link set "$2" mtu 65535 up
    if command -v ethtool >/dev/null 2>&1; then
        ip netns exec "$1" ethtool -K "$2" gro off tso off gso off rxvlan off txvlan off 2>/dev/null || true
    fi
done

# --- helpers ------------------------------------------------------------------------------
now() { date +%s.%N; }
elapsed_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
later_than() { awk -v x="$1" -v y="$2" 'BEGIN { exit !(x >= y) }'; }

# "TICKS STATE" of a process: CPU time in clock ticks (all threads) and whether one of its
# threads is running or waiting for a CPU (R: busy, even when starved on a loaded machine).
cpu_state() {
    [ -r "/proc/$1/stat" ] || { echo gone; return; }
    cat /proc/"$1"/task/*/stat 2>/dev/null |
        awk '{ t += $14 + $15; if ($3 == "R") r = 1 } END { print t, (r ? "R" : "S") }'
}
rx_packets() { ip netns exec "$NS_CAP" cat "/sys/class/net/$IF_CAP/statistics/rx_packets"; }

# wait_capturing PID STDERR_FILE: until mailtap says it is capturing (10 s at most).
wait_capturing() {
    local start; start=$(now)
    while ! grep -q "capturing on" "$2" 2>/dev/null; do
        if ! kill -0 "$1" 2>/dev/null; then
            echo "mailtap capture exited before capturing: $(cat "$2")"; return 1
        fi
        if later_than "$(elapsed_since "$start")" 10; then
            echo "mailtap capture did not start within 10 s: $(cat "$2")"; return 1
        fi
        sleep 0.05
    done
}

# wait_drained PID RX_BEFORE SENT: until the receiving veth has counted SENT packets, then
# until mailtap has been asleep (not runnable) with its CPU time standing still for 0.6 s
# (over twice libpcap's 250 ms ring block timeout, after which the last block reaches it):
# everything read and decoded. (SIGTERM would discard what is still in the ring.)
wait_drained() {
    local pid=$1 want=$(( $2 + $3 )) start ticks last quiet_since
    start=$(now)
    while [ "$(rx_packets)" -lt "$want" ]; do
        if later_than "$(elapsed_since "$start")" 30; then
            echo "only $(( $(rx_packets) - $2 )) of $3 packets reached $IF_CAP within 30 s"; return 1
        fi
        sleep 0.05
    done
    last=$(cpu_state "$pid"); quiet_since=$(now)
    while ! later_than "$(elapsed_since "$quiet_since")" 0.6; do
        sleep 0.1
        ticks=$(cpu_state "$pid")
        [ "$ticks" = gone ] && { echo "mailtap capture exited early"; return 1; }
        if [ "$ticks" != "$last" ] || [ "${ticks#* }" = R ]; then last=$ticks; quiet_since=$(now); fi
        if later_than "$(elapsed_since "$start")" 120; then
            echo "mailtap still busy 120 s after the replay"; return 1
        fi
    done
}

# stop_mailtap: SIGTERM, then its exit status (MT_PID cleared).
stop_mailtap() {
    local rc=0
    kill -TERM "$MT_PID" 2>/dev/null || true
    wait "$MT_PID" || rc=$?
    MT_PID=""
    return "$rc"
}

PASSED=0
FAILED=0

# replay_case NAME PCAP FILTER [DECODE OPTIONS...]: one capture replayed and compared.
# FILTER is the BPF filter for capture ("" = mailtap's default); the expected packet count
# is the packets of PCAP on the mail ports, 53 and any --port given.
replay_case() {
    local name=$1 pcap=$2 filter=$3; shift 3
    local dir=$TMP/case$(( PASSED + FAILED )) ports="" problems="" opt prev=""
    mkdir -p "$dir"
    chmod 1777 "$dir"
    for opt in "$@"; do
        [ "$prev" = --port ] && ports="$ports ${opt##*:}"
        prev=$opt
    done
    local expected total
    # shellcheck disable=SC2086
    read -r expected total < <(util count "$pcap" 25 465 587 2525 110 995 143 993 53 $ports)

    # The reference: the same file, offline.
    "$MAILTAP" read -q -d "$dir/offline.db" "$@" "$pcap" || true
    util sessions "$MAILTAP" "$dir/offline.db" > "$dir/offline.txt"

    # Live: capture in one namespace, replay from the other.
    # shellcheck disable=SC2086
    ip netns exec "$NS_CAP" "$MAILTAP" capture -i "$IF_CAP" -d "$dir/live.db" "$@" $filter \
        2> "$dir/capture.err" &
    MT_PID=$!
    if ! problems=$(wait_capturing "$MT_PID" "$dir/capture.err"); then
        say "FAIL $name: $problems"; FAILED=$(( FAILED + 1 ))
        stop_mailtap || true
        return 0
    fi
    local rx0; rx0=$(rx_packets)
    ip netns exec "$NS_REP" tcpreplay -i "$IF_REP" --mbps="$RATE_MBPS" "$pcap" \
        > "$dir/tcpreplay.out" 2>&1 &
    TR_PID=$!
    local rc=0
    wait "$TR_PID" || rc=$?
    TR_PID=""
    local sent failed secs mbps pps
    read -r sent failed secs mbps pps < <(util tcpreplay "$dir/tcpreplay.out")
    if [ "$rc" != 0 ] || [ "$failed" != 0 ] || [ "$sent" != "$total" ]; then
        say "FAIL $name: tcpreplay (exit $rc) sent $sent of $total packets, $failed failed:"
        sed 's/^/    /' "$dir/tcpreplay.out"
        FAILED=$(( FAILED + 1 ))
        stop_mailtap || true
        return 0
    fi
    problems=""
    if ! out=$(wait_drained "$MT_PID" "$rx0" "$sent"); then problems="$out; "; fi
    # Every finished session must be in the database before the stop, on a quiet link
    # too (batches are committed by the clock, not only by the next packet): wait up to
    # 3 s (a batch commits after 1 s).
    # Sessions settled by a timer (a refused or unanswered SYN: retries are merged for 30 s;
    # a DNS query without an
    # answer, a one-sided stream) are not finished yet and do not count.
    local visible=0 want_visible tries=0
    want_visible=$("$MAILTAP" list -d "$dir/offline.db" --json | python3 -c '
import json, sys
print(sum(1 for line in sys.stdin
          if (lambda s: s["end"] in ("close", "reset") and s["status"] != "timeout")(json.loads(line))))')
    while [ "$tries" -lt 30 ]; do
        visible=$("$MAILTAP" list -d "$dir/live.db" --json 2>/dev/null | wc -l || true)
        [ "$visible" -ge "$want_visible" ] && break
        sleep 0.1; tries=$(( tries + 1 ))
    done
    rc=0
    stop_mailtap || rc=$?

    # Checks.
    local summary seen kdrops idrops
    summary=$(grep " packets, .* sessions (" "$dir/capture.err" | tail -1 || true)
    seen=$(echo "$summary" | sed -n 's/.*: \([0-9]*\) packets, .*/\1/p')
    kdrops=$(sed -n 's/^mailtap: .*kernel dropped \([0-9]*\) packets, interface dropped.*/\1/p' "$dir/capture.err" | tail -1)
    idrops=$(sed -n 's/.*interface dropped \([0-9]*\).*/\1/p' "$dir/capture.err" | tail -1)
    [ "$rc" = 0 ] || problems="${problems}exit status $rc; "
    [ "${kdrops:-x}" = 0 ] || problems="${problems}kernel dropped ${kdrops:-?} packets; "
    [ "${idrops:-x}" = 0 ] || problems="${problems}interface dropped ${idrops:-?} packets; "
    [ "${seen:-x}" = "$expected" ] || problems="${problems}mailtap saw ${seen:-?} packets, expected $expected; "
    # The database's own record of the capture (what the console's status bar shows).
    local s_packets s_kdrops s_idrops
    read -r s_packets s_kdrops s_idrops < <(util sensor "$dir/live.db" || echo "? ? ?")
    [ "$s_packets $s_kdrops $s_idrops" = "$expected 0 0" ] ||
        problems="${problems}sensor_stats says $s_packets packets, $s_kdrops/$s_idrops dropped; "
    local compare
    if util sessions "$MAILTAP" "$dir/live.db" > "$dir/live.txt" &&
       compare=$(util diff "$dir/offline.txt" "$dir/live.txt" 5); then
        :
    else
        problems="${problems}sessions differ from mailtap read; "
    fi
    local count; count=$(wc -l < "$dir/offline.txt")
    if [ "${ALL_FINISHED:-0}" = 1 ] && [ "$visible" -lt "$want_visible" ]; then
        problems="${problems}only $visible of $want_visible finished sessions were in the database 3 s after the last packet; "
    fi
    if [ -z "$problems" ]; then
        say "ok   $name: $count sessions identical to mailtap read ($visible stored before SIGTERM); $seen/$expected packets at $mbps Mbit/s, 0 dropped"
        PASSED=$(( PASSED + 1 ))
    else
        say "FAIL $name: ${problems%; }"
        [ -n "${compare:-}" ] && echo "$compare" | sed 's/^/    /'
        sed 's/^/    capture: /' "$dir/capture.err"
        FAILED=$(( FAILED + 1 ))
    fi
    rm -f "$dir"/*.db "$dir"/*.db-wal "$dir"/*.db-shm
}

# --- the cases -----------------------------------------------------------------------------
GEN=$ROOT/build-bench/bin/gen_capture
if [ ! -x "$GEN" ] || [ "$ROOT/bench/gen_capture.c" -nt "$GEN" ]; then
    GEN=$TMP/gen_capture
    ${CC:-cc} -O2 -o "$GEN" "$ROOT/bench/gen_capture.c" -lm
fi
"$GEN" --out "$TMP/sessions.pcap" --profile sessions --size-mb 1 --seed 1
ALL_FINISHED=1 replay_case "generated capture (gen_capture --profile sessions --size-mb 1, default filter)" \
    "$TMP/sessions.pcap" ""

# No filter: the default one must cover the --port ports.
ALL_FINISHED=1 replay_case "pcaps/demo.pcap (recorded dialogues, DNS, TLS, IPv6; --port/--local as make demo)" \
    "$ROOT/pcaps/demo.pcap" "" \
    --local 127.0.0.1/32 --local ::1/128 --port smtp:2526 --port pop3:1110 --port imap:1143

util head "$TMP/sessions.pcap" 3000 "$TMP/cut.pcap"
replay_case "generated capture cut after 3000 packets (sessions open at SIGTERM vs end of file)" \
    "$TMP/cut.pcap" ""

say "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
