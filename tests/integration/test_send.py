"""
test_send.py - transit's SEND path against real peers on loopback (issue 3).

Covers: routing per recipient through send connectors (most specific
address space wins, lowest cost breaks a tie, disabled connectors are
skipped, THEN the winner's restrictions apply and never a fallback to a
less specific connector: Exchange's classic size-limit bypass), refusals
at RCPT (550 5.7.1 sender not allowed, 552 5.3.4 SIZE=, 550 5.4.4 no
route, 550 5.7.1 anonymous relay) and at end of DATA (552 5.3.4);
`transitctl route explain`; `transitctl queue list --by-next-hop`;
SMTP delivery (RFC 5321 5.1: MX preference order, equal preferences
shuffled, next MX on failure, implicit MX from A, null MX RFC 7505, NXDOMAIN,
MX pointing back at us), smart host failover, source IP and EHLO name,
TLS "require" (RFC 3207; never in clear, verified against a CA file),
PIPELINING (RFC 2920), connection reuse, EHLO refused -> HELO, timeouts,
SMTPUTF8 (RFC 6531 3.5: no downgrade, 5.6.7), the next hop's SIZE (RFC 1870),
per-recipient 5xx and 4xx (retried, no duplicates), 5xx to ".", odd replies,
content transparency (RFC 5321 4.5.2 dot-stuffing at every chunk offset),
quoted local parts, IPv6, DNS SERVFAIL (temporary), retry and expiry
(4.4.7), delay notices, restart and shutdown with mail in flight, and the
DSNs that result (RFC 3461 NOTIFY/RET/ENVID/ORCPT, RFC 3464 fields, RFC 6522
multipart/report), checked field by field with Python's email package.

Peers (see sendpeers.py): a private nsd on 127.0.0.1 serving the zones in
sendpeers.TEST_ZONES, Postfix smtp-sink on 127.0.0.2 and up (dump files
show what arrived and from which client address), a second transitd as a
receiving MTA. The sending transitd listens on 127.0.0.1:P and every DNS
routed connector uses port P, so an MX that resolves to 127.0.0.1 is really
transit itself. The "relay" receive connector serves only 127.0.0.10: the
tests submit from there; 127.0.0.1 (and so a looping transit) is anonymous.
Tools: nsd, smtp-sink (Postfix), openssl (TLS tests), strace (pipelining
tests); a test that needs a missing one is skipped and says which.
Run: TRANSITD=... TRANSITCTL=... /usr/bin/python3 -m pytest -q tests/integration/test_send.py
"""

import json
import os
import re
import shutil
import subprocess
import time

import pytest

import harness
import sendpeers as sp
from sendpeers import dns  # noqa: F401  (the module's nameserver fixture)
from sendpeers import (IP_EQA, IP_EQB, IP_EXACT, IP_MX1, IP_MX2, IP_NOMX, IP_PARTNER1,
                       IP_PARTNER2, IP_SUB, check_dsn, message, relay_send, wait_log)

ALICE = "alice@example.test"
KB = 1024


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def peers(request, transit_conf):
    """Sinks and receiver transitds for one test, stopped at its end."""
    p = sp.Peers(os.path.join(transit_conf.dir, "peers"))
    os.makedirs(p.base)
    orig_receiver = p.receiver

    def receiver(*a, **kw):
        r = orig_receiver(*a, **kw)
        # their log tails then appear in a failure report (conftest's hook)
        request.node.transit_instances = getattr(request.node, "transit_instances", []) + [r]
        return r
    p.receiver = receiver
    yield p
    problems = p.stop_all()
    if problems:
        pytest.fail("peer problems: %s" % "\n".join(problems), pytrace=False)


def start_sender(transit_conf, dns, connectors, **kw):
    sp.configure_sender(transit_conf, dns.port, connectors, **kw)
    transit_conf.start()
    return transit_conf


def internet(t, **kw):
    """The DNS-routed "*" connector to port P (the sender's own SMTP port)."""
    return sp.dns_connector(t.port_smtp, **kw)


def fail_line(t, rcpt, timeout=20.0):
    return wait_log(t, r"(\S+) fail to=<%s>[^\n]*" % re.escape(rcpt), timeout)[0].group(0)


def first_match(*a, **kw):
    return wait_log(*a, **kw)[0]


def status_of(line):
    m = re.search(r"status=(\S+)", line)
    return m.group(1) if m else None


# -- route explain (configuration only; the daemon is not started) -----------------------

def routing_connectors(t):
    return {
        "internet": internet(t),
        "partner": sp.smarthost_connector(["partner.test"], ["[mx1.partner.test]:%d" % t.port_smtp],
                                          **{"max-message-size": "100K",
                                             "allowed-senders": ["*@example.test"]}),
        "sub": sp.smarthost_connector(["*.sub.test"], ["[sub.example.net]:%d" % t.port_smtp]),
        "exact": sp.smarthost_connector(["a.sub.test"], ["[exact.example.net]:%d" % t.port_smtp]),
        "cost5": sp.smarthost_connector(["cost.test;5"], ["[eqa.example.net]:%d" % t.port_smtp]),
        "cost1": sp.smarthost_connector(["cost.test;1"], ["[eqb.example.net]:%d" % t.port_smtp]),
        "dis": sp.smarthost_connector(["dis.test"], ["[eqa.example.net]:%d" % t.port_smtp],
                                      enabled=False),
    }


def explain(t, rcpt, *args):
    p = t.ctl("route", "explain", rcpt, *args)
    return p.returncode, p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")


def connector_line(out, name):
    for ln in out.splitlines():
        if re.match(r"^\s*%s\b" % re.escape(name), ln):
            return ln
    raise AssertionError("connector %s not listed:\n%s" % (name, out))


def assert_chosen(out, name, others):
    assert "CHOSEN" in connector_line(out, name), out
    assert re.search(r"^chosen:\s*%s\b" % re.escape(name), out, re.M), out
    for o in others:
        ln = connector_line(out, o)
        assert "CHOSEN" not in ln and "dropped:" in ln, "%s should be dropped:\n%s" % (o, out)


def test_route_explain_specificity_cost_disabled(transit_conf, dns):
    t = sp.configure_sender(transit_conf, dns.port, routing_connectors(transit_conf))
    everyone = ["internet", "partner", "sub", "exact", "cost5", "cost1", "dis"]

    for rcpt, winner in (("x@a.sub.test", "exact"), ("x@b.sub.test", "sub"),
                         ("x@deep.b.sub.test", "sub"), ("x@other.test", "internet"),
                         ("x@cost.test", "cost1"), ("x@dis.test", "internet"),
                         ("bob@PARTNER.test", "partner")):
        rc, out = explain(t, rcpt, "--from", ALICE)
        assert rc == 0, "%s: exit %d\n%s" % (rcpt, rc, out)
        assert_chosen(out, winner, [n for n in everyone if n != winner])
        assert re.search(r"^result: accepted, relayed through send connector %s\b" % winner,
                         out, re.M), out
        assert re.search(r"^restrictions:", out, re.M), out
    rc, out = explain(t, "x@dis.test")
    assert re.search(r"dropped:.*disab", connector_line(out, "dis"), re.I), out
    rc, out = explain(t, "x@cost.test")
    assert re.search(r"dropped:.*cost", connector_line(out, "cost5"), re.I), out


def test_route_explain_restrictions_never_fall_back(transit_conf, dns):
    t = sp.configure_sender(transit_conf, dns.port, routing_connectors(transit_conf))
    others = ["internet", "sub", "exact", "cost5", "cost1", "dis"]

    rc, out = explain(t, "bob@partner.test", "--from", ALICE, "--size", str(200 * KB))
    assert rc == 1, out
    assert_chosen(out, "partner", others)
    assert re.search(r"^result: refused 552 5\.3\.4", out, re.M), out
    assert not re.search(r"relayed through send connector internet", out), out

    rc, out = explain(t, "bob@partner.test", "--from", ALICE, "--size", str(50 * KB))
    assert rc == 0, out
    assert re.search(r"^result: accepted, relayed through send connector partner\b", out, re.M), out

    rc, out = explain(t, "bob@partner.test", "--from", "mallory@evil.test")
    assert rc == 1, out
    assert_chosen(out, "partner", others)
    assert re.search(r"^result: refused 550 5\.7\.1", out, re.M), out

    # receive connector permissions: anonymous may not relay, relay may
    rc, out = explain(t, "x@other.test", "--receive-connector", "internet")
    assert rc == 1 and re.search(r"^result: refused 550 5\.7\.1", out, re.M), out
    rc, out = explain(t, "x@other.test", "--receive-connector", "relay")
    assert rc == 0, out
    # a local mailbox is not routed through a connector
    rc, out = explain(t, ALICE)
    assert rc == 0 and re.search(r"^result: .*mailbox", out, re.M), out


