"""No fsync on the event loop: the daemon runs under strace -f, and the
loop's thread (the process's main thread, whose tid is the pid) issues
no fsync or fdatasync once it is ready, while a message is picked up
from the maildrop, a failure report is queued and its original moved to
failed/, and messages are held, released, deleted and requeued.  Every
sync runs on the worker threads (worker.h).  Skipped when strace is
missing or ptrace is not allowed here.  And with every fsync delayed
by strace, a hold is answered only after its sync, while SMTP commands
are answered meanwhile.  Bounded polls, no sleeps.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TIMEOUT, Client, wait_for  # noqa: E402
from itest_ctl import SMARTRELAYCTL, CtlTest  # noqa: E402
from itest_relay import simple  # noqa: E402

SYNC_RE = re.compile(r"^(\d+) +(?:<\.\.\. )?(fsync|fdatasync|syncfs|"
                     r"sync_file_range|msync)\b", re.M)


def strace_works():
    if shutil.which("strace") is None:
        return False
    p = subprocess.run(["strace", "-qq", "-e", "trace=none", "true"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p.returncode == 0


@unittest.skipUnless(strace_works(), "strace missing or ptrace not allowed")
class LoopSync(CtlTest):
    BAD = {"cmd": "RCPT", "match": "bad@x.test",
           "reply": "550 5.1.1 no such user"}
    LATER = {"cmd": "RCPT", "match": "later@x.test",
             "reply": "451 4.3.0 try later"}

    def traced(self, up, inject=()):
        d = self.relay(up, start=False,
                       queue={"retry_min": "1h", "retry_max": "2h"})
        self.trace = os.path.join(d.dir, "strace.out")
        # LeakSanitizer cannot run under ptrace (a sanitizer build).
        asan = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
        d.command_prefix = ["strace", "-f", "-qq", "-o", self.trace,
                            "-e", "trace=execve,fsync,fdatasync,syncfs,"
                            "sync_file_range,msync"] + list(inject) + [
                            "env", "ASAN_OPTIONS=" + asan.lstrip(":")]
        d.start()
        # The first line is env's execve, which becomes the daemon: its
        # pid is the main thread's tid.
        with open(self.trace) as f:
            text = f.read()
        self.main = int(re.match(r"(\d+) ", text).group(1))
        self.addCleanup(self.stop_traced, d)
        return d

    def stop_traced(self, d):
        """SIGTERM to the daemon itself (strace would only detach)."""
        if d.proc.poll() is None:
            os.kill(self.main, signal.SIGTERM)
            self.assertEqual(d.proc.wait(TIMEOUT), 0)
        d.expected_exit = True

    def syncs(self):
        """(tid, call) of every sync so far."""
        with open(self.trace) as f:
            return [(int(t), c) for t, c in SYNC_RE.findall(f.read())]

    def test_no_sync_on_the_loop_thread(self):
        up = self.upstream()
        up.set_rules([self.BAD, self.LATER])
        d = self.traced(up)
        # Startup recovery syncs on the main thread, before the loop:
        # seeing them shows that the trace tells the threads apart.
        before = len(self.syncs())
        self.assertIn(self.main, [t for t, _ in self.syncs()])
        # The maildrop: copy and commit off the loop.
        self.inject(d, "good@x.test", "picked up")
        d.wait_log(r"maildrop queued id=")
        # A failure report, and the original moved to failed/.
        qid = self.send(d, "s@client.test", ["good@x.test", "bad@x.test"],
                        simple("bounce me"))
        self.assertFailedKept(d, qid)
        self.wait_report(d, qid, "s@client.test")
        # hold, release, delete on a deferred message.
        ids = [self.send(d, "s@client.test", ["later@x.test"],
                         simple("later %d" % i)) for i in range(2)]
        for i in ids:
            self.wait_delivery(d, i, "later@x.test", "deferred")
        wait_for(lambda: all(self.js(d, "show", i)["attempts"] == 1
                             for i in ids), what="saved envelopes")
        self.assertEqual(self.js(d, "hold", *ids)["done"], 2)
        self.assertEqual(self.js(d, "stats")["held"], 2)
        self.assertEqual(self.js(d, "release", ids[0])["ok"], True)
        self.assertEqual(self.js(d, "delete", ids[1])["ok"], True)
        self.assertNotIn(ids[1], d.queued_ids())
        # requeue from failed/.
        up.clear_rules()
        self.ok(d, "requeue", qid)
        d.wait_log(r"queue id=%s requeued from failed/" % qid)
        self.wait_gone(d, qid)
        after = self.syncs()
        on_loop = [c for t, c in after[before:] if t == self.main]
        off_loop = [c for t, c in after[before:] if t != self.main]
        self.assertEqual(on_loop, [], "syncs on the loop's thread")
        # The operations did sync, elsewhere: the trace sees them.
        self.assertGreaterEqual(len(off_loop), 10, after[before:])

    DELAY = 1.0     # seconds strace adds before every fsync

    def test_hold_answered_after_a_slow_sync_loop_serves_meanwhile(self):
        up = self.upstream()
        up.set_rules([self.LATER])
        d = self.traced(up, ["-e", "inject=fsync:delay_enter=%d"
                             % int(self.DELAY * 1e6)])
        qid = self.send(d, "s@client.test", ["later@x.test"],
                        simple("slow"))
        self.wait_delivery(d, qid, "later@x.test", "deferred")
        # Saved (its sync over): no longer busy.
        wait_for(lambda: not self.js(d, "queue")["messages"][0]["sending"],
                 timeout=TIMEOUT * 2, what="the saved envelope")
        with Client(d.port) as c:
            c.greet()
            c.cmd("EHLO slow.test", "250")
            t0 = time.monotonic()
            hold = subprocess.Popen(
                [SMARTRELAYCTL, "-f", d.conf_path, "hold", qid],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            # SMTP is served while the hold's sync is held up.
            rtts = []
            while hold.poll() is None:
                self.assertLess(time.monotonic() - t0, TIMEOUT * 3)
                t = time.monotonic()
                c.cmd("NOOP", "250")
                rtts.append(time.monotonic() - t)
            took = time.monotonic() - t0
            out, err = hold.communicate()
        self.assertEqual(hold.returncode, 0, err)
        # The answer waited for the sync of the new envelope.
        self.assertGreaterEqual(took, self.DELAY)
        self.assertGreater(len(rtts), 3)
        self.assertLess(max(rtts), self.DELAY / 2, rtts)
        self.assertEqual(self.js(d, "stats")["held"], 1)
        print("\n  fsync delayed %.1fs: hold answered after %.2fs; %d NOOPs "
              "meanwhile, slowest %.3fs" % (self.DELAY, took, len(rtts),
                                           max(rtts)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
