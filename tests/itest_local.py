"""Devices and legacy programs (issue 13, items 2, 3, 5 and 6), end to end.

The real daemon relays to a real test upstream (upstream.py) and the
real injector ($SMARTRELAY_SENDMAIL) feeds it, and each test asserts
what arrived upstream: cron's mail to root reaching admin_address (or
the upstream account), aliases(5) with continuation lines, a refused
aliases file at start and at reload, the envelope forms old devices
send (and the dangerous ones still refused), Date: and Message-ID:
added once and kept across a retry, and fifty concurrent loopback
clients.  Bounded polls, no sleeps.
"""

import email
import email.utils
import os
import pwd
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Client, HOSTNAME, TIMEOUT, wait_for  # noqa: E402
from itest_relay import RelayTest, USER, simple  # noqa: E402

SENDMAIL = os.environ.get("SMARTRELAY_SENDMAIL") or os.path.join(
    harness.HERE, "..", "src", "smartrelay-sendmail")
EX_DATAERR, EX_CONFIG = 65, 78
DOMAIN = "lan.test"
ADMIN = "you@gmail.test"
LOGIN = pwd.getpwuid(os.getuid()).pw_name
CRON = (b"Subject: Cron <root@box> /usr/local/bin/backup\n"
        b"X-Cron-Env: <SHELL=/bin/sh>\n"
        b"\n"
        b"backup done\n")
NO_FIELDS = (b"From: <scanner@lan.test>\r\nTo: <x@y.test>\r\n"
             b"Subject: scan 0001\r\n\r\nSee the attached page.\r\n")
ROUTE_RE = (r"%s rcpt (?:id|sid)=\S+ original=<%s> rewritten=%s "
            r"via=%s$")
# Our trace header after HELO ("with SMTP") as well as EHLO.
TRACE_RE = re.compile(rb"^Received: from (?P<helo>\S+) \(\[[^\]]+\]\)\r\n"
                      rb"\tby \S+ \(smartrelay\) with E?SMTP id "
                      rb"(?P<id>[0-9a-f]{16})")


