"""Self-test of the test upstream (upstream.py) and the test PKI
(certs.py), using smtplib, ssl and swaks as clients: before the relay is
tested against it, the sink itself must be proven right.

Run as "/usr/bin/python3 tests/itest_upstream_selftest.py" (exit status
0/1); env TESTS_SRCDIR (the tests directory), KEEP_TMP (keep files).
No sleeps as synchronisation: waits are bounded polls.
"""

import base64
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.environ.get("TESTS_SRCDIR") or \
    os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import certs            # noqa: E402
import harness          # noqa: E402,F401 (skips when a prerequisite is missing)
import upstream         # noqa: E402

PASSWORD = "Pa55-w0rd-xyzzy"
USERS = {"user@test": PASSWORD}
TIMEOUT = upstream.TIMEOUT
PKI = None
TOP = None


def setUpModule():
    global PKI, TOP
    TOP = tempfile.mkdtemp(prefix="itest-upstream.")
    PKI = certs.make_pki(os.path.join(TOP, "pki"))


def tearDownModule():
    if not os.environ.get("KEEP_TMP"):
        shutil.rmtree(TOP, ignore_errors=True)


def client_ctx(ca=None):
    """A verifying client context (like the relay's)."""
    return ssl.create_default_context(cafile=ca or PKI.ca_crt)


# Odd on purpose: dot-stuffing, bare LF, 8-bit bytes, trailing spaces,
# a lone CR, an empty last line.
TRICKY = (b"From: a@client.test\r\nSubject: exact\r\n\r\n"
          b".one leading dot\r\n..two dots\r\n.\r\n"
          b" . \r\nbare\nlf and lone\rcr\r\n"
          b"8bit \xc3\xa9\xff\r\ntrailing   \r\n\r\n")


class Base(unittest.TestCase):
    tls = "starttls"
    kw = {}

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="up.", dir=TOP)
        self.up = self.make()

    def make(self, **kw):
        args = dict(tls=self.tls, cert=PKI.server_crt, key=PKI.server_key,
                    users=USERS)
        args.update(self.kw)
        args.update(kw)
        up = upstream.Upstream(
            tempfile.mkdtemp(prefix="w.", dir=self.dir), **args).start()
        self.addCleanup(self.check_clean, up)
        return up

    def check_clean(self, up):
        up.stop()
        self.assertEqual(up.errors(), [], up.log_text())

    def smtp(self, up=None, login=True):
        """smtplib session: STARTTLS (verified) and AUTH."""
        up = up or self.up
        s = smtplib.SMTP("127.0.0.1", up.port, local_hostname="client.test",
                         timeout=TIMEOUT)
        self.addCleanup(s.close)
        s.starttls(context=client_ctx())
        s.ehlo("client.test")
        if login:
            s.login("user@test", PASSWORD)
        return s


