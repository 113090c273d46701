#!/usr/bin/env python3
"""sensor_suite.py — mailtap as an unattended sensor (`mailtap capture`, `mailtap stats`).

Live tests run inside a network namespace this suite creates, on a dummy interface of its
own (one end of a veth pair whose other end is in the namespace too): frames of recorded
captures are written to it with an AF_PACKET socket and the capture sees them as outgoing
traffic, so nothing ever leaves the namespace. Checks: signals (SIGTERM loses nothing decoded, SIGHUP reopens a
rotated database), privilege drop (root becomes nobody, files 0600 and the user's), the
interface vanishing and coming back, link down/up logged, capture statistics and health in
`mailtap stats`, and offline: one-sided and lossy captures give health flags, never false
server failures; retention (--keep-days, --max-db-mb).

usage: tests/sensor_suite.py [--mailtap ./mailtap] [-v]      (root needed for live tests)
"""
import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcaplib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PCAPS = os.path.join(ROOT, "pcaps")


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def run(cmd, check=True, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    if check and proc.returncode != 0:
        raise Failure("%s failed (rc %d): %s" % (" ".join(cmd), proc.returncode, proc.stderr[-800:]))
    return proc


class Namespace:
    """A network namespace with one dummy interface, removed on exit."""

    def __init__(self, tag):
        self.name = "mtsensor%d%s" % (os.getpid(), tag)
        self.iface = "mtd0"

    def __enter__(self):
        if os.geteuid() != 0:
            raise Skip("needs root (network namespace, capture)")
        proc = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True)
        if proc.returncode != 0:
            raise Skip("network namespaces not permitted here: %s" % proc.stderr.strip())
        try:
            self.add_iface()
        except BaseException:
            self.__exit__()
            raise
        return self

    def add_iface(self):
        # A veth pair with both ends in the namespace (the dummy driver is not in every
        # kernel): frames written to mtd0 arrive on mtd1; the capture sees them leave mtd0.
        self.ip("link", "add", self.iface, "type", "veth", "peer", "name", "mtd1")
        self.ip("link", "set", "mtd1", "up")
        self.ip("link", "set", self.iface, "up")

    def ip(self, *args):
        return run(["ip", "-n", self.name] + list(args))

    def exec_args(self, cmd):
        return ["ip", "netns", "exec", self.name] + cmd

    def send(self, pcap_path, pace=0.0):
        """Writes the frames of a (EN10MB) capture to the dummy interface, in order."""
        linktype, packets = pcaplib.read_pcap(pcap_path)
        if linktype != pcaplib.DLT_EN10MB:
            raise Failure("%s: link type %d, need Ethernet" % (pcap_path, linktype))
        frames = b"".join(struct.pack("<I", len(f)) + f for _, _, f in packets)
        script = ("import socket,struct,sys,time\n"
                  "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n"
                  "s.bind((%r,0))\n"
                  "d=sys.stdin.buffer.read();i=0\n"
                  "while i<len(d):\n"
                  " n=struct.unpack('<I',d[i:i+4])[0];s.send(d[i+4:i+4+n]);i+=4+n\n"
                  " time.sleep(%r)\n" % (self.iface, pace))
        proc = subprocess.run(self.exec_args([sys.executable, "-c", script]), input=frames,
                              capture_output=True, timeout=60)
        if proc.returncode != 0:
            raise Failure("sending frames failed: %s" % proc.stderr.decode(errors="replace")[-500:])
        return len(packets)

    def __exit__(self, *exc):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


