"""What remote runs cost: idle CPU here and on the host, bytes on the wire, append-to-record latency.

Starts a throwaway sshd on 127.0.0.1 (tests/sshd.py, needs /usr/sbin/sshd), names it as four
hosts (h1..h4 in its ssh_config), puts ``--runs`` JSON-lines logs on each, and drives a Monitor
the way the TUI does (rescan, poll every run, sleep ``--interval``):

    python bench/remote_cost.py [--runs 16] [--idle 30] [--interval 0.5]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from sfttop.core import remote
from sfttop.core.config import load_config
from sfttop.core.run import Monitor
from sfttop.core.update import RunUpdate
from sshd import make_server, unavailable

HOSTS = ("h1", "h2", "h3", "h4")


def line(step: int) -> bytes:
    return orjson.dumps({"current_steps": step, "total_steps": 10**6, "loss": 2.0 - step * 1e-6,
                         "lr": 1e-5, "epoch": step / 1000}) + b"\n"


def cpu_of(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def ssh_pids(control_dir: str) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if control_dir.encode() in Path(f"/proc/{d}/cmdline").read_bytes():
                    out.append(int(d))
            except OSError:
                pass
    return out


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def tick(mon: Monitor) -> dict[str, RunUpdate]:
    mon.rescan()
    return mon.poll()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=16, help="runs per host")
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of idle polling measured")
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--samples", type=int, default=40, help="appends timed for latency")
    a = ap.parse_args()
    why = unavailable()
    if why:
        print(f"skipped: {why}")
        return 0
    root = Path(tempfile.mkdtemp(prefix="sfttop-rbench-"))
    srv = make_server(root / "srv")
    srv.start()
    remote.set_ssh_command(srv.ssh_command)
    try:
        logs = []
        for h in HOSTS:
            for i in range(a.runs):
                p = root / h / f"r{i:02d}" / "trainer_log.jsonl"
                p.parent.mkdir(parents=True)
                p.write_bytes(b"".join(line(s) for s in range(1, 201)))
                logs.append(p)
        mon = Monitor([f"{h}:{root}/{h}/*/" for h in HOSTS], load_config(None), remote_wait=30)
        assert mon._remotes is not None
        while mon.loading or len(mon.runs) < len(logs):
            tick(mon)
        assert len(mon.runs) == len(HOSTS) * a.runs, len(mon.runs)
        hosts = list(mon._remotes.hosts.values())
        cdir = mon._remotes.control_dir()

        # idle
        for _ in range(4):
            tick(mon)
            time.sleep(a.interval)
        ssh0, agent0, me0, t0 = cpu_of(ssh_pids(cdir)), cpu_of(srv.session_pids()), self_cpu(), time.monotonic()
        wire0 = sum(h.traffic.wire_in for h in hosts)
        while time.monotonic() - t0 < a.idle:
            tick(mon)
            time.sleep(a.interval)
        dt = time.monotonic() - t0
        me = (self_cpu() - me0) / dt * 100
        ssh = (cpu_of(ssh_pids(cdir)) - ssh0) / dt * 100
        agent = (cpu_of(srv.session_pids()) - agent0) / dt * 100
        idle_wire = (sum(h.traffic.wire_in for h in hosts) - wire0) / dt
        print(f"idle, {len(HOSTS)} hosts x {a.runs} runs, interval {a.interval:g} s, {dt:.0f} s:")
        print(f"  sfttop process       {me:.2f}% of a core")
        print(f"  local ssh processes  {ssh:.2f}% of a core (all hosts)")
        print(f"  remote side          {agent:.2f}% of a core for {len(HOSTS)} hosts "
              f"(sshd sessions + agents) = {agent / len(HOSTS):.2f}% per host")
        print(f"  bytes received       {idle_wire:.0f} B/s")

        # appends: bytes on the wire vs bytes appended, and latency to a parsed record
        step = 10_000
        appended = 0
        wire1 = sum(h.traffic.wire_in for h in hosts)
        data1 = sum(h.traffic.file_bytes for h in hosts)
        lat = []
        rng = random.Random(1)
        for _ in range(a.samples):
            p = rng.choice(logs)
            step += 1
            b = b"".join(line(s) for s in range(step, step + 5))
            step += 5
            tick(mon)  # the poll cycle goes on as in the TUI; the append lands anywhere in it
            r = rng.uniform(0, a.interval)
            time.sleep(r)
            with open(p, "ab") as f:
                f.write(b)
            appended += len(b)
            t = time.monotonic()
            time.sleep(a.interval - r)
            while not any(up.records for up in tick(mon).values()):
                time.sleep(a.interval)
            lat.append(time.monotonic() - t)
        wire = sum(h.traffic.wire_in for h in hosts) - wire1
        data = sum(h.traffic.file_bytes for h in hosts) - data1
        lat.sort()
        print(f"appends: {appended} B appended in {a.samples} writes; file data received {data} B, "
              f"all bytes received {wire} B ({wire / appended:.2f}x, idle polling included)")
        print(f"append -> record: median {statistics.median(lat) * 1000:.0f} ms, "
              f"p95 {lat[int(0.95 * (len(lat) - 1))] * 1000:.0f} ms (interval {a.interval:g} s)")
        mon.close()

        # the same runs read locally, for comparison
        local = Monitor([f"{root}/{h}/*/" for h in HOSTS], load_config(None))
        while local.loading:
            tick(local)
        me0, t0 = self_cpu(), time.monotonic()
        while time.monotonic() - t0 < a.idle:
            tick(local)
            time.sleep(a.interval)
        print(f"the same {len(local.runs)} runs as local files: sfttop process "
              f"{(self_cpu() - me0) / (time.monotonic() - t0) * 100:.2f}% of a core")
    finally:
        remote.set_ssh_command(None)
        srv.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