class TestStartTLS(Base):

    def test_ehlo_gmail_like(self):
        s = smtplib.SMTP("127.0.0.1", self.up.port, timeout=TIMEOUT)
        self.addCleanup(s.close)
        code, _ = s.ehlo("client.test")
        self.assertEqual(code, 250)
        feats = set(s.esmtp_features)
        self.assertEqual(feats, {"size", "8bitmime", "starttls",
                                 "enhancedstatuscodes", "pipelining",
                                 "smtputf8"})
        self.assertEqual(s.esmtp_features["size"], "35882577")
        s.starttls(context=client_ctx())
        s.ehlo("client.test")
        self.assertNotIn("starttls", s.esmtp_features)
        self.assertEqual(s.esmtp_features["auth"].split(), ["PLAIN", "LOGIN"])

    def test_mail_options_and_offers_off(self):
        """mail_options records the MAIL FROM parameters as sent; with
        smtputf8=False and eightbitmime=False the offers are gone and a
        UTF-8 command is refused."""
        s = self.smtp()
        s.sendmail("j\u00f6rg@client.test", ["r\u00fc@x.test"],
                   b"Subject: x\r\n\r\nb\xc3\xbc\r\n",
                   mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        m = self.up.wait_messages(1)[0]
        self.assertEqual(m.mail_from, "j\u00f6rg@client.test")
        self.assertEqual(m.rcpt_tos, ["r\u00fc@x.test"])
        self.assertIn("SMTPUTF8", m.mail_options)
        self.assertIn("BODY=8BITMIME", m.mail_options)
        off = self.make(smtputf8=False, eightbitmime=False)
        s = self.smtp(off)
        self.assertNotIn("smtputf8", s.esmtp_features)
        self.assertNotIn("8bitmime", s.esmtp_features)
        s.command_encoding = "utf-8"
        code, _ = s.docmd("MAIL FROM:<j\u00f6rg@client.test>")
        self.assertEqual(code, 500)
        self.assertEqual(off.messages(), [])

    def test_byte_exact_two_messages_one_connection(self):
        s = self.smtp()
        second = b"Subject: 2\r\n\r\nsecond\r\n"
        self.assertEqual(s.sendmail("a@client.test", ["r1@x.test",
                                                      "r2@y.test"], TRICKY),
                         {})
        s.sendmail("", ["r3@x.test"], second)
        s.quit()
        m = self.up.wait_messages(2)
        self.assertEqual(m[0].data, TRICKY)
        self.assertEqual(m[1].data, second)
        self.assertEqual(m[0].mail_from, "a@client.test")
        self.assertEqual(m[1].mail_from, "")
        self.assertEqual(m[0].rcpt_tos, ["r1@x.test", "r2@y.test"])
        self.assertEqual(m[0].conn_id, m[1].conn_id)
        self.assertEqual([x.msg_in_conn for x in m], [1, 2])
        for x in m:
            self.assertEqual((x.auth_user, x.tls, x.tls_version, x.helo),
                             ("user@test", True, "TLSv1.3", "client.test"))
        self.assertEqual(m[0].reply, "250 2.0.0 OK %d" % m[0].n)
        auth = self.up.events("auth")
        self.assertEqual(len(auth), 1)
        self.assertTrue(auth[0]["success"] and auth[0]["tls"])
        self.assertFalse(auth[0]["before_tls"])
        self.assertEqual(auth[0]["mech"], "PLAIN")

    def test_password_never_recorded(self):
        s = self.smtp()
        s.sendmail("a@client.test", ["r@x.test"], b"Subject: p\r\n\r\nx\r\n")
        s.quit()
        self.up.wait_messages(1)
        self.up.stop()
        blob = base64.b64encode(b"\0user@test\0" + PASSWORD.encode())
        for root, _, files in os.walk(self.up.workdir):
            for f in files:
                if f in ("config.json", "rules.json") or \
                        root.endswith("pki"):
                    continue    # the configuration itself
                with open(os.path.join(root, f), "rb") as fh:
                    text = fh.read()
                self.assertNotIn(PASSWORD.encode(), text, f)
                self.assertNotIn(blob, text, f)

    def test_auth_before_tls_recorded_and_refused(self):
        s = smtplib.SMTP("127.0.0.1", self.up.port, timeout=TIMEOUT)
        self.addCleanup(s.close)
        s.ehlo("client.test")
        code, msg = s.docmd("AUTH", "LOGIN")
        self.assertEqual(code, 530)
        code, _ = s.docmd("MAIL", "FROM:<a@b.test>")
        self.assertEqual(code, 530)
        a = self.up.wait_event(lambda e: e["ev"] == "auth")
        self.assertTrue(a["before_tls"])
        self.assertFalse(a["success"])

    def test_auth_required_and_wrong_password_then_fixed(self):
        s = self.smtp(login=False)
        code, msg = s.docmd("MAIL", "FROM:<a@b.test>")
        self.assertEqual((code, msg), (530, b"5.7.0 Authentication required"))
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            s.login("user@test", "wrong")
        self.assertEqual(cm.exception.smtp_code, 535)
        self.assertEqual(cm.exception.smtp_error,
                         b"5.7.8 Username and Password not accepted")
        self.up.set_users({"user@test": "new-one"})
        s.login("user@test", "new-one")
        s.sendmail("a@b.test", ["r@x.test"], b"Subject: u\r\n\r\nu\r\n")
        self.assertEqual(self.up.wait_messages(1)[0].auth_user, "user@test")
        auth = self.up.events("auth")
        self.assertEqual([(a["user"], a["mech"], a["success"])
                          for a in auth],
                         [("user@test", "PLAIN", False),     # smtplib tries
                          ("user@test", "LOGIN", False),     # both
                          ("user@test", "PLAIN", True)])

    def test_swaks_plain_and_login(self):
        for n, mech in enumerate(("PLAIN", "LOGIN"), 1):
            p = subprocess.run(
                ["swaks", "--server", "127.0.0.1", "--port",
                 str(self.up.port), "--tls", "--tls-verify",
                 "--tls-ca-path", PKI.ca_crt, "--auth", mech,
                 "--auth-user", "user@test", "--auth-password", PASSWORD,
                 "--from", "s@client.test", "--to", "r@x.test",
                 "--helo", "swaks.test", "--body", "via swaks " + mech],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, timeout=TIMEOUT)
            out = p.stdout.decode(errors="replace")
            self.assertEqual(p.returncode, 0, out)
            m = self.up.wait_messages(n)[-1]
            self.assertIn(b"via swaks " + mech.encode(), m.data)
            self.assertEqual((m.auth_user, m.tls), ("user@test", True))
            a = self.up.events("auth")[-1]
            self.assertEqual((a["mech"], a["success"], a["tls"]),
                             (mech, True, True))

    def test_rcpt_rule_550_and_times(self):
        self.up.set_rules([{"cmd": "RCPT", "match": "bad@",
                            "reply": "550 5.1.1 no such user", "times": 1}])
        s = self.smtp()
        refused = s.sendmail("a@b.test", ["good@x.test", "bad@x.test"],
                             b"Subject: r\r\n\r\nr\r\n")
        self.assertEqual(refused,
                         {"bad@x.test": (550, b"5.1.1 no such user")})
        self.assertEqual(self.up.rule_hits(), {0: 1})
        self.assertEqual(s.sendmail("a@b.test", ["bad@x.test"], b"x\r\n"),
                         {})
        m = self.up.wait_messages(2)
        self.assertEqual([x.rcpt_tos for x in m],
                         [["good@x.test"], ["bad@x.test"]])

    def test_multiline_reply_and_421_closes(self):
        self.up.set_rules([
            {"cmd": "MAIL", "match": "multi@",
             "reply": "451 4.3.0 first\n451 4.3.0 second"},
            {"cmd": "MAIL", "reply": "421 4.7.0 go away"}])
        s = self.smtp()
        code, msg = s.docmd("MAIL", "FROM:<multi@b.test>")
        self.assertEqual((code, msg), (451, b"4.3.0 first\n4.3.0 second"))
        code, _ = s.docmd("MAIL", "FROM:<a@b.test>")
        self.assertEqual(code, 421)
        with self.assertRaises(smtplib.SMTPServerDisconnected):
            s.docmd("NOOP")

    def test_data_drop_closes_without_reply(self):
        self.up.set_rules([{"cmd": "DATA", "action": "drop"}])
        s = self.smtp()
        with self.assertRaises(smtplib.SMTPServerDisconnected):
            s.sendmail("a@b.test", ["r@x.test"], TRICKY)
        self.assertEqual(self.up.messages(), [])
        d = self.up.messages(outcome="dropped")
        self.assertEqual(len(d), 1)
        self.assertEqual(d[0].data, TRICKY)
        ev = self.up.wait_event(lambda e: e["ev"] == "disconnect")
        after = [e for e in self.up.events()
                 if e["ev"] == "reply" and e["t"] >= ev["t"] - 1 and
                 e["reply"].startswith("250 2.0.0")]
        self.assertEqual(after, [])

    def test_data_reject_and_command_stage(self):
        self.up.set_rules([
            {"cmd": "DATA", "match": "SPAM", "reply": "554 5.7.1 spam"},
            {"cmd": "DATA", "when": "command", "match": "",
             "reply": "451 4.3.0 later", "times": 1}])
        s = self.smtp()
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            s.sendmail("a@b.test", ["r@x.test"], b"hi\r\n")
        self.assertEqual(cm.exception.smtp_code, 451)
        s.rset()
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            s.sendmail("a@b.test", ["r@x.test"], b"SPAM\r\n")
        self.assertEqual(cm.exception.smtp_code, 554)
        self.assertEqual(self.up.messages(outcome="rejected")[0].data,
                         b"SPAM\r\n")

    def test_pipelining_seen(self):
        s = self.smtp()
        s.send(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<r@x.test>\r\n"
               b"RCPT TO:<bad@x.test>\r\nDATA\r\n")
        self.assertEqual([s.getreply()[0] for _ in range(4)],
                         [250, 250, 250, 354])
        s.send(b"pipelined\r\n.\r\n")
        self.assertEqual(s.getreply()[0], 250)
        cmds = [e for e in self.up.events("cmd")
                if e["cmd"] in ("MAIL", "RCPT", "DATA")]
        self.assertEqual([e["pipelined"] for e in cmds],
                         [True, True, True, False])
        self.assertEqual(self.up.wait_messages(1)[0].rcpt_tos,
                         ["r@x.test", "bad@x.test"])

    def test_size_limit(self):
        up = self.make(size=1000)
        s = self.smtp(up)
        self.assertEqual(s.esmtp_features["size"], "1000")
        with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
            s.sendmail("a@b.test", ["r@x.test"],
                       (b"x" * 500 + b"\r\n") * 3)
        self.assertEqual(cm.exception.smtp_code, 552)

    def test_data_delay(self):
        self.up.set_rules([{"cmd": "DATA", "action": "delay",
                            "seconds": 0.3}])
        s = self.smtp()
        t0 = time.monotonic()
        s.sendmail("a@b.test", ["r@x.test"], b"slow\r\n")
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        self.assertEqual(len(self.up.messages()), 1)

    def test_connect_421(self):
        self.up.set_rules([{"cmd": "CONNECT", "reply": "421 4.3.2 busy",
                            "times": 2}])
        for _ in range(2):
            with self.assertRaises(smtplib.SMTPConnectError) as cm:
                smtplib.SMTP("127.0.0.1", self.up.port, timeout=TIMEOUT)
            self.assertEqual(cm.exception.smtp_code, 421)
        s = self.smtp()         # third connection: rule used up
        s.noop()

    def test_restart_and_kill_same_port(self):
        s = self.smtp()
        s.sendmail("a@b.test", ["r@x.test"], b"one\r\n")
        s.quit()
        port = self.up.port
        self.up.stop()
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), 5).close()
        self.up.start()
        self.assertEqual(self.up.port, port)
        s = self.smtp()
        s.sendmail("a@b.test", ["r@x.test"], b"two\r\n")
        self.up.kill()          # mid-session: the client sees a dead peer
        with self.assertRaises((smtplib.SMTPServerDisconnected, OSError)):
            s.noop()
        self.up.start()
        self.assertEqual(self.up.port, port)
        s = self.smtp()
        s.sendmail("a@b.test", ["r@x.test"], b"three\r\n")
        s.quit()
        m = self.up.wait_messages(3)
        self.assertEqual([x.data for x in m], [b"one\r\n", b"two\r\n",
                                               b"three\r\n"])
        self.assertEqual(len({x.conn_id for x in m}), 3)
        self.assertEqual([x.n for x in m], [1, 2, 3])

    def test_robust_against_junk(self):
        sock = socket.create_connection(("127.0.0.1", self.up.port), TIMEOUT)
        self.addCleanup(sock.close)
        f = sock.makefile("rb")
        self.assertTrue(f.readline().startswith(b"220 "))
        for junk in (b"\xff\xfe\x00\r\n", b"EHLO\r\n", b"X" * 5000 + b"\r\n",
                     b"AUTH PLAIN !!!\r\n", b"MAIL FROM:<<<\r\n",
                     b"RCPT\r\n", b"DATA\r\n", b"\r\n"):
            sock.sendall(junk)
            line = f.readline()
            self.assertRegex(line, rb"^[45]\d\d[ -]")
        sock.close()
        s = self.smtp()
        s.sendmail("a@b.test", ["r@x.test"], b"still fine\r\n")
        self.assertEqual(len(self.up.wait_messages(1)), 1)

    def test_starttls_verification_failure_recorded(self):
        bad = self.make(cert=PKI.wrong_server_crt, key=PKI.wrong_server_key)
        s = smtplib.SMTP("127.0.0.1", bad.port, timeout=TIMEOUT)
        self.addCleanup(s.close)
        with self.assertRaises(ssl.SSLCertVerificationError):
            s.starttls(context=client_ctx())
        bad.wait_event(lambda e: e["ev"] == "tls_failed")
        self.assertEqual(bad.events("auth"), [])


