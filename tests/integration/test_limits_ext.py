"""
test_limits_ext.py - limits and SMTP extensions of transitd's receive path.

Covers: SIZE (RFC 1870: 552 5.3.4 at MAIL and during DATA/BDAT), the
recipient limit (452 4.5.3, RFC 5321 4.5.3.1.10), the hop count (554 5.4.6,
RFC 5321 6.3), CHUNKING/BDAT (RFC 3030), SMTPUTF8 (RFC 6531: 553 5.6.7
without it), 8BITMIME (RFC 6152), DSN parameters (RFC 3461), implicit TLS
(RFC 8314) and STARTTLS (RFC 3207) with the Received "with ESMTPS" and TLS
details (RFC 3848), and refusal of TLS 1.1 (RFC 8996).
"""

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import warnings

import pytest

import harness
from harness import check_reply, crlf_to_lf, make_message, strip_trace


# -- SIZE -----------------------------------------------------------------------------

def _big_message(subject, size):
    line = b"0123456789" * 7 + b"\r\n"                  # 72 octets
    body = line * (size // len(line) + 1)
    return make_message(subject, body=body)


@pytest.mark.transit(internet={"max-message-size": "10K"})
def test_size_limit_at_mail(transit):
    c = transit.raw()
    r = c.ehlo()
    size = r.keyword_args("SIZE")
    assert size and int(size[0]) in (10000, 10240), "SIZE for 10K: %r" % r
    c.expect("MAIL FROM:<bob@example.test> SIZE=20000", 552, "5.3.4")
    c.expect("MAIL FROM:<bob@example.test> SIZE=5000", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.expect("DATA", 354)
    c.send_data(_big_message("five-k", 5000))
    (d,) = transit.wait_for_mail("alice", 1, settle=0.5)
    assert d.subject == "five-k"


@pytest.mark.transit(internet={"max-message-size": "10K"})
def test_size_limit_in_data(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.expect("DATA", 354)
    r = c.send_data(_big_message("twenty-k", 20000), expect_code=None)
    check_reply(r, 552, "5.3.4", what="20 KB message with a 10K limit")
    c.expect("NOOP", 250, "2.0.0")
    # a SIZE= that lies does not help
    c.expect("MAIL FROM:<bob@example.test> SIZE=1000", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.expect("DATA", 354)
    r = c.send_data(_big_message("liar", 20000), expect_code=None)
    check_reply(r, 552, "5.3.4", what="20 KB message announced as 1000")
    # nor does BDAT
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    big = _big_message("bdat-big", 20000)
    c.send(b"BDAT %d LAST\r\n" % len(big) + big)
    check_reply(c.read_reply(), 552, "5.3.4", what="BDAT over the limit")
    c.expect("NOOP", 250, "2.0.0")
    c.mail_transaction("bob@example.test", ["alice@example.test"], _big_message("small", 3000))
    transit.wait_for_mail("alice", 1, settle=1.0)
    assert [d.subject for d in transit.all_delivered()] == ["small"]


# -- recipients and hops ----------------------------------------------------------------

@pytest.mark.transit(internet={"max-recipients": 3}, users=["carol@example.test"])
def test_max_recipients(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    for r in ("alice@example.test", "bob@example.test", "postmaster@example.test"):
        c.expect("RCPT TO:<%s>" % r, 250, "2.1.5")
    c.expect("RCPT TO:<carol@example.test>", 452, "4.5.3")
    c.expect("DATA", 354)
    c.send_data(make_message("three-rcpts", message_id="<three@client.test>"))
    transit.wait_for_mail("alice", 1)
    transit.wait_for_mail("bob", 1)
    transit.wait_for_mail("postmaster", 1, settle=1.0)
    assert transit.mail_files("carol") == []
    assert len(transit.all_delivered()) == 3


def _hops(n):
    return tuple("Received: from h%d.example by h%d.example; Thu, 01 Jan 2026 00:00:%02d +0000"
                 % (i, i + 1, i) for i in range(n))


@pytest.mark.transit(server={"max-hop-count": 5})
def test_hop_count(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.expect("DATA", 354)
    r = c.send_data(make_message("loop", extra_headers=_hops(6)), expect_code=None)
    check_reply(r, 554, "5.4.6", what="6 Received fields with max-hop-count 5")
    c.expect("NOOP", 250, "2.0.0")
    c.mail_transaction("bob@example.test", ["alice@example.test"],
                       make_message("five-hops", extra_headers=_hops(5)))
    (d,) = transit.wait_for_mail("alice", 1, settle=1.0)
    assert d.subject == "five-hops"
    assert len(d.header("Received")) == 6


# -- CHUNKING / BDAT -------------------------------------------------------------------------

def _bdat(c, chunk, last=False):
    c.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk)
    return c.read_reply()


def test_bdat_chunks(transit):
    c = transit.raw()
    assert "CHUNKING" in c.ehlo().keywords
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    msg = make_message("bdat-three", body=b".leading dot stays\r\nline two\r\n.\r\nend\r\n",
                       message_id="<bdat-three@client.test>")
    parts = [msg[:40], msg[40:90], msg[90:]]
    check_reply(_bdat(c, parts[0]), 250, "2.0.0", what="BDAT 1")
    check_reply(_bdat(c, parts[1]), 250, "2.0.0", what="BDAT 2")
    r = _bdat(c, parts[2], last=True)
    check_reply(r, 250, "2.0.0", r"Ok: queued as [A-Za-z0-9]+", what="BDAT LAST")
    (d,) = transit.wait_for_mail("alice", 1, settle=0.5)
    assert strip_trace(d.data)[1] == crlf_to_lf(msg), "BDAT content is taken verbatim"


def test_bdat_zero_last_and_pipelined(transit):
    c = transit.raw()
    c.ehlo()
    m1 = make_message("bdat-zero", message_id="<bdat-zero@client.test>")
    c.send(b"MAIL FROM:<bob@example.test>\r\nRCPT TO:<alice@example.test>\r\n"
           b"BDAT %d\r\n" % len(m1) + m1 + b"BDAT 0 LAST\r\n")
    r = c.read_replies(4)
    check_reply(r[0], 250, "2.1.0")
    check_reply(r[1], 250, "2.1.5")
    check_reply(r[2], 250, "2.0.0")
    check_reply(r[3], 250, "2.0.0", r"Ok: queued as", what="BDAT 0 LAST")
    (d,) = transit.wait_for_mail("alice", 1, settle=0.5)
    assert strip_trace(d.data)[1] == crlf_to_lf(m1)


def test_bdat_crlf_split_across_chunks(transit):
    """RFC 3030: chunks are arbitrary octets; a CR at the end of one chunk
    and the LF at the start of the next make one CRLF."""
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    msg = make_message("bdat-split", body=b"alpha\r\nbeta\r\n")
    cut = msg.index(b"alpha\r\n") + len(b"alpha\r")
    check_reply(_bdat(c, msg[:cut]), 250, "2.0.0")
    check_reply(_bdat(c, msg[cut:], last=True), 250, "2.0.0", r"queued as")
    (d,) = transit.wait_for_mail("alice", 1)
    assert d.body == b"alpha\nbeta\n"


def test_bdat_and_data_do_not_mix(transit):
    c = transit.raw()
    c.ehlo()
    c.send(b"BDAT 5\r\nhello")                                   # no transaction
    check_reply(c.read_reply(), 503, "5.5.1", what="BDAT without MAIL")
    c.expect("NOOP", 250, "2.0.0")      # the 5 octets were read as data, not as a command
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    check_reply(_bdat(c, b"Subject: mixed\r\n"), 250, "2.0.0")
    c.expect("DATA", 503, "5.5.1")
    c.expect("RSET", 250, "2.0.0")
    c.mail_transaction("bob@example.test", ["alice@example.test"], make_message("after-mix"))
    transit.wait_for_mail("alice", 1, settle=1.0)
    assert [d.subject for d in transit.all_delivered()] == ["after-mix"]


def test_bdat_bad_arguments(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    for bad in ("BDAT", "BDAT x", "BDAT -1"):      # no size: nothing to read after them
        r = c.cmd(bad)
        assert r.code in (500, 501) and r.enh and r.enh.startswith("5.5."), (bad, r)
    c.expect("NOOP", 250, "2.0.0")


# -- SMTPUTF8, 8BITMIME, DSN ------------------------------------------------------------------

UTF8_USER = "δοκιμή@example.test"


@pytest.mark.transit(users=[UTF8_USER])
def test_smtputf8(transit):
    c = transit.raw()
    assert "SMTPUTF8" in c.ehlo().keywords
    c.expect("MAIL FROM:<%s> SMTPUTF8" % UTF8_USER, 250, "2.1.0")
    c.expect("RCPT TO:<%s>" % UTF8_USER, 250, "2.1.5")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.expect("DATA", 354)
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: Δοκιμή utf8\r\nMessage-ID: <utf8@client.test>\r\n"
           "\r\nκείμενο\r\n" % (UTF8_USER, UTF8_USER)).encode("utf-8")
    c.send_data(msg)
    (a,) = transit.wait_for_mail("alice", 1, settle=1.0)
    harness.check_maildir_file(a, UTF8_USER, "alice@example.test")
    assert strip_trace(a.data)[1] == crlf_to_lf(msg)
    others = [d for d in transit.all_delivered() if d.path != a.path]
    assert len(others) == 1, "the UTF-8 recipient gets one copy: %r" % others
    harness.check_maildir_file(others[0], UTF8_USER, UTF8_USER)


@pytest.mark.transit(users=[UTF8_USER])
def test_utf8_address_needs_smtputf8(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % UTF8_USER, 553, "5.6.7")
    c.expect("MAIL FROM:<bob@example.test>", 250, "2.1.0")
    c.expect("RCPT TO:<%s>" % UTF8_USER, 553, "5.6.7")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")


def test_8bitmime(transit):
    c = transit.raw()
    assert "8BITMIME" in c.ehlo().keywords
    c.expect("MAIL FROM:<bob@example.test> BODY=8BITMIME", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.expect("DATA", 354)
    body = "café ünïcode\r\n".encode("utf-8") + b"latin1 \xe9\xe8\r\n" + bytes(range(0x80, 0x100)) + b"\r\n"
    msg = make_message("eight-bit", body=body, extra_headers=(
        "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit"))
    c.send_data(msg)
    c.expect("MAIL FROM:<bob@example.test> BODY=7BIT", 250, "2.1.0")
    c.expect("RSET", 250, "2.0.0")
    r = c.cmd("MAIL FROM:<bob@example.test> BODY=BINARYMIME")     # not offered
    assert r.code in (501, 504, 555) and r.enh and r.enh.startswith("5.5."), r
    (d,) = transit.wait_for_mail("alice", 1)
    assert d.body == crlf_to_lf(body), "8-bit body must arrive byte for byte"


def test_dsn_and_unknown_parameters(transit):
    c = transit.raw()
    assert "DSN" in c.ehlo().keywords
    c.expect("MAIL FROM:<bob@example.test> RET=HDRS ENVID=abc123", 250, "2.1.0")
    c.expect("RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE "
             "ORCPT=rfc822;alice@example.test", 250, "2.1.5")
    c.expect("RCPT TO:<bob@example.test> NOTIFY=NEVER", 250, "2.1.5")
    r = c.cmd("RCPT TO:<bob@example.test> NOTIFY=NEVER,SUCCESS")  # RFC 3461 4.1: invalid
    assert r.code in (501, 555) and r.enh and r.enh.startswith("5.5."), r
    c.expect("RSET", 250, "2.0.0")
    r = c.cmd("MAIL FROM:<bob@example.test> FOO=BAR")
    assert r.code in (501, 555) and r.enh and r.enh.startswith("5.5."), r


# -- TLS -----------------------------------------------------------------------------------

def test_implicit_tls_submissions(transit):
    c = transit.raw(tls=True, greet=False)
    assert c.sock.version() == "TLSv1.3", c.sock.version()
    c.greeting()
    r = c.ehlo()
    assert "STARTTLS" not in r.keywords, "no STARTTLS inside implicit TLS: %r" % r
    check_reply(c.cmd("STARTTLS"), (502, 503, 554), "5.", what="STARTTLS inside TLS")
    cipher = c.sock.cipher()[0]
    msg = make_message("implicit-tls", message_id="<implicit@client.test>")
    c.mail_transaction("bob@example.test", ["alice@example.test"], msg)
    c.expect("QUIT", 221, "2.0.0")
    # and a real client
    with transit.smtp(tls=True) as s:
        s.ehlo("client.example.net")
        assert s.sendmail("bob@example.test", ["alice@example.test"],
                          make_message("implicit-smtplib")) == {}
    files = {d.subject: d for d in transit.wait_for_mail("alice", 2, settle=0.5)}
    rcv = files["implicit-tls"].first("Received")
    assert "with ESMTPS" in rcv, rcv
    assert "TLSv1.3" in rcv, rcv
    assert cipher in rcv, "cipher %s not in %r" % (cipher, rcv)
    assert strip_trace(files["implicit-tls"].data)[1] == crlf_to_lf(msg)


def test_starttls_received_says_esmtps(transit):
    c = transit.raw()
    c.ehlo()
    c.starttls()
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    version, cipher = c.sock.version(), c.sock.cipher()[0]
    c.ehlo()
    c.mail_transaction("bob@example.test", ["alice@example.test"], make_message("starttls-rcv"))
    (d,) = transit.wait_for_mail("alice", 1)
    rcv = d.first("Received")
    assert "with ESMTPS" in rcv, rcv
    assert version in rcv and cipher in rcv, rcv


def test_starttls_tls12_works(transit):
    ctx = harness.client_tls_context(max_version=ssl.TLSVersion.TLSv1_2)
    c = transit.raw()
    c.ehlo()
    c.starttls(ctx)
    assert c.sock.version() == "TLSv1.2"
    c.ehlo()
    c.mail_transaction("bob@example.test", ["alice@example.test"], make_message("tls12"))
    (d,) = transit.wait_for_mail("alice", 1)
    assert "TLSv1.2" in d.first("Received")


def _tls11_context():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return harness.client_tls_context(min_version=ssl.TLSVersion.TLSv1_1,
                                          max_version=ssl.TLSVersion.TLSv1_1, seclevel0=True)


def _local_tls11_works():
    """Can this machine's OpenSSL speak TLS 1.1 at all? (Else a refusal
    would prove nothing.) Checked against a throw-away Python server."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return False, "openssl command not installed"
    d = tempfile.mkdtemp(prefix="tls11-")
    try:
        subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", d + "/k.pem", "-out",
                        d + "/c.pem", "-days", "1", "-subj", "/CN=tls11.test"],
                       check=True, capture_output=True, timeout=30)
        srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.load_cert_chain(d + "/c.pem", d + "/k.pem")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            srv.minimum_version = ssl.TLSVersion.TLSv1_1
            srv.set_ciphers("DEFAULT:@SECLEVEL=0")
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        ls.settimeout(10)
        result = {}

        def serve():
            try:
                conn, _ = ls.accept()
                conn.settimeout(10)
                with srv.wrap_socket(conn, server_side=True) as t:
                    result["server"] = t.version()
            except (OSError, ssl.SSLError) as e:
                result["server"] = str(e)

        th = threading.Thread(target=serve, daemon=True)
        th.start()
        try:
            with socket.create_connection(ls.getsockname(), timeout=10) as s:
                with _tls11_context().wrap_socket(s, server_hostname=None) as t:
                    v = t.version()
        except (OSError, ssl.SSLError) as e:
            v = str(e)
        th.join(10)
        ls.close()
        return v == "TLSv1.1", "local TLS 1.1 handshake gave %r" % v
    except (subprocess.SubprocessError, OSError) as e:
        return False, str(e)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_tls11_refused(transit):
    ok, why = _local_tls11_works()
    if not ok:
        pytest.skip("this machine's OpenSSL cannot speak TLS 1.1, so the test would prove "
                    "nothing: " + why)
    with pytest.raises(ssl.SSLError):
        transit.raw(tls=True, tls_context=_tls11_context(), greet=False)
    c = transit.raw()
    c.ehlo()
    c.expect("STARTTLS", 220, "2.0.0")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        c.tls_handshake(_tls11_context())
    # and the listener is still fine
    c2 = transit.raw(tls=True)
    c2.ehlo()
