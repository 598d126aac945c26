"""The real clients our users run (issue 13, "How it must be tested").

Each test runs a real client, as its users run it, against the real
daemon (over SMTP on its loopback port, or through the injector
$SMARTRELAY_SENDMAIL as the client's sendmail), which relays to the
test upstream (upstream.py).  What arrived there is asserted: the
envelope, the header fields that matter, every line at most 998 octets
with no bare CR, LF or NUL, and the decoded text byte for byte.

  msmtp          SMTP client (msmtp -C FILE), recipients as arguments,
                 and --read-envelope-from -t
  s-nail         through the injector (-S mta=), no rc files (-:/)
  bsd-mailx      through the injector (set sendmail= in $MAILRC), to
                 root and a remote address
  git send-email a patch over SMTP and through the injector
  Perl Net::SMTP SMTP client
  smtp-source    Postfix's load generator: 2,000 messages over 20
                 sessions, each delivered exactly once

Covered elsewhere, not repeated here: PHP's mail() with sendmail_path
(itest_legacy.py, test_php_mail_1500_character_line) and cron's own
call of sendmail, "-FCronDaemon -i -B8BITMIME -oem root" with a
progress bar and a 1,500-character line (itest_legacy.py,
test_cron_progress_bar_and_long_line).

bsd-mailx and smtp-source come from packages that must not be installed
on a test machine (bsd-mailx pulls in exim4, postfix starts an MTA):
scripts/fetch-test-tools unpacks them under $SMARTRELAY_TEST_TOOLS
(default /var/cache/smartrelay-test).  A test whose client is missing
is skipped and says which package (or script) provides it.
"""

import email
import email.header
import email.policy
import email.utils
import os
import pwd
import re
import shutil
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOSTNAME, TIMEOUT  # noqa: E402
from itest_relay import RelayTest  # noqa: E402

SENDMAIL = os.path.abspath(os.environ.get("SMARTRELAY_SENDMAIL") or
                           os.path.join(harness.HERE, "..", "src",
                                        "smartrelay-sendmail"))
TOOLS = os.environ.get("SMARTRELAY_TEST_TOOLS") or "/var/cache/smartrelay-test"
MAILX = os.path.join(TOOLS, "bsd-mailx", "usr", "bin", "bsd-mailx")
SMTP_SOURCE = os.path.join(TOOLS, "postfix", "usr", "sbin", "smtp-source")
POSTFIX_LIBS = os.path.join(TOOLS, "postfix", "usr", "lib", "postfix")
LOGIN = "%s@%s" % (pwd.getpwuid(os.getuid()).pw_name, HOSTNAME)
ADMIN = "admin@gmail.test"
FETCH = "run scripts/fetch-test-tools (as root)"

# What a program writes (LF line ends): UTF-8 text, dots and "From " at
# a line start, trailing white space, a progress bar's bare CRs and a
# 1,500-character line.
LONG = bytes(b"0123456789abcdefghijklmnopqrstuvwxyz"[i % 36]
             for i in range(1500))
TEXT = (b"Hello,\n"
        b"caf\xc3\xa9 \xe2\x9c\x93 UTF-8 text\n"
        b".a line with a leading dot\n"
        b"..two dots\n"
        b"From the start of a line\n"
        b"a tab\tand a trailing space \n"
        b"backup: 10%\r50%\r100%\n"
        + LONG + b"\n"
        b"last line\n")
assert b"\r\n" not in TEXT


def runs(*cmd, env=None):
    """True when <cmd> can be run and exits 0."""
    try:
        return subprocess.run(list(cmd), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env,
                              timeout=TIMEOUT).returncode == 0
    except OSError:
        return False


