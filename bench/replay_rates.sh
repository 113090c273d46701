#!/usr/bin/env bash
# replay_rates.sh — how fast can `mailtap capture` go on a live interface before it loses
# packets or decodes differently from `mailtap read`? `make bench` times the offline path;
# this measures the live one: libpcap's packet ring, the kernel buffer (-B), the BPF
# filter, and mailtap keeping up while the packets arrive at a given rate.
#
# It generates a benchmark capture (bench/gen_capture.c, normal profile: SMTP with AUTH and
# several messages, IMAP and POP3 retrieval, 20% non-mail bulk that the capture filter
# must drop, retransmitted and reordered segments; 200 MB by default) or takes one, decodes
# it once with `mailtap read` as the reference, then for each rate (100, 250, 500, 1000,
# 2000 Mbit/s, then tcpreplay --topspeed) replays it with tcpreplay from one private network
# namespace over a veth pair into another, where `mailtap capture` runs. Only those two
# namespaces ever see the traffic: the veth ends are created inside them, no host
# interface is involved. Per rate it reports the rate tcpreplay achieved (Mbit/s and
# packets/s), packets dropped on the link (veth), by the kernel (mailtap's packet ring:
# "kernel dropped" in its summary), the packets mailtap saw against those of the file that
# match its filter, the sessions decoded against the offline reference (a normalised
# listing: tests/replay_util.py), how long mailtap took to drain its buffer after the
# replay ended, its CPU seconds and peak RSS (GNU time). Last line: the highest rate with
# zero drops and identical results.
#
#   bench/replay_rates.sh [options] [-- DECODE OPTIONS for read and capture (--port, --local)]
#     --mailtap PATH     the binary (default ./mailtap)
#     --pcap FILE        replay this capture instead of generating one
#     --size-mb N        generated capture size (default $REPLAY_MB or 200)
#     --profile P        generator profile: normal (default), sessions
#     --seed N           generator seed (default 1)
#     --rates "LIST"     Mbit/s steps, "top" = --topspeed (default "100 250 500 1000 2000 top")
#     --workers N        mailtap capture --workers N (passed only when N > 1)
#     -B MB              mailtap capture kernel buffer (default: mailtap's own, 64 MB)
#     --filter "BPF"     capture filter (default: mailtap's); then the expected packet
#                        count is unknown and only the sessions are compared
#     --pin              tcpreplay on CPU 0, mailtap on the others (taskset)
# Environment: REPLAY_MB, REPLAY_RATES, WORKERS, BUFFER_MB set the same defaults.
# Needs root, tcpreplay, GNU time (/usr/bin/time), iproute2, python3, cc; ethtool optional.
# Leaves nothing behind: namespaces (and veths), temporary directory (with the generated
# capture and the databases) and background processes are removed on every exit path.
set -eu
set -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAILTAP=$ROOT/mailtap
PCAP=""
SIZE_MB=${REPLAY_MB:-200}
PROFILE=normal
SEED=1
RATES=${REPLAY_RATES:-"100 250 500 1000 2000 top"}
WORKERS=${WORKERS:-1}
BUFFER_MB=${BUFFER_MB:-}
FILTER=""
PIN=0
usage() { sed -n '/^#   bench/,/^# Environment/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --mailtap) MAILTAP=$2; shift 2 ;;
    --pcap) PCAP=$2; shift 2 ;;
    --size-mb) SIZE_MB=$2; shift 2 ;;
    --profile) PROFILE=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --rates) RATES=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    -B) BUFFER_MB=$2; shift 2 ;;
    --filter) FILTER=$2; shift 2 ;;
    --pin) PIN=1; shift ;;
    --) shift; break ;;
    *) usage ;;
    esac
