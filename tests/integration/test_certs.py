"""
test_certs.py - the certificate store and the daemon's TLS contexts
(issue 8, "Certificates"): transitctl cert new / list / request / import /
use / renew against the files, and what a real TLS client (openssl
s_client, STARTTLS and implicit TLS) is served by a running transitd: a
switched certificate without a restart, SNI with two certificates,
per-connector tls-protocols, the expiry warning, and the renewal of a
self-signed certificate near expiry while running.
"""

import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import time

import pytest

import harness

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl command not installed")
HOST = "127.0.0.1"
PEM_CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


def openssl(*args, check=True, input=None, timeout=30):
    p = subprocess.run([OPENSSL] + list(args), capture_output=True, timeout=timeout,
                       input=input, stdin=None if input is not None else subprocess.DEVNULL)
    if check:
        assert p.returncode == 0, "openssl %s: %s" % (" ".join(args), p.stderr.decode(errors="replace"))
    return p


def s_client(port, starttls=True, servername=None, extra=()):
    """Connect with openssl s_client; (returncode, stdout, stderr)."""
    args = ["s_client", "-connect", "%s:%d" % (HOST, port)]
    if starttls:
        args += ["-starttls", "smtp"]
    if servername:
        args += ["-servername", servername]
    else:
        args += ["-noservername"]
    args += list(extra)
    p = openssl(*args, check=False, input=b"QUIT\r\n", timeout=30)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def served_thumbprint(port, **kw):
    """SHA-256 of the certificate transitd serves, upper-case hex."""
    rc, out, err = s_client(port, **kw)
    m = PEM_CERT_RE.search(out)
    assert m, "no certificate from s_client (rc %d): %s %s" % (rc, out[-500:], err[-500:])
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(m.group(0))).hexdigest().upper()


def pem_thumbprint(path):
    with open(path) as f:
        pem = PEM_CERT_RE.search(f.read()).group(0)
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()


def cert_list(t):
    p = t.ctl("cert", "list", "--json", check=True)
    return json.loads(p.stdout.decode())


def ctl_out(t, *args):
    return t.ctl(*args, check=True).stdout.decode().strip()


def make_ca(d):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/ca.key",
            "-out", d + "/ca.crt", "-days", "30", "-subj", "/CN=Test CA")


def make_signed(d, name, days, ca=True):
    """A key and a certificate for name: CA-signed (leaf + CA in one PEM
    with the key) or self-signed; returns the PEM bundle's path."""
    key, crt, csr = ["%s/%s.%s" % (d, name, x) for x in ("key", "crt", "csr")]
    ext = "%s/%s.ext" % (d, name)
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\n" % name)
    if ca:
        openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                "-subj", "/CN=" + name)
        openssl("x509", "-req", "-in", csr, "-CA", d + "/ca.crt", "-CAkey", d + "/ca.key",
                "-CAcreateserial", "-days", str(days), "-out", crt, "-extfile", ext)
    else:
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                "-days", str(days), "-subj", "/CN=" + name, "-addext",
                "subjectAltName=DNS:" + name)
    bundle = "%s/%s.pem" % (d, name)
    with open(bundle, "w") as out:
        for p in (crt,) + ((d + "/ca.crt",) if ca else ()) + (key,):
            out.write(open(p).read())
    return bundle


def store(t):
    return os.path.join(t.spool, "certs")


# -- transitctl on the files -----------------------------------------------------

def test_cert_new_list_use(transit_conf):
    t = transit_conf
    thumb = ctl_out(t, "cert", "new", "--self-signed", "--name", "mail.example.test",
                    "--san", "smtp.example.test")
    assert re.fullmatch(r"[0-9A-F]{64}", thumb), thumb
    crt = os.path.join(store(t), thumb.lower() + ".crt")
    key = os.path.join(store(t), thumb.lower() + ".key")
    assert pem_thumbprint(crt) == thumb
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert os.stat(store(t)).st_mode & 0o777 == 0o700
    [c] = cert_list(t)
    assert c["thumbprint"] == thumb
    assert c["sans"] == ["mail.example.test", "smtp.example.test"]
    assert c["subject"] == "CN=mail.example.test" and c["self_signed"] is True
    assert c["connectors"] == []
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c["not_after"])
    t.ctl("cert", "use", thumb[:12], "--connector", "internet", check=True)
    [c] = cert_list(t)
    assert c["connectors"] == ["internet"]
    text = ctl_out(t, "cert", "list")
    assert thumb in text and "internet" in text and "smtp.example.test" in text
    # refusals: unknown connector, unknown thumbprint, bad name
    p = t.ctl("cert", "use", thumb, "--connector", "nosuch")
    assert p.returncode == 1 and b"no receive-connector" in p.stderr
    p = t.ctl("cert", "use", "00000000", "--connector", "internet")
    assert p.returncode == 1 and b"no certificate" in p.stderr
    p = t.ctl("cert", "new", "--self-signed", "--name", "bad name,DNS:evil")
    assert p.returncode == 1 and b"not a host name" in p.stderr


