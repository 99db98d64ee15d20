#!/usr/bin/env python3
"""Soak the tailer: dozens of writers for minutes while ``sfttop --follow`` follows them all.

Each writer appends records to its own ``runs/wNN/train.log`` the way training jobs and the
file system do: records in random pieces (a line may be split across writes), bursts and lulls,
and now and then a rotation (rename + new file), a truncation in place (``copytruncate``) after
the reader caught up, or the whole file deleted and created again. Half the writers print HF
stdout dicts (no step; tqdm noise between), half JSON lines with an explicit step. Every record
carries a unique sequence number in its ``loss``.

At the end it reports, per the follower's output: records written, read, lost, duplicated, and
the follower's resident memory over time. Zero lost and zero duplicated is the bar.

    python bench/soak.py --writers 32 --seconds 180
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def writer(idx: int, root: Path, stop: threading.Event, written: list[int], seen: dict[int, int],
           seed: int) -> None:
    rnd = random.Random(seed * 1000 + idx)
    d = root / f"w{idx:02d}"
    d.mkdir(parents=True, exist_ok=True)
    path = d / "train.log"
    hf = idx % 2 == 0
    seq = 0
    rotations = 0
    while not stop.is_set():
        burst = rnd.randint(1, 20)
        data = bytearray()
        ids = []
        for _ in range(burst):
            seq += 1
            uid = idx * 10_000_000 + seq
            ids.append(uid)
            if hf:
                if rnd.random() < 0.3:
                    data += b"\r 10%%|#         | %d/100000 [00:10<01:30,  1.0it/s]" % seq
                data += b"{'loss': %d.0, 'grad_norm': 1.0, 'learning_rate': 2e-05, 'epoch': %r}\n" % (uid, seq / 1e6)
            else:
                data += b'{"step": %d, "loss": %d.0, "learning_rate": 2e-05}\n' % (seq, uid)
        # write in random pieces, flushing each, as a buffered writer under load does
        with open(path, "ab") as f:
            pos = 0
            while pos < len(data):
                n = rnd.choice((1, 7, 64, 512, 4096, len(data)))
                f.write(data[pos : pos + n])
                f.flush()
                pos += n
        written.extend(ids)
        r = rnd.random()
        if r < 0.004:
            rotations += 1
            os.rename(path, f"{path}.{rotations}")  # logrotate: the tailer drains the old file
        elif r < 0.006:
            # copytruncate loses what nobody read yet (in any tailer): truncate once the
            # follower has printed everything this writer wrote.
            end = time.time() + 10
            while time.time() < end and not all(u in seen for u in written[-burst:]):
                time.sleep(0.05)
            with open(path, "r+b") as f:
                f.truncate(0)
        time.sleep(rnd.choice((0.0, 0.01, 0.05, 0.2)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writers", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sfttop", default=f"{sys.executable} -m sfttop")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sfttop-soak-"))
    runs = root / "runs"
    runs.mkdir()
    cmd = [*a.sfttop.split(), "--follow", "--format", "jsonl", "--interval", "0.2", str(runs / "*" / "train.log")]
    follower = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: dict[int, int] = {}
    lines = 0

    def reader() -> None:
        nonlocal lines
        assert follower.stdout is not None
        for raw in follower.stdout:
            obj = json.loads(raw)
            if obj.get("kind") == "train":
                uid = int(obj["metrics"]["loss"])
                seen[uid] = seen.get(uid, 0) + 1
            lines += 1

    rt = threading.Thread(target=reader, daemon=True)
    rt.start()
    stop = threading.Event()
    written: list[list[int]] = [[] for _ in range(a.writers)]
    threads = [
        threading.Thread(target=writer, args=(i, runs, stop, written[i], seen, a.seed), daemon=True)
        for i in range(a.writers)
    ]
    for t in threads:
        t.start()
    samples: list[tuple[float, int, int]] = []
    t0 = time.time()
    while time.time() - t0 < a.seconds:
        time.sleep(1.0)
        samples.append((time.time() - t0, rss_kib(follower.pid), len(seen)))
    stop.set()
    for t in threads:
        t.join()
    all_written = [u for w in written for u in w]
    end = time.time() + 60
    while time.time() < end and len(seen) < len(all_written):
        time.sleep(0.5)
    time.sleep(2)
    follower.send_signal(signal.SIGINT)
    try:
        _, err = follower.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        follower.kill()
        _, err = follower.communicate()
    lost = len(set(all_written) - set(seen))
    dup = sum(1 for c in seen.values() if c > 1)
    extra = len(set(seen) - set(all_written))
    rss = [s[1] for s in samples if s[1]]
    third = max(1, len(rss) // 3)
    report = {
        "writers": a.writers,
        "seconds": a.seconds,
        "records_written": len(all_written),
        "records_read": sum(seen.values()),
        "lost": lost,
        "duplicated": dup,
        "unexpected": extra,
        "rss_mib_first_third_max": round(max(rss[:third]) / 1024, 1) if rss else None,
        "rss_mib_last_third_max": round(max(rss[-third:]) / 1024, 1) if rss else None,
        "rss_mib_max": round(max(rss) / 1024, 1) if rss else None,
        "kib_per_1k_records": round((rss[-1] - rss[0]) / max(1, len(all_written) / 1000), 1) if rss else None,
        "tracebacks": err.count(b"Traceback"),
    }
    print(json.dumps(report, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    return 0 if lost == 0 and dup == 0 and extra == 0 and report["tracebacks"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
