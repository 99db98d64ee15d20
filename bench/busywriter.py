"""Appends HF 4.x-style records to several logs at a steady rate: the writers of bench.py's
``busy`` figure (plain Python, as a training script's print() would, a tqdm bar glued in front
of each dict line as in real captures).

    python bench/busywriter.py --rate 2 --seconds 40 --times T.txt LOG [LOG ...]
    python bench/busywriter.py --plain --noisy ...   # bare dict lines, a noisy falling loss

``--plain`` writes the dict alone on its line (a trainer run with ``disable_tqdm``, or a log
that has its bar elsewhere); ``--noisy`` gives the other logs a loss that falls slowly with
noise around it, as a real run's does, instead of a sawtooth of tiny steps (the diagnoser's rules
see a different series: a monotone one lets its bulk path prove a block quiet more often).

Each log gets ``rate`` records a second, the writes of all logs spread evenly over the second.
The first log's losses are unique (0.1000, 0.1001, ...; wrapping after 0.8999) so a screen
scraper can tell which record it shows; ``--times`` gets one line per record of the first log:
``k loss monotonic-seconds`` (CLOCK_MONOTONIC: comparable with the bench's own clock).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time


def line(k: int, loss: float, start: int, plain: bool = False) -> bytes:
    """Record ``k`` after ``start`` records of a genlogs history (logging every 5 steps, three
    epochs over it): step, epoch and tokens go on from where the history ends, as a resumed or
    longer run's would (an epoch that went back would read as a restart)."""
    step = (start + k + 1) * 5
    rec = {
        "loss": loss,
        "grad_norm": 1.0123 + (k % 7) * 0.01,
        "learning_rate": 1e-05,
        "entropy": 0.9104,
        "num_tokens": float(step * 8192),
        "mean_token_accuracy": 0.8812,
        "epoch": round(3.0 * step / (5 * start), 4),
    }
    if plain:
        return (str(rec) + "\n").encode()
    total = 100 * start
    bar = f"\r{100 * step // total:3d}%|█████     | {step}/{total} [11:06:40<00:00,  1.25it/s]"
    return (bar + str(rec) + "\n").encode()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, required=True, help="records per second per log")
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--start", type=int, default=100_000, help="records already in each log")
    ap.add_argument("--times", required=True)
    ap.add_argument("--plain", action="store_true", help="no tqdm bar before the dict")
    ap.add_argument("--noisy", action="store_true", help="a noisy falling loss in the other logs")
    ap.add_argument("logs", nargs="+")
    a = ap.parse_args()
    rng = random.Random(0)
    fds = [os.open(p, os.O_WRONLY | os.O_APPEND) for p in a.logs]
    n = len(fds)
    gap = 1.0 / (a.rate * n)  # one write every gap seconds, round robin over the logs
    out = open(a.times, "w", buffering=1)
    t0 = time.monotonic()
    end = t0 + a.seconds
    i = 0
    try:
        while True:
            due = t0 + i * gap
            now = time.monotonic()
            if due > end:
                break
            if due > now:
                time.sleep(due - now)
            j = i % n
            k = i // n
            if j == 0:
                loss = round(0.1 + (k % 8000) * 0.0001, 4)
                os.write(fds[0], line(k, loss, a.start, a.plain))
                out.write(f"{k} {loss:.4f} {time.monotonic():.6f}\n")
            elif a.noisy:
                level = 0.3 + 0.5 / (1 + k / 500)
                os.write(fds[j], line(k, round(level * (1 + rng.gauss(0, 0.05)), 4), a.start, a.plain))
            else:
                os.write(fds[j], line(k, round(0.3 + (k % 997) * 0.0002, 4), a.start, a.plain))
            i += 1
    except KeyboardInterrupt:
        pass
    finally:
        for fd in fds:
            os.close(fd)
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
