"""Shared helpers of the benchmarks (bench/accept.py, drain.py,
footprint.py): the machine's description, building the C helpers,
starting smartrelayd on a private config with a NOTIFY_SOCKET (so the
time from exec to READY=1 is known), reading its /proc figures, and
medians.  Standard library only; run with Debian's /usr/bin/python3.
"""

import collections
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)


def default_daemon():
    """$SMARTRELAYD, else ./src/smartrelayd (from the build dir)."""
    return os.environ.get("SMARTRELAYD") or os.path.join(
        os.getcwd(), "src", "smartrelayd")


def scratch_dir(prefix):
    """A fresh directory under $BENCH_TMP (default: the system tmp)."""
    base = os.environ.get("BENCH_TMP") or None
    if base:
        os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix, dir=base)


def build_tool(name, libs, outdir):
    """Compiles bench/<name>.c into outdir (once); returns its path."""
    out = os.path.join(outdir, name)
    src = os.path.join(HERE, name + ".c")
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src):
        return out
    flags = subprocess.run(["pkg-config", "--cflags", "--libs"] + libs,
                           check=True, stdout=subprocess.PIPE,
                           text=True).stdout.split()
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-o", out, src] +
                   flags + ["-pthread"], check=True)
    return out


def tool(name, outdir=None):
    """Path of a C helper: $BENCH_BIN/<name> if there, else built."""
    libs = {"sink": ["libevent", "libevent_openssl", "openssl"],
            "smtpload": ["libevent"], "fsync_ceiling": []}[name]
    d = outdir or os.environ.get("BENCH_BIN") or scratch_dir("srbin.")
    os.makedirs(d, exist_ok=True)
    return build_tool(name, libs, d)


def fs_type(path):
    """File system type of the mount holding path (from /proc/mounts)."""
    path = os.path.realpath(path)
    best, kind = "", "?"
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            mnt = fields[1].replace("\\040", " ")
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) \
                    and len(mnt) >= len(best):
                best, kind = mnt, fields[2]
    return kind


def machine(spool_dir):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
    return {"nproc": os.cpu_count(), "cpu": cpu,
            "kernel": platform.release(), "spool_fs": fs_type(spool_dir),
            "spool_fs_journal": fs_journal(spool_dir),
            "spool_dir": os.path.realpath(spool_dir),
            "spool_mount": spool_mount(spool_dir),
            "mem_mb": mem // 1024,
            "loadavg": round(os.getloadavg()[0], 2),
            "io_pressure_some_avg60": io_pressure()}


def _unescape(field):
    """A /proc/self/mountinfo field with its octal escapes undone."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                  field)


def spool_mount(path):
    """The mount holding path, from /proc/self/mountinfo (what
    "findmnt -T path" shows): {"target", "source", "fstype", "options"
    (per-mount), "super_options" (the file system's)}, or None."""
    path = os.path.realpath(path)
    best = None
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        lf, rf = left.split(), right.split()
        if len(lf) < 6 or len(rf) < 3:
            continue
        mnt = _unescape(lf[4])
        if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) \
                and (best is None or len(mnt) >= len(best["target"])):
            best = {"target": mnt, "source": _unescape(rf[1]),
                    "fstype": rf[0], "options": lf[5],
                    "super_options": rf[2]}
    return best


def mount_text(m):
    """One line for a report: "ext4 /dev/vda on / (rw,relatime; ...)"."""
    if not m:
        return "spool file system unknown"
    return "spool file system: %s %s on %s (mount %s; fs %s)" % (
        m["fstype"], m["source"], m["target"], m["options"],
        m["super_options"])


def age_spool(spool, cycles, backlog=1000, size=1024):
    """Puts a spool directory through CYCLES message lifetimes as the
    daemon makes them: both files written in tmp/ and renamed into
    queue/, deleted BACKLOG messages later, so that queue/ grows to a
    backlog's size and its entries and the inodes are freed and reused
    as in a relay that has run for a while.  Nothing is fsynced (this
    is set-up); queue/ is empty afterwards."""
    for d in ("tmp", "queue", "failed", "corrupt"):
        os.makedirs(os.path.join(spool, d), mode=0o700, exist_ok=True)
    tmp, q = os.path.join(spool, "tmp"), os.path.join(spool, "queue")
    body = b"x" * size
    env = b"smartrelay-envelope 1\n" + b"y" * 200 + b"\n"
    live = collections.deque()
    for i in range(cycles):
        name = "%016x" % i
        for ext, data in ((".msg", body), (".env", env)):
            fd = os.open(os.path.join(tmp, name + ext),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, data)
            os.close(fd)
            os.rename(os.path.join(tmp, name + ext),
                      os.path.join(q, name + ext))
        live.append(name)
        if len(live) > backlog:
            old = live.popleft()
            os.unlink(os.path.join(q, old + ".msg"))
            os.unlink(os.path.join(q, old + ".env"))
    while live:
        old = live.popleft()
        os.unlink(os.path.join(q, old + ".msg"))
        os.unlink(os.path.join(q, old + ".env"))


def empty_spool(spool):
    """Deletes what a run left in spool's tmp/ and queue/ (the steady
    spool is used again by the next run); returns how many it found in
    queue/ (files, not messages)."""
    n = 0
    for d in ("tmp", "queue"):
        p = os.path.join(spool, d)
        try:
            names = os.listdir(p)
        except OSError:
            continue
        for name in names:
            os.unlink(os.path.join(p, name))
            n += d == "queue"
    return n


def fs_journal(path):
    """For ext3/ext4: whether the file system has a journal (a jbd2
    entry exists for its device); None for other file systems."""
    path = os.path.realpath(path)
    best, dev, kind = "", None, None
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            mnt = fields[1]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) \
                    and len(mnt) >= len(best):
                best, dev, kind = mnt, fields[0], fields[2]
    if kind not in ("ext3", "ext4") or dev is None:
        return None
    name = os.path.basename(os.path.realpath(dev))
    try:
        return any(e.startswith(name + "-") for e in os.listdir(
            "/proc/fs/jbd2"))
    except OSError:
        return False


