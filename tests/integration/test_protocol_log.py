"""
test_protocol_log.py - protocol logs (issue 8): protocol-log = "verbose" on
a receive connector writes the SMTP dialogue to <logs.path>/SmtpReceive/,
on a send connector to <logs.path>/SmtpSend/: one line per command or
reply with time, session id and direction; AUTH credentials masked
(neither the password nor any base64 of it appears); message content
never written (DATA and BDAT show the command and a size note);
"none" (the default) writes no file.
"""

import base64
import glob
import os
import re

import pytest

import harness
import sendpeers as sp
from conftest import PASSWORD
from sendpeers import dns  # noqa: F401  (the module's nameserver fixture)
from sendpeers import IP_MX1, message, relay_send

ALICE = "alice@example.test"
MARKER = "BODY-MARKER-5f2c9a"
LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (\S+) ([<>*]) (.*)$")


def b64(s):
    return base64.b64encode(s.encode()).decode()


def log_text(t, side):
    out = ""
    for p in sorted(glob.glob(os.path.join(t.dir, "logs", side, side + "-*.log"))):
        with open(p, encoding="ascii") as f:
            out += f.read()
    return out


def wait_log_text(t, side, pattern, timeout=15.0):
    harness.wait_until(lambda: re.search(pattern, log_text(t, side), re.M), timeout,
                       what="%r in %s" % (pattern, side))
    return log_text(t, side)


@pytest.fixture
def verbose_receive(transit_conf):
    t = transit_conf
    t.override("internet", {"protocol-log": "verbose", "auth": ["plain", "login"],
                            "auth-cleartext": "loopback",
                            "permissions": ["anonymous", "authenticated"]})
    t.write_config()
    t.start()
    return t


def test_receive_dialogue_with_auth_masked(verbose_receive):
    t = verbose_receive
    with t.raw() as c:
        c.ehlo("client.example.net")
        harness.check_reply(c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (ALICE, PASSWORD))), 235)
        msg = harness.make_message("plog", body="%s\r\n" % MARKER)
        c.mail_transaction(ALICE, ["bob@example.test"], msg)
        c.cmd("QUIT")
    with t.raw() as c:
        c.ehlo("client.example.net")
        harness.check_reply(c.cmd("AUTH LOGIN"), 334)
        harness.check_reply(c.cmd(b64(ALICE)), 334)
        harness.check_reply(c.cmd(b64(PASSWORD)), 235)
        harness.check_reply(c.cmd("MAIL FROM:<%s>" % ALICE), 250)
        harness.check_reply(c.cmd("RCPT TO:<bob@example.test>"), 250)
        body = ("Subject: chunk\r\n\r\n%s\r\n" % MARKER).encode()
        c.send(b"BDAT %d LAST\r\n" % len(body) + body)
        harness.check_reply(c.read_reply(), 250)
        c.cmd("QUIT")
    t.wait_for_mail("bob", 2)
    text = wait_log_text(t, "SmtpReceive", r"> 221 .*\n(.*\n)*.*> 221 .*\n(.*\n)*.*> 221 ")
    lines = text.splitlines()
    assert all(LINE_RE.match(ln) for ln in lines), [ln for ln in lines if not LINE_RE.match(ln)]
    # the harness's readiness probe, then our two sessions
    sids = sorted({LINE_RE.match(ln).group(1) for ln in lines})
    assert len(sids) == 3, sids
    says = [" ".join(LINE_RE.match(ln).group(2, 3)) for ln in lines
            if LINE_RE.match(ln).group(1) == sids[1]]
    assert says[0] == "* connect address=127.0.0.1 connector=internet", says
    assert says[1].startswith("> 220 ") and says[2] == "< EHLO client.example.net", says
    assert "> 250-AUTH PLAIN LOGIN" in says and says[-2:] == ["> 221 2.0.0 Bye",
                                                           "* disconnect reason=quit"], says
    assert re.search(r"< AUTH PLAIN <initial response, \d+ octets>", text), text
    assert "< AUTH LOGIN" in text and text.count("< <SASL response, ") == 2, text
    assert "> 334 VXNlcm5hbWU6" in text and "> 235 2.7.0" in text
    assert "< MAIL FROM:<%s>" % ALICE in text and "< DATA" in text and "> 354 " in text
    assert re.search(r"\* message data: \d+ octets \(not logged\)", text), text
    assert re.search(r"< BDAT \d+ LAST", text) and "> 250 2.0.0 Ok: queued as" in text
    # never the secrets or the content
    for secret in (PASSWORD, b64(PASSWORD), b64(ALICE), b64("\0%s\0%s" % (ALICE, PASSWORD)),
                   MARKER, "Subject: plog", "Subject: chunk"):
        assert secret not in text, "%r is in the protocol log" % secret


def test_none_writes_no_file(transit):
    t = transit
    t.send(harness.make_message("no plog"))
    t.wait_for_mail("alice", 1)
    assert not os.path.exists(os.path.join(t.dir, "logs", "SmtpReceive"))
    assert not os.path.exists(os.path.join(t.dir, "logs", "SmtpSend"))


def test_protocol_log_rotates(transit_conf):
    t = transit_conf
    t.override("internet", {"protocol-log": "verbose"})
    t.override("config", {"logs": {"protocol": {"max-file-size": "1K", "max-dir-size": "4K"}}})
    t.write_config()
    t.start()
    for i in range(10):
        t.send(harness.make_message("rot %d" % i))
    t.wait_for_mail("alice", 10)
    wait_log_text(t, "SmtpReceive", r"rot|221")
    harness.wait_until(lambda: len(glob.glob(os.path.join(t.dir, "logs", "SmtpReceive", "*"))) >= 2,
                       10, what="rotated files")
    sizes = [os.path.getsize(p) for p in glob.glob(os.path.join(t.dir, "logs", "SmtpReceive", "*"))]
    assert all(s <= 1024 for s in sizes) and sum(sizes) <= 4096 + 1024, sizes


@pytest.fixture
def peers(transit_conf):
    p = sp.Peers(os.path.join(transit_conf.dir, "peers"))
    os.makedirs(p.base)
    yield p
    problems = p.stop_all()
    if problems:
        pytest.fail("peer problems: %s" % "\n".join(problems), pytrace=False)


def test_send_dialogue(transit_conf, dns, peers):
    t = transit_conf
    sp.configure_sender(t, dns.port, {"internet": sp.dns_connector(
        t.port_smtp, **{"protocol-log": "verbose"})})
    t.start()
    s = peers.sink(IP_MX1, t.port_smtp)
    relay_send(t, ALICE, ["x@example.net"], message("send plog", extra=("X-Marker: " + MARKER,)))
    s.wait_messages(1, timeout=20)
    text = wait_log_text(t, "SmtpSend", r"\* closed|> QUIT")
    assert all(LINE_RE.match(ln) for ln in text.splitlines()), text
    assert re.search(r"\* connect peer=mx1\.example\.net\[127\.0\.0\.2\]", text), text
    assert re.search(r"< 220 ", text) and "> EHLO " in text, text
    assert "> MAIL FROM:<%s>" % ALICE in text and "> RCPT TO:<x@example.net>" in text, text
    assert "> DATA" in text and re.search(r"\* message data: \d+ octets \(not logged\)", text)
    assert MARKER not in text and "send plog" not in text, text
    # receive side has no verbose connector: no file there
    assert not os.path.exists(os.path.join(t.dir, "logs", "SmtpReceive"))