class TestImplicit(Base):
    tls = "implicit"

    def test_smtp_ssl_auth_message(self):
        s = smtplib.SMTP_SSL("127.0.0.1", self.up.port,
                             local_hostname="client.test",
                             context=client_ctx(), timeout=TIMEOUT)
        self.addCleanup(s.close)
        s.ehlo()
        self.assertNotIn("starttls", s.esmtp_features)
        self.assertIn("auth", s.esmtp_features)
        s.login("user@test", PASSWORD)
        s.sendmail("a@b.test", ["r@x.test"], TRICKY)
        s.quit()
        m = self.up.wait_messages(1)[0]
        self.assertEqual((m.data, m.tls, m.auth_user),
                         (TRICKY, True, "user@test"))
        c = self.up.events("connect")[0]
        self.assertTrue(c["tls"])

    def handshake(self, cert, key, ca=None, name="upstream.test"):
        up = self.make(cert=cert, key=key)
        ctx = client_ctx(ca)
        with socket.create_connection(("127.0.0.1", up.port),
                                      TIMEOUT) as raw:
            with ctx.wrap_socket(raw, server_hostname=name) as tls:
                return tls.version()

    def verify_fails(self, code, **kw):
        with self.assertRaises(ssl.SSLCertVerificationError) as cm:
            self.handshake(**kw)
        self.assertEqual(cm.exception.verify_code, code,
                         cm.exception.verify_message)

    def test_cert_verification(self):
        ok = dict(cert=PKI.server_crt, key=PKI.server_key)
        for name in ("upstream.test", "localhost", "127.0.0.1"):
            self.assertEqual(self.handshake(name=name, **ok), "TLSv1.3")
        self.assertEqual(self.handshake(PKI.chain_crt, PKI.chain_key),
                         "TLSv1.3")
        self.verify_fails(20, ca=PKI.wrong_ca_crt, **ok)
        self.verify_fails(20, cert=PKI.wrong_server_crt,
                          key=PKI.wrong_server_key)
        self.verify_fails(62, cert=PKI.other_crt, key=PKI.other_key)
        self.verify_fails(10, cert=PKI.expired_crt, key=PKI.expired_key)


