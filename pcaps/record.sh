#!/usr/bin/env bash
# Record mailtap's reference captures (SMTP / POP3 / IMAP) against REAL servers
# (Postfix + Dovecot) and REAL clients (swaks, python3 smtplib/poplib/imaplib,
# openssl s_client, curl), all on the loopback interface only.
#
#   usage: bash pcaps/record.sh            (as root, Debian 12)
#          bash pcaps/record.sh smtp/delivered imap/append   (only these scenarios)
#
# Every server listens on 127.0.0.1 / ::1 only, every client connects to
# 127.0.0.1 / ::1 only, and every capture is taken on "lo".  Outbound mail is
# impossible by configuration (default/relay transports are "error", DNS is
# disabled in Postfix), so nothing ever leaves the machine.
#
# Outputs (deterministic names, no temp paths inside):
#   pcaps/{smtp,pop3,imap}/NAME.pcap            the capture
#   pcaps/{smtp,pop3,imap}/NAME.expected.json   what the driver KNOWS happened
#
# Everything transient (configs, queue, mailboxes, certs, logs) lives in a
# mktemp directory that is removed on exit; all servers started here are
# stopped on exit, even on failure.
export MAILTAP_LOOPBACK_ALIAS="${MAILTAP_LOOPBACK_ALIAS-127.0.0.2}"  # still loopback (127/8)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DEBIAN_FRONTEND=noninteractive

if [[ $(id -u) -ne 0 ]]; then
    echo "record.sh: must run as root (it starts postfix/dovecot and tcpdump)" >&2
    exit 2
fi

log() { printf '[record] %s\n' "$*" >&2; }

# --------------------------------------------------------------------------
# 1. packages
# --------------------------------------------------------------------------
PKGS=(postfix dovecot-core dovecot-imapd dovecot-pop3d swaks tcpdump openssl
      curl libnet-ssleay-perl libio-socket-ip-perl python3 tshark)
missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        # python3 may come from elsewhere (pyenv); accept any python3 on PATH
        if [[ $p == python3 ]] && command -v python3 >/dev/null; then continue; fi
        # tshark is only used for the optional self-check
        if [[ $p == tshark ]]; then continue; fi
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    # never let the package scripts start the system-wide daemons
    created_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        created_policy=1
    fi
    apt-get update -qq
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    ((created_policy)) && rm -f /usr/sbin/policy-rc.d
fi

# --------------------------------------------------------------------------
# 2. private server configuration under a temp dir
# --------------------------------------------------------------------------
W="$(mktemp -d /tmp/mailtap-record.XXXXXX)"
chmod 755 "$W"
PF="$W/postfix"        # postfix config_directory
DV="$W/dovecot"        # dovecot config + runtime
MAIL="$W/mail"         # maildirs (owned by uid/gid "mail")
TLS="$W/tls"
mkdir -p "$PF" "$DV/run" "$DV/state" "$MAIL/example.test" "$TLS"

