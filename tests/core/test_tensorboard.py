"""TensorBoard event files, read without TensorFlow, checked against tensorboard's own reader.

The oracle is ``tensorboard``'s ``EventFileLoader`` (which turns every scalar, simple_value or
tensor, into a ``scalars``-plugin tensor) with ``tensor_util.make_ndarray``; inputs are real
event files from public runs (tests/fixtures/formats/tensorboard, ../shared/logs) and files
written here by tensorboard's own ``EventFileWriter``.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import struct
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.compat.proto.event_pb2 import Event as PbEvent
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

from helpers import TESTS
from sfttop.core.config import Config
from sfttop.core.discover import expand_arg
from sfttop.core.metrics import canonical
from sfttop.core.parse import LogParser
from sfttop.core.records import Event, EventKind, Item, Kind, Record, expand
from sfttop.core.run import Monitor
from sfttop.core.tbsource import EventsSource
from sfttop.core.tensorboard import TENSORBOARD, Malformed, decode_event, simple_scalar, tag_key
from sfttop.core.tfrecord import crc32c, frame, masked_crc32c, split_records

HERE = TESTS
FIXTURES = HERE / "fixtures" / "formats" / "tensorboard"
SHARED = HERE.parent.parent / "shared" / "logs"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/logs")

# (folder, train records, eval records, summary written) — counts from SOURCES.md
REAL = [
    ("tb-qwen25vl-lora-overfit-gradnorm-rise", 66, 13, True),
    ("tb-qwen25vl-three-runs-one-file-step-reset", 11, 10, False),
    ("tb-unsloth-llama2-60step", 60, 0, True),
    ("tb-codegen-old-transformers-no-gradnorm", 29, 0, False),
    ("tb-header-only-empty", 0, 0, False),
]
SHARED_ONLY = [
    ("tb-qwen25vl-10epoch-memorize", 82, 0, True),
    ("tb-megatron-llama3-1b-hang-344of500", 344, 0, False),
]


def _real_dir(folder: str) -> Path:
    d = FIXTURES / folder
    if d.is_dir():
        return d
    d = SHARED / folder
    if not d.is_dir():
        pytest.skip(f"{folder}: ../shared/logs not present")
    return d


def _one_file(d: Path) -> Path:
    files = sorted(d.glob("events.out.tfevents.*"))
    assert len(files) == 1
    return files[0]


# -- oracle and sfttop's raw reading ----------------------------------------------------------
Scalar = tuple[str, int, float]


def oracle(path: Path) -> list[Scalar]:
    out = []
    for ev in EventFileLoader(str(path)).Load():
        for v in ev.summary.value:
            if v.metadata.plugin_data.plugin_name == "scalars":
                out.append((v.tag, ev.step, float(tensor_util.make_ndarray(v.tensor).item())))
    return out


def ours(path: Path) -> list[Scalar]:
    framed = split_records(path.read_bytes())
    assert framed.corrupt == 0
    out: list[Scalar] = []
    for _off, data in framed.records:
        ev = decode_event(data)
        out.extend((tag, ev.step, value) for tag, value in ev.scalars)
        fast = simple_scalar(data)
        if fast is not None:  # the fast path reads what the general decoder reads
            assert same([(fast[1].decode(), fast[0], fast[2])], [(t, ev.step, v) for t, v in ev.scalars])
    return out


def same(a: list[Scalar], b: list[Scalar]) -> bool:
    """Equal, NaN equal to NaN (bit patterns of float32 values compared as doubles)."""
    if len(a) != len(b):
        return False
    for (ta, sa, va), (tb, sb, vb) in zip(a, b):
        if ta != tb or sa != sb:
            return False
        if not (va == vb or (math.isnan(va) and math.isnan(vb))):
            return False
    return True


def read_source(path: Path | str, budget: int = 4 << 20) -> tuple[LogParser, list[Record], list[Event], EventsSource]:
    src = EventsSource(str(path))
    parser = LogParser(TENSORBOARD)
    items: list[Item] = []
    events: list[Event] = []
    for _ in range(10_000):
        src.poll(parser, items, events, budget)
        if src.caught_up:
            break
    return parser, expand(items), events, src


def flatten(records: list[Record]) -> list[Scalar]:
    """Every scalar a record holds, as (sfttop name, step, value); epochs as "epoch"."""
    out = []
    for r in records:
        for k, v in r.metrics.items():
            out.append((k, r.step, v))
        if r.epoch is not None:
            out.append(("epoch", r.step, r.epoch))
    return out


def expected_from_oracle(scalars: list[Scalar]) -> list[Scalar]:
    out = []
    for tag, step, v in scalars:
        tk = tag_key(tag)
        if tk is not None:
            key = canonical(tk[0]) if tk[0] != "epoch" else "epoch"
            out.append((key, step, v))
    return out


def _multiset(xs: list[Scalar]) -> list[tuple[str, int, str]]:
    return sorted((k, s, repr(v)) for k, s, v in xs)


# -- CRC and framing ----------------------------------------------------------------------------
def test_crc32c_known_vectors() -> None:
    # RFC 3720 B.4 and the "123456789" check value of CRC-32C
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C


def test_crc_matches_tensorboards_writer_on_every_length() -> None:
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as tb_masked

    for n in range(0, 70):
        data = bytes((i * 37 + n) & 0xFF for i in range(n))
        assert masked_crc32c(data) == tb_masked(data)


def test_crcs_checked_a_length_at_a_time_find_every_damaged_record() -> None:
    """split_records checks the data CRCs of all records of one length together; the records
    it drops must be exactly those whose own CRC does not match."""
    import random

    rnd = random.Random(5)
    for trial in range(1000):
        recs = [bytes(rnd.randrange(256) for _ in range(rnd.choice((0, 3, 40, 41, 44)))) for _ in range(rnd.randrange(1, 30))]
        buf = bytearray(b"".join(frame(r) for r in recs))
        starts = []
        at = 0
        for r in recs:
            starts.append(at)
            at += 16 + len(r)
        damaged = set()
        for _ in range(rnd.choice((0, 1, 1, 2, 3, 5))):
            i = rnd.randrange(len(recs))
            lo, hi = starts[i] + 12, starts[i] + 16 + len(recs[i])  # data and data CRC, not the length
            buf[rnd.randrange(lo, hi)] ^= 1 << rnd.randrange(8)
        for i, r in enumerate(recs):
            data = bytes(buf[starts[i] + 12 : starts[i] + 12 + len(r)])
            if struct.unpack_from("<I", buf, starts[i] + 12 + len(r))[0] != masked_crc32c(data):
                damaged.add(i)
        got = split_records(bytes(buf))
        assert got.corrupt == len(damaged), trial
        assert [off for off, _ in got.records] == [starts[i] for i in range(len(recs)) if i not in damaged], trial


def test_the_same_damage_in_two_records_of_one_length_is_found() -> None:
    """Checked together, two records flipped at the same bit would cancel out; each record's
    number shifts it, so they do not (here: every bit of a 44-byte record and its CRC)."""
    recs = [bytes((i * 7 + j) & 0xFF for j in range(44)) for i in range(3)]
    clean = b"".join(frame(r) for r in recs)
    size = 16 + 44
    for bit in range(12 * 8, size * 8):  # data and its CRC (the length has its own check)
        buf = bytearray(clean)
        for rec in (0, 1):
            buf[rec * size + bit // 8] ^= 1 << (bit % 8)
        got = split_records(bytes(buf))
        assert got.corrupt == 2, bit
        assert [d for _, d in got.records] == [recs[2]]


def test_frame_round_trip_and_cut_record_waits() -> None:
    recs = [b"a" * n for n in (0, 1, 7, 8, 9, 100)]
    buf = b"".join(frame(r) for r in recs)
    got = split_records(buf)
    assert [d for _, d in got.records] == recs and got.end == len(buf) and got.corrupt == 0
    # Every cut: the complete records before it, the offset of the cut one, nothing counted.
    for cut in range(len(buf)):
        part = split_records(buf[:cut])
        assert part.corrupt == 0
        assert [d for _, d in part.records] == recs[: len(part.records)]
        assert part.end <= cut
        rest = split_records(buf[part.end :], part.end)
        assert [d for _, d in part.records + rest.records] == recs


def test_corrupt_data_skipped_and_counted() -> None:
    recs = [bytes([i]) * 20 for i in range(5)]
    buf = bytearray(b"".join(frame(r) for r in recs))
    buf[2 * 36 + 12 + 5] ^= 0x40  # a bit of record 2's data
    got = split_records(bytes(buf))
    assert got.corrupt == 1
    assert [d for _, d in got.records] == recs[:2] + recs[3:]


def test_corrupt_length_resyncs_at_the_next_record() -> None:
    recs = [bytes([i]) * 20 for i in range(5)]
    buf = bytearray(b"".join(frame(r) for r in recs))
    buf[36 + 1] ^= 0x01  # record 1's length
    got = split_records(bytes(buf))
    assert got.corrupt == 1
    assert [d for _, d in got.records] == [recs[0], *recs[2:]]


def test_garbage_never_raises() -> None:
    import random

    rnd = random.Random(7)
    good = frame(b"\x09" + struct.pack("<d", 1.0) + b"\x10\x05")
    for _ in range(300):
        junk = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 200)))
        got = split_records(junk + good)
        for _, data in got.records:
            try:
                decode_event(data)
            except Malformed:
                pass
    for _ in range(2000):
        data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 60)))
        try:
            decode_event(data)
        except Malformed:
            pass


# -- real logs against the oracle --------------------------------------------------------------
@pytest.mark.parametrize(("folder", "train", "evals", "summary"), REAL + SHARED_ONLY, ids=[c[0] for c in REAL + SHARED_ONLY])
def test_real_log_every_scalar_as_tensorboard_reads_it(folder: str, train: int, evals: int, summary: bool) -> None:
    path = _one_file(_real_dir(folder))
    want = oracle(path)
    assert same(ours(path), want)
    # Through the source: every scalar once, in records of the right kind.
    parser, records, events, src = read_source(path.parent)
    assert src.corrupt == 0 and src.malformed == 0 and parser.stats.skipped == 0
    assert _multiset(flatten(records)) == _multiset(expected_from_oracle(want))
    kinds = [r.kind for r in records]
    assert kinds.count(Kind.TRAIN) == train
    assert kinds.count(Kind.EVAL) == evals
    assert (Kind.SUMMARY in kinds) == summary
    assert any(e.kind is EventKind.FINISHED for e in events) == summary
    loss_tag = "lm loss" if "megatron" in folder else "train/loss"
    assert sum(1 for t, _, _ in want if t == loss_tag) == train
    assert sum(1 for t, _, _ in want if t == "eval/loss") == evals


def test_hf_dicts_are_the_stdout_dicts() -> None:
    """A train record holds what the HF stdout line of the same on_log call gives."""
    _, records, _, src = read_source(FIXTURES / "tb-unsloth-llama2-60step")
    first = records[0]
    assert first.kind is Kind.TRAIN and first.step == 1
    assert set(first.metrics) == {"loss", "grad_norm", "learning_rate"}
    assert first.epoch is not None
    last = records[-1]
    assert last.kind is Kind.SUMMARY and last.step == 60
    assert {"train_runtime", "train_loss", "total_flos"} <= set(last.metrics)
    assert src.args.max_steps == 60 and src.args.logging_steps == 1


def test_megatron_tags_mapped_and_per_sample_copies_skipped() -> None:
    d = SHARED / "tb-megatron-llama3-1b-hang-344of500"
    if not d.is_dir():
        pytest.skip("../shared/logs not present")
    parser, records, events, src = read_source(d)
    assert src.args.max_steps == 500 and src.args.logging_steps == 1
    assert [e.total for e in events if e.kind is EventKind.MAX_STEPS] == [500]
    assert [r.step for r in records] == list(range(1, 345))
    assert {"loss", "grad_norm", "learning_rate", "throughput", "batch_size"} <= set(records[0].metrics)
    assert "iteration_time" in records[1].metrics
    assert not any("samples" in k for r in records for k in r.metrics)
    assert parser.progress_total == 500


def test_three_train_calls_in_one_file_are_new_attempts() -> None:
    _, records, events, _ = read_source(FIXTURES / "tb-qwen25vl-three-runs-one-file-step-reset")
    resumed = [e for e in events if e.kind is EventKind.RESUMED]
    assert len(resumed) == 2 and all(e.step == 20 for e in resumed)
    train = [r for r in records if r.kind is Kind.TRAIN]
    assert [r.step for r in train] == [20, 40, 60, 80, 100, 120, 140, 160, 180, 20, 20]
    assert [r.step for r in records if r.kind is Kind.EVAL] == [20, 40, 60, 80, 100, 120, 140, 160, 20, 20]


def test_three_train_calls_in_one_file_are_three_runs_the_last_shown() -> None:
    """SOURCES.md counts 11 train / 10 eval records in this file: every ``train/loss`` and
    ``eval/loss`` event, as ``EventFileLoader`` reads them (the first ``train()`` call logged
    steps 20-180, the second and third step 20 each), and sfttop reads all of them (the test
    above). Each call's steps start over at the first logged step: a new run in the same file
    (issue 16), so the run shows the third call alone, attempt 3, and none of the first call's
    steps 40-180 (which stayed in the charts and counts when newest-per-step merged them)."""
    path = _one_file(FIXTURES / "tb-qwen25vl-three-runs-one-file-step-reset")
    events = list(EventFileLoader(str(path)).Load())
    tags = [v.tag for ev in events for v in ev.summary.value]
    assert (tags.count("train/loss"), tags.count("eval/loss")) == (11, 10)
    last = {v.tag: float(tensor_util.make_ndarray(v.tensor).item()) for ev in events if ev.step == 20 for v in ev.summary.value}
    mon = Monitor([str(path.parent)], Config())
    mon.load_all()
    (run,) = mon.runs
    assert (run.data.count(Kind.TRAIN), run.data.count(Kind.EVAL)) == (1, 1)
    assert run.attempt == 3 and run.restart_reason == "a new run in the same file"
    loss, eval_loss = run.data.get("loss"), run.data.get("eval_loss")
    assert loss is not None and eval_loss is not None
    assert list(loss.steps) == [20] and loss.values[-1] == last["train/loss"] and eval_loss.values[-1] == last["eval/loss"]
    assert run.data.last_step == 20
    assert [e.step for e in run.events if e.kind is EventKind.RESUMED] == [20]


# -- files written by tensorboard's own writer -------------------------------------------------
def _scalar_meta() -> SummaryMetadata:
    return SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))


def _tensor_value(tag: str, kind: str, v: float) -> Summary.Value:
    if kind == "float_val":
        t = TensorProto(dtype=1, float_val=[v])
    elif kind == "double_val":
        t = TensorProto(dtype=2, double_val=[v])
    elif kind == "content_f32":
        t = TensorProto(dtype=1, tensor_content=struct.pack("<f", v))
    elif kind == "content_f64":
        t = TensorProto(dtype=2, tensor_content=struct.pack("<d", v))
    elif kind == "half_val":
        h = v if not math.isfinite(v) or abs(v) < 65504 else math.inf  # beyond half's range
        t = TensorProto(dtype=19, half_val=[struct.unpack("<H", struct.pack("<e", h))[0]])
    elif kind == "int_val":
        i = int(v) if math.isfinite(v) else -7
        t = TensorProto(dtype=3, int_val=[i]) if abs(i) < 1 << 31 else TensorProto(dtype=9, int64_val=[i])
    elif kind == "shape_1":  # one element, rank 1
        t = TensorProto(dtype=1, float_val=[v], tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
    else:
        raise AssertionError(kind)
    return Summary.Value(tag=tag, tensor=t, metadata=_scalar_meta())


def _args_value(args: Mapping[str, object]) -> Summary.Value:
    t = TensorProto(
        dtype=7,
        string_val=[json.dumps(args, indent=2).encode()],
        tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]),
    )
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="text"))
    return Summary.Value(tag="args/text_summary", tensor=t, metadata=meta)


def write_hf_run(
    logdir: Path,
    steps: list[int],
    *,
    kind: str = "simple",
    loss: dict[int, float] | None = None,
    grad: dict[int, float] | None = None,
    eval_every: int = 0,
    summary: bool = True,
    args: Mapping[str, object] | None = None,
    suffix: str = "",
) -> None:
    """A run as the HF TensorBoardCallback writes it: one add_scalar per key of each on_log
    dict, at the global step; the args JSON first."""
    w = EventFileWriter(str(logdir), filename_suffix=suffix)
    t = 1_700_000_000.0
    if args is not None:
        w.add_event(PbEvent(wall_time=t, step=0, summary=Summary(value=[_args_value(args)])))

    def put(step: int, tag: str, v: float) -> None:
        nonlocal t
        t += 0.01
        val = Summary.Value(tag=tag, simple_value=v) if kind == "simple" else _tensor_value(tag, kind, v)
        w.add_event(PbEvent(wall_time=t, step=step, summary=Summary(value=[val])))

    last = max(steps) if steps else 1
    for s in steps:
        put(s, "train/loss", (loss or {}).get(s, 2.0 - s / (2 * last)))
        put(s, "train/grad_norm", (grad or {}).get(s, 1.0 + (s % 3) / 8))
        put(s, "train/learning_rate", 1e-4 * (1 - s / (last + 1)))
        put(s, "train/epoch", s / last)
        if eval_every and s % eval_every == 0:
            put(s, "eval/loss", 2.25 - s / (4 * last))
            put(s, "eval/runtime", 3.5)
            put(s, "train/epoch", s / last)
    if summary and steps:
        for tag, v in (
            ("train/train_runtime", 100.0),
            ("train/train_samples_per_second", 8.0),
            ("train/train_steps_per_second", 1.0),
            ("train/total_flos", 1e15),
            ("train/train_loss", 1.5),
            ("train/epoch", 1.0),
        ):
            put(last, tag, v)
    w.close()


@pytest.mark.parametrize("kind", ["simple", "float_val", "double_val", "content_f32", "content_f64", "half_val", "int_val", "shape_1"])
def test_written_scalars_read_as_tensorboard_reads_them(tmp_path: Path, kind: str) -> None:
    steps = list(range(5, 55, 5))
    write_hf_run(tmp_path, steps, kind=kind, eval_every=10, loss={15: math.nan}, grad={20: math.inf})
    (path,) = sorted(tmp_path.glob("events.out.tfevents.*"))
    want = oracle(path)
    assert len(want) == 10 * 4 + 5 * 3 + 6
    assert same(ours(path), want)
    _, records, _, _ = read_source(tmp_path)
    assert _multiset(flatten(records)) == _multiset(expected_from_oracle(want))
    kinds = [r.kind for r in records]
    assert (kinds.count(Kind.TRAIN), kinds.count(Kind.EVAL), kinds.count(Kind.SUMMARY)) == (10, 5, 1)


def test_bfloat16_tensor_scalar(tmp_path: Path) -> None:
    bits = struct.unpack("<I", struct.pack("<f", 1.5))[0] >> 16
    val = Summary.Value(tag="train/loss", tensor=TensorProto(dtype=14, half_val=[bits]), metadata=_scalar_meta())
    data = PbEvent(step=3, summary=Summary(value=[val])).SerializeToString()
    assert decode_event(data).scalars == [("train/loss", 1.5)]


def test_non_scalar_tensors_are_not_scalars() -> None:
    many = TensorProto(dtype=1, float_val=[1.0, 2.0], tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=2)]))
    hist = Summary.Value(tag="w", tensor=TensorProto(dtype=1, float_val=[1.0]),
                         metadata=SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="histograms")))
    huge = TensorProto(
        dtype=1,
        float_val=[1.0] * 200_000,
        tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=2**40)] * 5000),
    )
    vals = [
        Summary.Value(tag="v", tensor=many, metadata=_scalar_meta()),
        hist,
        Summary.Value(tag="huge", tensor=huge, metadata=_scalar_meta()),
    ]
    data = PbEvent(step=1, summary=Summary(value=vals)).SerializeToString()
    assert decode_event(data).scalars == []


def test_args_text_gives_schedule(tmp_path: Path) -> None:
    args = {"logging_steps": 5, "max_steps": 50, "eval_steps": None, "learning_rate": 1e-4}
    write_hf_run(tmp_path, list(range(5, 55, 5)), args=args)
    parser, _, events, src = read_source(tmp_path)
    assert (src.args.logging_steps, src.args.max_steps, src.args.eval_steps) == (5, 50, 5)
    assert [e.total for e in events if e.kind is EventKind.MAX_STEPS] == [50]
    assert parser.progress_total == 50 and parser.interval == 5


# -- corruption, growth, attempts, several files ------------------------------------------------
def test_corrupt_record_in_the_middle(tmp_path: Path) -> None:
    src_dir = tmp_path / "w"
    src_dir.mkdir()
    write_hf_run(src_dir, list(range(1, 21)))
    (path,) = src_dir.glob("events.out.tfevents.*")
    raw = bytearray(path.read_bytes())
    framed = split_records(bytes(raw))
    off, data = framed.records[30]  # a scalar of step 8
    lost = decode_event(data)
    raw[off + 12 + len(data) // 2] ^= 0x10
    out = tmp_path / "run"
    out.mkdir()
    (out / path.name).write_bytes(bytes(raw))
    parser, records, _, src = read_source(out)
    assert src.corrupt == 1 and parser.stats.skipped == 1
    ((tag, value),) = lost.scalars
    want = oracle(path)
    want.remove((tag, lost.step, value))
    assert _multiset(flatten(records)) == _multiset(expected_from_oracle(want))
    assert len([r for r in records if r.kind is Kind.TRAIN]) == 20


@pytest.mark.parametrize("piece", ["record", "byte", "odd"])
def test_growing_file_gives_each_scalar_once(tmp_path: Path, piece: str) -> None:
    w = tmp_path / "w"
    w.mkdir()
    write_hf_run(w, list(range(1, 13)), eval_every=4)
    (path,) = w.glob("events.out.tfevents.*")
    raw = path.read_bytes()
    if piece == "record":
        cuts = [*[off for off, _ in split_records(raw).records][1:], len(raw)]
    elif piece == "byte":
        cuts = list(range(1, len(raw) + 1))
    else:
        cuts = [*list(range(7, len(raw), 29)), len(raw)]
    live = tmp_path / "live"
    live.mkdir()
    target = live / path.name
    target.write_bytes(b"")
    s = EventsSource(str(live))
    parser = LogParser(TENSORBOARD)
    items: list[Item] = []
    events: list[Event] = []
    with open(target, "ab") as f:
        done = 0
        for c in cuts:
            f.write(raw[done:c])
            f.flush()
            done = c
            s.poll(parser, items, events)
    for _ in range(3):
        s.poll(parser, items, events)
    assert s.caught_up
    records = expand(items)
    assert _multiset(flatten(records)) == _multiset(expected_from_oracle(oracle(path)))
    assert not [e for e in events if e.kind is EventKind.RESUMED]
    assert [r.kind for r in records].count(Kind.TRAIN) == 12


def test_a_file_tensorboards_writer_is_writing_shows_each_scalar_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file grows as tensorboard's own ``EventFileWriter`` writes it (its queue and writer
    thread append a record at a time, flushed), and sfttop reads it after every write, each
    appended record first cut in two at a random byte: a reader meets records cut at the end of
    the file. Every scalar comes out once, in order, and the end-of-run summary finishes it."""
    from tensorboard.compat.tensorflow_stub.io.gfile import LocalFileSystem

    rnd = random.Random(5)
    src = EventsSource(str(tmp_path))
    parser = LogParser(TENSORBOARD)
    items: list[Item] = []
    events: list[Event] = []
    polls = cut = 0
    real_write = LocalFileSystem._write

    def write_in_two(self: LocalFileSystem, filename: str, content: bytes, mode: str) -> None:
        # (called by the writer thread only, and the test reads nothing else meanwhile)
        nonlocal polls, cut
        if "a" in mode and len(content) > 1:
            k = rnd.randrange(1, len(content))
            real_write(self, filename, content[:k], mode)
            src.poll(parser, items, events)
            polls += 1
            cut += src.files[0].need > 0  # a record cut at the end, waited for
            content = content[k:]
        real_write(self, filename, content, mode)
        src.poll(parser, items, events)
        polls += 1

    monkeypatch.setattr(LocalFileSystem, "_write", write_in_two)
    write_hf_run(tmp_path, list(range(1, 41)), eval_every=10, args={"logging_steps": 1, "max_steps": 40})
    monkeypatch.undo()
    for _ in range(3):
        src.poll(parser, items, events)
    assert src.caught_up and src.corrupt == 0 and parser.stats.skipped == 0
    (path,) = tmp_path.glob("events.out.tfevents.*")
    records = expand(items)
    assert _multiset(flatten(records)) == _multiset(expected_from_oracle(oracle(path)))
    assert [r.step for r in records if r.kind is Kind.TRAIN] == list(range(1, 41))
    assert [r.step for r in records if r.kind is Kind.EVAL] == [10, 20, 30, 40]
    assert records[-1].kind is Kind.SUMMARY and any(e.kind is EventKind.FINISHED for e in events)
    n = len(split_records(path.read_bytes()).records)
    assert polls >= 2 * (n - 1) and cut > n // 2  # read between writes, and often mid-record


