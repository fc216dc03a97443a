"""
test_session_hardening.py - the SMTP server session against hostile and
sloppy clients (issue 6 items 1, 2, 7, 15 and the server parts of 18).

Covers: RCPT/MAIL after a BDAT chunk (RFC 3030; 503 5.5.1, a recipient
answered 250 is always in the committed envelope), a client that pipelines
commands and never reads its replies (output watermark: input is held, RSS
stays bounded, other sessions are served), the whole-session deadline when
it fires during a slow queue commit (421 4.4.2 right after the commit
reply), bare LF normalisation per connector (Postfix 3.9
smtpd_forbid_bare_newline=normalize: end of data is only a real
<CRLF>.<CRLF>) against the SMTP smuggling shapes and real clients, NUL
bytes refused in commands and content, TLS close_notify on an orderly
close, reasons in the log, line limits stated in replies, and the error
limit with its delay (Postfix smtpd_soft_error_limit / hard_error_limit).
"""

import os
import re
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

import harness
from harness import check_reply, make_message

ALICE = "alice@example.test"
BOB = "bob@example.test"


def log_lines(transit, pattern):
    return [ln for ln in transit.log_text().splitlines() if re.search(pattern, ln)]


# -- item 1: RCPT and MAIL after a BDAT chunk ---------------------------------------

def test_rcpt_after_bdat_chunk_refused(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % BOB, 250, "2.1.0")
    c.expect("RCPT TO:<%s>" % ALICE, 250, "2.1.5")
    chunk1 = b"Subject: chunked\r\n\r\nfirst part\r\n"
    c.send(b"BDAT %d\r\n" % len(chunk1) + chunk1)
    check_reply(c.read_reply(), 250, "2.0.0", what="first chunk")
    c.expect("RCPT TO:<%s>" % BOB, 503, "5.5.1")
    c.expect("MAIL FROM:<%s>" % BOB, 503, "5.5.1")
    c.expect("DATA", 503, "5.5.1")
    chunk2 = b"last\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(chunk2) + chunk2)
    r = check_reply(c.read_reply(), 250, "2.0.0", r"queued as", what="BDAT LAST")
    qid = harness.QUEUED_RE.search(r.text).group(1)
    c.expect("QUIT", 221, "2.0.0")
    (d,) = transit.wait_for_mail("alice", 1)
    assert b"first part" in d.data and b"last" in d.data
    assert transit.mail_files("bob") == []
    received = log_lines(transit, r"%s receive " % qid)
    assert received and "nrcpt=1 " in received[0], received
    # the session is still usable for a new transaction after the 503s
    with transit.raw() as c2:
        c2.ehlo()
        c2.expect("MAIL FROM:<%s>" % BOB, 250, "2.1.0")
        c2.expect("RCPT TO:<%s>" % BOB, 250, "2.1.5")
        c2.send(b"BDAT 6\r\nab\r\ncd")
        check_reply(c2.read_reply(), 250, "2.0.0")
        c2.expect("RSET", 250, "2.0.0")
        c2.expect("RCPT TO:<%s>" % BOB, 503, "5.5.1")   # no transaction after RSET
        c2.expect("MAIL FROM:<%s>" % BOB, 250, "2.1.0")


# -- item 2: a client that pipelines and never reads ------------------------------------