def test_route_explain_no_route(transit_conf, dns):
    t = sp.configure_sender(transit_conf, dns.port, {
        "partner": sp.smarthost_connector(["partner.test"], ["[mx1.partner.test]:25"])})
    rc, out = explain(t, "x@other.test")
    assert rc == 1, out
    assert "dropped:" in connector_line(out, "partner"), out
    assert re.search(r"^result: .*5\.4\.4", out, re.M), out


# -- refusals in the SMTP dialogue ----------------------------------------------------

def test_no_connector_matches_is_refused_5_4_4(transit_conf, dns):
    """No ENABLED connector for other.test (the one that names it is
    disabled): RCPT 550 5.4.4 for a relaying client."""
    t = start_sender(transit_conf, dns, {
        "partner": sp.smarthost_connector(["partner.test"], ["[mx1.partner.test]:%d" % 9]),
        "off": sp.smarthost_connector(["other.test"], ["[mx1.partner.test]:%d" % 9],
                                      enabled=False)})
    with sp.client(t) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % ALICE, 250, "2.1.0")
        c.expect("RCPT TO:<x@other.test>", 550, "5.4.4")
        c.expect("RCPT TO:<bob@partner.test>", 250, "2.1.5")
        c.expect("RCPT TO:<bob@example.test>", 250, "2.1.5")


def test_anonymous_may_not_relay_but_internal_relay_domain_is_accepted(transit_conf, dns, peers):
    t = transit_conf
    sink = peers.sink(IP_PARTNER1, t.port_smtp)
    start_sender(t, dns, {
        "internet": internet(t),
        "internal": sp.smarthost_connector(["relay.example.test"],
                                           ["[mx1.partner.test]:%d" % t.port_smtp]),
    }, accepted={"relay.example.test": {"type": "internal-relay"}})
    with t.raw() as c:        # from 127.0.0.1: the anonymous connector
        c.ehlo()
        c.expect("MAIL FROM:<someone@example.org>", 250, "2.1.0")
        c.expect("RCPT TO:<x@example.net>", 550, "5.7.1")
        c.expect("RCPT TO:<carol@relay.example.test>", 250, "2.1.5")
        c.expect("DATA", 354)
        qid = c.send_data(message("internal relay", sender="someone@example.org",
                                  to="carol@relay.example.test"))
    (m,) = sink.wait_messages(1)
    assert m.rcpts == ["carol@relay.example.test"], m
    wait_log(t, r"%s send to=<carol@relay\.example\.test>.*via=internal.*status=2\.0\.0" % qid)


# -- THE routing scenario -------------------------------------------------------------------

def scenario(t, dns, peers):
    sink_a = peers.sink(IP_MX1, t.port_smtp, name="sinkA")          # "*" via DNS
    sink_b = peers.sink(IP_PARTNER1, t.port_smtp, name="sinkB")     # partner's smart host
    start_sender(t, dns, {
        "internet": internet(t, **{"max-message-size": "0"}),
        "partner": sp.smarthost_connector(["partner.test"],
                                          ["[mx1.partner.test]:%d" % t.port_smtp],
                                          **{"max-message-size": "100K"}),
    })
    return sink_a, sink_b


def test_partner_size_limit_is_never_bypassed_through_star(transit_conf, dns, peers):
    t = transit_conf
    sink_a, sink_b = scenario(t, dns, peers)
    big = message("big to partner", size=200 * KB, to="bob@partner.test")
    assert len(big) >= 200 * KB

    # 1. no SIZE=: refused at the end of DATA
    with sp.client(t) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % ALICE, 250, "2.1.0")
        c.expect("RCPT TO:<bob@partner.test>", 250, "2.1.5")
        c.expect("DATA", 354)
        r = c.send_data(big, expect_code=None)
        harness.check_reply(r, 552, "5.3.4", what="end of DATA of a 200 KB message to partner.test")
    # 2. SIZE= announced: refused at MAIL or at RCPT
    with sp.client(t) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<%s> SIZE=%d" % (ALICE, len(big)))
        if r.code == 250:
            r = c.cmd("RCPT TO:<bob@partner.test>")
        harness.check_reply(r, 552, "5.3.4", what="MAIL SIZE=%d / RCPT partner.test" % len(big))

    # 3. small to partner: sink B; big elsewhere: sink A (no limit on "*")
    small = message("small to partner", size=50 * KB, to="bob@partner.test")
    q_small = relay_send(t, ALICE, ["bob@partner.test"], small)
    big_other = message("big to other", size=200 * KB, to="x@other.test")
    q_other = relay_send(t, ALICE, ["x@other.test"], big_other)

    (mb,) = sink_b.wait_messages(1)
    assert mb.rcpts == ["bob@partner.test"] and mb.subject == "small to partner", mb
    (ma,) = sink_a.wait_messages(1)
    assert ma.rcpts == ["x@other.test"] and ma.subject == "big to other", ma
    assert len(ma.data) >= 195 * KB      # smtp-sink dumps with LF line ends
    wait_log(t, r"%s send to=<bob@partner\.test>.*via=partner.*relay=mx1\.partner\.test\[%s\]"
             % (q_small, re.escape(IP_PARTNER1)))
    wait_log(t, r"%s send to=<x@other\.test>.*via=internet.*status=2\.0\.0" % q_other)
    time.sleep(0.5)
    assert len(sink_a.messages()) == 1 and len(sink_b.messages()) == 1
    assert not re.search(r"to=<bob@partner\.test>[^\n]*via=internet", t.log_text()), \
        "partner.test mail went through the * connector"
    assert t.all_delivered() == [], "nothing was failed back to the sender"


def test_mixed_recipients_oversize_part_fails_with_dsn(transit_conf, dns, peers):
    """Only one recipient's connector refuses the size: the message is
    accepted, the other recipient delivered, bob failed with 5.3.4 + DSN,
    and bob's copy never goes out through "*"."""
    t = transit_conf
    sink_a, sink_b = scenario(t, dns, peers)
    big = message("big mixed", size=200 * KB, to="bob@partner.test")
    qid = relay_send(t, ALICE, ["bob@partner.test", "x@other.test"], big)
    (ma,) = sink_a.wait_messages(1)
    assert ma.rcpts == ["x@other.test"], "only x@other.test may go through *: %r" % ma
    line = fail_line(t, "bob@partner.test")
    assert status_of(line) == "5.3.4", line
    (d,) = sp.wait_dsns(t, ALICE, 1)
    check_dsn(d, ALICE, ["bob@partner.test"], r"^5\.3\.4$", original_subject="big mixed")
    wait_log(t, r"%s removed" % qid)
    assert sink_b.messages() == []


def test_sender_restriction_refused_at_rcpt(transit_conf, dns, peers):
    t = transit_conf
    start_sender(t, dns, {
        "internet": internet(t),
        "partner": sp.smarthost_connector(["partner.test"],
                                          ["[mx1.partner.test]:%d" % t.port_smtp],
                                          **{"allowed-senders": ["*@example.test"]}),
    })
    with sp.client(t) as c:
        c.ehlo()
        c.expect("MAIL FROM:<mallory@evil.test>", 250, "2.1.0")
        c.expect("RCPT TO:<bob@partner.test>", 550, "5.7.1")
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<Carol@EXAMPLE.test>", 250, "2.1.0")   # case-insensitive match
        c.expect("RCPT TO:<bob@partner.test>", 250, "2.1.5")


# -- connector choice in real delivery ------------------------------------------------------

def test_most_specific_connector_delivers(transit_conf, dns, peers):
    t = transit_conf
    P = t.port_smtp
    star = peers.sink(IP_MX1, P, name="star")
    sub = peers.sink(IP_SUB, P, name="sub")
    exact = peers.sink(IP_EXACT, P, name="exact")
    never = peers.sink(IP_EQA, P, name="disabled")
    start_sender(t, dns, {
        "internet": internet(t),
        "sub": sp.smarthost_connector(["*.sub.test"], ["[sub.example.net]:%d" % P]),
        "exact": sp.smarthost_connector(["a.sub.test"], ["[exact.example.net]:%d" % P]),
        "dis": sp.smarthost_connector(["other.test"], ["[eqa.example.net]:%d" % P],
                                      enabled=False),
    })
    qid = relay_send(t, ALICE, ["x@a.sub.test", "y@b.sub.test", "z@other.test"],
                     message("specific"))
    assert [m.rcpts for m in exact.wait_messages(1)] == [["x@a.sub.test"]]
    assert [m.rcpts for m in sub.wait_messages(1)] == [["y@b.sub.test"]]
    assert [m.rcpts for m in star.wait_messages(1)] == [["z@other.test"]]
    wait_log(t, r"%s removed" % qid)
    assert never.messages() == [], "a disabled connector was used"


# -- SMTP delivery by DNS -----------------------------------------------------------------

