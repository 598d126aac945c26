"""Devices and legacy programs: lossless conformance on the way out
(issue 13, item 1).

What cron, PHP mail(), mailx and printers send (lines over 998 octets, a
progress bar's bare CRs, a NUL) is accepted over SMTP and through the
injector, kept as it came in the spool, and re-encoded before it is
relayed: quoted-printable for text, base64 otherwise, with the MIME
header fields that say so.  Each test checks what arrived at the test
upstream: the envelope, the header fields, every line at most 998
octets with no bare CR, LF or NUL, and the decoded text byte for byte.
A message that cannot be made conformant fails for good with a failure
report that says why, and stays in failed/.  Smuggling: a bare CR "."
never ends anything, here or upstream.
"""

import base64
import email
import email.policy
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Client, HOSTNAME, TIMEOUT, wait_for  # noqa: E402
from itest_relay import RelayTest, USER  # noqa: E402

SENDMAIL = os.environ.get("SMARTRELAY_SENDMAIL") or os.path.join(
    harness.HERE, "..", "src", "smartrelay-sendmail")

# What the issue names: a progress bar, a 1,500-character line, a NUL
# and a 100 KB line, in one body.
PROGRESS = b"10%\r50%\r100%\r\n"
LONG1500 = bytes(b"0123456789abcdefghijklmnopqrstuvwxyz"[i % 36]
                 for i in range(1500)) + b"\r\n"
