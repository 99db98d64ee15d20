"""The values that flow from parsers to the store, the diagnoser and the renderers."""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, TypeAlias


class Kind(str, Enum):
    TRAIN = "train"
    EVAL = "eval"
    SUMMARY = "summary"


@dataclass(slots=True)
class Record:
    """One logged metrics dict.

    ``step`` is the optimiser step the record belongs to; when the log does not say (HF stdout
    captures carry no step) it is inferred and ``step_inferred`` is set. ``offset`` is the byte
    offset of the line in its file, so a record can always be traced back to its source.
    """

    kind: Kind
    step: int
    metrics: dict[str, float]
    epoch: float | None = None
    offset: int = -1
    step_inferred: bool = False


@dataclass(slots=True)
class Block:
    """Train records in a row that carry the same metrics, stored column-wise.

    The bulk of a long log is thousands of such records; the parser hands them over as one block
    so the store and the diagnoser can take them in C-level calls rather than a Python call per
    record. A block is always equivalent to ``records()``: steps strictly increase, every column
    has a value for every record, and nothing else (an eval, an event) came between them.
    """

    kind: ClassVar[Kind] = Kind.TRAIN
    names: tuple[str, ...]
    steps: array[int]  # 'q'
    columns: tuple[array[float], ...]  # one 'd' array per name
    epochs: array[float] | None  # 'd'; None when the records carry no epoch
    offsets: array[int]  # 'q': byte offset of each record's line
    step_inferred: bool = False

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def offset(self) -> int:
        return self.offsets[0]

    def slice(self, a: int, b: int) -> Block:
        """Records ``a..b-1`` as a block."""
        eps = self.epochs[a:b] if self.epochs is not None else None
        cols = tuple(c[a:b] for c in self.columns)
        return Block(self.names, self.steps[a:b], cols, eps, self.offsets[a:b], self.step_inferred)

    def __reduce__(self) -> tuple[Callable[..., Block], tuple[object, ...]]:
        # Blocks cross between processes by the thousand (core/pipe.py): every array in one
        # bytes object pickles several times faster than a reconstructor call for each.
        arrays: list[array[Any]] = [self.steps, self.offsets, *self.columns]
        if self.epochs is not None:
            arrays.append(self.epochs)
        blob = b"".join(arrays)  # (all 8-byte items: 'q' and 'd')
        return _unpack_block, (self.names, len(self.steps), self.epochs is not None, blob, self.step_inferred)

    def records(self) -> list[Record]:
        names = self.names
        eps = self.epochs if self.epochs is not None else [None] * len(self.steps)
        return [
            Record(Kind.TRAIN, step, dict(zip(names, row)), ep, off, self.step_inferred)
            for step, ep, off, row in zip(self.steps, eps, self.offsets, zip(*self.columns))
        ]


def _unpack_block(names: tuple[str, ...], n: int, has_epochs: bool, blob: bytes, inferred: bool) -> Block:
    """The block ``Block.__reduce__`` packed: ``blob`` holds steps, offsets, the columns and the
    epochs, ``n`` items each."""
    view = memoryview(blob)
    size = 8 * n
    at = 0

    def take(code: str) -> array[Any]:
        nonlocal at
        a = array(code)
        a.frombytes(view[at : at + size])
        at += size
        return a

    steps = take("q")
    offsets = take("q")
    columns = tuple(take("d") for _ in names)
    epochs = take("d") if has_epochs else None
    return Block(names, steps, columns, epochs, offsets, inferred)


# What a parser emits, in log order: single records, and blocks of plain train records.
Item: TypeAlias = "Record | Block"


def expand(items: list[Item]) -> list[Record]:
    """``items`` with every block replaced by its records."""
    out: list[Record] = []
    for it in items:
        if isinstance(it, Block):
            out.extend(it.records())
        else:
            out.append(it)
    return out


class EventKind(str, Enum):
    CRASHED = "crashed"  # a traceback, out-of-memory, NCCL error: message holds the error line
    FINISHED = "finished"  # the final train_runtime summary, or a framework's final object
    MAX_STEPS = "max_steps"  # total optimisation steps announced by a banner
    RESUMED = "resumed"  # steps went backwards: the run was restarted from a checkpoint
    SOURCE = "source"  # the file vanished, reappeared, was truncated or rotated, or is unreadable


@dataclass(slots=True)
class Event:
    kind: EventKind
    message: str = ""
    offset: int = -1
    step: int | None = None
    total: int | None = None
    eta_seconds: float | None = None
    extra: dict[str, str] = field(default_factory=dict)
