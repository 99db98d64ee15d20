"""Megatron-LM, Megatron-DeepSpeed and NeMo-Megatron stdout.

``training_log`` prints one line per logged iteration on the last rank::

     [2026-04-15 11:19:02.524672] iteration        1/     500 | consumed samples: 80 | ... |
       learning rate: 6.000000E-06 | global batch size: 80 | lm loss: 1.218301E+01 |
       loss scale: 1.0 | grad norm: 11.908 | number of skipped iterations: 0 | ...

(one line), behind srun's task label (``55: ``) and torchrun's tee prefix (``[default0]: ``) when
launched that way. A key whose average is NaN is left out (``lm loss`` is missing on a skipped
iteration); ``grad norm: nan`` is printed as is. Evaluation prints
``validation loss at iteration N | lm loss value: X | lm loss PPL: Y |``. DeepSpeed's pipeline
engine adds ``steps: N loss: X iter time (s): Y samples/sec: Z`` before each iteration line: the
same step again, so it is a record only in a log that has no iteration lines.
"""

from __future__ import annotations

import re

from sfttop.core.records import Event, EventKind, Item
from sfttop.core.sanitize import clean_text

from .base import MAX_FIELDS, PREFIX, LineReader, Stats, number

NAME = "megatron"
DESCRIPTION = (
    "`iteration N/ M | key: value | ...` (train; `N/ M` gives max_steps), "
    "`validation loss at iteration N | lm loss value: X | lm loss PPL: Y` (eval), "
    "DeepSpeed's `steps: N loss: X iter time (s): Y` (train, only when there are no iteration lines); "
    "srun/torchrun prefixes, timestamps and ANSI colour are skipped; `exiting program` and "
    "`[after training is done]` finish the run, a Python stack dump marks a hang"
)

_ITER = re.compile(rb"\biteration\s+(\d+)\s*/\s*(\d+)\s*\|")
_VALID = re.compile(rb"\bvalidation loss at iteration\s+(\d+)[^|]*\|")
_DS_STEPS = re.compile(PREFIX + rb"steps: (\d+) loss: (\S+) iter time \(s\): (\S+) samples/sec: (\S+)")
# exit_interval / exit_duration_in_mins end a run on purpose; a signal (scancel, a time limit)
# stops it short.
_FINISHED = re.compile(rb"\bexiting program (?:at iteration|after [\d.]+ minutes)|\[after training is done\]")
_SIGNALLED = re.compile(rb"\bexiting program after receiving (SIG\w+)")
_DETECT = re.compile(
    rb"\biteration\s+\d+\s*/\s*\d+\s*\||\bvalidation loss at iteration\s+\d+|" + PREFIX + rb"steps: \d+ loss: "
)
_PREFIX = re.compile(PREFIX)
_DS_KEYS = (b"loss", b"iter time (ms)", b"samples/sec")


def detect(seg: bytes) -> bool:
    return (b"iteration" in seg or b"steps:" in seg) and _DETECT.search(seg) is not None


def fields(rest: bytes) -> tuple[tuple[bytes, ...], tuple[float, ...]] | None:
    """The ``key: value`` fields of ``rest`` (``|``-separated): the keys as printed (padding
    included) and the values; None when a value is not a number or a piece is not one field.

    Every field ends with ``|``: what follows the last one is not a field (another rank's output
    glued to the line, or a line cut short) and is left out. Split and converted by C-level
    calls only (this runs once per line of a long pretraining log): with one colon in each
    piece, keys and values alternate once the bars are colons too."""
    parts = _pieces(rest)
    if parts is None:
        return None
    try:
        vals = tuple(map(float, parts[1::2]))
    except ValueError:
        got = tuple(map(number, parts[1::2]))
        if None in got:
            return None
        vals = got  # type: ignore[assignment]
    return tuple(parts[0::2]), vals


def _unvalued(key: bytes) -> bytes:
    """A validation key without the `` value`` Megatron appends (``lm loss value`` -> ``lm loss``)."""
    return key[:-6] if key.endswith(b" value") else key


