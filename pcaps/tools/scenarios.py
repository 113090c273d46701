#!/usr/bin/env python3
"""Scenario driver for pcaps/record.sh.

Drives REAL clients (swaks, python smtplib/poplib/imaplib, openssl s_client,
curl) against the Postfix/Dovecot instances started by record.sh, captures each
scenario with tcpdump on "lo", and writes NAME.expected.json from what the
client itself saw (parsed client logs / library return values), never from
mailtap's output.  Any deviation from a scenario's intent is a hard failure.

Only 127.0.0.1 and ::1 are ever used.
"""
import argparse
import imaplib
import json
import os
import poplib
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
from email.message import EmailMessage

V4 = "127.0.0.1"
V6 = "::1"
LOOPBACK = {V4, V6}


def is_loopback(address):
    """127.0.0.0/8 or ::1: the only addresses any scenario may use."""
    return address == V6 or address.startswith("127.")
HELO = "client.example.test"
SENDER = "sender@client.example.test"


class ScenarioError(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise ScenarioError(msg)


def log(msg):
    print(f"[scenario] {msg}", file=sys.stderr, flush=True)


def no_verify_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --------------------------------------------------------------------------
# capture
# --------------------------------------------------------------------------
class Capture:
    """tcpdump -i lo -w FILE -U -s 0 FILTER, started and stopped cleanly.
    netns=True: on the lo of record.sh's network namespace (dns/, tls/, relay/),
    where every address is loopback; bpf replaces the default filter."""

    def __init__(self, path, ports, netns=False, bpf=None):
        self.path = path
        self.tmp = path + ".part"
        self.netns = netns
        for p in ports:
            need(isinstance(p, int), "port must be int")
        portexpr = " or ".join(f"port {p}" for p in ports)
        self.bpf = bpf or f"tcp and (host {V4} or host {V6}) and ({portexpr})"

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        cmd = ["tcpdump", "-i", "lo", "-n", "-U", "--immediate-mode", "-B", "65536", "-Z", "root",
               "-s", "0", "-w", self.tmp, self.bpf]
        self.proc = subprocess.Popen(
            nsexec(cmd) if self.netns else cmd,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        pids = os.environ.get("TCPDUMP_PIDS_FILE")
        if pids:
            with open(pids, "a") as f:
                f.write(f"{self.proc.pid}\n")
        # tcpdump prints "listening on lo, ..." once the capture is active
        line = self.proc.stderr.readline()
        need("listening on" in line, f"tcpdump did not start: {line!r}")
        self.errs = []
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()
        time.sleep(0.3)
        return self

    def _drain(self):
        for line in self.proc.stderr:
            self.errs.append(line)

    def __exit__(self, et, ev, tb):
        time.sleep(1.0)  # let the last FIN/ACKs pass
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise ScenarioError("tcpdump did not stop")
        self.reader.join(timeout=5)
        stats = "".join(self.errs)
        m = re.search(r"(\d+) packets? dropped by kernel", stats)
        try:
            if et is None:
                need(m is not None and m.group(1) == "0", f"tcpdump dropped packets: {stats}")
                check_complete(self.tmp)
                os.replace(self.tmp, self.path)
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
        return False


def read_pcap_tcp(path):
    """Minimal pcap reader (EN10MB / IPv4 / IPv6 / TCP): yields
    (src, sport, dst, dport, flags, payload)."""
    for _, proto, src, sp, dst, dp, fl, pl in read_pcap_all(path):
        if proto == 6:
            yield src, sp, dst, dp, fl, pl


def read_pcap_all(path):
    """Minimal pcap reader (EN10MB / IPv4 / IPv6, TCP and UDP): yields
    (ts, proto, src, sport, dst, dport, tcp_flags, payload); for any other IP
    protocol sport/dport are 0. Fails on a non-loopback address."""
    import ipaddress
    import struct
    with open(path, "rb") as f:
        data = f.read()
    need(len(data) >= 24, "short pcap")
    magic = struct.unpack("<I", data[:4])[0]
    need(magic in (0xA1B2C3D4, 0xA1B23C4D), "not a little-endian pcap")
    need(struct.unpack("<I", data[20:24])[0] == 1, "link type is not EN10MB")
    off = 24
    while off + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[off:off + 16])
        off += 16
        pkt = data[off:off + incl]
        off += incl
        need(incl == orig, "truncated packet in capture (snaplen)")
        etype = struct.unpack("!H", pkt[12:14])[0]
        ip = pkt[14:]
        if etype == 0x0800:
            ihl = (ip[0] & 15) * 4
            proto = ip[9]
            src, dst = ipaddress.ip_address(ip[12:16]), ipaddress.ip_address(ip[16:20])
            tlen = struct.unpack("!H", ip[2:4])[0]
            tcp = ip[ihl:tlen]
        elif etype == 0x86DD:
            proto = ip[6]
            src, dst = ipaddress.ip_address(ip[8:24]), ipaddress.ip_address(ip[24:40])
            plen = struct.unpack("!H", ip[4:6])[0]
            tcp = ip[40:40 + plen]
        else:
            continue
        need(is_loopback(str(src)) and is_loopback(str(dst)), f"non-loopback packet {src} -> {dst}")
        ts = sec + usec / 1e6
        if proto == 17:
            sport, dport = struct.unpack("!HH", tcp[:4])
            yield ts, 17, str(src), sport, str(dst), dport, 0, tcp[8:]
            continue
        if proto != 6:
            yield ts, proto, str(src), 0, str(dst), 0, 0, b""
            continue
        sport, dport = struct.unpack("!HH", tcp[:4])
        doff = (tcp[12] >> 4) * 4
        yield ts, 6, str(src), sport, str(dst), dport, tcp[13], tcp[doff:]


def check_complete(path):
    """Every connection in the capture must start with a SYN and end with
    FINs from both sides or a RST: catches lost packets at start/stop."""
    flows = {}
    n = 0
    for src, sp, dst, dp, fl, _ in read_pcap_tcp(path):
        n += 1
        need(is_loopback(src) and is_loopback(dst), f"non-loopback packet {src} -> {dst}")
        key = tuple(sorted([(src, sp), (dst, dp)]))
        st = flows.setdefault(key, {"syn": False, "fin": set(), "rst": False})
        if fl & 0x02 and not fl & 0x10:
            st["syn"] = True
        if fl & 0x01:
            st["fin"].add((src, sp))
        if fl & 0x04:
            st["rst"] = True
    need(n > 0, f"{path}: empty capture")
    for key, st in flows.items():
        need(st["syn"], f"{path}: connection {key} has no SYN")
        need(st["rst"] or len(st["fin"]) == 2, f"{path}: connection {key} not closed")


def check_expected_against_capture(pcap, sessions):
    """Independent sanity check: the endpoints of every expected session are
    in the capture (in order), and every cleartext string the expected file
    claims (helo, addresses, subject, message-id, deciding server line) occurs
    in the captured payload."""
    payload = b""
    starts = []
    for src, sp, dst, dp, fl, pl in read_pcap_tcp(pcap):
        payload += pl
        if fl & 0x02 and not fl & 0x10:
            starts.append((src, dst, dp))
    want = [(s["client_ip"], s["server_ip"], s["server_port"]) for s in sessions]
    # a refused/unanswered SYN may be retransmitted: collapse repeats
    uniq = [x for i, x in enumerate(starts) if i == 0 or x != starts[i - 1]]
    need(uniq == want, f"{pcap}: sessions in capture {uniq} != expected {want}")
    for s in sessions:
        strs = [s.get("helo"), s.get("mail_from"), s.get("status_line_contains")]
        strs += [r["addr"] for r in s.get("rcpt_to", [])]
        for m in s.get("messages", []):
            strs += [m.get("subject"), m.get("message_id"), m.get("mail_from")]
        for x in strs:
            if x is not None:
                need(x.encode() in payload, f"{pcap}: {x!r} not in captured payload")


def write_expected(path, sessions):
    check_expected_against_capture(path.replace(".expected.json", ".pcap"), sessions)
    with open(path, "w") as f:
        json.dump(sessions, f, indent=2)
        f.write("\n")


# --------------------------------------------------------------------------
# SMTP transcript model (built from the client's own log)
# --------------------------------------------------------------------------
class SmtpLog:
    """A list of (command or None for greeting, code, last_reply_line)."""

    def __init__(self):
        self.pairs = []

    def add(self, cmd, code, text):
        self.pairs.append((cmd, code, text))

    @staticmethod
    def from_swaks(out):
        """Parse swaks' transcript: ' -> cmd', '<-  NNN text', '<** NNN text'.

        Works for pipelined output too: replies are matched to commands in
        order, and message body lines (after a 354) are collapsed into one
        '<eom>' pseudo-command.  TLS-protected lines (~> / <~) are ignored:
        they are invisible in the capture."""
        lg = SmtpLog()
        pending = []
        greeted = False
        in_body = False
        cur = []
        for raw in out.splitlines():
            if raw.startswith(" -> "):
                cmd = raw[4:]
                if in_body:
                    if cmd == ".":
                        pending.append("<eom>")
                        in_body = False
                    continue
                pending.append(cmd)
            elif raw.startswith("<-  ") or raw.startswith("<** "):
                line = raw[4:]
                m = re.match(r"(\d{3})([ -])(.*)", line)
                if not m:
                    raise ScenarioError(f"unparsable swaks reply: {raw!r}")
                cur.append(line)
                if m.group(2) == "-":
                    continue
                code = int(m.group(1))
                if not greeted:
                    cmd = None
                    greeted = True
                else:
                    need(pending, f"reply without command in swaks log: {raw!r}")
                    cmd = pending.pop(0)
                lg.add(cmd, code, line)
                cur = []
                if cmd is not None and cmd.upper() == "DATA" and code == 354:
                    in_body = True
        return lg

    def first(self, prefix):
        for cmd, code, text in self.pairs:
            if cmd is not None and cmd.upper().startswith(prefix):
                return cmd, code, text
        return None

    def reply_to(self, prefix):
        r = self.first(prefix)
        need(r is not None, f"no {prefix} in transcript")
        return r[1], r[2]

    def helo(self):
        r = self.first("EHLO") or self.first("HELO")
        return r[0].split(None, 1)[1] if r else None

    def transactions(self):
        """Split into MAIL transactions with rcpts and end-of-data reply."""
        txs = []
        cur = None
        for cmd, code, text in self.pairs:
            if cmd is None:
                continue
            u = cmd.upper()
            if u.startswith("MAIL FROM:"):
                cur = {"mail_from": addr_of(cmd[10:]), "mail_code": code,
                       "rcpts": [], "data": None, "eom": None, "eom_text": None}
                txs.append(cur)
            elif u.startswith("RCPT TO:") and cur is not None:
                cur["rcpts"].append({"addr": addr_of(cmd[8:]), "code": code,
                                     "accepted": 200 <= code < 300, "text": text})
            elif u == "DATA" and cur is not None:
                cur["data"] = code
            elif cmd == "<eom>" and cur is not None:
                cur["eom"] = code
                cur["eom_text"] = text
            elif u in ("RSET", "QUIT") or u.startswith(("EHLO", "HELO")):
                cur = None
        return txs


def addr_of(s):
    s = s.strip()
    m = re.match(r"<([^>]*)>", s)
    return m.group(1) if m else s.split()[0]


def tx_status(tx):
    if tx["mail_code"] >= 400:
        return "sender_rejected" if tx["mail_code"] >= 500 else "temp_failed"
    acc = [r for r in tx["rcpts"] if r["accepted"]]
    rej = [r for r in tx["rcpts"] if not r["accepted"]]
    if tx["eom"] is not None and 200 <= tx["eom"] < 300:
        return "partial" if rej else "delivered"
    if not acc:
        if any("Relay access denied" in r["text"] for r in rej):
            return "relay_denied"
        if any(400 <= r["code"] < 500 for r in rej):
            return "temp_failed"
        return "rcpt_rejected"
    if tx["eom"] is not None:
        return "temp_failed" if tx["eom"] < 500 else "content_rejected"
    return "aborted"


# Least to most severe, as in mailtap's README ("Status words"): a session with several
# transactions takes the most severe of its transactions' statuses (issue #2).
SEVERITY = ["delivered", "partial", "aborted", "temp_failed", "rcpt_rejected",
            "relay_denied", "sender_rejected", "too_big", "content_rejected"]


def session_status(txs):
    """Session status from its transactions: the most severe one (order above)."""
    if not txs:
        return "no_mail"
    sts = [tx_status(t) for t in txs]
    return max(sts, key=lambda st: SEVERITY.index(st) if st in SEVERITY else -1)


def smtp_session(lg, client_ip, server_ip, port, messages_meta=None, **extra):
    """Build the expected object for one SMTP session from its transcript.
    messages_meta: list (per accepted DATA transaction, in order) of
    {"subject":..., "message_id":...} that the driver put in the message."""
    txs = lg.transactions()
    s = {"proto": "smtp", "client_ip": client_ip, "server_ip": server_ip,
         "server_port": port}
    s["status"] = session_status(txs)
    s.update({k: v for k, v in extra.items() if k in ("user",)})
    h = lg.helo()
    if h:
        s["helo"] = h
    if len(txs) == 1:   # per-transaction details live in "messages" otherwise
        s["mail_from"] = txs[0]["mail_from"]
        s["rcpt_to"] = [{"addr": r["addr"], "code": r["code"], "accepted": r["accepted"]}
                        for r in txs[0]["rcpts"]]
    msgs = []
    meta = list(messages_meta or [])
    for t in txs:
        m = {"mail_from": t["mail_from"]}
        if t["data"] is not None and t["data"] == 354:
            md = meta.pop(0) if meta else {}
            m.update(md)
        m["status"] = tx_status(t)
        msgs.append(m)
    if msgs:
        s["messages"] = msgs
    return s


class LoggingSMTP(smtplib.SMTP):
    """smtplib.SMTP that records every command and final reply line."""

    def __init__(self, *a, **kw):
        self.lg = SmtpLog()
        self._last_cmd = None
        self._greeting_done = False
        super().__init__(*a, **kw)

    def send(self, s):
        if isinstance(s, str):
            cmd = s.rstrip("\r\n")
        else:
            b = bytes(s)
            # message body (ends with CRLF.CRLF) -> '<eom>'
            cmd = "<eom>" if b.endswith(b"\r\n.\r\n") else b.rstrip(b"\r\n").decode("latin-1")
        self._last_cmd = cmd
        return super().send(s)

    def getreply(self):
        code, msg = super().getreply()
        last = msg.decode("latin-1").splitlines()[-1] if msg else ""
        if not self._greeting_done:
            self._greeting_done = True
            self.lg.add(None, code, f"{code} {last}")
        else:
            self.lg.add(self._last_cmd, code, f"{code} {last}")
        return code, msg


def run(cmd, timeout=60, input=None, ok_codes=(0,)):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if ok_codes is not None and p.returncode not in ok_codes:
        raise ScenarioError(f"{cmd[0]} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def swaks(server, port, *args, ok_codes=None, timeout=60):
    cmd = ["swaks", "--server", server, "--port", str(port), "--helo", HELO,
           "--from", SENDER, *args]
    p = run(cmd, timeout=timeout, ok_codes=ok_codes)
    return p


def mk_msg(frm, to, subject, msgid, body):
    m = EmailMessage()
    m["From"] = frm
    m["To"] = ", ".join(to)
    m["Subject"] = subject
    m["Message-ID"] = msgid
    m["Date"] = "Mon, 02 Jun 2025 10:00:00 +0000"
    m.set_content(body)
    return m


# --------------------------------------------------------------------------
# SMTP scenarios
# --------------------------------------------------------------------------
def smtp_swaks_simple(name, out, to, intent, server=V4, port=25, extra_args=(),
                      subject=None, msgid=None, check=None):
    path = os.path.join(out, "smtp", name)
    hdrs = []
    if subject:
        hdrs += ["--header", f"Subject: {subject}"]
    if msgid:
        hdrs += ["--header", f"Message-Id: {msgid}"]
    with Capture(path + ".pcap", [port]):
        p = swaks(server, port, "--to", ",".join(to), *hdrs, *extra_args)
    lg = SmtpLog.from_swaks(p.stdout + p.stderr)
    meta = [{"subject": subject, "message_id": msgid}] if subject else None
    s = smtp_session(lg, server, server, port, meta)
    need(s["status"] == intent, f"{name}: expected {intent}, client saw {s['status']}:\n{p.stdout}")
    if check:
        check(s, lg, p)
    write_expected(path + ".expected.json", [s])
    return s


def last_rcpt_line(lg):
    rs = [t for c, _, t in lg.pairs if c and c.upper().startswith("RCPT")]
    return rs[-1]


def sc_smtp_delivered(out):
    smtp_swaks_simple("delivered", out, ["alice@example.test"], "delivered",
                      subject="mailtap test: delivered",
                      msgid="<delivered.1@client.example.test>")


def sc_smtp_rcpt_unknown(out):
    def chk(s, lg, p):
        t = last_rcpt_line(lg)
        need("5.1.1" in t and "User unknown" in t, t)
        s["status_line_contains"] = "5.1.1"
    smtp_swaks_simple("rcpt-unknown", out, ["nobody@example.test"], "rcpt_rejected",
                      subject="mailtap test: rcpt-unknown",
                      msgid="<rcpt-unknown.1@client.example.test>", check=chk)


def sc_smtp_relay_denied(out):
    def chk(s, lg, p):
        t = last_rcpt_line(lg)
        need(t.startswith("554 5.7.1") and "Relay access denied" in t, t)
        s["status_line_contains"] = "Relay access denied"
    smtp_swaks_simple("relay-denied", out, ["someone@elsewhere.example"], "relay_denied",
                      subject="mailtap test: relay-denied",
                      msgid="<relay-denied.1@client.example.test>", check=chk)


def sc_smtp_pipelining(out):
    def chk(s, lg, p):
        # swaks prints MAIL/RCPT/DATA before any of their replies when pipelining
        o = p.stdout
        i_mail = o.index(" -> MAIL FROM")
        i_data = o.index(" -> DATA")
        i_r = o.index("<-  250 2.1.0")
        need(i_mail < i_data < i_r, "swaks did not pipeline")
    smtp_swaks_simple("pipelining", out, ["alice@example.test"], "delivered",
                      extra_args=["--pipeline"],
                      subject="mailtap test: pipelining",
                      msgid="<pipelining.1@client.example.test>", check=chk)


def sc_smtp_ipv6_delivered(out):
    smtp_swaks_simple("ipv6-delivered", out, ["alice@example.test"], "delivered",
                      server=V6, subject="mailtap test: ipv6-delivered",
                      msgid="<ipv6-delivered.1@client.example.test>")


def sc_smtp_auth_failed(out):
    name = "auth-failed"
    path = os.path.join(out, "smtp", name)
    with Capture(path + ".pcap", [587]):
        p = swaks(V4, 587, "--to", "bob@example.test", "--auth", "LOGIN",
                  "--auth-user", "alice", "--auth-password", "wrong-password")
    lg = SmtpLog.from_swaks(p.stdout + p.stderr)
    # the reply to the last AUTH step
    auth_replies = [(c, code, t) for c, code, t in lg.pairs if c is not None
                    and not c.upper().startswith(("EHLO", "QUIT", "MAIL", "RCPT"))]
    code, text = auth_replies[-1][1], auth_replies[-1][2]
    need(code == 535 and "5.7.8" in text, f"auth-failed: got {text}")
    need(lg.first("MAIL") is None, "swaks continued after failed auth")
    s = {"proto": "smtp", "client_ip": V4, "server_ip": V4, "server_port": 587,
         "status": "auth_failed", "user": "alice", "helo": lg.helo(),
         "status_line_contains": "5.7.8"}
    write_expected(path + ".expected.json", [s])


def sc_smtp_auth_ok_plain(out):
    name = "auth-ok-plain"
    path = os.path.join(out, "smtp", name)
    subj, mid = "mailtap test: auth-ok-plain", "<auth-ok-plain.1@client.example.test>"
    msg = mk_msg("alice@example.test", ["bob@example.test"], subj, mid,
                 "Sent after AUTH PLAIN on the submission port.\n")
    with Capture(path + ".pcap", [587]):
        c = LoggingSMTP(V4, 587, local_hostname=HELO, timeout=10)
        c.ehlo()
        need("PLAIN" in c.esmtp_features.get("auth", ""), "no AUTH PLAIN offered")
        c.user, c.password = "alice", "alicepw"
        code, resp = c.auth("PLAIN", c.auth_plain, initial_response_ok=True)
        need(code == 235, f"AUTH PLAIN: {code} {resp}")
        refused = c.send_message(msg, "alice@example.test", ["bob@example.test"])
        need(not refused, refused)
        c.quit()
    s = smtp_session(c.lg, V4, V4, 587, [{"subject": subj, "message_id": mid}])
    need(s["status"] == "delivered", s)
    s = {**{k: s[k] for k in ("proto", "client_ip", "server_ip", "server_port", "status")},
         "user": "alice", **{k: v for k, v in s.items()
                             if k in ("helo", "mail_from", "rcpt_to", "messages")}}
    write_expected(path + ".expected.json", [s])


def sc_smtp_partial(out):
    name = "partial"
    path = os.path.join(out, "smtp", name)
    subj, mid = "mailtap test: partial", "<partial.1@client.example.test>"
    rcpts = ["alice@example.test", "nobody@example.test"]
    msg = mk_msg(SENDER, rcpts, subj, mid, "One good and one unknown recipient.\n")
    with Capture(path + ".pcap", [25]):
        c = LoggingSMTP(V4, 25, local_hostname=HELO, timeout=10)
        refused = c.send_message(msg, SENDER, rcpts)
        c.quit()
    need(list(refused) == ["nobody@example.test"] and refused["nobody@example.test"][0] == 550,
         refused)
    s = smtp_session(c.lg, V4, V4, 25, [{"subject": subj, "message_id": mid}])
    need(s["status"] == "partial", s)
    s["status_line_contains"] = "5.1.1"
    write_expected(path + ".expected.json", [s])


def sc_smtp_multi_message(out):
    name = "multi-message"
    path = os.path.join(out, "smtp", name)
    plan = [
        (["alice@example.test"], "mailtap test: multi 1", "<multi.1@client.example.test>"),
        (["nobody@example.test"], "mailtap test: multi 2", "<multi.2@client.example.test>"),
        (["bob@example.test"], "mailtap test: multi 3", "<multi.3@client.example.test>"),
    ]
    meta = []
    with Capture(path + ".pcap", [25]):
        c = LoggingSMTP(V4, 25, local_hostname=HELO, timeout=10)
        for i, (rc, subj, mid) in enumerate(plan):
            msg = mk_msg(SENDER, rc, subj, mid, f"Message {i + 1} of 3 in one connection.\n")
            try:
                refused = c.send_message(msg, SENDER, rc)
                need(not refused, refused)
                need(i != 1, "message 2 should have been refused")
                meta.append({"subject": subj, "message_id": mid})
            except smtplib.SMTPRecipientsRefused as e:
                need(i == 1 and e.recipients["nobody@example.test"][0] == 550, e.recipients)
        c.quit()
    s = smtp_session(c.lg, V4, V4, 25, meta)
    sts = [m["status"] for m in s["messages"]]
    need(sts == ["delivered", "rcpt_rejected", "delivered"], sts)
    need(s["status"] == "rcpt_rejected", s["status"])
    write_expected(path + ".expected.json", [s])


def sc_smtp_starttls(out):
    name = "starttls"
    path = os.path.join(out, "smtp", name)
    with Capture(path + ".pcap", [25]):
        p = swaks(V4, 25, "--to", "alice@example.test", "-tls",
                  "--header", "Subject: mailtap test: starttls (encrypted)")
    o = p.stdout + p.stderr
    lg = SmtpLog.from_swaks(o)
    code, text = lg.reply_to("STARTTLS")
    need(code == 220, text)
    need("=== TLS started" in o, "TLS did not start")
    need(re.search(r"<~  250 2\.0\.0 Ok: queued", o), "message not accepted inside TLS")
    s = {"proto": "smtp", "client_ip": V4, "server_ip": V4, "server_port": 25,
         "status": "encrypted", "helo": lg.helo(), "status_line_contains": "Ready to start TLS"}
    write_expected(path + ".expected.json", [s])


def port_is_closed(host, port):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(2)
    try:
        s.connect((host, port))
        return False
    except ConnectionRefusedError:
        return True
    finally:
        s.close()


def sc_smtp_refused(out):
    name = "refused"
    path = os.path.join(out, "smtp", name)
    need(port_is_closed(V4, 2525), "something listens on 127.0.0.1:2525")
    with Capture(path + ".pcap", [2525]):
        p = swaks(V4, 2525, "--to", "alice@example.test", ok_codes=None)
    o = p.stdout + p.stderr
    need(re.search(r"[Cc]onnection refused", o), o)
    s = {"proto": "smtp", "client_ip": V4, "server_ip": V4, "server_port": 2525,
         "status": "refused"}
    write_expected(path + ".expected.json", [s])


def sc_smtp_silent_server(out):
    name = "silent-server"
    path = os.path.join(out, "smtp", name)
    ls = socket.socket(socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((V4, 2526))
    ls.listen(1)
    held = []
    stop = threading.Event()

    def acceptor():
        ls.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = ls.accept()
                held.append(conn)   # accept and never send anything
            except socket.timeout:
                pass
            # read & discard so the client's close is ACKed and answered
            for h in held:
                h.setblocking(False)
                try:
                    if h.recv(4096) == b"":
                        h.close()
                        held.remove(h)
                except (BlockingIOError, OSError):
                    pass

    t = threading.Thread(target=acceptor, daemon=True)
    t.start()
    try:
        with Capture(path + ".pcap", [2526]):
            t0 = time.time()
            p = swaks(V4, 2526, "--to", "alice@example.test", "--timeout", "3",
                      ok_codes=None)
            took = time.time() - t0
            time.sleep(0.5)
    finally:
        stop.set()
        t.join(timeout=2)
        for h in held:
            h.close()
        ls.close()
    o = p.stdout + p.stderr
    need("<-" not in o and 2.5 <= took <= 10, f"silent-server: took {took:.1f}s\n{o}")
    need(re.search(r"[Tt]imeout|timed out", o), o)
    s = {"proto": "smtp", "client_ip": V4, "server_ip": V4, "server_port": 2526,
         "status": "no_response"}
    write_expected(path + ".expected.json", [s])
    with open(path + ".args", "w") as args:   # 2526 is not a standard mail port
        args.write("--port smtp:2526\n")


def sc_smtp_big_message(out):
    name = "big-message"
    path = os.path.join(out, "smtp", name)
    subj, mid = "mailtap test: big-message", "<big-message.1@client.example.test>"
    lines = []
    i = 0
    total = 0
    while total < 2 * 1024 * 1024:
        if i % 7 == 0:
            lines.append(f".dot-stuffed line {i:06d} (starts with a dot)")
        elif i % 11 == 0:
            lines.append(".")   # a line that is only a dot: must be stuffed to '..'
        else:
            lines.append(f"line {i:06d} abcdefghijklmnopqrstuvwxyz0123456789 ABCDEFGHIJKLMNOP")
        total += len(lines[-1]) + 1
        i += 1
    body = "\n".join(lines) + "\n"
    msg = mk_msg(SENDER, ["alice@example.test"], subj, mid, body)
    need(msg["Content-Transfer-Encoding"] == "7bit", msg["Content-Transfer-Encoding"])
    with Capture(path + ".pcap", [25]):
        c = LoggingSMTP(V4, 25, local_hostname=HELO, timeout=30)
        refused = c.send_message(msg, SENDER, ["alice@example.test"])
        need(not refused, refused)
        c.quit()
    s = smtp_session(c.lg, V4, V4, 25, [{"subject": subj, "message_id": mid}])
    need(s["status"] == "delivered", s)
    # check that the delivered copy has the lines un-stuffed (end-to-end truth)
    root = os.environ.get("MAILDIR_ROOT")
    if root:
        found = False
        for _ in range(50):
            for d in ("new", "cur"):
                dd = os.path.join(root, "alice", d)
                for fn in os.listdir(dd):
                    data = open(os.path.join(dd, fn), "rb").read()
                    if mid.encode() in data:
                        found = True
                        need(b"\n.dot-stuffed line 000000" in data and b"\n..dot" not in data,
                             "delivered big message is not correctly un-stuffed")
            if found:
                break
            time.sleep(0.1)
        need(found, "big message not found in alice's maildir")
    write_expected(path + ".expected.json", [s])


def sanitized(raw):
    """What mailtap's README promises to store for wire bytes: control bytes, DEL, C1
    controls (U+0080..U+009F) and bytes that are not valid UTF-8 become visible \\xNN
    escapes (one per byte), a backslash becomes two, anything else stays (protocols/text.h)."""
    out, i = [], 0
    while i < len(raw):
        b = raw[i]
        n = 1 if b < 0x80 else 2 if 0xC2 <= b <= 0xDF else 3 if 0xE0 <= b <= 0xEF \
            else 4 if 0xF0 <= b <= 0xF4 else 0
        ch = None
        if n > 1:
            try:
                ch = raw[i:i + n].decode("utf-8")
            except UnicodeDecodeError:
                ch = None
            if ch is not None and 0x80 <= ord(ch) <= 0x9F:
                ch = None
        if n == 1 and 0x20 <= b != 0x7F:
            out.append("\\\\" if b == 0x5C else chr(b))
            i += 1
        elif ch is not None:
            out.append(ch)
            i += n
        else:
            out.append("\\x%02x" % b)
            i += 1
    return "".join(out)


def sc_smtp_escape_sequences(out):
    """Terminal escape sequences from the wire: a SASL LOGIN user name on the submission port
    with ESC [ 2 J (clear screen) and an OSC title (ESC ] 0 ; pwned BEL) -- Dovecot refuses
    the name, the login fails, the name is still what the client sent -- then on port 25 a
    delivered message whose Subject holds ESC [ 31 m, ESC ] 0 ; x BEL and a C1 CSI (U+009B,
    UTF-8 C2 9B). The expected values are the README's visible escapes of those bytes."""
    name = "escape-sequences"
    path = os.path.join(out, "smtp", name)
    user = b"mallory\x1b[2J\x1b]0;pwned\x07"
    subject = b"mailtap test: \x1b[31mred\x1b[0m \x1b]0;x\x07 \xc2\x9b2J end"
    mid = "<escape-sequences.1@client.example.test>"
    rcpt = "alice@example.test"
    message = (f"From: {SENDER}\r\nTo: {rcpt}\r\n".encode() + b"Subject: " + subject +
               f"\r\nMessage-ID: {mid}\r\nDate: Mon, 02 Jun 2025 10:00:00 +0000\r\n"
               "\r\nA subject that tries to drive the terminal.\r\n".encode())
    with Capture(path + ".pcap", [587, 25]):
        a = LoggingSMTP(V4, 587, local_hostname=HELO, timeout=10)
        a.ehlo()
        need("LOGIN" in a.esmtp_features.get("auth", ""), "no AUTH LOGIN offered")
        a.user, a.password = user.decode("ascii"), "wrong-password"
        try:   # AUTH LOGIN, then the user and the password each after a 334 prompt
            a.auth("LOGIN", a.auth_login, initial_response_ok=False)
            raise ScenarioError("AUTH LOGIN with an escape-sequence user name succeeded")
        except smtplib.SMTPAuthenticationError as e:
            code, text = e.smtp_code, e.smtp_error.decode("latin-1")
        a.quit()
        c = LoggingSMTP(V4, 25, local_hostname=HELO, timeout=10)
        refused = c.sendmail(SENDER, [rcpt], message)
        need(not refused, refused)
        c.quit()
    need(code == 535 and "5.7.8" in text, f"escape-sequences: AUTH got {code} {text}")
    # Dovecot refuses the name itself: 535 right after it, the password is never asked for.
    prompts = [t for cmd, _, t in a.lg.pairs if cmd is not None and t.startswith("334")]
    need(prompts[:1] == ["334 VXNlcm5hbWU6"], f"no Username: prompt, client saw {a.lg.pairs}")
    need(a.lg.first("MAIL") is None, "a mail transaction after the failed AUTH")
    auth = {"proto": "smtp", "client_ip": V4, "server_ip": V4, "server_port": 587,
            "status": "auth_failed", "user": sanitized(user), "helo": a.lg.helo(),
            "status_line_contains": "5.7.8"}
    raw_meta = {"subject": subject.decode("latin-1"), "message_id": mid}
    mail = smtp_session(c.lg, V4, V4, 25, [raw_meta])
    need(mail["status"] == "delivered", mail)
    # The capture holds the raw bytes; the expected file says what must be shown for them.
    check_expected_against_capture(path + ".pcap", [auth, {
        **mail, "messages": [{**mail["messages"][0], "subject": None}]}])
    payload = b"".join(pl for *_, pl in read_pcap_tcp(path + ".pcap"))
    need(b"Subject: " + subject + b"\r\n" in payload, "raw Subject not in the capture")
    mail["messages"][0]["subject"] = sanitized(subject)
    with open(path + ".expected.json", "w") as f:
        json.dump([auth, mail], f, indent=2)
        f.write("\n")


# --------------------------------------------------------------------------
# POP3
# --------------------------------------------------------------------------
def pop_base(port=110, server=V4):
    return {"proto": "pop3", "client_ip": server, "server_ip": server, "server_port": port}


def sc_pop3_login_ok(out):
    name = "login-ok"
    path = os.path.join(out, "pop3", name)
    with Capture(path + ".pcap", [110]):
        p = poplib.POP3(V4, 110, timeout=10)
        p.user("carol")
        r = p.pass_("carolpw")
        need(r.startswith(b"+OK"), r)
        n, size = p.stat()
        need(n >= 2, f"carol has {n} messages")
        p.list()
        resp, lines, octets = p.retr(1)
        need(resp.startswith(b"+OK"), resp)
        need(p.dele(1).startswith(b"+OK"), "DELE")
        need(p.quit().startswith(b"+OK"), "QUIT")
    s = {**pop_base(), "status": "login_ok", "user": "carol"}
    write_expected(path + ".expected.json", [s])


def sc_pop3_auth_failed(out):
    name = "auth-failed"
    path = os.path.join(out, "pop3", name)
    with Capture(path + ".pcap", [110]):
        p = poplib.POP3(V4, 110, timeout=10)
        p.user("carol")
        try:
            p.pass_("wrong-password")
            raise ScenarioError("POP3 login with a wrong password succeeded")
        except poplib.error_proto as e:
            err = e.args[0].decode()
        p.quit()
    need(err == "-ERR [AUTH] Authentication failed.", err)
    s = {**pop_base(), "status": "auth_failed", "user": "carol",
         "status_line_contains": "[AUTH] Authentication failed."}
    write_expected(path + ".expected.json", [s])


def sc_pop3_auth_plain(out):
    name = "auth-plain"
    path = os.path.join(out, "pop3", name)
    with Capture(path + ".pcap", [110]):
        p = run(["curl", "-sS", "-v", "--max-time", "20", "--login-options", "AUTH=PLAIN",
                 "-u", "carol:carolpw", f"pop3://{V4}:110/"])
    o = p.stderr
    need(re.search(r"> AUTH PLAIN", o) and re.search(r"< \+OK Logged in", o), o)
    s = {**pop_base(), "status": "login_ok", "user": "carol"}
    write_expected(path + ".expected.json", [s])


def sc_pop3_stls(out):
    name = "stls"
    path = os.path.join(out, "pop3", name)
    with Capture(path + ".pcap", [110]):
        p = run(["openssl", "s_client", "-connect", f"{V4}:110", "-starttls", "pop3",
                 "-servername", "mail.example.test", "-quiet", "-crlf"],
                input="USER carol\nPASS carolpw\nSTAT\nQUIT\n", timeout=30, ok_codes=None)
    o = p.stdout
    need("+OK Logged in." in o and "+OK Logging out" in o, p.stdout + p.stderr)
    s = {**pop_base(), "status": "encrypted"}
    write_expected(path + ".expected.json", [s])


def sc_pop3_login_disabled(out):
    """Needs a client address != server address (see README)."""
    name = "login-disabled"
    path = os.path.join(out, "pop3", name)
    src = os.environ["MAILTAP_LOOPBACK_ALIAS"]
    with Capture(path + ".pcap", [1110]):
        p = poplib.POP3.__new__(poplib.POP3)   # poplib cannot bind the source address
        p.host, p.port, p._tls_established = V4, 1110, False
        p.sock = socket.create_connection((V4, 1110), timeout=10, source_address=(src, 0))
        p.file = p.sock.makefile("rb")
        p._debugging = 0
        p.welcome = p._getresp()
        try:
            p.user("carol")
            p.pass_("carolpw")
            raise ScenarioError("plaintext login was allowed")
        except poplib.error_proto as e:
            err = e.args[0].decode()
        p.quit()
    need("Plaintext authentication disallowed" in err, err)
    s = {"proto": "pop3", "client_ip": src, "server_ip": V4, "server_port": 1110,
         "status": "login_disabled", "user": "carol",
         "status_line_contains": "Plaintext authentication disallowed"}
    write_expected(path + ".expected.json", [s])
    with open(path + ".args", "w") as args:   # the strict instance's port
        args.write("--port pop3:1110\n")


# --------------------------------------------------------------------------
# IMAP
# --------------------------------------------------------------------------
def imap_base(port=143, server=V4):
    return {"proto": "imap", "client_ip": server, "server_ip": server, "server_port": port}


def sc_imap_login_ok(out):
    name = "login-ok"
    path = os.path.join(out, "imap", name)
    with Capture(path + ".pcap", [143]):
        m = imaplib.IMAP4(V4, 143, timeout=10)
        typ, _ = m.login("dave", "davepw")
        need(typ == "OK", typ)
        typ, dat = m.select("INBOX")
        need(typ == "OK" and int(dat[0]) >= 2, dat)
        typ, dat = m.fetch("1:2", "(UID FLAGS BODY.PEEK[])")
        need(typ == "OK", dat)
        typ, _ = m.store("1", "+FLAGS", "(\\Deleted)")
        need(typ == "OK", typ)
        typ, dat = m.expunge()
        need(typ == "OK" and dat and dat[0] == b"1", dat)
        m.logout()
    s = {**imap_base(), "status": "login_ok", "user": "dave"}
    write_expected(path + ".expected.json", [s])


def sc_imap_auth_failed(out):
    name = "auth-failed"
    path = os.path.join(out, "imap", name)
    with Capture(path + ".pcap", [143]):
        m = imaplib.IMAP4(V4, 143, timeout=10)
        try:
            m.login("dave", "wrong-password")
            raise ScenarioError("IMAP login with wrong password succeeded")
        except imaplib.IMAP4.error as e:
            err = str(e)
        m.logout()
    need("[AUTHENTICATIONFAILED] Authentication failed." in err, err)
    s = {**imap_base(), "status": "auth_failed", "user": "dave",
         "status_line_contains": "[AUTHENTICATIONFAILED]"}
    write_expected(path + ".expected.json", [s])


def sc_imap_authenticate_plain(out):
    name = "authenticate-plain"
    path = os.path.join(out, "imap", name)
    with Capture(path + ".pcap", [143]):
        m = imaplib.IMAP4(V4, 143, timeout=10)
        typ, _ = m.authenticate("PLAIN", lambda _: b"\0dave\0davepw")
        need(typ == "OK", typ)
        typ, _ = m.select("INBOX", readonly=True)
        need(typ == "OK", typ)
        m.logout()
    s = {**imap_base(), "status": "login_ok", "user": "dave"}
    write_expected(path + ".expected.json", [s])


def sc_imap_append(out):
    name = "append"
    path = os.path.join(out, "imap", name)
    msg = mk_msg("dave@example.test", ["dave@example.test"], "mailtap test: imap append",
                 "<imap-append.1@client.example.test>", "Stored with IMAP APPEND.\n")
    raw = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    with Capture(path + ".pcap", [143]):
        m = imaplib.IMAP4(V4, 143, timeout=10)
        typ, _ = m.login("dave", "davepw")
        need(typ == "OK", typ)
        typ, dat = m.append("INBOX", "(\\Seen)", None, raw)
        need(typ == "OK", dat)
        m.logout()
    s = {**imap_base(), "status": "login_ok", "user": "dave"}
    write_expected(path + ".expected.json", [s])


def sc_imap_idle(out):
    """LOGIN, SELECT, IDLE; a message arrives via SMTP (port 25, not in this
    capture) so the server pushes '* N EXISTS'; then DONE and LOGOUT."""
    name = "idle"
    path = os.path.join(out, "imap", name)
    with Capture(path + ".pcap", [143]):
        sock = socket.create_connection((V4, 143), timeout=10)
        f = sock.makefile("rb")

        def cmd(tag, line):
            sock.sendall(f"{tag} {line}\r\n".encode())
            return read_until_tag(f, tag)

        need(f.readline().startswith(b"* OK"), "greeting")
        r = cmd("a1", "LOGIN dave davepw")
        need(r[-1].startswith(b"a1 OK"), r)
        r = cmd("a2", "SELECT INBOX")
        need(r[-1].startswith(b"a2 OK"), r)
        sock.sendall(b"a3 IDLE\r\n")
        need(f.readline().startswith(b"+ idling"), "no IDLE continuation")
        deliver_plain("dave@example.test", "mailtap test: arrives during IDLE",
                      "<imap-idle.1@client.example.test>")
        line = f.readline()
        need(re.match(rb"\* \d+ EXISTS", line), line)
        # Dovecot may add "* N RECENT"; read it if it comes quickly
        sock.sendall(b"DONE\r\n")
        r = read_until_tag(f, "a3")
        need(r[-1].startswith(b"a3 OK"), r)
        r = cmd("a4", "LOGOUT")
        need(r[-1].startswith(b"a4 OK"), r)
        f.close()
        sock.close()
    s = {**imap_base(), "status": "login_ok", "user": "dave"}
    write_expected(path + ".expected.json", [s])


def read_until_tag(f, tag):
    lines = []
    while True:
        line = f.readline()
        need(line, "connection closed")
        lines.append(line)
        if line.startswith(tag.encode() + b" "):
            return lines


def sc_imap_starttls(out):
    name = "starttls"
    path = os.path.join(out, "imap", name)
    with Capture(path + ".pcap", [143]):
        m = imaplib.IMAP4(V4, 143, timeout=10)
        typ, _ = m.starttls(ssl_context=no_verify_ctx())
        need(typ == "OK", typ)
        typ, _ = m.login("dave", "davepw")
        need(typ == "OK", typ)
        m.select("INBOX", readonly=True)
        m.logout()
    s = {**imap_base(), "status": "encrypted"}
    write_expected(path + ".expected.json", [s])


def sc_imap_login_disabled(out):
    """Needs a client address != server address (see README)."""
    name = "login-disabled"
    path = os.path.join(out, "imap", name)
    src = os.environ["MAILTAP_LOOPBACK_ALIAS"]
    with Capture(path + ".pcap", [1143]):
        sock = socket.create_connection((V4, 1143), timeout=10, source_address=(src, 0))
        f = sock.makefile("rb")
        greet = f.readline()
        need(b"LOGINDISABLED" in greet, greet)
        sock.sendall(b"a1 LOGIN dave davepw\r\n")
        r = read_until_tag(f, "a1")
        need(r[-1].startswith(b"a1 NO") and b"[PRIVACYREQUIRED]" in r[-1], r)
        sock.sendall(b"a2 LOGOUT\r\n")
        read_until_tag(f, "a2")
        f.close()
        sock.close()
    s = {"proto": "imap", "client_ip": src, "server_ip": V4, "server_port": 1143,
         "status": "login_disabled", "user": "dave",
         "status_line_contains": "[PRIVACYREQUIRED]"}
    write_expected(path + ".expected.json", [s])
    with open(path + ".args", "w") as args:   # the strict instance's port
        args.write("--port imap:1143\n")


# --------------------------------------------------------------------------
# the namespace rig (dns/, tls/, relay/): see record.sh section 2b
# --------------------------------------------------------------------------
# Inside the network namespace record.sh creates (its only interface is its
# own lo) every address of 127.0.0.0/8 is usable; these are the roles:
NS_DNS = "127.0.0.2"       # the DNS responder below (the only resolver there)
NS_MX_GOOD = "127.0.0.3"   # SMTP sink: MX of good.example
NS_RELAY = "127.0.0.4"     # SMTP sink: relay host of relay.example
NS_TLS_EXPIRED = "127.0.0.5"
NS_TLS12_ONLY = "127.0.0.6"
NS_TLS_NO_KRSA = "127.0.0.7"
NS_LOCAL_ARGS = "--local 127.0.0.1/32\n"

# what the DNS responder knows; (name, qtype) -> answers in presentation form
DNS_RECORDS = {
    ("good.example", "MX"): [(15, "10 mx.good.example")],
    ("mx.good.example", "A"): [(1, "127.0.0.3")],
}
DNS_ZONES = {   # zone -> behaviour for every name in it
    "good.example": "zone",        # answers from DNS_RECORDS, else NOERROR/no data
    "nxdomain.example": "NXDOMAIN",
    "servfail.example": "SERVFAIL",
    "timeout.example": "drop",     # never answered
    "nodata.example": "zone",      # exists, has no records at all
}
QTYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
          52: "TLSA"}
RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4,
          "REFUSED": 5}


def dns_name_wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def dns_read_question(msg):
    """(qname, qtype, offset after the question) of a DNS message (no compression in
    questions: clients never compress them)."""
    import struct
    pos, labels = 12, []
    while True:
        n = msg[pos]
        pos += 1
        if n == 0:
            break
        need(n < 64, "compressed or bad qname")
        labels.append(msg[pos:pos + n].decode("ascii", "replace"))
        pos += n
    qtype, _qclass = struct.unpack("!HH", msg[pos:pos + 4])
    return ".".join(labels).lower(), qtype, pos + 4


def dns_answer(query):
    """The responder's decision for one query: (rcode name or None = drop, [answers],
    response bytes or None)."""
    import struct
    qid, qflags, qd, _an, _ns, ar = struct.unpack("!6H", query[:12])
    qname, qtype, qend = dns_read_question(query)
    tname = QTYPES.get(qtype, str(qtype))
    zone = next((z for z in DNS_ZONES if qname == z or qname.endswith("." + z)), None)
    behaviour = DNS_ZONES.get(zone, "REFUSED")
    if behaviour == "drop":
        return None, [], None
    answers, authority = [], b""
    if behaviour == "zone":
        rcode = "NOERROR"
        answers = DNS_RECORDS.get((qname, tname), [])
        known = {n for n, _ in DNS_RECORDS} | set(DNS_ZONES)
        if not answers and qname not in known:
            rcode = "NXDOMAIN"
    else:
        rcode = behaviour
    if rcode in ("NOERROR", "NXDOMAIN") and not answers:
        soa = (dns_name_wire("ns." + zone) + dns_name_wire("hostmaster." + zone)
               + struct.pack("!5I", 1, 3600, 600, 86400, 300))
        authority = (dns_name_wire(zone) + struct.pack("!HHIH", 6, 1, 300, len(soa)) + soa)
    body = b""
    for rtype, text in answers:
        if rtype == 15:
            pref, host = text.split()
            rdata = struct.pack("!H", int(pref)) + dns_name_wire(host)
        else:
            rdata = socket.inet_aton(text)
        body += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 300, len(rdata)) + rdata
    opt = b""
    if ar and query[qend:qend + 3] == b"\0\0\x29":   # the query has EDNS: answer with EDNS
        opt = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
    flags = 0x8000 | (qflags & 0x0100) | 0x0080 | RCODES[rcode]
    if behaviour != "REFUSED":
        flags |= 0x0400   # authoritative
    head = struct.pack("!6H", qid, flags, qd, len(answers), 1 if authority else 0,
                       1 if opt else 0)
    return rcode, [t for _, t in answers], head + query[12:qend] + body + authority + opt


