"""
test_postfix_peer.py - transit's SEND path against a real, private Postfix
instance as the receiving MTA (issue 3: "a private Postfix instance" among
the real receivers).

Owns: PostfixPeer, a Postfix 3.x instance started for one test with its own
config directory (main.cf + master.cf), queue directory, data directory,
log file (postlogd, maillog_file) and virtual Maildir store under a fresh
/tmp directory; smtpd only on PF_IP:port (a free port, bound through
master.cf: inet_interfaces is loopback-only because Postfix refuses an
inet_interfaces address that no interface holds, and lo holds 127.0.0.1
only although all of 127/8 reaches it), no chroot, virtual(8)
delivery for postfix.test (bob@ only; every other local part is refused at
RCPT with 550 5.1.1) as the unprivileged user nobody/nogroup, and
relayhost = [127.0.0.1]:P (the sending transitd), so that the DSNs Postfix
writes itself come back to transit. The system's Postfix instance is never
read, started or touched: every command gets -c <own config dir>.
Stopped with `postfix -c DIR stop`; every process left over from the master
(recorded by PID and start time before the stop) is SIGKILLed after a bound.

Tests (the sending transitd relays from its "relay" receive connector, see
sendpeers.configure_sender; send connector for postfix.test by smart host
"[PF_IP]:port" or by DNS MX through the private nsd):
  - delivery into Postfix's Maildir with transit's Received field and the
    content intact; Postfix logs status=sent under the queue id it gave in
    its 250 reply, which transit logs (RFC 5321 4.2, 4.4);
  - 550 5.1.1 at RCPT -> transit fails the recipient and its DSN quotes
    Postfix's reply (RFC 3464 Status, Diagnostic-Code, Remote-MTA; RFC 6522);
    a mixed transaction delivers the known recipient and fails only the other;
  - NOTIFY=SUCCESS (RFC 3461 5.2.1): Postfix offers DSN, so transit passes
    NOTIFY on and sends no "relayed" DSN; Postfix's own "delivered" DSN
    comes back through transit into the sender's Maildir; the same Postfix
    told not to offer DSN gets no NOTIFY and transit writes the "relayed"
    DSN itself;
  - a 2 MB message with long lines and lines starting with "." arrives
    byte-exact (RFC 5321 4.5.2 transparency at both ends);
  - SMTPUTF8 (RFC 6531): a UTF-8 sender and header reach Postfix unchanged.

Skipped as a whole only when /usr/sbin/postfix is missing; the DNS-routed
case also needs nsd. Run:
  TRANSITD=... TRANSITCTL=... /usr/bin/python3 -m pytest -q tests/integration/test_postfix_peer.py
"""

import contextlib
import email
import email.policy
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import harness
import sendpeers as sp
from sendpeers import check_dsn, relay_send, wait_log

POSTFIX = "/usr/sbin/postfix"
if not os.access(POSTFIX, os.X_OK):
    pytest.skip("Postfix is not installed (%s missing)" % POSTFIX, allow_module_level=True)

PF_IP = "127.0.0.25"            # no other test uses this address
PF_DOMAIN = "postfix.test"
PF_HOST = "mx.postfix.test"
BOB = "bob@postfix.test"
NOBODY = "nobody@postfix.test"
ALICE = "alice@example.test"
VMAIL_USER, VMAIL_GROUP = "nobody", "nogroup"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
MB = 1024 * 1024

PF_ZONES = {
    "postfix.test": ["@ IN NS ns", "ns IN A 127.0.0.1", "@ IN MX 10 mx", "mx IN A " + PF_IP],
}