cleanup() {
    local rc=$?
    set +e
    if [[ -n ${TCPDUMP_PIDS_FILE:-} && -f $TCPDUMP_PIDS_FILE ]]; then
        while read -r p; do kill -INT "$p" 2>/dev/null; done <"$TCPDUMP_PIDS_FILE"
    fi
    if [[ -f $PF/main.cf ]]; then
        postfix -c "$PF" stop >/dev/null 2>&1
    fi
    for pidf in "$DV/run/master.pid" "$DV/run-strict/master.pid"; do
        [[ -f $pidf ]] && kill -TERM "$(cat "$pidf")" 2>/dev/null
    done
    # wait (bounded) for the daemons we started to go away
    for _ in $(seq 1 50); do
        local alive=0
        [[ -f $PF/queue/pid/master.pid ]] && kill -0 "$(tr -d ' ' <"$PF/queue/pid/master.pid")" 2>/dev/null && alive=1
        for pidf in "$DV/run/master.pid" "$DV/run-strict/master.pid"; do
            [[ -f $pidf ]] && kill -0 "$(cat "$pidf")" 2>/dev/null && alive=1
        done
        ((alive)) || break
        sleep 0.1
    done
    if ((rc != 0)); then
        log "FAILED (rc=$rc); server logs follow"
        tail -n 40 "$PF/maillog" "$DV/dovecot.log" "$DV/dovecot-strict.log" >&2 2>/dev/null
    fi
    if [[ -n ${MAILTAP_KEEP:-} ]]; then log "kept $W"; else rm -rf "$W"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- self-signed certificate -------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
    -subj "/CN=mail.example.test" \
    -addext "subjectAltName=DNS:mail.example.test,IP:127.0.0.1,IP:::1" \
    -keyout "$TLS/key.pem" -out "$TLS/cert.pem" >/dev/null 2>&1
chmod 644 "$TLS/cert.pem"; chmod 600 "$TLS/key.pem"

# ---- Dovecot -------------------------------------------------------------------
# users: alice/alicepw, bob/bobpw (SMTP), carol/carolpw (POP3), dave/davepw (IMAP)
cat >"$DV/users" <<EOF
alice:{PLAIN}alicepw::::::
bob:{PLAIN}bobpw::::::
carol:{PLAIN}carolpw::::::
dave:{PLAIN}davepw::::::
EOF
chmod 644 "$DV/users"

# The main instance: POP3 110 / IMAP 143 with STARTTLS, plaintext auth allowed.
# It also serves SASL to Postfix (auth-postfix socket).
dovecot_conf() {   # $1 = instance tag ("" or "-strict")
    local tag="$1" run="$DV/run$1" state="$DV/state$1"
    mkdir -p "$run" "$state"
    cat <<EOF
# generated by pcaps/record.sh
base_dir = $run
state_dir = $state
instance_name = mailtap$tag
protocols = imap pop3
listen = 127.0.0.1, ::1
log_path = $DV/dovecot$tag.log
info_log_path = $DV/dovecot$tag.log
ssl = yes
ssl_cert = <$TLS/cert.pem
ssl_key = <$TLS/key.pem
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login
auth_failure_delay = 1 secs
first_valid_uid = 8
mail_location = maildir:$MAIL/example.test/%n
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $DV/users
}
userdb {
  driver = static
  args = uid=mail gid=mail home=$MAIL/example.test/%n
}
protocol imap {
  imap_idle_notify_interval = 2 mins
}
EOF
}

{
    dovecot_conf ""
    cat <<EOF
disable_plaintext_auth = no
service imap-login {
  inet_listener imap {
    address = 127.0.0.1, ::1
    port = 143
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1, ::1
    port = 110
  }
  inet_listener pop3s {
    port = 0
  }
}
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
EOF
} >"$DV/dovecot.conf"

# The strict instance: plaintext authentication disabled before TLS
# (IMAP 1143 / POP3 1110).  Dovecot treats a connection whose client address
# equals the server address (127.0.0.1 -> 127.0.0.1) as "secured" and then
# ignores disable_plaintext_auth, so this instance only shows LOGINDISABLED
# to a client bound to another loopback address: it is started only when
# MAILTAP_LOOPBACK_ALIAS is set (default 127.0.0.2, still loopback). See README.
{
    dovecot_conf "-strict"
    cat <<EOF
disable_plaintext_auth = yes
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = 1143
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = 1110
  }
  inet_listener pop3s {
    port = 0
  }
}
EOF
} >"$DV/dovecot-strict.conf"

# ---- Postfix -------------------------------------------------------------------
cat >"$PF/vmailbox" <<EOF
alice@example.test   example.test/alice/
bob@example.test     example.test/bob/
carol@example.test   example.test/carol/
dave@example.test    example.test/dave/
EOF
for u in alice bob carol dave; do mkdir -p "$MAIL/example.test/$u"/{cur,new,tmp}; done
chown -R mail:mail "$MAIL"

cat >"$PF/main.cf" <<EOF
# generated by pcaps/record.sh -- private instance, loopback only
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $PF/maillog
maillog_file_prefixes = $W

