"""Follow a growing file by polling, as ``tail -F`` does.

Polling rather than inotify: inotify says nothing on NFS and in many containers, and an idle
poll is one ``stat`` per file. The file is opened read-only only when it grew, never locked or
written. What real log files do is handled here, once, for every format:

- a partial last line is held back until its newline arrives (never parsed half-written);
- truncation in place (``copytruncate``, ``> train.log``) and replacement (rotation, a run
  deleted and created again, a symlink repointed) restart reading from the new file's start;
- a line longer than ``max_line`` is dropped, counted, without buffering it whole;
- a missing or unreadable path is a state to show, not an exception.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

MAX_HELD = 256  # descriptors held open across polls, over all files
_held = 0
FINGERPRINT = 64  # bytes before the read offset that identify "the same file" across polls


@dataclass
class Chunk:
    """What one poll found: complete lines (``data``, from byte ``base``), and what happened."""

    data: bytes = b""
    base: int = 0
    reset: str | None = None  # why reading restarted from 0: "truncated", "replaced", ...
    eof: bool = True  # False when the budget ran out before the end of the file
    grew: bool = False

    @property
    def segments(self) -> list[tuple[int, bytes]]:
        """The lines split again at tqdm's ``\\r``, each with its byte offset."""
        segs: list[tuple[int, bytes]] = []
        pos = self.base
        for line in self.data.split(b"\n"):
            if b"\r" in line:
                p = pos
                for part in line.split(b"\r"):
                    if part:
                        segs.append((p, part))
                    p += len(part) + 1
            elif line:
                segs.append((pos, line))
            pos += len(line) + 1
        return segs