MASTER_CF = """\
# written by tests/integration/test_postfix_peer.py (no chroot anywhere)
# service type  private unpriv chroot wakeup maxproc command
{listen} inet n - n - - smtpd
pickup     unix  n  -  n  60    1  pickup
cleanup    unix  n  -  n  -     0  cleanup
qmgr       unix  n  -  n  300   1  qmgr
rewrite    unix  -  -  n  -     -  trivial-rewrite
bounce     unix  -  -  n  -     0  bounce
defer      unix  -  -  n  -     0  bounce
trace      unix  -  -  n  -     0  bounce
verify     unix  -  -  n  -     1  verify
flush      unix  n  -  n  1000? 0  flush
proxymap   unix  -  -  n  -     -  proxymap
proxywrite unix  -  -  n  -     1  proxymap
smtp       unix  -  -  n  -     -  smtp
relay      unix  -  -  n  -     -  smtp
showq      unix  n  -  n  -     -  showq
error      unix  -  -  n  -     -  error
retry      unix  -  -  n  -     -  error
discard    unix  -  -  n  -     -  discard
virtual    unix  -  n  n  -     -  virtual
anvil      unix  -  -  n  -     1  anvil
scache     unix  -  -  n  -     1  scache
postlog    unix-dgram n - n -   1  postlogd
"""


# -- processes (ours only: identified by PID and start time) ------------------------------

