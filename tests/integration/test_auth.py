"""
test_auth.py - AUTH (RFC 4954) on a submission connector, the policy step
it waits in, permissions, sender binding and brute-force control (issue 7).

Covers: AUTH offered and accepted only under TLS (538 5.7.11 before it, no
AUTH in EHLO), clear text only from loopback when auth-cleartext =
"loopback"; every reply code of the exchange (235 2.7.0, 535 5.7.8, 501
5.5.2 bad base64 and "*", 504 5.5.4, 503 5.5.1 twice and in a transaction,
530 5.7.0 MAIL without AUTH on a connector whose only permission is
"authenticated", 454 4.7.0 lockout); PLAIN with and without an initial
response, "=" for empty, an authzid that is not the login; LOGIN; swaks,
smtplib and msmtp logging in; authenticated sessions relay and their
Received line says ESMTPSA; credentials never in the log (debug protocol
log on); the password check runs on worker threads (a second session is
answered while 20 AUTHs are checked); per-source and per-login lockouts and
the growing delay, each failure one fail2ban-readable line; sender binding
(553 5.7.1) and a send connector's allowed-senders keeping application 1's
mail inside; sessions closed while their AUTH is checked or delayed
(sanitizer build: no report); the configuration values refused at -n.

Peers: swaks, msmtp, Python smtplib and raw SMTP on 127.0.0.x.
"""

import base64
import os
import re
import shutil
import smtplib
import socket
import subprocess
import threading
import time

import pytest

import harness
from conftest import HOST, PASSWORD, free_ports
from harness import make_message

SWAKS = shutil.which("swaks")
MSMTP = shutil.which("msmtp")
APP1, APP2 = "app1@example.test", "app2@example.test"
FAIL_RE = re.compile(r"auth failed address=(\S+) login=(\S+) mechanism=(PLAIN|LOGIN) reason=(\S+)")


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def plain(user, password, authz=""):
    return b64("%s\0%s\0%s" % (authz, user, password))


def add_submission(t, port=None, **kw):
    """The issue's "client" connector: TLS required, only authenticated."""
    port = port or free_ports(1)[0]
    body = {
        "bindings": ["%s:%d" % (HOST, port)],
        "permissions": ["authenticated"],
        "tls": "require",
        "auth": ["plain", "login"],
    }
    body.update(kw)
    t.cfg["receive-connector"]["client"] = body
    t.write_config()
    return port


def auth_limits(t, **kw):
    body = {"delay": "0s", "max-per-source": 100, "max-per-login": 100, "lockout": "1h"}
    body.update(kw)
    t.cfg["auth-failures"] = body
    t.write_config()


def partner_connector(t, allowed=None):
    sc = {"address-spaces": ["partner.test"], "routing": "smart-host",
          "smart-hosts": ["[127.0.0.1]:9"]}
    if allowed:
        sc["allowed-senders"] = allowed
    t.cfg["send-connector"] = {"partner": sc}
    t.write_config()


def tls_session(t, port, source=None):
    c = raw_from(t, port, source)
    c.ehlo()
    c.starttls()
    c.ehlo()
    return c


def raw_from(t, port, source=None, timeout=15.0):
    """A RawSMTP on port from 127.0.0.1 or another loopback source address."""
    if source is None:
        c = t.raw(port=port, timeout=timeout)
        return c
    s = socket.create_connection((HOST, port), timeout=5, source_address=(source, 0))
    c = harness.RawSMTP.__new__(harness.RawSMTP)
    c.timeout, c.buf, c.closed, c.sock, c.transcript = timeout, bytearray(), False, s, []
    t._clients.append(c)
    c.greeting_reply = c.greeting()
    return c


def fail_lines(t, n=None):
    """The "auth failed" lines; with n, wait until there are n (the log
    is written by its own thread, a moment after the reply)."""
    if n is not None:
        harness.wait_until(lambda: len(FAIL_RE.findall(t.log_text())) >= n, 10,
                           what="%d auth failed lines" % n)
    return FAIL_RE.findall(t.log_text())


def wait_log(t, pattern):
    harness.wait_until(lambda: re.search(pattern, t.log_text()), 10, what=pattern)


# -- offered only under TLS ------------------------------------------------------------

