#!/usr/bin/python3
"""Accept-side benchmark: messages/s and MB/s into the spool, and
per-transaction latency, on two kinds of spool directory.

steady (the default of bench/run): the spool a relay has after running
  for a while.  One spool directory for all the steady runs, first put
  through --age message lifetimes (benchlib.age_spool: written in tmp/,
  renamed into queue/, deleted a backlog later), and during every run
  the daemon relays to bench/sink (TLS+AUTH, discards) while the clients
  submit, so deletions interleave with creations as in production.
  What a run leaves in queue/ is deleted before the next.
fresh: smartrelayd on a fresh temporary spool in $BENCH_TMP (bench/run
  sets "chattr +T" there: every spool in a block group of its own), the
  upstream stopped so mail piles up: the disk's best case.

For every combination of message size, concurrent clients and messages
per connection, runs the daemon RUNS times, drives it for SECONDS with
bench/smtpload (a C client: one libevent loop, MAIL/RCPT/DATA
pipelined, the body after the 354), then stops it and accounts for
every message that got a 250: in the spool, or (steady) received by the
sink.  With --smtp-source, Postfix's load client also runs the cells
--src-cells (one message per connection, a fixed count of messages;
its accepted count is the daemon's own "stats").  With
--fsync-ceiling, the one-writer fsync ceiling is measured before every
run, and each run's msgs/s is also given as a multiple of it
(vs_fsync1), which a shared, drifting disk makes necessary.  Reports
the median of the runs: msgs/s, MB/s, MAIL -> final 250 latency
p50/p99 (smtpload only), connect -> 220 p99, NOOP -> 250 p50/p99 on
one more connection that sends a NOOP every --noop-ms during the run,
the median duration of the spool's commit batches during the run (from
the daemon's /metrics histogram smartrelay_spool_commit_batch_seconds;
none for a daemon without it) and txn p99 as a multiple of it (issue 14
item 4: at most 2 at 64 clients), the event-loop thread's share of the run on a CPU and waiting for
one, the daemon's CPU per
accepted message (all threads, and the event-loop thread alone; in
steady mode this includes relaying what was relayed meanwhile) and its
peak RSS.

usage: bench/accept.py [--daemon PATH] [--spool steady,fresh]
                       [--clients 1,8,64] [--sizes 1024,102400]
                       [--per-conn 0,1] [--seconds S] [--runs N]
                       [--sink PATH --pki DIR] [--age N]
                       [--smtp-source PATH [--src-msgs N]]
                       [--fsync-ceiling PATH] [--json FILE]
--per-conn 0 means unlimited (one connection, many messages).
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import drain  # noqa: E402

# Where smtp-source's shared libraries are (scripts/fetch-test-tools).
TOOLS = os.environ.get("SMARTRELAY_TEST_TOOLS") or \
    "/var/cache/smartrelay-test"
SMTP_SOURCE = os.path.join(TOOLS, "postfix", "usr", "sbin", "smtp-source")
POSTFIX_LIBS = os.path.join(TOOLS, "postfix", "usr", "lib", "postfix")


def ceiling_now(args):
    """The one-writer fsync ceiling right now, in the scratch dir: on a
    shared disk it drifts, so each run is compared with its own."""
    if not args.fsync_ceiling:
        return None
    d = benchlib.scratch_dir("srceil.")
    p = subprocess.run([args.fsync_ceiling, d, str(args.ceiling_seconds),
                        "1", "1024"], stdout=subprocess.PIPE, text=True,
                       check=True)
    benchlib.rmtree(d)
    return json.loads(p.stdout)["commits_per_s"]


class Steady:
    """The long-lived, aged spool of the steady runs and what relaying
    to the sink needs."""

    def __init__(self, args):
        base = args.steady_dir or benchlib.scratch_dir("srsteady.")
        os.makedirs(base, exist_ok=True)
        self.dir = base
        self.spool = os.path.join(base, "spool")
        t0 = time.monotonic()
        benchlib.age_spool(self.spool, args.age)
        self.age_s = round(time.monotonic() - t0, 1)
        self.pki = drain.pki(args.pki or os.path.join(base, "pki"))
        self.pw = os.path.join(base, "pw")
        with open(self.pw, "w") as f:
            f.write("secret\n")
        os.chmod(self.pw, 0o600)
        self.sink = args.sink or benchlib.tool("sink")


def smtpload_run(args, port, clients, size, per_conn):
    p = subprocess.run([args.smtpload, "-p", str(port), "-c", str(clients),
                        "-m", str(per_conn), "-z", str(size),
                        "-t", str(args.seconds)],
                       stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(p.stdout.splitlines()[-1])


class NoopProbe:
    """One more SMTP connection that sends a NOOP every INTERVAL seconds
    while the load runs and times each answer: what an interactive
    client sees of the event loop while it is loaded."""

    def __init__(self, port, interval):
        self.port = port
        self.interval = interval
        self.lat = []
        self.error = None
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def reply(self, f):
        while True:
            line = f.readline()
            if not line:
                raise OSError("connection closed")
            if line[3:4] != b"-":
                return line

    def run(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port),
                                          timeout=30) as s:
                f = s.makefile("rb")
                self.reply(f)
                s.sendall(b"EHLO noop.bench.test\r\n")
                self.reply(f)
                while not self.stop_ev.is_set():
                    t0 = time.monotonic()
                    s.sendall(b"NOOP\r\n")
                    if not self.reply(f).startswith(b"250"):
                        raise OSError("NOOP refused")
                    self.lat.append(time.monotonic() - t0)
                    self.stop_ev.wait(self.interval)
                s.sendall(b"QUIT\r\n")
        except OSError as e:
            self.error = str(e)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self.thread.join(timeout=30)
        if self.error:
            print("noop probe: %s" % self.error, file=sys.stderr)
        if len(self.lat) < 2:
            return {"noop_p50_ms": None, "noop_p99_ms": None,
                    "noop_n": len(self.lat)}
        q = statistics.quantiles(self.lat, n=100, method="inclusive")
        return {"noop_p50_ms": round(statistics.median(self.lat) * 1000, 2),
                "noop_p99_ms": round(q[98] * 1000, 2),
                "noop_n": len(self.lat)}


BATCH_HIST = "smartrelay_spool_commit_batch_seconds"


def batch_stats(m0, m1):
    """Commit batches between two /metrics readings: the median
    duration (ms) and the mean operations per batch."""
    h0 = benchlib.histogram(m0, BATCH_HIST)
    h1 = benchlib.histogram(m1, BATCH_HIST)
    p50 = benchlib.hist_quantile(h0, h1, 0.5)

    def single(text, name):
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None
    ops = [single(t, "smartrelay_spool_batched_operations_total")
           for t in (m0, m1)]
    n = [single(t, BATCH_HIST + "_count") for t in (m0, m1)]
    per = None
    if None not in ops and None not in n and n[1] > n[0]:
        per = round((ops[1] - ops[0]) / (n[1] - n[0]), 1)
    return {"batch_p50_ms": round(p50 * 1000, 2) if p50 is not None
            else None,
            "batches": int(n[1] - n[0]) if None not in n else None,
            "ops_per_batch": per}


def src_count(args, clients, size):
    """Messages for one smtp-source run: --src-msgs for 1 KB at 64
    clients, fewer where the rate is lower, so a run takes about as
    long as a smtpload run."""
    n = args.src_msgs
    if size > 10240:
        n //= 2
    if clients < 8:
        n //= 2
    return max(n, clients)


def smtp_source_run(args, d, clients, size):
    """smtp-source, one message per connection (no -d), a fixed count;
    accepted is what the daemon counted."""
    n = src_count(args, clients, size)
    env = dict(os.environ, LD_LIBRARY_PATH=POSTFIX_LIBS)
    t0 = time.monotonic()
    p = subprocess.run([args.smtp_source, "-s", str(clients), "-m", str(n),
                        "-l", str(size), "-f", "bench@example.org",
                        "-t", "sink@example.org", "-M", "bench.test",
                        "127.0.0.1:%d" % d.port], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=600)
    secs = time.monotonic() - t0
    acc = d.control("stats")["accepted"]
    if p.returncode:
        print("smtp-source exited %d: %s" % (p.returncode,
              p.stdout.decode(errors="replace")[-300:]), file=sys.stderr)
    return {"seconds": round(secs, 3), "accepted": acc,
            "refused": n - acc, "errors": 1 if p.returncode else 0,
            "msgs_per_s": round(acc / secs, 1),
            "mb_per_s": round(acc * size / secs / 1e6, 2),
            "txn": {"p50_ms": None, "p99_ms": None},
            "greet": {"p99_ms": None}}


def one_run(args, steady, client, clients, size, per_conn):
    ceiling = ceiling_now(args)
    tmp = benchlib.scratch_dir("sraccept.")
    sink = None
    if steady:
        benchlib.empty_spool(steady.spool)
        sink = drain.Sink(steady.sink, tmp, steady.pki)
        d = benchlib.Daemon(args.daemon, tmp, spool=steady.spool,
                            upstream=drain.upstream_conf(
                                sink.port, steady.pki, steady.pw,
                                args.upstream_conns))
    else:
        d = benchlib.Daemon(args.daemon, tmp)
    try:
        d.start()
        m0 = d.metrics()
        probe = NoopProbe(d.port, args.noop_ms / 1000).start()
        c0 = benchlib.cpu_split(d.proc.pid)
        s0 = benchlib.loop_schedstat(d.proc.pid)
        if client == "smtpload":
            load = smtpload_run(args, d.port, clients, size, per_conn)
        else:
            load = smtp_source_run(args, d, clients, size)
        cpu = benchlib.cpu_delta(c0, benchlib.cpu_split(d.proc.pid))
        s1 = benchlib.loop_schedstat(d.proc.pid)
        noop = probe.stop()
        batches = batch_stats(m0, d.metrics())
        st = d.status()
    finally:
        d.stop()
        relayed = sink.stop()["count"] if sink else 0
    queued = benchlib.count_queue(d.spool)
    errs = d.errors()
    benchlib.rmtree(tmp)
    n = load["accepted"]
    total = cpu["loop"] + cpu["workers"]
    return {
        "spool": "steady" if steady else "fresh", "client": client,
        "clients": clients, "size": size, "per_conn": per_conn,
        "seconds": load["seconds"], "accepted": n,
        "refused": load["refused"], "errors": load["errors"],
        "queued_in_spool": queued, "relayed": relayed,
        # A message relayed and still in queue/ (the daemon stopped
        # between the sink's 250 and the unlink) counts twice, which
        # can only hide a loss, never invent one.
        "missing": max(0, n - queued - relayed),
        "msgs_per_s": load["msgs_per_s"], "mb_per_s": load["mb_per_s"],
        "txn_p50_ms": load["txn"]["p50_ms"],
        "txn_p99_ms": load["txn"]["p99_ms"],
        "greet_p99_ms": load["greet"]["p99_ms"],
        "noop_p50_ms": noop["noop_p50_ms"],
        "noop_p99_ms": noop["noop_p99_ms"],
        "batch_p50_ms": batches["batch_p50_ms"],
        "batches": batches["batches"],
        "ops_per_batch": batches["ops_per_batch"],
        "p99_vs_batch": round(load["txn"]["p99_ms"] /
                              batches["batch_p50_ms"], 2)
        if load["txn"]["p99_ms"] and batches["batch_p50_ms"] else None,
        # The event-loop thread's share of the run on a CPU, and
        # runnable but waiting for one (the two CPUs saturated).
        "loop_cpu_pct": round((s1[0] - s0[0]) / 1e7 / load["seconds"], 1),
        "loop_runq_wait_pct": round((s1[1] - s0[1]) / 1e7 /
                                    load["seconds"], 1),
        "cpu_ms_per_msg": round(total * 1000 / n, 3) if n else None,
        "loop_cpu_ms_per_msg": round(cpu["loop"] * 1000 / n, 3)
        if n else None,
        "workers_sys_share": round(cpu["workers_sys"] / total, 2)
        if total else None,
        "vmhwm_kb": st.get("VmHWM"),
        "daemon_errors": len(errs),
        "fsync1_now": ceiling,
        "vs_fsync1": round(load["msgs_per_s"] / ceiling, 2)
        if ceiling else None,
    }


def cell(args, steady, client, clients, size, per_conn):
    runs = [one_run(args, steady, client, clients, size, per_conn)
            for _ in range(args.runs)]
    res = benchlib.median_runs(runs)
    # Losses are summed, never averaged away.
    res["missing"] = sum(r["missing"] for r in runs)
    res["msgs_per_s_all"] = [r["msgs_per_s"] for r in runs]
    print(json.dumps(res), flush=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=benchlib.default_daemon())
    ap.add_argument("--smtpload", default=None,
                    help="prebuilt bench/smtpload (default: build it)")
    ap.add_argument("--spool", default="steady,fresh",
                    help="steady, fresh or both (comma-separated)")
    ap.add_argument("--steady-dir", metavar="DIR",
                    help="where the steady spool lives (not under a "
                    "chattr +T directory; default: a scratch dir)")
    ap.add_argument("--age", type=int, default=50000,
                    help="message lifetimes the steady spool goes "
                    "through first")
    ap.add_argument("--sink", help="prebuilt bench/sink (default: build)")
    ap.add_argument("--pki", help="directory for the test PKI")
    ap.add_argument("--upstream-conns", type=int, default=8,
                    help="upstream.connections in steady mode (8: with "
                    "the daemon's default of 2 the relay falls behind "
                    "64 clients on two CPUs and the queue grows)")
    ap.add_argument("--clients", default="1,8,64")
    ap.add_argument("--sizes", default="1024,102400")
    ap.add_argument("--per-conn", default="0,1")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--smtp-source", metavar="PATH", nargs="?",
                    const=SMTP_SOURCE,
                    help="also run Postfix's smtp-source (default path: "
                    "scripts/fetch-test-tools' unpacked copy)")
    ap.add_argument("--src-msgs", type=int, default=5000,
                    help="smtp-source messages for 1 KB at 64 clients "
                    "(half for 100 KB, half again for 1 client)")
    ap.add_argument("--src-cells", default="1024:64,102400:64,1024:1",
                    help="SIZE:CLIENTS cells for smtp-source")
    ap.add_argument("--fsync-ceiling", metavar="PATH",
                    help="bench/fsync_ceiling binary: measure the "
                    "one-writer ceiling before every run")
    ap.add_argument("--ceiling-seconds", type=float, default=1)
    ap.add_argument("--noop-ms", type=float, default=10,
                    help="interval of the NOOP probe's NOOPs")
    ap.add_argument("--json")
    args = ap.parse_args()
    args.smtpload = args.smtpload or benchlib.tool("smtpload")
    modes = [m for m in args.spool.replace("both", "steady,fresh").split(",")
             if m]
    if args.smtp_source and not os.access(args.smtp_source, os.X_OK):
        sys.exit("no smtp-source at %s: run scripts/fetch-test-tools (as "
                 "root)" % args.smtp_source)
    out = {"spool_modes": modes, "mounts": {}, "rows": []}
    for mode in modes:
        steady = Steady(args) if mode == "steady" else None
        where = steady.spool if steady else \
            os.environ.get("BENCH_TMP") or "/tmp"
        out["mounts"][mode] = benchlib.spool_mount(where)
        if steady:
            out["steady_age"] = {"cycles": args.age, "seconds": steady.age_s,
                                 "dir": steady.spool,
                                 "upstream_connections": args.upstream_conns}
            print(json.dumps(out["steady_age"]), flush=True)
        print(benchlib.mount_text(out["mounts"][mode]), flush=True)
        for size in [int(x) for x in args.sizes.split(",")]:
            for per_conn in [int(x) for x in args.per_conn.split(",")]:
                for clients in [int(x) for x in args.clients.split(",")]:
                    out["rows"].append(cell(args, steady, "smtpload",
                                            clients, size, per_conn))
        if args.smtp_source:
            for c in args.src_cells.split(","):
                size, clients = (int(x) for x in c.split(":"))
                out["rows"].append(cell(args, steady, "smtp-source",
                                        clients, size, 1))
        if steady:
            benchlib.empty_spool(steady.spool)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    lost = sum(r["missing"] for r in out["rows"])
    if lost:
        sys.exit("LOST: %d messages got a 250 but are neither in the spool "
                 "nor at the sink" % lost)


if __name__ == "__main__":
    main()
