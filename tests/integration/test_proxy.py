"""
test_proxy.py - PROXY protocol and more than one node (issue 7): a real
HAProxy (TCP mode, send-proxy-v2 and send-proxy) in front of two transitd
instances, each with its own spool and port, balanced round robin on one
frontend port, as administrators balance 587.

The client connects from 127.0.0.2 (smtplib source_address), HAProxy
from 127.0.0.1, the only trusted proxy: every log line, the Received
header and the per-source limit must show 127.0.0.2. HAProxy's health
checks (option smtpchk with check-send-proxy) arrive as PROXY v2 LOCAL.

HAProxy runs in the foreground (haproxy -db) with a generated
configuration on 127.0.0.1 ports and is stopped by PID; its runtime API
socket in the test directory says when a node is UP or DOWN.
"""

import base64
import contextlib
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time

import pytest

import conftest
import harness

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CLIENT = "127.0.0.2"        # the real client, behind HAProxy
OTHER_CLIENT = "127.0.0.3"
PROXY = "127.0.0.1"         # where HAProxy connects from

pytestmark = pytest.mark.skipif(not os.access(HAPROXY, os.X_OK),
                                reason="haproxy not installed (make test-deps)")


def node_overrides(extra=None):
    ov = {"internet": {"trusted-proxies": [PROXY + "/32"],
                       "max-connections-per-source": 2,
                       "command-timeout": "3s"}}
    for k, v in (extra or {}).items():
        conftest.deep_merge(ov.setdefault(k, {}), v)
    return ov


