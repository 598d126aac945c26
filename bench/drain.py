#!/usr/bin/python3
"""Drain benchmark: how fast smartrelayd empties a queue into a fast
local TLS+AUTH upstream (bench/sink.c).

Plants COUNT committed messages of SIZE octets straight into a fresh
spool (the format of src/lib/envelope.c), starts the sink (STARTTLS, AUTH
PLAIN/LOGIN, PIPELINING; it counts and discards), then starts the
daemon with upstream.connections = CONNECTIONS and times from READY=1
(queue loaded) until the sink has received the last message; also
reports the time from exec, until the spool is empty again, and the
daemon's CPU per relayed message.  With --selftest it first measures
the sink's own ceiling (sink -T: pipelined STARTTLS+AUTH client), which
must be far above what the daemon achieves.

usage: bench/drain.py [--daemon PATH] [--counts 1000,10000]
                      [--connections 1,2,4] [--size BYTES] [--runs N]
                      [--selftest] [--json FILE]
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

sys.path.insert(0, os.path.join(benchlib.TOP, "tests"))
import certs  # noqa: E402


def plant(spool, n, size):
    """Writes n committed messages into spool/queue (not fsynced: this
    is set-up, not what is measured)."""
    q = os.path.join(spool, "queue")
    for d in ("tmp", "queue", "failed", "corrupt"):
        os.makedirs(os.path.join(spool, d), mode=0o700, exist_ok=True)
    line = b"x" * 74 + b"\r\n"
    now = int(time.time())
    for i in range(n):
        mid = "%011x%05x" % (now * 1000, i)
        body = (b"Received: from bench ([127.0.0.1])\r\n"
                b"Subject: drain %d\r\n\r\n" % i +
                line * max(1, size // len(line)))
        with open(os.path.join(q, mid + ".msg"), "wb") as f:
            f.write(body)
        env = ("smartrelay-envelope 1\nid %s\narrival %d\nsize %d\n"
               "client 127.0.0.1\nhelo bench\nsender bench@example.org\n"
               "attempts 0\nnext 0\nheld 0\n"
               "rcpt pending - sink%d@example.org\nend\n"
               % (mid, now, len(body), i))
        with open(os.path.join(q, mid + ".env"), "w") as f:
            f.write(env)


def pki(directory):
    return certs.make_pki(directory)


class Sink:
    """bench/sink.c on an ephemeral loopback port."""

    def __init__(self, binary, tmp, p, expect=0):
        self.status = os.path.join(tmp, "sink.status")
        self.proc = subprocess.Popen(
            [binary, "-c", p.server_crt, "-k", p.server_key, "-p", "0",
             "-s", self.status, "-N", str(expect), "-e", "100"],
            stdout=subprocess.PIPE, text=True)
        self.port = json.loads(self.proc.stdout.readline())["port"]

    def read(self):
        """{"count", "bytes", "conns", "last"} from the status file."""
        try:
            with open(self.status) as f:
                w = f.read().split()
        except OSError:
            return {"count": 0, "bytes": 0, "conns": 0, "last": 0.0}
        return {"count": int(w[1]), "bytes": int(w[3]),
                "conns": int(w[5]), "last": float(w[7])}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        return self.read()


def upstream_conf(port, p, pw, conns):
    return ('upstream { host = "127.0.0.1" port = %d tls = "starttls" '
            'verify_name = "upstream.test" ca_file = "%s" '
            'username = "user@test" password_file = "%s" '
            'connections = %d }\n' % (port, p.ca_crt, pw, conns))


def selftest(sink, p, n=20000, conns=1):
    """The sink's ceiling: JSON of "sink -T" (messages/s)."""
    out = subprocess.run([sink, "-c", p.server_crt, "-k", p.server_key,
                          "-T", str(n), "-n", str(conns), "-W", "16"],
                         stdout=subprocess.PIPE, text=True, check=True,
                         timeout=120)
    return json.loads(out.stdout.splitlines()[-1])


def one_run(args, sink_bin, p, count, conns):
    tmp = benchlib.scratch_dir("srdrain.")
    pw = os.path.join(tmp, "pw")
    with open(pw, "w") as f:
        f.write("secret\n")
    os.chmod(pw, 0o600)
    plant(os.path.join(tmp, "spool"), count, args.size)
    sink = Sink(sink_bin, tmp, p, count)
    d = benchlib.Daemon(args.daemon, tmp, upstream=upstream_conf(
        sink.port, p, pw, conns))
    try:
        d.start()
        t_ready = d.t_exec + d.ready_s
        deadline = time.monotonic() + args.timeout
        st = sink.read()
        while st["count"] < count and time.monotonic() < deadline \
                and d.proc.poll() is None:
            time.sleep(0.02)  # polling a count, bounded by --timeout
            st = sink.read()
        cpu = benchlib.cpu_split(d.proc.pid)
        # The drain is over when the spool is clean again, too.
        left = benchlib.count_queue(d.spool)
        while left > 0 and time.monotonic() < deadline:
            time.sleep(0.02)
            left = benchlib.count_queue(d.spool)
        t_empty = time.monotonic()
        cpu_empty = benchlib.cpu_split(d.proc.pid)
        hwm = d.status().get("VmHWM")
    finally:
        d.stop()
        st = sink.stop()
    errs = d.errors()
    benchlib.rmtree(tmp)
    got = st["count"]
    drain_s = st["last"] - t_ready
    total = cpu_empty["loop"] + cpu_empty["workers"]
    return {
        "count": count, "connections": conns, "received": got,
        "ready_s": round(d.ready_s, 3),
        "drain_s": round(drain_s, 3),
        "msgs_per_s": round(got / drain_s, 1) if drain_s > 0 else None,
        "exec_to_last_s": round(st["last"] - d.t_exec, 3),
        "exec_to_empty_s": round(t_empty - d.t_exec, 3),
        "cpu_ms_per_msg": round(total * 1000 / got, 3) if got else None,
        "loop_cpu_ms_per_msg": round(cpu["loop"] * 1000 / got, 3)
        if got else None,
        "upstream_connections_used": st["conns"],
        "left_in_queue": left, "vmhwm_kb": hwm,
        "daemon_errors": len(errs),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=benchlib.default_daemon())
    ap.add_argument("--sink", help="prebuilt bench/sink (default: build)")
    ap.add_argument("--pki", help="directory for the test PKI (cached)")
    ap.add_argument("--counts", default="1000,10000")
    ap.add_argument("--connections", default="1,2,4")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    sink_bin = args.sink or benchlib.tool("sink")
    p = pki(args.pki or os.path.join(benchlib.scratch_dir("srpki."), "pki"))
    out = {"sink_ceiling": None, "drain": []}
    if args.selftest:
        runs = [selftest(sink_bin, p) for _ in range(args.runs)]
        out["sink_ceiling"] = benchlib.median_runs(runs)
        print(json.dumps({"sink_ceiling": out["sink_ceiling"]}), flush=True)
    for count in [int(x) for x in args.counts.split(",")]:
        for conns in [int(x) for x in args.connections.split(",")]:
            runs = [one_run(args, sink_bin, p, count, conns)
                    for _ in range(args.runs)]
            res = benchlib.median_runs(runs)
            res["msgs_per_s_all"] = [r["msgs_per_s"] for r in runs]
            print(json.dumps(res), flush=True)
            out["drain"].append(res)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
