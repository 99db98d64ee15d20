"""The operating system's words for a file that cannot be read, in the catalog.

``os.strerror`` speaks the C library's English ("No such file or directory"), and the readers
keep that text as they got it: ``core/tail.py`` and ``core/agent.py`` also run on remote hosts,
where there is no catalog, and send the text over. So the text is matched back to its errno
here, where it is shown, and the common ones are said in the user's language; an uncommon one
is shown as the system wrote it rather than guessed at.
"""

from __future__ import annotations

import errno
import os

from sfttop.core.i18n import N_, _

# The msgids are the GNU C library's texts, so English output is what the system said.
_WORDS = {
    errno.ENOENT: N_("No such file or directory"),
    errno.EACCES: N_("Permission denied"),
    errno.EPERM: N_("Operation not permitted"),
    errno.EISDIR: N_("Is a directory"),
    errno.ENOTDIR: N_("Not a directory"),
    errno.ELOOP: N_("Too many levels of symbolic links"),
    errno.ENAMETOOLONG: N_("File name too long"),
    errno.EIO: N_("Input/output error"),
    errno.EMFILE: N_("Too many open files"),
    errno.ENOSPC: N_("No space left on device"),
    errno.ECONNREFUSED: N_("Connection refused"),
    errno.ETIMEDOUT: N_("Connection timed out"),
    errno.EADDRINUSE: N_("Address already in use"),
    errno.EHOSTUNREACH: N_("No route to host"),
    errno.ENETUNREACH: N_("Network is unreachable"),
}
# The readers' own words (core/tail.py, agent.py, statefile.py, ...).
NOT_FOUND = N_("file not found")
READER_ERRORS = (NOT_FOUND, N_("permission denied"), N_("not a regular file"))
# Name look-up failures (socket.gaierror) have no errno of the kind above, only a text.
_LOOKUP = (N_("Name or service not known"), N_("Temporary failure in name resolution"))
# The same texts as the C library writes them (the agent on a Linux host writes these too).
_BY_TEXT = {os.strerror(number): words for number, words in _WORDS.items()} | {text: text for text in _LOOKUP}


def reason(text: str | None) -> str:
    """A reader's or the system's reason for an error, in the user's language when known."""
    if not text:
        return _(NOT_FOUND)
    return _(_BY_TEXT.get(text, text))


def os_reason(exc: BaseException) -> str:
    """An ``OSError``'s reason in the user's language (its errno first, then its text)."""
    number = getattr(exc, "errno", None)
    if isinstance(number, int) and number in _WORDS:
        return _(_WORDS[number])
    return reason(getattr(exc, "strerror", None) or str(exc))
