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
  Python smtplib send_message of an EmailMessage
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
import email.generator
import email.message
import email.policy
import email.utils
import io
import os
import pwd
import re
import shutil
import smtplib
import subprocess
import sys
import time
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
# Our trace field: the daemon's (after EHLO or HELO) or the injector's.
TRACE_RE = re.compile(
    rb"\AReceived: (?:from (?P<helo>\S+) \(\[127\.0\.0\.1\]\)\r\n"
    rb"\tby relay\.test \(smartrelay\) with E?SMTP id (?P<id>[0-9a-f]{16})"
    rb"(?:\r\n\tfor <(?P<rcpt>[^>]*)>)?;"
    rb"|\(from uid \d+\)\r\n\tby relay\.test \(smartrelay-sendmail\) "
    rb"id (?P<mid>[0-9a-f]{16});)(?: |\r\n\t)[^\r\n]+\r\n")
# What smtp-source sends, after our Received: field.
SMTP_SOURCE_RE = re.compile(
    rb"\AFrom: <from@client\.test>\r\nTo: <to@x\.test>\r\n"
    rb"Date: [^\r\n]+\r\nMessage-Id: <[0-9a-f]+\.[0-9a-f]+\.[0-9a-f]+"
    rb"@client\.test>\r\n\r\n"
    rb"La de da de da 1\.\r\nLa de da de da 2\.\r\n"
    rb"La de da de da 3\.\r\nLa de da de da 4\.\r\n\Z")

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
# The lines of TEXT that need no change on the way out: 8-bit text.
TEXT8 = b"".join(ln for ln in TEXT.splitlines(True)
                 if b"\r" not in ln and len(ln) < 998)