def proc_start_time(pid):
    """Field 22 of /proc/PID/stat (start time in ticks), None if gone or a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return fields[19]


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        kids = sp.children_of(todo.pop())
        out += kids
        todo += kids
    return out


def free_port_on(ip):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


# -- the private Postfix ------------------------------------------------------------------

class PostfixPeer:
    """A private Postfix accepting mail for postfix.test on ip:port."""

    def __init__(self, base, ip, port, relay_port, mailboxes=("bob",)):
        self.base, self.ip, self.port = base, ip, port
        self.etc = os.path.join(base, "etc")
        self.spool = os.path.join(base, "spool")
        self.data = os.path.join(base, "data")
        self.vmail = os.path.join(base, "vmail")
        self.log_path = os.path.join(base, "postfix.log")
        self.master = None          # (pid, start time)
        for d in (self.etc, self.spool, self.data, self.vmail):
            os.makedirs(d)
        # Postfix's daemons run as "postfix" and virtual(8) as nobody: both
        # must be able to reach their directories
        os.chmod(base, 0o755)
        shutil.chown(self.data, "postfix", "postfix")
        self.uid = pwd.getpwnam(VMAIL_USER).pw_uid
        self.gid = grp.getgrnam(VMAIL_GROUP).gr_gid
        os.chown(self.vmail, self.uid, self.gid)
        os.chmod(self.vmail, 0o700)
        self.map_path = os.path.join(self.etc, "vmailbox")
        with open(self.map_path, "w") as f:
            for local in mailboxes:
                f.write("%s@%s %s/%s/\n" % (local, PF_DOMAIN, PF_DOMAIN, local))
        self.main = {
            "compatibility_level": "3.6",
            "queue_directory": self.spool,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": PF_HOST,
            "mydomain": PF_DOMAIN,
            "myorigin": "$myhostname",
            "mydestination": "",
            # Postfix accepts only addresses configured on an interface
            # here (lo holds 127.0.0.1 only, though all of 127/8 routes
            # to it); smtpd binds ip:port through master.cf regardless
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "%s/32" % ip,     # transit is an outside client here
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "virtual_mailbox_domains": PF_DOMAIN,
            "virtual_mailbox_base": self.vmail,
            "virtual_mailbox_maps": "texthash:" + self.map_path,
            "virtual_uid_maps": "static:%d" % self.uid,
            "virtual_gid_maps": "static:%d" % self.gid,
            "relayhost": "[127.0.0.1]:%d" % relay_port,
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "smtpd_peername_lookup": "no",
            "smtp_dns_support_level": "disabled",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "smtputf8_enable": "yes",
            "biff": "no",
            "maillog_file": self.log_path,
            "maillog_file_prefixes": base,
        }

    def write_config(self):
        """main.cf from self.main (a test may change it before start())."""
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("# written by tests/integration/test_postfix_peer.py\n")
            for k, v in self.main.items():
                f.write("%s = %s\n" % (k, v))
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(listen="%s:%d" % (self.ip, self.port)))

    def run(self, *args, timeout=30):
        return subprocess.run([POSTFIX, "-c", self.etc] + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout)

    def start(self):
        self.write_config()
        p = self.run("check")
        assert p.returncode == 0, "postfix check failed (%d): %s%s" % (
            p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))
        p = self.run("start")
        out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
        assert p.returncode == 0, "postfix start failed (%d): %s\n%s" % (
            p.returncode, out, self.log_tail())
        pid = self._master_pid(timeout=START_TIMEOUT)
        self.master = (pid, proc_start_time(pid))
        deadline = time.monotonic() + START_TIMEOUT
        while not sp.tcp_listening(self.ip, self.port):
            assert proc_start_time(pid) is not None, "Postfix master exited:\n%s" % self.log_tail()
            assert time.monotonic() < deadline, "Postfix does not listen on %s:%d:\n%s" % (
                self.ip, self.port, self.log_tail())
            time.sleep(0.05)
        return self

    def _master_pid(self, timeout):
        path = os.path.join(self.spool, "pid", "master.pid")

        def read():
            with contextlib.suppress(OSError, ValueError):
                with open(path) as f:
                    return int(f.read().strip())
            return None
        return harness.wait_until(read, timeout, what="Postfix master pid file %s" % path)

    def stop(self):
        """postfix stop, then SIGKILL whatever is left of our master's tree.
        Returns the problems found (a string per problem)."""
        problems = []
        if self.master is None:
            with contextlib.suppress(Exception):
                self.run("stop")
            return problems
        pid, start = self.master
        ours = [(p, proc_start_time(p)) for p in [pid] + descendants(pid)]
        ours = [(p, s) for p, s in ours if s is not None]
        try:
            p = self.run("stop", timeout=STOP_TIMEOUT)
            if p.returncode != 0:
                problems.append("postfix stop failed (%d): %s" % (
                    p.returncode, p.stderr.decode(errors="replace")))
        except subprocess.TimeoutExpired:
            problems.append("postfix stop did not return within %.0fs" % STOP_TIMEOUT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while True:
            alive = [(p, s) for p, s in ours if proc_start_time(p) == s]
            if not alive:
                break
            if time.monotonic() > deadline:
                for p, _ in alive:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, signal.SIGKILL)
                problems.append("Postfix processes killed after the stop: %r" % alive)
                break
            time.sleep(0.1)
        self.master = None
        return problems

    # what it logged and stored
    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:]) or "(empty Postfix log)"

    def wait_log(self, pattern, timeout=15.0):
        rx = re.compile(pattern, re.M)
        try:
            return harness.wait_until(lambda: rx.search(self.log_text()), timeout,
                                      what="Postfix log line /%s/" % pattern)
        except AssertionError as e:
            raise AssertionError("%s\n--- Postfix log ---\n%s" % (e, self.log_tail()))

    def maildir(self, local):
        return os.path.join(self.vmail, PF_DOMAIN, local)

    def mail_files(self, local):
        return harness.maildir_new_files(self.maildir(local))

    def wait_for_mail(self, local, n, timeout=15.0):
        try:
            harness.wait_until(lambda: len(self.mail_files(local)) >= n, timeout,
                               what="%d message(s) in %s" % (n, self.maildir(local)))
        except AssertionError as e:
            raise AssertionError("%s\n--- Postfix log ---\n%s" % (e, self.log_tail()))
        return [harness.read_delivered(p) for p in self.mail_files(local)]


# -- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dns():
    """The private nsd serving postfix.test (MX -> PF_IP), or None without
    nsd (only the DNS-routed case needs it)."""
    if not sp.HAVE_NSD:
        yield None
        return
    base = tempfile.mkdtemp(prefix="transit-pfdns-", dir="/tmp")
    srv = sp.start_dns(base, PF_ZONES)
    yield srv
    srv.stop()
    shutil.rmtree(base, ignore_errors=True)


class Pair:
    """The sending transitd and the private Postfix of one test."""

    def __init__(self, t, pf):
        self.t, self.pf = t, pf


@pytest.fixture
def postfix(request, transit_conf):
    """A private Postfix (not started yet: start_pair starts both), stopped
    at the end of the test; its log tail is shown when the test failed."""
    base = tempfile.mkdtemp(prefix="transit-pf-", dir="/tmp")
    pf = PostfixPeer(base, PF_IP, free_port_on(PF_IP), transit_conf.port_smtp)
    yield pf
    problems = pf.stop()
    failed = any(getattr(getattr(request.node, "rep_" + w, None), "failed", False)
                 for w in ("setup", "call"))
    if failed or problems or os.environ.get("TRANSIT_KEEP"):
        print("\nkept Postfix directory %s\n--- Postfix log tail ---\n%s" % (base, pf.log_tail(60)))
    else:
        shutil.rmtree(base, ignore_errors=True)
    if problems:
        pytest.fail("Postfix problems: %s" % "; ".join(problems), pytrace=False)


def start_pair(transit_conf, postfix, dns, routing="smarthost"):
    """Start Postfix, then the sending transitd with one send connector for
    postfix.test: smart host [PF_IP]:port, or DNS MX (nsd) on that port."""
    t, pf = transit_conf, postfix
    if routing == "smarthost":
        conn = sp.smarthost_connector([PF_DOMAIN], ["[%s]:%d" % (PF_IP, pf.port)])
    else:
        sp.need(dns, "nsd (Debian package nsd)")
        conn = sp.dns_connector(pf.port, **{"address-spaces": [PF_DOMAIN]})
    # without nsd, point transit at a port nothing answers on: the smart
    # host is an IP literal and needs no lookup
    dns_port = dns.port if dns else free_port_on("127.0.0.1")
    pf.start()
    sp.configure_sender(t, dns_port, {"postfix": conn})
    t.start()
    return Pair(t, pf)


# -- helpers ------------------------------------------------------------------------------

def send_line(t, qid, rcpt, timeout=20.0):
    return wait_log(t, r"^.*%s send to=<%s>[^\n]*" % (re.escape(qid), re.escape(rcpt)),
                    timeout)[0].group(0)


def postfix_qid_from(line):
    """Postfix's queue id from its 250 reply as transit logged it."""
    m = re.search(r"queued as ([0-9A-Za-z]+)", line)
    assert m, "no 'queued as' in transit's send line: %s" % line
    return m.group(1)


