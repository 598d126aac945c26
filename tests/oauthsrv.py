"""A fake OAuth 2.0 token endpoint (Google-like) for the XOAUTH2 tests.

Runs in a thread of the test process: HTTPS with the test PKI
(certs.py), standard library only.

    srv = OAuthServer(workdir, cert, key, client_id="cid.apps.test",
                      client_secret="csecret", user="user@test")
    srv.start(); srv.url("/token"); srv.stop()
    srv.new_refresh_token() -> a valid refresh token (file content)
    srv.requests(grant=None) -> what each POST /token carried (dicts)
    srv.issued -> access tokens issued, in order
    srv.revoke(access_token), srv.revoke_refresh_tokens(), srv.all_secrets()
    srv.expires_in = N (seconds, for the next tokens)
    srv.rotate = True  (each refresh answer carries a new refresh token
                        and the one used stops working, as RFC 6749 §6
                        allows)
    srv.fail_status = 503 (answer every POST with this, None: normal)

GET /auth is the consent page of the installed-app flow: it checks the
parameters (PKCE S256, loopback redirect_uri, scope, offline access)
and redirects to redirect_uri with a code, as Google does after the
user clicks "Allow"; POST /token with grant_type=authorization_code
checks the code verifier against it.

Valid access tokens are published (tmp + rename) to tokens.json in
workdir, {"tokens": {token: {"user": u, "exp": unix time}}}, which the
test upstream (upstream.py, xoauth2_tokens) reads on every AUTH.
"""

import base64
import hashlib
import http.server
import json
import os
import secrets
import ssl
import threading
import time
import urllib.parse


def _write_atomic(path, data):
    tmp = "%s.tmp.%d" % (path, threading.get_ident())
    with open(tmp, "w") as f:
        f.write(data)
    os.rename(tmp, path)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):     # quiet
        pass

    def _send(self, code, body, ctype="application/json", headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        srv = self.server.owner
        u = urllib.parse.urlsplit(self.path)
        if u.path != "/auth":
            return self._send(404, "{}")
        code, where = srv.authorize(urllib.parse.parse_qs(u.query))
        if code != 302:
            return self._send(code, where, "text/plain")
        self._send(302, "", "text/plain", [("Location", where)])

    def do_POST(self):
        srv = self.server.owner
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n).decode("ascii", "replace")
        code, doc = srv.token(self.path, self.headers, raw)
        self._send(code, json.dumps(doc) if isinstance(doc, dict) else doc)


