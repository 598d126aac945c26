"""smartrelayd durability: a 250 means the message is on disk.

Several clients send distinct messages in a loop while the daemon is
killed with SIGKILL at random moments and restarted on the same spool.
Every message that got "250 ... queued as ID" must then be in queue/,
byte-exact.  Messages committed whose 250 was lost with the connection
are allowed (the client retries: a duplicate, never a loss) and counted.
Also: leftovers planted in the spool are cleaned or quarantined at start.
"""

import os
import random
import re
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Client, DaemonTest, TIMEOUT, wait_for  # noqa: E402

NCLIENTS = 4
ROUNDS = int(os.environ.get("ITEST_ROUNDS", "10"))
MSGID_RE = re.compile(rb"\r\nMessage-ID: <([^>]+)>\r\n")


class Load:
    """Client threads sending unique messages to whichever daemon is up.
    Shared state is guarded by <cond>."""

    def __init__(self, daemon, seed):
        self.d = daemon
        self.cond = threading.Condition()
        self.port = daemon.port
        self.gen = 0            # bumped on every restart
        self.open = True        # clients may connect
        self.stop = False
        self.accepted = {}      # qid -> msgid
        self.sent = {}          # msgid -> (sender, rcpt, body, helo)
        self.awaiting = 0       # clients waiting for the end-of-DATA reply
        self.errors = []        # unexpected failures, by thread
        self.dup_ids = []
        self.seed = seed
        self.threads = [threading.Thread(target=self.run, args=(i,),
                                         daemon=True)
                        for i in range(NCLIENTS)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        with self.cond:
            self.stop = True
            self.cond.notify_all()
        for t in self.threads:
            t.join(TIMEOUT * 2)
            if t.is_alive():
                raise AssertionError("a client thread did not finish")

    def count(self):
        with self.cond:
            return len(self.accepted)

    def message(self, rng, tid, n):
        msgid = "t%d.n%d.%08x@itest.example" % (tid, n, rng.getrandbits(32))
        sender = "client%d@example.org" % tid
        rcpt = "rcpt%d@example.net" % rng.randrange(1000)
        lines = [b"From: <%s>" % sender.encode(),
                 b"To: <%s>" % rcpt.encode(),
                 b"Subject: durability %d/%d" % (tid, n),
                 b"Message-ID: <%s>" % msgid.encode(), b""]
        for i in range(rng.randrange(1, 300)):
            k = rng.randrange(0, 78)
            ln = b"%d:%d:%d " % (tid, n, i) + bytes(
                rng.randrange(33, 127) for _ in range(k))
            lines.append(ln[:78])
        body = b"\r\n".join(lines) + b"\r\n"
        wire = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n"
                        for ln in body.split(b"\r\n")[:-1])
        return msgid, sender, rcpt, body, wire

    def wait_open(self, gen):
        """Blocks until a daemon newer than <gen> is open; returns
        (gen, port) or None when stopping."""
        with self.cond:
            ok = self.cond.wait_for(
                lambda: self.stop or (self.open and self.gen != gen),
                TIMEOUT * 2)
            if self.stop:
                return None
            if not ok:
                raise AssertionError("no daemon came back")
            return self.gen, self.port

    def run(self, tid):
        rng = random.Random(self.seed * 100 + tid)
        with self.cond:
            gen, port = self.gen, self.port
        try:
            while True:
                with self.cond:
                    if self.stop:
                        return
                    usable = self.open and self.gen == gen
                if not usable:
                    r = self.wait_open(gen)
                    if r is None:
                        return
                    gen, port = r
                try:
                    self.session(tid, rng, port)
                except (OSError, AssertionError) as e:
                    with self.cond:
                        # Only a kill (announced by open = False) may
                        # break a session.
                        if self.open and self.gen == gen and not self.stop:
                            raise AssertionError(
                                "session failed with the daemon up: %s"
                                % e)
        except Exception as e:  # noqa: BLE001
            with self.cond:
                self.errors.append("client %d: %s" % (tid, e))
                self.cond.notify_all()

    def session(self, tid, rng, port):
        helo = "load%d.example" % tid
        with Client(port) as c:
            c.greet(helo=helo)
            while True:
                with self.cond:
                    if self.stop:
                        c.cmd("QUIT", "221")
                        return
                    n = len(self.sent)
                    msg = self.message(rng, tid, n)
                    msgid, sender, rcpt, body, wire = msg
                    self.sent[msgid] = (sender, rcpt, body, helo)
                c.send(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                       % (sender.encode(), rcpt.encode()))
                c.expect("250 2.1.0")
                c.expect("250 2.1.5")
                c.expect("354")
                with self.cond:
                    self.awaiting += 1
                    self.cond.notify_all()
                try:
                    c.send(wire + b".\r\n")
                    r = c.expect("250 2.0.0")
                finally:
                    with self.cond:
                        self.awaiting -= 1
                qid = r.queued_id()
                if qid is None:
                    raise RuntimeError("no queue id in %r" % r)
                with self.cond:
                    if qid in self.accepted:
                        self.dup_ids.append(qid)
                    self.accepted[qid] = msgid
                    self.cond.notify_all()


