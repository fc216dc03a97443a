"""
test_spoofed_senders.py - reject-spoofed-local-senders (issue 7
"Permissions": anonymous is never authenticated).

Covers: with the option on, an unauthenticated session giving a MAIL FROM
in one of our authoritative domains (any case) gets 550 5.7.1 "Sender
address spoofs a local domain; authenticate first" and one log line
(reason=spoofed-local-sender), while <> and foreign senders pass; the same
address after AUTH passes; with the option off (the default) nothing
changes.

Peers: raw SMTP on 127.0.0.1 (harness.RawSMTP), AUTH PLAIN over loopback.
"""

import base64

import pytest

from conftest import PASSWORD


def plain(user, password):
    return base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


ON = {"reject-spoofed-local-senders": True}


@pytest.mark.transit(internet=ON)
def test_anonymous_local_sender_refused(transit):
    with transit.raw() as c:
        c.ehlo()
        for sender in ("alice@example.test", "Nobody@EXAMPLE.test"):
            c.expect("MAIL FROM:<%s>" % sender, 550, "5.7.1",
                     text_re="Sender address spoofs a local domain; authenticate first")
        c.expect("MAIL FROM:<>", 250)
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<bob@elsewhere.example>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
    log = transit.log_text()
    assert log.count("reason=spoofed-local-sender") == 2, log
    assert 'cmd=MAIL reply="550 5.7.1" reason=spoofed-local-sender from=alice@example.test' in log


@pytest.mark.transit(internet=dict(ON, auth=["plain"], permissions=["anonymous", "authenticated"],
                                   **{"auth-cleartext": "loopback", "tls": "none"}))
def test_authenticated_local_sender_passes(transit):
    with transit.raw() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@example.test>", 550, "5.7.1")
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 235, "2.7.0")
        c.expect("MAIL FROM:<alice@example.test>", 250)


def test_off_by_default(transit):
    with transit.raw() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@example.test>", 250)