PF_TRACE_RE = re.compile(rb"^(Return-Path:|X-Original-To:|Delivered-To:|Received:|[ \t])")


def body_of(data):
    """What follows the fields virtual(8) and smtpd put on top (Return-Path,
    X-Original-To, Delivered-To, Received) and transit's Received field:
    the message as the client submitted it, with LF line ends."""
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0 or not PF_TRACE_RE.match(data[pos:nl + 1]):
            break
        pos = nl + 1
    return data[pos:]


def received_fields(d):
    return d.header("Received")


def big_body(size):
    """CRLF text of at least `size` octets: ordinary lines, lines that start
    with "." (one is only "."), a line of 998 octets (RFC 5321 4.5.3.1.6),
    lines far longer than Postfix's line_length_limit (2048, it splits
    them into records and joins them again), blanks, spaces and tabs."""
    pieces = []
    n = 0
    i = 0
    while n < size:
        chunk = [
            "line %06d ordinary text" % i,
            ".",
            "..",
            ".leading dot %d" % i,
            "...three dots",
            "",
            " \t trailing blanks \t ",
            "x" * 998,
            ("long-%d-" % i) + "abcdefghijklmnopqrstuvwxyz0123456789" * (100 + (i * 97) % 500),
            ". " + "y" * 4095,
            "From the start of a line (no mbox quoting in Maildir)",
        ]
        text = "\r\n".join(chunk) + "\r\n"
        pieces.append(text)
        n += len(text)
        i += 1
    return "".join(pieces) + "END-OF-TEST-MESSAGE\r\n"