def test_mx_preference_order(transit_conf, dns, peers):
    t = transit_conf
    mx1 = peers.sink(IP_MX1, t.port_smtp, name="mx1")
    mx2 = peers.sink(IP_MX2, t.port_smtp, name="mx2")
    start_sender(t, dns, {"internet": internet(t)})
    for i in range(3):
        relay_send(t, ALICE, ["u%d@example.net" % i], message("pref %d" % i))
    got = mx1.wait_messages(3)
    assert sorted(m.rcpts[0] for m in got) == ["u0@example.net", "u1@example.net", "u2@example.net"]
    wait_log(t, r"send to=<u\d@example\.net>.*relay=mx1\.example\.net\[127\.0\.0\.2\]:%d.*"
             r"status=2\.0\.0" % t.port_smtp, count=3)
    assert mx2.messages() == [], "the less preferred MX was used while the first worked"


@pytest.mark.parametrize("how", ["not-listening", "421-greeting"])
def test_next_mx_when_first_fails(transit_conf, dns, peers, how):
    t = transit_conf
    if how == "421-greeting":
        peers.sink(IP_MX1, t.port_smtp, opts=["-Q", "connect"], name="mx1-421")
    mx2 = peers.sink(IP_MX2, t.port_smtp, name="mx2")
    start_sender(t, dns, {"internet": internet(t)})
    qid = relay_send(t, ALICE, ["x@example.net"], message("failover " + how))
    (m,) = mx2.wait_messages(1)
    assert m.rcpts == ["x@example.net"]
    wait_log(t, r"%s send to=<x@example\.net>.*relay=mx2\.example\.net\[127\.0\.0\.3\]" % qid)


@pytest.mark.timeout(90)
def test_equal_preferences_are_shuffled(transit_conf, dns, peers):
    """*.eq.test: MX 10 eqa, MX 10 eqb. 16 domains = 16 next hops, each
    resolved and ordered on its own: all 16 on one host has odds 2^-15."""
    t = transit_conf
    a = peers.sink(IP_EQA, t.port_smtp, name="eqa")
    b = peers.sink(IP_EQB, t.port_smtp, name="eqb")
    start_sender(t, dns, {"internet": internet(t)})
    rcpts = ["u@d%02d.eq.test" % i for i in range(16)]
    qid = relay_send(t, ALICE, rcpts, message("shuffle"))
    wait_log(t, r"%s removed" % qid, timeout=40)
    got_a = sorted(r for m in a.messages() for r in m.rcpts)
    got_b = sorted(r for m in b.messages() for r in m.rcpts)
    assert sorted(got_a + got_b) == sorted(rcpts), (got_a, got_b)
    assert got_a and got_b, "equal-preference MX hosts not shuffled: eqa got %d, eqb got %d" % (
        len(got_a), len(got_b))


def test_a_record_without_mx(transit_conf, dns, peers):
    t = transit_conf
    s = peers.sink(IP_NOMX, t.port_smtp)
    start_sender(t, dns, {"internet": internet(t)})
    qid = relay_send(t, ALICE, ["x@nomx.test"], message("implicit mx"))
    (m,) = s.wait_messages(1)
    assert m.rcpts == ["x@nomx.test"]
    wait_log(t, r"%s send to=<x@nomx\.test>.*relay=\S*\[127\.0\.0\.6\]:%d" % (qid, t.port_smtp))


@pytest.mark.parametrize("ret", ["default", "FULL"])
def test_null_mx_fails_5_1_10_with_dsn(transit_conf, dns, ret):
    t = start_sender(transit_conf, dns, {"internet": internet(transit_conf)})
    params = " RET=FULL" if ret == "FULL" else ""
    qid = relay_send(t, ALICE, ["x@nullmx.test"], message("null mx"), mail_params=params)
    line = fail_line(t, "x@nullmx.test")
    assert status_of(line) == "5.1.10", line
    (d,) = sp.wait_dsns(t, ALICE, 1)
    check_dsn(d, ALICE, ["x@nullmx.test"], r"^5\.1\.10$", diag_re=r"null MX|does not accept",
              part3="full" if ret == "FULL" else "headers", original_subject="null mx")
    m = first_match(t, r"%s dsn kind=failure dsn-id=(\S+)" % qid)
    assert m.group(1) != qid
    wait_log(t, r"%s removed" % qid)


def test_nonexistent_domain_fails_5_1_2(transit_conf, dns):
    t = start_sender(transit_conf, dns, {"internet": internet(transit_conf)})
    relay_send(t, ALICE, ["x@nosuch.example.net"], message("nxdomain"))
    line = fail_line(t, "x@nosuch.example.net")
    assert status_of(line) == "5.1.2", line
    (d,) = sp.wait_dsns(t, ALICE, 1)
    check_dsn(d, ALICE, ["x@nosuch.example.net"], r"^5\.1\.2$", original_subject="nxdomain")


def test_mx_pointing_at_ourselves_is_a_loop_5_4_6(transit_conf, dns):
    t = start_sender(transit_conf, dns, {"internet": internet(transit_conf)})
    own = r"smtp connect address=127\.0\.0\.1\b"
    connects_before = len(re.findall(own, t.log_text()))
    relay_send(t, ALICE, ["x@loop.test"], message("loop"))
    line = fail_line(t, "x@loop.test")
    assert status_of(line) == "5.4.6", line
    (d,) = sp.wait_dsns(t, ALICE, 1)
    check_dsn(d, ALICE, ["x@loop.test"], r"^5\.4\.6$", diag_re=r"loop")
    # transit never connected to itself for it (only our own relay client did)
    assert len(re.findall(own, t.log_text())) == \
        connects_before, "transit connected to its own listener for loop.test"


# -- smart hosts, source IP, EHLO name ---------------------------------------------------

def test_smart_host_failover(transit_conf, dns, peers):
    t = transit_conf
    second = peers.sink(IP_PARTNER2, t.port_smtp, name="partner2")
    never = peers.sink(IP_MX1, t.port_smtp, name="partner-mx-by-dns")
    start_sender(t, dns, {
        "internet": internet(t),
        "partner": sp.smarthost_connector(["partner.test"],
                                          ["[mx1.partner.test]:%d" % t.port_smtp,
                                           "[mx2.partner.test]:%d" % t.port_smtp]),
    })
    qid = relay_send(t, ALICE, ["bob@partner.test"], message("failover smart host"))
    (m,) = second.wait_messages(1)
    assert m.rcpts == ["bob@partner.test"]
    wait_log(t, r"%s send to=<bob@partner\.test>.*via=partner.*relay=mx2\.partner\.test\[%s\]"
             % (qid, re.escape(IP_PARTNER2)))
    assert never.messages() == [], "smart-host connector used DNS MX of partner.test"


def test_source_ip_and_ehlo_name(transit_conf, dns, peers):
    t = transit_conf
    rx = peers.receiver(IP_MX1, t.port_smtp, "example.net", users=["known@example.net"])
    s = peers.sink(IP_NOMX, t.port_smtp)
    start_sender(t, dns, {"internet": internet(t, **{"source-ip": sp.OUT_SOURCE_IP,
                                                    "fqdn": "out.example.test"})})
    qid = relay_send(t, ALICE, ["known@example.net", "x@nomx.test"], message("source ip"))
    (m,) = s.wait_messages(1)
    assert m.client_addr == sp.OUT_SOURCE_IP, "sink saw client %r" % m.client_addr
    assert m.helo == "out.example.test", "EHLO name %r" % m.helo
    (d,) = rx.wait_for_mail("known@example.net", 1, timeout=15)
    assert b"END-OF-TEST-MESSAGE" in d.data
    assert rx.connects() and set(rx.connects()) == {sp.OUT_SOURCE_IP}, rx.connects()
    wait_log(t, r"%s removed" % qid)


# -- TLS --------------------------------------------------------------------------------------

def test_tls_require_without_starttls_defers_and_sends_nothing(transit_conf, dns, peers):
    t = transit_conf
    mx1 = peers.sink(IP_MX1, t.port_smtp, name="mx1")     # smtp-sink never offers STARTTLS
    mx2 = peers.sink(IP_MX2, t.port_smtp, name="mx2")
    start_sender(t, dns, {"internet": internet(t, tls="require")})
    qid = relay_send(t, ALICE, ["x@example.net"], message("tls required"))
    m = first_match(t, r"%s defer to=<x@example\.net>[^\n]*" % qid)
    assert "4.7.4" in m.group(0), m.group(0)
    time.sleep(0.5)
    for s in (mx1, mx2):
        assert s.messages() == [], "%s got mail in clear: %r" % (s.name, s.messages())
        assert s.counters()["mesg"] == 0
    assert "send to=<x@example.net>" not in t.log_text()
    assert t.all_delivered() == []


