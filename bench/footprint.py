#!/usr/bin/python3
"""Footprint and start-up of smartrelayd, and the "event loop never
blocks" check.  Every figure is the median of RUNS runs.

  binary        file size and text/data/bss (size(1)) of the daemon
  startup       exec -> READY=1 on our NOTIFY_SOCKET, with an empty queue
                and with QUEUED (10,000) planted messages
  idle          RSS, RssAnon, RssFile and Pss just after start, and the
                resident size of each mapped library (where idle RSS goes)
  wakeups       context switches of all threads over IDLE seconds (10)
                while idle, without credentials and with an upstream
                configured (an idle daemon should set no timer: 0/s)
  conns         IDLE_CONNS (1,000) client connections left idle, opened
                at 1,000 a second ("paced") and, with --burst, all at
                once ("burst"):
                greeting (connect -> 220) p50/p99, RSS and RssAnon growth
                per connection, wake-ups while they idle
  big           peak RSS (VmHWM) while receiving one 25 MB message, and
                while relaying one to bench/sink.c (STARTTLS+AUTH)
  blocking      connect -> 220 of probe connections (50 a second) while
                one client streams 25 MB messages and 8 others commit
                1 KB messages: p50/p99/max, and how much of the time the
                loop thread waited for a CPU (run queue) or used one

usage: bench/footprint.py [--daemon PATH] [--runs N] [--idle S]
                          [--idle-conns N] [--burst] [--queued N]
                          [--only SECTION,...] [--json FILE]
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import drain  # noqa: E402

BIG = 25 * 1000 * 1000		# "25 MB", under the 25 MiB default limit


def binary(args):
    out = {"file_bytes": os.path.getsize(args.daemon)}
    try:
        p = subprocess.run(["size", args.daemon], stdout=subprocess.PIPE,
                           text=True, check=True)
        text, data, bss = p.stdout.splitlines()[1].split()[:3]
        out.update(text=int(text), data=int(data), bss=int(bss))
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    p = subprocess.run(["ldd", args.daemon], stdout=subprocess.PIPE,
                       text=True)
    out["libraries"] = [ln.split()[0] for ln in p.stdout.splitlines()
                        if "=>" in ln]
    return out


def startup(args):
    def one(n):
        tmp = benchlib.scratch_dir("srstart.")
        if n:
            drain.plant(os.path.join(tmp, "spool"), n, 1024)
        d = benchlib.Daemon(args.daemon, tmp).start()
        d.stop()
        benchlib.rmtree(tmp)
        return d.ready_s * 1000
    empty = [one(0) for _ in range(args.runs)]
    full = [one(args.queued) for _ in range(args.runs)]
    return {"ready_empty_ms": round(benchlib.median(empty), 1),
            "ready_queued_ms": round(benchlib.median(full), 1),
            "queued": args.queued,
            "ready_empty_ms_all": [round(x, 1) for x in empty],
            "ready_queued_ms_all": [round(x, 1) for x in full]}


def libs_rss(pid):
    """Rss and Pss (kB) per mapped file, largest first, and anon."""
    per = {}
    name = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split()
                name = os.path.basename(parts[5]) if len(parts) > 5 \
                    else "[anon]"
                per.setdefault(name, [0, 0])
            elif line.startswith("Rss:"):
                per[name][0] += int(line.split()[1])
            elif line.startswith("Pss:"):
                per[name][1] += int(line.split()[1])
    rows = sorted(per.items(), key=lambda kv: -kv[1][0])
    return [{"map": k, "rss_kb": v[0], "pss_kb": v[1]} for k, v in rows
            if v[0] >= 100]


def idle(args):
    runs, libs = [], None
    for _ in range(args.runs):
        tmp = benchlib.scratch_dir("sridle.")
        d = benchlib.Daemon(args.daemon, tmp).start()
        time.sleep(0.5)
        st = d.status()
        libs = libs_rss(d.proc.pid)
        d.stop()
        benchlib.rmtree(tmp)
        runs.append({"rss_kb": st["VmRSS"], "rss_anon_kb": st["RssAnon"],
                     "rss_file_kb": st["RssFile"], "pss_kb": st.get("Pss"),
                     "threads": st["Threads"]})
    res = benchlib.median_runs(runs)
    res["by_mapping"] = libs
    return res


def switches_over(pid, secs):
    s0 = benchlib.thread_switches(pid)
    n0 = _nonvol(pid)
    time.sleep(secs)
    return (benchlib.thread_switches(pid) - s0 + _nonvol(pid) - n0) / secs


def _nonvol(pid):
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                total += int(re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)",
                                       f.read()).group(1))
        except OSError:
            pass
    return total


def strace_summary(pid, secs):
    """Syscalls of all threads during secs, from strace -c -f (or None
    when strace is missing)."""
    out = os.path.join(benchlib.scratch_dir("srstrace."), "s.txt")
    try:
        p = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o",
                              out], stderr=subprocess.DEVNULL)
    except OSError:
        return None
    time.sleep(secs)
    p.send_signal(signal.SIGINT)
    p.wait(10)
    calls = {}
    with open(out) as f:
        for line in f:
            w = line.split()
            if len(w) >= 5 and w[0][0].isdigit() and w[-1] != "total":
                calls[w[-1]] = int(w[3])
    benchlib.rmtree(os.path.dirname(out))
    return calls


def wakeups(args, sink_bin, p):
    res = {}
    # Without credentials: the out-of-the-box state.
    tmp = benchlib.scratch_dir("srwake.")
    d = benchlib.Daemon(args.daemon, tmp).start()
    time.sleep(1)
    res["no_credentials_per_s"] = benchlib.median(
        [switches_over(d.proc.pid, args.idle) for _ in range(args.runs)])
    res["no_credentials_syscalls"] = strace_summary(d.proc.pid, args.idle)
    d.stop()
    benchlib.rmtree(tmp)
    # Upstream configured, the queue empty: nothing to do, no timer.
    tmp = benchlib.scratch_dir("srwake.")
    pw = os.path.join(tmp, "pw")
    with open(pw, "w") as f:
        f.write("secret\n")
    os.chmod(pw, 0o600)
    sink = drain.Sink(sink_bin, tmp, p)
    d = benchlib.Daemon(args.daemon, tmp, upstream=drain.upstream_conf(
        sink.port, p, pw, 2)).start()
    time.sleep(1)
    res["upstream_idle_per_s"] = benchlib.median(
        [switches_over(d.proc.pid, args.idle) for _ in range(args.runs)])
    d.stop()
    sink.stop()
    benchlib.rmtree(tmp)
    return res


def conns_once(args, smtpload, rate):
    tmp = benchlib.scratch_dir("srconns.")
    d = benchlib.Daemon(args.daemon, tmp).start()
    time.sleep(0.3)
    st0 = d.status()
    # All greeted within a second normally; a burst that overflows the
    # listen backlog waits for SYN retransmissions (1 s, 3 s, 7 s).
    hold = 8 if rate == 0 else 2 + args.idle_conns / rate
    lp = subprocess.Popen([smtpload, "-p", str(d.port), "-I",
                           str(args.idle_conns), "-r", str(rate),
                           "-t", str(hold + 2)],
                          stdout=subprocess.PIPE, text=True)
    first = json.loads(lp.stdout.readline())
    time.sleep(0.5)
    st1 = d.status()
    wake = switches_over(d.proc.pid, 1.0)
    summary = json.loads(lp.stdout.readline())
    lp.wait()
    d.stop()
    benchlib.rmtree(tmp)
    n = max(1, first["greeted"])
    return {
        "conns": first["greeted"], "all_greeted_s": first["seconds"],
        "greet_p50_ms": summary["idle_greet"]["p50_ms"],
        "greet_p99_ms": summary["idle_greet"]["p99_ms"],
        "greet_max_ms": summary["idle_greet"]["max_ms"],
        "rss_kb": st1["VmRSS"], "rss_anon_kb": st1["RssAnon"],
        "rss_per_conn_kb": round((st1["VmRSS"] - st0["VmRSS"]) / n, 2),
        "anon_per_conn_kb": round((st1["RssAnon"] - st0["RssAnon"]) / n,
                                  2),
        "wakeups_per_s": wake}


def conns(args, smtpload):
    """IDLE_CONNS connections arriving at 1,000 a second ("paced"), and
    with --burst also all at once ("burst")."""
    out = {"paced": benchlib.median_runs(
        [conns_once(args, smtpload, 1000) for _ in range(args.runs)])}
    if args.burst:
        out["burst"] = benchlib.median_runs(
            [conns_once(args, smtpload, 0) for _ in range(args.runs)])
    return out


def big(args, smtpload, sink_bin, p):
    recv, relay = [], []
    for _ in range(args.runs):
        tmp = benchlib.scratch_dir("srbig.")
        d = benchlib.Daemon(args.daemon, tmp).start()
        base = d.status()["VmHWM"]
        t = subprocess.run([smtpload, "-p", str(d.port), "-b", str(BIG),
                            "-t", "0.01"], stdout=subprocess.PIPE,
                           text=True, check=True)
        load = json.loads(t.stdout)
        recv.append({"vmhwm_kb": d.status()["VmHWM"],
                     "growth_kb": d.status()["VmHWM"] - base,
                     "txn_s": load["big_txn"]["max_ms"] / 1000,
                     "accepted": load["big_done"]})
        d.stop()
        benchlib.rmtree(tmp)
    for _ in range(args.runs):
        tmp = benchlib.scratch_dir("srbig.")
        pw = os.path.join(tmp, "pw")
        with open(pw, "w") as f:
            f.write("secret\n")
        os.chmod(pw, 0o600)
        drain.plant(os.path.join(tmp, "spool"), 1, BIG)
        sink = drain.Sink(sink_bin, tmp, p, 1)
        d = benchlib.Daemon(args.daemon, tmp, upstream=drain.upstream_conf(
            sink.port, p, pw, 1)).start()
        deadline = time.monotonic() + 120
        while sink.read()["count"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)  # polling a count, bounded
        st = sink.read()
        relay.append({"vmhwm_kb": d.status()["VmHWM"],
                      "relay_s": round(st["last"] - d.t_exec - d.ready_s,
                                       3),
                      "received": st["count"]})
        d.stop()
        sink.stop()
        benchlib.rmtree(tmp)
    return {"size": BIG, "receive": benchlib.median_runs(recv),
            "relay": benchlib.median_runs(relay)}


def blocking(args, smtpload):
    runs = []
    for _ in range(args.runs):
        tmp = benchlib.scratch_dir("srblock.")
        d = benchlib.Daemon(args.daemon, tmp).start()
        s0 = benchlib.loop_schedstat(d.proc.pid)
        t = subprocess.run([smtpload, "-p", str(d.port), "-c", "8",
                            "-m", "0", "-b", str(BIG), "-g", "50",
                            "-t", str(args.block)],
                           stdout=subprocess.PIPE, text=True, check=True)
        load = json.loads(t.stdout)
        s1 = benchlib.loop_schedstat(d.proc.pid)
        d.stop()
        queued = benchlib.count_queue(d.spool)
        benchlib.rmtree(tmp)
        runs.append({
            "probes": load["probe_greet"]["n"],
            "greet_p50_ms": load["probe_greet"]["p50_ms"],
            "greet_p99_ms": load["probe_greet"]["p99_ms"],
            "greet_max_ms": load["probe_greet"]["max_ms"],
            "small_msgs_per_s": load["msgs_per_s"],
            "small_txn_p99_ms": load["txn"]["p99_ms"],
            "big_msgs": load["big_done"],
            # Share of the time the loop thread was runnable but waited
            # for a CPU, and its own CPU share.
            "loop_runq_wait_pct": round((s1[1] - s0[1]) / 1e7 /
                                        load["seconds"], 1),
            "loop_cpu_pct": round((s1[0] - s0[0]) / 1e7 / load["seconds"],
                                  1),
            "missing": max(0, load["accepted"] + load["big_done"] - queued)})
    return benchlib.median_runs(runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=benchlib.default_daemon())
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--idle", type=float, default=10,
                    help="seconds of each idle wake-up window")
    ap.add_argument("--idle-conns", type=int, default=1000)
    ap.add_argument("--burst", action="store_true",
                    help="also open the idle connections all at once")
    ap.add_argument("--queued", type=int, default=10000)
    ap.add_argument("--block", type=float, default=10,
                    help="seconds of the blocking check")
    ap.add_argument("--only", default="binary,startup,idle,wakeups,conns,"
                    "big,blocking")
    ap.add_argument("--smtpload")
    ap.add_argument("--sink")
    ap.add_argument("--pki")
    ap.add_argument("--json")
    args = ap.parse_args()
    only = args.only.split(",")
    smtpload = args.smtpload or benchlib.tool("smtpload")
    sink_bin = args.sink or benchlib.tool("sink")
    p = drain.pki(args.pki or os.path.join(benchlib.scratch_dir("srpki."),
                                           "pki"))
    out = {}
    for name in only:
        if name == "binary":
            out[name] = binary(args)
        elif name == "startup":
            out[name] = startup(args)
        elif name == "idle":
            out[name] = idle(args)
        elif name == "wakeups":
            out[name] = wakeups(args, sink_bin, p)
        elif name == "conns":
            out[name] = conns(args, smtpload)
        elif name == "big":
            out[name] = big(args, smtpload, sink_bin, p)
        elif name == "blocking":
            out[name] = blocking(args, smtpload)
        else:
            sys.exit("unknown section " + name)
        print(json.dumps({name: out[name]}), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
