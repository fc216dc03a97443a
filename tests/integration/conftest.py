"""
conftest.py - the transitd process under test, one private instance per test.

Owns: a per-test directory (spool/, mail/, users, transit.conf, transitd.log)
under /tmp with short paths, free 127.0.0.1 ports, the configuration written
from a Python dict (tests override keys with @pytest.mark.transit(...)), the
users alice@ and bob@example.test made with `transitctl user add`, starting
transitd in the foreground (stderr to the log file) and waiting until every
listener answers, and at teardown stopping it by PID (SIGTERM, SIGKILL after
a bound).

Teardown FAILS the test when the log shows a sanitizer report
("AddressSanitizer", "LeakSanitizer", "runtime error:"), when transitd exited
on its own while the test ran, or when it did not stop on SIGTERM.

Binaries: $TRANSITD / $TRANSITCTL, default <repo>/build/transitd and
<repo>/build/transitctl. Every test has a deadline (pytest-timeout when it is
installed, else SIGALRM here; @pytest.mark.timeout(N) sets it). Only
127.0.0.1 and ports above 1024 are ever used.
"""

import contextlib
import copy
import json
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRANSITD = os.environ.get("TRANSITD", os.path.join(REPO, "build", "transitd"))
TRANSITCTL = os.environ.get("TRANSITCTL", os.path.join(REPO, "build", "transitctl"))
HOST = "127.0.0.1"
DOMAIN = "example.test"
FQDN = "mx.example.test"
BANNER = "mx.example.test ESMTP"
PASSWORD = "Secret-pass-123"
DEFAULT_USERS = ("alice@example.test", "bob@example.test")
DEFAULT_TIMEOUT = 60
# log_text(): how long the log must stay unchanged before it is read, and the cap
LOG_SETTLE = 0.05
LOG_SETTLE_MAX = 2.0
START_TIMEOUT = 20.0          # sanitizer builds start slowly
STOP_TIMEOUT = 10.0
SANITIZER_MARKS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")

try:
    import pytest_timeout  # noqa: F401
    HAVE_PYTEST_TIMEOUT = True
except ImportError:
    HAVE_PYTEST_TIMEOUT = False


# -- pytest plumbing ------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line("markers", "transit(**overrides): configuration for the transitd "
                            "instance (server=, internet=, submissions=, queue=, config=, users=)")
    if not HAVE_PYTEST_TIMEOUT:
        config.addinivalue_line("markers", "timeout(seconds): per-test deadline")


class TestDeadline(BaseException):
    """Raised by SIGALRM; BaseException so that no 'except Exception' in a
    test or helper swallows it."""


@pytest.fixture(autouse=True)
def _deadline(request):
    """A per-test deadline when pytest-timeout is not installed."""
    if HAVE_PYTEST_TIMEOUT:
        yield
        return
    m = request.node.get_closest_marker("timeout")
    seconds = int(m.args[0]) if m and m.args else DEFAULT_TIMEOUT

    def on_alarm(signum, frame):
        raise TestDeadline("test exceeded its deadline of %d s" % seconds)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed:
        for inst in getattr(item, "transit_instances", []):
            rep.sections.append(("transitd log (%s)" % inst.dir, inst.log_tail(120)))


# -- configuration --------------------------------------------------------

def default_config(base, port_smtp, port_smtps):
    return {
        "server": {
            "fqdn": FQDN,
            "spool": os.path.join(base, "spool"),
            "postmaster": "postmaster@" + DOMAIN,
            "max-hop-count": 30,
        },
        "accepted-domain": {DOMAIN: {"type": "authoritative"}},
        "mailboxes": {"maildir": os.path.join(base, "mail", "%d", "%u")},
        "users": {"passwd-file": os.path.join(base, "users")},
        "receive-connector": {
            "internet": {
                "bindings": ["%s:%d" % (HOST, port_smtp)],
                "remote-ip-ranges": ["0.0.0.0/0", "::/0"],
                "banner": BANNER,
                "permissions": ["anonymous"],
                "tls": "offer",
                "max-message-size": "25M",
                "max-recipients": 100,
                "max-connections-per-source": 20,
            },
            "submissions": {
                "bindings": ["%s:%d" % (HOST, port_smtps)],
                "tls": "implicit",
                "permissions": ["anonymous"],
            },
        },
        "queue": {"retry": ["1m", "5m"]},
        # the tests must not depend on the host's free disk space (the
        # defaults, 2G and 500M, would refuse every MAIL on a small disk);
        # test_backpressure.py sets its own
        "back-pressure": {"disk-free-medium": "20M", "disk-free-high": "10M"},
        # message tracking is on by default: its files go here, not /var/log
        "logs": {"path": os.path.join(base, "logs")},
        # one control socket per instance (the default is shared by all)
        "control": {"socket": os.path.join(base, "control.sock")},
    }


