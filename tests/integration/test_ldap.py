"""
test_ldap.py - the LDAP directory back end (users { ldap { } }, issue 7
"Directory back ends"), against a real OpenLDAP slapd that each test starts
on a free 127.0.0.1 port (mdb back end, core/cosine/inetorgperson/misc
schemas from /etc/ldap/schema, entries loaded with ldapadd, stopped by PID).

Covers: AUTH PLAIN over STARTTLS with a good and a bad password, checked by
a bind as the user (anonymous searches) and by comparing the {CRYPT} hash
(service bind-dn); an unknown recipient 550 5.1.1; an RFC 4515 injection
in the address matching nothing; an alias (mailLocalAddress) delivered to
its user's Maildir and a groupOfNames expanded to each member (nested
groups followed, each member once; a loop of groups 550 5.4.6); sender
binding (an alias of the login accepted, another user's address and a
group refused 553 5.7.1); the cache (a change seen only after cache-ttl);
slapd stopped -> 451 4.4.3 at RCPT and 454 4.7.0 at AUTH, logged once, and
the same message accepted and delivered once slapd is back; slapd hanging
(SIGSTOP) -> 451 4.4.3 after the configured timeout while another session is
served; the section's checks at transitd -n; route explain asking LDAP.

Peers: slapd, ldapadd/ldapmodify (ldap-utils), raw SMTP and smtplib.
"""

import os
import re
import shutil
import signal
import smtplib
import subprocess
import time

import pytest

import harness
from conftest import DOMAIN, HOST, PASSWORD, free_ports, render_config
from harness import make_message
from test_auth import add_submission, plain, tls_session, wait_log

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
LDAPADD = shutil.which("ldapadd")
LDAPMODIFY = shutil.which("ldapmodify")
SCHEMAS = ("core", "cosine", "inetorgperson", "misc")
SUFFIX = "dc=example,dc=test"
PEOPLE = "ou=people," + SUFFIX
ROOTDN = "cn=admin," + SUFFIX
ROOTPW = "root-secret"
SERVICE_DN = "cn=transit," + SUFFIX
SERVICE_PW = "service-secret"

pytestmark = pytest.mark.skipif(not (os.access(SLAPD, os.X_OK) and LDAPADD and LDAPMODIFY),
                                reason="slapd and ldap-utils are needed")


def crypt_hash(password):
    """A SHA-512 crypt hash ($6$), which slapd's {CRYPT} and libxcrypt both read."""
    p = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode(),
                       capture_output=True, check=True)
    return p.stdout.decode().strip()


def person(uid, mail, aliases=(), password=PASSWORD):
    lines = ["dn: uid=%s,%s" % (uid, PEOPLE), "objectClass: inetOrgPerson",
             "objectClass: inetLocalMailRecipient", "uid: " + uid, "cn: " + uid, "sn: " + uid,
             "mail: " + mail, "userPassword: {CRYPT}" + crypt_hash(password)]
    lines += ["mailLocalAddress: " + a for a in aliases]
    return "\n".join(lines) + "\n"


def group(cn, mail, members):
    """members: "alice" (a person) or "cn=team" (a group)."""
    lines = ["dn: cn=%s,%s" % (cn, PEOPLE), "objectClass: groupOfNames",
             "objectClass: inetLocalMailRecipient", "cn: " + cn, "mailLocalAddress: " + mail]
    lines += ["member: %s,%s" % (m if "=" in m else "uid=" + m, PEOPLE) for m in members]
    return "\n".join(lines) + "\n"


ENTRIES = "\n".join([
    "dn: %s\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n" % SUFFIX,
    "dn: %s\nobjectClass: organizationalUnit\nou: people\n" % PEOPLE,
    "dn: %s\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: transit\n"
    "userPassword: %s\n" % (SERVICE_DN, SERVICE_PW),
    person("alice", "alice@example.test", aliases=("info@example.test",)),
    person("bob", "bob@example.test"),
    group("team", "team@example.test", ("alice", "bob")),
    group("staff", "staff@example.test", ("cn=team", "alice")),     # nested
    group("loop1", "loop1@example.test", ("cn=loop2",)),
    group("loop2", "loop2@example.test", ("alice", "cn=loop1")),
])


