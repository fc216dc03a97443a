"""
test_dnsbl.py - DNS block lists at RCPT (issue 7, "Abuse control": DNSBL).

A private nsd (sendpeers.start_dns) serves the list zen.example.test, which
lists 127.0.0.2 (2.0.0.127.zen.example.test A 127.0.0.2, RFC 5782) and not
127.0.0.1. Clients connect with smtplib from those source addresses to the
connector on 127.0.0.1. A listed client gets 554 5.7.1 naming the list at
RCPT, while postmaster@ and abuse@ still pass; an unlisted client, and a
listed one inside dnsbl-allow, are accepted. A list whose nameserver does
not answer (transitd pointed at a closed port) delays RCPT by at most
dnsbl-timeout, then the mail is accepted and the timeout logged.
"""

import re
import shutil
import smtplib
import tempfile
import time

import pytest

import conftest
import sendpeers as sp

LISTED = "127.0.0.2"
CLEAN = "127.0.0.1"
ZONE = "zen.example.test"

ZONES = {
    ZONE: ["@ IN NS ns.example.net.",
           "2.0.0.127 IN A 127.0.0.2",
           "2.0.0.127 IN TXT \"listed for testing\"",
           # Spamhaus's "query refused" code: an error, not a listing
           "3.0.0.127 IN A 127.255.255.254"],
}


@pytest.fixture(scope="module")
def nsd():
    sp.need(sp.HAVE_NSD, "nsd (Debian package nsd)")
    base = tempfile.mkdtemp(prefix="transit-dnsbl-", dir="/tmp")
    srv = sp.start_dns(base, ZONES)
    yield srv
    srv.stop()
    shutil.rmtree(base, ignore_errors=True)


def start(t, dns_port, **connector):
    conf = {"dnsbl": [ZONE + "=see https://lists.example.test/"], "dnsbl-timeout": "3s"}
    conf.update(connector)
    t.override("internet", conf)
    t.override("config", {"dns": {"servers": ["127.0.0.1:%d" % dns_port]}})
    t.write_config()
    t.start()


def rcpts(t, source, addresses):
    """RCPT replies (code, text) for each address, from source."""
    out = []
    with smtplib.SMTP(conftest.HOST, t.port_smtp, timeout=30,
                      source_address=(source, 0)) as c:
        c.ehlo("client.example.test")
        c.mail("sender@example.org")
        for a in addresses:
            code, msg = c.rcpt(a)
            out.append((code, msg.decode()))
        c.rset()
    return out


def test_listed_client_refused_at_rcpt_postmaster_passes(transit_conf, nsd):
    start(transit_conf, nsd.port)
    r = rcpts(transit_conf, LISTED,
              ["alice@example.test", "postmaster@example.test", "abuse@example.test"])
    assert r[0][0] == 554, r
    assert r[0][1].startswith("5.7.1 Service unavailable; client [127.0.0.2] blocked using "
                              "zen.example.test; see https://lists.example.test/"), r
    assert r[1][0] == 250, r
    assert r[2][0] != 554, r      # abuse@ is not in the directory: 550, but not the DNSBL
    log = transit_conf.log_text()
    assert re.search(r"dnsbl listed address=127\.0\.0\.2 zone=zen\.example\.test "
                     r"answer=127\.0\.0\.2", log), log
    assert "reason=dnsbl zone=zen.example.test" in log


def test_unlisted_client_accepted(transit_conf, nsd):
    start(transit_conf, nsd.port)
    assert rcpts(transit_conf, CLEAN, ["alice@example.test"])[0][0] == 250
    assert "dnsbl listed" not in transit_conf.log_text()


def test_list_error_code_is_not_a_listing(transit_conf, nsd):
    start(transit_conf, nsd.port)
    assert rcpts(transit_conf, "127.0.0.3", ["alice@example.test"])[0][0] == 250
    log = transit_conf.log_text()
    assert "dnsbl ignored address=127.0.0.3 zone=zen.example.test answer=127.255.255.254" in log
    assert "dnsbl listed" not in log


def test_dnsbl_allow_exempts(transit_conf, nsd):
    start(transit_conf, nsd.port, **{"dnsbl-allow": ["127.0.0.0/30"]})
    assert rcpts(transit_conf, LISTED, ["alice@example.test"])[0][0] == 250
    assert "dnsbl listed" not in transit_conf.log_text()