# -- tests --------------------------------------------------------------------------------

@pytest.mark.timeout(40)
@pytest.mark.parametrize("routing", ["smarthost", "dns"])
def test_delivery_into_postfix_maildir(transit_conf, postfix, dns, routing):
    p = start_pair(transit_conf, postfix, dns, routing)
    t, pf = p.t, p.pf
    original = sp.message("to postfix via %s" % routing, sender=ALICE, to=BOB)
    qid = relay_send(t, ALICE, [BOB], original)

    (d,) = pf.wait_for_mail("bob", 1)
    line = send_line(t, qid, BOB)
    assert "status=2.0.0" in line, line
    assert "via=postfix" in line, line
    assert PF_IP in line, "relay= should name %s: %s" % (PF_IP, line)
    pf_qid = postfix_qid_from(line)

    # Postfix's virtual(8) writes LF lines: its own trace fields on top
    assert d.data.startswith(b"Return-Path: <%s>\n" % ALICE.encode()), d
    assert d.first("Delivered-To") == BOB, d
    recv = received_fields(d)
    assert len(recv) >= 2, "want Postfix's and transit's Received fields: %r" % recv
    assert re.search(r"by %s \(Postfix\)" % re.escape(PF_HOST), recv[0]), recv[0]
    assert pf_qid in recv[0], "Postfix's Received should carry its id %s: %s" % (pf_qid, recv[0])
    assert re.search(r"\(transit\) with E?SMTP\S* id %s\b" % re.escape(qid), recv[1]), \
        "transit's Received field (id %s) missing below Postfix's: %r" % (qid, recv)
    assert "for <%s>" % BOB in recv[1], recv[1]
    assert body_of(d.data) == harness.crlf_to_lf(original), \
        "content changed:\n%r\n!=\n%r" % (body_of(d.data)[:600], harness.crlf_to_lf(original)[:600])

    # Postfix's log: the same queue id, delivered by virtual(8)
    pf.wait_log(r"%s: to=<%s>, relay=virtual, .*dsn=2\.0\.0, status=sent"
                % (pf_qid, re.escape(BOB)))
    assert re.search(r"%s: from=<%s>" % (pf_qid, re.escape(ALICE)), pf.log_text()), pf.log_tail()
    wait_log(t, r"%s removed" % qid)
    # NOTIFY not given: Postfix's default is FAILURE only, transit sends none
    time.sleep(0.5)
    assert t.all_delivered() == [], "the sender got mail: %r" % t.all_delivered()
    assert not re.search(r"%s dsn " % qid, t.log_text())


@pytest.mark.timeout(40)
def test_unknown_recipient_refused_at_rcpt_gives_dsn_quoting_postfix(transit_conf, postfix, dns):
    p = start_pair(transit_conf, postfix, dns)
    t, pf = p.t, p.pf
    qid = relay_send(t, ALICE, [NOBODY], sp.message("to nobody", sender=ALICE, to=NOBODY))

    line = wait_log(t, r"^.*%s fail to=<%s>[^\n]*" % (qid, re.escape(NOBODY)), 20)[0].group(0)
    assert "status=5.1.1" in line, line
    assert "User unknown" in line, "transit should log Postfix's reply: %s" % line
    pf.wait_log(r"NOQUEUE: reject: RCPT from \S+: 550 5\.1\.1 <%s>: Recipient address rejected: "
                r"User unknown in virtual mailbox table" % re.escape(NOBODY))

    (d,) = sp.wait_dsns(t, ALICE, 1)
    x = check_dsn(d, ALICE, [NOBODY], r"^5\.1\.1$",
                  diag_re=r"^smtp;\s*550[ -]5\.1\.1 .*User unknown in virtual mailbox table",
                  remote_mta=PF_IP, original_subject="to nobody")
    r = x.rcpt(NOBODY)
    assert r.get("remote-mta", "").lower().startswith("dns;"), r
    wait_log(t, r"%s removed" % qid)
    assert pf.mail_files("nobody") == [] and pf.mail_files("bob") == []


