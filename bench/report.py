#!/usr/bin/python3
"""Combines the benchmark outputs of one bench/run into one JSON file
and prints the table, with each target met or missed.

usage: bench/report.py WORKDIR OUT.json
WORKDIR holds machine.json, fsync.jsonl (fsync_ceiling lines),
accept.json, drain.json, footprint.json, and meta.json (what bench/run
was asked to do); missing parts are skipped.  The accept table puts the
steady-state spool and the fresh one side by side; the "ceiling
ratios" table divides accept msgs/s by the fsync ceiling of the same
run for the same file size (issue 14's targets).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


def load(workdir, name):
    try:
        with open(os.path.join(workdir, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fsync_summary(workdir):
    """Per file size, per thread count: the median commits/s of all
    runs, {"1024": {"1": {"commits_per_s", "all"}, ...}, ...}."""
    rows = []
    try:
        with open(os.path.join(workdir, "fsync.jsonl")) as f:
            rows = [json.loads(ln) for ln in f if ln.strip()]
    except OSError:
        return None
    out = {}
    for z in sorted({r.get("size", 1024) for r in rows}):
        mine = [r for r in rows if r.get("size", 1024) == z]
        out[str(z)] = {}
        for t in sorted({r["threads"] for r in mine}):
            vals = [r["commits_per_s"] for r in mine if r["threads"] == t]
            out[str(z)][str(t)] = {
                "commits_per_s": round(benchlib.median(vals), 1),
                "all": vals}
    return out


def load_accept(workdir):
    """accept.json's rows (spool and client filled in for an old,
    list-shaped file: fresh, smtpload) and its mounts."""
    a = load(workdir, "accept.json")
    if a is None:
        return None, {}
    if isinstance(a, list):
        a = {"rows": a, "mounts": {}}
    for r in a["rows"]:
        r.setdefault("spool", "fresh")
        r.setdefault("client", "smtpload")
    return a["rows"], a.get("mounts") or {}


def find(rows, **kw):
    for r in rows or []:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def target(name, value, goal, ok, unit=""):
    """One target line: met, or missed by how much."""
    if value is None:
        return {"target": name, "value": None, "goal": goal,
                "verdict": "not measured"}
    if ok:
        verdict = "met"
    elif isinstance(goal, (int, float)) and goal:
        verdict = "missed by %.0f%%" % (abs(value - goal) * 100 / goal)
    else:
        verdict = "missed"
    return {"target": name, "value": value, "goal": goal, "unit": unit,
            "verdict": verdict}


def ceiling(res, size, threads):
    fs = (res.get("fsync_by_size") or {}).get(str(size)) or {}
    return (fs.get(str(threads)) or {}).get("commits_per_s")


# Issue 14's cells: (size, clients, fsync writers, goal).
RATIO_CELLS = ((1024, 64, 16, 0.6), (102400, 64, 16, 0.6),
               (1024, 1, 1, 0.8))


def ratios(res):
    """msgs/s over the same run's fsync ceiling for the same file size,
    one message per connection, per client and spool kind."""
    out = []
    for size, clients, writers, goal in RATIO_CELLS:
        ceil = ceiling(res, size, writers)
        for client in ("smtpload", "smtp-source"):
            for spool in ("steady", "fresh"):
                r = find(res.get("accept"), size=size, clients=clients,
                         per_conn=1, client=client, spool=spool)
                if r is None:
                    continue
                out.append({
                    "size": size, "clients": clients, "client": client,
                    "spool": spool, "msgs_per_s": r["msgs_per_s"],
                    "writers": writers, "ceiling": ceil,
                    "ratio": round(r["msgs_per_s"] / ceil, 2)
                    if ceil else None, "goal": goal,
                    "cpu_ms_per_msg": r["cpu_ms_per_msg"]})
    return out


def steady_targets(res):
    """Issue 14's targets, on the steady spool (smtpload's figure when
    both clients ran; smtp-source's is in the ratio table)."""
    out = []
    for r in res.get("ratios") or []:
        if r["spool"] != "steady" or r["client"] != "smtpload":
            continue
        name = "steady %s %d client%s, one msg/conn >= %gx %d-writer " \
            "%s fsync ceiling" % (kb(r["size"]), r["clients"],
                                  "s" if r["clients"] > 1 else "",
                                  r["goal"], r["writers"], kb(r["size"]))
        v = r["ratio"]
        out.append(target(name, v, r["goal"],
                          v is not None and v >= r["goal"], "x ceiling"))
        if r["clients"] > 1:
            v = r["cpu_ms_per_msg"]
            out.append(target("steady %s %d clients CPU per accepted "
                              "message (relaying included)" % (
                                  kb(r["size"]), r["clients"]), v, 0.3,
                              v is not None and v <= 0.3, "ms"))
    return out