def serve_dns(logpath):
    """UDP DNS responder on 127.0.0.2:53 (inside the namespace). Logs every query and
    what it answered, one JSON object a line: this log is the truth for dns/ rows."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((NS_DNS, 53))
    with open(logpath, "a", buffering=1) as logf:
        logf.write(json.dumps({"ready": True}) + "\n")
        while True:
            data, (addr, port) = s.recvfrom(4096)
            ts = time.time()
            import struct
            try:
                qname, qtype, _ = dns_read_question(data)
                rcode, answers, resp = dns_answer(data)
            except Exception as e:  # noqa: BLE001 - log and go on
                logf.write(json.dumps({"ts": ts, "error": str(e)}) + "\n")
                continue
            if resp is not None:
                s.sendto(resp, (addr, port))
            logf.write(json.dumps({
                "ts": ts, "client": addr, "cport": port, "id": struct.unpack("!H", data[:2])[0],
                "qname": qname, "qtype": QTYPES.get(qtype, str(qtype)), "rcode": rcode,
                "answers": ",".join(answers)}) + "\n")


def serve_sink(logpath):
    """Minimal SMTP server on 127.0.0.3:25 and 127.0.0.4:25 that accepts everything.
    Logs each session's commands and its own replies (JSON a line): the truth for the
    outbound rows."""
    import socketserver
    lock = threading.Lock()
    counter = [0]
    logf = open(logpath, "a", buffering=1)
    names = {NS_MX_GOOD: "mx.good.example", NS_RELAY: "relay.example"}

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            srv, cli = self.request.getsockname(), self.request.getpeername()
            name = names.get(srv[0], "sink.example")
            rec = {"ts": time.time(), "server": srv[0], "server_port": srv[1],
                   "client": cli[0], "cport": cli[1], "pairs": [], "messages": []}

            def reply(cmd, lines):
                self.wfile.write("".join(l + "\r\n" for l in lines).encode())
                self.wfile.flush()
                rec["pairs"].append([cmd, int(lines[-1][:3]), lines[-1]])

            try:
                reply(None, [f"220 {name} ESMTP mailtap sink"])
            except OSError:
                return
            in_data, hdrs, in_hdrs = False, {}, True
            while True:
                try:
                    raw = self.rfile.readline(65536)
                except OSError:   # the start-up port probes reset
                    raw = b""
                if not raw:
                    break
                line = raw.decode("latin-1").rstrip("\r\n")
                if in_data:
                    if line == ".":
                        in_data = False
                        with lock:
                            counter[0] += 1
                            qid = f"SINK{counter[0]:04d}"
                        rec["messages"].append({"message_id": hdrs.get("message-id"),
                                                "subject": hdrs.get("subject")})
                        reply("<eom>", [f"250 2.0.0 Ok: queued as {qid}"])
                    elif in_hdrs:
                        if line == "":
                            in_hdrs = False
                        elif ":" in line and not line[0].isspace():
                            k, v = line.split(":", 1)
                            hdrs.setdefault(k.strip().lower(), v.strip())
                    continue
                u = line.upper()
                if u.startswith("EHLO"):
                    reply(line, [f"250-{name}", "250-PIPELINING", "250-SIZE 10240000",
                                 "250 8BITMIME"])
                elif u.startswith("HELO"):
                    reply(line, [f"250 {name}"])
                elif u.startswith("MAIL FROM:"):
                    reply(line, ["250 2.1.0 Ok"])
                elif u.startswith("RCPT TO:"):
                    reply(line, ["250 2.1.5 Ok"])
                elif u == "DATA":
                    in_data, hdrs, in_hdrs = True, {}, True
                    reply(line, ["354 End data with <CR><LF>.<CR><LF>"])
                elif u in ("RSET", "NOOP"):
                    reply(line, ["250 2.0.0 Ok"])
                elif u == "QUIT":
                    reply(line, ["221 2.0.0 Bye"])
                    break
                else:
                    reply(line, ["502 5.5.2 Error: command not recognized"])
            rec["ts_end"] = time.time()
            with lock:
                logf.write(json.dumps(rec) + "\n")

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    servers = [Server((a, 25), Handler) for a in (NS_MX_GOOD, NS_RELAY)]
    for sv in servers[1:]:
        threading.Thread(target=sv.serve_forever, daemon=True).start()
    servers[0].serve_forever()


def nsexec(cmd):
    ns = os.environ.get("MAILTAP_NSEXEC")
    need(ns, "the namespace rig is not set up (record.sh section 2b)")
    return [ns] + list(cmd)


class LogTail:
    """The lines a log file gets from now on."""

    def __init__(self, path):
        self.path = path
        self.mark = os.path.getsize(path) if os.path.exists(path) else 0

    def lines(self):
        if not os.path.exists(self.path):
            return []
        with open(self.path, "rb") as f:
            f.seek(self.mark)
            return f.read().decode("utf-8", "replace").splitlines()

    def records(self):
        return [json.loads(x) for x in self.lines() if x.strip()]

    def wait(self, pattern, timeout=20):
        t0 = time.time()
        while time.time() - t0 < timeout:
            for x in self.lines():
                m = re.search(pattern, x)
                if m:
                    return m
            time.sleep(0.1)
        raise ScenarioError(f"{self.path}: no line matching {pattern!r} within {timeout}s")


def pfo_flush():
    """Deletes whatever the outbound Postfix still holds (deferred mail would be retried
    inside a later capture)."""
    run(nsexec(["postsuper", "-c", os.environ["PFO_DIR"], "-d", "ALL"]), ok_codes=None)


def ns_swaks(server, port, *args, timeout=60):
    return run(nsexec(["swaks", "--server", server, "--port", str(port), "--helo", HELO,
                       "--from", SENDER, *args]), timeout=timeout, ok_codes=None)


def dns_query_packets(pcap):
    """(ts, src, sport, dst, dport, id, qname, qtype, is_response, rcode) of every UDP
    port-53 datagram, from our own pcap reader."""
    import struct
    out = []
    for ts, proto, src, sp, dst, dp, _fl, pl in read_pcap_all(pcap):
        if proto != 17 or 53 not in (sp, dp):
            continue
        qid, flags = struct.unpack("!HH", pl[:4])
        qname, qtype, _ = dns_read_question(pl)
        out.append((ts, src, sp, dst, dp, qid, qname, QTYPES.get(qtype, str(qtype)),
                    bool(flags & 0x8000), flags & 15))
    return out


def syn_times(pcap):
    """[(ts, client, server, port)] of every TCP connection start."""
    return [(ts, src, dst, dp) for ts, proto, src, sp, dst, dp, fl, _ in read_pcap_all(pcap)
            if proto == 6 and fl & 0x02 and not fl & 0x10]


def tcp_payload(pcap, src=None, dst=None):
    return b"".join(pl for _, proto, s, _, d, _, _, pl in read_pcap_all(pcap)
                    if proto == 6 and (src is None or s == src) and (dst is None or d == dst))


def dns_rows(pcap, queries):
    """Expected DNS rows from the responder's log, each tied to its datagram in the
    capture (time order). Returns [(ts, row, log record, response ts or None)]."""
    pk = dns_query_packets(pcap)
    qs = [p for p in pk if not p[8]]
    need(all(p[3] == NS_DNS and p[4] == 53 for p in qs),
         f"{pcap}: a DNS query went elsewhere than {NS_DNS}:53: {qs}")
    need(len(qs) == len(queries),
         f"{pcap}: {len(qs)} DNS queries captured, responder logged {len(queries)}")
    rows = []
    for q in queries:
        hit = [p for p in qs if p[2] == q["cport"] and p[5] == q["id"] and p[6] == q["qname"]]
        need(len(hit) == 1, f"{pcap}: query {q} not (once) in the capture")
        resp = [p for p in pk if p[8] and p[4] == q["cport"] and p[5] == q["id"]]
        need(bool(resp) == (q["rcode"] is not None), f"{pcap}: response mismatch for {q}")
        if resp:
            need(resp[0][9] == RCODES[q["rcode"]], f"{pcap}: rcode on the wire != log {q}")
        row = {"proto": "dns", "direction": "out", "client_ip": q["client"],
               "server_ip": NS_DNS, "server_port": 53}
        if q["rcode"] is None:
            # The recording stops soon after Postfix gives up (its resolver: timeout:1),
            # and nothing after the query shows the 10 s that make a timeout.
            row["status"] = "incomplete"
            row["dns"] = {"qname": q["qname"], "qtype": q["qtype"]}
        else:
            row["status"] = ("dns_error" if q["rcode"] != "NOERROR" else
                             "resolved" if q["answers"] else "no_data")
            row["dns"] = {"qname": q["qname"], "qtype": q["qtype"], "rcode": q["rcode"],
                          "answers": q["answers"]}
        rows.append((hit[0][0], row, q, resp[0][0] if resp else None))
    return rows


def check_ns_strings(pcap, sessions):
    payload = tcp_payload(pcap)
    for s in sessions:
        if s.get("proto") != "smtp" or "server_ip" not in s:
            continue   # DNS rows are checked datagram by datagram; dns_failed has no packets
        strs = [s.get("helo"), s.get("mail_from"), s.get("status_line_contains")]
        strs += [r["addr"] for r in s.get("rcpt_to", [])]
        for m in s.get("messages", []):
            strs += [m.get("subject"), m.get("message_id"), m.get("mail_from")]
        for x in strs:
            if x is not None:
                need(x.encode() in payload, f"{pcap}: {x!r} not in captured payload")


def write_ns_expected(path, timed, args=NS_LOCAL_ARGS):
    """timed: [(ts, row)]; written in time order (mailtap list --oldest-first)."""
    pcap = path.replace(".expected.json", ".pcap")
    sessions = [r for _, r in sorted(timed, key=lambda x: x[0])]
    check_ns_strings(pcap, sessions)
    with open(path, "w") as f:
        json.dump(sessions, f, indent=2)
        f.write("\n")
    args_path = path.replace(".expected.json", ".args")
    if args:
        with open(args_path, "w") as f:
            f.write(args)
    elif os.path.exists(args_path):
        os.unlink(args_path)


def sink_session(rec, meta):
    lg = SmtpLog()
    for cmd, code, text in rec["pairs"]:
        lg.add(cmd, code, text)
    return smtp_session(lg, rec["client"], rec["server"], rec["server_port"], meta)


def mx_case(out, name, domain, intent, postfix_status):
    """swaks submits to the namespace's Postfix for user@DOMAIN; Postfix looks the MX up
    through 127.0.0.2 and delivers (good.example -> 127.0.0.3) or fails. postfix_status:
    what Postfix must log for the recipient (sent / bounced / deferred)."""
    path = os.path.join(out, "dns", name)
    rcpt = f"user@{domain}"
    subj, mid = f"mailtap test: dns {name}", f"<dns-{name}.1@client.example.test>"
    maillog = LogTail(os.environ["PFO_LOG"])
    dnslog = LogTail(os.environ["NS_DNS_LOG"])
    sinklog = LogTail(os.environ["NS_SINK_LOG"])
    pfo_flush()
    with Capture(path + ".pcap", [25], netns=True, bpf="(tcp and port 25) or (udp and port 53)"):
        p = ns_swaks(V4, 25, "--to", rcpt, "--header", f"Subject: {subj}",
                     "--header", f"Message-Id: {mid}")
        lg = SmtpLog.from_swaks(p.stdout + p.stderr)
        txs = lg.transactions()
        need(len(txs) == 1 and txs[0]["eom"] == 250, f"{name}: not queued:\n{p.stdout}")
        qid = re.search(r"queued as ([0-9A-Z]+)", txs[0]["eom_text"]).group(1)
        m = maillog.wait(rf"{qid}: to=<{re.escape(rcpt)}>,.* status=(\w+) \((.*)\)$")
        st, reason = m.group(1), m.group(2)
        need(st == postfix_status, m.group(0))
        if intent == "delivered":
            need(f"[{NS_MX_GOOD}]:25" in m.group(0), m.group(0))
            for _ in range(50):
                if any(r.get("server") == NS_MX_GOOD for r in sinklog.records()):
                    break
                time.sleep(0.1)
        time.sleep(0.5)
    pfo_flush()
    log(f"{name}: postfix said: status={st} ({reason})")
    inbound = smtp_session(lg, V4, V4, 25, [{"subject": subj, "message_id": mid}])
    need(inbound["status"] == "delivered", inbound)
    inbound = {"proto": "smtp", "direction": "in",
               **{k: v for k, v in inbound.items() if k != "proto"}}
    pcap = path + ".pcap"
    syns = syn_times(pcap)
    need(syns and syns[0][1:] == (V4, V4, 25), f"{pcap}: first connection {syns}")
    timed = [(syns[0][0], inbound)]
    queries = [q for q in dnslog.records() if "qname" in q]
    drows = dns_rows(pcap, queries)
    timed += [(ts, row) for ts, row, _, _ in drows]
    need(any(q["qname"] == domain and q["qtype"] == "MX" for q in queries),
         f"{name}: Postfix never asked for the MX of {domain}: {queries}")
    if intent == "delivered":
        recs = [r for r in sinklog.records() if r["server"] == NS_MX_GOOD]
        need(len(recs) == 1, f"{name}: sink sessions {recs}")
        o = sink_session(recs[0], [{"subject": subj, "message_id": mid}])
        need(o["status"] == "delivered", o)
        o = {"proto": "smtp", "direction": "out", **{k: v for k, v in o.items() if k != "proto"}}
        out_syn = [s for s in syns if s[2] == NS_MX_GOOD]
        need(len(out_syn) == 1, f"{pcap}: outbound connections {out_syn}")
        timed.append((out_syn[0][0], o))
        need(len(syns) == 2, f"{pcap}: connections {syns}")
    else:
        need(len(syns) == 1, f"{pcap}: unexpected connections {syns}")
        # Postfix's own words: "Name service error for name=D type=T: ..." (T is the
        # last type it asked: after an MX NXDOMAIN or no-data it falls back to A/AAAA)
        mm = re.search(r"Name service error for name=\S+ type=\w+: .*", reason)
        need(mm, f"{name}: Postfix's reason has no name service error: {reason}")
        # rows are in start order: this failed delivery attempt started with its MX
        # lookup, so it comes right after that lookup's own row (and before the A/AAAA
        # fallbacks Postfix asks next)
        mx = [ts for ts, _, q, _ in drows if q["qname"] == domain and q["qtype"] == "MX"]
        mx_rows = [row for _, row, q, _ in drows if q["qname"] == domain and q["qtype"] == "MX"]
        t_fail = mx[0] + 1e-6
        need(all(ts <= t_fail or ts > mx[0] + 2e-6 for ts, _, _, _ in drows), "timing tie")
        # An MX query the capture ended on (no answer on the wire: Postfix's resolver gave
        # up unseen) is no failure mailtap can see: the attempt is incomplete, its line
        # says so and quotes what a resolver gives up with.
        cut = mx_rows[0].get("status") == "incomplete"
        timed.append((t_fail, {"proto": "smtp", "direction": "out",
                               "status": "incomplete" if cut else "dns_failed",
                               "status_line_contains":
                                   "no answer to the MX lookup when the capture ended"
                                   if cut else mm.group(0),
                               "mail_from": SENDER, "rcpt_to": [{"addr": rcpt}]}))
    write_ns_expected(path + ".expected.json", timed)


def sc_dns_good(out):
    mx_case(out, "mx-delivered", "good.example", "delivered", "sent")


def sc_dns_nxdomain(out):
    mx_case(out, "mx-nxdomain", "nxdomain.example", "dns_failed", "bounced")


def sc_dns_servfail(out):
    mx_case(out, "mx-servfail", "servfail.example", "dns_failed", "deferred")


def sc_dns_timeout(out):
    mx_case(out, "mx-timeout", "timeout.example", "dns_failed", "deferred")


def sc_dns_nodata(out):
    mx_case(out, "mx-nodata", "nodata.example", "dns_failed", "bounced")


def sc_relay_two_hops(out):
    """client -> Postfix (127.0.0.1:25) -> relay host 127.0.0.4:25 (transport map, no DNS);
    the same Message-ID in both hops."""
    name = "two-hops"
    path = os.path.join(out, "relay", name)
    rcpt = "user@relay.example"
    subj, mid = "mailtap test: relayed in two hops", "<relay-two-hops.1@client.example.test>"
    maillog = LogTail(os.environ["PFO_LOG"])
    dnslog = LogTail(os.environ["NS_DNS_LOG"])
    sinklog = LogTail(os.environ["NS_SINK_LOG"])
    pfo_flush()
    with Capture(path + ".pcap", [25], netns=True, bpf="(tcp and port 25) or (udp and port 53)"):
        p = ns_swaks(V4, 25, "--to", rcpt, "--header", f"Subject: {subj}",
                     "--header", f"Message-Id: {mid}")
        lg = SmtpLog.from_swaks(p.stdout + p.stderr)
        txs = lg.transactions()
        need(len(txs) == 1 and txs[0]["eom"] == 250, f"{name}: not queued:\n{p.stdout}")
        qid = re.search(r"queued as ([0-9A-Z]+)", txs[0]["eom_text"]).group(1)
        m = maillog.wait(rf"{qid}: to=<{re.escape(rcpt)}>,.* status=(\w+) \((.*)\)$")
        need(m.group(1) == "sent" and f"[{NS_RELAY}]:25" in m.group(0), m.group(0))
        for _ in range(50):
            if any(r.get("server") == NS_RELAY for r in sinklog.records()):
                break
            time.sleep(0.1)
        time.sleep(0.5)
    pfo_flush()
    need(not [q for q in dnslog.records() if "qname" in q], "relay: unexpected DNS lookups")
    pcap = path + ".pcap"
    syns = syn_times(pcap)
    need([s[1:] for s in syns] == [(V4, V4, 25), (V4, NS_RELAY, 25)], f"{pcap}: {syns}")
    meta = [{"subject": subj, "message_id": mid}]
    inbound = smtp_session(lg, V4, V4, 25, meta)
    recs = [r for r in sinklog.records() if r["server"] == NS_RELAY]
    need(len(recs) == 1, recs)
    outbound = sink_session(recs[0], meta)
    need(inbound["status"] == outbound["status"] == "delivered", (inbound, outbound))
    need(recs[0]["messages"][0]["message_id"] == mid, recs[0])
    timed = [(syns[0][0], {"proto": "smtp", "direction": "in",
                           **{k: v for k, v in inbound.items() if k != "proto"}}),
             (syns[1][0], {"proto": "smtp", "direction": "out",
                           **{k: v for k, v in outbound.items() if k != "proto"}})]
    write_ns_expected(path + ".expected.json", timed)


def reset_maildir(user):
    """Empties USER's maildir (mail and Dovecot's index files) between captures, so that a
    scenario knows the mailbox holds exactly what it delivers. Only for a user that no
    POP3/IMAP session has open."""
    root = os.environ.get("MAILDIR_ROOT")
    need(root, "MAILDIR_ROOT is not set (record.sh section 3)")
    box = os.path.join(root, user)
    for d in ("new", "cur", "tmp"):
        for fn in os.listdir(os.path.join(box, d)):
            os.unlink(os.path.join(box, d, fn))
    for fn in os.listdir(box):
        if fn.startswith("dovecot") and os.path.isfile(os.path.join(box, fn)):
            os.unlink(os.path.join(box, fn))


def wait_in_maildir(user, msgid, timeout=20):
    """Polls USER's maildir until the message with MSGID is in it; returns its bytes."""
    box = os.path.join(os.environ["MAILDIR_ROOT"], user)
    t0 = time.time()
    while time.time() - t0 < timeout:
        for d in ("new", "cur"):
            for fn in os.listdir(os.path.join(box, d)):
                data = open(os.path.join(box, d, fn), "rb").read()
                if msgid.encode() in data:
                    return data
        time.sleep(0.05)
    raise ScenarioError(f"{msgid} was not delivered to {user}'s maildir within {timeout}s")


