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