def raw_fields(rest: bytes) -> tuple[tuple[bytes, ...], bytes] | None:
    """``fields`` without converting the values: the keys, and the values joined by commas (for
    ``LineReader.train`` to convert a run of lines at a time)."""
    parts = _pieces(rest)
    if parts is None:
        return None
    return tuple(parts[0::2]), b",".join(parts[1::2])


def _pieces(rest: bytes) -> list[bytes] | None:
    """Keys and values alternating (``fields``' split), or None when a piece is not one field."""
    end = rest.rfind(b"|")
    body = rest[:end]
    n = body.count(b"|") + 1
    if end < 0 or n > MAX_FIELDS:
        return None
    parts = body.replace(b"|", b":").split(b":")
    return parts if len(parts) == 2 * n else None


class Reader(LineReader):
    def __init__(self, stats: Stats) -> None:
        super().__init__(stats)
        self._iterations = False  # iteration lines seen: DeepSpeed's steps lines are copies
        self._ds_held: tuple[int, tuple[float, ...], int] | None = None
        self._ds_only = False

    def feed(self, seg: bytes, offset: int, out_records: list[Item], out_events: list[Event]) -> bool:
        at = seg.find(b"iteration")
        if at >= 0:
            m = _ITER.match(seg, at)  # the line's first "iteration" is the header's
            if m is not None:
                return self._iteration(m, seg, offset, out_records, out_events)
            m = _VALID.search(seg)
            if m is not None:
                got = fields(seg[m.end() :])
                if got is None or not got[0]:
                    self.stats.skip(seg)
                    return True
                keys = tuple(b"eval_" + _unvalued(k.strip()) for k in got[0])
                self.eval(int(m.group(1)), dict(zip(self.names(keys), got[1])), offset, out_records, False)
                return True
        if b"steps: " in seg:
            d = _DS_STEPS.match(seg)
            if d is not None:
                return self._ds_steps(d, offset, out_records, out_events)
        if b"exiting program" in seg or b"after training is done" in seg:
            msg = clean_text(_PREFIX.sub(b"", seg).strip()[:200].decode("utf-8", "replace"))
            if _FINISHED.search(seg) is not None:
                self.event(Event(EventKind.FINISHED, msg, offset, self.prev_step), out_records, out_events)
                return True
            if _SIGNALLED.search(seg) is not None:
                self.event(Event(EventKind.CRASHED, msg, offset, self.prev_step), out_records, out_events)
                return True
        return self.text_event(seg, offset, out_records, out_events)

    def _iteration(
        self, m: re.Match[bytes], seg: bytes, offset: int, out_records: list[Item], out_events: list[Event]
    ) -> bool:
        got = raw_fields(seg[m.end() :])
        if got is None:
            self.stats.skip(seg)
            return True
        self._iterations = True
        self._ds_held = None
        total = int(m.group(2))
        if total != self.total and total > 0:
            self.total = total
            self.event(Event(EventKind.MAX_STEPS, "", offset, None, total), out_records, out_events)
        self.train(int(m.group(1)), self.names(got[0]), got[1], offset, out_records, out_events)
        return True

    def _ds_steps(self, d: re.Match[bytes], offset: int, out_records: list[Item], out_events: list[Event]) -> bool:
        if self._iterations:
            return True  # the iteration line that follows is the record
        loss, secs, sps = number(d.group(2)), number(d.group(3)), number(d.group(4))
        if loss is None or secs is None or sps is None:
            self.stats.skip(d.group(0))
            return True
        row = (int(d.group(1)), (loss, secs * 1000, sps), offset)
        held, self._ds_held = self._ds_held, row
        if held is not None:
            self._ds_only = True  # two in a row with no iteration line between them
            self.train(held[0], self.names(_DS_KEYS), held[1], held[2], out_records, out_events)
        if self._ds_only:
            self._ds_held = None
            self.train(row[0], self.names(_DS_KEYS), row[1], row[2], out_records, out_events)
        return True
