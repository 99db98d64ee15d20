"""Tracker stores read through core/stores.py (DVCLive, MLflow's file store and database, a W&B
run folder's summary) and the discovery of every tracker's files in a run directory."""

from __future__ import annotations

import math
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from helpers import FORMATS, report, shared
from sfttop.core import stores
from sfttop.core.config import Config
from sfttop.core.discover import expand_arg
from sfttop.core.parse import LogParser
from sfttop.core.records import EventKind, Item, Kind, expand
from sfttop.core.run import Run
from sfttop.core.stores import StoreSource

MLRUN = FORMATS / "mlflow" / "mlruns" / "1" / "4f1c2a9d0b7e4c55a8e3d2b1c0f9e8d7"


def load(path: Path | str, fmt: str | None = None, polls: int = 50) -> Run:
    run = Run("r", str(path), Config(), fmt)
    for _ in range(polls):
        run.poll()
        if run.loaded:
            break
    return run


def points(run: Run, name: str) -> list[tuple[int, float]]:
    s = run.data.get(name)
    assert s is not None, name
    return list(s.points())


def counts(run: Run) -> tuple[int, int]:
    return run.data.count(Kind.TRAIN), run.data.count(Kind.EVAL)


def test_real_dvclive_directory_has_the_counts_of_sources_md() -> None:
    run = load(shared("dvclive-hf-trainer-nomelt-t5/live"))
    assert isinstance(run.source, StoreSource) and run.format == "dvclive"
    assert counts(run) == (637, 91) and run.skipped == 0
    assert run.finished  # train_runtime at the last step is the HF end-of-run summary


def test_dvclive_excerpt_splits_train_eval_and_summary_by_key() -> None:
    run = load(FORMATS / "dvclive" / "live")
    assert counts(run) == (28, 4) and run.finished
    evals = points(run, "eval_loss")
    assert [s for s, _ in evals][:3] == [7, 15, 23] and evals[0][1] == 13.278478622436523
    assert points(run, "loss")[0] == (0, 11.0331)
    assert points(run, "learning_rate")[1] == (1, 1.1111111111111112e-06)


def test_real_wandb_summaries_give_the_last_values() -> None:
    for rel in ("wandb-nanogpt-overfit-kt2awly2", "wandb-nanogpt-healthy-vgpqdf1r"):
        run = load(shared(rel + "/wandb-summary.json"))
        assert run.format == "wandb-summary" and counts(run) == (1, 1)
        assert run.data.last_step == 5000
    run = load(FORMATS / "wandb" / "run-20240214_195452-kt2awly2" / "files" / "wandb-summary.json")
    assert run.data.latest(Kind.TRAIN) == {"loss": 0.11914050579071045, "learning_rate": 0.0001, "mfu": 7.371388182579067}
    assert run.data.latest(Kind.EVAL) == {"eval_loss": 4.92210054397583}


def test_mlflow_file_store() -> None:
    run = load(MLRUN)
    assert run.format == "mlflow" and counts(run) == (20, 2) and run.finished
    assert run.data.latest(Kind.EVAL) == {"eval_loss": 1.8544, "eval_runtime": 12.4}
    assert run.data.latest(Kind.TRAIN)["grad_norm"] == pytest.approx(1.1)
    assert run.data.epoch == pytest.approx(2.0)


def test_mlflow_malformed_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(MLRUN, run_dir)
    with open(run_dir / "metrics" / "loss", "a") as f:
        f.write("1733300300000 nope 210\n1733300300000\n1733300310000 nan 220\n")
    run = load(run_dir)
    assert run.skipped == 2
    assert math.isnan(points(run, "loss")[-1][1])
    assert [f for f in run.diagnoser.findings if f.code == "loss_nonfinite"]


