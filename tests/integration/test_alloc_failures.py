"""
test_alloc_failures.py - when a libevent or OpenSSL object cannot be made
(out of memory), transitd fails that one session cleanly and goes on
serving (issue 6 item 11, "some allocations are unchecked").

The failures are injected with an LD_PRELOAD shim (faultinject.c, built
here with cc): while the file $TRANSIT_FAULT_FILE names SSL_new, event_new
or bufferevent_socket_new, that function returns NULL. Covered: SSL_new on
an implicit-TLS connection and at STARTTLS, the session timer (event_new),
the plaintext bufferevent. Peers: raw SMTP and TLS from Python on 127.0.0.1.
"""

import os
import shutil
import socket
import ssl
import subprocess

import pytest

import harness
import sendpeers as sp

HERE = os.path.dirname(os.path.abspath(__file__))
CC = shutil.which("cc") or shutil.which("gcc")


@pytest.fixture
def faulty(transit_conf, monkeypatch):
    """transitd under the shim; yields (transit, set_faults)."""
    if CC is None:
        pytest.skip("no C compiler for the fault injection shim")
    t = transit_conf
    shim = os.path.join(t.dir, "faultinject.so")
    subprocess.run([CC, "-shared", "-fPIC", "-O1", "-o", shim,
                    os.path.join(HERE, "faultinject.c"), "-ldl"], check=True, timeout=60)
    flag = os.path.join(t.dir, "faults")
    monkeypatch.setenv("LD_PRELOAD", shim)
    monkeypatch.setenv("TRANSIT_FAULT_FILE", flag)
    # a sanitizer runtime must come first in the library list; the shim
    # only adds three symbols, so let it be
    monkeypatch.setenv("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", "") +
                       ":verify_asan_link_order=0")
    t.start()
    monkeypatch.delenv("LD_PRELOAD")          # not for the test's own tools

    def set_faults(*names):
        with open(flag, "w") as f:
            f.write("".join(n + "\n" for n in names))
    yield t, set_faults


def closed_without_service(port, tls=False):
    """Connect; True when the server closes the connection without a
    greeting (or fails the TLS handshake)."""
    s = socket.create_connection((sp.HOST, port), timeout=10)
    try:
        if tls:
            try:
                s = harness.client_tls_context().wrap_socket(s, server_hostname=None)
            except (ssl.SSLError, OSError):
                return True
        try:
            data = s.recv(512)
        except (ConnectionResetError, ssl.SSLError, OSError):
            return True
        return data == b""
    finally:
        s.close()


def still_serves(t):
    with t.raw() as c:
        c.ehlo()
        c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.cmd("QUIT")
    with t.raw(tls=True) as c:
        c.ehlo()
        c.cmd("QUIT")
    assert t.check_alive("(after an injected allocation failure)")


@pytest.mark.parametrize("fault,tls,logged", [
    ("SSL_new", True, r"smtp session setup failed: SSL_new"),
    ("event_new", False, r"smtp session setup failed: no memory for its timer"),
    ("bufferevent_socket_new", False, r"smtp session setup failed: no memory for its bufferevent"),
], ids=["ssl-implicit-tls", "session-timer", "bufferevent"])
def test_session_setup_failure_closes_only_that_session(faulty, fault, tls, logged):
    t, set_faults = faulty
    set_faults(fault)
    assert closed_without_service(t.port_smtps if tls else t.port_smtp, tls=tls)
    sp.wait_log(t, logged)
    sp.wait_log(t, r"smtp disconnect reason=out-of-memory")
    set_faults()
    still_serves(t)


def test_starttls_failure_closes_only_that_session(faulty):
    t, set_faults = faulty
    c = t.raw()
    c.ehlo()
    set_faults("SSL_new")
    c.expect("STARTTLS", 220, "2.0.0")
    assert c.wait_closed(10), "the session should be closed"
    sp.wait_log(t, r"smtp STARTTLS failed: SSL_new")
    set_faults()
    still_serves(t)
