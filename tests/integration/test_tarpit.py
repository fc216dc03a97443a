"""
test_tarpit.py - the recipient tarpit (issue 7 "Abuse control").

Covers: each refused recipient (550 5.1.1 unknown, 554/550 relay denied)
from an anonymous session waits the connector's `tarpit` before its reply,
so a harvest of N addresses takes at least N x tarpit; at
`max-refused-recipients` refusals the session is closed with 421 4.7.0;
another session is served without delay meanwhile (the delay is a timer,
not a sleep on the loop); an authenticated session is never delayed nor cut
off; one log line per delay (reason=tarpit); tarpit = "0s" turns the delay
off but keeps the limit; a bad value is refused at -n.

Peers: raw SMTP on 127.0.0.1 (harness.RawSMTP), plain AUTH over loopback.
"""

import base64
import re
import threading
import time

import harness
from conftest import PASSWORD, free_ports, HOST

TARPIT = 2   # seconds, configured; short so the tests stay quick


def plain(user, password):
    return base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()


def tarpit_conf(t, tarpit="%ds" % TARPIT, limit=5):
    t.connector("internet")["tarpit"] = tarpit
    t.connector("internet")["max-refused-recipients"] = limit
    t.write_config()


def test_harvest_is_slowed_and_cut_off(transit_conf):
    t = transit_conf
    tarpit_conf(t, limit=4)
    t.start()
    with t.raw() as c:
        c.ehlo()
        c.expect("MAIL FROM:<harvester@spam.example>", 250)
        start = time.monotonic()
        for i in range(3):
            c.expect("RCPT TO:<nobody%d@example.test>" % i, 550, "5.1.1", timeout=TARPIT * 5)
        took = time.monotonic() - start
        assert took >= 3 * TARPIT - 0.2, took
        # the 4th refusal reaches the limit: its 550, then 421 and the close
        c.send(b"RCPT TO:<nobody3@example.test>\r\n")
        harness.check_reply(c.read_reply(timeout=TARPIT * 5), 550, "5.1.1")
        harness.check_reply(c.read_reply(timeout=TARPIT * 5), 421, "4.7.0")
        c.wait_closed()
    log = t.log_text()
    assert len(re.findall(r"smtp delay cmd=RCPT reason=tarpit delay=%ds" % TARPIT, log)) == 3, log
    assert "reason=too-many-refused-recipients" in log


def test_relay_denied_is_tarpitted(transit_conf):
    t = transit_conf
    tarpit_conf(t)
    t.start()
    with t.raw() as c:
        c.ehlo()
        c.expect("MAIL FROM:<x@spam.example>", 250)
        start = time.monotonic()
        r = c.cmd("RCPT TO:<victim@elsewhere.example>", timeout=TARPIT * 5)
        assert r.code in (550, 554), r
        assert time.monotonic() - start >= TARPIT - 0.2


def test_other_sessions_are_not_slowed(transit_conf):
    t = transit_conf
    tarpit_conf(t, limit=50)
    t.start()
    done = threading.Event()
    harvest = {}

    def harvester():
        with t.raw() as c:
            c.ehlo()
            c.expect("MAIL FROM:<harvester@spam.example>", 250)
            start = time.monotonic()
            for i in range(3):
                c.expect("RCPT TO:<h%d@example.test>" % i, 550, "5.1.1", timeout=TARPIT * 5)
            harvest["took"] = time.monotonic() - start
        done.set()

    th = threading.Thread(target=harvester)
    th.start()
    try:
        time.sleep(0.3)
        slowest = 0.0
        n = 0
        while not done.is_set() and n < 20:   # during the harvest's delays
            with t.raw() as c:
                for line, code in (("EHLO ok.example", 250), ("MAIL FROM:<a@ok.example>", 250),
                                   ("RCPT TO:<alice@example.test>", 250), ("RSET", 250)):
                    s = time.monotonic()
                    c.expect(line, code)
                    slowest = max(slowest, time.monotonic() - s)
            n += 1
    finally:
        th.join(TARPIT * 10)
    assert harvest["took"] >= 3 * TARPIT - 0.2, harvest
    assert n >= 2, n
    # served at once, never waiting a tarpit period
    assert slowest < TARPIT / 2, slowest


def test_authenticated_session_is_not_tarpitted(transit_conf):
    t = transit_conf
    port = free_ports(1)[0]
    t.cfg["receive-connector"]["client"] = {
        "bindings": ["%s:%d" % (HOST, port)], "permissions": ["authenticated"],
        "tls": "none", "auth": ["plain"], "auth-cleartext": "loopback",
        "tarpit": "%ds" % TARPIT, "max-refused-recipients": 3}
    t.write_config()
    t.start()
    with t.raw(port=port) as c:
        c.ehlo()
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 235, "2.7.0")
        c.expect("MAIL FROM:<alice@example.test>", 250)
        start = time.monotonic()
        for i in range(6):   # twice the limit: not cut off either
            c.expect("RCPT TO:<nobody%d@example.test>" % i, 550, "5.1.1")
        assert time.monotonic() - start < TARPIT, time.monotonic() - start
        c.expect("RCPT TO:<bob@example.test>", 250)
    assert "reason=tarpit" not in t.log_text()


def test_zero_disables_delay_but_keeps_limit(transit_conf):
    t = transit_conf
    tarpit_conf(t, tarpit="0s", limit=3)
    t.start()
    with t.raw() as c:
        c.ehlo()
        c.expect("MAIL FROM:<h@spam.example>", 250)
        start = time.monotonic()
        c.expect("RCPT TO:<n0@example.test>", 550, "5.1.1")
        c.expect("RCPT TO:<n1@example.test>", 550, "5.1.1")
        c.send(b"RCPT TO:<n2@example.test>\r\n")
        harness.check_reply(c.read_reply(), 550, "5.1.1")
        harness.check_reply(c.read_reply(), 421, "4.7.0")
        c.wait_closed()
        assert time.monotonic() - start < 1.5
    assert "reason=tarpit" not in t.log_text()


def test_bad_values_refused_at_n(transit_conf):
    t = transit_conf
    for key, value in (("tarpit", "fast"), ("max-refused-recipients", 0)):
        t.connector("internet")[key] = value
        t.write_config()
        p = t.run_daemon("-c", t.conf_path, "-n")
        assert p.returncode != 0, (key, value)
        assert key in p.stderr.decode(), p.stderr
        t.connector("internet")[key] = {"tarpit": "1s", "max-refused-recipients": 5}[key]


def test_default_is_five_seconds(transit_conf):
    t = transit_conf
    t.connector("internet")["tarpit"] = None     # not written: the daemon's default
    t.write_config()
    t.start()
    with t.raw() as c:
        c.ehlo()
        c.expect("MAIL FROM:<h@spam.example>", 250)
        start = time.monotonic()
        c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1", timeout=30)
        assert time.monotonic() - start >= 4.8
    assert "reason=tarpit delay=5s" in t.log_text()
