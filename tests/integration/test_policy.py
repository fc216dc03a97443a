"""
test_policy.py - the recipient policy and what the configuration allows
(issue 6 items 9, 12, 17 and 18).

Covers: a receive connector with the "relay" permission for the whole
internet is refused by `transitd -n` and at start with "file:line:" (the
default ranges, an explicit /0, ranges adding up to all of IPv4); the SMTP
server's RCPT reply and `transitctl route explain` give the same answer for
a table of addresses and receive connectors (one function decides both);
route explain for an unknown mailbox says "refused 550 5.1.1" and exits 1,
and prints the expanded Maildir path; a DSN for a local sender the directory
does not know goes to server.postmaster and creates no mailbox (smtplib with
NOTIFY=SUCCESS, and a hostile quoted "../../escape" local part); passwd-file
reloads and failed reloads are logged; server.postmaster that nobody can
read or that cannot be delivered is warned about at start and at -n.

Peers: Python's smtplib and raw SMTP on 127.0.0.1, the relay client bound
to 127.0.0.10 (sendpeers.client). No DNS: nothing here leaves the machine.
"""

import base64
import os
import re

import pytest

import harness
import sendpeers as sp
from conftest import HOST, PASSWORD
from harness import make_message

KB = 1024


def daemon_check(t, path):
    """transitd -n and a real start on a configuration: (returncode, stderr) each."""
    out = []
    for args in (("-c", path, "-n"), ("-c", path)):
        p = t.run_daemon(*args, timeout=30)
        out.append((p.returncode, p.stderr.decode("utf-8", "replace")))
    return out


def write_conf(t, name):
    path = os.path.join(t.dir, name)
    with open(path, "w") as f:
        from conftest import render_config
        f.write(render_config(t.cfg))
    return path


def line_of(path, pattern, after=None):
    """1-based number of the first line matching pattern (after the line
    matching `after`, if given)."""
    started = after is None
    with open(path) as f:
        for n, ln in enumerate(f, 1):
            if not started:
                started = re.search(after, ln) is not None
                continue
            if re.search(pattern, ln):
                return n
    raise AssertionError("%r not in %s" % (pattern, path))


# -- item 9: an open relay by configuration is refused ----------------------------------

def relay_connector(t, ranges):
    body = {"bindings": ["%s:%d" % (HOST, t.port_smtp)], "permissions": ["relay"],
            "tls": "none"}
    if ranges is not None:
        body["remote-ip-ranges"] = ranges
    t.cfg["receive-connector"]["devices"] = body


@pytest.mark.parametrize("ranges,what", [
    (None, r"remote-ip-ranges is not set, so it is 0\.0\.0\.0/0 and ::/0"),
    (["10.0.0.0/8", "0.0.0.0/0"], r"\"0\.0\.0\.0/0\", prefix length 0"),
    (["::/0"], r"\"::/0\", prefix length 0"),
    (["0.0.0.0/1", "128.0.0.0/1"], r"add up to the whole IPv4"),
], ids=["default-ranges", "explicit-v4-0", "explicit-v6-0", "two-halves"])
def test_relay_for_the_whole_internet_is_refused(transit_conf, ranges, what):
    t = transit_conf
    relay_connector(t, ranges)
    path = write_conf(t, "open-relay.conf")
    # the line to change: permissions when the ranges are the default, else the ranges
    line = line_of(path, r"^\s*permissions =" if ranges is None else r"^\s*remote-ip-ranges =",
                   after=r'receive-connector "devices"')
    for rc, err in daemon_check(t, path):
        assert rc == 1, "exit %d, stderr:\n%s" % (rc, err)
        m = re.search(r"^%s:(\d+): receive-connector \"devices\": .*" % re.escape(path), err, re.M)
        assert m, "no file:line message:\n" + err
        assert int(m.group(1)) == line, "line %s, want %d:\n%s" % (m.group(1), line, err)
        assert re.search(what, m.group(0)), m.group(0)
        assert "open relay" in m.group(0) and "AUTH" in m.group(0) and "587" in m.group(0), m.group(0)


