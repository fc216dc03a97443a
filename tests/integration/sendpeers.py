"""
sendpeers.py - real peers for the SEND path tests (test_send.py): a private
authoritative DNS server, SMTP receivers, a second transitd, and the
helpers that read what they got.

Owns:
  - the test zones (TEST_ZONES) and start_dns(), which serves them with
    tests/dns/nsd_fixture.py (a private nsd on 127.0.0.1:PORT). nsd is
    authoritative only; transitd forwards every query to it (`dns { servers
    = { "127.0.0.1:PORT" } }`), so every name a test routes to must live in
    one of these zones (a name outside them is REFUSED by nsd, which the
    resolver reads as a temporary failure).
  - Sink: Postfix smtp-sink(1) on 127.0.0.x:PORT with -d (one dump file per
    transaction: X-Client-Addr, X-Helo-Args, X-Mail-Args, X-Rcpt-Args, then
    the message) and -c (session/message counters on stdout); optionally
    run under strace(1) so a test can see how the client's commands
    arrived (RFC 2920 pipelining: several commands in one read()).
  - ReceiverTransit: a second transitd bound to 127.0.0.x:PORT with its own
    authoritative domain, Maildir and users; it logs
    "smtp connect address=<client ip>" per connection.
  - the sending transitd's configuration with send connectors, queue, dns
    and dsn sections (rendered by conftest.render_config), a relay
    client bound to RELAY_SOURCE_IP (the only address the "relay" receive
    connector serves), log waiting, and DSN parsing with Python's email
    package (RFC 3464 / RFC 6522).

Every wait is bounded; every process started here is stopped by its PID.
Addresses: 127.0.0.1 is the sending transitd (its listener: an MX that
points there is a loop); the peers use 127.0.0.2 and up (Linux routes the
whole of 127/8 to lo, so they need no setup).
"""

import contextlib
import email
import email.policy
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dns"))
import conftest  # noqa: E402
import harness  # noqa: E402
import nsd_fixture  # noqa: E402  (tests/dns: the shared private-nsd helper)

HAVE_NSD = nsd_fixture.nsd_available()

HOST = conftest.HOST
SMTP_SINK = "/usr/sbin/smtp-sink" if os.access("/usr/sbin/smtp-sink", os.X_OK) \
    else shutil.which("smtp-sink")
STRACE = shutil.which("strace")
OPENSSL = shutil.which("openssl")
IS_ROOT = os.geteuid() == 0

RELAY_SOURCE_IP = "127.0.0.10"      # the client address the "relay" receive connector serves
OUT_SOURCE_IP = "127.0.0.9"         # source-ip of the send connector in the source-ip test

# Peer addresses (the A records of TEST_ZONES).
IP_MX1 = "127.0.0.2"        # mx1.example.net (pref 10); other.test and partner.test MX here too
IP_MX2 = "127.0.0.3"        # mx2.example.net (pref 20)
IP_EQA = "127.0.0.4"        # eqa.example.net: *.eq.test MX 10
IP_EQB = "127.0.0.5"        # eqb.example.net: *.eq.test MX 10
IP_NOMX = "127.0.0.6"       # nomx.test: A only, no MX
IP_PARTNER1 = "127.0.0.7"   # mx1.partner.test (smart host)
IP_PARTNER2 = "127.0.0.8"   # mx2.partner.test (smart host)
IP_SUB = "127.0.0.11"       # hosts used by the connector-specificity test
IP_EXACT = "127.0.0.12"

