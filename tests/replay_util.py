#!/usr/bin/env python3
"""replay_util.py — helpers for tests/replay_netns.sh and bench/replay_rates.sh, which
replay a capture into a network namespace while `mailtap capture` listens and compare the
result with `mailtap read` of the same file.

  replay_util.py sessions MAILTAP DB
      prints one normalised line per stored session, sorted: the fields that must not
      depend on when or how fast the packets arrived (protocol, direction, client and
      server address:port, status, how it ended, user, sender, recipients with their reply
      codes, messages with their sizes, auth counts, bytes each way, flags, and for DNS
      the query and its outcome). Timestamps, durations and database ids are left out:
      live they are the replay time.
  replay_util.py diff FILE_OFFLINE FILE_LIVE [MAX]
      compares two such listings as multisets; prints "identical" or the differences
      (at most MAX of each side, default 5) and exits 1.
  replay_util.py count PCAP [PORT...]
      packets of a classic pcap / pcapng file (Ethernet, 802.1Q/QinQ, IPv4/IPv6) whose TCP
      or UDP source or destination port is in PORT... (default: mailtap capture's default
      filter: the mail ports and 53). Prints "MATCHING TOTAL": what a live capture with
      that filter should see.
  replay_util.py sensor DB
      what the sensor_stats table says a live capture saw: the last row of each source
      (one per capture process: --workers writes one per worker), summed:
      "PACKETS KERNEL_DROPS INTERFACE_DROPS" ("? ? ?" without a row).
  replay_util.py head PCAP N OUT
      writes the first N packets of a classic pcap file to OUT (a capture cut short).
  replay_util.py tcpreplay FILE
      reads tcpreplay's output and prints "PACKETS FAILED SECONDS MBPS PPS".
"""
import collections
import json
import struct
import sqlite3
import subprocess
import sys

DEFAULT_PORTS = (25, 465, 587, 2525, 110, 995, 143, 993, 53)


def session_line(s):
    status = s.get("status")
    # An unanswered query the end cut short: a timeout when the capture's own clock ran 10 s
    # past it (the file), incomplete when it did not (the replay, faster than the original,
    # is stopped sooner after it). The same lookup, seen for a different time.
    if s.get("proto") == "dns" and status in ("timeout", "incomplete") and s.get("end") == "timeout":
        status = "unanswered"
    end = s.get("end")
    # So with a SYN never answered: unanswered where the file's quiet tail let 31 s pass,
    # cut (incomplete, eof) where the replay, sent at a fixed rate, was stopped within 3 s.
    line = s.get("status_line") or ""
    if ((status == "no_response" and end == "unanswered" and
         line.startswith("no answer to the connection attempt")) or
            (status == "incomplete" and end == "eof" and
             line.startswith("the capture ended before the connection was established"))):
        status, end = "unanswered", "unanswered"
    # ... and with an MX lookup never answered: a delivery failure where the file's clock
    # ran past the resolver's timeout, an incomplete attempt where the replay stopped first.
    mx_cut = status == "incomplete" and line.startswith("no answer to the MX lookup when the")
    if mx_cut:
        status = "dns_failed"
    fields = [s.get("proto"), s.get("direction"),
              "%s:%s" % (s.get("client_ip"), s.get("client_port")),
              "%s:%s" % (s.get("server_ip"), s.get("server_port")),
              "status=%s" % status, "end=%s" % end,
              "user=%s" % (s.get("user") or ""), "from=%s" % (s.get("mail_from") or "")]
    rcpts = ",".join("%s/%s" % (r.get("addr"), r.get("code")) for r in s.get("rcpt_to") or [])
    fields.append("rcpt=[%s]" % rcpts)
    msgs = ",".join("%s/%s/%s" % (m.get("size"), "dns_failed" if mx_cut else m.get("status"),
                                  m.get("reply_code"))
                    for m in s.get("messages") or [])
    fields.append("msgs=[%s]" % msgs)
    fields.append("auth=%s/%s" % (s.get("auth_attempts"), s.get("auth_failures")))
    fields.append("bytes=%s/%s" % (s.get("bytes_c2s"), s.get("bytes_s2c")))
    fields.append("flags=%s" % ",".join(sorted(s.get("flags") or [])))
    dns = s.get("dns")
    if dns:
        fields.append("dns=%s/%s/%s" % (dns.get("qname"), dns.get("qtype"), dns.get("rcode")))
    return " ".join(str(f) for f in fields)


