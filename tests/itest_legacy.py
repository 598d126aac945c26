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

import email
import email.policy
import os
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
from itest_relay import RelayTest  # noqa: E402

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
        self.wait_gone(d, qid)
        msgs = self.by_id(up, qid)
        self.assertEqual(len(msgs), 1)
        m = msgs[0]
        self.assertEqual(m.mail_from, sender)
        self.assertEqual(sorted(m.rcpt_tos), sorted(rcpts))
        self.assertIn("SIZE=%d" % len(m.data), m.mail_options)
        self.assertConformant(m.data)
        return m

    # -- tests

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
        for e in up.events("cmd"):
            self.assertNotIn("10%\r", e.get("arg") or "")

    # -- helpers

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