def header_of(raw, name):
    """The (unfolded) value of header NAME in the header section of RAW (bytes), or None."""
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("latin-1")
    m = re.search(rf"^{re.escape(name)}:[ \t]*(.*(?:\n[ \t].*)*)", head, re.I | re.M)
    return re.sub(r"\n[ \t]+", " ", m.group(1)).strip() if m else None


def sc_relay_deliver_retrieve(out):
    """One message, end to end, in one capture on the host's lo: swaks submits it to
    Postfix (127.0.0.1:25) for bob@example.test, Postfix delivers it into bob's maildir,
    then bob retrieves it with POP3 (USER/PASS, RETR 1, no DELE, QUIT) and with IMAP
    (LOGIN, SELECT INBOX, FETCH 1 (BODY.PEEK[]), LOGOUT). bob is used by no POP3/IMAP
    scenario; his maildir is emptied first (SMTP scenarios deliver to him)."""
    name = "deliver-retrieve"
    path = os.path.join(out, "relay", name)
    user, password, rcpt = "bob", "bobpw", "bob@example.test"
    subj, mid = "mailtap test: delivered and retrieved", "<trace.1@client.example.test>"
    reset_maildir(user)
    maillog = LogTail(os.environ["PF_LOG"]) if os.environ.get("PF_LOG") else None
    with Capture(path + ".pcap", [25, 110, 143]):
        # 1. submission
        p = swaks(V4, 25, "--to", rcpt, "--header", f"Subject: {subj}",
                  "--header", f"Message-Id: {mid}")
        lg = SmtpLog.from_swaks(p.stdout + p.stderr)
        txs = lg.transactions()
        need(len(txs) == 1 and txs[0]["eom"] == 250, f"{name}: not queued:\n{p.stdout}")
        qid = re.search(r"queued as ([0-9A-Z]+)", txs[0]["eom_text"]).group(1)
        # 2. delivery into the mailbox (polled: Postfix log and the maildir itself)
        if maillog:
            m = maillog.wait(rf"{qid}: to=<{re.escape(rcpt)}>,.* status=(\w+) ")
            need(m.group(1) == "sent", m.group(0))
        stored = wait_in_maildir(user, mid)
        need(header_of(stored, "Message-ID") == mid, f"delivered copy: {stored[:500]!r}")
        # 3. POP3 retrieval, no DELE
        pop = poplib.POP3(V4, 110, timeout=10)
        pop.user(user)
        r = pop.pass_(password)
        need(r.startswith(b"+OK"), r)
        n, _size = pop.stat()
        need(n == 1, f"{user} has {n} messages in POP3, expected 1")
        resp, lines, _octets = pop.retr(1)
        need(resp.startswith(b"+OK"), resp)
        pop_raw = b"\r\n".join(lines)
        need(pop.quit().startswith(b"+OK"), "QUIT")
        # 4. IMAP retrieval of the same message
        im = imaplib.IMAP4(V4, 143, timeout=10)
        typ, _ = im.login(user, password)
        need(typ == "OK", typ)
        typ, dat = im.select("INBOX")
        need(typ == "OK" and int(dat[0]) == 1, f"SELECT INBOX: {typ} {dat}")
        typ, dat = im.fetch("1", "(BODY.PEEK[])")
        need(typ == "OK" and isinstance(dat[0], tuple), f"FETCH: {typ} {dat}")
        imap_raw = dat[0][1]
        typ, _ = im.logout()
        need(typ == "BYE", typ)
    got = []
    for proto, raw in (("pop3", pop_raw), ("imap", imap_raw)):
        m = {"subject": header_of(raw, "Subject"), "message_id": header_of(raw, "Message-ID")}
        need(m == {"subject": subj, "message_id": mid}, f"{proto} retrieved {m}")
        got.append([m])
    pcap = path + ".pcap"
    syns = syn_times(pcap)
    need([s[1:] for s in syns] == [(V4, V4, 25), (V4, V4, 110), (V4, V4, 143)],
         f"{pcap}: connections {syns}")
    smtp = smtp_session(lg, V4, V4, 25, [{"subject": subj, "message_id": mid}])
    need(smtp["status"] == "delivered", smtp)
    sessions = [smtp,
                {**pop_base(), "status": "login_ok", "user": user, "messages": got[0]},
                {**imap_base(), "status": "login_ok", "user": user, "messages": got[1]}]
    write_expected(path + ".expected.json", sessions)
    args_path = path + ".args"   # standard ports: no extra options
    if os.path.exists(args_path):
        os.unlink(args_path)