def make_ca_and_cert(d, name):
    """A private CA and a server certificate for `name` (openssl CLI)."""
    def run(*args):
        subprocess.run([sp.OPENSSL] + list(args), check=True, capture_output=True, timeout=60)
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, crt = (os.path.join(d, n) for n in ("mx.key", "mx.csr", "mx.pem"))
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
                % name)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
        "-days", "2", "-subj", "/CN=Transit Test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", crt,
        "-days", "2", "-extfile", ext)
    return ca, crt, key


@pytest.mark.parametrize("trusted", [True, False])
def test_tls_require_verified(transit_conf, dns, peers, trusted):
    sp.need(sp.OPENSSL, "openssl")
    t = transit_conf
    ca, crt, key = make_ca_and_cert(peers.base, "mx1.example.net")
    rx = peers.receiver(IP_MX1, t.port_smtp, "example.net", users=["known@example.net"],
                        fqdn="mx1.example.net", tls_cert=crt, tls_key=key)
    mx2 = peers.sink(IP_MX2, t.port_smtp, name="mx2")  # no STARTTLS: must get nothing either
    conn = {"tls": "require"}
    if trusted:
        conn["tls-ca-file"] = ca
    start_sender(t, dns, {"internet": internet(t, **conn)})
    qid = relay_send(t, ALICE, ["known@example.net"], message("verified tls"))
    if trusted:
        (d,) = rx.wait_for_mail("known@example.net", 1, timeout=15)
        assert b"END-OF-TEST-MESSAGE" in d.data
        wait_log(t, r"%s send to=<known@example\.net>.*status=2\.0\.0" % qid)
        assert re.search(r"smtp tls ", rx.log_text()), "receiver logged no TLS session"
    else:
        m = first_match(t, r"%s defer to=<known@example\.net>[^\n]*" % qid)
        assert re.search(r"status=4\.7\.\d", m.group(0)), m.group(0)
        time.sleep(0.5)
        assert rx.mail_files("known@example.net") == [], "delivered over unverified TLS"
        assert not re.search(r" receive from=", rx.log_text())
    assert mx2.messages() == [], "mail went to the less preferred MX without TLS"


# -- the SMTP client's protocol use ----------------------------------------------------------

@pytest.mark.parametrize("offered", [True, False])
def test_pipelining(transit_conf, dns, peers, offered):
    """RFC 2920: with PIPELINING offered, MAIL and the RCPTs arrive in one
    read() at the receiver; without it, never (one command per reply)."""
    t = transit_conf
    s = peers.sink(IP_MX1, t.port_smtp, opts=[] if offered else ["-p"], trace=True)
    start_sender(t, dns, {"internet": internet(t)})
    qid = relay_send(t, ALICE, ["a@example.net", "b@example.net", "c@example.net"],
                     message("pipelining"))
    (m,) = s.wait_messages(1)
    assert sorted(m.rcpts) == ["a@example.net", "b@example.net", "c@example.net"]
    wait_log(t, r"%s removed" % qid)
    reads = s.reads()
    assert any(b"MAIL FROM:" in r.upper() for r in reads), "strace saw no MAIL: %r" % reads[:20]
    batched = [r for r in reads if b"MAIL FROM:" in r.upper() and b"RCPT TO:" in r.upper()]
    if offered:
        assert batched, "MAIL and RCPT never arrived together: %r" % [
            r for r in reads if b"MAIL" in r.upper() or b"RCPT" in r.upper()]
    else:
        assert not batched, "pipelined although the server did not offer PIPELINING: %r" % batched


def test_connection_reuse(transit_conf, dns, peers):
    """smtp-sink waits 1 s before answering DATA, so while the first message
    is in flight the others queue for the same next hop and must be sent
    over the same connection."""
    t = transit_conf
    s = peers.sink(IP_MX1, t.port_smtp, opts=["-w", "1"])
    start_sender(t, dns, {"internet": internet(t)})
    with sp.client(t) as c:
        c.ehlo()
        qids = [c.mail_transaction(ALICE, ["r%d@example.net" % i], message("reuse %d" % i))
                for i in range(4)]
    s.wait_messages(4, timeout=30)
    for q in qids:
        wait_log(t, r"%s removed" % q, timeout=10)
    time.sleep(0.5)
    opened = len(re.findall(r"smtp connected connector=internet", t.log_text()))
    assert opened == 1, "4 messages to one next hop used %d connections" % opened
    cnt = s.counters()
    assert cnt["mesg"] == 4 and cnt["sess"] <= 1, cnt


def test_smtputf8_to_server_without_smtputf8_fails_5_6_7(transit_conf, dns, peers):
    t = transit_conf
    s = peers.sink(IP_MX1, t.port_smtp, name="mx1")     # smtp-sink does not offer SMTPUTF8
    s2 = peers.sink(IP_MX2, t.port_smtp, name="mx2")
    start_sender(t, dns, {"internet": internet(t)})
    body = message("utf8").replace(b"Subject: utf8",
                                   "Subject: caf\u00e9 \u2615".encode("utf-8"))
    qid = relay_send(t, ALICE, ["x@example.net"], body, mail_params=" SMTPUTF8 BODY=8BITMIME")
    line = fail_line(t, "x@example.net")
    assert status_of(line) == "5.6.7", line
    (d,) = sp.wait_dsns(t, ALICE, 1)
    check_dsn(d, ALICE, ["x@example.net"], r"^5\.6\.7$",
              status_types=("message/delivery-status", "message/global-delivery-status"))
    wait_log(t, r"%s removed" % qid)
    assert s.messages() == [] and s2.messages() == [], \
        "an SMTPUTF8 message was sent to a server without SMTPUTF8"


def test_per_recipient_5xx_fails_only_that_recipient(transit_conf, dns, peers):
    t = transit_conf
    rx = peers.receiver(IP_MX1, t.port_smtp, "example.net", users=["known@example.net"])
    # the receiver offers STARTTLS with a self-signed certificate: opportunistic TLS uses it
    start_sender(t, dns, {"internet": internet(t, tls="opportunistic")})
    qid = relay_send(t, ALICE, ["known@example.net", "unknown@example.net"],
                     message("per recipient"))
    (d,) = rx.wait_for_mail("known@example.net", 1, timeout=15)
    assert b"per recipient" in d.data
    line = fail_line(t, "unknown@example.net")
    assert status_of(line) == "5.1.1", line
    wait_log(t, r"%s send to=<known@example\.net>.*status=2\.0\.0" % qid)
    (dsn,) = sp.wait_dsns(t, ALICE, 1)
    x = check_dsn(dsn, ALICE, ["unknown@example.net"], r"^5\.1\.1$",
                  diag_re=r"^smtp;\s*550[ -]5\.1\.1\b.*unknown@example\.net",
                  remote_mta="mx1.example.net", original_subject="per recipient")
    assert "known@example.net" not in json.dumps([r for r in x.per_rcpt]).replace(
        "unknown@example.net", ""), "the delivered recipient must not be in the DSN"
    wait_log(t, r"%s removed" % qid)


# -- retry, expiry, DSN options ---------------------------------------------------------------

@pytest.mark.timeout(60)
def test_retry_then_success(transit_conf, dns, peers):
    t = transit_conf
    start_sender(t, dns, {"internet": internet(t)}, queue={"retry": ["1s"], "expire": "1h"})
    qid = relay_send(t, ALICE, ["x@example.net"], message("retry"))
    m = first_match(t, r"%s defer to=<x@example\.net>[^\n]*" % qid)
    assert re.search(r"status=4\.", m.group(0)), m.group(0)
    s = peers.sink(IP_MX1, t.port_smtp)
    (got,) = s.wait_messages(1, timeout=20)
    assert got.rcpts == ["x@example.net"]
    wait_log(t, r"%s send to=<x@example\.net>.*status=2\.0\.0" % qid)
    wait_log(t, r"%s removed" % qid)
    assert t.all_delivered() == [], "no DSN for a delivered message"


@pytest.mark.timeout(60)
def test_expiry_fails_4_4_7_with_dsn(transit_conf, dns):
    t = start_sender(transit_conf, dns, {"internet": internet(transit_conf)},
                     queue={"retry": ["1s"], "expire": "3s"})
    sent = time.monotonic()
    qid = relay_send(t, ALICE, ["x@example.net"], message("expiry"))
    wait_log(t, r"%s defer to=<x@example\.net>" % qid)
    line = fail_line(t, "x@example.net", timeout=20)
    assert status_of(line) == "4.4.7", line
    assert time.monotonic() - sent >= 2.5, "failed before the expiry time"
    (d,) = sp.wait_dsns(t, ALICE, 1)
    check_dsn(d, ALICE, ["x@example.net"], r"^4\.4\.7$", original_subject="expiry")
    wait_log(t, r"%s removed" % qid)