def _mlflow_db(path: Path) -> sqlite3.Connection:
    # The metrics table of MLflow's SQLAlchemy store (mlflow/store/tracking/dbmodels/models.py).
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE metrics (key VARCHAR(250) NOT NULL, value FLOAT NOT NULL, timestamp BIGINT NOT NULL, "
        "run_uuid VARCHAR(32) NOT NULL, step BIGINT DEFAULT '0' NOT NULL, is_nan BOOLEAN DEFAULT '0' NOT NULL, "
        "PRIMARY KEY (key, timestamp, step, run_uuid, value, is_nan))"
    )
    return con


def test_mlflow_database_newest_run_read_incrementally(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    con = _mlflow_db(db)
    con.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?)", [("loss", 9.0, 1, "old", s, 0) for s in (1, 2)])
    rows = [(k, v, 100 + s, "new", s, 0) for s in range(10, 60, 10) for k, v in (("loss", 3 - s / 100), ("learning_rate", 1e-4))]
    con.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?)", rows)
    con.commit()
    run = load(db)
    assert run.format == "mlflow-db" and counts(run) == (5, 0)
    assert [s for s, _ in points(run, "loss")] == [10, 20, 30, 40, 50]
    con.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?)", [
        ("loss", 0.0, 200, "new", 60, 1), ("learning_rate", 1e-4, 200, "new", 60, 0), ("eval_loss", 2.5, 201, "new", 60, 0),
    ])
    con.commit()
    con.close()
    for _ in range(3):
        run.poll()
    assert counts(run) == (6, 1)  # each row once
    assert math.isnan(points(run, "loss")[-1][1])  # is_nan: MLflow stores a NaN as 0


def _read_store(path: Path, kind: str) -> tuple[list[tuple[str, int, list[tuple[str, float]]]], int]:
    src = StoreSource(str(path), kind)
    parser = LogParser(kind)
    items: list[Item] = []
    for _ in range(10000):
        src.poll(parser, items, [])
        if src.caught_up:
            break
    assert src.caught_up
    return [(r.kind.value, r.step, list(r.metrics.items())) for r in expand(items)], parser.stats.skipped


