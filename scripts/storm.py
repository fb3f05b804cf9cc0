#!/usr/bin/env python3
"""Reconnect storm: a fleet of fieldlink agents rides out a server outage on this machine.

N agents (simulated board, one queue each, loopback only, the default `start_delay_max` and
`max_points_per_second` unless given) upload to a small counting HTTP server that stands in for
InfluxDB 1.x. The run has three phases:

  steady    the server is up; the last half of this phase gives the steady request rate
  outage    the server stops listening (connection refused, as a dead server); agents queue
  recovery  the server listens again; the peak requests in any one second are measured

Then every agent is stopped with SIGTERM, `fieldlink sync` drains what each had left, and every
reading each queue counted as sampled must have reached the server (distinct lines per device).

Not part of CI: it runs for minutes and starts hundreds of processes.

  scripts/storm.py --agents 50 --outage 90
  scripts/storm.py --agents 200 --steady 90 --outage 120 --recovery 120
  scripts/storm.py --agents 200 --start-delay-max 0s      # compare with another setting
  scripts/storm.py --agents 50 --spread 0                # all agents started in one second

Exit status 0 when every reading arrived and the peak was at most 2x the steady rate, 1 if
the peak was higher, 2 if readings are missing.
"""

import argparse
import gzip
import http.server
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict

DEVICE = re.compile(rb"device_id=([^,\s]+)")


class Counts:
    """What the server saw: requests and lines per wall-clock second, distinct lines per device."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = defaultdict(int)
        self.lines = defaultdict(int)
        self.by_device = defaultdict(set)

    def record(self, body):
        second = int(time.time())
        lines = [line for line in body.split(b"\n") if line]
        with self.lock:
            self.requests[second] += 1
            self.lines[second] += len(lines)
            for line in lines:
                match = DEVICE.search(line)
                self.by_device[match.group(1).decode() if match else "?"].add(line)


def handler_for(counts, connections):
    class Write(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            with counts.lock:
                connections.add(self.connection)

        def finish(self):
            with counts.lock:
                connections.discard(self.connection)
            super().finish()

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            counts.record(body)
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    return Write


class QuietServer(http.server.ThreadingHTTPServer):
    """Connections cut by the outage are expected: no tracebacks for them."""

    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class Server:
    """A counting InfluxDB stand-in that can go away (closed socket) and come back on its port."""

    def __init__(self, counts, port):
        self.counts, self.port, self.httpd, self.thread = counts, port, None, None
        self.connections = set()

    def up(self):
        self.httpd = QuietServer(("127.0.0.1", self.port), handler_for(self.counts, self.connections))
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def down(self):
        """Stop listening and cut the kept-alive connections too: the agents see a dead server."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.httpd = None
        with self.counts.lock:
            open_connections = list(self.connections)
        for connection in open_connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def board(dir_, index, port, args):
    extra = ""
    if args.start_delay_max is not None:
        extra += f'start_delay_max = "{args.start_delay_max}"\n'
    if args.max_points_per_second is not None:
        extra += f"max_points_per_second = {args.max_points_per_second}\n"
    text = f"""[device]
id = "storm-{index:03}"

[[sensor]]
id = "TLM0100"
kind = "simulated_climate"
interval = "{args.interval}"

[[sensor]]
id = "MOT0200"
kind = "simulated_motion"
interval = "{args.interval}"

[[sensor]]
id = "DOR0300"
kind = "simulated_door"
interval = "{args.interval}"

[queue]
path = "{dir_}/queue.db"

[upload]
url = "http://127.0.0.1:{port}"
api = "v1"
database = "storm"
{extra}"""
    path = os.path.join(dir_, "board.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


def quiet_env():
    env = dict(os.environ, FIELDLINK_LOG="warn")
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "STATE_DIRECTORY", "JOURNAL_STREAM"):
        env.pop(name, None)
    return env


def counters(queue):
    conn = sqlite3.connect(f"file:{queue}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT name, value FROM counters"))
    finally:
        conn.close()


def rates(counts, start, end):
    with counts.lock:
        return [counts.requests.get(s, 0) for s in range(int(start), int(end))]


