"""Make text from a log safe to put on a terminal.

Log content is attacker-controlled as far as sfttop is concerned: a metric name, an error line
or a file name could carry ESC/CSI/OSC sequences (colour, cursor moves, a title change, an OSC 52
clipboard write). Everything from a log passes through ``clean_text`` before it is stored for
display, in the TUI and in text/markdown reports alike.
"""

from __future__ import annotations

import re

# Whole escape sequences first (so their parameters do not survive as visible junk), then any
# remaining C0/C1 control character, then bidi overrides that could reorder what is shown.
_SEQ = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC, DCS, SOS, PM, APC
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|[\x90\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # 8-bit OSC/DCS/PM/APC
    r"|\x1b[ -/]*[0-~]?"  # other ESC sequences, or a lone ESC
)
_CTRL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean_text(s: str) -> str:
    """``s`` with every terminal control sequence removed and tabs turned into spaces."""
    if s.isprintable():
        return s
    s = _SEQ.sub("", s)
    s = _CTRL.sub("", s)
    return s.replace("\t", " ")
