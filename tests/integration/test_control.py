"""
test_control.py - the control socket (issue 8, "Control socket" and the status
part of "Reload, stop, status"): transitctl talks to the running transitd over
a unix socket (owner root, group of server.user, mode 0660, peers checked with
SO_PEERCRED), one JSON request and one JSON reply per line.

Covers: `transitctl status` and `--json`; the socket's owner, group and mode;
a peer that is not root, the server user or its group refused (run as another
uid with setpriv) and logged; the server user itself allowed; malformed,
unknown and over-long requests answered with an error, not a crash; the
daemon down: changes fail with "transitd is not running (control socket
PATH: reason)" and exit 1 while reading commands keep working.
"""

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess

import pytest

import harness


def ctl_json(t, *args):
    p = t.ctl(*args, "--json", check=True)
    return json.loads(p.stdout.decode())


def raw_request(path, data, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    try:
        s.sendall(data)
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf
    finally:
        s.close()


def test_status_json_and_text(transit):
    t = transit
    st = ctl_json(t, "status")
    assert st["version"]
    assert st["node"] and st["fqdn"] == "mx.example.test"
    assert st["uptime_seconds"] >= 0
    assert st["back_pressure"] == "normal"
    assert st["queue"] == {"total": 0, "active": 0, "deferred": 0, "frozen": 0, "held": 0}
    names = [rc["name"] for rc in st["receive_connectors"]]
    assert names == ["internet", "submissions"], names
    assert st["suspended"] == []
    # a session open on "internet" is counted on that connector
    c = t.raw()
    c.ehlo()
    st = ctl_json(t, "status")
    conns = {rc["name"]: rc["connections"] for rc in st["receive_connectors"]}
    assert conns == {"internet": 1, "submissions": 0}, conns
    assert st["sessions"] == 1
    c.close()
    p = t.ctl("status", check=True)
    out = p.stdout.decode()
    assert "back pressure normal" in out and "internet" in out, out


def test_socket_owner_group_mode(transit_conf):
    t = transit_conf
    t.override("server", {"user": "nobody"})
    # nobody must be able to work in the spool and the mail directory
    t.write_config()
    os.chmod(t.dir, 0o755)
    for d in (t.spool, t.mail):
        shutil.chown(d, "nobody", "nogroup")
    t.start()
    path = t.cfg["control"]["socket"]
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    assert st.st_uid == 0
    assert st.st_gid == pwd.getpwnam("nobody").pw_gid
    assert ctl_json(t, "status")["version"]


def run_as(user, t, *args):
    """transitctl as another uid (its own groups only)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to run transitctl as another user")
    pw = pwd.getpwnam(user)
    cmd = [setpriv, "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--init-groups",
           os.environ.get("TRANSITCTL", t.ctl.__globals__["TRANSITCTL"]), "-c", t.conf_path] + \
        list(args)
    return subprocess.run(cmd, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)


def test_refused_peer(transit_conf):
    t = transit_conf
    t.override("server", {"user": "nobody"})
    t.write_config()
    os.chmod(t.dir, 0o755)
    os.chmod(t.conf_path, 0o644)
    for d in (t.spool, t.mail):
        shutil.chown(d, "nobody", "nogroup")
    t.start()
    path = t.cfg["control"]["socket"]
    # mode 0660 group nogroup: "daemon" cannot even connect
    p = run_as("daemon", t, "status")
    assert p.returncode == 1, p
    assert b"Permission denied" in p.stderr, p.stderr
    # with the file mode opened, SO_PEERCRED still refuses it, and says so in the log
    os.chmod(path, 0o666)
    p = run_as("daemon", t, "queue", "suspend", "--all")
    assert p.returncode == 1, p
    assert b"permission denied" in p.stderr, p.stderr
    assert "control connection refused peer=uid=%d" % pwd.getpwnam("daemon").pw_uid \
        in t.log_text()
    st = ctl_json(t, "status")
    assert st["suspended"] == [], "a refused peer changed the state"
    # the server user itself is allowed
    p = run_as("nobody", t, "status", "--json")
    assert p.returncode == 0, p
    assert json.loads(p.stdout.decode())["version"]


def test_bad_requests_get_errors(transit):
    t = transit
    path = t.cfg["control"]["socket"]
    r = json.loads(raw_request(path, b"this is not json\n"))
    assert r["ok"] is False and "JSON" in r["error"]
    r = json.loads(raw_request(path, b'{"verb": "no-such-verb"}\n'))
    assert r == {"ok": False, "error": "unknown verb"}
    r = json.loads(raw_request(path, b'{"verb": "queue.freeze", "args": {"ids": "x"}}\n'))
    assert r["ok"] is False and "ids" in r["error"]
    r = json.loads(raw_request(path, b"x" * (70 * 1024)))
    assert r == {"ok": False, "error": "request too long"}
    r = json.loads(raw_request(path, b'{"verb": "ping"}\n'))
    assert r["ok"] is True and r["version"]
    t.check_alive("after bad control requests")


def test_daemon_down_changes_fail_reads_work(transit):
    t = transit
    t.send(harness.make_message("down"), rcpts=("alice@example.test",))
    t.wait_for_mail("alice", 1)
    t.stop()
    path = t.cfg["control"]["socket"]
    for args in (("status",), ("queue", "freeze", "ABC"), ("queue", "suspend", "--all"),
                 ("queue", "retry", "--state", "deferred")):
        p = t.ctl(*args)
        err = p.stderr.decode()
        assert p.returncode == 1, (args, p)
        assert "transitd is not running (control socket %s:" % path in err, (args, err)
    # reading the queue needs no daemon
    p = t.ctl("queue", "list", check=True)
    assert b"queue is empty" in p.stdout
    p = t.ctl("queue", "list", "--by-next-hop", "--json", check=True)
    assert json.loads(p.stdout) == []


def test_status_after_reload_certificate_and_last_check(transit):
    """status reads the configuration generation in force: after a reload
    that renames nothing it still answers (the first generation's
    configuration is freed by then), with the certificate that expires
    first and the result `transitctl check` saved."""
    t = transit
    st = ctl_json(t, "status")
    cert = st["certificate"]
    assert len(cert["thumbprint"]) == 64 and cert["days_left"] > 30, cert
    assert cert["in_use"] >= 1 and cert["expiring"] == 0, cert
    assert "last_check" not in st
    with open(os.path.join(t.spool, "check.json"), "w") as f:
        json.dump({"ok": False, "results": [{"kind": "ptr", "status": "PROBLEM"}]}, f)
    t.write_config()
    for _ in range(2):  # the first generation is freed after the second
        p = t.ctl("reload", timeout=60)
        assert p.returncode == 0, p.stderr
    st = ctl_json(t, "status")
    assert st["fqdn"] == "mx.example.test"
    assert [rc["name"] for rc in st["receive_connectors"]] == ["internet", "submissions"]
    assert st["certificate"]["thumbprint"] == cert["thumbprint"]
    assert st["last_check"]["ok"] is False
    out = t.ctl("status", check=True).stdout.decode()
    assert "certificate" in out and "last_check" in out, out