class Capture:
    """`mailtap capture` running in the namespace; stderr collected in a file."""

    def __init__(self, suite, ns, db, extra=()):
        self.log_path = db + ".stderr"
        self.log = open(self.log_path, "w")
        cmd = [suite.mailtap, "capture", "-i", ns.iface, "-d", db, "--stats-interval", "1"] + list(extra)
        self.proc = subprocess.Popen(ns.exec_args(cmd), stderr=self.log, stdout=subprocess.DEVNULL)
        self.wait_for("capturing on")

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_for(self, needle, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.text():
                return
            if self.proc.poll() is not None:
                raise Failure("mailtap exited (rc %s) before %r: %s" % (self.proc.returncode, needle, self.text()))
            time.sleep(0.1)
        raise Failure("no %r from mailtap within %d s: %s" % (needle, timeout, self.text()))

    def pid(self):
        """mailtap's own pid (under `ip netns exec`, which execs it: the same process)."""
        return self.proc.pid

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Failure("mailtap did not stop on signal %d" % sig)
        self.log.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def sessions(suite, db, *extra):
    proc = run([suite.mailtap, "list", "-d", db, "--json", "--oldest-first"] + list(extra))
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def wait_sessions(suite, db, count, timeout=15):
    deadline = time.time() + timeout
    got = []
    while time.time() < deadline:
        try:
            got = sessions(suite, db)
        except Failure:
            got = []
        if len(got) >= count:
            return got
        time.sleep(0.2)
    raise Failure("expected %d sessions in %s, have %d" % (count, db, len(got)))


def smtp_capture(name):
    return os.path.join(PCAPS, "smtp", name + ".pcap")


# ---- live -----------------------------------------------------------------------------

def test_signals_drop_and_rotation(suite):
    """Root drops to nobody (files 0600, owned by nobody); SIGHUP after a move writes a new
    database and leaves the moved one complete; SIGTERM loses nothing decoded."""
    with Namespace("a") as ns:
        work = tempfile.mkdtemp(dir=suite.tmp)
        os.chmod(work, 0o777)   # nobody must be able to create the new database on SIGHUP
        db = os.path.join(work, "live.db")
        cap = Capture(suite, ns, db, ["--port", "smtp:25"])
        try:
            cap.wait_for("running as nobody")
            status = open("/proc/%d/status" % cap.pid()).read()
            uid_line = [line for line in status.splitlines() if line.startswith("Uid:")][0]
            if uid_line.split()[1:] != ["65534"] * 4:
                raise Failure("not running as nobody after the drop: %s" % uid_line)
            st = os.stat(db)
            if st.st_uid != 65534 or st.st_mode & 0o777 != 0o600:
                raise Failure("database owner %d mode %o, want nobody and 0600" % (st.st_uid, st.st_mode & 0o777))
            ns.send(smtp_capture("delivered"))
            wait_sessions(suite, db, 1)
            # A second sensor on the same database would store every session twice.
            second = run(ns.exec_args([suite.mailtap, "capture", "-i", ns.iface, "-d", db]),
                         check=False)
            if second.returncode != 3 or "another `mailtap capture` is storing" not in second.stderr:
                raise Failure("a second sensor on one database: rc %d, %r"
                              % (second.returncode, second.stderr[-300:]))
            os.rename(db, db + ".1")
            cap.proc.send_signal(signal.SIGHUP)
            cap.wait_for("database reopened")
            ns.send(smtp_capture("rcpt-unknown"))
            ns.send(smtp_capture("auth-failed"))
            # Stopped right after the traffic: the ring's last block, which the kernel
            # hands over only after the read timeout, is still read (it was lost).
            time.sleep(0.02)
            rc = cap.stop()
        finally:
            cap.kill()
        if rc != 0:
            raise Failure("exit status %d after SIGTERM: %s" % (rc, cap.text()))
        old = [s["status"] for s in sessions(suite, db + ".1")]
        new = [s["status"] for s in sessions(suite, db)]
        if old != ["delivered"]:
            raise Failure("rotated database holds %r, want the first session" % old)
        if sorted(new) != ["auth_failed", "rcpt_rejected"]:
            raise Failure("new database holds %r after SIGHUP and SIGTERM" % new)
        for path in (db, db + ".1"):
            con = sqlite3.connect(path)
            if con.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise Failure("%s fails integrity_check" % path)
            con.close()


def test_database_kept_alive(suite):
    """A sensor keeps its database alive on its own: after a full disk is freed it stores
    again (it stopped for good), and a database file deleted under it is made again at its
    path (it wrote on into the deleted file, unseen)."""
    with Namespace("k") as ns:
        work = tempfile.mkdtemp(dir=suite.tmp)
        os.chmod(work, 0o755)   # nobody reaches the database below
        disk = os.path.join(work, "disk")
        os.makedirs(disk)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", disk],
                          capture_output=True).returncode != 0:
            raise Skip("cannot mount a tmpfs")
        cap = None
        try:
            os.chown(disk, 65534, 65534)
            db = os.path.join(disk, "s.db")
            cap = Capture(suite, ns, db, ["--port", "smtp:25"])
            ns.send(smtp_capture("delivered"))
            wait_sessions(suite, db, 1)
            filler = os.path.join(disk, "filler")
            # unbuffered: a buffered file's close() flushes the piece a partial write
            # left behind, and raises ENOSPC out of the with statement
            with open(filler, "wb", buffering=0) as f:
                try:
                    while f.write(b"\0" * 65536):
                        pass
                except OSError:
                    pass
            for _ in range(40):
                ns.send(smtp_capture("auth-failed"))
                if "disk full" in cap.text():
                    break
            cap.wait_for("disk full", timeout=20)
            os.unlink(filler)
            cap.wait_for("storing resumes", timeout=30)
            before = len(sessions(suite, db))
            ns.send(smtp_capture("rcpt-unknown"))
            wait_sessions(suite, db, before + 1)
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(db + suffix):
                    os.unlink(db + suffix)
            cap.wait_for("deleted or replaced", timeout=30)
            ns.send(smtp_capture("delivered"))
            got = wait_sessions(suite, db, 1)
            rc = cap.stop()
            if rc == 0:   # sessions were lost to the full disk: the exit status says so
                raise Failure("exit status 0 after a database error: %s" % cap.text()[-800:])
            if [s["status"] for s in sessions(suite, db)] != ["delivered"] or not got:
                raise Failure("the database made again holds %r" % [s["status"] for s in got])
        finally:
            if cap:
                cap.kill()
            subprocess.run(["umount", disk], capture_output=True)


