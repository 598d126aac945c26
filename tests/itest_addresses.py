"""An upstream name with several addresses: every one is tried, promptly.

The upstream is "multi.test", which resolves to ::1 and 127.0.0.1
through a private /etc/hosts.  The relay tries IPv6 first and starts
the next address 250 ms later while the first is pending (RFC 8305),
takes the first that connects, and falls through to the next address
when TLS or the greeting fails on the one it got.

The test needs root: it re-executes itself under "unshare --net
--mount" (SKIP, exit 77, where that, "ip" or "nft" is unavailable),
brings lo up in the new network namespace, and bind-mounts its own
hosts file over /etc/hosts in the new mount namespace (the daemon's
resolver reads it at start).  A blackholed address is an nftables rule
in that namespace that drops the SYNs to [::1]:PORT, as a firewall
would: no answer at all, unlike a refused port.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

GUARD = "SMARTRELAY_ITEST_ADDRESSES"
NAME = "multi.test"
TABLE = "itest_addresses"
# The relay's connect timeout is 30 s per address; a blackholed first
# address must cost about 250 ms, far less than that.
PROMPT = 10.0


def skip(why):
    sys.stdout.write("SKIP: %s\n" % why)
    sys.exit(77)


def reexec_in_namespaces():
    """Runs this script again in new network and mount namespaces."""
    if os.environ.get(GUARD) == "1":
        return
    for tool in ("ip", "nft", "unshare", "mount"):
        if shutil.which(tool) is None:
            skip("%s is not installed" % tool)
    try:
        ok = subprocess.run(["unshare", "--net", "--mount", "true"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    if not ok:
        skip("needs root and \"unshare --net --mount\" (new network and "
             "mount namespaces)")
    env = dict(os.environ, **{GUARD: "1"})
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe("unshare", ["unshare", "--net", "--mount", sys.executable,
                           os.path.abspath(__file__)] + sys.argv[1:], env)


reexec_in_namespaces()

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itest_relay  # noqa: E402
from harness import wait_for  # noqa: E402
from itest_relay import PASSWORD, USER, simple  # noqa: E402

HOSTS_DIR = None


def run(*args):
    subprocess.run(list(args), check=True, timeout=30,
                   stdout=subprocess.DEVNULL)


def setup_namespace():
    """lo up (with ::1), the private hosts file, an empty nft chain."""
    global HOSTS_DIR
    run("ip", "link", "set", "lo", "up")
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError as e:
        skip("no IPv6 on loopback: %s" % e)
    HOSTS_DIR = tempfile.mkdtemp(prefix="itest-addresses-")
    hosts = os.path.join(HOSTS_DIR, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n::1 %s\n127.0.0.1 %s\n"
                % (NAME, NAME))
    try:
        run("mount", "--bind", hosts, "/etc/hosts")
    except subprocess.CalledProcessError:
        skip("cannot bind-mount a private /etc/hosts")
    try:
        run("nft", "add", "table", "inet", TABLE)
        run("nft", "add", "chain", "inet", TABLE, "input",
            "{ type filter hook input priority 0 ; }")
    except subprocess.CalledProcessError:
        skip("cannot add an nftables table in the namespace")


def teardown_namespace():
    if HOSTS_DIR and not os.environ.get("KEEP_TMP"):
        shutil.rmtree(HOSTS_DIR, ignore_errors=True)


def blackhole_v6(port):
    """Drops (and counts) TCP to [::1]:<port>, as a firewall would."""
    run("nft", "add", "rule", "inet", TABLE, "input", "ip6", "daddr", "::1",
        "tcp", "dport", str(port), "counter", "drop")


def blackhole_hits():
    """Packets the blackhole rule dropped so far."""
    out = subprocess.run(["nft", "list", "chain", "inet", TABLE, "input"],
                         check=True, timeout=30, stdout=subprocess.PIPE,
                         universal_newlines=True).stdout
    m = re.search(r"counter packets (\d+)", out)
    return int(m.group(1)) if m else 0


class AddressesTest(itest_relay.RelayTest):

    def setUp(self):
        super().setUp()
        run("nft", "flush", "chain", "inet", TABLE, "input")

    def relay_to(self, port, **kw):
        """A daemon relaying to multi.test:<port>, one connection at a
        time (one attempt is one dial)."""
        ups = {"host": NAME, "port": port, "tls": "starttls",
               "verify_name": "upstream.test", "ca_file": self.pki.ca_crt,
               "username": USER, "password_file": self.write_password(),
               "connections": 1}
        ups.update(kw)
        q = {"lifetime": "5d", "retry_min": "1s", "retry_max": "4s",
             "bounce_to": ""}
        return self.daemon(upstream=ups, queue=q)

    def v6_upstream(self, port, **kw):
        """A second upstream on [::1] with the same port."""
        return self.upstream(host="::1", port=port, **kw)

    def free_port(self):
        """A port nothing listens on, on either address."""
        up = self.upstream()
        up.stop()
        return up.port

    def assert_blackholed(self, port):
        """Our own connect to [::1]:<port> gets no answer at all (the
        rule works): no refusal, just silence for a second."""
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(1.0)
        try:
            with self.assertRaises(socket.timeout):
                s.connect(("::1", port))
        finally:
            s.close()

    def delivered(self, d, qid, timeout=None):
        return self.wait_delivery(d, qid, "r@x.test", "sent",
                                  **({"timeout": timeout} if timeout
                                     else {}))

    def test_v6_refused(self):
        """Nothing listens on ::1: delivered through 127.0.0.1."""
        up4 = self.upstream()
        d = self.relay_to(up4.port)
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("one"))
        x = self.delivered(d, qid)
        self.assertEqual(x["relay"], "%s[127.0.0.1]:%d" % (NAME, up4.port))
        self.assertEqual(len(self.by_id(up4, qid)), 1)
        self.assertIn('dial connect-failed peer=%s[::1]:%d reason='
                      '"Connection refused"' % (NAME, up4.port), d.log())
        self.assertNotIn("state=unavailable", d.log())

    def test_v6_blackholed(self):
        """::1 drops the SYNs: 127.0.0.1 starts 250 ms later and the
        message goes long before the 30 s connect timeout."""
        up4 = self.upstream()
        blackhole_v6(up4.port)
        self.assert_blackholed(up4.port)
        hits = blackhole_hits()
        d = self.relay_to(up4.port)
        t0 = time.monotonic()
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("two"))
        x = self.delivered(d, qid, timeout=PROMPT)
        took = time.monotonic() - t0
        self.assertLess(took, PROMPT)
        self.assertEqual(x["relay"], "%s[127.0.0.1]:%d" % (NAME, up4.port))
        self.assertGreater(blackhole_hits(), hits, "::1 was not tried")
        self.assertNotIn("state=unavailable", d.log())
        sys.stderr.write("blackholed ::1: delivered %.2fs after queueing "
                         "(connect timeout 30 s)\n" % took)

    def test_both_refused(self):
        """Nothing on either address: one deferral naming both, not one
        per address; the message stays queued."""
        port = self.free_port()
        d = self.relay_to(port)
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("three"))
        want = ('upstream state=unavailable reason="cannot connect to '
                '%s:%d: [::1]: Connection refused, [127.0.0.1]: Connection '
                'refused" ' % (NAME, port))
        d.wait_log(re.escape(want))
        failed = r"dial connect-failed peer=%s\[[^]]+\]:%d " % (NAME, port)
        self.assertEqual(len(re.findall(failed, d.log())), 2)
        # A second attempt (probe now) fails the same way: still one
        # state line, now four address failures.
        d.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: len(re.findall(failed, d.log())) >= 4,
                 what="a second attempt")
        self.assertEqual(d.log().count("upstream state=unavailable"), 1)
        self.assertEqual(d.log().count("cannot connect to"), 1)
        self.assertIn(qid, d.queued_ids())
        self.assertEqual(d.envelope(qid)["rcpt"][0]["state"], "pending")
        self.assertEqual(self.deliveries(d, qid), [])

    def test_ipv4_only(self):
        """address_family = ipv4: ::1 is never tried (no SYN hits the
        blackhole), and nothing waits for it."""
        up4 = self.upstream()
        blackhole_v6(up4.port)
        d = self.relay_to(up4.port, address_family="ipv4")
        t0 = time.monotonic()
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("four"))
        x = self.delivered(d, qid, timeout=PROMPT)
        self.assertLess(time.monotonic() - t0, PROMPT)
        self.assertEqual(x["relay"], "%s[127.0.0.1]:%d" % (NAME, up4.port))
        self.assertEqual(blackhole_hits(), 0)
        self.assertNotIn("[::1]", d.log())

    def test_fallthrough_greeting(self):
        """::1 greets with 421: the relay goes on to 127.0.0.1 on the
        same attempt, and ::1 gets nothing."""
        up4 = self.upstream()
        up6 = self.v6_upstream(up4.port)
        up6.set_rules([{"cmd": "CONNECT", "reply": "421 4.3.2 not here"}])
        d = self.relay_to(up4.port)
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("five"))
        x = self.delivered(d, qid)
        self.assertEqual(x["relay"], "%s[127.0.0.1]:%d" % (NAME, up4.port))
        self.assertIn('dial connect-failed peer=%s[::1]:%d reason="greeting: '
                      '421 4.3.2 not here"' % (NAME, up4.port), d.log())
        self.assertGreaterEqual(up6.rule_hits().get(0, 0), 1)
        self.assertEqual(up6.messages(outcome=None), [])
        self.assertEqual(up6.events("cmd"), [])
        self.assertNotIn("state=unavailable", d.log())

    def test_fallthrough_certificate(self):
        """::1 presents a certificate for another name: never AUTH
        there, deliver through 127.0.0.1."""
        up4 = self.upstream()
        up6 = self.v6_upstream(up4.port, cert=self.pki.other_crt,
                               key=self.pki.other_key)
        d = self.relay_to(up4.port)
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("six"))
        x = self.delivered(d, qid)
        self.assertEqual(x["relay"], "%s[127.0.0.1]:%d" % (NAME, up4.port))
        self.assertRegex(d.log(), r'dial connect-failed peer=%s\[::1\]:%d '
                         r'reason="TLS with ' % (re.escape(NAME), up4.port))
        self.assertEqual(up6.events("auth"), [])
        self.assertEqual(up6.messages(outcome=None), [])
        self.assertNotIn("state=unavailable", d.log())

    def test_no_fallthrough_after_auth(self):
        """Credentials are per account, not per address: a refused
        login on ::1 pauses the queue and 127.0.0.1 is not tried."""
        up4 = self.upstream()
        self.v6_upstream(up4.port, users={USER: PASSWORD + "-other"})
        d = self.relay_to(up4.port)
        qid = self.send(d, "s@client.test", ["r@x.test"], simple("seven"))
        d.wait_log(r"upstream state=credentials-rejected")
        self.assertEqual(up4.events("cmd"), [])
        self.assertIn(qid, d.queued_ids())
        self.assertNotIn("dial connect-failed", d.log())


if __name__ == "__main__":
    setup_namespace()
    try:
        unittest.main(verbosity=2)
    finally:
        teardown_namespace()
