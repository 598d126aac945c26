"""Integration test harness for smartrelayd.

Runs the real daemon (path in $SMARTRELAYD) on a private temporary
directory holding its config, spool and log, talks to it over real
sockets, and inspects the spool.  Standard library only: the tests run
under automake as "/usr/bin/python3 tests/itest_X.py".

Rules the tests follow: no sleep as synchronisation.  Every wait is a
poll of a condition with a bounded timeout (wait_for), and timeouts are
generous (a loaded 2-core CI machine) while passing tests finish fast.

Environment: SMARTRELAYD (daemon binary), TESTS_SRCDIR (tests/),
KEEP_TMP (set: keep the temporary directories for a post-mortem),
ITEST_SKIP_PREREQ=1 (do not run tests/prereq.sh first).

Importing this module runs tests/prereq.sh: while a program or module
the tests use is missing, the test is skipped (exit 77) with the name
of the Debian package to install, and prereq.sh, the first entry of
"make check", is the one test that fails.
"""

import email.utils
import hashlib
import json
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

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("TESTS_SRCDIR") or HERE
SMARTRELAYD = os.environ.get("SMARTRELAYD") or os.path.join(
    HERE, "..", "src", "smartrelayd")

# Generous bounds for a loaded CI machine; polls return as soon as the
# condition holds, so they cost nothing when things work.
TIMEOUT = float(os.environ.get("ITEST_TIMEOUT", "30"))
POLL = 0.01

HOSTNAME = "relay.test"
ID_RE = re.compile(r"^[0-9a-f]{16}$")
QUEUED_RE = re.compile(rb"^250 2\.0\.0 Ok: queued as ([0-9a-f]{16})\s*$")
# Text the sanitizers print when they find something.
SANITIZER_RE = re.compile(
    r"runtime error:|AddressSanitizer|LeakSanitizer|ThreadSanitizer|"
    r"UndefinedBehaviorSanitizer")


