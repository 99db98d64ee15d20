"""The bulk paths are the record-by-record paths, only faster: a block of train records gives
exactly the findings and the state that its records one by one give."""

from __future__ import annotations

import math
import os
import pickle
import random
from array import array
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import REAL_LOGS, read_all
from sfttop.core.config import Config, Thresholds
from sfttop.core.diagnose import Diagnoser
from sfttop.core.parse import LogParser
from sfttop.core.records import Block, Item, Kind, Record, expand
from sfttop.core.report import build
from synth import bumpy_run, gen_log

# What the façade itself keeps besides its rules and its timeline (the rules are compared whole,
# by state(): a rule's new attribute is compared without being listed here).
FACADE = ("records", "last_step", "last_train_step", "generation", "restarts", "finished", "crashed", "max_steps")


def blocks(records: list[Record], size: int) -> list[Item]:
    """``records`` with each run of train records that carry the same metrics (steps rising)
    cut into blocks of at most ``size``, as the parser hands them over."""
    out: list[Item] = []
    run: list[Record] = []

    def close() -> None:
        for a in range(0, len(run), size):
            part = run[a : a + size]
            names = tuple(part[0].metrics)
            out.append(
                Block(
                    names,
                    array("q", [r.step for r in part]),
                    tuple(array("d", [r.metrics[k] for r in part]) for k in names),
                    array("d", [r.epoch if r.epoch is not None else math.nan for r in part]),
                    array("q", [max(0, r.offset) for r in part]),
                )
            )
        run.clear()

    for r in records:
        if r.kind is Kind.TRAIN and (
            not run or (tuple(r.metrics) == tuple(run[-1].metrics) and r.step > run[-1].step)
        ):
            run.append(r)
            continue
        close()
        if r.kind is Kind.TRAIN:
            run.append(r)
        else:
            out.append(r)
    close()
    return out


def both(items: list[Item], t: Thresholds | None = None, **kw: Any) -> tuple[Diagnoser, Diagnoser]:
    one, bulk = Diagnoser(t, **kw), Diagnoser(t, **kw)
    opened_one, opened_bulk = [], []
    for it in items:
        if isinstance(it, Block):
            for r in it.records():
                opened_one.extend(f.code for f in one.observe(r, 5.0))
            opened_bulk.extend(f.code for f in bulk.observe_block(it, 5.0))
        else:
            opened_one.extend(f.code for f in one.observe(it, 5.0))
            opened_bulk.extend(f.code for f in bulk.observe(it, 5.0))
    assert opened_bulk == opened_one
    return one, bulk


def same(one: Diagnoser, bulk: Diagnoser) -> None:
    key = [(f.code, f.step, f.end_step, f.active, repr(f.value), f.message) for f in one.findings]
    assert [(f.code, f.step, f.end_step, f.active, repr(f.value), f.message) for f in bulk.findings] == key
    for a in FACADE:
        assert getattr(bulk, a) == getattr(one, a), a
    for r1, r2 in zip(one.rules, bulk.rules):
        assert r2.state() == r1.state(), r1.state().rule
    # the episodes still open, and how far each has cooled down
    assert {k: o.cool for k, o in bulk._ep.open.items()} == {k: o.cool for k, o in one._ep.open.items()}
    for h1, h2 in zip(one._tl.hists, bulk._tl.hists):
        assert h1.values == h2.values and h1.gaps == h2.gaps and h1.off == h2.off
    assert one._tl.steps == bulk._tl.steps and one._tl.off == bulk._tl.off


