"""Each train rule on its two paths: a stretch its ``absorb`` took leaves it in exactly the state
its ``observe`` on each record leaves, compared whole by ``state()`` (every attribute a rule has;
nothing to list by hand)."""

from __future__ import annotations

import math
import random
from array import array

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sfttop.core.config import Thresholds
from sfttop.core.diagnose import Diagnoser
from sfttop.core.diagnose.rules import Cols, TrainRule
from sfttop.core.records import Kind, Record

NAMES = [type(r).__name__ for r in Diagnoser().rules]
COLS = ("loss", "grad_norm", "learning_rate", "mean_token_accuracy", "entropy")


def test_every_rule_keeps_its_state_in_slots() -> None:
    # (no instance __dict__: an attribute that is not in __slots__ cannot be set, so state(),
    # built from the slots, covers everything a rule keeps)
    d = Diagnoser()
    assert len(set(NAMES)) == len(NAMES) >= 8
    for r in d.rules:
        assert isinstance(r, TrainRule) and not hasattr(r, "__dict__"), type(r).__name__
        assert r.state() == r.state() and r.state().rule == type(r).__name__


def _run(n: int, seed: int, noise: float, events: list[tuple[str, int]], acc: bool) -> list[dict[str, float]]:
    """A noisy healthy run with the pathologies in ``events`` mixed in (the last 64 records are the
    stretch under test)."""
    r = random.Random(seed)
    out = []
    warm = max(1, n // 30)
    for i in range(n):
        frac = (i + 1) / n
        m = {
            "loss": (0.3 + 1.9 * math.exp(-6 * frac)) * (1 + noise * r.gauss(0, 1)),
            "grad_norm": abs(0.9 + 0.5 * math.exp(-4 * frac) + r.gauss(0, 0.15)),
            "learning_rate": 2e-5 * (i + 1) / warm if i < warm else 2e-5 * 0.5 * (1 + math.cos(math.pi * frac)),
            "mean_token_accuracy": min(0.99, 0.58 + 0.3 * (1 - math.exp(-6 * frac)) + r.gauss(0, 0.01)),
            "entropy": 0.9 + r.gauss(0, 0.02),
        }
        if not acc:
            del m["mean_token_accuracy"]
        out.append(m)
    for kind, back in events:
        at = max(0, n - 64 - back)
        if kind == "spike":
            out[at]["loss"] *= 3
        elif kind == "grad":
            for m in out[at : at + 5]:
                m["grad_norm"] = 30.0
        elif kind == "tiny":
            for m in out[at : at + 8]:
                m["grad_norm"] = 1e-5
        elif kind == "lr_up":
            for m in out[at : at + 40]:
                m["learning_rate"] = 2e-5
        elif kind == "lr_zero":
            for m in out[at:]:
                m["learning_rate"] = 0.0
        elif kind == "negative":  # (an impossible cross-entropy, that recovers)
            for m in out[at : at + 3]:
                m["loss"] = -0.5
        elif kind == "ramp":  # a warmup running through the stretch
            for k, m in enumerate(out[at : at + 80]):
                m["learning_rate"] = 1e-6 * (k + 1)
        elif kind == "lr_high":  # above lr_max: a finding only with instability
            for m in out[at:]:
                m["learning_rate"] = 5e-3
        elif kind == "skip" and at > 0:  # the fp16 loss scaler skipped the step: the LR held
            out[at]["grad_norm"] = math.inf
            out[at]["learning_rate"] = out[at - 1]["learning_rate"]
        elif kind == "diverge":
            out[at]["loss"] *= 300
        elif kind == "acc_drop" and acc:  # (one that ends there: the rolling median recovers)
            for m in out[max(0, at - 150) : at]:
                m["mean_token_accuracy"] -= 0.2
    return out


# (kind, how many records before the stretch it starts; < 0: inside it, where the trend checks
# that fall due every few records still leave a stretch): close enough that the stretch sees the
# episode it opened cool down, the LR sit at ~0, the accuracy stay down
events = st.lists(
    st.tuples(
        st.sampled_from(
            ["spike", "grad", "tiny", "lr_up", "lr_zero", "acc_drop", "negative", "ramp", "lr_high", "skip", "diverge"]
        ),
        st.integers(-6, 30),
    ),
    min_size=1,
    max_size=3,
)


@pytest.mark.parametrize("name", NAMES)
@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    seed=st.integers(0, 10_000),
    before=st.sampled_from([120, 300, 700, 1000]),
    noise=st.floats(0.0, 0.2),
    ev=events,
    acc=st.booleans(),
    max_steps=st.sampled_from([None, 3000, 30_000]),
    cap=st.sampled_from([128, 10**9]),
)
def test_absorb_equals_observe(
    name: str,
    seed: int,
    before: int,
    noise: float,
    ev: list[tuple[str, int]],
    acc: bool,
    max_steps: int | None,
    cap: int,
) -> None:
    run = _run(before + 64, seed, noise, ev, acc)
    t = Thresholds()
    one = Diagnoser(t, max_steps=max_steps, history_cap=cap)
    bulk = Diagnoser(t, max_steps=max_steps, history_cap=cap)
    for k, m in enumerate(run[:before]):
        for d in (one, bulk):
            d.observe(Record(Kind.TRAIN, 10 * (k + 1), dict(m)))
    rest = run[before:]
    names = tuple(rest[0])
    steps = array("q", [10 * (before + 1 + k) for k in range(len(rest))])
    col = {c: array("d", [m[c] for m in rest]) if c in names else None for c in COLS}
    c = Cols(steps, *col.values())
    hooks = bulk._block_hooks(c)
    span = bulk._stretch(c, 0, len(rest), hooks)
    assume(span > 0)  # (a stretch every rule proved quiet: what absorb is for)
    bulk._absorb(c, 0, span, hooks)
    for k in range(span):
        one.observe(Record(Kind.TRAIN, steps[k], dict(rest[k])))
    (r1,) = [r for r in one.rules if type(r).__name__ == name]
    (r2,) = [r for r in bulk.rules if type(r).__name__ == name]
    assert r2.state() == r1.state()
    assert [(f.code, f.step, f.end_step) for f in bulk.findings] == [(f.code, f.step, f.end_step) for f in one.findings]
    # (and every open episode has cooled down as far)
    assert {k: o.cool for k, o in bulk._ep.open.items()} == {k: o.cool for k, o in one._ep.open.items()}