# ---- TLS ---------------------------------------------------------------------
TLS_ALERTS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
              40: "handshake_failure", 42: "bad_certificate", 46: "certificate_unknown",
              47: "illegal_parameter", 48: "unknown_ca", 50: "decode_error",
              51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security",
              80: "internal_error", 86: "inappropriate_fallback", 109: "missing_extension",
              112: "unrecognized_name"}
TLS_VERSIONS = {0x0301: "TLSv1.0", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2", 0x0304: "TLSv1.3"}


def tls_records(stream):
    """Plain TLS records (type, version, body) from the first one on; stops at garbage."""
    import struct
    pos, out = 0, []
    while pos + 5 <= len(stream):
        ctype, ver, ln = struct.unpack("!BHH", stream[pos:pos + 5])
        if ctype not in (20, 21, 22, 23) or ver >> 8 != 3:
            break
        out.append((ctype, ver, stream[pos + 5:pos + 5 + ln]))
        pos += 5 + ln
    return out


def tls_start(stream, implicit):
    if implicit:
        return stream
    i = stream.find(b"220 2.0.0 Ready to start TLS\r\n")
    need(i >= 0, "no STARTTLS 220 in the server stream")
    return stream[i + len(b"220 2.0.0 Ready to start TLS\r\n"):]


def tls_server_facts(pcap, server, implicit):
    """From the server's bytes: ServerHello version + cipher code, alerts (plaintext)."""
    import struct
    recs = tls_records(tls_start(tcp_payload(pcap, src=server), implicit))
    facts = {"alerts": [], "version": None, "cipher": None}
    for ctype, _ver, body in recs:
        if ctype == 21 and len(body) == 2:
            facts["alerts"].append((body[0], TLS_ALERTS.get(body[1], str(body[1]))))
        if ctype == 22 and body[:1] == b"\x02" and facts["cipher"] is None:
            hv = struct.unpack("!H", body[4:6])[0]
            sid = body[38]
            facts["cipher"] = struct.unpack("!H", body[39 + sid:41 + sid])[0]
            facts["version"] = hv   # TLS 1.3 would say so in supported_versions
        if ctype == 20:
            break   # encrypted from here on
    return facts


def stdname_of(openssl_name):
    p = run(["openssl", "ciphers", "-V", "-stdname", "ALL"])
    for line in p.stdout.splitlines():
        parts = line.split()
        # 0xC0,0x30 - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 - ECDHE-RSA-AES256-GCM-SHA384 ...
        if len(parts) >= 5 and parts[4] == openssl_name:
            hi, lo = parts[0].split(",")
            return parts[2], int(hi, 16) << 8 | int(lo, 16)
    raise ScenarioError(f"unknown cipher {openssl_name}")


def cert_facts(pem):
    from datetime import datetime, timezone
    p = run(["openssl", "x509", "-in", pem, "-noout", "-startdate", "-enddate",
             "-subject", "-issuer", "-nameopt", "RFC2253"])
    kv = dict(line.split("=", 1) for line in p.stdout.splitlines())

    def epoch(s):
        return int(datetime.strptime(s, "%b %d %H:%M:%S %Y GMT")
                   .replace(tzinfo=timezone.utc).timestamp())

    def cn(dn):
        m = re.search(r"CN=([^,]+)", dn)
        return m.group(1)
    der_bytes = subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"],
                               capture_output=True, check=True).stdout
    return {"subject": cn(kv["subject"]), "issuer": cn(kv["issuer"]),
            "not_before": epoch(kv["notBefore"]), "not_after": epoch(kv["notAfter"]),
            "der": der_bytes}


