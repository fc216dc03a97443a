"""
test_security.py - hostile peers against transitd's receive path.

Covers: STARTTLS command injection (CVE-2011-0411; RFC 3207 4.2: after TLS
the client must EHLO again and nothing sent before counts), tls=require
(RFC 3207 4: 530 5.7.0), SMTP smuggling (RFC 5321 2.3.8 and 4.1.1.4: end of
data is CRLF.CRLF only, bare CR/LF is refused), relay tricks (percent hack,
quoted local parts, source routes RFC 5321 C, bang paths, double @), bare
CR/LF in commands, line length limits (RFC 5321 4.5.3.1), the error limit,
connection limits and timeouts (RFC 5321 4.5.3.2, 421 4.4.2).
"""

import os
import random
import socket
import time

import pytest

import harness
from harness import check_reply, make_message

SMUGGLED = (b"MAIL FROM:<bob@example.test>\r\n"
            b"RCPT TO:<alice@example.test>\r\n"
            b"DATA\r\n"
            b"From: <bob@example.test>\r\n"
            b"Subject: smuggled\r\n"
            b"\r\n"
            b"smuggled body\r\n")


# -- STARTTLS ----------------------------------------------------------------------

@pytest.mark.parametrize("injected", [
    b"MAIL FROM:<bob@example.test>\r\n",
    b"EHLO evil.example\r\nMAIL FROM:<bob@example.test>\r\nRCPT TO:<alice@example.test>\r\n",
], ids=["mail", "ehlo-mail-rcpt"])
def test_starttls_injection_is_discarded(transit, injected):
    c = transit.raw()
    assert "STARTTLS" in c.ehlo().keywords
    c.send(b"STARTTLS\r\n" + injected)
    check_reply(c.read_reply(), 220, "2.0.0", what="STARTTLS")
    c.tls_handshake()                     # also checks no plaintext reply leaked out
    # if the injected MAIL had run, RCPT would be accepted; without EHLO and
    # MAIL it is a bad sequence
    c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
    c.expect("MAIL FROM:<bob@example.test>", 503, "5.5.1")     # EHLO is needed again
    r = c.ehlo("client.example.net")
    assert "STARTTLS" not in r.keywords, "STARTTLS offered again inside TLS: %r" % r
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.expect("DATA", 354)
    c.send_data(make_message("after-starttls"))
    (d,) = transit.wait_for_mail("alice", 1, settle=0.5)
    assert d.subject == "after-starttls"


def test_starttls_inside_a_transaction(transit):
    """Refusing STARTTLS inside a transaction (503 5.5.1, as Postfix does) and
    accepting it are both fine; if accepted, the transaction must be gone."""
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    r = c.cmd("STARTTLS")
    if r.code == 503:
        check_reply(r, 503, "5.5.1", what="STARTTLS inside a transaction")
        c.expect("DATA", 354)             # refused STARTTLS left the transaction alone
        c.send_data(make_message("kept-transaction"))
        transit.wait_for_mail("alice", 1)
        return
    check_reply(r, 220, "2.0.0", what="STARTTLS")
    c.tls_handshake()
    c.ehlo()
    c.expect("DATA", 503, "5.5.1")        # the plaintext transaction is gone


def test_second_starttls_refused(transit):
    c = transit.raw()
    c.ehlo()
    c.starttls()
    c.ehlo()
    r = c.cmd("STARTTLS")
    assert 500 <= r.code < 600 and r.enh and r.enh.startswith("5."), r
    c.expect("NOOP", 250, "2.0.0")


@pytest.mark.transit(internet={"tls": "require"})
def test_tls_require(transit):
    c = transit.raw()
    r = c.ehlo()
    assert "STARTTLS" in r.keywords
    c.expect("MAIL FROM:<bob@example.test>", 530, "5.7.0")
    c.expect("RCPT TO:<alice@example.test>", (503, 530), "5.")
    c.expect("NOOP", 250, "2.0.0")
    c.starttls()
    c.ehlo()
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")


# -- SMTP smuggling ------------------------------------------------------------------

VARIANTS = {
    "lf-dot-lf": b"\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "crlf-dot-lf": b"\r\n.\n",
    "cr-dot-crlf": b"\r.\r\n",
    "crlf-dot-cr": b"\r\n.\r",
}


@pytest.mark.parametrize("variant", list(VARIANTS.values()), ids=list(VARIANTS))
def test_smuggling_is_refused(transit, variant):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.expect("DATA", 354)
    outer = (b"From: <bob@example.test>\r\nTo: <alice@example.test>\r\n"
             b"Subject: carrier\r\nMessage-ID: <carrier@client.test>\r\n\r\n"
             b"first line" + variant + SMUGGLED)
    c.send(outer + b"\r\n.\r\n")
    r = c.read_reply()
    check_reply(r, 554, "5.6.0", what="message with a bare CR/LF end-of-data look-alike")
    # exactly one reply for all of that: the next reply answers NOOP
    c.expect("NOOP", 250, "2.0.0")
    # the session goes on and a normal message gets through
    c.mail_transaction("bob@example.test", ["alice@example.test"],
                       make_message("normal-after", message_id="<normal-after@client.test>"))
    c.expect("QUIT", 221, "2.0.0")
    transit.wait_for_mail("alice", 1)
    time.sleep(1.5)                       # give a wrongly queued second message time to show up
    everything = transit.all_delivered()
    assert [d.subject for d in everything] == ["normal-after"], \
        "exactly one message per variant: %r" % everything
    for d in everything:
        assert d.subject != "smuggled"
        assert b"Subject: smuggled" not in d.header_block
    harness.wait_until(lambda: transit.queue_json() == [], 5, what="an empty queue")