class DurabilityTest(DaemonTest):

    def check_spool_sane(self, d):
        """Every envelope parses and has its data file; returns ids."""
        ids = d.queued_ids()
        names = set(d.listdir("queue"))
        for qid in ids:
            self.assertRegex(qid, harness.ID_RE)
            env = d.envelope(qid)
            self.assertEqual(env["id"], qid)
            self.assertIn(qid + ".msg", names)
            self.assertEqual(env["size"], len(d.data(qid)))
        return ids

    def test_kill9_loses_nothing(self):
        seed = int(os.environ.get("ITEST_SEED", "0")) or random.randrange(
            1, 1 << 30)
        print("durability: seed %d (ITEST_SEED to replay)" % seed)
        rng = random.Random(seed)
        d = self.daemon(log_level="info")
        load = Load(d, seed)
        t0 = time.monotonic()
        load.start()
        leftovers = []
        for rnd in range(ROUNDS):
            target = load.count() + rng.randrange(5, 40)
            in_commit = rnd % 2 == 0

            def due():
                with load.cond:
                    if load.errors:
                        return True
                    return len(load.accepted) >= target and (
                        not in_commit or load.awaiting > 0)
            wait_for(due, TIMEOUT * 2,
                     "%d accepted messages (round %d)" % (target, rnd))
            self.assertEqual(load.errors, [])
            with load.cond:
                load.open = False
            d.kill9()
            leftovers.append(len(d.listdir("tmp")))
            d.start()
            # Before any client is back: the queue was rebuilt and tmp/
            # is empty.
            self.assertEqual(d.listdir("tmp"), [])
            self.assertEqual(d.listdir("corrupt"), [])
            nq = len(self.check_spool_sane(d))
            d.wait_log(r"smartrelayd ready .*queue=%d\b" % nq)
            with load.cond:
                load.port = d.port
                load.gen += 1
                load.open = True
                load.cond.notify_all()
        # Some more traffic on the last daemon, then a clean stop.
        target = load.count() + 10
        wait_for(lambda: load.count() >= target or load.errors,
                 TIMEOUT * 2, "traffic after the last restart")
        load.finish()
        secs = time.monotonic() - t0
        self.assertEqual(load.errors, [])
        self.assertEqual(load.dup_ids, [])
        self.assertEqual(d.stop(), 0)
        self.assertEqual(d.listdir("tmp"), [])
        self.assertEqual(d.listdir("corrupt"), [])

        ids = self.check_spool_sane(d)
        names = d.listdir("queue")
        self.assertEqual(sorted(names),
                         sorted([i + ".env" for i in ids]
                                + [i + ".msg" for i in ids]))
        found = 0
        for qid, msgid in load.accepted.items():
            self.assertIn(qid, ids, "accepted message %s (%s) lost"
                          % (qid, msgid))
            sender, rcpt, body, helo = load.sent[msgid]
            self.assertQueued(d, qid, sender, [rcpt], body, helo=helo)
            found += 1
        extra = 0
        seen = set()
        for qid in ids:
            m = MSGID_RE.search(d.data(qid))
            self.assertIsNotNone(m, qid)
            msgid = m.group(1).decode()
            self.assertNotIn(msgid, seen, "message %s queued twice"
                             % msgid)
            seen.add(msgid)
            self.assertIn(msgid, load.sent)
            if qid in load.accepted:
                self.assertEqual(load.accepted[qid], msgid)
            else:
                sender, rcpt, body, helo = load.sent[msgid]
                self.assertQueued(d, qid, sender, [rcpt], body, helo=helo)
                extra += 1
        print("durability: %d clients, %d kill -9 rounds, %.1fs: "
              "%d messages sent, %d accepted (%.0f msg/s), %d found, "
              "%d extra (committed, 250 lost), tmp/ leftovers at kills %s"
              % (NCLIENTS, ROUNDS, secs, len(load.sent),
                 len(load.accepted), len(load.accepted) / secs, found,
                 extra, leftovers))
        sys.stdout.flush()

    def test_startup_cleans_planted_files(self):
        d = self.daemon(log_level="info")
        # A real message through SMTP.
        c = Client(d.port)
        c.greet()
        body = b"Subject: real\r\n\r\nqueued before the planting\r\n"
        real = c.send_message("a@example.org", ["b@example.org"],
                              body).queued_id()
        c.cmd("QUIT", "221")
        c.close()
        self.assertEqual(d.stop(), 0)
        real_env = d.envelope_text(real)
        real_data = d.data(real)

        def put(sub, name, content):
            with open(d.path(sub, name), "wb") as f:
                f.write(content)

        # A good message written by hand, in the documented format.
        good = "0001234567890abc"
        good_data = (b"Received: from hand.example ([127.0.0.1])\r\n"
                     b"\tby relay.test (smartrelay) with ESMTP id "
                     + good.encode() + b"\r\n\tfor <x@example.net>; "
                     b"Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                     b"Subject: planted\r\n\r\nhello\r\n")
        good_env = ("smartrelay-envelope 1\nid %s\narrival 1704067200\n"
                    "size %d\nclient 127.0.0.1\nhelo hand.example\n"
                    "sender h+2Bx@example.org\nattempts 0\nnext 0\nheld 0\n"
                    "rcpt pending - x@example.net\nend\n"
                    % (good, len(good_data)))
        put("queue", good + ".msg", good_data)
        put("queue", good + ".env", good_env.encode())
        # Junk in tmp/.
        put("tmp", "0001234567890def.msg", b"half a message")
        put("tmp", "0001234567890def.env.1234abcd", b"smartrelay-env")
        put("tmp", "junk", b"x")
        # In spare/: a spare a crash left with content (between the
        # rename and the truncation), a symlink to a real message and a
        # stranger; never mail, and nothing of it may be followed.
        put("spare", "00000000000000ab.spare", b"delivered long ago")
        os.symlink(d.path("queue", real + ".msg"),
                   d.path("spare", "00000000000000ac.spare"))
        put("spare", "junk", b"x")
        # Data without an envelope: an interrupted commit.
        orphan = "00012345678900aa"
        put("queue", orphan + ".msg", b"Subject: orphan\r\n\r\nx\r\n")
        # A truncated envelope (no "end"), with its data.
        trunc = "00012345678900bb"
        tdata = b"Subject: truncated\r\n\r\nx\r\n"
        put("queue", trunc + ".msg", tdata)
        put("queue", trunc + ".env",
            good_env.replace(good, trunc).encode()[:-12])
        # An envelope without data.
        nodata = "00012345678900cc"
        put("queue", nodata + ".env", good_env.replace(
            good, nodata).replace("size %d" % len(good_data),
                                  "size 10").encode())

        d.start()
        d.wait_log(r"smartrelayd ready .*queue=2\b")
        self.assertEqual(d.listdir("tmp"), [])
        # The spare and the three files from tmp/ are kept, all empty.
        spares = d.listdir("spare")
        self.assertEqual(len(spares), 4)
        self.assertIn("00000000000000ab.spare", spares)
        for name in spares:
            self.assertRegex(name, r"^[0-9a-f]{16}\.spare$")
            self.assertFalse(os.path.islink(d.path("spare", name)))
            self.assertEqual(os.path.getsize(d.path("spare", name)), 0)
        self.assertEqual(d.queued_ids(), sorted([real, good]))
        self.assertEqual(sorted(d.listdir("queue")),
                         sorted([real + ".env", real + ".msg",
                                 good + ".env", good + ".msg"]))
        corrupt = d.listdir("corrupt")
        self.assertIn(trunc + ".env", corrupt)
        self.assertIn(nodata + ".env", corrupt)
        self.assertNotIn(orphan + ".msg", corrupt)
        # Kept byte for byte.
        self.assertEqual(d.envelope_text(real), real_env)
        self.assertEqual(d.data(real), real_data)
        self.assertEqual(d.data(good), good_data)
        env = d.envelope(good)
        self.assertEqual(env["sender"], "h+x@example.org")
        self.assertEqual(env["rcpt"][0]["addr"], "x@example.net")
        # Each leftover is named in the log.
        log = d.log()
        for name in (orphan, trunc, nodata):
            self.assertRegex(log, r"spool recover \S+ id=%s " % name)
        # And the daemon works on.
        c = self.client(d)
        c.greet()
        body = b"Subject: after recovery\r\n\r\nx\r\n"
        qid = c.send_message("a@example.org", ["b@example.org"],
                             body).queued_id()
        self.assertNotIn(qid, (real, good))
        self.assertQueued(d, qid, "a@example.org", ["b@example.org"], body)


if __name__ == "__main__":
    unittest.main()
