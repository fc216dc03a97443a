"""
nsd_fixture.py - a private authoritative DNS server (NSD) serving test zones
on 127.0.0.1, for tests that need real MX / A / AAAA answers.

Owns: a working directory with nsd.conf, one zone file per zone, NSD's
state files and log; the nsd process, run in the foreground (`nsd -d`)
without chroot or privilege drop, on a UDP+TCP port of 127.0.0.1 chosen
free (or given). Stdlib only; needs the Debian package nsd, nothing else
(no dig: readiness is checked with a DNS query built here, RFC 1035 4.1).
The system's own nsd service, if any, is never touched.

    from nsd_fixture import NsdServer
    zones = {"example.test": '''
    $TTL 5
    @   SOA ns hostmaster 1 3600 600 86400 5
    @   NS  ns
    ns  A   127.0.0.1
    @   MX  10 mx
    mx  A   127.0.0.2
    '''}
    with NsdServer(workdir, zones) as ns:
        ns.address            # "127.0.0.1:PORT", what transit's dns servers take
        ns.query("example.test", "MX")   # -> (rcode, [(name, type, value), ...])

Each zone text gets "$ORIGIN <zone>." prepended when it has none. Keep TTLs
short: a resolver caches answers across a restart with new zones.
Everything is bounded in time: start() waits at most start_timeout, stop()
sends SIGTERM then SIGKILL after stop_timeout. Only 127.0.0.1 is used.
"""

import os
import random
import signal
import socket
import struct
import subprocess
import time

