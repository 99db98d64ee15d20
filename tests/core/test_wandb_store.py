"""A W&B run's own datastore (``run-<id>.wandb``) read without wandb (core/stores.py).

The fixture was written by the real ``wandb`` 0.31 in offline mode
(``tests/fixtures/gen/wandb_offline_run.py``; beside it, ``<run>.logged.json``, every
``wandb.log`` call's dict); wandb's own protobuf classes are the oracle for each record's
decoding. The two real run folders in ../shared/logs hold only the datastore and the summary.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from helpers import FORMATS, report, shared
from sfttop.core.config import Config
from sfttop.core.discover import expand_arg
from sfttop.core.records import EventKind, Kind
from sfttop.core.run import Run
from sfttop.core.stores import _history_row, _wandb_records

pb = pytest.importorskip("wandb.proto.wandb_internal_pb2")

RUN = next((FORMATS / "wandb").glob("offline-run-*/"))
STORE = next(RUN.glob("run-*.wandb"))
LOGGED: list[dict[str, Any]] = json.loads(RUN.with_name(RUN.name + ".logged.json").read_text())
REAL = ("wandb-nanogpt-healthy-vgpqdf1r", "wandb-nanogpt-overfit-kt2awly2")


def load(path: Path | str, polls: int = 200, budget: int | None = None) -> Run:
    run = Run("r", str(path), Config())
    for _ in range(polls):
        run.poll() if budget is None else run.poll(budget)
        if run.loaded:
            break
    return run


def oracle_rows(data: bytes) -> list[dict[str, object]]:
    """Every history row as wandb's own protos decode it (framing: ours, checked by the count
    of records against the file's record numbers)."""
    records, end, corrupt = _wandb_records(data, 0, 0)
    assert end == len(data) and corrupt == 0
    nums = [pb.Record.FromString(r).num for r in records]
    assert nums == list(range(nums[0], nums[0] + len(nums)))  # none lost, none doubled
    rows = []
    for r in records:
        rec = pb.Record.FromString(r)
        if not rec.HasField("history"):
            continue
        row: dict[str, object] = {}
        for item in rec.history.item:
            kind = item.WhichOneof("value")
            value = json.loads(item.value_json) if kind is None else getattr(item, kind)
            row[".".join(item.nested_key) if item.nested_key else item.key] = value
        rows.append(row)
    return rows


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.mark.parametrize("path", [STORE, *(f"{d}/run-{d.rsplit('-', 1)[1]}.wandb" for d in REAL)])
def test_history_rows_decode_as_wandbs_own_protos(path: Path | str) -> None:
    p = Path(path) if Path(path).is_absolute() else shared(str(path))
    data = p.read_bytes()
    want = oracle_rows(data)
    got = [row for r in _wandb_records(data, 0, 0)[0] if isinstance(row := _history_row(r), dict)]
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
        assert g.keys() == w.keys() and all(same(g[k], w[k]) for k in g)


def test_offline_run_has_every_logged_value_at_its_step() -> None:
    run = load(STORE)
    assert run.format == "wandb" and run.finished and run.skipped == 0
    train = [d for d in LOGGED if "train/loss" in d]
    evals = [d for d in LOGGED if "eval/loss" in d]
    assert run.data.count(Kind.TRAIN) == len(train) == 12
    assert run.data.count(Kind.EVAL) == len(evals) == 3
    loss = run.data.get("loss")
    assert loss is not None
    pts = list(loss.points())
    assert [s for s, _ in pts] == [d["train/global_step"] for d in train]
    for (_, v), d in zip(pts, train):
        assert same(v, float(d["train/loss"]))  # the NaN at step 35 too
    assert list(run.data.get("eval_loss").points()) == [(d["train/global_step"], d["eval/loss"]) for d in evals]  # type: ignore[union-attr]
    assert run.data.summary["train_runtime"] == 120.5
    r, code = report(STORE)
    assert code == 1 and "loss_nonfinite" in [f["code"] for f in r["runs"][0]["findings"]]  # the NaN


@pytest.mark.parametrize("folder", REAL)
def test_real_run_folders_have_the_counts_of_sources_md(folder: str) -> None:
    d = shared(folder)
    ((name, path),) = expand_arg(str(d))
    assert name == folder
    assert path.endswith(".wandb")  # the datastore, not the summary's last values
    r, code = report(d)
    run = r["runs"][0]
    assert run["format"] == "wandb" and run["records"] == {"train": 21, "eval": 21}
    assert run["status"] == "finished"
    codes = [f["code"] for f in run["findings"]]
    if "overfit" in folder:
        assert "overfitting" in codes and code == 1
    else:
        assert not codes and code == 0


def test_a_growing_datastore_gives_each_row_once(tmp_path: Path) -> None:
    raw = STORE.read_bytes()
    live = tmp_path / "wandb" / RUN.name
    live.mkdir(parents=True)
    target = live / STORE.name
    target.write_bytes(b"")
    run = Run("r", str(target), Config())
    with open(target, "ab") as f:
        for at in range(0, len(raw), 97):
            f.write(raw[at : at + 97])
            f.flush()
            run.poll()
    for _ in range(5):
        run.poll()
    whole = load(STORE)
    assert run.data.count(Kind.TRAIN) == whole.data.count(Kind.TRAIN) == 12
    assert run.data.count(Kind.EVAL) == 3 and run.finished and run.skipped == 0
    assert list(run.data.get("loss").points())[:5] == list(whole.data.get("loss").points())[:5]  # type: ignore[union-attr]
    assert not [e for e in run.events if e.kind is EventKind.RESUMED]


def test_a_corrupt_chunk_is_skipped_and_counted(tmp_path: Path) -> None:
    """A flipped bit costs the record it is in, nothing else; a history row's costs that row."""
    clean = STORE.read_bytes()
    rows = len(oracle_rows(clean))
    lost_a_row = 0
    for m in re.finditer(rb"train/grad_norm", clean):
        raw = bytearray(clean)
        raw[m.start() + 3] ^= 0x20
        records, end, corrupt = _wandb_records(bytes(raw), 0, 0)
        got = [r for r in records if isinstance(_history_row(r), dict)]
        assert corrupt == 1 and end == len(raw)
        assert len(got) in (rows, rows - 1)
        lost_a_row += len(got) == rows - 1
    assert lost_a_row >= 12
    raw = bytearray(clean)
    raw[[m.start() for m in re.finditer(rb"train/grad_norm", clean)][6] + 3] ^= 0x20
    bad = tmp_path / STORE.name
    bad.write_bytes(bytes(raw))
    run = load(bad)
    assert run.skipped == 1 and run.data.count(Kind.TRAIN) in (11, 12) and run.finished


def test_not_a_datastore_is_an_error_not_a_crash(tmp_path: Path) -> None:
    p = tmp_path / "run-abc.wandb"
    p.write_bytes(b"\x00junk" * 100)
    run = load(p, polls=3)
    assert run.data.count(Kind.TRAIN) == 0 and run.source.error


def test_wandb_folder_scan_skips_its_debug_logs(tmp_path: Path) -> None:
    wb = tmp_path / "proj" / "wandb"
    shutil.copytree(RUN, wb / RUN.name)
    (wb / "debug.log").write_text("2026-12-04 20:31:22 INFO setup\n")
    (wb / "debug-internal.log").write_text('{"time":"2026-12-04","level":"INFO"}\n')
    found = expand_arg(str(tmp_path / "proj"))
    assert [p for _, p in found] == [str(wb / RUN.name / STORE.name)]
