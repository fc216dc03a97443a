"""
harness.py - client-side helpers for the transitd integration tests.

Owns: a raw SMTP dialogue over a socket (RawSMTP) that sends exact bytes and
parses replies strictly (RFC 5321 4.2: "ddd-text" continuation lines, a final
"ddd text" line, CRLF only, one code per reply), RFC 3463 enhanced status codes
(RFC 2034: on every reply except the greeting and the HELO/EHLO answer),
message builders, and readers for delivered Maildir files (maildir(5):
new/ holds finished messages; transit writes LF line endings and prepends
Return-Path: and Delivered-To:).

Nothing here knows about the daemon process; conftest.py owns that. Every
network read has a deadline: no helper can block forever.
"""

import os
import re
import select
import socket
import ssl
import time
import warnings

CRLF = b"\r\n"
REPLY_LINE_RE = re.compile(rb"^([2-5][0-9][0-9])([ -])(.*)$|^([2-5][0-9][0-9])$", re.S)
ENH_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)")
QUEUED_RE = re.compile(r"Ok: queued as ([A-Za-z0-9]+)")
MAX_REPLY_LINE = 4096          # a server reply line longer than this is a protocol error
MAX_REPLY_LINES = 200


class ProtocolError(AssertionError):
    """The server broke the reply syntax (an assertion: it fails the test)."""


class ReplyTimeout(AssertionError):
    """No complete reply within the deadline."""


class ConnectionClosed(AssertionError):
    """The server closed the connection while a reply was expected."""


class Reply:
    """One SMTP reply: code, the text of each line, the enhanced code if any."""

    def __init__(self, code, lines, raw):
        self.code = code
        self.lines = lines                      # text after "ddd-" / "ddd " per line
        self.raw = raw                          # the exact bytes received
        m = ENH_RE.match(lines[0]) if lines else None
        self.enh = "%s.%s.%s" % m.groups() if m else None

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def keywords(self):
        """EHLO extension keywords (upper case), from the lines after the first."""
        return [ln.split()[0].upper() for ln in self.lines[1:] if ln.split()]

    def keyword_args(self, kw):
        for ln in self.lines[1:]:
            parts = ln.split()
            if parts and parts[0].upper() == kw.upper():
                return parts[1:]
        return None

    def __repr__(self):
        return "Reply(%r)" % self.raw.decode("utf-8", "replace")


def check_reply(reply, code, enh=None, text_re=None, what=""):
    """Assert a reply's code (int, or a tuple of allowed ints), enhanced code
    (string, or a prefix ending in '.') and optionally a regex on its text."""
    codes = code if isinstance(code, tuple) else (code,)
    assert reply.code in codes, "%s: expected %s, got %r" % (what, code, reply)
    if enh is not None:
        assert reply.enh is not None, "%s: no enhanced status code in %r" % (what, reply)
        if enh.endswith("."):
            assert reply.enh.startswith(enh), "%s: expected enhanced %s*, got %r" % (what, enh, reply)
        else:
            assert reply.enh == enh, "%s: expected enhanced %s, got %r" % (what, enh, reply)
        # RFC 3463: the class digit equals the reply's first digit
        assert reply.enh[0] == str(reply.code)[0], "%s: class mismatch in %r" % (what, reply)
    if text_re is not None:
        assert re.search(text_re, reply.text), "%s: %r does not match %r" % (what, reply, text_re)
    return reply


