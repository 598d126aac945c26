#!/usr/bin/python3
"""Accept-side benchmark: messages/s and MB/s into the spool with the
upstream stopped (mail piles up), and per-transaction latency.

For every combination of message size, concurrent clients and messages
per connection, runs smartrelayd on a fresh temporary spool (loopback,
no credentials: nothing is relayed) RUNS times, drives it for SECONDS
with bench/smtpload (a C client: one libevent loop, MAIL/RCPT/DATA
pipelined, the body after the 354), then stops the daemon and counts
the spool: every message that got a 250 must be there.  With
--fsync-ceiling, the one-writer fsync ceiling is measured for a second
before every run, and each run's msgs/s is also given as a multiple of
it (vs_fsync1), which a shared, drifting disk makes necessary.  Reports the
median of the runs: msgs/s, MB/s, MAIL -> final 250 latency p50/p99,
connect -> 220 p99, the daemon's CPU per message (all threads, and the
event-loop thread alone; the rest is the spool's sync workers, mostly
the kernel's fsync work) and its peak RSS.

usage: bench/accept.py [--daemon PATH] [--clients 1,8,64]
                       [--sizes 1024,102400] [--per-conn 0,1]
                       [--seconds S] [--runs N]
                       [--fsync-ceiling PATH] [--json FILE]
--per-conn 0 means unlimited (one connection, many messages).
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


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


def one_run(args, smtpload, clients, size, per_conn):
    ceiling = ceiling_now(args)
    tmp = benchlib.scratch_dir("sraccept.")
    d = benchlib.Daemon(args.daemon, tmp).start()
    try:
        c0 = benchlib.cpu_split(d.proc.pid)
        p = subprocess.run([smtpload, "-p", str(d.port), "-c", str(clients),
                            "-m", str(per_conn), "-z", str(size),
                            "-t", str(args.seconds)],
                           stdout=subprocess.PIPE, text=True, check=True)
        load = json.loads(p.stdout.splitlines()[-1])
        cpu = benchlib.cpu_delta(c0, benchlib.cpu_split(d.proc.pid))
        st = d.status()
    finally:
        d.stop()
    queued = benchlib.count_queue(d.spool)
    errs = d.errors()
    benchlib.rmtree(tmp)
    n = load["accepted"]
    total = cpu["loop"] + cpu["workers"]
    return {
        "clients": clients, "size": size, "per_conn": per_conn,
        "seconds": load["seconds"], "accepted": n,
        "refused": load["refused"], "errors": load["errors"],
        "queued_in_spool": queued, "missing": max(0, n - queued),
        "msgs_per_s": load["msgs_per_s"], "mb_per_s": load["mb_per_s"],
        "txn_p50_ms": load["txn"]["p50_ms"],
        "txn_p99_ms": load["txn"]["p99_ms"],
        "greet_p99_ms": load["greet"]["p99_ms"],
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=benchlib.default_daemon())
    ap.add_argument("--smtpload", default=None,
                    help="prebuilt bench/smtpload (default: build it)")
    ap.add_argument("--clients", default="1,8,64")
    ap.add_argument("--sizes", default="1024,102400")
    ap.add_argument("--per-conn", default="0,1")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fsync-ceiling", metavar="PATH",
                    help="bench/fsync_ceiling binary: measure the "
                    "one-writer ceiling before every run")
    ap.add_argument("--ceiling-seconds", type=float, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    smtpload = args.smtpload or benchlib.tool("smtpload")
    results = []
    for size in [int(x) for x in args.sizes.split(",")]:
        for per_conn in [int(x) for x in args.per_conn.split(",")]:
            for clients in [int(x) for x in args.clients.split(",")]:
                runs = [one_run(args, smtpload, clients, size, per_conn)
                        for _ in range(args.runs)]
                res = benchlib.median_runs(runs)
                # Losses are summed, never averaged away.
                res["missing"] = sum(r["missing"] for r in runs)
                res["msgs_per_s_all"] = [r["msgs_per_s"] for r in runs]
                print(json.dumps(res), flush=True)
                results.append(res)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    lost = sum(r["missing"] for r in results)
    if lost:
        sys.exit("LOST: %d messages got a 250 but are not in the spool"
                 % lost)


if __name__ == "__main__":
    main()