def require_prerequisites():
    """Exits 77 (SKIP), saying why, when tests/prereq.sh finds that a
    program or module the tests use is missing."""
    if os.environ.get("ITEST_SKIP_PREREQ") == "1":
        return
    script = os.path.join(SRCDIR, "prereq.sh")
    p = subprocess.run(["/bin/sh", script, "-q"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=dict(os.environ, PYTHON3=sys.executable),
                       timeout=TIMEOUT * 2)
    if p.returncode != 0:
        sys.stdout.write(p.stdout.decode("utf-8", "replace"))
        sys.stdout.write("SKIP: a prerequisite is missing (see above; "
                         "tests/prereq.sh fails for it)\n")
        sys.stdout.flush()
        sys.exit(77)


require_prerequisites()


class Timeout(AssertionError):
    """A bounded wait ran out."""


def wait_for(pred, timeout=TIMEOUT, what="condition"):
    """Polls pred() until it returns a true value, which is returned.
    Raises Timeout (an AssertionError: a test failure) naming <what>."""
    deadline = time.monotonic() + timeout
    delay = POLL
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Timeout("timed out after %.0fs waiting for %s"
                          % (timeout, what))
        time.sleep(delay)       # poll interval, not synchronisation
        delay = min(delay * 1.5, 0.1)


# --------------------------------------------------------------------
# Config file

def conf_value(v):
    """One libconfuse value: str quoted, bool, int, list as {..}."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(conf_value(x) for x in v) + "}"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + s + '"'


def conf_text(opts):
    """Config text from a dict; None values are left out, dict values
    become sections."""
    out = []
    for k, v in opts.items():
        if v is None:
            continue
        if isinstance(v, dict) or (isinstance(v, list) and v and
                                   isinstance(v[0], dict)):
            # A list of dicts is a repeated section (upstream failover).
            for sec in (v if isinstance(v, list) else [v]):
                out.append("%s {" % k)
                for k2, v2 in sec.items():
                    if v2 is not None:
                        out.append("\t%s = %s" % (k2, conf_value(v2)))
                out.append("}")
        else:
            out.append("%s = %s" % (k, conf_value(v)))
    return "\n".join(out) + "\n"


def run_check(conf_path, timeout=TIMEOUT):
    """Runs "smartrelayd -n -f conf_path"; returns (rc, stderr text)."""
    p = subprocess.run([SMARTRELAYD, "-n", "-f", conf_path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace") + \
        p.stderr.decode("utf-8", "replace")


# --------------------------------------------------------------------
# Envelopes and data files

def xtext_decode(s):
    """RFC 3461 xtext: "+XX" is a byte in hex."""
    b = bytearray()
    i = 0
    raw = s.encode("latin-1")
    while i < len(raw):
        if raw[i:i + 1] == b"+":
            b.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            b.append(raw[i])
            i += 1
    return b.decode("utf-8", "surrogateescape")


def parse_envelope(text):
    """Parses an envelope; returns a dict (keys as in the file, rcpt a
    list of dicts state/dsn/addr/reply, sender "" for <>).  Raises
    ValueError if it is not complete and well formed."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    else:
        raise ValueError("envelope does not end with a newline")
    if not lines or lines[0] != "smartrelay-envelope 1":
        raise ValueError("bad envelope header")
    if lines[-1] != "end":
        raise ValueError("envelope has no end line")
    env = {"rcpt": []}
    for line in lines[1:-1]:
        key, _, val = line.partition(" ")
        if key == "rcpt":
            parts = val.split(" ", 3)
            if len(parts) < 3:
                raise ValueError("bad rcpt line %r" % line)
            env["rcpt"].append({
                "state": parts[0], "dsn": parts[1],
                "addr": xtext_decode(parts[2]),
                "reply": parts[3] if len(parts) > 3 else None})
            continue
        if key in env:
            raise ValueError("repeated key %r" % key)
        if key in ("arrival", "size", "attempts", "next", "held", "reencode"):
            env[key] = int(val)
        elif key == "sender":
            env[key] = "" if val == "<>" else xtext_decode(val)
        elif key in ("client", "helo"):
            env[key] = xtext_decode(val)
        else:
            env[key] = val
    for k in ("id", "arrival", "size", "client", "helo", "sender",
              "attempts", "next", "held"):
        if k not in env:
            raise ValueError("envelope lacks %r" % k)
    if not env["rcpt"]:
        raise ValueError("envelope has no rcpt")
    return env


RECEIVED_RE = re.compile(
    rb"^Received: from (?P<helo>\S+) \(\[(?P<ip>[^\]]+)\]\)\r\n"
    rb"\tby (?P<host>\S+) \(smartrelay\) with ESMTP id (?P<id>[0-9a-f]{16})"
    rb"(?:\r\n\tfor <(?P<rcpt>[^>]*)>)?;(?: |\r\n\t)(?P<date>[^\r\n]+)\r\n")


def split_received(data):
    """Splits a data file into (match of the Received: header the daemon
    added, the rest).  Raises AssertionError if it does not start so."""
    m = RECEIVED_RE.match(data)
    if m is None:
        raise AssertionError("data file does not start with our "
                             "Received: header: %r" % data[:300])
    return m, data[m.end():]


def canonical(body):
    """The reference model of what the spool must hold for <body> sent
    after DATA (up to, not including, the final CRLF.CRLF): lines end at
    LF (a CR before it belongs to the terminator), one leading dot is
    removed from every line, and every line is stored with CRLF."""
    if not body:
        return b""
    lines = body.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    out = []
    for ln in lines:
        if ln.endswith(b"\r"):
            ln = ln[:-1]
        if ln.startswith(b"."):
            ln = ln[1:]
        out.append(ln + b"\r\n")
    return b"".join(out)


def sha256(b):
    return hashlib.sha256(b).hexdigest()


# The fields the daemon adds, at acceptance, to a header section that
# lacks them (issue 13, item 3): stamp.c's formats.
STAMP_DATE_RE = (rb"Date: (?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
                 rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                 rb"\d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n")
STAMP_MSGID_RE = rb"Message-ID: <\d{14}\.[0-9a-f]{16}@%s>\r\n"
FIELD_RE = re.compile(rb"([\x21-\x39\x3b-\x7e]+):")


def header_end(msg):
    """(offset where the header section of <msg> ends, has Date:, has
    Message-ID:), as stamp.c scans it: at the empty line, or at the
    first line that is neither a field nor a continuation of one."""
    pos, in_field, date, msgid = 0, False, False, False
    while pos < len(msg):
        eol = msg.find(b"\n", pos)
        end = len(msg) if eol == -1 else eol + 1
        line = msg[pos:end].rstrip(b"\r\n")
        if line[:1] in (b" ", b"\t") and in_field:
            pos = end
            continue
        m = FIELD_RE.match(line)
        if not line or m is None:
            break
        in_field = True
        name = m.group(1).lower()
        date = date or name == b"date"
        msgid = msgid or name == b"message-id"
        pos = end
    return pos, date, msgid


def unstamp(stored, want, domain=HOSTNAME, tail=False):
    """Checks that <stored> (a spool copy or what the upstream got, after
    our Received: header; with <tail>, anything ending so) is <want>
    plus the Date: and Message-ID: fields the daemon adds where <want>'s
    header section ends, when it lacks them.  Returns (<stored> without
    them, the added Message-ID or None).  Raises AssertionError."""
    pos, date, msgid = header_end(want)
    pre, post = want[:pos], want[pos:]
    added = b"" if date else STAMP_DATE_RE
    if not msgid:
        added += b"(" + STAMP_MSGID_RE % re.escape(domain.encode()) + b")"
    head = stored[:len(stored) - len(post)]
    m = re.search(b"(" + added + b")\\Z", head) \
        if stored.endswith(post) else None
    if m is None or not (head[:m.start(1)].endswith(pre) if tail
                         else head[:m.start(1)] == pre):
        raise AssertionError("not the message plus the added Date:/"
                             "Message-ID:\n  stored %r\n  want   %r"
                             % (stored[:600], want[:600]))
    msg_id = None
    if not msgid:
        msg_id = re.search(rb"<[^>]+>", m.group(2)).group(0).decode()
    return head[:m.start(1)] + post, msg_id


def strip_stamp(data, domain=HOSTNAME):
    """<data> without the Date: and Message-ID: lines of the daemon's
    formats in its header section (for messages known to have had
    none, whatever else changed their header on the way)."""
    pos, _, _ = header_end(data)
    head = re.sub(b"(?m)^(?:" + STAMP_DATE_RE + b"|" +
                  STAMP_MSGID_RE % re.escape(domain.encode()) + b")",
                  b"", data[:pos])
    return head + data[pos:]


# --------------------------------------------------------------------
# A raw SMTP client: exact bytes out, replies parsed in order.

class Reply:
    def __init__(self, lines):
        self.lines = lines              # bytes, without CRLF
        self.code = int(lines[-1][:3])
        self.text = b"\n".join(lines)

    @property
    def first(self):
        return self.lines[0].decode("utf-8", "replace")

    def __repr__(self):
        return "Reply(%r)" % (self.text,)

    def status(self):
        """"250 2.1.0" style: code and enhanced code of the first line."""
        return " ".join(self.first.split(" ")[:2])

    def queued_id(self):
        m = QUEUED_RE.match(self.lines[-1])
        return m.group(1).decode() if m else None


class Client:
    """One SMTP connection.  All reads are bounded by <timeout>."""

    def __init__(self, port, host="127.0.0.1", source=None,
                 timeout=TIMEOUT):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""
        self.eof = False
        self.reset = False      # the connection ended with an RST
        self.timeout = timeout

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise Timeout("no reply from the daemon in time; got %r"
                          % self.buf[-300:])
        except ConnectionResetError:
            # An RST: the kernel drops whatever we had not read yet.
            self.reset = True
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def read_line(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n" not in self.buf:
            if self.eof:
                return None
            self._fill(deadline)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def reply(self, timeout=None):
        """Reads one (possibly multi-line) reply; None at EOF."""
        lines = []
        while True:
            line = self.read_line(timeout)
            if line is None:
                if lines:
                    raise AssertionError("EOF inside a reply %r" % lines)
                return None
            if len(line) < 3 or not line[:3].isdigit():
                raise AssertionError("malformed reply line %r" % line)
            lines.append(line)
            if len(line) == 3 or line[3:4] == b" ":
                return Reply(lines)
            if line[3:4] != b"-":
                raise AssertionError("malformed reply line %r" % line)

    def expect(self, status, timeout=None):
        """Reads a reply and asserts its first line starts with
        <status> ("250", "250 2.1.0", ...).  Returns it."""
        r = self.reply(timeout)
        if r is None:
            raise AssertionError("EOF where %r was expected" % status)
        if not r.first.startswith(status):
            raise AssertionError("expected %r, got %r" % (status, r.text))
        return r

    def cmd(self, line, status=None):
        """Sends one command (CRLF added) and returns the reply; with
        <status>, asserts it."""
        self.send(line.encode() + b"\r\n" if isinstance(line, str)
                  else line + b"\r\n")
        if status is not None:
            return self.expect(status)
        return self.reply()

    def expect_eof(self, timeout=None):
        """Asserts the server closes the connection with no more
        replies.  Returns the seconds it took."""
        t0 = time.monotonic()
        deadline = t0 + (timeout or self.timeout)
        while not self.eof:
            self._fill(deadline)
        if self.buf:
            raise AssertionError("unexpected data before EOF: %r"
                                 % self.buf)
        return time.monotonic() - t0

    def greet(self, helo="client.example", ehlo=True):
        self.expect("220 ")
        r = self.cmd(("EHLO " if ehlo else "HELO ") + helo, "250")
        return r

    def send_message(self, sender, rcpts, body, expect="250 2.0.0"):
        """MAIL, RCPT..., DATA, <body> + CRLF.CRLF (body sent as is,
        so it must end with CRLF).  Returns the final reply."""
        self.cmd("MAIL FROM:<%s>" % sender, "250 2.1.0")
        for r in rcpts:
            self.cmd("RCPT TO:<%s>" % r, "250 2.1.5")
        self.cmd("DATA", "354")
        self.send(body + b".\r\n")
        return self.expect(expect)


# --------------------------------------------------------------------
# The daemon

class Daemon:
    """One smartrelayd with a private config, spool and log.

    Options are config keys; None leaves a key out.  Defaults: hostname
    relay.test, listen 127.0.0.1:0, allow loopback, user "" (the current
    user), log to stderr at debug level."""

    def __init__(self, **opts):
        self.dir = tempfile.mkdtemp(prefix="smartrelay-itest-")
        self.spool = os.path.join(self.dir, "spool")
        self.conf_path = os.path.join(self.dir, "smartrelay.conf")
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.opts = {
            "hostname": HOSTNAME,
            "listen": ["127.0.0.1:0"],
            "allow": ["127.0.0.0/8", "::1/128"],
            "spool": self.spool,
            "user": "",
            "control_socket": os.path.join(self.dir, "control.sock"),
            "log": "stderr",
            "log_level": "debug",
            "upstream": {
                "host": "127.0.0.1", "port": 9,
                "username": "",
                "password_file": os.path.join(self.dir, "no-password"),
            },
        }
        self.opts.update(opts)
        with open(self.conf_path, "w") as f:
            f.write(conf_text(self.opts))
        self.proc = None
        self.ports = []
        self.addrs = []
        self.log_start = 0
        self.starts = 0
        self.expected_exit = True       # nothing running yet
        self.command_prefix = []        # e.g. strace and its options

    # -- life cycle

    def start(self, timeout=TIMEOUT):
        """Starts the daemon and waits for "smartrelayd ready".  Fills
        self.ports / self.addrs from this run's "listener listening"
        lines."""
        assert self.proc is None or self.proc.poll() is not None
        self.log_start = self.log_size()
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                self.command_prefix + [SMARTRELAYD, "-d", "-f",
                                       self.conf_path],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        self.starts += 1
        self.expected_exit = False

        def ready():
            if self.proc.poll() is not None:
                return True
            return "smartrelayd ready" in self.log()
        wait_for(ready, timeout, "smartrelayd ready")
        if self.proc.poll() is not None:
            self.expected_exit = True
            raise AssertionError("smartrelayd exited with %d at start:\n%s"
                                 % (self.proc.returncode, self.log()))
        self.addrs = re.findall(
            r"listener listening addr=(\S+):(\d+)", self.log())
        self.ports = [int(p) for _, p in self.addrs]
        if not self.ports:
            raise AssertionError("no listener line in the log:\n"
                                 + self.log())
        return self

    @property
    def port(self):
        return self.ports[0]

    def port_of(self, host):
        """The port of the listener on <host> ("127.0.0.1", "[::1]")."""
        for h, p in self.addrs:
            if h == host:
                return int(p)
        raise AssertionError("no listener on %s: %r" % (host, self.addrs))

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=TIMEOUT):
        """SIGTERM; waits for the exit and returns its status."""
        self.expected_exit = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
            raise AssertionError("smartrelayd did not exit %.0fs after "
                                 "SIGTERM" % timeout)

    def kill9(self, timeout=TIMEOUT):
        self.expected_exit = True
        self.proc.kill()
        return self.proc.wait(timeout)

    def restart(self, timeout=TIMEOUT):
        """Same config, same spool; new ports (listen port 0)."""
        if self.running():
            self.stop(timeout)
        return self.start(timeout)

    def cleanup(self, dump_log=False):
        """Kills a daemon still running, dumps the log if asked, and
        removes the temporary directory unless $KEEP_TMP is set."""
        if self.running():
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        if dump_log:
            sys.stderr.write("---- smartrelayd log %s ----\n%s"
                             "---- end of log ----\n"
                             % (self.log_path, self.log_tail()))
        if os.environ.get("KEEP_TMP"):
            sys.stderr.write("KEEP_TMP: kept %s\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- log

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log(self, since=None):
        """This run's log text (or from byte offset <since>)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_start if since is None else since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def full_log(self):
        return self.log(since=0)

    def log_tail(self, n=200):
        lines = self.full_log().splitlines(True)
        return "".join(lines[-n:])

    def mark(self):
        """An offset for log(since=)/wait_log(since=): only lines
        written after this call."""
        return self.log_size()

    def wait_log(self, regex, since=None, timeout=TIMEOUT):
        """Waits until <regex> matches this run's log (or the log after
        offset <since>); returns the match."""
        rx = re.compile(regex, re.M)

        def found():
            return rx.search(self.log(since))
        return wait_for(found, timeout, "log line /%s/" % regex)

    # -- control socket

    def control(self, verb, timeout=TIMEOUT):
        """One request on the control socket ("stats", "queue", ...);
        the answer, parsed."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        with s:
            s.connect(self.opts["control_socket"])
            s.sendall(verb.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return json.loads(out)
                out += chunk

    # -- spool

    def path(self, *parts):
        return os.path.join(self.spool, *parts)

    def listdir(self, sub):
        try:
            return sorted(os.listdir(self.path(sub)))
        except FileNotFoundError:
            return []

    def queued_ids(self):
        """Ids of committed messages (queue/<id>.env)."""
        return sorted(n[:-4] for n in self.listdir("queue")
                      if n.endswith(".env"))

    def envelope_text(self, qid):
        with open(self.path("queue", qid + ".env"), "r",
                  encoding="latin-1") as f:
            return f.read()

    def envelope(self, qid):
        return parse_envelope(self.envelope_text(qid))

    def data(self, qid):
        with open(self.path("queue", qid + ".msg"), "rb") as f:
            return f.read()

    # -- process

    def status_kb(self, field):
        """A "kB" field of /proc/PID/status (VmHWM, VmRSS)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise AssertionError("%s not in /proc/%d/status"
                             % (field, self.proc.pid))

    def vmhwm_kb(self):
        return self.status_kb("VmHWM")

    def is_sanitized(self):
        """True when the binary is built with a sanitizer (its memory
        figures are then not those of a production build)."""
        try:
            with open("/proc/%d/maps" % self.proc.pid) as f:
                maps = f.read()
        except OSError:
            maps = ""
        if re.search(r"lib(asan|ubsan|tsan)", maps):
            return True
        with open(SMARTRELAYD, "rb") as f:
            exe = f.read()
        return b"__asan_init" in exe or b"__ubsan_handle" in exe


class DaemonTest(unittest.TestCase):
    """Base class: self.daemon(**opts) starts a daemon that is stopped
    and removed after the test.  At the end of every test the daemon
    must still be running (no crash), exit 0 on SIGTERM, and its log must
    hold no sanitizer report; the log is printed when a test fails."""

    def daemon(self, start=True, **opts):
        d = Daemon(**opts)
        self.addCleanup(self._finish, d)
        if start:
            d.start()
        return d

    def _failed(self):
        """True once this test (or one of its subtests) has failed."""
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return True
        for test, _ in result.failures + result.errors:
            if test is self or getattr(test, "test_case", None) is self:
                return True
        return False

    def _finish(self, d):
        problems = []
        try:
            if d.proc is not None:
                if d.proc.poll() is not None and not d.expected_exit:
                    problems.append("smartrelayd died during the test "
                                    "(status %d)" % d.proc.returncode)
                elif d.running():
                    rc = d.stop()
                    if rc != 0:
                        problems.append("smartrelayd exited %d on SIGTERM"
                                        % rc)
            m = SANITIZER_RE.search(d.full_log())
            if m:
                problems.append("sanitizer report in the daemon log")
        finally:
            d.cleanup(dump_log=bool(problems) or self._failed())
        if problems:
            self.fail("; ".join(problems))

    # -- shared assertions

    def client(self, d, port=None, **kw):
        c = Client(port or d.port, **kw)
        self.addCleanup(c.close)
        return c

    def assertQueued(self, d, qid, sender, rcpts, body, helo="client.example",
                     client_ip="127.0.0.1", stored=None):
        """Asserts message <qid> is committed with exactly this envelope
        and a data file that is our Received: header followed by
        canonical(body) (or <stored>).  Returns (env, data)."""
        self.assertIn(qid, d.queued_ids())
        env = d.envelope(qid)
        data = d.data(qid)
        self.assertEqual(env["id"], qid)
        self.assertEqual(env["sender"], sender)
        self.assertEqual([r["addr"] for r in env["rcpt"]], list(rcpts))
        self.assertTrue(all(r["state"] == "pending" and r["dsn"] == "-"
                            for r in env["rcpt"]), env["rcpt"])
        self.assertEqual(env["client"], client_ip)
        self.assertEqual(env["helo"], helo)
        self.assertEqual(env["size"], len(data))
        self.assertEqual(env["attempts"], 0)
        self.assertEqual(env["held"], 0)
        self.assertLessEqual(abs(env["arrival"] - time.time()), 3600)
        m, rest = split_received(data)
        self.assertEqual(m.group("helo").decode(), helo)
        self.assertEqual(m.group("ip").decode(), client_ip)
        self.assertEqual(m.group("host").decode(), HOSTNAME)
        self.assertEqual(m.group("id").decode(), qid)
        if len(rcpts) == 1:
            self.assertEqual(m.group("rcpt"), rcpts[0].encode())
        else:
            self.assertIsNone(m.group("rcpt"))
        date = email.utils.parsedate_to_datetime(m.group("date").decode())
        self.assertIsNotNone(date.tzinfo)
        self.assertLessEqual(abs(date.timestamp() - time.time()), 3600)
        want = canonical(body) if stored is None else stored
        rest, _ = unstamp(rest, want)
        if len(want) > 4096:
            self.assertEqual(sha256(rest), sha256(want))
        else:
            self.assertEqual(rest, want)
        return env, data
