#!/usr/bin/env python3
"""Regenerates the POP3 fixtures in this folder from the public captures.

Each fixture is one TCP connection as tshark's `-z follow,tcp,raw,N` reassembled it,
kept in capture order as records "C <len>\\n<len raw bytes>\\n" (client) or
"S <len>\\n<len raw bytes>\\n" (server). Node 0 of the follow output is the side
that opened the connection (the client).

Usage: extract.py PCAP_DIR   (PCAP_DIR holds zeek_pop3.pcap, suricata_pop3.pcap, ...)
"""
import subprocess
import sys
from pathlib import Path

FIXTURES = [
    ("zeek_pop3.pcap", 2, "zeek_pop3_s2.chunks"),
    ("zeek_pop3.pcap", 3, "zeek_pop3_s3.chunks"),
    ("zeek_pop3.pcap", 4, "zeek_pop3_s4.chunks"),
    ("zeek_pop3.pcap", 5, "zeek_pop3_s5.chunks"),
    ("zeek_pop3.pcap", 6, "zeek_pop3_s6.chunks"),
    ("suricata_pop3.pcap", 0, "suricata_pop3_s0.chunks"),
    ("zeek_pop3-starttls.pcap", 0, "zeek_pop3-starttls_s0.chunks"),
]


def follow(pcap, stream):
    out = subprocess.run(["tshark", "-r", str(pcap), "-q", "-z", f"follow,tcp,raw,{stream}"],
                         check=True, capture_output=True, text=True).stdout
    chunks = []
    for line in out.splitlines():
        if not line.strip() or line.startswith(("=", "Follow:", "Filter:", "Node ")):
            continue
        side = "S" if line.startswith("\t") else "C"
        chunks.append((side, bytes.fromhex(line.strip())))
    return chunks


def main():
    pcaps = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/pcaps/public")
    here = Path(__file__).resolve().parent
    for pcap, stream, name in FIXTURES:
        with open(here / name, "wb") as out:
            for side, data in follow(pcaps / pcap, stream):
                out.write(f"{side} {len(data)}\n".encode() + data + b"\n")


if __name__ == "__main__":
    main()
