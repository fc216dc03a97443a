"""
test_privileges.py - started as root with server.user set, transitd binds its
ports and reads its keys as root, then runs as that user: the process's real,
effective and saved uids are the user's, and what it writes (queue files,
delivered mail) belongs to the user.
"""

import os
import pwd

import pytest

import harness

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")


def _uids(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:4]]
    raise AssertionError("no Uid line in /proc/%d/status" % pid)


@pytest.mark.transit(server={"user": "nobody"})
def test_drops_to_server_user(transit_conf):
    nobody = pwd.getpwnam("nobody")
    os.chmod(transit_conf.dir, 0o755)          # let nobody reach spool/ and mail/
    os.chown(transit_conf.mail, nobody.pw_uid, nobody.pw_gid)
    transit_conf.start()

    assert _uids(transit_conf.proc.pid) == [nobody.pw_uid] * 3
    assert "privileges dropped user=nobody" in transit_conf.log_text()
    assert os.stat(transit_conf.spool).st_uid == nobody.pw_uid

    transit_conf.send(harness.make_message("privileges"))
    got = transit_conf.wait_for_mail("alice@example.test", 1)
    assert os.stat(got[0].path).st_uid == nobody.pw_uid
