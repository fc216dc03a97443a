"""
test_tracking.py - message tracking (issue 8): the JSON Lines events under
<logs.path>/tracking/ for a delivered message, a deferred-then-sent one, a
bounced one and its DSN, an expired one; `transitctl track` and its
filters (also with the daemon down); rotation with small limits.

Peers: the sending tests use sendpeers (nsd, smtp-sink, a receiving
transitd) like test_send.py.
"""

import glob
import json
import os
import re
import time

import pytest

import harness
import sendpeers as sp
from sendpeers import dns  # noqa: F401  (the module's nameserver fixture)
from sendpeers import IP_MX1, message, relay_send, wait_log

ALICE = "alice@example.test"


# -- helpers ------------------------------------------------------------------------------

def tracking_dir(t):
    return os.path.join(t.dir, "logs", "tracking")


def events(t):
    """Every event in the tracking files, oldest first."""
    out = []
    for path in sorted(glob.glob(os.path.join(tracking_dir(t), "tracking-*.jsonl"))):
        with open(path, encoding="ascii") as f:
            for line in f:
                assert line.endswith("\n"), "torn line in %s: %r" % (path, line)
                out.append(json.loads(line))
    return out


def events_of(t, qid):
    return [e for e in events(t) if e.get("qid") == qid]


def wait_events(t, pred, what, timeout=20.0):
    """Wait until pred(events) holds; returns the events."""
    found = []

    def ok():
        found[:] = events(t)
        return pred(found)
    harness.wait_until(ok, timeout, what=what)
    return found


def kinds(evs, qid):
    return [e["event"] for e in evs if e.get("qid") == qid]


def one(evs, qid, kind, **match):
    got = [e for e in evs if e.get("qid") == qid and e["event"] == kind
           and all(e.get(k) == v for k, v in match.items())]
    assert len(got) == 1, "want one %s %s of %s, have %r" % (kind, match, qid, evs)
    return got[0]


def track(t, *args, check=True):
    p = t.ctl("track", *args)
    if check:
        assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return p


def track_json(t, *args):
    out = track(t, "--json", *args).stdout.decode("ascii")
    return [json.loads(line) for line in out.splitlines()]


def internet(t, **kw):
    return sp.dns_connector(t.port_smtp, **kw)


@pytest.fixture
def peers(transit_conf):
    """Sinks and receiver transitds for one test, stopped at its end."""
    p = sp.Peers(os.path.join(transit_conf.dir, "peers"))
    os.makedirs(p.base)
    yield p
    problems = p.stop_all()
    if problems:
        pytest.fail("peer problems: %s" % "\n".join(problems), pytrace=False)


# -- the events of one message ------------------------------------------------------------

def test_delivered_message_events(transit):
    t = transit
    msg = harness.make_message("tracked", message_id="<tracked-1@client.example>")
    qid = t.send(msg, rcpts=(ALICE,))
    evs = wait_events(t, lambda e: "DELIVER" in kinds(e, qid), "DELIVER of %s" % qid)
    assert kinds(evs, qid) == ["RECEIVE", "SUBMIT", "ROUTE", "DELIVER"], evs
    rx = one(evs, qid, "RECEIVE")
    assert rx["message_id"] == "<tracked-1@client.example>"
    assert rx["sender"] == "bob@example.test" and rx["recipients"] == [ALICE]
    assert rx["connector"] == "internet" and rx["remote_ip"] == "127.0.0.1"
    assert rx["remote_host"] == "client.example.net" and rx["tls"] == "no"
    assert rx["size"] > len(msg) and rx["status"] == "2.0.0" and rx["session"]
    for e in evs:
        assert e["node"] == "mx.example.test", e
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e["time"]), e
    dl = one(evs, qid, "DELIVER")
    assert dl["recipient"] == ALICE and dl["status"].startswith("2."), dl
    assert dl["connector"] == "mailbox" and "/alice/new/" in dl["reason"], dl
    assert one(evs, qid, "ROUTE")["connector"] == "mailbox"
    t.wait_for_mail("alice", 1)


def test_message_id_added_by_us_is_tracked(transit):
    t = transit
    msg = b"Subject: no id\r\nFrom: bob@example.test\r\n\r\nbody\r\n"
    qid = t.send(msg)
    evs = wait_events(t, lambda e: "RECEIVE" in kinds(e, qid), "RECEIVE of %s" % qid)
    mid = one(evs, qid, "RECEIVE")["message_id"]
    (d,) = t.wait_for_mail("alice", 1)
    assert d.header("Message-ID") == [mid], (mid, d.header("Message-ID"))


