"""The registry of line formats: trainers whose stdout (or log file) is lines of text, not dicts.

Like toolong's ``FORMATS`` list, each entry says how a format is recognised, how its lines are
read, and what the README says about it. A file's format is detected from its first line that
one of them recognises (in this order: the shapes are disjoint, the order only decides which
regex runs first); ``--log-format NAME`` skips detection. The HF family (dict lines, JSON lines,
``trainer_state.json``) is read by ``parse.LogParser`` itself and is not listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import keras_csv, lightning_csv, llmc, megatron, nanochat, nanogpt, torchtune, wandb_csv
from .base import LineReader, Stats

__all__ = ["BY_NAME", "FORMATS", "LineFormat", "LineReader", "Stats", "detect"]


@dataclass(frozen=True)
class LineFormat:
    name: str
    detect: Callable[[bytes], bool]  # is this line (ANSI stripped) one of the format's?
    reader: Callable[[Stats], LineReader]  # a reader for one file
    description: str  # the README's entry: the line shapes and what maps to what


FORMATS: tuple[LineFormat, ...] = tuple(
    LineFormat(m.NAME, m.detect, m.Reader, m.DESCRIPTION) for m in (megatron, nanogpt, nanochat, llmc, torchtune, wandb_csv, keras_csv, lightning_csv)
)
BY_NAME: dict[str, LineFormat] = {f.name: f for f in FORMATS}


def detect(seg: bytes) -> LineFormat | None:
    """The format ``seg`` is a line of, if any."""
    for f in FORMATS:
        if f.detect(seg):
            return f
    return None
