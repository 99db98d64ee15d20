"""Property: a run's derived state is what its file's current content says.

A hypothesis state machine plays a training day against one ``Run``: a trainer appends records
(in arbitrary pieces), resumes from a checkpoint into the same log (``>>``: steps go back),
re-runs into it (truncated, deleted and created again, or replaced by rename), and, for a
``trainer_state.json``, saves at every checkpoint (rewritten in place or atomically), resumes, or
starts another run in the same place. After the run has caught up, its series, findings and
state must equal those of a fresh ``Run`` reading a copy of the file as it is now: nothing of an
earlier attempt survives, nothing is read twice, nothing is missed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sfttop.core.config import Config
from sfttop.core.records import Kind, expand
from sfttop.core.run import Run

NOW = 2_000_000_000.0  # a fixed "now", well after every write: the same for the run and its oracle


def _values(seed: int, step: int) -> dict[str, float]:
    loss = 2.0 * math.exp(-step / 20) + 0.3 + 0.01 * ((step * 7 + seed * 13) % 5) + seed * 1e-3
    grad = float("nan") if (seed % 4 == 3 and step == 9) else 1.0 + 0.1 * ((step + seed) % 3)
    return {"loss": round(loss, 6), "grad_norm": grad, "learning_rate": 1e-4}


def _state(run: Run, resumed_state_file: bool = False) -> dict[str, Any]:
    d = run.data
    series = {
        name: [(s, v if math.isfinite(v) else repr(v)) for s, v in zip(sr.steps, sr.values)]
        for name, sr in sorted(d.series.items())
    }
    return {
        "series": series,
        "train": d.count(Kind.TRAIN),
        "eval": d.count(Kind.EVAL),
        # (a stall is about time, not content: a watcher saw silences a later reader cannot;
        # only whether the run is stalled now must agree)
        # After a resume, trainer_state.json no longer holds the records the checkpoint's reload
        # dropped, which a watcher did see (episodes in them, a cool-down counted through them),
        # and the diagnoser's own resume (a replay onto a mark) does not yet give back exactly a
        # fresh reader's eval history: findings are compared there only without resumes.
        "findings": None
        if resumed_state_file
        else [(f.code, f.step, f.active) for f in run.diagnoser.findings if f.code != "run_stalled"],
        "liveness": run.liveness(NOW).state,
        "crashed": run.crashed,
        "finished": run.finished,
    }


class _Machine(RuleBasedStateMachine):
    name = "train.log"

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, self.name)
        self.run = Run("r", self.path, Config())
        self.seed = 0  # which attempt the trainer is on (values differ between attempts)
        self.step = 0
        self.exists = False
        self.emitted: list[tuple[int, str, int]] = []  # (attempt, kind, step) of every record read

    def catch_up(self) -> None:
        for _ in range(200):
            up = self.run.poll(211, NOW)  # a tiny budget: reads stop mid-line all the time
            self.emitted += [(self.run.attempt, r.kind.value, r.step) for r in expand(up.records)]
            if self.run.loaded and not up.changed:
                break

    @rule()
    def poll(self) -> None:
        self.catch_up()

    @invariant()
    def matches_the_file(self) -> None:
        if not self.exists:
            return
        self.catch_up()
        oracle_dir = tempfile.mkdtemp()
        try:
            copy = os.path.join(oracle_dir, self.name)
            shutil.copyfile(self.path, copy)
            fresh = Run("r", copy, Config())
            while not fresh.loaded and fresh.error is None:
                fresh.poll(1 << 20, NOW)
            lossy = self.name == "trainer_state.json" and self.seed >= 100
            assert _state(self.run, lossy) == _state(fresh, lossy)
        finally:
            shutil.rmtree(oracle_dir, ignore_errors=True)

    def teardown(self) -> None:
        src = self.run.source
        if hasattr(src, "close"):
            src.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class LogMachine(_Machine):
    """A JSON-lines log (steps on every line, so "starts over" is visible in the content)."""

    def _lines(self, steps: range) -> bytes:
        return b"".join(
            json.dumps({"step": s, **_values(self.seed, s)}).encode() + b"\n" for s in steps
        )

    @rule(n=st.integers(1, 8), cuts=st.lists(st.integers(1, 90), max_size=4), poll_between=st.booleans())
    def append(self, n: int, cuts: list[int], poll_between: bool) -> None:
        data = self._lines(range(self.step + 1, self.step + n + 1))
        self.step += n
        self.exists = True
        pos = 0
        for c in [*cuts, len(data)]:
            piece = data[pos : pos + c]
            pos += c
            if piece:
                with open(self.path, "ab") as f:
                    f.write(piece)
                if poll_between:
                    self.catch_up()

    @precondition(lambda self: self.step > 3)
    @rule(back=st.integers(1, 3))
    def resume_appended(self, back: int) -> None:
        self.step -= back  # `python train.py --resume ... >> train.log`: from an earlier checkpoint
        self.seed += 100  # (other values for the steps it does again)

    @precondition(lambda self: self.exists)
    @rule(how=st.sampled_from(["truncate", "recreate", "replace"]), n=st.integers(0, 6))
    def rerun(self, how: str, n: int) -> None:
        self.catch_up()  # (a re-run into a log the reader never saw is just a log)
        self.seed += 1
        self.step = n
        data = self._lines(range(1, n + 1))
        if how == "truncate":
            with open(self.path, "wb") as f:
                f.write(data)
        elif how == "recreate":
            os.unlink(self.path)
            self.catch_up()
            with open(self.path, "wb") as f:
                f.write(data)
        else:
            tmp = self.path + ".new"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path)

    def teardown(self) -> None:
        try:
            # each record of an attempt read once (a resume's repeated steps come again, by design)
            seen = self.emitted
            assert len(seen) == len(set(seen)) or self.seed >= 100
        finally:
            super().teardown()


class StateFileMachine(_Machine):
    """``trainer_state.json``, saved whole at every checkpoint."""

    name = "trainer_state.json"

    def __init__(self) -> None:
        super().__init__()
        self.history: list[dict[str, Any]] = []
        self.saves: list[int] = []  # the history's length at each save: the checkpoints

    def _save(self, atomic: bool) -> None:
        state = {"global_step": self.step, "max_steps": 500, "log_history": self.history}
        text = json.dumps(state, indent=2)
        if atomic:
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, self.path)
        else:
            with open(self.path, "w") as f:
                f.write(text)
        st_ = os.stat(self.path)
        os.utime(self.path, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000))  # coarse clocks
        self.exists = True

    @rule(n=st.integers(1, 6), atomic=st.booleans(), evaluate=st.booleans())
    def save(self, n: int, atomic: bool, evaluate: bool) -> None:
        for _ in range(n):
            self.step += 1
            self.history.append({"step": self.step, "epoch": self.step / 100, **_values(self.seed, self.step)})
        if evaluate:
            self.history.append({"step": self.step, "epoch": self.step / 100, "eval_loss": 1.0 + self.seed / 10})
        self._save(atomic)
        self.saves.append(len(self.history))

    @precondition(lambda self: len(self.saves) > 1)
    @rule(back=st.integers(1, 3), atomic=st.booleans())
    def resume(self, back: int, atomic: bool) -> None:
        # The Trainer reloads an earlier checkpoint's state (a save: its evals are in it) and does
        # the steps after it again, evals included, with other values: what it logs replaces
        # what the file lost.
        cut = self.saves[max(0, len(self.saves) - 1 - back)]
        self.saves = [n for n in self.saves if n <= cut]
        redo = self.history[cut:]
        self.history = self.history[:cut]
        self.seed += 100
        for e in redo:
            if "eval_loss" in e:
                self.history.append({**e, "eval_loss": 1.0 + self.seed / 10})
            else:
                self.history.append({**e, **_values(self.seed, e["step"])})
        self.save(1, atomic, False)

    @precondition(lambda self: self.exists)
    @rule(atomic=st.booleans())
    def another_run(self, atomic: bool) -> None:
        self.seed += 1
        self.step = 0
        self.history = []
        self.saves = []
        self.save(2, atomic, False)

    def teardown(self) -> None:
        try:
            if self.seed < 100:  # no resume: each record exactly once
                assert len(self.emitted) == len(set(self.emitted))
        finally:
            super().teardown()


TestLogMachine = LogMachine.TestCase
TestLogMachine.settings = settings(max_examples=60, stateful_step_count=20, deadline=None)
TestStateFileMachine = StateFileMachine.TestCase
TestStateFileMachine.settings = settings(max_examples=60, stateful_step_count=20, deadline=None)
