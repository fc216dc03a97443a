"""
test_crash_mixed.py - kill -9 twenty times under mixed load (issue 6, "Tests
that must exist"; DESIGN.md "Queue: what it must guarantee").

Inbound: six client sessions from the relay client address send numbered
messages (mixedload.py: 1 to 64 KiB, DATA or BDAT, MAIL/RCPT pipelined, one
to three recipients across the destinations below; a few dropped
mid-content) and record which got a 250. Outbound, through
smart-host send connectors to Python peers on 127.0.0.2-4 (RecordingPeer):
a healthy peer that records every message it accepted by id and time, a
peer that answers RCPT with 451 (deferrals, retried every 1-2 s) and one
that answers RCPT with 550 (each owes one DSN to the sender's Maildir).
Meanwhile transitd is killed with SIGKILL twenty times at random moments
and restarted each time.

Afterwards, once the queue has settled, for each recipient of each message
answered 250: it is in its Maildir exactly once, at the healthy peer
exactly once, reported failed in exactly one DSN, or (451 peer) still
pending in `transitctl queue list --json` and delivered nowhere; every
delivered body is the one sent; nothing refused or dropped mid-content is
delivered; no owed DSN is missing. The one tolerated difference: a second copy at the
healthy peer, or a second DSN, when a kill fell between the first copy and
the next attempt (a remote 250, or a committed DSN, that transitd did not
live to record). These are counted, printed, and checked to straddle a
kill; a Maildir never gets a second copy (its file names are
deterministic, maildir.c).
"""

import asyncio
import collections
import os
import random
import sys
import threading
import time

import pytest

import conftest
import mixedload as ml
import sendpeers as sp

IP_OK, IP_TEMP, IP_PERM = "127.0.0.2", "127.0.0.3", "127.0.0.4"
SENDERS = ("sender1@example.test", "sender2@example.test")
LOCAL = ("alice@example.test", "bob@example.test")
WEIGHTS = {"local": 0.45, "remote": 0.30, "temp": 0.10, "perm": 0.15}
SESSIONS = 6
KILLS = 20


def configure(t, peer_port):
    rc = t.cfg["receive-connector"]
    rc["relay"] = {
        "bindings": list(rc["internet"]["bindings"]),
        "remote-ip-ranges": [sp.RELAY_SOURCE_IP + "/32"],
        "permissions": ["relay"],
        "tls": "none",
        "max-connections-per-source": 100,
    }

    def smarthost(domain, ip):
        return sp.smarthost_connector([domain], ["[%s]:%d" % (ip, peer_port)])
    t.cfg["send-connector"] = {"healthy": smarthost("ok.test", IP_OK),
                               "tempfail": smarthost("temp.test", IP_TEMP),
                               "permfail": smarthost("perm.test", IP_PERM)}
    t.cfg["queue"] = {"retry": ["1s", "2s"], "expire": "1h", "delay-notice": "2h"}
    t.write_config()


class Load:
    """SESSIONS client sessions in one asyncio thread until stop()."""

    def __init__(self, port, seed):
        self.port, self.seed = port, seed
        self.recs, self.stats = [], collections.Counter()
        self.ids = iter(range(1, 1 << 40))
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def new_rec(self, rnd, chunking):
        rcpts = ml.random_rcpts(rnd, WEIGHTS, lambda dest: {
            "local": lambda: rnd.choice(LOCAL), "remote": lambda: "r%d@ok.test" % rnd.randint(1, 3),
            "temp": lambda: "t%d@temp.test" % rnd.randint(1, 3),
            "perm": lambda: "p%d@perm.test" % rnd.randint(1, 3)}[dest]())
        rec = ml.Rec(next(self.ids), rcpts, rnd.choice(SENDERS),
                     "BDAT" if chunking and rnd.random() < 0.5 else "DATA",
                     ml.log_uniform_size(rnd, 1 << 10, 1 << 16), rnd.random() < 0.05)
        self.recs.append(rec)
        return rec

    async def _session(self, i):
        rnd = random.Random(self.seed * 100 + i)
        while not self.stopping.is_set():
            try:
                conn = await ml.Conn.open(conftest.HOST, self.port, sp.RELAY_SOURCE_IP, 10)
            except ml.SMTPFailure:
                self.stats["connect-failed"] += 1
                await asyncio.sleep(0.1)
                continue
            try:
                await conn.greet_and_ehlo()
                while not self.stopping.is_set():
                    await ml.send_one(conn, self.new_rec(rnd, "CHUNKING" in conn.ehlo_keywords),
                                      rnd)
                    await asyncio.sleep(0.01)
                await conn.quit()
            except ml.Aborted:
                self.stats["aborted-on-purpose"] += 1
            except ml.SMTPFailure:
                self.stats["session-broken"] += 1
                conn.close()

    async def _main(self):
        await asyncio.gather(*(self._session(i) for i in range(SESSIONS)))

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join(40)
        assert not self.thread.is_alive(), "the client sessions did not stop"


