"""Loading with a helper process (core/pipe.py) ends in exactly the state reading alone gives."""

from __future__ import annotations

import glob
import os
import pickle
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from helpers import FIXTURES, REAL_LOGS
from sfttop.core import pipe
from sfttop.core.config import Config
from sfttop.core.report import run_dict
from sfttop.core.run import Monitor
from synth import gen_log


def _load(paths: list[str], helper: bool, budget: int = 1 << 16) -> tuple[bytes, Monitor]:
    mon = Monitor(paths, Config(), clock=lambda: 1e9)
    mon.helper_bytes = 1  # every log, however short, gets a helper
    mon.load_all(budget, helper=helper)
    return orjson.dumps([run_dict(r, Config(), 1e9) for r in mon.runs]), mon


def _state(mon: Monitor) -> list[Any]:
    out = []
    for r in mon.runs:
        d = r.diagnoser
        out.append(
            (
                {k: (list(s.steps), repr(list(s.values)), s.count) for k, s in r.data.series.items()},
                [f.to_dict() for f in d.findings],
                d.records,
                r.parser.stats.records,
                r.parser.stats.skipped,
                r.source.offset,
                r.source.error,
                r.loaded,
            )
        )
    return out


@pytest.fixture(autouse=True)
def _helper_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipe, "usable", lambda: hasattr(os, "fork"))
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")


def _no_child_left() -> None:
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


@pytest.mark.parametrize("budget", [1 << 16, 4 << 20])
def test_helper_gives_the_same_report_and_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int) -> None:
    # (at 4 MiB the helper's first read is shorter than the others: the result is the same)
    paths = [gen_log(tmp_path, "hf4", 12_000, 7), gen_log(tmp_path, "jsonl", 6_000, 8), *REAL_LOGS]
    alone, ma = _load(paths, helper=False, budget=budget)
    load = pipe.load
    taken: list[int] = []
    monkeypatch.setattr(pipe, "load", lambda *a: taken.append(load(*a)) or taken[-1])
    helped, mb = _load(paths, helper=True, budget=budget)
    assert len(taken) == len(paths) and min(taken) >= 1 and max(taken) >= (20 if budget < pipe.FIRST_BYTES else 3)
    assert helped == alone
    assert _state(mb) == _state(ma)
    _no_child_left()


def test_a_helper_that_dies_leaves_the_rest_to_this_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = gen_log(tmp_path, "hf5", 8_000, 9)
    alone, ma = _load([path], helper=False, budget=1 << 15)
    real = pipe._helper
    taken: list[int] = []

    def dies_after_three(run: Any, budget: int, fd: int) -> None:
        read = run.read
        calls = [0]

        def read_three(*a: Any) -> bool:
            calls[0] += 1
            if calls[0] > 3:
                raise MemoryError("the helper ran out of memory")
            return read(*a)

        run.read = read_three
        real(run, budget, fd)

    def counted(*a: Any) -> int:
        n = load(*a)
        taken.append(n)
        return n

    load = pipe.load
    monkeypatch.setattr(pipe, "_helper", dies_after_three)
    monkeypatch.setattr(pipe, "load", counted)
    helped, mb = _load([path], helper=True, budget=1 << 15)
    assert taken == [3]
    assert helped == alone
    assert _state(mb) == _state(ma)
    _no_child_left()


def test_helper_only_for_long_logs_and_never_for_trainer_state(tmp_path: Path) -> None:
    small = gen_log(tmp_path, "jsonl", 200, 1)
    mon = Monitor([small], Config())
    assert not pipe.worth_it(mon.runs[0])  # far below MIN_BYTES
    assert pipe.worth_it(mon.runs[0], min_bytes=1)
    states = glob.glob(str(FIXTURES / "**" / "trainer_state.json"), recursive=True)
    if states:
        assert not pipe.worth_it(Monitor([states[0]], Config()).runs[0], min_bytes=1)


def test_turned_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    monkeypatch.setenv("SFTTOP_NO_HELPER", "1")
    assert not pipe.usable()