def test_mlflow_database_read_in_chunks_folds_rows_as_one_pass_over_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A database as messy as MLflow allows and more: three runs' rows interleaved, keys logged at
    # some steps only, a (key, step) logged again (the later row wins, a NaN over a value and a
    # value over a NaN included), integers, and rows that are not metrics at all. Read a few
    # rowids a poll, it must give the records of one straightforward pass over the run's rows
    # in rowid order, written out clean as one row per (step, key).
    rnd = random.Random(16)
    messy = tmp_path / "messy.db"
    con = sqlite3.connect(messy)
    con.execute("CREATE TABLE metrics (key, value, timestamp, run_uuid, step, is_nan)")  # no affinity: ints stay ints
    keys = ["loss", "learning_rate", "grad_norm", "eval_loss", "train_runtime"]
    bad = [("loss", "x", 1, "new", 3, 0), ("loss", 1.0, 1, "new", 2.5, 0), (None, 1.0, 1, "new", 4, 0),
           ("loss", None, 1, "new", 5, 0), ("loss", "x", 1, "new", 6, 1), ("loss", 1.0, 1, "new", "7", 0)]
    rows: list[tuple[object, ...]] = []
    for step in range(0, 400, 3):
        logged = [k for k in keys[:3] if rnd.random() < 0.9] + [k for k in keys[3:] if rnd.random() < 0.1]
        rnd.shuffle(logged)
        logged += rnd.sample(logged, min(len(logged), rnd.choice((0, 0, 0, 1, 2))))  # logged again
        for i, k in enumerate(logged):
            value: object = rnd.choice((rnd.random() * 3, rnd.randint(0, 9), 0.0))
            rows.append((k, value, 1000 + step, "new", step, int(rnd.random() < 0.05)))
            if step == 201 and i == 0:  # a step's rows with another run's many rows between
                rows.extend(("loss", 1.0, 1000, "old", s, 0) for s in range(100))
            for other in ("old", "tie"):
                if rnd.random() < 0.3:
                    rows.append((k, rnd.random(), 1000 + step, other, step, 0))
        if rnd.random() < 0.05:
            rows.append(rnd.choice(bad))
    rows.append(("loss", 1.0, 2000, "tie", 1, 0))  # the newest timestamp, but not the last row
    rows.append(("loss", 1.5, 2000, "new", 400, 0))
    con.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?)", rows)
    con.commit()
    # One pass over the run's rows as they were written: what any chunking must come to.
    held: dict[int, dict[str, float]] = {}
    skipped = 0
    for key, value, step, is_nan in con.execute(
        "SELECT key, value, step, is_nan FROM metrics WHERE run_uuid = 'new' ORDER BY rowid"
    ):
        if type(key) is not str or type(step) is not int or type(value) not in (float, int):
            skipped += 1
            continue
        held.setdefault(step, {})[key] = math.nan if is_nan else float(value)
    con.close()
    assert skipped and any(math.isnan(v) for r in held.values() for v in r.values())
    clean = tmp_path / "clean.db"
    con = _mlflow_db(clean)
    con.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?)", [
        (k, 0.0 if math.isnan(v) else v, 1, "run", s, int(math.isnan(v))) for s in sorted(held) for k, v in held[s].items()
    ])
    con.commit()
    con.close()
    want, none_skipped = _read_store(clean, "mlflow-db")
    assert none_skipped == 0 and len(want) > 130
    merged: dict[int, list[tuple[str, float]]] = {}
    for _kind, step, metrics in want:
        merged.setdefault(step, []).extend(metrics)
    assert {s: repr(sorted(m)) for s, m in merged.items()} == {s: repr(sorted(r.items())) for s, r in held.items() if r}
    for chunk in (7, 64, 200000):
        monkeypatch.setattr(stores, "_DB_ROWS", chunk)
        got, got_skipped = _read_store(messy, "mlflow-db")
        assert (repr(got), got_skipped) == (repr(want), skipped), chunk  # (repr: NaN equals NaN)


