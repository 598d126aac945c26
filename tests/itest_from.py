"""smartrelayd From: handling (from { rewrite = ... }) against the test
upstream: what the upstream receives, byte for byte.

"keep" (the default) relays the message untouched.  "account" sends
MAIL FROM as the upstream's account (from_address, else username),
except for the null sender, and rewrites From: to the account with the
client network's name (clients table or network section) or the
original display name, keeping the original in X-Original-From: and,
when there is none, Reply-To:.  The rewritten block goes through the
same dot-stuffing as the rest, so no header can split a message.
Shared helpers come from itest_relay.py.  Bounded polls, no sleeps.
"""

import email
import email.header
import email.policy
import os
import sys
import unittest

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from itest_relay import PASSWORD, USER, RelayTest, stuffed  # noqa: E402

SENDER = "scanner@printer.lan"
RCPT = "someone@x.test"


def headers_of(data):
    """The header block of <data> (through the empty line) and the rest."""
    i = data.find(b"\r\n\r\n")
    assert i >= 0, data[:500]
    return data[:i + 4], data[i + 4:]


def field(block, name):
    """The raw lines of every field <name> in a header block."""
    out = []
    for ln in block.split(b"\r\n"):
        if ln[:1] in (b" ", b"\t") and out and out[-1][0]:
            out[-1][1] += b"\r\n" + ln
            continue
        hit = ln.split(b":", 1)[0].strip().lower() == name.lower().encode()
        out.append([hit, ln])
    return [v for hit, v in out if hit]


def display_of(block):
    """The decoded display name and the address of the From: field."""
    msg = email.message_from_bytes(block, policy=email.policy.default)
    addr = msg["From"].addresses
    assert len(addr) == 1, msg["From"]
    return addr[0].display_name, addr[0].addr_spec


class FromTest(RelayTest):

    def relay_from(self, up, rewrite=None, upstream=None, **opts):
        """A daemon relaying to <up> with the from section and extra
        upstream keys (from_address) given."""
        pw = self.write_password(PASSWORD)
        ups = {"host": "127.0.0.1", "port": up.port, "tls": "starttls",
               "verify_name": "upstream.test", "ca_file": self.pki.ca_crt,
               "username": USER, "password_file": pw, "connections": 1}
        ups.update(upstream or {})
        q = {"lifetime": "5d", "retry_min": "1s", "retry_max": "4s"}
        if rewrite is not None:
            opts["from"] = {"rewrite": rewrite}
        return self.daemon(upstream=ups, queue=q, **opts)

    def one(self, up, d, sender, body, rcpts=(RCPT,)):
        """Sends <body> (wire bytes); the one message the upstream got,
        and the part after our Received: header."""
        qid = self.send(d, sender, list(rcpts), body)
        self.wait_gone(d, qid)
        msgs = self.by_id(up, qid)
        self.assertEqual(len(msgs), 1)
        m = msgs[0]
        self.assertEqual(sorted(m.rcpt_tos), sorted(rcpts))
        self.assertIn("SIZE=%d" % len(m.data), m.mail_options)
        _, rest = harness.split_received(m.data)
        # The Date: and Message-ID: the daemon added (no body has any).
        return m, harness.strip_stamp(rest)


class KeepMode(FromTest):

    def test_default_is_byte_identical(self):
        up = self.upstream()
        for mode in (None, "keep"):
            with self.subTest(mode=mode):
                d = self.relay_from(up, rewrite=mode,
                                    clients={'"127.0.0.1/32"': "Printer"})
                wire, canon = stuffed([
                    b'From: "Scanner" <scanner@printer.lan>',
                    b"Sender: other@x.test", b"Subject: keep",
                    b"DKIM-Signature: v=1; d=printer.lan;", b"\tb=xyz",
                    b"", b".dot", b"body"])
                m, rest = self.one(up, d, SENDER, wire)
                self.assertEqual(m.mail_from, SENDER)
                self.assertEqual(rest, canon)
                d.stop()


