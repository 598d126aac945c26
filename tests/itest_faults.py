"""smartrelayd under faults: a full disk, kill -9 during accept and
during delivery, upstream faults itest_relay_faults.py does not cover
(nothing listening from the start, a TCP reset in the middle of the
data, a very slow upstream), corrupt envelopes at startup, and a whole
representative run under valgrind with no leak at exit.

The rule throughout: every message that got a 250 is delivered at least
once; duplicates are allowed after a crash and counted.  Bounded polls,
no sleeps as synchronisation.
"""

import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Client, Daemon, TIMEOUT, wait_for  # noqa: E402
from itest_durability import Load  # noqa: E402
from itest_relay import REPORT_RE, RelayTest, simple  # noqa: E402

MB = 1024 * 1024
MSGID_RE = re.compile(rb"\r\nMessage-ID: <([^>]+)>\r\n")
UNAVAILABLE_RE = r"upstream state=unavailable reason=\"(?P<reason>[^\"]*)\""


class WrappedDaemon(Daemon):
    """A Daemon whose binary is started through a wrapper: the harness
    runs "wrapper.sh -d -f CONF", which execs <prefix> (a shell word
    list, or a function of the daemon returning one) with the real
    binary and those arguments, in the same process: proc.pid is the
    daemon's."""

    def __init__(self, prefix, **opts):
        super().__init__(**opts)
        if callable(prefix):
            prefix = prefix(self)
        self.wrapper = os.path.join(self.dir, "wrapper.sh")
        with open(self.wrapper, "w") as f:
            f.write("#!/bin/sh\nexec %s %s \"$@\"\n"
                    % (prefix, shlex.quote(os.path.abspath(
                        harness.SMARTRELAYD))))
        os.chmod(self.wrapper, 0o755)

    def start(self, timeout=TIMEOUT):
        real = harness.SMARTRELAYD
        harness.SMARTRELAYD = self.wrapper
        try:
            return super().start(timeout)
        finally:
            harness.SMARTRELAYD = real


class TmpfsDaemon(WrappedDaemon):
    """The daemon in a private mount namespace whose spool is a tmpfs of
    <size>.  Only the daemon sees that mount: the test reads the spool
    through /proc/PID/root (so only while the daemon runs)."""

    def __init__(self, size, **opts):
        super().__init__(lambda d: (
            "unshare --mount --propagation private sh -c "
            "'mount -t tmpfs -o size=%s tmpfs \"$0\" && exec \"$@\"' %s"
            % (size, shlex.quote(d.spool))), **opts)
        os.makedirs(self.spool)

    def path(self, *parts):
        return os.path.join("/proc/%d/root" % self.proc.pid,
                            self.spool.lstrip("/"), *parts)


def can_mount_tmpfs():
    """None if a private tmpfs mount works here, else why not."""
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("unshare") is None:
        return "no unshare(1)"
    d = harness.tempfile.mkdtemp(prefix="itest-ns-")
    try:
        p = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount -t tmpfs -o size=1m tmpfs "$0" && umount "$0"', d],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=TIMEOUT)
        if p.returncode != 0:
            return "unshare/mount not permitted: %s" % \
                p.stdout.decode("utf-8", "replace").strip()
    finally:
        os.rmdir(d)
    return None


def msgid_of(data):
    m = MSGID_RE.search(data)
    return m.group(1).decode() if m else None


class ResetProxy:
    """A TCP relay to <port> that, on its first connection only, resets
    the daemon's side (SO_LINGER 0, so an RST) once <cut> octets went
    upstream: a connection broken in the middle of a large DATA, TLS or
    not.  Later connections pass through untouched."""

    def __init__(self, port, cut):
        self.target = port
        self.cut = cut
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.conns = 0
        self.resets = 0
        self.lock = threading.Lock()
        self.socks = []
        self.closing = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.conns += 1
                first = self.conns == 1
                self.socks += [a, b]
            threading.Thread(target=self.pump, args=(a, b, first),
                             daemon=True).start()
            threading.Thread(target=self.pump, args=(b, a, False),
                             daemon=True).start()

    def pump(self, src, dst, cutting):
        n = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                if cutting and n + len(data) >= self.cut:
                    dst.sendall(data[:self.cut - n])
                    src.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    with self.lock:
                        self.resets += 1
                    src.close()
                    dst.close()
                    return
                n += len(data)
                dst.sendall(data)
        except OSError:
            try:
                dst.close()
            except OSError:
                pass

    def close(self):
        self.lsock.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.close()
                except OSError:
                    pass