def test_null_sender_gets_no_dsn(transit_conf, dns):
    t = start_sender(transit_conf, dns, {"internet": internet(transit_conf)})
    qid = relay_send(t, "", ["x@nullmx.test"], message("from null sender", sender="mailer@x.test"))
    fail_line(t, "x@nullmx.test")
    wait_log(t, r"%s removed" % qid)
    time.sleep(1.0)
    assert not re.search(r"%s dsn " % qid, t.log_text()), "a DSN was made for a null sender"
    assert t.all_delivered() == []
    assert t.queue_json() == []


def test_notify_never_gets_no_dsn(transit_conf, dns):
    t = start_sender(transit_conf, dns, {"internet": internet(transit_conf)})
    qid = relay_send(t, ALICE, ["x@nullmx.test"], message("notify never"),
                     rcpt_params=" NOTIFY=NEVER")
    fail_line(t, "x@nullmx.test")
    wait_log(t, r"%s removed" % qid)
    time.sleep(1.0)
    assert not re.search(r"%s dsn " % qid, t.log_text())
    assert t.all_delivered() == []


@pytest.mark.parametrize("peer_dsn", [False, True])
def test_notify_success(transit_conf, dns, peers, peer_dsn):
    """NOTIFY=SUCCESS: a peer without DSN → our own "relayed" DSN; a peer
    with DSN → NOTIFY is passed on and we send none (it reports itself)."""
    t = transit_conf
    s = peers.sink(IP_MX1, t.port_smtp, opts=[] if peer_dsn else ["-N"])
    start_sender(t, dns, {"internet": internet(t)})
    qid = relay_send(t, ALICE, ["x@example.net"], message("notify success"),
                     rcpt_params=" NOTIFY=SUCCESS,FAILURE")
    (m,) = s.wait_messages(1)
    wait_log(t, r"%s removed" % qid)
    if peer_dsn:
        assert re.search(r"NOTIFY=SUCCESS", m.rcpt_args[0], re.I), m.rcpt_args
        time.sleep(1.0)
        assert t.all_delivered() == [], "success DSN sent although the next hop speaks DSN"
    else:
        assert "NOTIFY" not in m.rcpt_args[0].upper(), "NOTIFY sent to a peer without DSN"
        (d,) = sp.wait_dsns(t, ALICE, 1)
        check_dsn(d, ALICE, ["x@example.net"], r"^2\.\d+\.\d+$", action="relayed",
                  remote_mta="mx1.example.net", original_subject="notify success")
        assert re.search(r"%s dsn kind=(success|relay)" % qid, t.log_text()), \
            log_excerpt(t, qid)


def log_excerpt(t, qid):
    return "\n".join(sp.log_lines(t, qid))


def test_dsn_template(transit_conf, dns):
    tpl = os.path.join(transit_conf.dir, "dsn-template.txt")
    with open(tpl, "w") as f:
        f.write("Dear %{sender},\nyour message %{qid} could not be delivered to:\n"
                "%{recipients}\n-- the transit test template\n")
    t = start_sender(transit_conf, dns, {"internet": internet(transit_conf)},
                     dsn={"template": tpl})
    qid = relay_send(t, ALICE, ["x@nullmx.test"], message("templated"))
    (d,) = sp.wait_dsns(t, ALICE, 1)
    x = check_dsn(d, ALICE, ["x@nullmx.test"], r"^5\.1\.10$")
    text = x.parts[0].get_payload(decode=True).decode("utf-8", "replace")
    assert "the transit test template" in text, text
    assert "Dear %s," % ALICE in text, text
    assert qid in text and "x@nullmx.test" in text, text
    assert "%{" not in text, "unexpanded placeholder: %s" % text


# -- the queue viewer by next hop ---------------------------------------------------------------

def test_queue_list_by_next_hop(transit_conf, dns):
    t = start_sender(transit_conf, dns, {"internet": internet(transit_conf)},
                     queue={"retry": ["1m"], "expire": "1h"})
    assert json.loads(t.ctl("queue", "list", "--by-next-hop", "--json", check=True).stdout) == []
    # local mailboxes broken the way test_queue.py does it (a file where a directory goes)
    broken = os.path.join(t.mail, "example.test")
    shutil.rmtree(broken, ignore_errors=True)
    with open(broken, "w") as f:
        f.write("not a directory\n")
    q1 = relay_send(t, ALICE, ["a@example.net", "b@example.net"], message("hop 1"))
    q2 = relay_send(t, ALICE, ["c@example.net"], message("hop 2"))
    q3 = relay_send(t, ALICE, ["d@nomx.test", "bob@example.test"], message("hop 3"))
    for q, r in ((q1, "a@example.net"), (q1, "b@example.net"), (q2, "c@example.net"),
                 (q3, "d@nomx.test"), (q3, "bob@example.test")):
        wait_log(t, r"%s defer to=<%s>" % (q, re.escape(r)))
    time.sleep(0.3)
    p = t.ctl("queue", "list", "--by-next-hop", "--json", check=True)
    hops = json.loads(p.stdout.decode())
    assert isinstance(hops, list), hops
    by = {h["next_hop"]: h for h in hops}
    assert set(by) == {"internet:example.net", "internet:nomx.test", "mailbox:example.test"}, hops
    for key, msgs, rcpts in (("internet:example.net", 2, 3), ("internet:nomx.test", 1, 1),
                             ("mailbox:example.test", 1, 1)):
        h = by[key]
        assert set(h) >= {"next_hop", "messages", "recipients", "oldest_age_seconds",
                          "last_error"}, h
        assert (h["messages"], h["recipients"]) == (msgs, rcpts), h
        assert isinstance(h["oldest_age_seconds"], int) and 0 <= h["oldest_age_seconds"] < 60, h
        assert h["last_error"], "no last error for %s: %r" % (key, h)
    assert re.search(r"refused|connect", by["internet:example.net"]["last_error"], re.I), hops

    text = t.ctl("queue", "list", "--by-next-hop", check=True).stdout.decode()
    head = text.splitlines()[0].upper()
    for col in ("MESSAGES", "RECIPIENTS", "OLDEST", "LAST-ERROR"):
        assert col in head, text
    for key, msgs, rcpts in (("internet:example.net", 2, 3), ("mailbox:example.test", 1, 1)):
        assert re.search(r"^%s\s+%d\s+%d\s" % (re.escape(key), msgs, rcpts), text, re.M), text


# -- more of the client: smart host by MX, content, limits, timeouts, DSN parameters ---------

def test_smart_host_without_brackets_uses_its_mx(transit_conf, dns, peers):
    """"partner.test:P" (no []) is looked up by MX (RFC 5321 5.1), "[x]" is not."""
    t = transit_conf
    s = peers.sink(IP_MX1, t.port_smtp, name="partner-mx")
    never = peers.sink(IP_PARTNER1, t.port_smtp, name="partner-a-record")
    start_sender(t, dns, {"internet": internet(t),
                          "partner": sp.smarthost_connector(["partner.test"],
                                                            ["partner.test:%d" % t.port_smtp])})
    qid = relay_send(t, ALICE, ["bob@partner.test"], message("smart host by mx"))
    (m,) = s.wait_messages(1)
    assert m.rcpts == ["bob@partner.test"]
    wait_log(t, r"%s send to=<bob@partner\.test>.*via=partner.*relay=mx1\.example\.net\[" % qid)
    assert never.messages() == []


def test_content_arrives_unchanged_dot_stuffing(transit_conf, dns, peers):
    """RFC 5321 4.5.2 on the way out: lines starting with "." (and one that
    is only ".") reach the next MTA exactly as submitted."""
    t = transit_conf
    rx = peers.receiver(IP_MX1, t.port_smtp, "example.net", users=["known@example.net"])
    start_sender(t, dns, {"internet": internet(t)})
    body = ("first line\r\n.\r\n..\r\n.hidden\r\n...three\r\n \r\n.\r\nx" + "y" * 990 +
            "\r\nEND-OF-TEST-MESSAGE\r\n")
    original = harness.make_message("dots", body=body, sender=ALICE, to="known@example.net",
                                    message_id="<dots@test.example>")
    qid = relay_send(t, ALICE, ["known@example.net"], original)
    (d,) = rx.wait_for_mail("known@example.net", 1, timeout=15)
    wait_log(t, r"%s removed" % qid)
    harness.check_maildir_file(d, ALICE, "known@example.net")
    rest = harness.strip_trace(d.data)[1]
    assert rest == harness.crlf_to_lf(original), "content changed in transit:\n%r\n!=\n%r" % (
        rest[:600], harness.crlf_to_lf(original)[:600])