def test_auth_only_after_starttls(transit_conf):
    t = transit_conf
    port = add_submission(t)
    t.start()
    with t.raw(port=port) as c:
        r = c.ehlo()
        assert "STARTTLS" in r.keywords and "AUTH" not in r.keywords, r
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 538, "5.7.11",
                 "Encryption required")
        c.expect("MAIL FROM:<alice@example.test>", 530, "5.7.0")   # STARTTLS first
        c.starttls()
        r = c.ehlo()
        assert r.keyword_args("AUTH") == ["PLAIN", "LOGIN"], r
        c.expect("MAIL FROM:<alice@example.test>", 530, "5.7.0", "Authentication required")
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 235, "2.7.0",
                 "Authentication successful")
        r = c.ehlo()
        assert "AUTH" not in r.keywords, r      # already authenticated
        c.expect("MAIL FROM:<alice@example.test>", 250, "2.1.0")


def test_cleartext_only_from_loopback_when_allowed(transit_conf):
    t = transit_conf
    port = add_submission(t, tls="none", **{"auth-cleartext": "loopback"})
    # the internet connector offers AUTH too, in clear text never
    t.connector("internet")["auth"] = ["plain"]
    t.write_config()
    t.start()
    with t.raw(port=port) as c:
        r = c.ehlo()
        assert r.keyword_args("AUTH") == ["PLAIN", "LOGIN"], r
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 235, "2.7.0")
    with t.raw() as c:
        r = c.ehlo()
        assert "AUTH" not in r.keywords, r
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 538, "5.7.11")
        c.expect("AUTH LOGIN", 504, "5.5.4")    # not offered on this connector


def test_configuration_refused_at_n(transit_conf):
    t = transit_conf
    add_submission(t)
    cases = [
        ({"auth-cleartext": "always"}, r"auth-cleartext: \"always\" is not one of never \| loopback"),
        ({"auth": ["cram-md5"]}, r"auth: \"cram-md5\" is not one of plain \| login"),
        ({"sender-binding": "header"}, r"sender-binding: \"header\" is not one of"),
        ({"tls": "none"}, r"auth needs tls"),
    ]
    for change, msg in cases:
        saved = dict(t.cfg["receive-connector"]["client"])
        t.cfg["receive-connector"]["client"].update(change)
        t.write_config()
        p = t.run_daemon("-c", t.conf_path, "-n")
        err = p.stderr.decode("utf-8", "replace")
        assert p.returncode != 0 and re.search(msg, err), (change, err)
        assert re.search(r"transit\.conf:\d+: ", err), err
        t.cfg["receive-connector"]["client"] = saved
    t.write_config()
    p = t.run_daemon("-c", t.conf_path, "-n")
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr
    assert "auth-failures" in out and re.search(r"auth-cleartext\s*=\s*\"?never", out), out


# -- the reply codes ------------------------------------------------------------------

def test_reply_codes(transit_conf):
    t = transit_conf
    port = add_submission(t)
    auth_limits(t)
    t.connector("internet")["auth"] = ["plain", "login"]
    t.write_config()
    t.start()
    with tls_session(t, port) as c:
        c.expect("AUTH CRAM-MD5", 504, "5.5.4")
        c.expect("AUTH", 501, "5.5.4")
        c.expect("AUTH PLAIN not*base64", 501, "5.5.2")
        c.expect("AUTH PLAIN =", 501, "5.5.2")                  # empty: no NULs
        c.expect("AUTH PLAIN", 334)
        c.expect("*", 501, "5.5.2")                               # cancelled
        c.expect("AUTH PLAIN", 334)
        c.expect("%%%%", 501, "5.5.2")                            # bad base64 on the 334 line
        c.expect("AUTH PLAIN", 334)
        c.expect("A" * 3000, 500, "5.5.2", "Line too long")      # max-line-length 2048
        c.expect("NOOP", 250)                                     # back to commands
        c.expect("AUTH PLAIN " + plain("alice@example.test", "wrong"), 535, "5.7.8")
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD, authz="bob@example.test"),
                 535, "5.7.8")                                    # authzid is not the login
        c.expect("AUTH LOGIN", 334, text_re="^VXNlcm5hbWU6$")
        c.expect(b64("alice@example.test"), 334, text_re="^UGFzc3dvcmQ6$")
        c.expect(b64("wrong"), 535, "5.7.8")
        c.expect("AUTH LOGIN " + b64("alice@example.test"), 334, text_re="^UGFzc3dvcmQ6$")
        c.expect(b64(PASSWORD), 235, "2.7.0")
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 503, "5.5.1")
    with tls_session(t, port) as c:
        # authzid equal to the login is fine; PLAIN without initial response
        c.expect("AUTH PLAIN", 334, text_re="^$")
        c.expect(plain("alice@example.test", PASSWORD, authz="alice@example.test"), 235, "2.7.0")
    with t.raw() as c:          # internet connector: anonymous + AUTH offered
        c.ehlo()
        c.starttls()
        c.ehlo()
        c.expect("MAIL FROM:<someone@other.test>", 250)
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 503, "5.5.1",
                 "transaction")