def test_mlflow_database_not_mlflow_is_an_error_not_a_crash(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.commit()
    run = load(db, polls=3)
    assert run.error is not None and "MLflow" in run.error


def test_dvclive_growing_in_pieces_reads_each_value_once(tmp_path: Path) -> None:
    src = FORMATS / "dvclive" / "live" / "plots" / "metrics"
    dst = tmp_path / "dvclive" / "plots" / "metrics"
    dst.mkdir(parents=True)
    texts = {p.name: p.read_bytes() for p in src.glob("*.tsv")}
    run = Run("g", str(tmp_path / "dvclive"), Config())
    for cut in range(0, max(len(t) for t in texts.values()) + 50, 50):  # cuts inside lines
        for name, text in texts.items():
            (dst / name).write_bytes(text[:cut])
        run.poll()
    for _ in range(3):
        run.poll()
    assert counts(run) == (28, 4) and run.skipped == 0


def test_discovery_finds_every_trackers_files(tmp_path: Path) -> None:
    lit = FORMATS / "lightning-csv" / "metrics.csv"
    for v in ("version_0", "version_1"):
        (tmp_path / "proj" / "lightning_logs" / v).mkdir(parents=True)
        shutil.copy(lit, tmp_path / "proj" / "lightning_logs" / v / "metrics.csv")
    got = expand_arg(str(tmp_path / "proj"))
    assert [n for n, _ in got] == ["lightning_logs/version_0", "lightning_logs/version_1"]
    assert all(p.endswith("metrics.csv") for _, p in got)

    shutil.copytree(FORMATS / "dvclive", tmp_path / "t5run")
    assert expand_arg(str(tmp_path / "t5run")) == [("t5run", str(tmp_path / "t5run" / "live"))]

    shutil.copytree(FORMATS / "mlflow" / "mlruns", tmp_path / "exp" / "mlruns")
    assert expand_arg(str(tmp_path / "exp")) == [("qwen-lora-sft", str(tmp_path / "exp" / "mlruns" / "1" / MLRUN.name))]

    wb = tmp_path / "wandb" / "run-20240214_195452-kt2awly2"
    shutil.copytree(FORMATS / "wandb" / "run-20240214_195452-kt2awly2", wb)
    summary = str(wb / "files" / "wandb-summary.json")
    assert expand_arg(str(wb)) == [("run-20240214_195452-kt2awly2", summary)]
    (wb / "files" / "output.log").write_text("iter 0: loss 4.2709, time 10268.08ms, mfu -100.00%\n")
    assert expand_arg(str(wb)) == [("run-20240214_195452-kt2awly2", str(wb / "files" / "output.log"))]

    (tmp_path / "db").mkdir()
    _mlflow_db(tmp_path / "db" / "mlflow.db").close()
    assert expand_arg(str(tmp_path / "db")) == [("db", str(tmp_path / "db" / "mlflow.db"))]


def test_llamafactory_webui_running_log_is_found() -> None:
    d = shared("lzz-llamafactory-deepseek7b-1000epoch")
    assert [p for _, p in expand_arg(str(d))] == [str(d / "running_log.txt")]
    r, code = report(d)
    run = r["runs"][0]
    assert run["records"] == {"train": 421, "eval": 0} and code == 0


def test_progress_only_llamafactory_log_is_read_not_refused() -> None:
    # No metric in any line, only progress: the answer is how far it got, and nothing judged.
    r, code = report(shared("gi7014-llamafactory-progress-only"))
    run = r["runs"][0]
    assert code == 0 and run["format"] == "llamafactory-jsonl"
    assert run["records"] == {"train": 0, "eval": 0} and (run["last_step"], run["max_steps"]) == (250, 250)
    assert run["findings"] == [] and run["assessment"]["status"] == "n/a"


@pytest.mark.parametrize(("path", "fmt"), [
    (FORMATS / "dvclive" / "live", "dvclive"),
    (MLRUN, "mlflow"),
    (FORMATS / "wandb" / "run-20240214_195452-kt2awly2" / "files" / "wandb-summary.json", "wandb-summary"),
])
def test_reports_and_log_format_for_stores(path: Path, fmt: str) -> None:
    r, code = report(path, "--log-format", fmt)
    run = r["runs"][0]
    assert run["format"] == fmt and code == 0 and run["records"]["train"] > 0
    # nothing made up for what a store does not log (no grad_norm in DVCLive or W&B here)
    assert not [f for f in run["findings"] if f["severity"] == "critical"]



def test_a_store_read_a_budget_at_a_time_gives_whole_steps(tmp_path: Path) -> None:
    # Files of very different sizes, read 64 KiB a poll each: a step goes on only once every
    # file still being read is past it, so no step is split into two records.
    dvc = tmp_path / "dvclive" / "plots" / "metrics"
    dvc.mkdir(parents=True)
    n = 20000
    (dvc / "loss.tsv").write_text("step\tloss\n" + "".join(f"{s}\t{3 - s / n:.17f}\n" for s in range(n)))
    (dvc / "learning_rate.tsv").write_text("step\tlearning_rate\n" + "".join(f"{s}\t0.0001\n" for s in range(n)))
    run = Run("b", str(tmp_path / "dvclive"), Config())
    for _ in range(200):
        run.poll(budget=1 << 16)
        if run.loaded:
            break
    assert counts(run) == (n, 0) and not [e for e in run.events if e.kind is EventKind.RESUMED]
    src = StoreSource(str(tmp_path / "dvclive"), "dvclive")
    parser = LogParser("dvclive")
    items: list[Item] = []
    for _ in range(200):
        src.poll(parser, items, [], 1 << 16)
        if src.caught_up:
            break
    recs = expand(items)
    assert len(recs) == n and all(set(r.metrics) == {"loss", "learning_rate"} for r in recs)
