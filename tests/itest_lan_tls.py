"""smartrelayd LAN side: STARTTLS, implicit TLS, inbound AUTH and the
per-network policy, with real clients (smtplib, swaks, raw sockets).

Every daemon here listens on 127.0.0.1 (plain: STARTTLS offered, AUTH
only after it), 127.0.0.2 (plain, AUTH allowed in plaintext) and an
implicit TLS port on 127.0.0.1, with the test PKI's server certificate
and a users file holding alice.  Networks: 127.0.0.3 must AUTH,
127.0.0.4 rejects bare LF.  Clients pick their source address to land
in a network.  No sleeps as synchronisation: bounded polls.
"""

import atexit
import base64
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import harness  # noqa: E402
from harness import Client, DaemonTest, HOSTNAME, TIMEOUT  # noqa: E402
from harness import wait_for  # noqa: E402

USER = "alice"
PASSWORD = "correct horse"
_PKI = None
_TOP = None

# Our trace header over TLS (RFC 3848 protocol names).
TLS_RECEIVED_RE = re.compile(
    rb"^Received: from (?P<helo>\S+) \(\[(?P<ip>[^\]]+)\]\)\r\n"
    rb"\t\(using (?P<version>TLSv[0-9.]+) with cipher (?P<cipher>\S+)\)\r\n"
    rb"\tby relay\.test \(smartrelay\) with (?P<proto>[A-Z]+) "
    rb"id (?P<id>[0-9a-f]{16})\r\n")
PLAIN_RECEIVED_RE = re.compile(
    rb"^Received: from (?P<helo>\S+) \(\[(?P<ip>[^\]]+)\]\)\r\n"
    rb"\tby relay\.test \(smartrelay\) with (?P<proto>[A-Z]+) "
    rb"id (?P<id>[0-9a-f]{16})\r\n")
MSG = (b"From: <alice@lan.test>\r\nTo: <bob@example.org>\r\n"
       b"Subject: over TLS\r\n\r\nHello from the printer.\r\n")


def pki():
    """The test PKI, made once per process."""
    global _PKI, _TOP
    if _PKI is None:
        _TOP = tempfile.mkdtemp(prefix="itest-lan-tls.")
        atexit.register(_remove_top)
        _PKI = certs.make_pki(os.path.join(_TOP, "pki"))
    return _PKI


def _remove_top():
    if _TOP and not os.environ.get("KEEP_TMP"):
        shutil.rmtree(_TOP, ignore_errors=True)


