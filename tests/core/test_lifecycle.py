"""A run's state follows its file through real life: checkpoint saves rewriting
``trainer_state.json``, a re-run into the same log, a deleted and re-created file, a rotated or
copy-truncated log. Each record and each finding once; a new attempt keeps nothing of the old."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from helpers import FIXTURES, REAL
from sfttop.core.config import Config
from sfttop.core.records import EventKind, Kind, Record, expand
from sfttop.core.report import run_dict
from sfttop.core.run import Run
from sfttop.core.update import RunUpdate


def _drain(run: Run, now: float) -> list[RunUpdate]:
    ups = [run.poll(1 << 16, now)]
    while not run.loaded and run.error is None:
        ups.append(run.poll(1 << 16, now))
    return ups


def _records(ups: list[RunUpdate]) -> list[Record]:
    return [r for up in ups for r in expand(up.records)]


def _opened(ups: list[RunUpdate]) -> list[tuple[str, int]]:
    return [(f.code, f.step) for up in ups for f in up.opened]


def _write_state(path: Path, state: dict[str, Any], atomic: bool) -> None:
    text = json.dumps(state, indent=2)  # NaN spelled as json.dumps spells it, as the Trainer does
    if atomic:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    else:
        with open(path, "w") as f:
            f.write(text)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a new mtime even on a coarse clock


def _saves(case: str, n: int) -> tuple[dict[str, Any], list[int]]:
    state = json.loads((REAL / case / "trainer_state.json").read_text())
    hist = state["log_history"]
    cuts = [len(hist) * (k + 1) // n for k in range(n)]
    return state, cuts


def test_state_file_rewritten_at_each_save_gives_each_record_and_finding_once(tmp_path: Path) -> None:
    state, cuts = _saves("tf4/nan_filtered", 5)
    path = tmp_path / "trainer_state.json"
    run = Run("r", str(path), Config())
    ups: list[RunUpdate] = []
    for k, cut in enumerate(cuts):
        _write_state(path, {**state, "log_history": state["log_history"][:cut]}, atomic=k % 2 == 0)
        ups += _drain(run, 1000.0 + k)
        ups.append(run.poll(1 << 16, 1000.0 + k))  # unchanged: nothing more
    whole = Run("w", str(REAL / "tf4/nan_filtered/trainer_state.json"), Config())
    once = _drain(whole, 1000.0)
    got = [(r.kind, r.step) for r in _records(ups)]
    assert got == [(r.kind, r.step) for r in _records(once)]
    assert len(got) == len(set(got))
    assert _opened(ups) == _opened(once) and _opened(ups)
    assert any(c == "loss_nonfinite" for c, _ in _opened(ups))
    assert not any(e.kind is EventKind.RESUMED for up in ups for e in up.events)
    assert run.attempt == 1 and run.diagnoser.restarts == 0
    assert run.finished  # the last save says should_training_stop (and holds the summary)


def test_state_file_cut_back_to_a_checkpoint_is_a_resume_not_a_new_run(tmp_path: Path) -> None:
    state = json.loads((REAL / "tf5/healthy/trainer_state.json").read_text())
    hist = state["log_history"]
    path = tmp_path / "trainer_state.json"
    run = Run("r", str(path), Config())
    _write_state(path, {**state, "log_history": hist[:30]}, atomic=True)
    _drain(run, 1.0)
    # Resumed from an earlier checkpoint: the history up to it, then other values for the same steps.
    resumed = hist[:20] + [{**e, "loss": e["loss"] * 0.99} if "loss" in e else e for e in hist[20:]]
    _write_state(path, {**state, "log_history": resumed}, atomic=True)
    ups = _drain(run, 2.0)
    assert run.attempt == 1
    assert any(e.kind is EventKind.RESUMED for up in ups for e in up.events)
    assert _records(ups)[0].step == hist[20].get("step")
    assert run.data.last_step == hist[-1]["step"]


def test_state_file_of_another_run_is_a_new_attempt(tmp_path: Path) -> None:
    nan = json.loads((REAL / "tf4/nan_filtered/trainer_state.json").read_text())
    healthy = json.loads((REAL / "tf5/healthy/trainer_state.json").read_text())
    path = tmp_path / "trainer_state.json"
    run = Run("r", str(path), Config())
    _write_state(path, nan, atomic=True)
    _drain(run, 1.0)
    assert run.diagnoser.worst_active() is not None
    _write_state(path, healthy, atomic=True)
    _drain(run, 2.0)
    fresh = Run("r", str(REAL / "tf5/healthy/trainer_state.json"), Config())
    _drain(fresh, 2.0)
    assert run.attempt == 2 and run.restart_reason == "rewritten by another run"
    assert [f.to_dict() for f in run.diagnoser.findings] == [f.to_dict() for f in fresh.diagnoser.findings]
    assert run.data.count(Kind.TRAIN) == fresh.data.count(Kind.TRAIN)
    assert run.data.count(Kind.EVAL) == fresh.data.count(Kind.EVAL)


def _report(run: Run) -> dict[str, Any]:
    d = run_dict(run, Config(), 2_000_000_000.0)  # one "now" for both: the age is not what differs
    for k in ("name", "path", "best_checkpoint", "attempt", "restarted"):
        d.pop(k, None)
    return d


def _rerun(tmp_path: Path, how: str) -> tuple[Run, Run]:
    """The crashed run's log, watched; then the healthy run's log written where it was."""
    log = tmp_path / "a" / "train.log"
    log.parent.mkdir()
    shutil.copyfile(REAL / "tf4/crash/train.log", log)
    run = Run("r", str(log), Config())
    _drain(run, 100.0)
    assert run.crashed and run.diagnoser.worst_active() is not None
    healthy = (REAL / "tf4/healthy/train.log").read_bytes()
    if how == "truncate":
        with open(log, "r+b") as f:
            f.truncate(0)
        run.poll(1 << 16, 101.0)  # caught empty: the screen says it restarted at once
        assert run.attempt == 2 and run.data.last_step is None and not run.crashed
        assert not run.diagnoser.findings
        with open(log, "ab") as f:
            f.write(healthy)
    elif how == "recreate":
        log.unlink()
        run.poll(1 << 16, 101.0)
        assert run.attempt == 1 and run.crashed  # gone: what it showed stays, marked gone
        log.write_bytes(healthy)
    else:  # replaced under the same name while it was watched (write elsewhere, rename over)
        tmp = tmp_path / "a" / "train.log.new"
        tmp.write_bytes(healthy)
        os.replace(tmp, log)
    _drain(run, 102.0)
    run.poll(1 << 16, 102.0)
    other = tmp_path / "b" / "train.log"
    other.parent.mkdir()
    other.write_bytes(healthy)
    os.utime(other, (os.stat(log).st_atime, os.stat(log).st_mtime))
    fresh = Run("r", str(other), Config())
    _drain(fresh, 102.0)
    return run, fresh


def test_rerun_into_the_same_log_keeps_no_trace_of_the_crash(tmp_path: Path) -> None:
    for how in ("truncate", "recreate", "replace"):
        (tmp_path / how).mkdir()
        run, fresh = _rerun(tmp_path / how, how)
        assert run.attempt == 2, how
        assert run.crashed is None and not any(f.code == "run_crashed" for f in run.diagnoser.findings), how
        assert _report(run) == _report(fresh), how
        assert run.restarted_at is not None and run.restart_reason in ("truncated", "reappeared", "replaced")


def test_new_attempt_opens_its_findings_again(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    shutil.copyfile(REAL / "tf4/explode/train.log", log)
    run = Run("r", str(log), Config())
    first = _opened(_drain(run, 1.0))
    assert any(code == "grad_explosion" for code, _ in first)
    log.write_bytes(b"")
    run.poll(1 << 16, 2.0)
    with open(log, "ab") as f:
        f.write((REAL / "tf4/explode/train.log").read_bytes())
    again = _opened(_drain(run, 3.0))
    assert again == first  # the alert episodes of the new attempt go out again


def _jsonl(steps: range) -> bytes:
    return b"".join(b'{"step": %d, "loss": %r, "learning_rate": 1e-05}\n' % (s, 2.0 - s / 1000) for s in steps)


def test_rotated_or_copy_truncated_log_that_goes_on_keeps_its_history(tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    log.write_bytes(_jsonl(range(1, 51)))
    run = Run("r", str(log), Config())
    _drain(run, 1.0)
    # copytruncate: the same file emptied, then the run goes on writing
    with open(log, "r+b") as f:
        f.truncate(0)
    run.poll(1 << 16, 2.0)
    with open(log, "ab") as f:
        f.write(_jsonl(range(51, 101)))
    _drain(run, 3.0)
    assert run.attempt == 1 and run.data.count(Kind.TRAIN) == 100
    # logrotate: renamed away, a new file goes on
    os.rename(log, tmp_path / "metrics.jsonl.1")
    log.write_bytes(_jsonl(range(101, 121)))
    for _ in range(3):
        _drain(run, 4.0)
    assert run.attempt == 1 and run.data.last_step == 120
    assert run.data.count(Kind.TRAIN) == 120


# ------------------------------------------------------------------------------------- liveness
def _status(path: Path | str, now: float) -> dict[str, Any]:
    from sfttop.core.report import build

    report, _ = build([str(path)], Config(), clock=lambda: now)
    run: dict[str, Any] = report["runs"][0]
    return run


def test_a_copied_log_with_an_old_mtime_is_stopped_at_the_first_look(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    text = (REAL / "tf4/crash/train.log").read_bytes()
    log.write_bytes(text[: text.index(b"Traceback")])  # killed: no traceback, no summary
    mtime = os.stat(log).st_mtime
    hours = _status(log, mtime + 3 * 3600)
    assert hours["status"] == "stopped", hours["status_detail"]
    assert hours["status_detail"].startswith("stopped: last write 3h00m ago at step")
    assert hours["eta_seconds"] is None
    assert any(f["code"] == "run_stalled" and f["active"] for f in hours["findings"])
    minutes = _status(log, mtime + 15 * 60)
    assert minutes["status"] == "stalled" and minutes["eta_seconds"] is None
    fresh = _status(log, mtime + 5)
    assert fresh["status"] == "running"
    assert not any(f["code"] == "run_stalled" for f in fresh["findings"])


def test_finished_runs_report_finished_in_every_format(tmp_path: Path) -> None:
    fixtures = FIXTURES
    done = [
        REAL / "tf5/healthy/train.log",  # the summary line
        REAL / "tf4/nan_filtered/trainer_state.json",  # should_training_stop
        fixtures / "formats/llamafactory/trainer_log.jsonl",  # 100%
        fixtures / "formats/ms-swift/logging.jsonl",  # the final object
    ]
    for path in done:
        later = os.stat(path).st_mtime + 86400  # a day later: finished is still finished
        got = _status(path, later)
        assert got["status"] == "finished", (path, got["status_detail"])
        assert got["eta_seconds"] is None
    # LLaMA-Factory's running_log.txt / the HF Trainer's own last words
    log = tmp_path / "running_log.txt"
    body = (REAL / "tf5/healthy/train.log").read_bytes()
    cut = body[: body.index(b"'train_runtime'") - 2].rsplit(b"\n", 1)[0] + b"\n"
    log.write_bytes(cut + b"\n\nTraining completed. Do not forget to share your model on huggingface.co/models =)\n\n")
    got = _status(log, os.stat(log).st_mtime + 86400)
    assert got["status"] == "finished", got["status_detail"]
    # and at 100% by its own count (LLaMA-Factory without a summary)
    lf = tmp_path / "trainer_log.jsonl"
    lines = (fixtures / "formats/llamafactory/trainer_log.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    body2 = [ln for ln in lines if '"current_steps"' in ln and "loss" in ln]
    lf.write_text("\n".join(body2) + "\n")
    assert json.loads(body2[-1])["current_steps"] == json.loads(body2[-1])["total_steps"], last
    assert _status(lf, os.stat(lf).st_mtime + 86400)["status"] == "finished"


def test_a_run_that_goes_on_after_100_percent_is_running_again(tmp_path: Path) -> None:
    lf = tmp_path / "trainer_log.jsonl"
    rows = [{"current_steps": s, "total_steps": 10, "loss": 2.0 - s / 100, "lr": 1e-4, "epoch": s / 10} for s in range(1, 11)]
    lf.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = Run("r", str(lf), Config())
    _drain(run, os.stat(lf).st_mtime)
    assert run.finished
    with open(lf, "a") as f:  # resumed with more steps
        f.write(json.dumps({"current_steps": 11, "total_steps": 20, "loss": 1.8, "lr": 1e-4, "epoch": 1.1}) + "\n")
    run.poll(1 << 16, os.stat(lf).st_mtime)
    assert not run.finished and run.liveness(os.stat(lf).st_mtime).state.value == "running"


def test_durations_as_the_formats_print_them() -> None:
    from sfttop.core.parse import parse_duration

    assert parse_duration("2 days, 12:56:35") == 2 * 86400 + 12 * 3600 + 56 * 60 + 35
    assert parse_duration("1 day, 0:00:01") == 86401
    assert parse_duration("0:00:25.5") == 25.5
    assert parse_duration("50:12:01") == 50 * 3600 + 12 * 60 + 1  # tqdm past a day
    assert parse_duration("1d 2h 3m 4s") == 93784
    assert parse_duration("8h 25m 20s") == 30320
    assert parse_duration("?") is None and parse_duration("soon") is None


# ------------------------------------------------------------------------------------- steps
def _unbuffered_ops(total: int = 200, logging_steps: int = 5) -> list[str]:
    """What `PYTHONUNBUFFERED=1 python train.py > train.log 2>&1` writes, one write per tqdm
    operation: the training bar redrawn now and then (mininterval), and each log dict printed by
    tqdm.write between clearing the bar and redrawing it at the current step."""
    import random

    rnd = random.Random(1)

    def bar(n: int) -> str:
        pct = 100 * n // total
        return f"\r{pct:3d}%|{'█' * (pct // 10):10s}| {n}/{total} [00:{n // 10:02d}<01:00, 12.50it/s]"

    ops = ["***** Running training *****\n"]
    last = 0
    for step in range(1, total + 1):
        if step - last >= rnd.randint(3, 7):
            ops.append(bar(step))
            last = step
        if step % logging_steps == 0:
            ops.append("\r" + " " * 60 + "\r")
            rec = {"loss": round(2 * math.exp(-step / 100) + 0.3, 4), "grad_norm": 1.1, "learning_rate": 2e-5,
                   "epoch": round(step / total, 4)}
            ops.append(str(rec) + "\n")
            ops.append(bar(step))
            last = step
    return ops


def test_steps_right_from_the_first_record_with_unbuffered_stdout(tmp_path: Path) -> None:
    # No trainer_state.json beside the log: steps come from the training bar, and the bar drawn
    # before a dict lags (it said 3 when the dict was step 5, so every step came out at 3/5).
    ops = _unbuffered_ops()
    log = tmp_path / "train.log"
    log.write_text("".join(ops))
    for budget in (1 << 20, 700, 97):
        run = Run("r", str(log), Config())
        steps = [r.step for up in _drain(run, 1.0) for r in expand(up.records)]
        assert steps == list(range(5, 201, 5)), budget
    # ... and live, polled after every write the trainer makes
    live = tmp_path / "live" / "train.log"
    live.parent.mkdir()
    live.write_text("")
    run = Run("r", str(live), Config())
    seen: list[int] = []
    for op in ops:
        with open(live, "a") as f:
            f.write(op)
        seen += [r.step for r in expand(run.poll(1 << 20, 1.0).records)]
    seen += [r.step for r in expand(run.poll(1 << 20, 1.0).records)]
    assert seen == list(range(5, 201, 5))


def test_a_traceback_cut_off_at_the_end_of_the_log_is_a_crash(tmp_path: Path) -> None:
    text = (REAL / "tf4/crash/train.log").read_bytes()
    tb = text.index(b"Traceback (most recent call last):")
    frames = text.index(b"\n", text.index(b'  File "', tb)) + 1
    log = tmp_path / "train.log"
    log.write_bytes(text[:frames])  # the process died while printing its traceback
    mtime = os.stat(log).st_mtime
    run = Run("r", str(log), Config())
    _drain(run, mtime + 1)
    assert run.crashed is None  # still being printed, maybe: a moment's grace
    ups = _drain(run, mtime + 60)
    assert run.crashed is not None and run.crashed.startswith("traceback cut off at: File")
    assert any(f.code == "run_crashed" for up in ups for f in up.opened)
    assert _status(log, mtime + 60)["status"] == "crashed"
    # a tracker's word that the run died, and a crash whose excepthook failed
    for line in (b"swanlab: Error happened while training\n", b"Error in sys.excepthook:\n"):
        other = tmp_path / f"t{len(line)}.log"
        other.write_bytes(text[:tb] + line)
        assert _status(other, os.stat(other).st_mtime + 60)["status"] == "crashed", line


_CUT = {
    # the process died while printing its first words: no line break after them
    "header, no line break": b"Traceback (most recent call last):",
    "excepthook, no line break": b"Error in sys.excepthook:",
    # a tracker's shutdown lines printed into the traceback, its error line after them
    "wandb inside": b'Traceback (most recent call last):\n  File "/x/train.py", line 10, in <module>\n'
    b"wandb: Waiting for W&B process to finish... (failed 1).\n    trainer.train()\n"
    b"RuntimeError: CUDA error: an illegal memory access was encountered\n",
    # ... or after a traceback that was cut
    "wandb after a cut": b'Traceback (most recent call last):\n  File "/x/train.py", line 10, in <module>\n'
    b"wandb: View run at https://wandb.ai/x\nwandb: Find logs at: ./wandb/run-x/logs\n",
    "swanlab after a cut": b'Traceback (most recent call last):\n  File "/x/train.py", line 10, in <module>\n'
    b"swanlab: Run `swanlab watch` to view\n",
    # torchrun prefixes every line of a rank's traceback
    "torchrun rank, cut": b'[rank0]: Traceback (most recent call last):\n[rank0]:   File "/x/train.py", line 10, in <module>\n',
    "torchrun rank": b'[rank0]: Traceback (most recent call last):\n[rank0]:   File "/x/train.py", line 10, in <module>\n'
    b"[rank0]:     trainer.train()\n[rank0]: ValueError: bad batch\n",
}


@pytest.mark.parametrize("case", sorted(_CUT))
def test_a_crash_cut_mid_traceback_or_mid_line_is_a_crash(tmp_path: Path, case: str) -> None:
    text = (REAL / "tf4/crash/train.log").read_bytes()
    log = tmp_path / "train.log"
    log.write_bytes(text[: text.index(b"Traceback (most recent call last):")] + _CUT[case])
    st = _status(log, os.stat(log).st_mtime + 60)
    assert st["status"] == "crashed", st["status_detail"]
    assert not st["crash"].startswith("[rank"), st["crash"]


def test_a_bar_left_without_a_line_break_is_no_crash(tmp_path: Path) -> None:
    text = (REAL / "tf5/healthy/train.log").read_bytes()
    cut = text.rindex(b"\n", 0, len(text) // 2)
    log = tmp_path / "train.log"
    log.write_bytes(text[: cut + 1] + b" 45%|####5     | 27/60 [00:01<00:01, 20.1it/s]")
    assert _status(log, os.stat(log).st_mtime + 60)["status"] != "crashed"


def test_a_source_error_alone_is_a_change_for_the_renderers(tmp_path: Path) -> None:
    """No byte read, yet the run's row must say why it is not read (a host down, the path now a
    directory): the list caches rows on the generation, so a new error bumps it, the same one
    again does not."""
    path = tmp_path / "train.log"
    path.write_text('{"loss": 1.0, "step": 1}\n')
    run = Run("r", str(path), Config())
    run.poll()
    assert run.loaded and run.error is None
    seen = run.generation
    run.poll()
    assert run.generation == seen
    path.unlink()
    path.mkdir()  # (a vanished file would say so with an event; this says nothing but the error)
    run.poll()
    assert run.error == "not a regular file"
    assert run.generation > seen
    seen = run.generation
    run.poll()
    assert run.generation == seen  # the same error again is not news
