"""
test_check.py - "transitctl check [blocklists|dns]" (issue 8, "Reload,
stop, status": the outside view), against the tests' own nameserver (a
private nsd, sendpeers.start_dns) that transitctl asks through the
configured `dns { servers }`.

The zones: the block list zen.example.test lists 127.0.0.2; example.test's
MX is this server (mx.example.test), other.test's MX is a host elsewhere
(192.0.2.1); reverse DNS gives 127.0.0.2 the right name, 127.0.0.3 none,
and 127.0.0.4 a name that is not the connector's FQDN. Three send
connectors use those three source addresses.
"""
import json
import socket
import os
import shutil
import tempfile

import pytest

import conftest
import sendpeers as sp

ZONES = {
    "zen.example.test": ["@ IN NS ns.example.net.",
                         "2.0.0.127 IN A 127.0.0.2",
                         "2.0.0.127 IN TXT \"listed for testing\""],
    "example.test": ["@ IN NS ns.example.net.",
                     "@ IN MX 10 mx",
                     "mx IN A 127.0.0.1", "mx IN A 127.0.0.2",
                     "host4 IN A 127.0.0.4"],
    "other.test": ["@ IN NS ns.example.net.",
                   "@ IN MX 10 mx.elsewhere",
                   "mx.elsewhere IN A 192.0.2.1"],
    "127.in-addr.arpa": ["@ IN NS ns.example.net.",
                         "2.0.0 IN PTR mx.example.test.",
                         "4.0.0 IN PTR host4.example.test."],
}


@pytest.fixture(scope="module")
def nsd():
    sp.need(sp.HAVE_NSD, "nsd (Debian package nsd)")
    base = tempfile.mkdtemp(prefix="transit-check-", dir="/tmp")
    srv = sp.start_dns(base, ZONES)
    yield srv
    srv.stop()
    shutil.rmtree(base, ignore_errors=True)


def configure(t, nsd, connectors=("listed", "noptr", "mismatch")):
    sources = {"listed": "127.0.0.2", "noptr": "127.0.0.3", "mismatch": "127.0.0.4"}
    t.override("internet", {"dnsbl": ["zen.example.test"]})
    t.cfg["accepted-domain"]["other.test"] = {"type": "authoritative"}
    t.cfg["send-connector"] = {
        name: sp.smarthost_connector(["%s.test" % name], ["[127.0.0.1]:25"],
                                     **{"source-ip": sources[name]})
        for name in connectors}
    t.cfg["dns"] = {"servers": ["127.0.0.1:%d" % nsd.port]}
    t.write_config()


def lines(p):
    out = p.stdout.decode()
    return out, out.splitlines()


def line_for(ls, status, check, subject):
    return [x for x in ls if x.split()[:3] == [status, check] + subject.split()[:1]
            and subject in x]


@pytest.mark.timeout(90)
def test_check_blocklists_reports_the_listed_source(transit_conf, nsd):
    t = transit_conf
    configure(t, nsd)
    p = t.ctl("check", "blocklists", "127.0.0.9", timeout=60)
    out, ls = lines(p)
    assert p.returncode == 1, out + p.stderr.decode()
    assert line_for(ls, "LISTED", "blocklist", "127.0.0.2 zen.example.test"), out
    assert "listed in zen.example.test (answer 127.0.0.2)" in out
    for clean in ("127.0.0.3", "127.0.0.4", "127.0.0.9"):   # 127.0.0.9: from the command line
        assert line_for(ls, "OK", "blocklist", "%s zen.example.test" % clean), out
    assert " mx " not in out and "ptr" not in out   # blocklists only


@pytest.mark.timeout(90)
def test_check_blocklists_clean_exits_zero(transit_conf, nsd):
    t = transit_conf
    configure(t, nsd, connectors=("mismatch",))
    p = t.ctl("check", "blocklists", timeout=60)
    out, ls = lines(p)
    assert p.returncode == 0, out
    assert line_for(ls, "OK", "blocklist", "127.0.0.4 zen.example.test"), out


@pytest.mark.timeout(90)
def test_check_dns_reports_ptr_and_mx_problems(transit_conf, nsd):
    t = transit_conf
    configure(t, nsd)
    p = t.ctl("check", "dns", timeout=60)
    out, ls = lines(p)
    assert p.returncode == 1, out + p.stderr.decode()
    assert line_for(ls, "OK", "mx", "example.test"), out
    wrong = line_for(ls, "PROBLEM", "mx", "other.test")
    assert wrong and "mx.elsewhere.other.test" in wrong[0], out
    assert line_for(ls, "OK", "ptr", "127.0.0.2"), out
    missing = line_for(ls, "PROBLEM", "ptr", "127.0.0.3")
    assert missing and "no PTR record" in missing[0], out
    mism = line_for(ls, "PROBLEM", "ptr", "127.0.0.4")
    assert mism and "host4.example.test does not match the FQDN mx.example.test" in mism[0], out
    assert "blocklist" not in out


@pytest.mark.timeout(90)
def test_check_all_json_and_recorded_for_status(transit_conf, nsd):
    t = transit_conf
    configure(t, nsd)
    p = t.ctl("check", "--json", timeout=60)
    assert p.returncode == 1
    doc = json.loads(p.stdout.decode())
    assert doc["ok"] is False and doc["checks"] == "all"
    by = {(r["check"], r["subject"]): r["status"] for r in doc["results"]}
    assert by[("blocklist", "127.0.0.2 zen.example.test")] == "LISTED"
    assert by[("mx", "other.test")] == "PROBLEM"
    assert by[("ptr", "127.0.0.3")] == "PROBLEM"
    with open(os.path.join(t.spool, "check.json")) as f:
        saved = json.load(f)
    assert saved["results"] == doc["results"]


def test_check_bad_address_is_a_usage_error(transit_conf, nsd):
    configure(transit_conf, nsd)
    p = transit_conf.ctl("check", "blocklists", "not-an-ip")
    assert p.returncode == 2
    assert "'not-an-ip' is not an IP address" in p.stderr.decode()


@pytest.mark.timeout(90)
def test_check_without_answers_says_unknown(transit_conf, nsd):
    """A resolver that does not answer: every line UNKNOWN, never OK."""
    t = transit_conf
    configure(t, nsd)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    t.cfg["dns"] = {"servers": ["127.0.0.1:%d" % dead]}
    t.write_config()
    p = t.ctl("check", timeout=60)
    out, ls = lines(p)
    assert p.returncode == 1, out
    assert ls and all(x.startswith("UNKNOWN ") for x in ls), out
