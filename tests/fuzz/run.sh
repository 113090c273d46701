#!/bin/sh
# run.sh — runs the libFuzzer targets built by `make fuzz-build` (used by `make fuzz` and
# `make fuzz-smoke`).
#
#   tests/fuzz/run.sh fuzz  SECONDS [JOBS]   each target for SECONDS, JOBS at a time
#   tests/fuzz/run.sh smoke SECONDS          replay tests/fuzz/regressions/<target>/*,
#                                            then each target for SECONDS
#
# Seeds are read from tests/fuzz/corpus/<target>/ (never written); new inputs go to
# build-fuzz/corpus/<target>/, crashes to build-fuzz/artifacts/<target>/, logs to
# build-fuzz/logs/<target>.log. One summary line per target; exit status 1 if any
# target crashed (or a regression input failed), else 0.
set -u

MODE=${1:-}
SECONDS_EACH=${2:-600}
JOBS=${3:-1}
BIN=${FUZZ_BUILD:-build-fuzz}
HERE=tests/fuzz
TARGETS=${FUZZ_TARGETS:-"fuzz_smtp fuzz_pop3 fuzz_imap fuzz_linereader fuzz_packet fuzz_pcapfile fuzz_dns fuzz_tls"}

max_len() {
    case $1 in
    fuzz_linereader) echo 24576 ;;   # past LR_LINE_MAX (8 KiB), several over-long lines
    *) echo 65536 ;;                 # a few dozen segments / frames of a dialogue
    esac
}

# The last "cov: ft: corp:" status line and the final stats, as one line.
summarize() {
    target=$1 log=$2 rc=$3
    status=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: ' | tail -n 1)
    cov=$(printf '%s\n' "$status" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(printf '%s\n' "$status" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    corp=$(printf '%s\n' "$status" | sed -n 's/.*corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
    crashes=$(ls "$BIN/artifacts/$target" 2>/dev/null | grep -c -E '^(crash|leak|timeout|oom|slow-unit)-' || true)
    if [ "$rc" -eq 0 ]; then verdict=ok; else verdict="FAILED (exit $rc)"; fi
    printf '%-16s %s: execs %s, exec/s %s, cov %s, ft %s, corpus %s, peak RSS %s MB, artifacts %s\n' \
        "$target" "$verdict" "${execs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
        "${rss:-?}" "$crashes"
}

run_one() {
    target=$1
    mkdir -p "$BIN/corpus/$target" "$BIN/artifacts/$target" "$BIN/logs" "$HERE/corpus/$target"
    log="$BIN/logs/$target.log"
    "$BIN/$target" -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$target")" \
        -print_final_stats=1 -timeout=25 -rss_limit_mb=2048 \
        -artifact_prefix="$BIN/artifacts/$target/" \
        "$BIN/corpus/$target" "$HERE/corpus/$target" >"$log" 2>&1
    rc=$?
    summarize "$target" "$log" "$rc" >"$BIN/logs/$target.summary"
    return $rc
}

replay() {
    failed=0
    for target in $TARGETS; do
        dir="$HERE/regressions/$target"
        [ -d "$dir" ] || continue
        files=$(find "$dir" -type f ! -name '*.md' | sort)
        [ -n "$files" ] || continue
        n=$(printf '%s\n' "$files" | wc -l)
        log="$BIN/logs/$target.replay.log"
        mkdir -p "$BIN/logs"
        # shellcheck disable=SC2086  # file names are ours: no spaces
        if "$BIN/$target" -runs=1 $files >"$log" 2>&1; then
            printf '%-16s regressions: %d input(s) replayed, ok\n' "$target" "$n"
        else
            printf '%-16s regressions: FAILED (see %s)\n' "$target" "$log"
            failed=1
        fi
    done
    return $failed
}

case $MODE in
fuzz|smoke) ;;
*) echo "usage: $0 fuzz|smoke SECONDS [JOBS]" >&2; exit 2 ;;
esac

for target in $TARGETS; do
    [ -x "$BIN/$target" ] || { echo "$BIN/$target missing: run make fuzz-build" >&2; exit 2; }
done

status=0
if [ "$MODE" = smoke ]; then
    replay || status=1
fi

# JOBS targets at a time; a target's summary line is printed when it ends.
running=0 pids=""
for target in $TARGETS; do
    run_one "$target" &
    pids="$pids $!:$target"
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        for entry in $pids; do
            wait "${entry%%:*}" || status=1
            cat "$BIN/logs/${entry#*:}.summary"
        done
        pids="" running=0
    fi
done
for entry in $pids; do
    wait "${entry%%:*}" || status=1
    cat "$BIN/logs/${entry#*:}.summary"
done
# One closing line in the form CI and people read: targets that ended without a crash.
passed=0 total=0
for target in $TARGETS; do
    total=$((total + 1))
    grep -q ' ok: ' "$BIN/logs/$target.summary" 2>/dev/null && passed=$((passed + 1))
done
echo "fuzz: $passed passed, $((total - passed)) failed"
exit $status
