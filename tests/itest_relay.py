"""smartrelayd relay side: the queue delivered to a real upstream.

Every test runs its own test upstream (upstream.py, Gmail-like: STARTTLS
or implicit TLS, AUTH PLAIN/LOGIN, PIPELINING, SIZE, scriptable replies)
and its own daemon relaying to it, then checks what the upstream got,
byte for byte, what the daemon logged, and what is left in the spool.

The shared pieces (RelayTest, PKI, helpers) are also used by
itest_relay_faults.py.  No sleeps as synchronisation: bounded polls.
"""

import atexit
import email
import email.policy
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import certs  # noqa: E402
import harness  # noqa: E402
import upstream  # noqa: E402
from harness import Client, DaemonTest, HOSTNAME, TIMEOUT  # noqa: E402
from harness import wait_for  # noqa: E402

PASSWORD = "secret"
USER = "user@test"
_PKI = None
_TOP = None

DELIVERY_RE = re.compile(
    r"delivery id=(?P<id>[0-9a-f]{16}) to=<(?P<to>[^>]*)> "
    r"relay=(?P<relay>\S+) delay=(?P<delay>\S+) tries=(?P<tries>\d+) "
    r"dsn=(?P<dsn>\S+) status=(?P<status>\w+) \((?P<reply>.*)\)$", re.M)
REPORT_RE = r"queue id=%s failure report id=([0-9a-f]{16}) to=<%s>"


def pki():
    """The test PKI, made once per process."""
    global _PKI, _TOP
    if _PKI is None:
        _TOP = tempfile.mkdtemp(prefix="itest-relay.")
        atexit.register(_remove_top)
        _PKI = certs.make_pki(os.path.join(_TOP, "pki"))
    return _PKI


def _remove_top():
    if _TOP and not os.environ.get("KEEP_TMP"):
        shutil.rmtree(_TOP, ignore_errors=True)


def simple(subject, extra=b""):
    return (b"From: <sender@client.test>\r\nTo: <rcpt@x.test>\r\n"
            b"Subject: " + subject.encode() + b"\r\n\r\nHello.\r\n" + extra)


def stuffed(lines):
    """(wire bytes after DATA, the canonical stored bytes) for lines."""
    wire = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n"
                    for ln in lines)
    return wire, b"".join(ln + b"\r\n" for ln in lines)


