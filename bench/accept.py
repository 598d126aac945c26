#!/usr/bin/python3
"""Accept-side benchmark: messages/s into the spool, per-transaction
latency, and the event loop's responsiveness while others commit.

Starts smartrelayd on a loopback port with a temporary spool (no
upstream), drives it with N client threads for a bounded time, then
counts the spool to check that every 250 is a queued message.

usage: bench/accept.py [--daemon PATH] [--clients N] [--size BYTES]
                       [--per-conn M] [--seconds S] [--json FILE]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def start_daemon(binary, tmp):
    spool = os.path.join(tmp, "spool")
    conf = os.path.join(tmp, "bench.conf")
    with open(conf, "w") as f:
        f.write('hostname = "bench.test"\nlisten = {"127.0.0.1:0"}\n'
                'allow = {"127.0.0.0/8"}\nspool = "%s"\nuser = ""\n'
                'max_clients = 1024\nmax_clients_per_ip = 1024\n'
                'log_level = "info"\n'
                'upstream { password_file = "/nonexistent" }\n' % spool)
    log = open(os.path.join(tmp, "daemon.log"), "w+")
    proc = subprocess.Popen([binary, "-d", "-f", conf], stderr=log)
    deadline = time.monotonic() + 20
    port = None
    while time.monotonic() < deadline and port is None:
        log.seek(0)
        m = re.search(r"listening addr=127\.0\.0\.1:(\d+)", log.read())
        if m:
            port = int(m.group(1))
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.01)  # polling the log for a condition
    if port is None:
        proc.kill()
        sys.exit("daemon did not start; see " + log.name)
    # The log level hides the "ready" line; wait until it accepts.
    while time.monotonic() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.recv(512)
            s.close()
            break
        except OSError:
            time.sleep(0.01)
    return proc, port, spool


def recv_reply(sock, buf):
    """Returns (code, rest of buffer) for one complete reply."""
    while True:
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            if len(line) >= 4 and line[3:4] == b" ":
                return int(line[:3]), buf
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk


def client(port, body, per_conn, stop, results, lat):
    buf = b""
    sock = None
    n = 0
    while not stop.is_set():
        if sock is None:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = b""
            code, buf = recv_reply(sock, buf)
            sock.sendall(b"EHLO bench\r\n")
            code, buf = recv_reply(sock, buf)
        t0 = time.perf_counter()
        sock.sendall(b"MAIL FROM:<bench@example.org>\r\n"
                     b"RCPT TO:<sink@example.org>\r\nDATA\r\n")
        for _ in range(3):
            code, buf = recv_reply(sock, buf)
        sock.sendall(body + b".\r\n")
        code, buf = recv_reply(sock, buf)
        lat.append(time.perf_counter() - t0)
        if code == 250:
            results[0] += 1
        else:
            results[1] += 1
        n += 1
        if n % per_conn == 0:
            sock.sendall(b"QUIT\r\n")
            sock.close()
            sock = None
    if sock is not None:
        sock.close()


def probe(port, stop, lat):
    """Measures NOOP round trips while the others commit."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    _, buf = recv_reply(sock, buf)
    while not stop.is_set():
        t0 = time.perf_counter()
        sock.sendall(b"NOOP\r\n")
        _, buf = recv_reply(sock, buf)
        lat.append(time.perf_counter() - t0)
        stop.wait(0.002)
    sock.close()


def pct(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default=os.path.join(
        HERE, "..", "src", "smartrelayd"))
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--per-conn", type=int, default=1000000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()

    line = b"x" * 74 + b"\r\n"
    body = b"Subject: bench\r\n\r\n" + line * max(1, args.size // len(line))
    tmp = tempfile.mkdtemp(prefix="srbench.")
    proc, port, spool = start_daemon(args.daemon, tmp)
    stop = threading.Event()
    results = [0, 0]
    lat, probe_lat = [], []
    threads = [threading.Thread(target=client, args=(
        port, body, args.per_conn, stop, results, lat))
        for _ in range(args.clients)]
    threads.append(threading.Thread(target=probe, args=(
        port, stop, probe_lat)))
    t0 = time.monotonic()
    for t in threads:
        t.start()
    stop.wait(args.seconds)
    stop.set()
    for t in threads:
        t.join(30)
    elapsed = time.monotonic() - t0
    cpu = None
    try:
        with open("/proc/%d/stat" % proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / os.sysconf(
                "SC_CLK_TCK")
        with open("/proc/%d/status" % proc.pid) as f:
            hwm = int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))
    except OSError:
        hwm = 0
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    queued = len([f for f in os.listdir(os.path.join(spool, "queue"))
                  if f.endswith(".env")])
    res = {
        "clients": args.clients, "size": args.size,
        "per_conn": args.per_conn, "seconds": round(elapsed, 2),
        "accepted": results[0], "refused": results[1],
        "queued_in_spool": queued,
        "msgs_per_s": round(results[0] / elapsed, 1),
        "mb_per_s": round(results[0] * len(body) / elapsed / 1e6, 2),
        "lat_p50_ms": round(pct(lat, 0.50) * 1000, 2),
        "lat_p99_ms": round(pct(lat, 0.99) * 1000, 2),
        "noop_p99_ms": round(pct(probe_lat, 0.99) * 1000, 2),
        "cpu_ms_per_msg": round(cpu * 1000 / results[0], 3)
        if cpu and results[0] else None,
        "vmhwm_kb": hwm,
    }
    print(json.dumps(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    shutil.rmtree(tmp, ignore_errors=True)
    if queued < results[0]:
        sys.exit("LOST: %d accepted but %d queued" % (results[0], queued))


if __name__ == "__main__":
    main()
