"""
mixedload.py - numbered mixed SMTP traffic and the reconciliation of what
came out of transitd, for the crash test (test_crash_mixed.py) and the soak
test (tests/soak/soak.py).

Owns:
  - the numbered test message: an `X-Soak-Id: N` header, `Subject: soak-N`,
    a body of fixed 78-octet lines (some starting with "." to exercise
    RFC 5321 4.5.2 transparency) and a last line `SOAK-END N`;
  - an asyncio SMTP client (Conn, send_one), in clear or after STARTTLS
    (RFC 3207), that sends one message by DATA or by BDAT chunks (RFC
    3030), MAIL/RCPT pipelined (RFC 2920), or drops
    the connection in the middle of the content, and records in a Rec what
    the server answered: "250" (with the queue id), "refused NNN",
    "aborted", or "unanswered" (the content was sent whole, the final reply
    never came: the message may or may not have been queued);
  - RecordingPeer, a threaded SMTP receiver on 127.0.0.x that accepts
    (recording each message by id, time and a CRC of its body, after the
    final "." and before its 250), defers (4xx) or refuses (5xx) at RCPT;
  - readers that count messages by id: in Maildirs (ordinary deliveries and
    DSNs, RFC 3464, which carry the original header in their third part),
    in smtp-sink dump files, and in `transitctl queue list --json`;
  - reconcile(): the verdict. Every 250 is delivered (Maildir or healthy
    peer), bounced (one DSN for a 5xx destination) or still queued (4xx
    destination) exactly once; nothing refused or aborted is ever
    delivered; duplicates are counted by kind.

Every network wait has a deadline.
"""

import asyncio
import collections
import os
import re
import socket
import ssl
import struct
import threading
import time
import zlib

LINE_LEN = 78                       # octets per body line, CRLF included
DOT_EVERY = 50                      # every 50th body line starts with "."
MAX_BODY = 1 << 20                  # 1 MiB
ID_RE = re.compile(rb"^X-Soak-Id: (\d+)\r?$", re.M)
END_RE = re.compile(rb"SOAK-END (\d+)\r?\n(?:\r?\n)*\Z")
QUEUED_RE = re.compile(r"queued as ([A-Za-z0-9]+)")
KILL_LAG = 3.0                      # seconds; see reconcile()


def _body_lines(n):
    out = []
    for i in range(n):
        text = "%s line %07d of the soak body abcdefghijklmnopqrstuvwxyz 0123456789" % (
            "." if i % DOT_EVERY == 7 else "x", i)
        out.append(text[:LINE_LEN - 2].ljust(LINE_LEN - 2, "-").encode() + b"\r\n")
    return out


