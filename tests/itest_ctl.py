"""smartrelayctl against a real smartrelayd: every verb, its JSON and
its text output, its exit codes, who may use the control socket, the
"test" verb against the test upstream, and the metrics endpoint.

Messages stay queued because the daemon has no credentials (the
harness default) or its upstream refuses connections; where delivery
matters a test upstream runs.  Environment: SMARTRELAYCTL (the tool),
SMARTRELAYD (the daemon).  Bounded polls, no sleeps.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Client, TIMEOUT, wait_for  # noqa: E402
from itest_relay import RelayTest, simple  # noqa: E402

SMARTRELAYCTL = os.environ.get("SMARTRELAYCTL") or os.path.join(
    harness.HERE, "..", "src", "smartrelayctl")
SENDMAIL = os.environ.get("SMARTRELAY_SENDMAIL") or os.path.join(
    harness.HERE, "..", "src", "smartrelay-sendmail")

EX_USAGE, EX_DATAERR, EX_UNAVAILABLE = 64, 65, 69
EX_TEMPFAIL, EX_NOPERM, EX_CONFIG = 75, 77, 78
UNAVAILABLE_RE = r"upstream state=unavailable"

# Postfix's mailq layout, from postqueue/showq_compat.c (the long queue
# id formats), written here independently of our C code.
PF_HEAD = "%-17s %8s %-19s %s\n" % ("----Queue ID-----", "--Size--",
                                    "---Arrival Time----",
                                    "--Sender/Recipient------")


def pf_sender(qid, size, arrival, sender):
    """L_SENDER_FORMAT, with asctime() of the arrival (TZ=UTC)."""
    return "%-17s %8d %19.19s %s\n" % (
        qid, size, time.asctime(time.gmtime(arrival)),
        sender or "MAILER-DAEMON")


def pf_rcpt(addr):
    return "%-17s %8s %-19s %s\n" % ("", "", "", addr)


def pf_reason(why):
    return "%*s(%s)\n" % (max(0, 76 - len(why)), "", why)


def pf_summary(nbytes, n):
    return "\n-- %d Kbytes in %d Request%s.\n" % (nbytes // 1024, n,
                                                  "" if n == 1 else "s")


def as_nobody():
    """The command prefix that runs a program as user nobody, or None."""
    if os.geteuid() != 0:
        return None
    if shutil.which("setpriv"):
        return ["setpriv", "--reuid=nobody", "--regid=nogroup",
                "--clear-groups"]
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"]
    return None


class CtlTest(RelayTest):
    """RelayTest plus running the tool."""

    def ctl(self, conf, *args, env=None, prefix=None):
        """Runs smartrelayctl [-f conf] args; returns (rc, out, err)."""
        cmd = list(prefix or []) + [SMARTRELAYCTL]
        if conf is not None:
            cmd += ["-f", conf]
        p = subprocess.run(cmd + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, timeout=TIMEOUT * 3)
        return (p.returncode, p.stdout.decode("utf-8", "replace"),
                p.stderr.decode("utf-8", "replace"))

    def ok(self, d, *args):
        """Runs the tool on <d>'s config, asserts exit 0, returns out."""
        rc, out, err = self.ctl(d.conf_path, *args)
        self.assertEqual(rc, 0, "smartrelayctl %s: %s%s" % (args, out, err))
        return out

    def js(self, d, *args):
        """--json output, parsed."""
        return json.loads(self.ok(d, "--json", *args))

    def queued(self, d, n, subject="ctl"):
        """Sends <n> messages over one connection; their ids."""
        with Client(d.port) as c:
            c.greet()
            return [self.send(d, "sender@client.test",
                              ["a@x.test", "b@y.test"],
                              simple("%s %d" % (subject, i)), c=c)
                    for i in range(n)]

    def inject(self, d, rcpt, subject="maildrop"):
        """One message through smartrelay-sendmail (the maildrop)."""
        env = dict(os.environ, SMARTRELAY_CONFIG=d.conf_path)
        p = subprocess.run([SENDMAIL, "-f", "local@client.test", rcpt],
                           input=b"Subject: " + subject.encode() +
                           b"\n\nbody\n", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)

    def socket_path(self, d):
        return d.opts["control_socket"]

    def raw_request(self, d, data):
        """Sends raw bytes to the control socket; the whole answer."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        with s:
            s.connect(self.socket_path(d))
            s.sendall(data)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk


class CtlVerbs(CtlTest):

    def test_queue_json_and_table(self):
        d = self.daemon()
        doc = self.js(d, "queue")
        self.assertEqual((doc["messages"], doc["count"]), ([], 0))
        self.assertEqual(self.ok(d, "queue"), "Mail queue is empty\n")
        qids = self.queued(d, 2)
        doc = self.js(d, "queue")
        self.assertEqual(doc["count"], 2)
        got = {m["id"]: m for m in doc["messages"]}
        self.assertEqual(sorted(got), sorted(qids))
        for qid, m in got.items():
            self.assertEqual(m["sender"], "sender@client.test")
            self.assertEqual(m["size"], len(d.data(qid)))
            self.assertEqual(m["client"], "127.0.0.1")
            self.assertEqual(m["helo"], "client.example")
            self.assertEqual(m["arrival"], d.envelope(qid)["arrival"])
            self.assertFalse(m["held"])
            self.assertFalse(m["sending"])
            self.assertEqual([(r["addr"], r["state"]) for r in
                              m["recipients"]],
                             [("a@x.test", "pending"),
                              ("b@y.test", "pending")])
        text = self.ok(d, "queue")
        for qid in qids:
            self.assertRegex(text, r"(?m)^%s +\d+ .{19} sender@client\.test$"
                             % qid)
        self.assertEqual(len(re.findall(r"(?m)^ {47}a@x\.test$", text)), 2)
        self.assertTrue(text.endswith("\n-- 0 Kbytes in 2 Requests.\n"),
                        text)

    def test_show_headers_and_escaping(self):
        d = self.daemon()
        body = (b"From: <sender@client.test>\r\n"
                b"Subject: caf\xc3\xa9 \xff\x1b[31m\r\n"
                b"X-Long: " + b"y" * 900 + b"\r\n"
                b"\r\nSecret body line\r\n")
        qid = self.send(d, "sender@client.test", ["a@x.test"], body)
        rc, raw, _ = self.ctl(d.conf_path, "--json", "show", qid)
        self.assertEqual(rc, 0)
        # Valid UTF-8 passes, the invalid byte and ESC are escaped.
        self.assertIn("caf\u00e9 \\u00ff\\u001b[31m", raw)
        m = json.loads(raw)
        data = d.data(qid)
        head = data[:data.index(b"\r\n\r\n") + 2]
        self.assertEqual(m["headers"],
                         head.decode("utf-8", "surrogateescape")
                         .replace("\udcff", "\u00ff"))
        self.assertFalse(m["headers_truncated"])
        self.assertNotIn("Secret body", m["headers"])
        self.assertEqual(m["data_path"], d.path("queue", qid + ".msg"))
        self.assertEqual(m["recipients"][0]["addr"], "a@x.test")
        text = self.ok(d, "show", qid)
        self.assertIn("id:           %s" % qid, text)
        self.assertIn("sender:       <sender@client.test>", text)
        self.assertIn("Received: from client.example", text)
        self.assertIn("Subject: caf\u00e9 \u00ff\\x1b[31m", text)
        self.assertNotIn("\x1b", text)
        self.assertNotIn("Secret body", text)

    def test_stats(self):
        d = self.daemon()
        self.queued(d, 3)
        c = self.client(d)
        c.greet()
        # The sending connection's close is seen asynchronously.
        st = wait_for(lambda: (lambda x: x if x["clients"] == 1 else None)(
            self.js(d, "stats")), what="one client connected")
        self.assertEqual((st["accepted"], st["depth"], st["held"],
                          st["sent"], st["clients"], st["connections"]),
                         (3, 3, 0, 0, 1, 0))
        self.assertEqual(st["upstream"], "waiting-for-credentials")
        self.assertIn("username", st["upstream_reason"])
        self.assertGreaterEqual(st["oldest_age_s"], 0)
        self.assertEqual(st["last_sent"], 0)
        text = self.ok(d, "stats")
        self.assertIn("accepted: 3\n", text)
        self.assertIn("depth: 3\n", text)
        self.assertIn("upstream: waiting-for-credentials\n", text)
        self.assertIn("last_sent: never\n", text)

    def test_delete_removes_files_and_sends_no_report(self):
        d = self.daemon()
        keep, gone = self.queued(d, 2)
        out = self.ok(d, "delete", gone)
        self.assertIn("%s: deleted" % gone, out)
        self.assertEqual(d.queued_ids(), [keep])
        self.assertNotIn(gone + ".msg", d.listdir("queue"))
        self.assertEqual(d.listdir("failed"), [])
        d.wait_log(r"control delete id=%s uid=%d" % (gone, os.geteuid()))
        self.assertNotIn("failure report", d.log())
        self.assertEqual(self.js(d, "stats")["depth"], 1)
        rc, _, err = self.ctl(d.conf_path, "delete", gone)
        self.assertEqual(rc, EX_DATAERR, err)
        self.assertIn("no such message", err)

    def test_exit_codes(self):
        d = self.daemon()
        for args, want in ((["show", "0123456789abcdef"], EX_DATAERR),
                           (["hold", "0123456789abcdef"], EX_DATAERR),
                           (["release", "0123456789abcdef"], EX_DATAERR),
                           (["flush", "0123456789abcdef"], EX_DATAERR),
                           (["show", "../../etc/passwd"], EX_USAGE),
                           # Ids are case-insensitive.
                           (["show", "0123456789ABCDEF"], EX_DATAERR),
                           (["delete", "0123456789ABCDEF"], EX_DATAERR),
                           (["show", "ALL"], EX_USAGE),
                           (["delete", "ALL", "0123456789abcdef"],
                            EX_USAGE),
                           (["hold", "0123456789abcdef", "nothex"],
                            EX_USAGE),
                           (["hold"], EX_USAGE), (["release"], EX_USAGE),
                           (["delete"], EX_USAGE),
                           (["show"], EX_USAGE), (["queue", "x"], EX_USAGE),
                           (["bogus"], EX_USAGE), ([], EX_USAGE)):
            with self.subTest(args=args):
                rc, out, err = self.ctl(d.conf_path, *args)
                self.assertEqual(rc, want, out + err)
        rc, out, _ = self.ctl(d.conf_path, "--json", "show",
                              "0123456789abcdef")
        self.assertEqual(rc, EX_DATAERR)
        self.assertEqual(json.loads(out)["code"], "ENOENT")

    def test_protocol_errors(self):
        d = self.daemon()
        for req, code in ((b"x" * 2000 + b"\n", "EINVAL"),
                          (b"queue extra\n", "EINVAL"),
                          (b"show ../../x\n", "EINVAL"),
                          (b"frobnicate\n", "EINVAL"),
                          (b"show 0123456789abcdef\n", "ENOENT"),
                          (b"show 0123456789ABCDEF\n", "ENOENT"),
                          (b"show ALL\n", "EINVAL"),
                          (b"show 0123456789abcdef 0123456789abcdef\n",
                           "EINVAL"),
                          (b"delete\n", "EINVAL"),
                          (b"hold ALL 0123456789abcdef\n", "EINVAL"),
                          (b"hold 0123456789abcdef ALL\n", "EINVAL"),
                          (b"stats ALL\n", "EINVAL"),
                          (b"delete 0123456789abcdef ../x\n", "EINVAL"),
                          (b"delete " + b"0123456789abcdef " * 300 +
                           b"\n", "EINVAL")):
            with self.subTest(req=req[:20]):
                doc = json.loads(self.raw_request(d, req))
                self.assertEqual(doc["code"], code, doc)
                self.assertTrue(doc["error"])
        self.assertEqual(json.loads(self.raw_request(
            d, b"stats\n"))["depth"], 0)

    def test_hundreds_of_messages(self):
        d = self.daemon()
        qids = self.queued(d, 300, subject="many")
        doc = self.js(d, "queue")
        self.assertEqual(doc["count"], 300)
        self.assertEqual(sorted(m["id"] for m in doc["messages"]),
                         sorted(qids))
        text = self.ok(d, "queue")
        self.assertEqual(len(re.findall(r"(?m)^[0-9a-f]{16} ", text)), 300)


class CtlMany(CtlTest):
    """delete, hold, release and flush on several ids and on ALL."""

    def test_several_ids_any_case(self):
        d = self.daemon()
        ids = self.queued(d, 5)
        out = self.ok(d, "delete", ids[0].upper(), ids[1])
        self.assertEqual(out, "%s: deleted\n%s: deleted\ndeleted 2 "
                         "messages\n" % (ids[0], ids[1]))
        self.assertEqual(sorted(d.queued_ids()), sorted(ids[2:]))
        # One gone, one there: the other is done, the status says no.
        rc, out, err = self.ctl(d.conf_path, "delete", ids[0], ids[2])
        self.assertEqual(rc, EX_DATAERR, out + err)
        self.assertEqual(out, "%s: deleted\ndeleted 1 message; 1 failed\n"
                         % ids[2])
        self.assertIn("%s: no such message in the queue" % ids[0], err)
        self.assertEqual(sorted(d.queued_ids()), sorted(ids[3:]))
        doc = self.js(d, "hold", ids[3], ids[4].upper())
        self.assertEqual(doc, {"action": "hold", "ok": True, "done": 2,
                               "failed": 0, "results": [
                                   {"id": ids[3], "ok": True},
                                   {"id": ids[4], "ok": True}]})
        self.assertEqual([self.js(d, "show", i)["held"] for i in ids[3:]],
                         [True, True])
        rc, out, _ = self.ctl(d.conf_path, "--json", "release", ids[3],
                              ids[0])
        self.assertEqual(rc, EX_DATAERR)
        doc = json.loads(out)
        self.assertEqual((doc["ok"], doc["done"], doc["failed"]),
                         (False, 1, 1))
        self.assertEqual(doc["results"][1], {
            "id": ids[0], "ok": False, "code": "ENOENT",
            "error": "no such message in the queue"})
        d.wait_log(r"control release id=%s uid=%d" % (ids[3], os.geteuid()))

    def test_all(self):
        d = self.daemon()
        ids = self.queued(d, 4)
        self.ok(d, "hold", ids[0])
        # hold ALL: the three not held yet.
        out = self.ok(d, "hold", "ALL")
        self.assertTrue(out.endswith("held 3 messages\n"), out)
        self.assertEqual(self.js(d, "stats")["held"], 4)
        out = self.ok(d, "release", "all")
        self.assertTrue(out.endswith("released 4 messages\n"), out)
        self.assertEqual(sorted(out.splitlines()[:-1]),
                         sorted("%s: released" % i for i in ids))
        self.assertEqual(self.js(d, "stats")["held"], 0)
        doc = self.js(d, "delete", "ALL")
        self.assertEqual((doc["done"], doc["failed"], doc["ok"]),
                         (4, 0, True))
        self.assertEqual(sorted(r["id"] for r in doc["results"]),
                         sorted(ids))
        self.assertEqual(d.queued_ids(), [])
        self.assertEqual(self.ok(d, "delete", "ALL"), "deleted 0 messages\n")
        self.assertEqual(self.ok(d, "release", "ALL"),
                         "released 0 messages\n")
        d.wait_log(r"control delete ALL count=4 uid=")
        self.assertEqual(d.listdir("failed"), [])

    def test_more_ids_than_one_request_holds(self):
        d = self.daemon()
        ids = self.queued(d, 450, subject="batch")
        doc = self.js(d, "hold", *[i.upper() for i in ids])
        self.assertEqual((doc["done"], doc["failed"]), (450, 0))
        self.assertEqual([r["id"] for r in doc["results"]], ids)
        self.assertEqual(self.js(d, "stats")["held"], 450)
        # A peer that leaves while the daemon works through ALL (it
        # does so a few messages per loop turn): the rest is dropped.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.socket_path(d))
        s.sendall(b"release ALL\n")
        s.close()
        out = self.ok(d, "release", "ALL")
        self.assertTrue(out.endswith(" messages\n"), out)
        self.assertEqual(self.js(d, "stats")["held"], 0)
        out = self.ok(d, "delete", *ids)
        self.assertTrue(out.endswith("\ndeleted 450 messages\n"))
        self.assertEqual(d.queued_ids(), [])


class CtlCounters(CtlTest):
    """Mail through the maildrop counts as accepted, like SMTP mail."""

    def test_maildrop_counted_and_ready_line(self):
        d = self.daemon()
        d.stop()
        # Left in the maildrop while the daemon is down.
        self.inject(d, "a@x.test", "early 1")
        self.inject(d, "b@x.test", "early 2")
        d.start()
        # The line comes after the import, and counts it.
        d.wait_log(r"smartrelayd ready version=\S+ queue=2 ")
        self.assertEqual(self.js(d, "stats")["accepted"], 2)
        self.queued(d, 1)
        self.inject(d, "c@x.test", "while running")
        st = wait_for(lambda: (lambda x: x if x["depth"] == 4 else None)(
            self.js(d, "stats")), what="four messages queued")
        self.assertEqual(st["accepted"], 4)
        self.assertIn("accepted: 4\n", self.ok(d, "stats"))
        d.stop()
        self.assertRegex(d.log(), r"smartrelayd stopped accepted=4\b")


class CtlAccess(CtlTest):

    def test_socket_mode_and_removed_at_stop(self):
        d = self.daemon()
        st = os.stat(self.socket_path(d))
        self.assertEqual(st.st_mode & 0o777, 0o660)
        d.stop()
        self.assertFalse(os.path.exists(self.socket_path(d)))
        rc, _, err = self.ctl(d.conf_path, "stats")
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        self.assertIn("is smartrelayd running?", err)

    def test_stale_socket_replaced_second_daemon_refused(self):
        d = self.daemon()
        d.kill9()
        self.assertTrue(os.path.exists(self.socket_path(d)))
        d.start()
        d.wait_log(r"control removed stale socket")
        self.assertEqual(self.js(d, "stats")["depth"], 0)
        other = self.daemon(start=False,
                            control_socket=self.socket_path(d))
        with self.assertRaises(AssertionError):
            other.start()
        self.assertIn("another daemon answers", other.log())
        self.assertEqual(self.js(d, "stats")["depth"], 0)

    def test_config_from_environment(self):
        d = self.daemon()
        self.queued(d, 1)
        env = dict(os.environ, SMARTRELAY_CONFIG=d.conf_path)
        rc, out, err = self.ctl(None, "stats", env=env)
        self.assertEqual(rc, 0, err)
        self.assertIn("depth: 1\n", out)
        # -f wins over the environment.
        rc, _, err = self.ctl(os.path.join(d.dir, "missing.conf"), "stats",
                              env=env)
        self.assertEqual(rc, EX_CONFIG, err)
        env["SMARTRELAY_CONFIG"] = os.path.join(d.dir, "missing.conf")
        rc, _, err = self.ctl(None, "stats", env=env)
        self.assertEqual(rc, EX_CONFIG, err)
        self.assertIn("missing.conf", err)

    def test_help_names_the_default_config(self):
        """--help names the file that an error then names."""
        rc, _, helptext = self.ctl(None, "--help")
        self.assertEqual(rc, EX_USAGE)
        paths = re.findall(r"(/\S+/smartrelay\.conf)\b", helptext)
        self.assertIn("/etc/smartrelay/smartrelay.conf", paths)
        if any(os.path.exists(p) for p in paths):
            self.skipTest("a default configuration file exists here")
        env = dict(os.environ)
        env.pop("SMARTRELAY_CONFIG", None)
        rc, _, err = self.ctl(None, "stats", env=env)
        self.assertEqual(rc, EX_CONFIG, err)
        self.assertTrue(any(p in err for p in paths), (paths, err))

    def test_not_running(self):
        d = self.daemon(start=False)
        rc, _, err = self.ctl(d.conf_path, "queue")
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        self.assertIn(self.socket_path(d), err)

    def test_other_user_refused(self):
        prefix = as_nobody()
        if prefix is None:
            self.skipTest("needs root and setpriv or runuser")
        d = self.daemon()
        qid = self.queued(d, 1)[0]
        # The directory is traversable: the socket's mode refuses.
        os.chmod(d.dir, 0o711)
        rc, _, err = self.ctl(d.conf_path, "stats", prefix=prefix)
        if rc == 126 or "exec" in err:
            self.skipTest("user nobody cannot run %s" % SMARTRELAYCTL)
        self.assertEqual(rc, EX_NOPERM, err)
        self.assertIn("permission denied", err)
        # Even with the mode opened, the peer check refuses.
        os.chmod(self.socket_path(d), 0o666)
        rc, _, err = self.ctl(d.conf_path, "delete", qid, prefix=prefix)
        self.assertEqual(rc, EX_NOPERM, err)
        d.wait_log(r"control refused uid=65534 ")
        self.assertEqual(d.queued_ids(), [qid])


class CtlDelivery(CtlTest):

    def test_hold_flush_release(self):
        up = self.upstream()
        up.set_rules([{"cmd": "CONNECT", "reply":
                       "421 4.7.0 Try again later, closing connection."}])
        d = self.relay(up)
        held = self.send(d, "s@client.test", ["h@x.test"], simple("held"))
        free = self.send(d, "s@client.test", ["f@x.test"], simple("free"))
        d.wait_log(UNAVAILABLE_RE)
        self.assertIn("%s: on hold" % held, self.ok(d, "hold", held))
        self.assertEqual(d.envelope(held)["held"], 1)
        d.wait_log(r"control hold id=%s uid=" % held)
        rc, _, err = self.ctl(d.conf_path, "flush", held)
        self.assertEqual(rc, EX_DATAERR, err)
        self.assertIn("held", err)
        up.clear_rules()
        self.assertIn("flush:", self.ok(d, "flush"))
        self.wait_gone(d, free)
        self.assertEqual(len(self.by_id(up, free)), 1)
        self.assertIn(held, d.queued_ids())
        self.assertEqual(self.by_id(up, held), [])
        m = self.js(d, "queue")["messages"]
        self.assertEqual([(x["id"], x["held"]) for x in m], [(held, True)])
        self.assertRegex(self.ok(d, "queue"), r"(?m)^%s! " % held)
        st = self.js(d, "stats")
        self.assertEqual((st["held"], st["sent"], st["upstream"]),
                         (1, 1, "ok"))
        self.assertIn("released", self.ok(d, "release", held))
        self.wait_gone(d, held)
        self.assertEqual(len(self.by_id(up, held)), 1)
        st = self.js(d, "stats")
        self.assertEqual((st["held"], st["sent"], st["depth"]), (0, 2, 0))
        self.assertGreater(st["last_sent"], 0)

    def test_flush_one(self):
        up = self.upstream()
        up.set_rules([{"cmd": "RCPT", "reply": "451 4.3.0 later",
                       "times": 1}])
        d = self.relay(up, queue={"retry_min": "1h", "retry_max": "2h"})
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("one"))
        self.wait_delivery(d, qid, "r@x.test", "deferred")
        # The envelope is rewritten off the loop, just after the log line.
        m = wait_for(lambda: (lambda j: j if j["attempts"] == 1 else None)(
            self.js(d, "show", qid)), what="the saved envelope")
        self.assertGreater(m["next_attempt"], m["arrival"] + 1800)
        self.assertIn("451", m["recipients"][0]["reply"])
        self.assertRegex(self.ok(d, "queue"),
                         r"(?m)^ +\(451 [^)]*\)\n {47}r@x\.test$")
        self.assertIn("delivery attempt", self.ok(d, "flush", qid))
        self.wait_gone(d, qid)
        self.assertEqual(len(self.by_id(up, qid)), 1)

    def test_flush_several(self):
        up = self.upstream()
        up.set_rules([{"cmd": "RCPT", "reply": "451 4.3.0 later",
                       "times": 3}])
        d = self.relay(up, queue={"retry_min": "1h", "retry_max": "2h"})
        ids = [self.send(d, "s@client.test", ["r%d@x.test" % i],
                         simple("f%d" % i)) for i in range(3)]
        for i, qid in enumerate(ids):
            self.wait_delivery(d, qid, "r%d@x.test" % i, "deferred")
        wait_for(lambda: all(self.js(d, "show", q)["attempts"] == 1
                             for q in ids), what="saved envelopes")
        self.ok(d, "hold", ids[2])
        rc, out, err = self.ctl(d.conf_path, "flush", ids[0].upper(),
                                ids[1], ids[2])
        self.assertEqual(rc, EX_DATAERR, out + err)
        self.assertIn("%s: the message is held" % ids[2], err)
        self.assertTrue(out.endswith("scheduled 2 messages; 1 failed\n"))
        self.wait_gone(d, ids[0])
        self.wait_gone(d, ids[1])
        self.assertEqual(d.queued_ids(), [ids[2]])
        # flush ALL is flush: every deferred message, the held one stays.
        self.assertIn("flush: every deferred message is due now",
                      self.ok(d, "flush", "ALL"))
        self.assertEqual(d.queued_ids(), [ids[2]])

    def test_busy_message(self):
        up = self.upstream()
        up.set_rules([{"cmd": "DATA", "action": "delay",
                       "seconds": TIMEOUT * 4}])
        d = self.relay(up)
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("busy"))
        wait_for(lambda: self.js(d, "queue")["messages"][0]["sending"],
                 what="message to be sending")
        self.assertRegex(self.ok(d, "queue"), r"(?m)^%s\* " % qid)
        for verb in ("delete", "hold"):
            rc, _, err = self.ctl(d.conf_path, verb, qid)
            self.assertEqual(rc, EX_TEMPFAIL, err)
            self.assertIn("try again", err)
        up.kill()
        wait_for(lambda: not self.js(d, "queue")["messages"][0]["sending"],
                 what="message no longer sending")
        self.assertEqual(d.queued_ids(), [qid])


class CtlMailq(CtlTest):
    """queue, mailq and smartrelay-sendmail -bp print Postfix's layout
    byte for byte, and the lines scripts look for parse."""

    def listings(self, d):
        """(smartrelayctl queue, mailq, sendmail -bp) stdout, in UTC,
        each asserted to exit 0."""
        env = dict(os.environ, TZ="UTC", SMARTRELAY_CONFIG=d.conf_path)
        tmp = tempfile.mkdtemp(prefix="mailq.", dir=self.tmp)
        mailq = os.path.join(tmp, "mailq")
        os.symlink(os.path.abspath(SENDMAIL), mailq)
        outs = []
        for cmd in ([SMARTRELAYCTL, "queue"], [mailq], [SENDMAIL, "-bp"]):
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env,
                               timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, (cmd, p.stderr))
            outs.append(p.stdout.decode())
        return outs

    def test_empty(self):
        d = self.daemon()
        for out in self.listings(d):
            self.assertEqual(out, "Mail queue is empty\n")

    def test_held_deferred_and_summary(self):
        up = self.upstream()
        up.set_rules([{"cmd": "CONNECT", "reply":
                       "421 4.7.0 Try again later, closing connection."}])
        d = self.relay(up, queue={"retry_min": "1h", "retry_max": "2h"})
        held = self.send(d, "", ["h@x.test"], simple("held"))
        d.wait_log(UNAVAILABLE_RE)
        self.ok(d, "hold", held)
        up.set_rules([{"cmd": "RCPT", "match": "d@x.test",
                       "reply": "451 4.3.0 mailbox busy"},
                      {"cmd": "RCPT", "match": "f@x.test",
                       "reply": "452 4.2.2 mailbox full"}])
        big = simple("deferred", (b"y" * 76 + b"\r\n") * 70)
        deferred = self.send(d, "s@client.test",
                             ["d@x.test", "e@x.test", "f@x.test"], big)
        self.ok(d, "flush")
        self.wait_delivery(d, deferred, "e@x.test", "sent")
        self.wait_delivery(d, deferred, "f@x.test", "deferred")
        wait_for(lambda: self.js(d, "show", deferred)["attempts"] == 1,
                 what="the saved envelope")
        doc = self.js(d, "queue")
        blocks = []
        for m in doc["messages"]:
            self.assertEqual(m["size"], len(d.data(m["id"])))
            if m["id"] == held:
                blocks.append(pf_sender(held + "!", m["size"],
                                        m["arrival"], "") +
                              pf_rcpt("h@x.test"))
            else:
                # e@ was delivered: done, not listed.
                blocks.append(pf_sender(deferred, m["size"], m["arrival"],
                                        "s@client.test") +
                              pf_reason("451 4.3.0 mailbox busy") +
                              pf_rcpt("d@x.test") +
                              pf_reason("452 4.2.2 mailbox full") +
                              pf_rcpt("f@x.test"))
        total = sum(m["size"] for m in doc["messages"])
        self.assertGreaterEqual(total // 1024, 5)
        want = PF_HEAD + "\n".join(blocks) + pf_summary(total, 2)
        for out in self.listings(d):
            self.assertEqual(out, want)
        # What check_mailq and the Zabbix/munin scripts match.
        last = want.splitlines()[-1]
        self.assertEqual(re.match(r"^-- \d+ Kbytes in (\d+) Request",
                                  last).group(1), "2")
        self.assertEqual(last.split()[4], "2")
        ids = re.findall(r"(?m)^(\w+)([!*]?)\s+(\d+)\s+(.{19})\s+(\S+)$",
                         want)
        self.assertEqual(sorted((i, mark) for i, mark, *_ in ids),
                         sorted([(held, "!"), (deferred, "")]))


class CtlFailed(CtlTest):
    """failed lists failed/; requeue sends a message from there again,
    to the recipients that failed only."""

    BAD = {"cmd": "RCPT", "match": "bad@x.test",
           "reply": "550 5.1.1 no such user"}

    def failed_one(self, up, d, subject):
        qid = self.send(d, "s@client.test", ["good@x.test", "bad@x.test"],
                        simple(subject))
        self.assertFailedKept(d, qid)
        self.wait_report(d, qid, "s@client.test")
        return qid

    def test_list_requeue_end_to_end(self):
        up = self.upstream()
        up.set_rules([self.BAD])
        d = self.relay(up)
        env = dict(os.environ, TZ="UTC")
        rc, out, _ = self.ctl(d.conf_path, "failed", env=env)
        self.assertEqual((rc, out), (0, "No message in failed/\n"))
        qid = self.failed_one(up, d, "requeue me")
        doc = self.js(d, "failed")
        self.assertEqual(doc["count"], 1)
        m = doc["messages"][0]
        self.assertEqual((m["id"], m["size"]), (qid, len(
            open(d.path("failed", qid + ".msg"), "rb").read())))
        st = {r["addr"]: r for r in m["recipients"]}
        self.assertEqual(st["good@x.test"]["state"], "sent")
        self.assertEqual((st["bad@x.test"]["state"], st["bad@x.test"]["dsn"],
                          st["bad@x.test"]["reply"]),
                         ("failed", "5.1.1", "550 5.1.1 no such user"))
        rc, out, _ = self.ctl(d.conf_path, "failed", env=env)
        self.assertEqual(rc, 0)
        self.assertEqual(out, PF_HEAD + pf_sender(
            qid, m["size"], m["arrival"], "s@client.test") +
            pf_reason("delivered: " + st["good@x.test"]["reply"]) +
            pf_rcpt("good@x.test") +
            pf_reason("550 5.1.1 no such user") + pf_rcpt("bad@x.test") +
            pf_summary(m["size"], 1))
        # Still refused: the upstream's rule is fixed first.
        up.clear_rules()
        out = self.ok(d, "requeue", qid.upper())
        self.assertEqual(out, "%s: back in the queue; delivery attempt "
                         "scheduled now\n" % qid)
        d.wait_log(r"queue id=%s requeued from failed/ rcpts=1" % qid)
        self.wait_gone(d, qid)
        self.wait_delivery(d, qid, "bad@x.test", "sent")
        self.assertEqual([x.rcpt_tos for x in self.by_id(up, qid)],
                         [["good@x.test"], ["bad@x.test"]])
        self.assertEqual(d.listdir("failed"), [])
        self.assertEqual(self.js(d, "failed")["count"], 0)
        rc, _, err = self.ctl(d.conf_path, "requeue", qid)
        self.assertEqual(rc, EX_DATAERR, err)
        self.assertIn("no such message in failed/", err)

    def test_requeue_all_and_refusals(self):
        up = self.upstream()
        up.set_rules([self.BAD])
        d = self.relay(up)
        ids = [self.failed_one(up, d, "all %d" % i) for i in range(2)]
        # Nothing leaves while we look at the requeued envelopes.
        up.stop()
        self.wait_closed(up.port)
        waiting = self.send(d, "s@client.test", ["w@x.test"],
                            simple("waiting"))
        d.wait_log(UNAVAILABLE_RE)
        # A queued message is not in failed/.
        rc, _, err = self.ctl(d.conf_path, "requeue", waiting)
        self.assertEqual(rc, EX_DATAERR, err)
        self.assertIn("in the queue, not in failed/", err)
        doc = self.js(d, "requeue", "ALL")
        self.assertEqual((doc["done"], doc["failed"]), (2, 0))
        self.assertEqual(sorted(r["id"] for r in doc["results"]),
                         sorted(ids))
        self.assertEqual(sorted(d.queued_ids()), sorted(ids + [waiting]))
        self.assertEqual(d.listdir("failed"), [])
        # Pending again, tries from zero; the delivered one stays sent.
        for qid in ids:
            e = self.js(d, "show", qid)
            self.assertEqual(e["attempts"], 0)
            self.assertEqual({r["addr"]: r["state"] for r in
                              e["recipients"]},
                             {"good@x.test": "sent", "bad@x.test":
                              "pending"})
        up.clear_rules()
        up.start()
        self.ok(d, "flush")
        self.wait_empty(d)
        for qid in ids:
            self.assertEqual([x.rcpt_tos for x in self.by_id(up, qid)],
                             [["good@x.test"], ["bad@x.test"]])
        self.assertEqual(self.ok(d, "requeue", "ALL"),
                         "requeued 0 messages\n")


class CtlTestVerb(CtlTest):
    """"smartrelayctl test": one real login, and plain-language hints."""

    def run_test_verb(self, up, **kw):
        d = self.relay(up, start=False, **kw)
        return self.ctl(d.conf_path, "test")

    def test_success(self):
        up = self.upstream()
        rc, out, err = self.run_test_verb(up)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("connected to 127.0.0.1[127.0.0.1]:%d" % up.port, out)
        self.assertIn("TLS ok: certificate verified for upstream.test", out)
        self.assertIn("authenticated as user@test", out)
        self.assertIn("OK: smartrelay can send through 127.0.0.1 as "
                      "user@test", out)
        # The upstream records the login as it answers it: wait for it.
        up.wait_event(lambda e: e.get("ev") == "auth" and e.get("success")
                      and e.get("tls"), what="a successful AUTH over TLS")
        self.assertEqual(up.messages(outcome=None), [])

    def test_implicit_tls(self):
        up = self.upstream(tls="implicit")
        rc, out, err = self.run_test_verb(up, tls="implicit")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("(implicit TLS)", out)

    def test_password_refused(self):
        up = self.upstream()
        rc, out, err = self.run_test_verb(up, password="wrong")
        self.assertEqual(rc, EX_NOPERM, out + err)
        self.assertIn("FAILED: 535 5.7.8 Username and Password not accepted",
                      out)
        self.assertIn("use an App Password", out)
        self.assertIn("TLS ok", out)

    def test_534(self):
        up = self.upstream(auth_fail_reply="534 5.7.9 Application-specific "
                           "password required.")
        rc, out, err = self.run_test_verb(up, password="wrong")
        self.assertEqual(rc, EX_NOPERM, out + err)
        self.assertIn("App Password", out)
        self.assertIn("2-Step Verification", out)

    def test_wrong_ca(self):
        up = self.upstream()
        rc, out, err = self.run_test_verb(up, ca_file=self.pki.wrong_ca_crt)
        self.assertEqual(rc, EX_UNAVAILABLE, out + err)
        self.assertIn("certificate verify failed", out)
        self.assertIn("check the system clock (date) and the CA store", out)
        self.assertEqual(up.events("auth"), [])

    def test_wrong_name(self):
        up = self.upstream()
        rc, out, err = self.run_test_verb(up, verify_name="other.test")
        self.assertEqual(rc, EX_UNAVAILABLE, out + err)
        self.assertIn("hostname mismatch", out)
        self.assertIn("verify_name", out)

    def test_nothing_listening(self):
        up = self.upstream()
        up.stop()
        rc, out, err = self.run_test_verb(up)
        self.assertEqual(rc, EX_UNAVAILABLE, out + err)
        self.assertIn("Connection refused", out)
        self.assertIn("587", out)

    def test_implicit_tls_on_a_starttls_port(self):
        """Chosen by the relay's code (TLS_PLAIN), not by OpenSSL's
        wording of the error."""
        up = self.upstream()
        rc, out, err = self.run_test_verb(up, tls="implicit")
        self.assertEqual(rc, EX_UNAVAILABLE, out + err)
        self.assertIn("connected to", out)
        self.assertNotIn("TLS ok", out)
        self.assertIn("fix: this port does not speak TLS at once", out)

    def test_greeting_refused(self):
        up = self.upstream()
        up.set_rules([{"cmd": "CONNECT", "reply": "421 4.3.2 try later"}])
        rc, out, err = self.run_test_verb(up)
        self.assertEqual(rc, EX_UNAVAILABLE, out + err)
        self.assertIn("FAILED: greeting: 421 4.3.2 try later", out)
        self.assertIn("fix: the server refused the connection in its "
                      "greeting", out)

    def test_password_file_missing_or_unsafe(self):
        up = self.upstream(start=False)
        rc, out, err = self.run_test_verb(up, password=None)
        self.assertEqual(rc, EX_CONFIG, out + err)
        self.assertIn("does not exist", out)
        self.assertIn("install -m 0600", out)
        path = self.write_password()
        os.chmod(path, 0o644)
        rc, out, err = self.run_test_verb(up, password=None)
        self.assertEqual(rc, EX_CONFIG, out + err)
        self.assertIn("readable by others", out)
        self.assertIn("chmod 0600", out)


class CtlMetrics(CtlTest):

    def metrics_daemon(self, **kw):
        d = self.daemon(start=False, metrics={"listen": "127.0.0.1:0"},
                        **kw)
        rc, text = harness.run_check(d.conf_path)
        if rc != 0:
            self.skipTest("this smartrelayd has no metrics section: %s"
                          % text.strip())
        d.start()
        port = int(d.wait_log(r"metrics listening addr=127\.0\.0\.1:(\d+)")
                   .group(1))
        return d, "http://127.0.0.1:%d" % port

    def get(self, url):
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def samples(self, text):
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def test_metrics_and_health(self):
        d, base = self.metrics_daemon()
        self.queued(d, 2)
        status, hdrs, text = self.get(base + "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("version=0.0.4", hdrs["Content-Type"])
        s = self.samples(text)
        self.assertEqual(s["smartrelay_messages_accepted_total"], 2)
        self.assertEqual(s["smartrelay_queue_messages"], 2)
        self.assertEqual(s["smartrelay_queue_held_messages"], 0)
        self.assertEqual(s['smartrelay_recipients_total{status="sent"}'], 0)
        self.assertEqual(s['smartrelay_upstream_state{state="ok"}'], 0)
        self.assertEqual(s['smartrelay_upstream_state'
                           '{state="waiting-for-credentials"}'], 1)
        for fam in ("smartrelay_messages_accepted_total counter",
                    "smartrelay_recipients_total counter",
                    "smartrelay_queue_oldest_age_seconds gauge",
                    "smartrelay_clients_connected gauge",
                    "smartrelay_last_sent_timestamp_seconds gauge"):
            self.assertIn("# TYPE " + fam + "\n", text)
        status, _, text = self.get(base + "/health")
        self.assertEqual((status, text), (503, "waiting-for-credentials\n"))
        self.assertEqual(self.get(base + "/other")[0], 404)

    def test_metrics_count_refused_connections(self):
        # Loopback is exempt from the per-address limit unless told.
        d, base = self.metrics_daemon(max_clients_per_ip=1, max_clients=4,
                                      max_clients_per_ip_exempt=[])
        first = self.client(d)
        self.assertEqual(first.reply().code, 220)
        second = socket.create_connection(("127.0.0.1", d.port),
                                          timeout=TIMEOUT)
        self.assertTrue(second.makefile("rb").readline().startswith(
            b"421 4.7.0"))
        second.close()
        d.wait_log(r"reason=max-clients-per-ip")
        s = self.samples(self.get(base + "/metrics")[2])
        self.assertEqual(s['smartrelay_connections_refused_total'
                           '{reason="max-clients-per-ip"}'], 1)
        self.assertEqual(s['smartrelay_connections_refused_total'
                           '{reason="not-allowed"}'], 0)
        self.assertIn("# TYPE smartrelay_connections_refused_total "
                      "counter\n", self.get(base + "/metrics")[2])
        first.close()

    def test_health_ok_after_delivery(self):
        up = self.upstream()
        d = self.relay(up, start=False, metrics={"listen": "127.0.0.1:0"})
        rc, text = harness.run_check(d.conf_path)
        if rc != 0:
            self.skipTest("this smartrelayd has no metrics section")
        d.start()
        port = int(d.wait_log(r"metrics listening addr=127\.0\.0\.1:(\d+)")
                   .group(1))
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("m"))
        self.wait_gone(d, qid)
        base = "http://127.0.0.1:%d" % port
        self.assertEqual(self.get(base + "/health")[:3:2], (200, "ok\n"))
        s = self.samples(self.get(base + "/metrics")[2])
        self.assertEqual(s['smartrelay_recipients_total{status="sent"}'], 1)
        self.assertGreater(s["smartrelay_last_sent_timestamp_seconds"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
