"""pcaplib.py — tiny pcap/pcapng reader and writer for the test suite: re-encapsulates real
captures into every link type mailtap supports and builds hostile inputs. Test-only."""
import struct

DLT_NULL, DLT_EN10MB, DLT_RAW, DLT_LOOP, DLT_LINUX_SLL, DLT_LINUX_SLL2 = 0, 1, 101, 108, 113, 276


def read_pcap(path):
    """Returns (linktype, [(ts_sec, ts_usec, frame_bytes)]) for a classic pcap file."""
    data = open(path, "rb").read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        endian, nano = "<", False
    elif magic == b"\xa1\xb2\xc3\xd4":
        endian, nano = ">", False
    elif magic == b"\x4d\x3c\xb2\xa1":
        endian, nano = "<", True
    elif magic == b"\xa1\xb2\x3c\x4d":
        endian, nano = ">", True
    else:
        raise ValueError("%s: not a classic pcap file" % path)
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    packets, offset = [], 24
    while offset + 16 <= len(data):
        sec, frac, caplen, _wire = struct.unpack(endian + "IIII", data[offset:offset + 16])
        offset += 16
        frame = data[offset:offset + caplen]
        offset += caplen
        packets.append((sec, frac // 1000 if nano else frac, frame))
    return linktype, packets


def write_pcap(path, linktype, packets):
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        for sec, usec, frame in packets:
            out.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
            out.write(frame)


def write_pcapng(path, linktype, packets):
    def block(kind, body):
        body += b"\0" * ((4 - len(body) % 4) % 4)
        length = 12 + len(body)
        return struct.pack("<II", kind, length) + body + struct.pack("<I", length)
    with open(path, "wb") as out:
        out.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        out.write(block(1, struct.pack("<HHI", linktype, 0, 262144)))
        for sec, usec, frame in packets:
            ts = sec * 1000000 + usec
            out.write(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF,
                                           len(frame), len(frame)) + frame))


def ip_payload(linktype, frame):
    """The IP packet inside a frame of the given link type, or None."""
    if linktype == DLT_EN10MB:
        offset = 12
        ethertype = struct.unpack(">H", frame[offset:offset + 2])[0]
        while ethertype in (0x8100, 0x88A8):
            offset += 4
            ethertype = struct.unpack(">H", frame[offset:offset + 2])[0]
        return frame[offset + 2:] if ethertype in (0x0800, 0x86DD) else None
    if linktype in (DLT_NULL, DLT_LOOP):
        return frame[4:]
    if linktype == DLT_RAW:
        return frame
    if linktype == DLT_LINUX_SLL:
        return frame[16:]
    if linktype == DLT_LINUX_SLL2:
        return frame[20:]
    raise ValueError("link type %d not handled by the test helper" % linktype)


def encapsulate(linktype, ip, vlan_tags=0):
    """Wraps an IP packet for the given link type (vlan_tags: 802.1Q tags on Ethernet)."""
    v6 = (ip[0] >> 4) == 6
    ethertype = 0x86DD if v6 else 0x0800
    if linktype == DLT_EN10MB:
        tags = b""
        tpids = [0x88A8] * (vlan_tags - 1) + [0x8100] if vlan_tags else []
        for n, tpid in enumerate(tpids):
            tags += struct.pack(">HH", tpid, 100 + n)
        return b"\x02" * 6 + b"\x04" * 6 + tags + struct.pack(">H", ethertype) + ip
    if linktype == DLT_NULL:
        return struct.pack("<I", 30 if v6 else 2) + ip
    if linktype == DLT_LOOP:
        return struct.pack(">I", 30 if v6 else 2) + ip
    if linktype == DLT_RAW:
        return ip
    if linktype == DLT_LINUX_SLL:
        return struct.pack(">HHH8sH", 0, 772, 6, b"\0" * 8, ethertype) + ip
    if linktype == DLT_LINUX_SLL2:
        return struct.pack(">HHIHBB8s", ethertype, 0, 1, 772, 0, 6, b"\0" * 8) + ip
    raise ValueError(linktype)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(">%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_tcp(src, dst, sport, dport, seq, ack, flags, payload=b""):
    """An IPv4/TCP packet (flags: string of S A F R P)."""
    bits = sum({"F": 1, "S": 2, "R": 4, "P": 8, "A": 16}[f] for f in flags)
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      5 << 4, bits, 65535, 0, 0) + payload
    header = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0,
                         bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    header = header[:10] + struct.pack(">H", checksum(header)) + header[12:]
    return header + tcp


class TcpConversation:
    """Builds a well-formed TCP connection packet by packet (IPv4), for synthetic tests."""

    def __init__(self, client, server, sport, dport, start=1700000000):
        self.client, self.server, self.sport, self.dport = client, server, sport, dport
        self.cseq, self.sseq = 1000, 5000
        self.time = start * 1000000
        self.packets = []

    def _emit(self, ip):
        self.time += 1000
        self.packets.append((self.time // 1000000, self.time % 1000000, ip))

    def handshake(self):
        self._emit(ipv4_tcp(self.client, self.server, self.sport, self.dport, self.cseq, 0, "S"))
        self._emit(ipv4_tcp(self.server, self.client, self.dport, self.sport, self.sseq, self.cseq + 1, "SA"))
        self.cseq += 1
        self.sseq += 1
        self._emit(ipv4_tcp(self.client, self.server, self.sport, self.dport, self.cseq, self.sseq, "A"))

    # The receiver ACKs every 16 segments: libnids drops data beyond the advertised window.
    def client_sends(self, data, segment=1400):
        for n, i in enumerate(range(0, len(data), segment)):
            chunk = data[i:i + segment]
            self._emit(ipv4_tcp(self.client, self.server, self.sport, self.dport, self.cseq, self.sseq, "PA", chunk))
            self.cseq += len(chunk)
            if n % 16 == 15:
                self._emit(ipv4_tcp(self.server, self.client, self.dport, self.sport, self.sseq, self.cseq, "A"))

    def server_sends(self, data, segment=1400):
        for n, i in enumerate(range(0, len(data), segment)):
            chunk = data[i:i + segment]
            self._emit(ipv4_tcp(self.server, self.client, self.dport, self.sport, self.sseq, self.cseq, "PA", chunk))
            self.sseq += len(chunk)
            if n % 16 == 15:
                self._emit(ipv4_tcp(self.client, self.server, self.sport, self.dport, self.cseq, self.sseq, "A"))

    def close(self):
        self._emit(ipv4_tcp(self.client, self.server, self.sport, self.dport, self.cseq, self.sseq, "FA"))
        self._emit(ipv4_tcp(self.server, self.client, self.dport, self.sport, self.sseq, self.cseq + 1, "FA"))
        self._emit(ipv4_tcp(self.client, self.server, self.sport, self.dport, self.cseq + 1, self.sseq + 1, "A"))