class RelayTest(DaemonTest):
    """DaemonTest plus an upstream per test and relay helpers."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="itest-relay-")
        self.addCleanup(self._rm_tmp)
        self.pki = pki()

    def _rm_tmp(self):
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def upstream(self, start=True, **kw):
        """An upstream in this test's directory, stopped (and checked
        for internal errors) after the daemon."""
        args = dict(cert=self.pki.server_crt, key=self.pki.server_key,
                    users={USER: PASSWORD})
        args.update(kw)
        up = upstream.Upstream(tempfile.mkdtemp(prefix="up.", dir=self.tmp),
                               **args)
        self.addCleanup(self._finish_upstream, up)
        if start:
            up.start()
        return up

    def _finish_upstream(self, up):
        up.stop()
        errs = up.errors()
        if errs or self._failed():
            sys.stderr.write("---- upstream log ----\n%s---- end ----\n"
                             % up.log_text()[-4000:])
        self.assertEqual(errs, [], "upstream internal errors")

    def write_password(self, pw=PASSWORD):
        path = os.path.join(self.tmp, "password")
        with open(path + ".tmp", "w") as f:
            f.write(pw + "\n")
        os.chmod(path + ".tmp", 0o600)
        os.rename(path + ".tmp", path)
        return path

    def relay(self, up, password=PASSWORD, tls=None, ca_file=None,
              verify_name="upstream.test", connections=2, queue=None,
              start=True, username=USER, **opts):
        """A daemon relaying to <up>."""
        pwfile = self.write_password(password) if password is not None \
            else os.path.join(self.tmp, "password")
        q = {"lifetime": "5d", "retry_min": "1s", "retry_max": "4s",
             "bounce_to": ""}
        q.update(queue or {})
        ups = {"host": "127.0.0.1", "port": up.port,
               "tls": tls or up.config["tls"], "verify_name": verify_name,
               "ca_file": ca_file or self.pki.ca_crt, "username": username,
               "password_file": pwfile, "connections": connections}
        return self.daemon(start=start, upstream=ups, queue=q, **opts)

    # -- sending

    def send(self, d, sender, rcpts, body, c=None):
        """One message over a new (or the given) connection; its id."""
        own = c is None
        if own:
            c = Client(d.port)
            c.greet()
        try:
            r = c.send_message(sender, rcpts, body)
        finally:
            if own:
                c.close()
        qid = r.queued_id()
        self.assertIsNotNone(qid, r)
        return qid

    # -- observation

    def deliveries(self, d, qid=None):
        """Delivery log lines (whole log, all runs) as dicts."""
        out = [m.groupdict() for m in DELIVERY_RE.finditer(d.full_log())]
        return [x for x in out if qid is None or x["id"] == qid]

    def wait_delivery(self, d, qid, to, status, timeout=TIMEOUT):
        """Waits for a delivery line for (qid, to) with <status>."""
        def find():
            for x in self.deliveries(d, qid):
                if x["to"] == to and x["status"] == status:
                    return x
            return None
        return wait_for(find, timeout, "delivery %s to=<%s> status=%s"
                        % (qid, to, status))

    def wait_report(self, d, qid, to):
        """Waits for qid's failure report to <to>; the report's id once
        it has left the queue (delivered upstream)."""
        rid = d.wait_log(REPORT_RE % (qid, re.escape(to))).group(1)
        self.wait_gone(d, rid)
        return rid

    def wait_gone(self, d, qid, timeout=TIMEOUT):
        """Waits until queue/ holds neither file of <qid> (the envelope
        goes first, the data file a moment later; removed, or moved to
        failed/) and the daemon no longer lists it."""
        names = {qid + ".env", qid + ".msg"}
        wait_for(lambda: not names.intersection(d.listdir("queue")),
                 timeout, "%s to leave queue/" % qid)
        if d.running():
            wait_for(lambda: qid not in [m["id"] for m in d.control(
                "queue")["messages"]], timeout,
                "the daemon to stop listing %s" % qid)

    def wait_empty(self, d, timeout=TIMEOUT):
        """Waits until queue/ holds no file at all and the daemon, which
        counts a message until its files are gone, says so too."""
        wait_for(lambda: not d.listdir("queue"), timeout,
                 "queue/ to drain")
        if d.running():
            wait_for(lambda: d.control("stats")["depth"] == 0, timeout,
                     "the daemon to report an empty queue")

    def open_conns(self, port):
        """Client-side TCP connections to 127.0.0.1:<port> that are not
        closed yet (SYN_SENT, ESTABLISHED, CLOSE_WAIT), from
        /proc/net/tcp: a barrier for "the attempt is over"."""
        n = 0
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                rport = int(fields[2].split(":")[1], 16)
                if rport == port and fields[3] in ("01", "02", "08"):
                    n += 1
        return n

    def wait_closed(self, port):
        wait_for(lambda: self.open_conns(port) == 0,
                 what="no open connection to port %d" % port)

    def by_id(self, up, qid, outcome="accepted"):
        """Upstream messages whose Received header names <qid>."""
        out = []
        for m in up.messages(outcome):
            rec = harness.RECEIVED_RE.match(m.data)
            if rec and rec.group("id").decode() == qid:
                out.append(m)
        return out

    def assertRelayed(self, m, qid, sender, rcpts, canon):
        """Upstream message m is qid's data: our Received header, then
        exactly the canonical message."""
        self.assertEqual(m.mail_from, sender)
        self.assertEqual(sorted(m.rcpt_tos), sorted(rcpts))
        rec, rest = harness.split_received(m.data)
        self.assertEqual(rec.group("host").decode(), HOSTNAME)
        self.assertEqual(rec.group("id").decode(), qid)
        rest, _ = harness.unstamp(rest, canon)
        if len(canon) > 4096:
            self.assertEqual(harness.sha256(rest), harness.sha256(canon))
        else:
            self.assertEqual(rest, canon)
        self.assertIn("SIZE=%d" % len(m.data), m.mail_options)
        self.assertTrue(m.tls)
        self.assertEqual(m.auth_user, USER)

    def assertAuthAfterTLS(self, up):
        """Every AUTH was PLAIN, inside TLS, after the TLS started."""
        evs = up.events()
        auths = [e for e in evs if e["ev"] == "auth"]
        self.assertTrue(auths)
        for a in auths:
            self.assertEqual(a["mech"], "PLAIN")
            self.assertTrue(a["tls"] and not a["before_tls"], a)
            self.assertTrue(a["success"], a)
            conn = [e for e in evs if e.get("conn") == a["conn"]]
            tls_at = [e["t"] for e in conn if e["ev"] == "tls" or
                      (e["ev"] == "connect" and e["tls"])]
            self.assertTrue(tls_at and tls_at[0] <= a["t"], conn)
        for e in evs:
            if e["ev"] == "cmd" and e["cmd"] in ("AUTH", "MAIL", "RCPT",
                                                 "DATA"):
                self.assertTrue(e["tls"], e)

    def dsn_of(self, m):
        """Parses a failure report; returns (message, status fields:
        a list of dicts, one per recipient block)."""
        msg = email.message_from_bytes(m.data, policy=email.policy.compat32)
        self.assertEqual(msg.get_content_type(), "multipart/report", m.data)
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertIn("MAILER-DAEMON@%s" % HOSTNAME, msg["From"])
        parts = [p for p in msg.walk()
                 if p.get_content_type() == "message/delivery-status"]
        self.assertEqual(len(parts), 1, m.data[:2000])
        text = m.data.decode("utf-8", "replace")
        i = text.find("message/delivery-status")
        self.assertGreater(i, 0)
        blocks = []
        for blk in re.split(r"\r?\n\r?\n", text[i:]):
            f = dict(re.findall(r"^([A-Za-z-]+):\s*(.*?)\r?$", blk, re.M))
            if "Final-Recipient" in f or "Status" in f:
                blocks.append(f)
        return msg, blocks

    def assertFailedKept(self, d, qid):
        """qid left queue/ for failed/ (both files); its envelope."""
        self.wait_gone(d, qid)
        names = d.listdir("failed")
        self.assertIn(qid + ".msg", names)
        self.assertIn(qid + ".env", names)
        with open(d.path("failed", qid + ".env"), encoding="latin-1") as f:
            return harness.parse_envelope(f.read())


class RelayDelivery(RelayTest):

    def test_starttls_exact_bytes_two_recipients(self):
        up = self.upstream(tls="starttls")
        d = self.relay(up)
        lines = [b"From: <sender@client.test>", b"To: <a@x.test>",
                 b"Subject: exact over STARTTLS", b"",
                 b".leading dot", b"..two dots", b".", b"..", b" . ",
                 b"8bit caf\xc3\xa9 \xff", b"trailing   ", b"", b"end"]
        wire, canon = stuffed(lines)
        rcpts = ["a@x.test", "b@y.test", "c@x.test"]
        qid = self.send(d, "sender@client.test", rcpts, wire)
        self.wait_gone(d, qid)
        msgs = self.by_id(up, qid)
        self.assertEqual(len(msgs), 1)
        self.assertRelayed(msgs[0], qid, "sender@client.test", rcpts, canon)
        self.assertEqual(msgs[0].helo, HOSTNAME)
        self.assertAuthAfterTLS(up)
        dl = self.deliveries(d, qid)
        self.assertEqual(sorted(x["to"] for x in dl), sorted(rcpts))
        for x in dl:
            self.assertEqual((x["status"], x["tries"], x["dsn"]),
                             ("sent", "1", "2.0.0"), x)
            self.assertEqual(x["relay"], "127.0.0.1[127.0.0.1]:%d" % up.port)
        self.assertEqual(d.listdir("failed"), [])
        # Removal is logged once it is durable, just after the files go.
        d.wait_log(r"queue id=%s removed" % qid)

    def test_implicit_tls_2mb_dot_stuffed(self):
        up = self.upstream(tls="implicit")
        d = self.relay(up, tls="implicit")
        lines = [b"From: <sender@client.test>", b"Subject: big", b""]
        i = 0
        size = 0
        while size < 2 * 1024 * 1024:
            k = i % 7
            ln = [b".", b"..%d" % i, b".x" * 300, b"%d " % i + b"y" * 900,
                  b"", b"\tz", b". %d" % i][k]
            lines.append(ln)
            size += len(ln) + 2
            i += 1
        wire, canon = stuffed(lines)
        t0 = time.monotonic()
        qid = self.send(d, "sender@client.test", ["big@x.test"], wire)
        self.wait_gone(d, qid, timeout=TIMEOUT * 2)
        dt = time.monotonic() - t0
        msgs = self.by_id(up, qid)
        self.assertEqual(len(msgs), 1)
        self.assertRelayed(msgs[0], qid, "sender@client.test",
                           ["big@x.test"], canon)
        self.assertTrue(up.events("connect")[0]["tls"])
        self.assertAuthAfterTLS(up)
        print("\n  2 MB message (%d bytes stored) accepted and relayed over "
              "implicit TLS in %.2fs" % (len(msgs[0].data), dt))

    def test_large_message_relayed_in_flat_memory(self):
        """A 20 MB message goes out through TLS without being held in
        memory: the daemon's peak RSS grows by far less than the
        message."""
        up = self.upstream()
        d = self.relay(up)
        if d.is_sanitized():
            self.skipTest("RSS means nothing under AddressSanitizer")
        base = d.status_kb("VmHWM")
        wire = b"Subject: big\r\n\r\n" + b"z" * 76 + b"\r\n"
        wire = wire + (b"w" * 76 + b"\r\n") * (20 * 1000 * 1000 // 78)
        qid = self.send(d, "sender@client.test", ["big@x.test"], wire)
        self.wait_gone(d, qid, timeout=TIMEOUT * 2)
        self.assertEqual(len(self.by_id(up, qid)), 1)
        grew = d.status_kb("VmHWM") - base
        print("\n  20 MB message relayed: VmHWM grew by %d kB" % grew)
        self.assertLess(grew, 8 * 1024)

    def test_connection_reuse_and_pipelining(self):
        up = self.upstream()
        d = self.relay(up, connections=2)
        c = Client(d.port)
        self.addCleanup(c.close)
        c.greet()
        qids = [self.send(d, "s@client.test", ["r%d@x.test" % i],
                          simple("reuse %d" % i), c=c) for i in range(5)]
        self.wait_empty(d)
        msgs = up.wait_messages(5)
        self.assertEqual(sorted(qids),
                         sorted(harness.split_received(m.data)[0]
                                .group("id").decode() for m in msgs))
        conns = sorted(set(m.conn_id for m in msgs))
        self.assertLessEqual(len(conns), 2, conns)
        self.assertLess(len(up.events("connect")), 5)
        self.assertTrue(any(m.msg_in_conn > 1 for m in msgs))
        mails = [e for e in up.events("cmd") if e["cmd"] == "MAIL"]
        self.assertEqual(len(mails), 5)
        piped = [e for e in mails if e["pipelined"]]
        self.assertTrue(piped, "no MAIL was pipelined: %r" % mails)
        print("\n  5 messages over %d upstream connection(s) (%d connects); "
              "%d/5 MAIL pipelined" % (len(conns), len(up.events("connect")),
                                       len(piped)))

    def test_150_recipients_two_transactions(self):
        up = self.upstream()
        d = self.relay(up, max_recipients=200)
        rcpts = ["r%03d@x.test" % i for i in range(150)]
        body = simple("many recipients")
        qid = self.send(d, "s@client.test", rcpts, body)
        self.wait_gone(d, qid)
        msgs = self.by_id(up, qid)
        self.assertEqual(sorted(len(m.rcpt_tos) for m in msgs), [50, 100])
        got = [r for m in msgs for r in m.rcpt_tos]
        self.assertEqual(sorted(got), rcpts)
        self.assertEqual(msgs[0].data, msgs[1].data)
        self.assertEqual(len([x for x in self.deliveries(d, qid)
                              if x["status"] == "sent"]), 150)
        self.assertEqual(d.listdir("failed"), [])


class RelayFailures(RelayTest):

    def test_rcpt_5xx_one_of_two_dsn_to_sender(self):
        up = self.upstream()
        up.set_rules([{"cmd": "RCPT", "match": "bad@x.test",
                       "reply": "550 5.1.1 The email account that you "
                                "tried to reach does not exist."}])
        d = self.relay(up)
        body = simple("one bad recipient")
        qid = self.send(d, "sender@client.test", ["good@x.test",
                                                  "bad@x.test"], body)
        env = self.assertFailedKept(d, qid)
        st = {r["addr"]: (r["state"], r["dsn"]) for r in env["rcpt"]}
        self.assertEqual(st["good@x.test"][0], "sent")
        self.assertEqual(st["bad@x.test"], ("failed", "5.1.1"))
        orig = self.by_id(up, qid)
        self.assertEqual(len(orig), 1)
        self.assertEqual(orig[0].rcpt_tos, ["good@x.test"])
        self.wait_delivery(d, qid, "bad@x.test", "bounced")
        self.wait_delivery(d, qid, "good@x.test", "sent")
        self.wait_report(d, qid, "sender@client.test")
        dsns = [m for m in up.messages() if m.mail_from == ""]
        self.assertEqual(len(dsns), 1)
        m = dsns[0]
        self.assertEqual(m.rcpt_tos, ["sender@client.test"])
        msg, blocks = self.dsn_of(m)
        text = m.data.decode("utf-8", "replace")
        self.assertIn("message/delivery-status", text)
        self.assertIn("bad@x.test", text)
        self.assertFalse([b for b in blocks if "good@x.test" in
                          b.get("Final-Recipient", "")], blocks)
        fails = [b for b in blocks if "bad@x.test" in
                 b.get("Final-Recipient", "")]
        self.assertEqual(len(fails), 1, blocks)
        self.assertEqual(fails[0].get("Status"), "5.1.1")
        self.assertEqual(fails[0].get("Action"), "failed")
        self.assertIn("Subject: one bad recipient", text)
        self.assertEqual(d.listdir("failed"), [qid + ".env", qid + ".msg"])

    def test_bounce_to(self):
        up = self.upstream()
        up.set_rules([{"cmd": "RCPT", "match": "bad@",
                       "reply": "550 5.1.1 No such user"}])
        d = self.relay(up, queue={"bounce_to": "postmaster@admin.test"})
        qid = self.send(d, "sender@client.test", ["bad@x.test"],
                        simple("to bounce_to"))
        self.assertFailedKept(d, qid)
        self.wait_report(d, qid, "postmaster@admin.test")
        m = up.wait_messages(1)[0]
        self.assertEqual((m.mail_from, m.rcpt_tos),
                         ("", ["postmaster@admin.test"]))
        _, blocks = self.dsn_of(m)
        self.assertTrue(any("bad@x.test" in b.get("Final-Recipient", "")
                            and b.get("Status") == "5.1.1" for b in blocks))
        self.wait_empty(d)

    def test_null_sender_gets_no_dsn(self):
        up = self.upstream()
        up.set_rules([{"cmd": "RCPT", "match": "bad@",
                       "reply": "550 5.1.1 No such user"}])
        d = self.relay(up)
        qid = self.send(d, "", ["bad@x.test"], simple("null sender"))
        self.assertFailedKept(d, qid)
        self.wait_delivery(d, qid, "bad@x.test", "bounced")
        # A later message is a barrier: the queue has moved on.
        q2 = self.send(d, "s@client.test", ["ok@x.test"], simple("after"))
        self.wait_gone(d, q2)
        self.wait_empty(d)
        self.assertNotRegex(d.log(), r"failure report")
        self.assertEqual([m.rcpt_tos for m in up.messages()],
                         [["ok@x.test"]])

    def test_4xx_once_then_retry(self):
        up = self.upstream()
        up.set_rules([{"cmd": "RCPT", "reply": "451 4.3.0 Try again later",
                       "times": 1}])
        d = self.relay(up, queue={"retry_min": "1s", "retry_max": "4s"})
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("4xx"))
        t0 = time.monotonic()
        x1 = self.wait_delivery(d, qid, "r@x.test", "deferred")
        self.assertEqual((x1["tries"], x1["dsn"]), ("1", "4.3.0"))
        self.assertIn("451 4.3.0", x1["reply"])
        x2 = self.wait_delivery(d, qid, "r@x.test", "sent")
        dt = time.monotonic() - t0
        self.assertEqual(x2["tries"], "2")
        self.wait_gone(d, qid)
        self.assertEqual(len(self.by_id(up, qid)), 1)
        self.assertEqual(d.listdir("failed"), [])
        self.assertGreaterEqual(dt, 0.7)
        print("\n  451 then 250: delivered on try 2 after %.2fs "
              "(retry_min 1s)" % dt)

    def quota(self, cmd, reply):
        up = self.upstream()
        up.set_rules([{"cmd": cmd, "reply": reply}])
        d = self.relay(up)
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("quota"))
        d.wait_log(r"upstream state=quota-exceeded reason=\"%s"
                   % re.escape(reply[:9]))
        x = self.wait_delivery(d, qid, "r@x.test", "deferred")
        self.assertIn(reply[:9], x["reply"])
        self.assertIn(qid, d.queued_ids())
        env = d.envelope(qid)
        self.assertEqual([r["state"] for r in env["rcpt"]], ["pending"])
        self.assertEqual(d.listdir("failed"), [])
        self.assertNotRegex(d.log(), r"failure report|status=bounced")
        self.assertEqual(up.messages(), [])
        up.clear_rules()
        d.proc.send_signal(signal.SIGUSR1)
        self.wait_delivery(d, qid, "r@x.test", "sent")
        self.wait_empty(d)
        self.assertEqual(len(up.messages()), 1)
        self.assertEqual([m for m in up.messages() if m.mail_from == ""], [])

    def test_quota_450_421_on_rcpt(self):
        self.quota("RCPT", "450 4.2.1 The user you are trying to contact is "
                   "receiving mail at a rate that prevents additional "
                   "messages from being delivered.")

    def test_quota_550_545_on_mail(self):
        self.quota("MAIL", "550 5.4.5 Daily user sending limit exceeded.")

    def test_size_over_upstream_limit(self):
        # 3000, not 1000: the failure report itself (about 1.7 KB) must
        # fit, or it fails in turn (sender <>: silently, as it should).
        up = self.upstream(size=3000)
        d = self.relay(up)
        body = simple("too big", b"x" * 76 + b"\r\n") + \
            b"".join(b"%05d " % i + b"x" * 72 + b"\r\n" for i in range(64))
        self.assertGreater(len(body), 5000)
        qid = self.send(d, "sender@client.test", ["r@x.test"], body)
        x = self.wait_delivery(d, qid, "r@x.test", "bounced")
        self.assertEqual(x["dsn"], "5.3.4")
        env = self.assertFailedKept(d, qid)
        self.assertEqual(env["rcpt"][0]["dsn"], "5.3.4")
        self.assertEqual(len(self.deliveries(d, qid)), 1)
        self.wait_report(d, qid, "sender@client.test")
        mails = [e["arg"] for e in up.events("cmd") if e["cmd"] == "MAIL"]
        self.assertFalse(any("sender@client.test" in a for a in mails),
                         mails)
        dsns = up.messages()
        self.assertEqual(len(dsns), 1, [(m.mail_from, m.size) for m in dsns])
        self.assertEqual((dsns[0].mail_from, dsns[0].rcpt_tos),
                         ("", ["sender@client.test"]))
        _, blocks = self.dsn_of(dsns[0])
        self.assertTrue(any(b.get("Status") == "5.3.4" for b in blocks),
                        blocks)
        print("\n  over SIZE: failed with 5.3.4, report of %d bytes "
              "delivered" % dsns[0].size)


class RelayThroughput(RelayTest):

    def drain(self, connections, n=200):
        up = self.upstream()
        d = self.relay(up, connections=connections)
        up.stop()
        c = Client(d.port)
        self.addCleanup(c.close)
        c.greet()
        body = simple("drain", b"x" * 700 + b"\r\n")
        t0 = time.monotonic()
        qids = [self.send(d, "s@client.test", ["r@x.test"], body, c=c)
                for _ in range(n)]
        tq = time.monotonic() - t0
        self.assertEqual(len(set(qids)), n)
        wait_for(lambda: len(d.queued_ids()) == n, what="%d queued" % n)
        up.start()
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGUSR1)
        up.wait_messages(n, timeout=TIMEOUT * 3)
        dt = time.monotonic() - t0
        self.wait_empty(d)
        msgs = up.messages()
        self.assertEqual(len(msgs), n, "duplicates")
        got = sorted(harness.split_received(m.data)[0].group("id").decode()
                     for m in msgs)
        self.assertEqual(got, sorted(qids))
        conns = len(set(m.conn_id for m in msgs))
        self.assertLessEqual(conns, connections)
        print("\n  connections=%d: %d messages queued in %.2fs, drained in "
              "%.2fs = %.0f msgs/s over %d connection(s)"
              % (connections, n, tq, dt, n / dt, conns))

    def test_drain_200_one_connection(self):
        self.drain(1)

    def test_drain_200_two_connections(self):
        self.drain(2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
