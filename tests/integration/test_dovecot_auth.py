"""
test_dovecot_auth.py - users { dovecot-auth }: AUTH checked by a real
Dovecot's auth socket (the protocol Postfix speaks with smtpd_sasl_type =
dovecot), issue 7.

Each test starts its own Dovecot (`dovecot -F -c <generated conf>`: no
protocols, base_dir, state and log in a temporary directory, a passwd-file
passdb with the passwords, auth_failure_delay = 0) and stops it by PID.
transit's own passwd-file lists the same mailboxes with a DIFFERENT
password, so a 235 proves the password came from Dovecot.

Covers: Dovecot's password 235 2.7.0 (PLAIN and LOGIN) and then mail
relayed; recipients still validated by transit's passwd-file (a mailbox
line without a password logs in with Dovecot's; a Dovecot user without a
passwd-file line logs in but is no recipient, 550 5.1.1); transit's own passwd-file password 535 5.7.8; a wrong password
and an unknown user 535 5.7.8 (logged as auth failed, no password in the
log); Dovecot stopped 454 4.7.0; a socket that accepts and never answers
454 4.7.0 within dovecot-auth-timeout while another session is served;
the option checked by transitd -n.
"""

import base64
import os
import shutil
import signal
import tempfile
import socket
import subprocess
import threading
import time

import pytest

import harness
from conftest import HOST, PASSWORD, free_ports

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVE_PASSWORD = "dove-Secret-42"

pytestmark = pytest.mark.skipif(not os.access(DOVECOT, os.X_OK), reason="dovecot not installed")


def b64(s):
    return base64.b64encode(s.encode()).decode()


def plain(user, password):
    return b64("\0%s\0%s" % (user, password))


