"""
test_queue_fairness.py - next hops under queue.max-connections (issue 6 item 5).

With every outbound connection slot taken, a next hop that has mail waits in
a FIFO; each slot that frees goes to the hop at its head (queue/remote.c).
Before, a waiting hop was started again only when a new message arrived for
it, so with max-connections = 1 the second and third hops never moved.

Peers (loopback, port P of the sending transitd, as in test_send.py): the
private nsd of sendpeers.py; a slow Python receiver (pypeer.py, it answers
the final "." after a delay) for one hop, Postfix smtp-sink for the others.
"""

import os

import pytest

import harness
import sendpeers as sp
from sendpeers import dns  # noqa: F401  (the module's nameserver fixture)
from pypeer import PyPeer
from sendpeers import IP_MX1, IP_NOMX, message, relay_send, wait_log

ALICE = "alice@example.test"


@pytest.fixture
def peers(transit_conf):
    p = sp.Peers(os.path.join(transit_conf.dir, "peers"))
    os.makedirs(p.base)
    slow = []
    p.slow = lambda ip, delay: slow.append(PyPeer(ip, transit_conf.port_smtp, data_delay=delay)) \
        or slow[-1]
    yield p
    for s in slow:
        s.stop()
    problems = p.stop_all()
    if problems:
        pytest.fail("peer problems: %s" % "\n".join(problems), pytrace=False)


def start(t, dns, **queue):
    q = {"retry": ["1m"], "expire": "1h", "max-connections": 1}
    q.update(queue)
    sp.configure_sender(t, dns.port, {"internet": sp.dns_connector(t.port_smtp)}, queue=q)
    t.start()
    return t


@pytest.mark.timeout(120)
def test_max_connections_1_three_next_hops_all_delivered(transit_conf, dns, peers):
    """nomx.test (slow receiver, holds the only slot first), then
    example.net and other.test (smtp-sink, both MX 127.0.0.2): every
    message reaches its receiver, none is left waiting."""
    t = transit_conf
    slow = peers.slow(IP_NOMX, 2.0)
    sink = peers.sink(IP_MX1, t.port_smtp)
    start(t, dns)
    qids = [relay_send(t, ALICE, ["a@nomx.test"], message("slow 1", to="a@nomx.test"))]
    wait_log(t, r"smtp connected connector=internet nexthop=nomx\.test")
    for i in range(2):
        qids.append(relay_send(t, ALICE, ["b@example.net"], message("net %d" % i, to="b@example.net")))
        qids.append(relay_send(t, ALICE, ["c@other.test"], message("other %d" % i, to="c@other.test")))
    qids.append(relay_send(t, ALICE, ["a@nomx.test"], message("slow 2", to="a@nomx.test")))
    got = sink.wait_messages(4, timeout=40)
    assert sorted(m.rcpts[0] for m in got) == ["b@example.net"] * 2 + ["c@other.test"] * 2
    harness.wait_until(lambda: len(slow.messages) >= 2, 30, what="2 messages at the slow peer")
    for q in qids:
        wait_log(t, r"%s removed" % q, timeout=20)
    assert slow.open_max == 1 and len(slow.messages) == 2
    assert t.all_delivered() == [], "no DSN expected"
    assert t.queue_json() == []


@pytest.mark.timeout(150)
def test_busy_next_hop_yields_its_slot(transit_conf, dns, peers):
    """A hop with a long queue does not keep the only slot while another
    hop waits: after its turn (16 messages) the waiting hop is served,
    before the busy hop's queue is empty."""
    t = transit_conf
    slow = peers.slow(IP_MX1, 0.5)
    sink = peers.sink(IP_NOMX, t.port_smtp)
    start(t, dns)
    busy = [relay_send(t, ALICE, ["b@example.net"], message("busy %d" % i, to="b@example.net"))
            for i in range(30)]
    other = relay_send(t, ALICE, ["a@nomx.test"], message("waiting", to="a@nomx.test"))
    sink.wait_messages(1, timeout=60)
    with slow.lock:
        at_that_time = len(slow.messages)
    assert at_that_time < 30, "the waiting hop was served only after the busy hop ran dry"
    harness.wait_until(lambda: len(slow.messages) >= 30, 60, what="30 messages at the busy peer")
    for q in busy + [other]:
        wait_log(t, r"%s removed" % q, timeout=20)
