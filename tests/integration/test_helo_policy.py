"""
test_helo_policy.py - the HELO policy of a receive connector (issue 7
"Abuse control": helo = "strict" | "lenient").

Covers: on a strict connector a name that is not RFC 5321 syntax (trailing
dot, trailing space, '_', a bad address literal, a bare IP) gets 501 5.5.4
Invalid domain name and the session may try again; a domain, [IPv4] and
[IPv6:...] pass; the default (lenient) connector also takes the trailing
dot and space and '_' Gmail takes, and still refuses garbage; the option is
checked at -n.

Peers: raw SMTP on 127.0.0.1 (harness.RawSMTP) and Python smtplib.
"""

import smtplib

import pytest


STRICT_REFUSED = ("client.example.", "client.example ", "my_pc.lan", "[192.0.2.300]",
                  "[2001:db8::1]", "192.0.2.1]", "a..b")
BOTH_REFUSED = ("a..b", "[192.0.2.300]", "-client", "host@example", "<client>")
ACCEPTED = ("client.example", "x", "[192.0.2.1]", "[IPv6:2001:db8::1]")


@pytest.mark.transit(internet={"helo": "strict"})
def test_strict(transit):
    for verb in ("EHLO", "HELO"):
        with transit.raw() as c:
            for name in STRICT_REFUSED:
                c.expect("%s %s" % (verb, name), 501, "5.5.4", text_re="Invalid domain name")
            for name in ACCEPTED:
                c.expect("%s %s" % (verb, name), 250)
            c.expect("MAIL FROM:<bob@example.test>", 250)


def test_lenient_is_default(transit):
    with transit.raw() as c:
        for name in ("client.example.", "client.example ", "my_pc.lan") + ACCEPTED:
            c.expect("EHLO %s" % name, 250)
        for name in BOTH_REFUSED:
            c.expect("EHLO %s" % name, 501, "5.5.4", text_re="Invalid domain name")
    # a real client through it (smtplib's EHLO names a trailing-dot host)
    with smtplib.SMTP("127.0.0.1", transit.port_smtp, local_hostname="mail.client.example.",
                      timeout=10) as s:
        assert s.ehlo()[0] == 250
        assert s.sendmail("bob@example.test", ["alice@example.test"],
                          b"Subject: helo\r\n\r\nhi\r\n") == {}
    transit.wait_for_mail("alice", 1)


def test_bad_value_refused_at_n(transit_conf):
    t = transit_conf
    t.connector("internet")["helo"] = "picky"
    t.write_config()
    p = t.run_daemon("-c", t.conf_path, "-n")
    assert p.returncode != 0
    assert "helo" in p.stderr.decode(), p.stderr