class LocalTest(RelayTest):

    # -- helpers

    def local(self, up, aliases=None, **opts):
        """A daemon relaying to <up> with domain lan.test and, unless
        told otherwise, admin_address you@gmail.test."""
        opts.setdefault("domain", DOMAIN)
        opts.setdefault("admin_address", ADMIN)
        if aliases is not None:
            opts["aliases"] = self.write_aliases(aliases)
        d = self.relay(up, start=False, **opts)
        os.chmod(d.dir, 0o711)
        d.start()
        return d

    def write_aliases(self, text, name="aliases"):
        path = os.path.join(self.tmp, name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.rename(path + ".tmp", path)
        return path

    def sendmail(self, d, args, data=CRON):
        env = dict(os.environ, SMARTRELAY_CONFIG=d.conf_path)
        env.pop("NAME", None)
        return subprocess.run([SENDMAIL] + list(args), input=data,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, timeout=TIMEOUT)

    def inject(self, d, args, data=CRON):
        """Runs the injector (exit 0, silent) and returns the queue id
        the daemon gave the message once it left the maildrop."""
        mark = d.mark()
        p = self.sendmail(d, args, data)
        self.assertEqual((p.returncode, p.stderr), (0, b""))
        return d.wait_log(r"maildrop queued id=([0-9a-f]{16})",
                          since=mark).group(1)

    def delivered(self, up, d, qid):
        """The one upstream message of <qid>, once it left the queue."""
        self.wait_gone(d, qid)
        # Our Received: (SMTP or maildrop) names the queue id.
        msgs = [m for m in up.messages() if re.match(
            rb"Received: [^;]*\sid %s[;\r]" % qid.encode(), m.data)]
        self.assertEqual(len(msgs), 1)
        return msgs[0]

    def headers(self, m):
        return email.message_from_bytes(m.data)

    # -- item 2: local names

    def test_cron_root_reaches_admin_address(self):
        up = self.upstream()
        d = self.local(up)
        d.wait_log(r"smartrelayd local mail domain=lan\.test "
                   r"admin=<you@gmail\.test> from=admin_address$")
        qid = self.inject(d, ["root"])
        m = self.delivered(up, d, qid)
        self.assertEqual(m.rcpt_tos, [ADMIN])
        # The sender and the From: the injector made use the domain.
        self.assertEqual(m.mail_from, "%s@%s" % (LOGIN, DOMAIN))
        h = self.headers(m)
        self.assertEqual(h["From"], "%s@%s" % (LOGIN, DOMAIN))
        self.assertRegex(h["Message-ID"],
                         r"^<\d{14}\.[0-9a-f]{16}@lan\.test>$")
        self.assertIsNotNone(email.utils.parsedate_to_datetime(h["Date"]))
        self.assertEqual(h["Subject"], "Cron <root@box> /usr/local/bin/backup")
        d.wait_log(ROUTE_RE % ("maildrop", "root@lan\\.test",
                               "<you@gmail\\.test>", "admin"))
        # Every local form: bare, at the domain, the host, localhost.
        qid = self.inject(d, ["postmaster", "MAILER-DAEMON@relay.test",
                              "cron@LOCALHOST", "someone@elsewhere.test"])
        m = self.delivered(up, d, qid)
        self.assertEqual(m.rcpt_tos, [ADMIN, "someone@elsewhere.test"])

    def test_cron_root_reaches_the_upstream_account(self):
        up = self.upstream()
        d = self.local(up, admin_address=None)
        d.wait_log(r"smartrelayd local mail domain=lan\.test "
                   r"admin=<user@test> from=upstream-username$")
        qid = self.inject(d, ["root"])
        self.assertEqual(self.delivered(up, d, qid).rcpt_tos, [USER])
        # The same over SMTP, from a device that knows no domain.
        c = self.client(d)
        c.greet()
        qid = c.send_message("scanner", ["root"], NO_FIELDS).queued_id()
        m = self.delivered(up, d, qid)
        self.assertEqual((m.mail_from, m.rcpt_tos),
                         ("scanner@lan.test", [USER]))
        d.wait_log(ROUTE_RE % ("session", "root", "<user@test>", "admin"))

    def test_no_admin_keeps_local_names_and_warns(self):
        d = self.daemon()       # no username, no admin_address
        d.wait_log(r"smartrelayd local mail domain=relay\.test admin=none: "
                   r"mail to root .* set admin_address")
        c = self.client(d)
        c.greet()
        qid = c.send_message("scanner", ["root"], NO_FIELDS).queued_id()
        env = d.envelope(qid)
        self.assertEqual(env["sender"], "scanner@" + HOSTNAME)
        self.assertEqual([r["addr"] for r in env["rcpt"]],
                         ["root@" + HOSTNAME])
        d.wait_log(ROUTE_RE % ("session", "root", "<root@relay\\.test>",
                               "kept"))

    def test_aliases_with_continuation_lines(self):
        up = self.upstream()
        d = self.local(up, aliases="# who reads root's mail\n"
                       "root: ops@x.test,\n"
                       "\tdev@x.test\n"
                       "postmaster: root\n"
                       "webmaster: root, web@x.test\n")
        d.wait_log(r"smartrelayd local mail .* aliases=3 file=\S+aliases$")
        qid = self.inject(d, ["root"])
        self.assertEqual(self.delivered(up, d, qid).rcpt_tos,
                         ["ops@x.test", "dev@x.test"])
        d.wait_log(ROUTE_RE % ("maildrop", "root@lan\\.test",
                               "<ops@x\\.test>,<dev@x\\.test>", "alias"))
        # Over SMTP: nested, deduplicated, a name without alias.
        c = self.client(d)
        c.greet()
        qid = c.send_message("scanner@lan.test",
                             ["postmaster", "webmaster@lan.test", "nobody"],
                             NO_FIELDS).queued_id()
        self.assertEqual(sorted(self.delivered(up, d, qid).rcpt_tos),
                         sorted(["ops@x.test", "dev@x.test", "web@x.test",
                                 ADMIN]))
        # -bv says the same.
        p = self.sendmail(d, ["-bv", "root", "x@y.test"], b"")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"root@lan.test... deliverable: a local name, relayed "
                      b"to 127.0.0.1 for <ops@x.test>,<dev@x.test> "
                      b"(aliases)", p.stdout)
        self.assertIn(b"x@y.test... deliverable: relayed to 127.0.0.1",
                      p.stdout)

    def test_aliases_expansion_counts_against_max_recipients(self):
        up = self.upstream()
        d = self.local(up, max_recipients=2,
                       aliases="root: a@x.test, b@x.test, c@x.test\n")
        p = self.sendmail(d, ["root"])
        self.assertEqual(p.returncode, EX_DATAERR)
        self.assertIn(b"too many recipients once aliases are expanded "
                      b"(limit 2)", p.stderr)
        c = self.client(d)
        c.greet()
        c.cmd("MAIL FROM:<s@x.test>", "250 2.1.0")
        c.cmd("RCPT TO:<a@x.test>", "250 2.1.5")
        c.cmd("RCPT TO:<root>", "452 4.5.3")
        c.cmd("RSET", "250")
        self.assertEqual(d.queued_ids(), [])

    def test_include_pipe_file_refused_at_start(self):
        up = self.upstream()
        path = self.write_aliases("root: ops@x.test\n"
                                  "ops: :include:/etc/mail/ops\n"
                                  "mailman: \"|/usr/lib/mailman/mail post\"\n"
                                  "log: /var/log/mail.copy\n")
        d = self.relay(up, start=False, domain=DOMAIN, aliases=path)
        rc, text = harness.run_check(d.conf_path)
        self.assertEqual(rc, EX_CONFIG)
        self.assertIn("%s:2: ops: \":include:/etc/mail/ops\": :include: "
                      "files are not supported" % path, text)
        self.assertIn("%s:3: mailman: \"\\x22|/usr/lib/mailman/mail post"
                      "\\x22\": delivery to a command is not supported"
                      % path, text)
        self.assertIn("%s:4: log: \"/var/log/mail.copy\": delivery to a "
                      "file is not supported" % path, text)
        with self.assertRaises(AssertionError):
            d.start()
        self.assertEqual(d.proc.returncode, EX_CONFIG)
        self.assertIn(":include: files are not supported", d.log())
        # The injector reads the same configuration and refuses too.
        p = self.sendmail(d, ["root"])
        self.assertEqual(p.returncode, EX_CONFIG)
        self.assertIn(b":include: files are not supported", p.stderr)

    def test_bad_aliases_refuse_the_reload(self):
        up = self.upstream()
        d = self.local(up, aliases="root: ops@x.test\n")
        path = os.path.join(self.tmp, "aliases")
        self.write_aliases("root: ops@x.test\nbackup: |/usr/bin/logger\n")
        mark = d.mark()
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(r"reload refused, keeping the running configuration: "
                   r"%s:2: backup: \"\|/usr/bin/logger\": delivery to a "
                   r"command is not supported" % re.escape(path), since=mark)
        c = self.client(d)
        c.greet()
        qid = c.send_message("s@x.test", ["root"], NO_FIELDS).queued_id()
        self.assertEqual(self.delivered(up, d, qid).rcpt_tos, ["ops@x.test"])
        # Fixed: the reload takes the new table.
        self.write_aliases("root: dev@x.test\n")
        mark = d.mark()
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(r"smartrelayd reloaded", since=mark)
        d.wait_log(r"smartrelayd local mail .* aliases=1", since=mark)
        # A session keeps the configuration it began with: a new one.
        c = self.client(d)
        c.greet()
        qid = c.send_message("s@x.test", ["root"], NO_FIELDS).queued_id()
        self.assertEqual(self.delivered(up, d, qid).rcpt_tos, ["dev@x.test"])

    def test_report_to_a_local_sender_reaches_admin(self):
        up = self.upstream()
        up.set_rules([{"cmd": "RCPT", "match": "gone@x.test",
                       "reply": "550 5.1.1 No such user"}])
        d = self.local(up)
        c = self.client(d)
        c.greet(helo="my_printer")
        qid = c.send_message("scanner", ["gone@x.test"],
                             NO_FIELDS).queued_id()
        self.assertFailedKept(d, qid)
        rid = d.wait_log(r"queue id=%s failure report id=([0-9a-f]{16}) "
                         r"to=<scanner@lan\.test> "
                         r"rewritten=<you@gmail\.test>" % qid).group(1)
        self.wait_gone(d, rid)
        reports = [m for m in up.messages() if m.mail_from == ""]
        self.assertEqual([m.rcpt_tos for m in reports], [[ADMIN]])
        self.assertIn(b"gone@x.test", reports[0].data)

    # -- item 5: lenient envelope syntax, dangerous forms refused

    def test_device_envelope_forms(self):
        up = self.upstream()
        d = self.local(up)
        sent = []
        for helo, mail, rcpt, want_from, want_to in [
                ("EHLO my_printer", "MAIL FROM:<scanner>",
                 "RCPT TO: <x@y.test>", "scanner@lan.test", "x@y.test"),
                ("HELO 192.168.1.20", "MAIL FROM:scanner@lan SIZE=200",
                 "RCPT TO:x@y.test", "scanner@lan", "x@y.test"),
                ("EHLO [192.168.1.20]", "MAIL FROM: scanner@lan.test",
                 "RCPT TO:root", "scanner@lan.test", ADMIN),
                ("HELO printer", "MAIL FROM:<>", "RCPT TO:<Postmaster>",
                 "", ADMIN)]:
            with self.subTest(helo=helo, mail=mail, rcpt=rcpt):
                with Client(d.port) as c:
                    c.expect("220 ")
                    c.cmd(helo, "250")
                    c.cmd(mail, "250 2.1.0")
                    c.cmd(rcpt, "250 2.1.5")
                    c.cmd("DATA", "354")
                    c.send(NO_FIELDS + b".\r\n")
                    qid = c.expect("250 2.0.0").queued_id()
                    c.cmd("QUIT", "221")
                m = self.delivered(up, d, qid)
                self.assertEqual((m.mail_from, m.rcpt_tos),
                                 (want_from, [want_to]))
                self.assertEqual(TRACE_RE.match(m.data).group("helo"),
                                 helo.split()[1].encode())
                sent.append(qid)
        self.assertEqual(len(sent), 4)

    DANGEROUS = [
        ("MAIL FROM:<<a@b.test>>", "501 5.1.7"),
        ("MAIL FROM:<a@b.test>>", "501 5.5.4"),
        ("MAIL FROM:a@b.test>", "501 5.5.4"),
        ("MAIL FROM:<a@b.test", "501 5.5.4"),
        ("MAIL FROM:Scanner <s@b.test>", "501 5.5.4"),
        ("MAIL FROM:<" + "a" * 65 + ">", "501 5.1.7"),
        ("MAIL FROM:" + "a" * 64 + "@" + ("b" * 63 + ".") * 3 + "b" * 10,
         "501 5.1.7"),
        (b"MAIL FROM:<a\rb@c.test>", "500 5.5.2"),
        (b"MAIL FROM:<a\x00b@c.test>", "500 5.5.2"),
        (b"MAIL FROM:a\x7fb@c.test", "500 5.5.2"),
    ]
    DANGEROUS_RCPT = [
        ("RCPT TO:<<x@y.test>>", "501 5.1.3"),
        ("RCPT TO:x@y.test>", "501 5.5.4"),
        ("RCPT TO:<x@y.test><z@y.test>", "501 5.5.4"),
        ("RCPT TO:<a@b.test> NOTIFY=NEVER", "555 5.5.4"),
        (b"RCPT TO:<x\ry@y.test>", "500 5.5.2"),
    ]

    def test_dangerous_envelope_forms_refused(self):
        up = self.upstream()
        d = self.local(up)
        for cmd, want in self.DANGEROUS + self.DANGEROUS_RCPT:
            with self.subTest(cmd=cmd):
                with Client(d.port) as c:
                    c.greet()
                    if cmd[:4] in ("RCPT", b"RCPT"):
                        c.cmd("MAIL FROM:<s@x.test>", "250 2.1.0")
                    c.cmd(cmd, want)
                    # The session goes on, and nothing was taken.
                    c.cmd("RSET", "250")
                    c.cmd("QUIT", "221")
        self.assertEqual(d.queued_ids(), [])
        self.assertEqual(up.messages(outcome=None), [])

    # -- item 3: Date: and Message-ID:, once, kept across a retry

    def test_fields_added_once_and_kept_on_retry(self):
        up = self.upstream()
        up.set_rules([{"cmd": "DATA", "reply": "451 4.3.0 Try again later",
                       "times": 1}])
        d = self.local(up)
        qid = self.send(d, "scanner@lan.test", ["x@y.test"], NO_FIELDS)
        # In the spool: the message, then the two fields where its header
        # section ends.
        _, rest = harness.split_received(d.data(qid))
        stored, msgid = harness.unstamp(rest, NO_FIELDS, domain=DOMAIN)
        self.assertEqual(stored, NO_FIELDS)
        self.assertRegex(msgid, r"^<\d{14}\.[0-9a-f]{16}@lan\.test>$")
        d.wait_log(r"session added sid=\S+ date=yes message_id=%s$"
                   % re.escape(msgid))
        self.wait_delivery(d, qid, "x@y.test", "deferred")
        self.wait_delivery(d, qid, "x@y.test", "sent")
        tries = [m for m in up.messages(outcome=None)
                 if harness.RECEIVED_RE.match(m.data).group("id").decode()
                 == qid]
        self.assertEqual([m.outcome for m in tries], ["rejected", "accepted"])
        self.assertEqual(tries[0].data, tries[1].data)
        for m in tries:
            h = self.headers(m)
            self.assertEqual(h["Message-ID"], msgid)
            self.assertEqual(h.get_all("Date"), self.headers(tries[0])
                             .get_all("Date"))
            self.assertEqual(len(h.get_all("Message-ID")), 1)

    def test_fields_present_are_kept(self):
        up = self.upstream()
        d = self.local(up)
        body = (b"Date: Tue, 14 Nov 2023 23:13:20 +0100\r\n"
                b"message-id: <own@printer.lan>\r\nSubject: s\r\n\r\nx\r\n")
        qid = self.send(d, "s@x.test", ["x@y.test"], body)
        _, rest = harness.split_received(self.delivered(up, d, qid).data)
        self.assertEqual(rest, body)
        # Only the Message-ID is missing: only it is added, and a body
        # without the empty line gets them before its first line.
        body = b"Date: Tue, 14 Nov 2023 23:13:20 +0100\r\nno header here\r\n"
        qid = self.send(d, "s@x.test", ["x@y.test"], body)
        _, rest = harness.split_received(self.delivered(up, d, qid).data)
        self.assertRegex(rest, rb"^Date: Tue, 14 Nov 2023 23:13:20 \+0100\r\n"
                         rb"Message-ID: <\d{14}\.[0-9a-f]{16}@lan\.test>\r\n"
                         rb"no header here\r\n$")

    # -- item 6: loopback exempt from max_clients_per_ip

    def test_fifty_concurrent_loopback_clients(self):
        up = self.upstream()
        d = self.local(up)      # max_clients_per_ip defaults to 32
        clients = [self.client(d) for _ in range(50)]
        for c in clients:
            c.expect("220 ")
        errors, qids = [], []
        lock = threading.Lock()

        def one(i, c):
            try:
                c.cmd("EHLO php-fpm.local", "250")
                r = c.send_message("www-data", ["x%d@y.test" % i],
                                   simple("fpm %d" % i))
                with lock:
                    qids.append(r.queued_id())
            except AssertionError as e:
                with lock:
                    errors.append(e)
        threads = [threading.Thread(target=one, args=(i, c))
                   for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT * 2)
        self.assertEqual(errors, [])
        self.assertEqual(len(qids), 50)
        self.assertNotIn("max-clients-per-ip", d.log())
        self.wait_empty(d, timeout=TIMEOUT * 2)
        got = sorted(m.rcpt_tos[0] for m in up.messages())
        self.assertEqual(got, sorted("x%d@y.test" % i for i in range(50)))
        self.assertEqual({m.mail_from for m in up.messages()},
                         {"www-data@lan.test"})

    def test_loopback_counted_when_not_exempt(self):
        d = self.daemon(max_clients_per_ip_exempt=[])
        held = [self.client(d) for _ in range(32)]
        for c in held:
            c.expect("220 ")
        c = self.client(d)
        c.expect("421 4.7.0")
        c.expect_eof()


if __name__ == "__main__":
    unittest.main()