def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def flood_never_read(transit, command, seconds, check_other):
    """Write command over and over for seconds without reading a byte;
    every ~2 s another session must be served. Returns the peak RSS (KiB)."""
    s = socket.create_connection((conftest_host(), transit.port_smtp), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # keep our side small too
    block = command * 2000
    peak = vm_rss_kib(transit.proc.pid)
    t0 = last_check = time.monotonic()
    sent = 0
    try:
        s.settimeout(0.2)
        while time.monotonic() - t0 < seconds:
            try:
                sent += s.send(block)
            except socket.timeout:
                pass
            peak = max(peak, vm_rss_kib(transit.proc.pid))
            if time.monotonic() - last_check > 2:
                check_other()
                last_check = time.monotonic()
    finally:
        s.close()
    return peak, sent


def conftest_host():
    return "127.0.0.1"


@pytest.mark.timeout(90)
def test_pipelining_client_that_never_reads(transit, monkeypatch):
    served = []

    def other_session():
        t = time.monotonic()
        with transit.raw(timeout=5) as c:
            c.ehlo()
            c.expect("NOOP", 250, "2.0.0")
            c.expect("QUIT", 221, "2.0.0")
        served.append(time.monotonic() - t)

    start_rss = vm_rss_kib(transit.proc.pid)
    peak, sent = flood_never_read(transit, b"HELP\r\n", 10, other_session)
    assert len(served) >= 3 and max(served) < 5, served
    growth_mib = (peak - start_rss) / 1024.0
    print("HELP flood: sent %d bytes, RSS %d KiB -> peak %d KiB" % (sent, start_rss, peak))
    assert peak < 32 * 1024 or growth_mib < 16, \
        "transitd RSS grew from %d to %d KiB while one client did not read" % (start_rss, peak)
    other_session()


# -- item 7: the whole-session deadline during a commit ----------------------------------

PRELOAD_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "preload")


def build_slow_sync(tmpdir):
    """Compile the slow_sync LD_PRELOAD shim; skip when no C compiler."""
    out = os.path.join(tmpdir, "slow_sync.so")
    try:
        subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", out,
                        os.path.join(PRELOAD_DIR, "slow_sync.c"), "-ldl"],
                       check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip("cannot build the slow_sync shim: %s" % e)
    return out


def start_with_slow_sync(transit_conf, monkeypatch, ms):
    so = build_slow_sync(transit_conf.dir)
    monkeypatch.setenv("LD_PRELOAD", so)
    monkeypatch.setenv("SLOW_SYNC_MS", str(ms))
    # the shim is not sanitised; it only has to come after the ASan runtime
    asan = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", (asan + ":" if asan else "") + "verify_asan_link_order=0")
    transit_conf.start()


@pytest.mark.timeout(60)
@pytest.mark.transit(internet={"session-timeout": "3s"})
def test_session_deadline_during_commit(transit_conf, monkeypatch):
    start_with_slow_sync(transit_conf, monkeypatch, 6000)
    c = transit_conf.raw()
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % BOB, 250, "2.1.0")
    c.expect("RCPT TO:<%s>" % ALICE, 250, "2.1.5")
    c.expect("DATA", 354)
    t0 = time.monotonic()
    # the commit takes 6 s; the 3 s session deadline fires in the middle
    c.send_data(make_message("slow-commit"), expect_code=250)
    assert time.monotonic() - t0 >= 1.0
    # then the deadline is honoured at once: 421 4.4.2 and the close,
    # not a wait for the 5 minute command timeout
    r = c.read_reply(timeout=5)
    check_reply(r, 421, "4.4.2", what="session deadline after the commit")
    assert c.wait_closed(5)
    transit_conf.wait_for_mail("alice", 1)
    assert log_lines(transit_conf, r"smtp timeout kind=session state=commit")


# -- item 15: bare LF per connector, NUL everywhere ------------------------------------

NORMALIZE = {"bare-lf": "normalize"}
SMUGGLED = (b"MAIL FROM:<bob@example.test>\r\n"
            b"RCPT TO:<alice@example.test>\r\n"
            b"DATA\r\n"
            b"From: <bob@example.test>\r\n"
            b"Subject: smuggled\r\n"
            b"\r\n"
            b"smuggled body\r\n")
SHAPES = {                              # the same five as test_security.py
    "lf-dot-lf": b"\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "crlf-dot-lf": b"\r\n.\n",
    "cr-dot-crlf": b"\r.\r\n",
    "crlf-dot-cr": b"\r\n.\r",
}


