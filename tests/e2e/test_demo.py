"""``sfttop --demo``'s writer: real HF-4.x-shaped logs that the engine reads and diagnoses."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from sfttop.core.config import Config
from sfttop.core.demo import EXPLODE_FROM, HISTORY, NAN_FROM, TICK, DemoWriter
from sfttop.core.run import Monitor


def _monitor(root: str) -> Monitor:
    m = Monitor([os.path.join(root, "*", "train.log")], Config(), clock=lambda: 0.0)
    m.load_all()
    return m


def test_history_is_written_at_once_and_parses(tmp_path: Path) -> None:
    d = DemoWriter(root=str(tmp_path))
    d.write_history()
    m = _monitor(str(tmp_path))
    assert [r.name for r in m.runs] == ["explode", "healthy", "overfit"]
    for run in m.runs:
        assert run.format == "hf-stdout"
        assert run.data.last_step == HISTORY * 10
        _step, total, eta = run.progress()
        assert total == 4000 and eta is not None  # from the tqdm bar
        assert len(run.data.get("loss") or []) == HISTORY
        assert len(run.data.get("eval_loss") or []) == HISTORY // 10


def test_the_three_stories(tmp_path: Path) -> None:
    """Explode: grad_norm past 20, then NaN; overfit: eval loss rises; healthy: nothing."""
    d = DemoWriter(root=str(tmp_path))
    d.write_history()
    ticks = NAN_FROM - HISTORY + 2
    for _ in range(ticks):
        d.tick()
    # the exploding run goes NaN this many seconds after start at speed 1
    assert (NAN_FROM - HISTORY) * TICK <= 20 and (EXPLODE_FROM - HISTORY) * TICK >= 2
    m = _monitor(str(tmp_path))
    runs = {r.name: r for r in m.runs}
    explode = runs["explode"]
    grad = explode.data.get("grad_norm")
    assert grad is not None and max(v for v in grad.values if math.isfinite(v)) > 20
    assert any(math.isnan(v) for v in grad.values)
    codes = {f.code for f in explode.diagnoser.active()}
    assert {"grad_explosion", "loss_nonfinite"} <= codes
    over = runs["overfit"]
    ev = over.data.get("eval_loss")
    assert ev is not None and ev.values[-1] > min(ev.values)
    assert {"overfitting", "overfitting_severe"} & {f.code for f in over.diagnoser.active()}
    healthy = runs["healthy"]
    assert healthy.diagnoser.worst_active() is None
    assert (tmp_path / "explode" / "checkpoint-500").is_dir()


def test_runs_finish_and_writer_stops(tmp_path: Path) -> None:
    d = DemoWriter(root=str(tmp_path), history=395)
    d.write_history()
    for _ in range(10):
        d.tick()
    assert all(r.done for r in d.runs)
    m = _monitor(str(tmp_path))
    runs = {r.name: r for r in m.runs}
    assert runs["healthy"].finished and runs["overfit"].finished
    size = (tmp_path / "healthy" / "train.log").stat().st_size
    d.tick()
    assert (tmp_path / "healthy" / "train.log").stat().st_size == size


def test_start_and_stop_remove_the_temp_dir() -> None:
    d = DemoWriter(speed=40.0)
    root = d.root
    d.start()
    try:
        log = Path(root) / "healthy" / "train.log"
        assert log.stat().st_size > 0  # history is there before the first tick
        first = log.stat().st_size
        deadline = time.monotonic() + 5
        while log.stat().st_size == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert log.stat().st_size > first  # and the thread keeps writing
    finally:
        d.stop()
    assert not os.path.exists(root)


def test_same_speed_same_files(tmp_path: Path) -> None:
    a = DemoWriter(root=str(tmp_path / "a"))
    b = DemoWriter(root=str(tmp_path / "b"))
    a.write_history()
    b.write_history()
    for name in ("healthy", "overfit", "explode"):
        assert (tmp_path / "a" / name / "train.log").read_bytes() == (tmp_path / "b" / name / "train.log").read_bytes()


def test_the_numbers_are_plausible_for_a_real_run() -> None:
    from sfttop.core.demo import MAX_STEPS, DemoRun

    last = MAX_STEPS // 10
    over = DemoRun("overfit", 1)
    evals = [over.eval(i)["eval_loss"] for i in range(10, last + 1, 10)]
    assert 1.0 < min(evals) < 1.3 and 1.8 < evals[-1] < 2.6  # an overfit eval loss: 1.2 → 2.x, never 36.8
    assert all(0.0 < over.eval(i)["eval_mean_token_accuracy"] < 1.0 for i in range(10, last + 1, 10))
    assert all(0.0 < over.train(i)["loss"] < 3.0 for i in range(1, last + 1))
