"""Loading logs for ``--report`` on more than one core, in forked processes.

Two ways, both ending in exactly the state loading in one process gives (tested), both falling
back to this process for whatever a child fails to deliver:

- Several runs (``load_shared``): they are shared out, biggest first, among this process and
  ``jobs() - 1`` children; each child loads its runs to the end and sends each back whole (a
  run's state is bounded: a MiB or so), and this process takes them as they are.
- One long log (``load``): reading and parsing it (finding the records among tqdm redraws,
  orjson, columns) take about as long as absorbing what they give (the store, the diagnoser,
  the checklist). A helper runs ``Run.read`` on its copy of the run and sends, after each chunk,
  everything a poll has after reading: the items and events, the parser, and the tail's
  position; this process takes the parser and the position as its own and settles the items as
  ``poll`` does.

Children open the logs read-only, as the tail always does, and write only to their pipes.
"""

from __future__ import annotations

import functools
import os
import pickle
import select
import signal
import struct
import sys
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from . import memory
from .parse import LogParser
from .records import Event, Item
from .tail import FileTail, Position
from .update import RunUpdate

if TYPE_CHECKING:
    from .run import Handoff, Run

MIN_BYTES = 32 << 20  # below this a helper costs more (fork, pickling) than it saves
FIRST_BYTES = 512 << 10  # the helper's first read (see _helper)
MAX_JOBS = 8  # processes at most: a report is one-off, the box is there to train
PIPE_BYTES = 1 << 20  # a Feed's pipe: a whole chunk of parsed records fits
_LEN = struct.Struct("<Q")  # each message of a helper: its length, then the pickle
_NO_HELPER = "SFTTOP_NO_HELPER"  # set (to anything) to read everything in one process


class Read(NamedTuple):
    """What the long-log helper sends after each chunk: everything a poll has after reading."""

    records: list[Item]
    events: list[Event]
    changed: bool
    reset: str | None
    eof: bool
    parser: LogParser
    position: Position