@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
@pytest.mark.transit(internet=NORMALIZE)
def test_smuggling_shapes_on_normalize_connector(transit, shape):
    """bare-lf = normalize: the LF shapes are one message (the smuggled
    text stays inside it); the CR shapes are refused (554 5.6.0). Either
    way exactly one message is delivered and never the smuggled one."""
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % BOB, 250, "2.1.0")
    c.expect("RCPT TO:<%s>" % ALICE, 250, "2.1.5")
    c.expect("DATA", 354)
    c.send(b"From: <bob@example.test>\r\nTo: <alice@example.test>\r\nSubject: carrier\r\n\r\n"
           b"first line" + shape + SMUGGLED + b"\r\n.\r\n")
    r = c.read_reply()
    if b"\r" in shape.replace(b"\r\n", b""):
        check_reply(r, 554, "5.6.0", what="bare CR shape on a normalize connector")
        c.expect("NOOP", 250, "2.0.0")          # one reply for all of it
        c.mail_transaction(BOB, [ALICE], make_message("carrier"))
    else:
        check_reply(r, 250, "2.0.0", what="bare LF shape on a normalize connector")
        c.expect("NOOP", 250, "2.0.0")          # the smuggled commands were content
    c.expect("QUIT", 221, "2.0.0")
    transit.wait_for_mail("alice", 1, settle=1.5)
    everything = transit.all_delivered()
    assert [d.subject for d in everything] == ["carrier"], everything
    assert b"\r" not in everything[0].data.replace(b"\r\n", b"")
    if r.code == 250:
        assert b"smuggled body" in everything[0].body


@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
@pytest.mark.transit(internet=NORMALIZE)
def test_smuggling_shapes_in_bdat_on_normalize_connector(transit, shape):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % BOB, 250, "2.1.0")
    c.expect("RCPT TO:<%s>" % ALICE, 250, "2.1.5")
    msg = (b"From: <bob@example.test>\r\nSubject: carrier\r\n\r\nfirst line" + shape + SMUGGLED)
    c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
    r = c.read_reply()
    c.expect("NOOP", 250, "2.0.0")
    if b"\r" in shape.replace(b"\r\n", b""):
        check_reply(r, 554, "5.6.0")
        assert transit.all_delivered() == []
    else:
        check_reply(r, 250, "2.0.0")
        (d,) = transit.wait_for_mail("alice", 1, settle=1.0)
        assert d.subject == "carrier"


def test_bare_lf_mode_defaults_by_permissions(transit_conf):
    transit_conf.override("config", {"receive-connector": {"relay": {
        "bindings": ["127.0.0.1:%d" % harness_free_port()],
        "remote-ip-ranges": ["127.0.0.0/8"], "permissions": ["relay"], "tls": "none"}}})
    transit_conf.write_config()
    p = transit_conf.run_daemon("-n", "-c", transit_conf.conf_path)
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr
    blocks = re.split(r"receive-connector\s+", out)
    mode = {}
    for b in blocks[1:]:
        name = b.split()[0].strip('"{')
        m = re.search(r'bare-lf\s*=\s*"?(\w+)', b)
        mode[name] = m and m.group(1)
    assert mode == {"internet": "reject", "submissions": "reject", "relay": "normalize"}, out


def harness_free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_in_mode(transit_conf, mode):
    if mode != "default":
        transit_conf.override("internet", {"bare-lf": mode})
        transit_conf.write_config()
    transit_conf.start()


@pytest.mark.parametrize("mode", ["default", "normalize"])
def test_nul_in_command_refused(transit_conf, mode):
    start_in_mode(transit_conf, mode)
    c = transit_conf.raw()
    c.ehlo()
    c.send(b"MAIL FROM:<bob@example.test>\x00 SIZE=10\r\n")
    check_reply(c.read_reply(), 500, "5.5.2", what="NUL in MAIL")
    c.expect("RCPT TO:<%s>" % ALICE, 503, "5.5.1")         # MAIL was not taken
    c.send(b"NO\x00OP\r\n")
    check_reply(c.read_reply(), 500, "5.5.2", what="NUL in NOOP")
    assert log_lines(transit_conf, r"smtp reject reason=nul")