class FileTail:
    def __init__(self, path: str, max_line: int = 1 << 20) -> None:
        self.path = path
        self.max_line = max_line
        self.offset = 0  # next byte to read
        self.size = 0  # file size at the last poll
        self.ident: tuple[int, int] | None = None  # (st_dev, st_ino)
        self.head = b""  # the last bytes read, checked again before reading on
        self.carry = b""
        self.carry_offset = 0
        self.discarding = False  # inside an over-long line: drop bytes until its end
        self.oversized = 0
        self.error: str | None = None  # why the file can't be read now (None: fine)
        self.exists = False
        self.mtime = 0.0
        self._fd: int | None = None
        self._mtime_ns = 0

    @property
    def pending_bytes(self) -> int:
        return max(0, self.size - self.offset)

    def _reset(self, keep_fd: bool = False) -> None:
        if not keep_fd:
            self.close()
        self.offset = 0
        self.carry = b""
        self.carry_offset = 0
        self.discarding = False
        self.head = b""

    def close(self) -> None:
        """Let go of the held descriptor (the file itself is never touched)."""
        global _held
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
            _held -= 1

    def __del__(self) -> None:
        # A tail dropped without close() must give back its share of MAX_HELD.
        if getattr(self, "_fd", None) is not None:
            self.close()

    def _drain_old(self, budget: int, out: Chunk) -> bool:
        """Before following a replaced or deleted file, read what the old one still holds
        (a rotated log's last lines). True when something was read: the switch waits a poll."""
        fd = self._fd
        if fd is None:
            return False
        try:
            size = os.fstat(fd).st_size
            n = len(self.head)
            if size < self.offset or (self.offset and n and os.pread(fd, n, self.offset - n) != self.head):
                self._reset(keep_fd=True)  # truncated and refilled before it went away
            want = min(budget, size - self.offset)
            data = os.pread(fd, want, self.offset) if want > 0 else b""
        except OSError:
            data = b""
        if not data:
            self.close()
            return False
        self._take(data, out)
        out.eof = False  # the new file is still to come
        return True

    def poll(self, budget: int = 4 << 20) -> Chunk:
        out = Chunk()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._drain_old(budget, out):
                return out
            if self.exists:
                out.reset = "vanished"
                self._reset()
            self.exists = False
            self.error = "file not found"
            return out
        except OSError as e:
            self.error = os.strerror(e.errno) if e.errno else str(e)
            return out
        if not stat.S_ISREG(st.st_mode):
            self.error = "not a regular file"
            return out
        ident = (st.st_dev, st.st_ino)
        if self.ident is not None and ident != self.ident:
            if self._drain_old(budget, out):
                return out
            out.reset = "replaced"
            self._reset()
        elif st.st_size < self.offset:
            out.reset = "truncated"
            self._reset(keep_fd=True)  # same file: keep it, so it can still be read if removed
        if not self.exists and self.ident is not None and out.reset is None:
            out.reset = "reappeared"
        self.exists = True
        self.ident = ident
        self.mtime = st.st_mtime
        self.size = st.st_size
        touched = st.st_mtime_ns != self._mtime_ns
        self._mtime_ns = st.st_mtime_ns
        if st.st_size == self.offset and not (touched and self.offset > 0):
            # Nothing new. (Same size but written again: maybe truncated and refilled to
            # exactly where we were; the fingerprint check below tells.)
            self.error = None
            return out
        fd = self._fd
        if fd is None:
            try:
                fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
            except OSError as e:
                denied = e.errno in (errno.EACCES, errno.EPERM)
                self.error = "permission denied" if denied else os.strerror(e.errno or 0)
                return out
        try:
            fst = os.fstat(fd)
            if (fst.st_dev, fst.st_ino) != ident:  # replaced between stat and open
                out.reset = out.reset or "replaced"
                self._reset(keep_fd=True)
                self.ident = (fst.st_dev, fst.st_ino)
            self.size = fst.st_size
            if self.offset > 0 and self.head:
                # Truncated and rewritten past our offset between two polls: the bytes we read
                # last are no longer where we read them.
                n = len(self.head)
                if os.pread(fd, n, self.offset - n) != self.head:
                    out.reset = "truncated"
                    self._reset(keep_fd=True)
            want = min(budget, self.size - self.offset)
            data = os.pread(fd, want, self.offset) if want > 0 else b""
        except OSError as e:
            self.error = os.strerror(e.errno or 0)
            self._release(fd)
            return out
        self._keep(fd)
        self.error = None
        if not data:
            return out
        self._take(data, out)
        out.eof = self.offset >= self.size
        return out

    def _keep(self, fd: int) -> None:
        # Holding the descriptor lets a rotated file be read to its end; past a few hundred
        # files sfttop stops holding them rather than run out of descriptors.
        global _held
        if fd == self._fd:
            return
        if _held < MAX_HELD:
            self._fd = fd
            _held += 1
        else:
            os.close(fd)

    def _release(self, fd: int) -> None:
        if fd == self._fd:
            self.close()
        else:
            os.close(fd)

    def _take(self, data: bytes, out: Chunk) -> None:
        self.head = (self.head + data)[-FINGERPRINT:] if len(data) < FINGERPRINT else data[-FINGERPRINT:]
        start = self.offset
        self.offset += len(data)
        out.grew = True
        self._split(data, start, out)

    def _split(self, data: bytes, start: int, out: Chunk) -> None:
        if self.discarding:
            cut = _first_sep(data)
            if cut < 0:
                return
            data = data[cut + 1 :]
            start += cut + 1
            self.discarding = False
        if self.carry:
            base = self.carry_offset
            data = self.carry + data
        else:
            base = start
        last = data.rfind(b"\n")
        if last < 0:
            self._hold(data, base)
            return
        self._hold(data[last + 1 :], base + last + 1)
        out.data = data[: last + 1]
        out.base = base

    @property
    def partial(self) -> bytes:
        """The bytes after the last complete line: a live tqdm bar, or a record being written."""
        return self.carry

    def _hold(self, rest: bytes, offset: int) -> None:
        if len(rest) > self.max_line:
            # A tqdm bar redrawn for hours without a newline is not one huge line: keep only
            # the piece after its last carriage return.
            r = rest.rfind(b"\r")
            if r >= 0 and len(rest) - r - 1 <= self.max_line:
                self.carry = rest[r + 1 :]
                self.carry_offset = offset + r + 1
                return
            self.oversized += 1
            self.carry = b""
            self.discarding = True
            return
        self.carry = rest
        self.carry_offset = offset


def _first_sep(data: bytes) -> int:
    n = data.find(b"\n")
    r = data.find(b"\r")
    if n < 0:
        return r
    if r < 0:
        return n
    return min(n, r)
