#!/usr/bin/env python3
"""Basic authentication in front of the test stack's Schema Registry.

Apicurio Registry 2.6 authenticates through an OpenID provider only, so to test genq's
basic-auth settings against the real registry this forwards every request, unchanged, to it
once the Authorization header carries USER:PASSWORD, and answers 401 otherwise (as
Confluent's registry does). It is a proxy, not a registry: every answer is the registry's.

    registry_auth_proxy.py UPSTREAM_BASE_URL USER PASSWORD PORT_FILE
"""
import base64
import http.server
import sys
import urllib.error
import urllib.request

UPSTREAM, USER, PASSWORD, PORT_FILE = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3], sys.argv[4]
WANT = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class Handler(http.server.BaseHTTPRequestHandler):
    def _forward(self):
        if self.headers.get("Authorization") != WANT:
            body = b'{"error_code":401,"message":"Unauthorized"}'
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="registry"')
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else None
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("accept", "content-type")}
        req = urllib.request.Request(UPSTREAM + self.path, data=data, method=self.command,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, body, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _forward

    def log_message(self, fmt, *args):
        sys.stderr.write("proxy: " + (fmt % args) + "\n")


def main():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(PORT_FILE + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(PORT_FILE + ".tmp", PORT_FILE)
    srv.serve_forever()


if __name__ == "__main__":
    main()