@pytest.mark.timeout(40)
def test_mixed_recipients_known_delivered_unknown_failed(transit_conf, postfix, dns):
    p = start_pair(transit_conf, postfix, dns)
    t, pf = p.t, p.pf
    qid = relay_send(t, ALICE, [NOBODY, BOB], sp.message("mixed", sender=ALICE, to=BOB))
    (m,) = pf.wait_for_mail("bob", 1)
    assert m.subject == "mixed", m
    assert "status=2.0.0" in send_line(t, qid, BOB)
    (d,) = sp.wait_dsns(t, ALICE, 1)
    check_dsn(d, ALICE, [NOBODY], r"^5\.1\.1$", diag_re=r"User unknown", remote_mta=PF_IP,
              original_subject="mixed")
    wait_log(t, r"%s removed" % qid)
    time.sleep(0.5)
    assert len(pf.mail_files("bob")) == 1, "bob got the message more than once"
    assert len(t.mail_files(ALICE)) == 1, "one DSN only"


@pytest.mark.timeout(40)
def test_notify_success_passed_on_and_postfix_reports_delivery(transit_conf, postfix, dns):
    """Postfix offers DSN: transit passes NOTIFY=SUCCESS and ENVID on (RFC
    3461 5.2.1, 6.2) and sends no "relayed" DSN; Postfix's own "delivered"
    DSN, sent to alice@example.test through its relayhost (transit), lands
    in alice's Maildir, and it is the only one."""
    p = start_pair(transit_conf, postfix, dns)
    t, pf = p.t, p.pf
    qid = relay_send(t, ALICE, [BOB], sp.message("notify success", sender=ALICE, to=BOB),
                     mail_params=" ENVID=pf-envid-1", rcpt_params=" NOTIFY=SUCCESS")
    pf.wait_for_mail("bob", 1)
    pf_qid = postfix_qid_from(send_line(t, qid, BOB))
    wait_log(t, r"%s removed" % qid)

    # Postfix delivered and wrote a success notification ("delivered")
    pf.wait_log(r"%s: to=<%s>, relay=virtual, .*status=sent" % (pf_qid, re.escape(BOB)))
    m = pf.wait_log(r"%s: sender delivery status notification: ([0-9A-Za-z]+)" % pf_qid)
    dsn_qid = m.group(1)
    pf.wait_log(r"%s: to=<%s>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*status=sent"
                % (dsn_qid, re.escape(ALICE), t.port_smtp))

    (d,) = sp.wait_dsns(t, ALICE, 1)
    x = check_dsn(d, ALICE, [BOB], r"^2\.0\.0$", action="delivered", original_subject=None,
                  part3="headers")
    assert PF_HOST in x.per_message.get("reporting-mta", ""), x.per_message
    assert x.per_message.get("original-envelope-id", "") == "pf-envid-1", \
        "ENVID not passed on to Postfix: %r" % x.per_message
    assert not re.search(r"%s dsn " % qid, t.log_text()), \
        "transit wrote its own DSN although the next hop offers DSN:\n%s" % "\n".join(
            sp.log_lines(t, qid))
    time.sleep(1.5)
    got = t.mail_files(ALICE)
    assert len(got) == 1, "alice should have Postfix's DSN only, has %d: %r" % (
        len(got), [harness.read_delivered(f).subject for f in got])


