"""The best checkpoint: the saved ``checkpoint-N`` directory with the lowest eval_loss.

What the log prints is not always enough to pick it. transformers 5 prints every value as
``'%.4g'``, so two evals can tie in the log while the Trainer's own ``trainer_state.json`` (beside
the log, or in the newest checkpoint) holds both at full precision and says which is lower; its
steps are also the true ones, where a stdout log's eval step is inferred from the last train
record. ``save_total_limit`` deletes older checkpoints, so the lowest eval overall may be gone:
the answer is the lowest eval_loss among the checkpoints that exist, with a note on the lower one
that is gone. Evals after the training summary (a post-training ``evaluate()``) are kept apart by
``RunData`` and never compete.
"""

from __future__ import annotations

import math
import os
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import orjson

from .discover import CHECKPOINT_DIR, checkpoint_dirs
from .i18n import _
from .metrics import EVAL_LOSS, EVAL_TOKEN_ACC
from .query import best_eval, best_key, logging_interval, value_at
from .series import RunData, post_training
from .textfmt import fmt

STATE_FILE = "trainer_state.json"
_MAX_STATE = 64 << 20  # a trainer_state.json larger than this is not read for the best checkpoint
_PRINTED = 6e-4  # '%.4g' rounds to a relative error of at most 5e-4: the log and the state agree


class Ev(NamedTuple):
    step: int
    loss: float
    acc: float | None
    precise: bool  # from trainer_state.json (full precision, true step), not the log's print
    shown: float  # the value as the log printed it (ties are judged on it)


def best_without_path(data: RunData) -> dict[str, object] | None:
    best = best_eval(data)
    if best is None:
        return None
    step, loss, acc = best
    return {"step": step, "eval_loss": loss, "eval_token_accuracy": acc, "path": None, "note": None}


def best_checkpoint(
    data: RunData,
    log_path: str,
    list_dirs: Callable[[str], dict[int, str]] = checkpoint_dirs,
    *,
    read_state: Callable[[str], bytes | None] | None = None,
) -> dict[str, object] | None:
    """The saved checkpoint with the lowest eval_loss (ties to the higher eval token accuracy,
    then the earlier step) and its ``checkpoint-N`` directory beside the log, with a note when
    something needs saying. ``list_dirs`` lists a directory's checkpoints and ``read_state``
    reads a file (another host's, for a remote log; None: the local file system).

    Keys: step, eval_loss, eval_token_accuracy, path (None when no such directory exists),
    note (None when nothing needs saying).
    """
    base = checkpoint_base(log_path)
    dirs = list_dirs(base)
    evals = _log_evals(data)
    if not evals:
        return None
    interval = logging_interval(data)
    state = _state_evals(base, dirs, read_state)
    merged = _merge(state, evals, interval) if state else None
    if merged is not None:
        evals = merged
    overall = min(evals, key=_key)
    at = {e.step: _dir_of(e, dirs, interval) for e in evals}
    saved = [e for e in evals if at[e.step] is not None]
    notes: list[str] = []
    if not dirs:
        best = overall
        notes.append(_("no checkpoint-N directories beside the log; the best eval is at step {step}").format(step=best.step))
    elif not saved:
        best = overall
        notes.append(
            _("no checkpoint was saved at step {step}; present: {listed}").format(step=best.step, listed=_listed(dirs))
        )
    else:
        best = min(saved, key=_key)
        if best is not overall and overall.loss < best.loss:
            have = sorted(dirs)
            spacing = _gcd_all(have)
            if spacing and overall.step % spacing == 0 and overall.step < have[-1]:
                gone = _(
                    "the lowest eval_loss, {loss} at step {step}: checkpoint-{step} no longer exists (deleted by "
                    "save_total_limit?); present: {listed}"
                )
            else:
                gone = _("the lowest eval_loss, {loss} at step {step}: checkpoint-{step} was not saved; present: {listed}")
            notes.append(gone.format(loss=fmt(overall.loss), step=overall.step, listed=_listed(dirs)))
    tie = [e for e in evals if e is not best and e.shown == best.shown]
    if tie:
        others = ", ".join(str(e.step) for e in tie[:4])
        if best.precise and any(e.loss != best.loss for e in tie):
            notes.append(
                _(
                    "a tie at the log's printed precision with step {others}: the full-precision eval_loss in "
                    "{file} is lower at step {step} ({loss})"
                ).format(others=others, file=STATE_FILE, step=best.step, loss=repr(best.loss))
            )
        else:
            if at[best.step] is not None and any(at[e.step] is None for e in tie):
                why = _("the one whose checkpoint exists")
            elif best.acc is not None and any(e.acc is not None and e.acc != best.acc for e in tie):
                why = _("the one with the higher eval token accuracy")
            else:
                why = _("the earliest")
            notes.append(
                _("a tie on eval_loss {loss} with step {others}: {why} is named").format(
                    loss=fmt(best.loss), others=others, why=why
                )
            )
    return {
        "step": best.step,
        "eval_loss": best.loss,
        "eval_token_accuracy": best.acc,
        "path": at[best.step],
        "note": "; ".join(notes) or None,
    }


@dataclass(frozen=True)
class CheckpointLister:
    """Lists the checkpoint-N directories in ``base`` (cached by the directories' mtimes: cheap
    to call again). A class, not a closure: the diagnoser that holds it goes to a helper process
    and back by pickle (a lambda there failed every helper's hand-back of a multi-run
    ``--report``, whose runs the parent then read again itself)."""

    base: str

    def __call__(self) -> dict[int, str]:
        return checkpoint_dirs(self.base)


