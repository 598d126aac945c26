"""smartrelayd accept side: the SMTP dialogue and what lands in the spool.

Real clients (smtplib, swaks, raw sockets) against the real daemon; every
accepted message is checked in the spool: envelope fields and a data file
that is exactly our Received: header followed by the canonical message.
"""

import os
import re
import smtplib
import socket
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Client, DaemonTest, HOSTNAME, TIMEOUT  # noqa: E402

MSG = (b"From: Alice <alice@example.org>\r\n"
       b"To: Bob <bob@example.org>\r\n"
       b"Subject: happy path\r\n"
       b"Message-ID: <happy.1@example.org>\r\n"
       b"\r\n"
       b"Hello Bob,\r\n"
       b".a line that smtplib has to dot-stuff\r\n"
       b"\r\n"
       b"8bit: caf\xc3\xa9\r\n")


def queued_id(text):
    m = re.search(r"queued as ([0-9a-f]{16})\b", text)
    return m.group(1) if m else None


class SmtpTest(DaemonTest):

    def test_ehlo_helo_greeting(self):
        d = self.daemon(max_message_size=26214400)
        c = self.client(d)
        r = c.expect("220 ")
        self.assertEqual(r.first, "220 %s ESMTP smartrelay" % HOSTNAME)
        r = c.cmd("EHLO client.example", "250")
        self.assertEqual(r.lines[0], b"250-" + HOSTNAME.encode())
        ext = [ln[4:].decode().upper() for ln in r.lines[1:]]
        for want in ("PIPELINING", "SIZE 26214400", "8BITMIME", "SMTPUTF8",
                     "ENHANCEDSTATUSCODES"):
            self.assertIn(want, ext)
        self.assertNotIn("STARTTLS", ext)
        self.assertFalse(any(e.startswith("AUTH") for e in ext), ext)
        r = c.cmd("HELO client.example", "250")
        self.assertEqual(r.first, "250 " + HOSTNAME)
        c.cmd("QUIT", "221 2.0.0")
        c.expect_eof()

    def test_happy_path_smtplib(self):
        d = self.daemon()
        with smtplib.SMTP("127.0.0.1", d.port, local_hostname="client.example",
                          timeout=TIMEOUT) as s:
            code, _ = s.ehlo()
            self.assertEqual(code, 250)
            self.assertTrue(s.has_extn("pipelining"))
            self.assertTrue(s.has_extn("8bitmime"))
            self.assertEqual(s.mail("alice@example.org"), (250, b"2.1.0 Ok"))
            code, _ = s.rcpt("bob@example.org")
            self.assertEqual(code, 250)
            code, text = s.data(MSG)
            self.assertEqual(code, 250, text)
            self.assertTrue(text.startswith(b"2.0.0 Ok: queued as "), text)
            qid = queued_id(text.decode())
            self.assertIsNotNone(qid)
            code, _ = s.quit()
            self.assertEqual(code, 221)
        self.assertEqual(d.queued_ids(), [qid])
        # smtplib stuffed the dot line: stored as MSG exactly.
        env, data = self.assertQueued(d, qid, "alice@example.org",
                                      ["bob@example.org"], b"", stored=MSG)
        raw = d.envelope_text(qid)
        self.assertIn("\nsender alice@example.org\n", raw)
        self.assertIn("\nrcpt pending - bob@example.org\n", raw)
        self.assertIn("\nclient 127.0.0.1\n", raw)
        m = d.wait_log(r"session queued id=%s from=<alice@example\.org> "
                       r"nrcpt=1 size=(\d+) client=127\.0\.0\.1 sid=\S+"
                       % qid)
        self.assertEqual(int(m.group(1)), len(data))
        self.assertEqual(os.listdir(d.path("tmp")), [])

    def test_swaks(self):
        d = self.daemon()
        body = "swaks body line one\nline two\n\nend"
        p = subprocess.run(
            ["swaks", "--server", "127.0.0.1:%d" % d.port,
             "--from", "a@b.example", "--to", "c@d.example",
             "--helo", "swaks.example", "--timeout", str(int(TIMEOUT)),
             "--header", "Subject: via swaks", "--body", body],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=TIMEOUT * 2)
        out = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("<-  220 %s ESMTP smartrelay" % HOSTNAME, out)
        qid = queued_id(out)
        self.assertIsNotNone(qid, out)
        self.assertEqual(d.queued_ids(), [qid])
        env = d.envelope(qid)
        self.assertEqual(env["sender"], "a@b.example")
        self.assertEqual([r["addr"] for r in env["rcpt"]], ["c@d.example"])
        self.assertEqual(env["helo"], "swaks.example")
        self.assertEqual(env["client"], "127.0.0.1")
        data = d.data(qid)
        self.assertEqual(env["size"], len(data))
        _, rest = harness.split_received(data)
        self.assertIn(b"\r\nSubject: via swaks\r\n", b"\r\n" + rest)
        # Every line is stored with CRLF (swaks adds an empty last line).
        self.assertIn(
            b"\r\n\r\nswaks body line one\r\nline two\r\n\r\nend\r\n",
            rest)
        self.assertNotIn(b"\n", rest.replace(b"\r\n", b""))

    def test_several_messages_one_connection(self):
        d = self.daemon()
        c = self.client(d)
        c.greet()
        sent = []
        for i in range(5):
            rcpts = ["r%d@example.net" % i]
            if i % 2:
                rcpts.append("other%d@example.com" % i)
            body = (b"Subject: message %d\r\nMessage-ID: <m%d@x>\r\n\r\n"
                    b"body of message %d\r\n" % (i, i, i))
            r = c.send_message("s%d@example.org" % i, rcpts, body)
            qid = r.queued_id()
            self.assertIsNotNone(qid, r)
            sent.append((qid, "s%d@example.org" % i, rcpts, body))
        c.cmd("QUIT", "221 2.0.0")
        c.expect_eof()
        self.assertEqual(len({s[0] for s in sent}), 5)
        self.assertEqual(d.queued_ids(), sorted(s[0] for s in sent))
        for qid, sender, rcpts, body in sent:
            self.assertQueued(d, qid, sender, rcpts, body)

    def test_duplicate_rcpt_stored_once(self):
        d = self.daemon()
        c = self.client(d)
        c.greet()
        c.cmd("MAIL FROM:<a@example.org>", "250 2.1.0")
        c.cmd("RCPT TO:<b@example.org>", "250 2.1.5")
        c.cmd("RCPT TO:<c@example.org>", "250 2.1.5")
        c.cmd("RCPT TO:<b@example.org>", "250")
        c.cmd("DATA", "354")
        c.send(b"Subject: dup\r\n\r\nx\r\n.\r\n")
        qid = c.expect("250 2.0.0").queued_id()
        self.assertQueued(d, qid, "a@example.org",
                          ["b@example.org", "c@example.org"],
                          b"Subject: dup\r\n\r\nx\r\n")

    def test_rset_drops_transaction(self):
        d = self.daemon()
        c = self.client(d)
        c.greet()
        c.cmd("MAIL FROM:<dropped@example.org>", "250 2.1.0")
        c.cmd("RCPT TO:<dropped-rcpt@example.org>", "250 2.1.5")
        c.cmd("RSET", "250 2.0.0")
        c.cmd("DATA", "503 5.5.1")
        c.cmd("RCPT TO:<x@example.org>", "503 5.5.1")
        # RSET keeps the greeting: a new transaction needs no new EHLO.
        r = c.send_message("kept@example.org", ["kept-rcpt@example.org"],
                           b"Subject: after rset\r\n\r\nkept\r\n")
        qid = r.queued_id()
        c.cmd("QUIT", "221 2.0.0")
        self.assertEqual(d.queued_ids(), [qid])
        self.assertQueued(d, qid, "kept@example.org",
                          ["kept-rcpt@example.org"],
                          b"Subject: after rset\r\n\r\nkept\r\n")
        self.assertNotIn("dropped", d.envelope_text(qid))

    def test_pipelining(self):
        d = self.daemon()
        c = self.client(d)
        c.greet()
        c.send(b"MAIL FROM:<p@example.org>\r\nRCPT TO:<q1@example.org>\r\n"
               b"RCPT TO:<q2@example.org>\r\nDATA\r\n")
        codes = [c.reply().status() for _ in range(3)]
        self.assertEqual(codes, ["250 2.1.0", "250 2.1.5", "250 2.1.5"])
        c.expect("354")
        body = b"Subject: pipelined\r\n\r\nline\r\n"
        c.send(body + b".\r\nQUIT\r\n")
        qid = c.expect("250 2.0.0 Ok: queued as ").queued_id()
        c.expect("221 2.0.0")
        c.expect_eof()
        self.assertQueued(d, qid, "p@example.org",
                          ["q1@example.org", "q2@example.org"], body)

    def test_pipelining_whole_session(self):
        """Everything in one write, errors included: replies come in
        order, one per command."""
        d = self.daemon()
        c = self.client(d)
        c.expect("220 ")
        body = b"Subject: one write\r\n\r\nall at once\r\n"
        c.send(b"EHLO burst.example\r\nNOOP\r\nMAIL FROM:<b@example.org>\r\n"
               b"RCPT TO:<bad@@example.org>\r\nRCPT TO:<ok@example.org>\r\n"
               b"DATA\r\n" + body + b".\r\nRSET\r\nQUIT\r\n")
        self.assertEqual(c.reply().code, 250)         # EHLO
        got = [c.reply().status() for _ in range(5)]
        self.assertEqual(got, ["250 2.0.0", "250 2.1.0", "501 5.1.3",
                               "250 2.1.5", "354 End"])
        qid = c.expect("250 2.0.0").queued_id()
        c.expect("250 2.0.0")
        c.expect("221 2.0.0")
        c.expect_eof()
        self.assertQueued(d, qid, "b@example.org", ["ok@example.org"], body,
                          helo="burst.example")

    # (setup commands with expected statuses, command, expected status)
    SEQUENCE = [
        ([], "MAIL FROM:<a@example.org>", "503 5.5.1"),
        ([], "RCPT TO:<a@example.org>", "503 5.5.1"),
        ([], "DATA", "503 5.5.1"),
        ([("EHLO c.example", "250")], "RCPT TO:<a@example.org>",
         "503 5.5.1"),
        ([("EHLO c.example", "250")], "DATA", "503 5.5.1"),
        ([("EHLO c.example", "250"), ("MAIL FROM:<a@example.org>", "250")],
         "MAIL FROM:<b@example.org>", "503 5.5.1"),
        ([("EHLO c.example", "250"), ("MAIL FROM:<a@example.org>", "250")],
         "DATA", "503 5.5.1"),
        ([], "HELO", "501 5.5.4"),
        ([], "EHLO", "501 5.5.4"),
        ([("EHLO c.example", "250")], "MAIL FROM:a@example.org>",
         "501 5.5.4"),
        ([("EHLO c.example", "250")], "MAIL FROM:<not an address>",
         "501 5.1.7"),
        ([("EHLO c.example", "250")], "MAIL FROM:<a@example.org> FOO=BAR",
         "555 5.5.4"),
        ([("EHLO c.example", "250"), ("MAIL FROM:<a@example.org>", "250")],
         "RCPT TO:<b@example.org", "501 5.5.4"),
        ([("EHLO c.example", "250"), ("MAIL FROM:<a@example.org>", "250")],
         "RCPT TO:<b@@example.org>", "501 5.1.3"),
        ([("EHLO c.example", "250"), ("MAIL FROM:<a@example.org>", "250")],
         "RCPT TO:<b@example.org> NOTIFY=NEVER", "555 5.5.4"),
        ([("EHLO c.example", "250")], "STARTTLS", "502 5.5.1"),
        ([("EHLO c.example", "250")], "AUTH PLAIN AGFAYg==", "502 5.5.1"),
    ]

    def test_sequencing_and_syntax_errors(self):
        d = self.daemon()
        for setup, cmd, want in self.SEQUENCE:
            with self.subTest(cmd=cmd, setup=setup):
                with Client(d.port) as c:
                    c.expect("220 ")
                    for s, st in setup:
                        c.cmd(s, st)
                    c.cmd(cmd, want)
                    # The session goes on after an error.
                    c.cmd("NOOP", "250 2.0.0")
                    c.cmd("QUIT", "221 2.0.0")
                    c.expect_eof()
        self.assertEqual(d.queued_ids(), [])

    def test_503_texts_by_state(self):
        """The command table's refusal column is what the session says,
        for each command in each state where it is not allowed."""
        want = {
            ("GREETED", "MAIL"): "send HELO/EHLO first",
            ("GREETED", "RCPT"): "send HELO/EHLO first",
            ("GREETED", "DATA"): "send HELO/EHLO first",
            ("GREETED", "AUTH"): "send EHLO first",
            ("READY", "RCPT"): "need MAIL command",
            ("READY", "DATA"): "need MAIL command",
            ("MAIL", "MAIL"): "nested MAIL command",
            ("MAIL", "DATA"): "need RCPT command",
            ("MAIL", "STARTTLS"): "MAIL transaction in progress",
            ("MAIL", "AUTH"): "MAIL transaction in progress",
            ("RCPT", "MAIL"): "nested MAIL command",
            ("RCPT", "STARTTLS"): "MAIL transaction in progress",
            ("RCPT", "AUTH"): "MAIL transaction in progress",
        }
        before = {"GREETED": [], "READY": ["EHLO x"],
                  "MAIL": ["EHLO x", "MAIL FROM:<a@example.org>"],
                  "RCPT": ["EHLO x", "MAIL FROM:<a@example.org>",
                           "RCPT TO:<b@example.org>"]}
        cmds = {"MAIL": "MAIL FROM:<a@example.org>",
                "RCPT": "RCPT TO:<b@example.org>", "DATA": "DATA",
                "STARTTLS": "STARTTLS", "AUTH": "AUTH PLAIN"}
        d = self.daemon()
        for (state, verb), text in want.items():
            with self.subTest(state=state, verb=verb):
                with self.client(d) as c:
                    c.expect("220 ")
                    for line in before[state]:
                        c.send((line + "\r\n").encode())
                        c.reply()
                    r = c.cmd(cmds[verb], "503 5.5.1")
                    self.assertEqual(r.first, "503 5.5.1 Error: " + text)

    def test_vrfy_help_noop_unknown(self):
        d = self.daemon()
        c = self.client(d)
        c.expect("220 ")
        c.cmd("VRFY bob", "252 2.5.0")
        c.cmd("HELP", "214 2.0.0")
        c.cmd("NOOP", "250 2.0.0")
        c.cmd("FROBNICATE now", "500 5.5.2")
        c.cmd("RSET", "250 2.0.0")
        c.cmd("QUIT", "221 2.0.0")
        c.expect_eof()

    def test_commands_are_case_insensitive(self):
        d = self.daemon()
        c = self.client(d)
        c.expect("220 ")
        c.cmd("ehlo client.example", "250")
        c.cmd("mail from:<lc@example.org>", "250 2.1.0")
        c.cmd("Rcpt To:<lc2@example.org>", "250 2.1.5")
        c.cmd("data", "354")
        c.send(b"x\r\n.\r\n")
        qid = c.expect("250 2.0.0").queued_id()
        c.cmd("quit", "221 2.0.0")
        self.assertQueued(d, qid, "lc@example.org", ["lc2@example.org"],
                          b"x\r\n")

    def test_dot_stuffing_round_trip(self):
        d = self.daemon()
        c = self.client(d)
        c.greet()
        sent = (b"Subject: dots\r\n\r\n"
                b"..leading dot\r\n"
                b"...\r\n"
                b"..\r\n"
                b". space\r\n"
                b"middle . dot\r\n"
                b"..\r\n")
        stored = (b"Subject: dots\r\n\r\n"
                  b".leading dot\r\n"
                  b"..\r\n"
                  b".\r\n"
                  b" space\r\n"
                  b"middle . dot\r\n"
                  b".\r\n")
        qid = c.send_message("dots@example.org", ["r@example.org"],
                             sent).queued_id()
        self.assertQueued(d, qid, "dots@example.org", ["r@example.org"],
                          sent, stored=stored)
        # smtplib stuffs for us: the stored text is the unstuffed one.
        with smtplib.SMTP("127.0.0.1", d.port, local_hostname="client.example",
                          timeout=TIMEOUT) as s:
            s.ehlo()
            s.mail("dots2@example.org")
            s.rcpt("r@example.org")
            code, text = s.data(stored)
            self.assertEqual(code, 250, text)
        qid2 = queued_id(text.decode())
        self.assertQueued(d, qid2, "dots2@example.org", ["r@example.org"],
                          b"", stored=stored)

    def test_bare_lf_normalised(self):
        d = self.daemon(bare_lf="normalize")
        c = self.client(d)
        c.greet()
        sent = (b"Subject: bare lf\nX-Mixed: yes\r\n\n"
                b"line one\nline two\r\n\nline four\n..stuffed\nlast\r\n")
        stored = (b"Subject: bare lf\r\nX-Mixed: yes\r\n\r\n"
                  b"line one\r\nline two\r\n\r\nline four\r\n.stuffed\r\n"
                  b"last\r\n")
        self.assertEqual(harness.canonical(sent), stored)
        qid = c.send_message("lf@example.org", ["r@example.org"],
                             sent).queued_id()
        self.assertQueued(d, qid, "lf@example.org", ["r@example.org"],
                          sent, stored=stored)

    def test_null_sender(self):
        d = self.daemon()
        c = self.client(d)
        c.greet()
        c.cmd("MAIL FROM:<>", "250 2.1.0")
        c.cmd("RCPT TO:<postmaster@example.org>", "250 2.1.5")
        c.cmd("DATA", "354")
        body = b"Subject: bounce\r\n\r\nnull sender\r\n"
        c.send(body + b".\r\n")
        qid = c.expect("250 2.0.0").queued_id()
        self.assertQueued(d, qid, "", ["postmaster@example.org"], body)
        self.assertIn("\nsender <>\n", d.envelope_text(qid))
        d.wait_log(r"session queued id=%s from=<> nrcpt=1 " % qid)

    def test_null_sender_quoted_local_part(self):
        d = self.daemon()
        c = self.client(d)
        c.greet()
        c.cmd("MAIL FROM:<>", "250 2.1.0")
        c.cmd('RCPT TO:<"john doe"@example.org>', "250 2.1.5")
        c.cmd("DATA", "354")
        body = b"Subject: quoted\r\n\r\nto a quoted local part\r\n"
        c.send(body + b".\r\n")
        qid = c.expect("250 2.0.0").queued_id()
        self.assertQueued(d, qid, "", ['"john doe"@example.org'], body)
        raw = d.envelope_text(qid)
        self.assertIn("\nsender <>\n", raw)
        self.assertIn('\nrcpt pending - "john+20doe"@example.org\n', raw)

    def test_ipv6_loopback(self):
        try:
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.bind(("::1", 0))
            s.close()
        except OSError:
            self.skipTest("no IPv6 loopback on this machine")
        d = self.daemon(listen=["[::1]:0", "127.0.0.1:0"])
        port = d.port_of("[::1]")
        c = self.client(d, port=port, host="::1")
        c.greet(helo="v6.example")
        body = b"Subject: v6\r\n\r\nover ::1\r\n"
        qid = c.send_message("v6@example.org", ["r@example.org"],
                             body).queued_id()
        env = d.envelope(qid)
        self.assertEqual(env["client"], "::1")
        m, rest = harness.split_received(d.data(qid))
        self.assertIn(m.group("ip"), (b"::1", b"IPv6:::1"))
        rest, _ = harness.unstamp(rest, body)
        self.assertEqual(rest, body)

    def test_25mb_message_flat_memory(self):
        d = self.daemon(max_message_size=26214400, log_level="info")
        base_kb = d.vmhwm_kb()
        # ~26,000,000 octets of 76-character lines (78 with CRLF), some
        # starting with a dot, under the 26,214,400 limit with room for
        # the Received: header.
        head = b"Subject: big\r\nMessage-ID: <big@example.org>\r\n\r\n"
        nlines = (26000000 - len(head)) // 78
        alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123"
        lines = []
        for i in range(nlines):
            k = i % 50
            ln = b"%08d " % i + (alphabet[k:] + alphabet[:k]) * 2
            ln = ln[:76]
            if i % 997 == 0:
                ln = b"." + ln[1:]
            lines.append(ln + b"\r\n")
        canon = head + b"".join(lines)
        wire = head + b"".join(b"." + ln if ln.startswith(b".") else ln
                               for ln in lines)
        self.assertLess(len(canon), 26214400 - 1000)
        c = self.client(d)
        c.greet()
        c.cmd("MAIL FROM:<big@example.org> SIZE=%d" % len(wire), "250 2.1.0")
        c.cmd("RCPT TO:<r@example.org>", "250 2.1.5")
        c.cmd("DATA", "354")
        t0 = time.monotonic()
        c.send(wire + b".\r\n")
        qid = c.expect("250 2.0.0", timeout=120).queued_id()
        secs = time.monotonic() - t0
        hwm_kb = d.vmhwm_kb()
        c.cmd("QUIT", "221 2.0.0")
        data = d.data(qid)
        m, rest = harness.split_received(data)
        rest, _ = harness.unstamp(rest, canon)      # Date: was added
        self.assertEqual(len(rest), len(canon))
        self.assertEqual(harness.sha256(rest), harness.sha256(canon))
        self.assertEqual(d.envelope(qid)["size"], len(data))
        sanitized = d.is_sanitized()
        print("25MB message: %d octets in %.2fs (%.1f MB/s); daemon VmHWM "
              "%d kB before, %d kB after%s"
              % (len(wire), secs, len(wire) / secs / 1e6, base_kb, hwm_kb,
                 " (sanitizer build)" if sanitized else ""))
        sys.stdout.flush()
        # Flat memory: the message is streamed to disk, never held.
        limit_kb = 16 * 1024 if not sanitized else 96 * 1024
        self.assertLess(hwm_kb, limit_kb)


if __name__ == "__main__":
    unittest.main()
