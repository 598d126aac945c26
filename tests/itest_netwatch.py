"""smartrelayd drains its queue within seconds of the network returning.

While the upstream is unreachable the queue probes it on a timer that
backs off (10 s, 20 s, ... 60 s).  The daemon also listens to rtnetlink:
a link coming up (or an address or default route appearing) makes it
probe at once, after a 2 s debounce.

The test needs root: it re-executes itself under "unshare --net" (SKIP,
exit 77, where that or "ip" is unavailable) and builds two network
namespaces joined by a veth pair, so that a link going down really
makes the upstream unreachable:

    this namespace (daemon, test)       a second namespace (upstream)
    sr0  10.77.0.2/24  <---- veth ---->  sr0p  10.77.0.1/24

The second namespace is entered with setns(2) only while a command or
the upstream server is being started there.  The daemon relays to
10.77.0.1 with STARTTLS and AUTH, verifying the name upstream.test.
The outage is the far end going down: sr0 loses its carrier, as when a
cable is pulled, connections fail with "No route to host", and the
carrier's return is the netlink event.  IPv6 is off on sr0 so that
duplicate address detection adds no late events.
"""

import ctypes
import os
import shutil
import subprocess
import sys
import time
import unittest

GUARD = "SMARTRELAY_ITEST_NETNS"
CLONE_NEWNET = 0x40000000
UP_IP = "10.77.0.1"
OUR_IP = "10.77.0.2"
BODY = (b"From: <sender@client.test>\r\nTo: <rcpt@x.test>\r\n"
        b"Subject: netwatch\r\n\r\nHello.\r\n")
# The link comes back long before the next probe (20 s away); the
# watcher's debounce is 2 s, capped at 5 s during a burst.
PROMPT = 8.0


def skip(why):
    sys.stdout.write("SKIP: %s\n" % why)
    sys.exit(77)