class HAProxy:
    def __init__(self, base, nodes):
        self.dir = base
        self.sock = os.path.join(base, "haproxy.sock")
        self.cfg = os.path.join(base, "haproxy.cfg")
        self.log = os.path.join(base, "haproxy.log")
        self.port_v2, self.port_v1, self.port_one = conftest.free_ports(3)
        servers = []
        for proto, name in (("send-proxy-v2", "v2"), ("send-proxy", "v1")):
            servers.append("backend nodes_%s\n  balance roundrobin\n"
                           "  option smtpchk HELO haproxy.test\n"
                           "  option redispatch\n  retries 3\n" % name)
            for i, n in enumerate(nodes):
                servers.append("  server n%d %s:%d %s check check-send-proxy inter 300 "
                               "fall 1 rise 1\n" % (i + 1, conftest.HOST, n.port_smtp, proto))
        text = ("global\n  stats socket %s mode 600 level admin\n"
                "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n"
                "  timeout server 60s\n"
                "frontend fe_v2\n  bind 127.0.0.1:%d\n  default_backend nodes_v2\n"
                "frontend fe_v1\n  bind 127.0.0.1:%d\n  default_backend nodes_v1\n"
                "frontend fe_one\n  bind 127.0.0.1:%d\n  default_backend node_one\n"
                "%s"
                "backend node_one\n  server n1 %s:%d send-proxy-v2\n"
                % (self.sock, self.port_v2, self.port_v1, self.port_one, "".join(servers),
                   conftest.HOST, nodes[0].port_smtp))
        with open(self.cfg, "w") as f:
            f.write(text)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([HAPROXY, "-f", self.cfg, "-db"],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def status(self):
        """{(backend, server): status} from the runtime API ("show stat")."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        try:
            s.connect(self.sock)
            s.sendall(b"show stat\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        out = {}
        lines = data.decode().splitlines()
        head = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("svname") not in (None, "FRONTEND", "BACKEND"):
                out[(row["pxname"], row["svname"])] = row["status"]
        return out

    def wait_status(self, backend, server, want, timeout=20):
        def ok():
            with contextlib.suppress(OSError, IndexError):
                return self.status().get((backend, server), "").startswith(want)
            return False
        harness.wait_until(ok, timeout, what="%s/%s %s in HAProxy" % (backend, server, want))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")


def make_node(request, overrides):
    base = tempfile.mkdtemp(prefix="transit-px-", dir="/tmp")
    inst = conftest.Transit(base, overrides)
    rcs = inst.cfg["receive-connector"]
    for name, rc in rcs.items():   # extra connectors share the internet binding
        if "bindings" not in rc:
            rc["bindings"] = list(rcs["internet"]["bindings"])
    inst.write_config()
    request.node.transit_instances = getattr(request.node, "transit_instances", []) + [inst]
    for u in conftest.DEFAULT_USERS:
        inst.add_user(u)
    inst.start()
    return inst


def finish_node(inst):
    inst.stop()
    problems = list(inst.problems)
    found = inst.sanitizer_reports()
    if found:
        problems.append("sanitizer report in the log (%s)" % ", ".join(found))
    return problems


@pytest.fixture
def cluster(request):
    """Two transitd nodes behind one HAProxy (v2 and v1 frontends, and one
    frontend to node 1 alone). Yields (haproxy, node1, node2)."""
    m = request.node.get_closest_marker("transit")
    extra = m.kwargs if m else {}
    nodes = [make_node(request, node_overrides(extra)) for _ in range(2)]
    base = tempfile.mkdtemp(prefix="haproxy-", dir="/tmp")
    hap = HAProxy(base, nodes)
    problems = []
    try:
        for b in ("nodes_v2", "nodes_v1"):
            for srv in ("n1", "n2"):
                hap.wait_status(b, srv, "UP")
        yield hap, nodes[0], nodes[1]
    finally:
        hap.stop()
        for n in nodes:
            if n.proc is not None:
                problems += finish_node(n)
            else:
                problems += list(n.problems)
        if problems:
            pytest.fail("transitd problems: %s" % "; ".join(problems), pytrace=False)
        shutil.rmtree(base, ignore_errors=True)


def send_through(port, n=1, source=CLIENT, subject="through haproxy"):
    for i in range(n):
        with smtplib.SMTP(conftest.HOST, port, timeout=20, source_address=(source, 0)) as s:
            s.ehlo("client.example")
            msg = harness.make_message("%s %d" % (subject, i))
            refused = s.sendmail("bob@example.test", ["alice@example.test"], msg)
            assert refused == {}


def cpu_seconds(pid):
    """User + system CPU time of a process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connect_from(src, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(15)
    s.bind((src, 0))
    s.connect((conftest.HOST, port))
    c = harness.RawSMTP.__new__(harness.RawSMTP)
    c.timeout, c.buf, c.closed, c.sock, c.transcript = 15.0, bytearray(), False, s, []
    return c


@pytest.mark.timeout(120)
def test_both_nodes_receive_with_the_real_client_address(cluster):
    """Round robin over send-proxy-v2: both nodes take mail, and each logs
    and stamps the client 127.0.0.2, not HAProxy's 127.0.0.1."""
    hap, n1, n2 = cluster
    send_through(hap.port_v2, 4)
    harness.wait_until(lambda: len(n1.mail_files("alice")) + len(n2.mail_files("alice")) >= 4,
                       30, what="four messages delivered")
    assert n1.mail_files("alice") and n2.mail_files("alice"), "round robin: both nodes receive"
    for node in (n1, n2):
        log = node.log_text()
        assert "smtp connect address=%s proxy=%s connector=internet" % (CLIENT, PROXY) in log
        # the health checks: PROXY v2 LOCAL, served as the proxy itself
        assert "smtp connect address=%s proxy=%s connector=internet" % (PROXY, PROXY) in log
        for m in node.wait_for_mail("alice", 1):
            head = m.header_block.decode("utf-8", "replace")
            assert "[%s]" % CLIENT in head and "[%s]" % PROXY not in head, head
    # AUTH through the proxy: test_submission_auth_through_haproxy below


# The nodes' connector as the issue's submission port: TLS required, only
# authenticated, PLAIN and LOGIN; brute-force control with a small limit
# and no delay (the counters are per node: the lockout part goes to node 1
# alone through hap.port_one).
SUBMISSION = {"internet": {"permissions": ["authenticated"], "tls": "require",
                           "auth": ["plain", "login"]},
              "auth-failures": {"delay": "0s", "max-per-source": 3, "max-per-login": 100,
                                "lockout": "1h"}}


def submission_session(src, port):
    c = connect_from(src, port)
    c.greeting(timeout=15)
    c.ehlo()
    c.starttls()
    r = c.ehlo()
    assert r.keyword_args("AUTH") == ["PLAIN", "LOGIN"], r
    return c


def auth_plain(user, password):
    return "AUTH PLAIN " + base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


@pytest.mark.transit(**SUBMISSION)
@pytest.mark.timeout(150)
def test_submission_auth_through_haproxy(cluster):
    """Submission balanced by HAProxy (PROXY v2): AUTH works on both nodes,
    each node logs the client 127.0.0.2; three wrong passwords from .2 lock
    out .2 on node 1 (454 4.7.0) while .3, through the same proxy, still
    logs in: the brute-force counters and the "auth failed" lines key on the
    real client from the PROXY header, never on HAProxy's 127.0.0.1."""
    hap, n1, n2 = cluster
    msg = harness.make_message("submitted through haproxy", sender="alice@example.test",
                               to="bob@example.test")
    for _ in range(4):
        c = submission_session(CLIENT, hap.port_v2)
        try:
            c.expect(auth_plain("alice@example.test", conftest.PASSWORD), 235, "2.7.0")
            c.mail_transaction("alice@example.test", ["bob@example.test"], msg)
            c.expect("QUIT", 221)
        finally:
            c.close()
    harness.wait_until(lambda: len(n1.mail_files("bob")) + len(n2.mail_files("bob")) >= 4, 30,
                       what="four submitted messages delivered")
    for node in (n1, n2):
        log = node.log_text()
        assert node.mail_files("bob"), "round robin: both nodes take submissions"
        assert "smtp connect address=%s proxy=%s connector=internet" % (CLIENT, PROXY) in log
        assert "smtp auth ok login=alice@example.test mechanism=PLAIN" in log

    c = submission_session(CLIENT, hap.port_one)
    try:
        for _ in range(3):
            c.expect(auth_plain("alice@example.test", "guess"), 535, "5.7.8")
        c.expect(auth_plain("alice@example.test", conftest.PASSWORD), 454, "4.7.0")
    finally:
        c.close()
    c = submission_session(CLIENT, hap.port_one)     # a new connection: still locked
    try:
        c.expect(auth_plain("alice@example.test", conftest.PASSWORD), 454, "4.7.0")
    finally:
        c.close()
    c = submission_session(OTHER_CLIENT, hap.port_one)
    try:
        c.expect(auth_plain("alice@example.test", conftest.PASSWORD), 235, "2.7.0")
    finally:
        c.close()
    harness.wait_until(lambda: "auth lockout" in n1.log_text(), 10, what="lockout logged")
    log = n1.log_text()
    fails = re.findall(r"auth failed address=(\S+) login=alice@example.test "
                       r"mechanism=PLAIN reason=bad-credentials", log)
    assert fails == [CLIENT] * 3, fails
    assert "auth lockout address=%s source=%s" % (CLIENT, CLIENT) in log
    assert "auth refused address=%s" % CLIENT in log
    assert "address=%s login" % PROXY not in log and "guess" not in log


@pytest.mark.timeout(120)
def test_proxy_v1(cluster):
    """send-proxy (text v1) works the same."""
    hap, n1, n2 = cluster
    send_through(hap.port_v1, 2, subject="v1")
    harness.wait_until(lambda: len(n1.mail_files("alice")) + len(n2.mail_files("alice")) >= 2, 20,
                       what="two messages over PROXY v1")
    for m in n1.all_delivered() + n2.all_delivered():
        head = m.header_block.decode("utf-8", "replace")
        assert "[%s]" % CLIENT in head, head


@pytest.mark.timeout(120)
def test_per_source_limit_counts_the_real_client(cluster):
    """max-connections-per-source = 2 applies to 127.0.0.2 behind the proxy,
    not to the proxy: a third session from .2 is refused, .3 still served."""
    hap, n1, _ = cluster
    clients = []
    try:
        for _ in range(2):
            c = connect_from(CLIENT, hap.port_one)
            clients.append(c)
            harness.check_reply(c.read_reply(timeout=15), 220)
        third = connect_from(CLIENT, hap.port_one)
        clients.append(third)
        harness.check_reply(third.read_reply(timeout=15), 421, "4.7.0",
                            what="a third session of 127.0.0.2 through the proxy")
        other = connect_from(OTHER_CLIENT, hap.port_one)
        clients.append(other)
        harness.check_reply(other.read_reply(timeout=15), 220)
        assert ("smtp refused address=%s proxy=%s connector=internet "
                "reason=max-connections-per-source source=%s/32 limit=2" % (CLIENT, PROXY, CLIENT)
                in n1.log_text())
    finally:
        for c in clients:
            c.close()


@pytest.mark.timeout(150)
def test_one_node_stopped_the_other_serves(cluster):
    hap, n1, n2 = cluster
    n2.stop()
    hap.wait_status("nodes_v2", "n2", "DOWN")
    before = len(n1.mail_files("alice"))
    send_through(hap.port_v2, 4, subject="failover")
    n1.wait_for_mail("alice", before + 4, timeout=30)


@pytest.mark.transit(config={"receive-connector": {
    "devices": {"remote-ip-ranges": [CLIENT + "/32"], "permissions": ["relay"],
                "trusted-proxies": [PROXY]},
    "lab": {"remote-ip-ranges": [OTHER_CLIENT + "/32"], "permissions": ["relay"]}}})
@pytest.mark.timeout(120)
def test_connector_is_picked_for_the_real_client(cluster):
    """A connector on the same binding whose remote-ip-ranges hold the real
    client serves it. A connector that does not trust the proxy ("lab",
    whose range holds 127.0.0.3) never serves a client the proxy names:
    127.0.0.3 through the proxy gets the internet connector."""
    hap, n1, n2 = cluster
    send_through(hap.port_one, 1, source=CLIENT)
    send_through(hap.port_one, 1, source=OTHER_CLIENT)
    log = n1.log_text()
    assert "smtp connect address=%s proxy=%s connector=devices" % (CLIENT, PROXY) in log
    assert "smtp connect address=%s proxy=%s connector=internet" % (OTHER_CLIENT, PROXY) in log


@pytest.mark.timeout(60)
def test_untrusted_proxy_header_is_a_bad_command(transit_conf):
    """From an address not in trusted-proxies, a PROXY line is an unknown
    command (500) and changes nothing: the Received header keeps the
    connection's own address."""
    conftest.deep_merge(transit_conf.cfg, {"receive-connector": {"internet": {
        "trusted-proxies": [PROXY]}}})
    transit_conf.write_config()
    transit_conf.start()
    c = connect_from(OTHER_CLIENT, transit_conf.port_smtp)
    try:
        harness.check_reply(c.read_reply(), 220)
        c.send(b"PROXY TCP4 192.0.2.66 127.0.0.1 4000 25\r\n")
        harness.check_reply(c.read_reply(), 500, "5.5.2")
        c.send(b"EHLO client.example\r\n")
        harness.check_reply(c.read_reply(), 250)
        for line, code in ((b"MAIL FROM:<bob@example.test>\r\n", 250),
                           (b"RCPT TO:<alice@example.test>\r\n", 250), (b"DATA\r\n", 354)):
            c.send(line)
            harness.check_reply(c.read_reply(), code)
        c.send(b"Subject: spoof\r\n\r\nhi\r\n.\r\n")
        harness.check_reply(c.read_reply(), 250)
    finally:
        c.close()
    m = transit_conf.wait_for_mail("alice", 1)[0]
    head = m.header_block.decode("utf-8", "replace")
    assert "[%s]" % OTHER_CLIENT in head and "192.0.2.66" not in head, head
    log = transit_conf.log_text()
    assert "smtp connect address=%s connector=internet" % OTHER_CLIENT in log
    assert "192.0.2.66" not in log


@pytest.mark.timeout(60)
def test_trusted_proxy_without_header_is_closed(transit_conf):
    """From a trusted proxy, plain SMTP (no header) is refused with 421 and
    closed, never served under the proxy's address; silence too, after the
    header timeout (here the connector's command-timeout, 2 s)."""
    conftest.deep_merge(transit_conf.cfg, {"receive-connector": {"internet": {
        "trusted-proxies": [PROXY], "command-timeout": "2s"}}})
    transit_conf.write_config()
    transit_conf.start()
    c = connect_from(PROXY, transit_conf.port_smtp)
    try:
        c.send(b"EHLO client.example\r\n")
        harness.check_reply(c.read_reply(), 421, "4.7.0")
        c.wait_closed(10)
    finally:
        c.close()
    t0 = time.monotonic()
    c = connect_from(PROXY, transit_conf.port_smtp)
    try:
        harness.check_reply(c.read_reply(timeout=15), 421, "4.7.0")
        c.wait_closed(10)
    finally:
        c.close()
    assert time.monotonic() - t0 >= 1.5
    log = transit_conf.log_text()
    assert "reason=proxy-header-invalid error=bad-signature" in log
    assert "reason=proxy-header-timeout" in log


@pytest.mark.timeout(60)
def test_hand_made_headers(transit_conf):
    """v2 over IPv6 with a TLV, v1 TCP6, the first command in the same
    segment as the header, and LOCAL: served as the named client, or as the
    proxy for LOCAL."""
    conftest.deep_merge(transit_conf.cfg, {"receive-connector": {"internet": {
        "trusted-proxies": [PROXY]}}})
    transit_conf.write_config()
    transit_conf.start()
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    six = socket.inet_pton(socket.AF_INET6, "2001:db8::42") + \
        socket.inet_pton(socket.AF_INET6, "2001:db8::1") + b"\x10\x00\x02\x4b"
    tlv = b"\x04\x00\x02ab"
    headers = [
        (sig + b"\x21\x21" + len(six + tlv).to_bytes(2, "big") + six + tlv, "2001:db8::42"),
        (b"PROXY TCP6 ::ffff:198.51.100.9 ::1 5000 25\r\n", "198.51.100.9"),
        (sig + b"\x20\x00\x00\x00", PROXY),
    ]
    for hdr, want in headers:
        c = connect_from(PROXY, transit_conf.port_smtp)
        try:
            c.send(hdr + b"EHLO client.example\r\n")
            harness.check_reply(c.read_reply(), 220)
            harness.check_reply(c.read_reply(), 250)
            c.send(b"QUIT\r\n")
            harness.check_reply(c.read_reply(), 221)
        finally:
            c.close()
        harness.wait_until(lambda: "smtp connect address=%s proxy=%s" % (want, PROXY)
                           in transit_conf.log_text(), 10, what="connect line for " + want)


@pytest.mark.timeout(60)
def test_trusted_proxies_config(transit_conf):
    """transitd -n shows trusted-proxies and refuses a /0 (anyone could then
    claim any client address) with file:line."""
    conftest.deep_merge(transit_conf.cfg, {"receive-connector": {"internet": {
        "trusted-proxies": ["10.0.0.5", "192.0.2.0/24"]}}})
    transit_conf.write_config()
    p = transit_conf.run_daemon("-c", transit_conf.conf_path, "-n")
    assert p.returncode == 0, p.stderr
    assert b'trusted-proxies = {"10.0.0.5", "192.0.2.0/24"}' in p.stdout.replace(b" ,", b","), \
        p.stdout
    for bad in ("0.0.0.0/0", "::/0", "10.0.0.300"):
        transit_conf.cfg["receive-connector"]["internet"]["trusted-proxies"] = [bad]
        transit_conf.write_config()
        p = transit_conf.run_daemon("-c", transit_conf.conf_path, "-n")
        assert p.returncode == 1, (bad, p.stdout)
        assert b"transit.conf:" in p.stderr and b"trusted-proxies" in p.stderr, p.stderr


@pytest.mark.timeout(60)
def test_header_in_pieces_and_implicit_tls(transit_conf):
    """A header that trickles in octet by octet is put together (only the
    header's octets are taken from the socket); on an implicit-TLS
    connector the ClientHello sent right behind the header reaches the
    TLS handshake intact."""
    for name in ("internet", "submissions"):
        conftest.deep_merge(transit_conf.cfg, {"receive-connector": {name: {
            "trusted-proxies": [PROXY]}}})
    transit_conf.write_config()
    transit_conf.start()
    c = connect_from(PROXY, transit_conf.port_smtp)
    try:
        header = b"PROXY TCP4 198.51.100.20 127.0.0.1 4321 25\r\n"
        # half a header, then a pause: transitd waits without spinning
        c.send(header[:12])
        cpu0 = cpu_seconds(transit_conf.proc.pid)
        time.sleep(1.0)
        assert cpu_seconds(transit_conf.proc.pid) - cpu0 < 0.5, "busy while waiting for a header"
        for b in header[12:]:
            c.send(bytes([b]))
            time.sleep(0.005)
        harness.check_reply(c.read_reply(), 220)
        c.send(b"QUIT\r\n")
        harness.check_reply(c.read_reply(), 221)
    finally:
        c.close()
    s = socket.create_connection((conftest.HOST, transit_conf.port_smtps), timeout=15)
    try:
        s.sendall(b"PROXY TCP4 198.51.100.21 127.0.0.1 4321 465\r\n")
        t = harness.client_tls_context().wrap_socket(s, server_hostname=None)
        banner = t.recv(1024)
        assert banner.startswith(b"220 "), banner
        t.sendall(b"QUIT\r\n")
        assert t.recv(1024).startswith(b"221"), "QUIT over TLS"
    finally:
        s.close()
    log = transit_conf.log_text()
    harness.wait_until(lambda: "smtp connect address=198.51.100.21 proxy=%s connector=submissions "
                       "tls=implicit" % PROXY in transit_conf.log_text(), 10, what="implicit TLS")
    assert "smtp connect address=198.51.100.20 proxy=%s connector=internet" % PROXY in log