SOA = "@ IN SOA ns.{z}. hostmaster.{z}. 1 3600 600 86400 1"
TEST_ZONES = {
    "example.net": [
        "@ IN NS ns", "ns IN A 127.0.0.1",
        "@ IN MX 10 mx1", "@ IN MX 20 mx2",
        "mx1 IN A " + IP_MX1, "mx2 IN A " + IP_MX2,
        "eqa IN A " + IP_EQA, "eqb IN A " + IP_EQB,
        "sub IN A " + IP_SUB, "exact IN A " + IP_EXACT,
        # nosuch.example.net: not here, NXDOMAIN
    ],
    "eq.test": [
        "@ IN NS ns.example.net.",
        "* IN MX 10 eqa.example.net.", "* IN MX 10 eqb.example.net.",
    ],
    "nomx.test": ["@ IN NS ns.example.net.", "@ IN A " + IP_NOMX],
    "v6.test": ["@ IN NS ns.example.net.", "@ IN AAAA ::1"],        # AAAA only, no MX
    "nullmx.test": ["@ IN NS ns.example.net.", "@ IN MX 0 ."],
    "loop.test": ["@ IN NS ns.example.net.", "@ IN MX 10 self", "self IN A 127.0.0.1"],
    "other.test": ["@ IN NS ns.example.net.", "@ IN MX 10 mx1.example.net."],
    "partner.test": [
        "@ IN NS ns.example.net.",
        # if routing ever fell back from the partner connector to "*", DNS
        # would send partner.test mail to mx1.example.net (sink A): visible
        "@ IN MX 10 mx1.example.net.",
        "mx1 IN A " + IP_PARTNER1, "mx2 IN A " + IP_PARTNER2,
    ],
    "sub.test": [
        "@ IN NS ns.example.net.",
        "* IN MX 10 mx1.example.net.", "@ IN MX 10 mx1.example.net.",
    ],
}


def need(tool, name):
    if not tool:
        pytest.skip("%s is not installed on this machine" % name)


# -- processes ----------------------------------------------------------------

def stop_pid(proc, timeout=5.0):
    """SIGTERM the process we started, SIGKILL after timeout. Returns its status."""
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        return proc.wait(5)