def test_interface_comes_back(suite):
    """The link going down and up is logged; the interface vanishing is survived (as
    nobody, with CAP_NET_RAW kept) and capture goes on when it is back."""
    with Namespace("b") as ns:
        db = os.path.join(suite.tmp, "iface.db")
        cap = Capture(suite, ns, db)
        try:
            cap.wait_for("running as nobody")
            ns.send(smtp_capture("delivered"))
            wait_sessions(suite, db, 1)
            ns.ip("link", "set", ns.iface, "down")
            cap.wait_for("link is down")
            # ... and `stats` says so meanwhile (its health read "ok")
            deadline = time.time() + 10
            while "the link is down" not in run([suite.mailtap, "stats", "-d", db]).stdout:
                if time.time() > deadline:
                    raise Failure("stats during a link down: %s"
                                  % run([suite.mailtap, "stats", "-d", db]).stdout)
                time.sleep(0.3)
            ns.ip("link", "set", ns.iface, "up")
            cap.wait_for("link is up again")
            ns.ip("link", "del", ns.iface)
            cap.wait_for("capture failed")
            ns.add_iface()
            cap.wait_for("interface is back")
            ns.send(smtp_capture("rcpt-unknown"))
            wait_sessions(suite, db, 2)
            rc = cap.stop(signal.SIGINT)
        finally:
            cap.kill()
        # The vanished interface is counted as an input error: exit 1, the rest kept.
        if rc not in (0, 1):
            raise Failure("exit status %d: %s" % (rc, cap.text()))
        statuses = [s["status"] for s in sessions(suite, db)]
        if statuses != ["delivered", "rcpt_rejected"]:
            raise Failure("sessions %r, want one before and one after the interface came back" % statuses)