NUL = b"a NUL \x00 in a line\r\n"
LINE100K = b"".join(b"%07d " % i for i in range(100 * 1024 // 8)) + b"\r\n"
LEGACY_BODY = (b"backup done\r\n" + PROGRESS + LONG1500 + NUL + LINE100K
               + b".a line with a leading dot\r\nlast line\r\n")
REENCODE_RE = (r"relay reencode id=%s parts=(\d+) fields=(\d+) altered=(\d+) "
               r"size=(\d+)->(\d+) pass1_ms=([\d.]+) slice_max_ms=([\d.]+)")


def crlf(b):
    """LF line ends as CRLF (what the spool holds of local input)."""
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def wire_of(canon):
    """The bytes a client sends after DATA for the canonical message
    <canon> (CRLF lines, bare CRs and NULs being content): each line
    that starts with a dot gets one more (RFC 5321 4.5.2)."""
    lines = canon.split(b"\r\n")
    assert lines[-1] == b""
    return b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n"
                    for ln in lines[:-1])


def head_body(data):
    """(header block with its empty line, body) of a message."""
    i = data.index(b"\r\n\r\n") + 4
    return data[:i], data[i:]


class LegacyTest(RelayTest):

    # -- what arrived upstream

    def assertConformant(self, data):
        """Every line of <data> ends in CRLF, has at most 998 octets and
        no CR, LF or NUL of its own."""
        self.assertTrue(data.endswith(b"\r\n"), data[-50:])
        lines = data.split(b"\r\n")[:-1]
        for i, ln in enumerate(lines):
            self.assertLessEqual(len(ln), 998, "line %d: %r..." % (i,
                                                                    ln[:80]))
            for c in (b"\r", b"\n", b"\0"):
                self.assertNotIn(c, ln, "line %d: %r" % (i, ln[:200]))

    def parse(self, m):
        """The upstream message as an email.message (compat32: what a
        reader's mail program sees)."""
        return email.message_from_bytes(m.data, policy=email.policy.compat32)

    def one_upstream(self, d, up, qid, rcpts, sender):
        """qid's single message at the upstream, checked for envelope,
        SIZE= and conformance."""
        self.wait_gone(d, qid, timeout=TIMEOUT * 2)
        # Our Received: field names the id, over SMTP or not.
        msgs = [m for m in up.messages()
                if re.match(rb"Received: [^;]*\sid %s[;\s]" % qid.encode(),
                            m.data)]
        self.assertEqual(len(msgs), 1)
        m = msgs[0]
        self.assertEqual(m.mail_from, sender)
        self.assertEqual(sorted(m.rcpt_tos), sorted(rcpts))
        self.assertIn("SIZE=%d" % len(m.data), m.mail_options)
        self.assertConformant(m.data)
        return m

    def assertHeaderKept(self, sent_head, got_head):
        """Every field of <sent_head> is in <got_head>, in order and
        byte for byte, except a Content-Transfer-Encoding; what was added
        is MIME-Version, Content-Type and Content-Transfer-Encoding."""
        sent = [f for f in re.split(rb"\r\n(?![ \t])", sent_head) if f]
        got = [f for f in re.split(rb"\r\n(?![ \t])", got_head) if f]
        kept = [f for f in sent if not f.lower().startswith(
            b"content-transfer-encoding:")]
        self.assertEqual([f for f in got if f in kept], kept)
        for f in got:
            if f not in kept:
                self.assertRegex(f.lower(), rb"^(mime-version|content-type|"
                                 rb"content-transfer-encoding):", f)

    def smtp_send(self, d, sender, rcpts, canon):
        """Sends the canonical message over SMTP; its queue id."""
        return self.send(d, sender, rcpts, wire_of(canon))

    # -- over SMTP

    def test_smtp_legacy_body(self):
        """A progress bar, a 1,500-character line, a NUL and a 100 KB
        line, sent over SMTP: accepted, relayed quoted-printable, every
        header field kept, the decoded text exactly what was sent."""
        up = self.upstream()
        d = self.relay(up)
        head = (b"From: Backup <backup@client.test>\r\n"
                b"To: <admin@x.test>\r\nSubject: nightly backup\r\n"
                b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                b"Message-ID: <b1@client.test>\r\n\r\n")
        qid = self.smtp_send(d, "backup@client.test", ["admin@x.test"],
                             head + LEGACY_BODY)
        self.assertEqual(d.envelope(qid)["reencode"], 1)
        m = self.one_upstream(d, up, qid, ["admin@x.test"],
                              "backup@client.test")
        _, rest = harness.split_received(m.data)
        got_head, _ = head_body(rest)
        self.assertHeaderKept(head, got_head)
        msg = self.parse(m)
        self.assertEqual(msg["Content-Transfer-Encoding"],
                         "quoted-printable")
        self.assertEqual(msg.get_content_type(), "text/plain")
        self.assertEqual(msg["MIME-Version"], "1.0")
        self.assertEqual(msg.get_payload(decode=True), LEGACY_BODY)
        x = d.wait_log(REENCODE_RE % qid)
        self.assertEqual(x.group(1), "1")           # one part
        self.assertEqual(int(x.group(5)), len(m.data))

    def test_conformant_message_byte_identical(self):
        """What needs no change goes out byte for byte, without a
        re-encoding pass: 998 octets, 8-bit text, dots."""
        up = self.upstream()
        d = self.relay(up)
        canon = (b"From: <a@client.test>\r\nSubject: fine\r\n\r\n"
                 + b"y" * 998 + b"\r\n.dot\r\ncaf\xc3\xa9\tend\r\n")
        qid = self.smtp_send(d, "a@client.test", ["b@x.test"], canon)
        self.assertNotIn("reencode", d.envelope(qid))
        m = self.one_upstream(d, up, qid, ["b@x.test"], "a@client.test")
        self.assertRelayed(m, qid, "a@client.test", ["b@x.test"], canon)
        self.assertNotIn("relay reencode id=%s" % qid, d.full_log())

    def test_multipart_only_the_part_that_needs_it(self):
        """In a multipart message only the parts that need it change:
        a text part with a long line and a progress bar becomes
        quoted-printable, a binary part with NULs base64; the others
        and the structure stay byte for byte."""
        up = self.upstream()
        d = self.relay(up)
        binary = b"\x00\x01\x02\r\xff" * 300
        attached = base64.encodebytes(b"already fine \x00\xff" * 20)
        attached = attached.replace(b"\n", b"\r\n")
        clean = (b"--BOUND\r\nContent-Type: text/plain; charset=us-ascii"
                 b"\r\n\r\nclean part, left alone\r\n")
        fine64 = (b"--BOUND\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Transfer-Encoding: base64\r\n\r\n" + attached)
        text = b"z" * 2000 + b"\r\n" + PROGRESS + b"tail"
        canon = (b"From: <m@client.test>\r\nSubject: parts\r\n"
                 b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
                 b"boundary=\"BOUND\"\r\n\r\npreamble\r\n" + clean
                 + b"--BOUND\r\nContent-Type: text/plain; charset=utf-8"
                 b"\r\n\r\n" + text + b"\r\n" + fine64
                 + b"--BOUND\r\nContent-Type: application/octet-stream"
                 b"\r\n\r\n" + binary + b"\r\n--BOUND--\r\n")
        qid = self.smtp_send(d, "m@client.test", ["p@x.test"], canon)
        m = self.one_upstream(d, up, qid, ["p@x.test"], "m@client.test")
        self.assertIn(clean, m.data)
        self.assertIn(fine64, m.data)
        parts = [p for p in self.parse(m).walk() if not p.is_multipart()]
        self.assertEqual(len(parts), 4)
        self.assertEqual(parts[1]["Content-Transfer-Encoding"],
                         "quoted-printable")
        self.assertEqual(parts[1].get_payload(decode=True), text)
        self.assertEqual(parts[3]["Content-Transfer-Encoding"], "base64")
        self.assertEqual(parts[3].get_payload(decode=True), binary)
        self.assertEqual(parts[2].get_payload(decode=True),
                         b"already fine \x00\xff" * 20)
        x = d.wait_log(REENCODE_RE % qid)
        self.assertEqual(x.group(1), "2")

    def test_smuggling_through_the_relay(self):
        """A bare CR "." is content on the way in and is re-encoded on
        the way out: the upstream gets exactly one message per DATA,
        from the good sender, with the text as sent, and never a line
        that could end its DATA."""
        up = self.upstream()
        d = self.relay(up)
        evil = (b"MAIL FROM:<evil@x>\r\nRCPT TO:<y@z>\r\nDATA\r\n"
                b"Subject: smuggled\r\n\r\nsmuggled\r\n")
        qids = []
        for sep in (b"\r.\r", b"\r\n.\r", b"\r.\r\n", b"\n.\r"):
            with self.subTest(sep=sep):
                c = Client(d.port)
                try:
                    c.greet()
                    c.cmd("MAIL FROM:<good@example.org>", "250 2.1.0")
                    c.cmd("RCPT TO:<r@x.test>", "250 2.1.5")
                    c.cmd("DATA", "354")
                    c.send(b"Subject: smuggle\r\n\r\nbody" + sep + evil
                           + b".\r\nQUIT\r\n")
                    qids.append(c.expect("250 2.0.0").queued_id())
                    c.expect("221 2.0.0")
                    c.expect_eof()
                finally:
                    c.close()
        for qid in qids:
            m = self.one_upstream(d, up, qid, ["r@x.test"],
                                  "good@example.org")
            self.assertIn(b"MAIL FROM:<evil@x>",
                          self.parse(m).get_payload(decode=True))
        self.assertEqual(len(up.messages()), len(qids))
        for e in up.events("cmd"):
            if e["cmd"] == "MAIL":
                self.assertIn("good@example.org", e["arg"])

    def test_header_cannot_be_made_conformant(self):
        """A To: field over 998 octets without white space cannot be
        folded without changing it: the message fails for good, before
        anything is sent, with a failure report that says why, and
        stays in failed/."""
        up = self.upstream()
        d = self.relay(up)
        to = b"<" + b"t" * 1200 + b"@x.test>"
        canon = (b"From: <s@client.test>\r\nTo: " + to +
                 b"\r\nSubject: unfoldable\r\n\r\nbody\r\n")
        qid = self.smtp_send(d, "s@client.test", ["r@x.test"], canon)
        x = self.wait_delivery(d, qid, "r@x.test", "bounced")
        self.assertEqual(x["dsn"], "5.6.0")
        self.assertIn("cannot be made conformant", x["reply"])
        self.assertIn("header field", x["reply"])
        env = self.assertFailedKept(d, qid)
        self.assertEqual(env["rcpt"][0]["dsn"], "5.6.0")
        with open(d.path("failed", qid + ".msg"), "rb") as f:
            self.assertIn(to, f.read())
        self.wait_report(d, qid, "s@client.test")
        mails = [e["arg"] for e in up.events("cmd") if e["cmd"] == "MAIL"]
        self.assertFalse(any("s@client.test" in a for a in mails), mails)
        reports = up.messages()
        self.assertEqual(len(reports), 1)
        self.assertEqual((reports[0].mail_from, reports[0].rcpt_tos),
                         ("", ["s@client.test"]))
        self.assertConformant(reports[0].data)
        _, blocks = self.dsn_of(reports[0])
        self.assertTrue(any(b.get("Status") == "5.6.0" and
                            "cannot be made conformant" in
                            b.get("Diagnostic-Code", "") for b in blocks),
                        blocks)
        d.wait_log(r"relay reencode id=%s failed reason=\"header field "
                   r"cannot be made conformant\"" % qid)

    def test_from_rewrite_and_reencoding(self):
        """With from rewrite = account, the rewritten header block and
        the re-encoded body go out together; SIZE= counts both."""
        up = self.upstream()
        d = self.relay(up, **{"from": {"rewrite": "account"}})
        head = (b"From: \"Scanner\" <scanner@printer.lan>\r\n"
                b"Subject: scan\r\n\r\n")
        qid = self.smtp_send(d, "scanner@printer.lan", ["r@x.test"],
                             head + LEGACY_BODY)
        m = self.one_upstream(d, up, qid, ["r@x.test"], USER)
        msg = self.parse(m)
        self.assertIn("<%s>" % USER, msg["From"])
        self.assertIn("scanner@printer.lan", msg["X-Original-From"])
        self.assertEqual(msg["Content-Transfer-Encoding"],
                         "quoted-printable")
        self.assertEqual(msg.get_payload(decode=True), LEGACY_BODY)
        d.wait_log(r"relay from id=%s rewritten" % qid)
        d.wait_log(REENCODE_RE % qid)

    def test_header_needing_repair_skips_from_rewrite(self):
        """A header block that itself needs re-encoding is not rewritten
        (rewrite.c reads conformant blocks only; logged): the message
        still goes, re-encoded, with its own From:."""
        up = self.upstream()
        d = self.relay(up, **{"from": {"rewrite": "account"}})
        subject = b" ".join(b"word%d" % i for i in range(300))
        head = (b"From: <scanner@printer.lan>\r\nSubject: " + subject
                + b"\r\n\r\n")
        qid = self.smtp_send(d, "scanner@printer.lan", ["r@x.test"],
                             head + b"body\r\n")
        m = self.one_upstream(d, up, qid, ["r@x.test"], USER)
        msg = self.parse(m)
        self.assertEqual(msg["From"], "<scanner@printer.lan>")
        self.assertEqual(re.sub(r"\s+", " ", msg["Subject"]),
                         subject.decode())
        d.wait_log(r"relay from id=%s not rewritten" % qid)
        x = d.wait_log(REENCODE_RE % qid)
        self.assertEqual((x.group(1), x.group(2)), ("0", "1"))

    # -- through the injector

    def sendmail(self, d, args, data, extra_env=None):
        env = dict(os.environ, SMARTRELAY_CONFIG=d.conf_path)
        env.pop("NAME", None)
        env.update(extra_env or {})
        return subprocess.run([SENDMAIL] + list(args), input=data,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, timeout=TIMEOUT)

    def injected(self, d):
        """The id of the one message the daemon picked up."""
        return d.wait_log(r"maildrop queued id=([0-9a-f]{16})").group(1)

    def test_cron_progress_bar_and_long_line(self):
        """cron's own call, sendmail -FCronDaemon -i -B8BITMIME -oem
        root (Debian cron 3.0pl1-162's format string and header fields,
        from its binary), with a job's output holding a progress bar and
        a 1,500 character line, under cron's 8bit header: exit 0, and at
        the upstream the envelope (root at the configured
        admin_address), cron's header fields, quoted-printable, and the
        output byte for byte (lines end in CRLF on the wire)."""
        up = self.upstream()
        d = self.relay(up, admin_address="admin@gmail.test")
        output = (b"backup: 10%\r50%\r100%\n"
                  + LONG1500.replace(b"\r\n", b"\n")
                  + b"caf\xc3\xa9 \xe2\x9c\x93 done\n")
        head = (b"From: root (Cron Daemon)\n"
                b"To: root\n"
                b"Subject: Cron <root@host> /usr/local/bin/backup\n"
                b"MIME-Version: 1.0\n"
                b"Content-Type: text/plain; charset=UTF-8\n"
                b"Content-Transfer-Encoding: 8bit\n"
                b"X-Cron-Env: <SHELL=/bin/sh>\n"
                b"X-Cron-Env: <HOME=/root>\n\n")
        p = self.sendmail(d, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem",
                              "root"], head + output)
        self.assertEqual((p.returncode, p.stderr), (0, b""))
        qid = self.injected(d)
        login = "%s@%s" % (pwd.getpwuid(os.getuid()).pw_name, HOSTNAME)
        # root is a local name: it goes to admin_address (without one,
        # to the upstream's account: itest_local.py; smartrelay.conf(5),
        # LOCAL NAMES).
        m = self.one_upstream(d, up, qid, ["admin@gmail.test"], login)
        d.wait_log(r"maildrop rcpt id=%s original=<root@%s> "
                   r"rewritten=<admin@gmail\.test> via=admin$"
                   % (qid, re.escape(HOSTNAME)))
        msg = self.parse(m)
        self.assertEqual(msg["From"], "root (Cron Daemon)")
        self.assertEqual(msg["To"], "root")
        self.assertEqual(msg["Subject"],
                         "Cron <root@host> /usr/local/bin/backup")
        self.assertEqual(msg.get_all("X-Cron-Env"),
                         ["<SHELL=/bin/sh>", "<HOME=/root>"])
        self.assertEqual(msg.get_all("Content-Transfer-Encoding"),
                         ["quoted-printable"])
        self.assertEqual(msg.get_content_type(), "text/plain")
        self.assertEqual(msg.get_param("charset"), "UTF-8")
        self.assertIsNotNone(msg["Date"])
        self.assertIsNotNone(msg["Message-ID"])
        self.assertEqual(msg.get_payload(decode=True), crlf(output))

    def test_injector_legacy_body(self):
        """The same content as over SMTP, through the injector (bsd-mailx
        style: -t, LF line ends): a NUL and a 100 KB line too."""
        up = self.upstream()
        d = self.relay(up)
        body = LEGACY_BODY.replace(b"\r\n", b"\n")
        p = self.sendmail(d, ["-t", "-i"], b"To: ops@x.test\n"
                          b"From: app@client.test\n"
                          b"Subject: log\n\n" + body)
        self.assertEqual((p.returncode, p.stderr), (0, b""))
        qid = self.injected(d)
        login = "%s@%s" % (pwd.getpwuid(os.getuid()).pw_name, HOSTNAME)
        m = self.one_upstream(d, up, qid, ["ops@x.test"], login)
        msg = self.parse(m)
        self.assertEqual(msg["Content-Transfer-Encoding"],
                         "quoted-printable")
        self.assertEqual(msg.get_payload(decode=True), LEGACY_BODY)

    @unittest.skipUnless(shutil.which("php"), "php-cli is not installed")
    def test_php_mail_1500_character_line(self):
        """PHP's mail() through sendmail_path = "smartrelay-sendmail -t
        -i", with a 1,500-character line.  What PHP hands to its
        sendmail is captured first (sendmail_path = "cat"), to compare
        the decoded text with, byte for byte."""
        up = self.upstream()
        d = self.relay(up)
        line = LONG1500[:-2].decode()
        code = ('$ok = mail("web@x.test", "order 42", "Hello,\\n%s\\n'
                'bye\\n", "From: shop@client.test"); exit($ok ? 0 : 1);'
                % line)
        capture = os.path.join(self.tmp, "php-mail")

        def php(sendmail_path):
            p = subprocess.run(["php", "-n", "-d", "sendmail_path=%s"
                                % sendmail_path, "-r", code],
                               env=dict(os.environ,
                                        SMARTRELAY_CONFIG=d.conf_path),
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        php("cat > %s" % capture)
        with open(capture, "rb") as f:
            handed = f.read()
        php("%s -t -i" % SENDMAIL)
        qid = self.injected(d)
        login = "%s@%s" % (pwd.getpwuid(os.getuid()).pw_name, HOSTNAME)
        m = self.one_upstream(d, up, qid, ["web@x.test"], login)
        msg = self.parse(m)
        self.assertEqual(msg["Subject"], "order 42")
        self.assertEqual(msg["From"], "shop@client.test")
        self.assertEqual(msg["Content-Transfer-Encoding"],
                         "quoted-printable")
        body = re.split(rb"\r?\n\r?\n", handed, maxsplit=1)[1]
        self.assertIn(LONG1500.replace(b"\r\n", b"\n"), body)
        self.assertEqual(msg.get_payload(decode=True), crlf(body))

    # -- the relay side alone, and what it costs

    def test_planted_flagged_message(self):
        """A spool message with "reencode 1" goes out re-encoded (the
        relay side alone, whatever wrote the spool)."""
        up = self.upstream()
        d = self.relay(up)
        self.assertEqual(d.stop(), 0)
        qid = self.plant(d, LEGACY_BODY, reencode=True)
        d.start()
        m = self.one_upstream(d, up, qid, ["x@example.net"], "h@example.org")
        msg = self.parse(m)
        self.assertEqual(msg["Content-Transfer-Encoding"],
                         "quoted-printable")
        self.assertEqual(msg.get_content_type(), "text/plain")
        self.assertEqual(msg.get_payload(decode=True), LEGACY_BODY)
        d.wait_log(REENCODE_RE % qid)

    def test_planted_unflagged_message(self):
        """Defence in depth: content that needs re-encoding in a message
        whose envelope does not say so never goes out as it is: the
        attempt ends without the final dot, and the next one re-encodes
        it."""
        up = self.upstream()
        d = self.relay(up)
        self.assertEqual(d.stop(), 0)
        qid = self.plant(d, LEGACY_BODY, reencode=False)
        d.start()
        m = self.one_upstream(d, up, qid, ["x@example.net"], "h@example.org")
        self.assertEqual(self.parse(m).get_payload(decode=True),
                         LEGACY_BODY)
        d.wait_log(r"relay id=%s has content to re-encode that its "
                   r"envelope did not announce" % qid)
        self.assertEqual(len(up.messages()), 1)

    def test_25mb_one_long_line(self):
        """The cost of the re-encoding of a message of about 25 MB in one
        line: the first pass runs in slices, so the loop answers other
        clients meanwhile; memory stays flat."""
        up = self.upstream()
        d = self.relay(up)
        unit = b"entry ok; caf\xc3\xa9 = 100%\t"
        text = unit * (25 * 1000 * 1000 // len(unit))
        canon = (b"From: <big@client.test>\r\nSubject: one line\r\n\r\n"
                 + text + b"\r\n")
        sanitized = d.is_sanitized()
        hwm = d.status_kb("VmHWM")
        qid = self.smtp_send(d, "big@client.test", ["r@x.test"], canon)
        cpu0 = self.cpu(d)
        # Greet the daemon over and over while it relays.
        lat = []
        t_end = time.monotonic() + TIMEOUT * 3
        while qid in d.queued_ids() and time.monotonic() < t_end:
            t0 = time.monotonic()
            with Client(d.port) as c:
                c.expect("220 ")
            lat.append(time.monotonic() - t0)
        cpu = self.cpu(d) - cpu0
        m = self.one_upstream(d, up, qid, ["r@x.test"], "big@client.test")
        _, rest = harness.split_received(m.data)
        msg = email.message_from_bytes(rest, policy=email.policy.compat32)
        self.assertEqual(harness.sha256(msg.get_payload(decode=True)),
                         harness.sha256(text + b"\r\n"))
        x = d.wait_log(REENCODE_RE % qid)
        grew = d.status_kb("VmHWM") - hwm
        print("\n  %d-octet line re-encoded to %s octets: first pass "
              "%s ms of loop time, longest slice %s ms; daemon CPU for "
              "the relay %.2fs; %d greetings meanwhile, slowest %.1f ms; "
              "VmHWM grew by %d kB%s" % (
                  len(text), x.group(5), x.group(6), x.group(7), cpu,
                  len(lat), 1000 * max(lat or [0]), grew,
                  " (sanitizer build)" if sanitized else ""))
        if not sanitized:
            self.assertLess(grew, 8 * 1024)
            self.assertLess(float(x.group(7)), 50.0)

    # -- helpers

    def cpu(self, d):
        """The daemon's CPU time so far, in seconds."""
        with open("/proc/%d/stat" % d.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf(
            "SC_CLK_TCK")

    def plant(self, d, body, reencode):
        """Writes a message into queue/ by hand (the daemon stopped);
        its id."""
        qid = "0001234567890abc"
        data = (b"Received: from hand.example ([127.0.0.1])\r\n"
                b"\tby relay.test (smartrelay) with ESMTP id "
                + qid.encode() + b"\r\n\tfor <x@example.net>; "
                b"Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                b"From: <h@example.org>\r\nSubject: planted\r\n\r\n" + body)
        env = ("smartrelay-envelope 1\nid %s\narrival %d\n"
               "size %d\nclient 127.0.0.1\nhelo hand.example\n"
               "sender h@example.org\nattempts 0\nnext 0\nheld 0\n%s"
               "rcpt pending - x@example.net\nend\n"
               % (qid, int(time.time()), len(data),
                  "reencode 1\n" if reencode else ""))
        with open(d.path("queue", qid + ".msg"), "wb") as f:
            f.write(data)
        with open(d.path("queue", qid + ".env"), "w") as f:
            f.write(env)
        return qid


if __name__ == "__main__":
    unittest.main(verbosity=2)
