"""Tracker stores that are not one log file: a run's metrics kept one file (or one table) per key.

- DVCLive: ``<dir>/plots/metrics/<key>.tsv`` (nested keys in subfolders), each ``step\\t<key>``
  then one row per logged value; ``step`` is DVCLive's own counter (one per ``next_step``).
- MLflow's file store: ``mlruns/<experiment>/<run>/metrics/<key>``, lines ``timestamp value step``.
- MLflow's database store (the default ``sqlite:///mlflow.db`` since MLflow 3): the ``metrics``
  table ``(key, value, timestamp, step, run_uuid)``, read through a read-only connection, the
  run with the newest metric when the database holds several.
- W&B run folder without its stdout: its datastore ``run-<id>.wandb``, every ``wandb.log``
  call's row (LevelDB log framing of protobuf ``Record``s: see ``_wandb_records``); or, without
  that either, ``wandb-summary.json``, the last value of every key, rewritten on every log call
  (one record per new step it shows).

Every store comes down to (step, key, value) triples, collected per step into the dicts the HF
Trainer would have logged (train, eval and end-of-run summary keys apart) and handed to the same
``LogParser`` as JSON lines, so names, resumes and the summary are handled once. Files are read
on from where the last poll stopped (whole lines only). A key's file is written when its value is
logged, so the newest step may still be missing some keys: it is held until a poll finds nothing
new. Nothing is ever written to a store.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter

import orjson

from sfttop.core.i18n import N_, _

from .discover import DVCLIVE, MLFLOW_DB, WANDB, WANDB_SUMMARY
from .formats.csvtable import metric_name
from .parse import Closed, Columns, LogParser
from .records import Event, EventKind, Item
from .sanitize import clean_text
from .tensorboard import Malformed, proto_fields

_MAX_FILES = 1000  # metric files of one run read at most (a run logs tens of keys)
_MAX_STEPS_HELD = 1 << 20
_DB_ROWS = 200000  # rowids of an MLflow database read at most a poll
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
    ident: tuple[int, int] | None = None  # wandb: the datastore file read
    last_step: int | None = None  # wandb: of the last history row
    exit: Event | None = None  # wandb: the run's end, handed on after its last row
    malformed: int = 0
    plain: dict[tuple[str, ...], bool] = field(default_factory=dict)  # row keys -> all train, named as shown

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
            if (bound is None or s <= bound) and (grew is False or s != newest or bound is not None or self.exit)
        ]
        self._hand_on(release, parser, out_records, out_events)
        if self.exit is not None and not self.held:
            # After the last row (records and events are merged by offset).
            self.exit.offset = self.seq + 1
            parser.finished = parser.finished or self.exit.kind is EventKind.FINISHED
            out_events.append(self.exit)
            self.exit = None
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
        if self.kind == WANDB:
            return self._read_wandb(parser, out_events, budget)
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
                out_events.append(Event(EventKind.SOURCE, _("{name} rewritten: read again").format(name=clean_text(f.key[:80]))))
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
                # The newest timestamp, ties to the last row (ORDER BY timestamp DESC, rowid DESC
                # LIMIT 1 sorts every row; this is a scan and a walk back from the end).
                row = con.execute(
                    "SELECT run_uuid FROM metrics WHERE timestamp IS (SELECT max(timestamp) FROM metrics) "
                    "ORDER BY rowid DESC LIMIT 1"
                ).fetchone()
                if row is None:
                    self.offset = self.size
                    return False
                self.run_uuid = str(row[0])
            # MLflow stores a NaN as 0 with is_nan set (older schemas have no is_nan column).
            cols = {str(r[1]) for r in con.execute("PRAGMA table_info(metrics)")}
            nan = "is_nan" if "is_nan" in cols else "0"
            top = con.execute("SELECT max(rowid) FROM metrics").fetchone()[0]
            top = top if type(top) is int else self.last_rowid
            # Each row costs the sqlite3 module more than SQLite's scan does, so a row carries
            # only what the fold needs: no rowid (the chunk is a rowid range instead of a LIMIT)
            # and no is_nan column (a NaN comes as NULL; a NULL value, which MLflow's NOT NULL
            # forbids, as x'' so that it is skipped like any other value that is not a number).
            hi = min(top, self.last_rowid + _DB_ROWS)
            rows = con.execute(
                f"SELECT key, CASE WHEN value IS NULL THEN x'' WHEN NOT {nan} THEN value "
                "WHEN typeof(value) IN ('integer', 'real') THEN NULL ELSE value END, step "
                "FROM metrics WHERE run_uuid = ? AND rowid > ? AND rowid <= ? ORDER BY rowid",
                (self.run_uuid, self.last_rowid, hi),
            ).fetchall()
        except sqlite3.Error as e:
            self.error = f"not an MLflow database: {e}"
            return None
        finally:
            con.close()
        self.last_rowid = max(self.last_rowid, hi)
        parser.stats.lines += len(rows)
        held = self.held
        # (self._add inline: a database of a long run holds millions of rows)
        for key, value, step in rows:
            if type(value) is not float or type(step) is not int or type(key) is not str:
                if type(key) is not str or type(step) is not int or (value is not None and type(value) not in (float, int)):
                    parser.stats.skip(clean_text(repr((key, value, step))[:200]).encode())
                    continue
                value = math.nan if value is None else float(value)
            row = held.get(step)
            if row is None:
                if len(held) >= _MAX_STEPS_HELD:
                    continue
                row = held[step] = {}
            row[key] = value
        if hi >= top:
            self.offset = self.size
        # Rows of other runs only in this range: not caught up, so the newest step stays held.
        return bool(rows) or hi < top

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

    def _read_wandb(self, parser: LogParser, out_events: list[Event], budget: int) -> bool | None:
        """The history rows written since the last poll (a record cut at the end, being
        written, is read once whole)."""
        try:
            st = os.stat(self.path)
            self.mtime = st.st_mtime
            ident = (st.st_dev, st.st_ino)
            if self.ident is not None and (ident != self.ident or st.st_size < self.offset):
                out_events.append(Event(EventKind.SOURCE, _("W&B datastore rewritten: read again")))
                self.offset = 0
            self.ident, self.size = ident, st.st_size
            if st.st_size <= self.offset:
                return False
            # Whole blocks from the last complete record's block on: chunks never cross one.
            start = self.offset - self.offset % _WB_BLOCK
            want = min(st.st_size - start, max(budget, 4 * _WB_BLOCK))
            with open(self.path, "rb") as fh:
                for _attempt in range(2):
                    fh.seek(start)
                    buf = fh.read(want)
                    if start == 0 and len(buf) >= 7 and not buf.startswith(_WB_MAGIC):
                        self.error = "not a W&B datastore (no :W&B header)"
                        self.offset = self.size
                        return None
                    records, end, corrupt = _wandb_records(buf, start, self.offset)
                    if end > self.offset or start + len(buf) >= st.st_size:
                        break
                    want = min(st.st_size - start, 64 << 20)  # one record longer than a budget
        except OSError as e:
            self.error = e.strerror or str(e)
            return None
        self.offset = end
        if corrupt:
            parser.stats.skipped += corrupt
            if len(parser.stats.skipped_examples) < 3:
                parser.stats.skipped_examples.append(f"{corrupt} corrupt chunk(s) in {clean_text(os.path.basename(self.path)[:80])}")
        grew = False
        for data in records:
            try:
                row = _history_row(data)
            except (Malformed, ValueError, UnicodeDecodeError):
                self.malformed += 1
                parser.stats.skipped += 1
                continue
            if type(row) is int:  # the run's exit record: every row is in, and how it ended
                self.exit = (
                    Event(EventKind.FINISHED, "W&B run finished (exit code 0)", -1, self.last_step)
                    if row == 0
                    else Event(EventKind.CRASHED, f"W&B run exited with code {row}", -1, self.last_step)
                )
                grew = True
                continue
            if not isinstance(row, dict):
                continue  # another kind of record: config, summary, stats, console output ...
            parser.stats.lines += 1
            step = None
            for k in _WB_STEP_KEYS:
                v = row.get(k)
                if isinstance(v, int) and not isinstance(v, bool):
                    step = v
                    break
            if step is None:
                parser.stats.skip(b"[W&B history row without a step]")
                continue
            grew = True
            self.last_step = step
            for k, v in row.items():
                if k[:1] != "_" and k not in _WB_STEP_KEYS and type(v) in (int, float):  # (not bool)
                    self._add(step, k, float(v))  # type: ignore[arg-type]
        return grew

    # -- handing on ----------------------------------------------------------------------------
    def _hand_on(self, steps: list[int], parser: LogParser, out_records: list[Item], out_events: list[Event]) -> None:
        entries: list[Closed] = []
        plain = self.plain
        # Consecutive rows of train metrics already under their own names (the usual rows),
        # with the same keys: handed on as columns, taken out of the rows by key in C.
        run_keys: tuple[str, ...] = ()
        run: list[dict[str, float]] = []
        run_steps: list[int] = []
        for step in steps:
            row = self.held.pop(step)
            keys = tuple(row)
            is_plain = plain.get(keys)
            if is_plain is None:
                is_plain = "epoch" not in keys and all(_key(k) == (k, 0) for k in keys)
                if len(plain) < 256:
                    plain[keys] = is_plain
            if is_plain:
                if keys != run_keys:
                    self._columns(run_keys, run, run_steps, entries)
                    run_keys, run, run_steps = keys, [], []
                run.append(row)
                run_steps.append(step)
                continue
            self._columns(run_keys, run, run_steps, entries)
            run_keys, run, run_steps = (), [], []
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
                    self.seq += 1
                    entries.append((obj, self.seq))
        self._columns(run_keys, run, run_steps, entries)
        if entries:
            parser.feed_closed(entries, out_records, out_events)
            parser.progress_step = steps[-1]

    def _columns(self, keys: tuple[str, ...], rows: list[dict[str, float]], steps: list[int], entries: list[Closed]) -> None:
        if rows:
            cols: list[Sequence[object]] = [list(map(itemgetter(k), rows)) for k in keys]
            cols.append(steps)
            entries.append(Columns((*keys, "step"), cols, range(self.seq + 1, self.seq + len(rows) + 1)))
            self.seq += len(rows)


_WB_MAGIC = b":W&B\xe1\xbe\x00"  # ident, magic 0xBEE1, version 0
_WB_BLOCK = 32768
_WB_CHUNK = struct.Struct("<IHB")  # CRC-32 (zlib's) of type and data, length, type
_WB_STEP_KEYS = ("train/global_step", "global_step", "iter", "step", "_step")
_F64 = struct.Struct("<d")


def _wandb_records(buf: bytes, base: int, offset: int) -> tuple[list[bytes], int, int]:
    """The complete records in ``buf`` (file bytes from ``base``, a block start) from file
    offset ``offset`` on, where the next read starts, and how many chunks were corrupt.

    LevelDB's log format, as W&B's datastore writes it: 32 KiB blocks of chunks, each a 7-byte
    header (checksum, length, type: 1 whole record, 2 first, 3 middle, 4 last piece) and its
    data; fewer than 7 bytes left in a block are zero padding. A chunk whose checksum fails is
    skipped with the record it belongs to; one whose header cannot be (a length past its block,
    an unknown type) with the rest of its block.
    """
    out: list[bytes] = []
    corrupt = 0
    pos = max(offset, 7) - base
    n = len(buf)
    record_start = pos  # where the record being put together began
    parts: list[bytes] = []
    while True:
        left = _WB_BLOCK - (base + pos) % _WB_BLOCK
        if left < 7:
            pos += left
            continue
        if pos + 7 > n:
            break
        crc, length, kind = _WB_CHUNK.unpack_from(buf, pos)
        if kind == 0 and length == 0 and crc == 0:
            pos += left  # the writer padded the block out
            continue
        end = pos + 7 + length
        if length + 7 > left or kind not in (1, 2, 3, 4):
            corrupt += 1
            parts = []
            pos += left
            record_start = pos
            continue
        if end > n:
            break
        if zlib.crc32(buf[pos + 6 : end]) != crc:
            # Damaged data (or length: then the next chunk fails too, up to the block's end).
            corrupt += 1
            parts = []
            pos = end
            record_start = pos
            continue
        data = buf[pos + 7 : end]
        if kind == 1 or kind == 2:
            if parts:
                corrupt += 1  # a record whose last piece never came
            parts = [data]
            record_start = pos
        elif parts:
            parts.append(data)
        else:
            corrupt += 1  # the middle or end of a record whose start was lost
        pos = end
        if kind in (1, 4) and parts:
            out.append(b"".join(parts))
            parts = []
            record_start = pos
    return out, base + min(record_start if parts else pos, n), corrupt


def _history_row(data: bytes) -> dict[str, object] | int | None:
    """The row of a ``Record`` whose ``history`` is set (field 2: ``HistoryRecord``, whose
    ``item``s (field 1) each hold a ``key`` (1), a ``nested_key`` path (2) or a ``value_json``
    (16)); the exit code of one whose ``exit`` is (field 18: ``RunExitRecord``, exit_code 1);
    None for any other record."""
    history = None
    for num, wt, a, b in proto_fields(data, 0, len(data)):
        if num == 2 and wt == 2:
            history = (a, b)
        elif num == 18 and wt == 2:
            code = 0
            for enum, ewt, ea, _eb in proto_fields(data, a, b):
                if enum == 1 and ewt == 0:
                    code = ea - (1 << 64) if ea >= 1 << 63 else ea
            return code
    if history is None:
        return None
    row: dict[str, object] = {}
    for num, wt, a, b in proto_fields(data, *history):
        if num != 1 or wt != 2:
            continue
        key = ""
        nested: list[str] = []
        value: object = None
        for inum, iwt, ia, ib in proto_fields(data, a, b):
            if inum == 1 and iwt == 2:
                key = data[ia:ib].decode("utf-8")
            elif inum == 2 and iwt == 2:
                nested.append(data[ia:ib].decode("utf-8"))
            elif (inum == 16 or inum == 8) and iwt == 2:  # value_json, json
                raw = data[ia:ib]
                try:
                    value = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    value = json.loads(raw)  # NaN, Infinity: Python's json module writes them
            elif inum == 6 and iwt == 1:  # number (double)
                value = _F64.unpack_from(data, ia)[0]
            elif inum == 5 and iwt == 0:  # integer (sint64: zigzag)
                value = (ia >> 1) ^ -(ia & 1)
            elif inum == 4 and iwt == 0:  # boolean
                value = bool(ia)
            elif inum == 7 and iwt == 2:  # text
                value = data[ia:ib].decode("utf-8")
        # A nested dict's leaf: its path, dot-joined as W&B's exports name it.
        row[".".join(nested) if nested else key] = value
    return row


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
