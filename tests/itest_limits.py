"""smartrelayd accept side: limits, bad input, smuggling, timeouts and
who may connect.  Each rejection is checked on the wire (reply code and
enhanced code) and in the spool (nothing queued, nothing left in tmp/).
"""

import os
import random
import ssl
import sys
import time
import unittest

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, DaemonTest, wait_for  # noqa: E402


class LimitsTest(DaemonTest):

    def assertNothingQueued(self, d):
        self.assertEqual(d.queued_ids(), [])
        wait_for(lambda: d.listdir("tmp") == [], what="tmp/ to be empty")

    def small_message_works(self, c, d, client_ip="127.0.0.1"):
        """The session goes on: a normal message is still accepted."""
        body = b"Subject: still works\r\n\r\nafter the error\r\n"
        qid = c.send_message("next@example.org", ["r@example.org"],
                             body).queued_id()
        self.assertQueued(d, qid, "next@example.org", ["r@example.org"],
                          body, client_ip=client_ip)
        return qid

    def test_size_parameter(self):
        d = self.daemon(max_message_size=10000)
        c = self.client(d)
        r = c.greet()
        self.assertIn(b"SIZE 10000", [ln[4:] for ln in r.lines[1:]])
        c.cmd("MAIL FROM:<a@example.org> SIZE=10001", "552 5.3.4")
        c.cmd("MAIL FROM:<a@example.org> SIZE=5000", "250 2.1.0")
        c.cmd("RSET", "250 2.0.0")
        self.small_message_works(c, d)

    def test_size_parameter_20_digits(self):
        """RFC 1870: size-value is 1*20DIGIT; past 2^64 it is still a
        size over the limit, not a syntax error."""
        d = self.daemon(max_message_size=10000)
        c = self.client(d)
        c.greet()
        c.cmd("MAIL FROM:<a@example.org> SIZE=99999999999999999999",
              "552 5.3.4")
        c.cmd("MAIL FROM:<a@example.org> SIZE=18446744073709551617",
              "552 5.3.4")
        self.small_message_works(c, d)

    def test_oversize_body(self):
        d = self.daemon(max_message_size=10000)
        c = self.client(d)
        c.greet()
        for size in (20000, 2000000):
            with self.subTest(size=size):
                c.cmd("MAIL FROM:<big@example.org>", "250 2.1.0")
                c.cmd("RCPT TO:<r@example.org>", "250 2.1.5")
                c.cmd("DATA", "354")
                line = b"x" * 98 + b"\r\n"
                c.send(b"Subject: too big\r\n\r\n" + line * (size // 100)
                       + b".\r\n")
                c.expect("552 5.3.4")
                self.assertNothingQueued(d)
        # Under the limit is fine, on the same connection.
        body = b"Subject: fits\r\n\r\n" + (b"y" * 98 + b"\r\n") * 50
        qid = c.send_message("fits@example.org", ["r@example.org"],
                             body).queued_id()
        self.assertQueued(d, qid, "fits@example.org", ["r@example.org"],
                          body)

    def test_recipient_limit(self):
        d = self.daemon(max_recipients=3)
        c = self.client(d)
        c.greet()
        c.cmd("MAIL FROM:<a@example.org>", "250 2.1.0")
        for i in range(3):
            c.cmd("RCPT TO:<r%d@example.org>" % i, "250 2.1.5")
        for i in range(3, 6):
            c.cmd("RCPT TO:<r%d@example.org>" % i, "452 4.5.3")
        c.cmd("DATA", "354")
        body = b"Subject: three\r\n\r\nonly three\r\n"
        c.send(body + b".\r\n")
        qid = c.expect("250 2.0.0").queued_id()
        self.assertQueued(d, qid, "a@example.org",
                          ["r0@example.org", "r1@example.org",
                           "r2@example.org"], body)
        d.wait_log(r"session queued id=%s .*nrcpt=3 " % qid)

    def test_text_line_length(self):
        """Lines over 998 octets are content (issue 13): stored as they
        came, marked for re-encoding; only the message size limits
        them."""
        d = self.daemon(max_message_size=1000000)
        c = self.client(d)
        c.greet()
        ok = b"Subject: long\r\n\r\n" + b"a" * 998 + b"\r\n"    # 1000
        qid = c.send_message("a@example.org", ["r@example.org"],
                             ok).queued_id()
        self.assertQueued(d, qid, "a@example.org", ["r@example.org"], ok)
        self.assertNotIn("reencode", d.envelope(qid))
        for n in (999, 5000, 200000):               # 1001 and more
            with self.subTest(octets=n + 2):
                body = (b"Subject: long\r\n\r\n" + b"b" * n
                        + b"\r\n." + b"c" * n + b"\r\nafter\r\n")
                qid = c.send_message("a@example.org", ["r@example.org"],
                                     body).queued_id()
                env, _ = self.assertQueued(d, qid, "a@example.org",
                                           ["r@example.org"], body)
                self.assertEqual(env["reencode"], 1)
        # Over the size limit in one line: refused for its size.
        c.cmd("MAIL FROM:<a@example.org>", "250 2.1.0")
        c.cmd("RCPT TO:<r@example.org>", "250 2.1.5")
        c.cmd("DATA", "354")
        c.send(b"Subject: too big\r\n\r\n" + b"b" * 1200000
               + b"\r\nafter\r\n.\r\n")
        c.expect("552 5.3.4")
        self.assertEqual(len(d.queued_ids()), 4)
        self.small_message_works(c, d)

    def test_command_line_length(self):
        d = self.daemon()
        c = self.client(d)
        c.greet()
        # 512 octets with CRLF is the limit: accepted.
        c.cmd("NOOP " + "n" * 505, "250 2.0.0")
        c.cmd("NOOP " + "n" * 593, "500 5.5.2")            # 600 octets
        c.cmd("MAIL FROM:<%s@example.org>" % ("m" * 600), "500 5.5.2")
        # The over-long MAIL did not start a transaction.
        c.cmd("RCPT TO:<r@example.org>", "503 5.5.1")
        c.send(b"X" * 100000 + b"\r\n")                    # no LF for long
        c.expect("500 5.5.2")
        c.cmd("NOOP", "250 2.0.0")
        self.small_message_works(c, d)

    def rejected_body(self, d, c, body, status):
        c.cmd("MAIL FROM:<bad@example.org>", "250 2.1.0")
        c.cmd("RCPT TO:<r@example.org>", "250 2.1.5")
        c.cmd("DATA", "354")
        c.send(body + b".\r\n")
        c.expect(status)
        self.assertNothingQueued(d)

    def test_bare_cr_and_nul(self):
        """Bare CRs and NULs are content (issue 13): stored as they came,
        marked for re-encoding."""
        d = self.daemon()
        c = self.client(d)
        c.greet()
        for name, body in [
                ("bare CR", b"Subject: cr\r\n\r\na\rb\r\n"),
                ("progress bar", b"Subject: cr\r\n\r\n10%\r50%\r100%\r\n"),
                ("CR at line end", b"Subject: cr\r\n\r\nab\r\r\n"),
                ("bare CR in header", b"Subject: c\rr\r\n\r\nx\r\n"),
                ("NUL", b"Subject: nul\r\n\r\na\x00b\r\n"),
                ("NUL in header", b"Sub\x00ject: nul\r\n\r\nab\r\n")]:
            with self.subTest(name):
                qid = c.send_message("a@example.org", ["r@example.org"],
                                     body).queued_id()
                env, _ = self.assertQueued(d, qid, "a@example.org",
                                           ["r@example.org"], body)
                self.assertEqual(env["reencode"], 1)
        self.small_message_works(c, d)

    def test_bare_lf_reject_mode(self):
        d = self.daemon(bare_lf="reject")
        c = self.client(d)
        c.greet()
        self.rejected_body(d, c, b"Subject: lf\r\n\r\nbare\nlf\r\n",
                           "554 5.6.0")
        self.rejected_body(d, c, b"Subject: lf\n\r\nx\r\n", "554 5.6.0")
        self.small_message_works(c, d)

    def test_mail_loop(self):
        d = self.daemon()
        c = self.client(d)
        c.greet()
        hop = (b"Received: from a.example by b.example; "
               b"Mon, 1 Jan 2024 00:00:00 +0000\r\n")
        self.rejected_body(d, c, hop * 100 + b"Subject: loop\r\n\r\nx\r\n",
                           "554 5.4.6")
        self.rejected_body(d, c, b"Subject: loop\r\n" + hop * 150
                           + b"\r\nx\r\n", "554 5.4.6")
        ok = hop * 99 + b"Subject: 99 hops\r\n\r\nx\r\n"
        qid = c.send_message("hops@example.org", ["r@example.org"],
                             ok).queued_id()
        self.assertQueued(d, qid, "hops@example.org", ["r@example.org"], ok)
        # Received: lines in the body are not headers.
        body = b"Subject: quoted hops\r\n\r\n" + hop * 120
        qid = c.send_message("hops@example.org", ["r@example.org"],
                             body).queued_id()
        self.assertQueued(d, qid, "hops@example.org", ["r@example.org"],
                          body)

    # Separators that a sloppy server takes for the end of data.
    SMUGGLE = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r\n.\r"]
    EVIL = (b"MAIL FROM:<evil@x>\r\nRCPT TO:<y@z>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nsmuggled\r\n")

    def smuggle(self, mode):
        d = self.daemon(bare_lf=mode)
        for sep in self.SMUGGLE:
            with self.subTest(mode=mode, sep=sep):
                before = set(d.queued_ids())
                c = Client(d.port)
                try:
                    c.greet()
                    c.cmd("MAIL FROM:<good@example.org>", "250 2.1.0")
                    c.cmd("RCPT TO:<r@example.org>", "250 2.1.5")
                    c.cmd("DATA", "354")
                    body = (b"Subject: smuggle test\r\n\r\nbody" + sep
                            + self.EVIL)
                    c.send(body + b".\r\nQUIT\r\n")
                    r = c.reply()
                    # A bare CR is content (issue 13); a bare LF is
                    # content unless refused.
                    bare_lf = b"\n" in sep.replace(b"\r\n", b"")
                    if bare_lf and mode == "reject":
                        self.assertEqual(r.status(), "554 5.6.0", r)
                    else:
                        self.assertEqual(r.status(), "250 2.0.0", r)
                    # Exactly one reply to the DATA, then QUIT's.
                    c.expect("221 2.0.0")
                    c.expect_eof()
                finally:
                    c.close()
                new = sorted(set(d.queued_ids()) - before)
                if r.code == 250:
                    self.assertEqual(new, [r.queued_id()])
                    self.assertQueued(d, new[0], "good@example.org",
                                      ["r@example.org"], body)
                    data = d.data(new[0])
                    self.assertRegex(data, rb"[\r\n]MAIL FROM:<evil@x>\r\n")
                else:
                    self.assertEqual(new, [])
        self.assertNotIn("from=<evil@x>", d.full_log())
        for qid in d.queued_ids():
            self.assertEqual(d.envelope(qid)["sender"], "good@example.org")

    def test_smuggling_normalize(self):
        self.smuggle("normalize")

    def test_smuggling_reject(self):
        self.smuggle("reject")

    def test_error_limit(self):
        d = self.daemon()
        c = self.client(d)
        c.greet()
        for i in range(19):
            c.cmd("BOGUS %d" % i, "500 5.5.2")
        c.send(b"BOGUS 20\r\n")
        replies = []
        while True:
            r = c.reply()
            if r is None:
                break
            replies.append(r.status())
        self.assertTrue(replies and replies[-1] == "421 4.7.0", replies)
        self.assertIn(replies[:-1], ([], ["500 5.5.2"]))
        # Pipelined garbage: at most 20 answers, then 421 and close.
        c2 = self.client(d)
        c2.expect("220 ")
        c2.send(b"".join(b"BAD%d\r\n" % i for i in range(40)))
        replies = []
        while True:
            r = c2.reply()
            if r is None:
                break
            replies.append(r.status())
        self.assertEqual(replies[-1], "421 4.7.0", replies)
        self.assertLessEqual(len(replies), 21, replies)
        self.assertTrue(all(s == "500 5.5.2" for s in replies[:-1]))

    def test_disconnect_mid_data(self):
        d = self.daemon()
        c = Client(d.port)
        c.greet()
        c.cmd("MAIL FROM:<a@example.org>", "250 2.1.0")
        c.cmd("RCPT TO:<r@example.org>", "250 2.1.5")
        c.cmd("DATA", "354")
        c.send(b"Subject: cut\r\n\r\n" + b"z" * 70000 + b"\r\npartial li")
        mark = d.mark()
        c.close()
        d.wait_log(r"session disconnect sid=\S+ client=127\.0\.0\.1 ",
                   since=mark)
        self.assertNothingQueued(d)

    def read_until_eof(self, c):
        replies = []
        while True:
            r = c.reply()
            if r is None:
                return replies
            replies.append(r)

    def test_binary_garbage(self):
        """Garbage ends in errors, then 421 and close.  The replies are
        read only once the daemon has closed: the last one must still
        arrive (a close with unread input pending sends an RST, which
        destroys replies the client has not read yet)."""
        d = self.daemon(command_timeout="2s")
        rng = random.Random(1)
        c = self.client(d)
        c.expect("220 ")
        mark = d.mark()
        c.send(bytes(rng.randrange(256) for _ in range(65536)))
        d.wait_log(r"session disconnect sid=\S+ client=127\.0\.0\.1 "
                   r"reason=errors", since=mark)
        replies = self.read_until_eof(c)
        self.assertTrue(replies, "no reply to garbage")
        self.assertTrue(all(r.code >= 400 for r in replies), replies)
        self.assertEqual(replies[-1].status(), "421 4.7.0",
                         "%d replies, the last %r, connection reset: %s"
                         % (len(replies), replies[-1], c.reset))
        self.assertNothingQueued(d)

    def test_tls_client_hello_on_plain_port(self):
        d = self.daemon(command_timeout="2s")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(inc, out, server_hostname="relay.test")
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = out.read()
        self.assertGreater(len(hello), 40)
        c = self.client(d)
        t0 = time.monotonic()
        c.send(hello)           # a TLS client talks first
        replies = self.read_until_eof(c)
        # Either the hello was already waiting when the daemon accepted
        # the connection (an early talker: 554 5.5.1 and the door), or
        # a greeting, then errors or a timeout, then the door.
        if replies[0].status()[:3] == "554":
            self.assertEqual(replies[0].status(), "554 5.5.1")
            self.assertEqual(len(replies), 1, replies)
        else:
            self.assertEqual(replies[0].status()[:3], "220")
            self.assertTrue(all(r.code >= 400 for r in replies[1:]),
                            replies)
        self.assertLess(time.monotonic() - t0, 25)
        self.assertNothingQueued(d)

    def test_command_timeout(self):
        d = self.daemon(command_timeout="1s", data_timeout="60s")
        for partial in (b"", b"EHLO half-a-comm"):
            with self.subTest(partial=partial):
                # The timer cannot start before the connection does, or
                # (with a partial line) before those bytes arrive.
                t0 = time.monotonic()
                c = self.client(d)
                c.expect("220 ")
                if partial:
                    t0 = time.monotonic()
                    c.send(partial)
                c.expect("421 4.4.2", timeout=20)
                c.expect_eof(timeout=20)
                secs = time.monotonic() - t0
                self.assertGreaterEqual(secs, 0.9)
                self.assertLess(secs, 20)
        # An idle client mid-transaction: nothing is queued.
        c = self.client(d)
        c.greet()
        c.cmd("MAIL FROM:<a@example.org>", "250 2.1.0")
        c.expect("421 4.4.2", timeout=20)
        c.expect_eof(timeout=20)
        self.assertNothingQueued(d)

    def test_data_timeout(self):
        d = self.daemon(command_timeout="60s", data_timeout="1s")
        c = self.client(d)
        c.greet()
        c.cmd("MAIL FROM:<a@example.org>", "250 2.1.0")
        c.cmd("RCPT TO:<r@example.org>", "250 2.1.5")
        t0 = time.monotonic()
        c.cmd("DATA", "354")
        c.send(b"Subject: stalled\r\n\r\nhalf a li")
        c.expect("421 4.4.2", timeout=20)
        c.expect_eof(timeout=20)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        self.assertNothingQueued(d)
        d.wait_log(r"session timeout sid=\S+ client=127\.0\.0\.1")

    def test_max_clients_per_ip(self):
        # Loopback is exempt by default; here only 127.0.0.4 is.
        d = self.daemon(max_clients_per_ip=2, max_clients=100,
                        max_clients_per_ip_exempt=["127.0.0.4/32"])
        a = self.client(d)
        a.expect("220 ")
        b = self.client(d)
        b.expect("220 ")
        c = self.client(d)
        c.expect("421 4.7.0")
        c.expect_eof()
        d.wait_log(r"listener reject client=127\.0\.0\.1 "
                   r"reason=max-clients-per-ip limit=2")
        # Another address is not affected.
        o = self.client(d, source="127.0.0.3")
        o.expect("220 ")
        # An exempt one is not counted.
        for _ in range(3):
            self.client(d, source="127.0.0.4").expect("220 ")
        mark = d.mark()
        a.close()
        d.wait_log(r"session disconnect sid=\S+ client=127\.0\.0\.1 ",
                   since=mark)
        n = self.client(d)
        n.expect("220 ")
        n.cmd("EHLO client.example", "250")
        self.small_message_works(n, d)
        b.cmd("NOOP", "250 2.0.0")

    def test_max_clients(self):
        d = self.daemon(max_clients=3, max_clients_per_ip=3)
        held = []
        for src in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            c = self.client(d, source=src)
            c.expect("220 ")
            held.append(c)
        for src in ("127.0.0.1", "127.0.0.4"):
            c = self.client(d, source=src)
            c.expect("421 4.7.0")
            c.expect_eof()
        mark = d.mark()
        held[0].cmd("QUIT", "221 2.0.0")
        held[0].expect_eof()
        d.wait_log(r"session disconnect sid=\S+ client=127\.0\.0\.1 ",
                   since=mark)
        c = self.client(d, source="127.0.0.4")
        c.greet()
        self.small_message_works(c, d, client_ip="127.0.0.4")

    def test_allow_list(self):
        d = self.daemon(listen=["127.0.0.2:0", "127.0.0.1:0"],
                        allow=["127.0.0.1/32"])
        self.assertEqual(len(d.ports), 2)
        for host, port in d.addrs:
            port = int(port)
            with self.subTest(listener=host):
                c = self.client(d, port=port, host=host, source="127.0.0.2")
                c.expect("554 5.7.1")
                try:
                    c.send(b"EHLO x\r\nMAIL FROM:<a@b.example>\r\n"
                           b"RCPT TO:<c@d.example>\r\nDATA\r\nx\r\n.\r\n")
                except OSError:
                    pass        # already closed: fine
                c.expect_eof()
                ok = self.client(d, port=port, host=host,
                                 source="127.0.0.1")
                ok.expect("220 ")
                ok.cmd("QUIT", "221 2.0.0")
        self.assertNothingQueued(d)
        d.wait_log(r"listener reject client=127\.0\.0\.2 "
                   r"reason=not-allowed")
        c = self.client(d, port=d.port_of("127.0.0.1"))
        c.greet()
        self.small_message_works(c, d)


if __name__ == "__main__":
    unittest.main()
