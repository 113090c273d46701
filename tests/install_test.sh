#!/bin/sh
# install_test.sh — `make install` / `make uninstall` into a scratch DESTDIR: every file
# where it belongs with its mode, the unit naming the installed binary, the man page
# rendering without groff warnings, the installed binary running; the settings file kept
# when present or edited; then everything removed. Run from the top of the source tree
# (`make installtest`); needs groff (groff-base) and man (man-db). A few seconds.
set -u

MAKE=${MAKE:-make}
cd "$(dirname "$0")/.." || exit 2

passed=0
failed=0
ok()   { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() {   # check DESCRIPTION COMMAND...
    what=$1; shift
    if "$@"; then ok; else fail "$what"; fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mailtap-install.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
log=$tmp/make.log

mode_of() { stat -c %a "$1" 2>/dev/null; }
check_file() {   # check_file PATH MODE
    if [ -f "$1" ]; then
        ok
        m=$(mode_of "$1")
        if [ "$m" = "$2" ]; then ok; else fail "$1: mode $m, expected $2"; fi
    else
        fail "$1: not installed"
        failed=$((failed + 1))   # the mode check cannot pass either
    fi
}
gone() { [ ! -e "$1" ] && [ ! -L "$1" ]; }

# --- PREFIX=/usr, as a package would -------------------------------------------------
D=$tmp/root
if $MAKE -s install DESTDIR="$D" PREFIX=/usr >"$log" 2>&1; then ok; else
    fail "make install DESTDIR=$D PREFIX=/usr"; cat "$log"
fi
bin=$D/usr/bin/mailtap
man1=$D/usr/share/man/man1/mailtap.1
unit=$D/usr/lib/systemd/system/mailtap.service
conf=$D/etc/default/mailtap
check_file "$bin" 755
check_file "$man1" 644
check_file "$unit" 644
check_file "$conf" 644
check "no stray temporary file in the unit directory" \
    test "$(ls "$D/usr/lib/systemd/system")" = mailtap.service

# The unit: the installed binary and settings file, nothing left of /usr/local.
check "unit ExecStart names /usr/bin/mailtap" \
    grep -q '^ExecStart=/usr/bin/mailtap capture -i ' "$unit"
check "unit reads /etc/default/mailtap" \
    grep -qx 'EnvironmentFile=-/etc/default/mailtap' "$unit"
check "unit has no /usr/local path left" sh -c "! grep -q /usr/local '$unit'"
check "unit ExecReload sends SIGHUP" grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$unit"
check "unit StateDirectory=mailtap" grep -qx 'StateDirectory=mailtap' "$unit"
if command -v systemd-analyze >/dev/null 2>&1; then
    # A copy naming the binary inside DESTDIR, so that verify can check it is executable;
    # --man=no: the page is not in the system's MANPATH.
    mkdir -p "$tmp/verify"
    sed "s|/usr/bin/mailtap|$bin|g" "$unit" >"$tmp/verify/mailtap.service"
    out=$(systemd-analyze verify --man=no "$tmp/verify/mailtap.service" 2>&1)
    check "systemd-analyze verify: $out" test -z "$out"
else
    echo "skip: systemd-analyze not installed"
fi

# The settings: the shipped example, valid shell-style assignments.
check "settings file is the example" cmp -s contrib/mailtap.default "$conf"
check "settings define MAILTAP_IFACE, MAILTAP_DB, MAILTAP_OPTS" \
    sh -c ". '$conf' && [ -n \"\$MAILTAP_IFACE\" ] && [ \"\$MAILTAP_DB\" = /var/lib/mailtap/mailtap.db ] && [ -n \"\${MAILTAP_OPTS+set}\" ]"

# The man page: renders, no warnings, every command documented.
if command -v groff >/dev/null 2>&1; then
    warnings=$(groff -man -Tutf8 -ww -z "$man1" 2>&1)
    check "groff warnings: $warnings" test -z "$warnings"
else
    fail "groff not installed (package groff-base)"
fi
if command -v man >/dev/null 2>&1; then
    text=$(MANWIDTH=80 man -l "$man1" 2>"$tmp/man.err")
    check "man -l renders (stderr: $(cat "$tmp/man.err"))" \
        sh -c "[ -n \"\$1\" ] && [ ! -s '$tmp/man.err' ]" - "$text"
    for word in 'mailtap read' 'mailtap capture' 'mailtap list' 'mailtap show' \
                'mailtap trace' 'mailtap stats' 'mailtap ui' 'EXIT STATUS' SIGHUP NO_COLOR; do
        case $text in
        *"$word"*) ok ;;
        *) fail "man page lacks \"$word\"" ;;
        esac
    done
else
    fail "man not installed (package man-db)"
fi

# The installed binary runs.
check "installed mailtap --help" sh -c "'$bin' --help | grep -q '^usage: mailtap'"
check "installed mailtap --version" sh -c "'$bin' --version | grep -q '^mailtap '"

# A second install keeps an edited settings file; uninstall keeps it too.
echo 'MAILTAP_IFACE=eth9' >>"$conf"
if $MAKE -s install DESTDIR="$D" PREFIX=/usr >"$log" 2>&1; then ok; else
    fail "second make install"; cat "$log"
fi
check "second install keeps the edited settings" grep -qx 'MAILTAP_IFACE=eth9' "$conf"

if $MAKE -s uninstall DESTDIR="$D" PREFIX=/usr >"$log" 2>&1; then ok; else
    fail "make uninstall DESTDIR=$D PREFIX=/usr"; cat "$log"
fi
for f in "$bin" "$man1" "$unit"; do
    check "uninstall removes $f" gone "$f"
done
check "uninstall keeps the edited settings" grep -qx 'MAILTAP_IFACE=eth9' "$conf"

# --- default PREFIX (/usr/local): unchanged settings are removed by uninstall ---------
L=$tmp/local
if $MAKE -s install DESTDIR="$L" >"$log" 2>&1; then ok; else
    fail "make install DESTDIR=$L"; cat "$log"
fi
check_file "$L/usr/local/bin/mailtap" 755
check_file "$L/usr/local/share/man/man1/mailtap.1" 644
check_file "$L/usr/local/lib/systemd/system/mailtap.service" 644
check_file "$L/etc/default/mailtap" 644
check "default-prefix unit ExecStart names /usr/local/bin/mailtap" \
    grep -q '^ExecStart=/usr/local/bin/mailtap capture ' "$L/usr/local/lib/systemd/system/mailtap.service"
if $MAKE -s uninstall DESTDIR="$L" >"$log" 2>&1; then ok; else
    fail "make uninstall DESTDIR=$L"; cat "$log"
fi
left=$(find "$L" -type f)
check "default-prefix uninstall leaves no file ($left)" test -z "$left"

echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
