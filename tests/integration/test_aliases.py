"""
test_aliases.py - the aliases file (users { aliases }, issue 7 "Aliases and
groups"): a group reaches each member's Maildir once (nested groups and a
member named twice deduplicated), the EXPAND log line, an alias loop
refused at RCPT (550 5.4.6) without hanging the session, `transitctl route
explain` showing the expansion, the file reloaded on change (a bad line
logged with file:line, the old table kept), and sender binding accepting a
personal alias of the login after AUTH but not a group.

Peers: Python smtplib and raw SMTP on 127.0.0.1; transitctl.
"""

import os
import smtplib
import time

import pytest

import harness
from conftest import PASSWORD
from harness import make_message
from test_auth import add_submission, plain, tls_session, wait_log

ALIASES = """# groups and personal aliases
sales@example.test: alice@example.test, bob@example.test
team@example.test: sales@example.test,
    BOB@example.test, alice@example.test
info@example.test: alice@example.test
loop1@example.test: loop2@example.test
loop2@example.test: alice@example.test, loop1@example.test
"""


def with_aliases(t, text=ALIASES):
    path = os.path.join(t.dir, "aliases")
    with open(path, "w") as f:
        f.write(text)
    t.cfg["users"]["aliases"] = path
    t.write_config()
    return path


def maildir(t, user):
    return os.path.join(t.mail, "example.test", user)


def test_group_reaches_each_member_once(transit_conf):
    t = transit_conf
    with_aliases(t)
    t.start()
    with smtplib.SMTP("127.0.0.1", t.port_smtp, timeout=15) as s:
        refused = s.sendmail("carol@other.test", ["team@example.test", "alice@example.test"],
                            make_message("to the team"))
        assert refused == {}
    for user in ("alice", "bob"):
        harness.wait_until(lambda: len(harness.maildir_new_files(maildir(t, user))) >= 1, 20,
                           what="delivery to " + user)
    time.sleep(1.0)   # a second copy would have arrived by now
    for user in ("alice", "bob"):
        assert len(harness.maildir_new_files(maildir(t, user))) == 1, user
    assert not os.path.exists(maildir(t, "team")) and not os.path.exists(maildir(t, "sales"))
    wait_log(t, r"expand from=<team@example\.test> "
                r"to=\"?<alice@example\.test>,<bob@example\.test>\"?")


def test_alias_loop_refused_without_hanging(transit_conf):
    t = transit_conf
    with_aliases(t)
    t.start()
    with t.raw(port=t.port_smtp, timeout=10) as c:
        c.ehlo()
        c.expect("MAIL FROM:<carol@other.test>", 250)
        c.expect("RCPT TO:<loop1@example.test>", 550, "5.4.6")
        c.expect("RCPT TO:<sales@example.test>", 250)      # the session goes on
    wait_log(t, r"alias loop: loop1@example\.test contains itself")


def test_route_explain_shows_expansion(transit_conf):
    t = transit_conf
    with_aliases(t)
    p = t.ctl("route", "explain", "team@example.test")
    out = p.stdout.decode()
    assert p.returncode == 0, out
    assert "expand: <team@example.test> -> <alice@example.test>, <bob@example.test>" in out, out
    assert "member: <alice@example.test> local mailbox" in out, out
    assert "result: accepted, alias expanded to 2 recipients" in out, out
    p = t.ctl("route", "explain", "loop1@example.test")
    assert p.returncode == 1 and b"refused 550 5.4.6" in p.stdout, p.stdout


def test_aliases_reloaded_on_change_bad_line_keeps_old(transit_conf):
    t = transit_conf
    path = with_aliases(t, "info@example.test: alice@example.test\n")
    t.start()
    time.sleep(1.2)   # changes are looked for at most once a second
    with open(path, "w") as f:
        f.write("info@example.test: alice@example.test\nnew@example.test alice@example.test\n")
    with t.raw(port=t.port_smtp, timeout=10) as c:
        c.ehlo()
        c.expect("MAIL FROM:<carol@other.test>", 250)
        c.expect("RCPT TO:<info@example.test>", 250)           # old table kept
        c.expect("RCPT TO:<new@example.test>", 550, "5.1.1")
    wait_log(t, r"aliases %s:2: no ':' after the alias" % path)
    time.sleep(1.2)
    with open(path, "w") as f:
        f.write("info@example.test: alice@example.test\nnew@example.test: bob@example.test\n")
    with t.raw(port=t.port_smtp, timeout=10) as c:
        c.ehlo()
        c.expect("MAIL FROM:<carol@other.test>", 250)
        c.expect("RCPT TO:<new@example.test>", 250)
    wait_log(t, r"aliases %s reloaded aliases=2 members=2" % path)


def test_personal_alias_as_sender_after_auth(transit_conf):
    t = transit_conf
    with_aliases(t)
    port = add_submission(t)
    t.start()
    with tls_session(t, port) as c:
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 235)
        c.expect("MAIL FROM:<sales@example.test>", 553, "5.7.1")   # a group: not a sender
        c.expect("MAIL FROM:<Info@example.test>", 250, "2.1.0")    # alice's personal alias
        c.expect("RCPT TO:<bob@example.test>", 250)
    with tls_session(t, port) as c:
        c.expect("AUTH PLAIN " + plain("bob@example.test", PASSWORD), 235)
        c.expect("MAIL FROM:<info@example.test>", 553, "5.7.1")    # not bob's
