"""
test_concurrency.py - outbound connection limits and connection reuse: a
next hop never sees more connections at once than the send connector's
max-connections-per-destination, a busy queue does open more than one
(up to that limit), and every message arrives exactly once.
"""

import pytest

import harness
import sendpeers as sp
from pypeer import PyPeer

PEER_IP = "127.0.0.32"
ALICE = "alice@example.test"


@pytest.fixture
def slow_peer(transit_conf):
    p = PyPeer(PEER_IP, transit_conf.port_smtp, data_delay=0.3)
    yield p
    p.stop()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("limit", [1, 3])
def test_connections_per_destination(transit_conf, slow_peer, limit):
    t = transit_conf
    conn = sp.smarthost_connector(["slow.test"], ["[%s]:%d" % (PEER_IP, t.port_smtp)],
                                  **{"max-connections-per-destination": limit})
    sp.configure_sender(t, 9, {"slow": conn}, queue={"retry": ["1m"], "expire": "1h"})
    t.start()
    n = 24
    for i in range(n):
        sp.relay_send(t, ALICE, ["r%d@slow.test" % i], sp.message("c%d" % i, to="r%d@slow.test" % i))
    harness.wait_until(lambda: len(slow_peer.messages) >= n, 60, what="all messages at the peer")
    got = sorted(r for rcpts, _ in slow_peer.messages for r in rcpts)
    assert got == sorted("r%d@slow.test" % i for i in range(n)), "each message exactly once"
    assert slow_peer.open_max <= limit, (slow_peer.open_max, limit)
    if limit > 1:
        assert slow_peer.open_max >= 2, "a busy next hop gets more than one connection"
    # reuse: far fewer connections than messages
    assert slow_peer.connections < n, (slow_peer.connections, n)
