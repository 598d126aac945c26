#!/usr/bin/python3
"""Drain benchmark: how fast smartrelayd empties a queue into a local
TLS+AUTH upstream (tests/upstream.py, aiosmtpd).

Plants N committed 1 KB messages straight into a fresh spool (the format
of src/envelope.c), starts the test upstream (STARTTLS + AUTH), then
starts the daemon and times until the upstream has received all N.
Reports messages/s, the daemon's CPU per message, and the connections
used.  Run with Debian's /usr/bin/python3 (python3-aiosmtpd).

usage: bench/drain.py [--daemon PATH] [--count N] [--connections C]
                      [--json FILE]
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import certs  # noqa: E402
from upstream import Upstream  # noqa: E402


def plant(spool, n, size):
    """Writes n committed messages into spool/queue."""
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


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=os.path.join(
        HERE, "..", "src", "smartrelayd"))
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--json")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="srdrain.")
    up = Upstream(os.path.join(tmp, "up"), tls="starttls")
    up.start()
    pki = certs.make_pki(os.path.join(tmp, "up", "pki"))
    pw = os.path.join(tmp, "pw")
    with open(pw, "w") as f:
        f.write("secret\n")
    os.chmod(pw, 0o600)
    spool = os.path.join(tmp, "spool")
    plant(spool, args.count, args.size)
    conf = os.path.join(tmp, "d.conf")
    with open(conf, "w") as f:
        f.write('hostname = "relay.test"\nlisten = {"127.0.0.1:0"}\n'
                'spool = "%s"\nuser = ""\nlog_level = "warn"\n'
                'upstream { host = "127.0.0.1" port = %d '
                'tls = "starttls" verify_name = "upstream.test" '
                'ca_file = "%s" username = "user@test" '
                'password_file = "%s" connections = %d }\n'
                % (spool, up.port, pki.ca_crt, pw, args.connections))
    log = open(os.path.join(tmp, "d.log"), "w+")
    t0 = time.monotonic()
    d = subprocess.Popen([args.daemon, "-d", "-f", conf], stderr=log)
    msgdir = os.path.join(tmp, "up", "messages")
    deadline = t0 + args.timeout
    got = 0
    while time.monotonic() < deadline:
        got = len([f for f in os.listdir(msgdir) if f.endswith(".json")])
        if got >= args.count or d.poll() is not None:
            break
        time.sleep(0.05)  # polling a count, bounded by --timeout
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(d.pid) if d.poll() is None else None
    d.send_signal(signal.SIGTERM)
    d.wait(30)
    conns = {m.conn_id for m in up.messages()}
    up.stop()
    left = len([f for f in os.listdir(os.path.join(spool, "queue"))
                if f.endswith(".env")])
    res = {"count": args.count, "connections": args.connections,
           "received": got, "seconds": round(elapsed, 2),
           "msgs_per_s": round(got / elapsed, 1),
           "cpu_ms_per_msg": round(cpu * 1000 / got, 3)
           if cpu and got else None,
           "upstream_connections_used": len(conns),
           "left_in_queue": left}
    print(json.dumps(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    log.seek(0)
    errs = [ln for ln in log.read().splitlines() if "<3>" in ln]
    if errs:
        print("\n".join(errs[:5]), file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
