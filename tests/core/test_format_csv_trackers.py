"""The CSV tracker formats (core/formats/csvtable.py and its users): Lightning's and Keras's
CSVLogger and W&B history exports, on the real logs and on the committed excerpts."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from helpers import FORMATS, parse, report, shared
from sfttop.core.config import Config
from sfttop.core.formats import BY_NAME, detect
from sfttop.core.formats.csvtable import CsvReader
from sfttop.core.parse import LogParser
from sfttop.core.records import Event, EventKind, Item, Kind, expand
from sfttop.core.run import Run


@pytest.mark.parametrize(
    ("rel", "fmt", "train", "evals"),
    [
        ("lightning-csv-slm-10epoch-pretrain/metrics.csv", "lightning-csv", 2814, 10),
        ("lightning-csv-slm-resume-degrade/metrics.csv", "lightning-csv", 1126, 4),
        ("keras-csvlogger-en-jv-nmt-plateau-reducelr/training_log.csv", "keras-csv", 63, 63),
        ("wandb-history-csv-export-mt5-gradnorm-zero/training_log.csv", "wandb-csv", 2, 0),
    ],
)
def test_real_logs_have_the_counts_of_sources_md(rel: str, fmt: str, train: int, evals: int) -> None:
    got, tr, ev, _, skipped = parse(shared(rel))
    assert (got, len(tr), len(ev), skipped) == (fmt, train, evals, 0)


def test_lightning_columns_map_by_meaning() -> None:
    fmt, tr, ev, _, skipped = parse(FORMATS / "lightning-csv" / "metrics.csv")
    assert fmt == "lightning-csv" and skipped == 0
    assert [r.step for r in tr[:3]] == [49, 99, 149]
    assert tr[0].metrics == {"loss": 7.628580570220947, "perplexity": 2056.12939453125}
    assert tr[0].epoch == 0.0 and tr[-1].epoch == 1.0
    # the validation row; the epoch-mean row at the same step is not one more train record
    assert [(r.step, r.metrics) for r in ev] == [
        (14073, {
            "eval_epoch_perplexity": 62.33803176879883, "eval_loss": 4.132571697235107,
            "eval_perplexity": 63.93129348754883,
        })
    ]
    assert 14073 not in [r.step for r in tr] and len(tr) == 20


def test_lightning_resume_starts_at_its_step() -> None:
    _, tr, _, events, _ = parse(shared("lightning-csv-slm-resume-degrade/metrics.csv"))
    assert tr[0].step == 140749 and not [e for e in events if e.kind is EventKind.RESUMED]


def test_keras_is_epoch_indexed() -> None:
    fmt, tr, ev, _, _ = parse(FORMATS / "keras-csv" / "training_log.csv")
    assert fmt == "keras-csv"
    assert [r.step for r in tr[:3]] == [1, 2, 3] and tr[0].epoch == 1.0
    assert tr[0].metrics == {
        "mean_token_accuracy": 0.7577562928199768, "learning_rate": 0.004999999888241291, "loss": 1.9277654886245728,
    }
    assert ev[0].step == 1 and ev[0].metrics == {
        "eval_mean_token_accuracy": 0.7940886616706848, "eval_loss": 1.4219976663589478,
    }


def test_wandb_export_uses_the_trainer_step_and_leaves_out_wandb_columns() -> None:
    fmt, tr, ev, _, _ = parse(FORMATS / "wandb-csv" / "training_log.csv")
    assert fmt == "wandb-csv" and not ev
    assert [r.step for r in tr] == [500, 1000]
    assert tr[0].metrics == {"loss": 1.1521, "grad_norm": 0.0, "learning_rate": 1.1407407407407409e-05}
    assert tr[1].epoch == pytest.approx(7.407407407407407)


def _feed(lines: list[bytes], fmt: str | None = None) -> tuple[LogParser, list, list[Event]]:
    parser = LogParser(fmt)
    items: list[Item] = []
    events: list[Event] = []
    for i, line in enumerate(lines):
        parser.feed(line, i * 100, items, events)
    parser.flush(items)
    return parser, expand(items), events


def test_malformed_rows_are_skipped_and_counted() -> None:
    parser, recs, _ = _feed([
        b"epoch,step,train_loss_step,val_loss",
        b"0,9,2.5,",
        b"0,19,two,",  # not a number
        b"0,29,2.3",  # a cell short
        b"0,39,2.2,,extra",  # a cell over
        b"0,,2.1,",  # no step
        b"0,49,2.0,\r",
        b"0,49,,2.4",
    ])
    assert parser.format == "lightning-csv" and parser.stats.skipped == 4
    assert [(r.kind, r.step, r.metrics) for r in recs] == [
        (Kind.TRAIN, 9, {"loss": 2.5}), (Kind.TRAIN, 49, {"loss": 2.0}), (Kind.EVAL, 49, {"eval_loss": 2.4}),
    ]


def test_a_wider_header_mid_file_replaces_the_first() -> None:
    # What a reader sees when Lightning rewrote the file with a new key and the tail read it on.
    parser, recs, _ = _feed([
        b"epoch,step,train_loss_step",
        b"0,9,2.5",
        b"epoch,lr-AdamW,step,train_loss_step",
        b"0,0.001,19,2.4",
    ])
    assert parser.stats.skipped == 0
    assert [r.metrics for r in recs] == [{"loss": 2.5}, {"learning_rate": 0.001, "loss": 2.4}]


def test_a_lightning_rewrite_on_disk_is_read_again_once(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_bytes(b"epoch,step,train_loss_step\n" + b"".join(b"0,%d,%d.5\n" % (s, 9 - s // 10) for s in range(9, 50, 10)))
    run = Run("r", str(path), Config())
    run.poll()
    assert run.data.count(Kind.TRAIN) == 5
    rows = b"".join(b"0,,%d,%d.5\n" % (s, 9 - s // 10) for s in range(9, 50, 10))
    path.write_bytes(b"epoch,lr-AdamW,step,train_loss_step\n" + rows + b"0,0.001,59,3.5\n")
    for _ in range(3):
        run.poll()
    assert run.data.count(Kind.TRAIN) == 6
    assert run.data.last_step == 59


def test_a_growing_file_read_in_pieces_gives_each_row_once(tmp_path: Path) -> None:
    src = (FORMATS / "keras-csv" / "training_log.csv").read_bytes()
    path = tmp_path / "training_log.csv"
    path.write_bytes(b"")
    run = Run("k", str(path), Config())
    for i in range(0, len(src), 97):  # cuts inside rows
        with open(path, "ab") as f:
            f.write(src[i : i + 97])
        run.poll()
    run.poll()
    assert (run.data.count(Kind.TRAIN), run.data.count(Kind.EVAL)) == (63, 63)
    assert run.parser.stats.skipped == 0


def test_detection_needs_a_header_not_a_row() -> None:
    assert detect(b"epoch,step,train_loss_step,val_loss") is BY_NAME["lightning-csv"]
    assert detect(b"epoch,accuracy,loss,val_loss") is BY_NAME["keras-csv"]
    assert detect(b"_step,_runtime,train/loss,_timestamp") is BY_NAME["wandb-csv"]
    for line in (b"0,,49,,,7.62", b"step 5: train loss 1.0, val loss 2.0", b"a, b, c", b"step"):
        assert detect(line) is None or detect(line) not in (BY_NAME["lightning-csv"], BY_NAME["keras-csv"])


def test_report_and_log_format_override() -> None:
    r, code = report(FORMATS / "keras-csv" / "training_log.csv", "--log-format", "keras-csv")
    run = r["runs"][0]
    assert run["format"] == "keras-csv" and run["records"] == {"train": 63, "eval": 63}
    assert code in (0, 1)
    r, code = report(FORMATS / "lightning-csv" / "metrics.csv")
    assert r["runs"][0]["format"] == "lightning-csv" and code in (0, 1)
    # no grad_norm, no NaN: nothing critical is made up
    assert not {f["code"] for f in r["runs"][0]["findings"] if f["severity"] == "critical"}


REAL_RUN = FORMATS / "lightning-csv" / "real-run" / "metrics.csv"


def test_real_lightning_run_merges_the_lr_monitor_row_into_its_step() -> None:
    # Written by Lightning 2.6.6 (tests/fixtures/gen/lightning_csv_run.py): LearningRateMonitor
    # writes lr-AdamW in a row of its own at the step of the metrics row; it is one record.
    fmt, tr, ev, events, skipped = parse(REAL_RUN)
    assert (fmt, len(tr), len(ev), skipped) == ("lightning-csv", 12, 3, 0)
    assert not [e for e in events if e.kind is EventKind.RESUMED]
    assert [r.step for r in tr] == list(range(3, 48, 4))
    assert tr[0].metrics == {"learning_rate": 0.01, "loss": 11.710314750671387} and tr[0].epoch == 0.0
    assert tr[4].metrics == {"learning_rate": 0.0025, "grad_norm": 7.057583332061768, "loss": 9.402591705322266}
    assert [(r.step, r.metrics["eval_loss"]) for r in ev] == [(15, 6.591725826263428), (31, 6.03936767578125), (47, 5.884505271911621)]


def test_real_lightning_rewrite_with_a_new_key_is_read_once(tmp_path: Path) -> None:
    # Before grad_norm was first logged (epoch 1) the file had no grad_norm column; CSVLogger
    # then rewrote it whole with the wider header. A tail that read the first version reads the
    # rewritten file again from its start: every record once, the later ones with grad_norm.
    lines = REAL_RUN.read_bytes().splitlines(keepends=True)
    narrow = [b",".join(c for i, c in enumerate(line.split(b",")) if i != 1) for line in lines[:11]]
    assert narrow[0] == b"epoch,lr-AdamW,step,train_loss_epoch,train_loss_step,val_loss\r\n"  # (csv.writer: CRLF)
    path = tmp_path / "metrics.csv"
    path.write_bytes(b"".join(narrow))
    run = Run("l", str(path), Config())
    run.poll()
    assert (run.data.count(Kind.TRAIN), run.data.count(Kind.EVAL)) == (4, 1)
    path.write_bytes(b"".join(lines))
    for _ in range(3):
        run.poll()
    assert (run.data.count(Kind.TRAIN), run.data.count(Kind.EVAL)) == (12, 3)
    assert run.data.get("grad_norm") is not None and run.parser.stats.skipped == 0


def _table(rnd: random.Random) -> bytes:
    """A random W&B export: full rows mostly, and now and then what the bulk path must leave
    to the row-by-row one (a step met again or going back, an empty cell, a nan, a quoted
    cell with a comma, a word, a float step, a wider header, a short row)."""
    header = b"_step,_runtime,train/loss,train/grad_norm,train/epoch,_timestamp,train/global_step"
    out = [header]
    step = rnd.choice((0, 5, 1000))
    odd = rnd.choice((0.0, 0.1, 1.0))  # how often a row is one of the odd ones
    for i in range(rnd.randrange(1, 300)):
        r = rnd.random() / odd if odd else 1.0
        step += 0 if r < 0.03 else -rnd.randrange(1, 20) if r < 0.05 else rnd.choice((1, 1, 1, 7))
        cells = [str(i), repr(i * 0.5), repr(rnd.uniform(0, 3)), repr(rnd.uniform(0, 9)), repr(i / 100), "1745673728.19", str(max(step, 0))]
        r = rnd.random() / odd if odd else 1.0
        if r < 0.02:
            cells[rnd.randrange(2, 7)] = ""
        elif r < 0.03:
            cells[2] = "nan"
        elif r < 0.04:
            cells[1] = '"a,b"'
        elif r < 0.05:
            cells[3] = "two"
        elif r < 0.06:
            cells[6] = f"{max(step, 0)}.0"
        elif r < 0.065:
            cells = cells[:-1]
        elif r < 0.07:
            out.append(header + b",eval/loss")
            header = out[-1]
        if header.endswith(b"eval/loss"):
            cells.append(repr(rnd.uniform(0, 3)) if rnd.random() < 0.5 else "")
        out.append(",".join(cells).encode())
    return b"\n".join(out) + b"\n"


def _read_chunks(data: bytes, cuts: list[int]) -> tuple[list[str], list[str], tuple[int, int, int]]:
    parser = LogParser()
    items: list[Item] = []
    events: list[Event] = []
    done = 0
    for c in [*cuts, len(data)]:
        end = data.rfind(b"\n", 0, c) + 1
        if end > done:
            parser.feed_chunk(data[done:end], done, items, events)
            parser.flush(items, final=False)
            done = end
    parser.flush(items)
    st = parser.stats
    return [repr(r) for r in expand(items)], [repr(e) for e in events], (st.lines, st.skipped, st.records)


@pytest.mark.parametrize("seed", range(3))
def test_rows_read_in_bulk_are_the_rows_read_one_by_one(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rnd = random.Random(seed)
    calls: list[bool] = []
    real = CsvReader.feed_rows

    def spy(self: CsvReader, *a: Any) -> bool:
        got = real(self, *a)
        calls.append(got)
        return got

    for trial in range(60):
        data = _table(rnd)
        cuts = sorted(rnd.sample(range(len(data)), min(rnd.randrange(0, 4), len(data))))
        with monkeypatch.context() as m:
            m.setattr(CsvReader, "feed_rows", spy)
            bulk = _read_chunks(data, cuts)
        with monkeypatch.context() as m:
            m.setattr(CsvReader, "feed_rows", lambda self, *a: False)
            one_by_one = _read_chunks(data, cuts)
        assert bulk == one_by_one, (seed, trial)
    assert sum(calls) > 10  # the bulk path was taken
