"""
test_queue_admin.py - the queue viewer and queue management (issue 8, "Queue
management"): `transitctl queue list` with filters, `show`, `export`,
`freeze|thaw|retry|delete [--ndr]` by id or by filter, `suspend|resume
NEXT-HOP` and `suspend --all`, against the running transitd and real SMTP
peers on loopback (pypeer.PyPeer, one per next hop, reached through smart-host
send connectors "[127.0.0.1]:PORT").

Checked: a freeze survives a restart (and retry refuses a frozen message);
suspending one next hop stops delivery to it only, survives a restart, and
resume sends what waited; delete --ndr gives the sender a DSN that Python's
email package parses (multipart/report, Status 5.0.0), silent delete gives
none; retry sends a deferred message at once (the retry interval is 1 h).
"""

import json
import os
import re
import time

import pytest

import harness
import sendpeers as sp
from conftest import free_ports
from pypeer import PyPeer

ALICE = "alice@example.test"


def relay_config(t, hops, retry="1h"):
    """Send connectors "to-a" for a.test, "to-b" for b.test... each to
    [127.0.0.1]:port; DNS is never asked (IP literals)."""
    conns = {}
    for name, (domain, port) in hops.items():
        conns[name] = sp.smarthost_connector([domain], ["[127.0.0.1]:%d" % port])
    # the DNS port is never used: the smart hosts are IP literals
    sp.configure_sender(t, free_ports(1)[0], conns, queue={"retry": [retry], "expire": "2d"})


def ctl_json(t, *args):
    p = t.ctl(*args, "--json", check=True)
    return json.loads(p.stdout.decode())


def queue_ids(t, *filters):
    return sorted(m["id"] for m in ctl_json(t, "queue", "list", *filters))


def wait_state(t, qid, state, timeout=15):
    harness.wait_until(lambda: any(m["id"] == qid and m["state"] == state
                                   for m in ctl_json(t, "queue", "list")),
                       timeout, what="%s %s" % (qid, state))


@pytest.fixture
def peer_ports():
    return free_ports(2)


def tracked_events(t, qid):
    """The events of qid in the tracking log (transitctl track), once the
    writer has flushed them."""
    def events():
        p = t.ctl("track", "--queue-id", qid, "--json")
        return {json.loads(l)["event"] for l in p.stdout.decode().splitlines() if l.strip()}
    harness.wait_until(lambda: {"FREEZE", "THAW", "DELETE"} & events(), 10,
                       what="admin events tracked")
    time.sleep(0.2)
    return events()


def test_freeze_survives_restart_then_thaw_and_retry(transit_conf, peer_ports):
    t = transit_conf
    port_a, _ = peer_ports
    relay_config(t, {"to-a": ("a.test", port_a)})
    t.start()
    qid = sp.relay_send(t, ALICE, ["x@a.test"], sp.message("frozen one"))
    wait_state(t, qid, "deferred")              # nobody listens on port_a yet
    p = t.ctl("queue", "freeze", qid, check=True)
    assert p.stdout.decode().strip() == "%s frozen" % qid
    assert queue_ids(t, "--state", "frozen") == [qid]
    assert ctl_json(t, "status")["queue"]["frozen"] == 1
    p = t.ctl("queue", "freeze", qid)
    assert p.returncode == 1 and b"already frozen" in p.stderr
    t.restart()
    assert queue_ids(t, "--state", "frozen") == [qid]
    st = ctl_json(t, "status")
    assert st["queue"]["frozen"] == 1, st["queue"]
    peer = PyPeer("127.0.0.1", port_a)
    try:
        p = t.ctl("queue", "retry", qid)
        assert p.returncode == 1 and b"frozen (thaw it first)" in p.stderr, p
        r = ctl_json(t, "queue", "thaw", qid)
        assert r == {"done": [qid], "failed": []}
        # thawed, it waits for its retry time (1 h) again; retry sends it now
        ctl_json(t, "queue", "retry", qid)
        harness.wait_until(lambda: peer.messages, 20, what="delivery after retry")
        assert peer.messages[0][0] == ["x@a.test"]
        harness.wait_until(lambda: queue_ids(t) == [], 10, what="queue empty")
    finally:
        peer.stop()
    assert not os.path.exists(os.path.join(t.spool, "frozen", qid))
    assert tracked_events(t, qid) >= {"FREEZE", "THAW"}