def test_internet_connector_has_no_auth_by_default(transit):
    with transit.raw() as c:
        c.ehlo()
        c.starttls()
        r = c.ehlo()
        assert "AUTH" not in r.keywords, r
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 503, "5.5.1")


# -- real clients ----------------------------------------------------------------------

@pytest.mark.skipif(SWAKS is None, reason="swaks is not installed")
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_auth_over_starttls(transit_conf, mech):
    t = transit_conf
    port = add_submission(t)
    t.start()
    p = subprocess.run([SWAKS, "--server", HOST, "--port", str(port), "--tls",
                        "--auth", mech, "--auth-user", "bob@example.test",
                        "--auth-password", PASSWORD, "--from", "bob@example.test",
                        "--to", "alice@example.test", "--helo", "client.example.net",
                        "--header", "Subject: swaks-auth-" + mech, "--timeout", "20"],
                       capture_output=True, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out + p.stderr.decode()
    assert "235 2.7.0" in out
    [d] = t.wait_for_mail("alice@example.test", 1)
    assert d.subject == "swaks-auth-" + mech
    received = d.header("Received")[0] if isinstance(d.header("Received"), list) else d.header("Received")
    assert "with ESMTPSA" in str(received), received
    wait_log(t, r"smtp auth ok login=bob@example.test mechanism=%s" % mech)


def test_smtplib_login_may_relay(transit_conf):
    t = transit_conf
    port = add_submission(t)
    partner_connector(t)
    t.start()
    with smtplib.SMTP(HOST, port, timeout=20) as s:
        s.starttls(context=harness.client_tls_context())
        s.login("alice@example.test", PASSWORD)
        code, _ = s.mail("alice@example.test")
        assert code == 250
        code, msg = s.rcpt("someone@partner.test")
        assert code == 250, msg                        # "authenticated": may relay
        code, msg = s.data(make_message("relayed", sender="alice@example.test",
                                        to="someone@partner.test"))
        assert code == 250, msg
    # the queue file records who submitted (the next hop refuses: it stays queued)
    qdir = os.path.join(t.spool, "queue")
    files = [os.path.join(qdir, f) for f in os.listdir(qdir) if not f.startswith(".")]
    assert len(files) == 1, files
    with open(files[0], "rb") as f:
        assert b"\nauth =alice@example.test\n" in f.read()
    with t.raw() as c:                                 # anonymous: may not
        c.ehlo()
        c.expect("MAIL FROM:<alice@example.test>", 250)
        r = c.cmd("RCPT TO:<someone@partner.test>")
        assert r.code >= 500, r


@pytest.mark.skipif(MSMTP is None, reason="msmtp is not installed")
def test_msmtp_auth(transit_conf):
    t = transit_conf
    port = add_submission(t)
    t.start()
    rc = os.path.join(t.dir, "msmtprc")
    with open(rc, "w") as f:
        f.write("account default\nhost %s\nport %d\ntls on\ntls_starttls on\n"
                "tls_certcheck off\nauth on\nuser alice@example.test\npassword %s\n"
                "from alice@example.test\ntimeout 20\n" % (HOST, port, PASSWORD))
    os.chmod(rc, 0o600)
    msg = make_message("msmtp-auth", sender="alice@example.test", to="bob@example.test")
    p = subprocess.run([MSMTP, "-C", rc, "bob@example.test"], input=msg if isinstance(msg, bytes) else msg.encode(),
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode("utf-8", "replace")
    [d] = t.wait_for_mail("bob@example.test", 1)
    assert d.subject == "msmtp-auth"


# -- never in the log ---------------------------------------------------------------------

def test_credentials_never_logged(transit_conf):
    t = transit_conf
    port = add_submission(t)
    auth_limits(t)
    t.args = ["-d"]                                    # the protocol lines too
    t.start()
    bad = "Wr0ng-pass-987"
    with tls_session(t, port) as c:
        c.expect("AUTH PLAIN " + plain("alice@example.test", bad), 535)
        c.expect("AUTH PLAIN", 334)
        c.expect(plain("alice@example.test", bad), 535)
        c.expect("AUTH LOGIN", 334)
        c.expect(b64("alice@example.test"), 334)
        c.expect(b64(bad), 535)
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 235)
        c.expect("QUIT", 221)
    wait_log(t, r"smtp disconnect reason=quit messages=0 errors=3")   # every line written
    log = t.log_text()
    for secret in (PASSWORD, bad, b64(PASSWORD), b64(bad), plain("alice@example.test", bad),
                   plain("alice@example.test", PASSWORD)):
        assert secret not in log, "credential %r in the log" % secret
    assert "smtp in AUTH PLAIN <initial response" in log, "debug log not on?"
    assert "smtp in <SASL response" in log
    assert len(fail_lines(t, 3)) == 3


# -- the policy step: workers, not the loop ---------------------------------------------

def test_password_checks_do_not_block_other_sessions(transit_conf):
    t = transit_conf
    port = add_submission(t, **{"max-connections-per-source": 50})
    t.start()
    n = 20
    clients = [tls_session(t, port) for _ in range(n)]
    other = t.raw()
    other.ehlo()
    done = []
    lock = threading.Lock()

    def wait_auth(c):
        r = c.read_reply(timeout=60)
        with lock:
            done.append((time.monotonic(), r.code))

    auth_sent = time.monotonic()
    for c in clients:
        c.send("AUTH PLAIN %s\r\n" % plain("alice@example.test", PASSWORD))
    threads = [threading.Thread(target=wait_auth, args=(c,)) for c in clients]
    for th in threads:
        th.start()
    time.sleep(0.05)
    noop_sent = time.monotonic()
    other.send("NOOP\r\n")
    other.read_reply(timeout=30)
    noop_took = time.monotonic() - noop_sent
    for th in threads:
        th.join(70)
    assert len(done) == n and all(code == 235 for _, code in done), done
    auths_took = max(at for at, _ in done) - auth_sent
    # 20 yescrypt checks (about 0.1 s each) on 2 workers take over a second;
    # on the loop they would hold the NOOP's reply for all of that time
    assert noop_took < auths_took / 2, "NOOP took %.3fs, the 20 AUTHs %.3fs" % (
        noop_took, auths_took)


def test_session_closed_while_checked_or_delayed(transit_conf):
    t = transit_conf
    port = add_submission(t, **{"max-connections-per-source": 50})
    auth_limits(t, delay="1s", **{"max-per-source": 1000})
    t.start()
    for i in range(10):
        c = tls_session(t, port)
        pw = PASSWORD if i % 2 == 0 else "wrong"       # on the worker / on the delay timer
        c.send("AUTH PLAIN %s\r\n" % plain("alice@example.test", pw))
        if i % 2:
            time.sleep(0.3)                            # the check is back: in its delay
        c.close()
    time.sleep(1.5)
    with tls_session(t, port) as c:                    # still serving
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 235)
    t.stop()
    assert not t.sanitizer_reports()


