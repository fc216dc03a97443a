"""
test_queue.py - the durable queue seen from outside (DESIGN.md "Queue: what
it must guarantee").

Covers: a message that cannot be delivered stays queued across a restart
(SIGTERM and kill -9) and is delivered once the mailbox works again;
`transitctl queue list` and `--json` show it; and the crash test: under load
from Postfix's smtp-source and a numbered smtplib sender, transitd is killed
with SIGKILL ten times at random moments, and afterwards every message that
got a 250 is in the Maildir exactly once, nothing is delivered twice, and no
delivered file is torn.

The mailbox is broken by putting a regular FILE where the domain directory
of the Maildir template (mail/%d/%u) would go, so mkdir fails with ENOTDIR
even when the tests run as root (chmod 0 does not stop root).
"""

import collections
import itertools
import json
import os
import random
import re
import shutil
import smtplib
import subprocess
import sys
import threading
import time

import pytest

import harness
from harness import crlf_to_lf, make_message, strip_trace

SMTP_SOURCE = "/usr/sbin/smtp-source" if os.access("/usr/sbin/smtp-source", os.X_OK) \
    else shutil.which("smtp-source")
QID_KEYS = ("id", "qid", "queue_id", "queue-id", "queueid")
SENDER_KEYS = ("sender", "from", "mail_from", "return_path", "envelope_sender")


def break_mailboxes(transit, domain="example.test"):
    path = os.path.join(transit.mail, domain)
    if os.path.isdir(path):
        shutil.rmtree(path)
    with open(path, "w") as f:
        f.write("not a directory\n")
    return path


def fix_mailboxes(path):
    os.unlink(path)