class OAuthServer:
    def __init__(self, workdir, cert, key, client_id="cid.apps.test",
                 client_secret="csecret-42", user="user@test",
                 expires_in=3599):
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.tokens_path = os.path.join(self.workdir, "tokens.json")
        self.cert, self.key = cert, key
        self.client_id = client_id
        self.client_secret = client_secret
        self.user = user
        self.expires_in = expires_in
        self.rotate = False
        self.fail_status = None
        self.lock = threading.Lock()
        self._requests = []
        self.issued = []                # access tokens, in order
        self.refresh_issued = []        # every refresh token made
        self.refresh_valid = set()
        self.access = {}                # token -> expiry (unix time)
        self.codes = {}                 # code -> (challenge, redirect)
        self.httpd = None
        self._publish()

    # --- life cycle

    def start(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                            server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def url(self, path="/token", host="127.0.0.1"):
        return "https://%s:%d%s" % (host, self.port, path)

    # --- control (test side)

    def new_refresh_token(self):
        with self.lock:
            rt = "1//rt-" + secrets.token_urlsafe(24)
            self.refresh_issued.append(rt)
            self.refresh_valid.add(rt)
            return rt

    def revoke(self, token):
        with self.lock:
            self.access.pop(token, None)
            self._publish()

    def revoke_refresh_tokens(self):
        with self.lock:
            self.refresh_valid.clear()

    def requests(self, grant=None):
        with self.lock:
            return [r for r in self._requests
                    if grant is None or r.get("grant_type") == grant]

    def all_secrets(self):
        """Every secret this server knows of: for "never logged"."""
        with self.lock:
            return ([self.client_secret] + list(self.issued)
                    + list(self.refresh_issued))

    # --- server side

    def _publish(self):
        doc = {"tokens": {t: {"user": self.user, "exp": e}
                          for t, e in self.access.items()}}
        _write_atomic(self.tokens_path, json.dumps(doc))

    def _issue(self):
        """A new access token (lock held); the answer to send."""
        tok = "ya29.fake-%d-%s" % (len(self.issued) + 1,
                                    secrets.token_urlsafe(18))
        self.issued.append(tok)
        self.access[tok] = time.time() + self.expires_in
        self._publish()
        return {"access_token": tok, "expires_in": self.expires_in,
                "scope": "https://mail.google.com/",
                "token_type": "Bearer"}

    def authorize(self, q):
        one = {k: v[0] for k, v in q.items()}
        redirect = one.get("redirect_uri", "")
        ru = urllib.parse.urlsplit(redirect)
        problems = []
        if one.get("response_type") != "code":
            problems.append("response_type")
        if one.get("client_id") != self.client_id:
            problems.append("client_id")
        if ru.scheme != "http" or ru.hostname != "127.0.0.1" or not ru.port:
            problems.append("redirect_uri")
        if one.get("code_challenge_method") != "S256" or \
                len(one.get("code_challenge", "")) != 43:
            problems.append("code_challenge")
        if one.get("scope") != "https://mail.google.com/":
            problems.append("scope")
        if one.get("access_type") != "offline" or \
                one.get("prompt") != "consent":
            problems.append("offline consent")
        if not one.get("state"):
            problems.append("state")
        if problems:
            return 400, "bad authorization request: " + ", ".join(problems)
        code = "4/code-" + secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = (one["code_challenge"], redirect)
        return 302, redirect + "?" + urllib.parse.urlencode(
            {"state": one["state"], "code": code,
             "scope": "https://mail.google.com/"})

    def token(self, path, headers, raw):
        form = {k: v[0] for k, v in urllib.parse.parse_qs(
            raw, keep_blank_values=True).items()}
        rec = dict(form, path=path,
                   content_type=headers.get("Content-Type"),
                   host=headers.get("Host"), time=time.time())
        with self.lock:
            self._requests.append(rec)
            if path != "/token":
                return 404, {"error": "not_found"}
            if self.fail_status:
                return self.fail_status, "Service Unavailable"
            if form.get("client_id") != self.client_id or \
                    form.get("client_secret") != self.client_secret:
                return 401, {"error": "invalid_client",
                             "error_description": "Unauthorized"}
            if form.get("grant_type") == "refresh_token":
                return self._refresh(form)
            if form.get("grant_type") == "authorization_code":
                return self._exchange(form)
            return 400, {"error": "unsupported_grant_type"}

    def _refresh(self, form):
        rt = form.get("refresh_token")
        if rt not in self.refresh_valid:
            return 400, {"error": "invalid_grant",
                         "error_description":
                         "Token has been expired or revoked."}
        doc = self._issue()
        if self.rotate:
            self.refresh_valid.discard(rt)
            new = "1//rt-" + secrets.token_urlsafe(24)
            self.refresh_issued.append(new)
            self.refresh_valid.add(new)
            doc["refresh_token"] = new
        return 200, doc

    def _exchange(self, form):
        code = form.get("code")
        got = self.codes.pop(code, None)
        if got is None:
            return 400, {"error": "invalid_grant",
                         "error_description": "Malformed auth code."}
        challenge, redirect = got
        verifier = form.get("code_verifier", "")
        want = base64.urlsafe_b64encode(hashlib.sha256(
            verifier.encode()).digest()).decode().rstrip("=")
        if want != challenge or form.get("redirect_uri") != redirect:
            return 400, {"error": "invalid_grant",
                         "error_description": "Bad code verifier or "
                         "redirect_uri."}
        doc = self._issue()
        rt = "1//rt-" + secrets.token_urlsafe(24)
        self.refresh_issued.append(rt)
        self.refresh_valid.add(rt)
        doc["refresh_token"] = rt
        return 200, doc