def test_step_going_back_in_one_file_is_a_new_attempt(tmp_path: Path) -> None:
    w = EventFileWriter(str(tmp_path))
    for attempt, steps in enumerate(([1, 2, 3, 4], [1, 2])):
        w.add_event(PbEvent(step=0, summary=Summary(value=[_args_value({"logging_steps": 1})])))
        for s in steps:
            for tag, v in (("train/loss", 1.0 + attempt), ("train/epoch", s / 4)):
                w.add_event(PbEvent(step=s, summary=Summary(value=[Summary.Value(tag=tag, simple_value=v)])))
    w.close()
    _, records, events, _ = read_source(tmp_path)
    assert [r.step for r in records] == [1, 2, 3, 4, 1, 2]
    resumed = [e for e in events if e.kind is EventKind.RESUMED]
    assert len(resumed) == 1 and resumed[0].step == 1


def test_several_files_of_one_run_read_in_creation_order(tmp_path: Path) -> None:
    run = tmp_path / "logs"
    run.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    # The resumed process (created later) restarts from checkpoint 6 of the first one.
    for stamp, steps in ((1_700_000_100, list(range(1, 9))), (1_700_000_900, list(range(7, 13)))):
        d = tmp / str(stamp)
        d.mkdir()
        write_hf_run(d, steps, summary=steps[-1] == 12)
        (f,) = d.glob("events.out.tfevents.*")
        shutil.copy(f, run / f"events.out.tfevents.{stamp}.host.example.1.0")
    _, records, events, src = read_source(run)
    assert len(src.files) == 2
    train = [r.step for r in records if r.kind is Kind.TRAIN]
    assert train == list(range(1, 9)) + list(range(7, 13))
    assert [e.step for e in events if e.kind is EventKind.RESUMED] == [7]
    assert records[-1].kind is Kind.SUMMARY


