"""
test_accept_from.py - accept_from=authenticated on a mailbox or a group
(issue 7, "Anonymous is never authenticated"): anonymous mail to it is
refused at RCPT with 550 5.7.1, whatever MAIL FROM and From: claim, while
authenticated submission reaches it; set by `transitctl user add USER
--accept-from authenticated` (the passwd-file's extra fields) or on an
aliases-file line; `transitctl route explain` agrees with the server; a bad
value in the passwd-file is logged and taken as the strict choice.

Peers: Python smtplib and raw SMTP (STARTTLS + AUTH PLAIN) on 127.0.0.1;
transitctl.
"""

import os

import pytest

import harness
from conftest import PASSWORD
from harness import make_message
from test_auth import add_submission, plain, tls_session

REFUSAL = "5.7.1 <%s>: only authenticated senders may send to this address"


def protected_addresses(t):
    t.add_user("ceo@example.test")
    t.ctl("user", "add", "ceo2@example.test", "--accept-from", "authenticated",
          input=(PASSWORD + "\n").encode(), check=True)
    aliases = os.path.join(t.dir, "aliases")
    with open(aliases, "w") as f:
        f.write("board@example.test accept_from=authenticated: alice@example.test, "
                "bob@example.test\n"
                "all@example.test: alice@example.test, bob@example.test\n")
    t.cfg["users"]["aliases"] = aliases
    t.write_config()
    return add_submission(t)


def test_anonymous_refused_authenticated_accepted(transit_conf):
    t = transit_conf
    port = protected_addresses(t)
    with open(os.path.join(t.dir, "users")) as f:
        assert any(line.startswith("ceo2@example.test:") and
                   line.rstrip("\n").endswith("::::::accept_from=authenticated")
                   for line in f), "transitctl wrote the extra field"
    t.start()
    with t.raw() as c:
        c.ehlo()
        # the envelope and the From: header claim a local, trusted sender
        c.expect("MAIL FROM:<alice@example.test>", 250)
        for rcpt in ("ceo2@example.test", "board@example.test"):
            r = c.expect("RCPT TO:<%s>" % rcpt, 550, "5.7.1")
            assert r.text == REFUSAL % rcpt, r
        # unmarked addresses still take anonymous mail
        c.expect("RCPT TO:<ceo@example.test>", 250)
        c.expect("RCPT TO:<all@example.test>", 250)
    # authenticated submission reaches both
    with tls_session(t, port) as c:
        c.expect("AUTH PLAIN " + plain("bob@example.test", PASSWORD), 235, "2.7.0")
        c.expect("MAIL FROM:<bob@example.test>", 250)
        c.expect("RCPT TO:<ceo2@example.test>", 250)
        c.expect("RCPT TO:<board@example.test>", 250)
        c.expect("DATA", 354)
        c.send_data(make_message("to the board", sender="bob@example.test",
                                 to="board@example.test"))
    t.wait_for_mail("ceo2@example.test", 1)
    t.wait_for_mail("alice@example.test", 1)
    log = t.log_text()
    assert 'to=ceo2@example.test reply="550 5.7.1"' in log, log


def test_route_explain_agrees(transit_conf):
    t = transit_conf
    protected_addresses(t)
    for rcpt in ("ceo2@example.test", "board@example.test"):
        p = t.ctl("route", "explain", rcpt, "--receive-connector", "internet")
        out = p.stdout.decode()
        assert p.returncode == 1, out
        assert "rule: marked accept_from=authenticated" in out, out
        assert ("result: refused 550 5.7.1 <%s>: only authenticated senders may send to "
                "this address" % rcpt) in out, out
        p = t.ctl("route", "explain", rcpt, "--receive-connector", "client", "--authenticated")
        assert p.returncode == 0, p.stdout.decode()


def test_bad_value_in_passwd_file_is_strict(transit_conf):
    t = transit_conf
    with open(os.path.join(t.dir, "users"), "a") as f:
        f.write("typo@example.test:{CRYPT}*::::::userdb_quota=1G accept_from=authenticatd\n")
    t.start()
    with t.raw() as c:
        c.ehlo()
        c.expect("MAIL FROM:<x@other.test>", 250)
        c.expect("RCPT TO:<typo@example.test>", 550, "5.7.1")
    assert "accept_from=authenticatd is not" in t.log_text()


@pytest.mark.parametrize("option,logged", [("accept_from=nobody", "accept_from=nobody is not"),
                                           ("acept_from=authenticated",
                                            "unknown option")])
def test_bad_option_in_aliases_file_refuses_it(transit_conf, option, logged):
    t = transit_conf
    aliases = os.path.join(t.dir, "aliases")
    with open(aliases, "w") as f:
        f.write("board@example.test %s: alice@example.test\n" % option)
    t.cfg["users"]["aliases"] = aliases
    t.write_config()
    t.start()
    with t.raw() as c:
        c.ehlo()
        c.expect("MAIL FROM:<x@other.test>", 250)
        c.expect("RCPT TO:<board@example.test>", 550, "5.1.1")   # no aliases loaded
    harness.wait_until(lambda: logged in t.log_text(), 10, what="the bad aliases line logged")