def io_pressure():
    """The "some" avg60 of /proc/pressure/io: how much other I/O was
    competing (noise), or None."""
    try:
        with open("/proc/pressure/io") as f:
            return float(re.search(r"some avg10=[\d.]+ avg60=([\d.]+)",
                                   f.read()).group(1))
    except (OSError, AttributeError):
        return None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def histogram(text, name):
    """The cumulative buckets [(le, count)] of Prometheus histogram
    NAME in exposition TEXT (le float('inf') last); [] if absent."""
    out = []
    for m in re.finditer(r'^%s_bucket\{le="([^"]+)"\} (\d+)$' %
                         re.escape(name), text, re.M):
        out.append((float(m.group(1)), int(m.group(2))))
    return out


def hist_quantile(before, after, q):
    """Quantile Q of the observations made between two readings of a
    histogram (histogram() lists), interpolated linearly inside the
    bucket as Prometheus' histogram_quantile() does; None without
    observations."""
    if not after:
        return None
    prev = dict(before)
    cum = [(le, n - prev.get(le, 0)) for le, n in after]
    total = cum[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lo, below = 0.0, 0
    for le, n in cum:
        if n >= rank:
            if le == float("inf"):
                return lo
            inside = n - below
            return lo + (le - lo) * ((rank - below) / inside if inside
                                     else 0)
        lo, below = le, n
    return lo


def median_runs(runs, keys=None):
    """A dict of the per-key medians of a list of result dicts (numbers
    only; other values are taken from the first run)."""
    out = dict(runs[0])
    for k in keys or runs[0].keys():
        vals = [r.get(k) for r in runs]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool)
               for v in vals if v is not None):
            m = median(vals)
            out[k] = round(m, 3) if isinstance(m, float) else m
    out["runs"] = len(runs)
    return out


def conf_text(spool, extra="", upstream=None):
    text = ('hostname = "bench.test"\nlisten = {"127.0.0.1:0"}\n'
            'allow = {"127.0.0.0/8"}\nspool = "%s"\nuser = ""\n'
            'control_socket = "%s"\n'
            'max_clients = 2048\nmax_clients_per_ip = 2048\n'
            'log_level = "info"\n'
            'metrics { listen = "127.0.0.1:0" }\n' % (spool, os.path.join(
                os.path.dirname(spool), "control.sock")))
    text += extra
    text += upstream or 'upstream { password_file = "/nonexistent" }\n'
    return text