def crlf(b):
    """LF line ends as CRLF."""
    return b.replace(b"\n", b"\r\n")


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
               if not k.startswith(("LC_", "MAIL", "GIT_", "NAME", "EMAIL",
                                    "REPLYTO", "SMARTRELAY_"))}
        env.update(HOME=self.home, LANG="C.UTF-8", LC_ALL="C.UTF-8",
                   MAIL=os.path.join(self.home, "mbox"),
                   MBOX=os.path.join(self.home, "mbox"),
                   SMARTRELAY_CONFIG=d.conf_path, GIT_CONFIG_NOSYSTEM="1")
        env.update(extra)
        return env

    def run_client(self, cmd, env, data=None, cwd=None, timeout=TIMEOUT):
        """Runs a client (standard input <data>, or none: no terminal
        to prompt on); asserts exit 0.  Its output (bytes)."""
        p = subprocess.run(cmd, input=data, stdin=None if data is not None
                           else subprocess.DEVNULL, stdout=subprocess.PIPE,
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
            self.assertRegex(m.data[:300], TRACE_RE)
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

    # -- git send-email

    def patch(self, d, text):
        """A patch adding <text> to a file, made by git format-patch in
        a new repository: its file name and text."""
        repo = os.path.join(self.tmp, "repo")
        env = self.client_env(d)
        git = ["git", "-C", repo]
        self.run_client(["git", "init", "-q", repo], env)
        self.run_client(git + ["config", "user.name", "J\u00f6rg Tester"],
                        env)
        self.run_client(git + ["config", "user.email", "jorg@client.test"],
                        env)
        with open(os.path.join(repo, "notes.txt"), "wb") as f:
            f.write(b"first line\n")
        self.run_client(git + ["add", "notes.txt"], env)
        self.run_client(git + ["commit", "-q", "-m", "notes"], env)
        with open(os.path.join(repo, "notes.txt"), "ab") as f:
            f.write(text)
        self.run_client(git + ["commit", "-q", "-a", "-m",
                               "notes: add the caf\u00e9 report"], env)
        out = self.run_client(git + ["format-patch", "-1", "-o",
                                     os.path.join(self.tmp, "patches")],
                              env)
        path = os.path.join(repo, out.decode().strip()) \
            if not os.path.isabs(out.decode().strip()) \
            else out.decode().strip()
        with open(path, "rb") as f:
            return path, f.read()

    def assertPatch(self, m, text, added):
        """Upstream message <m> is git send-email's mail of the patch
        <text>, which adds <added>: its fields and, decoded, the patch's
        body."""
        msg = self.parse(m)
        self.assertEqual(str(email.header.make_header(
            email.header.decode_header(msg["From"]))),
            "J\u00f6rg Tester <jorg@client.test>")
        self.assertEqual(msg["To"], "list@x.test")
        self.assertEqual(self.subject(m),
                         "[PATCH] notes: add the caf\u00e9 report")
        self.assertRegex(msg["X-Mailer"], r"^git-send-email ")
        self.assertRegex(msg["Message-ID"], r"@client\.test>$")
        self.assertEqual(len(msg.get_all("Date")), 1)
        body = text.split(b"\n\n", 1)[1]
        self.assertIn(b"".join(b"+" + ln + b"\n" for ln in
                               added.split(b"\n")[:-1]), body)
        self.assertText(msg, body)
        return msg, body

    @unittest.skipUnless(have_git_send_email(),
                         "git send-email missing: install the Debian "
                         "packages git-email and libmailtools-perl")
    def test_git_send_email_over_smtp(self):
        """git send-email --smtp-server=127.0.0.1 --smtp-server-port=P,
        8-bit text that needs no change: the envelope sender from the
        author; git declares no BODY=8BITMIME, so none goes upstream;
        the body arrives byte for byte, 8bit, not re-encoded."""
        up = self.upstream()
        d = self.relay(up)
        path, text = self.patch(d, TEXT8)
        self.run_client(["git", "send-email", "--smtp-server=127.0.0.1",
                         "--smtp-server-port=%d" % d.port,
                         "--to=list@x.test", "--confirm=never",
                         "--suppress-cc=all", path],
                        self.client_env(d), cwd=os.path.join(self.tmp,
                                                             "repo"))
        m, = self.arrived(d, up)
        self.assertEqual((m.mail_from, m.rcpt_tos),
                         ("jorg@client.test", ["list@x.test"]))
        self.assertNotIn("BODY=8BITMIME", m.mail_options)
        msg, body = self.assertPatch(m, text, TEXT8)
        self.assertEqual(msg["Content-Transfer-Encoding"], "8bit")
        self.assertTrue(m.data.endswith(b"\r\n\r\n" + crlf(body)))
        self.assertNotIn("relay reencode", d.full_log())

    @unittest.skipUnless(have_git_send_email(),
                         "git send-email missing: install the Debian "
                         "packages git-email and libmailtools-perl")
    def test_git_send_email_through_the_injector(self):
        """git send-email --smtp-server=INJECTOR (sendmail mode: "INJECTOR
        -i list@x.test", no -f): the caller's login is the sender.  With
        the 1,500-character line git encodes the patch quoted-printable
        itself (--transfer-encoding=auto)."""
        up = self.upstream()
        d = self.relay(up)
        path, text = self.patch(d, TEXT)
        self.run_client(["git", "send-email", "--smtp-server=" + SENDMAIL,
                         "--to=list@x.test", "--confirm=never",
                         "--suppress-cc=all", path],
                        self.client_env(d), cwd=os.path.join(self.tmp,
                                                             "repo"))
        m, = self.arrived(d, up)
        self.assertEqual((m.mail_from, m.rcpt_tos), (LOGIN, ["list@x.test"]))
        msg, _ = self.assertPatch(m, text, TEXT)
        self.assertEqual(msg["Content-Transfer-Encoding"],
                         "quoted-printable")

    # -- Perl's Net::SMTP

    @unittest.skipUnless(runs("perl", "-MNet::SMTP", "-e", "1"),
                         "Perl's Net::SMTP missing: install the Debian "
                         "package perl-modules-5.36")
    def test_perl_net_smtp(self):
        """Net::SMTP (libnet), as a Perl script uses it: new, mail, to
        with two recipients, data/datasend/dataend; the queue id in
        its last reply is the one our Received: field names."""
        up = self.upstream()
        d = self.relay(up)
        msgfile = os.path.join(self.tmp, "message")
        with open(msgfile, "wb") as f:
            f.write(b"From: Perl <perl@client.test>\n"
                    b"To: a@x.test, b@x.test\n"
                    b"Subject: from Net::SMTP\n\n" + TEXT)
        script = r"""
use strict;
use Net::SMTP;
my ($port, $file) = @ARGV;
open(my $fh, "<:raw", $file) or die "$file: $!";
my $msg = do { local $/; <$fh> };
my $smtp = Net::SMTP->new("127.0.0.1", Port => $port,
    Hello => "perl.client.test", Timeout => 30) or die "connect: $@";
$smtp->mail("perl\@client.test") or die "MAIL: " . $smtp->message;
$smtp->to("a\@x.test", "b\@x.test") or die "RCPT: " . $smtp->message;
$smtp->data() or die "DATA: " . $smtp->message;
$smtp->datasend($msg) or die "datasend";
$smtp->dataend() or die "end of data: " . $smtp->message;
print $smtp->code, " ", $smtp->message;
$smtp->quit;
"""
        out = self.run_client(["perl", "-e", script, str(d.port), msgfile],
                              self.client_env(d))
        qid = re.match(rb"250 2\.0\.0 Ok: queued as ([0-9a-f]{16})\s*$",
                       out)
        self.assertIsNotNone(qid, out)
        m, = self.arrived(d, up)
        self.assertEqual(harness.RECEIVED_RE.match(m.data).group("id"),
                         qid.group(1))
        self.assertEqual((m.mail_from, m.rcpt_tos),
                         ("perl@client.test", ["a@x.test", "b@x.test"]))
        self.assertEqual(m.helo, HOSTNAME)
        msg = self.parse(m)
        self.assertEqual(msg["From"], "Perl <perl@client.test>")
        self.assertEqual(msg["Subject"], "from Net::SMTP")
        # Net::SMTP adds neither: the relay does, at acceptance.
        self.assertRegex(msg["Message-ID"], r"^<\d{14}\.[0-9a-f]{16}@%s>$"
                         % re.escape(HOSTNAME))
        self.assertIsNotNone(email.utils.parsedate_to_datetime(msg["Date"]))
        self.assertEqual(msg["Content-Transfer-Encoding"],
                         "quoted-printable")
        self.assertText(msg, TEXT)

    # -- Python's smtplib

    def test_python_smtplib_send_message(self):
        """smtplib.SMTP.send_message with an email.message.EmailMessage,
        as a Python script sends mail: the email package encodes the
        long line quoted-printable itself and adds no Date: or
        Message-ID: (the relay does).  smtplib changes two things
        itself: it turns a bare CR into a line end, so the progress bar
        cannot come through it (TEXT8 plus the long line is sent), and
        its generator writes "From " at a line start as ">From "
        (mangle_from_): what it hands over is computed the same way and
        must arrive, decoded, byte for byte."""
        up = self.upstream()
        d = self.relay(up)
        text = TEXT8 + LONG + b"\n"
        msg = email.message.EmailMessage()
        msg["From"] = "Script <py@client.test>"
        msg["To"] = "ops@x.test"
        msg["Subject"] = "caf\u00e9 report"
        msg.set_content(text.decode("utf-8"))
        # What send_message writes on the wire, decoded.
        out = io.BytesIO()
        email.generator.BytesGenerator(out).flatten(msg, linesep="\r\n")
        sent = email.message_from_bytes(out.getvalue(),
                                        policy=email.policy.compat32)
        handed = sent.get_payload(decode=True).replace(b"\r\n", b"\n")
        self.assertEqual(handed, text.replace(b"\nFrom ", b"\n>From "))
        with smtplib.SMTP("127.0.0.1", d.port, local_hostname="py.client",
                          timeout=TIMEOUT) as c:
            refused = c.send_message(msg)
        self.assertEqual(refused, {})
        m, = self.arrived(d, up)
        self.assertEqual((m.mail_from, m.rcpt_tos),
                         ("py@client.test", ["ops@x.test"]))
        got = self.parse(m)
        self.assertEqual(got["From"], "Script <py@client.test>")
        self.assertEqual(self.subject(m), "caf\xe9 report")
        self.assertRegex(got["Message-ID"], r"^<\d{14}\.[0-9a-f]{16}@%s>$"
                         % re.escape(HOSTNAME))
        self.assertEqual(got["Content-Transfer-Encoding"],
                         "quoted-printable")
        self.assertText(got, handed)
        self.assertNotIn("relay reencode", d.full_log())

    # -- Postfix's smtp-source

    def smtp_source(self, reuse):
        """smtp-source -N -s 20 -m 2000 [-d]: 2,000 messages over 20
        parallel sessions, every one delivered exactly once.
        smtp-source's messages are alike (even their Message-Id repeats:
        it is pid.fd.counter), so -N makes the recipients tell them
        apart: 1to@x.test .. 2000to@x.test.  smtp-source exits 0 only
        when every reply was the expected one, and once the queue is
        empty no retry can add a copy: then the upstream holds exactly
        2,000 messages, one per recipient, under 2,000 distinct queue
        ids."""
        n, sessions = 2000, 20
        up = self.upstream()
        d = self.relay(up)
        t0 = time.monotonic()
        self.run_client([SMTP_SOURCE, "-N", "-s", str(sessions), "-m", str(n),
                         "-f", "from@client.test", "-t", "to@x.test",
                         "-M", "client.test"] + (["-d"] if reuse else []) +
                        ["127.0.0.1:%d" % d.port],
                        smtp_source_env(), timeout=TIMEOUT * 10)
        t_sent = time.monotonic() - t0
        self.assertEqual(d.control("stats")["accepted"], n)
        up.wait_messages(n, timeout=TIMEOUT * 10)
        self.wait_empty(d, timeout=TIMEOUT * 10)
        t_all = time.monotonic() - t0
        msgs = up.messages()
        self.assertEqual(len(msgs), n)
        self.assertEqual(sorted(r for m in msgs for r in m.rcpt_tos),
                         sorted("%dto@x.test" % i for i in range(1, n + 1)))
        ids = set()
        for m in msgs:
            self.assertEqual(m.mail_from, "from@client.test")
            self.assertEqual(len(m.rcpt_tos), 1)
            rec = TRACE_RE.match(m.data)
            rest = m.data[rec.end():]
            # smtp-source says HELO, not EHLO.
            self.assertIn(b" with SMTP id ", rec.group(0))
            self.assertEqual(rec.group("helo"), b"client.test")
            self.assertEqual(rec.group("rcpt").decode(), m.rcpt_tos[0])
            ids.add(rec.group("id"))
            self.assertRegex(rest, SMTP_SOURCE_RE)
        self.assertEqual(len(ids), n)
        print("\n  smtp-source%s: %d messages over %d sessions accepted in "
              "%.1fs, all relayed (over %d connection(s)) %.1fs after the "
              "start" % (" -d" if reuse else "", n, sessions, t_sent,
                         len(set(m.conn_id for m in msgs)), t_all))

    @unittest.skipUnless(have_smtp_source(), "smtp-source missing: " +
                         FETCH + "; its libraries are in the Debian "
                         "packages libdb5.3, libicu72 and libnsl2")
    def test_smtp_source_2000_messages_20_sessions(self):
        """smtp-source -N -s 20 -m 2000: a new connection for each of
        the 2,000 messages, 20 at a time, each delivered exactly once."""
        self.smtp_source(reuse=False)

    @unittest.skipUnless(have_smtp_source(), "smtp-source missing: " +
                         FETCH + "; its libraries are in the Debian "
                         "packages libdb5.3, libicu72 and libnsl2")
    def test_smtp_source_2000_messages_20_connections(self):
        """smtp-source -N -s 20 -m 2000 -d: 20 connections, each sending
        its share of the 2,000 messages one after the other (MAIL right
        after the previous 250, no RSET), each delivered exactly
        once."""
        self.smtp_source(reuse=True)

if __name__ == "__main__":
    unittest.main(verbosity=2)