done
DECODE_OPTS=("$@")
case $MAILTAP in /*) ;; *) MAILTAP=$PWD/$MAILTAP ;; esac
[ -z "$PCAP" ] || case $PCAP in /*) ;; *) PCAP=$PWD/$PCAP ;; esac
cd "$ROOT"

die() { echo "replay_rates: $*" >&2; exit 1; }
util() { python3 "$ROOT/tests/replay_util.py" "$@"; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
command -v tcpreplay >/dev/null 2>&1 || die "tcpreplay is not installed (apt-get install -y tcpreplay)"
[ -x /usr/bin/time ] || die "GNU time is not installed (apt-get install -y time)"
[ -x "$MAILTAP" ] || die "$MAILTAP not found: build it first (make)"

NS_CAP=mailtap-bcap-$$
NS_REP=mailtap-brep-$$
IF_CAP=mbc$$
IF_REP=mbr$$
TMP=""
MT_PID=""      # mailtap capture
TIME_PID=""    # GNU time around it
TR_PID=""      # tcpreplay
NS_MADE=""

cleanup() {
    set +e
    for pid in $TR_PID $MT_PID $TIME_PID; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null
            for _ in $(seq 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    for pid in $TR_PID $TIME_PID; do wait "$pid" 2>/dev/null; done
    for ns in $NS_MADE; do ip netns del "$ns" 2>/dev/null; done
    [ -n "$TMP" ] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
trap 'exit 141' PIPE

TMP=$(mktemp -d /tmp/mailtap-replay-bench.XXXXXX)
# mailtap capture run as root gives up root for an unprivileged user (-Z) once the interface
# and the database are open: it must still reach its database (in a 1777 rate directory).
chmod 711 "$TMP"
# A private copy: ./mailtap may be rebuilt while we run (offline and live must match).
cp "$MAILTAP" "$TMP/mailtap"
MAILTAP=$TMP/mailtap

# --- the capture and its offline reference -------------------------------------------------
if [ -z "$PCAP" ]; then
    GEN=$ROOT/build-bench/bin/gen_capture
    if [ ! -x "$GEN" ] || [ "$ROOT/bench/gen_capture.c" -nt "$GEN" ]; then
        GEN=$TMP/gen_capture
        ${CC:-cc} -O2 -o "$GEN" "$ROOT/bench/gen_capture.c" -lm
    fi
    PCAP=$TMP/$PROFILE-${SIZE_MB}m-s$SEED.pcap
    echo "generating $PROFILE capture, $SIZE_MB MB, seed $SEED ..."
    "$GEN" --out "$PCAP" --profile "$PROFILE" --size-mb "$SIZE_MB" --seed "$SEED"
fi
[ -r "$PCAP" ] || die "$PCAP: cannot read"

ports="25 465 587 2525 110 995 143 993 53"
prev=""
for opt in "${DECODE_OPTS[@]}"; do
    [ "$prev" = --port ] && ports="$ports ${opt##*:}"
    prev=$opt
done
# shellcheck disable=SC2086
read -r EXPECTED TOTAL < <(util count "$PCAP" $ports)
[ -z "$FILTER" ] || EXPECTED="?"

/usr/bin/time -o "$TMP/offline.time" -f "%e %U %S %M" \
    "$MAILTAP" read -q -d "$TMP/offline.db" "${DECODE_OPTS[@]}" "$PCAP" || true
util sessions "$MAILTAP" "$TMP/offline.db" > "$TMP/offline.txt"
OFFLINE_SESSIONS=$(wc -l < "$TMP/offline.txt")
read -r off_wall off_user off_sys off_rss < <(tail -1 "$TMP/offline.time")
rm -f "$TMP"/offline.db*

# --- the namespaces --------------------------------------------------------------------------
ip netns add "$NS_CAP" || die "cannot create a network namespace"
NS_MADE=$NS_CAP
ip netns add "$NS_REP"
NS_MADE="$NS_CAP $NS_REP"
for ns in $NS_CAP $NS_REP; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || true
done
ip link add "$IF_REP" netns "$NS_REP" type veth peer name "$IF_CAP" netns "$NS_CAP"
OFFLOADS="ethtool missing: offloads left as they are (veth GRO is off by default)"
for pair in "$NS_CAP $IF_CAP" "$NS_REP $IF_REP"; do
    set -- $pair
    ip -n "$1" link set "$2" mtu 65535 up
    if command -v ethtool >/dev/null 2>&1; then
        ip netns exec "$1" ethtool -K "$2" gro off tso off gso off rxvlan off txvlan off 2>/dev/null || true
        OFFLOADS="veth offloads off (gro tso gso rxvlan txvlan)"
    fi
done

# --- helpers ----------------------------------------------------------------------------------
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
ge() { awk -v x="$1" -v y="$2" 'BEGIN { exit !(x >= y) }'; }
stat_of() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }

# "TICKS STATE" of a process with its threads and descendants (worker processes, if any):
# CPU time in clock ticks, and R when one of them is running or waiting for a CPU (busy
# even when starved), else S; "gone" when the process has exited.
tree_state() {
    local pid=$1 ticks state t s child
    [ -r "/proc/$pid/stat" ] || { echo gone; return; }
    read -r ticks state < <(cat /proc/"$pid"/task/*/stat 2>/dev/null |
        awk '{ t += $14 + $15; if ($3 == "R") r = 1 } END { print t + 0, (r ? "R" : "S") }')
    for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        read -r t s < <(tree_state "$child")
        [ "$t" = gone ] && continue
        ticks=$(( ticks + t ))
        [ "$s" = R ] && state=R
    done
    echo "$ticks $state"
}