def tls_expired_case(out, name, port, implicit):
    path = os.path.join(out, "tls", name)
    sni = "mail.expired.example"
    cf = cert_facts(os.path.join(os.environ["NS_TLS"], "expired.pem"))
    args = ["--to", "alice@tls.example", "--tls-sni", sni,
            "--header", f"Subject: mailtap test: {name}"]
    args += ["--tls-on-connect"] if implicit else ["-tls"]
    with Capture(path + ".pcap", [port], netns=True, bpf=f"tcp and port {port}"):
        t0 = time.time()
        p = ns_swaks(NS_TLS_EXPIRED, port, *args)
    o = p.stdout + p.stderr
    m = re.search(r"=== TLS started with cipher (TLSv[\d.]+):([A-Z0-9-]+):", o)
    need(m, f"{name}: TLS did not start:\n{o}")
    need(re.search(r"<~  250 2\.0\.0 Ok: queued", o), f"{name}: message not accepted in TLS")
    version, ossl = m.group(1), m.group(2)
    std, code = stdname_of(ossl)
    pcap = path + ".pcap"
    facts = tls_server_facts(pcap, NS_TLS_EXPIRED, implicit)
    need(facts["cipher"] == code and TLS_VERSIONS.get(facts["version"]) == version,
         f"{name}: ServerHello {facts} != swaks {version} {ossl}")
    need(version != "TLSv1.3", "TLS 1.3 hides the certificate")
    need(cf["der"] in tcp_payload(pcap, src=NS_TLS_EXPIRED), f"{name}: certificate not in clear")
    need(sni.encode() in tcp_payload(pcap, dst=NS_TLS_EXPIRED), f"{name}: no SNI")
    need(cf["not_after"] < t0, "certificate is not expired")
    need(cf["subject"] == sni, "certificate name != SNI")
    lg = SmtpLog.from_swaks(o)
    s = {"proto": "smtp", "direction": "in", "client_ip": V4, "server_ip": NS_TLS_EXPIRED,
         "server_port": port, "status": "encrypted"}
    if not implicit:
        code, text = lg.reply_to("STARTTLS")
        need(code == 220, text)
        s["helo"] = lg.helo()
        s["status_line_contains"] = "Ready to start TLS"
    s["tls_details"] = {"outcome": "encrypted", "version": version, "cipher": std, "sni": sni,
                        "subject": cf["subject"], "issuer": cf["issuer"],
                        "not_before": cf["not_before"], "not_after": cf["not_after"]}
    s["flags"] = ["cert_expired"]
    syns = syn_times(pcap)
    need([x[1:] for x in syns] == [(V4, NS_TLS_EXPIRED, port)], f"{pcap}: {syns}")
    write_ns_expected(path + ".expected.json", [(syns[0][0], s)], args=None)