class AccountMode(FromTest):

    BODY = [b'From: "Scanner, 2nd floor" <scanner@printer.lan>',
            b"To: <someone@x.test>", b"Subject: scan",
            b"DKIM-Signature: v=1; d=printer.lan;", b"\tb=xyz", b"",
            b".leading dot", b"page 1"]

    def expect(self, display, account=USER, reply_to=True, body=None):
        """The canonical data we expect after Received: for BODY (or
        <body>, with the same From: line)."""
        orig = b' "Scanner, 2nd floor" <scanner@printer.lan>'
        lines = [b"From: " + display + b" <" + account.encode() + b">",
                 b"X-Original-From:" + orig]
        if reply_to:
            lines.append(b"Reply-To:" + orig)
        return stuffed(lines + (body or self.BODY)[1:])[1]

    def test_clients_table_name(self):
        up = self.upstream()
        d = self.relay_from(up, rewrite="account",
                            clients={'"127.0.0.1/32"': "Office printer"})
        m, rest = self.one(up, d, SENDER, stuffed(self.BODY)[0])
        self.assertEqual(m.mail_from, USER)
        self.assertEqual(rest, self.expect(
            b'"Office printer via smartrelay"'))
        self.assertEqual(display_of(headers_of(rest)[0]),
                         ("Office printer via smartrelay", USER))
        d.wait_log(r"relay from id=\S+ rewritten account=%s" % USER)

    def test_network_section_name_utf8_and_suffix(self):
        up = self.upstream()
        d = self.relay_from(
            up, **{'network "127.0.0.0/8"': {"name": "B\u00fcro"},
               "from": {"rewrite": "account", "suffix": " (relay)"}})
        m, rest = self.one(up, d, SENDER, stuffed(self.BODY)[0])
        self.assertEqual(m.mail_from, USER)
        self.assertEqual(rest, self.expect(b"=?UTF-8?Q?B=C3=BCro_=28relay"
                                           b"=29?="))
        self.assertEqual(display_of(headers_of(rest)[0]),
                         ("B\u00fcro (relay)", USER))

    def test_original_display_name_kept(self):
        up = self.upstream()
        d = self.relay_from(up, rewrite="account")
        m, rest = self.one(up, d, SENDER, stuffed(self.BODY)[0])
        self.assertEqual(rest, self.expect(
            b'"Scanner, 2nd floor via smartrelay"'))

    def test_from_address_alias(self):
        up = self.upstream()
        d = self.relay_from(up, rewrite="account",
                            upstream={"from_address": "alias@test"})
        m, rest = self.one(up, d, SENDER, stuffed(self.BODY)[0])
        self.assertEqual(m.mail_from, "alias@test")
        self.assertEqual(m.auth_user, USER)
        self.assertEqual(rest, self.expect(
            b'"Scanner, 2nd floor via smartrelay"', account="alias@test"))

    def test_null_sender_stays_null(self):
        """Failure reports keep MAIL FROM:<>; the header is rewritten
        like any other."""
        up = self.upstream()
        d = self.relay_from(up, rewrite="account")
        m, rest = self.one(up, d, "", stuffed(self.BODY)[0])
        self.assertEqual(m.mail_from, "")
        self.assertEqual(rest, self.expect(
            b'"Scanner, 2nd floor via smartrelay"'))

    def test_existing_reply_to_kept(self):
        up = self.upstream()
        d = self.relay_from(up, rewrite="account")
        body = [b"Reply-To: <desk@x.test>"] + self.BODY
        m, rest = self.one(up, d, SENDER, stuffed(body)[0])
        block, _ = headers_of(rest)
        self.assertEqual(field(block, "Reply-To"),
                         [b"Reply-To: <desk@x.test>"])
        self.assertEqual(rest, b"Reply-To: <desk@x.test>\r\n" + self.expect(
            b'"Scanner, 2nd floor via smartrelay"', reply_to=False))

    def test_missing_from_added(self):
        up = self.upstream()
        d = self.relay_from(up, rewrite="account",
                            clients={'"127.0.0.1/32"': "Cron box"})
        wire, canon = stuffed([b"Subject: no from", b"", b"text"])
        m, rest = self.one(up, d, "root@cron.lan", wire)
        self.assertEqual(m.mail_from, USER)
        self.assertEqual(rest, b"Subject: no from\r\nFrom: \"Cron box via "
                         b"smartrelay\" <" + USER.encode() + b">\r\n\r\n"
                         b"text\r\n")

    def test_already_the_account_untouched(self):
        up = self.upstream()
        d = self.relay_from(up, rewrite="account")
        wire, canon = stuffed([b"From: Me <%s>" % USER.encode(),
                               b"Subject: mine", b"", b"x"])
        m, rest = self.one(up, d, "me@elsewhere.test", wire)
        self.assertEqual(m.mail_from, USER)
        self.assertEqual(rest, canon)

    def test_header_tricks_cannot_split(self):
        """Lines that look like the end of data, or like commands, in and
        around the header block arrive as data of one message."""
        up = self.upstream()
        d = self.relay_from(up, rewrite="account")
        cases = [
            # A "." line inside the header block: not a header, so the
            # block goes as it is; still one message, dot intact.
            ([b"From: a@b.test", b".", b"RCPT TO:<evil@x.test>",
              b"Subject: s", b"", b"body"], False),
            # Folded From: with a "." continuation and a CRLF.CRLF-like
            # quoted display name: rewritten, refolded, still one.
            ([b'From: "x', b' .', b' ." <a@b.test>', b"Subject: s", b"",
              b".", b"..", b"body"], True),
            # Leading dots on header lines after a bare-LF trick.
            ([b"From: a@b.test", b"X-A: y", b"", b".\nQUIT", b"body"],
             True),
        ]
        for lines, rewritten in cases:
            with self.subTest(lines=lines):
                wire = stuffed(lines)[0]
                canon = harness.canonical(wire)
                m, rest = self.one(up, d, SENDER, wire)
                self.assertEqual(m.mail_from, USER)
                self.assertEqual(sorted(m.rcpt_tos), [RCPT])
                block, body = headers_of(rest)
                if rewritten:
                    self.assertEqual(body, headers_of(canon)[1])
                    self.assertEqual(len(field(block, "From")), 1)
                    self.assertIn(b"<%s>" % USER.encode(), block)
                else:
                    self.assertEqual(rest, canon)
        self.assertEqual(len(up.messages(None)), len(cases))
        rcpts = [e for e in up.events("cmd") if e["cmd"] == "RCPT"]
        self.assertEqual(len(rcpts), len(cases))

    def test_5mb_message_intact(self):
        up = self.upstream()
        d = self.relay_from(up, rewrite="account",
                            clients={'"127.0.0.1/32"': "Office printer"})
        lines = list(self.BODY)
        size = 0
        i = 0
        while size < 5 * 1000 * 1000:
            ln = [b".%d" % i, b"y" * 900, b"", b". x"][i % 4]
            lines.append(ln)
            size += len(ln) + 2
            i += 1
        wire = stuffed(lines)[0]
        base = d.status_kb("VmHWM")
        m, rest = self.one(up, d, SENDER, wire)
        grew = d.status_kb("VmHWM") - base
        print("\n  5 MB message rewritten and relayed: VmHWM grew by %d kB"
              % grew)
        if not d.is_sanitized():
            self.assertLess(grew, 8 * 1024)
        want = self.expect(b'"Office printer via smartrelay"', body=lines)
        self.assertEqual(len(rest), len(want))
        self.assertEqual(harness.sha256(rest), harness.sha256(want))


if __name__ == "__main__":
    unittest.main(verbosity=2)