NSD = "/usr/sbin/nsd"
NSD_CHECKCONF = "/usr/sbin/nsd-checkconf"
NSD_CHECKZONE = "/usr/sbin/nsd-checkzone"
HOST = "127.0.0.1"

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28}
QTYPE_NAMES = {v: k for k, v in QTYPES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


class NsdError(Exception):
    """nsd could not be configured or started; the message says why."""


def nsd_available():
    return all(os.access(p, os.X_OK) for p in (NSD, NSD_CHECKCONF, NSD_CHECKZONE))


def free_port():
    """A port free on 127.0.0.1 for both UDP and TCP right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((HOST, 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((HOST, port))
                except OSError:
                    continue
            return port
    raise NsdError("no free port on 127.0.0.1")


# ---- a tiny DNS client (RFC 1035 4.1), enough for tests ----

def _encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("ascii")
            if len(raw) > 63:
                raise ValueError("label too long: %r" % label)
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def _decode_name(msg, off):
    """(name, offset after the name in place); follows compression pointers."""
    labels, end, hops = [], None, 0
    while True:
        if off >= len(msg):
            raise ValueError("name runs past the message")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg) or hops > 64:
                raise ValueError("bad compression pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            hops += 1
            continue
        if n == 0:
            off += 1
            break
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    return ".".join(labels).lower(), (end if end is not None else off)


def _rdata_value(msg, rtype, off, rdlen):
    rdata = msg[off:off + rdlen]
    if rtype == 1 and rdlen == 4:
        return socket.inet_ntop(socket.AF_INET, rdata)
    if rtype == 28 and rdlen == 16:
        return socket.inet_ntop(socket.AF_INET6, rdata)
    if rtype == 15 and rdlen >= 3:
        return (struct.unpack("!H", rdata[:2])[0], _decode_name(msg, off + 2)[0])
    if rtype in (2, 5):
        return _decode_name(msg, off)[0]
    return rdata


def dns_query(server, port, name, qtype="A", timeout=1.0):
    """One UDP query. Returns (rcode name, flags, [(owner, type name, value)])."""
    qid = random.randrange(0, 0x10000)
    code = QTYPES[qtype] if isinstance(qtype, str) else int(qtype)
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _encode_name(name) + \
        struct.pack("!HH", code, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(query, (server, port))
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            msg = s.recv(65535)     # socket.timeout when nothing comes
            if len(msg) >= 12 and struct.unpack("!H", msg[:2])[0] == qid:
                break
    _, flags, qd, an, _, _ = struct.unpack("!HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        off = _decode_name(msg, off)[1] + 4
    answers = []
    for _ in range(an):
        owner, off = _decode_name(msg, off)
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        answers.append((owner, QTYPE_NAMES.get(rtype, str(rtype)),
                        _rdata_value(msg, rtype, off, rdlen)))
        off += rdlen
    return RCODES.get(flags & 0xF, str(flags & 0xF)), flags, answers


# ---- the server ----

class NsdServer:
    """A private nsd on 127.0.0.1:port serving zones {name: zone file text}."""

    def __init__(self, workdir, zones, port=None, start_timeout=10.0, stop_timeout=5.0):
        if not zones:
            raise ValueError("at least one zone is needed")
        self.workdir = os.path.abspath(workdir)
        self.zones = {z.rstrip(".").lower(): text for z, text in zones.items()}
        self.port = port
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.proc = None
        self.conf = os.path.join(self.workdir, "nsd.conf")
        self.log = os.path.join(self.workdir, "nsd.log")

    @property
    def address(self):
        """"127.0.0.1:PORT": the form dns_new() and transit's configuration take."""
        return "%s:%d" % (HOST, self.port)

    def _zone_file(self, zone):
        return os.path.join(self.workdir, zone + ".zone")

    def _write(self):
        os.makedirs(self.workdir, exist_ok=True)
        for zone, text in self.zones.items():
            if "$ORIGIN" not in text:
                text = "$ORIGIN %s.\n%s" % (zone, text)
            if not text.endswith("\n"):
                text += "\n"
            with open(self._zone_file(zone), "w") as f:
                f.write(text)
        w = self.workdir
        lines = [
            "server:",
            "  ip-address: %s@%d" % (HOST, self.port),
            "  port: %d" % self.port,
            "  do-ip6: no",
            "  reuseport: no",
            "  server-count: 1",
            '  username: ""',          # stay who we are: no privilege drop
            '  chroot: ""',
            '  database: ""',          # zones kept in memory only
            '  zonesdir: "%s"' % w,
            '  zonelistfile: "%s/zone.list"' % w,
            '  xfrdfile: "%s/xfrd.state"' % w,
            '  xfrdir: "%s"' % w,
            '  pidfile: "%s/nsd.pid"' % w,
            '  logfile: "%s"' % self.log,
            "  xfrd-reload-timeout: 1",
            "  verbosity: 1",
            "remote-control:",
            "  control-enable: no",
        ]
        for zone in self.zones:
            lines += ["zone:", '  name: "%s"' % zone, '  zonefile: "%s"' % self._zone_file(zone)]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _check(self):
        def run(cmd):
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=30)
            if r.returncode != 0:
                raise NsdError("%s failed:\n%s" % (" ".join(cmd), r.stdout))
        run([NSD_CHECKCONF, self.conf])
        for zone in self.zones:
            run([NSD_CHECKZONE, zone, self._zone_file(zone)])

    def _answers(self):
        zone = next(iter(self.zones))
        try:
            rcode, flags, _ = dns_query(HOST, self.port, zone, "SOA", timeout=0.2)
        except (socket.timeout, OSError):
            return False
        return rcode == "NOERROR" and bool(flags & 0x0400)   # AA: the zone is loaded

    def _log_tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return "(no log)"

    def start(self):
        if not nsd_available():
            raise NsdError("nsd is not installed (Debian package nsd)")
        fixed = self.port is not None
        for _ in range(1 if fixed else 5):
            if not fixed:
                self.port = free_port()
            self._write()
            self._check()
            if self._spawn():
                return self
        raise NsdError("nsd did not answer on %s:\n%s" % (self.address, self._log_tail()))

    def _spawn(self):
        out = open(os.path.join(self.workdir, "nsd.out"), "ab")
        try:
            self.proc = subprocess.Popen([NSD, "-d", "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)
        finally:
            out.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._answers():
                return True
            if self.proc.poll() is not None:      # exited: port taken, bad zone...
                self.proc = None
                return False
            time.sleep(0.05)
        self.stop()
        return False

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(self.stop_timeout)
        self.proc = None

    def restart(self, zones=None):
        """Serve new zones (same port): stop, rewrite, start."""
        self.stop()
        if zones is not None:
            self.zones = {z.rstrip(".").lower(): text for z, text in zones.items()}
        return self.start()

    def query(self, name, qtype="A", timeout=1.0):
        """(rcode, [(owner, type, value)]) from this server."""
        rcode, _, answers = dns_query(HOST, self.port, name, qtype, timeout)
        return rcode, answers

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