def sc_tls_starttls_expired(out):
    tls_expired_case(out, "starttls-expired", 25, False)


def sc_tls_smtps_expired(out):
    tls_expired_case(out, "smtps-expired", 465, True)


def tls_fail_case(out, name, server, client_opts, want_alert, client_says):
    path = os.path.join(out, "tls", name)
    sni = "mail.example.test"
    with Capture(path + ".pcap", [25], netns=True, bpf="tcp and port 25"):
        p = run(nsexec(["openssl", "s_client", "-connect", f"{server}:25", "-starttls", "smtp",
                        "-name", HELO, "-servername", sni, *client_opts]),
                input="", timeout=30, ok_codes=None)
    o = p.stdout + p.stderr
    need(p.returncode != 0 and client_says in o, f"{name}: s_client said:\n{o}")
    pcap = path + ".pcap"
    pl = tcp_payload(pcap, src=server)
    need(b"220 2.0.0 Ready to start TLS" in pl, f"{name}: STARTTLS not accepted")
    facts = tls_server_facts(pcap, server, False)
    need(facts["cipher"] is None, f"{name}: a ServerHello was sent: {facts}")
    need(facts["alerts"] == [(2, want_alert)], f"{name}: server alerts {facts['alerts']}")
    need(sni.encode() in tcp_payload(pcap, dst=server), f"{name}: no SNI")
    ehlo = re.search(rb"EHLO (\S+)\r\n", tcp_payload(pcap, dst=server))
    need(ehlo and ehlo.group(1).decode() == HELO, f"{name}: EHLO {ehlo}")
    s = {"proto": "smtp", "direction": "in", "client_ip": V4, "server_ip": server,
         "server_port": 25, "status": "tls_failed", "helo": HELO,
         "tls_details": {"outcome": "failed", "sni": sni, "alert": want_alert}}
    syns = syn_times(pcap)
    need([x[1:] for x in syns] == [(V4, server, 25)], f"{pcap}: {syns}")
    write_ns_expected(path + ".expected.json", [(syns[0][0], s)], args=None)