myhostname = mail.example.test
mydomain = example.test
myorigin = example.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = all
mynetworks = 127.0.0.1/32 [::1]/128
smtpd_banner = \$myhostname ESMTP Postfix
biff = no
alias_maps =
alias_database =
local_recipient_maps =

# no DNS, no outbound delivery of any kind
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
default_transport = error:outbound mail disabled (mailtap test rig)
relay_transport = error:outbound mail disabled (mailtap test rig)
notify_classes =

virtual_mailbox_domains = example.test
virtual_mailbox_maps = texthash:$PF/vmailbox
virtual_mailbox_base = $MAIL
virtual_minimum_uid = 8
virtual_uid_maps = static:8
virtual_gid_maps = static:8
message_size_limit = 10240000

smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_sasl_type = dovecot
smtpd_sasl_path = $DV/run/auth-postfix
smtpd_sasl_auth_enable = no

smtpd_tls_cert_file = $TLS/cert.pem
smtpd_tls_key_file = $TLS/key.pem
smtpd_tls_security_level = may
smtp_tls_security_level = none
smtpd_tls_loglevel = 1
EOF

cat >"$PF/master.cf" <<EOF
# generated by pcaps/record.sh -- no chroot, loopback listeners only
127.0.0.1:smtp       inet n - n - - smtpd
[::1]:smtp           inet n - n - - smtpd
# submission: STARTTLS offered, SASL (Dovecot) enabled, and -- for the
# auth captures -- AUTH allowed before STARTTLS (smtpd_tls_auth_only=no)
127.0.0.1:submission inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=no
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject_unauth_destination
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n - 0 cleanup
qmgr       unix  n - n 300 1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n - - trivial-rewrite
bounce     unix  - - n - 0 bounce
defer      unix  - - n - 0 bounce
trace      unix  - - n - 0 bounce
verify     unix  - - n - 1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n - - proxymap
proxywrite unix  - - n - 1 proxymap
showq      unix  n - n - - showq
error      unix  - - n - - error
retry      unix  - - n - - error
discard    unix  - - n - - discard
virtual    unix  - n n - - virtual
anvil      unix  - - n - 1 anvil
scache     unix  - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF

# ---- start servers -------------------------------------------------------------
log "starting dovecot"
dovecot -c "$DV/dovecot.conf"
if [[ -n ${MAILTAP_LOOPBACK_ALIAS:-} ]]; then
    log "starting strict dovecot instance (login-disabled scenarios)"
    dovecot -c "$DV/dovecot-strict.conf"
fi
log "starting postfix"
mkdir -p "$PF/queue" "$PF/data"
chown postfix:postfix "$PF/data"
postfix -c "$PF" check
postfix -c "$PF" start

wait_port() {   # host port
    for _ in $(seq 1 100); do
        if python3 - "$1" "$2" <<'PY' 2>/dev/null; then return 0; fi
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)
s.close()
PY
        sleep 0.1
    done
    log "server on [$1]:$2 did not come up"; return 1
}
ports=("127.0.0.1 25" "::1 25" "127.0.0.1 587" "127.0.0.1 110" "127.0.0.1 143"
       "::1 110" "::1 143")
[[ -n ${MAILTAP_LOOPBACK_ALIAS:-} ]] && ports+=("127.0.0.1 1110" "127.0.0.1 1143")
for hp in "${ports[@]}"; do
    # shellcheck disable=SC2086  # "host port" is split on purpose
    wait_port $hp
done
# (these probe connections happen before any capture starts)

# --------------------------------------------------------------------------
# 3. scenarios
# --------------------------------------------------------------------------
export TCPDUMP_PIDS_FILE="$W/tcpdump.pids"
: >"$TCPDUMP_PIDS_FILE"
log "running scenarios"
MAILDIR_ROOT="$MAIL/example.test" PF_LOG="$PF/maillog" \
    python3 "$HERE/tools/scenarios.py" --out "$HERE" "$@"
log "done"