def test_missing_log_is_reported_the_same(tmp_path: Path) -> None:
    gone = str(tmp_path / "nothing-here.log")
    assert _load([gone], helper=True)[0] == _load([gone], helper=False)[0]


def _runs(tmp_path: Path) -> list[str]:
    return [
        gen_log(tmp_path, "hf4", 4_000, 11),
        gen_log(tmp_path, "hf5", 3_000, 12),
        gen_log(tmp_path, "jsonl", 3_000, 13),
        gen_log(tmp_path, "hf4plain", 2_000, 14),
        *REAL_LOGS,
        str(tmp_path / "not-there.log"),
    ]


def test_runs_shared_out_to_processes_end_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _runs(tmp_path)
    alone, ma = _load(paths, helper=False)
    assert pipe.share_out(Monitor(paths, Config()).runs, 1)
    monkeypatch.setattr(pipe, "jobs", lambda: 3)
    shared: list[int] = []
    left: list[int] = []
    real = pipe.load_shared

    def counted(runs: list[Any], *a: Any) -> Any:
        shared.append(len(runs))
        rest = real(runs, *a)
        left.append(len(rest))
        return rest

    monkeypatch.setattr(pipe, "load_shared", counted)
    monkeypatch.setattr(pipe, "load", lambda *a: pytest.fail("one log at a time with a helper"))
    helped, mb = _load(paths, helper=True)
    assert shared == [len(paths)]
    # every helper's runs came back (one that cannot be sent is read again here: the same
    # result, twice the work; a lambda in the diagnoser did that unseen)
    assert left == [0]
    assert helped == alone
    assert _state(mb) == _state(ma)
    _no_child_left()


def test_runs_of_a_child_that_fails_are_loaded_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _runs(tmp_path)
    alone, ma = _load(paths, helper=False)
    monkeypatch.setattr(pipe, "jobs", lambda: 2)

    def fails(part: list[Any], load_one: Any, fd: int) -> None:
        load_one(part[0])
        os.write(fd, b"not a pickle")
        raise MemoryError

    monkeypatch.setattr(pipe, "_child", fails)
    left: list[int] = []
    real = pipe.load_shared
    monkeypatch.setattr(pipe, "load_shared", lambda runs, *a: left.append(len(r := real(runs, *a))) or r)
    helped, mb = _load(paths, helper=True)
    assert left and left[0] > 0
    assert helped == alone
    assert _state(mb) == _state(ma)
    _no_child_left()


def test_one_big_log_among_small_ones_is_not_shared_out(tmp_path: Path) -> None:
    big = gen_log(tmp_path, "hf4", 6_000, 15)
    small = gen_log(tmp_path, "jsonl", 300, 16)
    assert not pipe.share_out(Monitor([big, small], Config()).runs, 1)
    twin = str(tmp_path / "twin.log")
    os.link(big, twin)
    assert pipe.share_out(Monitor([big, twin], Config()).runs, 1)


def test_not_on_one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    monkeypatch.delenv("SFTTOP_NO_HELPER", raising=False)
    monkeypatch.setattr(pipe, "jobs", lambda: 1)
    assert not pipe.usable()


