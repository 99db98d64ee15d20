#!/usr/bin/env python3
"""Deterministic, realistic training logs for the tests and the benchmark (``bench/bench.py``
imports this through ``bench/genlogs.py``), and record streams that exercise every rule.

Shapes (``--shape``):

- ``hf4``: what ``python train.py > train.log 2>&1`` leaves with transformers 4.x / TRL: a
  Python dict repr per logging step with raw floats (``'loss': 0.4127``, float32 noise such as
  ``'grad_norm': 1.8964424133300781``, ``'epoch': 0.44``), an eval dict every ``eval_every``
  records, tqdm bars, the odd warning and ``Saving model checkpoint`` line.
- ``hf5``: the same with transformers 5.x, which prints every value as a quoted ``'%.4g'``
  string (``'loss': '0.4127'``, ``'epoch': '0.4444'``).
- ``hf4plain``: ``hf4`` without tqdm (``disable_tqdm=True``): dict lines and warnings only.
- ``jsonl``: the same records as JSON lines with an explicit ``step`` (and the floor's input).

The HF shapes model the two streams faithfully rather than putting one bar before each line:
tqdm writes its bar to stderr, unbuffered, once per optimizer step (clearing and redrawing it
around each ``tqdm.write`` of a log dict), while the dicts go to stdout, which is block-buffered
when redirected to a file and reaches the file ~8 KiB at a time, at ``write()`` boundaries. So
the file holds long ``\\r``-joined runs of bar redraws, then a burst of ~30 dict lines, the first
one glued to the last bar, and now and then a dict whose newline arrives after the next bars.

The last train record has ``loss`` = ``SENTINEL_LOSS`` (every other loss is >= 0.1), so a
screen scraper can tell when the last record is shown; the file ends with that record's line,
after a block of ``FINAL_BLOCK`` records (more than a screenful) with no bar redraws among them.

    python bench/genlogs.py out.log --shape hf4 --records 200000
"""

from __future__ import annotations

import argparse
import math
import os
import random
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

from sfttop.core.records import Kind, Record

GEN_VERSION = 4  # bump when the output changes: cached files are keyed by it
SENTINEL_LOSS = 0.0424
FINAL_BLOCK = 36  # stdout is flushed this many records before the end (see write_hf)
TEXT_CHUNK = 8192  # io.TextIOWrapper._CHUNK_SIZE
RAW_BUFFER = 4096  # BufferedWriter: st_blksize of the log file (4096 on ext4, xfs, overlayfs)
SHAPES = ("hf4", "hf5", "hf4plain", "jsonl")
_BLOCKS = " ▏▎▍▌▋▊▉█"
_PACK = struct.Struct("f")


def _f32(x: float) -> float:
    """x as a float32 tensor's ``.item()`` would give it (``1.8964424133300781``)."""
    return float(_PACK.unpack(_PACK.pack(x))[0])