def healthy(n: int, seed: int, noise: float, acc: bool = True) -> list[Record]:
    r = random.Random(seed)
    out = []
    warm = max(1, n // 30)
    for i in range(1, n + 1):
        frac = i / n
        lr = 2e-5 * i / warm if i < warm else 2e-5 * 0.5 * (1 + math.cos(math.pi * frac))
        m = {
            "loss": (0.3 + 1.9 * math.exp(-6 * frac)) * (1 + noise * r.gauss(0, 1)),
            "grad_norm": abs(0.9 + 0.5 * math.exp(-4 * frac) + r.gauss(0, 0.15)),
            "learning_rate": lr,
            "entropy": 0.9 + r.gauss(0, 0.02),
            "num_tokens": float(i * 8192),
        }
        if acc:
            m["mean_token_accuracy"] = min(0.99, 0.58 + 0.3 * (1 - math.exp(-6 * frac)) + r.gauss(0, 0.01))
        out.append(Record(Kind.TRAIN, 5 * i, m, 3.0 * frac))
        if i % 100 == 0:
            out.append(Record(Kind.EVAL, 5 * i, {"eval_loss": 0.32 + 1.9 * math.exp(-6 * frac)}, 3.0 * frac))
    return out


@pytest.mark.parametrize("size", [1, 7, 64, 5000])
def test_healthy_noisy_run(size: int) -> None:
    recs = healthy(20_000, 1, 0.1)
    one, bulk = both(blocks(recs, size))
    same(one, bulk)
    if size >= 64:  # (the fast path is taken: most records went in bulk)
        assert bulk.bulked > 0.8 * 20_000, bulk.bulked


@pytest.mark.parametrize("know_end", [False, True])
def test_lr_to_zero_at_the_end_in_bulk(know_end: bool) -> None:
    # the cosine schedule's tail (below lr_min, then ~0): quiet at the end of a known schedule,
    # and without one until the LR has sat at ~0 for long; the same either way
    recs = healthy(8000, 4, 0.05)
    for r in recs[-600:]:
        if r.kind is Kind.TRAIN:
            r.metrics["learning_rate"] = 0.0 if r.step > 39_000 else r.metrics["learning_rate"]
    kw = {"max_steps": 40_000} if know_end else {}
    one, bulk = both(blocks(recs, 10_000), **kw)
    same(one, bulk)
    assert bulk.bulked > 0.9 * 8000  # (early training, a share of max_steps, in bulk too)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bumpy_run_with_trims_and_resumes(seed: int) -> None:
    recs = bumpy_run(seed, 4000, max_back=40)
    for size in (3, 50, 10_000):
        one, bulk = both(blocks(recs, size), history_cap=256, eval_cap=164)
        same(one, bulk)
        assert one.findings and one.restarts >= 5


def test_pathologies_inside_blocks() -> None:
    # spikes, an explosion, an LR that jumps back up, an accuracy drop, a plateau: all inside
    # long blocks, found at the same steps as record by record
    recs = healthy(6000, 2, 0.03)
    for i, r in enumerate(recs):
        if r.kind is not Kind.TRAIN:
            continue
        m = r.metrics
        if i == 2000:
            m["loss"] *= 3
        if 3000 <= i < 3010:
            m["grad_norm"] = 30.0
        if 4000 <= i < 4300:
            m["learning_rate"] = 2e-5
        if 4500 <= i < 4700:
            m["mean_token_accuracy"] -= 0.2
    one, bulk = both(blocks(recs, 10_000))
    same(one, bulk)
    assert {"loss_oscillation", "grad_explosion", "lr_schedule", "accuracy_drop"} <= {f.code for f in one.findings}


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(50, 3000),
    noise=st.floats(0.0, 0.3),
    size=st.integers(1, 400),
    acc=st.booleans(),
    cap=st.sampled_from([128, 10**9]),
)
def test_any_run_any_cut(seed: int, n: int, noise: float, size: int, acc: bool, cap: int) -> None:
    recs = healthy(n, seed, noise, acc)
    one, bulk = both(blocks(recs, size), history_cap=cap)
    same(one, bulk)


def test_block_records_round_trip() -> None:
    recs = [r for r in healthy(300, 3, 0.05) if r.kind is Kind.TRAIN]
    items = blocks(recs, 64)
    assert all(isinstance(b, Block) for b in items)
    back = expand(items)
    assert [(r.step, r.metrics, r.epoch) for r in back] == [(r.step, r.metrics, r.epoch) for r in recs]


