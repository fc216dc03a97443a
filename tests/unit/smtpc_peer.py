#!/usr/bin/python3
"""smtpc_peer.py - a small SMTP server on loopback for tests/unit/test_smtp_client.c.

It does what Postfix's smtp-sink cannot: STARTTLS (with the test's certificate), AUTH PLAIN
and LOGIN, per-recipient refusals, SIZE, SMTPUTF8, PIPELINING on or off, slow or broken
replies; and it writes down what the client did, so the test can assert on the wire:

  <dir>/ready          written once the socket listens
  <dir>/transcript     one line per event:
                         CONNECT <client ip>
                         C <command line>[ +]   (" +" = more input was already buffered:
                                                 the client pipelined)
                         TLS <version>          TLSFAIL <reason>
                         AUTHOK <user>          AUTHFAIL
                         MSG <n> <octets>[ BARELF][ BARECR]
                         CLOSE                  (the session ended)
  <dir>/msg-<n>        the DATA content as sent on the wire (still dot-stuffed, without
                       the final ".\\r\\n")

Run with /usr/bin/python3; stops on SIGTERM.
"""
import argparse
import base64
import os
import socket
import ssl
import threading
import time

LOCK = threading.Lock()
COUNTER = [0]


class Conn:
    def __init__(self, sock, args, tctx):
        self.sock = sock
        self.args = args
        self.tctx = tctx
        self.buf = b""
        self.tls = False

    def note(self, line):
        with LOCK:
            with open(os.path.join(self.args.dir, "transcript"), "a") as f:
                f.write(line + "\n")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def readline(self):
        # search only what recv added since the last miss (a 3 MB message is
        # 40,000 lines)
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                break
            start = len(self.buf)
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        return line

    def ehlo_lines(self):
        a = self.args
        ext = ["peer.test greets you"]
        if not a.no_pipelining:
            ext.append("PIPELINING")
        if a.size is not None:
            ext.append("SIZE %d" % a.size)
        if not a.no_8bitmime:
            ext.append("8BITMIME")
        ext.append("ENHANCEDSTATUSCODES")
        if a.smtputf8:
            ext.append("SMTPUTF8")
        if a.dsn:
            ext.append("DSN")
        if self.tctx is not None and not self.tls:
            ext.append("STARTTLS")
        if a.auth and (self.tls or a.auth_clear):
            ext.append("AUTH " + a.auth_mechs)
        return ext

    def reply_ehlo(self):
        a = self.args
        if a.ehlo_raw == "long":
            self.sock.sendall(b"250-" + b"x" * 3000 + b"\r\n250 OK\r\n")
            return
        if a.ehlo_raw == "many":
            self.sock.sendall(b"250-x\r\n" * 150 + b"250 OK\r\n")
            return
        if a.ehlo_raw == "malformed":
            self.sock.sendall(b"25x OK\r\n")
            return
        if a.ehlo_raw == "mixed":
            self.sock.sendall(b"250-peer.test\r\n251 PIPELINING\r\n")
            return
        if a.ehlo_reply:
            self.send(a.ehlo_reply)
            return
        ext = self.ehlo_lines()
        for i, e in enumerate(ext):
            self.send("250%s%s" % ("-" if i < len(ext) - 1 else " ", e))

    def starttls(self):
        junk = b"250 plaintext injected after STARTTLS\r\n" if self.args.starttls_junk else b""
        self.sock.sendall(b"220 2.0.0 go ahead\r\n" + junk)  # one segment
        self.buf = b""  # the server side of CVE-2011-0411
        try:
            self.sock = self.tctx.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.note("TLSFAIL %s" % e.__class__.__name__)
            return False
        self.tls = True
        self.note("TLS %s" % self.sock.version())
        return True

    def check_auth(self, user, pw):
        if self.args.auth and user == self.args.auth[0] and pw == self.args.auth[1]:
            self.note("AUTHOK %s" % user)
            self.send("235 2.7.0 Authentication successful")
        else:
            self.note("AUTHFAIL")
            self.send("535 5.7.8 Error: authentication failed")

    def auth(self, arg):
        parts = arg.split()
        mech = parts[0].upper() if parts else ""
        try:
            if mech == "PLAIN":
                if len(parts) > 1:
                    resp = parts[1]
                else:
                    self.send("334 ")
                    resp = self.readline().decode().strip()
                _, user, pw = base64.b64decode(resp).decode().split("\0")
                self.check_auth(user, pw)
            elif mech == "LOGIN":
                self.send("334 VXNlcm5hbWU6")
                user = base64.b64decode(self.readline().strip()).decode()
                self.send("334 UGFzc3dvcmQ6")
                pw = base64.b64decode(self.readline().strip()).decode()
                self.check_auth(user, pw)
            else:
                self.send("504 5.5.4 unknown mechanism")
        except Exception:  # noqa: BLE001 - any garbage is a failed AUTH
            self.note("AUTHFAIL")
            self.send("501 5.5.2 cannot decode")

    def abort_data(self):
        """Read a little of the content, refuse it, close our side (FIN after the 550) and
        throw away whatever else the client sends."""
        got = len(self.buf)
        self.buf = b""
        while got < self.args.abort_data:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        self.note("ABORT %d" % got)
        self.sock.sendall(b"550 5.7.1 content refused in the middle\r\n")
        self.sock.shutdown(socket.SHUT_WR)
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        return False

    def data(self):
        if self.args.abort_data:
            return self.abort_data()
        if self.args.stall_data:
            time.sleep(self.args.stall_data)  # read nothing: the client must wait
            return False
        raw = bytearray()   # += on bytes would copy the whole message per line
        bare_lf = bare_cr = False
        while True:
            line = self.readline()
            if line is None:
                return False
            if line == b".\r\n":
                break
            if line.endswith(b"\r\n"):
                content = line[:-2]
            else:
                bare_lf, content = True, line[:-1]
            if b"\r" in content:
                bare_cr = True
            raw += line
        with LOCK:
            COUNTER[0] += 1
            n = COUNTER[0]
        with open(os.path.join(self.args.dir, "msg-%d" % n), "wb") as f:
            f.write(raw)
        self.note("MSG %d %d%s%s" % (n, len(raw), " BARELF" if bare_lf else "",
                                     " BARECR" if bare_cr else ""))
        if self.args.dot_delay:
            time.sleep(self.args.dot_delay)
        self.send(self.args.dot_reply or "250 2.0.0 Ok: queued as %d" % n)
        return True

    def run(self):
        a = self.args
        self.note("CONNECT %s" % self.sock.getpeername()[0])
        if a.silent:
            time.sleep(600)
            return
        self.send(a.greeting)
        rejects = dict(r.split("=", 1) for r in a.reject_rcpt)
        mail = False
        accepted = 0
        while True:
            line = self.readline()
            if line is None:
                return
            text = line.rstrip(b"\r\n").decode("utf-8", "replace")
            self.note("C %s%s" % (text, " +" if self.buf else ""))
            verb = text.split(" ", 1)[0].upper()
            arg = text[len(verb) + 1:]
            if verb == "EHLO":
                self.reply_ehlo()
            elif verb == "HELO":
                self.send("250 peer.test")
            elif verb == "STARTTLS" and a.starttls_reply:
                self.send(a.starttls_reply)
            elif verb == "STARTTLS" and self.tctx is not None and not self.tls:
                if not self.starttls():
                    return
            elif verb == "AUTH" and a.auth:
                self.auth(arg)
            elif verb == "MAIL":
                if a.mail_reply:
                    self.send(a.mail_reply)
                else:
                    mail, accepted = True, 0
                    self.send("250 2.1.0 Ok")
            elif verb == "RCPT":
                addr = arg[arg.find("<") + 1:arg.find(">")]
                if not mail:
                    self.send("503 5.5.1 Error: need MAIL command")
                elif addr in rejects:
                    self.send(rejects[addr])
                else:
                    accepted += 1
                    self.send("250 2.1.5 Ok")
            elif verb == "DATA":
                if (not mail or accepted == 0) and not a.always_354:
                    self.send("554 5.5.1 Error: no valid recipients")
                elif a.data_reply:
                    self.send(a.data_reply)
                else:
                    self.send("354 End data with <CR><LF>.<CR><LF>")
                    if not self.data():
                        return
                    mail = False
            elif verb == "RSET":
                mail, accepted = False, 0
                self.send("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.send("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.send("221 2.0.0 Bye")
                return
            else:
                self.send("502 5.5.2 Error: command not recognized")


def serve(conn):
    try:
        conn.run()
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.note("CLOSE")
        try:
            conn.sock.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True, help="host:port")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--auth", nargs=2, metavar=("USER", "PASS"))
    ap.add_argument("--auth-mechs", default="PLAIN LOGIN")
    ap.add_argument("--auth-clear", action="store_true", help="offer AUTH without TLS too")
    ap.add_argument("--size", type=int)
    ap.add_argument("--smtputf8", action="store_true")
    ap.add_argument("--dsn", action="store_true")
    ap.add_argument("--no-pipelining", action="store_true")
    ap.add_argument("--no-8bitmime", action="store_true")
    ap.add_argument("--reject-rcpt", action="append", default=[], help="addr=reply")
    ap.add_argument("--greeting", default="220 peer.test ESMTP")
    ap.add_argument("--ehlo-reply")
    ap.add_argument("--ehlo-raw", choices=["long", "many", "malformed", "mixed"])
    ap.add_argument("--mail-reply")
    ap.add_argument("--data-reply")
    ap.add_argument("--dot-reply")
    ap.add_argument("--dot-delay", type=float, default=0)
    ap.add_argument("--stall-data", type=float, default=0,
                    help="after 354, read nothing for this many seconds, then hang up")
    ap.add_argument("--abort-data", type=int, default=0,
                    help="after this many octets of content: 550 and close")
    ap.add_argument("--starttls-junk", action="store_true")
    ap.add_argument("--starttls-reply", help="refuse STARTTLS with this reply")
    ap.add_argument("--always-354", action="store_true",
                    help="354 to DATA even when no recipient was accepted")
    ap.add_argument("--silent", action="store_true", help="accept, never say anything")
    args = ap.parse_args()

    tctx = None
    if args.tls:
        tctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tctx.load_cert_chain(args.tls[0], args.tls[1])
    host, port = args.listen.rsplit(":", 1)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(16)
    with open(os.path.join(args.dir, "ready"), "w") as f:
        f.write("%d\n" % os.getpid())
    while True:
        sock, _ = srv.accept()
        threading.Thread(target=serve, args=(Conn(sock, args, tctx),), daemon=True).start()


if __name__ == "__main__":
    main()
