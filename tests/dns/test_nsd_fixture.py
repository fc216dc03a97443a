"""
test_nsd_fixture.py - the NSD fixture itself: it starts, serves the zones it
was given (MX, A, AAAA, CNAME, NXDOMAIN, REFUSED outside them), restarts with
new zones on the same port, refuses a broken zone with nsd-checkzone's words,
and stops (the process is gone). Run: /usr/bin/python3 -m pytest -q tests/dns
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nsd_fixture import NsdError, NsdServer, nsd_available  # noqa: E402

pytestmark = pytest.mark.skipif(not nsd_available(), reason="nsd is not installed")

ZONE = """
$TTL 5
@        IN SOA ns hostmaster 1 3600 600 86400 5
@        IN NS  ns
ns       IN A   127.0.0.1
@        IN MX  10 mx
@        IN MX  20 backup
mx       IN A   127.0.0.2
mx       IN AAAA ::1
backup   IN CNAME mx
"""


def test_serves_zone(tmp_path):
    with NsdServer(str(tmp_path), {"fixture.test": ZONE}) as ns:
        assert ns.address == "127.0.0.1:%d" % ns.port
        rcode, mx = ns.query("fixture.test", "MX")
        assert rcode == "NOERROR"
        assert sorted(v for _, t, v in mx if t == "MX") == [(10, "mx.fixture.test"),
                                                             (20, "backup.fixture.test")]
        assert ns.query("mx.fixture.test", "A") == ("NOERROR", [("mx.fixture.test", "A",
                                                                 "127.0.0.2")])
        assert ns.query("mx.fixture.test", "AAAA")[1][0][2] == "::1"
        assert ns.query("backup.fixture.test", "A")[1][0] == ("backup.fixture.test", "CNAME",
                                                              "mx.fixture.test")
        assert ns.query("nope.fixture.test", "A") == ("NXDOMAIN", [])
        assert ns.query("elsewhere.example", "A")[0] == "REFUSED"
        proc = ns.proc
    assert proc.poll() is not None


def test_restart_with_new_zones(tmp_path):
    ns = NsdServer(str(tmp_path), {"fixture.test": ZONE}).start()
    try:
        port = ns.port
        ns.restart({"other.test": ZONE.replace("127.0.0.2", "127.0.0.9")})
        assert ns.port == port
        assert ns.query("mx.other.test", "A")[1][0][2] == "127.0.0.9"
        assert ns.query("mx.fixture.test", "A")[0] == "REFUSED"
    finally:
        ns.stop()


def test_broken_zone_is_refused(tmp_path):
    with pytest.raises(NsdError) as e:
        NsdServer(str(tmp_path), {"bad.test": "@ IN MX notanumber\n"}).start()
    assert "nsd-checkzone" in str(e.value)
