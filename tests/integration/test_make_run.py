"""`make run` installs only what building and running transit need (issue 6
item 16): it must never pull in an MTA (postfix replaces exim4 on a stock
Debian machine) or a DNS server (nsd may bind port 53). The test peers come
with `make test`. Checked on the dry-run plan of make, so nothing is
installed here."""
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NEVER_FOR_RUN = {"postfix", "nsd", "exim4", "exim4-daemon-light", "opensmtpd", "swaks", "msmtp",
                 "faketime", "unbound", "bind9"}


def planned_packages(target):
    out = subprocess.run(["make", "--no-print-directory", "-n", "-C", ROOT, target],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    pkgs = set()
    for m in re.finditer(r'PACKAGES="([^"]*)"', out):
        pkgs.update(m.group(1).split())
    assert pkgs, "no package list found in the plan of make %s:\n%s" % (target, out[:2000])
    return pkgs


def test_make_run_installs_no_mta_and_no_dns_server():
    pkgs = planned_packages("run")
    assert not (pkgs & NEVER_FOR_RUN), sorted(pkgs & NEVER_FOR_RUN)
    assert {"libevent-dev", "libssl-dev", "meson"} <= pkgs


def test_make_test_installs_the_test_peers():
    pkgs = planned_packages("test")
    assert {"postfix", "nsd", "swaks", "faketime"} <= pkgs
