"""
test_ptr_timeout.py - the require-ptr check has its own timeout (issue 7):
against a nameserver that never answers, RCPT gets "450 4.7.25" after
`ptr-timeout`, not after libunbound's retries or the command timeout, and
the log says reason=timeout (unbound itself gives up after ~2.3 s per lookup
with servers given, net/dns.c; a PTR check is two lookups). A bad value is refused by transitd -n.

Peers: smtplib from 127.0.0.1; a UDP socket that swallows every query
(a black hole: no ICMP port-unreachable for unbound to act on).
"""

import re
import smtplib
import socket
import time

import conftest


def test_ptr_lookup_times_out_with_450(transit_conf):
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))          # bound, never read: queries vanish
    try:
        t = transit_conf
        t.override("internet", {"require-ptr": True, "ptr-timeout": "1s",
                                "command-timeout": "5m"})
        t.override("config", {"dns": {"servers": ["127.0.0.1:%d" % hole.getsockname()[1]]}})
        t.write_config()
        t.start()
        t0 = time.monotonic()
        with smtplib.SMTP(conftest.HOST, t.port_smtp, timeout=60) as c:
            c.ehlo("client.example.test")
            c.mail("sender@example.org")
            code, msg = c.rcpt("alice@example.test")
            took = time.monotonic() - t0
            assert (code, msg.decode()) == \
                (450, "4.7.25 Client host rejected: cannot find your hostname"), (code, msg)
            assert 0.9 <= took < 6, took
            # postmaster stays reachable, at once now that the check is over
            assert c.rcpt("postmaster@example.test")[0] == 250
        log = t.log_text()
        assert re.search(r'fcrdns failed address=127\.0\.0\.1 reason="?timeout', log), log
        t.check_alive("after the late DNS answers")
    finally:
        hole.close()


def test_bad_ptr_timeout_refused_by_check(transit_conf):
    transit_conf.override("internet", {"ptr-timeout": "5m"})
    transit_conf.write_config()
    p = transit_conf.run_daemon("-c", transit_conf.conf_path, "-n")
    assert p.returncode != 0
    assert b'ptr-timeout: "5m" is not a duration from 1s to 60s' in p.stderr, p.stderr
