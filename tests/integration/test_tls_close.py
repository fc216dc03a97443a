"""
test_tls_close.py - an outbound TLS session that ends with QUIT ends with
close_notify (RFC 8446 6.1) before the TCP close: without it, every Exim
peer logs "TLS session: (SSL_read): ... unexpected eof" for each message.

The peer (pypeer.PyPeer with a certificate) offers STARTTLS, takes the
message, answers QUIT with 221 and then reads once more: a close_notify
makes that read return b"" (clean), a bare TCP close raises SSLEOFError.
"""

import os
import shutil
import subprocess

import pytest

import harness
import sendpeers as sp
from pypeer import PyPeer

PEER_IP = "127.0.0.32"
ALICE = "alice@example.test"


@pytest.fixture
def tls_peer(transit_conf):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl command not installed")
    d = os.path.join(transit_conf.dir, "peer-cert")
    os.makedirs(d)
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", d + "/k.pem", "-out",
                    d + "/c.pem", "-days", "1", "-subj", "/CN=tls.close.test"],
                   check=True, capture_output=True, timeout=30)
    p = PyPeer(PEER_IP, transit_conf.port_smtp, tls_cert=d + "/c.pem", tls_key=d + "/k.pem")
    yield p
    p.stop()


def test_tls_session_ends_with_close_notify(transit_conf, tls_peer):
    t = transit_conf
    conn = sp.smarthost_connector(["close.test"], ["[%s]:%d" % (PEER_IP, t.port_smtp)],
                                  tls="opportunistic")
    sp.configure_sender(t, 9, {"close": conn}, queue={"retry": ["1m"], "expire": "1h"})
    t.start()
    sp.relay_send(t, ALICE, ["bob@close.test"], sp.message("tls close", to="bob@close.test"))
    harness.wait_until(lambda: tls_peer.messages, 15, what="delivery over TLS")
    sp.wait_log(t, r"smtp connected connector=close [^\n]*tls=version=TLS")
    harness.wait_until(lambda: tls_peer.tls_ends, 20, what="the end of the TLS session")
    assert tls_peer.tls_ends == ["close_notify"], tls_peer.tls_ends
