#!/usr/bin/python3
"""dsn_check.py - check a DSN built by src/mail/dsn.c with Python's email package.

Reads one message on stdin and asserts its structure the way a receiving
mail client would see it (RFC 3464, RFC 6522, RFC 6533). Exit status 0 when
every check holds; otherwise the failed check is printed to stderr.

usage: dsn_check.py NRCPT PART3_TYPE [global]
  NRCPT       number of per-recipient blocks expected in part 2
  PART3_TYPE  expected type of part 3 ("none": a two-part report)
  global      the report is an RFC 6533 (SMTPUTF8) one
"""
import email
import email.policy
import sys

PER_MESSAGE = {"reporting-mta", "original-envelope-id", "x-transit-queue-id", "arrival-date"}
PER_RCPT = {"original-recipient", "final-recipient", "action", "status", "remote-mta",
            "diagnostic-code", "last-attempt-date", "will-retry-until"}
ACTIONS = {"failed", "delayed", "delivered", "relayed", "expanded"}


def fail(msg):
    sys.stderr.write("dsn_check: %s\n" % msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def status_blocks(part, is_global):
    """The header blocks of the delivery-status part as lists of (name, value)."""
    if not is_global:
        blocks = part.get_payload()
        check(isinstance(blocks, list), "delivery-status payload is not a list of blocks")
        return [[(k.lower(), str(v)) for k, v in b.items()] for b in blocks]
    # message/global-delivery-status: Python has no special parser; split the
    # raw content at empty lines and parse each block as a header section.
    raw = part.as_bytes(policy=email.policy.SMTPUTF8)
    body = raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[1]
    out = []
    for chunk in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        if chunk.strip():
            m = email.message_from_bytes(chunk + b"\n\n", policy=email.policy.default)
            out.append([(k.lower(), str(v)) for k, v in m.items()])
    return out


def main():
    nrcpt = int(sys.argv[1])
    part3 = sys.argv[2]
    is_global = len(sys.argv) > 3 and sys.argv[3] == "global"
    raw = sys.stdin.buffer.read()
    check(b"\n" not in raw.replace(b"\r\n", b""), "bare LF in the message")
    check(b"\r" not in raw.replace(b"\r\n", b""), "bare CR in the message")
    for line in raw.split(b"\r\n"):
        check(len(line) <= 998, "line longer than 998 octets")

    msg = email.message_from_bytes(raw, policy=email.policy.default)
    # our own structure must parse cleanly; the returned original (inside
    # part 3) is whatever the sender wrote, defects included
    for p in [msg] + (msg.get_payload() if msg.is_multipart() else []):
        check(not p.defects, "parser defects in %s: %r" % (p.get_content_type(), p.defects))
    check(msg.get_content_type() == "multipart/report", "top type " + msg.get_content_type())
    want_rt = "global-delivery-status" if is_global else "delivery-status"
    check(msg.get_param("report-type") == want_rt, "report-type %r" % msg.get_param("report-type"))
    check("MAILER-DAEMON@" in str(msg["From"]), "From " + str(msg["From"]))
    check(msg["Auto-Submitted"] == "auto-replied", "Auto-Submitted")
    check(msg["Date"].datetime is not None, "Date does not parse")
    check(str(msg["Message-ID"]).startswith("<"), "Message-ID")
    check(msg["Subject"], "Subject")
    check(str(msg["To"]).strip(), "To")  # the envelope sender, as an angle-addr

    parts = msg.get_payload()
    check(len(parts) == (2 if part3 == "none" else 3), "%d parts" % len(parts))
    check(parts[0].get_content_type() == "text/plain", "part 1 " + parts[0].get_content_type())
    check(parts[0].get_content_charset() == "utf-8", "part 1 charset")
    check(parts[0].get_content().strip(), "part 1 is empty")

    want2 = "message/global-delivery-status" if is_global else "message/delivery-status"
    check(parts[1].get_content_type() == want2, "part 2 " + parts[1].get_content_type())
    blocks = status_blocks(parts[1], is_global)
    check(len(blocks) == 1 + nrcpt, "%d status blocks, want %d" % (len(blocks), 1 + nrcpt))
    names = [n for n, _ in blocks[0]]
    check(set(names) <= PER_MESSAGE, "unexpected per-message field in %r" % names)
    check(dict(blocks[0]).get("reporting-mta", "").startswith("dns; "), "Reporting-MTA")
    for b in blocks[1:]:
        names = [n for n, _ in b]
        check(set(names) <= PER_RCPT, "unexpected per-recipient field in %r" % names)
        check(len(names) == len(set(names)), "repeated field in %r" % names)
        f = dict(b)
        check(";" in f.get("final-recipient", ""), "Final-Recipient")
        check(f.get("action") in ACTIONS, "Action %r" % f.get("action"))
        st = f.get("status", "")
        check(st[:1] in "245" and st.count(".") == 2, "Status %r" % st)

    if part3 != "none":
        check(parts[2].get_content_type() == part3, "part 3 %s, want %s"
              % (parts[2].get_content_type(), part3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