def test_relay_for_named_networks_is_accepted(transit_conf):
    t = transit_conf
    relay_connector(t, ["127.0.0.10/32", "192.0.2.0/24", "2001:db8::/32"])
    path = write_conf(t, "relay-ok.conf")
    p = t.run_daemon("-c", path, "-n")
    assert p.returncode == 0, p.stderr.decode()


# -- items 9 and 17: the SMTP server and route explain agree ---------------------------

def agreement_setup(t):
    """Connectors: internet (anonymous, 127.0.0.1), devices (relay, 127.0.0.10
    only), submission (authenticated only, on its own port: MAIL needs AUTH
    there, so the client logs in, clear text from loopback, and may relay;
    no sender binding, so every sender of the table can be tried). Send
    connector partner for partner.test only, with restrictions;
    relay.example.test is internal-relay."""
    sub_port = harness_free_port()
    rcs = t.cfg["receive-connector"]
    rcs["devices"] = {"bindings": ["%s:%d" % (HOST, t.port_smtp)], "permissions": ["relay"],
                      "remote-ip-ranges": [sp.RELAY_SOURCE_IP + "/32"], "tls": "none"}
    rcs["submission"] = {"bindings": ["%s:%d" % (HOST, sub_port)],
                         "permissions": ["authenticated"], "tls": "none",
                         "auth": ["plain"], "auth-cleartext": "loopback",
                         "sender-binding": "none"}
    t.cfg["accepted-domain"]["relay.example.test"] = {"type": "internal-relay"}
    t.cfg["send-connector"] = {
        "partner": sp.smarthost_connector(["partner.test", "relay.example.test"],
                                          ["[127.0.0.1]:9"],
                                          **{"max-message-size": "100K",
                                             "allowed-senders": ["*@example.test"]})}
    t.write_config()
    return sub_port


def harness_free_port():
    from conftest import free_ports
    return free_ports(1)[0]


RCPTS = [
    "alice@example.test", "Alice@EXAMPLE.test", "carol@example.test", "postmaster@example.test",
    "postmaster", "abuse@example.test", "nobody", "x@other.test", "bob@partner.test",
    "user%other.test@example.test", "x@relay.example.test", "x@[192.0.2.1]",
    "alice@[127.0.0.1]", "carol@[127.0.0.1]",      # a literal of our own listening address
]


def smtp_reply(t, connector, sub_port, sender, size, rcpt):
    if connector == "devices":
        c = sp.client(t)
    else:
        c = t.raw(port=sub_port if connector == "submission" else None)
    with c:
        c.ehlo()
        if connector == "submission":
            c.expect("AUTH PLAIN " + base64.b64encode(b"\0bob@example.test\0" +
                                                      PASSWORD.encode()).decode(), 235)
        r = c.cmd("MAIL FROM:<%s>%s" % (sender, " SIZE=%d" % size if size else ""))
        assert r.code == 250, r
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        c.cmd("QUIT")
        return r


def explain(t, rcpt, *args):
    p = t.ctl("route", "explain", rcpt, *args)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def test_rcpt_reply_and_route_explain_agree(transit_conf):
    t = transit_conf
    sub_port = agreement_setup(t)
    t.start()
    compared = 0
    for connector in ("internet", "devices", "submission"):
        for sender, size in (("bob@example.test", 0), ("mallory@evil.test", 0),
                             ("bob@example.test", 200 * KB)):
            for rcpt in RCPTS:
                r = smtp_reply(t, connector, sub_port, sender, size, rcpt)
                args = ["--receive-connector", connector, "--from", sender]
                if connector == "submission":
                    args.append("--authenticated")
                if size:
                    args += ["--size", str(size)]
                rc, out, err = explain(t, rcpt, *args)
                what = "%s from %s size %d on %s:\nSMTP: %r\nexplain (exit %d):\n%s%s" % (
                    rcpt, sender, size, connector, r, rc, out, err)
                results = re.findall(r"^result: (.*)$", out, re.M)
                assert len(results) == 1, what
                if r.code == 250:
                    assert rc == 0 and not results[0].startswith("refused"), what
                else:
                    assert rc == 1 and results[0].startswith("refused"), what
                    # the whole reply line: code, enhanced code and text
                    assert results[0] == "refused %d %s" % (r.code, r.text), what
                compared += 1
    assert compared == 3 * 3 * len(RCPTS)
    # the cases that used to disagree are really in the table
    rc, out, _ = explain(t, "x@other.test", "--receive-connector", "submission")
    assert rc == 1 and re.search(r"^result: refused 550 5\.7\.1 ", out, re.M), out
    rc, out, _ = explain(t, "x@other.test", "--receive-connector", "submission",
                         "--authenticated")
    assert re.search(r"relaying allowed", out), out


