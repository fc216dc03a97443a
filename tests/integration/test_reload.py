"""
test_reload.py - configuration reload without restart (issue 8, "Reload,
stop, status"): `transitctl reload` and SIGHUP.

What is checked, against the real daemon:
  - a reload in the middle of a client's DATA: the session finishes on the
    generation it started with (its size limit), the message is accepted and
    delivered; a new session sees the new banner and the new limit;
  - a refused file: transitctl exits 1 with file:line, the daemon keeps
    serving on the old generation (and reload.status says why); the same
    for a file that parses but cannot be applied (a missing auth-secret);
  - a reload that adds an accepted domain, a user's domain and a send
    connector takes effect for the next message (delivered to smtp-sink);
  - SIGHUP does the same as transitctl reload;
  - 20 reloads while messages are sent: every message delivered, and after
    the load no older generation is left in memory (the daemon logs the
    count; the ASan build's teardown checks the rest).
"""

import contextlib
import json
import os
import re
import signal
import socket
import threading
import time

import pytest

import conftest
import harness
import sendpeers as sp

ALICE = "alice@example.test"
BOB = "bob@example.test"


def reload_ctl(t, timeout=60):
    return t.ctl("reload", timeout=timeout)


def status(t):
    with open(os.path.join(t.spool, "reload.status")) as f:
        return json.load(f)


def wait_status(t, attempt, timeout=30.0):
    """Wait until reload.status reports an attempt >= attempt."""
    harness.wait_until(lambda: _attempt(t) >= attempt, timeout,
                       what="reload attempt %d recorded" % attempt)
    return status(t)


def _attempt(t):
    with contextlib.suppress(OSError, ValueError):
        return status(t)["attempt"]
    return -1


def padded(subject, size):
    return sp.message(subject, size=size, sender=BOB, to=ALICE)


@pytest.mark.timeout(120)
@pytest.mark.transit(internet={"max-message-size": "40K", "banner": "old.example.test ESMTP"})
def test_reload_during_data_finishes_on_old_generation(transit):
    t = transit
    msg = padded("reload during data", 30 * 1024)   # under 40K, over the new 20K
    half = len(msg) // 2
    c = t.raw()
    assert "old.example.test" in c.greeting_reply.text
    ehlo = c.ehlo()
    assert int(ehlo.keyword_args("SIZE")[0]) >= 40000, ehlo.lines
    harness.check_reply(c.cmd("MAIL FROM:<%s>" % BOB), 250, "2.1.0")
    harness.check_reply(c.cmd("RCPT TO:<%s>" % ALICE), 250, "2.1.5")
    harness.check_reply(c.cmd("DATA"), 354)
    stuffed = harness.dot_stuff(msg)
    c.send(stuffed[:half])

    t.connector()["max-message-size"] = "20K"
    t.connector()["banner"] = "new.example.test ESMTP"
    t.write_config()
    p = reload_ctl(t)
    assert p.returncode == 0, p.stderr
    assert b"generation 2" in p.stdout, p.stdout

    # the session in progress keeps its generation: 30K under its 40K
    c.send(stuffed[half:] + b".\r\n")
    r = c.read_reply()
    harness.check_reply(r, 250, "2.0.0", what="end of DATA after the reload")
    c.cmd("QUIT")
    got = t.wait_for_mail(ALICE, 1)
    assert any(d.subject == "reload during data" for d in got)

    # a new session: the new banner and the new limit
    n = t.raw()
    assert "new.example.test" in n.greeting_reply.text, n.greeting_reply.text
    ehlo = n.ehlo()
    assert int(ehlo.keyword_args("SIZE")[0]) <= 20480, ehlo.lines
    harness.check_reply(n.cmd("MAIL FROM:<%s>" % BOB), 250, "2.1.0")
    harness.check_reply(n.cmd("RCPT TO:<%s>" % ALICE), 250, "2.1.5")
    harness.check_reply(n.cmd("DATA"), 354)
    r = n.send_data(padded("too big now", 30 * 1024), expect_code=552)
    assert r.code == 552, r
    assert re.search(r"reload generation=2 applied", t.log_text())