def test_suspend_stops_one_next_hop_only(transit_conf, peer_ports):
    t = transit_conf
    port_a, port_b = peer_ports
    relay_config(t, {"to-a": ("a.test", port_a), "to-b": ("b.test", port_b)})
    t.start()
    peer_a, peer_b = PyPeer("127.0.0.1", port_a), PyPeer("127.0.0.1", port_b)
    try:
        p = t.ctl("queue", "suspend", "to-a:a.test", check=True)
        assert b"suspended" in p.stdout
        qa = sp.relay_send(t, ALICE, ["x@a.test"], sp.message("to a"))
        qb = sp.relay_send(t, ALICE, ["y@b.test"], sp.message("to b"))
        harness.wait_until(lambda: peer_b.messages, 20, what="b.test delivered")
        time.sleep(1.0)
        assert peer_a.messages == [], "a suspended next hop got mail"
        assert queue_ids(t) == [qa]
        st = ctl_json(t, "status")
        assert st["suspended"] == ["to-a:a.test"] and st["queue"]["held"] == 1, st
        by_hop = ctl_json(t, "queue", "list", "--by-next-hop")
        assert [h["next_hop"] for h in by_hop] == ["to-a:a.test"]
        # survives a restart
        t.restart()
        assert ctl_json(t, "status")["suspended"] == ["to-a:a.test"]
        time.sleep(1.0)
        assert peer_a.messages == []
        p = t.ctl("queue", "resume", "to-a:a.test", check=True)
        harness.wait_until(lambda: peer_a.messages, 20, what="a.test delivered after resume")
        assert len(peer_b.messages) == 1 and qb
        # suspend --all: keep accepting, deliver nothing
        ctl_json(t, "queue", "suspend", "--all")
        q2 = sp.relay_send(t, ALICE, ["z@b.test"], sp.message("held by all"))
        time.sleep(1.5)
        assert len(peer_b.messages) == 1
        assert queue_ids(t) == [q2]
        ctl_json(t, "queue", "resume", "--all")
        harness.wait_until(lambda: len(peer_b.messages) == 2, 20, what="delivered after --all")
        p = t.ctl("queue", "resume", "to-a:a.test")
        assert p.returncode == 1 and b"not suspended" in p.stderr
    finally:
        peer_a.stop()
        peer_b.stop()


def test_delete_ndr_sends_a_dsn_and_silent_delete_none(transit_conf, peer_ports):
    t = transit_conf
    port_a, _ = peer_ports
    relay_config(t, {"to-a": ("a.test", port_a)})
    t.start()
    q1 = sp.relay_send(t, ALICE, ["x@a.test"], sp.message("delete with ndr"))
    q2 = sp.relay_send(t, ALICE, ["y@a.test"], sp.message("delete silently"))
    wait_state(t, q1, "deferred")
    wait_state(t, q2, "deferred")
    r = ctl_json(t, "queue", "delete", "--ndr", q1)
    assert r == {"done": [q1], "failed": []}
    (d,) = t.wait_for_mail("alice", 1, timeout=20)
    sp.check_dsn(d, ALICE, ["x@a.test"], r"^5\.0\.0$", diag_re=r"deleted .*administrator",
                 original_subject="delete with ndr")
    # silent, chosen by filter
    p = t.ctl("queue", "delete", "--recipient", "y@a.test", check=True)
    assert p.stdout.decode().strip() == "%s deleted" % q2
    harness.wait_until(lambda: queue_ids(t) == [], 10, what="queue empty")
    time.sleep(1.0)
    assert len(t.mail_files("alice")) == 1, "a silent delete sent a DSN"
    p = t.ctl("queue", "delete", q2)
    assert p.returncode == 1 and b"no such message" in p.stderr
    assert "DELETE" in tracked_events(t, q1) and "DELETE" in tracked_events(t, q2)


def test_list_filters_show_and_export(transit_conf, peer_ports):
    t = transit_conf
    port_a, _ = peer_ports
    relay_config(t, {"to-a": ("a.test", port_a)})
    t.start()
    q1 = sp.relay_send(t, ALICE, ["x@a.test"], sp.message("first"))
    q2 = sp.relay_send(t, "bob@example.test", ["y@a.test", "z@a.test"], sp.message("second"))
    wait_state(t, q2, "deferred")
    assert queue_ids(t, "--sender", "BOB@") == [q2]
    assert queue_ids(t, "--recipient", "x@a.test") == [q1]
    assert queue_ids(t, "--state", "deferred") == sorted([q1, q2])
    assert queue_ids(t, "--state", "active") == []
    assert queue_ids(t, "--older-than", "1h") == []
    assert queue_ids(t, "--older-than", "0s") == sorted([q1, q2])
    p = t.ctl("queue", "list", "--state", "bogus")
    assert p.returncode == 2
    s = ctl_json(t, "queue", "show", q2)
    assert s["id"] == q2 and s["sender"] == "bob@example.test"
    assert [r["address"] for r in s["recipients"]] == ["y@a.test", "z@a.test"]
    assert all(r["state"] == "queued" for r in s["recipients"])
    assert s["attempts"] >= 1 and s["last_error"]
    assert "Subject: second" in s["headers"]
    txt = t.ctl("queue", "show", q2, check=True).stdout.decode()
    assert "Subject: second" in txt and "<y@a.test>" in txt
    raw = t.ctl("queue", "export", q1, check=True).stdout
    assert raw.startswith(b"Received: ")
    assert b"Subject: first\r\n" in raw and raw.endswith(b"END-OF-TEST-MESSAGE\r\n")
    p = t.ctl("queue", "show", "../../etc/passwd")
    assert p.returncode == 1 and b"not a queue id" in p.stderr
    # freeze by filter, through the daemon
    r = ctl_json(t, "queue", "freeze", "--sender", "bob@example.test")
    assert r["done"] == [q2]
    assert queue_ids(t, "--state", "frozen") == [q2]
    # reads keep working with the daemon down
    t.stop()
    assert queue_ids(t, "--state", "frozen") == [q2]
    assert t.ctl("queue", "export", q1, check=True).stdout == raw