def phase(name, seconds):
    print(f"{time.strftime('%H:%M:%S')} {name} for {seconds} s", flush=True)
    time.sleep(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--steady", type=int, default=90, help="seconds before the outage (>= start_delay_max + a few)")
    parser.add_argument("--outage", type=int, default=90, help="seconds the server is away")
    parser.add_argument("--recovery", type=int, default=120, help="seconds measured after it returns")
    parser.add_argument("--interval", default="10s", help="each simulated sensor's sampling interval")
    parser.add_argument("--spread", type=float, default=10.0,
                        help="seconds over which the agents start: a fleet is not phase-locked, and agents "
                             "started in one second would commit, and so upload, in the same second forever")
    parser.add_argument("--start-delay-max", default=None, help="upload.start_delay_max (default: the agent's)")
    parser.add_argument("--max-points-per-second", type=int, default=None, help="default: the agent's")
    parser.add_argument("--bin", default=None, help="fieldlink binary (default: target/release, else target/debug)")
    args = parser.parse_args()

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = args.bin or next(
        (p for p in (os.path.join(repo, "target", k, "fieldlink") for k in ("release", "debug")) if os.path.exists(p)),
        None,
    )
    if binary is None:
        sys.exit("no fieldlink binary: run `cargo build --release` or pass --bin")

    counts = Counts()
    server = Server(counts, 0)
    server.up()
    work = tempfile.mkdtemp(prefix="fieldlink-storm-")
    print(f"{args.agents} agents, binary {binary}, server 127.0.0.1:{server.port}, work dir {work}", flush=True)
    agents = []
    for i in range(args.agents):
        dir_ = os.path.join(work, f"agent-{i:03}")
        os.makedirs(dir_)
        path = board(dir_, i, server.port, args)
        log = open(os.path.join(dir_, "log"), "wb")
        proc = subprocess.Popen([binary, "run", "--board", path], env=quiet_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log)
        agents.append((i, dir_, path, proc))
        time.sleep(args.spread / args.agents)

    started = time.time()
    phase("steady", args.steady)
    steady_from, steady_to = started + args.steady / 2, time.time()
    server.down()
    outage_at = time.time()
    phase("outage", args.outage)
    server.up()
    back_at = time.time()
    phase("recovery", args.recovery)
    recovered_at = time.time()

    for _, _, _, proc in agents:
        proc.send_signal(signal.SIGTERM)
    exits = [proc.wait(timeout=60) for _, _, _, proc in agents]
    print(f"{time.strftime('%H:%M:%S')} agents stopped (exit codes: {sorted(set(exits))}); draining with `fieldlink sync`", flush=True)
    for _, _, path, _ in agents:
        subprocess.run([binary, "sync", "--timeout", "60s", "--board", path], env=quiet_env(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    server.down()

    missing, sampled_total, received_total = [], 0, 0
    for i, dir_, _, _ in agents:
        c = counters(os.path.join(dir_, "queue.db"))
        sampled, queued = c.get("sampled", 0), c.get("queued", 0)
        received = len(counts.by_device.get(f"storm-{i:03}", ()))
        sampled_total += sampled
        received_total += received
        if received != sampled or queued != 0:
            missing.append(f"storm-{i:03}: sampled {sampled}, received {received} distinct, queued {queued}")

    steady = rates(counts, steady_from, steady_to)
    recovery = rates(counts, back_at, recovered_at)
    steady_rate = sum(steady) / max(len(steady), 1)
    peak = max(recovery, default=0)
    peak_at = recovery.index(peak) if recovery else 0
    with counts.lock:
        lines_recovery = sum(counts.lines.get(s, 0) for s in range(int(back_at), int(recovered_at)))
    ratio = peak / steady_rate if steady_rate else float("inf")
    print()
    print(f"agents                 {args.agents} (sensor interval {args.interval}, start_delay_max "
          f"{args.start_delay_max or 'default'}, max_points_per_second {args.max_points_per_second or 'default'})")
    print(f"agents started over    {args.spread} s")
    print(f"phases                 steady {args.steady} s, outage {round(back_at - outage_at)} s, recovery {args.recovery} s")
    print(f"steady rate            {steady_rate:.2f} requests/s (mean of {len(steady)} s before the outage, peak {max(steady, default=0)})")
    print(f"peak after return      {peak} requests in one second, {peak_at} s after the server came back ({ratio:.1f}x steady)")
    print(f"during the outage      {sum(rates(counts, outage_at + 1, back_at))} requests answered")
    print(f"first 10 s after       {recovery[:10]}")
    print(f"lines after return     {lines_recovery} in {args.recovery} s")
    print(f"readings               {sampled_total} sampled, {received_total} received (distinct lines)")
    if missing:
        print(f"MISSING readings on {len(missing)} agent(s):")
        for m in missing[:20]:
            print(f"  {m}")
        return 2
    print("every reading arrived")
    if ratio > 2:
        print(f"PEAK above 2x steady ({ratio:.1f}x)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
