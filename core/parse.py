"""Turn the bytes of a training log into Records and Events.

One ``LogParser`` per file. It is fed complete segments (the tailer splits on ``\\n`` and on the
``\\r`` tqdm uses to redraw a bar) and keeps the little state a log needs to be understood: the
training progress bar's position (HF stdout lines carry no step), the last step and epoch (to
notice a resumed run), an open traceback.

Parsing never evaluates anything. A Python dict repr is read by translating it to JSON and
handing it to orjson, or, for odd lines, by a small regex scanner that accepts only string keys
and number/string/bool/None values; anything else is a skipped line, counted.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import formats
from .i18n import _
from .metrics import canonical
from .records import Block, Event, EventKind, Item, Kind, Record
from .sanitize import clean_text
from .tensorboard import TENSORBOARD  # event files: read by core/tbsource.py

MAX_RECORD_LINE = 256 * 1024  # a metrics dict is a few hundred bytes; longer lines are not records

# Formats a file can be detected as.
HF_STDOUT = "hf-stdout"
JSONL = "jsonl"
LLAMA_FACTORY = "llamafactory-jsonl"
MS_SWIFT = "ms-swift-jsonl"
TRAINER_STATE = "trainer-state"
UNKNOWN = "unknown"
# Line formats (core/formats): read by a reader the parser hands its text lines to.
MEGATRON = formats.megatron.NAME
NANOGPT = formats.nanogpt.NAME
NANOCHAT = formats.nanochat.NAME
LLMC = formats.llmc.NAME
TORCHTUNE = formats.torchtune.NAME
# What --log-format accepts.
# (the tracker stores of core/stores.py: named here, as importing that module here would be circular)
STORES = ("dvclive", "mlflow", "mlflow-db", "wandb-summary", "wandb")
INPUT_FORMATS = (HF_STDOUT, JSONL, LLAMA_FACTORY, MS_SWIFT, TRAINER_STATE, TENSORBOARD, *formats.BY_NAME, *STORES)

_ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
_PREFIX = re.compile(rb"^\s*(?:\[(?:default|rank)\d+\]:\s*)+")
_BARE_NONFINITE = re.compile(rb"(?<=[:\[,\s])(-?)(nan|inf|NaN|Infinity)(?=\s*[,}\]])")
_PAIR = re.compile(
    r"""\s*(?:'((?:[^'\\]|\\.){0,200})'|"((?:[^"\\]|\\.){0,200})")\s*:\s*"""
    r"""(?:'((?:[^'\\]|\\.){0,400})'|"((?:[^"\\]|\\.){0,400})"|"""
    r"""([-+]?(?:\d[\d_]*\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf|NaN|Infinity)"""
    r"""|True|False|None|true|false|null))\s*([,}])"""
)
_BAR_START = re.compile(rb"^\s*\d+%\|")
# After a carriage return: a bar as _BAR_START has it, or a blank piece (tqdm clearing its bar).
# A line that starts with "\r", has no "{" and has one of these at every "\r" is nothing but
# tqdm redraws (C-level calls tell, with no piece split out and matched on its own).
_BAR_OR_EMPTY = re.compile(rb"\r[ \t]*(?:\d+%\||(?=\r)|$)")

_TQDM = re.compile(rb"(\d+)/(\d+) \[([\d:]+)<([\d:?]+)")
_TOTAL_STEPS = re.compile(
    rb"(?:Total optimization steps|Total steps|max_steps)\s*[=:]\s*([\d,]+)", re.IGNORECASE
)
_TRACEBACK = b"Traceback (most recent call last):"
_COMPLETED = re.compile(rb"^\s*Training completed\b")
_ERROR_LINE = re.compile(rb"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Failure|Exit)\b.*)$")
_FATAL = re.compile(
    rb"(CUDA out of memory|OutOfMemoryError|out of memory|NCCL (?:error|WARN.*timeout)|"
    rb"ChildFailedError|Segmentation fault|core dumped|^Killed\s*$|"
    rb"Current loss scale already at minimum|"
    # trackers saying the run died (SwanLab; W&B/MLflow print the traceback itself), and a crash
    # whose own excepthook failed (its traceback is the hook's, often cut off)
    rb"Error happened while training|^Error in sys\.excepthook)",
    re.IGNORECASE,
)
# Trackers that print their own lines while a crashing process prints its traceback.
_TRACKERS = (b"wandb:", b"swanlab:", b"COMET ", b"comet_ml", b"mlflow")
_RANK_PREFIX = re.compile(rb"^(?:\[(?:default|rank)\d+\]: ?)+")
_NOT_PLAIN = frozenset(
    ("step", "global_step", "current_steps", "iteration", "iter", "total_steps", "global_step/max_steps",
     "percentage", "remaining_time", "log_history")
)
_EPOCH_MEMORY = 1 << 13  # step-less records whose epoch is remembered to place a resume
# LLaMA-Factory's trainer_log.jsonl writes TRL's ``rewards/accuracies`` (DPO, KTO, ORPO ...) as
# ``accuracy``: a reward accuracy, not the token accuracy other formats mean by it.
_LLAMA_FACTORY_NAMES = {"accuracy": "rewards/accuracies"}
_STEP_KEYS = ("step", "global_step", "current_steps", "iteration", "iter")
_SWIFT_STEPS = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_DURATION_HMS = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")
# Python's str(timedelta), which LLaMA-Factory prints: "2 days, 12:56:35", "1 day, 0:00:01.5".
_DURATION_DAYS = re.compile(r"^(\d+)\s*(?:days?|d)\s*,?\s*(\d.*)$")
_DURATION_WORDS = re.compile(r"(\d+(?:\.\d+)?)\s*(days?|hours?|hrs?|minutes?|mins?|seconds?|secs?|[dhms])(?![a-z])")
_DURATION_UNIT = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


@dataclass
class ParseStats:
    lines: int = 0
    records: int = 0
    skipped: int = 0  # lines that looked like a record but could not be read
    oversized: int = 0  # lines longer than MAX_RECORD_LINE
    skipped_examples: list[str] = field(default_factory=list)

    def skip(self, line: bytes) -> None:
        self.skipped += 1
        if len(self.skipped_examples) < 3:
            self.skipped_examples.append(clean_text(line[:120].decode("utf-8", "replace")))


