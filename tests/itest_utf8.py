"""What the client declared, passed on (issue 13, item 4): SMTPUTF8
(RFC 6531) and BODY=8BITMIME (RFC 6152), end to end.

Real clients (Python smtplib with mail_options, the injector as cron
calls it, and raw commands where smtplib would refuse to send) talk to
the daemon, which relays to the test upstream (Gmail-like: SMTPUTF8 and
8BITMIME offered; switched off where a test says so).  Each test checks
the MAIL FROM parameters the upstream got, the envelope and the bytes.
No sleeps as synchronisation: bounded polls.
"""

import email
import email.policy
import os
import re
import smtplib
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, HOSTNAME, TIMEOUT, wait_for  # noqa: E402
from itest_relay import RelayTest  # noqa: E402

SENDMAIL = os.environ.get("SMARTRELAY_SENDMAIL") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "src",
    "smartrelay-sendmail")

JOERG = "j\u00f6rg@b\u00fccher.example"          # UTF-8 local part and domain
YONGHU = "\u7528\u6237@\u4f8b\u5b50.test"        # all of it non-ASCII
DATE = b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"


def message(subject, body, msgid, extra=b""):
    """A message with Date and Message-ID (so nothing is added to it)."""
    return (b"From: <sender@client.test>\r\nTo: <r@x.test>\r\n"
            b"Subject: " + subject + b"\r\n" + DATE +
            b"Message-ID: <" + msgid + b"@client.test>\r\n" + extra +
            b"\r\n" + body)


def after_received(data):
    """(our Received: field, the rest) of what the upstream got."""
    if not data.startswith(b"Received: "):
        raise AssertionError("no Received: first: %r" % data[:200])
    i = 0
    while True:
        i = data.index(b"\r\n", i) + 2
        if data[i:i + 1] not in (b"\t", b" "):
            return data[:i], data[i:]