CPUS=$(nproc)
TR_PREFIX=() MT_PREFIX=()
if [ "$PIN" = 1 ] && [ "$CPUS" -ge 2 ]; then
    TR_PREFIX=(taskset -c 0)
    MT_PREFIX=(taskset -c "1-$(( CPUS - 1 ))")
fi
MT_OPTS=()
[ -z "$BUFFER_MB" ] || MT_OPTS+=(-B "$BUFFER_MB")
[ "$WORKERS" -le 1 ] || MT_OPTS+=(--workers "$WORKERS")

# --- header -------------------------------------------------------------------------------------
size_mb=$(awk -v b="$(stat -c %s "$PCAP")" 'BEGIN { printf "%.0f", b / 1048576 }')
echo
echo "mailtap live capture at stepped rates ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'))"
echo "  capture:  $PCAP ($size_mb MB, $TOTAL packets, $EXPECTED on the capture filter's ports)"
echo "  offline:  mailtap read: $OFFLINE_SESSIONS sessions; ${off_wall}s wall, $(awk -v u="$off_user" -v s="$off_sys" 'BEGIN { printf "%.2f", u + s }')s CPU, $(awk -v k="$off_rss" 'BEGIN { printf "%.1f", k / 1024 }') MB peak RSS"
echo "  live:     mailtap capture${MT_OPTS[*]:+ ${MT_OPTS[*]}} (workers $WORKERS, kernel buffer ${BUFFER_MB:-64 (default)} MB)${FILTER:+ filter: $FILTER}"
echo "  machine:  $CPUS CPUs, kernel $(uname -r), $(tcpreplay -V 2>&1 | head -1); $OFFLOADS$( [ "$PIN" = 1 ] && echo "; tcpreplay pinned to CPU 0, mailtap to the rest")"
echo
printf "%-7s %9s %9s %6s %6s %7s %17s %13s %6s %7s %7s\n" \
    "target" "achieved" "achieved" "link" "kernel" "if" "mailtap packets" "sessions" "drain" "mailtap" "peak"
printf "%-7s %9s %9s %6s %6s %7s %17s %13s %6s %7s %7s\n" \
    "Mbit/s" "Mbit/s" "pkt/s" "drops" "drops" "drops" "seen/expected" "live/offline" "s" "CPU s" "RSS MB"

