"""
test_tls_fallback.py - opportunistic TLS (RFC 7435) must never make mail
undeliverable: when a next hop offers STARTTLS but the handshake fails,
transit tries the same address again in clear and delivers; with
tls = "require" it never does (the message stays deferred, nothing is sent
in clear).

The peer is a small SMTP server written here (Python sockets, one thread):
it offers STARTTLS, answers 220 to it and then writes garbage instead of a
TLS ServerHello, and otherwise takes the message and records it.
"""

import socket
import threading

import pytest

import conftest
import harness
import sendpeers as sp

PEER_IP = "127.0.0.31"
ALICE = "alice@example.test"


class BrokenTlsPeer:
    """Offers STARTTLS, breaks the handshake; takes mail in clear."""

    def __init__(self, ip, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.starttls_seen = 0
        self.messages = []          # (rcpts, data) received in clear
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                try:
                    self._session(conn.makefile("rwb", buffering=0))
                except (OSError, ValueError):
                    pass

    def _session(self, f):
        f.write(b"220 broken-tls.test ESMTP\r\n")
        rcpts, data = [], None
        while True:
            line = f.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                f.write(b"250-broken-tls.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
            elif line.upper().startswith(b"STARTTLS"):
                self.starttls_seen += 1
                f.write(b"220 2.0.0 go ahead\r\n")
                f.write(b"this is not a TLS server hello\r\n")
                return
            elif verb == b"MAIL":
                rcpts = []
                f.write(b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                rcpts.append(line[8:].strip().strip(b"<>").decode())
                f.write(b"250 2.1.5 ok\r\n")
            elif verb == b"DATA":
                f.write(b"354 go\r\n")
                buf = []
                while True:
                    l2 = f.readline()
                    if not l2 or l2 == b".\r\n":
                        break
                    buf.append(l2)
                data = b"".join(buf)
                self.messages.append((rcpts, data))
                f.write(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                f.write(b"221 2.0.0 bye\r\n")
                return
            else:
                f.write(b"250 2.0.0 ok\r\n")

    def stop(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def broken_peer(transit_conf):
    p = BrokenTlsPeer(PEER_IP, transit_conf.port_smtp)
    yield p
    p.stop()


def _start(t, tls):
    conn = sp.smarthost_connector(["broken.test"], ["[%s]:%d" % (PEER_IP, t.port_smtp)],
                                  tls=tls)
    sp.configure_sender(t, 9, {"broken": conn}, queue={"retry": ["1m"], "expire": "1h"})
    t.start()


def _send(t, subject):
    msg = sp.message(subject, to="bob@broken.test")
    return sp.relay_send(t, ALICE, ["bob@broken.test"], msg)


def test_opportunistic_falls_back_to_clear(transit_conf, broken_peer):
    t = transit_conf
    _start(t, "opportunistic")
    _send(t, "fallback")
    harness.wait_until(lambda: broken_peer.messages, 15, what="delivery in clear")
    (rcpts, data), = broken_peer.messages
    assert rcpts == ["bob@broken.test"]
    assert b"Subject: fallback" in data
    assert broken_peer.starttls_seen == 1
    log = t.log_text()
    assert "tls-fallback connector=broken" in log, log[-3000:]
    assert "send to=<bob@broken.test>" in log


def test_require_never_falls_back(transit_conf, broken_peer):
    t = transit_conf
    _start(t, "require")
    _send(t, "must stay")
    sp.wait_log(t, r"defer to=<bob@broken\.test>[^\n]*status=4\.7\.", timeout=15)
    assert broken_peer.messages == [], "nothing may be sent in clear under tls = require"
    assert "tls-fallback" not in t.log_text()