def test_cert_request_verifies_and_import_finds_its_key(transit_conf):
    t = transit_conf
    d = t.dir
    make_ca(d)
    csr = os.path.join(d, "req.csr")
    t.ctl("cert", "request", "--name", "mx1.example.test", "--san", "mx2.example.test",
          "--out", csr, check=True)
    p = openssl("req", "-in", csr, "-verify", "-noout", "-text")
    assert b"verify OK" in p.stdout + p.stderr
    assert b"DNS:mx1.example.test" in p.stdout and b"DNS:mx2.example.test" in p.stdout
    pending = os.path.join(store(t), "request-mx1.example.test.key")
    assert os.stat(pending).st_mode & 0o777 == 0o600
    signed = os.path.join(d, "signed.crt")
    openssl("x509", "-req", "-in", csr, "-CA", d + "/ca.crt", "-CAkey", d + "/ca.key",
            "-CAcreateserial", "-days", "20", "-out", signed, "-copy_extensions", "copy")
    thumb = ctl_out(t, "cert", "import", signed)
    assert thumb == pem_thumbprint(signed)
    assert not os.path.exists(pending)
    [c] = cert_list(t)
    assert c["issuer"] == "CN=Test CA" and c["self_signed"] is False


def test_cert_import_checks_the_key(transit_conf):
    t = transit_conf
    d = t.dir
    make_ca(d)
    bundle = make_signed(d, "imp.example.test", 40)
    thumb = ctl_out(t, "cert", "import", bundle)
    assert thumb == pem_thumbprint(bundle)
    with open(os.path.join(store(t), thumb.lower() + ".crt")) as f:
        assert len(PEM_CERT_RE.findall(f.read())) == 2       # the chain is kept
    # a certificate with somebody else's key
    other = make_signed(d, "other.example.test", 40)
    p = t.ctl("cert", "import", d + "/imp.example.test.crt", "--key", d + "/other.example.test.key")
    assert p.returncode == 1 and b"matches none" in p.stderr, p.stderr
    p = t.ctl("cert", "import", d + "/imp.example.test.crt")
    assert p.returncode == 1 and b"no unencrypted PEM private key" in p.stderr, p.stderr
    assert other


# -- what a running transitd serves ----------------------------------------------

def test_certificate_switch_without_restart(transit):
    t = transit
    pid = t.proc.pid
    before = served_thumbprint(t.port_smtp)
    builtin = pem_thumbprint(os.path.join(t.spool, "tls", "selfsigned.crt"))
    assert before == builtin
    # a session that started before the switch keeps its certificate
    old = t.raw(port=t.port_smtps, tls=True)
    a = ctl_out(t, "cert", "new", "--self-signed", "--name", "a.example.test")
    t.ctl("cert", "use", a, "--connector", "internet", check=True)
    t.ctl("cert", "use", a, "--connector", "submissions", check=True)
    harness.wait_until(lambda: served_thumbprint(t.port_smtps, starttls=False) == a, 15,
                       what="the new certificate on implicit TLS")
    assert served_thumbprint(t.port_smtp) == a                     # and on STARTTLS
    old.ehlo()                                    # still served, on its old context
    old.cmd("QUIT")
    b = ctl_out(t, "cert", "new", "--self-signed", "--name", "b.example.test")
    t.ctl("cert", "use", b, "--connector", "internet", check=True)
    harness.wait_until(lambda: served_thumbprint(t.port_smtp) == b, 15,
                       what="the second switch")
    assert t.proc.pid == pid and t.alive()
    assert [c["connectors"] for c in cert_list(t) if c["thumbprint"] == a] == [["submissions"]]
    # a bad store is logged and the certificates in use stay
    os.chmod(os.path.join(store(t), b.lower() + ".key"), 0o644)
    c = ctl_out(t, "cert", "new", "--self-signed", "--name", "c.example.test")
    t.ctl("cert", "use", c, "--connector", "internet", check=True)
    harness.wait_until(lambda: "tls reload" in t.log_text(), 15, what="the refused reload")
    assert "must not be readable by group or others" in t.log_text()
    assert served_thumbprint(t.port_smtp) == b