@pytest.mark.timeout(90)
def test_deferred_then_sent(transit_conf, dns, peers):
    t = transit_conf
    sp.configure_sender(t, dns.port, {"internet": internet(t)},
                        queue={"retry": ["1s"], "expire": "1h"})
    t.start()
    qid = relay_send(t, ALICE, ["x@example.net"], message("retry"))
    evs = wait_events(t, lambda e: "DEFER" in kinds(e, qid), "DEFER of %s" % qid)
    df = [e for e in evs if e.get("qid") == qid and e["event"] == "DEFER"][0]
    assert df["recipient"] == "x@example.net" and df["status"].startswith("4.")
    assert df["attempt"] == 1 and df["connector"] == "internet" and df["reply"], df
    s = peers.sink(IP_MX1, t.port_smtp)
    s.wait_messages(1, timeout=30)
    evs = wait_events(t, lambda e: "SEND" in kinds(e, qid), "SEND of %s" % qid, timeout=30)
    k = kinds(evs, qid)
    assert k[:3] == ["RECEIVE", "SUBMIT", "ROUTE"] and k[-1] == "SEND", k
    assert k.index("DEFER") < k.index("SEND") and "FAIL" not in k and "DSN" not in k, k
    sent = one(evs, qid, "SEND")
    assert sent["remote_ip"] == IP_MX1 and sent["status"] == "2.0.0", sent
    assert sent["remote_host"] and sent["reply"].startswith("250"), sent
    assert one(evs, qid, "ROUTE")["reason"] == "next-hop internet:example.net"


@pytest.mark.timeout(90)
def test_bounced_with_dsn(transit_conf, dns, peers):
    t = transit_conf
    rx = peers.receiver(IP_MX1, t.port_smtp, "example.net", users=["known@example.net"])
    sp.configure_sender(t, dns.port, {"internet": internet(t)})
    t.start()
    qid = relay_send(t, ALICE, ["known@example.net", "unknown@example.net"], message("bounce"))
    rx.wait_for_mail("known@example.net", 1, timeout=20)
    evs = wait_events(t, lambda e: "DSN" in kinds(e, qid), "DSN of %s" % qid)
    fail = one(evs, qid, "FAIL")
    assert fail["recipient"] == "unknown@example.net" and fail["status"] == "5.1.1", fail
    assert fail["remote_ip"] == IP_MX1 and "550" in fail["reply"], fail
    assert one(evs, qid, "SEND")["recipient"] == "known@example.net"
    dsn = one(evs, qid, "DSN")
    assert dsn["reason"] == "failure" and dsn["recipients"] == ["unknown@example.net"], dsn
    # the DSN is a message of its own: received into the queue and delivered to alice
    dq = dsn["related_qid"]
    evs = wait_events(t, lambda e: "DELIVER" in kinds(e, dq), "DELIVER of DSN %s" % dq)
    assert one(evs, dq, "DELIVER")["recipient"] == ALICE and one(evs, dq, "SUBMIT")["sender"] == ""
    # track by the original's queue id finds the bounce
    got = [e["event"] for e in track_json(t, "--queue-id", qid)]
    assert "FAIL" in got and "DSN" in got, got


@pytest.mark.timeout(90)
def test_expired_with_dsn(transit_conf, dns):
    t = transit_conf
    sp.configure_sender(t, dns.port, {"internet": internet(t)},
                        queue={"retry": ["1s"], "expire": "3s"})
    t.start()
    qid = relay_send(t, ALICE, ["x@example.net"], message("expiry"))
    evs = wait_events(t, lambda e: "DSN" in kinds(e, qid), "DSN of %s" % qid, timeout=30)
    ex = one(evs, qid, "EXPIRE")
    assert ex["recipient"] == "x@example.net" and ex["status"] == "4.4.7", ex
    assert "FAIL" not in kinds(evs, qid)


@pytest.mark.timeout(90)
def test_recovered_message_is_not_submitted_again(transit_conf, dns):
    t = transit_conf
    sp.configure_sender(t, dns.port, {"internet": internet(t)},
                        queue={"retry": ["1s"], "expire": "1h"})
    t.start()
    qid = relay_send(t, ALICE, ["x@example.net"], message("restart"))
    wait_events(t, lambda e: "DEFER" in kinds(e, qid), "DEFER of %s" % qid)
    t.stop()
    before = len([e for e in events(t) if e.get("qid") == qid and e["event"] == "DEFER"])
    t.start()
    evs = wait_events(t, lambda e: kinds(e, qid).count("DEFER") > before,
                      "a DEFER of %s after the restart" % qid)
    assert kinds(evs, qid).count("SUBMIT") == 1 and kinds(evs, qid).count("RECEIVE") == 1, \
        kinds(evs, qid)


# -- transitctl track -------------------------------------------------------------------