class Utf8Test(RelayTest):

    def smtp(self, d, sender, rcpts, data, mail_options=()):
        """One message through smtplib (which dot-stuffs it and, with
        SMTPUTF8, sends its commands in UTF-8); the queue id."""
        s = smtplib.SMTP("127.0.0.1", d.port, local_hostname="client.test",
                         timeout=TIMEOUT)
        try:
            s.ehlo()
            self.assertTrue(s.has_extn("smtputf8"))
            self.assertTrue(s.has_extn("8bitmime"))
            self.assertEqual(s.mail(sender, list(mail_options))[0], 250)
            for r in rcpts:
                self.assertEqual(s.rcpt(r)[0], 250)
            code, reply = s.data(data)
            self.assertEqual(code, 250, reply)
            s.quit()
        finally:
            s.close()
        return re.search(rb"queued as ([0-9a-f]{16})", reply).group(1) \
            .decode()

    def arrived(self, d, up, qid):
        """qid's one message at the upstream, once it left the queue."""
        self.wait_gone(d, qid)
        got = [m for m in up.messages() if m.data.startswith(b"Received")
               and re.search(rb"\sid %s[;\s]" % qid.encode(),
                             after_received(m.data)[0])]
        self.assertEqual(len(got), 1)
        return got[0]

    def sendmail(self, d, args, data):
        env = dict(os.environ, SMARTRELAY_CONFIG=d.conf_path)
        return subprocess.run([SENDMAIL] + list(args), input=data,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, timeout=TIMEOUT)

    # -- SMTPUTF8

    def test_utf8_addresses_with_smtputf8(self):
        """MAIL FROM:<jörg@bücher.example> SMTPUTF8 to a Chinese
        address: accepted, relayed with SMTPUTF8, the envelope and the
        message byte for byte."""
        up = self.upstream()
        d = self.relay(up)
        canon = message("Gr\u00fc\u00dfe".encode(),
                        "Sch\u00f6ne Gr\u00fc\u00dfe.\r\n.dot\r\n".encode(),
                        b"u1")
        qid = self.smtp(d, JOERG, [YONGHU], canon, ["SMTPUTF8"])
        m = self.arrived(d, up, qid)
        self.assertEqual(m.mail_from, JOERG)
        self.assertEqual(m.rcpt_tos, [YONGHU])
        self.assertIn("SMTPUTF8", m.mail_options)
        self.assertIn("BODY=8BITMIME", m.mail_options)  # 8-bit content
        self.assertIn("SIZE=%d" % len(m.data), m.mail_options)
        rec, rest = after_received(m.data)
        self.assertEqual(rest, canon)
        self.assertIn(b" with UTF8SMTP id %s" % qid.encode(), rec)
        self.assertIn(("for <%s>" % YONGHU).encode(), rec)
        d.wait_log(r"delivery id=%s .* status=sent" % qid)

    def test_utf8_address_without_smtputf8(self):
        """A UTF-8 address from a client that did not say SMTPUTF8 is
        accepted, as Postfix does, and flagged: the relay sends it with
        SMTPUTF8, the only way it may go (smartrelayd(8))."""
        up = self.upstream()
        d = self.relay(up)
        c = self.client(d)
        c.greet()
        canon = message(b"plain", b"ascii body\r\n", b"u2")
        qid = c.send_message("s@client.test", [JOERG], canon).queued_id()
        m = self.arrived(d, up, qid)
        self.assertEqual((m.mail_from, m.rcpt_tos), ("s@client.test",
                                                     [JOERG]))
        self.assertIn("SMTPUTF8", m.mail_options)
        # Our Received: names the UTF-8 recipient; the rest is 7-bit.
        self.assertEqual(after_received(m.data)[1], canon)

    def test_no_smtputf8_upstream_fails_with_report(self):
        """An upstream without SMTPUTF8: the message for a UTF-8
        address is not sent at all (no mangled address), it fails with
        553 5.6.7, and the sender gets a failure report saying why."""
        up = self.upstream(smtputf8=False)
        d = self.relay(up)
        canon = message(b"to a UTF-8 mailbox", b"hello\r\n", b"u3")
        qid = self.smtp(d, "s@client.test", [JOERG], canon, ["SMTPUTF8"])
        env = self.assertFailedKept(d, qid)
        self.assertEqual(env["smtputf8"], "1")
        rc = env["rcpt"][0]
        self.assertEqual((rc["addr"], rc["state"], rc["dsn"]),
                         (JOERG, "failed", "5.6.7"))
        self.assertRegex(rc["reply"], r"^553 5\.6\.7 upstream 127\.0\.0\.1 "
                         r"does not support SMTPUTF8")
        self.wait_report(d, qid, "s@client.test")
        mails = [e["arg"] for e in up.events("cmd") if e["cmd"] == "MAIL"]
        self.assertEqual(len(mails), 1, mails)
        self.assertRegex(mails[0], r"^FROM:<>")
        (report,) = up.messages()
        self.assertEqual((report.mail_from, report.rcpt_tos),
                         ("", ["s@client.test"]))
        _, blocks = self.dsn_of(report)
        self.assertTrue(any(b.get("Status") == "5.6.7" and
                            "does not support SMTPUTF8" in
                            b.get("Diagnostic-Code", "") for b in blocks),
                        blocks)
        d.wait_log(r"relay refused id=%s reason=\"553 5\.6\.7 " % qid)

    def test_no_smtputf8_upstream_utf8_header(self):
        """SMTPUTF8 declared, ASCII addresses, a UTF-8 Subject: an
        internationalized message (RFC 6531 3.5): 554 5.6.9 with an
        upstream that lacks SMTPUTF8.  Without the declaration the same
        header is 8-bit content, relayed with BODY=8BITMIME."""
        up = self.upstream(smtputf8=False)
        d = self.relay(up)
        canon = message("Gr\u00fc\u00dfe".encode(), b"hi\r\n", b"u4")
        qid = self.smtp(d, "s@client.test", ["r@x.test"], canon,
                        ["SMTPUTF8"])
        env = self.assertFailedKept(d, qid)
        self.assertEqual(env["rcpt"][0]["dsn"], "5.6.9")
        self.assertEqual(env["eightbit"], "header")
        self.wait_report(d, qid, "s@client.test")
        canon2 = message("Gr\u00fc\u00dfe".encode(), b"hi\r\n", b"u5")
        qid2 = self.smtp(d, "s@client.test", ["r@x.test"], canon2)
        m = self.arrived(d, up, qid2)
        self.assertNotIn("SMTPUTF8", m.mail_options)
        self.assertIn("BODY=8BITMIME", m.mail_options)
        self.assertEqual(after_received(m.data)[1], canon2)

    # -- BODY=8BITMIME

    def test_body_8bitmime_passed_on(self):
        """BODY=8BITMIME and BODY=7BIT go upstream as declared; a 7-bit
        message that declared nothing goes without BODY=."""
        up = self.upstream()
        d = self.relay(up)
        eight = message(b"8bit", "caf\u00e9 \u2713\r\n".encode(), b"b1")
        seven = message(b"7bit", b"plain\r\n", b"b2")
        q8 = self.smtp(d, "s@client.test", ["r@x.test"], eight,
                       ["BODY=8BITMIME"])
        q7 = self.smtp(d, "s@client.test", ["r@x.test"], seven,
                       ["BODY=7BIT"])
        q0 = self.smtp(d, "s@client.test", ["r@x.test"], seven)
        m8, m7, m0 = (self.arrived(d, up, q) for q in (q8, q7, q0))
        self.assertIn("BODY=8BITMIME", m8.mail_options)
        self.assertEqual(after_received(m8.data)[1], eight)
        self.assertIn("BODY=7BIT", m7.mail_options)
        self.assertFalse([o for o in m0.mail_options
                          if o.startswith("BODY=")], m0.mail_options)

    def test_no_8bitmime_upstream(self):
        """An upstream without 8BITMIME (RFC 6152 3; nor SMTPUTF8, which
        implies it): a declared but 7-bit message goes without the
        parameter; an 8-bit body is re-encoded to 7 bit (quoted-
        printable, as Postfix converts it), the text decoding to what was
        sent; 8-bit header text fails with 554 5.6.3 and a report, and
        is not sent."""
        up = self.upstream(eightbitmime=False, smtputf8=False)
        d = self.relay(up)
        seven = message(b"7bit", b"plain\r\n", b"n1")
        q7 = self.smtp(d, "s@client.test", ["r@x.test"], seven,
                       ["BODY=8BITMIME"])
        m = self.arrived(d, up, q7)
        self.assertFalse([o for o in m.mail_options
                          if o.startswith("BODY=")], m.mail_options)
        self.assertEqual(after_received(m.data)[1], seven)
        text = "Sch\u00f6ne Gr\u00fc\u00dfe \u2713\r\n.dot\r\n".encode()
        eight = message(b"8bit body", text, b"n2",
                        b"MIME-Version: 1.0\r\nContent-Type: text/plain; "
                        b"charset=utf-8\r\nContent-Transfer-Encoding: "
                        b"8bit\r\n")
        q8 = self.smtp(d, "s@client.test", ["r@x.test"], eight,
                       ["BODY=8BITMIME"])
        m = self.arrived(d, up, q8)
        self.assertFalse([o for o in m.mail_options
                          if o.startswith("BODY=")], m.mail_options)
        self.assertIn("SIZE=%d" % len(m.data), m.mail_options)
        self.assertTrue(all(b < 0x80 for b in m.data))
        msg = email.message_from_bytes(after_received(m.data)[1],
                                       policy=email.policy.compat32)
        self.assertEqual(msg["Content-Transfer-Encoding"],
                         "quoted-printable")
        self.assertEqual(msg["Subject"], "8bit body")
        self.assertEqual(msg.get_payload(decode=True), text)
        d.wait_log(r"relay reencode id=%s parts=1" % q8)
        head8 = message("Gr\u00fc\u00dfe".encode(), b"hi\r\n", b"n3")
        qh = self.smtp(d, "s@client.test", ["r@x.test"], head8,
                       ["BODY=8BITMIME"])
        env = self.assertFailedKept(d, qh)
        self.assertEqual(env["body"], "8bitmime")
        self.assertEqual(env["eightbit"], "header")
        self.assertEqual(env["rcpt"][0]["dsn"], "5.6.3")
        self.assertIn("does not support 8BITMIME", env["rcpt"][0]["reply"])
        self.wait_report(d, qh, "s@client.test")
        self.assertFalse([m for m in up.messages()
                          if b"<n3@client.test>" in m.data.split(
                              b"\r\n\r\n")[0]])

    def test_injector_B8BITMIME(self):
        """cron's -B8BITMIME is kept through the maildrop: a 7-bit
        message goes with BODY=8BITMIME as declared; without -B, none."""
        up = self.upstream()
        d = self.relay(up)
        body = b"Subject: cron\n\nall done\n"
        for args, want in ((["-B8BITMIME"], True), ([], False)):
            mark = d.mark()
            p = self.sendmail(d, ["-i", "-f", "s@client.test"] + args +
                              ["r@x.test"], body)
            self.assertEqual((p.returncode, p.stderr), (0, b""))
            qid = d.wait_log(r"maildrop queued id=([0-9a-f]{16})",
                             since=mark).group(1)
            m = self.arrived(d, up, qid)
            self.assertEqual("BODY=8BITMIME" in m.mail_options, want,
                             m.mail_options)

    def test_injector_utf8_recipient(self):
        """smartrelay-sendmail jörg@bücher.example: the UTF-8 recipient
        is accepted and relayed with SMTPUTF8; a UTF-8 local name goes
        to the admin like any other."""
        up = self.upstream()
        d = self.relay(up)
        mark = d.mark()
        p = self.sendmail(d, ["-i", "-f", "s@client.test", JOERG,
                              "m\u00fcller"], b"Subject: x\n\nhi\n")
        self.assertEqual((p.returncode, p.stderr), (0, b""))
        qid = d.wait_log(r"maildrop queued id=([0-9a-f]{16})",
                         since=mark).group(1)
        m = self.arrived(d, up, qid)
        # m\u00fcller is a local name: the admin, by default the
        # upstream's account (user@test).
        self.assertEqual(sorted(m.rcpt_tos), sorted([JOERG, "user@test"]))
        self.assertIn("SMTPUTF8", m.mail_options)

    # -- durability

    def test_flags_survive_restart(self):
        """Queued while the upstream is away, the daemon restarted: the
        envelope keeps SMTPUTF8 and BODY=8BITMIME, and the message then
        goes with both."""
        up = self.upstream()
        up.stop()
        d = self.relay(up)
        canon = message(b"later", "caf\u00e9\r\n".encode(), b"r1")
        qid = self.smtp(d, JOERG, ["r@x.test"], canon,
                        ["SMTPUTF8", "BODY=8BITMIME"])
        d.wait_log(r"upstream state=unavailable .* queued=1")
        d.stop()
        env = d.envelope(qid)
        self.assertEqual((env["smtputf8"], env["body"], env["eightbit"],
                          env["sender"]), ("1", "8bitmime", "body", JOERG))
        up.start()
        d.start()
        m = self.arrived(d, up, qid)
        self.assertEqual(m.mail_from, JOERG)
        self.assertIn("SMTPUTF8", m.mail_options)
        self.assertIn("BODY=8BITMIME", m.mail_options)
        self.assertEqual(after_received(m.data)[1], canon)


if __name__ == "__main__":
    unittest.main(verbosity=2)