class Slapd:
    """One slapd with its own directory, port and database."""

    def __init__(self, base):
        self.dir = os.path.join(base, "slapd")
        self.db = os.path.join(self.dir, "db")
        os.makedirs(self.db)
        self.port = free_ports(1)[0]
        self.uri = "ldap://%s:%d" % (HOST, self.port)
        self.conf = os.path.join(self.dir, "slapd.conf")
        self.proc = None
        lines = ["include /etc/ldap/schema/%s.schema" % s for s in SCHEMAS]
        lines += [
            "pidfile %s/slapd.pid" % self.dir,
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
            "database mdb",
            'suffix "%s"' % SUFFIX,
            'rootdn "%s"' % ROOTDN,
            "rootpw %s" % ROOTPW,
            "directory %s" % self.db,
            "maxsize 10485760",
            # the hashes: the service account reads them (compare mode),
            # anyone may bind with them (bind mode), no one else sees them
            'access to attrs=userPassword by dn.exact="%s" read by self read '
            "by anonymous auth by * none" % SERVICE_DN,
            "access to * by * read",
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self.proc = subprocess.Popen([SLAPD, "-h", self.uri + "/", "-f", self.conf, "-d", "0"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "slapd.log"), "ab"))
        deadline = time.monotonic() + 15
        while True:
            p = subprocess.run(["ldapsearch", "-x", "-H", self.uri, "-b", "", "-s", "base",
                                "(objectClass=*)", "namingContexts"],
                               capture_output=True, timeout=10)
            if p.returncode == 0:
                return
            assert self.proc.poll() is None, "slapd exited: %s" % self.log()
            assert time.monotonic() < deadline, "slapd did not answer: %s" % self.log()
            time.sleep(0.1)

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def log(self):
        with open(os.path.join(self.dir, "slapd.log"), errors="replace") as f:
            return f.read()[-2000:]

    def add(self, ldif):
        self._tool(LDAPADD, ldif)

    def modify(self, ldif):
        self._tool(LDAPMODIFY, ldif)

    def _tool(self, tool, ldif):
        p = subprocess.run([tool, "-x", "-H", self.uri, "-D", ROOTDN, "-w", ROOTPW],
                           input=ldif.encode(), capture_output=True, timeout=20)
        assert p.returncode == 0, (tool, p.stdout, p.stderr)


@pytest.fixture
def slapd(transit_conf):
    s = Slapd(transit_conf.dir)
    s.start()
    try:
        s.add(ENTRIES)
        yield s
    finally:
        s.stop()


def use_ldap(t, slapd, **opts):
    """users { ldap { ... } } in t's configuration (the passwd-file left out:
    the directory replaces it)."""
    body = {"uri": slapd.uri, "base": PEOPLE, "timeout": "3s", "cache-ttl": "60s"}
    body.update(opts)

    def write_config():
        cfg = dict(t.cfg)
        cfg.pop("users", None)
        text = render_config(cfg)
        block = ["users {", "  ldap {"]
        block += ["    %s = \"%s\"" % (k, v) if not isinstance(v, bool) else
                  "    %s = %s" % (k, "true" if v else "false") for k, v in body.items()]
        block += ["  }", "}"]
        with open(t.conf_path, "w") as f:
            f.write(text + "\n".join(block) + "\n")

    t.write_config = write_config
    t.write_config()


def maildir(t, user):
    return os.path.join(t.mail, DOMAIN, user)


def auth_ok(t, port, user="alice@example.test", password=PASSWORD):
    c = tls_session(t, port)
    c.expect("AUTH PLAIN " + plain(user, password), 235, "2.7.0")
    return c