def have_git_send_email():
    """git send-email (git-email) and the Mail::Address it needs
    (libmailtools-perl; Debian's git has no copy of its own)."""
    p = subprocess.run(["git", "--exec-path"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL) \
        if shutil.which("git") else None
    if p is None or p.returncode != 0:
        return False
    exe = os.path.join(p.stdout.decode().strip(), "git-send-email")
    return os.access(exe, os.X_OK) and runs("perl", "-MMail::Address",
                                            "-e", "1")


def smtp_source_env():
    return dict(os.environ, LD_LIBRARY_PATH=POSTFIX_LIBS)


def have_smtp_source():
    """smtp-source unpacked and its libraries there: without arguments it
    prints its usage (status 1), not a loader error."""
    if not os.access(SMTP_SOURCE, os.X_OK):
        return False
    p = subprocess.run([SMTP_SOURCE], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=smtp_source_env(), timeout=TIMEOUT)
    return b"usage:" in p.stdout


def have_mailx():
    return os.access(MAILX, os.X_OK) and b"not found" not in \
        subprocess.run(["ldd", MAILX], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT).stdout


class ClientsTest(RelayTest):

    def setUp(self):
        super().setUp()
        # The clients' home: their rc files, dead.letter, mbox.
        self.home = os.path.join(self.tmp, "home")
        os.mkdir(self.home)

    def client_env(self, d, **extra):
        """The environment a client runs in: its own HOME, no user or
        system mail spool, UTF-8, and the injector's configuration."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LC_", "MAIL", "GIT_", "NAME"))}
        env.update(HOME=self.home, LANG="C.UTF-8", LC_ALL="C.UTF-8",
                   MAIL=os.path.join(self.home, "mbox"),
                   MBOX=os.path.join(self.home, "mbox"),
                   SMARTRELAY_CONFIG=d.conf_path, GIT_CONFIG_NOSYSTEM="1")
        env.update(extra)
        return env

    def run_client(self, cmd, env, data=None, cwd=None, timeout=TIMEOUT):
        """Runs a client; asserts exit 0.  Its output (bytes)."""
        p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=env, cwd=cwd,
                           timeout=timeout)
        self.assertEqual(p.returncode, 0, "%r exited %d:\n%s" % (
            cmd[0], p.returncode, p.stdout.decode("utf-8", "replace")))
        return p.stdout

    def arrived(self, d, up, n=1):
        """The <n> messages the upstream got, once the queue is empty
        (no retry can add one later): exactly <n>."""
        up.wait_messages(n)
        self.wait_empty(d)
        msgs = up.messages()
        self.assertEqual(len(msgs), n, [m.rcpt_tos for m in msgs])
        for m in msgs:
            self.assertConformant(m.data)
            self.assertIn("SIZE=%d" % len(m.data), m.mail_options)
            self.assertTrue(harness.RECEIVED_RE.match(m.data) or
                            m.data.startswith(b"Received: (from uid"),
                            m.data[:200])
        return msgs

    def assertConformant(self, data):
        """Every line of <data> ends in CRLF, has at most 998 octets and
        no CR, LF or NUL of its own."""
        self.assertTrue(data.endswith(b"\r\n"), data[-50:])
        for i, ln in enumerate(data.split(b"\r\n")[:-1]):
            self.assertLessEqual(len(ln), 998, "line %d: %r" % (i, ln[:80]))
            for c in (b"\r", b"\n", b"\0"):
                self.assertNotIn(c, ln, "line %d: %r" % (i, ln[:200]))

    def parse(self, m):
        return email.message_from_bytes(m.data, policy=email.policy.compat32)

    def assertText(self, msg, text):
        """The decoded body of <msg> is <text>, LF line ends being the
        CRLF of the wire: byte for byte otherwise (bare CRs, NULs,
        8-bit text, trailing white space, dots)."""
        got = msg.get_payload(decode=True)
        self.assertIsInstance(got, bytes)
        self.assertEqual(got.replace(b"\r\n", b"\n"), text)

    def subject(self, m):
        """The Subject: field of upstream message <m>, unfolded and
        decoded (RFC 2047 encoded words, or raw UTF-8)."""
        head = m.data.split(b"\r\n\r\n", 1)[0]
        raw = re.search(rb"(?mi)^Subject:[ \t]*([^\r\n]*"
                        rb"(?:\r\n[ \t][^\r\n]*)*)",
                        head).group(1)
        raw = re.sub(rb"\r\n(?=[ \t])", b"", raw).decode("utf-8")
        return str(email.header.make_header(email.header.decode_header(raw)))

    # -- msmtp over SMTP

    def msmtprc(self, d):
        path = os.path.join(self.tmp, "msmtprc")
        with open(path, "w") as f:
            f.write("defaults\nauth off\ntls off\n"
                    "account relay\nhost 127.0.0.1\nport %d\n"
                    "from app@client.test\ndomain client.test\n"
                    "account default : relay\n" % d.port)
        os.chmod(path, 0o600)
        return path

    @unittest.skipUnless(shutil.which("msmtp"),
                         "msmtp missing: install the Debian package msmtp")
    def test_msmtp_recipients_as_arguments(self):
        """msmtp -C FILE a b: the envelope sender from the rc file, the
        recipients from the arguments; msmtp adds Date: and Message-ID:
        itself; the relay re-encodes the long line and the bare CRs."""
        up = self.upstream()
        d = self.relay(up)
        head = (b"From: App <app@client.test>\n"
                b"To: Ops <ops@x.test>\n"
                b"Subject: nightly report\n\n")
        self.run_client(["msmtp", "-C", self.msmtprc(d), "a@x.test",
                         "b@x.test"], self.client_env(d), head + TEXT)
        m, = self.arrived(d, up)
        self.assertEqual((m.mail_from, m.rcpt_tos),
                         ("app@client.test", ["a@x.test", "b@x.test"]))
        msg = self.parse(m)
        self.assertEqual(msg["From"], "App <app@client.test>")
        self.assertEqual(msg["To"], "Ops <ops@x.test>")
        self.assertEqual(msg["Subject"], "nightly report")
        # msmtp's own Date: and Message-ID: (not the relay's formats).
        self.assertRegex(msg["Message-ID"], r"^<[0-9a-f]{32}\.app@"
                         r"client\.test>$")
        self.assertIsNotNone(email.utils.parsedate_to_datetime(msg["Date"]))
        self.assertEqual(len(msg.get_all("Date")), 1)
        self.assertEqual(msg["Content-Transfer-Encoding"],
                         "quoted-printable")
        self.assertText(msg, TEXT)
        self.assertEqual(m.helo, HOSTNAME)

    @unittest.skipUnless(shutil.which("msmtp"),
                         "msmtp missing: install the Debian package msmtp")
    def test_msmtp_read_envelope_from_t(self):
        """msmtp --read-envelope-from -t: sender from From:, recipients
        from To:, Cc: and Bcc:, and no Bcc: field arrives."""
        up = self.upstream()
        d = self.relay(up)
        head = (b"From: \"Backup, Nightly\" <backup@client.test>\n"
                b"To: ops@x.test, Two <two@x.test>\n"
                b"Cc: cc@x.test\n"
                b"Bcc: hidden@x.test\n"
                b"Subject: =?UTF-8?Q?caf=C3=A9?= report\n"
                b"Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
                b"Message-ID: <given.1@client.test>\n\n")
        self.run_client(["msmtp", "-C", self.msmtprc(d),
                         "--read-envelope-from", "-t"],
                        self.client_env(d), head + TEXT)
        m, = self.arrived(d, up)
        self.assertEqual(m.mail_from, "backup@client.test")
        self.assertEqual(sorted(m.rcpt_tos), ["cc@x.test", "hidden@x.test",
                                              "ops@x.test", "two@x.test"])
        msg = self.parse(m)
        self.assertIsNone(msg["Bcc"])
        self.assertNotIn(b"hidden", m.data)
        self.assertEqual(msg["From"],
                         "\"Backup, Nightly\" <backup@client.test>")
        self.assertEqual(msg["Cc"], "cc@x.test")
        self.assertEqual(self.subject(m), "caf\xe9 report")
        self.assertEqual(msg.get_all("Date"),
                         ["Mon, 1 Jan 2024 00:00:00 +0000"])
        self.assertEqual(msg.get_all("Message-ID"), ["<given.1@client.test>"])
        self.assertText(msg, TEXT)

    # -- s-nail and bsd-mailx through the injector

    @unittest.skipUnless(shutil.which("s-nail"),
                         "s-nail missing: install the Debian package s-nail")
    def test_s_nail_through_the_injector(self):
        """s-nail -:/ -S mta=INJECTOR -S sendwait -s S -r FROM rcpt: it
        encodes the text itself (quoted-printable, a =0A for the LF
        after the bare CRs) and calls "INJECTOR -i -F name -f addr --
        rcpt"; the message goes out as s-nail wrote it."""
        up = self.upstream()
        d = self.relay(up)
        out = self.run_client(
            ["s-nail", "-:/", "-S", "mta=" + SENDMAIL, "-S", "sendwait",
             "-s", "Report caf\u00e9", "-r", "App <app@client.test>",
             "ops@x.test"], self.client_env(d), TEXT)
        self.assertEqual(out, b"")
        m, = self.arrived(d, up)
        self.assertEqual((m.mail_from, m.rcpt_tos),
                         ("app@client.test", ["ops@x.test"]))
        msg = self.parse(m)
        self.assertEqual(msg["From"], "App <app@client.test>")
        self.assertEqual(msg["To"], "ops@x.test")
        self.assertEqual(self.subject(m), "Report caf\xe9")
        self.assertRegex(msg["User-Agent"], r"^s-nail ")
        self.assertEqual(msg["Content-Transfer-Encoding"],
                         "quoted-printable")
        self.assertEqual(msg.get_param("charset"), "utf-8")
        self.assertEqual(len(msg.get_all("Message-ID")), 1)
        self.assertEqual(len(msg.get_all("Date")), 1)
        self.assertText(msg, TEXT)
        # Nothing left behind: no dead.letter, no mbox.
        self.assertEqual(os.listdir(self.home), [])

    @unittest.skipUnless(have_mailx(), "bsd-mailx missing: " + FETCH +
                         "; its libraries are in the Debian packages "
                         "liblockfile1 and libbsd0")
    def test_bsd_mailx_to_root_through_the_injector(self):
        """echo ... | mail -s S root ops@x.test, as scripts do, with
        bsd-mailx (set sendmail= in $MAILRC, -n: no /etc/mail.rc): it
        calls "INJECTOR -i -t" with raw 8-bit text and the long line;
        root goes to admin_address; the injector adds From:, Date: and
        Message-ID:; the relay re-encodes the body."""
        up = self.upstream()
        d = self.relay(up, admin_address=ADMIN)
        mailrc = os.path.join(self.tmp, "mailrc")
        with open(mailrc, "w") as f:
            f.write("set sendmail=%s\n" % SENDMAIL)
        self.run_client([MAILX, "-n", "-s", "Report caf\u00e9", "root",
                         "ops@x.test"],
                        self.client_env(d, MAILRC=mailrc), TEXT)
        m, = self.arrived(d, up)
        self.assertEqual(m.mail_from, LOGIN)
        self.assertEqual(sorted(m.rcpt_tos), [ADMIN, "ops@x.test"])
        d.wait_log(r"maildrop rcpt id=\S+ original=<root@%s> "
                   r"rewritten=<%s> via=admin$" % (re.escape(HOSTNAME),
                                                  re.escape(ADMIN)))
        msg = self.parse(m)
        # bsd-mailx writes the recipients sorted.
        self.assertEqual(msg["To"], "ops@x.test, root")
        self.assertEqual(msg["From"], LOGIN)
        self.assertEqual(self.subject(m), "Report caf\xe9")
        self.assertRegex(msg["Message-ID"], r"^<\d{14}\.[0-9a-f]{16}@%s>$"
                         % re.escape(HOSTNAME))
        self.assertIsNotNone(email.utils.parsedate_to_datetime(msg["Date"]))
        self.assertEqual(msg.get_content_type(), "text/plain")
        self.assertEqual(msg.get_param("charset"), "UTF-8")
        self.assertEqual(msg.get_all("Content-Transfer-Encoding"),
                         ["quoted-printable"])
        self.assertText(msg, TEXT)
        self.assertEqual(os.listdir(self.home), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