def reexec_in_netns():
    """Runs this script again in a new network namespace (once)."""
    if os.environ.get(GUARD) == "1":
        return
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            skip("%s is not installed" % tool)
    try:
        ok = subprocess.run(["unshare", "--net", "true"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    if not ok:
        skip("needs root and \"unshare --net\" (a new network namespace)")
    env = dict(os.environ, **{GUARD: "1"})
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe("unshare", ["unshare", "--net", sys.executable,
                           os.path.abspath(__file__)] + sys.argv[1:], env)


reexec_in_netns()

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import itest_relay  # noqa: E402
from harness import wait_for, Timeout  # noqa: E402

_libc = ctypes.CDLL(None, use_errno=True)


class Netns:
    """This namespace ("home") and a second one ("far"), as open
    /proc/self/ns/net descriptors."""

    def __init__(self):
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        if _libc.unshare(CLONE_NEWNET) != 0:
            skip("unshare(CLONE_NEWNET): %s"
                 % os.strerror(ctypes.get_errno()))
        self.far = os.open("/proc/self/ns/net", os.O_RDONLY)
        self._enter(self.home)

    @staticmethod
    def _enter(fd):
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")

    def far_call(self, fn, *args, **kw):
        """fn(*args, **kw) with this thread in the far namespace: the
        processes it starts stay there."""
        self._enter(self.far)
        try:
            return fn(*args, **kw)
        finally:
            self._enter(self.home)

    def far_path(self):
        return "/proc/%d/fd/%d" % (os.getpid(), self.far)


def ip(*args):
    subprocess.run(["ip"] + list(args), check=True, timeout=30)


NS = None


def setup_network():
    """lo in both namespaces, and the veth pair between them."""
    global NS
    NS = Netns()
    ip("link", "set", "lo", "up")
    try:
        ip("link", "add", "sr0", "type", "veth", "peer", "name", "sr0p")
    except subprocess.CalledProcessError:
        skip("cannot create a veth pair")
    ip("link", "set", "sr0p", "netns", NS.far_path())
    try:
        with open("/proc/sys/net/ipv6/conf/sr0/disable_ipv6", "w") as f:
            f.write("1\n")
    except FileNotFoundError:
        pass                            # no IPv6 at all: fine
    ip("addr", "add", OUR_IP + "/24", "dev", "sr0")
    ip("link", "set", "sr0", "up")
    NS.far_call(ip, "link", "set", "lo", "up")
    NS.far_call(ip, "addr", "add", UP_IP + "/24", "dev", "sr0p")
    NS.far_call(ip, "link", "set", "sr0p", "up")


class NetwatchTest(itest_relay.RelayTest):

    def setUp(self):
        super().setUp()
        NS.far_call(ip, "link", "set", "sr0p", "up")

    def far_upstream(self, rules):
        """A STARTTLS+AUTH upstream on UP_IP in the far namespace that
        answers the first connections by <rules> (CONNECT replies)."""
        up = self.upstream(start=False, host=UP_IP)
        up.set_rules(rules)
        NS.far_call(up.start)
        return up

    def relay_to(self, up):
        """A daemon relaying to <up> over the veth link, one connection
        at a time (so each attempt is one CONNECT)."""
        ups = {"host": UP_IP, "port": up.port, "tls": "starttls",
               "verify_name": "upstream.test", "ca_file": self.pki.ca_crt,
               "username": itest_relay.USER,
               "password_file": self.write_password(), "connections": 1}
        q = {"lifetime": "5d", "retry_min": "1s", "retry_max": "4s",
             "bounce_to": ""}
        return self.daemon(upstream=ups, queue=q)

    def wait_unavailable(self, d, reason, retry, timeout):
        return d.wait_log(r'upstream(=\S+)? state=unavailable '
                          r'reason="%s[^"]*" '
                          r'queued=1 retry=%ds' % (reason, retry),
                          timeout=timeout)

    def test_link_up_drains_queue(self):
        """Carrier lost, two failed attempts (the next probe is 20 s
        away), carrier back: the message is delivered within seconds."""
        up = self.far_upstream([{"cmd": "CONNECT", "times": 1,
                                 "reply": "421 4.3.2 first attempt"}])
        d = self.relay_to(up)
        qid = self.send(d, "sender@client.test", ["rcpt@x.test"], BODY)
        self.wait_unavailable(d, "greeting: 421 4.3.2 first attempt", 10,
                              timeout=15)
        NS.far_call(ip, "link", "set", "sr0p", "down")
        # The probe 10 s later fails (ARP gets no answer); the next is
        # 20 s away.  Losing the link is no reason to probe.
        self.wait_unavailable(d, "cannot connect to %s:%d: "
                              % (UP_IP, up.port), 20, timeout=30)
        self.assertNotIn("network changed", d.log())
        mark = d.mark()
        t0 = time.monotonic()
        NS.far_call(ip, "link", "set", "sr0p", "up")
        d.wait_log(r"network changed: probing upstream", since=mark,
                   timeout=PROMPT)
        self.wait_delivery(d, qid, "rcpt@x.test", "sent",
                           timeout=PROMPT - (time.monotonic() - t0))
        took = time.monotonic() - t0
        self.assertLess(took, PROMPT)
        self.assertEqual(len(self.by_id(up, qid)), 1)
        self.wait_gone(d, qid)
        sys.stderr.write("delivered %.1fs after the link came up\n" % took)

    def test_no_network_event_no_early_probe(self):
        """The control: the upstream recovers without any network change
        (the link stays up).  Nothing tells the daemon, so nothing is
        delivered in the same window: the next probe is 20 s away."""
        up = self.far_upstream([
            {"cmd": "CONNECT", "times": 1, "reply": "421 4.3.2 first"},
            {"cmd": "CONNECT", "reply": "421 4.3.2 again"}])
        d = self.relay_to(up)
        qid = self.send(d, "sender@client.test", ["rcpt@x.test"], BODY)
        self.wait_unavailable(d, "greeting: 421 4.3.2 first", 10,
                              timeout=15)
        self.wait_unavailable(d, "greeting: 421 4.3.2 again", 20,
                              timeout=25)
        up.clear_rules()
        with self.assertRaises(Timeout):
            wait_for(lambda: self.deliveries(d, qid), timeout=PROMPT,
                     what="a delivery (there must be none yet)")
        self.assertEqual(self.by_id(up, qid), [])
        self.assertNotIn("network changed", d.log())
        self.assertIn(qid, d.queued_ids())


if __name__ == "__main__":
    setup_network()
    unittest.main(verbosity=2)
