"""
test_clients.py - real mail clients against transitd: msmtp (what many
applications and cron jobs use as their sendmail) over STARTTLS on the
internet connector and over implicit TLS on the submissions connector.
The message must arrive once, with the TLS noted in the Received field.
"""

import shutil
import subprocess

import pytest

import harness

MSMTP = shutil.which("msmtp")
pytestmark = pytest.mark.skipif(MSMTP is None, reason="msmtp is not installed")


def _msmtp(port, starttls, subject):
    msg = harness.make_message(subject)
    cmd = [MSMTP, "--host=127.0.0.1", "--port=%d" % port, "--from=bob@example.test",
           "--auth=off", "--tls=on", "--tls-starttls=%s" % ("on" if starttls else "off"),
           "--tls-certcheck=off", "alice@example.test"]
    return subprocess.run(cmd, input=msg, capture_output=True, timeout=30)


@pytest.mark.parametrize("starttls", [True, False], ids=["starttls-25", "implicit-465"])
def test_msmtp_delivers_over_tls(transit, starttls):
    port = transit.port_smtp if starttls else transit.port_smtps
    subject = "msmtp %s" % ("starttls" if starttls else "implicit")
    p = _msmtp(port, starttls, subject)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    (got,) = transit.wait_for_mail("alice@example.test", 1, settle=0.5)
    assert subject.encode() in got.data
    received = " ".join(str(got.first("Received") or "").split())
    assert "with ESMTPS" in received, got.data[:600]
    assert "version=TLSv1.3" in received, got.data[:600]