class RawSMTP:
    """A byte-exact SMTP client. send() writes what it is given (no CRLF
    added); read_reply() parses one reply; cmd() sends a line + CRLF and
    reads its reply."""

    def __init__(self, host, port, timeout=10.0, tls_context=None, connect_timeout=5.0):
        self.timeout = timeout
        self.buf = bytearray()
        self.closed = False
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        sock.settimeout(timeout)
        if tls_context is not None:
            try:
                sock = tls_context.wrap_socket(sock, server_hostname=None)
            except BaseException:
                sock.close()
                raise
        self.sock = sock
        self.transcript = []

    # -- low level -------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.transcript.append((">", data))
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Read more bytes into the buffer; False on EOF."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ReplyTimeout("no reply within %.1fs; buffered %r" % (self.timeout, bytes(self.buf)))
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise ReplyTimeout("no reply within %.1fs; buffered %r" % (self.timeout, bytes(self.buf)))
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        except ssl.SSLError as e:
            if "EOF" in str(e) or "UNEXPECTED_EOF" in str(e):
                chunk = b""
            else:
                raise
        if not chunk:
            self.closed = True
            return False
        self.transcript.append(("<", chunk))
        self.buf += chunk
        return True

    def read_line(self, timeout=None):
        """One CRLF-terminated line (without CRLF)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                if not line.endswith(CRLF):
                    raise ProtocolError("reply line ends in a bare LF: %r" % line)
                body = line[:-2]
                if b"\r" in body:
                    raise ProtocolError("bare CR inside a reply line: %r" % line)
                return body
            if len(self.buf) > MAX_REPLY_LINE:
                raise ProtocolError("reply line longer than %d octets" % MAX_REPLY_LINE)
            if not self._fill(deadline):
                raise ConnectionClosed("connection closed; partial data %r" % bytes(self.buf))

    def read_reply(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        lines, raw, code = [], b"", None
        while True:
            line = self.read_line(timeout=max(0.0, deadline - time.monotonic()) or 0.001)
            raw += line + CRLF
            m = REPLY_LINE_RE.match(line)
            if not m:
                raise ProtocolError("malformed reply line %r (reply so far %r)" % (line, raw))
            this_code = int(m.group(1) or m.group(4))
            if code is not None and this_code != code:
                raise ProtocolError("reply code changed inside a multi-line reply: %r" % raw)
            code = this_code
            lines.append((m.group(3) or b"").decode("utf-8", "replace"))
            if len(lines) > MAX_REPLY_LINES:
                raise ProtocolError("reply with more than %d lines" % MAX_REPLY_LINES)
            if m.group(4) is not None or m.group(2) == b" ":
                return Reply(code, lines, raw)

    def read_replies(self, n, timeout=None):
        return [self.read_reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + CRLF)
        return self.read_reply(timeout)

    def expect(self, line, code, enh=None, text_re=None, timeout=None):
        """Send line (or nothing if None), read a reply and check it."""
        r = self.cmd(line, timeout) if line is not None else self.read_reply(timeout)
        return check_reply(r, code, enh, text_re, what=repr(line))

    def wait_closed(self, timeout=5.0):
        """True if the server closes the connection within timeout (any data
        that arrives before the close is kept in self.buf)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                if not self._fill(deadline):
                    return True
        except ReplyTimeout:
            return False
        except OSError:
            return True

    def data_pending(self, wait=0.3):
        """Bytes the server sent that nobody has read yet (waits a little)."""
        if self.buf:
            return bytes(self.buf)
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return b"<tls data>"
        r, _, _ = select.select([self.sock], [], [], wait)
        if r:
            try:
                self.sock.settimeout(0.5)
                d = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                return b""
            except OSError:
                return b""
            if not d:
                self.closed = True
            self.buf += d
            return bytes(self.buf)
        return b""

    # -- SMTP level ------------------------------------------------------
    def greeting(self, timeout=None):
        r = self.read_reply(timeout)
        assert r.code == 220, "greeting: expected 220, got %r" % r
        return r

    def ehlo(self, name="client.example.net"):
        r = self.cmd("EHLO " + name)
        assert r.code == 250, "EHLO: expected 250, got %r" % r
        return r

    def starttls(self, context=None, check_clean=True):
        """STARTTLS (RFC 3207): expects 220 2.0.0, then the TLS handshake."""
        r = self.cmd("STARTTLS")
        check_reply(r, 220, "2.0.0", what="STARTTLS")
        self.tls_handshake(context, check_clean)
        return r

    def tls_handshake(self, context=None, check_clean=True):
        if check_clean:
            pending = self.data_pending(wait=0.3)
            assert not pending, "server sent plaintext after its 220 to STARTTLS: %r" % pending
        ctx = context or client_tls_context()
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=None)

    def mail_transaction(self, sender, rcpts, message, pipelined=False):
        """MAIL/RCPT/DATA/message; every step must succeed. Returns the
        queue id of the final 250 reply."""
        lines = ["MAIL FROM:<%s>" % sender] + ["RCPT TO:<%s>" % r for r in rcpts] + ["DATA"]
        if pipelined:
            self.send("".join(l + "\r\n" for l in lines))
            replies = self.read_replies(len(lines))
        else:
            replies = [self.cmd(l) for l in lines]
        check_reply(replies[0], 250, "2.1.0", what=lines[0])
        for l, r in zip(lines[1:-1], replies[1:-1]):
            check_reply(r, 250, "2.1.5", what=l)
        check_reply(replies[-1], 354, what="DATA")
        return self.send_data(message)

    def send_data(self, message, expect_code=250):
        """Send message bytes (dot-stuffed here) and the end marker."""
        self.send(dot_stuff(message) + b".\r\n")
        r = self.read_reply()
        if expect_code == 250:
            check_reply(r, 250, "2.0.0", r"Ok: queued as [A-Za-z0-9]+", what="end of DATA")
            return QUEUED_RE.search(r.text).group(1)
        return r

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def client_tls_context(min_version=None, max_version=None, seclevel0=False):
    """A client context that does not verify the (self-signed) certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if seclevel0:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        if min_version is not None:
            ctx.minimum_version = min_version
        if max_version is not None:
            ctx.maximum_version = max_version
    return ctx


def dot_stuff(message):
    """RFC 5321 4.5.2 transparency; message must be CRLF text. Adds a
    final CRLF if missing."""
    if isinstance(message, str):
        message = message.encode("utf-8")
    if not message.endswith(CRLF):
        message += CRLF
    out = re.sub(rb"(?m)^\.", b"..", message)
    return out


def make_message(subject, body="Hello.\r\n", sender="bob@example.test", to="alice@example.test",
                 message_id=None, extra_headers=(), date=True):
    """A small RFC 5322 message as CRLF bytes. message_id=None: none
    (so the server has to add one); a string: that exact value."""
    h = ["From: <%s>" % sender, "To: <%s>" % to, "Subject: %s" % subject]
    if date:
        h.append("Date: Thu, 01 Jan 2026 00:00:00 +0000")
    if message_id is not None:
        h.append("Message-ID: %s" % message_id)
    h.extend(extra_headers)
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not body.endswith(CRLF):
        body += CRLF
    return ("\r\n".join(h) + "\r\n\r\n").encode("utf-8") + body


def crlf_to_lf(data):
    return data.replace(b"\r\n", b"\n")


# -- delivered messages -------------------------------------------------

class Delivered:
    """A delivered Maildir file split into trace lines, header fields and body."""

    def __init__(self, path, data):
        self.path = path
        self.data = data
        head, sep, body = data.partition(b"\n\n")
        self.body = body if sep else b""
        self.header_block = head
        self.fields = unfold_headers(head)

    def header(self, name):
        """All values of a header field (case-insensitive name)."""
        return [v for (n, v) in self.fields if n.lower() == name.lower()]

    def first(self, name):
        v = self.header(name)
        return v[0] if v else None

    @property
    def subject(self):
        return self.first("Subject")

    def __repr__(self):
        return "Delivered(%s, %r...)" % (self.path, self.data[:300])


def unfold_headers(head):
    """RFC 5322 2.2.3 unfolding: [(name, value)] in order, values as str."""
    fields = []
    for raw in head.split(b"\n"):
        if raw[:1] in (b" ", b"\t") and fields:
            n, v = fields[-1]
            fields[-1] = (n, v + " " + raw.strip().decode("utf-8", "replace"))
        elif b":" in raw:
            n, v = raw.split(b":", 1)
            fields.append((n.decode("utf-8", "replace"), v.strip().decode("utf-8", "replace")))
    return fields


def check_maildir_file(d, sender, rcpt):
    """The rules for every delivered file (issue: Maildir delivery)."""
    assert b"\r" not in d.data, "delivered file has CR (must be LF line endings): %r" % d
    first = b"Return-Path: <%s>\n" % sender.encode("utf-8")
    assert d.data.startswith(first), "file must start with %r: %r" % (first, d)
    second = b"Delivered-To: %s\n" % rcpt.encode("utf-8")
    second_b = b"Delivered-To: <%s>\n" % rcpt.encode("utf-8")
    rest = d.data[len(first):]
    assert rest.startswith(second) or rest.startswith(second_b), \
        "second line must be Delivered-To: %s: %r" % (rcpt, d)


TRACE_LINE_RE = re.compile(rb"^(Return-Path:|Delivered-To:|Received:|[ \t])")


def strip_trace(data):
    """Split a delivered file into (trace prefix, the rest): the prefix is
    the Return-Path, Delivered-To and Received fields transit puts on top."""
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        line = data[pos:nl + 1]
        if not TRACE_LINE_RE.match(line):
            break
        pos = nl + 1
    return data[:pos], data[pos:]


def maildir_new_files(maildir):
    """Finished messages in a Maildir (new/ and cur/), oldest first."""
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        for n in names:
            if n.startswith("."):
                continue
            p = os.path.join(d, n)
            try:
                st = os.stat(p)
            except FileNotFoundError:
                continue
            out.append((st.st_mtime_ns, n, p))
    return [p for (_, _, p) in sorted(out)]


def read_delivered(path):
    with open(path, "rb") as f:
        return Delivered(path, f.read())


def wait_until(pred, timeout, interval=0.1, what="condition"):
    """Poll pred() until it returns a true value; that value, or an
    AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)
