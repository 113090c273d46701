#!/usr/bin/env python3
"""make_seeds.py — writes the fuzz seed corpora in tests/fuzz/corpus/<target>/ from
the reference captures pcaps/**/*.pcap.

  fuzz_smtp, fuzz_pop3, fuzz_imap   each TCP connection's payload, in capture order, in the
                                    chunk format of tests/fuzz/fuzz_check.h (one chunk per
                                    segment; retransmitted bytes left out)
  fuzz_linereader                   each direction's byte stream, after the 2 bytes that
                                    pick the split position, plus a few hand-written ones
  fuzz_packet                       each capture's frames in the format of fuzz_packet.c;
                                    small captures also re-wrapped in every other link type
                                    (VLAN, QinQ, SLL, SLL2, raw, null, loop)
  fuzz_dns                          each UDP port-53 payload (one DNS message); per capture,
                                    its payloads length-prefixed as one DNS-over-TCP stream
                                    (then two bytes: the split position, see fuzz_dns.c)
  fuzz_tls                          each mail connection's TLS part in the chunk format: from
                                    the client's first TLS record (after STARTTLS, or from the
                                    start on 465/993/995) on, both sides; from pcaps/**/*.pcap
                                    and the tests/data/tls/*.chunks fixtures, TLS_SEED_MAX each
  fuzz_pcapfile                     a handful of whole capture files (PCAPFILE_SEEDS): recorded
                                    captures re-encapsulated (tests/pcaplib.py) in several link
                                    types, as pcapng and as classic pcap in both byte orders,
                                    with micro- and nanosecond time stamps

Every seed is capped at SEED_MAX bytes (the start of the dialogue is kept), so the
whole corpus stays small (about 1 MB). Usage: python3 tests/fuzz/make_seeds.py [ROOT]
"""
import glob
import hashlib
import os
import struct
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pcaplib  # noqa: E402  (tests/pcaplib.py)

SEED_MAX = 48 * 1024
TLS_SEED_MAX = 16 * 1024
DNS_STREAM_MAX = 16 * 1024
PROTO_PORTS = {
    "smtp": {25, 465, 587, 2525, 2526},
    "pop3": {110, 995, 1110},
    "imap": {143, 993, 1143},
}
# Index of each link type in fuzz_packet.c's link_types[].
LINK_INDEX = {1: 0, 113: 1, 276: 2, 101: 3, 228: 5, 229: 6, 0: 7, 108: 8}
SMALL_PCAP = 8 * 1024     # captures re-wrapped in the other link types