def children_of(pid):
    """PIDs whose parent is pid (from /proc)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(name))
    return out


def tcp_listening(ip, port):
    """True when a socket LISTENs on ip:port, from /proc/net/tcp{,6}: no
    connection is made, so no peer counts or logs a probe."""
    if ":" in ip:
        raw = socket.inet_pton(socket.AF_INET6, ip)
        hexip = "".join(raw[i:i + 4][::-1].hex().upper() for i in range(0, 16, 4))
        table = "/proc/net/tcp6"
    else:
        hexip = socket.inet_aton(ip)[::-1].hex().upper()
        table = "/proc/net/tcp"
    want = "%s:%04X" % (hexip, port)
    try:
        with open(table) as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if len(parts) > 3 and parts[1] == want and parts[3] == "0A":
                    return True
    except OSError:
        return False
    return False


# -- DNS ------------------------------------------------------------------------

def zone_text(zone, records):
    lines = ["$ORIGIN %s." % zone, "$TTL 1", SOA.format(z=zone)]
    return "\n".join(lines + list(records)) + "\n"


def start_dns(base, zones=None):
    """The test nameserver: tests/dns/nsd_fixture.py's NsdServer (a private
    nsd on 127.0.0.1:PORT) serving `zones` ({name: [records]}, TEST_ZONES by
    default). Returns the started server (.port, .address, .stop())."""
    zones = zones or TEST_ZONES
    return nsd_fixture.NsdServer(base, {z: zone_text(z, r) for z, r in zones.items()}).start()


# -- smtp-sink ------------------------------------------------------------------------

class SinkMessage:
    """One smtp-sink dump file: the client facts and the message."""

    def __init__(self, path, data):
        self.path = path
        self.data = data
        self.msg = email.message_from_bytes(data, policy=email.policy.compat32)
        self.client_addr = (self.msg.get("X-Client-Addr") or "").strip()
        self.helo = (self.msg.get("X-Helo-Args") or "").strip()
        self.mail_args = (self.msg.get("X-Mail-Args") or "").strip()
        self.rcpt_args = [v.strip() for v in self.msg.get_all("X-Rcpt-Args") or []]

    @property
    def rcpts(self):
        """Recipient addresses (lower case) without the <> and parameters."""
        out = []
        for a in self.rcpt_args:
            m = re.match(r"<([^>]*)>", a)
            out.append((m.group(1) if m else a.split()[0]).lower())
        return out

    @property
    def subject(self):
        return self.msg.get("Subject")

    def __repr__(self):
        return "SinkMessage(%s, %r...)" % (self.path, self.data[:400])


class Sink:
    """smtp-sink on ip:port. opts: extra smtp-sink options (e.g. ["-N"]
    no DSN, ["-p"] no PIPELINING, ["-w", "1"] slow DATA). trace=True runs
    it under strace to record every read() (see reads())."""

    def __init__(self, base, ip, port, opts=(), name=None, trace=False):
        self.ip, self.port = ip, port
        self.name = name or "sink-%s" % ip
        self.dir = os.path.join(base, self.name)
        self.dump = os.path.join(self.dir, "dump")
        os.makedirs(self.dump, exist_ok=True)
        self.opts = list(opts)
        self.trace = trace
        self.out_path = os.path.join(self.dir, "stdout")
        self.strace_path = os.path.join(self.dir, "strace")
        self.proc = None

    def command(self):
        cmd = [SMTP_SINK, "-c", "-h", self.name, "-d", os.path.join(self.dump, "%Y%m%d%H%M%S.")]
        if IS_ROOT:
            cmd += ["-u", "root"]
        where = "[%s]:%d" % (self.ip, self.port) if ":" in self.ip else "%s:%d" % (self.ip, self.port)
        cmd += self.opts + [where, "64"]
        if self.trace:
            cmd = [STRACE, "-f", "-qq", "-e", "trace=read,recvfrom", "-e", "signal=none",
                   "-s", "4096", "-o", self.strace_path] + cmd
        return cmd

    def start(self, timeout=10.0):
        out = open(self.out_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        finally:
            out.close()
        deadline = time.monotonic() + timeout
        while not tcp_listening(self.ip, self.port):
            if self.proc.poll() is not None:
                raise AssertionError("smtp-sink on %s:%d exited (%s): %s" % (
                    self.ip, self.port, self.proc.returncode, self.output()))
            if time.monotonic() > deadline:
                raise AssertionError("smtp-sink on %s:%d does not listen" % (self.ip, self.port))
            time.sleep(0.05)
        return self

    def stop(self):
        if self.proc is None:
            return
        if self.trace and self.proc.poll() is None:
            # stop the traced smtp-sink itself (our strace's only child); strace then exits
            for pid in children_of(self.proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        stop_pid(self.proc)
        self.proc = None

    def output(self):
        with contextlib.suppress(OSError):
            with open(self.out_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        return ""

    def counters(self):
        """The last -c line: {'sess': ended sessions, 'quit': .., 'mesg': messages}."""
        recs = re.findall(r"sess=(\d+) quit=(\d+) mesg=(\d+)", self.output())
        if not recs:
            return {"sess": 0, "quit": 0, "mesg": 0}
        s, q, m = recs[-1]
        return {"sess": int(s), "quit": int(q), "mesg": int(m)}

    def files(self):
        out = []
        for root, _, names in os.walk(self.dump):
            for n in names:
                p = os.path.join(root, n)
                with contextlib.suppress(OSError):
                    out.append((os.stat(p).st_mtime_ns, p))
        return [p for _, p in sorted(out)]

    def messages(self, complete_marker=None):
        """Every dumped transaction (oldest first). With complete_marker
        (bytes), only dumps that contain it (i.e. were written to the end)."""
        out = []
        for p in self.files():
            with contextlib.suppress(OSError):
                with open(p, "rb") as f:
                    data = f.read()
                if complete_marker is None or complete_marker in data:
                    out.append(SinkMessage(p, data))
        return out

    def wait_messages(self, n, timeout=15.0, marker=b"END-OF-TEST-MESSAGE"):
        harness.wait_until(lambda: len(self.messages(marker)) >= n, timeout,
                           what="%d message(s) at %s (have %d)" % (n, self.name,
                                                                  len(self.messages(marker))))
        return self.messages(marker)

    def reads(self):
        """The bytes of each read()/recvfrom() smtp-sink made on a network
        socket (strace -s 4096 output, C escapes decoded)."""
        out = []
        with contextlib.suppress(OSError):
            with open(self.strace_path, "rb") as f:
                for line in f.read().decode("latin-1").splitlines():
                    m = re.search(r'(?:read|recvfrom)\((\d+), "((?:[^"\\]|\\.)*)"', line)
                    if m and int(m.group(1)) > 2:
                        out.append(c_unescape(m.group(2)))
                        continue
                    m = re.search(r'<\.\.\. (?:read|recvfrom) resumed>\s*"((?:[^"\\]|\\.)*)"', line)
                    if m:
                        out.append(c_unescape(m.group(1)))
        return out



@pytest.fixture(scope="module")
def dns():
    """The test nameserver with the standard zones, shared by a module (the
    zones are static). A test module uses it with `from sendpeers import dns`."""
    need(HAVE_NSD, "nsd (Debian package nsd)")
    base = tempfile.mkdtemp(prefix="transit-dns-", dir="/tmp")
    srv = start_dns(base)
    yield srv
    srv.stop()
    shutil.rmtree(base, ignore_errors=True)

def c_unescape(s):
    """strace's C string escapes to bytes."""
    out = bytearray()
    i = 0
    simple = {"n": 10, "r": 13, "t": 9, "v": 11, "f": 12, "a": 7, "b": 8, "\\": 92, '"': 34}
    while i < len(s):
        ch = s[i]
        if ch != "\\":
            out.append(ord(ch) & 0xFF)
            i += 1
            continue
        nxt = s[i + 1] if i + 1 < len(s) else ""
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        elif nxt.isdigit():
            j = i + 1
            while j < len(s) and j < i + 4 and s[j] in "01234567":
                j += 1
            out.append(int(s[i + 1:j], 8) & 0xFF)
            i = j
        else:
            out.append(ord(nxt) & 0xFF if nxt else 92)
            i += 2
    return bytes(out)


