"""
test_queue_clock.py - the queue against wall-clock steps (issue 6 item 4) and
the DELAY notice across restarts (issue 6 item 11b).

A message's age is taken from its arrival (a wall-clock time in the queue
file) with signed arithmetic and a clamp, then counted on the monotonic clock
while transitd runs (util/clock.h, queue/sched.c). So:
  - the clock stepped back while transitd runs: nothing expires, no DSN;
  - transitd restarted with the clock two days back: the deferred messages
    are tried again at the next retry interval (a deferral note written
    before the step does not make them wait two days), nothing expires;
  - restarted with the clock stepped forward past queue.expire: every
    message expires (4.4.7) exactly once, one DSN each.

The clock is moved with libfaketime (Debian package faketime) preloaded into
transitd only, reading its offset from a file on every call
(FAKETIME_TIMESTAMP_FILE + FAKETIME_NO_CACHE), the monotonic clock left real
(FAKETIME_DONT_FAKE_MONOTONIC): that is what an NTP step does. Under ASan the
preload is allowed with verify_asan_link_order=0.

Peers: the private nsd of sendpeers.py; the next hop for example.net
(127.0.0.2:P) has no listener, so every attempt is deferred.
"""

import os
import re

import pytest

import harness
import sendpeers as sp
from sendpeers import dns  # noqa: F401  (the module's nameserver fixture)
from sendpeers import message, relay_send, wait_log

ALICE = "alice@example.test"
LIBFAKETIME = next((p for p in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
                                "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
                                "/usr/lib/faketime/libfaketimeMT.so.1") if os.path.exists(p)), None)


def fake_clock(t, offset):
    """Set transitd's wall-clock offset (libfaketime syntax: "+0", "-2d")."""
    path = os.path.join(t.dir, "faketime")
    with open(path + ".tmp", "w") as f:
        f.write(offset + "\n")
    os.replace(path + ".tmp", path)
    t.env = {
        "LD_PRELOAD": LIBFAKETIME,
        "FAKETIME_TIMESTAMP_FILE": path,
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":"),
    }


def start(transit_conf, dns, queue):
    sp.need(LIBFAKETIME, "libfaketime (Debian package faketime)")
    t = transit_conf
    sp.configure_sender(t, dns.port, {"internet": sp.dns_connector(t.port_smtp)}, queue=queue)
    fake_clock(t, "+0")
    t.start()
    return t


def since_last_start(t):
    text = t.log_text()
    return text[text.rfind("=== test harness: start"):]


def count_since_start(t, pattern):
    return len(re.findall(pattern, since_last_start(t), re.M))


def wait_since_start(t, pattern, count=1, timeout=20.0):
    return harness.wait_until(lambda: count_since_start(t, pattern) >= count, timeout,
                              what="%d x /%s/ since the last start\n%s" % (count, pattern,
                                                                          t.log_tail(30)))


def no_expiry_no_dsn(t, qids):
    text = t.log_text()
    for q in qids:
        assert not re.search(r"%s (fail|dsn) " % q, text), "\n".join(sp.log_lines(t, q))
    assert t.mail_files(ALICE) == [], "a DSN was sent to the sender"


@pytest.mark.timeout(90)
def test_clock_step_back_while_running_expires_nothing(transit_conf, dns):
    t = start(transit_conf, dns, {"retry": ["1s"], "expire": "1d"})
    qids = [relay_send(t, ALICE, ["x@example.net"], message("step back %d" % i)) for i in range(2)]
    for q in qids:
        wait_log(t, r"%s defer to=<x@example\.net>" % q)
    fake_clock(t, "-2d")
    for q in qids:
        # the retry timer is monotonic: the tries go on every second
        wait_log(t, r"%s defer to=<x@example\.net>" % q, count=4, timeout=30)
    no_expiry_no_dsn(t, qids)
    assert len(t.queue_json()) == 2


