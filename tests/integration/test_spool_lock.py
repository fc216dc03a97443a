"""
test_spool_lock.py - one transitd per spool (issue 6 item 10).

A second transitd started on a spool that a running one uses must refuse
to start (non-zero exit, "spool X is in use by another transitd (pid N)"),
and must not touch the first one's queue: before the lock, the second
daemon recovered the first one's deferred message, delivered it and
removed its queue file. `transitd -n` does not take the lock.
"""

import copy
import os
import shutil
import subprocess
import time

import conftest
import harness
from harness import make_message


def second_config(transit):
    """The same configuration (same spool) on other ports."""
    cfg = copy.deepcopy(transit.cfg)
    p1, p2 = conftest.free_ports(2)
    cfg["receive-connector"]["internet"]["bindings"] = ["%s:%d" % (conftest.HOST, p1)]
    cfg["receive-connector"]["submissions"]["bindings"] = ["%s:%d" % (conftest.HOST, p2)]
    path = os.path.join(transit.dir, "second.conf")
    with open(path, "w") as f:
        f.write(conftest.render_config(cfg))
    return path


def test_second_daemon_on_same_spool_refuses(transit):
    # a deferred message in the first daemon's queue (mailbox broken)
    domain_dir = os.path.join(transit.mail, "example.test")
    shutil.rmtree(domain_dir, ignore_errors=True)
    with open(domain_dir, "w") as f:
        f.write("not a directory\n")
    qid = transit.send(make_message("kept", body=b"stays in the first daemon's queue\r\n"))
    harness.wait_until(lambda: "%s deferred" % qid in transit.log_text() or
                       ("%s " % qid in transit.log_text() and "4.3.0" in transit.log_text()),
                       10, what="the first attempt to fail")
    os.unlink(domain_dir)                       # deliverable now, for whoever tries

    conf2 = second_config(transit)
    p = subprocess.Popen([conftest.TRANSITD, "-c", conf2], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=transit.dir)
    try:
        out, _ = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.terminate()
        out, _ = p.communicate(timeout=15)
        raise AssertionError("a second transitd started on a spool in use:\n%s"
                             % out.decode(errors="replace")[-3000:])
    text = out.decode(errors="replace")
    assert p.returncode != 0, text
    want = "spool %s is in use by another transitd (pid %d)" % (transit.spool, transit.proc.pid)
    assert want in text, "expected %r in:\n%s" % (want, text)

    # the first daemon's queue is intact and it still serves
    time.sleep(1.0)
    assert transit.all_delivered() == [], "the second daemon delivered the first one's mail"
    entries = transit.queue_json()
    assert any(qid in str(e) for e in entries), entries
    assert transit.alive()
    transit.send(make_message("still served"))

    # a check of the configuration does not need the lock
    r = transit.run_daemon("-c", conf2, "-n")
    assert r.returncode == 0, r.stderr.decode(errors="replace")


def test_lock_released_at_exit(transit):
    """The lock goes with the process: a restart (and kill -9) finds the
    spool free, whatever the lock file holds."""
    transit.kill9()
    transit.start()
    transit.restart()
    with open(os.path.join(transit.spool, "transitd.lock")) as f:
        assert f.read().strip() == str(transit.proc.pid)