def test_stats_command(suite):
    """`mailtap stats` shows the live run's packets, drops, streams, sessions and health."""
    with Namespace("c") as ns:
        db = os.path.join(suite.tmp, "stats.db")
        cap = Capture(suite, ns, db, ["-Z", "root"])
        try:
            sent = ns.send(smtp_capture("delivered")) + ns.send(smtp_capture("multi-message"))
            wait_sessions(suite, db, 2)
            time.sleep(1.5)   # one more statistics row after the sessions
            rc = cap.stop()
        finally:
            cap.kill()
        if rc != 0:
            raise Failure("exit status %d: %s" % (rc, cap.text()))
    rows = [json.loads(line) for line in run([suite.mailtap, "stats", "-d", db, "--json"]).stdout.splitlines()]
    if len(rows) != 1:
        raise Failure("stats: %r" % rows)
    row = rows[0]
    if row["source"] != "mtd0" or row["packets"] != sent or row["sessions"] != 2:
        raise Failure("stats: %r (sent %d packets, 2 sessions)" % (row, sent))
    if row["kernel_drops"] != 0 or row["health"] != "ok":
        raise Failure("stats: drops or health warnings on a clean capture: %r" % row)
    text = run([suite.mailtap, "stats", "-d", db]).stdout
    for needle in ("Source        mtd0", "Packets       %d" % sent, "Health        ok"):
        if needle not in text:
            raise Failure("stats text lacks %r:\n%s" % (needle, text))


def test_workers(suite):
    """--workers 2: two processes share the interface (PACKET_FANOUT hash by flow): every
    session decoded once, each connection whole, one database."""
    with Namespace("d") as ns:
        db = os.path.join(suite.tmp, "workers.db")
        log = open(db + ".stderr", "w")
        proc = subprocess.Popen(ns.exec_args([suite.mailtap, "capture", "-i", ns.iface, "-d", db,
                                              "--workers", "2", "-Z", "root", "--stats-interval", "1"]),
                                stderr=log)
        try:
            deadline = time.time() + 30   # both workers must have joined the group
            while len(re.findall(r"worker \d+ capturing on", open(db + ".stderr").read())) < 2:
                if time.time() > deadline or proc.poll() is not None:
                    raise Failure("workers did not start: %s" % open(db + ".stderr").read())
                time.sleep(0.1)
            names = ["delivered", "rcpt-unknown", "auth-failed", "multi-message", "pipelining", "relay-denied"]
            for name in names:
                ns.send(smtp_capture(name))
            got = wait_sessions(suite, db, len(names))
            time.sleep(1.0)
            # A worker that dies is said at once (the others carry its flows): it was silent.
            children = run(["pgrep", "-P", str(proc.pid)], check=False).stdout.split()
            if len(children) != 2:
                raise Failure("expected 2 worker processes, found %r" % children)
            os.kill(int(children[0]), signal.SIGKILL)
            deadline = time.time() + 10
            while "was killed by signal 9; 1 worker left" not in open(db + ".stderr").read():
                if time.time() > deadline:
                    raise Failure("a killed worker is not reported: %s" % open(db + ".stderr").read())
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
        text = open(db + ".stderr").read()
        if rc != 1:   # a worker was lost: the exit status says so
            raise Failure("exit status %d after a worker was killed: %s" % (rc, text))
        if text.count("worker left") + text.count("workers left") != 1:
            raise Failure("the stop itself is reported as workers ending: %s" % text)
        want = sorted(s["status"] for s in sessions(suite, suite_read(suite, *[smtp_capture(n) for n in names])))
        got = sorted(s["status"] for s in sessions(suite, db))
        if got != want:
            raise Failure("workers decoded %r, offline %r" % (got, want))
        rows = {r["source"]: r for r in map(json.loads, run([suite.mailtap, "stats", "-d", db, "--json"]).stdout.splitlines())}
        if set(rows) != {"mtd0#1", "mtd0#2", "mtd0 (2 workers together)"}:
            raise Failure("stats sources %r, want both workers and their sum" % sorted(rows))
        total = rows["mtd0 (2 workers together)"]
        if total["packets"] != rows["mtd0#1"]["packets"] + rows["mtd0#2"]["packets"]:
            raise Failure("the workers' sum %r" % rows)


