"""The bulk reading of TensorBoard scalar records (core/tbscan.py) against record-by-record
reading: the same records from the same bytes, the same records and events out of
``EventsSource`` however the file grows, the same damage found. Event files are random streams
written with tensorboard's own protos (HF and Megatron tags, evals at the train step, text
summaries, tensor-encoded scalars, steps that go back, step varints of 1-4 bytes, NaN/inf)."""

from __future__ import annotations

import math
import random
import struct
from pathlib import Path

import pytest
from tensorboard.compat.proto.event_pb2 import Event as PbEvent
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto

from sfttop.core import tbsource
from sfttop.core.parse import LogParser
from sfttop.core.records import Event, Item, expand
from sfttop.core.tbscan import Scanned, Stretch, scan_records
from sfttop.core.tbsource import EventsSource
from sfttop.core.tensorboard import TENSORBOARD, simple_scalar
from sfttop.core.tfrecord import frame, split_records

TRAIN = ["train/loss", "train/grad_norm", "train/learning_rate", "train/mean_token_accuracy", "train/num_tokens"]
MEGATRON = ["lm loss", "lm loss vs samples", "grad-norm", "learning-rate", "iteration-time"]


def _scalar(step: int, tag: str, v: float, t: float) -> bytes:
    return PbEvent(wall_time=t, step=step, summary=Summary(value=[Summary.Value(tag=tag, simple_value=v)])).SerializeToString()


def _tensor(step: int, tag: str, v: float, t: float) -> bytes:
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    val = Summary.Value(tag=tag, tensor=TensorProto(dtype=1, float_val=[v]), metadata=meta)
    return PbEvent(wall_time=t, step=step, summary=Summary(value=[val])).SerializeToString()


def _text(step: int, t: float) -> bytes:
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="text"))
    tensor = TensorProto(dtype=7, string_val=[b'{"logging_steps": 1, "max_steps": 500}'])
    val = Summary.Value(tag="args/text_summary", tensor=tensor, metadata=meta)
    return PbEvent(wall_time=t, step=step, summary=Summary(value=[val])).SerializeToString()


def stream(rnd: random.Random) -> bytes:
    """A random event file."""
    t = 1_700_000_000.0
    out = [frame(PbEvent(wall_time=t, file_version="brain.Event:2").SerializeToString())]
    step = rnd.choice((0, 1, 120, 16370, (1 << 21) - 40))
    tags = rnd.sample(rnd.choice((TRAIN, MEGATRON)), rnd.randrange(1, 5)) + (["train/epoch"] if rnd.random() < 0.7 else [])

    def value() -> float:
        r = rnd.random()
        return math.nan if r < 0.02 else math.inf if r < 0.03 else rnd.uniform(-3, 3)

    for _ in range(rnd.randrange(0, 400)):
        t += rnd.uniform(0.001, 3)
        r = rnd.random()
        step += 1 if r < 0.85 else 0 if r < 0.9 else rnd.randrange(2, 300) if r < 0.97 else -rnd.randrange(1, 50)
        step = max(step, 0)
        for tag in tags:
            t += 0.0001
            out.append(frame((_tensor if rnd.random() < 0.01 else _scalar)(step, tag, value(), t)))
        r = rnd.random()
        if r < 0.08:  # an evaluation at the train step
            for tag in ("eval/loss", "eval/runtime", "train/epoch")[: rnd.randrange(1, 4)]:
                out.append(frame(_scalar(step, tag, value(), t)))
        elif r < 0.09:
            out.append(frame(_text(step, t)))
        elif r < 0.1:  # the writer's tags change (another callback, a new phase)
            tags = rnd.sample(TRAIN, rnd.randrange(1, 5))
    if rnd.random() < 0.5:
        for tag in ("train/train_runtime", "train/train_loss", "train/epoch"):
            out.append(frame(_scalar(step, tag, value(), t)))
    return b"".join(out)


def flat(sc: Scanned) -> list[tuple[int, object]]:
    """(offset, (step, tag, value) or data) of every record, stretches expanded."""
    out: list[tuple[int, object]] = []
    for it in sc.items:
        if isinstance(it, Stretch):
            lay = it.layout
            for c in range(it.cycles):
                for j, tag in enumerate(lay.tags):
                    out.append((it.offset + c * lay.size + lay.starts[j], (it.steps[c], tag, repr(it.values[j][c]))))
        else:
            got = simple_scalar(it[1])
            out.append((it[0], (got[0], got[1], repr(got[2])) if got is not None else it[1]))
    return out


def legacy(buf: bytes, base: int = 0, at_eof: bool = True) -> Scanned:
    framed = split_records(buf, base, at_eof)
    return Scanned(list(framed.records), framed.end, framed.corrupt, framed.oversized, framed.need)


