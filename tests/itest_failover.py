"""Ordered failover between several upstream sections.

Two (or three) test upstreams; the daemon lists them in order.  Mail
goes to the first one that delivers; one that is unreachable, refuses
the credentials or hits a sending limit hands the queue to the next
one, and takes it back once its probe logs in again.  A message one
upstream rejects with 5xx bounces there, unless that upstream says
failover_on_reject, in which case the next one gets it.
"""

import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TIMEOUT, Timeout, wait_for  # noqa: E402
from itest_relay import PASSWORD, USER, RelayTest, simple  # noqa: E402

SMARTRELAYCTL = os.environ.get("SMARTRELAYCTL") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "src", "smartrelayctl")


class UpstreamsTest(RelayTest):
    """RelayTest with several upstream sections (also itest_quota.py)."""

    def section(self, up, name, **kw):
        s = {"name": name, "host": "127.0.0.1", "port": up.port,
             "tls": up.config["tls"], "verify_name": "upstream.test",
             "ca_file": self.pki.ca_crt, "username": USER,
             "password_file": self.write_password(PASSWORD),
             "connections": 1}
        s.update(kw)
        return s

    def relay_to(self, sections, **opts):
        q = {"lifetime": "5d", "retry_min": "1s", "retry_max": "4s",
             "bounce_to": ""}
        return self.daemon(upstream=sections, queue=q, **opts)

    def down_upstream(self):
        """An upstream started once for a free port, then stopped."""
        up = self.upstream()
        up.stop()
        return up

    def stats(self, d):
        p = subprocess.run([SMARTRELAYCTL, "-f", d.conf_path, "--json",
                            "stats"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)


class Failover(UpstreamsTest):

    def test_unreachable_primary_then_back(self):
        primary = self.down_upstream()
        backup = self.upstream()
        d = self.relay_to([self.section(primary, "primary"),
                           self.section(backup, "backup")])
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("one"))
        self.wait_delivery(d, qid, "r@x.test", "sent")
        self.assertEqual(len(backup.messages()), 1)
        d.wait_log(r"upstream state=unavailable reason=\"cannot connect"
                   r"[^\"]*\" .*name=primary")
        d.wait_log(r"upstream failover to=backup while name=primary is "
                   r"unavailable")
        st = self.stats(d)
        self.assertEqual(st["upstream"], "ok")
        self.assertEqual([(u["name"], u["state"]) for u in st["upstreams"]],
                         [("primary", "unavailable"), ("backup", "ok")])
        self.assertGreater(st["upstreams"][0]["retry_at"], 0)
        self.assertEqual(st["upstreams"][0]["next_probe"],
                         st["upstreams"][0]["retry_at"])
        self.assertEqual(st["upstreams"][1]["next_probe"], 0)
        p = subprocess.run([SMARTRELAYCTL, "-f", d.conf_path, "stats"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=TIMEOUT, text=True)
        self.assertRegex(p.stdout, r"upstream\.1: primary unavailable "
                         r"connections=0 next-probe=\S")
        # The primary returns: SIGUSR1 probes it now, it logs in and
        # takes the next message.
        primary.start()
        d.proc.send_signal(signal.SIGUSR1)
        d.wait_log(r"upstream state=ok name=primary")
        qid2 = self.send(d, "s@client.test", ["r@x.test"], simple("two"))
        self.wait_delivery(d, qid2, "r@x.test", "sent")
        self.assertEqual(len(primary.messages()), 1)
        self.assertEqual(len(backup.messages()), 1)
        self.assertIn(b"Subject: two", primary.messages()[0].data)

    def test_primary_takes_mail_back_under_load(self):
        """Without SIGUSR1: the primary's probe timer alone gives it the
        mail back while a device submits every 2.5 s, which keeps the
        backup's cached connection busy.  Every message arrives exactly
        once, and nothing the backup carried goes to the primary."""
        primary = self.down_upstream()
        backup = self.upstream()
        d = self.relay_to([self.section(primary, "primary"),
                           self.section(backup, "backup")])
        subjects = []

        def submit():
            subj = "load-%d" % len(subjects)
            subjects.append(subj)
            qid = self.send(d, "s@client.test", ["r@x.test"],
                            simple(subj))
            self.wait_delivery(d, qid, "r@x.test", "sent")

        submit()
        d.wait_log(r"upstream failover to=backup while name=primary is "
                   r"unavailable")
        self.assertEqual(len(backup.messages()), 1)
        primary.start()
        back = time.monotonic()
        # The first probe is due 10 s after the failure (10 s doubling
        # to 60 s, smartrelay.conf(5)); one failed probe at most.
        limit = 10 + 20 + 10
        while not primary.messages():
            if time.monotonic() - back > limit:
                raise Timeout("the primary got no mail %d s after it "
                              "came back" % limit)
            # The device's pace (the load profile), not a wait for
            # the daemon: every wait above and below is on a condition.
            time.sleep(2.5)
            submit()
        took = time.monotonic() - back
        sys.stderr.write("primary took the mail back %.1f s after it "
                         "came back, after %d messages\n"
                         % (took, len(subjects)))
        d.wait_log(r"upstream state=ok name=primary: delivering after "
                   r"probe")
        self.assertNotRegex(d.log(), r"queue flush")
        # From now on the primary carries the mail.
        for _ in range(2):
            submit()
        got_p = [m.data for m in primary.messages()]
        got_b = [m.data for m in backup.messages()]
        for subj in subjects:
            tag = ("Subject: %s\r\n" % subj).encode()
            n_p = sum(tag in x for x in got_p)
            n_b = sum(tag in x for x in got_b)
            self.assertEqual(n_p + n_b, 1, "%s: primary %d backup %d"
                             % (subj, n_p, n_b))
        self.assertIn(b"Subject: %s\r\n" % subjects[-1].encode(),
                      got_p[-1])
        self.assertEqual(len(got_p) + len(got_b), len(subjects))

    def test_all_down_keeps_mail_then_backup_comes(self):
        primary = self.down_upstream()
        backup = self.down_upstream()
        d = self.relay_to([self.section(primary, "primary"),
                           self.section(backup, "backup")])
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("wait"))
        d.wait_log(r"upstream state=unavailable .*name=backup")
        st = self.stats(d)
        self.assertEqual(st["upstream"], "unavailable")
        self.assertIn(qid, d.queued_ids())
        self.assertEqual(d.envelope(qid)["rcpt"][0]["state"], "pending")
        backup.start()
        d.proc.send_signal(signal.SIGUSR1)
        self.wait_delivery(d, qid, "r@x.test", "sent")
        self.wait_empty(d)
        self.assertEqual(len(backup.messages()), 1)
        self.assertNotRegex(d.log(), r"failure report|status=bounced")

    def test_credentials_rejected_fails_over(self):
        primary = self.upstream(users={USER: "other"})
        backup = self.upstream()
        d = self.relay_to([self.section(primary, "primary"),
                           self.section(backup, "backup")])
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("auth"))
        self.wait_delivery(d, qid, "r@x.test", "sent")
        d.wait_log(r"upstream state=credentials-rejected .*name=primary")
        self.assertEqual(primary.messages(), [])
        self.assertEqual(len(backup.messages()), 1)

    def test_quota_fails_over(self):
        primary = self.upstream()
        primary.set_rules([{"cmd": "MAIL", "reply":
                            "550 5.4.5 Daily user sending limit exceeded."}])
        backup = self.upstream()
        d = self.relay_to([self.section(primary, "primary"),
                           self.section(backup, "backup")])
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("quota"))
        self.wait_delivery(d, qid, "r@x.test", "sent")
        d.wait_log(r"upstream state=quota-exceeded .*name=primary")
        self.assertEqual(primary.messages(), [])
        self.assertEqual(len(backup.messages()), 1)
        self.assertNotRegex(d.log(), r"failure report|status=bounced")

    def test_reject_is_final_by_default(self):
        primary = self.upstream()
        primary.set_rules([{"cmd": "RCPT", "match": "bad@",
                            "reply": "550 5.1.1 No such user"}])
        backup = self.upstream()
        d = self.relay_to([self.section(primary, "primary"),
                           self.section(backup, "backup")])
        qid = self.send(d, "s@client.test", ["bad@x.test", "good@x.test"],
                        simple("reject"))
        self.wait_delivery(d, qid, "bad@x.test", "bounced")
        self.wait_delivery(d, qid, "good@x.test", "sent")
        self.wait_report(d, qid, "s@client.test")
        # Only the failure report, from the primary; nothing went to the
        # backup.
        self.assertEqual(backup.messages(), [])
        self.assertEqual([m.rcpt_tos for m in primary.messages()],
                         [["good@x.test"], ["s@client.test"]])

    def test_reject_fails_over_when_configured(self):
        primary = self.upstream()
        primary.set_rules([{"cmd": "RCPT", "match": "bad@",
                            "reply": "550 5.7.1 Not from this account"}])
        backup = self.upstream()
        d = self.relay_to([self.section(primary, "primary",
                                        failover_on_reject=True),
                           self.section(backup, "backup")])
        qid = self.send(d, "s@client.test", ["bad@x.test", "good@x.test"],
                        simple("over"))
        self.wait_delivery(d, qid, "good@x.test", "sent")
        x = wait_for(lambda: [y for y in self.deliveries(d, qid)
                              if y["to"] == "bad@x.test" and
                              y["status"] == "sent"], TIMEOUT,
                     "bad@x.test delivered by the backup")[0]
        self.assertIn(str(backup.port), x["relay"])
        self.wait_empty(d)
        self.assertEqual([m.rcpt_tos for m in primary.messages()],
                         [["good@x.test"]])
        self.assertEqual([m.rcpt_tos for m in backup.messages()],
                         [["bad@x.test"]])
        self.assertNotRegex(d.log(), r"failure report|status=bounced")
        self.assertRegex(d.log(), r"to=<bad@x.test> .*status=deferred "
                         r"\(refused here; trying the next upstream\)")

    def test_reject_at_last_upstream_bounces(self):
        primary = self.upstream()
        backup = self.upstream()
        for up in (primary, backup):
            up.set_rules([{"cmd": "RCPT", "match": "bad@",
                           "reply": "550 5.1.1 No such user"}])
        d = self.relay_to([self.section(primary, "primary",
                                        failover_on_reject=True),
                           self.section(backup, "backup",
                                        failover_on_reject=True)])
        qid = self.send(d, "s@client.test", ["bad@x.test"], simple("last"))
        x = self.wait_delivery(d, qid, "bad@x.test", "bounced")
        self.assertIn(str(backup.port), x["relay"])
        self.wait_report(d, qid, "s@client.test")


if __name__ == "__main__":
    unittest.main(verbosity=2)
