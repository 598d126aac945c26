"""smartrelay-sendmail: the sendmail-compatible injector and the maildrop.

The real injector ($SMARTRELAY_SENDMAIL) against the real daemon, which
must pick the maildrop up (at start and, through inotify, while it runs).
Every accepted message is checked in queue/: envelope, our Received:
header, added Date/Message-ID/From fields, and the canonical body.  Also:
the daemon stopped (the message waits in the maildrop, exit 0), another
local user (may submit, may not list the maildrop or read the queue),
-bs, -bp, and files the daemon must refuse.
"""

import email
import email.header
import email.utils
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTest, HOSTNAME, TIMEOUT, wait_for  # noqa: E402

SENDMAIL = os.environ.get("SMARTRELAY_SENDMAIL") or os.path.join(
    harness.HERE, "..", "src", "smartrelay-sendmail")
SMARTRELAYCTL = os.environ.get("SMARTRELAYCTL") or os.path.join(
    harness.HERE, "..", "src", "smartrelayctl")

EX_USAGE, EX_DATAERR, EX_TEMPFAIL = 64, 65, 75
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
LOGIN = pwd.getpwuid(os.getuid()).pw_name + "@" + HOSTNAME
MD_NAME_RE = re.compile(r"^[0-9a-f]{32}$")
RECEIVED_RE = re.compile(
    rb"^Received: \(from uid (?P<uid>\d+)\)\r\n"
    rb"\tby (?P<host>\S+) \(smartrelay-sendmail\) id (?P<id>[0-9a-f]{16});"
    rb"\r\n\t(?P<date>[^\r\n]+)\r\n")

MSG = (b"Subject: from cron\n"
       b"X-Test: 1\n"
       b"\n"
       b"line one\n"
       b"..two dots stay two\n"
       b"last line\n")