# -- discovery, Run, report ------------------------------------------------------------------------
def _hf_output_dir(root: Path) -> Path:
    out = root / "out"
    run = out / "runs" / "Dec07_12-38-05_host.example"
    run.mkdir(parents=True)
    shutil.copy(_one_file(FIXTURES / "tb-qwen25vl-lora-overfit-gradnorm-rise"), run)
    (out / "checkpoint-10").mkdir()
    (out / "checkpoint-200").mkdir()
    return out


def test_discovery_finds_event_files(tmp_path: Path) -> None:
    out = _hf_output_dir(tmp_path)
    runs = str(out / "runs")
    run_dir = str(out / "runs" / "Dec07_12-38-05_host.example")
    assert expand_arg(str(out)) == [("out", runs)]
    assert expand_arg(runs) == [("Dec07_12-38-05_host.example", run_dir)]  # given itself: its runs
    assert expand_arg(run_dir) == [("out", run_dir)]
    (f,) = Path(run_dir).glob("events.out.tfevents.*")
    assert expand_arg(str(f)) == [("out", str(f))]
    flat = tmp_path / "logs"
    shutil.copytree(FIXTURES / "tb-codegen-old-transformers-no-gradnorm", flat)
    assert expand_arg(str(flat)) == [("logs", str(flat))]
    names = dict(expand_arg(str(tmp_path)))
    assert names == {"out": runs, "logs": str(flat)}


