"""smartrelayd as a service: what systemd sees and what operators do.

The unit files (systemd-analyze verify and security), the sd_notify
protocol (READY, STATUS, RELOADING, STOPPING, WATCHDOG) on a datagram
socket the test binds itself, socket activation through
systemd-socket-activate, SIGHUP reloads good and bad, SIGTERM in the
middle of a client's DATA and of a relay transaction, the spool lock
against a second daemon, and the privilege drop when started as root.

No sleeps as synchronisation: bounded polls, and bounded receive windows
where the test counts what arrives in a given time.
"""

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True         # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import itest_relay  # noqa: E402
from harness import Client, DaemonTest, HOSTNAME, TIMEOUT  # noqa: E402
from harness import SMARTRELAYD, wait_for  # noqa: E402

UNIT_DIR = os.path.join(harness.SRCDIR, "..", "systemd")
STOP_BOUND = 12.0       # seconds from SIGTERM to exit (10 s grace + 2)
# Variables a daemon under test must not inherit from whoever runs us.
SD_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
           "LISTEN_PID", "LISTEN_FDNAMES")


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago (the race is acceptable)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    """True when something accepts TCP connections on host:port."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT)
        try:
            s.connect((host, port))
        except ConnectionRefusedError:
            return False
    return True


def have_ipv6_loopback():
    try:
        free_port("::1")
    except OSError:
        return False
    return True


def write_conf(d, **changes):
    """Rewrites <d>'s configuration file (atomically) with <changes>."""
    d.opts.update(changes)
    tmp = d.conf_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(harness.conf_text(d.opts))
    os.rename(tmp, d.conf_path)


def write_raw_conf(d, text):
    tmp = d.conf_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, d.conf_path)


def message(subject):
    return (b"From: <s@client.test>\r\nTo: <r@x.test>\r\nSubject: "
            + subject.encode() + b"\r\n\r\nHello.\r\n")


def snapshot(d):
    """{file name in queue/: its bytes}: the queue as it is on disk."""
    out = {}
    for name in d.listdir("queue"):
        with open(d.path("queue", name), "rb") as f:
            out[name] = f.read()
    return out


# --------------------------------------------------------------------
# The notification socket a service manager would listen on.