def latency_targets(res):
    """Issue 14 item 4: at 64 clients, one message per connection, p99
    MAIL -> final 250 at most twice the median commit batch of the same
    run (smtpload; the daemon's /metrics histogram)."""
    out = []
    for spool in ("steady", "fresh"):
        for size in (1024, 102400):
            r = find(res.get("accept"), size=size, clients=64, per_conn=1,
                     client="smtpload", spool=spool)
            if r is None:
                continue
            v = r.get("p99_vs_batch")
            out.append(target("%s %s 64 clients: p99 MAIL -> 250 <= 2x "
                              "commit batch median" % (spool, kb(size)),
                              v, 2, v is not None and v <= 2,
                              "x batch p50"))
    return out


def kb(size):
    return "%d KB" % (size // 1024) if size % 1024 == 0 else "%d B" % size


def targets(res):
    fs = res.get("fsync") or {}
    one = fs.get("1", {}).get("commits_per_s")
    # The targets before issue 14 were set on the fresh spool.
    acc = [r for r in res.get("accept") or []
           if r["spool"] == "fresh" and r["client"] == "smtpload"]
    drain = (res.get("drain") or {}).get("drain") or []
    fp = res.get("footprint") or {}
    out = []

    # Against the ceiling measured just before each run when there is
    # one (vs_fsync1), else against the run's overall ceiling.
    a64 = find(acc, clients=64, size=1024, per_conn=1)
    a1 = find(acc, clients=1, size=1024, per_conn=0)
    for row, goal, name in (
            (a64, 4.0, "fresh: accept 64 clients 1 KB one msg/conn >= 4x "
             "one-writer fsync ceiling"),
            (a1, 0.8, "fresh: accept 1 client 1 KB >= 80% of one-writer "
             "fsync ceiling")):
        v = row and row.get("vs_fsync1")
        if v is None and row and one:
            v = round(row["msgs_per_s"] / one, 2)
        out.append(target(name, v, goal, v is not None and v >= goal,
                          "x ceiling"))
    v = a64 and a64["cpu_ms_per_msg"]
    out.append(target("fresh: CPU per accepted message (64 clients, 1 KB, "
                      "all threads)", v, 0.3, v is not None and v <= 0.3,
                      "ms"))
    big = max((r for r in drain if r["connections"] == 1),
              key=lambda r: r["count"], default=None)
    v = big and big["cpu_ms_per_msg"]
    out.append(target("CPU per relayed message", v, 0.3,
                      v is not None and v <= 0.3, "ms"))
    a64k = find(acc, clients=64, size=1024, per_conn=0)
    v = a64k and a64k["txn_p99_ms"]
    out.append(target("fresh: p99 MAIL -> 250 at 64 clients", v, 50,
                      v is not None and v < 50, "ms"))
    v = (fp.get("blocking") or {}).get("greet_p99_ms")
    out.append(target("greeting p99 under load (25 MB stream + 8 "
                      "committing)", v, 10, v is not None and v < 10, "ms"))
    v = big and big["msgs_per_s"]
    out.append(target("drain 1 KB, one connection", v, 1500,
                      v is not None and v >= 1500, "msgs/s"))
    idle = fp.get("idle") or {}
    v = idle.get("rss_kb")
    out.append(target("idle RSS", v, 2048, v is not None and v <= 2048,
                      "kB"))
    paced = (fp.get("conns") or {}).get("paced") or {}
    v = paced.get("rss_per_conn_kb")
    out.append(target("RSS per idle connection", v, 16,
                      v is not None and v <= 16, "kB"))
    w = fp.get("wakeups") or {}
    v = None
    if w:
        v = max(w.get("no_credentials_per_s") or 0,
                w.get("upstream_idle_per_s") or 0)
    out.append(target("wake-ups per second when idle", v, 0, v == 0, "/s"))
    st = fp.get("startup") or {}
    v = st.get("ready_empty_ms")
    out.append(target("READY, empty queue", v, 50,
                      v is not None and v < 50, "ms"))
    v = st.get("ready_queued_ms")
    out.append(target("READY, %s queued" % st.get("queued", "?"), v, 1000,
                      v is not None and v < 1000, "ms"))
    return steady_targets(res) + latency_targets(res) + out


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.3g" % v if abs(v) < 100 else "%.0f" % v
    return str(v)


def table(title, header, rows):
    lines = ["", title]
    widths = [max(len(str(h)), *(len(fmt(r[i])) for r in rows))
              if rows else len(h) for i, h in enumerate(header)]
    lines.append("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for r in rows:
        lines.append("  ".join(fmt(c).rjust(w) for c, w in zip(r, widths)))
    return lines


def accept_table(acc):
    """The steady and the fresh figures of each cell side by side."""
    cells = []
    for r in acc:
        key = (r["client"], r["size"], r["per_conn"], r["clients"])
        if key not in cells:
            cells.append(key)
    rows = []
    for client, size, per_conn, clients in cells:
        row = [client, size, clients, per_conn]
        lost = 0
        for spool in ("steady", "fresh"):
            r = find(acc, client=client, size=size, per_conn=per_conn,
                     clients=clients, spool=spool) or {}
            row += [r.get("msgs_per_s"), r.get("vs_fsync1"),
                    r.get("txn_p99_ms"), r.get("cpu_ms_per_msg")]
            lost += r.get("missing") or 0
        row.append("all" if lost == 0 else "%d MISSING" % lost)
        rows.append(row)
    return table("2-3. accept, steady-state spool (aged, relaying to the "
                 "sink meanwhile; cpu includes that relaying) | fresh "
                 "spool (chattr +T, upstream stopped).  per_conn 0 = one "
                 "connection for all, 1 = a connection per message; "
                 "x fsync1 = msgs/s / one-writer ceiling measured just "
                 "before; p99 = MAIL sent -> final 250 (smtpload only); "
                 "accounted = every 250 in the spool or at the sink",
                 ["client", "size", "clients", "per_conn",
                  "steady msgs/s", "x fsync1", "p99 ms", "cpu ms/msg",
                  "fresh msgs/s", "x fsync1", "p99 ms", "cpu ms/msg",
                  "accounted"], rows)


def latency_table(acc):
    """Per smtpload row: the latencies and the commit batches (issue 14
    item 4)."""
    rows = []
    for r in acc:
        if r["client"] != "smtpload":
            continue
        rows.append([r["spool"], r["size"], r["clients"], r["per_conn"],
                     r.get("txn_p50_ms"), r.get("txn_p99_ms"),
                     r.get("batch_p50_ms"), r.get("ops_per_batch"),
                     r.get("p99_vs_batch"), r.get("greet_p99_ms"),
                     r.get("noop_p50_ms"), r.get("noop_p99_ms"),
                     r.get("loop_runq_wait_pct")])
    return table("latency: MAIL sent -> final 250 (p50, p99), the median "
                 "spool commit batch of the same run (from taking the "
                 "pending operations to the fsync of queue/; /metrics), "
                 "operations per batch, p99 / batch p50 (goal <= 2 at "
                 "64 clients), connect -> 220 p99, NOOP -> 250 on one "
                 "more connection during the run (ms); loop wait = % of "
                 "the run the event-loop thread was runnable but had no "
                 "CPU",
                 ["spool", "size", "clients", "per_conn", "p50", "p99",
                  "batch p50", "ops/batch", "p99/batch", "greet p99",
                  "noop p50", "noop p99", "loop wait %"], rows)


def render(res):
    m = res.get("machine") or {}
    out = ["smartrelay benchmarks (medians of %s runs)" %
           (res.get("meta") or {}).get("runs", "?"),
           "machine: %s CPUs, %s, kernel %s, spool on %s%s (%s), %s MB; "
           "load %s, io pressure %s" % (
               m.get("nproc"), m.get("cpu"), m.get("kernel"),
               m.get("spool_fs"),
               {True: " with journal", False: " without journal"}.get(
                   m.get("spool_fs_journal"), ""),
               m.get("spool_dir"), m.get("mem_mb"), m.get("loadavg"),
               m.get("io_pressure_some_avg60"))]
    mounts = res.get("accept_mounts") or {}
    spool_line = "  " + benchlib.mount_text(m.get("spool_mount"))
    fs = res.get("fsync_by_size")
    if fs:
        out += table("1. fsync ceiling of the spool's file system (create, "
                     "write SIZE, fsync, rename, fsync dir; a fresh "
                     "directory)",
                     ["size", "threads", "commits/s", "MB/s", "runs"],
                     [[int(z), t, v["commits_per_s"],
                       round(v["commits_per_s"] * int(z) / 1e6, 1),
                       " ".join("%.0f" % x for x in v["all"])]
                      for z, by_t in fs.items() for t, v in by_t.items()])
        out.append(spool_line)
    acc = res.get("accept")
    if acc:
        out += accept_table(acc)
        for mode in ("steady", "fresh"):
            if mode in mounts:
                out.append("  %s: %s" % (mode, benchlib.mount_text(
                    mounts[mode])))
        out += latency_table(acc)
    if res.get("ratios"):
        out += table("2b. ceiling ratios (issue 14): msgs/s at one message "
                     "per connection / the fsync ceiling of this run for "
                     "the same file size and the writers named; cpu = "
                     "daemon CPU ms per accepted message",
                     ["size", "clients", "client", "spool", "msgs/s",
                      "writers", "ceiling", "ratio", "goal", "cpu ms/msg"],
                     [[kb(r["size"]), r["clients"], r["client"],
                       r["spool"], r["msgs_per_s"], r["writers"],
                       r["ceiling"], r["ratio"], r["goal"],
                       r["cpu_ms_per_msg"]] for r in res["ratios"]])
        out.append(spool_line)
    dr = res.get("drain") or {}
    if dr.get("sink_ceiling"):
        s = dr["sink_ceiling"]
        out += ["", "4. sink ceiling (bench/sink.c, STARTTLS+AUTH, one "
                "pipelined connection): %s msgs/s, sink CPU %s ms/msg" % (
                    fmt(s["msgs_per_s"]), fmt(s["sink_cpu_ms_per_msg"]))]
    if dr.get("drain"):
        out += table("4. drain into the sink (1 KB messages)",
                     ["queued", "conns", "msgs/s", "READY s", "drain s",
                      "cpu ms/msg", "loop ms/msg", "conns used", "left"],
                     [[r["count"], r["connections"], r["msgs_per_s"],
                       r["ready_s"], r["drain_s"], r["cpu_ms_per_msg"],
                       r["loop_cpu_ms_per_msg"],
                       r["upstream_connections_used"], r["left_in_queue"]]
                      for r in dr["drain"]])
        out.append(spool_line)
    fp = res.get("footprint") or {}
    rows = []
    if "binary" in fp:
        b = fp["binary"]
        rows.append(["binary", "%s bytes file, text %s, data %s, %d "
                     "shared libraries" % (b["file_bytes"], b.get("text"),
                                           b.get("data"),
                                           len(b["libraries"]))])
    if "startup" in fp:
        s = fp["startup"]
        rows.append(["READY", "%s ms empty, %s ms with %s queued" % (
            fmt(s["ready_empty_ms"]), fmt(s["ready_queued_ms"]),
            s["queued"])])
    if "idle" in fp:
        s = fp["idle"]
        top = ", ".join("%s %d" % (x["map"], x["rss_kb"])
                        for x in s["by_mapping"][:4])
        rows.append(["idle RSS", "%s kB (RssAnon %s, RssFile %s, Pss %s); "
                     "largest: %s" % (s["rss_kb"], s["rss_anon_kb"],
                                      s["rss_file_kb"], s["pss_kb"], top)])
    if "wakeups" in fp:
        w = fp["wakeups"]
        rows.append(["idle wake-ups", "%s/s without credentials, %s/s "
                     "with an upstream, queue empty" % (
                         fmt(w["no_credentials_per_s"]),
                         fmt(w["upstream_idle_per_s"]))])
    for kind in ("paced", "burst"):
        c = (fp.get("conns") or {}).get(kind)
        if c:
            rows.append(["%d idle conns, %s" % (
                (res.get("meta") or {}).get("idle_conns", 1000), kind),
                "%s greeted, greet p50 %s p99 %s ms; RSS %s kB (+%s kB/"
                "conn, anon +%s), %s wake-ups/s" % (
                    c["conns"], fmt(c["greet_p50_ms"]),
                    fmt(c["greet_p99_ms"]), c["rss_kb"],
                    fmt(c["rss_per_conn_kb"]), fmt(c["anon_per_conn_kb"]),
                    fmt(c["wakeups_per_s"]))])
    if "big" in fp:
        b = fp["big"]
        rows.append(["25 MB message", "peak RSS %s kB receiving (%s s), "
                     "%s kB relaying (%s s)" % (
                         b["receive"]["vmhwm_kb"],
                         fmt(b["receive"]["txn_s"]),
                         b["relay"]["vmhwm_kb"],
                         fmt(b["relay"]["relay_s"]))])
    if "blocking" in fp:
        b = fp["blocking"]
        rows.append(["loop never blocks", "probe greeting p50 %s p99 %s "
                     "max %s ms (%s probes) while 25 MB streams (%s done) "
                     "and 8 clients commit %s msgs/s; loop thread on CPU "
                     "%s%%, waiting for a CPU %s%%" % (
                         fmt(b["greet_p50_ms"]), fmt(b["greet_p99_ms"]),
                         fmt(b["greet_max_ms"]), b["probes"],
                         b["big_msgs"], fmt(b["small_msgs_per_s"]),
                         fmt(b.get("loop_cpu_pct")),
                         fmt(b.get("loop_runq_wait_pct")))])
    if rows:
        out += ["", "5. footprint"]
        out += ["  %-22s %s" % (k, v) for k, v in rows]
    out += table("targets", ["target", "value", "goal", "verdict"],
                 [[t["target"], t["value"], t["goal"], t["verdict"]]
                  for t in res.get("targets", [])])
    return "\n".join(out)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: report.py WORKDIR OUT.json")
    wd, path = sys.argv[1], sys.argv[2]
    fs = fsync_summary(wd)
    acc, mounts = load_accept(wd)
    res = {"machine": load(wd, "machine.json"), "meta": load(wd, "meta.json"),
           "fsync": (fs or {}).get("1024"), "fsync_by_size": fs,
           "accept": acc, "accept_mounts": mounts,
           "drain": load(wd, "drain.json"),
           "footprint": load(wd, "footprint.json")}
    res["ratios"] = ratios(res)
    res["targets"] = targets(res)
    text = render(res)
    res["table"] = text.splitlines()
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    print(text)


if __name__ == "__main__":
    main()