def records(
    n: int, seed: int, eval_every: int = 100, logging_steps: int = 5
) -> Iterator[tuple[str, int, dict[str, float]]]:
    """(kind, step, values) for ``n`` train records plus an eval every ``eval_every``.

    Values are floats at full precision; the writers round them as each library does.
    """
    rnd = random.Random(seed)
    total = n * logging_steps
    warm = max(1, total // 33)
    peak_lr = 2e-5
    tokens_per_step = 4 * 2048
    gauss = rnd.gauss
    for i in range(1, n + 1):
        step = i * logging_steps
        frac = step / total
        if step < warm:
            lr = peak_lr * step / warm
        else:
            lr = peak_lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
        smooth = 0.28 + 1.9 * math.exp(-frac * 6)
        loss = max(0.1, smooth + gauss(0, 0.03))
        if i == n:
            loss = SENTINEL_LOSS
        rec = {
            "loss": loss,
            "grad_norm": _f32(abs(0.9 + 0.5 * math.exp(-frac * 4) + gauss(0, 0.15))),
            "learning_rate": lr,
            "entropy": _f32(0.9 + 0.8 * math.exp(-frac * 5) + gauss(0, 0.02)),
            "num_tokens": float(step * tokens_per_step),
            "mean_token_accuracy": _f32(min(0.99, 0.58 + 0.3 * (1 - math.exp(-frac * 6)) + gauss(0, 0.01))),
            "epoch": 3.0 * frac,
        }
        yield "train", step, rec
        if i % eval_every == 0 and i != n:
            yield (
                "eval",
                step,
                {
                    "eval_loss": smooth * 1.07,
                    "eval_runtime": 92.38 + gauss(0, 0.5),
                    "eval_samples_per_second": 20.415 + gauss(0, 0.1),
                    "eval_steps_per_second": 2.555 + gauss(0, 0.01),
                    "eval_entropy": _f32(0.95 + 0.8 * math.exp(-frac * 5)),
                    "eval_num_tokens": float(step * tokens_per_step),
                    "eval_mean_token_accuracy": _f32(0.57 + 0.3 * (1 - math.exp(-frac * 6))),
                    "epoch": 3.0 * frac,
                },
            )


def hf4_line(kind: str, rec: dict[str, float]) -> str:
    """``str(logs)`` as transformers 4.x prints it: loss rounded to 4, epoch to 2."""
    out = dict(rec)
    if kind == "train":
        out["loss"] = round(rec["loss"], 4)
    out["epoch"] = round(rec["epoch"], 2)
    if kind == "eval":
        out["eval_runtime"] = round(rec["eval_runtime"], 4)
        out["eval_samples_per_second"] = round(rec["eval_samples_per_second"], 3)
        out["eval_steps_per_second"] = round(rec["eval_steps_per_second"], 3)
    return str(out)


def hf5_line(kind: str, rec: dict[str, float]) -> str:
    """transformers 5.x: every value as a ``'%.4g'`` string."""
    return str({k: f"{v:.4g}" for k, v in rec.items()})


def jsonl_line(kind: str, step: int, rec: dict[str, float]) -> bytes:
    import orjson

    out = dict(rec)
    if kind == "train":
        out["loss"] = round(rec["loss"], 4)
    out["step"] = step
    return orjson.dumps(out)


def _clock(seconds: float) -> str:
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _bar(n: int, total: int, rate: float, elapsed: float) -> str:
    frac = n / total
    cells = frac * 10
    full = int(cells)
    bar = "█" * full
    if full < 10:
        bar += _BLOCKS[int((cells - full) * 8)] + " " * (9 - full)
    left = (total - n) / rate if rate > 0 else 0
    speed = f"{rate:.2f}it/s" if rate >= 1 else f"{1 / rate:.2f}s/it"
    return f"{int(frac * 100):3d}%|{bar}| {n}/{total} [{_clock(elapsed)}<{_clock(left)}, {speed}]"


def write_hf(path: str, shape: str, n: int, seed: int, eval_every: int = 100, logging_steps: int = 5) -> int:
    """Write an HF stdout capture; return its size in bytes."""
    rnd = random.Random(seed + 7919)
    line_of = hf5_line if shape == "hf5" else hf4_line
    bars = shape != "hf4plain"
    total = n * logging_steps
    file = bytearray()
    # stdout as CPython buffers it when redirected to a file: TextIOWrapper gathers write()s
    # into chunks of at most 8 KiB (flushing *before* a write that would overflow), and the
    # BufferedWriter under it (st_blksize, 4 KiB) passes a chunk bigger than its buffer straight
    # to the file. So stdout reaches the file ~8 KiB at a time at write() boundaries, almost
    # always after a "\n" (print() writes the dict and its newline separately: now and then
    # the newline comes with the next block, after more bar redraws).
    pending: list[bytes] = []
    pending_len = 0
    buffered = bytearray()
    out = open(path, "wb")

    def raw(b: bytes | bytearray) -> None:
        nonlocal file
        file += b
        if len(file) > 1 << 22:
            out.write(file)
            file = bytearray()

    def stderr(s: str) -> None:
        raw(s.encode())  # stderr: unbuffered, straight to the file

    def text_flush() -> None:
        nonlocal pending_len, buffered
        if not pending:
            return
        chunk = b"".join(pending)
        pending.clear()
        pending_len = 0
        if len(buffered) + len(chunk) <= RAW_BUFFER:
            buffered += chunk
            return
        raw(buffered)
        buffered = bytearray()
        if len(chunk) > RAW_BUFFER:
            raw(chunk)
        else:
            buffered += chunk

    def stdout(s: str) -> None:
        nonlocal pending_len
        b = s.encode()
        if pending_len + len(b) > TEXT_CHUNK:
            text_flush()
        pending.append(b)
        pending_len += len(b)
        if pending_len >= TEXT_CHUNK:
            text_flush()

    stderr(
        "/opt/conda/lib/python3.11/site-packages/transformers/training_args.py:1575: FutureWarning: "
        "`evaluation_strategy` is deprecated and will be removed in version 4.46 of 🤗 Transformers. "
        "Use `eval_strategy` instead\n  warnings.warn(\n"
    )
    if bars:
        for what, count in (("Tokenizing train dataset", 52000), ("Truncating train dataset", 52000)):
            stderr(f"\r{what}:   0%|          | 0/{count} [00:00<?, ? examples/s]")
            stderr(f"\r{what}: 100%|██████████| {count}/{count} [00:05<00:00, 9876.54 examples/s]\n")
    stderr(
        "***** Running training *****\n  Num examples = 52,000\n  Num Epochs = 3\n"
        "  Instantaneous batch size per device = 4\n  Gradient Accumulation steps = 1\n"
        f"  Total optimization steps = {total:,}\n  Number of trainable parameters = 20,971,520\n"
    )
    elapsed = 0.0
    rate = 1.25
    last_bar = _bar(0, total, rate, 0.0)

    def bar(s: str) -> None:
        if bars:
            stderr(s)

    def message(text: str) -> None:
        # a line printed to stderr while the bar is drawn: it ends the bar's line
        stderr(("\n" if bars else "") + text)
        bar("\r" + last_bar)

    bar(f"\r  0%|          | 0/{total} [00:00<?, ?it/s]")
    step_done = 0
    n_train = 0
    for kind, step, rec in records(n, seed, eval_every, logging_steps):
        if kind == "train":
            n_train += 1
            if n_train == n - FINAL_BLOCK + 1:
                # stdout flushed here (a print(..., flush=True)), so the file's last screenful
                # (the last FINAL_BLOCK records, one block) holds records, not bar redraws: a
                # line viewer's best case, whatever n is.
                text_flush()
                raw(buffered)
                buffered = bytearray()
            # one redraw per optimizer step (tqdm's mininterval is far below a step's time)
            pieces = []
            for s in range(step_done + 1, step + 1):
                rate = 1.25 + 0.1 * math.sin(s / 997) + rnd.uniform(-0.03, 0.03)
                elapsed += 1 / rate
                last_bar = _bar(s, total, rate, elapsed)
                pieces.append("\r" + last_bar)
            step_done = step
            bar("".join(pieces))
            # tqdm.write(str(logs)): clear the bar, print to stdout, redraw the bar
            bar("\r" + " " * len(last_bar) + "\r")
            stdout(line_of(kind, rec))
            stdout("\n")
            bar("\r" + last_bar)
            if n_train % 500 == 0 and n_train != n:
                message(f"Saving model checkpoint to outputs/checkpoint-{step}\n")
            if n_train % 5000 == 0 and n_train != n:
                message(
                    "/opt/conda/lib/python3.11/site-packages/torch/utils/checkpoint.py:92: UserWarning: "
                    "None of the inputs have requires_grad=True. Gradients will be None\n"
                    "  warnings.warn(\n"
                )
        else:
            # the evaluation bar (position 1, under the training bar), then the eval dict
            e_total = 46
            bar(f"\n\r  0%|          | 0/{e_total} [00:00<?, ?it/s]\x1b[A")
            for k in (12, 24, 36, 46):
                bar(f"\r\n\r{_bar(k, e_total, 2.1, k / 2.1)}\x1b[A")
            bar("\r" + " " * 47 + "\x1b[A\r" + " " * len(last_bar) + "\r")
            stdout(line_of(kind, rec))
            stdout("\n")
            bar("\r" + last_bar)
    # The file ends with the last record on its own line: the bar is cleared (a checkpoint
    # save, tqdm.write) and stdout's buffer reaches the file.
    bar("\r" + " " * len(last_bar) + "\r\n")
    text_flush()
    raw(buffered)
    out.write(file)
    size = out.tell()
    out.close()
    return size


def write_jsonl(path: str, n: int, seed: int, eval_every: int = 100, logging_steps: int = 5) -> int:
    with open(path, "wb") as f:
        buf = bytearray()
        for kind, step, rec in records(n, seed, eval_every, logging_steps):
            buf += jsonl_line(kind, step, rec)
            buf += b"\n"
            if len(buf) > 1 << 22:
                f.write(buf)
                buf = bytearray()
        f.write(buf)
        return f.tell()


def write(path: str, shape: str, n: int, seed: int = 0, eval_every: int = 100, logging_steps: int = 5) -> int:
    if shape == "jsonl":
        return write_jsonl(path, n, seed, eval_every, logging_steps)
    if shape in ("hf4", "hf5", "hf4plain"):
        return write_hf(path, shape, n, seed, eval_every, logging_steps)
    raise ValueError(f"unknown shape {shape!r}")


def cached(root: Path, shape: str, n: int, seed: int = 0, eval_every: int = 100, logging_steps: int = 5) -> Path:
    """The log for these parameters under ``root``, generated once (atomically)."""
    ext = "jsonl" if shape == "jsonl" else "log"
    path = root / f"{shape}-n{n}-s{seed}-e{eval_every}-l{logging_steps}-v{GEN_VERSION}.{ext}"
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        try:
            write(str(tmp), shape, n, seed, eval_every, logging_steps)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
    return path


def bumpy_run(seed: int, n: int, max_back: int) -> list[Record]:
    """Spikes, NaNs, gradient explosions, LR jumps, overfitting evals, re-logged evals and
    resumes of up to ``max_back`` records: every rule with state that a trim must shift."""
    r = random.Random(seed)
    out = []
    step = 0
    tiny = 0  # records left in a stretch of vanishing gradients
    for i in range(1, n + 1):
        step += 10
        if i > 50 and r.random() < 0.005:
            step = max(10, step - 10 * r.randint(1, max_back))  # resumed from a checkpoint
        frac = step / (10 * n)
        loss = 2.0 * math.exp(-3 * frac) + 0.3 + r.gauss(0, 0.03)
        u = r.random()
        loss = math.nan if u < 0.002 else 3 * loss if u < 0.004 else 0.0 if u < 0.005 else loss
        v = r.random()
        tiny = r.randint(5, 60) if v < 0.002 else max(0, tiny - 1)
        grad = 25.0 if v < 0.004 else 12.0 if v < 0.007 else 0.001 if tiny else abs(r.gauss(1.5, 0.5))
        lr = 1e-4 * min(1.0, step / 500) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
        m = {"loss": loss, "grad_norm": grad, "learning_rate": 3 * lr if r.random() < 0.01 else lr}
        if r.random() < 0.5:  # token accuracy on some records only (gaps)
            m["mean_token_accuracy"] = 0.6 + 0.3 * frac + r.gauss(0, 0.01) - (0.15 if r.random() < 0.02 else 0)
        if r.random() < 0.9:
            m["entropy"] = 1.8 + r.gauss(0, 0.05)
        out.append(Record(Kind.TRAIN, step, {k: v for k, v in m.items() if r.random() > 0.02}))
        if i % 7 == 0:
            el = 2.0 * math.exp(-3 * frac) + 0.5 + 1.5 * max(0.0, frac - 0.4) + r.gauss(0, 0.02)
            em = {
                "eval_loss": el,
                "eval_mean_token_accuracy": 0.8 - 0.5 * max(0.0, frac - 0.4) + r.gauss(0, 0.005),
                "eval_entropy": 1.8 + r.gauss(0, 0.3),
                "eval_samples_per_second": 10.0 if r.random() < 0.05 else 20.0,
            }
            out.append(Record(Kind.EVAL, step, em))
            if r.random() < 0.02:
                out.append(Record(Kind.EVAL, step, dict(em, eval_loss=1.1 * el)))  # re-logged
    return out


# ------------------------------------------------------------------------------------------------
# healthy shapes that look like pathologies to a naive rule (issue 14's false alarms)


def power_law_loss(
    n: int, seed: int, *, start: float = 11.0, floor: float = 3.0, alpha: float = 0.3, tau: float = 20.0,
    noise: float = 0.01,
) -> list[float]:
    """A pretraining loss ``floor + (start - floor) * (1 + i / tau) ** -alpha`` with relative
    Gaussian noise: it falls a few percent in every doubling of the steps, and over a window a
    fifth of the run long less than its noise."""
    r = random.Random(seed)
    return [(floor + (start - floor) * (1 + i / tau) ** -alpha) * (1 + noise * r.gauss(0, 1)) for i in range(n)]


def small_batch_loss(n: int, seed: int, *, level: float = 0.85, spread: float = 0.25, fall: float = 0.05) -> list[float]:
    """The per-step loss of an SFT on small batches of varied conversations: log-normal around a
    slowly falling level, 25% from one step to the next (nanochat's chat SFT)."""
    r = random.Random(seed)
    return [level * (1 - fall * i / n) * math.exp(r.gauss(0, spread) - spread**2 / 2) for i in range(n)]


def epoch_loss(n: int, seed: int, *, epochs: int = 3, start: float = 1.9, drop: float = 0.12, noise: float = 0.03) -> list[float]:
    """A multi-epoch fine-tune: the loss falls in the first epoch, then holds flat inside each
    later one and steps down at each epoch boundary (the model has seen the data)."""
    r = random.Random(seed)
    per = n // epochs
    out = []
    for i in range(n):
        e, j = divmod(i, per)
        level = start - drop * j / per if e == 0 else start - drop * (min(e, epochs - 1) + 1)
        out.append(level * (1 + noise * r.gauss(0, 1)))
    return out


def phase_start_loss(
    n: int, seed: int, *, first: float = 1.35, level: float = 1.93, fall: float = 0.3, noise: float = 0.003
) -> list[float]:
    """The smoothed loss a trainer prints (nanochat's debiased EMA) at the start of a phase whose
    data is harder than its first batch: it climbs from ``first`` to ``level`` over five points,
    holds for eight, then falls by ``fall`` of it; little noise (the printer smooths it)."""
    r = random.Random(seed)
    out = [first + (level - first) * math.sqrt(i / 4) for i in range(min(n, 5))]
    out += [level * (1 - fall * (1 - math.exp(-max(0, i - 12) / 150))) * (1 + noise * r.gauss(0, 1)) for i in range(5, n)]
    return out


def cosine_lr(n: int, peak: float = 3e-4, warmup: int = 0) -> list[float]:
    """Linear warmup over ``warmup`` points, then cosine decay to 0 at point ``n``."""
    return [
        peak * (i + 1) / warmup if i < warmup else peak * 0.5 * (1 + math.cos(math.pi * (i - warmup) / max(1, n - warmup)))
        for i in range(n)
    ]


def gen_log(directory: Path, shape: str, n: int, seed: int) -> str:
    """A generated log of ``n`` records in ``directory`` (a test's tmp_path); its path."""
    path = str(directory / f"{shape}-{seed}.log")
    write(path, shape, n, seed)
    return path


def write_log(path: Path, n: int = 30, seed: int = 0, epoch_scale: float = 0.01, bars: bool = False) -> None:
    """A small HF-stdout-style log: one dict repr per logging step, an eval every 10; with
    ``bars``, the tqdm training bar before each (logging every 10 steps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        for i in range(1, n + 1):
            if bars:
                f.write(f"\r{100 * i // n:3d}%|#         | {i * 10}/{n * 10} [00:10<00:20,  5.00it/s]\n")
            loss = 2.0 * math.exp(-i / 15) + 0.3 + 0.01 * ((i * 7 + seed) % 5)
            rec = {
                "loss": round(loss, 4),
                "grad_norm": round(1.0 + 0.1 * ((i + seed) % 4), 3),
                "learning_rate": 2e-5,
                "entropy": 1.5,
                "num_tokens": float(i * 2048),
                "mean_token_accuracy": 0.8,
                "epoch": round(i * epoch_scale, 3),
            }
            f.write(repr(rec) + "\n")
            if i % 10 == 0:
                f.write(repr({"eval_loss": round(loss * 1.1, 4), "eval_mean_token_accuracy": 0.78, "epoch": rec["epoch"]}) + "\n")


def nan_line(epoch: float = 1.0) -> str:
    return repr({"loss": math.nan, "grad_norm": math.nan, "learning_rate": 1e-05, "epoch": epoch}) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--shape", choices=SHAPES, default="hf4")
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--logging-steps", type=int, default=5)
    a = ap.parse_args()
    size = write(a.path, a.shape, a.records, a.seed, a.eval_every, a.logging_steps)
    print(f"{a.path}: {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
