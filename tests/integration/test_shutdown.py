"""
test_shutdown.py - SIGTERM under load is graceful and safe (issue 6 item 6).

Several smtplib clients send numbered messages in a loop while other
sessions sit in the middle of DATA or idle after EHLO; then transitd gets
SIGTERM. It must exit 0 within its bounds and without a sanitizer report
(the suite runs the ASan build; conftest fails the test on a report),
every session in a transaction or idle must read "421 4.3.2 ... Service
shutting down" (before the fix the 421 and the 250s of commits that
finished during the stop were queued after the loop had stopped, so never
sent; and the queue was freed while workers still removed files through
it), and after a restart every message whose client saw 250 is delivered
exactly once. A client that never reads cannot hold the stop beyond the
session grace (5 s); a second SIGTERM during the stop ends it at once, as
safely.
"""

import collections
import fcntl
import signal
import smtplib
import socket
import struct
import subprocess
import termios
import threading
import time

import pytest

import conftest
from harness import make_message

SENDERS = 4


class Load:
    """SENDERS threads, each sending "load T-N" messages on one smtplib
    connection (a new one after an error) until stopped."""

    def __init__(self, transit):
        self.transit = transit
        self.stop = threading.Event()
        self.acked = []                 # subjects whose client saw 250
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(t,), daemon=True)
                        for t in range(SENDERS)]

    def run(self, t):
        n = 0
        while not self.stop.is_set():
            try:
                with smtplib.SMTP(conftest.HOST, self.transit.port_smtp, timeout=10) as s:
                    s.ehlo("load%d.example.net" % t)
                    while not self.stop.is_set():
                        n += 1
                        subject = "load %d-%d" % (t, n)
                        body = ("x" * 70 + "\r\n") * (1 + n % 50)
                        s.sendmail("bob@example.test", ["alice@example.test"],
                                   make_message(subject, body=body))
                        with self.lock:
                            self.acked.append(subject)
            except (smtplib.SMTPException, OSError):
                time.sleep(0.05)

    def start(self):
        for th in self.threads:
            th.start()

    def finish(self):
        self.stop.set()
        for th in self.threads:
            th.join(15)


def open_mid_data(transit, n):
    out = []
    for i in range(n):
        c = transit.raw()
        c.ehlo()
        c.expect("MAIL FROM:<bob@example.test>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("DATA", 354)
        c.send(make_message("mid-data %d" % i)[:60])      # part of the content, no end
        out.append(c)
    return out


def open_idle(transit, n):
    out = []
    for _ in range(n):
        c = transit.raw()
        c.ehlo()
        out.append(c)
    return out


def open_hog(transit):
    """A client with a small receive buffer that pipelines 1 MiB of EHLO
    and never reads; returns once the server has stopped making progress
    with it (its replies are backed up in the server)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect((conftest.HOST, transit.port_smtp))
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 30
    while sent < 1024 * 1024 and time.monotonic() < deadline:
        try:
            sent += s.send(b"EHLO hog.example.net\r\n" * 2048)
        except BlockingIOError:
            time.sleep(0.05)
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = (queued(s, termios.FIONREAD), queued(s, termios.TIOCOUTQ))
        if now != last:
            last, since = now, time.monotonic()
        elif now[0] > 0 and time.monotonic() - since >= 1.0:
            break
        time.sleep(0.1)
    transit._clients.append(s)
    return s


def queued(sock, request):
    """Octets in a socket's receive (FIONREAD) or send (TIOCOUTQ) queue."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0\0\0\0"))[0]


def check_421(clients, what):
    for c in clients:
        r = c.read_reply(timeout=8)
        assert r.code == 421 and r.enh == "4.3.2" and "Service shutting down" in r.text, \
            "%s: %r" % (what, r)
        assert c.wait_closed(5), "%s: not closed after the 421" % what


def stop_and_check_delivery(transit, load, signals):
    """Send the signals, check the exit, restart, count the deliveries."""
    p = transit.proc
    t0 = time.monotonic()
    for i, sig in enumerate(signals):
        if i:
            time.sleep(0.3)
        p.send_signal(sig)
    try:
        rc = p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("transitd did not stop within 20 s of SIGTERM")
    took = time.monotonic() - t0
    load.finish()
    transit.proc = None
    assert rc == 0, "exit status %s after SIGTERM" % rc
    assert not transit.sanitizer_reports(), transit.log_tail(80)
    return took


def check_exactly_once(transit, acked):
    transit.start()
    want = len(acked)
    # the mid-DATA and idle sessions never committed anything
    transit.wait_for_mail("alice", want, timeout=60, settle=2.0)
    got = collections.Counter(d.subject for d in transit.all_delivered())
    dup = {s: k for s, k in got.items() if k > 1}
    assert not dup, "delivered more than once: %r" % dup
    missing = [s for s in acked if got[s] != 1]
    assert not missing, "acknowledged with 250 but not delivered: %r" % missing[:20]
    assert not any(s.startswith("mid-data") for s in got), "an aborted transaction was delivered"


@pytest.mark.timeout(150)
@pytest.mark.transit(internet={"max-connections-per-source": 100})
def test_sigterm_under_load(transit):
    load = Load(transit)
    load.start()
    time.sleep(1.5)
    mid = open_mid_data(transit, 3)
    idle = open_idle(transit, 2)
    tls_idle = transit.raw(tls=True)            # implicit TLS: the 421 comes over TLS
    tls_idle.ehlo()
    time.sleep(1.0)
    assert len(load.acked) > 0, "the load did not get going"
    took = stop_and_check_delivery(transit, load, [signal.SIGTERM])
    check_421(mid, "a session in the middle of DATA")
    check_421(idle, "an idle session")
    check_421([tls_idle], "an idle TLS session")
    assert took < 12, "graceful stop took %.1fs" % took
    log = transit.log_text()
    assert "smtp shutdown complete" in log
    assert "stopped without cleanup" not in log
    check_exactly_once(transit, list(load.acked))


@pytest.mark.timeout(150)
@pytest.mark.transit(internet={"max-connections-per-source": 100})
def test_second_sigterm_stops_at_once(transit):
    load = Load(transit)
    load.start()
    time.sleep(1.5)
    mid = open_mid_data(transit, 2)
    # a client that never reads while its EHLO replies pile up: its 421
    # cannot be flushed, so the graceful stop would wait for the grace
    hog = open_hog(transit)
    took = stop_and_check_delivery(transit, load, [signal.SIGTERM, signal.SIGTERM])
    check_421(mid, "a session in the middle of DATA")
    assert took < 4, "a second SIGTERM should stop transitd at once (took %.1fs)" % took
    assert "received again: stopping now" in transit.log_text()
    check_exactly_once(transit, list(load.acked))


def test_stop_is_bounded(transit):
    """A client that never reads cannot hold the stop: its session is
    dropped after the 5 s grace and transitd exits 0, cleanly."""
    open_hog(transit)
    idle = open_idle(transit, 1)
    t0 = time.monotonic()
    transit.proc.send_signal(signal.SIGTERM)
    check_421(idle, "an idle session next to the hog")
    try:
        rc = transit.proc.wait(20)
    except subprocess.TimeoutExpired:
        transit.proc.kill()
        raise AssertionError("transitd did not stop within 20 s")
    took = time.monotonic() - t0
    transit.proc = None
    assert rc == 0
    assert 4.0 <= took < 12, "stop took %.1fs (session grace 5 s)" % took
    log = transit.log_text()
    assert "smtp disconnect reason=shutdown-timeout" in log
    assert "smtp shutdown complete" in log and "stopped without cleanup" not in log