@pytest.mark.parametrize("epochs", [True, False])
def test_block_pickles_whole(epochs: bool) -> None:
    # core/pipe.py sends blocks between processes: packed into one bytes object, they come back
    # the same, to the bit (NaN, -0.0, infinities), empty ones included
    recs = [r for r in healthy(300, 5, 0.05) if r.kind is Kind.TRAIN]
    items = blocks(recs, 64)
    odd = Block(
        ("loss", "grad_norm"),
        array("q", [1, 2, 2**62]),
        (array("d", [math.nan, -0.0, 1e-310]), array("d", [math.inf, -math.inf, 1.5])),
        array("d", [0.5, 1.0, 2.0]),
        array("q", [0, 7, 2**40]),
        True,
    )
    empty = Block(("loss",), array("q"), (array("d"),), array("d"), array("q"))
    items = [*items, odd, empty]
    for b in items:
        assert isinstance(b, Block)
        if not epochs:
            b.epochs = None
    back = pickle.loads(pickle.dumps(items, pickle.HIGHEST_PROTOCOL))

    def key(b: Item) -> tuple[object, ...]:
        assert isinstance(b, Block)
        cols = tuple((c.typecode, c.tobytes()) for c in b.columns)
        eps = None if b.epochs is None else (b.epochs.typecode, b.epochs.tobytes())
        return (b.names, b.steps.typecode, b.steps.tobytes(), cols, eps, b.offsets.typecode, b.offsets.tobytes(), b.step_inferred)

    assert [key(b) for b in back] == [key(b) for b in items]


# ------------------------------------------------------------------------------------------------
# the parser's blocks: the same records, events and state as one record at a time

def _parse_both(path: str, budget: int) -> None:
    pa, da, ra, ea = read_all(path, budget=budget, blocks=False)
    pb, db, rb, eb = read_all(path, budget=budget, blocks=True)
    key = [(r.kind, r.step, repr(r.metrics), r.epoch, r.offset, r.step_inferred) for r in ra]
    assert [(r.kind, r.step, repr(r.metrics), r.epoch, r.offset, r.step_inferred) for r in rb] == key
    assert [(e.kind, e.message, e.offset, e.step) for e in eb] == [(e.kind, e.message, e.offset, e.step) for e in ea]
    for a in ("interval", "ordinal", "last_epoch", "last_train_step", "progress_step", "progress_total", "format"):
        assert getattr(pb, a) == getattr(pa, a), a
    assert pb._epochs == pa._epochs and pb._ordinals == pa._ordinals
    assert (pb.stats.records, pb.stats.skipped) == (pa.stats.records, pa.stats.skipped)
    for name, s in da.series.items():
        t = db.series[name]
        assert (list(t.steps), repr(list(t.values)), t.count) == (list(s.steps), repr(list(s.values)), s.count), name
    assert db.epoch == da.epoch


@pytest.mark.parametrize("path", REAL_LOGS, ids=lambda p: "/".join(p.split(os.sep)[-3:-1]))
def test_real_logs_parse_the_same_in_blocks(path: str) -> None:
    _parse_both(path, 1 << 16)


@pytest.mark.parametrize("shape", ["hf4", "hf5", "hf4plain", "jsonl"])
def test_bench_logs_parse_the_same_in_blocks(tmp_path: Path, shape: str) -> None:
    path = gen_log(tmp_path, shape, 6000, 3)
    for budget in (1 << 12, 1 << 20):
        _parse_both(path, budget)


def test_report_is_the_same_in_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [gen_log(tmp_path, "hf4", 12_000, 4), *REAL_LOGS]
    fast, _ = build(paths, Config(), clock=lambda: 1e9)
    init = LogParser.__init__

    def one_by_one(self: LogParser, fmt: str | None = None, blocks: bool = True) -> None:
        init(self, fmt, blocks=False)

    monkeypatch.setattr(LogParser, "__init__", one_by_one)
    slow, _ = build(paths, Config(), clock=lambda: 1e9)
    assert orjson.dumps(fast) == orjson.dumps(slow)


@pytest.mark.parametrize("shape", ["hf4", "jsonl"])
def test_windows_are_judged_at_full_resolution_when_read_in_big_chunks(tmp_path: Path, shape: str) -> None:
    # 4 MiB reads hand over thousands of records at once, more than a series keeps at full
    # resolution: the checklist must still judge every window from its own points.
    from sfttop.core.run import Run

    path = gen_log(tmp_path, shape, 12_000, 5)
    run = Run("r", path, Config())
    while not run.loaded:
        run.poll(4 << 20)
    st = run.checklist.update(run.data, run.diagnoser)
    c100 = st.cadence("100_steps")
    assert c100 is not None and len(c100.windows) > 500
    thin = [w.label for w in c100.windows if "not enough" in (w.item("loss_falling") or w.items[0]).detail]
    assert thin == []
