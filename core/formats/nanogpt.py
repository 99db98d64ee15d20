"""nanoGPT's ``train.py`` stdout.

``iter 100: loss 2.3456, time 123.45ms, mfu 31.20%`` every ``log_interval`` iterations and
``step 2000: train loss 1.0123, val loss 1.1456`` every ``eval_interval``. The running MFU is
``-1`` until five iterations have been timed, printed ``mfu -100.00%``: not a measurement, so
left out. Forks add a unit after the losses (``loss 2.58 BPC``).
"""

from __future__ import annotations

import re

from sfttop.core.records import Event, Item

from .base import PREFIX, LineReader, number

NAME = "nanogpt"
DESCRIPTION = (
    "`iter N: loss X, time Yms, mfu Z%` (train: loss, step_time_ms, mfu; the `mfu -100.00%` "
    "placeholder of the first iterations is dropped), `step N: train loss X, val loss Y` (eval: "
    "eval_train_loss, eval_loss)"
)

_NUM = rb"([-+]?(?:nan|inf|[\d.]+(?:[eE][-+]?\d+)?))"
_UNIT = rb"(?:\s+[A-Za-z]+)?"
_ITER = re.compile(PREFIX + rb"iter (\d+): loss " + _NUM + _UNIT + rb", time " + _NUM + rb"ms(?:, mfu " + _NUM + rb"%)?\s*$")
_EVAL = re.compile(PREFIX + rb"step (\d+): train loss " + _NUM + _UNIT + rb", val loss " + _NUM + _UNIT + rb"\s*$")
_DETECT = re.compile(PREFIX + rb"(?:iter \d+: loss |step \d+: train loss )")
_NAMES_MFU = (b"loss", b"step_time_ms", b"mfu")
_NAMES = (b"loss", b"step_time_ms")
_EVAL_NAMES = (b"eval_train_loss", b"eval_loss")


def detect(seg: bytes) -> bool:
    return _DETECT.match(seg) is not None


class Reader(LineReader):
    def feed(self, seg: bytes, offset: int, out_records: list[Item], out_events: list[Event]) -> bool:
        m = _ITER.match(seg)
        if m is not None:
            loss, ms = number(m.group(2)), number(m.group(3))
            mfu = number(m.group(4)) if m.group(4) is not None else None
            if loss is None or ms is None:
                self.stats.skip(seg)
                return True
            if mfu is None or mfu == -100.0:
                self.train(int(m.group(1)), self.names(_NAMES), (loss, ms), offset, out_records, out_events)
            else:
                self.train(int(m.group(1)), self.names(_NAMES_MFU), (loss, ms, mfu), offset, out_records, out_events)
            return True
        m = _EVAL.match(seg)
        if m is not None:
            tr, va = number(m.group(2)), number(m.group(3))
            if tr is None or va is None:
                self.stats.skip(seg)
                return True
            self.eval(int(m.group(1)), dict(zip(self.names(_EVAL_NAMES), (tr, va))), offset, out_records, False)
            return True
        if _DETECT.match(seg) is not None:
            self.stats.skip(seg)  # the shape of a record, not readable as one
            return True
        return self.text_event(seg, offset, out_records, out_events)