_LINES = _body_lines(MAX_BODY // LINE_LEN + 2)
BODY = b"".join(_LINES)
BODY_STUFFED = b"".join(b"." + ln if ln.startswith(b".") else ln for ln in _LINES)


def _stuffed_len(nlines):
    dots = nlines // DOT_EVERY + (1 if nlines % DOT_EVERY > 7 else 0)
    return nlines * LINE_LEN + dots


def message(mid, size, sender, rcpts, stuffed=False):
    """Message number mid, about `size` octets (at least its header and one
    line), CRLF; dot-stuffed for DATA when stuffed=True (the final "."
    line is NOT added)."""
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: soak-%d\r\nMessage-ID: <soak-%d@soak.test>\r\n"
            "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nX-Soak-Id: %d\r\n\r\n"
            % (sender, ">, <".join(rcpts), mid, mid, mid)).encode()
    end = b"SOAK-END %d\r\n" % mid
    nlines = max(1, min(len(_LINES), (size - len(head) - len(end)) // LINE_LEN))
    body = BODY_STUFFED[:_stuffed_len(nlines)] if stuffed else BODY[:nlines * LINE_LEN]
    return head + body + end


def log_uniform_size(rnd, lo=1 << 10, hi=1 << 20):
    """1 KiB .. 1 MiB, uniform in log: as many 1-2 KiB as 512 KiB-1 MiB."""
    return int(2 ** rnd.uniform(lo.bit_length() - 1, hi.bit_length() - 1))


# -- records --------------------------------------------------------------------

class Rec:
    """One message the client tried to send and what happened to it.
    rcpts: [(destination, address)], destination one of "local" (a Maildir
    here), "remote" (the healthy peer), "temp" (a peer answering 4xx),
    "perm" (a peer answering 5xx)."""
    __slots__ = ("id", "rcpts", "sender", "mode", "size", "abort", "outcome", "qid")

    def __init__(self, mid, rcpts, sender, mode, size, abort):
        self.id, self.rcpts, self.sender = mid, list(rcpts), sender
        self.mode, self.size, self.abort = mode, size, abort
        self.outcome, self.qid = "not-sent", None

    @property
    def addrs(self):
        return [a for _, a in self.rcpts]

    def dests(self):
        return {d for d, _ in self.rcpts}

    def __repr__(self):
        return "Rec(%d %s %s %d%s: %s %s)" % (
            self.id, ",".join("%s:%s" % x for x in self.rcpts), self.mode, self.size,
            " abort" if self.abort else "", self.outcome, self.qid or "")


class Aborted(Exception):
    """The client dropped the connection on purpose."""


class SMTPFailure(Exception):
    """The connection failed, timed out or broke the reply syntax."""


# -- the asyncio client ---------------------------------------------------------------

class Conn:
    """One client connection: byte-exact writes, replies read with a deadline."""

    def __init__(self, reader, writer, timeout):
        self.r, self.w, self.timeout = reader, writer, timeout
        self.ehlo_keywords = set()

    @classmethod
    async def open(cls, host, port, source=None, timeout=30.0):
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=(source, 0) if source else None,
                                        limit=1 << 16), timeout)
        except (OSError, asyncio.TimeoutError) as e:
            raise SMTPFailure("connect: %r" % e)
        return cls(r, w, timeout)

    async def reply(self):
        """(code, text) of one reply; SMTPFailure on EOF, timeout or bad syntax."""
        lines = []
        while True:
            try:
                line = await asyncio.wait_for(self.r.readline(), self.timeout)
            except (OSError, asyncio.TimeoutError, ValueError, asyncio.LimitOverrunError) as e:
                raise SMTPFailure("reading a reply: %r" % e)
            if not line.endswith(b"\r\n") or len(line) < 5 or not line[:3].isdigit() \
                    or line[3:4] not in (b" ", b"-", b"\r"):
                raise SMTPFailure("bad reply line %r" % line[:200])
            lines.append(line[4:-2].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(lines)

    async def send(self, data):
        try:
            self.w.write(data)
            await asyncio.wait_for(self.w.drain(), self.timeout)
        except (OSError, asyncio.TimeoutError) as e:
            raise SMTPFailure("write: %r" % e)

    async def cmd(self, line):
        await self.send(line.encode() + b"\r\n")
        return await self.reply()

    async def greet_and_ehlo(self, name="soak-client.example.net", tls=False):
        """Greeting and EHLO; with tls=True also STARTTLS (RFC 3207) and
        EHLO again."""
        code, text = await self.reply()
        if code != 220:
            raise SMTPFailure("greeting %d %s" % (code, text))
        await self._ehlo(name)
        if tls:
            code, text = await self.cmd("STARTTLS")
            if code != 220:
                raise SMTPFailure("STARTTLS %d %s" % (code, text))
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            try:
                await asyncio.wait_for(self.w.start_tls(ctx), self.timeout)
            except (OSError, ssl.SSLError, asyncio.TimeoutError) as e:
                raise SMTPFailure("TLS handshake: %r" % e)
            await self._ehlo(name)

    async def _ehlo(self, name):
        code, text = await self.cmd("EHLO " + name)
        if code != 250:
            raise SMTPFailure("EHLO %d %s" % (code, text))
        self.ehlo_keywords = {ln.split()[0].upper() for ln in text.split("\n")[1:] if ln.split()}

    def drop(self, reset):
        """Close now: a RST (SO_LINGER 0) or a plain FIN."""
        sock = self.w.get_extra_info("socket")
        if reset and sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.w.transport.abort() if reset else self.w.close()

    async def quit(self):
        try:
            await self.cmd("QUIT")
        except SMTPFailure:
            pass
        self.close()

    def close(self):
        try:
            self.w.close()
        except (OSError, RuntimeError):
            pass


async def send_one(conn, rec, rnd):
    """One transaction for rec on an open session. Records the outcome in
    rec; raises Aborted after dropping the connection on purpose, and
    SMTPFailure when the session broke (the caller opens a new one)."""
    mail = "MAIL FROM:<%s>" % rec.sender
    if "8BITMIME" in conn.ehlo_keywords and rnd.random() < 0.2:
        mail += " BODY=8BITMIME"
    if "SIZE" in conn.ehlo_keywords:
        mail += " SIZE=%d" % rec.size
    head = mail + "\r\n" + "".join("RCPT TO:<%s>\r\n" % a for a in rec.addrs)
    n = 1 + len(rec.rcpts)
    if rec.mode == "DATA":
        await conn.send((head + "DATA\r\n").encode())
        replies = [await conn.reply() for _ in range(n + 1)]
    else:
        await conn.send(head.encode())
        replies = [await conn.reply() for _ in range(n)]
    bad = [r for r in replies[:n] if r[0] != 250]
    if bad:
        # every recipient here is valid: one refused is a refused message
        rec.outcome = "refused %d %s" % bad[0]
        if rec.mode == "DATA" and replies[n][0] == 354:
            await conn.send(b".\r\n")
            await conn.reply()
        await conn.cmd("RSET")
        return
    if rec.mode == "DATA":
        if replies[n][0] != 354:
            rec.outcome = "refused %d %s" % replies[n]
            await conn.cmd("RSET")
            return
        data = message(rec.id, rec.size, rec.sender, rec.addrs, stuffed=True)
        if rec.abort:
            await conn.send(data[:rnd.randint(1, len(data) - 1)])
            rec.outcome = "aborted"
            conn.drop(reset=rnd.random() < 0.5)
            raise Aborted()
        rec.outcome = "unanswered"
        await conn.send(data + b".\r\n")
        code, text = await conn.reply()
    else:
        data = message(rec.id, rec.size, rec.sender, rec.addrs)
        cuts = sorted(rnd.sample(range(1, len(data)), min(rnd.randint(0, 3), len(data) - 1)))
        pieces = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        if rnd.random() < 0.1:
            pieces.append(b"")                              # BDAT 0 LAST
        if rec.abort:
            # stop inside a chunk that has octets (so it cannot be complete)
            k = rnd.choice([i for i, p in enumerate(pieces) if p])
            out = b"".join(b"BDAT %d\r\n" % len(p) + p for p in pieces[:k])
            partial = pieces[k][:rnd.randint(0, max(0, len(pieces[k]) - 1))]
            await conn.send(out + b"BDAT %d%s\r\n" % (len(pieces[k]), b" LAST" if
                                                      k == len(pieces) - 1 else b"") + partial)
            rec.outcome = "aborted"
            conn.drop(reset=rnd.random() < 0.5)
            raise Aborted()
        out = b"".join(b"BDAT %d%s\r\n" % (len(p), b" LAST" if i == len(pieces) - 1 else b"") + p
                       for i, p in enumerate(pieces))
        rec.outcome = "unanswered"
        await conn.send(out)
        replies = [await conn.reply() for _ in pieces]
        bad = [r for r in replies[:-1] if r[0] != 250]
        code, text = bad[0] if bad else replies[-1]
        if bad:
            # a chunk was refused; the transaction is over, whatever LAST says
            rec.outcome = "refused %d %s" % (code, text)
            return
    if code == 250:
        m = QUEUED_RE.search(text)
        rec.outcome, rec.qid = "250", m.group(1) if m else None
    else:
        rec.outcome = "refused %d %s" % (code, text)


# -- a recording SMTP peer ---------------------------------------------------------------

class RecordingPeer:
    """An SMTP receiver on ip:port. mode "ok": every message is accepted and
    recorded as (id, time, recipients) after its final "." and before the
    250; "temp": every RCPT gets `reply` (4xx); "perm": every RCPT gets
    `reply` (5xx). One thread per connection; stop() ends them all."""

    def __init__(self, ip, port, mode="ok", reply=None):
        self.mode = mode
        self.reply = (reply or {"ok": "250 2.1.5 ok", "temp": "451 4.3.0 peer says try later",
                                "perm": "550 5.1.1 peer says no such user"}[mode]).encode()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(128)
        self.sock.settimeout(0.3)
        self.lock = threading.Lock()
        self.received = []          # (id or None, time, [rcpts], size)
        self.sessions = 0
        self.rcpts_seen = 0
        self.stopping = False
        self.conns = set()
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(30)
            with conn, conn.makefile("rb") as rf:     # buffered: readline() must not read
                self._session(rf, conn.sendall)     # one octet per recv()
        except (OSError, ValueError):
            pass
        finally:
            with self.lock:
                self.conns.discard(conn)

    def _session(self, f, write):
        with self.lock:
            self.sessions += 1
        write(b"220 peer.test ESMTP recording peer\r\n")
        rcpts = []
        while not self.stopping:
            line = f.readline(4096)
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                write(b"250-peer.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 0\r\n")
            elif verb == b"MAIL":
                rcpts = []
                write(b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                with self.lock:
                    self.rcpts_seen += 1
                if self.mode == "ok":
                    rcpts.append(line[8:].strip().split(b">")[0].strip(b"<").decode())
                    write(b"250 2.1.5 ok\r\n")
                else:
                    write(self.reply + b"\r\n")
            elif verb == b"DATA":
                if not rcpts:
                    write(b"554 5.5.1 no valid recipients\r\n")
                    continue
                write(b"354 go ahead\r\n")
                buf = bytearray()
                while True:
                    ln = f.readline(1 << 17)
                    if not ln:
                        return                              # dropped mid-data: not received
                    if ln == b".\r\n":
                        break
                    buf += ln[1:] if ln.startswith(b".") else ln      # RFC 5321 4.5.2
                m = ID_RE.search(buf[:16384])
                body = body_lf(bytes(buf))
                with self.lock:
                    self.received.append((int(m.group(1)) if m else None, time.time(),
                                          list(rcpts), zlib.crc32(body or b"")))
                write(b"250 2.0.0 recorded\r\n")
                rcpts = []
            elif verb == b"RSET":
                rcpts = []
                write(b"250 2.0.0 ok\r\n")
            elif verb == b"QUIT":
                write(b"221 2.0.0 bye\r\n")
                return
            else:
                write(b"250 2.0.0 ok\r\n")

    def copies(self, expected):
        """{(id, recipient): [times]} of every intact message received (its
        body is expected(id)'s), and the list of the others (id, time)."""
        out, bad = collections.defaultdict(list), []
        with self.lock:
            received = list(self.received)
        for mid, t, rcpts, crc in received:
            want = expected(mid) if mid is not None else None
            if want is not None and zlib.crc32(body_lf(want)) == crc:
                for a in rcpts:
                    out[(mid, a.lower())].append(t)
            else:
                bad.append((mid, t))
        return out, bad

    def stop(self):
        self.stopping = True
        self.sock.close()
        self.acceptor.join(5)
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# -- counting what came out ---------------------------------------------------------------

def body_lf(data):
    """The body of a message (after the first empty line) with LF line
    ends and without the extra empty line an smtp-sink dump ends with."""
    _, sep, body = data.replace(b"\r\n", b"\n").partition(b"\n\n")
    while body.endswith(b"\n\n"):
        body = body[:-1]
    return body if sep else None


def expected_from(recs):
    """expected(mid): the CRLF message message() made for record mid, or None."""
    by_id = {r.id: r for r in recs}

    def expected(mid):
        r = by_id.get(mid)
        return message(r.id, r.size, r.sender, r.addrs) if r else None
    return expected


def read_numbered(path, expected=None):
    """(id, intact) of one delivered or dumped file: the X-Soak-Id in its
    header, and whether its body is the one sent (expected(id), see
    expected_from; without it, whether it ends with that id's SOAK-END line)."""
    with open(path, "rb") as f:
        data = f.read()
    m = ID_RE.search(data[:16384])
    if not m:
        return None, False
    mid = int(m.group(1))
    want = expected(mid) if expected else None
    if want is None:
        e = END_RE.search(data[-64:])
        return mid, bool(e and int(e.group(1)) == mid)
    return mid, body_lf(data) == body_lf(want)


def maildir_files(maildir):
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        out += [os.path.join(d, n) for n in names if not n.startswith(".")]
    return out


def count_maildir(maildir, addr, expected=None):
    """{(id, addr): [mtimes]} of the intact deliveries in addr's Maildir,
    and the list of odd files (no id, torn or altered; see read_numbered)."""
    ids, odd = collections.defaultdict(list), []
    for p in maildir_files(maildir):
        try:
            mid, intact = read_numbered(p, expected)
            mtime = os.stat(p).st_mtime
        except OSError:
            continue
        if mid is None or not intact:
            odd.append(p)
        else:
            ids[(mid, addr)].append(mtime)
    return ids, odd


FINAL_RCPT_RE = re.compile(rb"(?mi)^Final-Recipient:\s*rfc822;\s*<?([^>\s]+)>?\r?$")


def count_dsns(maildir):
    """{(id, recipient): [mtimes]} of the recipients reported failed by the
    DSNs in a Maildir (envelope sender <>, multipart/report, Action: failed,
    Status: 5.x.x; one Final-Recipient per failed recipient, RFC 3464 2.3.2;
    the original header with X-Soak-Id in the third part), and the odd
    files (anything else)."""
    ids, odd = collections.defaultdict(list), []
    for p in maildir_files(maildir):
        try:
            with open(p, "rb") as f:
                data = f.read(1 << 20)
            mtime = os.stat(p).st_mtime
        except OSError:
            continue
        m = ID_RE.search(data)
        finals = FINAL_RCPT_RE.findall(data)
        if not data.startswith(b"Return-Path: <>\n") or not m or not finals \
                or b"multipart/report" not in data[:4096] \
                or not re.search(rb"(?mi)^Action: failed\r?$", data) \
                or not re.search(rb"(?mi)^Status: 5\.\d+\.\d+\r?$", data):
            odd.append(p)
            continue
        for a in finals:
            ids[(int(m.group(1)), a.decode("utf-8", "replace").lower())].append(mtime)
    return ids, odd


SINK_RCPT_RE = re.compile(rb"(?mi)^X-Rcpt-Args: <([^>]*)>")


def count_sink_dumps(files, expected=None):
    """{(id, recipient): [mtimes]} of intact smtp-sink dump files (their
    X-Rcpt-Args name the recipients), and the other files."""
    ids, torn = collections.defaultdict(list), []
    for p in files:
        try:
            mid, intact = read_numbered(p, expected)
            mtime = os.stat(p).st_mtime
            with open(p, "rb") as f:
                rcpts = SINK_RCPT_RE.findall(f.read(8192))
        except OSError:
            continue
        if mid is not None and intact and rcpts:
            for a in rcpts:
                ids[(mid, a.decode("utf-8", "replace").lower())].append(mtime)
        else:
            torn.append(p)
    return ids, torn


def queued_qids(entries):
    """{qid: entry} from `transitctl queue list --json`."""
    return {e.get("id"): e for e in entries if isinstance(e, dict)}


# -- the verdict ---------------------------------------------------------------------------

class Verdict:
    def __init__(self):
        self.counts = collections.Counter()
        self.errors = []                    # (kind, id, detail): each one fails the run
        self.dups = collections.defaultdict(list)   # kind -> [(id, times)]

    def error(self, kind, mid, detail):
        self.errors.append((kind, mid, detail))

    def summary(self):
        return ", ".join("%s %d" % kv for kv in sorted(self.counts.items()))


def reconcile(recs, local, remote, dsns, queued, kills=(), allow_remote_dups=False):
    """The verdict, per (message id, recipient). recs: [Rec]; local,
    remote, dsns: {(id, recipient): [times]} of the copies in the
    recipients' Maildirs, at the healthy peer, and of the DSNs reporting
    that recipient failed; queued: {qid: entry} still in the queue; kills:
    [(t_kill, t_spawn)]: when SIGKILL was sent, and when the next process
    was started (after the old one was reaped).

    A recipient of a message answered 250 must have exactly one copy where
    its destination says (local: Maildir, remote: the peer, perm: a DSN)
    and none elsewhere; a "temp" recipient none at all, and its message must
    still be queued (deferred, a 4.x.x error) with that recipient pending.
    A message refused or dropped mid-content leaves no trace; one whose
    final reply was lost either none, or the trace of a 250.

    A second copy at the healthy peer, or a second DSN, is allowed only
    with allow_remote_dups and only when a kill falls between its first
    and its last copy: the last came after a restart (last >= t_spawn: a
    new process cannot send earlier) and the first before that kill (first
    <= t_kill + KILL_LAG: a peer thread notes the time a little after the
    octets arrived). A second copy in a Maildir never."""
    v = Verdict()
    wanted = {(r.id, a.lower()): r for r in recs for _, a in r.rcpts}

    def straddles_kill(times):
        first, last = min(times), max(times)
        return any(first <= tk + KILL_LAG and last >= ts for tk, ts in kills)

    for name, table in (("local", local), ("remote", remote), ("dsn", dsns)):
        for key in table:
            if key not in wanted:
                v.error("foreign-" + name, key[0], "%r: delivered but never sent" % (key,))
    for r in recs:
        v.counts["messages"] += 1
        v.counts["outcome " + r.outcome.split()[0]] += 1
        entry = queued.get(r.qid) if r.qid else None
        pending = {}
        for x in (entry or {}).get("recipients", []):
            pending[str(x.get("address")).lower()] = x.get("state") == "queued"
        got = {}
        for dest, a in r.rcpts:
            key = (r.id, a.lower())
            got[a] = [len(local.get(key, ())), len(remote.get(key, ())), len(dsns.get(key, ())),
                      pending.get(a.lower(), False) if r.qid else None]
        traces = any(g[0] or g[1] or g[2] or g[3] for g in got.values()) or entry is not None
        if r.outcome in ("aborted", "not-sent") or r.outcome.startswith("refused"):
            if traces:
                v.error("delivered-without-250", r.id, "%r: local/remote/dsn/pending %r, "
                        "queued %s" % (r, got, entry is not None))
            continue
        if r.outcome == "unanswered":
            if not traces:
                v.counts["unanswered-not-delivered"] += 1
                continue
            v.counts["unanswered-delivered"] += 1
        if "temp" in r.dests() and entry is not None and (
                entry.get("state") != "deferred"
                or not re.search(r"(^|\s)4\.\d+\.\d+", str(entry.get("last_error")))):
            v.error("temp-not-deferred", r.id, "%r: queue entry %r" % (r, entry))
        for dest, a in r.rcpts:
            key = (r.id, a.lower())
            g = got[a]
            v.counts["recipients " + dest] += 1
            want = {"local": [1, 0, 0, False], "remote": [0, 1, 0, False],
                    "perm": [0, 0, 1, False], "temp": [0, 0, 0, True]}[dest]
            if g[3] is None:                   # no queue id (the reply was lost): unknown
                g[3] = want[3]
            v.counts["delivered-local"] += g[0]
            v.counts["delivered-remote"] += g[1]
            v.counts["bounced"] += g[2]
            v.counts["queued"] += g[3] is True and dest == "temp"
            if g == want:
                continue
            if g[0] > 1:
                v.dups["local"].append((key, local[key]))
            if g[1] > 1 and want[1] == 1:
                v.dups["remote"].append((key, remote[key]))
                if allow_remote_dups and straddles_kill(remote[key]):
                    g = [g[0], 1, g[2], g[3]]
            if g[2] > 1 and want[2] == 1:
                v.dups["dsn"].append((key, dsns[key]))
                if allow_remote_dups and straddles_kill(dsns[key]):
                    g = [g[0], g[1], 1, g[3]]
            if g != want:
                v.error("wrong-" + dest, r.id, "%r, %s: want local/remote/dsn/pending %r, got %r;"
                        " copies at %s" % (r, a, want, got[a], ", ".join(
                            utc(x) for x in sorted(local.get(key, []) + remote.get(key, [])
                                                   + dsns.get(key, [])))))
    known = {r.qid for r in recs if r.qid}
    unknown = sorted(q for q in queued if q not in known)
    unanswered = sum(1 for r in recs if r.outcome == "unanswered")
    if len(unknown) > unanswered:
        v.error("queued-without-250", None, "%d queue entries are no message answered 250 "
                "(and only %d replies went missing): %r" % (len(unknown), unanswered, unknown[:20]))
    for kind, lst in v.dups.items():
        v.counts["duplicates-" + kind] = len(lst)
    return v


def random_rcpts(rnd, weights, address_of, most=3):
    """1 recipient (80 %), 2 (15 %) or 3 (5 %), each with a destination
    drawn by weight; address_of(dest) names one; no address twice."""
    n = min(most, 1 if rnd.random() < 0.80 else 2 if rnd.random() < 0.75 else 3)
    out, seen = [], set()
    while len(out) < n:
        dest = pick_destination(rnd, weights)
        a = address_of(dest)
        if a.lower() not in seen:
            seen.add(a.lower())
            out.append((dest, a))
    return out


def utc(t):
    """A time as the log prints it (UTC, milliseconds)."""
    return time.strftime("%H:%M:%S", time.gmtime(t)) + ".%03d" % (int(t * 1000) % 1000)


def pick_destination(rnd, weights):
    """One of weights' keys, by weight."""
    x = rnd.random() * sum(weights.values())
    for k, w in weights.items():
        x -= w
        if x < 0:
            return k
    return k