def to_float(v: object) -> float | None:
    """A metric value as float; None for values that are not numbers (text, bools, None)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, float):
        return v
    if isinstance(v, int):
        try:
            return float(v)
        except OverflowError:
            return math.inf if v > 0 else -math.inf
    if isinstance(v, str):
        try:
            return float(v) if len(v) < 40 and "_" not in v else None
        except ValueError:
            pass
        s = v.strip()
        if not s or len(s) > 64:
            return None
        low = s.lower()
        if low in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity"):
            return float(low)
        c = s[0]
        if not (c.isdigit() or c in "+-."):
            return None
        s = s.rstrip("%")
        try:
            return float(s)
        except ValueError:
            return None
    return None


def parse_duration(s: str) -> float | None:
    """A duration as the formats print it, in seconds: tqdm's '02:01' and '50:12:01', Python's
    timedelta '2 days, 12:56:35' (LLaMA-Factory), '1m 42s' / '8h 25m 20s' / '1d 2h' (ms-swift)."""
    s = s.strip().lower()
    days = 0
    m = _DURATION_DAYS.match(s)
    if m and ":" in m.group(2):
        days = int(m.group(1))
        s = m.group(2).strip()
    m = _DURATION_HMS.match(s)
    if m:
        h, mi, se = m.groups()
        whole = (days * 24 + int(h or 0)) * 3600 + int(mi) * 60
        return whole + (float(se) if "." in se else int(se))
    parts = _DURATION_WORDS.findall(s)
    if not parts or days:
        return None
    return sum(float(n) * _DURATION_UNIT[u[0]] for n, u in parts)


def _scan_dict(text: str) -> dict[str, object] | None:
    """Read a flat ``{'k': v, ...}`` without eval: string keys, scalar values only."""
    text = text.strip()
    if not text.startswith("{") or not text.endswith("}"):
        return None
    out: dict[str, object] = {}
    pos = 1
    if text[1:].strip() == "}":
        return out
    n = len(text)
    while pos < n:
        m = _PAIR.match(text, pos)
        if m is None:
            return None
        key = m.group(1) if m.group(1) is not None else m.group(2)
        if m.group(3) is not None:
            val: object = m.group(3)
        elif m.group(4) is not None:
            val = m.group(4)
        else:
            tok = m.group(5)
            if tok in ("True", "true"):
                val = True
            elif tok in ("False", "false"):
                val = False
            elif tok in ("None", "null"):
                val = None
            else:
                try:
                    val = float(tok.replace("_", ""))  # a 5000-digit number is inf, not an error
                except ValueError:
                    val = None
        out[key] = val
        pos = m.end()
        if m.group(6) == "}":
            return out if text[pos:].strip() == "" else None
    return None


def parse_object(raw: bytes) -> dict[str, object] | None:
    """A dict from one ``{...}`` segment, JSON or Python repr; None when it is not one."""
    try:
        # A Python repr never parses as JSON: don't pay for the exception on every line.
        obj = orjson.loads(raw) if raw[1:2] != b"'" else None
    except orjson.JSONDecodeError:
        obj = None
    if obj is None:
        if b"'" in raw and b'"' not in raw and b"\\" not in raw:
            # A Python dict repr of plain keys and numbers is JSON once quotes are swapped and
            # the bare nan/inf of transformers 4.x are quoted; this keeps the common line on the
            # C fast path.
            swapped = raw.replace(b"'", b'"')
            try:
                obj = orjson.loads(swapped)
            except orjson.JSONDecodeError:
                try:
                    obj = orjson.loads(_BARE_NONFINITE.sub(rb'"\1\2"', swapped))
                except orjson.JSONDecodeError:
                    obj = None
        elif b"NaN" in raw or b"Infinity" in raw or b"nan" in raw or b"inf" in raw:
            try:
                obj = orjson.loads(_BARE_NONFINITE.sub(rb'"\1\2"', raw))
            except orjson.JSONDecodeError:
                obj = None
        if obj is None:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return None
            return _scan_dict(text)
    return obj if isinstance(obj, dict) else None


_MIN_BLOCK = 4  # fewer plain train records in a row go out one by one


@dataclass(slots=True)
class Columns:
    """Consecutive record dicts with the same keys, as columns (``cols[j]``: key j's values,
    one per record; ``offsets``: each record's), for ``LogParser.feed_closed``."""

    keys: tuple[str, ...]
    cols: Sequence[Sequence[Any]]
    offsets: Sequence[int]


Closed = tuple[dict[str, object], int] | Columns  # a record dict and its offset, or a run of them
_BLOCK_STEP_KEYS = frozenset(("step", "global_step"))  # a step field a block can take as a column


@dataclass(frozen=True, slots=True)
class _ColumnPlan:
    """How a key set of plain train records maps to a Block: positions in the key tuple."""

    names: tuple[str, ...]  # canonical metric names
    metric_idx: tuple[int, ...]
    epoch_idx: int  # -1: no epoch
    step_idx: int  # -1: no step field (HF stdout)


def _column(values: Sequence[object]) -> array[float] | None:
    """One metric's values as doubles, converted as ``to_float`` would; None when any of them
    is not a plain number or a plain numeric string (then the records go one by one)."""
    types = set(map(type, values))
    try:
        if types <= _NUMBER_TYPES:
            return array("d", values)  # type: ignore[arg-type]
        if types == {str}:  # transformers 5.x: '%.4g' strings (to_float's rules, checked in C)
            strs: Sequence[str] = values  # type: ignore[assignment]
            if max(map(len, strs)) >= 40 or "_" in "".join(strs):
                return None
            return array("d", map(float, strs))
    except (TypeError, ValueError, OverflowError):
        return None
    return None


_NUMBER_TYPES = frozenset((float, int))


class _Burst:
    """A run of step-less train dicts printed in one flush of stdout, and the bars around it."""

    __slots__ = ("after_bar", "bar", "cleared", "open", "waited")

    def __init__(self) -> None:
        self.open = False  # inside such a run
        self.bar: int | None = None  # the training bar when the run began
        # The first training bar drawn after the run: with unbuffered stdout (PYTHONUNBUFFERED,
        # `python -u`), tqdm.write puts each dict between a cleared bar and its redraw, and the
        # redraw shows the dict's own step; the bar before it lags (tqdm's mininterval).
        self.after_bar: int | None = None
        self.waited = False  # the run's release was put off once for that redraw
        self.cleared = False  # the run's first dict came right after tqdm.write cleared the bar


class _Traceback:
    """A Python traceback being read: it becomes one crash event when it ends."""

    __slots__ = ("error", "lines", "offset", "open")

    def __init__(self) -> None:
        self.open = False
        self.offset = -1  # where it began in the file
        self.lines: list[bytes] = []
        self.error: tuple[str, int | None] = ("", None)  # the last traceback's error, and its step


class LogParser:
    """Stateful reader of one log file's segments."""

    def __init__(self, fmt: str | None = None, blocks: bool = True) -> None:
        self.format: str = fmt or UNKNOWN
        self.stats = ParseStats()
        line_format = formats.BY_NAME.get(self.format)
        # The reader of a line format, once the file is known to be in one.
        self.reader: formats.LineReader | None = line_format.reader(self.stats) if line_format else None
        # Runs of plain train records come out as one Block each (False: one Record each)
        self.blocks = blocks
        self.train_total: int | None = None  # total of the training progress bar
        self.bar_step: int | None = None  # the training bar's latest position
        self.last_train_step: int | None = None
        self.last_epoch: float | None = None
        self.interval: int | None = None  # logging_steps, when records carry no step
        self.ordinal = 0  # number of the last step-less train record, resume-adjusted
        self._epochs: array[float] = array("d")  # epoch of each step-less train record...
        self._ordinals: array[int] = array("q")  # ...and its number, to place a resumed run
        self._pending: list[Record] = []  # records waiting for the logging interval
        self._names: dict[str, str] = {}  # raw key -> canonical name
        self._plans: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}
        self._cplans: dict[tuple[str, ...], _ColumnPlan | None] = {}
        self._burst = _Burst()
        self._tentative: Record | None = None  # a record whose epoch went back, not yet placed
        self._bar_went_back = False  # the training bar restarted since the last train record
        self._guessed = False  # the interval was measured from the bars here (not given)
        self._cleared = False  # the next dict came right after tqdm.write cleared the bar
        self._tb = _Traceback()
        self.finished = False
        self._prev_step: int | None = None
        # Progress as the log tells it (tqdm bar, LLaMA-Factory/ms-swift fields): kept as state,
        # not events, because a tqdm log redraws its bar thousands of times.
        self.progress_step: int | None = None
        self.progress_total: int | None = None
        self._eta: float | None = None
        self._eta_text = b""

    # -- public -----------------------------------------------------------------------------
    def feed(self, seg: bytes, offset: int, out_records: list[Item], out_events: list[Event]) -> None:
        """Parse one segment (no ``\\n``/``\\r`` inside) found at byte ``offset``."""
        if not seg:
            return
        self.stats.lines += 1
        if len(seg) > MAX_RECORD_LINE:
            self.stats.oversized += 1
            return
        if b"\x1b" in seg:
            seg = _ANSI.sub(b"", seg)
        start = seg.find(b"{")
        if start >= 0:
            head = seg[:start]
            if head.strip() and _PREFIX.match(head):
                seg = _PREFIX.sub(b"", seg)
                start = seg.find(b"{")
            if b"/" in head and b"[" in head:
                # A dict glued to a bar: stdout was flushed right after this redraw.
                m = _TQDM.search(head)
                if m is not None and _BAR_START.match(head):
                    if self.interval is None:
                        self._end_burst(out_records)
                    total = int(m.group(2))
                    if self.train_total is None or total >= self.train_total:
                        self._on_bar(int(m.group(1)), total, m.group(4))
            if b"llamafactory.train.callbacks" in head:
                return  # LlamaBoard's copy of the HF line just printed: not a second record
            end = seg.rfind(b"}")
            if end > start and self._record_candidate(seg, start):
                body = seg[start : end + 1]
                obj = parse_object(body)
                if obj is None:
                    self.stats.skip(seg)
                else:
                    self._on_object(obj, offset, out_records, out_events)
                return
        self._on_text(seg, offset, out_records, out_events)

    def feed_chunk(self, data: bytes, base: int, out_records: list[Item], out_events: list[Event]) -> None:
        """Parse complete lines (``data`` ends at a line break) that start at byte ``base``.

        The hot path of a big log: runs of plain dict lines are converted in bulk, one orjson
        call for the whole run; of the tqdm redraws between them (``\r``-joined, often a
        hundred per line) only the last bar is looked at.
        """
        reader = self.reader
        plain = (
            b"{" not in data
            and b"\r" not in data
            and b"\x1b" not in data
            and b"\n\n" not in data
            and not data.startswith(b"\n")
        )
        if plain and reader is None and self.format == UNKNOWN:
            # A file's first chunk: its first line may name the line format, and then the rest
            # can go to that format's reader in bulk too (a third of a 12 MB log otherwise).
            head = data.find(b"\n") + 1
            if 0 < head < len(data):
                self._end_burst(out_records)
                self.feed(data[: head - 1], base, out_records, out_events)
                data, base = data[head:], base + head
                reader = self.reader
        if plain and reader is not None and reader.rows_in_bulk():
            # Nothing but a line format's plain lines: its reader may take them all at once.
            lines = data.split(b"\n")
            if lines[-1] == b"":
                lines.pop()
            if len(lines) > 2 and max(map(len, lines)) <= MAX_RECORD_LINE:
                self._end_burst(out_records)
                if reader.feed_rows(lines, base, out_records, out_events):
                    self.stats.lines += len(lines)
                    return
                # The first line may be the header the rest is read by (a table's first chunk).
                head = len(lines[0]) + 1
                self.feed(lines[0], base, out_records, out_events)
                if reader.feed_rows(lines[1:], base + head, out_records, out_events):
                    self.stats.lines += len(lines) - 1
                    return
                data, base = data[head:], base + head
        self._feed_lines(data, base, out_records, out_events)

    def _feed_lines(self, data: bytes, base: int, out_records: list[Item], out_events: list[Event]) -> None:
        """``feed_chunk``'s line by line part: runs of dict lines (alone, after tqdm.write's
        cleared bar, or glued to a bar) are converted together; the rest one at a time."""
        batch: list[tuple[int, bytes]] = []
        bars = b""
        pos = base
        feed = self.feed
        glued = self.bar_step or 0  # the newest training bar a dict was glued to in this chunk
        for line in data.split(b"\n"):
            n = len(line)
            if n:
                c = line[:2]
                if (c == b"{'" or c == b'{"') and n < MAX_RECORD_LINE and line[-1:] == b"}":
                    batch.append((pos, line))
                elif b"\r" in line:
                    # tqdm redraws, then what tqdm.write printed after clearing the bar.
                    cut = line.rfind(b"\r")
                    tail = line[cut + 1 :]
                    if tail[:2] in (b"{'", b'{"') and tail[-1:] == b"}" and len(tail) < MAX_RECORD_LINE:
                        if self.interval is None:
                            # Bars between records: the previous stdout burst is over, and
                            # stdout's buffer was flushed right after this bar, so the bar is
                            # where training was when the records that follow were logged.
                            if batch:
                                self._feed_batch(batch, out_records, out_events)
                                batch = []
                            self.see_bars_after(line)
                            self._end_burst(out_records)
                            self.peek_partial(line[: cut + 1])
                            # tqdm.write clears the bar (a piece of blanks) just before the dict
                            prev = line.rfind(b"\r", 0, cut)
                            self._cleared = prev >= 0 and cut > prev + 1 and not line[prev + 1 : cut].strip()
                        batch.append((pos + cut + 1, tail))
                        bars = line  # only the newest bar of the chunk matters
                    elif self.interval is not None and (at := self._glued_record(tail, glued))[0] > 0:
                        # A dict printed right after a redraw, glued to the bar (print(), not
                        # tqdm.write): with the logging interval known the bar does not place
                        # the record, and only the chunk's newest bar matters, as above. (A bar
                        # that went back, a resume, takes the record-by-record way.)
                        j, glued = at
                        batch.append((pos + cut + 1 + j, tail[j:]))
                        bars = line[: cut + 1] + tail[:j] + b"\r"
                    else:
                        if batch:
                            self._feed_batch(batch, out_records, out_events)
                            batch = []
                        if bars:  # (the batch's newest bar before this line's, in log order)
                            self.peek_partial(bars[: bars.rfind(b"\r") + 1])
                            bars = b""
                        self.see_bars_after(line)
                        self._end_burst(out_records)
                        self._feed_redraws(line, pos, out_records, out_events)
                        glued = self.bar_step or 0
                else:
                    if batch:
                        self._feed_batch(batch, out_records, out_events)
                        batch = []
                    if bars:
                        self.peek_partial(bars[: bars.rfind(b"\r") + 1])
                        bars = b""
                    if line[:1] != b"{":
                        self._end_burst(out_records)
                    feed(line, pos, out_records, out_events)
                    glued = self.bar_step or 0
            pos += n + 1
        if batch:
            self._feed_batch(batch, out_records, out_events)
        if bars:
            self.peek_partial(bars[: bars.rfind(b"\r") + 1])

    def _glued_record(self, piece: bytes, newest: int) -> tuple[int, int]:
        """(where the dict starts in ``piece``, the bar's step) when ``piece`` is a training bar
        with a record glued to it whose step is not behind ``newest``; (0, 0) when it is not."""
        if piece[-1:] != b"}" or len(piece) >= MAX_RECORD_LINE:
            return 0, 0
        j = piece.find(b"{")
        if j <= 0 or piece[j : j + 2] not in (b"{'", b'{"'):
            return 0, 0
        step = self._training_bar(piece, j)
        return (j, step) if step is not None and step >= newest else (0, 0)

    def _training_bar(self, piece: bytes, end: int) -> int | None:
        """The step of the training bar ``piece`` starts with (its counter before ``end``): a bar
        with no description whose total is not below the training total (an evaluation bar's
        is smaller); None when it is not one."""
        if not _BAR_START.match(piece):
            return None
        m = _TQDM.search(piece, 0, end)
        if m is None or (self.train_total is not None and int(m.group(2)) < self.train_total):
            return None
        return int(m.group(1))

    def peek_partial(self, partial: bytes) -> None:
        """Progress from the newest training bar in ``partial`` (redraws, never a record)."""
        end = len(partial)
        for _i in range(8):  # the newest few pieces: blanking strings, an eval bar, then ours
            i = partial.rfind(b"\r", 0, end)
            piece = partial[i + 1 : end]
            if _BAR_START.match(piece) and self._took_bar(piece):
                return
            if i < 0:
                return
            end = i

    def _feed_redraws(self, line: bytes, pos: int, out_records: list[Item], out_events: list[Event]) -> None:
        # Pieces between carriage returns: tqdm redraws, and whatever was written between them
        # (a record whose newline comes after the bars that stderr wrote meanwhile, a message).
        # Every piece that is not a bar is read, in order; of a run of bars only the newest
        # training bar matters. A line can hold hundreds of redraws: they are told apart by
        # C-level calls (split, map of the bar regex), and only the newest is searched.
        if line[:1] == b"\r" and b"{" not in line and len(_BAR_OR_EMPTY.findall(line)) == line.count(b"\r"):
            self._newest_bar_of(line)
            return
        reader = self.reader
        if reader is not None and b"\x1b" not in line and b"{" not in line:
            taken = reader.feed_redraws(line, pos, out_records, out_events)
            if taken:
                self.stats.lines += taken
                return
        pieces = line.split(b"\r")
        bars: list[re.Match[bytes] | None] = list(map(_BAR_START.match, pieces))
        if b"{" in line:  # a bar glued to a dict is not a bar
            for k, p in enumerate(pieces):
                if bars[k] is not None and b"{" in p:
                    bars[k] = None
        start = 0
        off, at = pos, 0  # the offset of piece `at`
        for k in itertools.compress(range(len(pieces)), map(operator.not_, bars)):
            p = pieces[k]
            if not p.strip():
                continue
            self._newest_bar(pieces, start, k)
            off += sum(map(len, pieces[at:k])) + (k - at)
            at = k
            self.feed(p, off, out_records, out_events)
            start = k + 1
        self._newest_bar(pieces, start, len(pieces))

    def _newest_bar_of(self, line: bytes) -> None:
        """``_newest_bar`` over all the pieces of ``line``, walked from its end."""
        end = len(line)
        while end > 0:
            i = line.rfind(b"\r", 0, end)
            if self._took_bar(line[i + 1 : end]):
                return
            end = i

    def _newest_bar(self, pieces: list[bytes], a: int, b: int) -> None:
        """Take the newest training bar among ``pieces[a:b]`` (redraws and blanks)."""
        for k in range(b - 1, a - 1, -1):
            if self._took_bar(pieces[k]):
                return

    def _took_bar(self, piece: bytes) -> bool:
        """Take ``piece`` as the training bar's position, if it is that bar (an evaluation bar
        has a smaller total)."""
        m = _TQDM.search(piece) if b"/" in piece else None
        if m is not None:
            total = int(m.group(2))
            if self.train_total is None or total >= self.train_total:
                self._on_bar(int(m.group(1)), total, m.group(4))
                return True
        return False

    def _feed_batch(self, batch: list[tuple[int, bytes]], out_records: list[Item], out_events: list[Event]) -> None:
        self.stats.lines += len(batch)
        objs: list[object] | None = None
        if len(batch) > 1:
            joined = b"[" + b",".join(line for _, line in batch) + b"]"
            if b'"' not in joined and b"\\" not in joined:
                joined = joined.replace(b"'", b'"')
            try:
                objs = orjson.loads(joined)
            except orjson.JSONDecodeError:
                if b"nan" in joined or b"inf" in joined or b"NaN" in joined or b"Infinity" in joined:
                    try:
                        objs = orjson.loads(_BARE_NONFINITE.sub(rb'"\1\2"', joined))
                    except orjson.JSONDecodeError:
                        objs = None
            if objs is not None and len(objs) != len(batch):
                objs = None
        if objs is None:
            self.stats.lines -= len(batch)
            for off, line in batch:
                self.feed(line, off, out_records, out_events)
            return
        if self.blocks and len(objs) >= _MIN_BLOCK:
            self._feed_objects(batch, objs, out_records, out_events)
        else:
            self._feed_plain(batch, objs, out_records, out_events)

    def _feed_objects(
        self, batch: list[tuple[int, bytes]], objs: list[object], out_records: list[Item], out_events: list[Event]
    ) -> None:
        """Runs of objects with the same keys become blocks where they can (``_block``); the
        rest goes the record-by-record way."""
        n = len(objs)
        a = 0
        while a < n:
            first = objs[a]
            if type(first) is not dict:
                self._feed_plain(batch[a : a + 1], objs[a : a + 1], out_records, out_events)
                a += 1
                continue
            kt = tuple(first)
            b = a + 1
            while b < n:
                o = objs[b]
                if type(o) is not dict or len(o) != len(kt) or tuple(o) != kt:
                    break
                b += 1
            if b - a < _MIN_BLOCK or not self._block(kt, batch[a:b], objs[a:b], out_records):
                self._feed_plain(batch[a:b], objs[a:b], out_records, out_events)
            a = b

    def feed_closed(self, entries: Sequence[Closed], out_records: list[Item], out_events: list[Event]) -> None:
        """``_feed_objects`` for dicts some of which come as columns (a reader holding columns:
        an event file's stretches, a metrics table): a run of same-key dicts that holds columns
        (with the dicts of its keys just before and after them) goes to the block path as
        columns, with no dict made for it; the rest as dicts. The records are those the same
        dicts would give, in the same runs."""
        dicts: list[tuple[dict[str, object], int]] = []
        i = 0
        n = len(entries)
        while i < n:
            e = entries[i]
            if not isinstance(e, Columns):
                dicts.append(e)
                i += 1
                continue
            keys = e.keys
            k = len(dicts)
            while k > 0 and tuple(dicts[k - 1][0]) == keys:
                k -= 1
            run: list[Closed] = [*dicts[k:], e]
            del dicts[k:]
            self._feed_dicts(dicts, out_records, out_events)
            dicts = []
            i += 1
            while i < n:
                nxt = entries[i]
                if (nxt.keys if isinstance(nxt, Columns) else tuple(nxt[0])) != keys:
                    break
                run.append(nxt)
                i += 1
            self._feed_run(keys, run, out_records, out_events)
        self._feed_dicts(dicts, out_records, out_events)

    def _feed_dicts(self, dicts: list[tuple[dict[str, object], int]], out_records: list[Item], out_events: list[Event]) -> None:
        if dicts:
            self._feed_objects([(off, b"") for _, off in dicts], [obj for obj, _ in dicts], out_records, out_events)

    def _feed_run(self, keys: tuple[str, ...], run: list[Closed], out_records: list[Item], out_events: list[Event]) -> None:
        """A run of same-key dicts, some as columns, as one run of columns."""
        if len(run) == 1 and isinstance(run[0], Columns):
            cols, offsets = run[0].cols, run[0].offsets
        else:
            parts: list[list[Sequence[object]]] = [[] for _ in keys]
            flat: list[int] = []
            for e in run:
                if isinstance(e, Columns):
                    for part, col in zip(parts, e.cols):
                        part.append(col)
                    flat.extend(e.offsets)
                else:
                    for part, v in zip(parts, e[0].values()):
                        part.append((v,))
                    flat.append(e[1])
            cols = [list(itertools.chain.from_iterable(part)) for part in parts]
            offsets = flat
        plan = self._column_plan(keys) if len(offsets) >= _MIN_BLOCK else None
        if plan is not None and self._block_columns(plan, cols, offsets, out_records):
            return
        objs: list[object] = [dict(zip(keys, row)) for row in zip(*cols)]
        self._feed_plain([(off, b"") for off in offsets], objs, out_records, out_events)

    def _column_plan(self, kt: tuple[str, ...]) -> _ColumnPlan | None:
        plan = self._cplans.get(kt)
        if plan is None and kt not in self._cplans:
            plan = None
            steps = [j for j, k in enumerate(kt) if k in _NOT_PLAIN]
            if len(steps) <= 1 and all(kt[j] in _BLOCK_STEP_KEYS for j in steps):
                metrics = [(j, canonical(k)) for j, k in enumerate(kt) if k != "epoch" and j not in steps]
                if self._classify({name: 0.0 for _, name in metrics}) is Kind.TRAIN:
                    plan = _ColumnPlan(
                        tuple(name for _, name in metrics),
                        tuple(j for j, _ in metrics),
                        kt.index("epoch") if "epoch" in kt else -1,
                        steps[0] if steps else -1,
                    )
            if len(self._cplans) < 64:
                self._cplans[kt] = plan
        return plan

    def _block(
        self, kt: tuple[str, ...], lines: list[tuple[int, bytes]], objs: list[object], out_records: list[Item]
    ) -> bool:
        """Emit a run of train dicts with the same keys as one Block, when that is exactly what
        they would give one by one: every value a number, steps (given or inferred) rising,
        epochs not going back (a resume is placed record by record). False: nothing done."""
        plan = self._column_plan(kt)
        if plan is None:
            return False
        cols = list(zip(*map(dict.values, objs)))  # type: ignore[arg-type]
        return self._block_columns(plan, cols, [off for off, _ in lines], out_records)

    def _block_columns(
        self, plan: _ColumnPlan, cols: Sequence[Sequence[Any]], offsets: Iterable[int], out_records: list[Item]
    ) -> bool:
        """``_block`` for records already laid out as columns (``cols[j]``: the values of key j
        of the plan's key set, one per record), as an event file's stretches are read."""
        columns = []
        for j in plan.metric_idx:
            c = _column(cols[j])
            if c is None:
                return False
            columns.append(c)
        epochs = None
        if plan.epoch_idx >= 0:
            epochs = _column(cols[plan.epoch_idx])
            if epochs is None:
                return False
        n = len(cols[0])
        if plan.step_idx >= 0:
            try:
                steps = array("q", cols[plan.step_idx])
            except (TypeError, OverflowError):
                return False
            if steps[0] < 0 or max(steps) >= 10**15:
                return False
            prev = self._prev_step
            if (prev is not None and steps[0] <= prev) or not all(map(operator.lt, steps, steps[1:])):
                return False  # a resume: record by record, it raises its event
            self._prev_step = steps[-1]
            inferred = False
        else:
            # HF stdout: numbered in logging order once the interval is known (see _on_train)
            iv = self.interval
            if iv is None or self._tentative is not None:
                return False
            if epochs is not None:
                last = self.last_epoch
                if (last is not None and epochs[0] < last - 1e-6) or not all(map(operator.ge, epochs[1:], epochs)):
                    return False
            k = self.ordinal
            self._bar_went_back = False
            if epochs is not None:
                self._remember_epochs(epochs, k + 1)
            self.ordinal = k + n
            steps = array("q", range((k + 1) * iv, (k + n) * iv + 1, iv))
            inferred = True
        self.last_train_step = steps[-1]
        if epochs is not None:
            self.last_epoch = epochs[-1]
        self.stats.records += n
        out_records.append(Block(plan.names, steps, tuple(columns), epochs, array("q", offsets), inferred))
        return True

    def _feed_plain(
        self, batch: list[tuple[int, bytes]], objs: list[object], out_records: list[Item], out_events: list[Event]
    ) -> None:
        on_object = self._on_object
        plans = self._plans
        stats = self.stats
        for (off, _line), obj in zip(batch, objs):
            if type(obj) is not dict:
                stats.skip(b"[not a dict]")
                continue
            # Every train line of a run has the same keys: work out once per key set which are
            # metrics and what they are called, then just read the values.
            kt = tuple(obj)
            plan = plans.get(kt)
            if plan is None:
                plan = plans[kt] = self._plan(kt) if len(plans) < 64 else ()
            if not plan:
                on_object(obj, off, out_records, out_events)
                continue
            metrics: dict[str, float] = {}
            for raw, name in plan:
                v = obj[raw]
                if type(v) is not float:
                    v = to_float(v)
                    if v is None:
                        break
                metrics[name] = v
            else:
                ev = obj.get("epoch")
                stats.records += 1
                self._on_train(metrics, None, ev if type(ev) is float else to_float(ev), off, out_records, out_events)
                continue
            on_object(obj, off, out_records, out_events)

    def _plan(self, keys: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        """(raw key, canonical name) of each metric, for a key set that is a plain train record
        without a step field (the same decision as the block path's, ``_column_plan``)."""
        cp = self._column_plan(keys)
        if cp is None or cp.step_idx >= 0:
            return ()
        return tuple((keys[j], name) for j, name in zip(cp.metric_idx, cp.names))

    # -- records ----------------------------------------------------------------------------
    @staticmethod
    def _record_candidate(seg: bytes, start: int) -> bool:
        # A dict repr at the start of a line, or after a logger/launcher prefix, or glued to a
        # tqdm bar; text that merely mentions a brace inside prose is not a record.
        nxt = seg[start + 1 : start + 2]
        return nxt in (b"'", b'"', b"}", b" ")

    def feed_object(
        self, obj: dict[str, object], offset: int, out_records: list[Item], out_events: list[Event]
    ) -> None:
        """Take one already-decoded record object (a ``trainer_state.json`` history entry), as if
        its line had been read at ``offset``. ``obj`` is not changed: callers keep it to compare
        with the next rewrite of the file."""
        self._on_object(dict(obj), offset, out_records, out_events)

    def _on_object(
        self, obj: dict[str, object], offset: int, out_records: list[Item], out_events: list[Event]
    ) -> None:
        # Takes ownership of ``obj`` (position fields are popped off it): only for dicts this
        # parser decoded itself; others come in through feed_object().
        if "log_history" in obj and isinstance(obj.get("log_history"), list):
            # ms-swift's final object (and a trainer_state.json pasted as one line)
            self.finished = True
            out_events.append(Event(EventKind.FINISHED, _("final summary written"), offset))
            return
        if self.format == UNKNOWN:
            self.format = self._detect(obj)
        metrics: dict[str, float] = {}
        step: int | None = None
        total: int | None = None
        eta: float | None = None
        # Position fields first, looked up by name (a handful of dict probes) rather than
        # tested against every key: this runs once per record of a 300k-record log.
        ev = obj.pop("epoch", None)
        epoch = ev if type(ev) is float else to_float(ev)
        for k in _STEP_KEYS:
            if k in obj:
                v = obj.pop(k)
                if isinstance(v, str) and "/" in v:  # ms-swift megatron: "iteration": "12/189"
                    m = _SWIFT_STEPS.match(v)
                    if m:
                        step, total = int(m.group(1)), int(m.group(2))
                    continue
                f = to_float(v)
                if f is not None and math.isfinite(f) and 0 <= f < 1e15:
                    step = int(f)
        if "total_steps" in obj:
            f = to_float(obj.pop("total_steps"))
            if f is not None and math.isfinite(f) and 0 < f < 1e15:
                total = int(f)
        gm = obj.pop("global_step/max_steps", None)
        if isinstance(gm, str):
            m = _SWIFT_STEPS.match(gm)
            if m:
                step, total = int(m.group(1)), int(m.group(2))
        pct = obj.pop("percentage", None)
        rt = obj.pop("remaining_time", None)
        if isinstance(rt, str):
            eta = parse_duration(rt)
        names = self._names
        for k, v in obj.items():
            if type(v) is float:
                val: float = v
            else:
                g = to_float(v)
                if g is None:
                    continue
                val = g
            name = names.get(k)
            if name is None:
                name = canonical(k)
                if len(names) < 4096:
                    names[k] = name
            metrics[name] = val
        if total is not None:
            self.progress_total = total
            self.progress_step = step
            self.eta_seconds = eta
            # LLaMA-Factory and ms-swift count their own progress: at 100% the loop is done.
            # (offset + 1: the event follows its own record, which would otherwise reopen the run)
            if (step is not None and step >= total) or (to_float(pct) or 0.0) >= 100.0:
                self.finished = True
                out_events.append(Event(EventKind.FINISHED, _("progress at 100%"), offset + 1, step))
        kind = self._classify(metrics)
        if kind is None:
            if step is None and total is None and epoch is None:
                self.stats.skip(repr(list(obj)[:6]).encode())  # braces, but no metric we can read
            return
        self.stats.records += 1
        if kind is Kind.SUMMARY:
            self.finished = True
            self.flush(out_records)
            rec = Record(Kind.SUMMARY, self.last_train_step or 0, metrics, epoch, offset)
            out_records.append(rec)
            out_events.append(Event(EventKind.FINISHED, _("training finished"), offset, rec.step))
            return
        if kind is Kind.TRAIN:
            self._on_train(metrics, step, epoch, offset, out_records, out_events)
        elif step is not None:
            out_records.append(Record(Kind.EVAL, step, metrics, epoch, offset))
        else:
            # An evaluation runs right after the train log of its step (or a few steps later
            # when eval_steps is not a multiple of logging_steps: its epoch tells).
            rec = Record(Kind.EVAL, 0, metrics, epoch, offset, True)
            if self._pending:
                self._pending.append(rec)
            else:
                rec.step = self._eval_step(epoch, self.last_train_step, self.last_epoch)
                out_records.append(rec)

    def _detect(self, obj: dict[str, object]) -> str:
        if "current_steps" in obj:
            self._names.update(_LLAMA_FACTORY_NAMES)  # (its own name for a TRL key)
            return LLAMA_FACTORY
        if "global_step/max_steps" in obj or "train_speed(s/it)" in obj or "train_speed(iter/s)" in obj:
            return MS_SWIFT
        return self.format

    @staticmethod
    def _classify(metrics: dict[str, float]) -> Kind | None:
        if not metrics:
            return None
        if "loss" not in metrics and "grad_norm" not in metrics:
            if "train_runtime" in metrics or ("train_loss" in metrics and "train_samples_per_second" in metrics):
                return Kind.SUMMARY
            if "eval_loss" in metrics or all(k.startswith("eval_") for k in metrics):
                return Kind.EVAL
        if "loss" in metrics or "grad_norm" in metrics or "learning_rate" in metrics:
            return Kind.TRAIN
        return None

    def _on_train(
        self,
        metrics: dict[str, float],
        step: int | None,
        epoch: float | None,
        offset: int,
        out_records: list[Item],
        out_events: list[Event],
    ) -> None:
        if step is not None:
            rec = Record(Kind.TRAIN, step, metrics, epoch, offset)
            self._note_resume(rec, out_events)
            self.last_train_step = step
            if epoch is not None:
                self.last_epoch = epoch
            out_records.append(rec)
            return
        # HF stdout: no step on the line. Records are numbered in logging order (a resumed run
        # is put back where its epoch says) and step = number x logging interval.
        rec = Record(Kind.TRAIN, 0, metrics, epoch, offset, True)
        held = self._tentative
        if held is not None:
            self._tentative = None
            self._settle(held, self._confirms(held, epoch), out_records, out_events)
        if self.finished:
            # A train record after the final summary: a finished run logs nothing more, so this
            # is another train() writing into the same file (a notebook, a script re-run with
            # >>), numbered from its start whatever its epoch says.
            self.finished = False
            self.flush(out_records)
            self._epochs = array("d")
            self._ordinals = array("q")
            self.last_epoch = None
            self.train_total = None
            self.ordinal = 0
            if self._guessed:  # measured on the old run's bars: the new run's are measured afresh
                self.interval, self._guessed = None, False
                self.bar_step = None
                self._burst = _Burst()
            again = self.interval or 1
            out_events.append(Event(EventKind.RESUMED, _("steps restart at {step}").format(step=again), offset, again))
        last = self.last_epoch
        if epoch is not None and last is not None and epoch < last - 1e-6:
            # Epoch went backwards. A resumed run re-logs the epochs it logged before; a stray
            # or corrupted line does not. Confirm by a training bar that went back (the new
            # process's bar), or by the next record landing on the old grid.
            self._tentative = rec
            if self._bar_went_back:
                self._tentative = None
                self._settle(rec, True, out_records, out_events)
            return
        self._place(rec, self.ordinal + 1, out_records)

    def _confirms(self, held: Record, next_epoch: float | None) -> bool:
        if self._bar_went_back:
            return True
        if next_epoch is None or held.epoch is None:
            return False
        eps = self._epochs
        i = bisect_left(eps, held.epoch - 1e-6)
        return i + 1 < len(eps) and abs(eps[i + 1] - next_epoch) <= 1e-6 + 1e-4 * abs(next_epoch)

    def _settle(self, rec: Record, resumed: bool, out_records: list[Item], out_events: list[Event]) -> None:
        k = self.ordinal + 1
        if resumed and rec.epoch is not None:
            eps = self._epochs
            i = bisect_left(eps, rec.epoch - 1e-6)
            if i < len(eps) and abs(eps[i] - rec.epoch) > 1e-6 + 1e-4 * abs(rec.epoch):
                i = 0  # off the old epochs' grid: another run (other data or batch size) from its start
            k = (self._ordinals[i - 1] + 1) if i > 0 else 1
            if k == 1:
                self.train_total = None  # a new run's training bar may count fewer steps than the old one's
            del eps[i:]
            del self._ordinals[i:]
            # the step it goes back to, for the run to tell a resume from a new run (its first
            # steps again); with the interval not measured yet, only "the first record" is sure
            again = k * self.interval if self.interval else (1 if k == 1 else None)
            out_events.append(Event(EventKind.RESUMED, _("resumed at epoch {epoch:g}").format(epoch=rec.epoch), rec.offset, again))
        self._place(rec, k, out_records)

    def _place(self, rec: Record, k: int, out_records: list[Item]) -> None:
        self._bar_went_back = False
        if rec.epoch is not None:
            self._remember_epochs((rec.epoch,), k)
            self.last_epoch = rec.epoch
        self.ordinal = k
        rec.step = k
        if self.interval is None:
            if not self._burst.open:
                self._burst.open = True
                self._burst.bar = self.bar_step
                self._burst.after_bar = None
                self._burst.waited = False
                self._burst.cleared, self._cleared = self._cleared, False
            self._pending.append(rec)
            return
        rec.step = k * self.interval
        self.last_train_step = rec.step
        out_records.append(rec)

    def _remember_epochs(self, epochs: Sequence[float], first: int) -> None:
        """The epochs of step-less train records numbered ``first``, ``first + 1``, ... (to place
        a resume). A resume goes back to the last checkpoint, not to the start of a week-long
        run: past ``_EPOCH_MEMORY`` the oldest half is forgotten, so memory stays flat."""
        self._epochs.extend(epochs)
        self._ordinals.extend(range(first, first + len(epochs)))
        while len(self._epochs) > _EPOCH_MEMORY:
            del self._epochs[: _EPOCH_MEMORY // 2]
            del self._ordinals[: _EPOCH_MEMORY // 2]

    def _end_burst(self, out_records: list[Item]) -> None:
        if self._burst.open:
            self._burst.open = False
            if self.interval is None and self._pending and self._burst.bar:
                self._burst.waited = True  # (what follows the burst has been seen: nothing to wait for)
                self.flush(out_records, final=True)

    def flush(self, out_records: list[Item], final: bool = True) -> None:
        """Release records waiting for the logging interval to be known.

        ``final`` is False when a read stopped only because its byte budget ran out: records
        then wait for the end of their stdout burst, where the interval can be measured.
        """
        reader = self.reader
        if reader is not None:
            reader.flush(out_records, final)
            if reader.progress_step is not None:
                self.progress_step = reader.progress_step
                self.progress_total = reader.total
            if reader.eta_seconds is not None:
                self.eta_seconds = reader.eta_seconds
        if final and self._tentative is not None:
            held, self._tentative = self._tentative, None
            self._settle(held, self._bar_went_back, out_records, [])
        if not self._pending:
            return
        if self.interval is None and not final and self.train_total is not None:
            return  # bars came first: wait for the burst's end to measure the interval
        if self.interval is None and self._single_burst() and self._burst.after_bar is None and not self._burst.waited:
            # A lone dict at the end of what was written: its redraw is a moment behind it.
            self._burst.waited = True
            return
        # (No bar before the records: there will be none to measure by, so don't hold them.)
        if self.interval is None:
            self.interval = self._guess_interval()
            self._guessed = True
        interval = self.interval
        last: int | None = self.last_train_step
        last_epoch = self.last_epoch
        for rec in self._pending:
            if rec.kind is Kind.TRAIN:
                rec.step = rec.step * interval
                last = rec.step
                last_epoch = rec.epoch
            else:
                rec.step = self._eval_step(rec.epoch, last, last_epoch)
            out_records.append(rec)
        self.last_train_step = last
        self._pending.clear()

    def _eval_step(self, epoch: float | None, last_step: int | None, last_epoch: float | None) -> int:
        base = last_step or 0
        if epoch and last_step and last_epoch and self.interval:
            est = round(epoch * last_step / last_epoch)
            if base <= est < base + self.interval:
                return est
        return base

    def _single_burst(self) -> bool:
        """The burst is one train record that tqdm.write printed between clearing the training
        bar and redrawing it: stdout is not buffered, and the redraw is at the record's step."""
        return (
            self._burst.cleared
            and self._burst.bar is not None
            and sum(r.kind is Kind.TRAIN for r in self._pending) == 1
        )

    def see_bars_after(self, text: bytes) -> None:
        """``text`` was written right after the records read so far (the next line, or the
        partial line at the end of the file): note the first training bar in it, the redraw
        that tqdm.write makes after printing a dict."""
        if self.interval is not None or not self._burst.open or self._burst.after_bar is not None:
            return
        for piece in text.split(b"\r", 8)[:8]:
            if not piece.strip():
                continue
            step = self._training_bar(piece, len(piece))
            if step is not None:
                self._burst.after_bar = step
            return

    def _guess_interval(self) -> int:
        after = self._burst.after_bar
        if after and self.ordinal and self._single_burst():
            # Unbuffered stdout: the redraw after the dict is at the dict's step.
            return max(1, round(after / self.ordinal))
        # The training bar is written unbuffered to stderr while the dict lines sit in stdout's
        # buffer, so records arrive in bursts behind the bar: at the end of a burst the bar's
        # position over the records logged so far is the logging interval.
        bar = self._burst.bar or self.bar_step
        if bar and self.ordinal:
            return max(1, round(bar / self.ordinal))
        return 1

    def _note_resume(self, rec: Record, out_events: list[Event]) -> None:
        prev = self._prev_step
        if prev is not None and rec.step <= prev:
            out_events.append(Event(EventKind.RESUMED, _("steps restart at {step}").format(step=rec.step), rec.offset, rec.step))
        self._prev_step = rec.step

    # -- text lines -------------------------------------------------------------------------
    def _on_text(self, seg: bytes, offset: int, out_records: list[Item], out_events: list[Event]) -> None:
        # A line format's lines go to its reader (detected from the first line that is one).
        reader = self.reader
        if reader is None and self.format == UNKNOWN:
            found = formats.detect(seg)
            if found is not None:
                self.format = found.name
                reader = self.reader = found.reader(self.stats)
        if reader is not None and reader.feed(seg, offset, out_records, out_events):
            return
        if self._tb.open:
            if self._traceback_line(seg, offset, out_events):
                return
        m = _TQDM.search(seg)
        if m is not None:
            if _BAR_START.match(seg):  # bars with a description are dataset maps, downloads...
                self._on_bar(int(m.group(1)), int(m.group(2)), m.group(4))
            return
        if _TRACEBACK in seg:
            self.flush(out_records)
            self._tb.open = True
            self._tb.offset = offset
            self._tb.lines = []
            return
        if b"Total" in seg or b"max_steps" in seg:
            t = _TOTAL_STEPS.search(seg)
            if t is not None:
                total = int(t.group(1).replace(b",", b""))
                if total > 0:
                    self.train_total = max(self.train_total or 0, total)
                    out_events.append(Event(EventKind.MAX_STEPS, "", offset, None, total))
                return
        f = _FATAL.search(seg)
        if f is not None:
            self.flush(out_records)
            out_events.append(Event(EventKind.CRASHED, clean_text(seg.strip()[:300].decode("utf-8", "replace")), offset))
            return
        if _COMPLETED.match(seg):
            # The HF Trainer's last words after train() (and so LLaMA-Factory's running_log.txt).
            self.flush(out_records)
            self.finished = True
            out_events.append(Event(EventKind.FINISHED, _("training completed"), offset, self.last_train_step))

    def close_traceback(self, out_events: list[Event]) -> None:
        """The file ended inside a traceback and stayed that way (the process died while
        printing it, or its output was cut): a crash all the same, named by its last line."""
        if not self._tb.open:
            return
        self._tb.open = False
        last = next((ln.strip() for ln in reversed(self._tb.lines) if ln.strip()), b"")
        where = clean_text(last[:200].decode("utf-8", "replace"))
        msg = "traceback cut off" + (f" at: {where}" if where else "")
        out_events.append(Event(EventKind.CRASHED, msg, self._tb.offset))

    @property
    def in_traceback(self) -> bool:
        return self._tb.open

    def close_partial(self, partial: bytes, offset: int, out_events: list[Event]) -> None:
        """The file ended without a line break on a crash's first words (``Traceback (most
        recent call last):``, ``Error in sys.excepthook:``, a fatal error) and stayed that way:
        the process died while printing them."""
        seg = _ANSI.sub(b"", partial).strip()
        if _TRACEBACK in seg:
            out_events.append(Event(EventKind.CRASHED, "traceback cut off", offset))
        elif _FATAL.search(seg) is not None:
            out_events.append(Event(EventKind.CRASHED, clean_text(seg[:300].decode("utf-8", "replace")), offset))

    def _traceback_line(self, seg: bytes, offset: int, out_events: list[Event]) -> bool:
        """Inside a traceback: True when the segment belonged to it."""
        if seg[:1] == b"[":
            seg = _RANK_PREFIX.sub(b"", seg, 1)  # torchrun's "[rank0]: " before each line
        if seg[:1] in (b" ", b"\t") or not seg.strip():
            self._tb.lines.append(seg)
            return True
        if seg.startswith(_TRACKERS):
            # a tracker's shutdown lines (wandb: ..., swanlab: ...) printed into a crash's
            # traceback, or after one that was cut: still the crash
            return True
        m = _ERROR_LINE.match(seg.strip())
        if m is not None:
            self._tb.open = False
            msg = clean_text(m.group(1)[:300].decode("utf-8", "replace"))
            seen = (msg, self.last_train_step)
            if seen != self._tb.error:  # (every rank prints the same error: one crash)
                self._tb.error = seen
                out_events.append(Event(EventKind.CRASHED, msg, self._tb.offset))
            return True
        if seg.startswith(b"During handling") or seg.startswith(b"The above exception"):
            return True
        # Not part of the traceback after all (a handled exception printed by a library).
        self._tb.open = False
        return False

    def _on_bar(self, n: int, total: int, eta_text: bytes) -> None:
        # The training bar is told from evaluation bars (which count eval batches) by its total:
        # the largest one seen.
        if self.train_total is None or total > self.train_total:
            self.train_total = total
        elif total != self.train_total:
            return
        if self.bar_step is not None and n < self.bar_step:
            self._bar_went_back = True
        self.bar_step = n
        self.progress_step = n
        self.progress_total = total
        self._eta_text = eta_text

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left as the log tells it (tqdm's estimate or a framework's remaining_time)."""
        if self._eta is not None:
            return self._eta
        t = self._eta_text
        return parse_duration(t.decode()) if t and b"?" not in t else None

    @eta_seconds.setter
    def eta_seconds(self, value: float | None) -> None:
        self._eta = value
        self._eta_text = b""