def test_scan_finds_what_split_records_finds() -> None:
    rnd = random.Random(3)
    stretched = 0
    for trial in range(300):
        buf = stream(rnd)
        if rnd.random() < 0.5:
            buf = buf[: rnd.randrange(len(buf) + 1)]
        base = rnd.choice((0, 4096))
        got, want = scan_records(buf, base), legacy(buf, base)
        assert flat(got) == flat(want), trial
        assert (got.end, got.corrupt, got.need, got.oversized, got.count) == (want.end, want.corrupt, want.need, want.oversized, want.count), trial
        stretched += sum(isinstance(it, Stretch) for it in got.items)
    assert stretched > 300  # the bulk path was taken


def test_damage_in_a_stretch_is_found_and_counted() -> None:
    """Every damaged record is dropped and counted, as record by record: single bits anywhere,
    the same bit in several records of one place in the cycle, zeroed runs."""
    rnd = random.Random(11)
    damaged = 0
    for trial in range(400):
        buf = bytearray(stream(rnd))
        if len(buf) < 200:
            continue
        r = rnd.random()
        if r < 0.4:
            for _ in range(rnd.randrange(1, 4)):
                buf[rnd.randrange(len(buf))] ^= 1 << rnd.randrange(8)
        elif r < 0.8:  # the same bit of records a multiple of a cycle apart
            at, gap = rnd.randrange(len(buf) // 2), rnd.choice((1, 2, 64, 128)) * rnd.choice((36, 49, 58, 61, 180, 250))
            for k in range(rnd.randrange(2, 4)):
                if at + k * gap < len(buf):
                    buf[at + k * gap] ^= 0x10
        else:
            at = rnd.randrange(len(buf))
            buf[at : at + rnd.randrange(1, 64)] = bytes(min(64, len(buf) - at))[: len(buf[at : at + 64])]
        b = bytes(buf)
        got, want = scan_records(b), legacy(b)
        assert flat(got) == flat(want), trial
        assert (got.end, got.corrupt, got.need) == (want.end, want.corrupt, want.need), trial
        damaged += want.corrupt > 0
    assert damaged > 200


def _read(path: Path, cuts: list[int], raw: bytes, budget: int) -> tuple[list[str], list[str]]:
    s = EventsSource(str(path.parent))
    parser = LogParser(TENSORBOARD)
    items: list[Item] = []
    events: list[Event] = []
    with open(path, "wb") as f:
        done = 0
        for c in cuts:
            f.write(raw[done:c])
            f.flush()
            done = c
            s.poll(parser, items, events, budget)
    for _ in range(200):
        s.poll(parser, items, events, budget)
        if s.caught_up:
            break
    s.poll(parser, items, events, budget)
    s.poll(parser, items, events, budget)
    return [repr(r) for r in expand(items)], [repr(e) for e in events]


@pytest.mark.parametrize("seed", range(4))
def test_source_reads_the_same_in_bulk_and_record_by_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rnd = random.Random(seed)
    for trial in range(15):
        raw = stream(rnd)
        n = rnd.choice((1, 2, 3, 7))
        cuts = [*sorted(rnd.sample(range(len(raw)), min(n - 1, len(raw)))), len(raw)]
        budget = rnd.choice((4 << 20, 4096, 700))
        d = tmp_path / f"{trial}"
        d.mkdir()
        path = d / "events.out.tfevents.1700000000.host.1.0"
        bulk = _read(path, cuts, raw, budget)
        with monkeypatch.context() as m:
            m.setattr(tbsource, "scan_records", legacy)
            one_by_one = _read(path, cuts, raw, budget)
        assert bulk == one_by_one, (seed, trial)


def test_hf_layout_is_read_in_stretches() -> None:
    """An HF run's train steps (every 100th with an evaluation) are read as stretches, not record
    by record: what makes a load fast."""
    t = 1_700_000_000.0
    recs = []
    for s in range(1, 1001):
        for tag in ("train/loss", "train/grad_norm", "train/learning_rate", "train/epoch"):
            t += 0.5
            recs.append(frame(_scalar(s, tag, s / 1000, t)))
        if s % 100 == 0:
            recs += [frame(_scalar(s, tag, 1.0, t)) for tag in ("eval/loss", "eval/runtime", "train/epoch")]
    got = scan_records(b"".join(recs))
    rows = sum(it.count for it in got.items if isinstance(it, Stretch))
    assert got.count == 4030 and rows == 4030
    assert sum(struct.unpack_from("<Q", r)[0] > 0 for r in recs) == 4030
