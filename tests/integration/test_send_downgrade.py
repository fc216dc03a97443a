"""
test_send_downgrade.py - what the SMTP client does when a message needs an
extension the next hop does not offer (docs/configuration.md, "Send
connectors: 8-bit and SMTPUTF8 mail").

 - No 8BITMIME (RFC 6152): Postfix's smtp-sink -8 announces none. An 8-bit
   body arrives converted to quoted-printable, 7-bit clean, and decodes to
   the original octets; a base64 part is untouched. A message with 8-bit
   octets in a header cannot be converted: the sender gets a 5.6.3 DSN and
   nothing is sent.
 - No SMTPUTF8 (RFC 6531 3.4; smtp-sink never announces it): a message
   sent with the SMTPUTF8 parameter but ASCII addresses and header is
   delivered without the parameter; a non-ASCII recipient fails 5.6.7 with
   a DSN that gives transit's own reason and does not say the server said it.
"""

import email
import email.policy
import os

import pytest

import harness
import sendpeers as sp

SINK_IP = "127.0.0.33"
ALICE = "alice@example.test"


@pytest.fixture
def peers(transit_conf):
    p = sp.Peers(os.path.join(transit_conf.dir, "peers"))
    os.makedirs(p.base)
    yield p
    p.stop_all()


def start(t, peers, sink_opts):
    sink = peers.sink(SINK_IP, t.port_smtp, opts=sink_opts, name="sink")
    conn = sp.smarthost_connector(["down.test"], ["[%s]:%d" % (SINK_IP, t.port_smtp)])
    sp.configure_sender(t, 9, {"down": conn})
    t.start()
    return sink


TEXT = "Grüße aus Köln = 100 €  \r\n.leading dot\r\n" + "ü" * 60 + "\r\n"
B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n"


def multipart_message():
    return ("From: <alice@example.test>\r\nTo: <bob@down.test>\r\nSubject: eight bit\r\n"
            "Message-ID: <eight-bit@test.example>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"=-b-=\"\r\n\r\n"
            "--=-b-=\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n" + TEXT +
            "--=-b-=\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" + B64 +
            "--=-b-=--\r\nEND-OF-TEST-MESSAGE\r\n").encode("utf-8")


def test_8bit_body_converted_for_a_peer_without_8bitmime(transit_conf, peers):
    t = transit_conf
    sink = start(t, peers, ["-8"])
    sp.relay_send(t, ALICE, ["bob@down.test"], multipart_message(),
                  mail_params=" BODY=8BITMIME")
    (got,) = sink.wait_messages(1)
    assert "8BITMIME" not in got.mail_args.upper(), got.mail_args
    assert max(got.data) < 0x80, "not 7-bit clean: %r" % got.data
    msg = email.message_from_bytes(got.data, policy=email.policy.compat32)
    text, blob = msg.get_payload()
    assert text["Content-Transfer-Encoding"] == "quoted-printable", text.items()
    # smtp-sink's dump has LF line ends; the last one belongs to the boundary
    assert text.get_payload(decode=True).rstrip(b"\n") == \
        TEXT.replace("\r\n", "\n").rstrip("\n").encode("utf-8")
    assert all(len(ln) <= 76 for ln in text.get_payload().split("\n")), text.get_payload()
    assert blob["Content-Transfer-Encoding"] == "base64"
    assert blob.get_payload().strip() == B64.strip(), "the base64 part changed"
    assert b"END-OF-TEST-MESSAGE" in got.data


def test_8bit_header_fails_with_5_6_3(transit_conf, peers):
    t = transit_conf
    sink = start(t, peers, ["-8"])
    body = sp.message("plain", to="bob@down.test").replace(
        b"Subject: plain", "Subject: Grüße".encode("utf-8"))
    qid = sp.relay_send(t, ALICE, ["bob@down.test"], body, mail_params=" BODY=8BITMIME")
    sp.wait_log(t, r"%s fail to=<bob@down\.test>[^\n]*status=5\.6\.3" % qid)
    (d,) = sp.wait_dsns(t, ALICE, 1)
    x = sp.check_dsn(d, ALICE, ["bob@down.test"], r"^5\.6\.3$",
                     diag_re=r"^X-Transit;.*cannot be converted to 7 bit")
    assert b" said:" not in sp.part_bytes(x.parts[0])
    assert sink.messages() == [], "a message with 8-bit headers was sent to a 7-bit peer"


def test_ascii_message_with_smtputf8_parameter_is_delivered(transit_conf, peers):
    t = transit_conf
    sink = start(t, peers, [])
    qid = sp.relay_send(t, ALICE, ["bob@down.test"], sp.message("ascii", to="bob@down.test"),
                        mail_params=" SMTPUTF8")
    (got,) = sink.wait_messages(1)
    assert "SMTPUTF8" not in got.mail_args.upper(), got.mail_args
    assert got.rcpts == ["bob@down.test"]
    sp.wait_log(t, r"%s send to=<bob@down\.test>" % qid)


def test_utf8_recipient_fails_5_6_7_in_transits_own_words(transit_conf, peers):
    t = transit_conf
    sink = start(t, peers, [])
    rcpt = "j\u00f6rg@down.test"
    qid = sp.relay_send(t, ALICE, [rcpt, "bob@down.test"],
                        sp.message("utf8 rcpt", to="bob@down.test"), mail_params=" SMTPUTF8")
    (got,) = sink.wait_messages(1)
    assert got.rcpts == ["bob@down.test"], "only the ASCII recipient goes to this peer"
    sp.wait_log(t, r"%s fail to=<j[^>]*rg@down\.test>[^\n]*status=5\.6\.7" % qid)
    (d,) = sp.wait_dsns(t, ALICE, 1)
    x = sp.Dsn(d)   # (check_dsn wants an rfc822 Final-Recipient; this one is utf-8)
    assert x.msg.get_content_type() == "multipart/report" and len(x.parts) == 3
    (r,) = x.per_rcpt
    assert r.get("final-recipient", "").replace(" ", "") == "utf-8;" + rcpt, r
    assert r.get("status") == "5.6.7", r
    assert r.get("diagnostic-code", "").startswith("X-Transit;"), r
    assert "does not support SMTPUTF8" in r.get("diagnostic-code", ""), r
    assert "remote-mta" not in r, r
    text = sp.part_bytes(x.parts[0])
    assert b" said:" not in text, text
    assert b"Reason:" in text, text
    harness.wait_until(lambda: "%s removed" % qid in t.log_text(), 15, what="removed")
