"""Loading a long log with its reading and parsing in a helper process.

On a long log, reading and parsing (finding the records among tqdm redraws, orjson, columns)
take about as long as absorbing what they give (the store, the diagnoser, the checklist). A
forked helper does the first while this process does the second, so ``--report`` on a week-long
log needs about half the time on a machine with a spare core.

The helper runs ``Run.read`` on its copy of the run and sends, after each chunk, everything a
poll has after reading: the items and events, the parser, and the tail's position. This process
takes the parser and the position as its own and settles the items as ``poll`` does, so the run
ends in exactly the state reading alone gives (tested). If the helper fails, reading goes on
here from the last state it sent. Nothing else changes: the helper opens the log read-only, as
the tail always does, and writes only to its pipe.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .run import Run

MIN_BYTES = 32 << 20  # below this a helper costs more (fork, pickling) than it saves
_NO_HELPER = "SFTTOP_NO_HELPER"  # set (to anything) to read everything in one process


def usable() -> bool:
    """A helper can run here: fork exists, there is a second core, and it is not turned off."""
    return hasattr(os, "fork") and (os.cpu_count() or 1) > 1 and not os.environ.get(_NO_HELPER)


def worth_it(run: Run, min_bytes: int = MIN_BYTES) -> bool:
    """The run is a log file (not a trainer_state.json) with at least ``min_bytes`` unread."""
    from .tail import FileTail

    if run.loaded or not isinstance(run.source, FileTail):
        return False
    try:
        size = os.stat(run.path).st_size
    except OSError:
        return False
    return size - run.source.offset >= min_bytes


def load(run: Run, budget: int, clock: Callable[[], float]) -> int:
    """Read ``run`` to the end of its log with a helper; the number of polls' worth taken from
    it. On return the run is loaded, or the helper stopped early (or never started: 0) and the
    caller goes on polling from where it got to."""
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return 0
    if pid == 0:  # the helper
        code = 1
        try:
            os.close(r)
            _helper(run, budget, w)
            code = 0
        except BaseException:  # whatever happened, the parent carries on alone
            pass
        finally:
            # No atexit handlers, no flushing of stdio buffers inherited from the parent.
            os._exit(code)
    os.close(w)
    taken = 0
    try:
        with open(r, "rb", buffering=1 << 16) as f:
            while not run.loaded:
                try:
                    msg = pickle.load(f)
                except Exception:  # the pipe closed (helper gone) or garbled
                    break
                _take(run, msg, clock())
                taken += 1
    finally:
        if not run.loaded:
            _stop(pid)
        _reap(pid)
    return taken


def _helper(run: Run, budget: int, fd: int) -> None:
    from .run import RunUpdate
    from .tail import FileTail

    src = run.source
    assert isinstance(src, FileTail)
    with open(fd, "wb", buffering=1 << 16) as out:
        while True:
            up = RunUpdate()
            eof = run.read(src, budget, up)
            state = {k: v for k, v in vars(src).items() if k != "_fd"}
            pickle.dump((up.records, up.events, up.changed, eof, run.parser, state), out, pickle.HIGHEST_PROTOCOL)
            # Each chunk goes out whole at once: the parent works on it while this reads on.
            out.flush()
            if eof or src.error is not None:
                return


def _take(run: Run, msg: tuple[Any, ...], now: float) -> None:
    from .run import RunUpdate

    records, events, changed, eof, parser, state = msg
    run.parser = parser
    vars(run.source).update(state)
    run.settle(RunUpdate(records, events, [], changed), eof, now)


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
