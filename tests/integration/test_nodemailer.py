"""
test_nodemailer.py - an application submitting through transit with
nodemailer from npm (issue 7: "nodemailer from npm as an application
would"): port 587 style connector (TLS required, only authenticated),
STARTTLS with the server's certificate verified against transit's own
self-signed certificate given as the CA and the FQDN as servername (no
verification turned off), AUTH PLAIN and AUTH LOGIN; the message is
delivered; a wrong password fails with 535 (nodemailer's EAUTH).

nodemailer is pinned in tests/node/package.json and package-lock.json and
installed by `make test-deps` (npm ci --prefix tests/node).
"""

import json
import os
import shutil
import subprocess

import pytest

from conftest import FQDN, HOST, PASSWORD, free_ports

NODE = shutil.which("node")
NODE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "node")
SEND_JS = os.path.join(NODE_DIR, "send.js")

pytestmark = pytest.mark.skipif(
    NODE is None or not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "nodemailer")),
    reason="node or nodemailer missing (make test-deps)")


def submission(t):
    port = free_ports(1)[0]
    t.cfg["receive-connector"]["client"] = {
        "bindings": ["%s:%d" % (HOST, port)],
        "permissions": ["authenticated"],
        "tls": "require",
        "auth": ["plain", "login"],
    }
    t.cfg["auth-failures"] = {"delay": "0s"}
    t.write_config()
    t.start()
    return port


def nodemailer_send(t, port, method, password, subject, servername=FQDN):
    args = {
        "host": HOST, "port": port, "servername": servername,
        "ca": os.path.join(t.spool, "tls", "selfsigned.crt"),
        "user": "alice@example.test", "pass": password, "method": method,
        "from": "alice@example.test", "to": "bob@example.test",
        "subject": subject, "text": "Sent by nodemailer.\n",
    }
    p = subprocess.run([NODE, SEND_JS, json.dumps(args)], capture_output=True, timeout=60,
                       cwd=NODE_DIR)
    out = p.stdout.decode("utf-8", "replace").strip()
    assert p.returncode in (0, 1), (p.returncode, out, p.stderr.decode("utf-8", "replace"))
    return p.returncode, json.loads(out.splitlines()[-1])


@pytest.mark.parametrize("method", ["PLAIN", "LOGIN"])
def test_nodemailer_submits(transit_conf, method):
    t = transit_conf
    port = submission(t)
    rc, res = nodemailer_send(t, port, method, PASSWORD, "nodemailer " + method)
    assert rc == 0 and res["ok"], res
    assert res["response"].startswith("250 2.0.0"), res
    mail = t.wait_for_mail("bob", 1)
    assert mail[0].subject == "nodemailer " + method
    log = t.log_text()
    assert "smtp auth ok login=alice@example.test mechanism=%s" % method in log
    assert "smtp tls version=TLSv1." in log


@pytest.mark.parametrize("method", ["PLAIN", "LOGIN"])
def test_nodemailer_wrong_password(transit_conf, method):
    t = transit_conf
    port = submission(t)
    rc, res = nodemailer_send(t, port, method, "not-the-password", "refused")
    assert rc == 1 and not res["ok"], res
    assert res["code"] == "EAUTH" and res["responseCode"] == 535, res
    assert "5.7.8" in res["response"], res
    assert "auth failed address=127.0.0.1 login=alice@example.test mechanism=%s" % method \
        in t.log_text()
    assert t.mail_files("bob") == []


def test_nodemailer_verifies_the_certificate(transit_conf):
    """The certificate really is checked: another servername fails the
    handshake and nothing is authenticated or sent."""
    t = transit_conf
    port = submission(t)
    rc, res = nodemailer_send(t, port, "PLAIN", PASSWORD, "wrong name",
                              servername="other.example.test")
    assert rc == 1 and not res["ok"], res
    assert "other.example.test" in res["response"] or res["code"] == "ESOCKET", res
    assert "smtp auth ok" not in t.log_text()