# -- item 17: route explain for a mailbox ----------------------------------------------

def test_route_explain_mailbox_unknown_and_known(transit_conf):
    t = transit_conf
    rc, out, err = explain(t, "carol@example.test")
    assert rc == 1, out + err
    assert re.search(r"^result: refused 550 5\.1\.1 <carol@example\.test>: ", out, re.M), out
    assert "mailbox" not in out.split("result:")[-1].split(":", 1)[0], out

    rc, out, err = explain(t, "Alice@Example.Test")
    assert rc == 0, out + err
    want = t.maildir("alice")
    assert re.search(r"^result: accepted, local delivery to mailbox %s$" % re.escape(want),
                     out, re.M), out
    assert "%d" not in out and "%u" not in out, out

    # postmaster@ goes to server.postmaster, whose mailbox is shown
    rc, out, err = explain(t, "postmaster@example.test")
    assert rc == 0 and t.maildir("postmaster") in out, out


# -- item 12: no mailbox for anyone ----------------------------------------------------

def entries_under(root):
    found = []
    for d, dirs, files in os.walk(root):
        found += [os.path.join(d, x) for x in dirs + files]
    return found


def test_success_dsn_for_unknown_local_sender_goes_to_postmaster(transit):
    t = transit
    with t.smtp() as s:
        s.ehlo("client.example.net")
        refused = s.sendmail("phantom123@example.test", ["alice@example.test"],
                             make_message("phantom", sender="phantom123@example.test"),
                             rcpt_options=["NOTIFY=SUCCESS"])
        assert refused == {}
    t.wait_for_mail("alice", 1)
    (dsn,) = t.wait_for_mail("postmaster@example.test", 1, settle=1.0)
    d = sp.Dsn(dsn)
    assert d.rcpt("alice@example.test").get("action") == "delivered", d.per_rcpt
    sp.wait_log(t, r"dsn to=<postmaster@example\.test> reason=unknown-local-sender "
                   r"sender=<phantom123@example\.test>")
    assert not os.path.exists(t.maildir("phantom123@example.test"))
    assert sorted(os.listdir(os.path.join(t.mail, "example.test"))) == ["alice", "postmaster"]


def test_dsn_for_hostile_local_part_creates_nothing(transit):
    t = transit
    with t.raw() as c:
        c.ehlo()
        c.expect('MAIL FROM:<"../../escape"@example.test>', 250, "2.1.0")
        c.expect("RCPT TO:<alice@example.test> NOTIFY=SUCCESS", 250, "2.1.5")
        c.expect("DATA", 354)
        c.send_data(make_message("escape", sender="x@example.test"))
    t.wait_for_mail("alice", 1)
    t.wait_for_mail("postmaster@example.test", 1, settle=1.0)
    everything = entries_under(t.dir)
    assert not [p for p in everything if "escape" in os.path.basename(p)], everything
    assert sorted(os.listdir(os.path.join(t.mail, "example.test"))) == ["alice", "postmaster"]
    assert not os.path.exists(os.path.join(os.path.dirname(t.dir), "escape"))


def test_unknown_local_recipient_in_the_queue_fails_5_1_1(transit):
    """A recipient the directory no longer knows when its delivery comes
    (user deleted after RCPT): a 5.1.1 failure DSN, no mailbox."""
    t = transit
    t.add_user("dave@example.test")
    harness.wait_until(lambda: _rcpt_ok(t, "dave@example.test"), 10, what="dave in the directory")
    with t.raw() as c:
        c.ehlo()
        c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
        c.expect("RCPT TO:<dave@example.test>", 250, "2.1.5")
        t.ctl("user", "del", "dave@example.test", check=True)
        harness.wait_until(lambda: _rcpt_refused(t, "dave@example.test"), 10,
                           what="dave gone from the directory")
        c.expect("DATA", 354)
        c.send_data(make_message("to dave"))
    (dsn,) = t.wait_for_mail("bob", 1, settle=0.5)
    r = sp.Dsn(dsn).rcpt("dave@example.test")
    assert r.get("status") == "5.1.1" and r.get("action") == "failed", r
    assert not os.path.exists(t.maildir("dave"))