def test_remote_size_limit_fails_with_dsn(transit_conf, dns, peers):
    """The next hop says SIZE 10240 (a transitd with max-message-size 10K):
    a 50 KB message fails 5.3.4 with a DSN and is not received there."""
    t = transit_conf
    rx = peers.receiver(IP_MX1, t.port_smtp, "example.net", users=["known@example.net"])
    rx.cfg["receive-connector"]["internet"]["max-message-size"] = "10K"
    rx.write_config()
    rx.restart()
    start_sender(t, dns, {"internet": internet(t)})
    qid = relay_send(t, ALICE, ["known@example.net"], message("too big for them", size=50 * KB))
    line = fail_line(t, "known@example.net")
    assert status_of(line) == "5.3.4", line
    (d,) = sp.wait_dsns(t, ALICE, 1)
    check_dsn(d, ALICE, ["known@example.net"], r"^5\.3\.4$", original_subject="too big for them")
    wait_log(t, r"%s removed" % qid)
    assert rx.mail_files("known@example.net") == []


@pytest.mark.timeout(60)
def test_temporary_recipient_refusal_is_retried_without_duplicates(transit_conf, dns, peers):
    """The next hop takes 2 recipients per transaction (452 4.5.3 for the
    third, RFC 5321 4.5.3.1.10): the third is tried again later, and every
    recipient gets exactly one copy."""
    t = transit_conf
    users = ["k1@example.net", "k2@example.net", "k3@example.net"]
    rx = peers.receiver(IP_MX1, t.port_smtp, "example.net", users=users)
    rx.cfg["receive-connector"]["internet"]["max-recipients"] = 2
    rx.write_config()
    rx.restart()
    start_sender(t, dns, {"internet": internet(t)}, queue={"retry": ["1s"], "expire": "1h"})
    qid = relay_send(t, ALICE, users, message("three recipients"))
    for u in users:
        rx.wait_for_mail(u, 1, timeout=20)
    wait_log(t, r"%s removed" % qid, timeout=20)
    time.sleep(1.0)
    for u in users:
        assert len(rx.mail_files(u)) == 1, "%s got %d copies" % (u, len(rx.mail_files(u)))
    sends = re.findall(r"%s send to=<(\S+)>" % qid, t.log_text())
    assert sorted(sends) == sorted(users), sends
    assert t.all_delivered() == [], "no DSN: everything was delivered"


@pytest.mark.parametrize("phase", ["ehlo", "rcpt"])
def test_command_timeout(transit_conf, dns, peers, phase):
    """A next hop that does not answer EHLO / RCPT within command-timeout:
    the attempt is abandoned (deferred), not waited for. (smtp-sink's -W
    answers out of order when commands are pipelined, so the RCPT case
    turns PIPELINING off with -p.)"""
    t = transit_conf
    opts = ["-W", "ehlo:8"] if phase == "ehlo" else ["-p", "-W", "rcpt:8"]
    s = peers.sink(IP_MX1, t.port_smtp, opts=opts, name="slow")
    start_sender(t, dns, {"internet": internet(t, **{"command-timeout": "2s"})})
    sent = time.monotonic()
    qid = relay_send(t, ALICE, ["x@example.net"], message("slow rcpt"))
    m = first_match(t, r"%s defer to=<x@example\.net>[^\n]*" % qid, timeout=12)
    took = time.monotonic() - sent
    assert took < 7.5, "deferred only after %.1fs (command-timeout is 2s, the peer waits 8s)" % took
    assert re.search(r"status=4\.", m.group(0)), m.group(0)
    assert re.search(r"mx1\.example\.net\S*: timeout|timed? ?out", t.log_text(), re.I), \
        "the timeout at mx1 is not in the log"
    assert s.messages(b"END-OF-TEST-MESSAGE") == []
    assert "%s send to=" % qid not in t.log_text()


def test_dsn_parameters_passed_on_and_reported(transit_conf, dns, peers):
    """RFC 3461: ENVID, RET, NOTIFY and ORCPT go to a next hop that offers
    DSN; a failure DSN reports Original-Envelope-Id and Original-Recipient."""
    t = transit_conf
    s = peers.sink(IP_MX1, t.port_smtp)
    start_sender(t, dns, {"internet": internet(t)})
    relay_send(t, ALICE, ["x@example.net"], message("dsn params"),
               mail_params=" RET=HDRS ENVID=env-42",
               rcpt_params=" NOTIFY=FAILURE,DELAY ORCPT=rfc822;orig@example.org")
    (m,) = s.wait_messages(1)
    margs = m.mail_args.upper()
    assert "RET=HDRS" in margs and "ENVID=ENV-42" in margs, m.mail_args
    rargs = m.rcpt_args[0].upper()
    assert re.search(r"NOTIFY=(FAILURE,DELAY|DELAY,FAILURE)", rargs), m.rcpt_args
    assert "ORCPT=RFC822;ORIG@EXAMPLE.ORG" in rargs, m.rcpt_args

    relay_send(t, ALICE, ["y@nullmx.test"], message("dsn params fail"),
               mail_params=" ENVID=env-43", rcpt_params=" ORCPT=rfc822;first@example.org")
    (d,) = sp.wait_dsns(t, ALICE, 1)
    x = check_dsn(d, ALICE, ["y@nullmx.test"], r"^5\.1\.10$")
    assert x.per_message.get("original-envelope-id") == "env-43", x.per_message
    orcpt = x.rcpt("y@nullmx.test").get("original-recipient", "").replace(" ", "").lower()
    assert orcpt == "rfc822;first@example.org", x.per_rcpt


@pytest.mark.timeout(60)
def test_delay_notice_once(transit_conf, dns):
    """delay-notice = 1s: one "delayed" DSN (RFC 3464 Action: delayed,
    Will-Retry-Until), not one per retry; the message stays queued."""
    t = start_sender(transit_conf, dns, {"internet": internet(transit_conf)},
                     queue={"retry": ["1s"], "expire": "1h", "delay-notice": "1s"})
    qid = relay_send(t, ALICE, ["x@example.net"], message("delayed"))
    wait_log(t, r"%s dsn kind=delay " % qid, timeout=15)
    (d,) = sp.wait_dsns(t, ALICE, 1)
    x = check_dsn(d, ALICE, ["x@example.net"], r"^4\.\d+\.\d+$", action="delayed",
                  original_subject="delayed")
    assert x.rcpt("x@example.net").get("will-retry-until"), x.per_rcpt
    wait_log(t, r"%s defer to=<x@example\.net>" % qid, count=3, timeout=15)
    assert len(t.mail_files(ALICE)) == 1, "more than one delay notice"
    assert len(re.findall(r"%s dsn kind=delay" % qid, t.log_text())) == 1
    assert any(qid in json.dumps(e) for e in t.queue_json()), "the message must stay queued"


@pytest.mark.timeout(60)
def test_remote_mail_survives_restart(transit_conf, dns, peers):
    t = start_sender(transit_conf, dns, {"internet": internet(transit_conf)},
                     queue={"retry": ["1s"], "expire": "1h"})
    qid = relay_send(t, ALICE, ["x@example.net"], message("restart"))
    wait_log(t, r"%s defer to=<x@example\.net>" % qid)
    t.stop()
    s = peers.sink(IP_MX1, t.port_smtp)
    t.start()
    (m,) = s.wait_messages(1, timeout=20)
    assert m.rcpts == ["x@example.net"]
    wait_log(t, r"%s removed" % qid)
    time.sleep(1.0)
    assert len(s.messages()) == 1, "delivered more than once"


def test_aaaa_record_without_mx(transit_conf, dns, peers):
    """v6.test has only an AAAA record (::1): the implicit MX over IPv6."""
    t = transit_conf
    s = peers.sink("::1", t.port_smtp, name="sink-v6")
    start_sender(t, dns, {"internet": internet(t)})
    qid = relay_send(t, ALICE, ["x@v6.test"], message("over ipv6"))
    (m,) = s.wait_messages(1)
    assert m.rcpts == ["x@v6.test"] and m.client_addr.lower() in ("ipv6:::1", "::1"), m
    wait_log(t, r"%s send to=<x@v6\.test>.*relay=\S*\[::1\]" % qid)


def test_local_and_remote_recipients_in_one_message(transit_conf, dns, peers):
    t = transit_conf
    s = peers.sink(IP_MX1, t.port_smtp)
    start_sender(t, dns, {"internet": internet(t)})
    qid = relay_send(t, ALICE, ["bob@example.test", "x@example.net"], message("mixed local"))
    (m,) = s.wait_messages(1)
    assert m.rcpts == ["x@example.net"], m
    (d,) = t.wait_for_mail("bob@example.test", 1, timeout=15)
    harness.check_maildir_file(d, ALICE, "bob@example.test")
    wait_log(t, r"%s removed" % qid)


