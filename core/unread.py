"""Why a run has nothing to show: the file cannot be read, or none of its lines is a record.

A log sfttop cannot read must never pass for a healthy one: ``--report`` turns it into an error
(exit 2) and the live monitor into a status line, both worded here so they say the same thing.
"""

from __future__ import annotations

from sfttop.core.i18n import N_, _, ngettext, pgettext

from .formats import FORMATS as LINE_FORMATS
from .oserrors import reason
from .parse import LLAMA_FACTORY, MS_SWIFT
from .records import Kind
from .run import Run
from .sanitize import clean_text

_PROGRESS_FORMATS = frozenset((LLAMA_FACTORY, MS_SWIFT))

# What the parser recognises, as a user would name it: the HF family that core/parse.py reads
# itself, then every line format of the registry (names, shown through ``_()`` when a word in
# them is not a name).
FORMATS_READ = (
    "HF Trainer/TRL stdout",
    N_("JSON lines"),
    "LLaMA-Factory trainer_log.jsonl",
    "ms-swift logging.jsonl",
    "trainer_state.json",
    N_("TensorBoard event files"),
    *(f.name for f in LINE_FORMATS),
)


def has_records(run: Run) -> bool:
    data = run.data
    return data.count(Kind.TRAIN) + data.count(Kind.EVAL) > 0 or bool(data.summary) or progress_only(run)


def progress_only(run: Run) -> bool:
    """A file in a known format that logs progress and no metrics (LLaMA-Factory writes
    ``trainer_log.jsonl`` lines with only ``current_steps``/``total_steps`` when the trainer's
    logs carry no loss): it was read, and what it says is how far the run got."""
    p = run.parser
    return p.format in _PROGRESS_FORMATS and p.progress_step is not None and p.progress_total is not None



def unread_reason(run: Run, *, final: bool = True) -> str | None:
    """None when the run holds records; else one line saying why it does not.

    ``final``: the whole file has been read (``--report``); the live monitor passes False while
    a run may still be starting up, and the words say "yet".
    """
    if has_records(run):
        return None
    path = clean_text(run.path)
    if not run.exists and not final and run.error in (None, "file not found"):
        return _("waiting for {path}: the file does not exist yet").format(path=path)  # started before training
    if not run.exists or run.error:
        return _("cannot read {path}: {reason}").format(path=path, reason=clean_text(reason(run.error)))
    lines = run.parser.stats.lines
    if final:
        text = ngettext(
            "no records recognised in {n} line of {path}; formats read: {formats}",
            "no records recognised in {n} lines of {path}; formats read: {formats}",
            lines,
        )
    else:
        text = ngettext(
            "no records recognised yet in {n} line of {path}; formats read: {formats}",
            "no records recognised yet in {n} lines of {path}; formats read: {formats}",
            lines,
        )
    return text.format(n=lines, path=path, formats=pgettext("list separator", ", ").join(_(name) for name in FORMATS_READ))