def test_track_filters(transit):
    t = transit
    m1 = harness.make_message("one", message_id="<one@x.example>")
    m2 = harness.make_message("two", message_id="<two@x.example>")
    q1 = t.send(m1, sender="bob@example.test", rcpts=(ALICE,))
    q2 = t.send(m2, sender="carol@elsewhere.example", rcpts=("bob@example.test",))
    wait_events(t, lambda e: "DELIVER" in kinds(e, q1) and "DELIVER" in kinds(e, q2),
                "both delivered")
    t.stop()  # track reads the files: it works with the daemon down

    assert {e["qid"] for e in track_json(t, "--sender", "BOB@example.test")} == {q1}
    got = track_json(t, "--recipient", "bob@example.test")
    assert {e["qid"] for e in got} == {q2}
    assert {e["event"] for e in got} == {"RECEIVE", "ROUTE", "DELIVER"}, got
    got = track_json(t, "--message-id", "<two@x.example>")
    assert [e["event"] for e in got] == ["RECEIVE", "SUBMIT", "ROUTE", "DELIVER"], got
    assert {e["qid"] for e in got} == {q2}
    got = track_json(t, "--queue-id", q1, "--event", "deliver")
    assert len(got) == 1 and got[0]["recipient"] == ALICE
    assert len(track_json(t, "--event", "RECEIVE")) == 2
    assert len(track_json(t, "--since", "1h", "--event", "RECEIVE")) == 2
    assert track_json(t, "--until", "2000-01-01") == []
    assert track_json(t, "--since", "2999-01-01T00:00:00Z") == []
    # the human form: one line per event
    out = track(t, "--queue-id", q1).stdout.decode()
    assert re.search(r"DELIVER\s+%s from=<bob@example\.test> to=<%s>" % (q1, ALICE), out), out
    # nothing found is not an error; a bad option is a usage error
    p = track(t, "--sender", "nobody@nowhere.example")
    assert p.stdout == b"" and b"no matching events" in p.stderr
    p = track(t, "--since", "yesterday-ish", check=False)
    assert p.returncode == 2 and b"not a time" in p.stderr
    p = track(t, "--bogus", "x", check=False)
    assert p.returncode == 2 and b"unknown option" in p.stderr


def test_track_skips_a_torn_line(transit):
    t = transit
    qid = t.send(harness.make_message("torn"))
    wait_events(t, lambda e: "DELIVER" in kinds(e, qid), "DELIVER")
    t.stop()
    (path,) = glob.glob(os.path.join(tracking_dir(t), "tracking-*.jsonl"))
    with open(path, "a") as f:
        f.write('{"time":"2026-01-01T00:00:00.000Z","event":"DEL')  # a crash mid-line
    got = track_json(t, "--queue-id", qid)
    assert [e["event"] for e in got] == ["RECEIVE", "SUBMIT", "ROUTE", "DELIVER"]


def test_tracking_off(transit_conf):
    t = transit_conf
    t.override("config", {"logs": {"tracking": {"enabled": False}}})
    t.write_config()
    t.start()
    t.send(harness.make_message("untracked"))
    t.wait_for_mail("alice", 1)
    time.sleep(0.5)
    assert not glob.glob(os.path.join(tracking_dir(t), "*")), "tracking off wrote files"


# -- rotation -------------------------------------------------------------------------------

def test_rotation_by_file_and_dir_size(transit_conf):
    t = transit_conf
    t.override("config", {"logs": {"tracking": {"max-file-size": "2K", "max-dir-size": "6K"}}})
    t.write_config()
    t.start()
    qids = [t.send(harness.make_message("rot %d" % i)) for i in range(12)]
    wait_events(t, lambda e: "DELIVER" in kinds(e, qids[-1]), "last DELIVER")
    files = sorted(glob.glob(os.path.join(tracking_dir(t), "tracking-*.jsonl")))
    sizes = [os.path.getsize(p) for p in files]
    assert len(files) >= 2, sizes
    assert all(s <= 2048 for s in sizes), sizes
    assert sum(sizes) <= 6144 + 2048, sizes   # pruned at each rotation; the open file may grow
    # the newest events are all there, whole, across files
    got = track_json(t, "--queue-id", qids[-1])
    assert [e["event"] for e in got] == ["RECEIVE", "SUBMIT", "ROUTE", "DELIVER"], got
    # the oldest were pruned
    assert track_json(t, "--queue-id", qids[0]) == []


def test_rotation_by_age(transit_conf):
    t = transit_conf
    t.override("config", {"logs": {"tracking": {"max-age": "1d"}}})
    t.write_config()
    d = tracking_dir(t)
    os.makedirs(d)
    old = os.path.join(d, "tracking-20200101-000000-0000.jsonl")
    recent = os.path.join(d, "tracking-20200102-000000-0000.jsonl")
    other = os.path.join(d, "notes.txt")
    for p in (old, recent, other):
        with open(p, "w") as f:
            f.write('{"event":"RECEIVE"}\n')
    now = time.time()
    os.utime(old, (now - 3 * 86400, now - 3 * 86400))
    os.utime(recent, (now - 3600, now - 3600))
    os.utime(other, (now - 9 * 86400, now - 9 * 86400))
    t.start()
    harness.wait_until(lambda: not os.path.exists(old), 10, what="the old file pruned")
    assert os.path.exists(recent), "a file younger than max-age was removed"
    assert os.path.exists(other), "a file that is not a tracking file was removed"