@pytest.mark.parametrize("mode", ["default", "normalize"])
@pytest.mark.parametrize("verb", ["DATA", "BDAT"])
def test_nul_in_content_refused(transit_conf, mode, verb):
    start_in_mode(transit_conf, mode)
    c = transit_conf.raw()
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % BOB, 250, "2.1.0")
    c.expect("RCPT TO:<%s>" % ALICE, 250, "2.1.5")
    msg = b"Subject: nul\r\n\r\nbefore\x00after\r\n"
    if verb == "DATA":
        c.expect("DATA", 354)
        c.send(msg + b".\r\n")
    else:
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
    check_reply(c.read_reply(), 554, "5.6.0", r"NUL", what="NUL in message content")
    c.expect("NOOP", 250, "2.0.0")
    assert log_lines(transit_conf, r"smtp reject cmd=%s .*reason=nul" % verb)
    c.mail_transaction(BOB, [ALICE], make_message("clean"))
    transit_conf.wait_for_mail("alice", 1, settle=1.0)
    assert [d.subject for d in transit_conf.all_delivered()] == ["clean"]


LF_MESSAGE = (b"From: <bob@example.test>\nTo: <alice@example.test>\nSubject: lf-only\n\n"
              b"line one\n.leading dot\nline three\n")


def check_lf_message(transit, body=b"line one\n.leading dot\nline three\n"):
    (d,) = transit.wait_for_mail("alice", 1, settle=1.0)
    assert d.subject == "lf-only"
    assert body in d.body, d.body
    return d


@pytest.mark.transit(internet=NORMALIZE)
def test_smtplib_sendmail_bytes_with_lf(transit):
    s = transit.smtp()
    refused = s.sendmail(BOB, [ALICE], LF_MESSAGE)
    assert refused == {}
    s.quit()
    check_lf_message(transit)


def test_smtplib_sendmail_bytes_with_lf_refused_on_anonymous(transit):
    import smtplib
    s = transit.smtp()
    with pytest.raises(smtplib.SMTPDataError) as e:
        s.sendmail(BOB, [ALICE], LF_MESSAGE)
    assert e.value.smtp_code == 554 and b"5.6.0" in e.value.smtp_error
    s.quit()
    assert log_lines(transit, r"smtp reject cmd=DATA .*reason=bare-lf")