@pytest.mark.timeout(120)
def test_bad_file_refused_old_config_stays(transit):
    t = transit
    good = open(t.conf_path).read()
    # a syntax error on a known line
    lines = good.splitlines()
    lines.insert(3, "server { fqdn = }")
    with open(t.conf_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = reload_ctl(t)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert re.search(r"transit\.conf:\d+:", p.stderr.decode()), p.stderr

    # the same file through SIGHUP: the daemon refuses it with file:line
    before = _attempt(t)
    os.kill(t.proc.pid, signal.SIGHUP)
    st = wait_status(t, before + 1)
    assert st["result"] == "error" and st["generation"] == 1, st
    assert re.search(r"transit\.conf:\d+:", st["message"]), st
    assert re.search(r"reload refused, generation=1 stays: .*transit\.conf:\d+:", t.log_text())

    # an open relay is refused by the same checks as transitd -n
    t.cfg["receive-connector"]["internet"]["permissions"] = ["relay"]
    t.write_config()
    before = _attempt(t)
    os.kill(t.proc.pid, signal.SIGHUP)
    st = wait_status(t, before + 1)
    assert st["result"] == "error" and "relay" in st["message"], st
    assert re.search(r"transit\.conf:\d+:", st["message"]), st

    # parses, but cannot be applied: an auth-secret that does not exist
    t.cfg["receive-connector"]["internet"]["permissions"] = ["anonymous"]
    t.cfg["send-connector"] = {"partner": sp.smarthost_connector(
        ["partner.test"], ["[127.0.0.2]:2"], **{"auth-secret": os.path.join(t.dir, "nosuch")})}
    t.write_config()
    p = reload_ctl(t)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert b"auth-secret" in p.stderr and b"No such file" in p.stderr, p.stderr

    # still serving, on generation 1
    t.send(harness.make_message("still served"))
    t.wait_for_mail(ALICE, 1)
    assert status(t)["generation"] == 1
    with open(t.conf_path, "w") as f:
        f.write(good)
    p = reload_ctl(t)
    assert p.returncode == 0, p.stderr
    assert status(t)["generation"] == 2


@pytest.mark.timeout(120)
def test_reload_adds_domain_and_send_connector(transit_conf):
    t = transit_conf
    port = conftest.free_ports(1)[0]
    sink = sp.Sink(t.dir, "127.0.0.2", port)
    sink.start()
    try:
        t.start()
        c = t.raw()
        c.ehlo()
        harness.check_reply(c.cmd("MAIL FROM:<%s>" % BOB), 250, "2.1.0")
        r = c.cmd("RCPT TO:<x@partner.test>")
        assert r.code == 550, r
        r = c.cmd("RCPT TO:<carol@new.test>")
        assert r.code == 550, r
        c.cmd("QUIT")

        t.add_user("carol@new.test")
        t.cfg["accepted-domain"]["new.test"] = {"type": "authoritative"}
        t.cfg["accepted-domain"]["partner.test"] = {"type": "internal-relay"}
        t.cfg["send-connector"] = {"partner": sp.smarthost_connector(
            ["partner.test"], ["[127.0.0.2]:%d" % port])}
        t.write_config()
        p = reload_ctl(t)
        assert p.returncode == 0, p.stderr

        t.send(harness.make_message("to partner", to="x@partner.test"), rcpts=["x@partner.test"])
        time.sleep(1.2)  # the passwd-file is re-read at most once a second (dir/passwd.c)
        t.send(harness.make_message("to carol", to="carol@new.test"), rcpts=["carol@new.test"])
        got = t.wait_for_mail("carol@new.test", 1)
        assert got[0].subject == "to carol"
        harness.wait_until(lambda: sink.counters()["mesg"] >= 1, 20, what="sink got the message")
        assert re.search(r"connector=partner", t.log_text())
    finally:
        sink.stop()


@pytest.mark.timeout(120)
def test_sighup_reloads(transit):
    t = transit
    c = t.raw()
    c.ehlo()
    harness.check_reply(c.cmd("MAIL FROM:<%s>" % BOB), 250, "2.1.0")
    assert c.cmd("RCPT TO:<dave@later.test>").code == 550
    c.cmd("QUIT")
    t.add_user("dave@later.test")
    t.cfg["accepted-domain"]["later.test"] = {"type": "authoritative"}
    t.connector()["banner"] = "hup.example.test ESMTP"
    t.write_config()
    before = _attempt(t)
    os.kill(t.proc.pid, signal.SIGHUP)
    st = wait_status(t, before + 1)
    assert st["result"] == "ok" and st["generation"] == 2, st
    n = t.raw()
    assert "hup.example.test" in n.greeting_reply.text
    n.close()
    time.sleep(1.2)  # the passwd-file is re-read at most once a second (dir/passwd.c)
    t.send(harness.make_message("after hup", to="dave@later.test"), rcpts=["dave@later.test"])
    t.wait_for_mail("dave@later.test", 1)

    # a SIGHUP while a reload runs makes one more follow it (and one
    # after it simply runs): either way two attempts, two generations
    before = _attempt(t)
    os.kill(t.proc.pid, signal.SIGHUP)
    # the log file as it is now (log_text() would wait for it to settle,
    # by when the check is over)
    harness.wait_until(lambda: open(t.log_path, "rb").read().count(b"reloading ") >= 2, 10,
                       interval=0.005, what="reload started")
    os.kill(t.proc.pid, signal.SIGHUP)
    st = wait_status(t, before + 2)
    harness.wait_until(lambda: _attempt(t) == before + 2 and status(t)["generation"] == 4, 10,
                       what="two more generations")
    assert status(t)["result"] == "ok"


@pytest.mark.timeout(300)
def test_reload_loop_under_load_loses_nothing(transit):
    t = transit
    sent, errors = [], []
    stop = threading.Event()

    def sender():
        i = 0
        while not stop.is_set():
            subject = "load %d" % i
            try:
                t.send(harness.make_message(subject))
                sent.append(subject)
            except (AssertionError, OSError) as e:
                errors.append("%s: %r" % (subject, e))
            i += 1

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for th in threads:
        th.start()
    try:
        for i in range(20):
            t.connector()["banner"] = "gen%d.example.test ESMTP" % (i + 2)
            t.connector()["max-recipients"] = 50 + i
            t.write_config()
            p = reload_ctl(t)
            assert p.returncode == 0, p.stderr
            assert ("generation %d" % (i + 2)).encode() in p.stdout, p.stdout
    finally:
        stop.set()
        for th in threads:
            th.join(60)
    assert not errors, errors[:5]
    assert len(sent) >= 5, sent
    got = t.wait_for_mail(ALICE, len(sent), timeout=60)
    assert sorted(d.subject for d in got) == sorted(sent)
    # every older generation is freed once its sessions and deliveries
    # end: a reload with no session open finds none in use (a few tries:
    # the last session or Maildir batch may still be closing)
    for _ in range(10):
        p = reload_ctl(t)
        assert p.returncode == 0, p.stderr
        lines = re.findall(r"reload generation=(\d+) applied.*older generations still in use: "
                           r"(\d+)", t.log_text())
        if lines[-1][1] == "0":
            break
        time.sleep(0.5)
    assert lines[-1][1] == "0", lines[-3:]
    assert int(lines[-1][0]) >= 22, lines[-3:]


def _connects(port):
    with contextlib.suppress(OSError):
        socket.create_connection((conftest.HOST, port), timeout=2).close()
        return True
    return False


@pytest.mark.timeout(120)
def test_reload_bindings_and_restart_only_settings(transit):
    t = transit
    extra = conftest.free_ports(1)[0]
    t.cfg["receive-connector"]["extra"] = {
        "bindings": ["%s:%d" % (conftest.HOST, extra)],
        "banner": "extra.example.test ESMTP",
        "permissions": ["anonymous"],
    }
    t.cfg["server"]["node"] = "othernode"
    t.write_config()
    p = reload_ctl(t)
    assert p.returncode == 0, p.stderr
    # the new connector listens on its new binding, with its own banner
    c = t.raw(port=extra)
    assert "extra.example.test" in c.greeting_reply.text
    c.close()
    log = t.log_text()
    assert "reload: server.node changed: needs a restart" in log
    assert re.search(r"listening address=127\.0\.0\.1:%d" % extra, log)
    # mail still gets queue ids of the running node (restart-only)
    qid = t.send(harness.make_message("node stays"))
    t.wait_for_mail(ALICE, 1)
    assert re.search(r"%s receive .* connector=internet" % qid, t.log_text())

    del t.cfg["receive-connector"]["extra"]
    t.write_config()
    p = reload_ctl(t)
    assert p.returncode == 0, p.stderr
    harness.wait_until(lambda: not _connects(extra), 10, what="binding %d closed" % extra)
    assert "reload: not listening any more address=127.0.0.1:%d" % extra in t.log_text()
    # the bindings that stay never stopped accepting
    t.send(harness.make_message("still here"))
    t.wait_for_mail(ALICE, 2)


@pytest.mark.timeout(120)
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
@pytest.mark.transit(server={"user": "nobody"})
def test_reload_after_privilege_drop(transit_conf):
    """As server.user, a reload keeps the self-signed certificate made at
    start (its key is root's), and a new binding on a port below 1024 is
    logged as needing a restart while the rest applies."""
    import pwd
    t = transit_conf
    nobody = pwd.getpwnam("nobody")
    os.chmod(t.dir, 0o755)
    os.chown(t.mail, nobody.pw_uid, nobody.pw_gid)
    t.start()
    t.connector()["banner"] = "dropped.example.test ESMTP"
    t.connector()["bindings"] = t.connector()["bindings"] + ["%s:999" % conftest.HOST]
    t.write_config()
    p = reload_ctl(t)
    assert p.returncode == 0, p.stderr
    log = t.log_text()
    assert re.search(r"new binding 127\.0\.0\.1:999: bind .*Permission denied: needs a restart",
                     log), log[-2000:]
    c = t.raw()
    assert "dropped.example.test" in c.greeting_reply.text
    c.close()
    # STARTTLS still works on the kept certificate
    c = t.raw()
    c.ehlo()
    c.starttls()
    c.ehlo()
    c.close()


def test_reload_goes_through_the_control_socket(transit):
    """transitctl reload asks on the control socket: the daemon logs the
    request, and with the daemon gone the command says so and fails."""
    t = transit
    p = reload_ctl(t)
    assert p.returncode == 0, p.stderr
    assert b"transitd reloaded: configuration generation 2" in p.stdout, p.stdout
    assert "reload asked on the control socket" in t.log_text(settle=0.3)
    p = t.ctl("reload", "--json", timeout=60)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout.decode())
    assert r["ok"] is True and r["generation"] == 3 and r["pid"] == t.proc.pid, r
    t.stop()
    p = reload_ctl(t, timeout=20)
    assert p.returncode == 1
    assert b"transitd is not running (control socket " in p.stderr, p.stderr