# -- brute force --------------------------------------------------------------------------

def test_lockout_per_source(transit_conf):
    t = transit_conf
    port = add_submission(t)
    auth_limits(t, **{"max-per-source": 3, "lockout": "3s"})
    t.start()
    with tls_session(t, port) as c:
        for _ in range(3):
            c.expect("AUTH PLAIN " + plain("alice@example.test", "guess"), 535, "5.7.8")
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 454, "4.7.0")
        c.expect("AUTH LOGIN", 454, "4.7.0")
    fails = fail_lines(t, 3)
    assert fails == [("127.0.0.1", "alice@example.test", "PLAIN", "bad-credentials")] * 3, fails
    wait_log(t, r"auth lockout address=127\.0\.0\.1 source=127\.0\.0\.1/32")
    with tls_session(t, port, source="127.0.0.2") as c:   # another source is not locked
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 235)
    time.sleep(3.5)
    with tls_session(t, port) as c:                       # the lockout ends
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 235)


def test_lockout_per_login(transit_conf):
    t = transit_conf
    port = add_submission(t)
    auth_limits(t, **{"max-per-source": 100, "max-per-login": 3})
    t.start()
    for src in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        with tls_session(t, port, source=src) as c:
            c.expect("AUTH LOGIN " + b64("Bob@example.test"), 334)
            c.expect(b64("guess"), 535, "5.7.8")
    with tls_session(t, port, source="127.0.0.5") as c:
        c.expect("AUTH PLAIN " + plain("bob@example.test", PASSWORD), 454, "4.7.0")
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 235, "2.7.0")
    addrs = [a for a, _, _, _ in fail_lines(t, 3)]
    assert addrs == ["127.0.0.2", "127.0.0.3", "127.0.0.4"], addrs
    wait_log(t, "reason=locked-out-login")