def test_output_dir_runs_of_a_resumed_run_are_one_run(tmp_path: Path) -> None:
    """Every HF process writes its own runs/<date>_<host>/: the resumed process's file, in a
    sibling directory, continues the same run as a new attempt."""
    out = tmp_path / "out"
    for stamp, host_dir, steps in (
        (1_700_000_100, "Nov14_22-13-20_box", list(range(1, 9))),
        (1_700_000_900, "Nov14_22-26-40_box", list(range(7, 13))),
    ):
        d = out / "runs" / host_dir
        d.mkdir(parents=True)
        tmp = tmp_path / str(stamp)
        tmp.mkdir()
        write_hf_run(tmp, steps, summary=steps[-1] == 12)
        (f,) = tmp.glob("events.out.tfevents.*")
        shutil.copy(f, d / f"events.out.tfevents.{stamp}.box.1.0")
    mon = Monitor([str(out)], Config())
    mon.load_all()
    (run,) = mon.runs
    assert run.name == "out" and run.finished
    assert run.data.count(Kind.TRAIN) == 12  # each step once; the resumed attempt's values win
    assert [e.step for e in run.events if e.kind is EventKind.RESUMED] == [7]


def test_monitor_reads_a_tensorboard_run(tmp_path: Path) -> None:
    out = _hf_output_dir(tmp_path)
    mon = Monitor([str(out)], Config())
    mon.load_all()
    (run,) = mon.runs
    assert run.format == TENSORBOARD and run.finished
    assert run.data.count(Kind.TRAIN) == 66 and run.data.count(Kind.EVAL) == 13
    assert any(f.code == "overfitting" for f in run.diagnoser.findings)