@pytest.mark.timeout(120)
def test_restart_with_clock_back_then_forward(transit_conf, dns):
    t = start(transit_conf, dns, {"retry": ["1s", "2s"], "expire": "1d"})
    qids = [relay_send(t, ALICE, ["x@example.net"], message("restart %d" % i)) for i in range(3)]
    for q in qids:
        wait_log(t, r"%s defer to=<x@example\.net>" % q, count=2)
    t.stop()

    # two days back: the deferral notes say "next try in two days"; the
    # wait is clamped to the longest retry interval, and nothing expires
    fake_clock(t, "-2d")
    t.start()
    for q in qids:
        wait_since_start(t, r"%s defer to=<x@example\.net>" % q, count=2)
    no_expiry_no_dsn(t, qids)
    t.stop()

    # two days forward, past queue.expire = 1d: each expires exactly once
    fake_clock(t, "+2d")
    t.start()
    for q in qids:
        wait_since_start(t, r"%s removed" % q)
    dsns = sp.wait_dsns(t, ALICE, 3)
    t.stop()
    text = t.log_text()
    for q in qids:
        fails = re.findall(r"%s fail to=<x@example\.net>[^\n]*" % q, text)
        assert len(fails) == 1, fails
        assert "status=4.4.7" in fails[0], fails[0]
        assert len(re.findall(r"%s dsn kind=failure" % q, text)) == 1
    assert len(t.mail_files(ALICE)) == 3, [d.subject for d in dsns]


@pytest.mark.timeout(120)
def test_delay_notice_once_across_restarts(transit_conf, dns):
    """delay-notice = 1s: one DELAY DSN; the notice is recorded in the queue
    file (state byte N), so neither a restart nor a kill -9 sends it again
    (issue 6 item 11b)."""
    t = transit_conf
    sp.configure_sender(t, dns.port, {"internet": sp.dns_connector(t.port_smtp)},
                        queue={"retry": ["1s"], "expire": "1h", "delay-notice": "1s"})
    t.start()
    qid = relay_send(t, ALICE, ["x@example.net"], message("delayed once"))
    wait_log(t, r"%s dsn kind=delay " % qid, timeout=20)
    sp.wait_dsns(t, ALICE, 1)
    for how in ("restart", "kill9"):
        if how == "restart":
            t.stop()
        else:
            t.kill9()
        t.start()
        wait_since_start(t, r"%s defer to=<x@example\.net>" % qid, count=3)
    t.stop()
    assert len(re.findall(r"%s dsn kind=delay" % qid, t.log_text())) == 1, \
        "\n".join(sp.log_lines(t, qid))
    assert len(t.mail_files(ALICE)) == 1, "more than one delay notice"


@pytest.mark.timeout(180)
def test_sigterm_while_bounces_are_built_on_workers(transit_conf, dns):
    """DSNs are built on the worker pool (issue 6 item 11c): SIGTERM while
    RET=FULL bounces of 1 MiB messages are being built and committed leaves
    no sanitizer report (conftest checks the log), and after the restart
    the sender has exactly one bounce per message. Where the SIGTERM falls
    is left to chance: every place must be safe."""
    t = transit_conf
    sp.configure_sender(t, dns.port, {"internet": sp.dns_connector(t.port_smtp)},
                        queue={"retry": ["1s"], "expire": "1h", "delivery-threads": 1})
    t.start()
    n = 6
    qids = [relay_send(t, ALICE, ["x@nullmx.test"], message("big %d" % i, size=1 << 20),
                       mail_params=" RET=FULL") for i in range(n)]
    t.stop()
    t.start()
    for q in qids:
        wait_log(t, r"%s removed" % q, timeout=60)
    sp.wait_dsns(t, ALICE, n, timeout=30)
    t.stop()
    text = t.log_text()
    for q in qids:
        assert len(re.findall(r"%s dsn kind=failure" % q, text)) == 1, "\n".join(sp.log_lines(t, q))
    assert len(t.mail_files(ALICE)) == n