SECTION_ORDER = ("server", "accepted-domain", "mailboxes", "users", "receive-connector",
                 "send-connector", "queue", "dns", "dsn")
TITLED = ("accepted-domain", "receive-connector", "send-connector")


def conf_quote(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def conf_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "{ " + ", ".join(conf_value(x) for x in v) + " }"
    return conf_quote(v)


def render_section(name, title, body):
    head = "%s %s {" % (name, conf_quote(title)) if title is not None else "%s {" % name
    lines = [head]
    for k, v in body.items():
        if isinstance(v, dict):  # a subsection: logs { tracking { ... } }
            lines += ["  " + line for line in render_section(k, None, v)]
        elif v is not None:
            lines.append("  %s = %s" % (k, conf_value(v)))
    lines.append("}")
    return lines


def render_config(cfg):
    """libConfuse text for a config dict; a key set to None is left out."""
    out = ["# written by tests/integration/conftest.py"]
    names = [n for n in SECTION_ORDER if n in cfg] + [n for n in cfg if n not in SECTION_ORDER]
    for name in names:
        sec = cfg[name]
        if sec is None:
            continue
        if name in TITLED:
            for title, body in sec.items():
                if body is not None and name == "receive-connector" and "tarpit" not in body:
                    # the recipient tarpit (default 5s) would slow every test
                    # that meets a refusal; test_tarpit.py sets its own
                    # (tarpit = None: the daemon's default)
                    body = dict(body, tarpit="0s")
                if body is not None:
                    out += render_section(name, title, body)
        else:
            out += render_section(name, None, sec)
    return "\n".join(out) + "\n"


def deep_merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            deep_merge(dst[k], v)
        else:
            dst[k] = copy.deepcopy(v)
    return dst


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (above 1024, kernel-chosen)."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            p = s.getsockname()[1]
            socks.append(s)
            if p > 1024 and p not in ports:
                ports.append(p)
    finally:
        for s in socks:
            s.close()
    return ports


# -- the instance ---------------------------------------------------------

class Transit:
    """One transitd instance with its own directory, ports and config."""

    def __init__(self, base, overrides=None):
        self.dir = base
        self.port_smtp, self.port_smtps = free_ports(2)
        self.spool = os.path.join(base, "spool")
        self.mail = os.path.join(base, "mail")
        self.users_file = os.path.join(base, "users")
        self.conf_path = os.path.join(base, "transit.conf")
        self.log_path = os.path.join(base, "transitd.log")
        os.makedirs(self.spool)
        os.makedirs(self.mail)
        open(self.users_file, "a").close()
        open(self.log_path, "a").close()
        self.cfg = default_config(base, self.port_smtp, self.port_smtps)
        for key, value in (overrides or {}).items():
            self.override(key, value)
        self.proc = None
        self.env = None             # extra environment for transitd (e.g. libfaketime), or None
        self.args = []              # extra transitd arguments (e.g. ["-d"] for the debug log)
        self.starts = 0
        self.problems = []          # reasons to fail the test at teardown
        self._clients = []
        self.write_config()

    # configuration
    def override(self, key, value):
        """key: 'server', 'queue', 'internet', 'submissions' (connector
        shortcuts) or 'config' (a dict deep-merged at the top)."""
        if key == "config":
            deep_merge(self.cfg, value)
        elif key in ("internet", "submissions"):
            deep_merge(self.cfg["receive-connector"].setdefault(key, {}), value)
        else:
            deep_merge(self.cfg.setdefault(key, {}), value)

    def connector(self, name="internet"):
        return self.cfg["receive-connector"][name]

    def write_config(self):
        with open(self.conf_path, "w") as f:
            f.write(render_config(self.cfg))

    # tools
    def ctl(self, *args, input=None, timeout=20, check=False):
        cmd = [TRANSITCTL, "-c", self.conf_path] + list(args)
        p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check:
            assert p.returncode == 0, "%s failed (%d): %s %s" % (
                " ".join(cmd), p.returncode, p.stdout.decode(errors="replace"),
                p.stderr.decode(errors="replace"))
        return p

    def add_user(self, address, password=PASSWORD):
        self.ctl("user", "add", address, input=(password + "\n").encode(), check=True)

    def queue_json(self):
        p = self.ctl("queue", "list", "--json", check=True)
        try:
            return json.loads(p.stdout.decode("utf-8"))
        except ValueError as e:
            raise AssertionError("queue list --json is not JSON (%s): %r" % (e, p.stdout))

    # process
    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if not os.access(TRANSITD, os.X_OK):
            pytest.fail("transitd binary not found or not executable: %s (set TRANSITD)" % TRANSITD)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(b"=== test harness: start %d ===\n" % self.starts)
            log.flush()
            env = dict(os.environ, **self.env) if self.env else None
            self.proc = subprocess.Popen([TRANSITD, "-c", self.conf_path] + self.args, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, cwd=self.dir, env=env)
        if wait:
            self.wait_ready()
        return self.proc

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        for port, implicit in ((self.port_smtp, False), (self.port_smtps, True)):
            while True:
                if self.proc.poll() is not None:
                    rc, self.proc = self.proc.returncode, None
                    pytest.fail("transitd exited with status %s before listening on %d:\n%s"
                                % (rc, port, self.log_tail(60)))
                if self._probe(port, implicit):
                    break
                if time.monotonic() > deadline:
                    pytest.fail("transitd did not accept on 127.0.0.1:%d within %.0fs:\n%s"
                                % (port, timeout, self.log_tail(60)))
                time.sleep(0.05)

    def _probe(self, port, implicit):
        """A listener is up when it accepts; for plaintext ones we also read
        the greeting and QUIT cleanly so that the probe does not linger in
        the server's connection counts."""
        try:
            s = socket.create_connection((HOST, port), timeout=2)
        except OSError:
            return False
        c = _wrap_existing(s)
        try:
            with contextlib.suppress(AssertionError, OSError):
                if implicit:
                    s.settimeout(5)
                    c.sock = harness.client_tls_context().wrap_socket(s, server_hostname=None)
                c.read_reply(timeout=5)
                c.send(b"QUIT\r\n")
                c.read_reply(timeout=5)
                c.wait_closed(2)
            return True
        finally:
            c.close()
            s.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self, when=""):
        """Record (for teardown) that transitd died on its own."""
        if self.proc is not None and self.proc.poll() is not None:
            msg = "transitd exited on its own with status %s %s" % (self.proc.returncode, when)
            if not any(p.startswith("transitd exited on its own") for p in self.problems):
                self.problems.append(msg)
            return False
        return True

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT. Records problems."""
        if self.proc is None:
            return
        p = self.proc
        if p.poll() is not None:
            self.check_alive("(found dead at stop)")
            self.proc = None
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
            self.problems.append("transitd did not exit within %.0fs of SIGTERM" % STOP_TIMEOUT)
        else:
            if p.returncode not in (0, -signal.SIGTERM):
                self.problems.append("transitd exited with status %s after SIGTERM" % p.returncode)
        self.proc = None

    def kill9(self):
        """kill -9 on purpose (crash tests): not a problem."""
        if self.proc is None:
            return
        self.check_alive("(before kill -9)")
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def run_daemon(self, *args, timeout=20):
        """Run transitd with other arguments (e.g. -n) and wait for it."""
        if not os.access(TRANSITD, os.X_OK):
            pytest.fail("transitd binary not found or not executable: %s (set TRANSITD)" % TRANSITD)
        return subprocess.run([TRANSITD] + list(args), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, cwd=self.dir)

    # logs
    def log_text(self, settle=LOG_SETTLE):
        """The daemon's log so far. transitd writes its log from a writer
        thread (util/log.c), so a line logged just before a reply may reach
        the file just after the client read that reply: while the daemon
        runs, wait until the file has not grown for `settle` seconds (at
        most LOG_SETTLE_MAX)."""
        if settle and self.proc is not None and self.proc.poll() is None:
            deadline = time.monotonic() + LOG_SETTLE_MAX
            size, since = -1, time.monotonic()
            while time.monotonic() < deadline:
                now_size = os.path.getsize(self.log_path)
                if now_size != size:
                    size, since = now_size, time.monotonic()
                elif time.monotonic() - since >= settle:
                    break
                time.sleep(0.01)
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self, n=80):
        try:
            lines = self.log_text().splitlines()
        except OSError as e:
            return "(no log: %s)" % e
        return "\n".join(lines[-n:])

    def sanitizer_reports(self):
        text = self.log_text()
        return [m for m in SANITIZER_MARKS if m in text]

    # clients
    def raw(self, port=None, tls=False, greet=True, timeout=10.0, tls_context=None):
        """A RawSMTP on the internet port (or port=), greeting read and
        checked unless greet=False."""
        port = port or (self.port_smtps if tls else self.port_smtp)
        ctx = tls_context or (harness.client_tls_context() if tls else None)
        c = harness.RawSMTP(HOST, port, timeout=timeout, tls_context=ctx)
        self._clients.append(c)
        if greet:
            c.greeting_reply = c.greeting()
        return c

    def smtp(self, tls=False, timeout=10):
        """smtplib on the internet port, or SMTP_SSL on the submissions port."""
        if tls:
            s = smtplib.SMTP_SSL(HOST, self.port_smtps, timeout=timeout,
                                 context=harness.client_tls_context())
        else:
            s = smtplib.SMTP(HOST, self.port_smtp, timeout=timeout)
        self._clients.append(s)
        return s

    def send(self, message, sender="bob@example.test", rcpts=("alice@example.test",), port=None):
        """One whole transaction on a fresh connection; returns the queue id."""
        with self.raw(port=port) as c:
            c.ehlo()
            qid = c.mail_transaction(sender, list(rcpts), message)
            with contextlib.suppress(AssertionError, OSError):
                c.cmd("QUIT", timeout=5)
            return qid

    # mailboxes
    def maildir(self, user):
        local, _, domain = user.partition("@")
        return os.path.join(self.mail, (domain or DOMAIN).lower(), local.lower())

    def mail_files(self, user):
        return harness.maildir_new_files(self.maildir(user))

    def wait_for_mail(self, user, n, timeout=10.0, settle=0.0):
        """Wait until user's Maildir holds at least n messages (new/ + cur/);
        with settle > 0 wait that long more and return everything there is.
        Returns [harness.Delivered] oldest first."""
        harness.wait_until(lambda: len(self.mail_files(user)) >= n, timeout,
                           what="%d message(s) in %s (have %d)" % (
                               n, self.maildir(user), len(self.mail_files(user))))
        if settle:
            time.sleep(settle)
        return [harness.read_delivered(p) for p in self.mail_files(user)]

    def all_delivered(self):
        """Every finished message anywhere under mail/."""
        out = []
        for root, dirs, files in os.walk(self.mail):
            if os.path.basename(root) in ("new", "cur"):
                out += [harness.read_delivered(os.path.join(root, f)) for f in files
                        if not f.startswith(".")]
        return out


def _wrap_existing(sock):
    """A RawSMTP around an already connected socket (for probes)."""
    c = harness.RawSMTP.__new__(harness.RawSMTP)
    c.timeout, c.buf, c.closed, c.sock, c.transcript = 5.0, bytearray(), False, sock, []
    return c


# -- fixtures ---------------------------------------------------------------

def _overrides(request):
    m = request.node.get_closest_marker("transit")
    return dict(m.kwargs) if m else {}


@pytest.fixture
def transit_conf(request):
    """A Transit with directory, config and users, NOT started."""
    ov = _overrides(request)
    users = ov.pop("users", ())
    base = tempfile.mkdtemp(prefix="transit-it-", dir="/tmp")
    inst = Transit(base, ov)
    request.node.transit_instances = getattr(request.node, "transit_instances", []) + [inst]
    try:
        for u in tuple(DEFAULT_USERS) + tuple(users):
            inst.add_user(u)
        yield inst
    finally:
        if not HAVE_PYTEST_TIMEOUT:
            signal.alarm(0)     # teardown is bounded by itself; never leave transitd running
        for c in inst._clients:
            with contextlib.suppress(Exception):
                c.close()
        if inst.proc is not None:
            inst.check_alive("(at teardown)")
            inst.stop()
        problems = list(inst.problems)
        found = inst.sanitizer_reports()
        if found:
            problems.append("sanitizer report in the log (%s)" % ", ".join(found))
        failed = any(getattr(getattr(request.node, "rep_" + w, None), "failed", False)
                     for w in ("setup", "call"))
        if problems or failed or os.environ.get("TRANSIT_KEEP"):
            sys.stderr.write("\nkept test directory %s\n" % base)
        else:
            shutil.rmtree(base, ignore_errors=True)
        if problems:
            pytest.fail("transitd problems: %s\n--- log tail ---\n%s"
                        % ("; ".join(problems), inst.log_tail(120)), pytrace=False)


@pytest.fixture
def transit(transit_conf):
    """A running transitd (see Transit)."""
    transit_conf.start()
    yield transit_conf
