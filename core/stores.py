"""Tracker stores that are not one log file: a run's metrics kept one file (or one table) per key.

- DVCLive: ``<dir>/plots/metrics/<key>.tsv`` (nested keys in subfolders), each ``step\\t<key>``
  then one row per logged value; ``step`` is DVCLive's own counter (one per ``next_step``).
- MLflow's file store: ``mlruns/<experiment>/<run>/metrics/<key>``, lines ``timestamp value step``.
- MLflow's database store (the default ``sqlite:///mlflow.db`` since MLflow 3): the ``metrics``
  table ``(key, value, timestamp, step, run_uuid)``, read through a read-only connection, the
  run with the newest metric when the database holds several.
- W&B run folder without its stdout: ``wandb-summary.json``, the last value of every key,
  rewritten on every log call (one record per new step it shows; the history itself is in the
  binary ``.wandb`` file, which is not read).

Every store comes down to (step, key, value) triples, collected per step into the dicts the HF
Trainer would have logged (train, eval and end-of-run summary keys apart) and handed to the same
``LogParser`` as JSON lines, so names, resumes and the summary are handled once. Files are read
on from where the last poll stopped (whole lines only). A key's file is written when its value is
logged, so the newest step may still be missing some keys: it is held until a poll finds nothing
new. Nothing is ever written to a store.
"""

from __future__ import annotations

import math
import os
import sqlite3
from dataclasses import dataclass, field

import orjson

from sfttop.core.i18n import N_

from .discover import DVCLIVE, MLFLOW_DB, WANDB_SUMMARY
from .formats.csvtable import metric_name
from .parse import LogParser
from .records import Event, EventKind, Item
from .sanitize import clean_text

_MAX_FILES = 1000  # metric files of one run read at most (a run logs tens of keys)
_MAX_STEPS_HELD = 1 << 20
# The HF Trainer's end-of-run keys: a summary, not a train record.
_SUMMARY = frozenset(("train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss"))
_PLAIN = frozenset(("epoch", *_SUMMARY))


_KEYS: dict[str, tuple[str, int]] = {}


def _key(raw: str) -> tuple[str, int]:
    """(canonical name, 0 train / 1 eval / 2 summary) of a logged key (cached: a run has tens)."""
    got = _KEYS.get(raw)
    if got is None:
        got = _name_of(raw)
        if len(_KEYS) < 4096:
            _KEYS[raw] = got
    return got


def _name_of(raw: str) -> tuple[str, int]:
    k = raw.strip()
    if k in _PLAIN:
        return k, 2 if k in _SUMMARY else 0
    low = k.lower()
    if low.startswith("train/") and low[6:] in _SUMMARY:
        return low[6:], 2
    name, is_eval = metric_name(k)
    return name, 1 if is_eval else 0


@dataclass
class _File:
    key: str
    offset: int = 0
    size: int = -1
    ident: tuple[int, int] | None = None
    last_step: int = -1  # of the last line read: the file is complete up to it