def test_list_that_does_not_answer_times_out_accepted(transit_conf):
    dead = conftest.free_ports(1)[0]      # nothing listens there: no answer
    start(transit_conf, dead, **{"dnsbl-timeout": "1s"})
    t0 = time.monotonic()
    r = rcpts(transit_conf, LISTED, ["alice@example.test"])
    took = time.monotonic() - t0
    assert r[0][0] == 250, r
    assert 0.9 <= took < 20, took     # RCPT waited for the lookup, at most its timeout
    log = transit_conf.log_text()
    assert re.search(r"dnsbl (timeout|error) address=127\.0\.0\.2 zone=zen\.example\.test", log), log


def test_session_closed_while_lookup_in_flight(transit_conf):
    """The client leaves before the (never answered) lookup ends: the late
    end of the lookup must not touch the freed session (ASan build)."""
    dead = conftest.free_ports(1)[0]
    start(transit_conf, dead, **{"dnsbl-timeout": "2s"})
    for _ in range(3):
        with smtplib.SMTP(conftest.HOST, transit_conf.port_smtp, timeout=30,
                          source_address=(LISTED, 0)) as c:
            c.ehlo("client.example.test")
    time.sleep(4)        # the timeouts and unbound's SERVFAILs come after the sessions
    assert rcpts(transit_conf, CLEAN, ["alice@example.test"])[0][0] == 250
    transit_conf.check_alive("after lookups outlived their sessions")


# -- require-ptr: forward-confirmed reverse DNS -----------------------------------------

PTR_ZONES = {
    "127.in-addr.arpa": ["@ IN NS ns.example.net.",
                         "3.0.0 IN PTR host.example.test.",
                         "4.0.0 IN PTR bad.example.test."],
    "example.test": ["@ IN NS ns.example.net.",
                     "host IN A 127.0.0.3",
                     "bad IN A 192.0.2.1"],
}


@pytest.fixture(scope="module")
def nsd_ptr():
    sp.need(sp.HAVE_NSD, "nsd (Debian package nsd)")
    base = tempfile.mkdtemp(prefix="transit-ptr-", dir="/tmp")
    srv = sp.start_dns(base, PTR_ZONES)
    yield srv
    srv.stop()
    shutil.rmtree(base, ignore_errors=True)


def start_ptr(t, dns_port):
    t.override("internet", {"require-ptr": True})
    t.override("config", {"dns": {"servers": ["127.0.0.1:%d" % dns_port]}})
    t.write_config()
    t.start()


def test_require_ptr_confirmed_name_accepted(transit_conf, nsd_ptr):
    start_ptr(transit_conf, nsd_ptr.port)
    assert rcpts(transit_conf, "127.0.0.3", ["alice@example.test"])[0][0] == 250
    assert "fcrdns confirmed address=127.0.0.3 name=host.example.test" in transit_conf.log_text()


@pytest.mark.parametrize("client", ["127.0.0.4", "127.0.0.5"])   # not confirmed; no PTR
def test_require_ptr_refuses_unverified_client(transit_conf, nsd_ptr, client):
    start_ptr(transit_conf, nsd_ptr.port)
    r = rcpts(transit_conf, client, ["alice@example.test", "postmaster@example.test"])
    assert r[0] == (450, "4.7.25 Client host rejected: cannot find your hostname"), r
    assert r[1][0] == 250, r
    log = transit_conf.log_text()
    assert "fcrdns failed address=%s" % client in log, log
    assert "reason=no-fcrdns" in log


def test_require_ptr_off_by_default(transit_conf, nsd_ptr):
    transit_conf.override("config", {"dns": {"servers": ["127.0.0.1:%d" % nsd_ptr.port]}})
    transit_conf.write_config()
    transit_conf.start()
    assert rcpts(transit_conf, "127.0.0.5", ["alice@example.test"])[0][0] == 250


def test_bad_dnsbl_zone_refused_by_check(transit_conf):
    transit_conf.override("internet", {"dnsbl": ["not a zone!"]})
    transit_conf.write_config()
    p = transit_conf.run_daemon("-c", transit_conf.conf_path, "-n", timeout=30)
    assert p.returncode != 0
    assert b'dnsbl: "not a zone!" is not ZONE or ZONE=TEXT' in p.stderr, p.stderr