@pytest.mark.timeout(90)
def test_many_recipients_one_next_hop_each_exactly_once(transit_conf, dns, peers):
    t = transit_conf
    s = peers.sink(IP_MX1, t.port_smtp)
    start_sender(t, dns, {"internet": internet(t)})
    rcpts = ["user%03d@example.net" % i for i in range(100)]
    qid = relay_send(t, ALICE, rcpts, message("hundred", size=300 * KB))
    wait_log(t, r"%s removed" % qid, timeout=60)
    got = [r for m in s.messages(b"END-OF-TEST-MESSAGE") for r in m.rcpts]
    assert sorted(got) == rcpts, "missing %s, duplicated %s" % (
        sorted(set(rcpts) - set(got))[:5], sorted(r for r in set(got) if got.count(r) > 1)[:5])
    sends = re.findall(r"%s send to=<(\S+)>" % qid, t.log_text())
    assert sorted(sends) == rcpts


def test_dsn_to_a_remote_sender_goes_out_with_null_sender(transit_conf, dns, peers):
    """The sender is remote (someone@other.test): the DSN is itself relayed
    through the "*" connector, with MAIL FROM:<> (RFC 3461 6.2)."""
    t = transit_conf
    s = peers.sink(IP_MX1, t.port_smtp)        # other.test MX
    start_sender(t, dns, {"internet": internet(t)})
    qid = relay_send(t, "someone@other.test", ["x@nullmx.test"],
                     message("bounce me", sender="someone@other.test"))
    (m,) = s.wait_messages(1, marker=b"multipart/report")
    assert m.rcpts == ["someone@other.test"], m
    assert m.mail_args.split()[0] == "<>", "DSN sent with MAIL FROM %r" % m.mail_args
    ct = m.msg.get_content_type()
    assert ct == "multipart/report" and m.msg.get_param("report-type") == "delivery-status", ct
    dsn_id = first_match(t, r"%s dsn kind=failure dsn-id=(\S+)" % qid).group(1)
    wait_log(t, r"%s send to=<someone@other\.test> from=<>.*status=2\.0\.0" % re.escape(dsn_id))


def test_unusable_source_ip_defers(transit_conf, dns, peers):
    """source-ip that is not an address of this host: bind() fails; the
    message is deferred with the reason, nothing crashes."""
    t = transit_conf
    s = peers.sink(IP_MX1, t.port_smtp)
    start_sender(t, dns, {"internet": internet(t, **{"source-ip": "192.0.2.55"})})
    qid = relay_send(t, ALICE, ["x@example.net"], message("bad source"))
    m = first_match(t, r"%s defer to=<x@example\.net>[^\n]*" % qid)
    assert re.search(r"status=4\.", m.group(0)), m.group(0)
    assert s.messages() == []
    assert t.alive()


# -- what the next hop says, and how it is reported ------------------------------------------

def test_rejected_at_end_of_data_fails_all_with_one_dsn(transit_conf, dns, peers):
    """A 5xx to the final ".": every recipient of that transaction failed,
    the DSN quotes the remote reply and names the Remote-MTA."""
    t = transit_conf
    peers.sink(IP_MX1, t.port_smtp, opts=["-f", ".", "-B", "554 5.6.0 Content rejected by policy"])
    start_sender(t, dns, {"internet": internet(t)})
    qid = relay_send(t, ALICE, ["a@example.net", "b@example.net"], message("rejected content"))
    for r in ("a@example.net", "b@example.net"):
        assert status_of(fail_line(t, r)) == "5.6.0"
    wait_log(t, r"%s removed" % qid)
    dsns = sp.wait_dsns(t, ALICE, 1)
    time.sleep(0.5)
    dsns = [harness.read_delivered(p) for p in t.mail_files(ALICE)]
    assert len(dsns) == 1, "one DSN for both recipients, got %d" % len(dsns)
    check_dsn(dsns[0], ALICE, ["a@example.net", "b@example.net"], r"^5\.6\.0$",
              diag_re=r"^smtp;\s*554 5\.6\.0 Content rejected by policy",
              remote_mta="mx1.example.net", original_subject="rejected content")


def test_all_recipients_refused_quotes_the_rcpt_reply(transit_conf, dns, peers):
    """Every RCPT refused (pipelined DATA then gets a 5xx/503 too): the
    recipients fail with the RCPT reply, not with the reply to DATA."""
    t = transit_conf
    peers.sink(IP_MX1, t.port_smtp, opts=["-f", "rcpt", "-B", "550 5.1.1 No such user here"])
    start_sender(t, dns, {"internet": internet(t)})
    qid = relay_send(t, ALICE, ["a@example.net"], message("no such user"))
    line = fail_line(t, "a@example.net")
    assert status_of(line) == "5.1.1", line
    assert "No such user here" in line, line
    (d,) = sp.wait_dsns(t, ALICE, 1)
    check_dsn(d, ALICE, ["a@example.net"], r"^5\.1\.1$",
              diag_re=r"^smtp;\s*550 5\.1\.1 No such user here", remote_mta="mx1.example.net")
    wait_log(t, r"%s removed" % qid)


@pytest.mark.parametrize("how", ["disconnect-after-data", "421-after-mail", "450-after-dot"])
def test_temporary_trouble_at_the_next_hop_defers(transit_conf, dns, peers, how):
    t = transit_conf
    opts = {"disconnect-after-data": ["-q", "data"], "421-after-mail": ["-Q", "mail"],
            "450-after-dot": ["-r", ".", "-b", "451 4.3.0 Try again later"]}[how]
    s = peers.sink(IP_MX1, t.port_smtp, opts=opts)
    start_sender(t, dns, {"internet": internet(t)}, queue={"retry": ["1m"], "expire": "1h"})
    qid = relay_send(t, ALICE, ["a@example.net", "b@example.net"], message("trouble " + how))
    for r in ("a@example.net", "b@example.net"):
        m = first_match(t, r"%s defer to=<%s>[^\n]*" % (qid, re.escape(r)))
        assert re.search(r"status=4\.", m.group(0)), m.group(0)
    if how == "450-after-dot":
        assert "451 4.3.0 Try again later" in t.log_text()
    time.sleep(0.5)
    assert not re.search(r"%s (send|fail) " % qid, t.log_text())
    assert t.all_delivered() == [], "no DSN for a temporary failure"
    assert t.alive()
    if how != "450-after-dot":      # smtp-sink dumps what it then refuses with 451
        assert s.messages(b"END-OF-TEST-MESSAGE") == []


def test_helo_fallback_when_ehlo_is_refused(transit_conf, dns, peers):
    """RFC 5321 3.2: EHLO refused with 5xx -> HELO, and then no ESMTP
    extension is used (no parameters on MAIL/RCPT)."""
    t = transit_conf
    s = peers.sink(IP_MX1, t.port_smtp, opts=["-f", "ehlo"])
    start_sender(t, dns, {"internet": internet(t)})
    qid = relay_send(t, ALICE, ["a@example.net"], message("helo only"),
                     mail_params=" RET=HDRS ENVID=e1", rcpt_params=" NOTIFY=FAILURE")
    (m,) = s.wait_messages(1)
    assert (m.msg.get("X-Client-Proto") or "").strip() == "SMTP", m
    assert m.mail_args == "<%s>" % ALICE, "ESMTP parameters sent after HELO: %r" % m.mail_args
    assert m.rcpt_args == ["<a@example.net>"], m.rcpt_args
    wait_log(t, r"%s send to=<a@example\.net>.*status=2\.0\.0" % qid)


def test_quoted_local_parts_go_out_unchanged(transit_conf, dns, peers):
    """RFC 5321 4.1.2: a quoted-string local part and atext specials are
    sent to the next hop as they came (no re-quoting, no case change)."""
    t = transit_conf
    s = peers.sink(IP_MX1, t.port_smtp)
    start_sender(t, dns, {"internet": internet(t)})
    rcpts = ['"John Doe"@example.net', "o'Brien+tag@example.net"]
    qid = relay_send(t, '"Mail Sender"@example.org', rcpts, message("quoted"))
    (m,) = s.wait_messages(1)
    path = lambda a: re.match(r"<[^>]*>", a).group(0)  # noqa: E731 (the <...> of an argument)
    assert path(m.mail_args) == '<"Mail Sender"@example.org>', m.mail_args
    assert sorted(path(a) for a in m.rcpt_args) == sorted("<%s>" % r for r in rcpts), m.rcpt_args
    wait_log(t, r"%s removed" % qid)


@pytest.mark.timeout(60)
def test_shutdown_during_delivery_then_delivered_once(transit_conf, dns, peers):
    """SIGTERM while a transaction waits for the next hop: transitd exits
    promptly (conftest fails the test otherwise, and on a sanitizer report);
    after the restart the message is delivered, exactly one complete copy."""
    t = transit_conf
    s = peers.sink(IP_MX1, t.port_smtp, opts=["-w", "3"])
    start_sender(t, dns, {"internet": internet(t)}, queue={"retry": ["1s"], "expire": "1h"})
    qid = relay_send(t, ALICE, ["x@example.net"], message("interrupted"))
    wait_log(t, r"smtp connected connector=internet nexthop=example\.net")
    time.sleep(0.5)
    begun = time.monotonic()
    t.stop()
    assert time.monotonic() - begun < 5, "transitd took %.1fs to stop" % (time.monotonic() - begun)
    assert not t.problems, t.problems
    assert s.messages(b"END-OF-TEST-MESSAGE") == [], "the first transaction cannot have completed"
    t.start()
    s.wait_messages(1, timeout=25)
    wait_log(t, r"%s removed" % qid, timeout=15)
    time.sleep(1.0)
    assert len(s.messages(b"END-OF-TEST-MESSAGE")) == 1