def checkpoint_lister(log_path: str) -> Callable[[], dict[int, str]]:
    """The lister of the checkpoint-N directories of the run whose log is ``log_path``."""
    return CheckpointLister(checkpoint_base(log_path))


def _key(e: Ev) -> tuple[float, float, int]:
    return best_key(e.loss, e.acc, e.step)


def checkpoint_base(log_path: str) -> str:
    """The directory a run's checkpoints sit in, relative to the log path as the user gave it
    (so the report reads the same anywhere)."""
    base = os.path.dirname(os.path.normpath(log_path)) or "."
    if CHECKPOINT_DIR.match(os.path.basename(base)):  # a checkpoint's own trainer_state.json
        base = os.path.dirname(base) or "."
    if os.path.basename(log_path).startswith("events.out.tfevents."):
        base = os.path.dirname(base) or "."  # a TensorBoard run is its directory, not the file
    if os.path.basename(base) == "runs":  # HF TensorBoard: <output_dir>/runs/<date>_<host>
        base = os.path.dirname(base) or "."
    return base


def _log_evals(data: RunData) -> list[Ev]:
    s = data.get(EVAL_LOSS)
    if s is None:
        return []
    acc = data.get(EVAL_TOKEN_ACC)
    return [Ev(step, v, value_at(acc, step), False, v) for step, v in s.points() if math.isfinite(v)]


def _dir_of(e: Ev, dirs: dict[int, str], interval: int) -> str | None:
    path = dirs.get(e.step)
    if path is None and not e.precise:
        # HF stdout logs carry no step: an eval's step is inferred from the last train record
        # and may sit up to one logging interval before the checkpoint saved with it.
        near = [s for s in dirs if e.step < s < e.step + interval]
        if near:
            path = dirs[min(near)]
    return path


# path -> (mtime_ns, size, its evals or None): the screen asks on every refresh, and the file
# changes only when a checkpoint is saved
_CACHE: dict[str, tuple[int, int, list[Ev] | None]] = {}
_CACHE_MAX = 64


def _local_state(path: str) -> list[Ev] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    hit = _CACHE.get(path)
    if hit is not None and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
        return hit[2]
    raw: bytes | None = None
    if st.st_size <= _MAX_STATE:
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError:
            raw = None
    evals = _parse_state(raw) if raw is not None else None
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[path] = (st.st_mtime_ns, st.st_size, evals)
    return evals


def _state_evals(base: str, dirs: dict[int, str], read: Callable[[str], bytes | None] | None) -> list[Ev]:
    """The evals of the trainer_state.json beside the log, else of the newest checkpoint's."""
    places = [os.path.join(base, STATE_FILE)]
    if dirs:
        places.append(os.path.join(dirs[max(dirs)], STATE_FILE))
    for place in places:
        if read is None:
            evals = _local_state(place)
        else:
            raw = read(place)
            evals = _parse_state(raw) if raw is not None else None
        if evals is not None:
            return evals
    return []


def _parse_state(raw: bytes) -> list[Ev] | None:
    """A trainer_state.json's evals: full precision, true steps, none after the training
    summary (None when it is not one)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    history = obj.get("log_history") if isinstance(obj, dict) else None
    if not isinstance(history, list):
        return None
    out: list[Ev] = []
    summary: float | None = None  # the summary's epoch once it came (NaN: none)
    for h in history:
        if not isinstance(h, dict):
            continue
        ep = h.get("epoch")
        epoch = float(ep) if isinstance(ep, float | int) else None
        if "train_runtime" in h:
            summary = epoch if epoch is not None else math.nan
            continue
        if "loss" in h:
            summary = None
        step, loss, acc = h.get("step"), h.get(EVAL_LOSS), h.get(EVAL_TOKEN_ACC)
        if type(step) is int and isinstance(loss, float | int) and math.isfinite(loss):
            if summary is not None and post_training(step, epoch, out[-1].step if out else None, summary):
                continue
            a = float(acc) if isinstance(acc, float | int) and math.isfinite(acc) else None
            if out and step <= out[-1].step:  # re-logged after a resume: the newest wins
                out = [e for e in out if e.step < step]
            out.append(Ev(step, float(loss), a, True, float(loss)))
    return out


def _merge(state: list[Ev], log: list[Ev], interval: int) -> list[Ev] | None:
    """The state's evals (each with the value the log printed for it) and the log's evals after
    them; None when the state is not this run's: an eval the log also has (at its step, or up to
    one logging interval before it for an inferred step) differs beyond printed precision, or
    none of its evals is in the log."""
    steps = [e.step for e in log]
    out: list[Ev] = []
    matched = 0
    for e in state:
        i = bisect_right(steps, e.step) - 1  # the log's eval at this step or just before it
        if i < 0 or steps[i] <= e.step - max(1, interval):
            out.append(e)
            continue
        shown = log[i].loss
        if abs(shown - e.loss) > _PRINTED * abs(e.loss) + 1e-12:
            return None
        matched += 1
        out.append(e._replace(shown=shown))
    if not matched:
        return None
    last = state[-1].step
    return out + [e for e in log if e.step > last]


def _listed(dirs: dict[int, str]) -> str:
    have = sorted(dirs)
    return _(", ").join(f"checkpoint-{s}" for s in have[:8]) + (" ..." if len(have) > 8 else "")


def _gcd_all(xs: list[int]) -> int:
    g = 0
    for x in xs:
        g = math.gcd(g, x)
    return g
