"""
test_rates.py - message and recipient rates (issue 7 "Rates"):
max-messages-per-minute-per-source / -per-login and
max-recipients-per-minute-per-source / -per-login on a receive connector.

Covers: with 3 messages a minute, the 4th MAIL from one source gets 450
4.7.0 while another source (127.0.0.2, a client bind address) is served;
the same for recipients at RCPT; an authenticated login is counted by login
across two source addresses (127.0.0.1 and 127.0.0.2), so one application
cannot flood from many; the log line names the source and the login; a rate
limit refusal is not an error and RSET/QUIT still work; a bad value is
refused by transitd -n.

Peers: raw SMTP from bound loopback source addresses, AUTH PLAIN over
loopback clear text (auth-cleartext = loopback).
"""

import base64
import socket

import pytest

import conftest
import harness
from conftest import PASSWORD


def plain(user, password):
    return base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


def connect_from(src, port):
    """A RawSMTP whose socket is bound to the source address src."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((src, 0))
    s.connect((conftest.HOST, port))
    c = harness.RawSMTP.__new__(harness.RawSMTP)
    c.timeout, c.buf, c.closed, c.sock, c.transcript = 10.0, bytearray(), False, s, []
    c.greeting()
    return c


def one_message(c, code=250, enh=None, sender="bob@example.test"):
    """MAIL (expecting code) and, when accepted, a whole message."""
    r = c.cmd("MAIL FROM:<%s>" % sender)
    harness.check_reply(r, code, enh)
    if code != 250:
        return r
    c.expect("RCPT TO:<alice@example.test>", 250)
    c.expect("DATA", 354)
    c.send_data(harness.make_message("rate"))
    return r


@pytest.mark.transit(internet={"max-messages-per-minute-per-source": 3})
def test_fourth_message_from_a_source_is_deferred(transit):
    c = connect_from("127.0.0.1", transit.port_smtp)
    with c:
        c.ehlo()
        for _ in range(3):
            one_message(c)
        r = one_message(c, 450, "4.7.0")
        assert "Too many messages" in r.text, r
        # not an error, the session goes on
        c.expect("RSET", 250)
        c.expect("NOOP", 250)
    # another source is not affected
    with connect_from("127.0.0.2", transit.port_smtp) as other:
        other.ehlo()
        one_message(other)
    # a new session from the first source is still over the rate
    with connect_from("127.0.0.1", transit.port_smtp) as again:
        again.ehlo()
        one_message(again, 450, "4.7.0")
    log = transit.log_text()
    assert 'cmd=MAIL reply="450 4.7.0" reason=rate-limit kind=messages address=127.0.0.1 ' \
        'source=127.0.0.1/32 login=- limit=3/min' in log, log
    assert "source=127.0.0.2/32" not in log
    transit.wait_for_mail("alice@example.test", 4)


@pytest.mark.transit(internet={"max-recipients-per-minute-per-source": 3})
def test_fourth_recipient_from_a_source_is_deferred(transit):
    with connect_from("127.0.0.1", transit.port_smtp) as c:
        c.ehlo()
        c.expect("MAIL FROM:<bob@example.test>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("RCPT TO:<bob@example.test>", 250)
        c.expect("RCPT TO:<postmaster@example.test>", 250)
        r = c.expect("RCPT TO:<abuse@example.test>", 450, "4.7.0")
        assert "Too many recipients" in r.text, r
        # the transaction with its three recipients still goes through
        c.expect("DATA", 354)
        c.send_data(harness.make_message("three recipients"))
    with connect_from("127.0.0.2", transit.port_smtp) as other:
        other.ehlo()
        other.expect("MAIL FROM:<bob@example.test>", 250)
        for _ in range(3):
            other.expect("RCPT TO:<alice@example.test>", 250)
        other.expect("RCPT TO:<alice@example.test>", 450, "4.7.0")
    assert 'cmd=RCPT reply="450 4.7.0" reason=rate-limit kind=recipients' in transit.log_text()


AUTH_CONNECTOR = {
    "permissions": ["anonymous", "authenticated"], "auth": ["plain"],
    "auth-cleartext": "loopback", "tls": "none",
    "max-messages-per-minute-per-login": 3,
    "max-recipients-per-minute-per-login": 100,
    "max-messages-per-minute-per-source": 100,
}


@pytest.mark.transit(internet=AUTH_CONNECTOR)
def test_login_is_counted_across_source_addresses(transit):
    """Two messages from 127.0.0.1 and two from 127.0.0.2 by one login:
    the 4th is over the login's 3 a minute; another login is not."""
    results = []
    for src in ("127.0.0.1", "127.0.0.2"):
        with connect_from(src, transit.port_smtp) as c:
            c.ehlo()
            c.expect("AUTH PLAIN " + plain("bob@example.test", PASSWORD), 235, "2.7.0")
            for _ in range(2):
                r = c.cmd("MAIL FROM:<bob@example.test>")
                results.append(r.code)
                if r.code == 250:
                    c.expect("RCPT TO:<alice@example.test>", 250)
                    c.expect("DATA", 354)
                    c.send_data(harness.make_message("by login"))
    assert results == [250, 250, 250, 450], results
    # another login from the same address is not affected
    with connect_from("127.0.0.2", transit.port_smtp) as c:
        c.ehlo()
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 235, "2.7.0")
        one_message(c, sender="alice@example.test")
    log = transit.log_text()
    assert 'reason=rate-limit kind=messages address=127.0.0.2 source=127.0.0.2/32 ' \
        'login=bob@example.test limit=3/min' in log, log


def test_bad_rate_is_refused_at_check(transit_conf):
    t = transit_conf
    t.connector("internet")["max-messages-per-minute-per-source"] = -1
    t.write_config()
    r = t.run_daemon("-c", t.conf_path, "-n")
    err = r.stderr.decode()
    assert r.returncode != 0
    assert "max-messages-per-minute-per-source: -1 is out of range" in err, err