def test_sni_picks_the_certificate(transit):
    t = transit
    a = ctl_out(t, "cert", "new", "--self-signed", "--name", "mx.example.test")
    b = ctl_out(t, "cert", "new", "--self-signed", "--name", "*.other.test")
    exact = ctl_out(t, "cert", "new", "--self-signed", "--name", "exact.other.test")
    t.ctl("cert", "use", a, "--connector", "internet", check=True)
    t.ctl("cert", "use", b, "--connector", "internet", "--add", check=True)
    t.ctl("cert", "use", exact, "--connector", "internet", "--add", check=True)
    harness.wait_until(lambda: served_thumbprint(t.port_smtp, servername="exact.other.test")
                       == exact, 15, what="the last binding")
    assert served_thumbprint(t.port_smtp) == a                                     # no SNI
    assert served_thumbprint(t.port_smtp, servername="mail.other.test") == b      # wildcard
    assert served_thumbprint(t.port_smtp, servername="exact.other.test") == exact  # exact first
    assert served_thumbprint(t.port_smtp, servername="mx.example.test") == a
    assert served_thumbprint(t.port_smtp, servername="unknown.example.net") == a   # default
    assert served_thumbprint(t.port_smtp, servername="a.b.other.test") == a  # one label only
    [ca] = [c for c in cert_list(t) if c["thumbprint"] == a]
    assert ca["connectors"] == ["internet"]


@pytest.mark.transit(internet={"tls-protocols": ["TLSv1.3"]})
def test_tls13_only_connector_refuses_tls12(transit):
    t = transit
    rc, out, err = s_client(t.port_smtp, extra=["-tls1_2"])
    assert rc != 0 and not PEM_CERT_RE.search(out), out[-400:]
    rc, out, err = s_client(t.port_smtp, extra=["-tls1_3"])
    assert rc == 0 and "TLSv1.3" in out, out[-400:] + err[-400:]
    # the other connector keeps the default (1.2 and 1.3)
    rc, out, err = s_client(t.port_smtps, starttls=False, extra=["-tls1_2"])
    assert rc == 0 and PEM_CERT_RE.search(out), err[-400:]


def test_default_refuses_tls1(transit):
    rc, out, err = s_client(transit.port_smtp, extra=["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"])
    assert rc != 0 and not PEM_CERT_RE.search(out)


@pytest.mark.transit(internet={"tls-protocols": ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]})
def test_legacy_connector_accepts_tls1(transit):
    probe = openssl("ciphers", "-tls1", "-s", "DEFAULT:@SECLEVEL=0", check=False)
    if probe.returncode != 0 or not probe.stdout.strip():
        pytest.skip("the local OpenSSL has no TLS 1.0 ciphers")
    t = transit
    rc, out, err = s_client(t.port_smtp, extra=["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"])
    if "no protocols available" in err:
        pytest.skip("the local OpenSSL client cannot speak TLS 1.0: " + err.strip()[-200:])
    assert rc == 0 and re.search(r"Protocol\s*:\s*TLSv1\b", out), out[-600:] + err[-400:]
    # the legacy level is this connector's only
    rc, out, err = s_client(t.port_smtps, starttls=False,
                            extra=["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"])
    assert rc != 0 and not PEM_CERT_RE.search(out)


@pytest.mark.parametrize("opt,value,expect", [
    ("tls-protocols", ["TLSv1.2", "SSLv3"], 'tls-protocols: "SSLv3" is not one of'),
    ("tls-protocols", ["TLSv1", "TLSv1.3"], "leaves out TLSv1.1"),
    ("tls-ciphers", "NO-SUCH-CIPHER", "tls-ciphers: \"NO-SUCH-CIPHER\" names no cipher"),
    ("tls-ciphersuites", "TLS_NOPE", "tls-ciphersuites: \"TLS_NOPE\" names no cipher"),
])
def test_tls_options_checked_at_n(transit_conf, opt, value, expect):
    t = transit_conf
    t.override("internet", {opt: value})
    t.write_config()
    p = t.run_daemon("-n", "-c", t.conf_path)
    err = p.stderr.decode()
    assert p.returncode != 0, err
    assert re.search(re.escape(t.conf_path) + r":\d+: .*" + re.escape(expect), err), err


def test_tls_options_printed_at_n(transit_conf):
    t = transit_conf
    t.override("internet", {"tls-protocols": ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"],
                            "tls-ciphers": "ECDHE+AESGCM:ECDHE+AES",
                            "tls-ciphersuites": "TLS_AES_256_GCM_SHA384"})
    t.write_config()
    p = t.run_daemon("-n", "-c", t.conf_path)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert 'tls-ciphers="ECDHE+AESGCM:ECDHE+AES"' in out
    assert "TLSv1.1" in out