class DiskFull(RelayTest):

    def test_disk_full_452_then_recovers(self):
        why = can_mount_tmpfs()
        if why:
            self.skipTest("private tmpfs spool impossible: %s" % why)
        d = TmpfsDaemon("4m", max_message_size=16 * MB, log_level="info")
        self.addCleanup(self._finish, d)
        d.start()
        self.assertEqual(d.listdir("queue"), [])
        c = self.client(d)
        c.greet()
        first = b"Subject: before the disk filled\r\n\r\n" + \
            (b"a" * 70 + b"\r\n") * 100
        q1 = c.send_message("a@example.org", ["r@example.org"],
                            first).queued_id()
        env1, data1 = self.assertQueued(d, q1, "a@example.org",
                                        ["r@example.org"], first)
        env1_text = d.envelope_text(q1)
        # A filler takes 3 MB of the 4; a 2 MB message cannot fit.
        filler = d.path("filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (3 * MB))
        big = b"Subject: big\r\n\r\n" + (b"b" * 510 + b"\r\n") * 4096
        mark = d.mark()
        r = c.send_message("a@example.org", ["r@example.org"], big,
                           expect="452 4.3.1")
        d.wait_log(r"session spool write failed", since=mark)
        self.assertEqual(d.queued_ids(), [q1])
        wait_for(lambda: d.listdir("tmp") == [], what="tmp/ cleaned")
        # Completely full: no room even for the trace header.
        with open(filler, "ab") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        c.cmd("MAIL FROM:<a@example.org>", "250 2.1.0")
        c.cmd("RCPT TO:<r@example.org>", "250 2.1.5")
        r = c.cmd("DATA")
        at = "DATA"
        if r.code == 354:
            at = "end of data"
            c.send(b"Subject: tiny\r\n\r\nx\r\n.\r\n")
            r = c.reply()
        self.assertEqual(r.status(), "452 4.3.1", r)
        c.cmd("RSET", "250 2.0.0")
        self.assertTrue(d.running())
        # What was queued is intact, byte for byte.
        self.assertEqual(d.queued_ids(), [q1])
        self.assertEqual(d.data(q1), data1)
        self.assertEqual(d.envelope_text(q1), env1_text)
        # Space comes back: the same big message is accepted.
        os.unlink(filler)
        q2 = c.send_message("a@example.org", ["r@example.org"],
                            big).queued_id()
        self.assertQueued(d, q2, "a@example.org", ["r@example.org"], big)
        self.assertEqual(d.data(q1), data1)
        print("\n  4 MB tmpfs spool: 2 MB message into 1 MB free -> 452 "
              "4.3.1, full disk -> 452 4.3.1 at %s; after freeing: 250, "
              "first message intact" % at)


class Kill9Soak(RelayTest):
    """Hundreds of messages; the daemon is killed with SIGKILL during
    accept and during delivery and restarted.  Every 250 must reach the
    upstream at least once."""

    ROUNDS = int(os.environ.get("ITEST_SOAK_ROUNDS", "6"))
    PER_ROUND = 60

    def test_kill9_during_accept_and_delivery(self):
        seed = int(os.environ.get("ITEST_SEED", "0")) or random.randrange(
            1, 1 << 30)
        print("\n  soak: seed %d (ITEST_SEED to replay)" % seed)
        rng = random.Random(seed)
        up = self.upstream()
        d = self.relay(up, log_level="info", connections=2)
        load = Load(d, seed)
        t0 = time.monotonic()
        load.start()
        kinds = []
        for rnd in range(self.ROUNDS):
            target = load.count() + self.PER_ROUND + rng.randrange(20)
            wait_for(lambda: load.count() >= target or load.errors,
                     TIMEOUT * 2, "%d accepted (round %d)" % (target, rnd))
            self.assertEqual(load.errors, [])
            if rnd % 2 == 0:
                # In accept: a client is waiting for its end-of-DATA.
                kinds.append("accept")
                wait_for(lambda: load.awaiting > 0 or load.errors,
                         what="a client inside DATA")
            else:
                # In delivery: the upstream holds a DATA for 5 s.
                kinds.append("delivery")
                nrule = len([e for e in up.events("rule")
                             if e["cmd"] == "DATA"])
                up.set_rules([{"cmd": "DATA", "action": "delay",
                               "seconds": 5, "times": 1}])
                wait_for(lambda: len([e for e in up.events("rule")
                                      if e["cmd"] == "DATA"]) > nrule,
                         what="a delivery in progress")
            with load.cond:
                load.open = False
            d.kill9()
            up.clear_rules()
            d.start()
            with load.cond:
                load.port = d.port
                load.gen += 1
                load.open = True
                load.cond.notify_all()
        target = load.count() + 20
        wait_for(lambda: load.count() >= target or load.errors,
                 TIMEOUT * 2, "traffic after the last restart")
        load.finish()
        self.assertEqual(load.errors, [])
        taccept = time.monotonic() - t0
        self.wait_empty(d, timeout=TIMEOUT * 3)
        secs = time.monotonic() - t0
        self.assertEqual(d.listdir("failed"), [])
        self.assertEqual(d.listdir("corrupt"), [])
        self.assertNotRegex(d.full_log(), r"status=bounced|failure report")

        copies = {}
        for m in up.messages():
            msgid = msgid_of(m.data)
            self.assertIn(msgid, load.sent, "unknown message upstream")
            sender, rcpt, body, helo = load.sent[msgid]
            self.assertEqual((m.mail_from, m.rcpt_tos), (sender, [rcpt]))
            _, rest = harness.split_received(m.data)
            rest, _ = harness.unstamp(rest, body)
            self.assertEqual(rest, body, "message %s altered" % msgid)
            copies[msgid] = copies.get(msgid, 0) + 1
        accepted = set(load.accepted.values())
        lost = sorted(accepted - set(copies))
        self.assertEqual(lost, [], "%d accepted message(s) never "
                         "delivered" % len(lost))
        dups = sum(n - 1 for n in copies.values())
        extra = len(set(copies) - accepted)
        # Delivered messages' files were kept for reuse, empty, and no
        # reused file carried anything old upstream (checked above).
        spares = d.listdir("spare")
        self.assertGreater(len(spares), 0)
        for name in spares:
            self.assertRegex(name, r"^[0-9a-f]{16}\.spare$")
            self.assertEqual(os.path.getsize(d.path("spare", name)), 0)
        print("  soak: %d kills (%s), %d sent, %d got 250, %d delivered "
              "(%d distinct), %d duplicate(s), %d delivered without a "
              "250 seen (250 lost with the kill); accept phase %.1fs, "
              "drained at %.1fs; %d spare file(s) left"
              % (len(kinds), ",".join(kinds), len(load.sent),
                 len(accepted), sum(copies.values()), len(copies), dups,
                 extra, taccept, secs, len(spares)))


class UpstreamFaults(RelayTest):

    def test_nothing_listening_from_the_start(self):
        """Connection refused: the upstream is unavailable, nothing is
        burned (no attempt counted, no bounce), and the message goes
        once something listens."""
        up = self.upstream()
        up.stop()                   # the port is now refused
        d = self.relay(up)
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("refused"))
        m = d.wait_log(UNAVAILABLE_RE)
        self.assertRegex(m.group("reason"), re.compile("refused", re.I))
        env = d.envelope(qid)
        self.assertEqual(env["attempts"], 0)
        self.assertEqual([r["state"] for r in env["rcpt"]], ["pending"])
        self.assertEqual(self.deliveries(d, qid), [])
        up.start()
        d.proc.send_signal(signal.SIGUSR1)
        x = self.wait_delivery(d, qid, "r@x.test", "sent")
        self.wait_empty(d)
        self.assertEqual(len(self.by_id(up, qid)), 1)
        self.assertEqual(d.listdir("failed"), [])
        print("\n  refused (%s): delivered on try %s once listening"
              % (m.group("reason"), x["tries"]))

    def test_reset_mid_data(self):
        up = self.upstream()
        proxy = ResetProxy(up.port, cut=MB)
        self.addCleanup(proxy.close)
        d = self.relay(up, start=False, connections=1)
        d.opts["upstream"]["port"] = proxy.port
        with open(d.conf_path, "w") as f:
            f.write(harness.conf_text(d.opts))
        d.start()
        lines = [b"From: <s@client.test>", b"Subject: reset", b""] + \
            [b"%06d " % i + b"r" * 90 for i in range(24000)]
        body = b"".join(ln + b"\r\n" for ln in lines)
        self.assertGreater(len(body), 2 * MB)
        qid = self.send(d, "s@client.test", ["r@x.test"], body)
        x1 = self.wait_delivery(d, qid, "r@x.test", "deferred")
        x2 = self.wait_delivery(d, qid, "r@x.test", "sent")
        self.wait_empty(d)
        self.assertEqual(proxy.resets, 1)
        self.assertEqual((x1["tries"], x2["tries"]), ("1", "2"))
        got = self.by_id(up, qid)
        self.assertEqual(len(got), 1)
        self.assertRelayed(got[0], qid, "s@client.test", ["r@x.test"], body)
        self.assertEqual(d.listdir("failed"), [])
        print("\n  RST after 1 MB of a %d-byte DATA: deferred (%s), sent "
              "on try 2, one copy upstream" % (len(body), x1["reply"]))

    def test_slow_upstream_does_not_slow_accept(self):
        up = self.upstream()
        d = self.relay(up, connections=1)
        c = self.client(d)
        c.greet()

        def accept_times(n, tag):
            out = []
            for i in range(n):
                t0 = time.monotonic()
                self.send(d, "s@client.test", ["r%d@x.test" % i],
                          simple("%s %d" % (tag, i)), c=c)
                out.append(time.monotonic() - t0)
            return out
        base = accept_times(20, "baseline")
        self.wait_empty(d)
        up.set_rules([{"cmd": "DATA", "action": "delay", "seconds": 8,
                       "times": 1}])
        q0 = self.send(d, "s@client.test", ["slow@x.test"], simple("slow"))
        up.wait_event(lambda e: e["ev"] == "rule" and e["cmd"] == "DATA",
                      what="the upstream stalling a DATA")
        t0 = time.monotonic()
        slow = accept_times(20, "during")
        greet = []
        for _ in range(5):
            t1 = time.monotonic()
            with Client(d.port) as c2:
                c2.expect("220 ")
                greet.append(time.monotonic() - t1)
        window = time.monotonic() - t0
        # All of that happened while the upstream was still stalling.
        self.assertEqual(self.deliveries(d, q0), [])
        self.assertLess(window, 8)
        self.wait_delivery(d, q0, "slow@x.test", "sent", timeout=TIMEOUT)
        self.wait_empty(d)
        self.assertEqual(len(up.messages()), 41)
        print("\n  upstream stalled 8s on DATA: accept latency max %.3fs "
              "(baseline max %.3fs), greeting max %.3fs"
              % (max(slow), max(base), max(greet)))
        self.assertLess(max(slow), max(1.0, 5 * max(base)))
        self.assertLess(max(greet), 1.0)


