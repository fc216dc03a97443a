#!/usr/bin/env python3
"""queue_gen.py SPOOL N [DOMAINS] - write N small, valid queue files (format
version 2, docs/queue.md) into SPOOL/queue for bench/queue_list.sh: one
recipient each, spread over DOMAINS domains (default 100), ~400 bytes of
content. Writes plain files (no fsync): a benchmark fixture, not mail."""
import os
import sys
import time
import zlib

B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def b32(n, width):
    out = []
    for _ in range(width):
        out.append(B32[n & 31])
        n >>= 5
    return "".join(reversed(out))


def main():
    spool, n = sys.argv[1], int(sys.argv[2])
    ndom = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    qdir = os.path.join(spool, "queue")
    os.makedirs(qdir, exist_ok=True)
    base_us = int(time.time() * 1e6) - n * 1000
    arrival = int(time.time()) - 3600
    body = ("Received: from client.bench.test by relay.bench.test; bench\r\n"
            "From: <sender@bench.test>\r\nTo: <user@example>\r\nSubject: queue bench\r\n"
            "Message-ID: <%d@bench.test>\r\n\r\n" + "x" * 240 + "\r\n")
    for i in range(n):
        qid = b32(base_us + i * 1000, 11) + "BENCHTAG"
        content = (body % i).encode()
        rcpt = "u%d@d%d.example.net" % (i, i % ndom)
        head = ("TRANSIT-QUEUE 2\nqid %s\narrival %d\nsender =sender@bench.test\nbody 0\n"
                "smtputf8 0\nret 0\nenvid -\nconnector =bench\nclient =127.0.0.1\n"
                "helo =client.bench.test\nauth -\nrcpt Q 0 =%s -\ndata\n"
                % (qid, arrival, rcpt)).encode()
        crc = zlib.crc32(content, zlib.crc32(head))
        trailer = b"trailer %020d %08x\nend\n" % (len(content), crc)
        with open(os.path.join(qdir, qid), "wb") as f:
            f.write(head + content + trailer)


if __name__ == "__main__":
    main()