class Notify:
    """A bound AF_UNIX datagram socket; every datagram is kept in
    self.msgs as a dict (sd_notify "KEY=VALUE" lines) with the arrival
    time under "_t"."""

    def __init__(self, path):
        """<path>: a file name, or "@name" for the abstract namespace
        (what $NOTIFY_SOCKET then says)."""
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + path[1:] if path.startswith("@") else path)
        self.msgs = []

    def close(self):
        self.sock.close()

    def _recv(self, deadline):
        """One datagram before <deadline>, parsed, or None."""
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        self.sock.settimeout(left)
        try:
            raw = self.sock.recv(65536)
        except socket.timeout:
            return None
        m = {"_t": time.monotonic()}
        for line in raw.decode("utf-8", "replace").split("\n"):
            if line:
                k, _, v = line.partition("=")
                m[k] = v
        self.msgs.append(m)
        return m

    def wait(self, pred, timeout=TIMEOUT, what="notification"):
        """Receives until a datagram satisfies pred; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            m = self._recv(deadline)
            if m is None:
                raise harness.Timeout("timed out after %.0fs waiting for "
                                      "%s; got %r" % (timeout, what,
                                                      self.msgs))
            if pred(m):
                return m

    def collect(self, seconds):
        """Everything that arrives within <seconds> (a measuring window,
        not a synchronisation)."""
        deadline = time.monotonic() + seconds
        got = []
        while True:
            m = self._recv(deadline)
            if m is None:
                return got
            got.append(m)


# --------------------------------------------------------------------
# A daemon started with a chosen environment and command wrapper.

class SvcDaemon(harness.Daemon):
    """harness.Daemon whose start() takes extra environment variables,
    a wrapper for the command line and whether to wait for "ready"."""

    def start(self, timeout=TIMEOUT, env=None, wrap=None, wait=True):
        assert self.proc is None or self.proc.poll() is not None
        self.log_start = self.log_size()
        argv = [SMARTRELAYD, "-d", "-f", self.conf_path]
        if wrap is not None:
            argv = wrap(argv)
        e = {k: v for k, v in os.environ.items() if k not in SD_VARS}
        e.update(env or {})
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                argv, env=e, stdin=subprocess.DEVNULL, stdout=logf,
                stderr=logf)
        self.starts += 1
        self.expected_exit = False
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=TIMEOUT):
        def ready():
            return self.proc.poll() is not None or \
                "smartrelayd ready" in self.log()
        wait_for(ready, timeout, "smartrelayd ready")
        if self.proc.poll() is not None:
            self.expected_exit = True
            raise AssertionError("smartrelayd exited with %d at start:\n%s"
                                 % (self.proc.returncode, self.log()))
        self.addrs = re.findall(r"listener listening addr=(\S+):(\d+)",
                                self.log())
        self.ports = [int(p) for _, p in self.addrs]
        return self

    def wait_exit(self, timeout=TIMEOUT):
        """Waits for the process to end; returns (status, seconds)."""
        t0 = time.monotonic()
        self.expected_exit = True
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
            raise AssertionError("smartrelayd still running %.0fs later"
                                 % timeout)
        return rc, time.monotonic() - t0


class ServiceMixin:
    """Builds SvcDaemons that DaemonTest stops, checks and removes."""

    def daemon(self, start=True, **opts):
        d = SvcDaemon(**opts)
        self.addCleanup(self._finish, d)
        if start:
            d.start()
        return d

    def notify_socket(self, d):
        n = Notify(os.path.join(d.dir, "notify.sock"))
        self.addCleanup(n.close)
        return n

    def queue_one(self, d, port=None, subject="queued"):
        """Sends one message; returns its queue id."""
        with Client(port or d.port) as c:
            c.greet()
            r = c.send_message("s@client.test", ["r@x.test"],
                               message(subject))
        qid = r.queued_id()
        self.assertIsNotNone(qid, r)
        return qid

    def greeting(self, port):
        with Client(port) as c:
            r = c.expect("220 ")
            c.cmd("QUIT", "221")
        return r.first


# --------------------------------------------------------------------

class UnitFiles(unittest.TestCase):
    """The unit files as systemd reads them (offline: no PID 1 needed)."""

    def setUp(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze not installed")
        self.tmp = tempfile.mkdtemp(prefix="itest-units-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        with open(os.path.join(UNIT_DIR, "smartrelay.service.in")) as f:
            unit = f.read()
        self.assertIn("@sbindir@", unit)
        # verify checks that ExecStart= exists: point it at the binary
        # under test.
        unit = unit.replace("@sbindir@", os.path.dirname(
            os.path.abspath(SMARTRELAYD))).replace("@sysconfdir@", "/etc")
        self.service = os.path.join(self.tmp, "smartrelay.service")
        with open(self.service, "w") as f:
            f.write(unit)
        self.socket = os.path.join(self.tmp, "smartrelay.socket")
        shutil.copy(os.path.join(UNIT_DIR, "smartrelay.socket"),
                    self.socket)

    def analyze(self, *args):
        p = subprocess.run(["systemd-analyze"] + list(args),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=TIMEOUT)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def test_verify_clean(self):
        rc, out = self.analyze("verify", "--man=no", self.service,
                               self.socket)
        self.assertEqual((rc, out), (0, ""))

    def test_security_exposure_below_2(self):
        # --threshold is on the 0-100 scale shown as 0.0-10.0.
        rc, out = self.analyze("security", "--offline=yes",
                               "--threshold=20", self.service)
        m = re.search(r"Overall exposure level for smartrelay\.service: "
                      r"(\d+\.\d+) (\S+)", out)
        self.assertIsNotNone(m, out)
        self.assertEqual(rc, 0, out)
        self.assertLess(float(m.group(1)), 2.0, out)
        self.assertEqual(m.group(2), "OK")
        print("\n  systemd-analyze security: %s %s"
              % (m.group(1), m.group(2)))

    def test_socket_listens_on_loopback_25(self):
        with open(self.socket) as f:
            text = f.read()
        self.assertEqual(re.findall(r"^ListenStream=(.*)$", text, re.M),
                         ["127.0.0.1:25", "[::1]:25"])


class Notification(ServiceMixin, DaemonTest):
    """sd_notify(3) as systemd would receive it."""

    def test_ready_status_stopping(self):
        d = self.daemon(start=False)
        n = self.notify_socket(d)
        d.start(env={"NOTIFY_SOCKET": n.path}, wait=False)
        ready = n.wait(lambda m: "READY" in m, what="READY=1")
        # The log line is written before READY=1 is sent.
        self.assertIn("smartrelayd ready", d.log())
        self.assertEqual(ready["READY"], "1")
        self.assertRegex(ready.get("STATUS", ""),
                         r"\bqueue=0\b.*\bupstream=\S+")
        d.wait_ready()

        qid = self.queue_one(d)
        st = n.wait(lambda m: re.search(r"\bqueue=1\b", m.get("STATUS",
                                        "")), what="STATUS with queue=1")
        self.assertRegex(st["STATUS"], r"\bupstream=\S+")
        self.assertEqual(d.queued_ids(), [qid])

        d.proc.send_signal(signal.SIGTERM)
        n.wait(lambda m: m.get("STOPPING") == "1", what="STOPPING=1")
        rc, _ = d.wait_exit()
        self.assertEqual(rc, 0)
        # No WatchdogSec= (no WATCHDOG_USEC): no keep-alives at all.
        self.assertEqual([m for m in n.msgs if "WATCHDOG" in m], [])
        self.assertEqual(sum("READY" in m for m in n.msgs), 1)

    def test_abstract_socket_and_reload_time(self):
        """NOTIFY_SOCKET in the abstract namespace ("@..."), and
        RELOADING=1 with MONOTONIC_USEC= (Type=notify-reload)."""
        d = self.daemon(start=False)
        n = Notify("@smartrelay-test-%d-%d" % (os.getpid(), id(d)))
        self.addCleanup(n.close)
        d.start(env={"NOTIFY_SOCKET": n.path})
        n.wait(lambda m: m.get("READY") == "1", what="READY=1")
        before = time.clock_gettime(time.CLOCK_MONOTONIC)
        d.proc.send_signal(signal.SIGHUP)
        r = n.wait(lambda m: m.get("RELOADING") == "1", what="RELOADING=1")
        after = time.clock_gettime(time.CLOCK_MONOTONIC)
        usec = int(r["MONOTONIC_USEC"])
        self.assertGreaterEqual(usec, int(before * 1e6) - 1)
        self.assertLessEqual(usec, int(after * 1e6) + 1)
        n.wait(lambda m: m.get("READY") == "1", what="READY=1 again")

    def test_no_libsystemd(self):
        """The protocols are spoken directly: the daemon links no
        libsystemd (nor what it drags in)."""
        p = subprocess.run(["ldd", SMARTRELAYD], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stdout)
        for lib in ("libsystemd", "libgcrypt", "liblzma", "libzstd",
                    "liblz4", "libcap"):
            self.assertNotIn(lib, p.stdout)

    def test_watchdog_keepalives(self):
        d = self.daemon(start=False)
        n = self.notify_socket(d)
        # sd_watchdog_enabled() wants WATCHDOG_PID to be the daemon's
        # own pid: set it in a shell that then execs the daemon.
        d.start(env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "400000"},
                wrap=lambda argv: ["/bin/sh", "-c",
                                   'WATCHDOG_PID=$$; export WATCHDOG_PID; '
                                   'exec "$@"', "sh"] + argv, wait=False)
        n.wait(lambda m: "READY" in m, what="READY=1")
        got = [m for m in n.collect(2.0) if m.get("WATCHDOG") == "1"]
        self.assertGreaterEqual(len(got), 2, n.msgs)
        d.wait_ready()
        self.assertIn("service watchdog interval=200ms", d.log())

    def test_watchdog_pid_of_another_process(self):
        d = self.daemon(start=False)
        n = self.notify_socket(d)
        # The watchdog is meant for another process: send nothing.
        d.start(env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "400000",
                     "WATCHDOG_PID": "1"}, wait=False)
        n.wait(lambda m: "READY" in m, what="READY=1")
        self.assertEqual([m for m in n.collect(1.0) if "WATCHDOG" in m],
                         [])

    def test_reload_reports_ready_again(self):
        # sd_notify(3): a service that sends RELOADING=1 must send
        # READY=1 once done, or systemctl reload waits until timeout.
        d = self.daemon(start=False)
        n = self.notify_socket(d)
        d.start(env={"NOTIFY_SOCKET": n.path})
        n.wait(lambda m: "READY" in m, what="READY=1")
        for conf in ("good", "bad"):
            with self.subTest(conf=conf):
                if conf == "bad":
                    write_raw_conf(d, "listen = {\n")
                mark = d.mark()
                d.proc.send_signal(signal.SIGHUP)
                n.wait(lambda m: m.get("RELOADING") == "1",
                       what="RELOADING=1")
                n.wait(lambda m: m.get("READY") == "1",
                       what="READY=1 after the reload")
                d.wait_log(r"smartrelayd (reloaded|reload refused)",
                           since=mark)


class ReloadUnderLoad(ServiceMixin, itest_relay.RelayTest):
    """SIGHUP any number of times while mail flows: the old
    configuration and TLS contexts are freed when the last session or
    relay using them ends, so memory stays flat and no reload is ever
    refused for being one too many."""

    RELOADS = 1000

    def test_thousand_reloads_under_load(self):
        up = self.upstream()
        d = self.relay(up, start=False)
        n = self.notify_socket(d)
        d.start(env={"NOTIFY_SOCKET": n.path})
        n.wait(lambda m: m.get("READY") == "1", what="READY=1")
        stop = threading.Event()
        sent, errors = [], []

        def load():
            while not stop.is_set():
                try:
                    sent.append(self.send(d, "s@client.test", ["r@x.test"],
                                          itest_relay.simple(
                                              "reload-%d" % len(sent))))
                except Exception as e:  # reported below
                    errors.append(e)
                    return

        t = threading.Thread(target=load)
        t.start()
        rss = {}
        t0 = time.monotonic()
        try:
            for i in range(1, self.RELOADS + 1):
                d.proc.send_signal(signal.SIGHUP)
                # One reload at a time: READY=1 ends each (sd_notify).
                n.wait(lambda m: m.get("READY") == "1",
                       what="READY=1 after reload %d" % i)
                if i in (100, self.RELOADS):
                    rss[i] = d.status_kb("VmRSS")
        finally:
            stop.set()
            t.join(TIMEOUT)
        took = time.monotonic() - t0
        self.assertEqual(errors, [])
        log = d.log()
        self.assertEqual(log.count("smartrelayd reloaded"), self.RELOADS)
        self.assertNotIn("reload refused", log)
        print("\n  %d reloads in %.1f s with %d messages sent meanwhile; "
              "VmRSS %d kB after 100, %d kB after %d"
              % (self.RELOADS, took, len(sent), rss[100],
                 rss[self.RELOADS], self.RELOADS))
        self.assertGreater(len(sent), 0)
        self.wait_empty(d)
        self.assertEqual(len(up.messages()), len(sent))
        if not d.is_sanitized():
            # 900 retained configurations and CA stores would be
            # megabytes; allow allocator noise only.
            self.assertLess(rss[self.RELOADS] - rss[100], 1024)


class SocketActivation(ServiceMixin, DaemonTest):
    """The sockets come from systemd; "listen" is not used."""

    def setUp(self):
        self.tool = shutil.which("systemd-socket-activate")
        if self.tool is None:
            self.skipTest("systemd-socket-activate not installed")

    def start_activated(self, d, hosts):
        """Starts <d> under systemd-socket-activate listening on a free
        port of each of <hosts>, and activates it with a first client
        (the tool execs the daemon at the first connection); returns
        ({host: port}, that client, greeted).  Retries when a port was
        taken between the probe and the bind."""
        for _ in range(5):
            ports = {h: free_port(h) for h in hosts}
            args = [self.tool]
            for h, p in ports.items():
                args += ["-l", ("[%s]:%d" if ":" in h else "%s:%d")
                         % (h, p)]
            d.start(wrap=lambda argv: args + argv, wait=False)
            wait_for(lambda: d.proc.poll() is not None or
                     d.log().count("Listening on ") == len(hosts),
                     what="systemd-socket-activate listening")
            if d.proc.poll() is None:
                break
            d.expected_exit = True
            if "Address already in use" not in d.log():
                self.fail("systemd-socket-activate failed:\n" + d.log())
        else:
            self.fail("no free port for systemd-socket-activate")
        first = self.client(d, port=ports["127.0.0.1"])
        first.greet()
        d.wait_ready()
        return ports, first

    def test_serves_passed_sockets_not_listen(self):
        cfg_port = free_port()
        d = self.daemon(start=False, listen=["127.0.0.1:%d" % cfg_port])
        hosts = ["127.0.0.1"] + (["::1"] if have_ipv6_loopback() else [])
        ports, first = self.start_activated(d, hosts)
        r = first.send_message("s@client.test", ["r@x.test"],
                               message("first, the activating client"))
        self.assertIsNotNone(r.queued_id())
        lines = re.findall(r"listener listening addr=(\S+):(\d+)"
                           r" \(socket activation\)", d.log())
        self.assertEqual(len(lines), len(hosts), d.log())
        self.assertIn("using %d socket(s) from systemd" % len(hosts),
                      d.log())
        self.assertEqual(sorted(d.ports), sorted(ports.values()))
        for h, p in ports.items():
            with Client(p, host=h) as c:
                c.greet()
                r = c.send_message("s@client.test", ["r@x.test"],
                                   message("activated " + h))
            self.assertIsNotNone(r.queued_id())
        self.assertEqual(len(d.queued_ids()), len(hosts) + 1)
        self.assertFalse(port_open(cfg_port), "the listen port is bound")

        # A reload keeps the passed sockets whatever "listen" says now.
        new_port = free_port()
        write_conf(d, listen=["127.0.0.1:%d" % new_port],
                   hostname="after.test")
        mark = d.mark()
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(r"smartrelayd reloaded", since=mark)
        self.assertIn("after.test", self.greeting(ports["127.0.0.1"]))
        self.assertFalse(port_open(new_port))


class Reload(ServiceMixin, DaemonTest):
    """SIGHUP: a good file takes effect, a bad one is refused, the queue
    is untouched either way."""

    def test_good_config_takes_effect(self):
        d = self.daemon(max_recipients=10)
        old_port = d.port
        qid = self.queue_one(d, subject="before reload")
        before = snapshot(d)
        early = self.client(d)          # opened before the reload
        early.greet()

        new_port = free_port()
        write_conf(d, hostname="reloaded.test", max_recipients=2,
                   listen=["127.0.0.1:%d" % new_port])
        mark = d.mark()
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(r"smartrelayd reloaded", since=mark)

        self.assertFalse(port_open(old_port), "the old port still listens")
        c = self.client(d, port=new_port)
        r = c.expect("220 ")
        self.assertIn("reloaded.test", r.first)
        c.cmd("EHLO client.example", "250")
        c.cmd("MAIL FROM:<s@client.test>", "250")
        c.cmd("RCPT TO:<a@x.test>", "250")
        c.cmd("RCPT TO:<b@x.test>", "250")
        c.cmd("RCPT TO:<c@x.test>", "452 4.5.3")
        c.cmd("DATA", "354")
        c.send(message("after reload") + b".\r\n")
        new_id = c.expect("250 2.0.0").queued_id()
        self.assertIn(b"by reloaded.test (smartrelay)", d.data(new_id))

        # A session from before the reload goes on working.
        r = early.send_message("s@client.test", ["r@x.test"],
                               message("early session"))
        self.assertIsNotNone(r.queued_id())

        self.assertEqual(len(d.queued_ids()), 3)
        after = snapshot(d)
        for name, data in before.items():
            self.assertEqual(after.get(name), data, name)
        self.assertIn(qid, d.queued_ids())

    def test_bad_config_refused(self):
        d = self.daemon()
        port = d.port
        self.queue_one(d, subject="before")
        before = snapshot(d)
        good = dict(d.opts)

        # A syntax error.
        write_raw_conf(d, harness.conf_text(dict(good, hostname="bad.test"))
                       + "max_recipients = {\n")
        mark = d.mark()
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(r"smartrelayd reload refused", since=mark)
        self.assertIn(HOSTNAME, self.greeting(port))
        self.assertNotIn("reloaded", d.log(since=mark))

        # Addresses that cannot be bound: another socket holds the port.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            write_conf(d, hostname="bad.test",
                       listen=["127.0.0.1:%d" % taken.getsockname()[1]])
            mark = d.mark()
            d.proc.send_signal(signal.SIGHUP)
            d.wait_log(r"smartrelayd reload refused", since=mark)
        self.assertIn(HOSTNAME, self.greeting(port))

        self.queue_one(d, port=port, subject="after")
        after = snapshot(d)
        self.assertEqual(len(after), len(before) + 2)
        for name, data in before.items():
            self.assertEqual(after.get(name), data, name)
        d.proc.send_signal(signal.SIGTERM)
        rc, _ = d.wait_exit()
        self.assertEqual(rc, 0)


class Stop(ServiceMixin, DaemonTest):
    """SIGTERM: a bounded, clean stop that loses nothing committed."""

    def test_sigterm_during_data(self):
        d = self.daemon()
        qid = self.queue_one(d, subject="committed")
        before = snapshot(d)
        idle = self.client(d)
        idle.greet()
        c = self.client(d)
        c.greet()
        c.cmd("MAIL FROM:<s@client.test>", "250")
        c.cmd("RCPT TO:<r@x.test>", "250")
        c.cmd("DATA", "354")
        # More than the spool's 64 KiB buffer: part of it reaches tmp/.
        c.send(b"Subject: half\r\n\r\n" + b"line of a message\r\n" * 8000)

        def partial():
            return [n for n in d.listdir("tmp")
                    if os.path.getsize(d.path("tmp", n)) > 0]
        wait_for(partial, what="the partial message in tmp/")

        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        for cl in (c, idle):
            r = cl.reply()
            self.assertTrue(r is None or r.first.startswith("421"), r)
        rc, _ = d.wait_exit(timeout=TIMEOUT)
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0)
        self.assertLessEqual(elapsed, STOP_BOUND)
        self.assertEqual(snapshot(d), before)
        self.assertEqual(d.queued_ids(), [qid])
        self.assertEqual(d.listdir("tmp"), [])

        d.start()               # the queue comes back as it was
        self.assertEqual(d.queued_ids(), [qid])
        self.assertEqual(snapshot(d), before)


class StopWhileRelaying(ServiceMixin, itest_relay.RelayTest):
    """SIGTERM while the upstream holds the answer to our DATA."""

    def test_sigterm_while_upstream_holds_data(self):
        up = self.upstream()
        up.set_rules([{"cmd": "DATA", "action": "delay", "seconds": 30}])
        d = self.relay(up)
        qid = self.send(d, "s@client.test", ["r@x.test"],
                        message("held upstream"))
        before = snapshot(d)
        up.wait_event(lambda e: e["ev"] == "rule" and e["cmd"] == "DATA",
                      what="the upstream holding DATA")

        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        rc, _ = d.wait_exit(timeout=TIMEOUT)
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0)
        self.assertLessEqual(elapsed, STOP_BOUND)
        self.assertEqual(d.queued_ids(), [qid])
        self.assertEqual(d.data(qid), before[qid + ".msg"])
        self.assertEqual(self.by_id(up, qid), [])
        print("\n  SIGTERM with the upstream holding DATA: exit after "
              "%.1fs" % elapsed)

        up.clear_rules()
        d.start()
        self.wait_delivery(d, qid, "r@x.test", "sent")
        self.wait_empty(d)
        self.assertEqual(len(self.by_id(up, qid)), 1)


class Credential(ServiceMixin, itest_relay.RelayTest):
    """The password as a systemd credential (LoadCredential=)."""

    def test_password_from_credentials_directory(self):
        # systemd writes /run/credentials/UNIT/ID mode 0400, owned by
        # the service's user, in a directory of mode 0500.
        creds = os.path.join(self.tmp, "credentials", "smartrelay.service")
        os.makedirs(creds)
        path = os.path.join(creds, "password")
        with open(path, "w") as f:
            f.write(itest_relay.PASSWORD + "\n")
        os.chmod(path, 0o400)
        os.chmod(creds, 0o500)
        self.addCleanup(os.chmod, creds, 0o700)
        up = self.upstream()
        d = self.relay(up, password=None, start=False)
        d.opts["upstream"]["password_file"] = path
        write_conf(d)
        d.start()
        self.assertNotIn("refusing", d.log())
        qid = self.send(d, "s@client.test", ["r@x.test"],
                        message("credential"))
        self.wait_delivery(d, qid, "r@x.test", "sent")
        got = self.by_id(up, qid)
        self.assertEqual([m.auth_user for m in got], [itest_relay.USER])


class Exclusive(ServiceMixin, DaemonTest):
    """One daemon per spool."""

    def test_second_daemon_refuses_locked_spool(self):
        a = self.daemon()
        # A's message in progress: B must not clean it out of tmp/.
        c = self.client(a)
        c.greet()
        c.cmd("MAIL FROM:<s@client.test>", "250")
        c.cmd("RCPT TO:<r@x.test>", "250")
        c.cmd("DATA", "354")
        c.send(b"Subject: in progress\r\n\r\nfirst half\r\n")

        b = self.daemon(start=False, spool=a.spool)
        b.start(wait=False)
        rc, _ = b.wait_exit()
        self.assertNotEqual(rc, 0)
        self.assertRegex(b.log(), r"(?i)lock")
        self.assertNotIn("smartrelayd ready", b.log())

        c.send(b"second half\r\n.\r\n")
        qid = c.expect("250 2.0.0").queued_id()
        self.assertEqual(a.queued_ids(), [qid])
        self.assertIn(b"first half\r\nsecond half\r\n", a.data(qid))


class Privileges(ServiceMixin, DaemonTest):
    """Started as root: bind, then become the configured user."""

    def test_root_binds_then_drops_to_user(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")
        try:
            pw = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no user nobody")
        port = next((p for p in range(1000, 600, -1)
                     if self._bindable(p)), None)
        if port is None:
            self.skipTest("no free port below 1024")
        d = self.daemon(start=False, user="nobody",
                        listen=["127.0.0.1:%d" % port])
        # nobody must reach its spool (the daemon chowns the spool
        # directory itself) and the control socket's directory.
        os.chmod(d.dir, 0o755)
        run = os.path.join(d.dir, "run")
        os.mkdir(run, 0o755)
        os.chown(run, pw.pw_uid, pw.pw_gid)
        write_conf(d, control_socket=os.path.join(run, "control.sock"))
        d.start()
        self.assertEqual(d.ports, [port])
        self.assertIn("running as user=nobody", d.log())

        status = {}
        with open("/proc/%d/status" % d.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                status[k] = v.split()
        self.assertEqual(status["Uid"], [str(pw.pw_uid)] * 4)
        self.assertEqual(status["Gid"], [str(pw.pw_gid)] * 4)
        self.assertEqual(status["Groups"], [str(pw.pw_gid)])
        self.assertEqual(int(status["CapEff"][0], 16), 0)
        self.assertEqual(int(status["CapPrm"][0], 16), 0)

        qid = self.queue_one(d, subject="as nobody")
        for p in (d.spool, d.path("queue", qid + ".msg")):
            self.assertEqual(os.stat(p).st_uid, pw.pw_uid, p)

    @staticmethod
    def _bindable(port):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
        return True


if __name__ == "__main__":
    unittest.main(verbosity=2)
