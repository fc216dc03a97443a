"""
test_from_binding.py - sender binding on the From: header (issue 7,
sender-binding-header = true on a receive connector): after AUTH, every
From: address must be the login's own address or a personal alias of it,
checked at the end of the data (550 5.7.1 otherwise, nothing queued);
display names, encoded words, groups and several addresses are parsed, not
guessed; off by default; anonymous sessions are not bound by it.

Peers: raw SMTP with STARTTLS + AUTH PLAIN on 127.0.0.1.
"""

import os

from conftest import PASSWORD
from test_auth import add_submission, plain, tls_session


def message(from_value, extra=""):
    return ("From: %s\r\n%sTo: carol@example.test\r\nSubject: binding\r\n\r\nHello.\r\n"
            % (from_value, extra))


def submit(t, port, from_value, extra=""):
    """The reply to the end of data of one message from alice."""
    with tls_session(t, port) as c:
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 235, "2.7.0")
        c.expect("MAIL FROM:<alice@example.test>", 250)
        c.expect("RCPT TO:<bob@example.test>", 250)
        c.expect("DATA", 354)
        c.send(message(from_value, extra).encode() + b".\r\n")
        r = c.read_reply(timeout=15)
        c.expect("QUIT", 221)
        return r


def bound(t, on=True):
    with open(os.path.join(t.dir, "aliases"), "w") as f:
        f.write("info@example.test: alice@example.test\n"
                "sales@example.test: alice@example.test, bob@example.test\n")
    t.cfg["users"]["aliases"] = os.path.join(t.dir, "aliases")
    return add_submission(t, **({"sender-binding-header": True} if on else {}))


OWNED = [
    "alice@example.test",
    "Alice Example <alice@example.test>",
    "\"Example, Alice\" <ALICE@Example.Test>",
    "=?utf-8?B?QWxpY2Ugw4l4YW1wbGU=?= <alice@example.test>",
    "alice@example.test (Alice)",
    "Info desk <info@example.test>",                  # a personal alias of alice
    "Me: alice@example.test, Info <info@example.test>;",
]

NOT_OWNED = [
    "bob@example.test",
    "\"alice@example.test\" <bob@example.test>",      # the display name is no address
    "alice@example.test, bob@example.test",
    "Sales <sales@example.test>",                     # a group alice is in, not hers
    "Team: alice@example.test, mallory@evil.test;",
    "Alice <alice@example.test",                      # not parseable: not verified
]


def test_own_addresses_accepted(transit_conf):
    t = transit_conf
    port = bound(t)
    t.start()
    for from_value in OWNED:
        r = submit(t, port, from_value)
        assert r.code == 250, (from_value, r)


def test_other_addresses_refused(transit_conf):
    t = transit_conf
    port = bound(t)
    t.start()
    for from_value in NOT_OWNED:
        r = submit(t, port, from_value)
        assert r.code == 550 and r.text.startswith("5.7.1 From: header"), (from_value, r)
        assert "by user alice@example.test" in r.text, r
    log = t.log_text()
    assert log.count("reason=from-not-owned") == len(NOT_OWNED), log
    assert "smtp from-header login=alice@example.test from=bob@example.test reason=not-owned" \
        in log, log
    assert t.queue_json() == [], "nothing queued"


def test_second_from_field_counts(transit_conf):
    t = transit_conf
    port = bound(t)
    t.start()
    r = submit(t, port, "alice@example.test", extra="From: bob@example.test\r\n")
    assert r.code == 550, r


def test_folded_and_too_long_from(transit_conf):
    t = transit_conf
    port = bound(t)
    t.start()
    assert submit(t, port, "Alice\r\n  <alice@example.test>").code == 250
    huge = "alice@example.test" + "".join(",\r\n alice@example.test" for _ in range(400))
    r = submit(t, port, huge)
    assert r.code == 550 and "too long" in r.text, r


def test_off_by_default_and_anonymous_not_bound(transit_conf):
    t = transit_conf
    port = bound(t, on=False)
    t.start()
    assert submit(t, port, "bob@example.test").code == 250
    with t.raw() as c:
        c.ehlo()
        c.expect("MAIL FROM:<someone@other.test>", 250)
        c.expect("RCPT TO:<bob@example.test>", 250)
        c.expect("DATA", 354)
        c.send(message("bob@example.test").encode() + b".\r\n")
        assert c.read_reply(timeout=15).code == 250