@pytest.mark.transit(internet=NORMALIZE)
def test_curl_upload_file_with_lf(transit):
    curl = "/usr/bin/curl"
    if not os.access(curl, os.X_OK):
        pytest.skip("curl is not installed")
    path = os.path.join(transit.dir, "lf-message.txt")
    # curl dot-stuffs only after CRLF, so a line of an LF file that starts
    # with "." loses that dot (as with Postfix's normalize): none here
    with open(path, "wb") as f:
        f.write(LF_MESSAGE.replace(b".leading", b"leading"))
    p = subprocess.run([curl, "-sS", "--max-time", "20", "--url",
                        "smtp://127.0.0.1:%d" % transit.port_smtp, "--mail-from", BOB,
                        "--mail-rcpt", ALICE, "--upload-file", path],
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    check_lf_message(transit, b"line one\nleading dot\nline three\n")


@pytest.mark.transit(internet=NORMALIZE)
def test_printf_nc_style_script(transit):
    """What `printf 'EHLO x\\nMAIL FROM:<...>\\n...' | nc` sends: every line
    ends in LF, written in one go without reading; end of data must still
    be a real <CRLF>.<CRLF> (documented)."""
    script = (b"EHLO script.example.net\nMAIL FROM:<bob@example.test>\n"
              b"RCPT TO:<alice@example.test>\nDATA\n" + LF_MESSAGE.replace(b".lead", b"..lead")
              + b"\r\n.\r\nQUIT\n")
    with socket.create_connection(("127.0.0.1", transit.port_smtp), timeout=10) as s:
        s.sendall(script)                 # nc without -N: no half-close, read until closed
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    codes = [int(ln[:3]) for ln in got.split(b"\r\n") if ln[:3].isdigit() and ln[3:4] == b" "]
    assert codes == [220, 250, 250, 250, 354, 250, 221], got
    check_lf_message(transit)


# -- item 18: the error limit and its delay, refused recipients, reasons -----------------

@pytest.mark.timeout(120)
def test_error_limit_default_20_with_delay_after_10(transit):
    c = transit.raw()
    c.ehlo()
    latencies = []
    for i in range(1, 20):              # 19 commands + BOGUS-held = 20 errors
        t = time.monotonic()
        r = c.cmd("BOGUS%d" % i, timeout=10)
        latencies.append(time.monotonic() - t)
        check_reply(r, 500, "5.5.2", what="unknown command %d" % i)
        if i == 12:
            # a reply is being held for a second: the loop still serves others
            c.send(b"BOGUS-held\r\n")
            t2 = time.monotonic()
            with transit.raw(timeout=5) as other:
                other.ehlo()
                other.expect("NOOP", 250, "2.0.0")
            assert time.monotonic() - t2 < 0.9, "another session waited for the error delay"
            r = c.read_reply(timeout=10)
            check_reply(r, 500, "5.5.2")
            assert time.monotonic() - t2 >= 0.9
    # errors 1..9: no delay; from the 10th on, each reply waits about a
    # second, except the last one, which goes out with the 421 at once
    assert all(x < 0.9 for x in latencies[:9]), latencies
    assert all(x >= 0.9 for x in latencies[9:18]), " ".join("%.2f" % x for x in latencies)
    # BOGUS-held was error 13; the 20th error's 500 is followed by the 421
    r = c.read_reply(timeout=5)
    check_reply(r, 421, "4.7.0", what="too many errors (max-errors 20 by default)")
    assert c.wait_closed(5)


@pytest.mark.transit(internet={"max-errors": 3})
def test_refused_recipients_do_not_count_as_errors(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % BOB, 250, "2.1.0")
    for i in range(6):
        c.expect("RCPT TO:<stale%d@example.test>" % i, 550, "5.1.1")
    c.expect("RCPT TO:<someone@elsewhere.test>", 550, "5.7.1")
    c.expect("RCPT TO:<%s>" % ALICE, 250, "2.1.5")
    c.expect("DATA", 354)
    c.send_data(make_message("stale-list"))
    transit.wait_for_mail("alice", 1)
    # syntax errors still count
    c.expect("BOGUS1", 500, "5.5.2")
    c.expect("BOGUS2", 500, "5.5.2")
    c.send(b"BOGUS3\r\n")
    check_reply(c.read_reply(), 500, "5.5.2")
    check_reply(c.read_reply(), 421, "4.7.0")


@pytest.mark.transit(internet={"max-text-line-length": 1000})
@pytest.mark.parametrize("verb", ["DATA", "BDAT"])
def test_line_too_long_reply_states_the_limit(transit, verb):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % BOB, 250, "2.1.0")
    c.expect("RCPT TO:<%s>" % ALICE, 250, "2.1.5")
    msg = b"Subject: long\r\n\r\n" + b"z" * 3000 + b"\r\n"
    if verb == "DATA":
        c.expect("DATA", 354)
        c.send(msg + b".\r\n")
    else:
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
    check_reply(c.read_reply(), 554, "5.6.0", r"line too long \(limit is 1000 octets\)")
    assert log_lines(transit, r"smtp reject cmd=%s .*reason=line-too-long" % verb)
    c.send(b"NOOP " + b"x" * 3000 + b"\r\n")
    check_reply(c.read_reply(), 500, "5.5.2", r"limit is 2048 octets")


def test_utf8_without_smtputf8_logged_with_reason(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("MAIL FROM:<j\u00f6rg@example.test>", 553, "5.6.7")
    c.expect("MAIL FROM:<%s>" % BOB, 250, "2.1.0")
    c.expect("RCPT TO:<j\u00f6rg@example.test>", 553, "5.6.7")
    assert len(log_lines(transit, r"smtp reject cmd=(MAIL|RCPT) reply=\"553 5.6.7\" "
                                  r"reason=utf8-without-smtputf8")) == 2


# -- item 18: TLS close_notify and handshake failure reasons -----------------------------

def strict_eof_context():
    """A client context that reports a TLS stream ended without
    close_notify as an error (Python sets OP_IGNORE_UNEXPECTED_EOF by
    default, which would hide it)."""
    ctx = harness.client_tls_context()
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    return ctx


def tls_client(port):
    ctx = strict_eof_context()
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=None, suppress_ragged_eofs=False)