# -- AUTH ------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["bind", "compare"])
def test_auth_plain_over_starttls(transit_conf, slapd, mode):
    t = transit_conf
    port = add_submission(t)
    pwfile = os.path.join(t.dir, "ldap-password")
    with open(pwfile, "w") as f:
        f.write(SERVICE_PW + "\n")
    opts = {"password-check": mode}
    if mode == "compare":   # reading the hash needs the service account
        opts.update({"bind-dn": SERVICE_DN, "bind-password-file": pwfile})
    use_ldap(t, slapd, **opts)
    t.start()
    with tls_session(t, port) as c:
        c.expect("AUTH PLAIN " + plain("alice@example.test", "wrong-password"), 535, "5.7.8")
        c.expect("AUTH PLAIN " + plain("nobody@example.test", PASSWORD), 535, "5.7.8")
        c.expect("AUTH PLAIN " + plain("alice@example.test", ""), 501)   # never an anonymous bind
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 235, "2.7.0")
        c.expect("MAIL FROM:<alice@example.test>", 250)
        c.expect("RCPT TO:<bob@example.test>", 250)
        c.expect("DATA", 354)
        c.send_data(make_message("from alice", sender="alice@example.test",
                                 to="bob@example.test"))
    harness.wait_until(lambda: len(harness.maildir_new_files(maildir(t, "bob"))) == 1, 20,
                       what="delivery to bob")
    assert "wrong-password" not in t.log_text()


# -- recipients ------------------------------------------------------------------------

def test_unknown_recipient_and_filter_injection(transit_conf, slapd):
    t = transit_conf
    use_ldap(t, slapd)
    t.start()
    with t.raw(port=t.port_smtp) as c:
        c.ehlo()
        c.expect("MAIL FROM:<carol@other.test>", 250)
        c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1")
        # unescaped, these filters would match every entry with a mail
        c.expect("RCPT TO:<*@example.test>", 550, "5.1.1")
        c.expect('RCPT TO:<"*)(mail=*"@example.test>', 550, "5.1.1")
        c.expect('RCPT TO:<"*)(|(mail=*"@example.test>', 550, "5.1.1")
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("RCPT TO:<bob@[127.0.0.1]>", 250)   # our address: bob@example.test
    assert "state=down" not in t.log_text()


def test_alias_and_group_delivered(transit_conf, slapd):
    t = transit_conf
    use_ldap(t, slapd)
    t.start()
    with smtplib.SMTP(HOST, t.port_smtp, timeout=15) as s:
        assert s.sendmail("carol@other.test", ["info@example.test"], make_message("to info")) == {}
        assert s.sendmail("carol@other.test", ["team@example.test"], make_message("to team")) == {}
    harness.wait_until(lambda: len(harness.maildir_new_files(maildir(t, "alice"))) == 2, 20,
                       what="two messages for alice")
    harness.wait_until(lambda: len(harness.maildir_new_files(maildir(t, "bob"))) == 1, 20,
                       what="the team message for bob")
    for name in ("info", "team"):
        assert not os.path.exists(maildir(t, name)), name
    wait_log(t, r"expand from=<info@example\.test> to=\"?<alice@example\.test>\"?")
    wait_log(t, r"expand from=<team@example\.test> "
                r"to=\"?<alice@example\.test>,<bob@example\.test>\"?")


def test_nested_group_and_loop(transit_conf, slapd):
    t = transit_conf
    use_ldap(t, slapd)
    t.start()
    with t.raw(port=t.port_smtp) as c:
        c.ehlo()
        c.expect("MAIL FROM:<carol@other.test>", 250)
        c.expect("RCPT TO:<loop1@example.test>", 550, "5.4.6")
        c.expect("RCPT TO:<staff@example.test>", 250)         # the session goes on
        c.expect("DATA", 354)
        c.send_data(make_message("to staff", to="staff@example.test"))
    for user in ("alice", "bob"):    # alice once, though in staff and in team
        harness.wait_until(lambda: len(harness.maildir_new_files(maildir(t, user))) >= 1, 20,
                           what="delivery to " + user)
    time.sleep(1.0)
    for user in ("alice", "bob"):
        assert len(harness.maildir_new_files(maildir(t, user))) == 1, user
    wait_log(t, r"expand from=<staff@example\.test> "
                r"to=\"?<alice@example\.test>,<bob@example\.test>\"?")


