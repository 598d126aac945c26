"""smartrelayd configuration: "-n" checks, error messages with the file
and line, and what the daemon says about missing relay credentials."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DaemonTest, SRCDIR  # noqa: E402

EX_CONFIG = 78

BASE = [
    'hostname = "relay.test"',
    'listen = {"127.0.0.1:2525"}',
    'spool = "/nonexistent/smartrelay-itest/spool"',
    'user = ""',
    'max_message_size = 26214400',
    'command_timeout = "5m"',
    'data_timeout = "10m"',
    'bare_lf = "normalize"',
    'log = "stderr"',
    'log_level = "info"',
    'upstream {',
    '\thost = "127.0.0.1"',
    '\tport = 2525',
    '\tusername = ""',
    '\tpassword_file = "/nonexistent"',
    '}',
]


class ConfigTest(DaemonTest):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="smartrelay-itest-conf-")
        if not os.environ.get("KEEP_TMP"):
            self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, name, lines):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def check_ok(self, path):
        rc, err = harness.run_check(path)
        self.assertEqual(rc, 0, err)
        self.assertIn("configuration OK", err)

    def check_bad(self, path, line):
        """Asserts exit 78 and an error naming <path> and <line>."""
        rc, err = harness.run_check(path)
        self.assertEqual(rc, EX_CONFIG, err)
        self.assertRegex(err, re.escape(path) + r":\d+: ")
        self.assertRegex(err, re.escape(path) + r":%d: \S" % line)
        self.assertNotIn("configuration OK", err)
        return err

    def test_bundled_example(self):
        example = os.path.join(SRCDIR, "..", "etc", "smartrelay.conf")
        self.assertTrue(os.path.exists(example), example)
        self.check_ok(os.path.abspath(example))

    def test_base_and_variants_ok(self):
        self.check_ok(self.write("base.conf", BASE))
        for i, dur in enumerate(("30s", "5m", "1h", "5d")):
            with self.subTest(duration=dur):
                lines = [ln if not ln.startswith("command_timeout") else
                         'command_timeout = "%s"' % dur for ln in BASE]
                self.check_ok(self.write("dur%d.conf" % i, lines))
        # A LAN listener is fine with an explicit allow list.
        lan = [ln if not ln.startswith("listen") else
               'listen = {"*:2525", "192.0.2.1:25"}' for ln in BASE]
        self.check_ok(self.write("lan.conf",
                                 lan + ['allow = {"192.0.2.0/24"}']))
        # The harness's own config.
        d = harness.Daemon()
        self.addCleanup(d.cleanup)
        self.check_ok(d.conf_path)

    # (name, line replaced or appended, its 1-based line number)
    BROKEN = [
        ("unknown key", "frobnicate = 1", None),
        ("bad duration", 'command_timeout = "5x"', 6),
        ("bad data duration", 'data_timeout = "ten minutes"', 7),
        ("bad bare_lf", 'bare_lf = "sometimes"', 8),
        ("bad log_level", 'log_level = "loud"', 10),
        ("non-loopback listen without allow",
         'listen = {"192.0.2.1:25"}', 2),
        ("wildcard listen without allow", 'listen = {"*:25"}', 2),
        ("bad allow CIDR", 'allow = {"300.1.2.3/8"}', None),
        ("bad listen address", 'listen = {"127.0.0.1"}', 2),
        ("unknown section", "frob {\n\ta = 1\n}", None),
        ("bad number", "max_recipients = lots", None),
    ]

    def test_broken(self):
        for i, (name, text, lineno) in enumerate(self.BROKEN):
            with self.subTest(name):
                lines = list(BASE)
                if lineno is None:
                    # Appended after a comment and a blank line.
                    lines += ["# the next line is wrong", ""]
                    lineno = len(lines) + 1
                    lines.append(text)
                else:
                    lines[lineno - 1] = text
                path = self.write("broken%d.conf" % i, lines)
                self.check_bad(path, lineno)

    def test_missing_file(self):
        path = os.path.join(self.dir, "does-not-exist.conf")
        rc, err = harness.run_check(path)
        self.assertEqual(rc, EX_CONFIG, err)
        self.assertIn(path, err)

    def test_daemon_refuses_broken_config(self):
        """Without -n, a broken file stops the daemon the same way."""
        lines = list(BASE)
        lines[5] = 'command_timeout = "5x"'
        path = self.write("broken-run.conf", lines)
        p = subprocess.run([harness.SMARTRELAYD, "-d", "-f", path],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=harness.TIMEOUT)
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, EX_CONFIG, err)
        self.assertRegex(err, re.escape(path) + r":6: \S")

    def test_waiting_for_credentials(self):
        d = self.daemon(upstream={
            "host": "127.0.0.1", "port": 9,
            "username": "someone@example.org",
            "password_file": os.path.join(self.dir, "missing-password")})
        d.wait_log(r"relay waiting for credentials")
        # Mail is still accepted and stays queued.
        c = self.client(d)
        c.greet()
        body = b"Subject: queued meanwhile\r\n\r\nx\r\n"
        qid = c.send_message("a@example.org", ["b@example.org"],
                             body).queued_id()
        self.assertQueued(d, qid, "a@example.org", ["b@example.org"], body)


if __name__ == "__main__":
    unittest.main()
