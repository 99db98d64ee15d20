"""Wake a poll loop early when a watched directory changes.

Polling is the truth (it works on NFS, in containers, everywhere); this only shortens the wait.
On Linux it uses inotify through ctypes (no dependency) on the directories that hold the logs, so
a record appended to a log is on screen in milliseconds while an idle screen still polls rarely.
Where inotify is missing or refuses (another OS, a full watch table, a network file system that
never reports), ``wait`` is simply a sleep and the caller's polling interval rules.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import sys
import threading
import time
from collections.abc import Iterable

from .remote import parse_remote

_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_IN_MODIFY = 0x002
_IN_ATTRIB = 0x004
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_FROM = 0x040
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_MASK = _IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE
MAX_WATCHES = 512


class Waker:
    def __init__(self) -> None:
        self._fd = -1
        self._libc: ctypes.CDLL | None = None
        self._watched: set[str] = set()
        # poke(): another thread wants a poll now (a key press needs a run's views built).
        self._poke_r, self._poke_w = os.pipe()
        os.set_blocking(self._poke_r, False)
        os.set_blocking(self._poke_w, False)
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
                fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            except (OSError, AttributeError):
                fd = -1
            if fd >= 0:
                self._fd = fd
                self._libc = libc

    @property
    def active(self) -> bool:
        """True when changes can wake the caller (inotify is watching something)."""
        return self._fd >= 0 and bool(self._watched)

    def watch(self, dirs: Iterable[str]) -> None:
        """Watch these directories (idempotent; ones that do not exist yet are tried again later)."""
        if self._libc is None:
            return
        for d in dirs:
            if d in self._watched or len(self._watched) >= MAX_WATCHES:
                continue
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(d), _MASK)
            if wd >= 0:
                self._watched.add(d)

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Sleep up to ``timeout`` s; return True early when a watched directory changed or
        :meth:`poke` was called."""
        end = time.monotonic() + timeout
        fds = [self._poke_r] if self._fd < 0 else [self._fd, self._poke_r]
        while True:
            left = end - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                return False
            step = min(left, 0.25) if stop is not None else left
            try:
                ready, _, _ = select.select(fds, [], [], step)
            except (OSError, ValueError):
                return False
            if ready:
                for fd in ready:
                    self._drain(fd)
                return True

    def poke(self) -> None:
        """Wake a :meth:`wait` in another thread (safe from any thread; never blocks)."""
        try:
            os.write(self._poke_w, b"x")
        except OSError:
            pass  # the pipe is full: a wake-up is pending already

    def _drain(self, fd: int) -> None:
        try:
            while os.read(fd, 65536):
                pass
        except BlockingIOError:
            pass
        except OSError:
            pass

    def close(self) -> None:
        for fd in (self._poke_r, self._poke_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._poke_r = self._poke_w = -1
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1
            self._libc = None
            self._watched.clear()


def log_dirs(paths: Iterable[str]) -> set[str]:
    """The directories whose changes matter: each log's own, and for globs the nearest
    existing parent of the wildcard part (where new runs appear)."""
    out: set[str] = set()
    for p in paths:
        if parse_remote(p) is not None:
            continue  # another host's: nothing here to watch (it is polled each interval)
        d = os.path.dirname(os.path.abspath(p))
        while d and not os.path.isdir(d):
            parent = os.path.dirname(d)
            if parent == d:
                break
            d = parent
        if d:
            out.add(d)
    return out