def test_sender_binding(transit_conf, slapd):
    t = transit_conf
    port = add_submission(t)
    use_ldap(t, slapd)
    t.start()
    with auth_ok(t, port) as c:
        c.expect("MAIL FROM:<bob@example.test>", 553, "5.7.1")     # a stranger's address
        c.expect("MAIL FROM:<team@example.test>", 553, "5.7.1")    # a group is not an alias
        c.expect("MAIL FROM:<info@example.test>", 250)             # alice's alias
        c.expect("RCPT TO:<bob@example.test>", 250)
        c.expect("DATA", 354)
        c.send_data(make_message("as info", sender="info@example.test", to="bob@example.test"))
    harness.wait_until(lambda: len(harness.maildir_new_files(maildir(t, "bob"))) == 1, 20,
                       what="delivery to bob")


# -- the cache ---------------------------------------------------------------------------

def test_cache_ttl(transit_conf, slapd):
    t = transit_conf
    use_ldap(t, slapd, **{"cache-ttl": "3s"})
    t.start()
    with t.raw(port=t.port_smtp) as c:
        c.ehlo()
        c.expect("MAIL FROM:<carol@other.test>", 250)
        c.expect("RCPT TO:<carol@example.test>", 550, "5.1.1")    # negative answer cached
        c.expect("RCPT TO:<bob@example.test>", 250)               # positive answer cached
        slapd.add(person("carol", "carol@example.test"))
        slapd.modify("dn: uid=bob,%s\nchangetype: modify\nreplace: mail\n"
                     "mail: robert@example.test\n" % PEOPLE)
        c.expect("RCPT TO:<carol@example.test>", 550, "5.1.1")    # not yet
        c.expect("RCPT TO:<bob@example.test>", 250)
        time.sleep(3.5)
        c.expect("RCPT TO:<carol@example.test>", 250)             # seen after the TTL
        c.expect("RCPT TO:<bob@example.test>", 550, "5.1.1")


# -- the directory down --------------------------------------------------------------------

def test_slapd_down_is_temporary(transit_conf, slapd):
    t = transit_conf
    port = add_submission(t)
    use_ldap(t, slapd, **{"cache-ttl": "1s", "timeout": "2s"})
    t.start()
    slapd.stop()
    with t.raw(port=t.port_smtp) as c:
        c.ehlo()
        c.expect("MAIL FROM:<carol@other.test>", 250)
        for _ in range(3):
            c.expect("RCPT TO:<alice@example.test>", 451, "4.4.3")
        c.expect("RCPT TO:<team@example.test>", 451, "4.4.3")
    with tls_session(t, port) as c:
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 454, "4.7.0")
    log = t.log_text()
    assert len(re.findall(r"ldap uri=\S+ state=down", log)) == 1, log   # once, not per query
    slapd.start()

    def sender_retries():   # as a sending MTA does after a 4xx, until accepted
        try:
            with smtplib.SMTP(HOST, t.port_smtp, timeout=15) as s:
                return s.sendmail("carol@other.test", ["alice@example.test"],
                                  make_message("after the outage")) == {}
        except smtplib.SMTPRecipientsRefused as e:
            code = e.recipients["alice@example.test"][0]
            assert code == 451, e.recipients
            time.sleep(0.5)
            return False
    harness.wait_until(sender_retries, 20, what="the message accepted after slapd came back")
    harness.wait_until(lambda: len(harness.maildir_new_files(maildir(t, "alice"))) == 1, 20,
                       what="delivery after slapd came back")
    wait_log(t, r"ldap uri=\S+ state=up")
    with tls_session(t, port) as c:
        c.expect("AUTH PLAIN " + plain("alice@example.test", PASSWORD), 235, "2.7.0")


