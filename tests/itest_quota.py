"""Sending-quota awareness: the daemon's own 24-hour counters.

An upstream with quota = "N" (or "N/M") stops at its limit before Gmail
would answer 550 5.4.5: the queue holds (or fails over to the next
upstream), smartrelayctl stats, the metrics and the log say when sending
resumes, and the counters survive a restart.  Near the limit sends are
paced, not failed over.
"""

import os
import signal
import sys
import unittest
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from itest_failover import UpstreamsTest  # noqa: E402
from itest_relay import simple  # noqa: E402

LIMIT_RE = (r"upstream state=quota-exceeded reason=\"sending limit reached: "
            r"(\d+) of (\d+) messages, (\d+) of (\d+) recipients in 24 h; "
            r"resumes (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC)\".* name=%s")


class Quota(UpstreamsTest):

    def send_wait(self, d, subject, rcpts=("r@x.test",)):
        qid = self.send(d, "s@client.test", list(rcpts), simple(subject))
        for r in rcpts:
            self.wait_delivery(d, qid, r, "sent")
        return qid

    def test_limit_fails_over_and_survives_restart(self):
        primary = self.upstream()
        backup = self.upstream()
        d = self.relay_to([self.section(primary, "primary", quota="2/10"),
                           self.section(backup, "backup")])
        self.send_wait(d, "one")
        self.send_wait(d, "two", rcpts=("a@x.test", "b@x.test"))
        self.assertEqual(len(primary.messages()), 2)
        # The third would be over 2 messages: the backup takes it.
        self.send_wait(d, "three")
        m = d.wait_log(LIMIT_RE % "primary")
        self.assertEqual(m.group(1, 2, 3, 4), ("2", "2", "3", "10"))
        self.assertEqual(len(primary.messages()), 2)
        self.assertEqual(len(backup.messages()), 1)
        st = self.stats(d)
        q = st["upstreams"][0]["quota"]
        self.assertEqual((q["messages"], q["recipients"], q["limit_messages"],
                          q["limit_recipients"]), (2, 3, 2, 10))
        self.assertTrue(q["at_limit"])
        # About 24 hours from now, never earlier.
        self.assertGreater(q["next_send"] - st["now"], 86400 - 120)
        self.assertLessEqual(q["next_send"] - st["now"], 86400 + 120)
        self.assertEqual(st["upstreams"][0]["state"], "quota-exceeded")
        self.assertNotIn("quota", st["upstreams"][1])
        # The counters are in the spool and come back after a restart.
        self.assertTrue(os.path.exists(os.path.join(d.spool,
                                                    "quota.user@test")))
        d.restart()
        self.send_wait(d, "four")
        d.wait_log(LIMIT_RE % "primary")
        self.assertEqual(len(primary.messages()), 2)
        self.assertEqual(len(backup.messages()), 2)

    def test_single_upstream_holds_and_says_when(self):
        up = self.upstream()
        d = self.relay_to([self.section(up, "only", quota="1")],
                          metrics={"listen": "127.0.0.1:0"})
        port = int(d.wait_log(r"metrics listening addr=127\.0\.0\.1:(\d+)")
                   .group(1))
        self.send_wait(d, "one")
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("two"))
        d.wait_log(LIMIT_RE % "only")
        self.assertIn(qid, d.queued_ids())
        self.assertEqual(d.envelope(qid)["rcpt"][0]["state"], "pending")
        self.assertNotRegex(d.log(), r"failure report|status=bounced")
        self.assertEqual(len(up.messages()), 1)
        out = self.ctl_stats_text(d)
        self.assertRegex(out, r"upstream\.1: only quota-exceeded ")
        self.assertRegex(out, r"upstream\.1\.quota: 1/1 messages, 1/1 "
                         r"recipients in 24 h, limit reached, sending "
                         r"resumes in (23h|1d)")
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                      timeout=10).read().decode()
        self.assertIn('smartrelay_upstream_quota_used{upstream="only",'
                      'kind="messages"} 1', text)
        self.assertIn('smartrelay_upstream_quota_limit{upstream="only",'
                      'kind="recipients"} 1', text)
        self.assertRegex(text, r'smartrelay_upstream_section_state\{'
                         r'upstream="only",state="quota-exceeded"\} 1')

    def test_pacing_near_the_limit(self):
        up = self.upstream()
        backup = self.upstream()
        d = self.relay_to([self.section(up, "primary", quota="5/100"),
                           self.section(backup, "backup")])
        for i in range(4):
            self.send_wait(d, "m%d" % i)
        # 4 of 5 used: 80 %, so the fifth is paced (hours away: the
        # remaining budget spread until the oldest minute leaves the
        # window), not failed over and not refused.
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("paced"))
        m = d.wait_log(r"upstream quota pacing name=primary messages=4/5 "
                       r"recipients=4/100 next=\"([^\"]+)\"")
        self.assertIn(qid, d.queued_ids())
        self.assertEqual(backup.messages(), [])
        self.assertEqual(len(up.messages()), 4)
        st = self.stats(d)
        q = st["upstreams"][0]["quota"]
        self.assertTrue(q["pacing"])
        self.assertFalse(q["at_limit"])
        self.assertEqual(st["upstreams"][0]["state"], "ok")
        self.assertGreater(q["next_send"] - st["now"], 3600)
        self.assertTrue(m.group(1).endswith("UTC"))

    def test_parallel_connections_stay_under_the_limit(self):
        up = self.upstream()
        d = self.relay_to([self.section(up, "only", quota="2/100",
                                        connections=4)])
        c = harness.Client(d.port)
        c.greet()
        ids = [self.send(d, "s@client.test", ["r@x.test"], simple("p%d" % i),
                         c=c) for i in range(4)]
        c.close()
        d.wait_log(LIMIT_RE % "only")
        self.assertEqual(len(up.messages()), 2)
        st = self.stats(d)
        self.assertEqual(st["upstreams"][0]["quota"]["messages"], 2)
        # The other two wait in the queue, nothing bounced.
        self.assertEqual(len(set(ids) & set(d.queued_ids())), 2)
        self.assertNotRegex(d.log(), r"failure report|status=bounced")

    def test_reload_changes_the_limit(self):
        up = self.upstream()
        d = self.relay_to([self.section(up, "only", quota="1")])
        self.send_wait(d, "one")
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("two"))
        d.wait_log(LIMIT_RE % "only")
        d.opts["upstream"][0]["quota"] = "100"
        with open(d.conf_path, "w") as f:
            f.write(harness.conf_text(d.opts))
        mark = d.mark()
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(r"smartrelayd reloaded", since=mark)
        d.proc.send_signal(signal.SIGUSR1)
        self.wait_delivery(d, qid, "r@x.test", "sent")
        q = self.stats(d)["upstreams"][0]["quota"]
        self.assertEqual((q["messages"], q["limit_messages"]), (2, 100))

    def ctl_stats_text(self, d):
        import subprocess
        from itest_failover import SMARTRELAYCTL
        p = subprocess.run([SMARTRELAYCTL, "-f", d.conf_path, "stats"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=harness.TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.decode()


if __name__ == "__main__":
    unittest.main(verbosity=2)
