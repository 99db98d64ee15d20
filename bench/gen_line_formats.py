"""Logs of N train records (and an eval every 100 steps) in each line format, for timing
``sfttop --report`` on them against the JSON-lines log of ``genlogs.py`` with as many records.

    python bench/gen_line_formats.py OUTDIR [N]    # writes OUTDIR/<format>.log, N = 300000

(``jsonl.log``: the same records as JSON lines, the reference), and the tracker stores: ``OUTDIR/dvclive/``, ``OUTDIR/mlruns/0/bench/``, ``OUTDIR/mlflow.db``.

Line shapes are the real logs' (../shared/logs); values follow a smooth loss curve with noise.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path


def _curve(n: int, seed: int = 0) -> Iterator[tuple[int, float, float, float]]:
    rnd = random.Random(seed)
    for s in range(1, n + 1):
        t = s / n
        loss = 0.6 + 2.2 * math.exp(-6 * t) + rnd.gauss(0, 0.03)
        lr = 3e-4 * min(1.0, s / 200) * (1 - 0.9 * t)
        gn = 0.8 + 0.4 * math.exp(-4 * t) + abs(rnd.gauss(0, 0.05))
        yield s, loss, lr, gn


def megatron(n: int) -> Iterator[str]:
    for s, loss, lr, gn in _curve(n):
        yield (
            f"0: [default0]:  [2026-05-15 19:06:30.527952] iteration {s:8d}/{n:8d} | consumed samples: {s * 80:12d} | "
            f"elapsed time per iteration (ms): 3169.7 | throughput per GPU (TFLOP/s/GPU): 343.5 | "
            f"learning rate: {lr:.6E} | global batch size:    80 | lm loss: {loss:.6E} | loss scale: 1.0 | "
            f"grad norm: {gn:.3f} | number of skipped iterations:   0 | number of nan iterations:   0 |"
        )
        if s % 100 == 0:
            yield f" validation loss at iteration {s} | lm loss value: {loss + 0.1:.6E} | lm loss PPL: {math.exp(loss + 0.1):.6E} | "


def nanogpt(n: int) -> Iterator[str]:
    for s, loss, _lr, _gn in _curve(n):
        if s % 100 == 0:
            yield f"step {s}: train loss {loss:.4f}, val loss {loss + 0.1:.4f}"
        yield f"iter {s}: loss {loss:.4f}, time 267.36ms, mfu 8.92%"


def nanochat(n: int) -> Iterator[str]:
    for s, loss, _lr, _gn in _curve(n):
        if s % 100 == 0:
            yield f"Step {s:05d} | Validation bpb: {loss / 3:.6f}"
        yield (
            f"step {s:05d}/{n:05d} ({100 * s / n:.2f}%) | loss: {loss:.6f} | lrm: 1.00 | dt: 1033.49ms | "
            f"tok/sec: 22,159 | mfu: 43.30 | total time: {s / 60:.2f}m"
        )


def llmc(n: int) -> Iterator[str]:
    for s, loss, lr, gn in _curve(n):
        if s % 100 == 0:
            yield f"s:{s} tel:{loss + 0.1:.4f}"
        yield f"s:{s} trl:{loss:.4f} lr:{lr:.6f} norm:{gn:.2f}"


def torchtune(n: int) -> Iterator[str]:
    for s, loss, lr, _gn in _curve(n):
        yield f"Step {s} | loss:{loss!r} lr:{lr!r} tokens_per_second_per_gpu:{2100 + s % 50 + 0.25!r} "


def torchtune_stdout(n: int) -> Iterator[str]:
    # The bar's description redrawn twice a step, a thousand redraws to a line (as the real .out)
    pieces = []
    for s, loss, _lr, _gn in _curve(n):
        for k in (s, s + 1):
            pieces.append(f"1|{s}|Loss: {loss!r}:  {100 * s // n:3d}%|#         | {k}/{n} [00:28<4:02:59, 28.53s/it]")
        if len(pieces) >= 1000:
            yield "\r".join(pieces)
            pieces = []
    if pieces:
        yield "\r".join(pieces)


def lightning_csv(n: int) -> Iterator[str]:
    # CSVLogger's sparse rows: a step row per record, a validation row every 100 steps
    yield "epoch,lr-AdamW,step,train_loss_epoch,train_loss_step,val_loss"
    for s, loss, lr, _gn in _curve(n):
        yield f"{s // 1000},{lr!r},{s},,{loss!r},"
        if s % 100 == 0:
            yield f"{s // 1000},,{s},,,{loss + 0.1!r}"


def keras_csv(n: int) -> Iterator[str]:
    yield "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss"
    for s, loss, lr, _gn in _curve(n):
        yield f"{s - 1},{1 - loss / 4!r},{lr!r},{loss!r},{1 - loss / 3.5!r},{loss + 0.1!r}"


def wandb_csv(n: int) -> Iterator[str]:
    yield "_step,_runtime,train/loss,train/grad_norm,train/learning_rate,train/epoch,_timestamp,train/global_step"
    for s, loss, lr, gn in _curve(n):
        yield f"{s - 1},{s * 0.5!r},{loss:.4f},{gn!r},{lr!r},{s / 1000!r},{1745673728.19 + s!r},{s}"


def jsonl(n: int, eval_every: int = 100) -> Iterator[str]:
    """The same records as sfttop's own JSON lines: the reference each format is timed against."""
    for s, loss, lr, gn in _curve(n):
        yield f'{{"step": {s}, "loss": {loss!r}, "learning_rate": {lr!r}, "grad_norm": {gn!r}}}'
        if s % eval_every == 0:
            yield f'{{"step": {s}, "eval_loss": {loss + 0.1!r}}}'