# -- configuration -------------------------------------------------------------------------

def test_configuration_checked_at_n(transit_conf, slapd):
    t = transit_conf
    cases = [
        ({"uri": "http://x"}, r"uri: \"http://x\" is not an LDAP URI"),
        ({"password-check": "plain"}, r"password-check: \"plain\" must be \"bind\" or \"compare\""),
        ({"user-filter": "(mail=%s"}, r"user-filter: .*unbalanced parentheses"),
        ({"user-filter": "(mail=x)"}, r"user-filter: .*needs %s"),
        ({"cache-ttl": "0s"}, r"cache-ttl: \"0s\" is not a duration"),
        ({"bind-dn": SERVICE_DN}, r"bind-dn and bind-password-file go together"),
        ({"mail-attribute": "ma il"}, r"mail-attribute: \"ma il\" is not an attribute name"),
    ]
    for change, msg in cases:
        use_ldap(t, slapd, **change)
        p = t.run_daemon("-c", t.conf_path, "-n")
        err = p.stderr.decode("utf-8", "replace")
        assert p.returncode != 0 and re.search(msg, err), (change, err)
        assert re.search(r"transit\.conf:\d+: ", err), err
    use_ldap(t, slapd, **{"bind-dn": SERVICE_DN,
                          "bind-password-file": os.path.join(t.dir, "missing")})
    p = t.run_daemon("-c", t.conf_path, "-n")
    assert p.returncode != 0 and b"bind-password-file" in p.stderr, p.stderr
    # passwd-file and ldap together: the directory replaces the file
    use_ldap(t, slapd)
    with open(t.conf_path) as f:
        text = f.read()
    with open(t.conf_path, "w") as f:
        f.write(text.replace("users {", 'users {\n  passwd-file = "%s"' % t.users_file))
    p = t.run_daemon("-c", t.conf_path, "-n")
    assert p.returncode != 0 and re.search(rb"transit\.conf:\d+: .*passwd-file and ldap are "
                                           rb"exclusive", p.stderr), p.stderr
    use_ldap(t, slapd)
    p = t.run_daemon("-c", t.conf_path, "-n")
    assert p.returncode == 0, p.stderr
    assert b"mailLocalAddress" in p.stdout, p.stdout


def test_route_explain_and_user_tool(transit_conf, slapd):
    t = transit_conf
    use_ldap(t, slapd)
    p = t.ctl("route", "explain", "team@example.test")
    out = p.stdout.decode()
    assert p.returncode == 0, out
    assert re.search(r"expand: <team@example\.test> -> <alice@example\.test>, "
                     r"<bob@example\.test>", out), out
    assert "member: <alice@example.test> local mailbox" in out, out
    p = t.ctl("route", "explain", "alice@example.test")
    assert p.returncode == 0 and b"a mailbox of the LDAP directory" in p.stdout, p.stdout
    p = t.ctl("route", "explain", "nobody@example.test")
    assert p.returncode == 1 and b"refused 550 5.1.1" in p.stdout, p.stdout
    # users live in the directory: the passwd-file tool says so
    p = t.ctl("user", "add", "carol@example.test", input=b"Secret-pass-123\n")
    assert p.returncode != 0 and b"LDAP directory" in p.stderr, p.stderr


def slapd_stopped(pid):
    """Every thread of pid in the stopped state (a signal takes effect when
    each thread is next scheduled, not when kill() returns)."""
    task = "/proc/%d/task" % pid
    for tid in os.listdir(task):
        with open(os.path.join(task, tid, "stat")) as f:
            if f.read().rsplit(")", 1)[1].split()[0] != "T":
                return False
    return True


