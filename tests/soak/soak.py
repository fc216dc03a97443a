#!/usr/bin/env python3
"""
soak.py - the soak test (`make soak`; not part of `make test`).

Owns: a few minutes of mixed traffic through one transitd (the ASan build:
$TRANSITD, default build-san/transitd) and the verdict on it.

Traffic: SOAK_SESSIONS (100) concurrent client sessions from the relay
client address for SOAK_SECONDS (180) seconds, each sending numbered
messages (mixedload.py) of 1 KiB to 1 MiB (log-uniform) by DATA or BDAT
(RFC 3030; MAIL/RCPT pipelined, RFC 2920), 1 to 5 per session, 20 % of
the sessions after STARTTLS; 10 % of the messages are dropped
mid-content (FIN or RST). 80 % have one recipient, the others two or
three. Where each recipient goes: 50 % local Maildirs, 35 % a healthy
smtp-sink (send connector "healthy", smart host 127.0.0.2), 10 % an smtp-sink that answers RCPT with 451 4.3.0 (they stay
queued), 5 % an smtp-sink that answers 5xx at RCPT or at the final "."
(each yields one DSN in the sender's Maildir). A few more clients pipeline
garbage: random lines, binary, NUL, bare CR/LF, over-long lines, bogus
BDAT sizes, STARTTLS followed by junk.

A mail reader moves every delivered file from new/ to cur/ as it arrives,
so that a second delivery of a message cannot hide behind the first file's
name.

Verdict (exit status 1 when any fails):
  - transitd stayed up, and its log has no sanitizer report, during the run
    nor after SIGTERM (LeakSanitizer runs at exit);
  - VmRSS from /proc/PID/status after the traffic and after the queue
    settled is at most 2 x the warmed-up figure + 64 MiB (printed);
  - each recipient of every message answered 250 is delivered exactly once
    (Maildir or the healthy sink) with the body that was sent, or reported
    failed in exactly one DSN (5xx peers), or still pending in `transitctl
    queue list --json` and delivered nowhere (4xx peer); nothing refused
    or aborted is ever delivered; no reply went missing; no valid message
    was refused and no client session broke.

Environment: SOAK_SECONDS, SOAK_SESSIONS, SOAK_SEED, SOAK_KEEP=1 (keep the
directory), TRANSITD, TRANSITCTL, ASAN_OPTIONS (the Makefile sets them).
"""

import asyncio
import collections
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
os.environ.setdefault("TRANSITD", os.path.join(REPO, "build-san", "transitd"))
os.environ.setdefault("TRANSITCTL", os.path.join(REPO, "build-san", "transitctl"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import conftest  # noqa: E402
import mixedload as ml  # noqa: E402
import sendpeers as sp  # noqa: E402

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "180"))
SESSIONS = int(os.environ.get("SOAK_SESSIONS", "100"))
SEED = int(os.environ.get("SOAK_SEED", str(int(time.time()))))
GARBAGE_CLIENTS = 4
ABORT_SHARE = 0.10
TLS_SHARE = 0.20
WEIGHTS = {"local": 0.50, "remote": 0.35, "temp": 0.10, "perm": 0.05}
REPLY_TIMEOUT = 90.0            # one reply, under load, on a slow shared machine
SETTLE_SECONDS = 240.0
MIB = 1 << 20
RSS_FACTOR, RSS_SLACK = 2.0, 64 * MIB
HOST = conftest.HOST
RELAY_IP = sp.RELAY_SOURCE_IP
IP_OK, IP_TEMP, IP_PERM_RCPT, IP_PERM_DOT = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"
SENDERS = ("sender1@example.test", "sender2@example.test")
LOCAL_RCPTS = ("alice@example.test", "bob@example.test", "carol@example.test")
GARBAGE_USER = "garbage@example.test"


def log(fmt, *a):
    sys.stdout.write(("soak: " + fmt + "\n") % a)
    sys.stdout.flush()


class MailReader:
    """Does what a mail client does with new mail: every 2 s, moves each
    file from new/ to cur/ (with the ":2,S" flags). transitd only ever
    finds its own earlier delivery in new/, so a second delivery of the
    same message is then a second file, not hidden by EEXIST."""

    def __init__(self, maildirs):
        self.maildirs = maildirs
        self.moved = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stopping.wait(2):
            self.read_all()

    def read_all(self):
        for md in self.maildirs:
            new, cur = os.path.join(md, "new"), os.path.join(md, "cur")
            try:
                names = [n for n in os.listdir(new) if not n.startswith(".")]
            except FileNotFoundError:
                continue
            os.makedirs(cur, exist_ok=True)
            for n in names:
                try:
                    os.rename(os.path.join(new, n), os.path.join(cur, n + ":2,S"))
                    self.moved += 1
                except FileNotFoundError:
                    pass

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join(10)