def read_pcap(path):
    """Yields (linktype, ts_us, frame) for a classic pcap file."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(end + "I", data[20:24])[0] & 0x0FFFFFFF
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(end + "IIII", data[pos:pos + 16])
        pos += 16
        frame = data[pos:pos + caplen]
        pos += caplen
        yield linktype, sec * 1000000 + (frac // 1000 if nano else frac), frame


def ip_of(linktype, frame):
    """The IP packet inside a frame, and its ethertype, or (None, None)."""
    if linktype == 1:
        off, etype = 12, None
        while off + 2 <= len(frame):
            etype = struct.unpack(">H", frame[off:off + 2])[0]
            if etype in (0x8100, 0x88A8, 0x9100):
                off += 4
                continue
            break
        off += 2
    elif linktype == 113:
        etype, off = struct.unpack(">H", frame[14:16])[0], 16
    elif linktype == 276:
        etype, off = struct.unpack(">H", frame[0:2])[0], 20
    elif linktype in (0, 108):
        off = 4
        etype = 0x0800 if frame[4] >> 4 == 4 else 0x86DD
    elif linktype in (101, 228, 229, 12):
        off = 0
        etype = 0x0800 if frame[0] >> 4 == 4 else 0x86DD
    else:
        return None, None
    if etype not in (0x0800, 0x86DD):
        return None, None
    return frame[off:], etype


def tcp_of(ip):
    """(src, dst, sport, dport, seq, flags, payload) of a TCP packet, or None."""
    if not ip:
        return None
    if ip[0] >> 4 == 4:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0] or len(ip)
        if ip[9] != 6:
            return None
        src, dst, seg = ip[12:16], ip[16:20], ip[ihl:total]
    else:
        if ip[6] != 6:
            return None
        plen = struct.unpack(">H", ip[4:6])[0]
        src, dst, seg = ip[8:24], ip[24:40], ip[40:40 + plen]
    if len(seg) < 20:
        return None
    sport, dport, seq = struct.unpack(">HHI", seg[:8])
    doff = (seg[12] >> 4) * 4
    return src, dst, sport, dport, seq, seg[13], seg[doff:]


def udp_of(ip):
    """(sport, dport, payload) of a UDP packet, or None."""
    if not ip or len(ip) < 20:
        return None
    if ip[0] >> 4 == 4:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0] or len(ip)
        if ip[9] != 17:
            return None
        seg = ip[ihl:total]
    else:
        if len(ip) < 40 or ip[6] != 17:
            return None
        plen = struct.unpack(">H", ip[4:6])[0]
        seg = ip[40:40 + plen]
    if len(seg) < 8:
        return None
    sport, dport, ulen = struct.unpack(">HHH", seg[:6])
    return sport, dport, seg[8:ulen] if ulen >= 8 else seg[8:]


def dns_seeds(name, frames):
    """Each UDP port-53 payload, and all of them as one length-prefixed TCP stream."""
    seeds, stream = [], bytearray()
    for linktype, _, frame in frames:
        ip, _ = ip_of(linktype, frame)
        udp = udp_of(ip)
        if not udp or 53 not in udp[:2] or not udp[2]:
            continue
        payload = udp[2]
        seeds.append((f"{name}-udp{len(seeds)}", payload))
        if len(stream) + 2 + len(payload) + 2 <= DNS_STREAM_MAX:
            stream += struct.pack(">H", len(payload)) + payload
    if seeds:
        seeds.append((f"{name}-tcp", bytes(stream) + struct.pack(">H", len(stream) // 2)))
    return seeds


def is_tls_start(payload):
    """A TLS handshake record (or an SSLv2-format ClientHello) starts here."""
    return (len(payload) >= 3 and payload[0] == 0x16 and payload[1] == 3) or \
           (len(payload) >= 3 and payload[0] & 0x80 and payload[2] == 1)


def tls_chunks(chunks):
    """The chunks from the client's first TLS record on (both sides), or None."""
    for i, (side, _, payload) in enumerate(chunks):
        if side == 0 and is_tls_start(payload):
            return chunks[i:]
    return None


def tls_seed(chunks):
    """chunk_stream, capped at TLS_SEED_MAX."""
    out = chunk_stream(chunks)
    while len(out) > TLS_SEED_MAX and chunks:
        chunks = chunks[:-1]
        out = chunk_stream(chunks)
    return out


def read_chunks_file(path):
    """A tests/data/tls .chunks fixture: records "C <len>\n<bytes>\n" / "S <len>\n...". """
    with open(path, "rb") as f:
        data = f.read()
    chunks, pos = [], 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        tag, length = data[pos:nl].split()
        length = int(length)
        chunks.append((0 if tag == b"C" else 1, 0, data[nl + 1:nl + 1 + length]))
        pos = nl + 1 + length + 1
    return chunks


def proto_of_port(port):
    for proto, ports in PROTO_PORTS.items():
        if port in ports:
            return proto
    return None


def connections(frames):
    """Per connection (in SYN order): protocol and [(side, ts_us, payload)], side 0 client."""
    conns = {}
    order = []
    for linktype, ts, frame in frames:
        ip, _ = ip_of(linktype, frame)
        tcp = tcp_of(ip)
        if not tcp:
            continue
        src, dst, sport, dport, seq, flags, payload = tcp
        if proto_of_port(dport):
            key, side, server_port = (src, sport, dst, dport), 0, dport
        elif proto_of_port(sport):
            key, side, server_port = (dst, dport, src, sport), 1, sport
        else:
            continue
        conn = conns.get(key)
        if conn is None:
            conn = conns[key] = {"proto": proto_of_port(server_port), "next": [None, None],
                                 "chunks": []}
            order.append(key)
        if flags & 0x02:      # SYN: the data starts at seq + 1
            conn["next"][side] = (seq + 1) & 0xFFFFFFFF
            continue
        if not payload:
            continue
        nxt = conn["next"][side]
        if nxt is not None:
            ahead = (seq - nxt) & 0xFFFFFFFF
            if ahead >= 0x80000000:            # starts before what we have: overlap
                skip = (nxt - seq) & 0xFFFFFFFF
                if skip >= len(payload):
                    continue                   # a retransmission
                payload = payload[skip:]
                seq = nxt
        conn["next"][side] = (seq + len(payload)) & 0xFFFFFFFF
        conn["chunks"].append((side, ts, payload))
    return [conns[k] for k in order]


