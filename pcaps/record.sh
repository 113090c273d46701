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
# The dns/, tls/ and relay/ scenarios need a Postfix that DOES look up MX
# records and deliver: it runs in a network namespace created here whose only
# interface is its own lo (section 2b), with its own DNS responder on
# 127.0.0.2 and a bind-mounted resolv.conf; the host's resolver is never used.
#
# Outputs (deterministic names, no temp paths inside):
#   pcaps/{smtp,pop3,imap,dns,tls,relay}/NAME.pcap            the capture
#   pcaps/{smtp,pop3,imap,dns,tls,relay}/NAME.expected.json   what the driver KNOWS happened
#   NAME.args                                   extra mailtap options (ports, --local)
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
PKGS=(postfix dovecot-core dovecot-imapd dovecot-pop3d swaks tcpdump openssl iproute2
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

NS=""            # network namespace of the dns/ tls/ relay/ rig (section 2b)
NS_PIDS=()      # helper processes started in it
ns_cleanup() {
    [[ -n $NS ]] || return 0
    if [[ -f ${PFO:-}/main.cf ]]; then
        postfix -c "$PFO" stop >/dev/null 2>&1
        for _ in $(seq 1 50); do
            [[ -f $PFO/queue/pid/master.pid ]] &&
                kill -0 "$(tr -d ' ' <"$PFO/queue/pid/master.pid")" 2>/dev/null || break
            sleep 0.1
        done
    fi
    local p
    for p in "${NS_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${NS_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
    NS=""
}

cleanup() {
    local rc=$?
    set +e
    if [[ -n ${TCPDUMP_PIDS_FILE:-} && -f $TCPDUMP_PIDS_FILE ]]; then
        while read -r p; do kill -INT "$p" 2>/dev/null; done <"$TCPDUMP_PIDS_FILE"
    fi
    if [[ -f $PF/main.cf ]]; then
        postfix -c "$PF" stop >/dev/null 2>&1
    fi
    ns_cleanup
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
        tail -n 40 "$PF/maillog" "$DV/dovecot.log" "$DV/dovecot-strict.log" \
            "${PFO:-/nonexistent}/maillog" >&2 2>/dev/null
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
# 2b. the namespace rig for dns/, tls/ and relay/ (only when one is asked for)
# --------------------------------------------------------------------------
# These scenarios need a Postfix that really delivers outbound (MX lookups,
# smtp client), so it runs where nothing can leave the machine by
# construction: a network namespace of our own whose only interface is its
# own "lo" (no route anywhere else).  Inside it:
#   127.0.0.1:25        Postfix "out": relays for 127.0.0.1 (mynetworks) to any domain
#   127.0.0.2:53/udp    DNS responder (scenarios.py --serve dns): the only resolver
#   127.0.0.3:25        SMTP sink = MX of good.example
#   127.0.0.4:25        SMTP sink = relay host for relay.example (transport map)
#   127.0.0.5:25 / 465  Postfix smtpd, STARTTLS / implicit TLS, EXPIRED certificate
#   127.0.0.6:25        Postfix smtpd, STARTTLS, TLS 1.2 only
#   127.0.0.7:25        Postfix smtpd, STARTTLS, RSA key exchange ciphers excluded
# Every process started in the namespace (nsexec) sees a bind-mounted
# resolv.conf with "nameserver 127.0.0.2" in a private mount namespace: the
# host's /etc/resolv.conf (a real resolver) is never used, and the host's file
# is untouched.
want_ns=0
if (($# == 0)); then
    want_ns=1
else
    for a in "$@"; do [[ $a == dns/* || $a == tls/* || $a == relay/* ]] && want_ns=1; done
fi
if ((want_ns)); then
    NSD="$W/ns"; PFO="$W/postfix-out"
    mkdir -p "$NSD" "$PFO/queue" "$PFO/data"
    chown postfix:postfix "$PFO/data"
    NS="mailtap-rec-$$"
    log "creating network namespace $NS (only lo)"
    ip netns add "$NS"
    ip netns exec "$NS" ip link set lo up
    nifs=$(ip netns exec "$NS" ip -o link show | wc -l)
    [[ $nifs -eq 1 ]] || { log "namespace $NS has $nifs interfaces, expected only lo"; exit 1; }
    printf 'nameserver 127.0.0.2\noptions timeout:1 attempts:1\n' >"$NSD/resolv.conf"
    chmod 644 "$NSD/resolv.conf"
    # nsexec CMD...: run CMD in the namespace, with the loopback resolv.conf
    cat >"$NSD/nsexec" <<NSEXEC
#!/bin/sh
exec ip netns exec $NS unshare -m --propagation private \\
    sh -c 'mount --bind "\$0" /etc/resolv.conf && exec "\$@"' $NSD/resolv.conf "\$@"
NSEXEC
    chmod 755 "$NSD/nsexec"
    "$NSD/nsexec" sh -c 'grep -qx "nameserver 127.0.0.2" /etc/resolv.conf' ||
        { log "resolv.conf bind mount failed"; exit 1; }
    grep -qx "nameserver 127.0.0.2" /etc/resolv.conf &&
        { log "the host's resolv.conf was changed"; exit 1; }

    # ---- certificates: a test CA and an EXPIRED leaf (2020-01-01 .. 2021-01-01) ---
    mkdir -p "$TLS/ca/newcerts"; : >"$TLS/ca/index.txt"; echo 1000 >"$TLS/ca/serial"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mailtap test CA" \
        -keyout "$TLS/ca/ca.key" -out "$TLS/ca/ca.pem" >/dev/null 2>&1
    openssl req -new -newkey rsa:2048 -nodes -subj "/CN=mail.expired.example" \
        -keyout "$TLS/expired.key" -out "$TLS/expired.csr" >/dev/null 2>&1
    cat >"$TLS/ca/ca.cnf" <<CACNF
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = $TLS/ca
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
default_md = sha256
policy = anything
x509_extensions = leaf
copy_extensions = none
unique_subject = no
[ anything ]
commonName = supplied
[ leaf ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:mail.expired.example
CACNF
    openssl ca -batch -config "$TLS/ca/ca.cnf" -notext \
        -startdate 20200101000000Z -enddate 20210101000000Z \
        -in "$TLS/expired.csr" -out "$TLS/expired.pem" >/dev/null 2>&1
    cat "$TLS/expired.pem" "$TLS/ca/ca.pem" >"$TLS/expired-chain.pem"
    chmod 644 "$TLS/expired.pem" "$TLS/expired-chain.pem" "$TLS/ca/ca.pem"
    chmod 600 "$TLS/expired.key"

    cat >"$PFO/transport" <<TRANSPORT
relay.example        smtp:[127.0.0.4]:25
tls.example          discard:tls scenarios do not deliver
client.example.test  discard:bounces to the scenario sender are dropped
TRANSPORT
    cat >"$PFO/main.cf" <<MAINCF
# generated by pcaps/record.sh -- private instance inside network namespace $NS
compatibility_level = 3.6
queue_directory = $PFO/queue
data_directory = $PFO/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $PFO/maillog
maillog_file_prefixes = $W
syslog_name = postfix-out

myhostname = mta.example.test
mydomain = example.test
myorigin = example.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = all
mynetworks = 127.0.0.1/32
smtpd_banner = \$myhostname ESMTP Postfix
biff = no
alias_maps =
alias_database =
local_recipient_maps =
notify_classes =
smtpd_peername_lookup = no
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions =
smtpd_tls_security_level = none

# outbound: real MX lookups through the namespace's resolver (127.0.0.2)
default_transport = smtp
relay_transport = smtp
transport_maps = texthash:$PFO/transport
smtp_host_lookup = dns
smtp_dns_support_level = enabled
disable_dns_lookups = no
smtp_bind_address = 127.0.0.1
smtp_connect_timeout = 5s
smtp_tls_security_level = none
smtp_connection_cache_on_demand = no
# one try per message: the driver deletes the queue after each scenario
minimal_backoff_time = 1h
maximal_backoff_time = 2h
queue_run_delay = 1h

# TLS listeners (master.cf) take values with commas from here
tls_only12 = >=TLSv1.2, <=TLSv1.2
tls_upto12 = <=TLSv1.2
MAINCF
    cat >"$PFO/master.cf" <<MASTERCF
# generated by pcaps/record.sh -- no chroot; loopback of namespace $NS only
127.0.0.1:smtp inet n - n - - smtpd
# EXPIRED certificate, TLS <= 1.2 so that the certificate travels in the clear
127.0.0.5:smtp inet n - n - - smtpd
  -o syslog_name=postfix-out/expired
  -o smtpd_tls_security_level=may
  -o smtpd_tls_cert_file=$TLS/expired-chain.pem
  -o smtpd_tls_key_file=$TLS/expired.key
  -o smtpd_tls_protocols=\$tls_upto12
  -o smtpd_tls_mandatory_protocols=\$tls_upto12
  -o smtpd_tls_loglevel=1
127.0.0.5:465 inet n - n - - smtpd
  -o syslog_name=postfix-out/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_cert_file=$TLS/expired-chain.pem
  -o smtpd_tls_key_file=$TLS/expired.key
  -o smtpd_tls_protocols=\$tls_upto12
  -o smtpd_tls_mandatory_protocols=\$tls_upto12
  -o smtpd_tls_loglevel=1
127.0.0.6:smtp inet n - n - - smtpd
  -o syslog_name=postfix-out/tls12only
  -o smtpd_tls_security_level=may
  -o smtpd_tls_cert_file=$TLS/cert.pem
  -o smtpd_tls_key_file=$TLS/key.pem
  -o smtpd_tls_protocols=\$tls_only12
  -o smtpd_tls_mandatory_protocols=\$tls_only12
  -o smtpd_tls_loglevel=1
127.0.0.7:smtp inet n - n - - smtpd
  -o syslog_name=postfix-out/nokrsa
  -o smtpd_tls_security_level=may
  -o smtpd_tls_cert_file=$TLS/cert.pem
  -o smtpd_tls_key_file=$TLS/key.pem
  -o smtpd_tls_exclude_ciphers=kRSA
  -o smtpd_tls_loglevel=1
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
smtp       unix  - - n - - smtp
relay      unix  - - n - - smtp
showq      unix  n - n - - showq
error      unix  - - n - - error
retry      unix  - - n - - error
discard    unix  - - n - - discard
anvil      unix  - - n - 1 anvil
scache     unix  - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
MASTERCF
    log "starting DNS responder and SMTP sinks in $NS"
    "$NSD/nsexec" python3 "$HERE/tools/scenarios.py" --serve dns --log "$NSD/dns.log" &
    NS_PIDS+=($!)
    "$NSD/nsexec" python3 "$HERE/tools/scenarios.py" --serve sink --log "$NSD/sink.log" &
    NS_PIDS+=($!)
    log "starting postfix (outbound) in $NS"
    "$NSD/nsexec" postfix -c "$PFO" check
    "$NSD/nsexec" postfix -c "$PFO" start
    for hp in "127.0.0.1 25" "127.0.0.3 25" "127.0.0.4 25" "127.0.0.5 25" "127.0.0.5 465" \
              "127.0.0.6 25" "127.0.0.7 25"; do
        # shellcheck disable=SC2086  # "host port" is split on purpose
        "$NSD/nsexec" python3 -c '
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("server on %s:%s did not come up" % tuple(sys.argv[1:]))' $hp
    done
    for _ in $(seq 1 50); do [[ -s $NSD/dns.log ]] && break; sleep 0.1; done
    [[ -s $NSD/dns.log ]] || { log "DNS responder did not come up"; exit 1; }
    export MAILTAP_NETNS="$NS" MAILTAP_NSEXEC="$NSD/nsexec" NS_DNS_LOG="$NSD/dns.log" \
           NS_SINK_LOG="$NSD/sink.log" PFO_DIR="$PFO" PFO_LOG="$PFO/maillog" NS_TLS="$TLS"
fi

# --------------------------------------------------------------------------
# 3. scenarios
# --------------------------------------------------------------------------
export TCPDUMP_PIDS_FILE="$W/tcpdump.pids"
: >"$TCPDUMP_PIDS_FILE"
log "running scenarios"
MAILDIR_ROOT="$MAIL/example.test" PF_LOG="$PF/maillog" \
    python3 "$HERE/tools/scenarios.py" --out "$HERE" "$@"
log "done"
