"""Why a run has nothing to show: the file cannot be read, or none of its lines is a record.

A log sfttop cannot read must never pass for a healthy one: ``--report`` turns it into an error
(exit 2) and the live monitor into a status line, both worded here so they say the same thing.
"""

from __future__ import annotations

from .formats import FORMATS as LINE_FORMATS
from .records import Kind
from .run import Run
from .sanitize import clean_text

# What the parser recognises, as a user would name it: the HF family that core/parse.py reads
# itself, then every line format of the registry.
FORMATS_READ = (
    "HF Trainer/TRL stdout",
    "JSON lines",
    "LLaMA-Factory trainer_log.jsonl",
    "ms-swift logging.jsonl",
    "trainer_state.json",
    "TensorBoard event files",
    *(f.name for f in LINE_FORMATS),
)


def has_records(run: Run) -> bool:
    data = run.data
    return data.count(Kind.TRAIN) + data.count(Kind.EVAL) > 0 or bool(data.summary)


def unread_reason(run: Run, *, final: bool = True) -> str | None:
    """None when the run holds records; else one line saying why it does not.

    ``final``: the whole file has been read (``--report``); the live monitor passes False while
    a run may still be starting up, and the words say "yet".
    """
    if has_records(run):
        return None
    path = clean_text(run.path)
    if not run.exists and not final and run.error in (None, "file not found"):
        return f"waiting for {path}: the file does not exist yet"  # started before training
    if not run.exists or run.error:
        return f"cannot read {path}: {clean_text(run.error or 'file not found')}"
    lines = run.parser.stats.lines
    yet = "" if final else " yet"
    noun = "line" if lines == 1 else "lines"
    return f"no records recognised{yet} in {lines} {noun} of {path}; formats read: {', '.join(FORMATS_READ)}"