def cmd_sessions(mailtap, db):
    proc = subprocess.run([mailtap, "list", "-d", db, "--json", "--oldest-first"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write("mailtap list failed (rc %d): %s" % (proc.returncode, proc.stderr))
        return 2
    lines = sorted(session_line(json.loads(l)) for l in proc.stdout.splitlines() if l.strip())
    sys.stdout.write("".join(l + "\n" for l in lines))
    return 0


def cmd_diff(offline_path, live_path, limit=5):
    with open(offline_path) as f:
        offline = collections.Counter(f.read().splitlines())
    with open(live_path) as f:
        live = collections.Counter(f.read().splitlines())
    if offline == live:
        print("identical (%d sessions)" % sum(offline.values()))
        return 0
    only_off = sorted((offline - live).elements())
    only_live = sorted((live - offline).elements())
    print("DIFFER: %d sessions offline, %d live; %d only offline, %d only live" % (
        sum(offline.values()), sum(live.values()), len(only_off), len(only_live)))
    for l in only_off[:limit]:
        print("  offline only: " + l)
    for l in only_live[:limit]:
        print("  live only:    " + l)
    return 1


def frames(path):
    """Yields (linktype, frame bytes) of a pcap or pcapng file."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        linktype = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
        off, n = 24, len(data)
        hdr = struct.Struct(e + "IIII")
        while off + 16 <= n:
            _, _, caplen, _ = hdr.unpack_from(data, off)
            yield linktype, data[off + 16:off + 16 + caplen]
            off += 16 + caplen
    elif magic == b"\x0a\x0d\x0d\x0a":
        off, e, linktypes = 0, "<", []
        while off + 12 <= len(data):
            btype = struct.unpack_from(e + "I", data, off)[0]
            if btype == 0x0A0D0D0A:
                e = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                linktypes = []
            blen = struct.unpack_from(e + "I", data, off + 4)[0]
            if blen < 12:
                break
            if btype == 1:
                linktypes.append(struct.unpack_from(e + "H", data, off + 8)[0])
            elif btype == 6:
                iface, _, _, caplen = struct.unpack_from(e + "IIII", data, off + 8)
                yield linktypes[iface], data[off + 28:off + 28 + caplen]
            elif btype == 3:
                yield linktypes[0], data[off + 12:off + blen - 4]
            off += blen
    else:
        raise SystemExit("%s: not a pcap or pcapng file" % path)


def ports_of(linktype, frame):
    """(proto, sport, dport) of an Ethernet frame, or None."""
    if linktype != 1 or len(frame) < 14:
        return None
    ethertype, off = struct.unpack_from(">H", frame, 12)[0], 14
    while ethertype in (0x8100, 0x88A8, 0x9100) and len(frame) >= off + 4:
        ethertype, off = struct.unpack_from(">H", frame, off + 2)[0], off + 4
    if ethertype == 0x0800 and len(frame) >= off + 20:
        if struct.unpack_from(">H", frame, off + 6)[0] & 0x1FFF:
            return None   # a later fragment: no ports
        proto, l4 = frame[off + 9], off + (frame[off] & 15) * 4
    elif ethertype == 0x86DD and len(frame) >= off + 40:
        proto, l4 = frame[off + 6], off + 40
    else:
        return None
    if proto not in (6, 17) or len(frame) < l4 + 4:
        return None
    return (proto,) + struct.unpack_from(">HH", frame, l4)


def cmd_count(path, ports):
    wanted = set(ports or DEFAULT_PORTS)
    matching = total = 0
    for linktype, frame in frames(path):
        total += 1
        p = ports_of(linktype, frame)
        if p and (p[1] in wanted or p[2] in wanted):
            matching += 1
    print("%d %d" % (matching, total))
    return 0


def cmd_sensor(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    rows = con.execute("SELECT packets, kernel_drops, interface_drops FROM sensor_stats"
                       " WHERE rowid IN (SELECT max(rowid) FROM sensor_stats GROUP BY source)"
                       ).fetchall()
    con.close()
    if not rows:
        print("? ? ?")
    else:
        print(" ".join(str(sum(r[i] or 0 for r in rows)) for i in range(3)))
    return 0


def cmd_head(path, count, out):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        raise SystemExit("%s: head needs a classic pcap file" % path)
    e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    off = 24
    for _ in range(count):
        if off + 16 > len(data):
            break
        off += 16 + struct.unpack_from(e + "I", data, off + 8)[0]
    with open(out, "wb") as f:
        f.write(data[:off])
    return 0


def cmd_tcpreplay(path):
    values = {}
    with open(path) as f:
        for line in f:
            words = line.split()
            if line.startswith("Actual:"):
                # Actual: 6098 packets (1028441 bytes) sent in 0.411379 seconds
                values["packets"] = words[1]
                values["seconds"] = words[words.index("seconds") - 1]
            elif line.startswith("Rated:"):
                # Rated: 2499984.1 Bps, 19.99 Mbps, 14823.31 pps
                text = line.replace(",", " ").split()
                values["mbps"] = text[text.index("Mbps") - 1]
                values["pps"] = text[text.index("pps") - 1]
            elif "Failed packets:" in line:
                values["failed"] = words[-1]
    print(" ".join(values.get(k, "?") for k in ("packets", "failed", "seconds", "mbps", "pps")))
    return 0


def main(argv):
    if len(argv) >= 4 and argv[1] == "sessions":
        return cmd_sessions(argv[2], argv[3])
    if len(argv) >= 4 and argv[1] == "diff":
        return cmd_diff(argv[2], argv[3], int(argv[4]) if len(argv) > 4 else 5)
    if len(argv) >= 3 and argv[1] == "count":
        return cmd_count(argv[2], [int(p) for p in argv[3:]])
    if len(argv) == 3 and argv[1] == "sensor":
        return cmd_sensor(argv[2])
    if len(argv) == 5 and argv[1] == "head":
        return cmd_head(argv[2], int(argv[3]), argv[4])
    if len(argv) == 3 and argv[1] == "tcpreplay":
        return cmd_tcpreplay(argv[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
