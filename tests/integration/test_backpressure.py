"""
test_backpressure.py - back pressure (issue 7, policy/backpressure.c): the
free space of the spool volume, the daemon's memory and the queue length
raise the level to Medium (anonymous MAIL refused with 452 4.3.1) or High
(every MAIL refused); delivery of the queue goes on; a full spool never
loses a queued message nor its bounce.

Two kinds of spool: the test directory's own volume (thresholds set around
its real free space, read with statvfs), and a small tmpfs mounted over the
spool directory (root only: the test is skipped when `mount -t tmpfs` is not
allowed) that the test fills with a file. Nothing here writes a filler on
the shared disk.
"""

import contextlib
import os
import re
import smtplib
import subprocess
import time

import pytest

import conftest
import harness
import sendpeers as sp
from pypeer import PyPeer

DEVICE_IP = sp.RELAY_SOURCE_IP        # the relay-permission client
LEVEL_RE = r"back-pressure level=%s previous=%s reason=%s "


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def kib(n):
    return "%dK" % max(1, n // 1024)


def add_device_connector(t):
    """A relay-permission connector on the internet binding for DEVICE_IP:
    IP-scoped relay, not authentication."""
    t.cfg["receive-connector"]["devices"] = {
        "bindings": list(t.connector()["bindings"]),
        "remote-ip-ranges": [DEVICE_IP + "/32"],
        "permissions": ["relay"],
        "tls": "offer",
    }


def add_remote(t, port):
    """remote.test goes to a smart host on 127.0.0.1:port."""
    t.cfg["send-connector"] = {"remote": sp.smarthost_connector(
        ["remote.test"], ["[127.0.0.1]:%d" % port], **{"connect-timeout": "2s"})}


def set_bp(t, **kw):
    t.cfg["back-pressure"] = {k.replace("_", "-"): v for k, v in kw.items()}
    t.write_config()


def mail_refused(c, sender="bob@example.test"):
    r = c.cmd("MAIL FROM:<%s>" % sender)
    harness.check_reply(r, 452, "4.3.1", text_re=r"Insufficient system resources", what="MAIL")


def anonymous_refused(t):
    with t.raw() as c:
        c.ehlo()
        mail_refused(c)
        mail_refused(c)                      # refused again, the session goes on
        harness.check_reply(c.cmd("RSET"), 250, what="RSET")


def device_refused(t):
    with sp.client(t) as c:
        c.ehlo("printer.example.test")
        mail_refused(c, "printer@example.test")


@contextlib.contextmanager
def tmpfs_spool(t, size):
    """A tmpfs of `size` mounted over t.spool for the test, unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs spool needs root")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs",
                        t.spool], capture_output=True, timeout=20)
    if p.returncode != 0:
        pytest.skip("mount -t tmpfs not allowed here: %s" % p.stderr.decode(errors="replace"))
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            t.stop()
        subprocess.run(["umount", "-l", t.spool], capture_output=True, timeout=20)


def fill(path, leave):
    """Write a filler file at path until the volume has at most `leave`
    bytes free (or none: ENOSPC ends it)."""
    chunk = b"\0" * (1 << 20)
    with open(path, "wb") as f:
        while True:
            room = free_bytes(os.path.dirname(path)) - leave
            if room <= 0:
                break
            try:
                f.write(chunk[:min(len(chunk), room)])
                f.flush()
            except OSError:
                break


# -- thresholds around the machine's real free space ------------------------------------

def test_disk_free_around_real_free_space(transit_conf):
    t = transit_conf
    add_device_connector(t)
    free = free_bytes(t.spool)
    # Medium: the volume has less free space than disk-free-medium
    set_bp(t, disk_free_medium=kib(free * 2 + (1 << 30)), disk_free_high="1M")
    t.start()
    sp.wait_log(t, LEVEL_RE % ("medium", "normal", "disk-free") + r"free=\d+ threshold=\d+")
    anonymous_refused(t)
    device_refused(t)                        # a relay connector is not authentication
    assert "reason=back-pressure level=medium" in t.log_text()

    # lower it well below the free space: Normal again, mail accepted
    t.stop()
    free = free_bytes(t.spool)
    set_bp(t, disk_free_medium=kib(free // 3), disk_free_high="1M")
    mark = len(t.log_text())
    t.start()
    sp.wait_log(t, r"back-pressure enabled disk-free-medium=\d+")
    qid = t.send(harness.make_message("after back pressure"))
    assert qid
    t.wait_for_mail("alice@example.test", 1)
    assert "back-pressure level=" not in t.log_text()[mark:]

    # High: everything refused, the log says so
    t.stop()
    free = free_bytes(t.spool)
    set_bp(t, disk_free_medium=kib(free * 4 + (2 << 30)), disk_free_high=kib(free * 2 + (1 << 30)))
    t.start()
    sp.wait_log(t, LEVEL_RE % ("high", "normal", "disk-free"))
    anonymous_refused(t)
    device_refused(t)


def test_medium_keeps_authenticated_submission(transit_conf):
    """Medium refuses anonymous mail but not a client that authenticated
    (AUTH on the submission connector): people can still send while the
    internet waits."""
    t = transit_conf
    port = conftest.free_ports(1)[0]
    t.cfg["receive-connector"]["client"] = {
        "bindings": ["%s:%d" % (conftest.HOST, port)],
        "permissions": ["authenticated"],
        "tls": "require",
        "auth": ["plain", "login"],
    }
    free = free_bytes(t.spool)
    set_bp(t, disk_free_medium=kib(free * 2 + (1 << 30)), disk_free_high="1M")
    t.start()
    sp.wait_log(t, LEVEL_RE % ("medium", "normal", "disk-free"))
    anonymous_refused(t)
    with smtplib.SMTP(conftest.HOST, port, timeout=20) as s:
        s.starttls(context=harness.client_tls_context())
        s.login("alice@example.test", conftest.PASSWORD)
        s.sendmail("alice@example.test", ["alice@example.test"],
                   harness.make_message("submitted at medium"))
    t.wait_for_mail("alice@example.test", 1)


# -- memory and queue length ------------------------------------------------------------

def test_memory_high_as_a_size(transit_conf):
    t = transit_conf
    set_bp(t, memory_high="1M")              # any process is larger
    t.start()
    sp.wait_log(t, LEVEL_RE % ("high", "normal", "memory") + r"rss=\d+ threshold=1048576\b")
    anonymous_refused(t)


def test_memory_high_percentage_is_of_physical_memory(transit_conf):
    t = transit_conf
    set_bp(t, memory_high="50%")
    t.start()
    (m,) = sp.wait_log(t, r"back-pressure enabled .* memory-high=(\d+) ")
    phys = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert int(m.group(1)) == phys // 100 * 50
    t.send(harness.make_message("memory is fine"))
    t.wait_for_mail("alice@example.test", 1)


def test_queue_length_medium(transit_conf):
    t = transit_conf
    add_device_connector(t)
    dead = conftest.free_ports(1)[0]         # nothing listens: the message stays queued
    add_remote(t, dead)
    t.cfg["queue"] = {"retry": ["1h"], "expire": "1d"}
    set_bp(t, queue_medium=1, queue_high=1000)
    t.start()
    t.send(harness.make_message("before the queue grows"))   # delivered, leaves the queue
    t.wait_for_mail("alice@example.test", 1)
    sp.relay_send(t, "printer@example.test", ["x@remote.test"], sp.message("stays queued"))
    sp.wait_log(t, LEVEL_RE % ("medium", "normal", "queue-length") + r"messages=1 threshold=1\b")
    anonymous_refused(t)


def test_disabled_warns_at_every_start(transit_conf):
    t = transit_conf
    free = free_bytes(t.spool)
    set_bp(t, enabled=False, disk_free_medium=kib(free * 4 + (2 << 30)),
           disk_free_high=kib(free * 2 + (1 << 30)))
    t.start()
    t.stop()
    t.start()
    warn = r"warning: back-pressure is disabled \(back-pressure \{ enabled = false \}\)"
    sp.wait_log(t, warn, count=2)
    t.send(harness.make_message("no back pressure"))
    t.wait_for_mail("alice@example.test", 1)
    assert "back-pressure level=" not in t.log_text()


@pytest.mark.parametrize("body,error", [
    ({"disk-free-medium": "1G", "disk-free-high": "1G"},
     r"back-pressure: disk-free-high \(\"1G\"\) must be less than disk-free-medium"),
    ({"disk-free-high": "3G"},
     r"back-pressure: disk-free-high \(\"3G\"\) must be less than disk-free-medium \(\"2G\"\)"),
    ({"queue-medium": 500, "queue-high": 100},
     r"back-pressure: queue-high \(100\) must be greater than queue-medium \(500\)"),
    ({"memory-high": "75 percent"},
     r"memory-high: \"75 percent\" is neither a percentage"),
    ({"memory-high": "0%"}, r"memory-high: \"0%\" is neither"),
    ({"disk-free-medium": "lots"}, r"disk-free-medium: \"lots\" is not a size"),
    ({"queue-high": 0}, r"queue-high: 0 is out of range"),
])
def test_configuration_errors(transit_conf, body, error):
    t = transit_conf
    t.cfg["back-pressure"] = body
    t.write_config()
    p = t.run_daemon("-n", "-c", t.conf_path)
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0, err
    assert re.search(r"transit\.conf:\d+: " + error, err), err


def test_defaults_in_effective_configuration(transit_conf):
    t = transit_conf
    del t.cfg["back-pressure"]               # the test default lowers the disk thresholds
    t.write_config()
    p = t.run_daemon("-n", "-c", t.conf_path)
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr
    for line in ("enabled=true", 'disk-free-medium="2G"', 'disk-free-high="500M"',
                 'memory-high="75%"', "queue-medium=100000", "queue-high=500000"):
        assert line in out, out


# -- a small tmpfs spool filled until the level changes ---------------------------------

@pytest.mark.timeout(120)
def test_full_tmpfs_spool(transit_conf):
    t = transit_conf
    add_device_connector(t)
    peer_port = conftest.free_ports(1)[0]
    add_remote(t, peer_port)
    t.cfg["queue"] = {"retry": ["1s"], "expire": "1h"}
    set_bp(t, disk_free_medium="12M", disk_free_high="8M")
    with tmpfs_spool(t, "32m"):
        t.start()
        # queued before the disk fills: the smart host is not there yet
        held = sp.relay_send(t, "bob@example.test", ["x@remote.test"],
                             sp.message("held", sender="bob@example.test"),
                             rcpt_params=" NOTIFY=SUCCESS")
        assert os.path.exists(os.path.join(t.spool, "queue", held))
        assert "back-pressure level=" not in t.log_text()

        filler = os.path.join(t.spool, "filler")
        fill(filler, 6 << 20)
        sp.wait_log(t, LEVEL_RE % ("high", "normal", "disk-free") +
                    r"free=\d+ threshold=%d\b" % (8 << 20))
        anonymous_refused(t)                 # not 451 4.3.0 queue file write error
        device_refused(t)

        # delivery of the queue goes on at High
        peer = PyPeer("127.0.0.1", peer_port)
        try:
            harness.wait_until(lambda: len(peer.messages) >= 1, 30,
                               what="the held message at the smart host")
            sp.wait_log(t, r"%s removed" % held)
        finally:
            peer.stop()
        assert peer.messages[0][0] == ["x@remote.test"]
        # and the DSN it generates is queued and delivered, still at High
        sp.wait_log(t, r"%s dsn kind=success dsn-id=\S+ to=<bob@example\.test>" % held)
        (d,) = t.wait_for_mail("bob@example.test", 1)
        assert "multipart/report" in (d.first("Content-Type") or ""), d
        assert "back-pressure level=normal" not in t.log_text()

        # free the space: down to Normal (through the relief threshold), mail accepted
        os.unlink(filler)
        sp.wait_log(t, LEVEL_RE % ("normal", "high", "disk-free") +
                    r"free=\d+ threshold=%d\b" % ((8 << 20) + (8 << 20) // 10))
        t.send(harness.make_message("after the disk was freed"))
        t.wait_for_mail("alice@example.test", 1)
        assert "451 4.3.0" not in t.log_text()


@pytest.mark.timeout(120)
def test_full_spool_keeps_the_bounce(transit_conf):
    """A bounce that cannot be written on a full spool is written later:
    the original stays queued meanwhile and is removed only once the DSN is
    queued. Bigger than the queue writer's 64 KiB buffer (RET=FULL of a
    200 KB message), so the write fails at once, not at commit."""
    t = transit_conf
    add_device_connector(t)
    dead = conftest.free_ports(1)[0]
    add_remote(t, dead)
    t.cfg["queue"] = {"retry": ["1s"], "expire": "6s"}
    set_bp(t, disk_free_medium="12M", disk_free_high="8M")
    with tmpfs_spool(t, "32m"):
        t.start()
        qid = sp.relay_send(t, "bob@example.test", ["x@remote.test"],
                            sp.message("bounce me", size=200000, sender="bob@example.test"),
                            mail_params=" RET=FULL")
        filler = os.path.join(t.spool, "filler")
        fill(filler, 0)
        # the first try to write the bounce on the full disk
        sp.wait_log(t, r"%s DSN (write failed|not sent)" % qid, timeout=30)
        time.sleep(2)                        # a few more tries on the full disk
        assert os.path.exists(os.path.join(t.spool, "queue", qid))
        assert not re.search(r"%s (removed|dsn kind=)" % qid, t.log_text())
        assert re.search(r"%s DSN write failed: No space left on device; the recipients stay "
                         r"queued" % qid, t.log_text())

        os.unlink(filler)
        sp.wait_log(t, r"%s dsn kind=failure dsn-id=\S+ to=<bob@example\.test>" % qid,
                    timeout=30)
        sp.wait_log(t, r"%s removed" % qid)
        (d,) = t.wait_for_mail("bob@example.test", 1, timeout=20)
        assert "multipart/report" in (d.first("Content-Type") or ""), d
        assert not os.path.exists(os.path.join(t.spool, "queue", qid))


@pytest.mark.timeout(120)
def test_full_spool_success_notice_does_not_deliver_twice(transit_conf):
    """A success notice (NOTIFY=SUCCESS) that cannot be written on a full
    spool is dropped, loudly; the delivery is recorded, never repeated to
    report it. The smart host holds its final reply for 3 s, long enough to
    fill the spool after the message went out and before the DSN."""
    t = transit_conf
    add_device_connector(t)
    peer_port = conftest.free_ports(1)[0]
    add_remote(t, peer_port)
    t.cfg["queue"] = {"retry": ["1s"], "expire": "1h"}
    set_bp(t, disk_free_medium="12M", disk_free_high="8M")
    with tmpfs_spool(t, "32m"):
        peer = PyPeer("127.0.0.1", peer_port, data_delay=3.0)
        try:
            t.start()
            qid = sp.relay_send(t, "bob@example.test", ["x@remote.test"],
                                sp.message("notify me", size=200000, sender="bob@example.test"),
                                mail_params=" RET=FULL", rcpt_params=" NOTIFY=SUCCESS")
            sp.wait_log(t, r"smtp connected connector=remote")
            fill(os.path.join(t.spool, "filler"), 0)
            sp.wait_log(t, r"%s DSN (write|commit) failed" % qid, timeout=30)
            sends = r"%s send to=<x@remote\.test>" % qid
            # the end: removed, or (the bug) a second delivery
            harness.wait_until(lambda: re.search(r"%s removed" % qid, t.log_text()) or
                               len(re.findall(sends, t.log_text())) > 1, 30,
                               what="%s removed or sent again" % qid)
            assert len(re.findall(sends, t.log_text())) == 1, t.log_tail(20)
            assert len(peer.messages) == 1, len(peer.messages)
            assert re.search(r"%s success DSN not sent; recording the deliveries" % qid,
                             t.log_text())
        finally:
            peer.stop()
