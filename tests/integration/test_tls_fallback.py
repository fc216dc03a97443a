"""
test_tls_fallback.py - opportunistic TLS (RFC 7435) must never make mail
undeliverable: when a next hop offers STARTTLS but the handshake fails,
transit tries the same address again in clear and delivers; with
tls = "require" it never does (the message stays deferred, nothing is sent
in clear).

The peer (pypeer.PyPeer) offers STARTTLS, answers 220 to it and then
writes garbage instead of a TLS ServerHello, and otherwise takes the
message and records it.
"""

import pytest

import harness
import sendpeers as sp
from pypeer import PyPeer

PEER_IP = "127.0.0.31"
ALICE = "alice@example.test"


@pytest.fixture
def broken_peer(transit_conf):
    p = PyPeer(PEER_IP, transit_conf.port_smtp, broken_starttls=True)
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