def rss_of(pid):
    """VmRSS and VmHWM of pid in octets, from /proc/PID/status."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out.get("VmRSS", 0), out.get("VmHWM", 0)


# -- the instance and its peers -----------------------------------------------------

def configure(t, port):
    rc = t.cfg["receive-connector"]
    rc["internet"]["max-connections-per-source"] = 50
    rc["relay"] = {
        "bindings": list(rc["internet"]["bindings"]),
        "remote-ip-ranges": [RELAY_IP + "/32"],
        "permissions": ["relay"],
        "tls": "offer",
        "max-message-size": "25M",
        "max-recipients": 100,
        "max-connections-per-source": 1000,
    }
    t.cfg["server"]["max-connections"] = 1000

    def smarthost(domain, ip):
        return sp.smarthost_connector([domain], ["[%s]:%d" % (ip, port)],
                                      **{"command-timeout": "60s", "data-timeout": "60s"})
    t.cfg["send-connector"] = {
        "healthy": smarthost("ok.test", IP_OK),
        "tempfail": smarthost("temp.test", IP_TEMP),
        "permrcpt": smarthost("perm.test", IP_PERM_RCPT),
        "permdot": smarthost("permdot.test", IP_PERM_DOT),
    }
    t.cfg["queue"] = {"retry": ["10s", "30s"], "expire": "1h", "delay-notice": "2h"}
    t.write_config()


def start_sinks(base, port):
    specs = [
        ("healthy", IP_OK, []),
        ("tempfail", IP_TEMP, ["-r", "rcpt", "-b", "451 4.3.0 soak peer: try again later"]),
        ("permrcpt", IP_PERM_RCPT, ["-f", "rcpt", "-B", "550 5.1.1 soak peer: no such user"]),
        ("permdot", IP_PERM_DOT, ["-f", ".", "-B", "554 5.6.0 soak peer: content refused"]),
    ]
    sinks = {}
    for name, ip, opts in specs:
        sinks[name] = sp.Sink(base, ip, port, opts=opts, name=name).start()
    return sinks


# -- traffic -------------------------------------------------------------------------

class Traffic:
    def __init__(self, port):
        self.port = port
        self.recs = []
        self.ids = iter(range(1, 1 << 62))
        self.stats = collections.Counter()
        self.failures = []              # (what, detail) of sessions that broke unexpectedly

    def new_rec(self, rnd, chunking):
        rcpts = ml.random_rcpts(rnd, WEIGHTS, lambda dest: {
            "local": lambda: rnd.choice(LOCAL_RCPTS),
            "remote": lambda: "r%d@ok.test" % rnd.randint(1, 50),
            "temp": lambda: "t%d@temp.test" % rnd.randint(1, 50),
            "perm": lambda: "p%d@%s" % (rnd.randint(1, 50),
                                        rnd.choice(("perm.test", "permdot.test")))}[dest]())
        mode = "BDAT" if chunking and rnd.random() < 0.5 else "DATA"
        rec = ml.Rec(next(self.ids), rcpts, rnd.choice(SENDERS), mode,
                     ml.log_uniform_size(rnd), rnd.random() < ABORT_SHARE)
        self.recs.append(rec)
        return rec

    async def session(self, i, deadline):
        rnd = random.Random(SEED * 1000 + i)
        await asyncio.sleep(rnd.uniform(0, 2))
        while time.monotonic() < deadline:
            try:
                conn = await ml.Conn.open(HOST, self.port, RELAY_IP, REPLY_TIMEOUT)
            except ml.SMTPFailure as e:
                self.stats["connect-failed"] += 1
                self.failures.append(("connect", str(e)))
                await asyncio.sleep(1)
                continue
            self.stats["sessions"] += 1
            try:
                tls = rnd.random() < TLS_SHARE
                self.stats["sessions-tls"] += tls
                await conn.greet_and_ehlo(tls=tls)
                for _ in range(rnd.randint(1, 5)):
                    if time.monotonic() >= deadline:
                        break
                    rec = self.new_rec(rnd, "CHUNKING" in conn.ehlo_keywords)
                    await ml.send_one(conn, rec, rnd)
                await conn.quit()
            except ml.Aborted:
                self.stats["sessions-aborted-on-purpose"] += 1
            except ml.SMTPFailure as e:
                self.stats["sessions-broken"] += 1
                self.failures.append(("session", "%s (last: %r)" % (
                    e, self.recs[-1] if self.recs else None)))
                conn.close()

    async def garbage(self, i, deadline):
        rnd = random.Random(SEED * 1000 + 500 + i)
        while time.monotonic() < deadline:
            source = RELAY_IP if rnd.random() < 0.5 else HOST
            try:
                conn = await ml.Conn.open(HOST, self.port, source, 30)
            except ml.SMTPFailure:
                self.stats["garbage-connect-failed"] += 1
                await asyncio.sleep(1)
                continue
            self.stats["garbage-sessions"] += 1
            try:
                await conn.send(garbage_burst(rnd))
                while True:                         # read until the server closes or is quiet
                    conn.timeout = 5
                    await conn.reply()
                    self.stats["garbage-replies"] += 1
            except ml.SMTPFailure:
                pass
            conn.close()
            await asyncio.sleep(rnd.uniform(0, 0.5))


def garbage_burst(rnd):
    """Pipelined garbage: a mix of valid commands, random text and binary,
    NUL, bare CR/LF, over-long lines, bogus BDAT, DATA with junk."""
    parts = [b"EHLO garbage.example\r\n"]
    for _ in range(rnd.randint(10, 120)):
        k = rnd.randrange(14)
        if k == 0:
            parts.append(b"MAIL FROM:<garbage@example.test>\r\nRCPT TO:<%s>\r\n"
                         % GARBAGE_USER.encode())
        elif k == 1:
            parts.append(rnd.choice([b"HELP\r\n", b"NOOP\r\n", b"RSET\r\n", b"VRFY x\r\n",
                                     b"EXPN list\r\n", b"HELO\r\n", b"QUIT x\r\n",
                                     b"AUTH PLAIN\r\n"]))
        elif k == 2:
            n = rnd.choice([10, 500, 2047, 2100, 5000])
            parts.append(bytes(rnd.randrange(33, 127) for _ in range(n)) + b"\r\n")
        elif k == 3:
            parts.append(bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 600))))
        elif k == 4:
            parts.append(b"MAIL FROM:<a\x00b@example.test>\r\nNOOP\nRSET\r")
        elif k == 5:
            parts.append(rnd.choice([b"BDAT 99999999999999999999\r\n", b"BDAT -1\r\n",
                                     b"BDAT\r\n", b"BDAT 5 LAST junk\r\n", b"BDAT 3\r\nab"]))
        elif k == 6:
            parts.append(b"DATA\r\nSubject: garbage\r\n\r\njunk\r\n.x\r\nbare\nlf\r\n.\r\n")
        elif k == 7:
            parts.append(b"MAIL FROM:<" + b"a" * rnd.choice([300, 3000, 70000]) + b"@x>\r\n")
        elif k == 8:
            parts.append(b"RCPT TO:<\"../../escape\"@example.test>\r\n")
        elif k == 9:
            parts.append(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\xaa" * 40)
        elif k == 10:
            parts.append(b"STARTTLS\r\nEHLO after-starttls\r\n")
        elif k == 11:
            parts.append(b"x" * rnd.choice([4096, 70000]))        # no line end at all
        elif k == 12:
            parts.append(b"MAIL FROM:<garbage@example.test> SIZE=99999999999999 BODY=WHAT\r\n")
        else:
            parts.append(b"BDAT 12 LAST\r\nSubject: g\r\n\r\n")
    return b"".join(parts)


async def sample_rss(pid, samples, deadline):
    t0 = time.monotonic()
    while time.monotonic() < deadline:
        try:
            samples.append((time.monotonic() - t0,) + rss_of(pid))
        except OSError:
            return
        await asyncio.sleep(2)


async def run_traffic(traffic, pid, samples):
    deadline = time.monotonic() + SOAK_SECONDS
    tasks = [asyncio.ensure_future(traffic.session(i, deadline)) for i in range(SESSIONS)]
    tasks += [asyncio.ensure_future(traffic.garbage(i, deadline)) for i in range(GARBAGE_CLIENTS)]
    sampler = asyncio.ensure_future(sample_rss(pid, samples, deadline))
    last = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        if time.monotonic() - last >= 30:
            last = time.monotonic()
            oc = collections.Counter(r.outcome.split()[0] for r in traffic.recs)
            log("t=%3.0fs messages %d %r rss %.1f MiB", SOAK_SECONDS - (deadline - last),
                len(traffic.recs), dict(oc), samples[-1][1] / MIB if samples else 0)
    # let every session finish its transaction (each reply has its own deadline)
    done, pending = await asyncio.wait(tasks, timeout=REPLY_TIMEOUT * 3 + 30)
    for p in pending:
        p.cancel()
    traffic.stats["sessions-still-running-at-end"] = len(pending)
    await sampler


# -- after the traffic -------------------------------------------------------------------

def settle(t, traffic, sinks):
    """Wait until only the 4xx messages are left in the queue and nothing is
    arriving any more; returns the queue entries."""
    temp_qids = {r.qid for r in traffic.recs if r.outcome == "250" and "temp" in r.dests()}
    unanswered = sum(1 for r in traffic.recs if r.outcome == "unanswered")
    deadline = time.monotonic() + SETTLE_SECONDS
    last_sig, stable_since = None, time.monotonic()
    while True:
        entries = ml.queued_qids(t.queue_json())
        others = set(entries) - temp_qids
        sig = (len(entries), sum(len(ml.maildir_files(t.maildir(u)))
                                 for u in LOCAL_RCPTS + SENDERS), len(sinks["healthy"].files()))
        now = time.monotonic()
        if sig != last_sig:
            last_sig, stable_since = sig, now
        if len(others) <= unanswered and now - stable_since >= 5:
            return entries
        if now > deadline:
            log("the queue did not settle in %.0fs: %d entries beyond the 4xx ones",
                SETTLE_SECONDS, len(others))
            return entries
        time.sleep(2)


def main():
    for tool, name in ((sp.SMTP_SINK, "smtp-sink (Postfix)"),):
        if not tool:
            log("%s is not installed: run `make test-deps`", name)
            return 2
    base = tempfile.mkdtemp(prefix="transit-soak-", dir="/tmp")
    log("seed %d, %d sessions for %.0fs, directory %s, transitd %s", SEED, SESSIONS,
        SOAK_SECONDS, base, conftest.TRANSITD)
    t = conftest.Transit(base)
    for u in conftest.DEFAULT_USERS + LOCAL_RCPTS[2:] + SENDERS + (GARBAGE_USER,):
        t.add_user(u)
    port = t.port_smtp
    configure(t, port)
    sinks = start_sinks(os.path.join(base, "peers"), port)
    problems = []
    samples = []
    traffic = Traffic(port)
    rss = {}
    reader = MailReader([t.maildir(u) for u in LOCAL_RCPTS + SENDERS])
    t_start = time.monotonic()
    try:
        reader.start()
        t.start()
        pid = t.proc.pid
        rss["start"] = rss_of(pid)[0]
        asyncio.run(run_traffic(traffic, pid, samples))
        log("traffic done after %.0fs; waiting for the queue to settle", time.monotonic() - t_start)
        if not t.alive():
            problems.append("transitd died during the traffic (status %s)" % t.proc.returncode)
            entries = {}
        else:
            rss["end-of-traffic"] = rss_of(pid)[0]
            entries = settle(t, traffic, sinks)
            rss["settled"], rss["peak (VmHWM)"] = rss_of(pid)
        found = t.sanitizer_reports()
        if found:
            problems.append("sanitizer report during the run: %s" % ", ".join(found))
        if not t.alive():
            problems.append("transitd died (status %s)" % t.proc.returncode)
    finally:
        reader.stop()
        rc = None
        if t.proc is not None and t.proc.poll() is None:
            t.proc.send_signal(signal.SIGTERM)
            try:
                rc = t.proc.wait(60)
            except Exception:
                t.proc.kill()
                rc = t.proc.wait(10)
                problems.append("transitd did not exit within 60s of SIGTERM")
        for s in sinks.values():
            s.stop()
    if rc not in (None, 0, -signal.SIGTERM):
        problems.append("transitd exited with status %s after SIGTERM" % rc)
    if not problems and t.sanitizer_reports():
        problems.append("sanitizer report at shutdown: %s" % ", ".join(t.sanitizer_reports()))

    with open(os.path.join(base, "records.txt"), "w") as f:
        f.writelines("%r\n" % r for r in traffic.recs)
    # reconcile
    expected = ml.expected_from(traffic.recs)
    local, odd_local = {}, []
    for u in LOCAL_RCPTS:
        ids, odd = ml.count_maildir(t.maildir(u), u, expected)
        odd_local += odd
        local.update(ids)
    dsns, odd_dsn = {}, []
    for u in SENDERS:
        ids, odd = ml.count_dsns(t.maildir(u))
        odd_dsn += odd
        for k, v in ids.items():
            dsns.setdefault(k, []).extend(v)
    remote, torn_remote = ml.count_sink_dumps(sinks["healthy"].files(), expected)
    v = ml.reconcile(traffic.recs, local, remote, dsns, entries)
    garbage_delivered = len(ml.maildir_files(t.maildir(GARBAGE_USER)))

    acked = sum(1 for r in traffic.recs if r.outcome == "250")
    log("summary: messages sent %d, 250'd %d; recipients delivered to Maildirs %d, to the "
        "healthy sink %d, bounced (reported in DSNs) %d, still queued (4xx) %d; queue entries %d; "
        "duplicates %d", len(traffic.recs), acked, v.counts["delivered-local"],
        v.counts["delivered-remote"], v.counts["bounced"], v.counts["queued"], len(entries),
        sum(len(x) for x in v.dups.values()))
    log("outcomes: %s", v.summary())
    acked_recs = [r for r in traffic.recs if r.outcome == "250"]
    log("recipients of 250'd messages by destination: %r; messages by number of recipients: %r",
        dict(collections.Counter(d for r in acked_recs for d, _ in r.rcpts)),
        dict(collections.Counter(len(r.rcpts) for r in acked_recs)))
    log("by mode (250'd): %r", dict(collections.Counter(
        r.mode for r in traffic.recs if r.outcome == "250")))
    log("sessions: %r; garbage deliveries to %s: %d; files moved from new/ to cur/: %d",
        dict(traffic.stats), GARBAGE_USER, garbage_delivered, reader.moved)
    sizes = sorted(r.size for r in traffic.recs if r.outcome == "250")
    if sizes:
        log("sizes of 250'd messages: min %d, median %d, max %d, total %.1f MiB",
            sizes[0], sizes[len(sizes) // 2], sizes[-1], sum(sizes) / MIB)
    if samples:
        warm = next((s for s in samples if s[0] >= min(30.0, SOAK_SECONDS / 4)), samples[-1])
        mid = samples[len(samples) // 2]
        rss["warm (t=%.0fs)" % warm[0]] = warm[1]
        rss["middle (t=%.0fs)" % mid[0]] = mid[1]
        bound = RSS_FACTOR * warm[1] + RSS_SLACK
        log("RSS: %s; bound after warm-up %.1f MiB", ", ".join(
            "%s %.1f MiB" % (k, b / MIB) for k, b in rss.items()), bound / MIB)
        for k in ("end-of-traffic", "settled"):
            if k in rss and rss[k] > bound:
                problems.append("RSS %s %.1f MiB is above 2 x warm-up (%.1f MiB) + 64 MiB"
                                % (k, rss[k] / MIB, warm[1] / MIB))
    # the verdict
    if acked < 100:
        problems.append("too little got through to mean anything: %d messages answered 250" % acked)
    unanswered = [r for r in traffic.recs if r.outcome == "unanswered"]
    if unanswered:
        problems.append("%d final replies never came: %r" % (len(unanswered), unanswered[:10]))
    if traffic.failures:
        log("broken sessions (first 10 of %d): %r", len(traffic.failures), traffic.failures[:10])
        problems.append("%d client sessions broke without a reason on the client's side"
                        % len(traffic.failures))
    refused = [r for r in traffic.recs if r.outcome.startswith("refused")]
    if refused:
        problems.append("%d valid messages refused: %r" % (len(refused), refused[:10]))
    if odd_local or odd_dsn or torn_remote:
        problems.append("files that are not an intact numbered message: Maildir %r, DSN %r, "
                        "sink %r"
                        % (odd_local[:5], odd_dsn[:5], torn_remote[:5]))
    for kind, mid, detail in v.errors[:30]:
        log("ERROR %s id %s: %s", kind, mid, detail)
    if v.errors:
        problems.append("%d reconciliation errors (%s)" % (len(v.errors), ", ".join(
            "%s %d" % kv for kv in collections.Counter(e[0] for e in v.errors).items())))
    for kind, lst in v.dups.items():
        problems.append("%d duplicates (%s): %r" % (len(lst), kind, [x[0] for x in lst[:20]]))
    log("took %.0fs", time.monotonic() - t_start)
    if problems:
        for p in problems:
            log("FAIL: %s", p)
        log("transitd log tail:\n%s", t.log_tail(40))
        log("kept %s", base)
        return 1
    log("PASS")
    if os.environ.get("SOAK_KEEP"):
        log("kept %s", base)
    else:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