@pytest.mark.parametrize("bare", [b"\n", b"\r"], ids=["bare-lf", "bare-cr"])
def test_bare_newline_in_data_refused(transit, bare):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.expect("DATA", 354)
    c.send(b"Subject: bare\r\n\r\nhalf a line" + bare + b"other half\r\n.\r\n")
    check_reply(c.read_reply(), 554, "5.6.0", what="message with a bare %r" % bare)
    c.expect("NOOP", 250, "2.0.0")
    c.mail_transaction("bob@example.test", ["alice@example.test"], make_message("clean"))
    transit.wait_for_mail("alice", 1, settle=1.0)
    assert [d.subject for d in transit.all_delivered()] == ["clean"]


# -- relaying --------------------------------------------------------------------------

@pytest.mark.parametrize("rcpt", [
    "alice@elsewhere.test",
    "alice%elsewhere.test@example.test",
    '"alice@elsewhere.test"@example.test',
    "@example.test:alice@elsewhere.test",
    "elsewhere.test!alice@example.test",
    "alice@elsewhere.test@example.test",
], ids=["plain", "percent", "quoted-at", "source-route", "bang", "double-at"])
def test_relay_tricks_denied(transit, rcpt):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<alice@example.test>", 250, "2.1.0")   # a local sender changes nothing
    c.expect("RCPT TO:<%s>" % rcpt, 550, "5.7.1")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.expect("DATA", 354)
    c.send_data(make_message("relay-check", to=rcpt))
    (d,) = transit.wait_for_mail("alice", 1, settle=1.0)
    assert len(transit.all_delivered()) == 1


# -- bare CR / LF in commands -----------------------------------------------------------

@pytest.mark.parametrize("sep", [b"\n", b"\r"], ids=["bare-lf", "bare-cr"])
def test_bare_newline_in_command(transit, sep):
    c = transit.raw()
    c.ehlo()
    c.send(b"MAIL FROM:<bob@example.test>" + sep + b"RCPT TO:<alice@example.test>\r\n")
    first = c.read_reply()
    check_reply(first, 500, "5.5.2", what="command with a bare %r" % sep)
    c.send(b"NOOP\r\n")
    replies = [first]
    while True:                           # whatever came for the rest, then the NOOP's 250
        r = c.read_reply()
        replies.append(r)
        if r.code < 400:
            break
        assert len(replies) < 5, replies
    check_reply(replies[-1], 250, "2.0.0", what="NOOP (MAIL must not have been accepted)")
    for r in replies[:-1]:
        assert r.code >= 500, replies
    c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")     # no transaction exists


def test_bare_lf_ehlo(transit):
    c = transit.raw()
    c.send(b"EHLO client.example.net\n")
    c.send(b"NOOP\r\n")
    r = c.read_reply()
    check_reply(r, 500, "5.5.2", what="EHLO ending in a bare LF")


# -- line length ------------------------------------------------------------------------

def _line_limit(transit, limit):
    c = transit.raw()
    c.ehlo()
    pad = b"x" * (limit - len(b"NOOP \r\n"))
    c.send(b"NOOP " + pad + b"\r\n")                             # exactly the limit
    check_reply(c.read_reply(), 250, "2.0.0", what="command line of exactly %d octets" % limit)
    long_line = b"NOOP " + b"y" * (2 * limit) + b"MAIL FROM:<bob@example.test>\r\n"
    c.send(long_line)
    check_reply(c.read_reply(), 500, "5.5.", what="command line over %d octets" % limit)
    # one reply for the whole long line: its tail must not run as a command
    c.expect("NOOP", 250, "2.0.0")
    c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
    long_rcpt = "RCPT TO:<" + "a" * (limit + 10) + "@example.test>"
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    r = c.cmd(long_rcpt)
    assert r.code in (500, 501, 553) and r.enh and r.enh.startswith("5."), r
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")


def test_line_length_default(transit):
    _line_limit(transit, 2048)


@pytest.mark.transit(internet={"max-line-length": 512})
def test_line_length_configured(transit):
    _line_limit(transit, 512)