def read_until_eof(sock):
    """Everything up to the end of the TLS stream. A close without
    close_notify raises ssl.SSLEOFError here (suppress_ragged_eofs=False)."""
    got = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return got
        got += chunk


def test_implicit_tls_quit_ends_with_close_notify(transit):
    s = tls_client(transit.port_smtps)
    try:
        s.sendall(b"EHLO client.example.net\r\nQUIT\r\n")
        got = read_until_eof(s)                  # SSLEOFError without close_notify
        assert got.startswith(b"220 ") and b"\r\n221 2.0.0" in got, got
    finally:
        s.close()


def test_starttls_quit_ends_with_close_notify(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("STARTTLS", 220, "2.0.0")
    ctx = strict_eof_context()
    s = ctx.wrap_socket(c.sock, server_hostname=None, suppress_ragged_eofs=False)
    c.sock = s
    s.sendall(b"EHLO client.example.net\r\nNOOP\r\nQUIT\r\n")
    got = read_until_eof(s)
    assert b"\r\n250 2.0.0 Ok\r\n221 2.0.0" in got, got
    # an orderly close in both directions: our close_notify is answered
    # by nothing more (the server has closed); unwrap must not fail on
    # the server's side of the shutdown
    try:
        s.unwrap()
    except (BrokenPipeError, ConnectionResetError):
        pass                                     # the server closed its socket already


@pytest.mark.transit(internet={"session-timeout": "2s"})
def test_tls_close_notify_after_421(transit):
    c = transit.raw()
    c.ehlo()
    c.expect("STARTTLS", 220, "2.0.0")
    s = strict_eof_context().wrap_socket(c.sock, server_hostname=None,
                                         suppress_ragged_eofs=False)
    s.settimeout(10)
    got = read_until_eof(s)                      # the session deadline closes it
    assert b"421 4.4.2" in got, got
    c.sock = s


def test_tls_handshake_failure_logged_with_reason(transit):
    with socket.create_connection(("127.0.0.1", transit.port_smtps), timeout=10) as s:
        s.sendall(b"EHLO plaintext.example.net\r\n")     # not a TLS ClientHello
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
    harness.wait_until(lambda: log_lines(transit, r"reason=tls-handshake-failed"), 5,
                       what="the handshake failure in the log")
    (line,) = log_lines(transit, r"reason=tls-handshake-failed")
    print(line)
    m = re.search(r'tls-error=("[^"]+"|\S+)', line)
    assert m and len(m.group(1).strip('"')) > 3, line


def test_tls_handshake_peer_gone_logged_with_reason(transit):
    with socket.create_connection(("127.0.0.1", transit.port_smtps), timeout=10) as s:
        s.sendall(b"\x16\x03\x01\x00\x05\x01\x00")      # half a ClientHello, then close
    harness.wait_until(lambda: log_lines(transit, r"reason=tls-handshake-failed"), 5,
                       what="the handshake failure in the log")
    (line,) = log_lines(transit, r"reason=tls-handshake-failed")
    print(line)
    assert re.search(r"tls-error=\S+", line), line


@pytest.mark.parametrize("mode", ["default", "normalize"])
@pytest.mark.transit(internet={"max-text-line-length": 1000})
def test_long_line_ending_in_bare_lf_does_not_end_data(transit_conf, mode):
    """<over-long line><LF>.<CRLF> is no end of data either: the smuggled
    commands behind it must stay content of the refused message."""
    start_in_mode(transit_conf, mode)
    c = transit_conf.raw()
    c.ehlo()
    c.expect("MAIL FROM:<%s>" % BOB, 250, "2.1.0")
    c.expect("RCPT TO:<%s>" % ALICE, 250, "2.1.5")
    c.expect("DATA", 354)
    c.send(b"Subject: carrier\r\n\r\n" + b"y" * 3000 + b"\n.\r\n" + SMUGGLED + b"\r\n.\r\n")
    check_reply(c.read_reply(), 554, "5.6.0", what="over-long line")
    c.expect("NOOP", 250, "2.0.0")              # one reply: nothing smuggled ran
    time.sleep(1.0)
    assert transit_conf.all_delivered() == []