# ---- offline: capture health and retention ---------------------------------------------

def shifted(packets, seconds):
    return [(sec + seconds, usec, frame) for sec, usec, frame in packets]


def tcp_ports(frame):
    ip = pcaplib.ip_payload(pcaplib.DLT_EN10MB, frame)
    if not ip or ip[0] >> 4 != 4 or ip[9] != 6:
        return None
    header = (ip[0] & 15) * 4
    sport, dport = struct.unpack(">HH", ip[header:header + 4])
    payload_len = len(ip) - header - (ip[header + 12] >> 4) * 4
    return sport, dport, payload_len


def test_one_sided_capture(suite):
    """Only client-to-server packets on port 25 for over a minute: sessions are
    `incomplete` with the mirror-port hint (never no_response), and the sensor's health
    says so in `mailtap stats`."""
    packets = []
    names = ["delivered", "rcpt-unknown", "multi-message", "pipelining", "relay-denied"]
    for i, name in enumerate(names):
        _, pk = pcaplib.read_pcap(smtp_capture(name))
        base = pk[0][0]
        packets += shifted([p for p in pk if tcp_ports(p[2]) and tcp_ports(p[2])[1] == 25], 5 * i - base + 1700000000)
    # an ARP frame 2 minutes later closes the health window (not IP: no session)
    arp = b"\xff" * 6 + b"\x02" + b"\0" * 5 + b"\x08\x06" + b"\0" * 28
    packets.append((1700000000 + 130, 0, arp))
    path = os.path.join(suite.tmp, "one-sided.pcap")
    pcaplib.write_pcap(path, pcaplib.DLT_EN10MB, sorted(packets, key=lambda p: (p[0], p[1])))
    db = os.path.join(suite.tmp, "one-sided.db")
    run([suite.mailtap, "read", "-q", "-d", db, path])
    got = sessions(suite, db)
    if len(got) != len(names) or any(s["status"] != "incomplete" for s in got):
        raise Failure("one-sided sessions: %r" % [(s["status"], s["status_line"]) for s in got])
    if not all("mirror port" in s["status_line"] for s in got):
        raise Failure("no mirror-port hint: %r" % [s["status_line"] for s in got])
    stats = [json.loads(line) for line in run([suite.mailtap, "stats", "-d", db, "--json"]).stdout.splitlines()]
    if not stats or "only client-to-server traffic on port 25" not in stats[0]["health"]:
        raise Failure("health does not name the one-sided port: %r" % stats)


def test_lossy_capture(suite):
    """A lost server segment (the greeting): libnids never fills the hole, so the session
    is flagged capture_gap and `incomplete`, not no_response; the health says so."""
    _, pk = pcaplib.read_pcap(smtp_capture("delivered"))
    kept, dropped = [], False
    for p in pk:
        ports = tcp_ports(p[2])
        if not dropped and ports and ports[0] == 25 and ports[2] > 0:
            dropped = True   # the server's first data segment: "220 ..."
            continue
        kept.append(p)
    if not dropped:
        raise Failure("no server data segment to drop")
    path = os.path.join(suite.tmp, "lossy.pcap")
    pcaplib.write_pcap(path, pcaplib.DLT_EN10MB, kept)
    db = os.path.join(suite.tmp, "lossy.db")
    proc = run([suite.mailtap, "read", "-d", db, path])
    got = sessions(suite, db)
    if len(got) != 1:
        raise Failure("lossy capture: %d sessions" % len(got))
    s = got[0]
    if s["status"] != "incomplete" or "capture_gap" not in s.get("flags", []):
        raise Failure("lossy session: status %s flags %r line %r" % (s["status"], s.get("flags"), s["status_line"]))
    if "capture lost packets" not in s["status_line"]:
        raise Failure("status line does not blame the capture: %r" % s["status_line"])
    if "lost packets in the capture" not in proc.stdout:
        raise Failure("summary does not count the gap: %r" % proc.stdout)
    # the same capture without the loss decodes as delivered: the flag is the loss's
    if sessions(suite, suite_read(suite, smtp_capture("delivered")))[0]["status"] != "delivered":
        raise Failure("the intact capture is not delivered")