@dataclass
class StoreSource:
    """One run in a tracker store; polled by ``Run`` like ``EventsSource``."""

    path: str
    kind: str
    error: str | None = None
    exists: bool = False
    size: int = 0
    offset: int = 0
    mtime: float = 0.0
    caught_up: bool = True
    files: dict[str, _File] = field(default_factory=dict)
    held: dict[int, dict[str, float]] = field(default_factory=dict)  # step -> key -> value
    last_rowid: int = 0  # mlflow-db: rows read so far
    run_uuid: str | None = None
    last_summary_step: int | None = None
    seq: int = 0  # offsets of the records handed on (there is no byte position across files)
    malformed: int = 0

    @property
    def pending_bytes(self) -> int:
        return max(0, self.size - self.offset)

    def close(self) -> None:
        """Nothing to let go: a store's files are opened for each read, never held between polls."""

    def poll(self, parser: LogParser, out_records: list[Item], out_events: list[Event], budget: int = 4 << 20) -> bool:
        if not os.path.exists(self.path):
            self.exists = False
            self.error = N_("file not found")
            return False
        self.exists = True
        self.error = None
        before = len(self.held)
        grew = self._read(parser, out_events, budget)
        if grew is None:
            return False
        # A step is complete once every file still being read is past it (a byte budget may
        # stop one file before another); the newest step also waits for keys not written yet,
        # until a poll finds nothing new.
        behind = [f.last_step for f in self.files.values() if f.offset < f.size]
        bound = min(behind) if behind else None
        newest = max(self.held) if self.held else None
        release = [
            s for s in sorted(self.held)
            if (bound is None or s <= bound) and (grew is False or s != newest or bound is not None)
        ]
        self._hand_on(release, parser, out_records, out_events)
        self.caught_up = not self.held and self.offset >= self.size
        return bool(release) or len(self.held) != before

    # -- reading -------------------------------------------------------------------------------
    def _add(self, step: int, key: str, value: float) -> None:
        row = self.held.get(step)
        if row is None:
            if len(self.held) >= _MAX_STEPS_HELD:
                return
            row = self.held[step] = {}
        row[key] = value

    def _read(self, parser: LogParser, out_events: list[Event], budget: int) -> bool | None:
        """Read what is new; True when something was, False when nothing, None on an error."""
        if self.kind == MLFLOW_DB:
            return self._read_db(parser)
        if self.kind == WANDB_SUMMARY:
            return self._read_summary(parser)
        root = os.path.join(self.path, "plots", "metrics") if self.kind == DVCLIVE else os.path.join(self.path, "metrics")
        for key, p in _metric_files(root, ".tsv" if self.kind == DVCLIVE else ""):
            if p not in self.files:
                self.files[p] = _File(key)
        grew = False
        size = offset = 0
        share = max(1 << 16, budget // max(1, len(self.files)))  # files go on together: see poll
        for p, f in self.files.items():
            try:
                st = os.stat(p)
            except OSError:
                continue
            self.mtime = max(self.mtime, st.st_mtime)
            ident = (st.st_dev, st.st_ino)
            if f.ident is not None and (ident != f.ident or st.st_size < f.offset):
                out_events.append(Event(EventKind.SOURCE, f"{clean_text(f.key[:80])} rewritten: read again"))
                f.offset = 0
            f.ident, f.size = ident, st.st_size
            if st.st_size > f.offset and budget > 0:
                try:
                    with open(p, "rb") as fh:
                        fh.seek(f.offset)
                        buf = fh.read(min(st.st_size - f.offset, share))
                except OSError as e:
                    self.error = e.strerror or str(e)
                    continue
                end = buf.rfind(b"\n") + 1
                if end:
                    budget -= end
                    grew = True
                    self._lines(f, buf[:end], parser)
                    f.offset += end
            size += f.size
            offset += f.offset
        self.size, self.offset = size, offset
        return grew

    def _lines(self, f: _File, buf: bytes, parser: LogParser) -> None:
        dvc = self.kind == DVCLIVE
        # The common case in one orjson call: every line two (DVCLive) or three (MLflow) numbers.
        body = buf
        if dvc and body.startswith(b"step\t"):
            body = body[body.find(b"\n") + 1 :]
        width = 2 if dvc else 3
        try:
            flat = orjson.loads(b"[" + body.rstrip(b"\n").replace(b"\t" if dvc else b" ", b",").replace(b"\n", b",") + b"]")
        except orjson.JSONDecodeError:
            flat = None
        if flat is not None and len(flat) == width * body.count(b"\n"):
            steps = flat[0::2] if dvc else flat[2::3]
            values = flat[1::2] if dvc else flat[1::3]
            if all(type(x) is int for x in steps):
                parser.stats.lines += len(steps)
                held, key = self.held, f.key
                for step, value in zip(steps, values):
                    row = held.get(step)
                    if row is None:
                        if len(held) >= _MAX_STEPS_HELD:
                            continue
                        row = held[step] = {}
                    row[key] = float(value)
                if steps:
                    f.last_step = steps[-1]
                return
        for line in buf.split(b"\n"):
            line = line.rstrip(b"\r")
            if not line:
                continue
            parser.stats.lines += 1
            cells = line.split(b"\t") if dvc else line.split()
            try:
                if dvc:
                    if cells[0] == b"step":
                        continue  # the header
                    step, value = int(cells[0]), float(cells[1])
                    if len(cells) != 2:
                        raise ValueError
                else:
                    if len(cells) < 2:
                        raise ValueError
                    value = float(cells[1])
                    step = int(cells[2]) if len(cells) > 2 else 0
            except (ValueError, IndexError):
                parser.stats.skip(line)
                continue
            self._add(step, f.key, value)
            f.last_step = step

    def _read_db(self, parser: LogParser) -> bool | None:
        try:
            st = os.stat(self.path)
            self.mtime, self.size = st.st_mtime, st.st_size
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=1.0)
        except (OSError, sqlite3.Error) as e:
            self.error = str(e)
            return None
        try:
            if self.run_uuid is None:
                row = con.execute("SELECT run_uuid FROM metrics ORDER BY timestamp DESC, rowid DESC LIMIT 1").fetchone()
                if row is None:
                    self.offset = self.size
                    return False
                self.run_uuid = str(row[0])
            # MLflow stores a NaN as 0 with is_nan set (older schemas have no is_nan column).
            cols = {str(r[1]) for r in con.execute("PRAGMA table_info(metrics)")}
            nan = "is_nan" if "is_nan" in cols else "0"
            rows = con.execute(
                f"SELECT rowid, key, value, step, {nan} FROM metrics WHERE run_uuid = ? AND rowid > ? "
                "ORDER BY rowid LIMIT 200000",
                (self.run_uuid, self.last_rowid),
            ).fetchall()
        except sqlite3.Error as e:
            self.error = f"not an MLflow database: {e}"
            return None
        finally:
            con.close()
        for rowid, key, value, step, is_nan in rows:
            self.last_rowid = rowid
            parser.stats.lines += 1
            if not isinstance(key, str) or not isinstance(value, (int, float)) or not isinstance(step, int):
                parser.stats.skip(clean_text(repr((key, value, step))[:200]).encode())
                continue
            self._add(step, key, math.nan if is_nan else float(value))
        if len(rows) < 200000:
            self.offset = self.size
        return bool(rows)

    def _read_summary(self, parser: LogParser) -> bool | None:
        try:
            st = os.stat(self.path)
            if st.st_size > 16 << 20:
                self.error = "wandb-summary.json too large"
                return None
            with open(self.path, "rb") as fh:
                raw = fh.read()
        except OSError as e:
            self.error = e.strerror or str(e)
            return None
        self.mtime, self.size, self.offset = st.st_mtime, st.st_size, st.st_size
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return False  # caught while being rewritten: the next poll reads it whole
        if not isinstance(obj, dict):
            return False
        step = next((obj[k] for k in ("train/global_step", "global_step", "iter", "step", "_step") if type(obj.get(k)) is int), None)
        if step is None or step == self.last_summary_step:
            return False
        parser.stats.lines += 1
        self.last_summary_step = step
        for k, v in obj.items():
            if not k.startswith("_") and k not in ("iter", "step", "global_step", "train/global_step"):
                if type(v) in (int, float):
                    self._add(step, k, float(v))
        return True

    # -- handing on ----------------------------------------------------------------------------
    def _hand_on(self, steps: list[int], parser: LogParser, out_records: list[Item], out_events: list[Event]) -> None:
        objs: list[object] = []
        offs: list[tuple[int, bytes]] = []
        for step in steps:
            row = self.held.pop(step)
            parts: tuple[dict[str, object], dict[str, object], dict[str, object]] = ({}, {}, {})
            epoch = row.get("epoch")
            for key, value in row.items():
                name, which = _key(key)
                if name != "epoch":
                    parts[which][name] = value
            for obj in parts:
                if obj:
                    if epoch is not None:
                        obj["epoch"] = epoch
                    obj["step"] = step
                    objs.append(obj)
                    self.seq += 1
                    offs.append((self.seq, b""))
        if objs:
            parser._feed_objects(offs, objs, out_records, out_events)
            parser.progress_step = steps[-1]


def _metric_files(root: str, suffix: str) -> list[tuple[str, str]]:
    """(key, path) of every metric file under ``root``: a key with ``/`` is a subfolder."""
    out: list[tuple[str, str]] = []
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for n in sorted(files):
            if n.startswith(".") or (suffix and not n.endswith(suffix)):
                continue
            rel = os.path.relpath(os.path.join(dirpath, n), root)
            key = rel[: -len(suffix)] if suffix else rel
            out.append((key.replace(os.sep, "/"), os.path.join(dirpath, n)))
            if len(out) >= _MAX_FILES:
                return out
    return out
