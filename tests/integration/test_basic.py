"""
test_basic.py - the receive path of transitd seen from SMTP clients.

Covers: delivery with swaks and Python smtplib, the reply to every ordinary
command (RFC 5321 4.1 and 4.2, enhanced codes RFC 2034/3463), PIPELINING
(RFC 2920), the Received field (RFC 5321 4.4, RFC 3848 "with" values) and
Message-ID rules (RFC 5322 3.6.4), dot transparency (RFC 5321 4.5.2),
Postmaster (RFC 5321 4.5.1), address literals (RFC 5321 4.1.3), Maildir
delivery format, `transitd -n` and config errors, `transitctl user`.
"""

import email.message
import os
import re
import shutil
import smtplib
import subprocess

import pytest

import harness
from conftest import BANNER, FQDN, TRANSITD
from harness import check_reply, crlf_to_lf, make_message, strip_trace

SWAKS = shutil.which("swaks")


# -- real clients -------------------------------------------------------------

@pytest.mark.skipif(SWAKS is None, reason="swaks is not installed")
def test_swaks_delivers(transit):
    p = subprocess.run([SWAKS, "--server", "127.0.0.1:%d" % transit.port_smtp,
                        "--to", "alice@example.test", "--from", "bob@example.test",
                        "--helo", "client.example.net", "--header", "Subject: swaks-one",
                        "--body", "hello from swaks", "--timeout", "10"],
                       capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, "swaks failed (%d):\n%s%s" % (p.returncode, out, p.stderr.decode())
    assert re.search(r"250 2\.0\.0 Ok: queued as [A-Za-z0-9]+", out), out
    assert "<- " in out and "220 " + BANNER in out, out
    (d,) = transit.wait_for_mail("alice", 1, settle=0.5)
    harness.check_maildir_file(d, "bob@example.test", "alice@example.test")
    assert d.subject == "swaks-one"
    assert b"hello from swaks" in d.body


@pytest.mark.skipif(SWAKS is None, reason="swaks is not installed")
def test_swaks_unknown_recipient_fails(transit):
    p = subprocess.run([SWAKS, "--server", "127.0.0.1:%d" % transit.port_smtp,
                        "--to", "nobody@example.test", "--from", "bob@example.test",
                        "--timeout", "10"],
                       capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode != 0, out
    assert "550 5.1.1" in out, out


def test_smtplib_send_message(transit):
    msg = email.message.EmailMessage()
    msg["From"] = "Bob <bob@example.test>"
    msg["To"] = "Alice <alice@example.test>"
    msg["Cc"] = "bob@example.test"
    msg["Subject"] = "smtplib-one"
    msg.set_content("Line one.\nLine two.\n")
    with transit.smtp() as s:
        code, _ = s.ehlo("client.example.net")
        assert code == 250
        refused = s.send_message(msg)
        assert refused == {}
        # a transaction with one bad recipient: the good one still gets it
        refused = s.sendmail("bob@example.test", ["alice@example.test", "nosuch@example.test"],
                             make_message("smtplib-two"))
        assert list(refused) == ["nosuch@example.test"]
        assert refused["nosuch@example.test"][0] == 550
        assert refused["nosuch@example.test"][1].startswith(b"5.1.1")
    alice = transit.wait_for_mail("alice", 2, settle=1.0)
    bob = transit.wait_for_mail("bob", 1, settle=0.2)
    assert sorted(d.subject for d in alice) == ["smtplib-one", "smtplib-two"]
    assert [d.subject for d in bob] == ["smtplib-one"], "one copy per recipient"
    for d in alice:
        harness.check_maildir_file(d, "bob@example.test", "alice@example.test")
    harness.check_maildir_file(bob[0], "bob@example.test", "bob@example.test")
    assert b"Line one.\nLine two.\n" in alice[0].body + alice[1].body


# -- greeting and EHLO -------------------------------------------------------------

def test_greeting_and_ehlo(transit):
    c = transit.raw()
    assert c.greeting_reply.raw == ("220 %s\r\n" % BANNER).encode(), c.greeting_reply
    r = c.ehlo("client.example.net")
    assert r.lines[0].split()[0] == FQDN, r
    kws = r.keywords
    for k in ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "DSN", "CHUNKING",
              "ENHANCEDSTATUSCODES", "STARTTLS"):
        assert k in kws, "EHLO lacks %s: %r" % (k, r)
    assert len(kws) == len(set(kws)), "duplicate EHLO keywords: %r" % r
    size = r.keyword_args("SIZE")
    assert size and int(size[0]) in (25000000, 26214400), "SIZE for 25M: %r" % r
    for ln in r.lines:
        assert not harness.ENH_RE.match(ln), "EHLO lines carry no enhanced code: %r" % r
    # a second EHLO is allowed and resets nothing it should not
    r2 = c.ehlo("client.example.net")
    assert r2.keywords == kws


def test_helo_is_accepted(transit):
    c = transit.raw()
    r = c.cmd("HELO client.example.net")
    assert r.code == 250, r
    qid = c.mail_transaction("bob@example.test", ["alice@example.test"],
                             make_message("helo-one", message_id="<helo-one@client.test>"))
    assert qid
    (d,) = transit.wait_for_mail("alice", 1)
    rcv = d.first("Received")
    assert rcv and re.search(r"\bwith SMTP\b", rcv), "HELO session must say 'with SMTP': %r" % rcv


# -- one transaction, reply by reply -----------------------------------------------

def test_transaction_replies_and_exact_delivery(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    r = c.expect("DATA", 354)
    msg = make_message("exact-one", body="first line\r\nsecond line\r\n\r\nafter blank\r\n",
                       message_id="<exact-one@client.test>")
    qid = c.send_data(msg)
    assert re.fullmatch(r"[A-Za-z0-9]+", qid)
    # a second message in the same session gets another queue id
    qid2 = c.mail_transaction("bob@example.test", ["alice@example.test"],
                              make_message("exact-two", message_id="<exact-two@client.test>"))
    assert qid2 != qid
    c.expect("QUIT", 221, "2.0.0")
    assert c.wait_closed(5), "server must close after QUIT"
    files = transit.wait_for_mail("alice", 2, settle=1.0)
    assert len(files) == 2, files
    d = [f for f in files if f.subject == "exact-one"][0]
    harness.check_maildir_file(d, "bob@example.test", "alice@example.test")
    trace, rest = strip_trace(d.data)
    assert rest == crlf_to_lf(msg), "content must arrive unchanged below the trace fields"
    assert b"Received:" in trace


def test_mail_from_without_brackets(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:alice@example.test", 250, "2.1.0")
    c.expect("RCPT TO:<bob@example.test>", 250, "2.1.5")


def test_null_sender_accepted(transit):
    c = transit.raw()
    c.ehlo()
    c.mail_transaction("", ["alice@example.test"], make_message("bounce-like", sender="MAILER-DAEMON@x.test"))
    (d,) = transit.wait_for_mail("alice", 1)
    assert d.data.startswith(b"Return-Path: <>\n"), d


def test_unknown_mailbox_and_relay_denied(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<nosuch@example.test>", 550, "5.1.1")
    c.expect("RCPT TO:<alice@elsewhere.test>", 550, "5.7.1")
    c.expect("RCPT TO:<ALICE@Example.TEST>", 250, "2.1.5")   # domains are case-insensitive


def test_syntax_errors(transit):
    c = transit.raw()
    c.ehlo()
    check_reply(c.cmd("MAIL FROM:<bob@example.test"), 501, "5.", what="unclosed <")
    check_reply(c.cmd("MAIL TO:<bob@example.test>"), (500, 501), "5.5.", what="MAIL TO:")
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    check_reply(c.cmd("RCPT TO:"), 501, "5.", what="empty RCPT")
    check_reply(c.cmd("RCPT TO:<>"), (501, 550, 553), "5.", what="RCPT TO:<>")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")      # the transaction survived


def test_bad_sequence(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
    c.expect("DATA", 503, "5.5.1")
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("MAIL FROM:<bob@example.test>", 503, "5.5.1")     # nested MAIL
    r = c.cmd("DATA")                                            # no recipient yet
    check_reply(r, (503, 554), "5.5.1", what="DATA without RCPT")
    c.expect("RCPT TO:<nosuch@example.test>", 550, "5.1.1")
    r = c.cmd("DATA")                                            # no valid recipient
    check_reply(r, (503, 554), "5.5.1", what="DATA with only refused RCPTs")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.expect("DATA", 354)
    c.send_data(make_message("after-bad-sequence"))
    transit.wait_for_mail("alice", 1)


def test_unknown_command(transit):
    c = transit.raw()
    c.expect("XYZZY", 500, "5.5.2")
    c.expect("MAILFROM:<bob@example.test>", 500, "5.5.2")
    c.expect("", 500, "5.5.2")
    c.expect("NOOP", 250, "2.0.0")


def test_help_noop_rset_vrfy_quit(transit):
    c = transit.raw()
    c.ehlo()
    check_reply(c.cmd("HELP"), (211, 214), "2.", what="HELP")
    c.expect("NOOP", 250, "2.0.0")
    c.expect("NOOP anything at all", 250, "2.0.0")
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.expect("RSET", 250, "2.0.0")
    c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")    # RSET dropped the transaction
    c.expect("DATA", 503, "5.5.1")
    exists = c.expect("VRFY alice@example.test", 252, "2.5.0")
    missing = c.expect("VRFY nobody-here@example.test", 252, "2.5.0")
    bare = c.expect("VRFY alice", 252, "2.5.0")
    norm = lambda r, a: r.text.replace(a, "X")
    assert norm(exists, "alice@example.test") == norm(missing, "nobody-here@example.test"), \
        "VRFY must not reveal whether a user exists: %r vs %r" % (exists, missing)
    assert bare.code == exists.code
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")     # session still usable
    c.expect("QUIT", 221, "2.0.0")
    assert c.wait_closed(5)


def test_postmaster(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<postmaster>", 250, "2.1.5")
    c.expect("DATA", 354)
    c.send_data(make_message("pm-bare", to="postmaster"))
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<Postmaster>", 250, "2.1.5")             # RFC 5321 4.1.1.3: any case
    c.expect("DATA", 354)
    c.send_data(make_message("pm-case", to="Postmaster"))
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<postmaster@example.test>", 250, "2.1.5")  # not in the passwd-file
    c.expect("DATA", 354)
    c.send_data(make_message("pm-domain", to="postmaster@example.test"))
    files = transit.wait_for_mail("postmaster@example.test", 3, settle=1.0)
    assert sorted(d.subject for d in files) == ["pm-bare", "pm-case", "pm-domain"]
    for d in files:
        assert d.data.startswith(b"Return-Path: <bob@example.test>\n"), d
        assert b"\r" not in d.data


def test_ip_literal_of_our_listener_is_local(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@[127.0.0.1]>", 250, "2.1.5")
    c.expect("RCPT TO:<nosuch@[127.0.0.1]>", 550, "5.1.1")
    c.expect("RCPT TO:<alice@[192.0.2.7]>", 550, "5.7.1")      # not ours: relaying
    c.expect("DATA", 354)
    c.send_data(make_message("literal", to="alice@[127.0.0.1]"))
    (d,) = transit.wait_for_mail("alice", 1, settle=0.5)
    assert d.subject == "literal"
    assert d.data.startswith(b"Return-Path: <bob@example.test>\n")


def test_one_copy_per_recipient(transit):
    qid = transit.send(make_message("two-rcpts", message_id="<two@client.test>"),
                       rcpts=("alice@example.test", "bob@example.test"))
    assert qid
    (a,) = transit.wait_for_mail("alice", 1, settle=1.0)
    (b,) = transit.wait_for_mail("bob", 1, settle=0.2)
    harness.check_maildir_file(a, "bob@example.test", "alice@example.test")
    harness.check_maildir_file(b, "bob@example.test", "bob@example.test")
    assert strip_trace(a.data)[1] == strip_trace(b.data)[1]


# -- pipelining (RFC 2920) -----------------------------------------------------------

def test_pipelined_group_replies_in_order(transit):
    c = transit.raw()
    c.ehlo()
    c.send(b"MAIL FROM:<bob@example.test>\r\n"
           b"RCPT TO:<alice@example.test>\r\n"
           b"RCPT TO:<nosuch@example.test>\r\n"
           b"RCPT TO:<bob@example.test>\r\n"
           b"DATA\r\n")
    r = c.read_replies(5)
    check_reply(r[0], 250, "2.1.0", what="MAIL")
    check_reply(r[1], 250, "2.1.5", what="RCPT alice")
    check_reply(r[2], 550, "5.1.1", what="RCPT nosuch")
    check_reply(r[3], 250, "2.1.5", what="RCPT bob")
    check_reply(r[4], 354, what="DATA")
    # the end of the data and the next whole group in one write (RFC 2920 3.1)
    m1 = make_message("pipe-one", message_id="<pipe-one@client.test>")
    m2 = make_message("pipe-two", message_id="<pipe-two@client.test>")
    c.send(harness.dot_stuff(m1) + b".\r\n"
           b"MAIL FROM:<bob@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    r = c.read_replies(4)
    check_reply(r[0], 250, "2.0.0", r"queued as", what="end of data 1")
    check_reply(r[1], 250, "2.1.0", what="MAIL 2")
    check_reply(r[2], 250, "2.1.5", what="RCPT 2")
    check_reply(r[3], 354, what="DATA 2")
    c.send(harness.dot_stuff(m2) + b".\r\nQUIT\r\n")
    r = c.read_replies(2)
    check_reply(r[0], 250, "2.0.0", r"queued as", what="end of data 2")
    check_reply(r[1], 221, "2.0.0", what="QUIT")
    assert c.wait_closed(5)
    alice = transit.wait_for_mail("alice", 2, settle=1.0)
    bob = transit.wait_for_mail("bob", 1, settle=0.2)
    assert sorted(d.subject for d in alice) == ["pipe-one", "pipe-two"]
    assert [d.subject for d in bob] == ["pipe-one"]


def test_pipelined_rset_and_noop(transit):
    c = transit.raw()
    assert "PIPELINING" in c.ehlo().keywords       # EHLO ends a group (RFC 2920 3.1)
    c.send(b"MAIL FROM:<bob@example.test>\r\nRSET\r\nRCPT TO:<alice@example.test>\r\nNOOP\r\n")
    r = c.read_replies(4)
    check_reply(r[0], 250, "2.1.0")
    check_reply(r[1], 250, "2.0.0")
    check_reply(r[2], 503, "5.5.1")
    check_reply(r[3], 250, "2.0.0")


# -- what the server adds to the message ---------------------------------------------

def test_received_and_message_id(transit):
    c = transit.raw()
    c.ehlo("client.example.net")
    with_id = make_message("has-id", message_id="<keep-me.123@client.example.net>")
    without_id = make_message("no-id")
    c.mail_transaction("bob@example.test", ["alice@example.test"], with_id)
    c.mail_transaction("bob@example.test", ["alice@example.test"], without_id)
    files = {d.subject: d for d in transit.wait_for_mail("alice", 2, settle=0.5)}
    kept = files["has-id"]
    assert kept.header("Message-ID") == ["<keep-me.123@client.example.net>"], kept
    added = files["no-id"]
    ids = added.header("Message-ID")
    assert len(ids) == 1, "exactly one Message-ID must be added: %r" % added
    assert re.fullmatch(r"<[^@<>\s]+@%s>" % re.escape(FQDN), ids[0]), ids
    for d in (kept, added):
        rcv = d.header("Received")
        assert len(rcv) == 1, d
        r = rcv[0]
        assert re.search(r"\bby %s\b" % re.escape(FQDN), r), r
        assert re.search(r"\bfrom client\.example\.net\b", r), r
        assert "127.0.0.1" in r, r
        assert re.search(r"\bwith ESMTP\b", r) and "ESMTPS" not in r, r
        assert re.search(r";\s*(\w{3}, +)?\d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}", r), \
            "Received must end with '; date-time': %r" % r
        # the Received field is the first field after Return-Path/Delivered-To
        assert d.fields[2][0].lower() == "received", d.fields[:3]


def test_dot_transparency(transit):
    body = b".\r\n..\r\n.leading dot\r\n..two dots\r\nend . \r\n"
    msg = make_message("dots", body=body, message_id="<dots@client.test>")
    transit.send(msg)
    (d,) = transit.wait_for_mail("alice", 1)
    assert d.body == crlf_to_lf(body), d.body


def test_existing_received_fields_are_kept(transit):
    hdrs = ("Received: from a.example by b.example; Thu, 01 Jan 2026 00:00:00 +0000",
            "Received: from c.example by d.example; Thu, 01 Jan 2026 00:00:00 +0000")
    transit.send(make_message("hops", extra_headers=hdrs, message_id="<hops@client.test>"))
    (d,) = transit.wait_for_mail("alice", 1)
    rcv = d.header("Received")
    assert len(rcv) == 3, rcv
    assert FQDN in rcv[0] and rcv[1].startswith("from a.example"), rcv


# -- transitd -n and configuration errors ---------------------------------------------------

def test_check_config_prints_effective_config(transit_conf):
    p = transit_conf.run_daemon("-c", transit_conf.conf_path, "-n")
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, "transitd -n failed (%d): %s" % (p.returncode, p.stderr.decode())
    for s in (FQDN, "example.test", "internet", "submissions", "127.0.0.1:%d" % transit_conf.port_smtp,
              "implicit"):
        assert s in out, "%r missing from transitd -n output:\n%s" % (s, out)
    assert re.search(r"max-errors\s*=\s*20\b", out), "defaults must be printed:\n" + out
    assert re.search(r"max-line-length\s*=\s*2048\b", out), out
    # what it prints is itself a valid configuration
    again = os.path.join(transit_conf.dir, "printed.conf")
    with open(again, "wb") as f:
        f.write(p.stdout)
    p2 = transit_conf.run_daemon("-c", again, "-n")
    assert p2.returncode == 0, "printed config does not load: %s" % p2.stderr.decode()


def _broken(transit_conf, old, new):
    text = open(transit_conf.conf_path).read()
    lines = text.split("\n")
    idx = [i for i, l in enumerate(lines) if l.strip() == old]
    assert idx, "test bug: %r not in config" % old
    lines[idx[0]] = lines[idx[0]].replace(old, new)
    path = os.path.join(transit_conf.dir, "broken.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path, idx[0] + 1


@pytest.mark.parametrize("old,new", [
    ('max-recipients = 100', 'max-recipientz = 100'),
    ('tls = "offer"', 'tls = "sometimes"'),
    ('max-message-size = "25M"', 'max-message-size = "25 parsecs"'),
    ('max-hop-count = 30', 'max-hop-count = "thirty"'),
    ('banner = "mx.example.test ESMTP"', 'banner = = "x"'),
], ids=["unknown-key", "bad-enum", "bad-size", "bad-int", "syntax"])
def test_broken_config_reports_file_and_line(transit_conf, old, new):
    path, line = _broken(transit_conf, old, new)
    for args in (("-c", path, "-n"), ("-c", path)):
        p = transit_conf.run_daemon(*args)
        err = p.stderr.decode("utf-8", "replace")
        assert p.returncode == 1, "%s: exit %d, stderr %s" % (args, p.returncode, err)
        assert re.search(r"^.*%s:%d: \S" % (re.escape(path), line), err, re.M), \
            "expected '%s:%d: what is wrong' on stderr, got:\n%s" % (path, line, err)


def test_missing_config_file(transit_conf):
    path = os.path.join(transit_conf.dir, "nope.conf")
    p = transit_conf.run_daemon("-c", path, "-n")
    assert p.returncode == 1
    assert path in p.stderr.decode("utf-8", "replace")


# -- transitctl user ---------------------------------------------------------------------

def _rcpt_code(transit, rcpt):
    """RCPT reply code for rcpt on a fresh connection (so that refused
    probes do not add up to the error limit)."""
    with transit.raw() as c:
        c.ehlo()
        c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        c.cmd("QUIT")
        return r.code


def test_transitctl_users(transit):
    listed = transit.ctl("user", "list", check=True).stdout.decode().split()
    assert "alice@example.test" in listed and "bob@example.test" in listed, listed
    text = open(transit.users_file).read()
    assert "alice@example.test:" in text
    assert "Secret-pass-123" not in text, "passwords must be stored hashed"
    assert _rcpt_code(transit, "carol@example.test") == 550
    transit.add_user("carol@example.test")
    assert "carol@example.test" in transit.ctl("user", "list", check=True).stdout.decode().split()
    # the daemon notices the new user without a restart
    harness.wait_until(lambda: _rcpt_code(transit, "carol@example.test") == 250, 5,
                       interval=0.5, what="carol to become a valid recipient")
    dup = transit.ctl("user", "add", "carol@example.test", input=b"x\n")
    assert dup.returncode != 0, "adding an existing user must fail"
    transit.ctl("user", "del", "carol@example.test", check=True)
    assert "carol@example.test" not in transit.ctl("user", "list", check=True).stdout.decode().split()
    harness.wait_until(lambda: _rcpt_code(transit, "carol@example.test") == 550, 5,
                       interval=0.5, what="carol to be gone")
    assert transit.ctl("user", "del", "carol@example.test").returncode != 0