# -- configuration of a transitd with the send path ---------------------------------

def configure_sender(inst, dns_port, connectors, queue=None, accepted=None, dsn=None):
    """The transitd under test as a sender: its own listener on
    127.0.0.1:port_smtp (anonymous: may not relay), a "relay" receive
    connector on the same binding for RELAY_SOURCE_IP only, the given send
    connectors ({name: body}), DNS forwarded to the test nameserver."""
    rc = inst.cfg["receive-connector"]
    rc["relay"] = {
        "bindings": list(rc["internet"]["bindings"]),
        "remote-ip-ranges": [RELAY_SOURCE_IP + "/32"],
        "banner": "relay.example.test ESMTP",
        "permissions": ["relay"],
        "tls": "offer",
        "max-message-size": "25M",
        "max-recipients": 100,
    }
    inst.cfg["send-connector"] = connectors
    inst.cfg["queue"] = queue or {"retry": ["1m"], "expire": "1h"}
    inst.cfg["dns"] = {"servers": ["127.0.0.1:%d" % dns_port]}
    if accepted:
        inst.cfg["accepted-domain"].update(accepted)
    if dsn:
        inst.cfg["dsn"] = dsn
    inst.write_config()
    return inst


def dns_connector(port, **kw):
    """A send connector with DNS routing to `port` for every domain."""
    body = {"address-spaces": ["*"], "routing": "dns", "port": port, "tls": "none",
            "connect-timeout": "3s", "command-timeout": "10s", "data-timeout": "10s"}
    body.update(kw)
    return body


def smarthost_connector(spaces, hosts, **kw):
    body = {"address-spaces": list(spaces), "smart-hosts": list(hosts), "tls": "none",
            "connect-timeout": "3s", "command-timeout": "10s", "data-timeout": "10s"}
    body.update(kw)
    return body


# -- a second transitd as the receiving MTA -------------------------------------------

