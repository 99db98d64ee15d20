"""A checklist window and its items' verdicts, stored compactly; a cadence's windows; the state.

A long run keeps a thousand closed windows per cadence, so a window holds its statuses as one
interned character each and shares its item ids and labels with every other window of its
cadence. Only this module reads that packing: the engine merges and compares windows through
``Window.worst_of`` and ``Window.shows``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sfttop.core.i18n import _

PASS, WARN, FAIL, PENDING = "pass", "warn", "fail", "pending"
ORDER = {PENDING: 0, PASS: 1, WARN: 2, FAIL: 3}  # how bad a status is: the worst wins a merge

Verdict = tuple[str, str]  # (status, detail)

_CODE = {PASS: "p", WARN: "w", FAIL: "f", PENDING: "."}
_STATUS = {c: s for s, c in _CODE.items()}
_RANK = {c: ORDER[s] for s, c in _CODE.items()}
_WORST_FIRST = sorted(_RANK, key=_RANK.__getitem__, reverse=True)
_SHARED_KEYS: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}  # windows share these tuples


@dataclass(slots=True)
class CheckResult:
    """One item's verdict in one window."""

    id: str
    label: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "label": self.label, "status": self.status, "detail": self.detail}


class Window:
    """One window of a cadence and its items' verdicts.

    A long run keeps a few thousand closed windows, so they are stored compactly: the items'
    statuses as one character each, their details as a tuple, ids and labels shared between
    the windows of a cadence, the label of a step window made on demand. ``items`` builds
    CheckResult objects when read."""

    __slots__ = ("_det", "_keys", "_label", "_st", "closed", "end_step", "index", "start_step")

    def __init__(
        self,
        index: int,
        label: str | None,
        start_step: int,
        end_step: int,
        closed: bool,
        items: Iterable[CheckResult] = (),
    ) -> None:
        self.index = index
        self._label = label  # None: "steps {start_step}-{end_step}"
        self.start_step = start_step
        self.end_step = end_step  # inclusive; for an open window, the last step it can hold
        self.closed = closed
        items = list(items)
        keys = tuple((i.id, i.label) for i in items)
        self._keys = _SHARED_KEYS.setdefault(keys, keys)
        self._st = sys.intern("".join(_CODE[i.status] for i in items))
        self._det = tuple(i.detail for i in items)

    @property
    def label(self) -> str:
        return self._label if self._label is not None else _("steps {start_step}-{end_step}").format(start_step=self.start_step, end_step=self.end_step)

    @property
    def items(self) -> list[CheckResult]:
        return [CheckResult(i, lab, _STATUS[c], d) for (i, lab), c, d in zip(self._keys, self._st, self._det)]

    def with_items(self, items: Iterable[CheckResult]) -> Window:
        return Window(self.index, self._label, self.start_step, self.end_step, self.closed, items)

    @classmethod
    def worst_of(cls, index: int, start_step: int, end_step: int, parts: Sequence[Window]) -> Window:
        """One closed step window made of ``parts`` (closed windows of the same cadence): each
        item the worst of theirs, the latest of equals, a pending part counting least.

        On the compact form, in C-level string calls: a long run's windows grow all at once
        (thousands of merges), and that is a live record's poll."""
        st: list[str] = []
        det: list[str] = []
        for j, codes in enumerate(zip(*(p._st for p in parts), strict=True)):
            joined = "".join(codes)
            for code in _WORST_FIRST:
                i = joined.rfind(code)  # (the latest part with the worst status)
                if i >= 0:
                    st.append(code)
                    det.append(parts[i]._det[j])
                    break
        w = cls.__new__(cls)
        w.index, w._label, w.start_step, w.end_step, w.closed = index, None, start_step, end_step, True
        w._keys = parts[0]._keys
        w._st = sys.intern("".join(st))
        w._det = tuple(det)
        return w

    def shows(self, verdicts: Sequence[Verdict | None]) -> bool:
        """Whether each of ``verdicts`` (None: any) is what this window holds for its item, the
        detail the very same string (so a window that merely kept its judged verdicts need not
        keep them twice)."""
        return all(v is None or (_CODE[v[0]] == c and v[1] is d) for v, c, d in zip(verdicts, self._st, self._det))

    @property
    def status(self) -> str:
        """The worst item status (pending counts least)."""
        return _STATUS[max(self._st, key=_RANK.__getitem__)] if self._st else PENDING

    def item(self, item_id: str) -> CheckResult | None:
        for k, (i, lab) in enumerate(self._keys):
            if i == item_id:
                return CheckResult(i, lab, _STATUS[self._st[k]], self._det[k])
        return None

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "label": self.label,
            "start_step": self.start_step,
            "end_step": self.end_step,
            "closed": self.closed,
            "status": self.status,
            "items": [i.to_dict() for i in self.items],
        }


@dataclass(slots=True)
class Cadence:
    id: str  # "100_steps", "1000_steps", "epoch"
    label: str
    window_steps: int | None  # None for epochs
    windows: list[Window] = field(default_factory=list)

    @property
    def latest(self) -> Window | None:
        return self.windows[-1] if self.windows else None

    def to_dict(self) -> dict[str, object]:
        latest = self.latest
        return {
            "label": self.label,
            "window_steps": self.window_steps,
            "latest": latest.to_dict() if latest is not None else None,
            "windows": [w.to_dict() for w in self.windows],
        }


@dataclass
class ChecklistState:
    cadences: list[Cadence]

    def cadence(self, cid: str) -> Cadence | None:
        return next((c for c in self.cadences if c.id == cid), None)

    def to_dict(self) -> dict[str, object]:
        return {c.id: c.to_dict() for c in self.cadences}