class Dovecot:
    """A Dovecot with only its auth service, in its own directory."""

    def __init__(self):
        # its own directory: Dovecot's auth process runs as the dovecot
        # user and must reach the passwd-file (the test's is mode 0700)
        self.dir = tempfile.mkdtemp(prefix="transit-dovecot-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        os.makedirs(os.path.join(self.dir, "run"))
        os.makedirs(os.path.join(self.dir, "state"))
        self.socket = os.path.join(self.dir, "run", "auth-client")
        self.log = os.path.join(self.dir, "dovecot.log")
        self.passwd = os.path.join(self.dir, "passwd")
        with open(self.passwd, "w") as f:
            f.write("alice@example.test:{PLAIN}%s::::::\n" % DOVE_PASSWORD)
            f.write("bob@example.test:{PLAIN}%s::::::\n" % DOVE_PASSWORD)
            f.write("carol@example.test:{PLAIN}%s::::::\n" % DOVE_PASSWORD)
            f.write("dave@example.test:{PLAIN}%s::::::\n" % DOVE_PASSWORD)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write("""# written by test_dovecot_auth.py
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols =
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = yes
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/home/%u
}}
service auth {{
  unix_listener auth-client {{
    mode = 0666
  }}
}}
""".format(d=self.dir))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        harness.wait_until(lambda: self._answers() or self.proc.poll() is not None, 20,
                           what="dovecot auth socket")
        if self.proc.poll() is not None:
            raise AssertionError("dovecot exited: %s" % self.proc.stderr.read().decode())

    def _answers(self):
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(self.socket)
                s.sendall(b"VERSION\t1\t2\nCPID\t1\n")
                data = b""
                while b"DONE\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        return False
                    data += chunk
                return True
        except OSError:
            return False

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture
def dovecot(transit_conf):
    d = Dovecot()
    try:
        d.start()
        yield d
    finally:
        d.stop()
        shutil.rmtree(d.dir, ignore_errors=True)


def start_with_dovecot(t, socket_path, timeout="10s"):
    """A submission connector checking passwords with Dovecot."""
    port = free_ports(1)[0]
    t.cfg["receive-connector"]["client"] = {
        "bindings": ["%s:%d" % (HOST, port)],
        "permissions": ["authenticated"],
        "tls": "require",
        "auth": ["plain", "login"],
    }
    t.cfg["users"]["dovecot-auth"] = socket_path
    t.cfg["users"]["dovecot-auth-timeout"] = timeout
    t.cfg["auth-failures"] = {"delay": "0s", "max-per-source": 100, "max-per-login": 100}
    t.write_config()
    # transit's passwd-file (the mailboxes) holds alice and bob with PASSWORD, not Dovecot's,
    # and carol as a mailbox line without a password (as docs/operations.md suggests)
    with open(t.users_file, "a") as f:
        f.write("carol@example.test:::::::\n")
    t.start()
    return port


def tls_session(t, port):
    c = t.raw(port=port, timeout=30)
    c.ehlo()
    c.starttls()
    c.ehlo()
    return c


def test_dovecot_password_accepted(transit_conf, dovecot):
    t = transit_conf
    port = start_with_dovecot(t, dovecot.socket)
    with tls_session(t, port) as c:
        c.expect("AUTH PLAIN " + plain("alice@example.test", DOVE_PASSWORD), 235, "2.7.0")
        c.mail_transaction("alice@example.test", ["bob@example.test"],
                           harness.make_message("via dovecot", sender="alice@example.test",
                                                to="bob@example.test"))
    t.wait_for_mail("bob", 1)
    with tls_session(t, port) as c:           # LOGIN too
        c.expect("AUTH LOGIN", 334)
        c.expect(b64("bob@example.test"), 334)
        c.expect(b64(DOVE_PASSWORD), 235, "2.7.0")
    with tls_session(t, port) as c:           # a mailbox with no password of transit's own
        c.expect("AUTH PLAIN " + plain("carol@example.test", DOVE_PASSWORD), 235, "2.7.0")
        c.mail_transaction("carol@example.test", ["carol@example.test"],
                           harness.make_message("to myself", sender="carol@example.test",
                                                to="carol@example.test"))
        # mailboxes are transit's passwd-file: dave logs in with Dovecot but has no mailbox
        c.expect("MAIL FROM:<carol@example.test>", 250)
        c.expect("RCPT TO:<dave@example.test>", 550, "5.1.1")
    t.wait_for_mail("carol", 1)
    with tls_session(t, port) as c:
        c.expect("AUTH PLAIN " + plain("dave@example.test", DOVE_PASSWORD), 235, "2.7.0")
    log = t.log_text()
    assert "auth ok login=alice@example.test mechanism=PLAIN" in log
    assert DOVE_PASSWORD not in log and b64(DOVE_PASSWORD) not in log
    assert "rip=127.0.0.1" not in log


def test_dovecot_refusals(transit_conf, dovecot):
    t = transit_conf
    port = start_with_dovecot(t, dovecot.socket)
    with tls_session(t, port) as c:
        # transit's own passwd-file password: not the store in use
        c.expect("AUTH PLAIN " + plain("bob@example.test", PASSWORD), 535, "5.7.8")
        c.expect("AUTH PLAIN " + plain("alice@example.test", "wrong"), 535, "5.7.8")
        c.expect("AUTH PLAIN " + plain("nobody@example.test", DOVE_PASSWORD), 535, "5.7.8")
        c.expect("AUTH PLAIN " + plain("alice@example.test", DOVE_PASSWORD), 235, "2.7.0")
    log = t.log_text()
    assert "auth failed address=127.0.0.1 login=nobody@example.test mechanism=PLAIN " \
        "reason=bad-credentials" in log
    assert "auth failed address=127.0.0.1 login=alice@example.test" in log
    assert "wrong" not in log and PASSWORD not in log and DOVE_PASSWORD not in log
    # Dovecot saw the client's address (rip) and the failures
    with open(dovecot.log) as f:
        assert "passwd-file(alice@example.test,127.0.0.1): Password mismatch" in f.read()


def test_dovecot_stopped_is_temporary(transit_conf, dovecot):
    t = transit_conf
    port = start_with_dovecot(t, dovecot.socket)
    dovecot.stop()
    with tls_session(t, port) as c:
        c.expect("AUTH PLAIN " + plain("alice@example.test", DOVE_PASSWORD), 454, "4.7.0",
                 "Temporary authentication failure")
        c.expect("MAIL FROM:<alice@example.test>", 530, "5.7.0")   # not authenticated
    log = t.log_text()
    assert "auth tempfail address=127.0.0.1 login=alice@example.test mechanism=PLAIN " \
        "reason=dovecot-unreachable" in log
    assert "auth failed" not in log                                  # not counted as a guess


def hung_server(path, stop):
    """Accepts connections on a Unix socket and never answers."""
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(16)
    srv.settimeout(0.2)
    held = []

    def run():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except OSError:
                pass
        for conn in held:
            conn.close()
        srv.close()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def test_dovecot_hung_times_out(transit_conf):
    t = transit_conf
    path = os.path.join(t.dir, "hung-auth")
    stop = threading.Event()
    th = hung_server(path, stop)
    try:
        port = start_with_dovecot(t, path, timeout="2s")
        with tls_session(t, port) as c:
            c.send("AUTH PLAIN %s\r\n" % plain("alice@example.test", DOVE_PASSWORD))
            start = time.monotonic()
            # the event loop is free meanwhile: another session is served
            with t.raw(port=t.port_smtp) as other:
                other.expect("EHLO other.example.net", 250)
                assert time.monotonic() - start < 1.5
            r = c.read_reply(timeout=20)
            took = time.monotonic() - start
            harness.check_reply(r, 454, "4.7.0")
            assert 1.5 <= took < 10, took
        harness.wait_until(lambda: "reason=dovecot-timeout" in t.log_text(), 10,
                           what="timeout logged")
    finally:
        stop.set()
        th.join(timeout=5)


@pytest.mark.parametrize("key,value,error", [
    ("dovecot-auth", "run/auth-client", b"absolute path"),
    ("dovecot-auth", "/" + "x" * 120, b"absolute path"),
    ("dovecot-auth-timeout", "0s", b"from 1s to 300s"),
    ("dovecot-auth-timeout", "1h", b"from 1s to 300s"),
])
def test_dovecot_option_checked(transit_conf, key, value, error):
    t = transit_conf
    t.cfg["users"]["dovecot-auth"] = "/run/dovecot/auth-client"
    t.cfg["users"][key] = value
    t.write_config()
    p = t.run_daemon("-n", "-c", t.conf_path)
    assert p.returncode != 0
    assert key.encode() in p.stderr and error in p.stderr, p.stderr


def test_dovecot_option_accepted(transit_conf):
    """A good value passes -n and is printed (Dovecot need not be running)."""
    t = transit_conf
    t.cfg["users"]["dovecot-auth"] = "/run/dovecot/auth-client"
    t.cfg["users"]["dovecot-auth-timeout"] = "30s"
    t.write_config()
    p = t.run_daemon("-n", "-c", t.conf_path)
    assert p.returncode == 0, p.stderr
    assert b"/run/dovecot/auth-client" in p.stdout, p.stdout