def crlf(b):
    """LF line ends as CRLF (what the spool must hold)."""
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class SendmailTest(DaemonTest):

    # -- helpers

    def daemon(self, start=True, **opts):
        d = super().daemon(start=False, **opts)
        # Other users must be able to reach the spool's maildrop.
        os.chmod(d.dir, 0o711)
        if start:
            d.start()
        return d

    def sendmail(self, d, args, data=b"", user=None, timeout=TIMEOUT):
        env = dict(os.environ, SMARTRELAY_CONFIG=d.conf_path)
        env.pop("NAME", None)
        cmd = ([] if user is None else user) + [SENDMAIL] + list(args)
        return subprocess.run(cmd, input=data, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env,
                              timeout=timeout)

    def inject(self, d, args, data=MSG, **kw):
        """Runs the injector, asserts exit 0 and returns the new queue
        id once the daemon has picked the message up."""
        before = set(d.queued_ids())
        p = self.sendmail(d, args, data, **kw)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, b"")

        def new():
            ids = set(d.queued_ids()) - before
            return ids and sorted(ids)
        ids = wait_for(new, what="the message in queue/")
        self.assertEqual(len(ids), 1)
        wait_for(lambda: not self.maildrop(d), what="an empty maildrop")
        return ids[0]

    def maildrop(self, d):
        return d.listdir("maildrop")

    def message(self, d, qid, uid=None):
        """(envelope, headers as an email.message, our Received: match,
        the data after it)."""
        env = d.envelope(qid)
        data = d.data(qid)
        self.assertEqual(env["size"], len(data))
        self.assertEqual(env["client"], "local")
        m = RECEIVED_RE.match(data)
        self.assertIsNotNone(m, data[:300])
        self.assertEqual(m.group("id").decode(), qid)
        self.assertEqual(m.group("host").decode(), HOSTNAME)
        uid = os.getuid() if uid is None else uid
        self.assertEqual(int(m.group("uid")), uid)
        self.assertEqual(env["helo"], "uid %d" % uid)
        date = email.utils.parsedate_to_datetime(m.group("date").decode())
        self.assertLessEqual(abs(date.timestamp() - time.time()), 3600)
        rest = data[m.end():]
        # Every line of the spool copy ends in CRLF, nothing else; a CR
        # of its own is content only in a message marked for
        # re-encoding (issue 13).
        if not env.get("reencode"):
            self.assertNotIn(b"\r\r", rest)
        self.assertEqual(rest.count(b"\n"), rest.count(b"\r\n"))
        return env, email.message_from_bytes(rest), m, rest

    def rcpts(self, env):
        return [r["addr"] for r in env["rcpt"]]

    def body(self, rest):
        return rest.split(b"\r\n\r\n", 1)[1]

    # -- the ordinary path

    def test_arguments_and_added_fields(self):
        d = self.daemon()
        qid = self.inject(d, ["a@example.org", "Bob <b@example.org>",
                              "root", "a@example.org"])
        env, hdrs, _, rest = self.message(d, qid)
        self.assertEqual(env["sender"], LOGIN)
        # Qualified with the host name, in order, duplicates once.
        self.assertEqual(self.rcpts(env), ["a@example.org", "b@example.org",
                                           "root@" + HOSTNAME])
        self.assertEqual(hdrs["From"], LOGIN)
        date = email.utils.parsedate_to_datetime(hdrs["Date"])
        self.assertLessEqual(abs(date.timestamp() - time.time()), 3600)
        self.assertRegex(hdrs["Message-ID"],
                         r"^<\d{14}\.[0-9a-f]{16}@%s>$" % re.escape(HOSTNAME))
        self.assertEqual(hdrs["Subject"], "from cron")
        self.assertEqual(self.body(rest), crlf(MSG.split(b"\n\n", 1)[1]))
        d.wait_log(r"maildrop queued id=%s uid=%d" % (qid, os.getuid()))

    def test_present_fields_are_kept(self):
        d = self.daemon()
        msg = (b"From: Alice <alice@example.org>\r\n"
               b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
               b"Message-ID: <kept.1@example.org>\r\n"
               b"\r\n"
               b"CRLF body\r\n")
        qid = self.inject(d, ["b@example.org"], msg)
        _, hdrs, _, rest = self.message(d, qid)
        self.assertEqual(rest, msg)
        self.assertEqual(hdrs.get_all("From"), ["Alice <alice@example.org>"])

    def test_no_header_section(self):
        """Text that is no header: fields are added, then an empty line
        before it."""
        d = self.daemon()
        qid = self.inject(d, ["b@example.org"], b"just text\nmore: x\n")
        _, hdrs, _, rest = self.message(d, qid)
        self.assertEqual(self.body(rest), b"just text\r\nmore: x\r\n")
        self.assertIsNotNone(hdrs["Date"])

    def test_extract_recipients(self):
        d = self.daemon()
        msg = (b"To: \"Doe, Jane\" <jane@example.org>, group: g1@example.org,"
               b" g2@example.org;\n"
               b"Cc: carl@example.org (Carl),\n"
               b"\tcora@example.org\n"
               b"Bcc: hidden@example.org,\n"
               b" hidden2@example.org\n"
               b"Subject: t\n"
               b"\n"
               b"body\n")
        qid = self.inject(d, ["-t", "extra@example.org"], msg)
        env, hdrs, _, rest = self.message(d, qid)
        self.assertEqual(sorted(self.rcpts(env)), sorted([
            "extra@example.org", "jane@example.org", "g1@example.org",
            "g2@example.org", "carl@example.org", "cora@example.org",
            "hidden@example.org", "hidden2@example.org"]))
        self.assertNotIn(b"hidden", rest)
        self.assertNotIn(b"Bcc", rest)
        self.assertIn(b"\r\n\tcora@example.org\r\n", rest)
        self.assertEqual(hdrs["Subject"], "t")

    def test_bcc_removed_without_t(self):
        d = self.daemon()
        qid = self.inject(d, ["a@example.org"],
                          b"Bcc: secret@example.org\nSubject: s\n\nb\n")
        _, _, _, rest = self.message(d, qid)
        self.assertNotIn(b"secret", rest)

    def test_extract_needs_recipients(self):
        d = self.daemon()
        p = self.sendmail(d, ["-t"], b"Subject: nobody\n\nx\n")
        self.assertEqual(p.returncode, EX_USAGE)
        self.assertIn(b"no recipients", p.stderr)
        p = self.sendmail(d, [], MSG)
        self.assertEqual(p.returncode, EX_USAGE)
        p = self.sendmail(d, ["-t"], b"To: a@@b\n\nx\n")
        self.assertEqual(p.returncode, EX_DATAERR)
        self.assertEqual(self.maildrop(d), [])

    def test_sender_options(self):
        d = self.daemon()
        for args, want in ((["-f", "alice@example.org"], "alice@example.org"),
                           (["-r", "bob@example.org"], "bob@example.org"),
                           (["-fcarl@example.org"], "carl@example.org"),
                           (["-f", "Dan <dan@example.org>"],
                            "dan@example.org"),
                           (["-f", "daemon"], "daemon@" + HOSTNAME),
                           (["-f", "<>"], "")):
            with self.subTest(args=args):
                qid = self.inject(d, args + ["x@example.org"])
                env, hdrs, _, _ = self.message(d, qid)
                self.assertEqual(env["sender"], want)
                self.assertEqual(hdrs["From"], want or LOGIN)
        p = self.sendmail(d, ["-f", "bad address@", "x@example.org"], MSG)
        self.assertEqual(p.returncode, EX_DATAERR)

    def test_full_name(self):
        d = self.daemon()
        for name, want in (("CronDaemon", "CronDaemon <%s>"),
                           ("Cron Daemon", "Cron Daemon <%s>"),
                           ("Smith, J.", '"Smith, J." <%s>'),
                           ('a"b', '"a\\"b" <%s>')):
            with self.subTest(name=name):
                qid = self.inject(d, ["-F", name, "x@example.org"])
                _, hdrs, _, _ = self.message(d, qid)
                self.assertEqual(hdrs["From"], want % LOGIN)
        # Non-ASCII: an RFC 2047 encoded word.
        qid = self.inject(d, ["-F", "Jos\u00e9", "x@example.org"])
        _, hdrs, _, _ = self.message(d, qid)
        text = str(email.header.make_header(email.header.decode_header(
            hdrs["From"])))
        self.assertEqual(text, "Jos\u00e9 <%s>" % LOGIN)
        # No header injection through the name.
        qid = self.inject(d, ["-F", "x\nBcc: evil@example.org",
                              "x@example.org"])
        env, _, _, rest = self.message(d, qid)
        self.assertEqual(self.rcpts(env), ["x@example.org"])
        self.assertNotIn(b"\nBcc", rest)

    def test_dot_line(self):
        d = self.daemon()
        msg = b"Subject: dots\n\nbefore\n.\nafter\n"
        qid = self.inject(d, ["x@example.org"], msg)
        _, _, _, rest = self.message(d, qid)
        self.assertEqual(self.body(rest), b"before\r\n")
        for flag in ("-i", "-oi"):
            with self.subTest(flag=flag):
                qid = self.inject(d, [flag, "x@example.org"], msg)
                _, _, _, rest = self.message(d, qid)
                self.assertEqual(self.body(rest), b"before\r\n.\r\nafter\r\n")

    def test_no_final_newline(self):
        d = self.daemon()
        qid = self.inject(d, ["x@example.org"], b"Subject: s\n\nno newline")
        _, _, _, rest = self.message(d, qid)
        self.assertEqual(self.body(rest), b"no newline\r\n")

    def test_ignored_and_special_flags(self):
        d = self.daemon()
        qid = self.inject(d, ["-odi", "-oem", "-oee", "-odb", "-v", "-U",
                              "-Am", "-Ac", "-N", "never", "-B", "8BITMIME",
                              "-OErrorMode=m", "-h", "5", "-L", "x", "-m",
                              "-FCronDaemon", "-i", "--", "x@example.org"])
        env, _, _, _ = self.message(d, qid)
        self.assertEqual(self.rcpts(env), ["x@example.org"])
        for args, rc in ((["-bi"], 0), (["-I"], 0), (["-bh"], 0),
                         (["-q30m"], 0), (["-bd"], EX_USAGE),
                         (["-Z", "x@example.org"], EX_USAGE),
                         (["-n", "x@example.org"], EX_USAGE),
                         (["-bt"], EX_USAGE), (["-bp", "x@example.org"],
                                               EX_USAGE),
                         (["-t", "-bs"], EX_USAGE), (["-f"], EX_USAGE)):
            with self.subTest(args=args):
                p = self.sendmail(d, args, MSG)
                self.assertEqual(p.returncode, rc, p.stderr)
        p = self.sendmail(d, ["-bv", "root", "x@example.org"])
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"root@relay.test... deliverable", p.stdout)
        self.assertEqual(self.maildrop(d), [])

    def test_bad_config(self):
        d = self.daemon()
        p = self.sendmail(d, ["-C", os.path.join(d.dir, "missing.conf"),
                              "x@example.org"], MSG)
        self.assertEqual(p.returncode, 78)

    # -- limits and content rules, checked before anything is accepted

    def test_content_refused_by_injector(self):
        d = self.daemon(max_message_size=20000)
        for what, data in (
                ("too large",
                 b"Subject: big\n\n" + (b"x" * 70 + b"\n") * 300),
                ("too large", (b"X: " + b"y" * 900 + b"\n") * 30),
                ("too large", b"Subject: s\n\n" + b"z" * 30000 + b"\n"),
                ("too large", b"X: " + b"y" * 30000 + b"\n\nbody\n")):
            with self.subTest(what=what):
                p = self.sendmail(d, ["x@example.org"], data)
                self.assertEqual(p.returncode, EX_DATAERR, p.stderr)
                self.assertIn(what.encode(), p.stderr)
        self.assertEqual(self.maildrop(d), [])
        self.assertEqual(d.queued_ids(), [])

    def test_content_kept_by_injector(self):
        """Lines over 998 octets, bare CRs and NULs are content (issue
        13): accepted (exit 0), picked up as they came, marked for
        re-encoding.  Lines longer than the injector's and the
        pickup's buffers come in pieces, dots and CRs at the seams
        included."""
        d = self.daemon(max_message_size=400000)
        seam = b"y" * 1023 + b"\r.\r" + b"z" * 2000
        for what, body in (
                ("longer than 998", b"z" * 999 + b"\n"),
                ("1,500 octets", b"w" * 1500 + b"\n.leading dot\n"),
                ("CR at a seam", seam + b"\n"),
                ("CRLF at a seam", b"v" * 1023 + b"\r\n" + b"u" * 1023
                 + b"\r\r\n"),
                ("100 KB line", b".dot " + b"q" * 100000 + b"\n"),
                ("no final LF", b"p" * 70000),
                ("bare CR", b"bare\rcr\n10%\r50%\r100%\n"),
                ("NUL", b"nul\0byte\n")):
            with self.subTest(what=what):
                data = b"Subject: s\n\n" + body
                qid = self.inject(d, ["x@example.org"], data)
                env, _, _, rest = self.message(d, qid)
                self.assertEqual(self.body(rest), crlf(body)
                                 + (b"" if body.endswith(b"\n")
                                    else b"\r\n"))
                self.assertEqual(env["reencode"], 1)
        # A long header line: content too.
        qid = self.inject(d, ["x@example.org"], b"X-Long: " + b"h" * 3000
                          + b"\nSubject: s\n\nbody\n")
        env, hdrs, _, rest = self.message(d, qid)
        self.assertEqual(hdrs["X-Long"], "h" * 3000)
        self.assertEqual(env["reencode"], 1)

    def test_too_many_recipients(self):
        d = self.daemon(max_recipients=2)
        p = self.sendmail(d, ["a@x.example", "b@x.example", "c@x.example"],
                          MSG)
        self.assertEqual(p.returncode, EX_DATAERR)
        self.assertIn(b"too many recipients", p.stderr)

    # -- the daemon stopped, and other users

    def test_daemon_stopped(self):
        d = self.daemon()
        d.stop()
        p = self.sendmail(d, ["-f", "cron@example.org", "x@example.org"],
                          MSG)
        self.assertEqual(p.returncode, 0, p.stderr)
        files = self.maildrop(d)
        self.assertEqual(len(files), 1)
        self.assertRegex(files[0], MD_NAME_RE)
        st = os.stat(d.path("maildrop", files[0]))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o644)
        self.assertEqual(d.queued_ids(), [])
        d.start()
        qid = wait_for(lambda: d.queued_ids(), what="pickup at start")[0]
        # The drop file goes once the message is committed, just after.
        wait_for(lambda: not self.maildrop(d), what="an empty maildrop")
        env, _, _, rest = self.message(d, qid)
        self.assertEqual(env["sender"], "cron@example.org")
        self.assertEqual(self.body(rest), crlf(MSG.split(b"\n\n", 1)[1]))

    def require_nobody(self, d):
        p = subprocess.run(NOBODY + ["test", "-x", SENDMAIL, "-a", "-r",
                                     d.conf_path])
        if os.getuid() != 0 or p.returncode != 0:
            self.skipTest("needs root, and %s and the config usable by "
                          "nobody" % SENDMAIL)

    def test_other_user(self):
        d = self.daemon()
        self.require_nobody(d)
        nobody = pwd.getpwnam("nobody").pw_uid
        self.assertEqual(stat.S_IMODE(os.stat(d.spool).st_mode), 0o711)
        self.assertEqual(stat.S_IMODE(os.stat(d.path("maildrop")).st_mode),
                         0o1733)
        qid = self.inject(d, ["x@example.org"], user=NOBODY)
        env, hdrs, _, _ = self.message(d, qid, uid=nobody)
        self.assertEqual(env["sender"], "nobody@" + HOSTNAME)
        # Not allowed: list the maildrop, look into the queue.
        for cmd in (["ls", d.path("maildrop")], ["ls", d.path("queue")],
                    ["cat", d.path("queue", qid + ".msg")],
                    ["ls", d.path("tmp")]):
            with self.subTest(cmd=cmd):
                p = subprocess.run(NOBODY + cmd, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn(b"Permission denied", p.stderr)
        # Daemon stopped: the file waits, owned by its writer, and its
        # writer cannot see the directory either.
        d.stop()
        p = self.sendmail(d, ["y@example.org"], MSG, user=NOBODY)
        self.assertEqual(p.returncode, 0, p.stderr)
        files = self.maildrop(d)
        self.assertEqual(len(files), 1)
        self.assertEqual(os.stat(d.path("maildrop", files[0])).st_uid,
                         nobody)
        p = subprocess.run(NOBODY + ["ls", d.path("maildrop")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertNotEqual(p.returncode, 0)
        d.start()
        wait_for(lambda: len(d.queued_ids()) == 2, what="pickup")
        self.assertEqual(self.maildrop(d), [])

    def test_umask_does_not_hide_the_file(self):
        d = self.daemon()
        d.stop()
        old = os.umask(0o077)
        try:
            p = self.sendmail(d, ["x@example.org"], MSG)
        finally:
            os.umask(old)
        self.assertEqual(p.returncode, 0, p.stderr)
        st = os.stat(d.path("maildrop", self.maildrop(d)[0]))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o644)

    def test_no_maildrop_is_tempfail(self):
        d = self.daemon(start=False)
        p = self.sendmail(d, ["x@example.org"], MSG)
        self.assertEqual(p.returncode, EX_TEMPFAIL)
        self.assertIn(b"maildrop", p.stderr)

    # -- what the daemon refuses

    def plant(self, d, name, content):
        """Writes a file into the maildrop as an injector would."""
        tmp = d.path("maildrop", ".tmp." + name)
        with open(tmp, "wb") as f:
            f.write(content)
        os.rename(tmp, d.path("maildrop", name))

    def header(self, body, size=None, rcpt="b@example.org"):
        return (b"smartrelay-maildrop 1\nuid 0\nsender a@example.org\n"
                b"rcpt %s\nsize %d\n\n" % (rcpt.encode(), len(body)
                                           if size is None else size)
                ) + body

    def test_daemon_refuses_bad_files(self):
        d = self.daemon(max_message_size=10000)
        hop = b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\n"
        cases = {
            # Lines over 998 octets and bare CRs are content (issue 13):
            # a mail loop and an oversized message are not.
            "a" * 32: (self.header(hop * 100 + b"Subject: s\n\nx\n"),
                       "mail loop"),
            "b" * 32: (self.header(b"x\n", size=5), "size-mismatch"),
            "c" * 32: (b"garbage\n", "bad-magic"),
            "d" * 32: (self.header(b"x\n", rcpt="not an address"),
                       "bad-rcpt"),
            "e" * 32: (self.header(b"Subject: s\n\n" + b"\n" * 6000),
                       "exceeds fixed maximum"),
        }
        for name, (content, _) in cases.items():
            self.plant(d, name, content)
        os.symlink("/etc/passwd", d.path("maildrop", "f" * 32))
        os.mkfifo(d.path("maildrop", "0" * 32))
        for name, (_, why) in cases.items():
            with self.subTest(why=why):
                d.wait_log(r"maildrop rejected file=%s uid=%d reason=\"[^\"]*"
                           r"%s" % (name, os.getuid(), re.escape(why)))
        # The FIFO did not block the daemon (it is found by the next
        # scan: at start), and the symlink was not followed.
        d.restart()
        wait_for(lambda: self.maildrop(d) == [], what="an empty maildrop")
        moved = d.listdir("corrupt")
        for name in list(cases) + ["f" * 32, "0" * 32]:
            self.assertIn("maildrop-" + name, moved)
        self.assertTrue(os.path.islink(d.path("corrupt",
                                              "maildrop-" + "f" * 32)))
        self.assertEqual(d.queued_ids(), [])
        # And it still takes good mail.
        self.inject(d, ["x@example.org"])

    def test_daemon_does_not_trust_uid_line(self):
        d = self.daemon()
        self.plant(d, "1" * 32, self.header(b"Subject: s\n\nok\n").replace(
            b"uid 0\n", b"uid 4242\n"))
        qid = wait_for(lambda: d.queued_ids(), what="pickup")[0]
        env, _, m, _ = self.message(d, qid)
        self.assertEqual(int(m.group("uid")), os.getuid())
        # The line follows the commit that made the files visible.
        d.wait_log(r"maildrop queued id=%s uid=%d claimed_uid=4242"
                   % (qid, os.getuid()))

    def test_stale_temporary_file_removed(self):
        d = self.daemon()
        d.stop()
        old = d.path("maildrop", ".tmp." + "9" * 32)
        new = d.path("maildrop", ".tmp." + "8" * 32)
        for path in (old, new):
            with open(path, "wb") as f:
                f.write(b"partial")
        os.utime(old, (time.time() - 2 * 86400,) * 2)
        d.start()
        d.wait_log(r"maildrop removed an abandoned temporary file")
        self.assertEqual(self.maildrop(d), [".tmp." + "8" * 32])

    # -- -bs and -bp

    def test_bs_session(self):
        d = self.daemon()
        session = (b"EHLO client.example\r\n"
                   b"MAIL FROM:<a@example.org>\r\n"
                   b"RCPT TO:<b@example.org>\r\n"
                   b"RCPT TO:<postmaster>\r\n"
                   b"DATA\r\n"
                   b"Subject: bs\r\n\r\n..one dot\r\nbody\r\n.\r\n"
                   b"MAIL FROM:<a@example.org>\n"
                   b"RCPT TO:<c@example.org>\n"
                   b"DATA\n"
                   b"bad\rline\n"
                   b".\n"
                   b"RCPT TO:<c@example.org>\n"
                   b"NOOP\r\n"
                   b"QUIT\r\n")
        p = self.sendmail(d, ["-bs"], session)
        self.assertEqual(p.returncode, 0, p.stderr)
        codes = [ln[:3] for ln in p.stdout.split(b"\r\n")
                 if ln[:3].isdigit() and ln[3:4] != b"-"]
        # The bare CR is content (issue 13): both messages are taken.
        self.assertEqual(codes, [b"220", b"250", b"250", b"250", b"250",
                                 b"354", b"250", b"250", b"250", b"354",
                                 b"250", b"503", b"250", b"221"])
        self.assertIn(b"250-PIPELINING", p.stdout)
        ids = wait_for(lambda: len(d.queued_ids()) == 2 and d.queued_ids(),
                       what="the -bs messages")
        got = {}
        for qid in ids:
            env, hdrs, _, rest = self.message(d, qid)
            self.assertEqual(env["sender"], "a@example.org")
            self.assertIsNotNone(hdrs["Message-ID"])
            got[tuple(self.rcpts(env))] = (env, self.body(rest))
        env, body = got[("b@example.org", "postmaster@" + HOSTNAME)]
        self.assertEqual(body, b".one dot\r\nbody\r\n")
        self.assertNotIn("reencode", env)
        env, body = got[("c@example.org",)]
        self.assertEqual(env["reencode"], 1)

    # Each line (CRLF added) gets one reply; the body of DATA is one
    # element, its "." line last.
    SCRIPT = [b"MAIL FROM:<a@example.org>", b"HELO", b"RSET",
              b"MAIL FROM:<scanner>", b"RSET", b"EHLO client.example",
              b"RCPT TO:<b@example.org>", b"DATA",
              b"MAIL FROM:<a@example.org> FOO=BAR",
              b"MAIL FROM:<a@example.org> SIZE=999999999999",
              b"MAIL FROM:<a@@example.org>",
              b"MAIL FROM:<a@example.org>", b"MAIL FROM:<c@example.org>",
              b"DATA", b"RCPT TO:<>", b"RCPT TO:<b@example.org> X=Y",
              b"RCPT TO:<b@example.org>", b"RCPT TO:<postmaster>",
              b"STARTTLS", b"AUTH PLAIN", b"VRFY root", b"HELP", b"NOOP",
              b"BOGUS", b"DATA",
              b"Subject: same\r\n\r\n..dot\r\nbody\r\n.",
              b"DATA x", b"RSET", b"STARTTLS", b"AUTH PLAIN",
              b"NOOP \x01", b"X" * 600, b"HELO client.example", b"QUIT"]

    @staticmethod
    def replies(data):
        """The replies in <data>, each a list of its lines."""
        out, cur = [], []
        for ln in data.split(b"\r\n")[:-1]:
            cur.append(ln)
            if ln[3:4] != b"-":
                out.append(cur)
                cur = []
        return out

    def test_bs_replies_are_the_daemons(self):
        """-bs is the daemon's server: the same script gets the same
        replies, line for line (bar the greeting and the queue id)."""
        d = self.daemon()
        c = self.client(d)
        daemon = [c.reply().lines]
        for line in self.SCRIPT:
            c.send(line + b"\r\n")
            daemon.append(c.reply().lines)
        p = self.sendmail(d, ["-bs"], b"".join(l + b"\r\n"
                                              for l in self.SCRIPT))
        self.assertEqual(p.returncode, 0, p.stderr)
        bs = self.replies(p.stdout)

        def same(r):
            if r[0].startswith(b"220 "):
                return [b"220"]
            if r[0].startswith(b"250 2.0.0 Ok: queued as "):
                return [b"250 2.0.0 Ok: queued as"]
            return r
        self.assertEqual([same(r) for r in bs], [same(r) for r in daemon])
        codes = [r[-1][:3] for r in daemon]
        self.assertIn(b"354", codes)
        self.assertIn(b"555", codes)
        self.assertIn(b"503", codes)
        self.assertEqual(codes[-1], b"221")

    def test_bp_runs_smartrelayctl(self):
        d = self.daemon()
        if not os.path.exists(SMARTRELAYCTL):
            self.skipTest("smartrelayctl is not built")
        env = dict(os.environ, SMARTRELAY_CONFIG=d.conf_path)
        want = subprocess.run([SMARTRELAYCTL, "queue"], env=env,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=TIMEOUT)
        p = self.sendmail(d, ["-bp"])
        self.assertEqual((p.returncode, p.stdout),
                         (want.returncode, want.stdout))
        # Called as "mailq" it does the same.
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        os.symlink(os.path.abspath(SENDMAIL), os.path.join(tmp, "mailq"))
        p = subprocess.run([os.path.join(tmp, "mailq")], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=TIMEOUT)
        self.assertEqual((p.returncode, p.stdout),
                         (want.returncode, want.stdout))


if __name__ == "__main__":
    if not os.path.exists(SENDMAIL):
        print("smartrelay-sendmail not built: %s" % SENDMAIL)
        sys.exit(77)
    unittest.main()