def values_for(obj, keys):
    """Every value stored under one of keys, anywhere in a JSON value."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k.lower() in keys:
                out.append(v)
            out += values_for(v, keys)
    elif isinstance(obj, list):
        for v in obj:
            out += values_for(v, keys)
    return out


def find_entry(entries, qid):
    assert isinstance(entries, list), "queue list --json must be a JSON array: %r" % entries
    found = []
    for e in entries:
        assert isinstance(e, dict), "each queue entry must be an object: %r" % e
        if any(e.get(k) == qid for k in QID_KEYS):
            found.append(e)
    return found


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
@pytest.mark.transit(queue={"retry": ["2s", "4s"]})
def test_restart_keeps_undeliverable_mail(transit, how):
    broken = break_mailboxes(transit)
    msg = make_message("stuck", message_id="<stuck@client.test>", body=b"kept across restarts\r\n")
    qid = transit.send(msg)
    time.sleep(3)                                  # the first attempt and a retry fail
    assert transit.all_delivered() == []
    (entry,) = find_entry(transit.queue_json(), qid)
    assert entry["state"] == "deferred", entry
    assert entry["attempts"] >= 1, entry
    assert entry["last_error"].startswith("4."), entry     # the Maildir's temporary error
    table = transit.ctl("queue", "list", check=True).stdout
    table = table.decode() if isinstance(table, bytes) else table
    assert any(qid in line and "deferred" in line for line in table.splitlines()), table
    if how == "sigterm":
        transit.stop()
    else:
        transit.kill9()
    assert len(find_entry(transit.queue_json(), qid)) == 1, "queue list works with the daemon down"
    fix_mailboxes(broken)
    transit.start()
    (d,) = transit.wait_for_mail("alice", 1, timeout=20, settle=1.0)
    harness.check_maildir_file(d, "bob@example.test", "alice@example.test")
    assert strip_trace(d.data)[1] == crlf_to_lf(msg)
    harness.wait_until(lambda: transit.queue_json() == [], 10, what="the queue to empty")
    assert len(transit.all_delivered()) == 1


@pytest.mark.transit(queue={"retry": ["1m"]})
def test_queue_list(transit):
    assert transit.queue_json() == [], "a new spool has an empty queue"
    p = transit.ctl("queue", "list", check=True)
    assert "@" not in p.stdout.decode("utf-8", "replace")
    break_mailboxes(transit)
    m1 = make_message("listed-one", message_id="<listed-one@client.test>")
    q1 = transit.send(m1)
    q2 = transit.send(make_message("listed-two"), sender="alice@example.test",
                      rcpts=("alice@example.test", "bob@example.test"))
    assert q1 != q2
    time.sleep(1.5)
    entries = transit.queue_json()
    assert len(entries) == 2, entries
    (e1,) = find_entry(entries, q1)
    (e2,) = find_entry(entries, q2)
    assert values_for(e1, SENDER_KEYS) == ["bob@example.test"], "sender missing or wrong: %r" % e1
    assert values_for(e2, SENDER_KEYS) == ["alice@example.test"], e2
    assert "alice@example.test" in json.dumps(e1), "recipient missing: %r" % e1
    dumped2 = json.dumps(e2)
    assert "alice@example.test" in dumped2 and "bob@example.test" in dumped2, e2
    for k, v in e1.items():
        if "size" in k.lower() and isinstance(v, int):
            assert len(m1) - 10 <= v <= len(m1) + 2000, "size %d for a %d octet message" % (v, len(m1))
    text = transit.ctl("queue", "list", check=True).stdout.decode("utf-8", "replace")
    for s in (q1, q2, "bob@example.test", "alice@example.test"):
        assert s in text, "%r missing from queue list:\n%s" % (s, text)


# -- the crash test ------------------------------------------------------------------------

END_MARK = "END-OF-MESSAGE crash-%d"


def crash_message(n):
    lines = 1 + (n * 7919) % 300
    body = "".join("crash-%d line %05d %s\r\n" % (n, i, "x" * 50) for i in range(lines))
    body += END_MARK % n + "\r\n"
    return make_message("crash-%d" % n, body=body, message_id="<crash-%d@client.example.net>" % n)


@pytest.mark.timeout(170)
@pytest.mark.transit(internet={"max-connections-per-source": 200},
                     server={"max-connections": 1000}, queue={"retry": ["1s", "2s"]})
def test_kill9_loses_nothing(transit):
    if SMTP_SOURCE is None:
        pytest.skip("Postfix smtp-source is not installed (/usr/sbin/smtp-source)")
    t_start = time.monotonic()
    seed = int(time.time())
    sys.stderr.write("crash test seed %d\n" % seed)
    rnd = random.Random(seed)
    port = transit.port_smtp
    stop = threading.Event()
    lock = threading.Lock()
    numbers = itertools.count(1)
    sent, acked, qids = {}, set(), {}
    stats = collections.Counter()

    def sender():
        while not stop.is_set():
            try:
                s = smtplib.SMTP("127.0.0.1", port, local_hostname="crash-client.example.net",
                                 timeout=5)
            except (OSError, smtplib.SMTPException):
                stats["connect-failed"] += 1
                time.sleep(0.05)
                continue
            try:
                s.ehlo()
                while not stop.is_set():
                    n = next(numbers)
                    data = crash_message(n)
                    with lock:
                        sent[n] = data
                    code, resp = s.mail("bob@example.test")
                    if code != 250:
                        raise smtplib.SMTPSenderRefused(code, resp, "bob@example.test")
                    code, resp = s.rcpt("alice@example.test")
                    if code != 250:
                        raise smtplib.SMTPRecipientsRefused({"alice@example.test": (code, resp)})
                    code, resp = s.data(data)           # raises unless 250
                    m = harness.QUEUED_RE.search(resp.decode("utf-8", "replace"))
                    with lock:
                        acked.add(n)
                        qids[n] = m.group(1) if m else None
                    time.sleep(0.01)    # at most ~100 messages/s per sender: bounded backlog
            except (OSError, smtplib.SMTPException):
                stats["session-failed"] += 1
            finally:
                try:
                    s.close()
                except OSError:
                    pass

    def load():
        while not stop.is_set():
            p = subprocess.Popen([SMTP_SOURCE, "-s", "5", "-m", "150", "-c",
                                  "-f", "sender@example.test", "-t", "alice@example.test",
                                  "127.0.0.1:%d" % port],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            stats["smtp-source-runs"] += 1
            while p.poll() is None and not stop.is_set():
                time.sleep(0.05)
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
            if not stop.is_set():
                time.sleep(0.1)

    threads = [threading.Thread(target=f, daemon=True) for f in (sender, sender, load)]
    kills = 0
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        for _ in range(10):
            time.sleep(rnd.uniform(0.2, 1.0))
            transit.kill9()
            kills += 1
            transit.start()
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert not any(t.is_alive() for t in threads), "load threads did not stop"
    assert kills == 10
    assert None not in qids.values(), "250 without 'queued as ID'"
    dup_ids = [q for q, k in collections.Counter(qids.values()).items() if k > 1]
    assert not dup_ids, "queue ids reused across restarts: %r" % dup_ids[:20]
    assert len(acked) >= 20, "too little got through to mean anything: %d acked, %r" % (
        len(acked), stats)

    # drain: the queue empties and the Maildir stops growing
    deadline = t_start + 110
    last, stable_since = -1, time.monotonic()
    while True:
        n = len(transit.mail_files("alice"))
        now = time.monotonic()
        if n != last:
            last, stable_since = n, now
        if now - stable_since >= 2.0 and transit.queue_json() == []:
            break
        assert now < deadline, "queue did not drain: %d delivered, queue %d entries" % (
            n, len(transit.queue_json()))
        time.sleep(0.3)

    counts = collections.Counter()
    torn, foreign = [], []
    for path in transit.mail_files("alice"):
        d = harness.read_delivered(path)
        assert d.data.startswith(b"Return-Path: <"), "delivered file without Return-Path: %r" % d
        assert b"\n\n" in d.data, "delivered file without a header/body split: %r" % d
        m = re.fullmatch(r"crash-(\d+)", d.subject or "")
        if not m:
            continue                                # an smtp-source message
        n = int(m.group(1))
        counts[n] += 1
        if n not in sent:
            foreign.append(n)
            continue
        expected = crlf_to_lf(sent[n])
        rest = strip_trace(d.data)[1]
        if rest != expected or not d.data.endswith((END_MARK % n).encode() + b"\n"):
            torn.append((path, len(rest), len(expected)))
        harness.check_maildir_file(d, "bob@example.test", "alice@example.test")
    missing = sorted(n for n in acked if counts[n] == 0)
    twice = sorted(n for n, k in counts.items() if k > 1)
    summary = "acked %d, sent %d, delivered crash-N %d, stats %r" % (
        len(acked), len(sent), sum(counts.values()), dict(stats))
    sys.stderr.write("crash test: %s, %d files, %.1fs\n" % (
        summary, len(transit.mail_files("alice")), time.monotonic() - t_start))
    assert not foreign, "delivered crash-N never sent: %r" % foreign
    assert not missing, "acknowledged (250) but lost: %r; %s" % (missing[:50], summary)
    assert not twice, "delivered more than once: %r; %s" % (twice[:50], summary)
    assert not torn, "torn or altered deliveries (path, got, expected size): %r" % torn[:20]
    assert time.monotonic() - t_start < 120, "crash test took too long: %s" % summary