def crypt_hash(password):
    """A sha512-crypt hash made by the openssl CLI, as the docs say."""
    p = subprocess.run(["openssl", "passwd", "-6", "-stdin"],
                       input=password.encode(), stdout=subprocess.PIPE,
                       check=True, timeout=TIMEOUT)
    return p.stdout.decode().strip()


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def client_ctx(tls10=False):
    """A verifying client context for the test CA; with tls10, one that
    speaks TLS 1.0 only, as an old printer does."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki().ca_crt)
    if tls10:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1
    return ctx


def queued_id(text):
    m = re.search(r"queued as ([0-9a-f]{16})\b", text)
    return m.group(1) if m else None


class LanTlsTest(DaemonTest):

    def lan_daemon(self, min_version="1.2", users=None, **opts):
        """A daemon with the LAN TLS/AUTH setup described above; its
        ports are in self.plain, self.plain_auth and self.tls."""
        p = pki()
        d = self.daemon(start=False, **opts)
        self.users_path = os.path.join(d.dir, "users")
        self.write_users(users or {USER: PASSWORD})
        d.opts.update({
            "listen": ["127.0.0.1:0", "127.0.0.2:0"],
            "listen_tls": ["127.0.0.1:0"],
            "tls": {"cert_file": p.server_crt, "key_file": p.server_key,
                    "min_version": min_version},
            "auth": {"users_file": self.users_path,
                     "plaintext": ["127.0.0.2:0"]},
            'network "127.0.0.3/32"': {"name": "office",
                                       "auth": "required"},
            'network "127.0.0.4/32"': {"bare_lf": "reject"},
        })
        d.opts.update(opts)
        with open(d.conf_path, "w") as f:
            f.write(harness.conf_text(d.opts))
        d.start()
        log = d.log()
        self.plain = int(re.search(
            r"listener listening addr=127\.0\.0\.1:(\d+)\n", log).group(1))
        self.plain_auth = int(re.search(
            r"listener listening addr=127\.0\.0\.2:(\d+) auth=plaintext\n",
            log).group(1))
        self.tls = int(re.search(
            r"listener listening addr=127\.0\.0\.1:(\d+) tls=implicit\n",
            log).group(1))
        return d

    def write_users(self, users):
        with open(self.users_path + ".tmp", "w") as f:
            f.write("# LAN accounts\n")
            for name, pw in users.items():
                f.write("%s:%s\n" % (name, crypt_hash(pw)))
        os.chmod(self.users_path + ".tmp", 0o600)
        os.rename(self.users_path + ".tmp", self.users_path)

    def smtp(self, host="127.0.0.1", port=None, source=None):
        s = smtplib.SMTP(host, port or self.plain,
                         local_hostname="client.example", timeout=TIMEOUT,
                         source_address=(source, 0) if source else None)
        self.addCleanup(s.close)
        return s

    def assertTrace(self, d, qid, proto, tls=True, body=MSG):
        """Message <qid> is queued with our trace header naming <proto>
        (and the TLS version and cipher) followed by <body>."""
        self.assertIn(qid, d.queued_ids())
        data = d.data(qid)
        rx = TLS_RECEIVED_RE if tls else PLAIN_RECEIVED_RE
        m = rx.match(data)
        self.assertIsNotNone(m, data[:400])
        self.assertEqual(m.group("proto").decode(), proto)
        self.assertEqual(m.group("id").decode(), qid)
        if body:
            harness.unstamp(data, body, tail=True)
        self.assertEqual(d.envelope(qid)["size"], len(data))
        return m

    def assertNoSecrets(self, d):
        log = d.full_log()
        self.assertNotIn(PASSWORD, log)
        self.assertNotIn(b64("\0%s\0%s" % (USER, PASSWORD)), log)
        self.assertNotIn(b64(PASSWORD), log)

    # -- STARTTLS and implicit TLS

    def test_starttls_auth_smtplib(self):
        d = self.lan_daemon()
        s = self.smtp()
        code, _ = s.ehlo()
        self.assertEqual(code, 250)
        self.assertTrue(s.has_extn("starttls"))
        self.assertFalse(s.has_extn("auth"))
        self.assertEqual(s.starttls(context=client_ctx())[0], 220)
        s.ehlo()
        self.assertFalse(s.has_extn("starttls"))
        self.assertEqual(s.esmtp_features["auth"].split(),
                         ["PLAIN", "LOGIN"])
        self.assertEqual(s.login(USER, PASSWORD)[0], 235)
        s.sendmail("alice@lan.test", ["bob@example.org"], MSG)
        s.quit()
        qid = d.wait_log(r"session queued id=([0-9a-f]{16})").group(1)
        m = self.assertTrace(d, qid, "ESMTPSA")
        self.assertEqual(m.group("version"), b"TLSv1.3")
        d.wait_log(r"session auth sid=\S+ client=127\.0\.0\.1 user=alice "
                   r"mech=(PLAIN|LOGIN)")
        self.assertNoSecrets(d)

    def test_implicit_tls_smtplib(self):
        d = self.lan_daemon()
        s = smtplib.SMTP_SSL("127.0.0.1", self.tls,
                             local_hostname="client.example",
                             timeout=TIMEOUT, context=client_ctx())
        self.addCleanup(s.close)
        code, _ = s.ehlo()
        self.assertEqual(code, 250)
        self.assertFalse(s.has_extn("starttls"))
        self.assertTrue(s.has_extn("auth"))
        # STARTTLS inside TLS is a sequence error.
        self.assertEqual(s.docmd("STARTTLS")[0], 503)
        s.sendmail("alice@lan.test", ["bob@example.org"], MSG)
        s.quit()
        qid = d.wait_log(r"session queued id=([0-9a-f]{16})").group(1)
        self.assertTrace(d, qid, "ESMTPS")
        d.wait_log(r"session connect sid=\S+ client=127\.0\.0\.1 "
                   r"tls=implicit")

    def test_swaks_tls_and_auth(self):
        d = self.lan_daemon()
        for extra, proto in ((["--tls", "--auth", "LOGIN"], "ESMTPSA"),
                             (["--tls-on-connect", "--auth", "PLAIN"],
                              "ESMTPSA")):
            port = self.tls if "--tls-on-connect" in extra else self.plain
            p = subprocess.run(
                ["swaks", "--server", "127.0.0.1:%d" % port,
                 "--from", "a@lan.test", "--to", "c@d.example",
                 "--helo", "swaks.example", "--timeout", str(int(TIMEOUT)),
                 "--auth-user", USER, "--auth-password", PASSWORD,
                 "--header", "Subject: via swaks"] + extra,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, timeout=TIMEOUT * 2)
            out = p.stdout.decode("utf-8", "replace")
            self.assertEqual(p.returncode, 0, out)
            self.assertIn("235 2.7.0 Authentication successful", out)
            qid = queued_id(out)
            self.assertIsNotNone(qid, out)
            self.assertTrace(d, qid, proto, body=b"")
        self.assertNoSecrets(d)

    def test_tls10_client_by_min_version(self):
        for min_version, ok in (("1.0", True), ("1.2", False)):
            with self.subTest(min_version=min_version):
                d = self.lan_daemon(min_version=min_version)
                s = self.smtp()
                s.ehlo()
                if ok:
                    self.assertEqual(
                        s.starttls(context=client_ctx(tls10=True))[0], 220)
                    self.assertEqual(s.sock.version(), "TLSv1")
                    s.ehlo()
                    s.login(USER, PASSWORD)
                    s.sendmail("printer@lan.test", ["bob@example.org"], MSG)
                    s.quit()
                    qid = d.wait_log(
                        r"session queued id=([0-9a-f]{16})").group(1)
                    m = self.assertTrace(d, qid, "ESMTPSA")
                    self.assertEqual(m.group("version"), b"TLSv1")
                else:
                    with self.assertRaises(ssl.SSLError):
                        s.starttls(context=client_ctx(tls10=True))
                    d.wait_log(r"session tls failed sid=\S+ "
                               r"client=127\.0\.0\.1 reason=")
                    # A modern client still gets in.
                    s2 = self.smtp()
                    s2.ehlo()
                    self.assertEqual(s2.starttls(context=client_ctx())[0],
                                     220)
                    s2.quit()
                d.stop()

    def test_key_must_match_certificate(self):
        p = pki()
        d = self.daemon(start=False, listen_tls=["127.0.0.1:0"],
                        tls={"cert_file": p.server_crt,
                             "key_file": p.other_key})
        with self.assertRaises(AssertionError) as cm:
            d.start()
        self.assertRegex(str(cm.exception),
                         r"tls cannot load key \S+other\.key: .*mismatch")
        self.assertEqual(d.proc.returncode, 78)       # EX_CONFIG

    # -- AUTH

    def test_auth_refused_without_tls(self):
        d = self.lan_daemon()
        c = self.client(d, port=self.plain)
        r = c.greet()
        self.assertNotIn(b"250-AUTH PLAIN LOGIN", r.lines)
        c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (USER, PASSWORD)),
              "538 5.7.11 Encryption required for requested "
              "authentication mechanism")
        c.cmd("AUTH LOGIN", "538 5.7.11")
        c.cmd("QUIT", "221")
        self.assertNotIn("session auth sid", d.log())

    def test_auth_plaintext_loopback_listener(self):
        d = self.lan_daemon()
        s = self.smtp(host="127.0.0.2", port=self.plain_auth)
        s.ehlo()
        self.assertTrue(s.has_extn("auth"))
        self.assertEqual(s.login(USER, PASSWORD)[0], 235)
        s.sendmail("alice@lan.test", ["bob@example.org"], MSG)
        s.quit()
        qid = d.wait_log(r"session queued id=([0-9a-f]{16})").group(1)
        self.assertTrace(d, qid, "ESMTPA", tls=False)
        self.assertNoSecrets(d)

    def test_auth_checked_off_the_loop(self):
        """Password checks run on a worker thread: a client that sends
        AUTH and its next commands at once gets them answered in order,
        and one that leaves while its check runs is simply gone."""
        d = self.lan_daemon()
        with socket.create_connection(("127.0.0.2", self.plain_auth),
                                      timeout=10) as c:
            f = c.makefile("rb")
            f.readline()
            c.sendall(b"EHLO x\r\nAUTH PLAIN " +
                      b64("\0%s\0%s" % (USER, PASSWORD)).encode() +
                      b"\r\nNOOP\r\nQUIT\r\n")
            replies = []
            for line in f:
                replies.append(line[:3])
            self.assertEqual(replies[-3:], [b"235", b"250", b"221"])
        for _ in range(20):
            c = socket.create_connection(("127.0.0.2", self.plain_auth),
                                         timeout=10)
            c.recv(512)
            c.sendall(b"EHLO x\r\nAUTH PLAIN " +
                      b64("\0%s\0wrong" % USER).encode() + b"\r\n")
            c.close()
        # Still serving, and every session was let go.
        s = self.smtp(host="127.0.0.2", port=self.plain_auth)
        s.ehlo()
        self.assertEqual(s.login(USER, PASSWORD)[0], 235)
        s.quit()
        wait_for(lambda: d.log().count("session disconnect") >= 22,
                 what="all sessions closed")

    def test_reload_removing_auth_mid_exchange(self):
        """A reload that removes the accounts while a client is between
        AUTH LOGIN's steps: 454, and the daemon goes on."""
        d = self.lan_daemon()
        c = Client(self.plain_auth, host="127.0.0.2")
        c.greet()
        c.cmd("AUTH LOGIN", "334")
        c.cmd(b64(USER), "334")
        opts = dict(d.opts)
        del opts["auth"]
        opts = {k: v for k, v in opts.items() if not k.startswith("network")}
        with open(d.conf_path, "w") as f:
            f.write(harness.conf_text(opts))
        mark = d.mark()
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(r"smartrelayd reloaded", since=mark)
        c.cmd(b64(PASSWORD), "454 4.7.0")
        c.cmd("NOOP", "250")
        c.cmd("QUIT", "221")
        self.assertTrue(d.running())

    def test_auth_exchanges(self):
        d = self.lan_daemon()
        s = self.smtp()
        s.ehlo()
        s.starttls(context=client_ctx())
        s.ehlo()
        plain_ok = b64("\0%s\0%s" % (USER, PASSWORD))
        cases = [
            ("AUTH PLAIN " + b64("\0%s\0wrong" % USER), 535, "5.7.8"),
            ("AUTH PLAIN " + b64("\0mallory\0%s" % PASSWORD), 535, "5.7.8"),
            ("AUTH PLAIN " + b64("bob\0%s\0%s" % (USER, PASSWORD)), 535,
             "5.7.8"),
            ("AUTH PLAIN !!!!", 501, "5.5.2"),
            ("AUTH CRAM-MD5", 504, "5.5.4"),
            ("AUTH", 501, "5.5.4"),
            # The continuation, then cancelled.
            ("AUTH PLAIN", 334, ""),
            ("*", 501, "5.7.0"),
            ("AUTH LOGIN", 334, "VXNlcm5hbWU6"),
            (b64(USER), 334, "UGFzc3dvcmQ6"),
            (b64("wrong"), 535, "5.7.8"),
            # LOGIN with the name as initial response.
            ("AUTH LOGIN " + b64(USER), 334, "UGFzc3dvcmQ6"),
            (b64(PASSWORD), 235, "2.7.0"),
            ("AUTH PLAIN " + plain_ok, 503, "5.5.1"),
        ]
        for line, code, text in cases:
            got, msg = s.docmd(line)
            self.assertEqual((got, msg.decode()[:len(text)]), (code, text),
                             line)
        s.quit()
        d.wait_log(r"session auth sid=\S+ client=127\.0\.0\.1 user=alice "
                   r"mech=LOGIN")
        self.assertNoSecrets(d)
        # PLAIN through the 334 continuation, and AUTH in a transaction.
        s = self.smtp()
        s.ehlo()
        s.starttls(context=client_ctx())
        s.ehlo()
        self.assertEqual(s.docmd("MAIL FROM:<a@lan.test>")[0], 250)
        self.assertEqual(s.docmd("AUTH PLAIN " + plain_ok)[0], 503)
        self.assertEqual(s.docmd("RSET")[0], 250)
        self.assertEqual(s.docmd("AUTH PLAIN")[0], 334)
        self.assertEqual(s.docmd(plain_ok)[0], 235)
        s.quit()

    def test_failed_auth_counts_as_error(self):
        self.lan_daemon()
        s = self.smtp()
        s.ehlo()
        s.starttls(context=client_ctx())
        s.ehlo()
        bad = "AUTH PLAIN " + b64("\0%s\0wrong" % USER)
        codes = []
        for _ in range(40):
            try:
                codes.append(s.docmd(bad)[0])
            except smtplib.SMTPServerDisconnected:
                break
            if codes[-1] == 421:
                break
        self.assertEqual(codes[-1], 421, codes)
        self.assertEqual(set(codes[:-1]), {535})
        self.assertLessEqual(len(codes), 21)

    def test_reload_rereads_users(self):
        d = self.lan_daemon()
        self.write_users({"bob": "new password"})
        mark = d.mark()
        os.kill(d.pid, signal.SIGHUP)
        d.wait_log(r"smartrelayd reloaded", since=mark)
        s = self.smtp()
        s.ehlo()
        s.starttls(context=client_ctx())
        s.ehlo()
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            s.login(USER, PASSWORD)
        self.assertEqual(s.login("bob", "new password")[0], 235)
        s.quit()
        # A users file others can read is refused; the old one stays.
        os.chmod(self.users_path, 0o644)
        mark = d.mark()
        os.kill(d.pid, signal.SIGHUP)
        d.wait_log(r"reload refused", since=mark)
        self.assertIn("readable by others", d.log(since=mark))
        os.chmod(self.users_path, 0o600)

    # -- per-network policy

    def test_network_auth_required(self):
        d = self.lan_daemon()
        s = self.smtp(source="127.0.0.3")
        s.ehlo()
        code, msg = s.docmd("MAIL FROM:<a@lan.test>")
        self.assertEqual((code, msg), (530, b"5.7.0 Authentication required"))
        s.starttls(context=client_ctx())
        s.ehlo()
        self.assertEqual(s.docmd("MAIL FROM:<a@lan.test>")[0], 530)
        s.login(USER, PASSWORD)
        s.sendmail("a@lan.test", ["bob@example.org"], MSG)
        s.quit()
        qid = d.wait_log(r"session queued id=([0-9a-f]{16}) "
                         r".*client=127\.0\.0\.3").group(1)
        self.assertTrace(d, qid, "ESMTPSA")
        d.wait_log(r"session connect sid=\S+ client=127\.0\.0\.3 "
                   r"network=\"office\"")
        # Outside that network, AUTH stays optional.
        s = self.smtp()
        s.ehlo()
        self.assertEqual(s.docmd("MAIL FROM:<a@lan.test>")[0], 250)
        s.quit()

    def test_network_bare_lf(self):
        d = self.lan_daemon()
        body = b"Subject: bare\r\n\r\nline one\nline two\r\n"
        c = self.client(d, port=self.plain, source="127.0.0.4")
        c.greet()
        c.send_message("a@lan.test", ["b@example.org"], body,
                       expect="554 5.6.0")
        c.cmd("QUIT", "221")
        c = self.client(d, port=self.plain)
        c.greet()
        qid = c.send_message("a@lan.test", ["b@example.org"],
                             body).queued_id()
        self.assertQueued(d, qid, "a@lan.test", ["b@example.org"], body)
        self.assertEqual(d.queued_ids(), [qid])

    # -- hostile clients

    def test_starttls_injection(self):
        d = self.lan_daemon()
        c = self.client(d, port=self.plain)
        c.greet()
        # RFC 3207 section 4.2: what follows STARTTLS in the same
        # packet came before the handshake and must not be answered.
        c.send(b"STARTTLS\r\nRSET\r\n")
        c.expect("220 2.0.0 Ready to start TLS")
        self.assertEqual(c.buf, b"")
        c.sock = client_ctx().wrap_socket(c.sock, server_hostname="localhost")
        # Everything learnt before the handshake is gone: EHLO again.
        c.cmd("MAIL FROM:<a@lan.test>", "503 5.5.1")
        r = c.cmd("EHLO client.example", "250")
        self.assertEqual(r.lines[0], b"250-" + HOSTNAME.encode())
        c.cmd("NOOP", "250 2.0.0")
        c.cmd("QUIT", "221")
        self.assertEqual(d.queued_ids(), [])

    def test_plaintext_on_implicit_tls_port(self):
        d = self.lan_daemon(command_timeout="2s")
        # A client speaking SMTP in the clear: the handshake fails and
        # the connection closes, with no SMTP reply in plaintext.
        c = self.client(d, port=self.tls)
        c.send(b"EHLO client.example\r\n")
        while not c.eof:
            c._fill(time.monotonic() + TIMEOUT)
        self.assertFalse(re.match(rb"^\d{3}", c.buf), c.buf)
        d.wait_log(r"session tls failed sid=\S+ client=127\.0\.0\.1")
        # Binary garbage, likewise.
        c = self.client(d, port=self.tls)
        c.send(os.urandom(64) + b"\x16\x03\x01\x00\x05hello")
        while not c.eof:
            c._fill(time.monotonic() + TIMEOUT)
        # A client waiting for a greeting that never comes: closed when
        # the handshake times out.
        c = self.client(d, port=self.tls)
        while not c.eof:
            c._fill(time.monotonic() + TIMEOUT)
        self.assertEqual(c.buf, b"")
        d.wait_log(r"reason=\"handshake timeout\"")
        # And the port still works.
        s = smtplib.SMTP_SSL("127.0.0.1", self.tls, timeout=TIMEOUT,
                             local_hostname="client.example",
                             context=client_ctx())
        self.addCleanup(s.close)
        self.assertEqual(s.noop()[0], 250)
        s.quit()


if __name__ == "__main__":
    unittest.main()
