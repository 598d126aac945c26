"""XOAUTH2 end to end: smartrelayd gets access tokens from a fake token
endpoint over TLS (oauthsrv.py), authenticates to the test upstream
with them (upstream.py, Gmail-like XOAUTH2), caches and refreshes them,
persists a rotated refresh token, pauses the queue on invalid_grant,
refuses an endpoint it cannot verify, never logs a secret; and
"smartrelayctl oauth-setup" gets the first refresh token with the
installed-app flow, a urllib client standing in for the browser.

No sleeps as synchronisation: bounded polls (waiting for a token to
expire polls the clock).
"""

import os
import re
import select
import signal
import ssl
import stat
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import oauthsrv  # noqa: E402
from harness import TIMEOUT, wait_for  # noqa: E402
from itest_relay import RelayTest, USER, simple  # noqa: E402

SMARTRELAYCTL = os.environ.get("SMARTRELAYCTL") or os.path.join(
    harness.HERE, "..", "src", "smartrelayctl")
EX_NOPERM = 77
CLIENT_ID = "123-abc.apps.googleusercontent.test"
SECRET = "GOCSPX-client-secret-value"


def read(path):
    with open(path) as f:
        return f.read()


class OAuthTest(RelayTest):

    def setUp(self):
        super().setUp()
        self.out = ""
        self.osrv = oauthsrv.OAuthServer(
            os.path.join(self.tmp, "oauth"), self.pki.server_crt,
            self.pki.server_key, client_id=CLIENT_ID, client_secret=SECRET,
            user=USER).start()
        self.addCleanup(self.osrv.stop)
        self.secret_file = self.private("client-secret", SECRET)
        self.rt_file = os.path.join(self.tmp, "state", "refresh-token")
        os.makedirs(os.path.dirname(self.rt_file))
        self.private(self.rt_file, self.osrv.new_refresh_token())

    def private(self, name, text):
        path = os.path.join(self.tmp, name)
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        os.write(fd, (text + "\n").encode())
        os.close(fd)
        os.rename(path + ".tmp", path)
        return path

    def xupstream(self, **kw):
        return self.upstream(auth_mechs=("PLAIN", "LOGIN", "XOAUTH2"),
                             users={}, xoauth2_tokens=self.osrv.tokens_path,
                             **kw)

    def xrelay(self, up, ca=None, start=True, **opts):
        ups = {"host": "127.0.0.1", "port": up.port,
               "tls": up.config["tls"], "verify_name": "upstream.test",
               "ca_file": self.pki.ca_crt, "username": USER,
               "auth": "xoauth2", "oauth_client_id": CLIENT_ID,
               "oauth_client_secret_file": self.secret_file,
               "oauth_refresh_token_file": self.rt_file,
               "oauth_token_url": self.osrv.url("/token"),
               "oauth_ca_file": ca or self.pki.ca_crt, "connections": 1}
        q = {"lifetime": "5d", "retry_min": "1s", "retry_max": "2s",
             "bounce_to": ""}
        d = self.daemon(start=start, upstream=ups, queue=q, **opts)
        self.addCleanup(self.assert_no_secrets, d)
        return d

    def assert_no_secrets(self, d):
        """The whole daemon log (debug level) holds no token, refresh
        token or client secret, nor their XOAUTH2 encoding."""
        log = d.full_log()
        for s in self.osrv.all_secrets():
            self.assertNotIn(s, log)
        self.assertNotIn("ya29.", log)
        self.assertNotIn("1//rt-", log)
        self.assertNotIn(SECRET[:12], log)

    def xevents(self, up):
        return up.events("xoauth2")

    def deliver(self, d, up, subject):
        qid = self.send(d, "a@client.test", ["rcpt@x.test"], simple(subject))
        self.wait_delivery(d, qid, "rcpt@x.test", "sent")
        self.wait_gone(d, qid)
        return qid

    def new_connection(self, up):
        """Closes the daemon's upstream connections (restart), so the
        next message needs a new login."""
        up.restart()

    # ------------------------------------------------------------

    def test_delivery_and_token_cached(self):
        up = self.xupstream()
        d = self.xrelay(up)
        self.deliver(d, up, "one")
        self.new_connection(up)
        self.deliver(d, up, "two")
        msgs = up.messages()
        self.assertEqual(len(msgs), 2)
        self.assertTrue(all(m.auth_user == USER for m in msgs))
        self.assertNotEqual(msgs[0].conn_id, msgs[1].conn_id)
        # Two logins with one token: one POST only.
        ev = self.xevents(up)
        self.assertEqual([e["valid"] for e in ev], [True, True])
        self.assertEqual(ev[0]["token"], ev[1]["token"])
        self.assertEqual(ev[0]["token"], self.osrv.issued[0])
        reqs = self.osrv.requests()
        self.assertEqual(len(reqs), 1)
        r = reqs[0]
        self.assertEqual(r["grant_type"], "refresh_token")
        self.assertEqual(r["client_id"], CLIENT_ID)
        self.assertEqual(r["client_secret"], SECRET)
        self.assertEqual(r["refresh_token"], self.osrv.refresh_issued[0])
        self.assertEqual(r["content_type"],
                         "application/x-www-form-urlencoded")
        self.assertTrue(all(e["well_formed"] for e in ev))
        d.wait_log(r"oauth token obtained upstream=\S+ expires_in=3599s")

    def test_refresh_before_expiry(self):
        self.osrv.expires_in = 4
        up = self.xupstream()
        d = self.xrelay(up)
        self.deliver(d, up, "one")
        expiry = time.time() + 4
        self.new_connection(up)
        wait_for(lambda: time.time() > expiry, what="token expiry")
        self.deliver(d, up, "two")
        ev = self.xevents(up)
        # The expired token was never offered: refreshed before use.
        self.assertEqual([e["valid"] for e in ev], [True, True])
        self.assertEqual(len(self.osrv.requests()), 2)
        self.assertEqual([e["token"] for e in ev], self.osrv.issued)

    def test_refresh_on_535(self):
        up = self.xupstream()
        d = self.xrelay(up)
        self.deliver(d, up, "one")
        self.osrv.revoke(self.osrv.issued[0])
        self.new_connection(up)
        self.deliver(d, up, "two")
        ev = self.xevents(up)
        self.assertEqual([e["valid"] for e in ev], [True, False, True])
        self.assertEqual(ev[1]["token"], self.osrv.issued[0])
        self.assertEqual(ev[2]["token"], self.osrv.issued[1])
        # The retry used the same connection, after 334 and 535.
        self.assertEqual(ev[1]["conn"], ev[2]["conn"])
        replies = [e["reply"] for e in up.events("auth")]
        self.assertTrue(replies[1].startswith("535"), replies)
        self.assertEqual(len(self.osrv.requests()), 2)

    def test_rotated_refresh_token_persisted(self):
        self.osrv.rotate = True
        up = self.xupstream()
        d = self.xrelay(up)
        self.deliver(d, up, "one")
        rotated = self.osrv.refresh_issued[1]
        wait_for(lambda: read(self.rt_file) == rotated + "\n",
                 what="the rotated refresh token in the file")
        st = os.stat(self.rt_file)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(os.listdir(os.path.dirname(self.rt_file)),
                         ["refresh-token"])
        d.wait_log(r"oauth refresh token rotated")
        # The next POST uses the new one (the old one is dead).
        self.osrv.revoke(self.osrv.issued[0])
        self.new_connection(up)
        self.deliver(d, up, "two")
        reqs = self.osrv.requests()
        self.assertEqual(len(reqs), 2)
        self.assertEqual(reqs[1]["refresh_token"], rotated)
        # And after a restart of the daemon too, from the file.
        d.restart()
        self.osrv.revoke(self.osrv.issued[1])
        self.new_connection(up)
        self.deliver(d, up, "three")
        self.assertEqual(self.osrv.requests()[2]["refresh_token"],
                         self.osrv.refresh_issued[2])

    def test_invalid_grant_pauses_queue(self):
        up = self.xupstream()
        self.osrv.revoke_refresh_tokens()
        d = self.xrelay(up)
        qid = self.send(d, "a@client.test", ["rcpt@x.test"],
                        simple("waits"))
        d.wait_log(r"upstream state=credentials-rejected")
        log = d.log()
        errs = [ln for ln in log.splitlines() if "invalid_grant" in ln
                and not ln.startswith("<7>")]
        self.assertEqual(len(errs), 1, errs)
        self.assertIn("oauth-setup", errs[0])
        self.assertIn("queue paused", errs[0])
        # Nothing bounced, nothing lost, nothing sent upstream.
        self.assertEqual(d.queued_ids(), [qid])
        self.assertEqual(self.xevents(up), [])
        rc, out, _ = self.ctl(d.conf_path, "test")
        self.assertEqual(rc, EX_NOPERM, out)
        self.assertIn("invalid_grant", out)
        self.assertIn("fix: ", out)
        self.assertIn("smartrelayctl oauth-setup", out)
        # Re-consent (a new refresh token in the file), flush: sent.
        self.private(self.rt_file, self.osrv.new_refresh_token())
        os.kill(d.pid, signal.SIGUSR1)
        self.wait_delivery(d, qid, "rcpt@x.test", "sent")

    def test_ctl_test_ok(self):
        up = self.xupstream()
        d = self.xrelay(up, start=False)
        rc, out, err = self.ctl(d.conf_path, "test")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("authenticated as %s" % USER, out)
        self.assertEqual([e["valid"] for e in self.xevents(up)], [True])
        for s in self.osrv.all_secrets():
            self.assertNotIn(s, out + err)

    def test_wrong_ca_not_trusted(self):
        up = self.xupstream()
        d = self.xrelay(up, ca=self.pki.wrong_ca_crt)
        qid = self.send(d, "a@client.test", ["rcpt@x.test"],
                        simple("untrusted"))
        m = d.wait_log(r"upstream state=unavailable reason=\"([^\"]*)\"")
        self.assertIn("certificate verify failed", m.group(1))
        self.assertIn("token endpoint", m.group(1))
        # No form was ever sent to the untrusted endpoint.
        self.assertEqual(self.osrv.requests(), [])
        self.assertEqual(self.xevents(up), [])
        self.assertEqual(d.queued_ids(), [qid])

    # ------------------------------------------------------------
    # oauth-setup

    def ctl(self, conf, *args):
        p = subprocess.run([SMARTRELAYCTL, "-f", conf] + list(args),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=TIMEOUT * 3)
        return (p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace"))

    def setup_proc(self, *extra):
        os.unlink(self.rt_file)
        d = self.xrelay(self.xupstream(), start=False)
        p = subprocess.Popen(
            [SMARTRELAYCTL, "-f", d.conf_path, "oauth-setup",
             "--auth-url", self.osrv.url("/auth")] + list(extra),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        self.addCleanup(self._reap, p)
        url = self.read_until(p, r"^  (https://\S+)$").group(1)
        return p, url

    def _reap(self, p):
        if p.poll() is None:
            p.kill()
        p.wait(TIMEOUT)
        p.stdout.close()
        if p.stdin:
            p.stdin.close()

    def read_until(self, p, regex):
        """Reads the tool's output until a line matches; the match.
        Unbuffered reads, so select() sees everything not yet taken."""
        rx = re.compile(regex, re.M)
        deadline = time.monotonic() + TIMEOUT
        pos = len(self.out)
        while True:
            m = rx.search(self.out, pos)
            if m and self.out.endswith("\n"):
                return m
            r, _, _ = select.select([p.stdout], [], [],
                                    max(0, deadline - time.monotonic()))
            chunk = os.read(p.stdout.fileno(), 65536) if r else b""
            if not chunk:
                raise AssertionError("no line /%s/ in %r" % (regex,
                                                              self.out))
            self.out += chunk.decode("utf-8", "replace")

    def rest(self, p):
        """The rest of the output, once the tool has exited."""
        while True:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                return self.out
            self.out += chunk.decode("utf-8", "replace")

    def check_saved(self, p):
        rc = p.wait(TIMEOUT)
        out = self.rest(p)
        self.assertEqual(rc, 0, out)
        self.assertIn("OK: refresh token saved to %s" % self.rt_file, out)
        rt = self.osrv.refresh_issued[-1]
        self.assertEqual(read(self.rt_file), rt + "\n")
        self.assertEqual(stat.S_IMODE(os.stat(self.rt_file).st_mode), 0o600)
        ex = self.osrv.requests("authorization_code")
        self.assertEqual(len(ex), 1)
        self.assertEqual(ex[0]["client_secret"], SECRET)
        for s in self.osrv.all_secrets():
            self.assertNotIn(s, out)

    def test_oauth_setup_browser(self):
        p, url = self.setup_proc()
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        self.assertEqual(q["scope"], ["https://mail.google.com/"])
        self.assertEqual(q["login_hint"], [USER])
        # The "browser": consent page, then its redirect to the tool.
        ctx = ssl.create_default_context(cafile=self.pki.ca_crt)
        with urllib.request.urlopen(url, context=ctx,
                                    timeout=TIMEOUT) as r:
            self.assertEqual(r.status, 200)
            self.assertIn(b"access granted", r.read())
        self.check_saved(p)
        # A daemon with the new token delivers.
        up = self.xupstream()
        d = self.xrelay(up)
        self.deliver(d, up, "after setup")

    def test_oauth_setup_manual(self):
        p, url = self.setup_proc("--manual")
        ctx = ssl.create_default_context(cafile=self.pki.ca_crt)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **kw):
                return None
        opener = urllib.request.build_opener(
            NoRedirect, urllib.request.HTTPSHandler(context=ctx))
        with self.assertRaises(urllib.error.HTTPError) as cm:
            opener.open(url, timeout=TIMEOUT)
        where = cm.exception.headers["Location"]
        cm.exception.close()
        self.assertTrue(where.startswith("http://127.0.0.1:"), where)
        # A wrong paste is refused, then the right one accepted.
        p.stdin.write(b"http://127.0.0.1:1/?code=x&state=forged\n")
        p.stdin.flush()
        self.read_until(p, r".*not accepted")
        p.stdin.write(where.encode() + b"\n")
        p.stdin.close()
        self.check_saved(p)


if __name__ == "__main__":
    unittest.main(verbosity=2)
