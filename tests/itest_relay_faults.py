"""smartrelayd relay side under faults: bad certificates, no STARTTLS,
rejected credentials, an unavailable or dying upstream, a daemon killed
mid-transaction, and messages outliving queue.lifetime.

The rule throughout: nothing is sent before TLS is verified, nothing is
lost, nothing bounces for a reason that is not the message's own fault.
Duplicates after a crash are allowed (at-least-once) and counted.
Shared helpers come from itest_relay.py.  Bounded polls, no sleeps.
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
import certs  # noqa: E402
import harness  # noqa: E402
from harness import wait_for  # noqa: E402
from itest_relay import RelayTest, simple  # noqa: E402

CONNECTING_RE = re.compile(r"relay state peer=\S+ connecting->", re.M)
UNAVAILABLE_RE = r"upstream state=unavailable reason=\"(?P<reason>[^\"]*)\""
CRED_RE = (r"^(?P<pri><\d>)?upstream state=credentials-rejected "
           r"reason=\"(?P<reason>[^\"]*)\".*queue paused, nothing bounces; "
           r"fix the credentials and send SIGUSR1")


class RelayTLSFaults(RelayTest):
    """TLS must verify before anything is sent; the message waits."""

    def assertNothingSent(self, up):
        cmds = [e["cmd"] for e in up.events("cmd")]
        for verb in ("AUTH", "MAIL", "RCPT", "DATA"):
            self.assertNotIn(verb, cmds, cmds)
        self.assertEqual(up.events("auth"), [])
        self.assertEqual(up.messages(outcome=None), [])

    def refused(self, up, d, want):
        """Sends one message; asserts the upstream is declared
        unavailable for a reason matching <want> and nothing was sent.
        Returns (qid, reason)."""
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("tls"))
        m = d.wait_log(UNAVAILABLE_RE)
        reason = m.group("reason")
        self.assertRegex(reason, re.compile(want, re.I))
        # SIGUSR1 retries at once; still nothing goes out.
        for _ in range(2):
            n = len(re.findall(CONNECTING_RE, d.log()))
            d.proc.send_signal(signal.SIGUSR1)
            wait_for(lambda: len(re.findall(CONNECTING_RE, d.log())) > n,
                     what="a retry after SIGUSR1")
            self.wait_closed(up.port)
        self.assertNothingSent(up)
        self.assertEqual(d.queued_ids(), [qid])
        env = d.envelope(qid)
        self.assertEqual([r["state"] for r in env["rcpt"]], ["pending"])
        self.assertEqual(d.listdir("failed"), [])
        self.assertNotRegex(d.full_log(), r"status=(bounced|sent)|"
                            r"failure report")
        self.assertEqual(len(re.findall(UNAVAILABLE_RE, d.log())), 1,
                         "the same reason must be logged once")
        print("\n  refused: %s" % reason)
        return qid, reason

    def test_wrong_ca_then_fixed(self):
        up = self.upstream()
        d = self.relay(up, ca_file=self.pki.wrong_ca_crt)
        qid, _ = self.refused(up, d, r"certificate verify failed")
        # Fix the configuration: the kept message goes out intact.
        d.stop()
        d.opts["upstream"]["ca_file"] = self.pki.ca_crt
        with open(d.conf_path, "w") as f:
            f.write(harness.conf_text(d.opts))
        d.start()
        self.wait_delivery(d, qid, "r@x.test", "sent")
        self.wait_empty(d)
        self.assertEqual(len(self.by_id(up, qid)), 1)
        self.assertAuthAfterTLS(up)

    def test_wrong_name(self):
        up = self.upstream(tls="implicit")
        d = self.relay(up, tls="implicit", verify_name="other.test")
        self.refused(up, d, r"certificate verify failed")

    def test_expired_certificate(self):
        up = self.upstream(cert=self.pki.expired_crt,
                           key=self.pki.expired_key)
        d = self.relay(up)
        self.refused(up, d, r"certificate verify failed.*expired|"
                     r"expired.*certificate verify failed")

    def test_no_starttls_offered(self):
        up = self.upstream(offer_starttls=False)
        d = self.relay(up)
        self.refused(up, d, r"STARTTLS")
        # The upstream did offer AUTH in plaintext; it was not taken.
        offers = [e["reply"] for e in up.events("reply")
                  if e["reply"].startswith("250-")]
        self.assertTrue(any("AUTH PLAIN" in r for r in offers), offers)


class RelaySystemStore(RelayTest):
    """Without ca_file the system store is used, read from its hashed
    directory (SSL_CERT_DIR here) one certificate at a time."""

    def hashed_dir(self, name, ca):
        d = os.path.join(self.tmp, name)
        os.mkdir(d)
        shutil.copy(ca, os.path.join(d, "ca.pem"))
        subprocess.run(["openssl", "rehash", d], check=True,
                       stdout=subprocess.DEVNULL)
        self.assertTrue([f for f in os.listdir(d) if f.endswith(".0")])
        return d

    def relay_with_store(self, up, store):
        old = os.environ.get("SSL_CERT_DIR")
        os.environ["SSL_CERT_DIR"] = store
        try:
            d = self.relay(up, start=False)
            d.opts["upstream"]["ca_file"] = ""
            with open(d.conf_path, "w") as f:
                f.write(harness.conf_text(d.opts))
            d.start()
        finally:
            if old is None:
                del os.environ["SSL_CERT_DIR"]
            else:
                os.environ["SSL_CERT_DIR"] = old
        return d

    def test_hashed_store_trusts_its_ca(self):
        up = self.upstream()
        d = self.relay_with_store(up, self.hashed_dir("store",
                                                      self.pki.ca_crt))
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("store"))
        self.wait_delivery(d, qid, "r@x.test", "sent")

    def test_hashed_store_without_the_ca_refuses(self):
        other = certs.make_pki(os.path.join(self.tmp, "other-pki"))
        up = self.upstream()
        d = self.relay_with_store(up, self.hashed_dir("store",
                                                      other.ca_crt))
        self.send(d, "s@client.test", ["r@x.test"], simple("store"))
        m = d.wait_log(UNAVAILABLE_RE)
        self.assertRegex(m.group("reason"), re.compile("verif", re.I))
        self.assertEqual(up.messages(outcome=None), [])


class RelayCredentials(RelayTest):

    def test_535_pauses_once_then_fixed(self):
        up = self.upstream()
        d = self.relay(up, password="wrong-password")
        q1 = self.send(d, "s@client.test", ["r1@x.test"], simple("535 a"))
        m = d.wait_log(CRED_RE)
        self.assertTrue(m.group("reason").startswith("535 5.7.8"),
                        m.group(0))
        if m.group("pri"):
            self.assertEqual(m.group("pri"), "<3>", "not an error line")
        q2 = self.send(d, "s@client.test", ["r2@x.test"], simple("535 b"))
        self.assertIn(q2, d.queued_ids())
        for _ in range(3):
            n = len(up.events("auth"))
            d.proc.send_signal(signal.SIGUSR1)
            wait_for(lambda: len(up.events("auth")) > n,
                     what="an AUTH retry after SIGUSR1")
            self.wait_closed(up.port)
        auths = up.events("auth")
        self.assertTrue(all(not a["success"] and a["tls"] for a in auths))
        self.assertEqual(len(re.findall(CRED_RE, d.log(), re.M)), 1,
                         "credentials-rejected must be logged once per "
                         "episode:\n" + "\n".join(
                             ln for ln in d.log().splitlines()
                             if "upstream state=" in ln))
        self.assertEqual(sorted(d.queued_ids()), sorted([q1, q2]))
        self.assertEqual(d.listdir("failed"), [])
        self.assertNotRegex(d.log(), r"failure report|status=bounced")
        self.assertEqual(up.messages(outcome=None), [])
        self.assertEqual([e for e in up.events("cmd")
                          if e["cmd"] == "MAIL"], [])
        # Fix the password file (re-read per connection) and SIGUSR1.
        self.write_password()
        d.proc.send_signal(signal.SIGUSR1)
        self.wait_delivery(d, q1, "r1@x.test", "sent")
        self.wait_delivery(d, q2, "r2@x.test", "sent")
        self.wait_empty(d)
        d.wait_log(r"upstream state=ok")
        self.assertEqual(len(up.messages()), 2)
        print("\n  535: %d AUTH attempts, 1 error line, 0 bounces; "
              "delivered after the fix" % len(auths))

    def test_535_fixed_upstream_side(self):
        up = self.upstream(users={"user@test": "other"})
        d = self.relay(up)
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("users"))
        d.wait_log(CRED_RE)
        self.assertIn(qid, d.queued_ids())
        up.set_users({"user@test": "secret"})
        d.proc.send_signal(signal.SIGUSR1)
        self.wait_delivery(d, qid, "r@x.test", "sent")
        self.wait_empty(d)

    def test_waiting_for_credentials(self):
        up = self.upstream()
        d = self.relay(up, password=None)
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("nocreds"))
        d.wait_log(r"upstream state=waiting-for-credentials")
        self.assertEqual(up.events("connect"), [])
        self.assertIn(qid, d.queued_ids())
        self.write_password()
        d.proc.send_signal(signal.SIGUSR1)
        self.wait_delivery(d, qid, "r@x.test", "sent")
        self.wait_empty(d)


class RelayOutages(RelayTest):

    def test_421_greeting_then_cleared(self):
        up = self.upstream()
        up.set_rules([{"cmd": "CONNECT", "reply":
                       "421 4.7.0 Try again later, closing connection."}])
        d = self.relay(up)
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("421"))
        m = d.wait_log(UNAVAILABLE_RE)
        self.assertIn("421", m.group("reason"))
        self.assertIn(qid, d.queued_ids())
        self.assertEqual(up.events("auth"), [])
        up.clear_rules()
        d.proc.send_signal(signal.SIGUSR1)
        self.wait_delivery(d, qid, "r@x.test", "sent")
        self.wait_empty(d)
        self.assertEqual(d.listdir("failed"), [])

    def test_upstream_killed_and_restarted(self):
        up = self.upstream()
        d = self.relay(up)
        q0 = self.send(d, "s@client.test", ["r@x.test"], simple("before"))
        self.wait_gone(d, q0)
        up.kill()
        mark = d.mark()
        qids = [self.send(d, "s@client.test", ["r%d@x.test" % i],
                          simple("outage %d" % i)) for i in range(10)]
        d.wait_log(UNAVAILABLE_RE, since=mark)
        self.assertEqual(sorted(d.queued_ids()), sorted(qids))
        up.start()          # same port, no SIGUSR1
        t0 = time.monotonic()
        wait_for(lambda: not d.queued_ids(), 75, "drain without SIGUSR1")
        dt = time.monotonic() - t0
        got = [harness.split_received(m.data)[0].group("id").decode()
               for m in up.messages()]
        self.assertEqual(sorted(set(got)), sorted([q0] + qids))
        print("\n  upstream killed, 10 queued, restarted: drained %.1fs "
              "later without SIGUSR1; %d duplicate(s)"
              % (dt, len(got) - len(set(got))))

    def test_drop_mid_data(self):
        up = self.upstream()
        up.set_rules([{"cmd": "DATA", "action": "drop", "times": 1}])
        d = self.relay(up)
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("drop"))
        x = self.wait_delivery(d, qid, "r@x.test", "sent")
        self.wait_empty(d)
        self.assertEqual(x["tries"], "2")
        dropped = self.by_id(up, qid, "dropped")
        accepted = self.by_id(up, qid)
        self.assertEqual((len(dropped), len(accepted)), (1, 1))
        self.assertEqual(dropped[0].data, accepted[0].data)
        self.assertEqual(d.listdir("failed"), [])
        print("\n  dropped mid-DATA: delivered on try %s; upstream copies: "
              "%d dropped, %d accepted (duplicates %d)"
              % (x["tries"], len(dropped), len(accepted),
                 len(accepted) - 1))

    def test_kill9_daemon_mid_transaction(self):
        up = self.upstream()
        up.set_rules([{"cmd": "DATA", "action": "delay", "seconds": 10,
                       "times": 1}])
        d = self.relay(up)
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("kill9"))
        up.wait_event(lambda e: e["ev"] == "rule" and e["cmd"] == "DATA",
                      what="the slow DATA")
        d.kill9()
        d.start()
        self.wait_delivery(d, qid, "r@x.test", "sent")
        self.wait_empty(d)
        wait_for(lambda: self.by_id(up, qid, "aborted"), what="the held "
                 "copy recorded as aborted")
        accepted = self.by_id(up, qid)
        copies = self.by_id(up, qid, None)
        self.assertGreaterEqual(len(accepted), 1)
        self.assertEqual(d.listdir("failed"), [])
        print("\n  kill -9 mid-DATA, restart: delivered; upstream copies "
              "%d (%d accepted, duplicates %d)"
              % (len(copies), len(accepted), len(accepted) - 1))

    def test_lifetime_expiry(self):
        up = self.upstream()
        up.set_rules([{"cmd": "RCPT", "match": "slow@x.test",
                       "reply": "451 4.2.0 Try again later"}])
        d = self.relay(up, queue={"lifetime": "3s", "retry_min": "1s",
                                  "retry_max": "2s"})
        t0 = time.monotonic()
        qid = self.send(d, "sender@client.test", ["slow@x.test"],
                        simple("expiry"))
        x = self.wait_delivery(d, qid, "slow@x.test", "expired")
        dt = time.monotonic() - t0
        self.assertGreaterEqual(dt, 2.5)
        env = self.assertFailedKept(d, qid)
        self.assertEqual(env["rcpt"][0]["state"], "failed")
        self.assertEqual(env["rcpt"][0]["dsn"], "4.4.7")
        deferred = [y for y in self.deliveries(d, qid)
                    if y["status"] == "deferred"]
        self.assertGreaterEqual(len(deferred), 2)
        self.wait_report(d, qid, "sender@client.test")
        dsns = up.wait_messages(1)
        self.assertEqual(len(dsns), 1)
        self.assertEqual((dsns[0].mail_from, dsns[0].rcpt_tos),
                         ("", ["sender@client.test"]))
        _, blocks = self.dsn_of(dsns[0])
        self.assertTrue(any("slow@x.test" in b.get("Final-Recipient", "")
                            and b.get("Status") == "4.4.7" for b in blocks),
                        blocks)
        print("\n  lifetime 3s: expired after %.1fs and %d deferral(s); "
              "report with 4.4.7 delivered" % (dt, len(deferred)))
        self.assertEqual(x["dsn"], "4.4.7", "the expired line: %r" % x)


if __name__ == "__main__":
    unittest.main(verbosity=2)