def jsonl_every_step(n: int) -> Iterator[str]:
    """As ``jsonl`` with an eval every step: the reference for Keras (an eval every epoch)."""
    return jsonl(n, 1)


SHAPES: dict[str, Callable[[int], Iterator[str]]] = {
    "megatron": megatron, "nanogpt": nanogpt, "nanochat": nanochat, "llmc": llmc,
    "torchtune": torchtune, "torchtune-stdout": torchtune_stdout,
    "lightning-csv": lightning_csv, "keras-csv": keras_csv, "wandb-csv": wandb_csv,
    "jsonl": jsonl, "jsonl-eval-every-step": jsonl_every_step,
}


def stores(out: Path, n: int) -> None:
    """The directory stores (core/stores.py) with the same records: a DVCLive directory, an
    MLflow file-store run and an MLflow database (a train record's loss, learning_rate and
    grad_norm, an eval_loss every 100 steps)."""
    import sqlite3

    rows = list(_curve(n))
    keys = {"loss": 1, "learning_rate": 2, "grad_norm": 3}
    dvc = out / "dvclive" / "plots" / "metrics"
    dvc.mkdir(parents=True, exist_ok=True)
    run = out / "mlruns" / "0" / "bench"
    (run / "metrics").mkdir(parents=True, exist_ok=True)
    (run / "meta.yaml").write_text("run_id: bench\n")
    for key, j in keys.items():
        with open(dvc / f"{key}.tsv", "w") as f, open(run / "metrics" / key, "w") as g:
            f.write(f"step\t{key}\n")
            for r in rows:
                f.write(f"{r[0]}\t{r[j]!r}\n")
                g.write(f"{1733300000000 + r[0]} {r[j]!r} {r[0]}\n")
    with open(dvc / "eval_loss.tsv", "w") as f, open(run / "metrics" / "eval_loss", "w") as g:
        f.write("step\teval_loss\n")
        for r in rows[99::100]:
            f.write(f"{r[0]}\t{r[1] + 0.1!r}\n")
            g.write(f"{1733300000000 + r[0]} {r[1] + 0.1!r} {r[0]}\n")
    db = out / "mlflow.db"
    db.unlink(missing_ok=True)
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE metrics (key VARCHAR(250), value FLOAT, timestamp BIGINT, run_uuid VARCHAR(32), "
                "step BIGINT DEFAULT 0 NOT NULL, is_nan BOOLEAN DEFAULT 0 NOT NULL)")
    con.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,0)", (
        (key, r[j], 1733300000000 + r[0], "bench", r[0]) for r in rows for key, j in keys.items()))
    con.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,0)", (
        ("eval_loss", r[1] + 0.1, 1733300000000 + r[0], "bench", r[0]) for r in rows[99::100]))
    con.commit()
    con.close()


def main() -> None:
    out = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 300_000
    out.mkdir(parents=True, exist_ok=True)
    for name, gen in SHAPES.items():
        with open(out / f"{name}.log", "w") as f:
            for line in gen(n):
                f.write(line + "\n")
    stores(out, n)


if __name__ == "__main__":
    main()