@pytest.mark.timeout(40)
def test_notify_success_to_postfix_without_dsn_gives_relayed_dsn(transit_conf, postfix, dns):
    """The same Postfix told not to offer DSN (smtpd_discard_ehlo_keywords):
    transit must not send NOTIFY (RFC 3461 5.2.1 says a "relayed" DSN is
    due instead), so Postfix sends none and transit's is the only one."""
    postfix.main["smtpd_discard_ehlo_keywords"] = "dsn"
    p = start_pair(transit_conf, postfix, dns)
    t, pf = p.t, p.pf
    qid = relay_send(t, ALICE, [BOB], sp.message("notify relayed", sender=ALICE, to=BOB),
                     rcpt_params=" NOTIFY=SUCCESS")
    pf.wait_for_mail("bob", 1)
    pf_qid = postfix_qid_from(send_line(t, qid, BOB))
    (d,) = sp.wait_dsns(t, ALICE, 1)
    x = check_dsn(d, ALICE, [BOB], r"^2\.\d+\.\d+$", action="relayed", remote_mta=PF_IP,
                  original_subject="notify relayed")
    assert "mx.example.test" in x.per_message.get("reporting-mta", ""), x.per_message
    assert re.search(r"%s dsn kind=(success|relay)" % qid, t.log_text()), \
        "\n".join(sp.log_lines(t, qid))
    pf.wait_log(r"%s: to=<%s>, relay=virtual, .*status=sent" % (pf_qid, re.escape(BOB)))
    time.sleep(1.5)
    assert "sender delivery status notification" not in pf.log_text(), \
        "Postfix got NOTIFY although it did not offer DSN:\n%s" % pf.log_tail()
    assert len(t.mail_files(ALICE)) == 1, "one DSN only"


@pytest.mark.timeout(50)
def test_two_megabyte_message_long_lines_and_dots_arrive_byte_exact(transit_conf, postfix, dns):
    p = start_pair(transit_conf, postfix, dns)
    t, pf = p.t, p.pf
    body = big_body(2 * MB)
    original = harness.make_message("big with dots", body=body, sender=ALICE, to=BOB,
                                    message_id="<big-dots@test.example>")
    assert len(original) >= 2 * MB
    assert "\r\n.\r\n" in body and max(len(x) for x in body.split("\r\n")) > 10000
    qid = relay_send(t, ALICE, [BOB], original)
    (d,) = pf.wait_for_mail("bob", 1, timeout=30)
    line = send_line(t, qid, BOB, timeout=30)
    assert "status=2.0.0" in line, line
    got = body_of(d.data)
    want = harness.crlf_to_lf(original)
    if got != want:
        n = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
                 min(len(got), len(want)))
        raise AssertionError("content differs at octet %d of %d/%d: got %r, want %r" % (
            n, len(got), len(want), got[max(0, n - 80):n + 80], want[max(0, n - 80):n + 80]))


@pytest.mark.timeout(40)
def test_smtputf8_message_reaches_postfix(transit_conf, postfix, dns):
    """RFC 6531: Postfix offers SMTPUTF8; a UTF-8 sender and Subject are
    passed on without any downgrade."""
    p = start_pair(transit_conf, postfix, dns)
    t, pf = p.t, p.pf
    sender = "jos\u00e9@example.test"
    subject = "Gr\u00fc\u00dfe \u2709"
    original = harness.make_message(subject, body="Unicode body: \u00e9\u00e8\u00ea.\r\n",
                                    sender=sender, to=BOB, message_id="<utf8@test.example>")
    qid = relay_send(t, sender, [BOB], original, mail_params=" SMTPUTF8 BODY=8BITMIME")
    (d,) = pf.wait_for_mail("bob", 1)
    assert "status=2.0.0" in send_line(t, qid, BOB)
    assert d.data.startswith(b"Return-Path: <%s>\n" % sender.encode("utf-8")), d
    assert body_of(d.data) == harness.crlf_to_lf(original)
    msg = email.message_from_bytes(d.data, policy=email.policy.SMTPUTF8)
    assert msg["Subject"] == subject, msg["Subject"]
