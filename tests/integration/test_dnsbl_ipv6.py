"""
test_dnsbl_ipv6.py - DNSBL lookups for an IPv6 client (issue 7): the
query name is the client address in reversed nibbles under the zone
(RFC 5782 2.4), so a list that lists ::1 refuses a client connecting from
::1 at RCPT (554 5.7.1 naming the list), and postmaster still passes.

Peers: the tests' nsd (sendpeers.start_dns) serving the list zone over
IPv4 loopback; smtplib connecting to transitd's [::1] binding from ::1.
"""

import re
import shutil
import smtplib
import socket
import tempfile

import pytest

import conftest
import sendpeers as sp

ZONE = "v6list.example.test"
# ::1 reversed by nibbles: "1" then 31 zeros (RFC 5782 2.4, as ip6.arpa)
V6_LOOPBACK_NIBBLES = ".".join(["1"] + ["0"] * 31)

ZONES = {
    ZONE: ["@ IN NS ns.example.net.",
           V6_LOOPBACK_NIBBLES + " IN A 127.0.0.2",
           V6_LOOPBACK_NIBBLES + " IN TXT \"IPv6 listed for testing\""],
}


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def nsd():
    sp.need(sp.HAVE_NSD, "nsd (Debian package nsd)")
    base = tempfile.mkdtemp(prefix="transit-dnsbl6-", dir="/tmp")
    srv = sp.start_dns(base, ZONES)
    yield srv
    srv.stop()
    shutil.rmtree(base, ignore_errors=True)


def test_ipv6_client_is_looked_up_by_nibbles(transit_conf, nsd):
    if not have_ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1)")
    t = transit_conf
    port6 = conftest.free_ports(1)[0]
    t.connector("internet")["bindings"] = t.connector("internet")["bindings"] + \
        ["[::1]:%d" % port6]
    t.override("internet", {"dnsbl": [ZONE], "dnsbl-timeout": "5s"})
    t.override("config", {"dns": {"servers": ["127.0.0.1:%d" % nsd.port]}})
    t.write_config()
    t.start()
    with smtplib.SMTP("::1", port6, timeout=30) as c:
        c.ehlo("client.example.test")
        c.mail("sender@example.org")
        code, msg = c.rcpt("alice@example.test")
        assert code == 554, (code, msg)
        assert msg.decode().startswith(
            "5.7.1 Service unavailable; client [::1] blocked using %s" % ZONE), msg
        assert c.rcpt("postmaster@example.test")[0] == 250
    # an IPv4 client (not listed) is accepted on the same connector
    with smtplib.SMTP(conftest.HOST, t.port_smtp, timeout=30) as c:
        c.ehlo("client.example.test")
        c.mail("sender@example.org")
        assert c.rcpt("alice@example.test")[0] == 250
    log = t.log_text()
    assert re.search(r"dnsbl listed address=::1 zone=%s" % re.escape(ZONE), log), log
