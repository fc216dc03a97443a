"""
test_source_limits.py - max-connections-per-source counts per source
prefix (issue 6 item 8): IPv4 /32 and IPv6 /64 by default, configurable
per receive connector (source-prefix-ipv4, source-prefix-ipv6).

Loopback gives many IPv4 addresses (127.0.0.0/8) but only one IPv6
address (::1), so the IPv6 prefix arithmetic is unit-tested
(tests/unit/test_source.c) and here the limit itself is checked on ::1.
"""

import socket

import pytest

import conftest
import harness

BANNER_OR_REFUSAL = (220, 421)


def connect_from(src, port, family=socket.AF_INET, dst=conftest.HOST):
    """A RawSMTP whose socket is bound to the source address src."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((src, 0))
    s.connect((dst, port))
    c = harness.RawSMTP.__new__(harness.RawSMTP)
    c.timeout, c.buf, c.closed, c.sock, c.transcript = 10.0, bytearray(), False, s, []
    return c


def first_reply(c):
    r = c.read_reply(timeout=10)
    assert r.code in BANNER_OR_REFUSAL, r
    return r


@pytest.mark.transit(internet={"max-connections-per-source": 2, "source-prefix-ipv4": 24})
def test_ipv4_prefix_is_one_source(transit):
    """With source-prefix-ipv4 = 24, 127.0.0.1, .2 and .3 are one source."""
    clients = [connect_from("127.0.0.%d" % i, transit.port_smtp) for i in (1, 2, 3)]
    try:
        replies = [first_reply(c) for c in clients]
        assert [r.code for r in replies[:2]] == [220, 220], replies
        harness.check_reply(replies[2], 421, "4.7.0", what="a third client from the same /24")
        assert "reason=max-connections-per-source source=127.0.0.0/24 limit=2" \
            in transit.log_text()
        # another /24 is another source
        other = connect_from("127.0.1.1", transit.port_smtp)
        clients.append(other)
        assert first_reply(other).code == 220
    finally:
        for c in clients:
            c.close()


@pytest.mark.transit(internet={"max-connections-per-source": 1})
def test_ipv4_default_is_the_address(transit):
    """By default an IPv4 source is one address (/32)."""
    clients = [connect_from("127.0.0.%d" % i, transit.port_smtp) for i in (1, 2, 3)]
    try:
        assert [first_reply(c).code for c in clients] == [220, 220, 220]
        again = connect_from("127.0.0.2", transit.port_smtp)
        clients.append(again)
        harness.check_reply(first_reply(again), 421, "4.7.0", what="a second client from .2")
        assert "source=127.0.0.2/32" in transit.log_text()
    finally:
        for c in clients:
            c.close()


def test_ipv6_loopback_limit(transit_conf):
    (port6,) = conftest.free_ports(1)
    transit_conf.override("config", {"receive-connector": {"v6": {
        "bindings": ["[::1]:%d" % port6],
        "max-connections-per-source": 2,
        "source-prefix-ipv6": 64,
    }}})
    transit_conf.write_config()
    transit_conf.start()
    clients = []
    try:
        harness.wait_until(lambda: _probe6(port6), 10, what="the IPv6 listener")
        clients = [connect_from("::1", port6, socket.AF_INET6, "::1") for _ in range(3)]
        replies = [first_reply(c) for c in clients]
        assert [r.code for r in replies[:2]] == [220, 220], replies
        harness.check_reply(replies[2], 421, "4.7.0", what="a third client from ::1")
        assert "source=::/64 limit=2" in transit_conf.log_text()
    finally:
        for c in clients:
            c.close()


def _probe6(port):
    try:
        c = connect_from("::1", port, socket.AF_INET6, "::1")
    except OSError:
        return False
    try:
        c.read_reply(timeout=5)
        c.send(b"QUIT\r\n")
        c.read_reply(timeout=5)
        c.wait_closed(2)
        return True
    finally:
        c.close()


@pytest.mark.parametrize("key,value", [("source-prefix-ipv4", 33), ("source-prefix-ipv4", 0),
                                       ("source-prefix-ipv6", 129)])
def test_prefix_out_of_range_refused(transit_conf, key, value):
    transit_conf.override("internet", {key: value})
    transit_conf.write_config()
    r = transit_conf.run_daemon("-c", transit_conf.conf_path, "-n")
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0
    assert "%s: %d is out of range" % (key, value) in err, err
    assert transit_conf.conf_path + ":" in err, "no file:line in %r" % err