def jobs() -> int:
    """Processes to load with: the cores this process may run on, at most ``MAX_JOBS``."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, MAX_JOBS))


def _unread(run: Run) -> int:
    try:
        return max(0, os.stat(run.path).st_size - run.source.offset)
    except OSError:
        return 0


def share_out(runs: list[Run], min_bytes: int = MIN_BYTES) -> bool:
    """Worth sharing ``runs`` out to processes: two or more with ``min_bytes`` to read between
    them, none more than half of it (one log that big does better with a ``load`` helper)."""
    sizes = [_unread(r) for r in runs]
    total = sum(sizes)
    return len([n for n in sizes if n]) >= 2 and total >= min_bytes and 2 * max(sizes) <= total


def load_shared(runs: list[Run], jobs: int, load_one: Callable[[Run], None]) -> list[Run]:
    """Load ``runs`` with ``load_one`` in ``jobs`` processes, this one included; the runs left
    to load (their child failed)."""
    shares: list[list[Run]] = [[] for _ in range(jobs)]
    loads = [0] * jobs
    for run in sorted(runs, key=_unread, reverse=True):  # each to the least loaded so far
        k = loads.index(min(loads))
        shares[k].append(run)
        loads[k] += _unread(run) + 1
    children: list[tuple[int, int, list[Run]]] = []
    left: list[Run] = []
    try:
        for part in shares[1:]:
            if not part:
                continue
            forked = _fork(functools.partial(_child, part, load_one), [fd for _pid, fd, _part in children])
            if forked is None:
                left.extend(part)
                continue
            children.append((*forked, part))
        for run in shares[0]:
            load_one(run)
        while children:
            pid, fd, part = children.pop(0)
            got = 0
            try:
                with open(fd, "rb") as f:
                    for run in part:
                        handoff: Handoff = pickle.load(f)
                        run.take_handoff(handoff)
                        got += 1
            except Exception:  # the child died, or sent something unreadable: the rest is ours
                pass
            finally:
                left.extend(part[got:])
                if got < len(part):
                    _stop(pid)
                _reap(pid)
    finally:
        for pid, fd, _part in children:  # interrupted: leave nothing behind
            os.close(fd)
            _stop(pid)
            _reap(pid)
    return [r for r in runs if r in left]


def _child(part: list[Run], load_one: Callable[[Run], None], fd: int) -> None:
    # Everything is loaded before anything is sent: the parent reads only once it has loaded its
    # own share, and a write to the pipe would wait for it.
    for run in part:
        load_one(run)
        if isinstance(run.source, FileTail):
            run.source.close()  # the descriptor is this process's: the run goes back without it
    with open(fd, "wb") as out:
        for run in part:
            pickle.dump(run.handoff(), out, pickle.HIGHEST_PROTOCOL)


def usable() -> bool:
    """Helpers can run here: Linux (where fork is the native way to start a process; training
    boxes run it), a second core, and not turned off."""
    return sys.platform.startswith("linux") and jobs() > 1 and not os.environ.get(_NO_HELPER)


def worth_it(run: Run, min_bytes: int = MIN_BYTES) -> bool:
    """The run is a log file (not a trainer_state.json) with at least ``min_bytes`` unread."""
    return not run.loaded and isinstance(run.source, FileTail) and _unread(run) >= min_bytes


def load(run: Run, budget: int, clock: Callable[[], float]) -> int:
    """Read ``run`` to the end of its log with a helper; the number of polls' worth taken from
    it. On return the run is loaded, or the helper stopped early (or never started: 0) and the
    caller goes on polling from where it got to."""
    forked = _fork(lambda w: _helper(run, budget, w), [])
    if forked is None:
        return 0
    pid, r = forked
    taken = 0
    try:
        with open(r, "rb", buffering=1 << 16) as f:
            while not run.loaded:
                try:
                    (n,) = _LEN.unpack(f.read(_LEN.size))
                    read: Read = pickle.loads(f.read(n))
                except Exception:  # the pipe closed (helper gone) or garbled
                    break
                _take(run, read, clock())
                taken += 1
    finally:
        if not run.loaded:
            _stop(pid)
        _reap(pid)
    return taken


class Feed:
    """A helper reading one long log, for a caller with other work between its chunks (the
    TUI's poll thread: other runs, a key press waiting for the engine lock). The same helper
    and messages as ``load``; the caller asks whether a chunk has arrived (``ready``, never
    blocks), receives it (``receive``: unpickled with no lock held) and settles it into the run
    (``settle``, under the engine lock). A helper that dies leaves the run where its last chunk
    put it: the caller goes on polling the run itself."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self._fd = fd
        os.set_blocking(fd, False)
        try:
            import fcntl

            # A chunk in one go rather than 64 KiB at a time (Linux's default pipe size).
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
        except (ImportError, OSError):
            pass
        self._buf = bytearray()
        self._eof = False
        self.done = False

    @classmethod
    def start(cls, run: Run, budget: int) -> Feed | None:
        forked = _fork(lambda w: _helper(run, budget, w), [])
        return None if forked is None else cls(*forked)

    def _fill(self) -> None:
        while not self._eof:
            try:
                data = os.read(self._fd, 1 << 20)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._eof = True
            self._buf += data

    def _frame(self) -> int:
        """The length of the first whole message in the buffer, or -1."""
        if len(self._buf) < _LEN.size:
            return -1
        (n,) = _LEN.unpack_from(self._buf)
        return n if len(self._buf) >= _LEN.size + n else -1

    def ready(self) -> bool:
        """A chunk has begun to arrive (the helper writes one whole: the rest follows at once),
        or the helper's end."""
        if self.done:
            return True
        if self._frame() < 0:
            self._fill()
        return bool(self._buf) or self._eof

    def fileno(self) -> int:
        return self._fd

    def receive(self) -> Read | None:
        """The next chunk (waiting for the rest of one begun); None when the helper is gone
        (it ended, died, or sent something unreadable)."""
        while not self.done and self._frame() < 0 and not self._eof:
            select.select([self._fd], [], [], 1.0)
            self._fill()
        n = self._frame()
        if self.done or n < 0:
            self.close()
            return None
        body = bytes(self._buf[_LEN.size : _LEN.size + n])
        del self._buf[: _LEN.size + n]
        try:
            msg: Read = pickle.loads(body)
        except Exception:
            self.close()
            return None
        return msg

    def settle(self, run: Run, msg: Read, now: float) -> RunUpdate:
        up = _take(run, msg, now)
        if run.loaded:
            self.close()
        return up

    def close(self) -> None:
        if not self.done:
            self.done = True
            os.close(self._fd)
            _stop(self.pid)
            _reap(self.pid)


def wait_any(feeds: list[Feed], timeout: float) -> None:
    """Sleep until one of ``feeds`` has something to receive, at most ``timeout`` seconds."""
    live = [f for f in feeds if not f.done]
    if not live:
        time.sleep(timeout)
        return
    try:
        select.select(live, [], [], timeout)
    except (OSError, ValueError):
        time.sleep(timeout)


def _helper(run: Run, budget: int, fd: int) -> None:
    # A helper reads once and exits, as a report does (the TUI's own heap is not held).
    memory.hold_freed()
    src = run.source
    assert isinstance(src, FileTail)
    # A short first read: this process waits for it with nothing to do (4 MiB took ~45 ms to
    # arrive, 512 KiB ~11 ms, on a 300k-record HF log).
    size = min(budget, FIRST_BYTES)
    with open(fd, "wb", buffering=0) as out:
        while True:
            up = RunUpdate()
            eof = run.read(src, size, up)
            size = budget
            read = Read(up.records, up.events, up.changed, up.reset, eof, run.parser, src.position())
            body = pickle.dumps(read, pickle.HIGHEST_PROTOCOL)
            # Each chunk goes out whole, its length first: the parent works on it while this
            # reads on (and a parent with other work can tell a whole chunk from part of one).
            out.write(_LEN.pack(len(body)) + body)
            if eof or src.error is not None:
                return


def _take(run: Run, read: Read, now: float) -> RunUpdate:
    assert isinstance(run.source, FileTail)
    run.parser = read.parser
    run.source.move_to(read.position)
    up = RunUpdate(read.records, read.events, [], read.changed, read.reset)
    run.settle(up, read.eof, now)
    return up


def _fork(work: Callable[[int], None], inherited: list[int]) -> tuple[int, int] | None:
    """Start a child that runs ``work`` on the write end of a new pipe and exits; (its pid, the
    read end), or None when it could not be started. The child first closes ``inherited``
    (descriptors of this process it has no use for)."""
    r, w = os.pipe()
    try:
        with warnings.catch_warnings():
            # (3.12+ warns when a threaded process forks: the TUI's poll thread does, and the
            # child runs only the helper, which takes no lock another thread could hold; a
            # warning printed would land on the TUI's screen)
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid == 0:
        code = 1
        try:
            os.close(r)
            for fd in inherited:
                os.close(fd)
            _quiet_signals()
            work(w)
            code = 0
        except BaseException:  # whatever happened, the parent does the work itself
            pass
        finally:
            # No atexit handlers, no flushing of stdio buffers inherited from the parent.
            os._exit(code)
    os.close(w)
    return pid, r


def _quiet_signals() -> None:
    """In a child: no handler of the parent's (a TUI's resize, its event loop's wake-up pipe)
    runs here, and the terminal's interrupt is the parent's to handle."""
    try:
        signal.set_wakeup_fd(-1)
    except (ValueError, OSError):
        pass
    for name, action in (("SIGWINCH", signal.SIG_DFL), ("SIGINT", signal.SIG_IGN)):
        try:
            signal.signal(getattr(signal, name), action)
        except (AttributeError, ValueError, OSError):
            pass


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except (OSError, KeyboardInterrupt):
        pass