def test_failure_delay_grows_and_is_capped(transit_conf):
    t = transit_conf
    port = add_submission(t)
    auth_limits(t, delay="1s", **{"delay-max": "2s"})
    t.start()
    took = []
    with tls_session(t, port, source="127.0.0.6") as c:
        for _ in range(3):
            t0 = time.monotonic()
            c.expect("AUTH PLAIN " + plain("alice@example.test", "guess"), 535, timeout=30)
            took.append(time.monotonic() - t0)
    assert took[0] >= 1.0 and took[1] >= 2.0 and took[2] >= 2.0, took
    assert took[2] < 3.9, took                     # capped at 2 s (uncapped it would be 4 s)


# -- sender binding -----------------------------------------------------------------------

@pytest.mark.transit(users=(APP1, APP2))
def test_sender_binding_keeps_application_mail_inside(transit_conf):
    """Application 1 may send only as application 1: it cannot use app2's
    address, so a send connector allowing only app2's sender keeps app1's
    mail inside."""
    t = transit_conf
    port = add_submission(t)
    partner_connector(t, allowed=[APP2])
    t.start()
    with tls_session(t, port) as c:
        c.expect("AUTH PLAIN " + plain(APP1, PASSWORD), 235)
        c.expect("MAIL FROM:<%s>" % APP2, 553, "5.7.1", "not owned by user %s" % APP1)
        c.expect("MAIL FROM:<APP1@Example.test> AUTH=<>", 250, "2.1.0")   # its own (any case)
        c.expect("RCPT TO:<x@partner.test>", 550, "5.7.1")                # allowed-senders
        c.expect("RCPT TO:<alice@example.test>", 250)                     # inside: fine
    with tls_session(t, port) as c:
        c.expect("AUTH PLAIN " + plain(APP2, PASSWORD), 235)
        c.expect("MAIL FROM:<%s>" % APP2, 250)
        c.expect("RCPT TO:<x@partner.test>", 250)
    wait_log(t, r"reject cmd=MAIL reply=\"553 5\.7\.1\" reason=sender-not-owned "
                r"login=app1@example.test from=app2@example.test")


@pytest.mark.transit(users=(APP1, APP2))
def test_sender_binding_none(transit_conf):
    t = transit_conf
    port = add_submission(t, **{"sender-binding": "none"})
    t.start()
    with tls_session(t, port) as c:
        c.expect("AUTH PLAIN " + plain(APP1, PASSWORD), 235)
        c.expect("MAIL FROM:<%s>" % APP2, 250)


def test_input_behind_auth_waits_for_its_answer(transit_conf):
    """Commands pipelined behind AUTH are held while the password is
    checked, then run in order, with the authentication in force."""
    t = transit_conf
    port = add_submission(t)
    t.start()
    with tls_session(t, port) as c:
        c.send("AUTH PLAIN %s\r\nNOOP\r\nMAIL FROM:<alice@example.test>\r\n"
               "RCPT TO:<bob@example.test>\r\n" % plain("alice@example.test", PASSWORD))
        r = c.read_replies(4, timeout=30)
        assert [x.code for x in r] == [235, 250, 250, 250], r
        assert not c.data_pending(0.3)