def proc_status(pid):
    """Fields of /proc/PID/status we use (kB and counts) plus Pss."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem",
                     "Threads", "voluntary_ctxt_switches",
                     "nonvoluntary_ctxt_switches"):
                out[k] = int(v.split()[0])
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    out["Pss"] = int(line.split()[1])
    except OSError:
        pass
    return out


def thread_switches(pid):
    """Sum of voluntary context switches of every thread of pid."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                m = re.search(r"voluntary_ctxt_switches:\s+(\d+)", f.read())
                total += int(m.group(1))
        except OSError:
            pass
    return total


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_split(pid):
    """CPU seconds of the event-loop thread (tid == pid) and of all the
    other threads (the spool's sync workers): {"loop": s, "workers": s,
    "loop_sys": s, "workers_sys": s}."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"loop": 0.0, "workers": 0.0, "loop_sys": 0.0, "workers_sys": 0.0}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        who = "loop" if int(tid) == pid else "workers"
        out[who] += (int(fields[11]) + int(fields[12])) / tick
        out[who + "_sys"] += int(fields[12]) / tick
    return out


def loop_schedstat(pid):
    """(on-CPU ns, run-queue wait ns) of the event-loop thread: the wait
    is time it was runnable but had no CPU (a busy machine, not the
    daemon, makes that)."""
    try:
        with open("/proc/%d/task/%d/schedstat" % (pid, pid)) as f:
            run, wait = f.read().split()[:2]
        return int(run), int(wait)
    except (OSError, ValueError):
        return 0, 0


def cpu_delta(before, after):
    return {k: after[k] - before[k] for k in before}


def _raise_nofile():
    import resource
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Daemon:
    """smartrelayd on a private config; start() returns once READY=1
    arrived on our NOTIFY_SOCKET and the listening port is known."""

    def __init__(self, binary, tmp, extra="", upstream=None, spool=None):
        self.binary = binary
        self.tmp = tmp
        self.spool = spool or os.path.join(tmp, "spool")
        self.conf = os.path.join(tmp, "bench.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text(self.spool, extra, upstream))
        self.proc = None
        self.port = None
        self.metrics_port = None
        self.ready_s = None
        self.t_exec = None

    def start(self, timeout=60):
        path = os.path.join(self.tmp, "notify.sock")
        if os.path.exists(path):
            os.unlink(path)
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(path)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        self.log = open(os.path.join(self.tmp, "daemon.log"), "w+")
        self.t_exec = time.monotonic()
        self.proc = subprocess.Popen([self.binary, "-d", "-f", self.conf],
                                     stderr=self.log, env=env,
                                     preexec_fn=_raise_nofile)
        ns.settimeout(timeout)
        try:
            while True:
                msg = ns.recv(4096).decode(errors="replace")
                if "READY=1" in msg.split("\n"):
                    self.ready_s = time.monotonic() - self.t_exec
                    break
        except socket.timeout:
            self.proc.kill()
            sys.exit("daemon not READY; see " + self.log.name)
        finally:
            ns.close()
        self.log.seek(0)
        m = re.search(r"listening addr=127\.0\.0\.1:(\d+)", self.log.read())
        if m:
            self.port = int(m.group(1))
        self.log.seek(0)
        m = re.search(r"metrics listening addr=127\.0\.0\.1:(\d+)",
                      self.log.read())
        if m:
            self.metrics_port = int(m.group(1))
        return self

    def metrics(self, timeout=10):
        """The text of GET /metrics, or "" without the endpoint."""
        import urllib.request
        if not self.metrics_port:
            return ""
        url = "http://127.0.0.1:%d/metrics" % self.metrics_port
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode()

    def status(self):
        return proc_status(self.proc.pid)

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def control(self, verb, timeout=10):
        """One request on the control socket ("stats"); the answer."""
        import json
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        with s:
            s.connect(os.path.join(os.path.dirname(self.spool),
                                   "control.sock"))
            s.sendall(verb.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return json.loads(out)
                out += chunk

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def errors(self):
        self.log.seek(0)
        return [ln for ln in self.log.read().splitlines()
                if ln.startswith(("<0>", "<1>", "<2>", "<3>"))]


def count_queue(spool):
    try:
        return len([f for f in os.listdir(os.path.join(spool, "queue"))
                    if f.endswith(".env")])
    except OSError:
        return 0


def rmtree(path):
    if os.environ.get("KEEP_TMP"):
        print("kept " + path, file=sys.stderr)
    else:
        shutil.rmtree(path, ignore_errors=True)