@pytest.mark.transit(internet={"max-text-line-length": 1000})
def test_text_line_length(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.expect("DATA", 354)
    body = b"ok line\r\n" + b"z" * 5000 + b"\r\nlast line\r\n"
    r = c.send_data(make_message("long-text-line", body=body), expect_code=None)
    assert 500 <= r.code < 600 and r.enh and r.enh.startswith("5."), r
    c.expect("NOOP", 250, "2.0.0")
    c.mail_transaction("bob@example.test", ["alice@example.test"],
                       make_message("short-lines", body=b"y" * 990 + b"\r\n"))
    transit.wait_for_mail("alice", 1, settle=1.0)
    assert [d.subject for d in transit.all_delivered()] == ["short-lines"]


# -- garbage and the error limit --------------------------------------------------------------

@pytest.mark.transit(internet={"max-errors": 3})
def test_error_limit(transit):
    c = transit.raw()
    c.ehlo()
    errors = 0
    for i in range(6):
        r = c.cmd("BOGUS%d" % i)
        if r.code == 421:
            check_reply(r, 421, "4.7.0", what="too many errors")
            break
        check_reply(r, 500, "5.5.2", what="unknown command %d" % i)
        errors += 1
    else:
        pytest.fail("no 421 after 6 errors with max-errors = 3")
    assert errors in (2, 3), "421 came after %d errors, max-errors is 3" % errors
    assert c.wait_closed(5), "connection must be closed after 421"


def test_garbage_input_does_not_crash(transit):
    rnd = random.Random(1234)
    c = transit.raw()
    for i in range(8):
        junk = bytes(rnd.choice([b for b in range(256) if b not in (10, 13)])
                     for _ in range(rnd.randint(1, 300)))
        try:
            c.send(junk + b"\r\n")
            r = c.read_reply()
        except (harness.ConnectionClosed, OSError):
            break
        assert r.code >= 400, "garbage accepted: %r -> %r" % (junk, r)
        if r.code == 421:
            assert c.wait_closed(5)
            break
    # the daemon is still there for others
    c2 = transit.raw()
    c2.ehlo()
    c2.expect("NOOP", 250, "2.0.0")


# -- connection limits ---------------------------------------------------------------------

def _fill_and_check(transit, allowed):
    time.sleep(0.5)                      # let the server reap the start-up probes
    held = [transit.raw() for _ in range(allowed)]
    extra = transit.raw(greet=False)
    r = extra.read_reply()
    check_reply(r, 421, "4.7.0", what="connection over the limit")
    assert extra.wait_closed(5), "server must close the connection after 421"
    for h in held:                       # the others still work
        h.expect("NOOP", 250, "2.0.0")
    held[0].expect("QUIT", 221, "2.0.0")
    assert held[0].wait_closed(5)
    held[0].close()

    def one_more():
        c = transit.raw(greet=False)
        r = c.read_reply()
        c.close()
        return r.code == 220
    harness.wait_until(one_more, 5, interval=0.3, what="a free slot after one client left")


@pytest.mark.transit(internet={"max-connections-per-source": 2})
def test_max_connections_per_source(transit):
    _fill_and_check(transit, 2)


@pytest.mark.transit(server={"max-connections": 2})
def test_max_connections_total(transit):
    _fill_and_check(transit, 2)


# -- timeouts ---------------------------------------------------------------------------------

@pytest.mark.transit(internet={"command-timeout": "2s"})
def test_command_timeout(transit):
    c = transit.raw()
    c.ehlo()
    for _ in range(3):                  # activity keeps the session alive
        time.sleep(1.0)
        c.expect("NOOP", 250, "2.0.0")
    t0 = time.monotonic()
    r = c.read_reply(timeout=10)
    elapsed = time.monotonic() - t0
    check_reply(r, 421, "4.4.2", what="idle client")
    assert 1.5 <= elapsed <= 6, "timeout after %.1fs, configured 2s" % elapsed
    assert c.wait_closed(5)


@pytest.mark.transit(internet={"data-timeout": "2s"})
def test_data_timeout(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.expect("DATA", 354)
    c.send(b"Subject: stalled\r\n\r\nsome text\r\n")
    t0 = time.monotonic()
    r = c.read_reply(timeout=10)
    elapsed = time.monotonic() - t0
    check_reply(r, 421, "4.4.2", what="stalled DATA")
    assert 1.5 <= elapsed <= 6, elapsed
    assert c.wait_closed(5)
    time.sleep(1)
    assert transit.all_delivered() == []


@pytest.mark.transit(internet={"session-timeout": "3s"})
def test_session_timeout(transit):
    c = transit.raw()
    c.ehlo()
    t0 = time.monotonic()
    r = None
    while time.monotonic() - t0 < 10:
        try:
            c.send(b"NOOP\r\n")
        except OSError:
            pass                        # closed: the 421 may still be buffered
        try:
            r = c.read_reply(timeout=5)
        except (harness.ConnectionClosed, OSError):
            pytest.fail("connection closed without a 421 after %.1fs" % (time.monotonic() - t0))
        if r.code != 250:
            break
        time.sleep(0.4)
    elapsed = time.monotonic() - t0
    assert r is not None and r.code == 421, "busy session not ended by session-timeout: %r" % r
    check_reply(r, 421, "4.4.", what="session deadline")
    assert 2.5 <= elapsed <= 7, elapsed
    assert c.wait_closed(5)