def _rcpt_refused(t, rcpt):
    with t.raw() as c:
        c.ehlo()
        c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        c.cmd("QUIT")
    return r.code == 550


# -- item 18: the directory's reloads and postmaster ------------------------------------

def test_passwd_reload_is_logged_and_a_failed_one_keeps_the_users(transit):
    t = transit
    t.add_user("erin@example.test")
    harness.wait_until(lambda: _rcpt_ok(t, "erin@example.test"), 10, what="erin in the directory")
    poke_until(t, r"passwd-file %s reloaded users=3\b" % re.escape(t.users_file))

    # replaced by something that cannot be read: a warning, users kept
    os.rename(t.users_file, t.users_file + ".saved")
    os.mkdir(t.users_file)
    poke_until(t, r"warning: passwd-file %s: reload failed: read error: Is a directory "
                  r"\(keeping 3 users\)" % re.escape(t.users_file))
    assert _rcpt_ok(t, "erin@example.test")

    # gone altogether: a warning, users kept
    os.rmdir(t.users_file)
    poke_until(t, r"warning: passwd-file %s: reload failed: the file has gone \(keeping 3 users\)"
               % re.escape(t.users_file))
    assert _rcpt_ok(t, "erin@example.test")

    # back, and changed: read again
    os.rename(t.users_file + ".saved", t.users_file)
    t.add_user("frank@example.test")
    poke_until(t, r"passwd-file %s reloaded users=4\b" % re.escape(t.users_file))
    assert _rcpt_ok(t, "frank@example.test")


def poke_until(t, pattern, count=1, timeout=10):
    """The directory is re-checked when it is used (at most once a second):
    ask for a mailbox until the log shows pattern count times."""
    rx = re.compile(pattern, re.M)

    def seen():
        if len(rx.findall(t.log_text())) >= count:
            return True
        _rcpt_ok(t, "alice@example.test")
        return len(rx.findall(t.log_text())) >= count
    harness.wait_until(seen, timeout, interval=0.3, what="log /%s/ x%d" % (pattern, count))


def _rcpt_ok(t, rcpt):
    with t.raw() as c:
        c.ehlo()
        c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        c.cmd("QUIT")
    return r.code == 250


POSTMASTER_UNREAD = r"postmaster=<postmaster@example\.test> is not a user of the passwd-file"


def test_postmaster_nobody_can_read_is_warned(transit_conf):
    t = transit_conf
    p = t.run_daemon("-c", t.conf_path, "-n")
    assert p.returncode == 0
    assert re.search(POSTMASTER_UNREAD, p.stderr.decode()), p.stderr.decode()
    t.start()
    sp.wait_log(t, r"warning: " + POSTMASTER_UNREAD + r".*%s" % re.escape(t.maildir("postmaster")))
    t.stop()
    # once it is a user, no warning
    t.add_user("postmaster@example.test")
    p = t.run_daemon("-c", t.conf_path, "-n")
    assert p.returncode == 0 and "postmaster=" not in p.stderr.decode(), p.stderr.decode()


def test_postmaster_that_cannot_be_delivered_is_warned(transit_conf):
    t = transit_conf
    t.cfg["server"]["postmaster"] = "hostmaster@elsewhere.test"
    t.write_config()
    p = t.run_daemon("-c", t.conf_path, "-n")
    assert p.returncode == 0
    pattern = (r"postmaster=<hostmaster@elsewhere\.test> is not deliverable: elsewhere\.test is "
               r"not an authoritative domain and no enabled send connector matches it")
    assert re.search(pattern, p.stderr.decode()), p.stderr.decode()
    t.start()
    sp.wait_log(t, r"warning: " + pattern)