def test_expiry_warning_once(transit):
    t = transit
    d = t.dir
    make_ca(d)
    bundle = make_signed(d, "soon.example.test", 10)
    thumb = ctl_out(t, "cert", "import", bundle)
    t.ctl("cert", "use", thumb, "--connector", "internet", check=True)
    harness.wait_until(lambda: served_thumbprint(t.port_smtp) == thumb, 15, what="the switch")
    pat = r"tls certificate=%s connector=internet .*expires in (\d+) days" % thumb.lower()
    harness.wait_until(lambda: re.search(pat, t.log_text()), 10, what="the expiry warning")
    for _ in range(3):
        served_thumbprint(t.port_smtp)
    found = re.findall(pat, t.log_text())
    assert len(found) == 1 and int(found[0]) in (9, 10), found      # not per handshake
    # the CA-signed one is not renewed by transitd: only warned about
    assert served_thumbprint(t.port_smtp) == thumb


def test_self_signed_renewed_while_running(transit):
    t = transit
    bundle = make_signed(t.dir, "old.example.test", 10, ca=False)
    thumb = ctl_out(t, "cert", "import", bundle)
    t.ctl("cert", "use", thumb, "--connector", "internet", check=True)
    harness.wait_until(lambda: served_thumbprint(t.port_smtp) not in ("", thumb)
                       and "renewed=" in t.log_text(), 20, what="the renewal")
    new = served_thumbprint(t.port_smtp)
    [c] = [c for c in cert_list(t) if c["thumbprint"] == new]
    assert c["sans"] == ["old.example.test"] and c["connectors"] == ["internet"]
    assert c["not_after"][:4] >= time.strftime("%Y", time.gmtime(time.time() + 300 * 86400))


def test_cert_renew_command(transit_conf):
    t = transit_conf
    a = ctl_out(t, "cert", "new", "--self-signed", "--name", "r.example.test", "--days", "5")
    t.ctl("cert", "use", a, "--connector", "internet", check=True)
    new = ctl_out(t, "cert", "renew")
    assert new != a
    by = {c["thumbprint"]: c for c in cert_list(t)}
    assert by[new]["connectors"] == ["internet"] and by[a]["connectors"] == []
    assert by[new]["sans"] == ["r.example.test"]
    assert by[new]["not_after"] > by[a]["not_after"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
@pytest.mark.transit(server={"user": "nobody"})
def test_store_owned_by_server_user(transit_conf):
    """Started as root, transitd runs as nobody: the store is nobody's, a
    certificate that transitctl (root) adds is handed over, and the running
    daemon (nobody) reads it; a reload does not remake the built-in one."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    t = transit_conf
    os.chmod(t.dir, 0o755)
    os.chown(t.mail, nobody.pw_uid, nobody.pw_gid)
    t.start()
    builtin = served_thumbprint(t.port_smtps, starttls=False)
    assert os.stat(store(t)).st_uid == nobody.pw_uid
    a = ctl_out(t, "cert", "new", "--self-signed", "--name", "owned.example.test")
    key = os.path.join(store(t), a.lower() + ".key")
    assert os.stat(key).st_uid == nobody.pw_uid and os.stat(key).st_mode & 0o777 == 0o600
    t.ctl("cert", "use", a, "--connector", "internet", check=True)
    harness.wait_until(lambda: served_thumbprint(t.port_smtp) == a, 15, what="the switch")
    assert served_thumbprint(t.port_smtps, starttls=False) == builtin
    assert "tls reload" not in t.log_text()


@pytest.mark.parametrize("protocols,version", [(None, "TLSv1.3"), (["TLSv1.2"], "TLSv1.2")])
def test_send_connector_tls_protocols(transit_conf, protocols, version):
    """tls-protocols on a send connector: TLS 1.2 only towards a peer that
    would speak 1.3 (the default takes 1.3)."""
    import sendpeers as sp
    from pypeer import PyPeer
    t = transit_conf
    d = os.path.join(t.dir, "peer-cert")
    os.makedirs(d)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", d + "/k.pem", "-out", d + "/c.pem", "-days", "1", "-subj",
            "/CN=proto.test")
    peer_ip = "127.0.0.47"
    peer = PyPeer(peer_ip, t.port_smtp, tls_cert=d + "/c.pem", tls_key=d + "/k.pem")
    try:
        extra = {"tls-protocols": protocols} if protocols else {}
        conn = sp.smarthost_connector(["proto.test"], ["[%s]:%d" % (peer_ip, t.port_smtp)],
                                      tls="opportunistic", **extra)
        sp.configure_sender(t, 9, {"proto": conn}, queue={"retry": ["1m"], "expire": "1h"})
        t.start()
        sp.relay_send(t, "alice@example.test", ["bob@proto.test"],
                      sp.message("protocols", to="bob@proto.test"))
        harness.wait_until(lambda: peer.messages, 15, what="delivery over TLS")
        sp.wait_log(t, r"smtp connected connector=proto [^\n]*tls=version=%s " % re.escape(version))
    finally:
        peer.stop()