def settle(t, load, timeout):
    """Wait until only 451'd messages are queued and nothing arrives any more."""
    temp_qids = {r.qid for r in load.recs if r.outcome == "250" and "temp" in r.dests()}
    unanswered = sum(1 for r in load.recs if r.outcome == "unanswered")
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        entries = ml.queued_qids(t.queue_json())
        sig = (len(entries), sum(len(ml.maildir_files(t.maildir(u))) for u in LOCAL + SENDERS))
        now = time.monotonic()
        if sig != last:
            last, since = sig, now
        if len(set(entries) - temp_qids) <= unanswered and now - since >= 3:
            return entries
        assert now < deadline, "the queue did not settle within %.0fs: %d entries, %d of them " \
            "not 451'd messages\n%s" % (timeout, len(entries), len(set(entries) - temp_qids),
                                        t.log_tail(30))
        time.sleep(0.5)


@pytest.mark.timeout(200)
@pytest.mark.transit(users=SENDERS, server={"max-connections": 200})
def test_kill9_twenty_times_under_mixed_load(transit_conf):
    t = transit_conf
    t_start = time.monotonic()
    seed = int(os.environ.get("CRASH_SEED", time.time()))
    rnd = random.Random(seed)
    peer_port = conftest.free_ports(1)[0]
    peers = {"ok": ml.RecordingPeer(IP_OK, peer_port, "ok"),
             "temp": ml.RecordingPeer(IP_TEMP, peer_port, "temp"),
             "perm": ml.RecordingPeer(IP_PERM, peer_port, "perm")}
    load = Load(t.port_smtp, seed)
    kills = []
    try:
        configure(t, peer_port)
        t.start()
        load.start()
        time.sleep(1.5)
        for _ in range(KILLS):
            time.sleep(rnd.uniform(0.2, 1.2))
            t_kill = time.time()
            t.kill9()
            kills.append((t_kill, time.time()))
            t.start()
        time.sleep(1.0)
        load.stop()
        t_load = time.monotonic() - t_start
        entries = settle(t, load, 60)
    finally:
        load.stopping.set()
        for p in peers.values():
            p.stop()

    expected = ml.expected_from(load.recs)
    local, odd = {}, []
    for u in LOCAL:
        ids, o = ml.count_maildir(t.maildir(u), u, expected)
        odd += o
        local.update(ids)
    dsns = collections.defaultdict(list)
    for u in SENDERS:
        ids, o = ml.count_dsns(t.maildir(u))
        odd += o
        for k, times in ids.items():
            dsns[k] += times
    remote, bad_remote = peers["ok"].copies(expected)
    v = ml.reconcile(load.recs, local, remote, dsns, entries, kills=kills, allow_remote_dups=True)
    acked = [r for r in load.recs if r.outcome == "250"]
    sys.stderr.write(
        "\ncrash test (seed %d): %d kills, %d messages tried, %d answered 250 (recipients %r), "
        "%d unanswered (%d of them delivered), client %r\n"
        "  recipients delivered: Maildir %d, healthy peer %d, in DSNs %d, still queued (451) %d; "
        "peers saw: healthy %d messages in %d sessions, 451 peer %d RCPTs, 550 peer %d RCPTs\n"
        "  duplicates: healthy peer %d %r, DSN %d %r, Maildir %d %r; load %.0fs, total %.0fs\n"
        % (seed, len(kills), len(load.recs), len(acked),
           dict(collections.Counter(d for r in acked for d, _ in r.rcpts)),
           sum(1 for r in load.recs if r.outcome == "unanswered"),
           v.counts["unanswered-delivered"], dict(load.stats),
           v.counts["delivered-local"], v.counts["delivered-remote"], v.counts["bounced"],
           v.counts["queued"], len(peers["ok"].received), peers["ok"].sessions,
           peers["temp"].rcpts_seen, peers["perm"].rcpts_seen,
           len(v.dups["remote"]), [m for m, _ in v.dups["remote"]],
           len(v.dups["dsn"]), [m for m, _ in v.dups["dsn"]],
           len(v.dups["local"]), [m for m, _ in v.dups["local"]],
           t_load, time.monotonic() - t_start))
    assert len(kills) == KILLS
    assert len(acked) >= 50, "too little got through to mean anything: %d" % len(acked)
    for dest in WEIGHTS:
        assert any(dest in r.dests() for r in acked), "no 250'd message went to %s" % dest
    assert any(len(r.rcpts) > 1 for r in acked), "no 250'd message had several recipients"
    assert not odd, "Maildir files that are not an intact numbered message: %r" % odd[:10]
    assert not bad_remote, "the healthy peer got altered messages (id, time): %r" % bad_remote[:10]
    assert not v.dups["local"], "delivered twice to a Maildir: %r" % v.dups["local"][:10]
    assert not v.errors, "%d reconciliation errors, first: %s" % (
        len(v.errors), "\n".join("%s %s: %s" % e for e in v.errors[:15]))