def test_the_handoff_names_every_piece_of_a_runs_state(tmp_path: Path) -> None:
    """A helper sends a run back as a ``Handoff``, not as its ``vars()``: each attribute of a
    loaded ``Run`` is identity (the same in every process), a local memo, or travels in it, so
    an attribute added to ``Run`` fails here until it is put on one side."""
    import dataclasses

    from sfttop.core.run import IDENTITY, LOCAL, Handoff, Run

    log = tmp_path / "train.log"
    log.write_text("{'loss': 1.0, 'grad_norm': 1.0, 'learning_rate': 1e-05, 'epoch': 0.1}\n")
    run = Run("r", str(log), Config())
    run.poll(1 << 20, 0.0)
    carried = {
        "source", "parser", "loaded", "generation", "preview", "_previewed", "attempt", "restarted_at",
        "restart_reason", "_previous",
        # the current attempt's state (core.run.Attempt), set by _begin
        "data", "diagnoser", "checklist", "events", "finished", "crashed", "last_record_time", "_unjudged",
    }
    assert {f.name for f in dataclasses.fields(Handoff)} == {
        "source", "parser", "current", "previous", "loaded", "generation", "preview", "previewed", "attempt",
        "restarted_at", "restart_reason",
    }
    assert set(vars(run)) == carried | IDENTITY | LOCAL

    other = Run("r", str(log), Config())
    other.take_handoff(run.handoff())
    assert other.data is run.data and other.diagnoser is run.diagnoser and other.loaded == run.loaded
    # ...and it crosses between processes (by pickle), the checkpoint lister of a local run too
    assert run.diagnoser.checkpoints is not None
    back = Run("r", str(log), Config())
    back.take_handoff(pickle.loads(pickle.dumps(run.handoff(), pickle.HIGHEST_PROTOCOL)))
    assert back.data.last_step == run.data.last_step and back.diagnoser.checkpoints == run.diagnoser.checkpoints


def test_a_tail_position_is_all_of_a_tail_but_its_descriptor(tmp_path: Path) -> None:
    import dataclasses

    from sfttop.core.tail import FileTail

    log = tmp_path / "a.log"
    log.write_bytes(b"one\ntwo\nthr")
    a = FileTail(str(log))
    a.poll()
    fields = {f.name for f in dataclasses.fields(a.position())}
    assert set(vars(a)) == {f if f != "mtime_ns" else "_mtime_ns" for f in fields} | {"path", "max_line", "_fd"}
    b = FileTail(str(log))
    b.move_to(a.position())
    log.write_bytes(b"one\ntwo\nthree\nfour\n")
    assert [s for _, s in b.poll().segments] == [b"three", b"four"]
    a.close()
    b.close()


async def test_the_tui_loads_a_long_history_with_a_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The live screen reads a long log's history with the same helper as ``--report`` (its end
    first, then the rest parsed in another process) and ends in the state one process reaches."""
    import sfttop.tui.app as app_module
    from sfttop.tui.app import SfttopApp
    from synth import write_log

    path = tmp_path / "big" / "train.log"
    write_log(path, 3000, epoch_scale=0.001, bars=True)
    monkeypatch.setattr(app_module, "LOAD_BUDGET", 8 << 10)  # a long log for this budget: a preview first
    monkeypatch.setattr(app_module, "FEED_BUDGET", 8 << 10)  # (and the helper's chunks: many of them)
    started: list[pipe.Feed | None] = []
    real_start = pipe.Feed.start

    def start(run: Any, budget: int) -> pipe.Feed | None:
        started.append(real_start(run, budget))
        return started[-1]

    monkeypatch.setattr(pipe.Feed, "start", start)
    settled: list[int] = []
    real_settle = pipe.Feed.settle

    def settle(self: pipe.Feed, run: Any, msg: Any, now: float) -> Any:
        settled.append(1)
        return real_settle(self, run, msg, now)

    monkeypatch.setattr(pipe.Feed, "settle", settle)
    app = SfttopApp([str(path)], Config(), interval=0.05, rescan_seconds=0.1, clock=lambda: 1e9)
    app.monitor.helper_bytes = 1
    async with app.run_test(size=(120, 36)) as pilot:
        deadline = time.monotonic() + 30
        # (a run not polled yet is neither there nor loading: wait for the run itself to be loaded)
        while not (app.monitor.runs and app.monitor.runs[0].loaded) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert app.monitor.runs and app.monitor.runs[0].loaded and not app.monitor.loading
        with app.lock:
            helped = _state(app.monitor)
    assert len(started) == 1 and started[0] is not None and started[0].done
    assert len(settled) >= 10  # the history came from the helper, a chunk at a time
    _, alone = _load([str(path)], helper=False, budget=8 << 10)
    assert helped == _state(alone)
    _no_child_left()
