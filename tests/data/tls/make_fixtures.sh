#!/bin/sh
# make_fixtures.sh — regenerates the TLS fixtures of tests/test_tls.c: real OpenSSL
# handshakes on 127.0.0.1 only, captured with tcpdump on lo, then each connection written
# as "C|S <len>\n<bytes>\n" records (tshark -z follow,tcp,raw) like tests/data/pop3.
# Needs root (tcpdump), openssl 3.0, tshark. Certificates are made here, with fixed
# validity dates so the tests do not depend on the day they run.
# Usage: tests/data/tls/make_fixtures.sh   (from anywhere; writes next to itself)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
public=${PUBLIC_PCAPS:-/work/shared/pcaps/public}

# tshark's follow output (node 0 = the side that sent the SYN) as chunk records.
follow() { # pcap > chunks
    tshark -r "$1" -q -z follow,tcp,raw,0 2>/dev/null | python3 -c '
import sys
out = sys.stdout.buffer
for line in sys.stdin:
    if not line.strip() or line.startswith(("=", "Follow:", "Filter:", "Node ")):
        continue
    data = bytes.fromhex(line.strip())
    out.write(b"%s %d\n" % (b"S" if line.startswith("\t") else b"C", len(data)) + data + b"\n")
'
}

# ---- the public captures (see their MANIFEST.md): stream 0 of each, unmodified ----
for cap in ndpi_smtps.pcapng zeek_smtp-starttls.pcap zeek_imap-starttls.pcap \
           zeek_pop3-starttls.pcap; do
    follow "$public/$cap" > "$here/public_${cap%.*}.chunks"
done
[ "${1:-}" = public ] && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# ---- a test CA and two server certificates (CN mail.example.test + SANs) ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 36500 \
    -subj "/O=Mailtap Test CA/CN=Mailtap Test Root" 2>/dev/null
mkdir -p db && : > db/index.txt && echo 1000 > db/serial
cat > ca.cnf <<CNF
[ ca ]
default_ca = testca
[ testca ]
dir = $work/db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $work/ca.pem
private_key = $work/ca.key
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
x509_extensions = server
[ anything ]
commonName = supplied
organizationName = optional
[ server ]
basicConstraints = CA:FALSE
subjectAltName = DNS:mail.example.test, DNS:*.mx.example.test, IP:127.0.0.1
CNF
mkcert() { # name startdate enddate
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" \
        -subj "/O=Example Mail/CN=mail.example.test" 2>/dev/null
    openssl ca -batch -config ca.cnf -in "$1.csr" -out "$1.pem" -notext \
        -startdate "$2" -enddate "$3" 2>/dev/null
}
mkcert expired 20200101000000Z 20210101000000Z
mkcert valid 20240101000000Z 20440101000000Z
cp ca.pem "$here/ca.pem"; cp expired.pem "$here/expired.pem"; cp valid.pem "$here/valid.pem"

# ---- one handshake: name port "server options" "client options" ----
run() {
    name=$1 port=$2 sopts=$3 copts=$4
    tcpdump -i lo -U -s 0 -w "$name.pcap" "host 127.0.0.1 and tcp port $port" 2>/dev/null &
    tpid=$!
    sleep 1
    # shellcheck disable=SC2086
    (sleep 2; echo "server says hi") | openssl s_server -accept "127.0.0.1:$port" -naccept 1 \
        -quiet $sopts >/dev/null 2>&1 &
    spid=$!
    sleep 0.5
    # shellcheck disable=SC2086
    (echo "client says hi"; sleep 2) | openssl s_client -connect "127.0.0.1:$port" \
        -ign_eof $copts >/dev/null 2>&1 || true
    sleep 0.5
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    sleep 0.5
    kill "$tpid"; wait "$tpid" 2>/dev/null || true
    follow "$name.pcap" > "$here/$name.chunks"
    cp "$name.pcap" "$here/$name.pcap"
    echo "$name: $(wc -c < "$here/$name.chunks") bytes"
}

E="-cert expired.pem -key expired.key"
V="-cert valid.pem -key valid.key"
run tls12_expired 14401 "$E -tls1_2" "-tls1_2 -servername mail.example.test"
run tls12_expired_rejected 14402 "$E -tls1_2" \
    "-tls1_2 -servername mail.example.test -CAfile ca.pem -verify_return_error"
run tls13_ok 14403 "$V -tls1_3 -alpn imap" "-tls1_3 -servername mail.example.test -alpn imap,pop3"
run version_mismatch 14404 "$V -tls1_2" "-tls1_3 -servername mail.example.test"
run cipher_mismatch 14405 "$V -tls1_2 -cipher AES256-GCM-SHA384" \
    "-tls1_2 -cipher AES128-SHA -servername mail.example.test"
run name_mismatch 14406 "$V -tls1_2" "-tls1_2 -servername smtp.other.example"
run tls10_ok 14407 "$V -tls1 -cipher DEFAULT:@SECLEVEL=0" \
    "-tls1 -cipher DEFAULT:@SECLEVEL=0 -servername mail.example.test"
run tls13_rejected 14408 "$E -tls1_3" \
    "-tls1_3 -servername mail.example.test -CAfile ca.pem -verify_return_error"