def sc_tls_version_mismatch(out):
    # the client offers only TLS 1.3; this smtpd speaks only TLS 1.2
    tls_fail_case(out, "version-mismatch", NS_TLS12_ONLY, ["-tls1_3"], "protocol_version",
                  "alert protocol version")


def sc_tls_cipher_mismatch(out):
    # the client offers only AES128-SHA256 (RSA key exchange), which this smtpd excludes
    tls_fail_case(out, "cipher-mismatch", NS_TLS_NO_KRSA, ["-tls1_2", "-cipher", "AES128-SHA256"],
                  "handshake_failure", "alert handshake failure")



# --------------------------------------------------------------------------
# seeding (NOT captured: no tcpdump runs while seeding)
# --------------------------------------------------------------------------
def deliver_plain(rcpt, subject, msgid):
    msg = mk_msg(SENDER, [rcpt], subject, msgid, f"Seed message {msgid}.\n")
    with smtplib.SMTP(V4, 25, local_hostname=HELO, timeout=10) as c:
        refused = c.send_message(msg, SENDER, [rcpt])
        need(not refused, refused)
    # wait until it is in the maildir
    root = os.environ.get("MAILDIR_ROOT")
    if root:
        user = rcpt.split("@")[0]
        for _ in range(100):
            for d in ("new", "cur"):
                for fn in os.listdir(os.path.join(root, user, d)):
                    if msgid.encode() in open(os.path.join(root, user, d, fn), "rb").read():
                        return
            time.sleep(0.05)
        raise ScenarioError(f"seed message {msgid} was not delivered")