def chunk_stream(chunks):
    """The chunk format of fuzz_check.h, capped at SEED_MAX."""
    out = bytearray()
    last_ts = chunks[0][1] if chunks else 0
    for side, ts, payload in chunks:
        delta_ms = min(63, max(0, (ts - last_ts) // 1000))
        last_ts = ts
        for i in range(0, len(payload), 65535):
            piece = payload[i:i + 65535]
            if len(piece) < 256:
                rec = bytes([side | delta_ms << 2, len(piece)]) + piece
            else:
                rec = bytes([side | 2 | delta_ms << 2]) + struct.pack(">H", len(piece)) + piece
            if len(out) + len(rec) > SEED_MAX:
                return bytes(out)
            out += rec
            delta_ms = 0
    return bytes(out)


def time_byte(delta_us):
    """fuzz_packet.c's clock byte: (v & 63) << (5 * (v >> 6)) ms, the largest not above."""
    ms = max(0, delta_us // 1000)
    for scale in range(3, -1, -1):
        units = ms >> (5 * scale)
        if units >= 1 or scale == 0:
            return scale << 6 | min(63, units)
    return 0


def packet_seed(link_index, frames):
    out = bytearray([link_index])
    last_ts = frames[0][0] if frames else 0
    for ts, frame in frames:
        rec = bytes([time_byte(ts - last_ts)]) + struct.pack(">H", len(frame)) + frame
        last_ts = ts
        if len(out) + len(rec) > SEED_MAX:
            break
        out += rec
    return bytes(out)


def rewrap(ip, etype, how):
    """An IP packet in another link type: (fuzz_packet link index, frame)."""
    family_v6 = etype == 0x86DD
    eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"
    if how == "vlan":
        return 0, eth + b"\x81\x00\x00\x64" + struct.pack(">H", etype) + ip
    if how == "qinq":
        return 0, eth + b"\x88\xa8\x00\x0a\x81\x00\x00\x64" + struct.pack(">H", etype) + ip
    if how == "sll":
        return 1, struct.pack(">HHH", 0, 772, 6) + b"\0" * 8 + struct.pack(">H", etype) + ip
    if how == "sll2":
        return 2, struct.pack(">HHIHBB", etype, 0, 1, 772, 0, 6) + b"\0" * 8 + ip
    if how == "raw":
        return 3, ip
    if how == "linktype_raw":
        return 4, ip
    if how == "ipvx":
        return (6 if family_v6 else 5), ip
    if how == "null":
        return 7, struct.pack("<I", 30 if family_v6 else 2) + ip
    if how == "loop":
        return 8, struct.pack(">I", 30 if family_v6 else 2) + ip
    raise ValueError(how)


# fuzz_pcapfile: (capture under pcaps/, link type, VLAN tags, file format). Formats: "pcapng"
# (pcaplib: SHB, one IDB, EPBs, microseconds), "pcap" (little-endian, microseconds),
# "pcap-be-ns" (big-endian, nanoseconds). Small captures covering SMTP, STARTTLS with a
# certificate, POP3, IMAP, IPv6, DNS beside SMTP and a refused attempt.
DLT_IPV4 = 228
PCAPFILE_SEEDS = [
    ("smtp/delivered", pcaplib.DLT_EN10MB, 0, "pcap"),
    ("dns/mx-nxdomain", pcaplib.DLT_EN10MB, 1, "pcapng"),
    ("tls/starttls-expired", pcaplib.DLT_LINUX_SLL2, 0, "pcapng"),
    ("pop3/login-ok", pcaplib.DLT_LINUX_SLL, 0, "pcap-be-ns"),
    ("imap/login-ok", pcaplib.DLT_RAW, 0, "pcap"),
    ("smtp/ipv6-delivered", pcaplib.DLT_NULL, 0, "pcapng"),
    ("smtp/refused", pcaplib.DLT_EN10MB, 2, "pcapng"),
    ("relay/deliver-retrieve", pcaplib.DLT_LOOP, 0, "pcap"),
    ("imap/starttls", DLT_IPV4, 0, "pcap-be-ns"),
]   # plus crowded_capture(): more connections and attempts than the target's tables hold


def capture_file(linktype, packets, fmt):
    """The bytes of a capture file: packets are (sec, usec, frame)."""
    if fmt == "pcap-be-ns":
        out = bytearray(struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype))
        for sec, usec, frame in packets:
            out += struct.pack(">IIII", sec, usec * 1000, len(frame), len(frame)) + frame
        return bytes(out)
    writer = pcaplib.write_pcapng if fmt == "pcapng" else pcaplib.write_pcap
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "seed")
        writer(path, linktype, packets)
        with open(path, "rb") as f:
            return f.read()


def crowded_capture():
    """A synthetic capture (raw IPv4) that fills the target's tables: 56 SMTP connections
    established at once (fuzz_path evicts at 48 of 64 streams), each greeted, one sending
    EHLO, then all closed; 20 SYNs never answered and 3 answered by RST at once (16 pending
    attempts)."""
    convs = []
    for n in range(56):
        conv = pcaplib.TcpConversation("10.0.%d.%d" % (n // 200, 1 + n % 200), "192.168.1.20",
                                       40000 + n, 25)
        conv.handshake()
        conv.server_sends(b"220 mx ESMTP\r\n")
        if n == 0:
            conv.client_sends(b"EHLO a\r\n")
            conv.server_sends(b"250 mx\r\n")
        conv.close()
        # One handshake after the other (one SYN pending at a time), then packet k of
        # every connection before packet k + 1 of any: all established at once.
        base = 1700000000 * 1000000
        convs += [(base + n * 1000 + k * 10 if k < 3 else base + 100000 + k * 1000 + n * 10, ip)
                  for k, (_, _, ip) in enumerate(conv.packets)]
    base = 1700000000 * 1000000 + 50000
    for n in range(23):
        client, port = "10.1.0.%d" % (1 + n), 41000 + n
        convs.append((base + 500 + n, pcaplib.ipv4_tcp(client, "192.168.1.20", port, 25,
                                                       1, 0, "S")))
        if n >= 20:
            convs.append((base + 600 + n, pcaplib.ipv4_tcp("192.168.1.20", client, 25, port,
                                                           0, 2, "RA")))
    convs.sort(key=lambda p: p[0])
    return [(t // 1000000, t % 1000000, ip) for t, ip in convs]


def pcapfile_seeds(root):
    seeds = [("crowded-raw-pcap", capture_file(pcaplib.DLT_RAW, crowded_capture(), "pcap"))]
    for name, linktype, tags, fmt in PCAPFILE_SEEDS:
        source_linktype, packets = pcaplib.read_pcap(os.path.join(root, "pcaps", name + ".pcap"))
        frames = []
        for sec, usec, frame in packets:
            ip = pcaplib.ip_payload(source_linktype, frame)
            if ip is None:
                continue
            wrap = pcaplib.DLT_RAW if linktype == DLT_IPV4 else linktype
            frames.append((sec, usec, pcaplib.encapsulate(wrap, ip, tags)))
        data = capture_file(linktype, frames, fmt)
        if len(data) > SEED_MAX:
            raise SystemExit(f"{name}: {len(data)} bytes as a fuzz_pcapfile seed, over {SEED_MAX}")
        label = {0: "ether", 1: "vlan", 2: "qinq"}[tags] if linktype == 1 else {
            pcaplib.DLT_LINUX_SLL: "sll", pcaplib.DLT_LINUX_SLL2: "sll2", pcaplib.DLT_RAW: "raw",
            pcaplib.DLT_NULL: "null", pcaplib.DLT_LOOP: "loop", DLT_IPV4: "ipv4"}[linktype]
        seeds.append((f"{name.replace('/', '-')}-{label}-{fmt}", data))
    return seeds


LINEREADER_SEEDS = [
    b"EHLO x\r\nMAIL FROM:<a@b>\r\n#DATA\r\nSubject: hi\r\n\r\nbody\r\n..stuffed\r\n.\r\nQUIT\r\n",
    b"A1 APPEND INBOX {11}\r\n{11\r\nhello\r\nworld\r\nA2 NOOP\r\n",
    b"BDAT 5\r\n~5\r\nafter cancel\r\n",
    b"STARTTLS\r\n!\r\n\x16\x03\x01\x00\x05hello",
    b"x" * 9000 + b"\r\nshort\r\n" + b"y" * 8192 + b"\r\n" + b"z" * 8193 + b"\r\r\nend",
    b"#\r\n.\r\n#\n.\n#\r\n.\rx\r\n.\r\n{0\r\nno skip\r\nunterminated",
]


def write_corpus(root, target, seeds):
    d = os.path.join(root, "tests", "fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    for old in glob.glob(os.path.join(d, "*")):
        os.remove(old)
    seen = set()
    total = 0
    for name, data in seeds:
        digest = hashlib.sha1(data).hexdigest()
        if not data or digest in seen:
            continue
        seen.add(digest)
        with open(os.path.join(d, f"{name}-{digest[:8]}"), "wb") as f:
            f.write(data)
        total += len(data)
    print(f"{target}: {len(seen)} seeds, {total} bytes")


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    root = os.path.abspath(root)
    pcaps = sorted(glob.glob(os.path.join(root, "pcaps", "**", "*.pcap"), recursive=True),
                   key=lambda p: (os.path.basename(p) == "demo.pcap", p))   # named ones first
    decoder_seeds = {"smtp": [], "pop3": [], "imap": []}
    line_seeds = [(f"hand{i}", b"\x00\x10" + s) for i, s in enumerate(LINEREADER_SEEDS)]
    packet_seeds = []
    dns_corpus, tls_corpus = [], []
    for path in pcaps:
        name = os.path.relpath(path, os.path.join(root, "pcaps"))[:-5].replace(os.sep, "-")
        frames = list(read_pcap(path))
        dns_corpus += dns_seeds(name, frames)
        for n, conn in enumerate(connections(frames)):
            if not conn["chunks"]:
                continue
            tls = tls_chunks(conn["chunks"])
            if tls:
                tls_corpus.append((f"{name}-{n}", tls_seed(tls)))
            decoder_seeds[conn["proto"]].append((f"{name}-{n}", chunk_stream(conn["chunks"])))
            for side in (0, 1):
                stream = b"".join(p for s, _, p in conn["chunks"] if s == side)[:SEED_MAX]
                split = (len(stream) // 2).to_bytes(2, "big")
                line_seeds.append((f"{name}-{n}-{'cs'[side]}", split + stream))
        linktype = frames[0][0] if frames else 1
        link = LINK_INDEX.get(linktype, 0)
        packet_seeds.append((name, packet_seed(link, [(ts, fr) for _, ts, fr in frames])))
        if os.path.getsize(path) <= SMALL_PCAP and linktype == 1:
            ips = [(ts, ip_of(lt, fr)) for lt, ts, fr in frames]
            ips = [(ts, ip, et) for ts, (ip, et) in ips if ip is not None]
            for how in ("vlan", "qinq", "sll", "sll2", "raw", "linktype_raw", "ipvx", "null", "loop"):
                wrapped = [rewrap(ip, et, how) for _, ip, et in ips]
                if not wrapped:
                    continue
                link_index = wrapped[0][0]
                seed = packet_seed(link_index, [(ts, w[1]) for (ts, _, _), w in zip(ips, wrapped)])
                packet_seeds.append((f"{name}-{how}", seed))
    for proto, seeds in decoder_seeds.items():
        write_corpus(root, f"fuzz_{proto}", seeds)
    write_corpus(root, "fuzz_linereader", line_seeds)
    write_corpus(root, "fuzz_packet", packet_seeds)
    for path in sorted(glob.glob(os.path.join(root, "tests", "data", "tls", "*.chunks"))):
        tls = tls_chunks(read_chunks_file(path))
        if tls:
            tls_corpus.append((os.path.basename(path)[:-7], tls_seed(tls)))
    write_corpus(root, "fuzz_dns", dns_corpus)
    write_corpus(root, "fuzz_tls", tls_corpus)
    write_corpus(root, "fuzz_pcapfile", pcapfile_seeds(root))


if __name__ == "__main__":
    main()
