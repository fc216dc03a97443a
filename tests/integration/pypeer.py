"""
pypeer.py - a small SMTP receiver written in Python for the behaviours the
packaged peers cannot show: a STARTTLS that breaks the handshake, a slow
final reply, a count of how many connections were open at once, and how
each TLS session ended (close_notify from the client, or a bare TCP close:
the truncation every Exim logs). One thread per connection, bounded waits,
stopped by stop().
"""

import socket
import ssl
import threading


class PyPeer:
    def __init__(self, ip, port, broken_starttls=False, data_delay=0.0, tls_cert=None,
                 tls_key=None):
        self.broken_starttls = broken_starttls
        self.tls_ctx = None
        if tls_cert:
            self.tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_ctx.load_cert_chain(tls_cert, tls_key)
            # Python sets this by default: a bare TCP close would then read
            # exactly like a close_notify (b"")
            self.tls_ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        self.tls_ends = []          # per TLS session: "close_notify", "eof" or the error
        self.data_delay = data_delay
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(64)
        self.sock.settimeout(0.5)
        self.lock = threading.Lock()
        self.starttls_seen = 0
        self.messages = []          # (rcpts, data) received in clear
        self.open_now = 0
        self.open_max = 0
        self.connections = 0
        self.stopping = False
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn):
        with self.lock:
            self.connections += 1
            self.open_now += 1
            self.open_max = max(self.open_max, self.open_now)
        try:
            with conn:
                conn.settimeout(20)
                self._session(conn)
        except (OSError, ValueError):
            pass
        finally:
            with self.lock:
                self.open_now -= 1

    def _tls_end(self, tls):
        """After the 221 to QUIT: did the client end the TLS session with
        close_notify (recv returns b"") or just close the socket (EOF)?"""
        try:
            tls.settimeout(10)
            end = "close_notify" if tls.recv(1) == b"" else "data after QUIT"
        except ssl.SSLError as e:
            eof = isinstance(e, ssl.SSLEOFError) or "UNEXPECTED_EOF" in str(e)
            end = "eof" if eof else "error: %s" % e
        except OSError as e:
            end = "error: %s" % e
        with self.lock:
            self.tls_ends.append(end)

    def _session(self, conn):
        f = conn.makefile("rwb", buffering=0)
        tls = None
        f.write(b"220 pypeer.test ESMTP\r\n")
        rcpts = []
        while True:
            line = f.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                f.write(b"250-pypeer.test\r\n250-PIPELINING\r\n" +
                        (b"250-STARTTLS\r\n" if self.broken_starttls or
                         (self.tls_ctx and tls is None) else b"") +
                        b"250 8BITMIME\r\n")
            elif line.upper().startswith(b"STARTTLS") and self.broken_starttls:
                with self.lock:
                    self.starttls_seen += 1
                f.write(b"220 2.0.0 go ahead\r\n")
                f.write(b"this is not a TLS server hello\r\n")
                return
            elif line.upper().startswith(b"STARTTLS") and self.tls_ctx and tls is None:
                f.write(b"220 2.0.0 go ahead\r\n")
                tls = self.tls_ctx.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False)
                f = tls.makefile("rwb", buffering=0)
            elif verb == b"MAIL":
                rcpts = []
                f.write(b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                rcpts.append(line[8:].strip().strip(b"<>").decode())
                f.write(b"250 2.1.5 ok\r\n")
            elif verb == b"DATA":
                f.write(b"354 go\r\n")
                buf = []
                while True:
                    l2 = f.readline()
                    if not l2 or l2 == b".\r\n":
                        break
                    buf.append(l2)
                if self.data_delay:
                    threading.Event().wait(self.data_delay)
                with self.lock:
                    self.messages.append((rcpts, b"".join(buf)))
                f.write(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                f.write(b"221 2.0.0 bye\r\n")
                if tls is not None:
                    self._tls_end(tls)
                return
            else:
                f.write(b"250 2.0.0 ok\r\n")

    def stop(self):
        self.stopping = True
        self.sock.close()
        self.acceptor.join(5)
        for t in self.threads:
            t.join(5)