class ReceiverTransit(conftest.Transit):
    """transitd listening on ip:port only, authoritative for `domain`,
    storing into its own Maildir."""

    def __init__(self, base, ip, port, domain, fqdn=None, tls_cert=None, tls_key=None):
        super().__init__(base)
        self.ip = ip
        self.port_smtp = port
        self.domain = domain
        c = self.cfg
        c["server"]["fqdn"] = fqdn or "mx.%s" % domain
        c["server"]["postmaster"] = "postmaster@" + domain
        if tls_cert:
            c["server"]["tls-cert"] = tls_cert
            c["server"]["tls-key"] = tls_key
        c["accepted-domain"] = {domain: {"type": "authoritative"}}
        c["receive-connector"] = {"internet": dict(c["receive-connector"]["internet"])}
        c["receive-connector"]["internet"].update({
            "bindings": ["%s:%d" % (ip, port)],
            "banner": "%s ESMTP" % c["server"]["fqdn"],
            "permissions": ["anonymous"],
        })
        self.write_config()

    def wait_ready(self, timeout=conftest.START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not tcp_listening(self.ip, self.port_smtp):
            if self.proc.poll() is not None:
                pytest.fail("receiver transitd exited (%s) before listening:\n%s"
                            % (self.proc.returncode, self.log_tail(40)))
            if time.monotonic() > deadline:
                pytest.fail("receiver transitd does not listen on %s:%d:\n%s"
                            % (self.ip, self.port_smtp, self.log_tail(40)))
            time.sleep(0.05)

    def connects(self):
        """Client addresses of every SMTP connection it logged."""
        return re.findall(r"smtp connect address=(\S+)", self.log_text())


# -- the peers fixture ------------------------------------------------------------------

class Peers:
    """Starts peers for one test and stops all of them (by PID) at the end.
    A receiver transitd that logged a sanitizer report fails the test."""

    def __init__(self, base):
        self.base = base
        self.items = []
        self.receivers = []

    def sink(self, ip, port, opts=(), name=None, trace=False):
        need(SMTP_SINK, "smtp-sink (Postfix)")
        if trace:
            need(STRACE, "strace")
        s = Sink(self.base, ip, port, opts=opts, name=name, trace=trace)
        self.items.append(s)
        return s.start()

    def receiver(self, ip, port, domain, users=(), **kw):
        d = os.path.join(self.base, "rx-%s-%d" % (ip, len(self.receivers)))
        os.makedirs(d)
        r = ReceiverTransit(d, ip, port, domain, **kw)
        for u in users:
            r.add_user(u)
        self.receivers.append(r)
        self.items.append(r)
        r.start()
        return r

    def stop_all(self):
        problems = []
        for it in reversed(self.items):
            with contextlib.suppress(Exception):
                if isinstance(it, ReceiverTransit):
                    it.check_alive("(receiver, at teardown)")
                it.stop()
        for r in self.receivers:
            problems += ["receiver %s: %s" % (r.dir, p) for p in r.problems]
            found = r.sanitizer_reports()
            if found:
                problems.append("receiver %s: sanitizer report (%s):\n%s"
                                % (r.dir, ", ".join(found), r.log_tail(60)))
        return problems


# -- clients -----------------------------------------------------------------------------

def client(inst, source=RELAY_SOURCE_IP, timeout=15.0):
    """A harness.RawSMTP to the transitd under test from `source` (the
    relay client address by default), greeting read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(5)
        sock.bind((source, 0))
        sock.connect((HOST, inst.port_smtp))
    except BaseException:
        sock.close()
        raise
    sock.settimeout(timeout)
    c = harness.RawSMTP.__new__(harness.RawSMTP)
    c.timeout, c.buf, c.closed, c.sock, c.transcript = timeout, bytearray(), False, sock, []
    inst._clients.append(c)
    c.greeting()
    return c


def relay_send(inst, sender, rcpts, message, mail_params="", rcpt_params="", ehlo=True):
    """One accepted transaction from the relay client; returns the queue id."""
    with client(inst) as c:
        if ehlo:
            c.ehlo("client.example.test")
        harness.check_reply(c.cmd("MAIL FROM:<%s>%s" % (sender, mail_params)), 250, "2.1.0",
                            what="MAIL")
        for r in rcpts:
            harness.check_reply(c.cmd("RCPT TO:<%s>%s" % (r, rcpt_params)), 250, "2.1.5",
                                what="RCPT %s" % r)
        harness.check_reply(c.cmd("DATA"), 354, what="DATA")
        qid = c.send_data(message)
        with contextlib.suppress(AssertionError, OSError):
            c.cmd("QUIT", timeout=5)
        return qid


def message(subject, size=0, sender="alice@example.test", to="x@example.net", extra=()):
    """A test message ending with the END-OF-TEST-MESSAGE marker line,
    padded with 76-character lines to at least `size` octets."""
    body = "Test body for %s.\r\n" % subject
    line = ("0123456789" * 8)[:76] + "\r\n"
    while len(body) + 200 < size:
        body += line
    body += "END-OF-TEST-MESSAGE\r\n"
    return harness.make_message(subject, body=body, sender=sender, to=to,
                                message_id="<%s@test.example>" % re.sub(r"\W", "-", subject),
                                extra_headers=extra)


# -- logs --------------------------------------------------------------------------------

def wait_log(inst, pattern, timeout=15.0, count=1):
    """Wait until the transitd log matches pattern (a regex) count times;
    returns the list of matches."""
    rx = re.compile(pattern, re.M)

    def found():
        m = list(rx.finditer(inst.log_text(settle=0)))
        return m if len(m) >= count else None
    try:
        return harness.wait_until(found, timeout, what="log line /%s/ x%d" % (pattern, count))
    except AssertionError as e:
        raise AssertionError("%s\n--- log tail ---\n%s" % (e, inst.log_tail(40)))


def log_lines(inst, qid):
    return [ln for ln in inst.log_text().splitlines() if " %s " % qid in ln + " "]


# -- DSNs --------------------------------------------------------------------------------

class Dsn:
    """A delivered DSN parsed with the email package."""

    def __init__(self, delivered):
        self.delivered = delivered
        self.msg = email.message_from_bytes(delivered.data, policy=email.policy.compat32)
        self.parts = self.msg.get_payload() if self.msg.is_multipart() else []
        self.per_message = {}
        self.per_rcpt = []
        if len(self.parts) >= 2:
            status = self.parts[1]
            # the email package parses message/delivery-status into a list
            # of header blocks, and message/global-delivery-status (RFC 6533)
            # into one message whose body holds the other blocks: read the
            # text back and split it into blocks ourselves
            raw = part_bytes(status).decode("utf-8", "replace").replace("\r\n", "\n")
            fields = [parse_fields(b) for b in re.split(r"\n[ \t]*\n", raw.strip()) if b.strip()]
            if fields:
                self.per_message = fields[0]
                self.per_rcpt = fields[1:]

    def rcpt(self, addr):
        for r in self.per_rcpt:
            fr = r.get("final-recipient", "")
            if fr.split(";", 1)[-1].strip().strip("<>").lower() == addr.lower():
                return r
        raise AssertionError("no per-recipient block for %s in %r" % (addr, self.per_rcpt))


def part_bytes(part):
    """The content of a MIME part as bytes, whether the email package
    parsed it as text or as enclosed message(s)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return b"\n".join(m.as_bytes() for m in payload)
    data = part.get_payload(decode=True)
    return data if data is not None else str(payload).encode("utf-8", "replace")


def parse_fields(text):
    out = {}
    for n, v in harness.unfold_headers(text.encode("utf-8") if isinstance(text, str) else text):
        out[n.lower()] = v
    return out


def check_dsn(d, sender, failed, status_re, diag_re=None, remote_mta=None, part3="headers",
              action="failed", original_subject=None, status_types=("message/delivery-status",)):
    """Field-by-field RFC 3464/6522 checks of a delivered DSN (harness.Delivered).
    failed: the recipients it must report. Returns the parsed Dsn."""
    data = d.data
    assert data.startswith(b"Return-Path: <>\n"), "DSN envelope sender must be <>: %r" % data[:200]
    x = Dsn(d)
    m = x.msg
    assert "mailer-daemon" in (m.get("From") or "").lower(), "From: %r" % m.get("From")
    assert sender.lower() in (m.get("To") or "").lower(), "To: %r (want %s)" % (m.get("To"), sender)
    assert (m.get("Auto-Submitted") or "").strip().lower().startswith("auto-replied"), \
        "Auto-Submitted: %r" % m.get("Auto-Submitted")
    assert m.get_content_type() == "multipart/report", m.get_content_type()
    # RFC 6522: report-type names the second part's subtype (delivery-status,
    # or global-delivery-status for an RFC 6533 report)
    want_types = [t.split("/", 1)[1] for t in status_types]
    assert (m.get_param("report-type") or "").lower() in want_types, \
        "report-type=%r" % m.get_param("report-type")
    assert len(x.parts) == 3, "a DSN has 3 parts, got %d: %r" % (
        len(x.parts), [p.get_content_type() for p in x.parts])
    assert x.parts[0].get_content_type() == "text/plain", x.parts[0].get_content_type()
    assert x.parts[1].get_content_type() in status_types, x.parts[1].get_content_type()
    assert x.parts[1].get_content_subtype() == (m.get_param("report-type") or "").lower(), \
        "report-type %r does not name part 2 (%s)" % (m.get_param("report-type"),
                                                       x.parts[1].get_content_type())
    assert "reporting-mta" in x.per_message, "no Reporting-MTA in %r" % x.per_message
    assert x.per_message["reporting-mta"].lower().startswith("dns;"), x.per_message
    assert len(x.per_rcpt) == len(failed), "want %d recipient blocks, got %r" % (
        len(failed), x.per_rcpt)
    for addr in failed:
        r = x.rcpt(addr)
        assert r.get("final-recipient", "").lower().replace(" ", "") == \
            "rfc822;" + addr.lower(), "Final-Recipient: %r" % r.get("final-recipient")
        assert r.get("action", "").lower() == action, "Action: %r (want %s)" % (
            r.get("action"), action)
        assert re.match(status_re, r.get("status", "")), "Status %r !~ %s" % (
            r.get("status"), status_re)
        if diag_re is not None:
            assert re.search(diag_re, r.get("diagnostic-code", ""), re.I | re.S), \
                "Diagnostic-Code %r !~ %s" % (r.get("diagnostic-code"), diag_re)
        if remote_mta is not None:
            assert remote_mta.lower() in r.get("remote-mta", "").lower(), \
                "Remote-MTA %r (want %s)" % (r.get("remote-mta"), remote_mta)
    p3 = x.parts[2]
    if part3 == "headers":
        assert p3.get_content_type() in ("text/rfc822-headers", "message/global-headers"), \
            p3.get_content_type()
        text = part_bytes(p3)
        assert b"END-OF-TEST-MESSAGE" not in text, "headers-only part 3 contains the body"
        if original_subject:
            assert original_subject.encode() in text, "original headers missing: %r" % text[:500]
    elif part3 == "full":
        assert p3.get_content_type() in ("message/rfc822", "message/global"), p3.get_content_type()
        inner = p3.get_payload()
        inner = inner[0] if isinstance(inner, list) else inner
        raw = inner.as_bytes() if hasattr(inner, "as_bytes") else str(inner).encode()
        assert b"END-OF-TEST-MESSAGE" in raw, "RET=FULL part 3 lacks the body: %r" % raw[:500]
        if original_subject:
            assert inner.get("Subject") == original_subject, inner.get("Subject")
    return x


def wait_dsns(inst, user, n, timeout=15.0):
    """The DSNs (harness.Delivered) in user's Maildir, at least n."""
    return inst.wait_for_mail(user, n, timeout=timeout)