def test_dns_trouble_is_temporary(transit_conf, dns):
    """A name our nameserver does not serve (nsd answers REFUSED, the
    resolver SERVFAIL): deferred 4.4.3 and retried, never failed. (Not
    .invalid: libunbound answers that RFC 6761 name NXDOMAIN itself.)"""
    t = start_sender(transit_conf, dns, {"internet": internet(transit_conf)},
                     queue={"retry": ["1s"], "expire": "1h"})
    qid = relay_send(t, ALICE, ["x@unserved.example"], message("dns trouble"))
    m = first_match(t, r"%s defer to=<x@unserved\.example>[^\n]*" % qid, timeout=30)
    assert status_of(m.group(0)) == "4.4.3", m.group(0)
    wait_log(t, r"%s defer to=<x@unserved\.example>" % qid, count=2, timeout=30)
    assert not re.search(r"%s fail " % qid, t.log_text())
    assert t.all_delivered() == []


@pytest.mark.timeout(60)
def test_delay_notice_respects_notify_and_ret(transit_conf, dns):
    """RFC 3461 4.1: NOTIFY=FAILURE alone asks for no delay notice; RET=FULL
    does not apply to delay notices (headers only)."""
    t = start_sender(transit_conf, dns, {"internet": internet(transit_conf)},
                     queue={"retry": ["1s"], "expire": "1h", "delay-notice": "1s"})
    with sp.client(t) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s> RET=FULL" % ALICE, 250, "2.1.0")
        c.expect("RCPT TO:<a@example.net> NOTIFY=FAILURE", 250, "2.1.5")
        c.expect("RCPT TO:<b@example.net>", 250, "2.1.5")
        c.expect("DATA", 354)
        qid = c.send_data(message("delay notify"))
    wait_log(t, r"%s dsn kind=delay " % qid, timeout=15)
    (d,) = sp.wait_dsns(t, ALICE, 1)
    check_dsn(d, ALICE, ["b@example.net"], r"^4\.\d+\.\d+$", action="delayed",
              part3="headers", original_subject="delay notify")
    wait_log(t, r"%s defer to=<a@example\.net>" % qid, count=3, timeout=15)
    assert len(t.mail_files(ALICE)) == 1


@pytest.mark.timeout(60)
def test_route_gone_after_restart_fails_5_4_4(transit_conf, dns):
    """Queued for "*", then the configuration loses every connector for the
    domain: the recipient fails 5.4.4 with a DSN (it is not kept forever)."""
    t = start_sender(transit_conf, dns, {"internet": internet(transit_conf)},
                     queue={"retry": ["1s"], "expire": "1h"})
    qid = relay_send(t, ALICE, ["x@example.net"], message("route gone"))
    wait_log(t, r"%s defer to=<x@example\.net>" % qid)
    t.stop()
    t.cfg["send-connector"] = {"partner": sp.smarthost_connector(
        ["partner.test"], ["[mx1.partner.test]:%d" % t.port_smtp])}
    t.write_config()
    t.start()
    line = fail_line(t, "x@example.net")
    assert status_of(line) == "5.4.4", line
    (d,) = sp.wait_dsns(t, ALICE, 1)
    check_dsn(d, ALICE, ["x@example.net"], r"^5\.4\.4$", original_subject="route gone")


def test_size_limit_counts_what_the_client_sent(transit_conf, dns, peers):
    """A message just under the partner limit (as the client sent it) is
    either delivered or refused at the end of DATA, but never accepted with
    250 and then failed for its size (transit's own Received field pushing
    it over the limit after the 250 would be an accept-then-bounce)."""
    t = transit_conf
    sink_a, sink_b = scenario(t, dns, peers)
    rc, out = explain(t, "bob@partner.test")
    limit = int(re.search(r"max-message-size=(\d+)", out).group(1))
    assert limit in (100 * 1000, 100 * 1024), out
    msg = message("at the limit", size=limit - 400, to="bob@partner.test")
    msg = msg.replace(b"END-OF-TEST-MESSAGE", b"x" * (limit - 40 - len(msg)) +
                      b"\r\nEND-OF-TEST-MESSAGE")
    assert limit - 40 <= len(msg) <= limit, (len(msg), limit)
    with sp.client(t) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % ALICE, 250, "2.1.0")
        c.expect("RCPT TO:<bob@partner.test>", 250, "2.1.5")
        c.expect("DATA", 354)
        r = c.send_data(msg, expect_code=None)
    if r.code != 250:
        harness.check_reply(r, 552, "5.3.4", what="end of DATA at the size limit")
        return
    qid = harness.QUEUED_RE.search(r.text).group(1)
    m = first_match(t, r"%s (send|fail) to=<bob@partner\.test>[^\n]*" % qid)
    assert m.group(1) == "send", "accepted with 250 (%d octets sent, limit %d), then: %s" % (
        len(msg), limit, m.group(0))
    (got,) = sink_b.wait_messages(1)
    assert got.rcpts == ["bob@partner.test"]
    assert t.all_delivered() == [], "no DSN"


def test_dot_lines_at_every_chunk_offset_arrive_unchanged(transit_conf, dns, peers):
    """~600 KB of lines that all start with "." and have every length from
    1 to 211: read and dot-stuffed in chunks, some line start and some CRLF
    fall on every chunk boundary a client may use; the next MTA must store
    exactly what was submitted."""
    t = transit_conf
    rx = peers.receiver(IP_MX1, t.port_smtp, "example.net", users=["known@example.net"])
    start_sender(t, dns, {"internet": internet(t)})
    lines, n = [], 0
    while sum(len(x) + 2 for x in lines) < 600 * KB:
        ln = 1 + n % 211
        lines.append(("." + "%d-" % n + "x" * ln)[:ln])
        n += 1
    body = "\r\n".join(lines) + "\r\nEND-OF-TEST-MESSAGE\r\n"
    original = harness.make_message("chunks", body=body, sender=ALICE, to="known@example.net",
                                    message_id="<chunks@test.example>")
    qid = relay_send(t, ALICE, ["known@example.net"], original)
    (d,) = rx.wait_for_mail("known@example.net", 1, timeout=30)
    wait_log(t, r"%s removed" % qid)
    rest = harness.strip_trace(d.data)[1]
    want = harness.crlf_to_lf(original)
    if rest != want:
        i = next((k for k in range(min(len(rest), len(want))) if rest[k] != want[k]),
                 min(len(rest), len(want)))
        raise AssertionError("content differs at octet %d of %d/%d: got %r, want %r" % (
            i, len(rest), len(want), rest[max(0, i - 40):i + 40], want[max(0, i - 40):i + 40]))


@pytest.mark.parametrize("reply", ["550", "550 5.1.1", "553 2.1.5 class of code and enhanced code differ",
                                   "550 5.7.1 " + "very long reason " * 60],
                         ids=["code-only", "no-text", "class-mismatch", "1000-chars"])
def test_odd_remote_replies_are_reported_safely(transit_conf, dns, peers, reply):
    """Whatever 5xx a next hop sends for RCPT (no text, no enhanced code,
    a contradicting enhanced code, ~1000 characters), the recipient fails,
    the DSN quotes the reply's code, and no DSN line exceeds 998 octets
    (RFC 5322 2.1.1)."""
    t = transit_conf
    peers.sink(IP_MX1, t.port_smtp, opts=["-f", "rcpt", "-B", reply])
    start_sender(t, dns, {"internet": internet(t)})
    qid = relay_send(t, ALICE, ["a@example.net"], message("odd reply"))
    line = fail_line(t, "a@example.net")
    assert re.search(r"status=5\.\d+\.\d+", line), line
    (d,) = sp.wait_dsns(t, ALICE, 1)
    x = check_dsn(d, ALICE, ["a@example.net"], r"^5\.\d+\.\d+$",
                  diag_re=r"^smtp;\s*%s\b" % reply[:3], remote_mta="mx1.example.net")
    if "very long" in reply:
        diag = re.sub(r"\s+", " ", x.rcpt("a@example.net").get("diagnostic-code", ""))
        assert "very long reason " * 20 in diag + " ", "the long reply was cut short: %r" % diag
    long_lines = [ln for ln in d.data.split(b"\n") if len(ln) > 998]
    assert not long_lines, "DSN line of %d octets" % len(long_lines[0])
    wait_log(t, r"%s removed" % qid)