class CorruptSpool(RelayTest):

    def test_corrupt_envelopes_quarantined_rest_delivered(self):
        up = self.upstream()
        d = self.relay(up, password=None, log_level="info")
        good = [self.send(d, "s@client.test", ["r%d@x.test" % i],
                          simple("good %d" % i)) for i in range(3)]
        d.wait_log(r"upstream state=waiting-for-credentials")
        self.assertEqual(d.stop(), 0)
        self.assertEqual(up.events("connect"), [])
        env_text = d.envelope_text(good[0])
        data = d.data(good[0])

        def plant(qid, env, msg=data):
            with open(d.path("queue", qid + ".env"), "wb") as f:
                f.write(env)
            if msg is not None:
                with open(d.path("queue", qid + ".msg"), "wb") as f:
                    f.write(msg)

        # Corrupt envelopes, each with its data file.
        bad = {
            "00000000000000a1": env_text.encode()[:len(env_text) // 2],
            "00000000000000a2": bytes(random.Random(2).randrange(256)
                                      for _ in range(3000)),
            "00000000000000a3": b"",
            "00000000000000a4": re.sub(r"(?m)^size \d+", "size x",
                                       env_text).encode(),
            "00000000000000a5": re.sub(r"(?m)^rcpt .*$", "rcpt pending",
                                       env_text).encode(),
            "00000000000000a6": env_text.replace(
                "smartrelay-envelope 1", "smartrelay-envelope 9").encode(),
            "00000000000000a7": env_text.encode() + b"x" * (5 * MB),
            "00000000000000a8": env_text.replace(
                good[0], "00000000000000ff").encode(),
        }
        for qid, env in bad.items():
            plant(qid, env)
        os.mkdir(d.path("queue", "00000000000000b1.env"))
        with open(d.path("queue", "00000000000000b1.msg"), "wb") as f:
            f.write(data)
        with open(d.path("queue", "not-an-id.env"), "wb") as f:
            f.write(env_text.encode())
        self.write_password()
        mark = d.mark()
        d.start()
        # Every good message is delivered; every bad one is set aside.
        for i, qid in enumerate(good):
            self.wait_delivery(d, qid, "r%d@x.test" % i, "sent")
        self.wait_empty(d)
        log = d.log(mark)
        corrupt = d.listdir("corrupt")
        for qid in list(bad) + ["00000000000000b1"]:
            with self.subTest(qid=qid):
                self.assertIn(qid + ".env", corrupt)
                self.assertIn(qid + ".msg", corrupt)
                self.assertRegex(log, r"spool recover quarantine id=%s "
                                 r"file=queue/%s\.env reason=" % (qid, qid))
        self.assertIn("not-an-id.env", corrupt)
        self.assertEqual(d.listdir("queue"), [])
        got = sorted(harness.split_received(m.data)[0].group("id").decode()
                     for m in up.messages())
        self.assertEqual(got, sorted(good))
        for qid in bad:
            self.assertEqual(self.by_id(up, qid), [])
        reasons = sorted(set(re.findall(
            r"spool recover quarantine .*reason=(\S+)", log)))
        print("\n  %d corrupt envelopes quarantined (reasons %s); the "
              "3 good messages delivered" % (len(bad) + 2, reasons))

    def test_fifo_envelope_does_not_hang_startup(self):
        """Something that is not a regular file where an envelope should
        be (a FIFO: opening it for reading would block until a writer
        comes) is set aside; startup goes on."""
        d = self.daemon(log_level="info")
        with Client(d.port) as c:
            c.greet()
            qid = c.send_message("a@example.org", ["r@example.org"],
                                 simple("beside a fifo")).queued_id()
        self.assertEqual(d.stop(), 0)
        fifo = "00000000000000c1"
        os.mkfifo(d.path("queue", fifo + ".env"))
        with open(d.path("queue", fifo + ".msg"), "wb") as f:
            f.write(b"Subject: x\r\n\r\nx\r\n")
        mark = d.mark()
        d.start(timeout=10)
        d.wait_log(r"smartrelayd ready .*queue=1\b", since=mark)
        self.assertEqual(d.queued_ids(), [qid])
        self.assertIn(fifo + ".env", d.listdir("corrupt"))
        self.assertRegex(d.log(mark), r"spool recover quarantine id=%s "
                         % fifo)


def can_strace():
    """None if strace can slow down the daemon's system calls here, else
    why not."""
    if shutil.which("strace") is None:
        return "strace is not installed"
    p = subprocess.run(
        ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=unlinkat",
         "-e", "inject=unlinkat:delay_enter=1000", "true"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, timeout=TIMEOUT)
    if p.returncode != 0:
        return "strace cannot trace here: %s" % \
            p.stdout.decode("utf-8", "replace").strip()
    return None


class RemovalVisible(RelayTest):
    """"The queue is empty" means queue/ holds no file of any message: a
    delivered message stays in the queue (listed as sending, counted in
    the stats) until the spool worker has taken its files out of queue/
    (renamed into spare/, or unlinked), which strace slows down here to
    DELAY seconds per renameat2 and unlinkat."""

    DELAY = 0.4

    def test_empty_only_once_the_files_are_gone(self):
        why = can_strace()
        if why:
            self.skipTest(why)
        up = self.upstream()
        # relay() only for its settings (password file, CA, port).
        d = self.relay(up, start=False)
        # LeakSanitizer cannot run under ptrace (it fails the exit): off
        # for this one daemon of a sanitizer build.
        sd = WrappedDaemon(
            'env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}'
            'detect_leaks=0" '
            "strace -D -f -qq -o /dev/null -e trace=unlinkat,renameat2 "
            "-e inject=unlinkat,renameat2:delay_enter=%d"
            % int(self.DELAY * 1e6),
            upstream=d.opts["upstream"], queue=d.opts["queue"])
        self.addCleanup(self._finish, sd)
        sd.start()
        qid = self.send(sd, "s@client.test", ["r@x.test"],
                        simple("removed slowly"))
        self.wait_delivery(sd, qid, "r@x.test", "sent")
        answers = []

        def empty():
            # The answer first, the directory after: an "empty" answer
            # promises that no file is left when it is given.
            depth = sd.control("stats")["depth"]
            files = sd.listdir("queue")
            if depth == 0:
                self.assertEqual(files, [], "stats said depth 0 while "
                                 "queue/ still held files")
            doc = sd.control("queue")
            files = sd.listdir("queue")
            answers.append((doc["count"], len(files)))
            if doc["count"] == 0:
                self.assertEqual(files, [], "queue said empty while "
                                 "queue/ still held files")
                return True
            self.assertEqual([(m["id"], m["sending"])
                              for m in doc["messages"]], [(qid, True)])
            return False
        wait_for(empty, what="the queue to be empty")
        self.assertEqual(sd.listdir("queue"), [])
        sd.wait_log(r"queue id=%s removed" % qid)
        listed = [a for a in answers if a[1] > 0]
        print("\n  unlinkat/renameat2 delayed %.1fs: %d answer(s) listed "
              "the delivered message while its files were being removed, "
              "then empty with queue/ empty" % (self.DELAY, len(listed)))
        self.assertGreater(len(listed), 0)


class Valgrind(RelayTest):
    """One representative run under valgrind: no leak, no error."""

    def test_no_leaks_under_valgrind(self):
        if shutil.which("valgrind") is None:
            self.skipTest("valgrind is not installed")
        vlog = os.path.join(self.tmp, "valgrind.log")
        up = self.upstream()
        up.set_rules([{"cmd": "RCPT", "match": "bad@",
                       "reply": "550 5.1.1 No such user"}])
        if _sanitized_binary():
            self.skipTest("sanitizer build: valgrind cannot run it")
        # relay() only for its settings (password file, CA, port).
        d = self.relay(up, start=False)
        vd = WrappedDaemon(
            "valgrind --leak-check=full --errors-for-leak-kinds=definite,"
            "indirect --error-exitcode=99 --track-fds=no --num-callers=30 "
            "--log-file=%s" % shlex.quote(vlog),
            upstream=d.opts["upstream"], queue=d.opts["queue"])
        self.addCleanup(self._finish, vd)
        slow = 20 * TIMEOUT / 30 + 60
        vd.start(timeout=slow)
        c = Client(vd.port, timeout=slow)
        self.addCleanup(c.close)
        c.expect("220 ", timeout=slow)
        c.cmd("EHLO client.example", "250")
        c.cmd("NOOP", "250 2.0.0")
        c.cmd("VRFY x", "252 2.5.0")
        c.cmd("BOGUS", "500 5.5.2")
        body = simple("under valgrind")
        q1 = c.send_message("sender@client.test", ["good@x.test",
                                                   "bad@x.test"],
                            body).queued_id()
        q2 = c.send_message("sender@client.test", ["ok@x.test"],
                            b"Subject: two\r\n\r\n..dot\r\n").queued_id()
        c.cmd("QUIT", "221 2.0.0")
        c.expect_eof(timeout=slow)
        self.wait_gone(vd, q2, timeout=slow)
        self.wait_gone(vd, q1, timeout=slow)
        rid = vd.wait_log(REPORT_RE % (q1, re.escape("sender@client.test")),
                          timeout=slow).group(1)
        self.wait_gone(vd, rid, timeout=slow)
        self.assertFailedKept(vd, q1)
        mark = vd.mark()
        vd.proc.send_signal(signal.SIGHUP)
        vd.wait_log(r"smartrelayd reloaded", since=mark, timeout=slow)
        # A session after the reload, left open: SIGTERM must close it.
        c3 = Client(vd.port, timeout=slow)
        self.addCleanup(c3.close)
        c3.expect("220 ", timeout=slow)
        c3.cmd("EHLO client.example", "250")
        rc = vd.stop(timeout=slow)
        with open(vlog, encoding="utf-8", errors="replace") as f:
            text = f.read()
        summary = [ln.split("== ", 1)[-1] for ln in text.splitlines()
                   if re.search(r"definitely lost|indirectly lost|"
                                r"ERROR SUMMARY", ln)]
        print("\n  valgrind: exit %d; %s" % (rc, "; ".join(summary)))
        lost = re.search(r"definitely lost: [1-9]|indirectly lost: [1-9]|"
                         r"are definitely lost", text)
        if rc != 0 or lost:
            sys.stderr.write("---- valgrind log ----\n%s---- end ----\n"
                             % text[-20000:])
        self.assertNotEqual(rc, 99, "valgrind reported errors or leaks")
        self.assertEqual(rc, 0)
        self.assertIsNone(lost, "valgrind found a leak")
        self.assertRegex(text, r"ERROR SUMMARY: 0 errors")
        self.assertEqual(len(up.messages()), 3)    # good, ok, the report


def _sanitized_binary():
    with open(harness.SMARTRELAYD, "rb") as f:
        exe = f.read()
    return b"__asan_init" in exe or b"__ubsan_handle" in exe


if __name__ == "__main__":
    unittest.main(verbosity=2)
