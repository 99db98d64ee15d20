"""``trainer_state.json`` read as a growing file (the HF Trainer rewrites it at each save)."""

from __future__ import annotations

import os

import orjson

from .i18n import N_, _
from .parse import parse_object

MAX_STATE_FILE = 512 << 20


class StateFile:
    """``trainer_state.json``: rewritten whole at each checkpoint save, read as a growing file.

    A rewrite whose ``log_history`` starts with what was read before only adds its new entries;
    one that agrees up to an earlier entry is a resume from a checkpoint (fed again from there:
    the parser sees the steps go back); one whose first entry differs is another run written
    into the same place: a new attempt (``reset``).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.sig: tuple[float, int, int] | None = None
        self.error: str | None = None
        self.exists = False
        self.size = 0
        self.offset = 0
        self.mtime = 0.0
        self.max_steps: int | None = None
        self.global_step: int | None = None
        self.should_stop = False  # should_training_stop: the Trainer ended training
        self._seen: list[int] = []  # a fingerprint of each history entry read so far

    def poll(self) -> tuple[list[dict[str, object]], int, str | None] | None:
        """The history entries to feed, the index of the first, and why the run starts over
        (None: it goes on); None when the file did not change or cannot be read now."""
        try:
            st = os.stat(self.path)
        except OSError as e:
            self.exists = False
            self.error = N_("file not found") if isinstance(e, FileNotFoundError) else (e.strerror or str(e))
            return None
        self.exists = True
        sig = (st.st_mtime, st.st_size, st.st_ino)
        if sig == self.sig:
            return None
        self.sig = sig
        self.size = self.offset = st.st_size
        self.mtime = st.st_mtime
        if st.st_size > MAX_STATE_FILE:
            self.error = _("trainer_state.json is {size} MiB; not read").format(size=st.st_size >> 20)
            return None
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except OSError as e:
            self.error = e.strerror or str(e)
            return None
        return self._entries(raw)

    @property
    def ready(self) -> bool:
        """What was read is the file as it is now (a remote one: once its host answered)."""
        return True

    def _entries(self, raw: bytes) -> tuple[list[dict[str, object]], int, str | None] | None:
        """``poll``'s answer for the file's whole content ``raw``."""
        obj = parse_object(raw)
        if obj is None:
            # Caught mid-write, or NaN spelled the way json.dumps spells it (orjson rejects it).
            try:
                import json

                obj = json.loads(raw)
            except (ValueError, RecursionError):
                self.error = N_("not valid JSON (being written?)")
                self.sig = None
                return None
        self.error = None
        if not isinstance(obj, dict):
            self.error = N_("not a trainer_state.json object")
            return None
        hist = obj.get("log_history")
        if not isinstance(hist, list):
            self.error = N_("no log_history")
            return None
        ms = obj.get("max_steps")
        self.max_steps = ms if isinstance(ms, int) and ms > 0 else None
        gs = obj.get("global_step")
        self.global_step = gs if isinstance(gs, int) else None
        self.should_stop = _should_stop(obj)
        entries = [e for e in hist if isinstance(e, dict)]
        keep = self._agreed(entries)
        reset = "rewritten by another run" if self._seen and keep == 0 else None
        del self._seen[keep:]
        self._seen.extend(_fingerprint(e) for e in entries[keep:])
        return entries[keep:], keep, reset

    def close(self) -> None:
        """(Nothing is held open between polls.)"""

    def _agreed(self, entries: list[dict[str, object]]) -> int:
        """How many leading entries equal what was read before. A checkpoint save appends to the
        history and a resume cuts it back to a checkpoint, so what agrees is a prefix: found by
        bisection, a handful of entries compared per rewrite however long the history."""
        seen = self._seen
        n = min(len(seen), len(entries))
        if n == 0 or _fingerprint(entries[0]) != seen[0]:
            return 0
        if _fingerprint(entries[n - 1]) == seen[n - 1]:
            return n
        lo, hi = 1, n - 1  # entries[:lo] agree; entries[hi] does not
        while lo < hi:
            mid = (lo + hi) // 2
            if _fingerprint(entries[mid]) == seen[mid]:
                lo = mid + 1
            else:
                hi = mid
        return lo


def _should_stop(state: dict[str, object]) -> bool:
    """The Trainer's own word that training ended, as saved with the state (transformers 4.38+
    keep TrainerControl under ``stateful_callbacks``; older ones wrote nothing)."""
    cbs = state.get("stateful_callbacks")
    ctl = cbs.get("TrainerControl") if isinstance(cbs, dict) else None
    args = ctl.get("args") if isinstance(ctl, dict) else None
    return isinstance(args, dict) and args.get("should_training_stop") is True


def _fingerprint(entry: dict[str, object]) -> int:
    try:
        return hash(orjson.dumps(entry, option=orjson.OPT_SORT_KEYS))
    except (TypeError, orjson.JSONEncodeError):
        return hash(repr(sorted(entry.items(), key=lambda kv: str(kv[0]))))
