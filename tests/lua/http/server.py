#!/usr/bin/env python3
"""server.py: the local HTTP server the http module's tests talk to.

Listens on 127.0.0.1, port 0 (the kernel picks one), and prints the port on
stdout once it accepts connections. HTTP/1.1 with keep-alive, so that the
client can reuse connections. Endpoints:

  /json               a JSON document holding the integer 9007199254740993
  /echo               any method: {"method", "path", "headers", "body", "peer"}
                      as JSON (peer: the client's port, to see connection reuse)
  /status/N           status N
  /slow?ms=N&id=K     answers after N ms; records under K whether the client
                      went away first ("gone") or got the answer ("finished")
  /stats?id=K         {"state": "running" | "gone" | "finished" | null}
  /big?bytes=N        N bytes (with Content-Length; &close=1: without, the
                      body ends when the connection closes)
  /redirect           302 to /json
"""
import json
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STATS = {}
LOCK = threading.Lock()


def record(key, state):
    with LOCK:
        STATS[key] = state


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the test prints what matters
        pass

    def reply(self, status, body, ctype="application/json", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def client_gone_within(self, seconds):
        """Wait up to `seconds`; True as soon as the client closes its end."""
        sock = self.connection
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([sock], [], [], left)
            if ready:
                try:
                    if sock.recv(1, socket.MSG_PEEK) == b"":
                        return True
                except (ConnectionResetError, BrokenPipeError):
                    return True
                time.sleep(min(left, 0.01))  # pipelined bytes: keep waiting

    def handle_any(self):
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        path = url.path

        if path == "/json":
            self.reply(200, '{"id": 9007199254740993, "name": "widget", "ok": true}')
        elif path == "/echo":
            headers = {}
            for name, value in self.headers.items():
                key = name.lower()
                headers[key] = headers[key] + ", " + value if key in headers else value
            self.reply(200, json.dumps({"method": self.command, "path": self.path,
                                        "headers": headers, "peer": self.client_address[1],
                                        "body": body.decode("utf-8", "replace")}),
                       headers=[("X-Multi", "a"), ("X-Multi", "b")])
        elif path.startswith("/status/"):
            self.reply(int(path[len("/status/"):]), '{"status": "as asked"}')
        elif path == "/slow":
            key = q.get("id", "")
            record(key, "running")
            if self.client_gone_within(int(q.get("ms", "1000")) / 1000):
                record(key, "gone")
                self.close_connection = True
                return
            try:
                self.reply(200, '{"slow": true}')
                self.wfile.flush()
                record(key, "finished")
            except (BrokenPipeError, ConnectionResetError):
                record(key, "gone")
                self.close_connection = True
        elif path == "/stats":
            with LOCK:
                state = STATS.get(q.get("id", ""))
            self.reply(200, json.dumps({"state": state}))
        elif path == "/big":
            size = int(q.get("bytes", "0"))
            chunk = b"x" * 65536
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if q.get("close"):
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(size))
            self.end_headers()
            try:
                while size > 0:
                    self.wfile.write(chunk[:min(size, len(chunk))])
                    size -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
        elif path == "/redirect":
            self.reply(302, "", "text/plain", headers=[("Location", "/json")])
        else:
            self.reply(404, '{"error": "no such endpoint"}')

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a client that aborts (the tests do it on purpose) resets its
        # connection; that is not worth a traceback
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def main():
    server = Server(("127.0.0.1", 0), Handler)
    if len(sys.argv) == 3:  # server.py CERT KEY: serve HTTPS with that certificate
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[1], sys.argv[2])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
