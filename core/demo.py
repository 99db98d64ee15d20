"""``sfttop --demo``: simulated fine-tuning runs written live into a temporary directory.

Three runs, each a ``train.log`` shaped like what transformers 4.x prints to a captured stdout:
the ``***** Running training *****`` banner, tqdm bars redrawn with ``\\r``, one Python dict repr
per logging step (bare ``nan`` when a value is not finite) and an eval dict every few logging
steps, ``checkpoint-N`` directories at save steps, and the final ``train_runtime`` summary.

- ``healthy``: loss falls and flattens, eval loss tracks it, cosine LR after warmup.
- ``overfit``: train loss sinks towards zero while eval loss turns and rises.
- ``explode``: grad_norm climbs past 10, then 20, and loss and grad_norm go NaN about ten
  seconds after start.

Some history is written at once, so the first screen already has curves; then one logging step
per run every ``0.25 / speed`` seconds. Values come from a seeded generator: the same speed gives
the same files.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

LOGGING_STEPS = 10
EVAL_EVERY = 10  # logging steps between evaluations
SAVE_EVERY = 50  # logging steps between checkpoints
MAX_STEPS = 4000
HISTORY = 40  # logging steps written at start
TICK = 0.25  # seconds per logging step at speed 1
ITS = 5.0  # pretend iterations per second (for the tqdm bar's times)
EXPLODE_FROM = 58  # logging step where grad_norm starts to climb
NAN_FROM = 80  # logging step where the exploding run's values go NaN
NAN_LINES = 24  # NaN records logged before that run stops writing


def _clock(seconds: float) -> str:
    s = max(0, int(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _bar(step: int, total: int) -> str:
    frac = step / total
    filled = int(frac * 10)
    bar = "█" * filled + " " * (10 - filled)
    rate = f"{ITS:.2f}it/s"
    return f"{int(frac * 100):3d}%|{bar}| {step}/{total} [{_clock(step / ITS)}<{_clock((total - step) / ITS)}, {rate}]"


def _lr(step: int, peak: float, warmup: int = 200) -> float:
    if step < warmup:
        return peak * step / warmup
    p = (step - warmup) / max(1, MAX_STEPS - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))


@dataclass
class DemoRun:
    """One simulated run: ``values(i)`` gives the train and (maybe) eval dicts of logging step i."""

    name: str
    seed: int
    i: int = 0  # logging steps written so far
    done: bool = False
    rnd: random.Random = field(init=False)
    path: str = ""

    def __post_init__(self) -> None:
        self.rnd = random.Random(self.seed)

    # trajectories ---------------------------------------------------------------------------
    def train(self, i: int) -> dict[str, float]:
        r = self.rnd
        step = i * LOGGING_STEPS
        epoch = round(step / (MAX_STEPS / 3), 4)
        noise = r.gauss(0, 1)
        if self.name == "overfit":
            loss = 0.02 + 1.9 * math.exp(-i / 9) + 0.015 * abs(noise)
            grad = 0.6 + 1.4 * math.exp(-i / 20) + 0.15 * abs(r.gauss(0, 1))
            ent = 0.35 + 1.3 * math.exp(-i / 15) + 0.03 * noise
            acc = min(0.995, 0.55 + 0.44 * (1 - math.exp(-i / 10)) + 0.005 * noise)
            lr = _lr(step, 5e-5)
        elif self.name == "explode":
            loss = 2.3 * math.exp(-i / 30) + 0.9 + 0.06 * noise
            grad = 1.2 + 0.5 * abs(r.gauss(0, 1))
            if i >= EXPLODE_FROM:
                k = i - EXPLODE_FROM
                grad = 2.5 * 1.28**k + 0.3 * abs(noise)
                loss += 0.04 * k * k
            ent = 1.9 + 0.06 * noise
            acc = 0.5 + 0.2 * (1 - math.exp(-i / 25)) + 0.01 * noise
            lr = _lr(step, 8e-4)
            if i >= NAN_FROM:
                loss = grad = math.nan
                ent = math.nan
        else:
            loss = 0.3 + 1.9 * math.exp(-i / 70) + 0.03 * noise
            grad = 0.9 + 0.4 * abs(r.gauss(0, 1)) + 0.5 * math.exp(-i / 15)
            ent = 1.2 + 0.6 * math.exp(-i / 60) + 0.03 * noise
            acc = 0.55 + 0.4 * (1 - math.exp(-i / 60)) + 0.004 * noise
            lr = _lr(step, 2e-5)
        return {
            "loss": round(loss, 4),
            "grad_norm": round(grad, 4),
            "learning_rate": float(f"{lr:.4e}"),
            "entropy": round(ent, 4),
            "num_tokens": float(step * 4096),
            "mean_token_accuracy": round(acc, 4),
            "epoch": epoch,
        }

    def eval(self, i: int) -> dict[str, float]:
        r = self.rnd
        step = i * LOGGING_STEPS
        epoch = round(step / (MAX_STEPS / 3), 4)
        if self.name == "overfit":
            # U-shaped: best around logging step 25, then rising and levelling off, as a real
            # overfit eval loss does (1.2 at its best, about 2.1 by the end, not tens)
            turn = max(0, i - 22)
            ev = 1.05 + 0.9 * math.exp(-i / 8) + 1.1 * (1 - math.exp(-turn / 120)) + 0.01 * r.gauss(0, 1)
            acc = 0.72 - 0.1 * (1 - math.exp(-max(0, i - 25) / 100)) + 0.003 * r.gauss(0, 1)
            ent = 1.4 + 0.5 * (1 - math.exp(-i / 150))
        elif self.name == "explode":
            ev = 2.3 * math.exp(-i / 30) + 1.0 + (0.08 * (i - EXPLODE_FROM) if i > EXPLODE_FROM else 0.0)
            if i >= NAN_FROM:
                ev = math.nan
            acc = 0.52 + 0.15 * (1 - math.exp(-i / 25))
            ent = 1.95
        else:
            ev = 0.36 + 1.95 * math.exp(-i / 70) + 0.02 * r.gauss(0, 1)
            acc = 0.56 + 0.37 * (1 - math.exp(-i / 60))
            ent = 1.25 + 0.6 * math.exp(-i / 60)
        return {
            "eval_loss": round(ev, 4),
            "eval_runtime": round(11.8 + 0.3 * r.random(), 3),
            "eval_samples_per_second": round(42.0 + r.random(), 3),
            "eval_steps_per_second": round(5.3 + 0.1 * r.random(), 3),
            "eval_entropy": round(ent, 4),
            "eval_num_tokens": float(step * 4096),
            "eval_mean_token_accuracy": round(acc, 4),
            "epoch": epoch,
        }

    # text -----------------------------------------------------------------------------------
    def header(self) -> str:
        return (
            "***** Running training *****\n"
            "  Num examples = 16,000\n"
            "  Num Epochs = 3\n"
            "  Instantaneous batch size per device = 4\n"
            "  Total train batch size (w. parallel, distributed & accumulation) = 12\n"
            "  Gradient Accumulation steps = 3\n"
            f"  Total optimization steps = {MAX_STEPS:,}\n"
            "  Number of trainable parameters = 4,194,304\n"
        )

    def next_text(self) -> str:
        """The text of the next logging step (tqdm bar, dict line, maybe an eval and a summary)."""
        if self.done:
            return ""
        self.i += 1
        i = self.i
        step = i * LOGGING_STEPS
        parts = []
        # tqdm redraws the bar a few times between logging steps; the dict lands after the bar.
        for s in range(step - LOGGING_STEPS + 4, step + 1, 3):
            parts.append("\r" + _bar(s, MAX_STEPS))
        parts.append("\r" + _bar(step, MAX_STEPS))
        parts.append("\n" + repr(self.train(i)) + "\n")
        if i % EVAL_EVERY == 0:
            parts.append("\r" + "".join(f"\r{int(100 * k / 8):3d}%|{'█' * k}{' ' * (10 - k)}| {k}/8 [00:01<00:00, 6.5it/s]" for k in (2, 5, 8)))
            parts.append("\n" + repr(self.eval(i)) + "\n")
        if i % SAVE_EVERY == 0 and self.path:
            os.makedirs(os.path.join(os.path.dirname(self.path), f"checkpoint-{step}"), exist_ok=True)
        if self.name == "explode" and i >= NAN_FROM + NAN_LINES:
            self.done = True  # it stops logging (hung on NaN): sfttop will call it stalled
        if step >= MAX_STEPS:
            runtime = MAX_STEPS / ITS
            parts.append(
                "\n"
                + repr(
                    {
                        "train_runtime": runtime,
                        "train_samples_per_second": round(MAX_STEPS * 12 / runtime, 3),
                        "train_steps_per_second": ITS,
                        "train_loss": self.train(i)["loss"],
                        "epoch": 3.0,
                    }
                )
                + "\n"
            )
            self.done = True
        return "".join(parts)


RUN_NAMES = ("healthy", "overfit", "explode")


class DemoWriter:
    """Write the demo runs into ``root/<run>/train.log``, live, from a daemon thread."""

    def __init__(self, root: str | None = None, speed: float = 1.0, history: int = HISTORY) -> None:
        self._own = root is None
        self.root = root if root is not None else tempfile.mkdtemp(prefix="sfttop-demo-")
        self.speed = max(0.01, float(speed))
        self.history = history
        self.runs = [DemoRun(name, seed) for seed, name in enumerate(RUN_NAMES)]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_error: Callable[[BaseException], None] | None = None
        for run in self.runs:
            d = os.path.join(self.root, run.name)
            os.makedirs(d, exist_ok=True)
            run.path = os.path.join(d, "train.log")

    @property
    def paths(self) -> list[str]:
        return [r.path for r in self.runs]

    @property
    def glob(self) -> str:
        return os.path.join(self.root, "*", "train.log")

    def write_history(self) -> None:
        """The banner and the first ``history`` logging steps of every run, at once."""
        for run in self.runs:
            with open(run.path, "a", encoding="utf-8") as f:
                f.write(run.header())
                for _ in range(self.history):
                    f.write(run.next_text())

    def tick(self) -> None:
        """One more logging step of every run still going."""
        for run in self.runs:
            text = run.next_text()
            if text:
                with open(run.path, "a", encoding="utf-8") as f:
                    f.write(text)

    def start(self) -> None:
        self.write_history()
        self._thread = threading.Thread(target=self._loop, name="sfttop-demo", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            while not self._stop.wait(TICK / self.speed):
                if all(r.done for r in self.runs):
                    return
                self.tick()
        except OSError as e:  # the directory was removed under us
            if self.on_error is not None:
                self.on_error(e)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        if self._own:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DemoWriter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