class TestPlaintext(Base):
    tls = "none"

    def test_auth_offered_and_recorded_in_plaintext(self):
        s = smtplib.SMTP("127.0.0.1", self.up.port, timeout=TIMEOUT)
        self.addCleanup(s.close)
        s.ehlo("client.test")
        self.assertNotIn("starttls", s.esmtp_features)
        self.assertIn("auth", s.esmtp_features)
        s.login("user@test", PASSWORD)
        s.sendmail("a@b.test", ["r@x.test"], b"plain\r\n")
        a = self.up.events("auth")[0]
        self.assertEqual((a["tls"], a["before_tls"], a["success"]),
                         (False, True, True))
        m = self.up.wait_messages(1)[0]
        self.assertEqual((m.tls, m.tls_version), (False, None))

    def test_starttls_not_offered_downgrade(self):
        up = self.make(tls="starttls", offer_starttls=False)
        s = smtplib.SMTP("127.0.0.1", up.port, timeout=TIMEOUT)
        self.addCleanup(s.close)
        s.ehlo("client.test")
        self.assertNotIn("starttls", s.esmtp_features)
        self.assertIn("auth", s.esmtp_features)
        self.assertEqual(s.docmd("STARTTLS")[0], 454)


if __name__ == "__main__":
    unittest.main(verbosity=2)