def suite_read(suite, *paths):
    db = tempfile.mktemp(suffix=".db", dir=suite.tmp)
    run([suite.mailtap, "read", "-q", "-d", db] + list(paths))
    return db


def test_retention(suite):
    """--keep-days prunes by capture time while reading; --max-db-mb keeps the file under
    its limit, the newest sessions kept."""
    _, pk = pcaplib.read_pcap(smtp_capture("delivered"))
    base = pk[0][0]
    packets = []
    for day in range(5):   # one session a day, the last one today
        packets += shifted(pk, day * 86400 - base + 1700000000)
    path = os.path.join(suite.tmp, "days.pcap")
    pcaplib.write_pcap(path, pcaplib.DLT_EN10MB, packets)
    db = os.path.join(suite.tmp, "days.db")
    proc = run([suite.mailtap, "read", "-d", db, "--keep-days", "2", path])
    days = sorted((s["start"][:10]) for s in sessions(suite, db))
    if len(days) != 3:
        raise Failure("--keep-days 2 left %r (want the last 3 days: the window is 2 x 24 h "
                      "before the newest packet)" % days)
    if "old rows pruned" not in proc.stdout:
        raise Failure("summary does not say sessions were pruned: %r" % proc.stdout)
    many = []
    _, bp = pcaplib.read_pcap(smtp_capture("multi-message"))
    b0 = bp[0][0]
    for i in range(400):
        many += shifted(bp, i * 2 - b0 + 1700000000)
    path = os.path.join(suite.tmp, "many.pcap")
    pcaplib.write_pcap(path, pcaplib.DLT_EN10MB, many)
    db = os.path.join(suite.tmp, "many.db")
    run([suite.mailtap, "read", "-q", "-d", db, "--max-db-mb", "1", path])
    size = os.path.getsize(db) + (os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0)
    left = sessions(suite, db)
    if size > 1024 * 1024 * 1.25:
        raise Failure("--max-db-mb 1: database is %d bytes" % size)
    if not 0 < len(left) < 400:
        raise Failure("--max-db-mb 1: %d sessions left of 400" % len(left))
    newest = sessions(suite, suite_read(suite, path))[-1]["start"]
    if left[-1]["start"] != newest:
        raise Failure("the newest session was not kept: %r, want %r" % (left[-1]["start"], newest))


TESTS = [test_signals_drop_and_rotation, test_database_kept_alive, test_interface_comes_back,
         test_stats_command,
         test_workers, test_one_sided_capture, test_lossy_capture, test_retention]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailtap", default=os.path.join(ROOT, "mailtap"))
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    class Suite:
        pass
    suite = Suite()
    suite.mailtap = os.path.abspath(args.mailtap)
    suite.tmp = tempfile.mkdtemp(prefix="mailtap-sensor-")
    os.chmod(suite.tmp, 0o755)
    passed = failed = skipped = 0
    try:
        for test in TESTS:
            name = test.__name__[5:]
            start = time.time()
            try:
                test(suite)
                passed += 1
                print("ok   %s (%.1f s)" % (name, time.time() - start))
            except Skip as why:
                skipped += 1
                print("SKIP %s: %s" % (name, why))
            except Failure as why:
                failed += 1
                print("FAIL %s: %s" % (name, why))
            sys.stdout.flush()
    finally:
        shutil.rmtree(suite.tmp, ignore_errors=True)
    print("sensor: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