BEST=""
ROWS=0
for rate in $RATES; do
    dir=$TMP/rate-$rate
    mkdir -p "$dir"
    chmod 1777 "$dir"
    # mailtap capture under GNU time, in the receiving namespace.
    # shellcheck disable=SC2086
    ip netns exec "$NS_CAP" "${MT_PREFIX[@]}" /usr/bin/time -o "$dir/time" -f "%e %U %S %M" \
        "$MAILTAP" capture -i "$IF_CAP" -d "$dir/live.db" "${MT_OPTS[@]}" "${DECODE_OPTS[@]}" $FILTER \
        2> "$dir/capture.err" &
    TIME_PID=$!
    start=$(now)
    MT_PID=""
    while ! grep -q "capturing on" "$dir/capture.err" 2>/dev/null; do
        kill -0 "$TIME_PID" 2>/dev/null || die "mailtap capture did not start: $(cat "$dir/capture.err")"
        ge "$(since "$start")" 15 && die "mailtap capture did not start within 15 s"
        sleep 0.05
    done
    MT_PID=$(cat /proc/"$TIME_PID"/task/*/children 2>/dev/null | awk '{ print $1 }')
    [ -n "$MT_PID" ] || die "cannot find mailtap's process"
    rx0=$(stat_of "$NS_CAP" "$IF_CAP" rx_packets)
    drop0=$(( $(stat_of "$NS_CAP" "$IF_CAP" rx_dropped) + $(stat_of "$NS_REP" "$IF_REP" tx_dropped) ))

    if [ "$rate" = top ]; then speed=(--topspeed); else speed=(--mbps="$rate"); fi
    "${TR_PREFIX[@]}" ip netns exec "$NS_REP" tcpreplay -K -i "$IF_REP" "${speed[@]}" "$PCAP" \
        > "$dir/tcpreplay.out" 2>&1 &
    TR_PID=$!
    rc=0
    wait "$TR_PID" || rc=$?
    TR_PID=""
    [ "$rc" = 0 ] || die "tcpreplay failed (exit $rc): $(cat "$dir/tcpreplay.out")"
    replay_end=$(now)
    read -r sent failed secs mbps pps < <(util tcpreplay "$dir/tcpreplay.out")

    # Drained: the veth's counter stands still, then mailtap sleeps (not runnable) with its
    # CPU time standing still for 0.6 s (more than twice libpcap's 250 ms ring block
    # timeout). SIGTERM before that would discard what is still in the ring.
    last_rx=-1
    while [ "$(stat_of "$NS_CAP" "$IF_CAP" rx_packets)" != "$last_rx" ]; do
        last_rx=$(stat_of "$NS_CAP" "$IF_CAP" rx_packets); sleep 0.1
    done
    last=$(tree_state "$MT_PID"); quiet=$(now); busy_until=$replay_end
    while ! ge "$(since "$quiet")" 0.6; do
        sleep 0.1
        ticks=$(tree_state "$MT_PID")
        [ "$ticks" != gone ] || die "mailtap capture exited on its own: $(cat "$dir/capture.err")"
        if [ "$ticks" != "$last" ] || [ "${ticks#* }" = R ]; then
            last=$ticks; quiet=$(now); busy_until=$quiet
        fi
        ge "$(since "$replay_end")" 900 && die "mailtap still busy 15 minutes after the replay"
    done
    drain=$(awk -v a="$replay_end" -v b="$busy_until" 'BEGIN { d = b - a; printf "%.1f", (d > 0 ? d : 0) }')
    link_drops=$(( $(stat_of "$NS_CAP" "$IF_CAP" rx_dropped) + $(stat_of "$NS_REP" "$IF_REP" tx_dropped) - drop0 ))
    kill -TERM "$MT_PID"
    rc=0
    wait "$TIME_PID" || rc=$?
    TIME_PID="" MT_PID=""

    # Packets: every summary line (one per worker with --workers). Drops: mailtap's
    # "kernel dropped" lines, or else what it wrote into sensor_stats (per worker).
    seen=$(sed -n 's/^mailtap: .*: \([0-9]*\) packets, .* sessions (.*/\1/p' "$dir/capture.err" |
        awk '{ s += $1 } END { print NR ? s : "?" }')
    kdrops=$(sed -n 's/^mailtap: .*kernel dropped \([0-9]*\) packets, interface dropped.*/\1/p' "$dir/capture.err" | awk '{ s += $1 } END { print NR ? s : "?" }')
    idrops=$(sed -n 's/.*interface dropped \([0-9]*\).*/\1/p' "$dir/capture.err" | awk '{ s += $1 } END { print NR ? s : "?" }')
    read -r _ db_kdrops db_idrops < <(util sensor "$dir/live.db" 2>/dev/null || echo "? ? ?")
    [ "$kdrops" != "?" ] || kdrops=$db_kdrops
    [ "$idrops" != "?" ] || idrops=$db_idrops
    read -r _ user sys rss < <(grep -E '^[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+$' "$dir/time" | tail -1)
    util sessions "$MAILTAP" "$dir/live.db" > "$dir/live.txt" || true
    live_sessions=$(wc -l < "$dir/live.txt")
    if util diff "$TMP/offline.txt" "$dir/live.txt" 3 > "$dir/diff.txt"; then same=same; else same=DIFFER; fi
    mark=""
    if [ "$rc" != 0 ]; then mark="$mark exit status $rc;"; fi
    if [ "$failed" != 0 ]; then mark="$mark tcpreplay failed $failed;"; fi
    printf "%-7s %9.1f %9.0f %6s %6s %7s %17s %13s %6s %7.2f %7.1f\n" \
        "$rate" "$mbps" "$pps" "$link_drops" "$kdrops" "$idrops" "${seen:-?}/$EXPECTED" \
        "$live_sessions/$OFFLINE_SESSIONS $same" "$drain" \
        "$(awk -v u="${user:-0}" -v s="${sys:-0}" 'BEGIN { print u + s }')" \
        "$(awk -v k="${rss:-0}" 'BEGIN { print k / 1024 }')"
    [ -z "$mark" ] || echo "        ${mark# }"
    if [ "$same" != same ]; then sed 's/^/        /' "$dir/diff.txt"; fi
    clean=0
    if [ "$rc" = 0 ] && [ "$failed" = 0 ] && [ "$link_drops" = 0 ] && [ "$kdrops" = 0 ] &&
       [ "$same" = same ] && { [ "$EXPECTED" = "?" ] || [ "$seen" = "$EXPECTED" ]; }; then
        clean=1
    fi
    if [ "$clean" = 1 ] && { [ -z "$BEST" ] || ge "$mbps" "${BEST%% *}"; }; then
        BEST="$mbps $pps $rate"
    fi
    ROWS=$(( ROWS + 1 ))
    rm -rf "$dir"
done

echo
if [ -n "$BEST" ]; then
    set -- $BEST
    target=$3; [ "$target" = top ] && target="topspeed"
    printf "highest rate with zero drops and identical results: %.1f Mbit/s, %.0f packets/s (target %s)\n" "$1" "$2" "$target"
else
    echo "highest rate with zero drops and identical results: none of the $ROWS rates"
fi