def test_slapd_hanging_times_out(transit_conf, slapd):
    """A server that accepts but never answers (stopped with SIGSTOP): the
    request's timeout ends the wait with a temporary reply; other sessions
    are served meanwhile from the cache."""
    t = transit_conf
    use_ldap(t, slapd, **{"timeout": "4s"})
    t.start()
    with t.raw(port=t.port_smtp) as c:     # bob's answer cached while slapd answers
        c.ehlo()
        c.expect("MAIL FROM:<carol@other.test>", 250)
        c.expect("RCPT TO:<bob@example.test>", 250)
    slapd.proc.send_signal(signal.SIGSTOP)
    harness.wait_until(lambda: slapd_stopped(slapd.proc.pid), 10, what="slapd stopped")
    try:
        with t.raw(port=t.port_smtp, timeout=30) as c, t.raw(port=t.port_smtp) as other:
            c.ehlo()
            c.expect("MAIL FROM:<carol@other.test>", 250)
            started = time.monotonic()
            c.send(b"RCPT TO:<alice@example.test>\r\n")
            other.ehlo()                       # the loop is not blocked
            other.expect("MAIL FROM:<carol@other.test>", 250)
            other.expect("RCPT TO:<bob@example.test>", 250)
            assert time.monotonic() - started < 3.5   # before the lookup's 4 s timeout
            r = c.read_reply(timeout=30)
            harness.check_reply(r, 451, "4.4.3")
            assert 3.5 < time.monotonic() - started < 20
            # just failed: the next question is answered at once, not after
            # another 4 s (requests do not pile up on a dead server)
            started = time.monotonic()
            c.expect("RCPT TO:<carol@example.test>", 451, "4.4.3")
            assert time.monotonic() - started < 3.5
    finally:
        slapd.proc.send_signal(signal.SIGCONT)
    wait_log(t, r"ldap uri=\S+ state=down")


def test_accept_from_attribute(transit_conf, slapd):
    """accept-from-attribute: a person or a group whose attribute says
    "authenticated" refuses anonymous mail at RCPT (550 5.7.1) and takes
    authenticated submission; "anyone" leaves it open."""
    t = transit_conf
    port = add_submission(t)
    for dn, value in (("uid=bob", "authenticated"), ("cn=team", "TRUE"),
                      ("uid=alice", "anyone")):
        slapd.modify("dn: %s,%s\nchangetype: modify\nadd: businessCategory\n"
                     "businessCategory: %s\n" % (dn, PEOPLE, value))
    use_ldap(t, slapd, **{"accept-from-attribute": "businessCategory"})
    t.start()
    with t.raw(port=t.port_smtp) as c:
        c.ehlo()
        c.expect("MAIL FROM:<bob@example.test>", 250)   # claims to be bob: still anonymous
        c.expect("RCPT TO:<bob@example.test>", 550, "5.7.1")
        c.expect("RCPT TO:<team@example.test>", 550, "5.7.1")
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("RCPT TO:<info@example.test>", 250)    # alice's alias: alice's mark
    with auth_ok(t, port) as c:
        c.expect("MAIL FROM:<alice@example.test>", 250)
        c.expect("RCPT TO:<bob@example.test>", 250)
        c.expect("RCPT TO:<team@example.test>", 250)
    p = t.ctl("route", "explain", "bob@example.test")
    assert p.returncode == 1 and b"5.7.1" in p.stdout, p.stdout


def test_lookups_after_reload(transit_conf, slapd):
    """The LDAP directory is made once and outlives the configuration
    generation it was made from: after reloads (the first generation
    freed), lookups still work (ASan: no use of the freed configuration)."""
    t = transit_conf
    use_ldap(t, slapd)
    t.start()
    for _ in range(2):
        p = t.ctl("reload", timeout=60)
        assert p.returncode == 0, p.stderr
    with t.raw(port=t.port_smtp) as c:
        c.ehlo()
        c.expect("MAIL FROM:<carol@other.test>", 250)
        c.expect("RCPT TO:<alice@example.test>", 250)
        c.expect("RCPT TO:<team@example.test>", 250)
        c.expect("RCPT TO:<nobody@example.test>", 550, "5.1.1")
    assert t.proc.poll() is None
