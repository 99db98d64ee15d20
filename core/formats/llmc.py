"""llm.c's ``main.log`` (``-o`` output directory of ``train_gpt2cu``).

``s:N trl:LOSS lr:LR norm:NORM`` per step, ``s:N tel:VAL_LOSS`` at each validation and
``s:N eval:ACC`` (HellaSwag accuracy) right after it at the same step: one evaluation, so the
accuracy joins the validation record.
"""

from __future__ import annotations

import re

from sfttop.core.records import Event, Item

from .base import JSON_NUM, MAX_FIELDS, LineReader

NAME = "llmc"
DESCRIPTION = (
    "`s:N trl:X lr:Y norm:Z` (train: loss, learning_rate, grad_norm), `s:N tel:X` (eval: eval_loss), "
    "`s:N eval:X` (eval_hellaswag_acc, joined to the eval of its step)"
)

_LINE = re.compile(rb"^s:(\d+) ((?:[a-z]+:\S+ ?)+)\s*$")
_DETECT = re.compile(rb"^s:\d+ (?:trl|tel|eval):")
_KEYS = {b"trl": b"loss", b"lr": b"learning_rate", b"norm": b"grad_norm"}
_EVAL_KEYS = {b"tel": b"eval_loss", b"eval": b"eval_hellaswag_acc"}
# The train line as llm.c prints it, matched over a whole chunk (``feed_rows``); any other
# line (a validation, a line of another shape) is the last group and read by ``feed``.
_ROWS = re.compile(
    rb"^(?:s:(\d+) trl:(" + JSON_NUM + rb") lr:(" + JSON_NUM + rb") norm:(" + JSON_NUM + rb")|(.+))$", re.M
)
_TRAIN = (b"loss", b"learning_rate", b"grad_norm")


def _own(seg: bytes) -> bool:
    return seg[:2] == b"s:"  # (``feed`` takes every such line, skipping those it cannot read)


def detect(seg: bytes) -> bool:
    return seg[:2] == b"s:" and _DETECT.match(seg) is not None


class Reader(LineReader):
    def rows_in_bulk(self) -> bool:
        return True

    def feed_rows(self, lines: list[bytes], base: int, out_records: list[Item], out_events: list[Event]) -> bool:
        return self.feed_shaped(_ROWS, self.names(_TRAIN), lines, base, out_records, out_events, _own)

    def feed(self, seg: bytes, offset: int, out_records: list[Item], out_events: list[Event]) -> bool:
        if seg[:2] != b"s:":
            return self.text_event(seg, offset, out_records, out_events)
        m = _LINE.match(seg)
        if m is None:
            self.stats.skip(seg)
            return True
        pairs = m.group(2).split()
        if len(pairs) > MAX_FIELDS:
            self.stats.skip(seg)
            return True
        keys: list[bytes] = []
        vals: list[float] = []
        for pair in pairs:
            k, _, v = pair.partition(b":")
            try:
                vals.append(float(v))
            except ValueError:
                self.stats.skip(seg)
                return True
            keys.append(k)
        step = int(m.group(1))
        if keys[0] in _EVAL_KEYS:
            names = self.names(tuple(_EVAL_KEYS.get(k, b"eval_" + k) for k in keys))
            self.eval(step, dict(zip(names, vals)), offset, out_records, keys[0] != b"tel")
        else:
            self.train(step, self.names(tuple(_KEYS.get(k, k) for k in keys)), tuple(vals), offset, out_records, out_events)
        return True