def seed(user, n):
    for i in range(1, n + 1):
        deliver_plain(f"{user}@example.test", f"mailtap seed {i} for {user}",
                      f"<seed.{user}.{i}@client.example.test>")


SCENARIOS = [
    ("smtp/delivered", sc_smtp_delivered),
    ("smtp/rcpt-unknown", sc_smtp_rcpt_unknown),
    ("smtp/partial", sc_smtp_partial),
    ("smtp/relay-denied", sc_smtp_relay_denied),
    ("smtp/auth-failed", sc_smtp_auth_failed),
    ("smtp/auth-ok-plain", sc_smtp_auth_ok_plain),
    ("smtp/pipelining", sc_smtp_pipelining),
    ("smtp/multi-message", sc_smtp_multi_message),
    ("smtp/starttls", sc_smtp_starttls),
    ("smtp/refused", sc_smtp_refused),
    ("smtp/silent-server", sc_smtp_silent_server),
    ("smtp/ipv6-delivered", sc_smtp_ipv6_delivered),
    ("smtp/big-message", sc_smtp_big_message),
    ("smtp/escape-sequences", sc_smtp_escape_sequences),
    ("pop3/login-ok", sc_pop3_login_ok),
    ("pop3/auth-failed", sc_pop3_auth_failed),
    ("pop3/auth-plain", sc_pop3_auth_plain),
    ("pop3/stls", sc_pop3_stls),
    ("pop3/login-disabled", sc_pop3_login_disabled),
    ("imap/login-ok", sc_imap_login_ok),
    ("imap/auth-failed", sc_imap_auth_failed),
    ("imap/authenticate-plain", sc_imap_authenticate_plain),
    ("imap/append", sc_imap_append),
    ("imap/idle", sc_imap_idle),
    ("imap/starttls", sc_imap_starttls),
    ("imap/login-disabled", sc_imap_login_disabled),
    ("dns/mx-delivered", sc_dns_good),
    ("dns/mx-nxdomain", sc_dns_nxdomain),
    ("dns/mx-servfail", sc_dns_servfail),
    ("dns/mx-timeout", sc_dns_timeout),
    ("dns/mx-nodata", sc_dns_nodata),
    ("tls/starttls-expired", sc_tls_starttls_expired),
    ("tls/smtps-expired", sc_tls_smtps_expired),
    ("tls/version-mismatch", sc_tls_version_mismatch),
    ("tls/cipher-mismatch", sc_tls_cipher_mismatch),
    ("relay/two-hops", sc_relay_two_hops),
    ("relay/deliver-retrieve", sc_relay_deliver_retrieve),
]
NEEDS_ALIAS = {"pop3/login-disabled", "imap/login-disabled"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--serve", choices=["dns", "sink"],
                    help="run a helper server of the namespace rig (record.sh 2b)")
    ap.add_argument("--log")
    ap.add_argument("only", nargs="*")
    a = ap.parse_args()
    if a.serve:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        (serve_dns if a.serve == "dns" else serve_sink)(a.log)
        return
    need(a.out, "--out is required")
    alias = os.environ.get("MAILTAP_LOOPBACK_ALIAS")
    if alias:
        need(alias.startswith("127.") and alias != V4, "alias must be in 127/8")
    chosen = [(n, f) for n, f in SCENARIOS if not a.only or n in a.only]
    need(chosen, f"no such scenario; known: {[n for n, _ in SCENARIOS]}")
    # mailboxes used by the retrieval scenarios get fresh seed mail
    if any(n.startswith("pop3/") for n, _ in chosen):
        seed("carol", 2)
    if any(n.startswith("imap/") for n, _ in chosen):
        seed("dave", 2)
    failed, skipped = [], []
    for n, f in chosen:
        if n in NEEDS_ALIAS and not alias:
            skipped.append(n)
            log(f"SKIP {n} (needs MAILTAP_LOOPBACK_ALIAS, see README)")
            continue
        log(f"recording {n}")
        try:
            f(a.out)
        except Exception as e:  # noqa: BLE001 - report and go on, fail at the end
            failed.append(n)
            log(f"FAILED {n}: {type(e).__name__}: {e}")
    log(f"{len(chosen) - len(failed) - len(skipped)} recorded, {len(failed)} failed, "
        f"{len(skipped)} skipped")
    if failed:
        log("failed: " + " ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