def _report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sfttop", "--report", *args], capture_output=True, text=True, timeout=60)


def test_report_on_a_tensorboard_dir(tmp_path: Path) -> None:
    out = _hf_output_dir(tmp_path)
    r = _report("--format", "json", str(out))
    assert r.returncode == 0, r.stderr
    (run,) = json.loads(r.stdout)["runs"]
    assert run["format"] == TENSORBOARD
    assert (run["records"]["train"], run["records"]["eval"]) == (66, 13)
    assert "overfitting" in {f["code"] for f in run["findings"]}
    assert run["best_checkpoint"]["step"] == 200
    assert run["best_checkpoint"]["path"] == str(out / "checkpoint-200")


def test_report_exits_1_on_a_nan_run(tmp_path: Path) -> None:
    steps = list(range(1, 31))
    write_hf_run(tmp_path, steps, grad={s: math.nan for s in steps[20:]}, loss={s: 1.23 for s in steps[20:]}, summary=False)
    r = _report(str(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "format: tensorboard" in r.stdout and "30 train" in r.stdout


def test_oversized_record_passed_over_unread(tmp_path: Path) -> None:
    from sfttop.core.tfrecord import MAX_RECORD

    def scalar(step: int, v: float) -> bytes:
        ev = PbEvent(step=step, summary=Summary(value=[Summary.Value(tag="train/loss", simple_value=v)]))
        return frame(ev.SerializeToString())

    big = MAX_RECORD + 10
    head = struct.pack("<Q", big)
    header = head + struct.pack("<I", masked_crc32c(head))
    path = tmp_path / "events.out.tfevents.1.host.1.0"
    with open(path, "wb") as f:
        f.write(scalar(1, 1.0) + header)
        f.write(b"\x01" * 1000)  # an image being written
    s = EventsSource(str(tmp_path))
    parser = LogParser(TENSORBOARD)
    items: list[Item] = []
    events: list[Event] = []
    for _ in range(3):
        s.poll(parser, items, events)
    assert parser.stats.oversized == 0 and s.offset == len(scalar(1, 1.0))
    with open(path, "r+b") as f:
        f.seek(len(scalar(1, 1.0)) + 12 + big)
        f.write(b"\x00" * 4 + scalar(2, 0.5))
    for _ in range(3):
        s.poll(parser, items, events)
    assert parser.stats.oversized == 1 and s.corrupt == 0
    assert [(r.step, r.metrics["loss"]) for r in expand(items)] == [(1, 1.0), (2, 0.5)]


def test_tags_never_move_the_step_and_validation_tags_are_eval() -> None:
    assert tag_key("train/global_step") is None
    assert tag_key("step") is None
    assert tag_key("lm loss vs samples") is None
    assert tag_key("train/epoch") == ("epoch", "shared")
    assert tag_key("epoch") == ("epoch", "shared")
    assert tag_key("val_loss") == ("val_loss", "eval")
    assert tag_key("lm loss validation") == ("eval_loss", "eval")
    assert tag_key("lm loss validation ppl") == ("eval_ppl", "eval")
    assert tag_key("mem-reserved-bytes") == ("mem_reserved_bytes", "train")
    assert tag_key("rewards/chosen") == ("rewards/chosen", "train")


def test_megatron_validation_is_an_eval_record(tmp_path: Path) -> None:
    w = EventFileWriter(str(tmp_path))
    for it in (1, 2, 3, 4):
        tags = [("learning-rate", 1e-4), ("lm loss", 3.0 - it / 4), ("lm loss vs samples", 3.0 - it / 4),
                ("grad-norm", 1.5), ("iteration-time", 0.25)]
        if it % 2 == 0:
            tags += [("lm loss validation", 3.2 - it / 4), ("lm loss validation ppl", 20.0)]
        for tag, v in tags:
            w.add_event(PbEvent(step=it, summary=Summary(value=[Summary.Value(tag=tag, simple_value=v)])))
    w.close()
    _, records, events, _ = read_source(tmp_path)
    assert [(r.kind, r.step) for r in records] == [
        (Kind.TRAIN, 1), (Kind.TRAIN, 2), (Kind.EVAL, 2), (Kind.TRAIN, 3), (Kind.TRAIN, 4), (Kind.EVAL, 4)
    ]
    assert records[2].metrics == {"eval_loss": 2.700000047683716, "eval_ppl": 20.0}
    assert set(records[0].metrics) == {"learning_rate", "loss", "grad_norm", "iteration_time"}
    assert not [e for e in events if e.kind is EventKind.RESUMED]


# -- real TRL SFTTrainer runs with report_to=["tensorboard"] (tests/fixtures/gen) ----------------
TB_REAL = HERE / "fixtures" / "real"
TB_MANIFEST = {ver: json.loads((TB_REAL / ver / "manifest.json").read_text()) for ver in ("tb4", "tb5")}
TB_CASES = [f"{ver}/{name}" for ver in sorted(TB_MANIFEST) for name in sorted(TB_MANIFEST[ver])]
TB_EXPECT: dict[str, set[str]] = {
    "explode": {"grad_explosion"},
    "nan_filtered": {"loss_nonfinite"},
    "nan_unfiltered": {"loss_nonfinite"},
    "overfit": {"overfitting"},
    "oscillate": {"loss_oscillation"},
}


def _load_run(scenario: str) -> Any:
    from sfttop.core.run import Run

    (path,) = [p for _, p in expand_arg(str(TB_REAL / scenario))]
    assert path == str(TB_REAL / scenario / "runs")
    files = list((TB_REAL / scenario).glob("runs/*/events.out.tfevents.*"))
    now = max(f.stat().st_mtime for f in files) + 1
    run = Run(scenario, path, Config())
    for _ in range(1000):
        run.poll(now=now)
        if run.loaded:
            break
    return run


@pytest.mark.parametrize("scenario", TB_CASES)
def test_trl_run_every_scalar_as_tensorboard_reads_it(scenario: str) -> None:
    files = sorted((TB_REAL / scenario).glob("runs/*/events.out.tfevents.*"))
    assert files
    for f in files:
        assert same(ours(f), oracle(f))


@pytest.mark.parametrize("scenario", TB_CASES)
def test_trl_run_counts_steps_and_values_match_the_trainer(scenario: str) -> None:
    ver, name = scenario.split("/")
    info = TB_MANIFEST[ver][name]
    run = _load_run(scenario)
    data = run.data
    assert run.format == TENSORBOARD and run.skipped == 0
    assert data.count(Kind.TRAIN) == info["distinct_train_steps"]
    assert list(data.index[Kind.TRAIN].steps) == info["train_steps_logged"]
    assert data.count(Kind.EVAL) == info["eval_records"]
    assert run.finished == info["summary_printed"]
    assert any(e.kind is EventKind.RESUMED for e in run.events) == bool(info["relogged_steps"])
    obs = info["observed"]

    def f32(v: float | str | None) -> float:
        """A manifest value (JSON has no NaN: "nan") as the float32 TensorBoard stores."""
        if v is None or isinstance(v, str):
            return math.nan if v is None else float(v)
        return float(struct.unpack("<f", struct.pack("<f", v))[0])

    loss = list(data.series["loss"].values)
    gn = [v for v in data.series["grad_norm"].values if math.isfinite(v)]
    assert sum(1 for v in loss if v != v) == obs["nan_loss_records"]
    if not info["relogged_steps"]:  # (a resumed run's re-logged steps keep the newest value)
        assert same([("loss", 0, loss[0])], [("loss", 0, f32(obs["first_loss"]))])
    assert same([("loss", 0, loss[-1])], [("loss", 0, f32(obs["last_loss"]))])
    if obs["max_grad_norm"] is not None:
        assert max(gn) == f32(obs["max_grad_norm"])
    if info["eval_records"]:
        ev = list(data.series["eval_loss"].values)
        assert same([("e", 0, ev[-1])], [("e", 0, f32(obs["last_eval_loss"]))])
    if info["args"].get("logging_steps"):
        assert run.parser.interval == info["args"]["logging_steps"]


@pytest.mark.parametrize("scenario", TB_CASES)
def test_trl_run_findings(scenario: str) -> None:
    from sfttop.core.diagnose import Severity

    d = _load_run(scenario).diagnoser
    found = {f.code for f in d.findings}
    scenario = scenario.split("/")[1]
    if scenario in ("healthy", "healthy_multi", "resumed"):
        assert d.worst() is not Severity.CRITICAL, [f.message for f in d.findings]
        assert not found & {"overfitting", "overfitting_severe"}
    elif scenario == "stall":
        assert found & {"loss_plateau", "lr_too_small"}
    elif scenario in TB_EXPECT:
        assert TB_EXPECT[scenario] <= found, [f.message for f in d.findings]
        if scenario != "overfit" and scenario != "oscillate":
            assert d.worst() is Severity.CRITICAL
    else:  # crash: TensorBoard has no traceback; the run just stops
        assert "run_crashed" not in found


@pytest.mark.parametrize(
    ("scenario", "code"),
    [(f"{v}/{n}", c) for v in ("tb4", "tb5") for n, c in (("nan_unfiltered", 1), ("nan_filtered", 1), ("healthy", 0))],
)
def test_trl_run_report_exit_status(scenario: str, code: int) -> None:
    r = _report(str(TB_REAL / scenario))
    assert r.returncode == code, r.stdout + r.stderr
    assert "format: tensorboard" in r.stdout


def test_a_run_written_without_pause_still_counts_as_loaded(tmp_path: Path) -> None:
    """A dict at the end of a growing file is held (it may be half flushed), but once the end was
    reached the run is loaded (stall checks run), although every poll finds a new dict."""
    from sfttop.core.run import Run

    w = tmp_path / "w"
    w.mkdir()
    write_hf_run(w, list(range(1, 31)), summary=False)
    (path,) = w.glob("events.out.tfevents.*")
    raw = path.read_bytes()
    offs = [off for off, _ in split_records(raw).records]
    live = tmp_path / "live"
    live.mkdir()
    target = live / path.name
    cut = offs[len(offs) // 2]
    target.write_bytes(raw[:cut])
    run = Run("live", str(live), Config())
    run.poll()
    run.poll()
    assert run.loaded
    loaded_after = []
    with open(target, "ab") as f:
        for a, b in zip([cut, *offs[len(offs) // 2 + 1 :]], [*offs[len(offs) // 2 + 1 :], len(raw)]):
            f.write(raw[a:b])
            f.flush()
            run.poll()
            loaded_after.append(run.loaded and run.source.caught_up)
    assert all(loaded_after)
    for _ in range(2):
        run.poll()
    assert list(run.data.index[Kind.TRAIN].steps) == list(range(1, 31))
