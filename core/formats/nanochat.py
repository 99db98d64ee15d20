"""nanochat's speedrun stdout (base training, midtraining, SFT in one log).

Train lines: ``step 00764/05742 (13.31%) | loss: 3.02 | lrm: 1.00 | dt: 1033.49ms | tok/sec:
22,159 | mfu: 43.3 | total time: 13.10m`` (base; newer versions add ``bf16_mfu``, ``epoch``,
``eta``), ``step 00001 (0.17%) | ...`` (midtraining, no total) and ``Step 00000/00682 | Training
loss: 0.747464| lrm: 1.000000| num_tokens: 8,804`` (older SFT). Evaluations: ``Step N |
Validation bpb: X`` or ``Step N | Validation loss: X``, followed at the same step by benchmark
lines (``CORE metric: X``, ``ChatCORE: X | ChatCORE_cat: Y``, ``mmlu_acc: X, arc_easy_acc: Y``)
that join that evaluation. Each phase counts its steps from the start again: a new phase is
announced as a RESUMED event and its total, when printed, as the new max_steps.
"""

from __future__ import annotations

import re

from sfttop.core.i18n import N_
from sfttop.core.records import Event, EventKind, Item

from .base import MAX_FIELDS, PREFIX, LineReader, number

NAME = "nanochat"
DESCRIPTION = (
    "`step N/M (p%) | loss: X | lrm: Y | dt: Zms | tok/sec: 22,159 | mfu: W | ...` and the midtraining "
    "`step N (p%) | ...` (train: loss, lr_multiplier, step_time_ms, tokens_per_second, mfu), "
    "`Step N/M | Training loss: X| lrm: Y| num_tokens: Z` (SFT train), `Step N | Validation bpb: X` / "
    "`Validation loss: X` (eval: eval_bpb / eval_loss) with `CORE metric`, `ChatCORE`, `mmlu_acc`... "
    "joined to the eval of their step; each phase's restarting step counter is a RESUMED event"
)

_TRAIN = re.compile(PREFIX + rb"(?:step (\d+)(?:/(\d+))? \([\d.]+%\)|Step (\d+)/(\d+)) ?\|")
_EVAL = re.compile(PREFIX + rb"Step (\d+) \|")
_DETECT = re.compile(PREFIX + rb"(?:step \d+(?:/\d+)? \([\d.]+%\) \| loss: |Step \d+(?:/\d+)? \| (?:Validation|Training loss))")
_ETA = re.compile(rb"\|\s*eta: ([\d.]+)m")
_SKIP = frozenset((b"epoch", b"total time", b"eta"))  # dataset pass count and wall clock: not metrics


def detect(seg: bytes) -> bool:
    return b"tep " in seg and _DETECT.match(seg) is not None


def _fields(rest: bytes) -> tuple[tuple[bytes, ...], tuple[float, ...]] | None:
    keys: list[bytes] = []
    vals: list[float] = []
    pieces = rest.split(b"|")
    if len(pieces) > MAX_FIELDS:
        return None
    for f in pieces:
        k, sep, v = f.partition(b":")
        if not sep:
            if f.strip():
                return None
            continue
        k = k.strip()
        if k in _SKIP:
            continue
        x = number(v)
        if x is None:
            return None
        keys.append(k)
        vals.append(x)
    return tuple(keys), tuple(vals)


class Reader(LineReader):
    restart = N_("a new phase: steps restart at {step}")
    drop = _SKIP

    def eta(self, line: bytes) -> float | None:
        m = _ETA.search(line)
        return float(m.group(1)) * 60 if m is not None else None

    def feed(self, seg: bytes, offset: int, out_records: list[Item], out_events: list[Event]) -> bool:
        if b"tep " not in seg:
            return self.text_event(seg, offset, out_records, out_events)
        m = _TRAIN.match(seg)
        if m is not None:
            # Fields split by C-level calls; the values (thousands separators and units gone)
            # are converted a run of lines at a time (see LineReader.train).
            body = seg[m.end() :].replace(b",", b"")
            n = body.count(b"|") + 1
            parts = body.replace(b"|", b":").split(b":") if n <= MAX_FIELDS else []
            if len(parts) != 2 * n:
                self.stats.skip(seg)
                return True
            step = int(m.group(1) or m.group(3))
            total = m.group(2) or m.group(4)
            if total is not None and int(total) != self.total and int(total) > 0:
                self.total = int(total)
                self.event(Event(EventKind.MAX_STEPS, "", offset, None, self.total), out_records, out_events)
            elif total is None and self.prev_step is not None and step <= self.prev_step:
                self.total = None  # a phase that prints no total (midtraining): the last phase's is not its own
            self.last_line = seg
            values = b",".join(parts[1::2]).translate(None, b"ms%")
            self.train(step, self.names(tuple(parts[0::2])), values, offset, out_records, out_events)
            return True
        m = _EVAL.match(seg)
        if m is not None:
            got = _fields(seg[m.end() :].replace(b", ", b"|"))
            if got is None or not got[0]:
                return False  # some other "Step N | ..." message
            keys = tuple(b"eval_" + (k[11:] if k.startswith(b"Validation ") else k) for k in got[0])
            validation = got[0][0].startswith(b"Validation ")
            self.eval(int(m.group(1)), dict(zip(self.names(keys), got[1])), offset, out_records, not validation)
            return True
        return self.text_event(seg, offset, out_records, out_events)
