"""Textual's Linux driver with an input thread that sleeps until there is input.

Textual's input thread selects on the terminal with a 0.1 s timeout so that its parser can
settle a lone Escape (``ESCDELAY``, 0.1 s): ten wake-ups a second whether or not a key is
pressed. Each one takes the interpreter from the thread that has it; on a box where runs write
that was 0.1-0.17% of a core, a fifth of sfttop's idle figure (``bench/README.md``). Here the
thread blocks until the terminal or the driver's exit has something for it, and times out only
while the parser may be holding a partial sequence (input came in the last two escape delays).
"""

from __future__ import annotations

import os
import selectors
import threading
from codecs import getincrementaldecoder
from collections.abc import Callable

from textual import constants
from textual._parser import ParseError
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver


class _WakingEvent(threading.Event):
    """The driver's exit flag: setting it also wakes the input thread (Textual's thread saw the
    flag at its next 0.1 s time-out; ours would never)."""

    def __init__(self, wake: Callable[[], None]) -> None:
        super().__init__()
        self._wake = wake

    def set(self) -> None:
        super().set()
        self._wake()


class QuietLinuxDriver(LinuxDriver):
    """``LinuxDriver`` whose input thread wakes for input, an escape time-out or exit only."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.exit_event = _WakingEvent(self._wake)

    def _wake(self) -> None:
        if self._wake_w < 0:
            return  # (closed: no thread to wake, and the number may belong to another file now)
        try:
            os.write(self._wake_w, b"x")
        except OSError:  # (a full pipe: the thread has a wake-up waiting already)
            pass

    def close(self) -> None:
        super().close()
        fds, self._wake_r, self._wake_w = (self._wake_r, self._wake_w), -1, -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)

    def run_input_thread(self) -> None:
        """Textual's ``run_input_thread`` with the wait changed: as long as input keeps coming,
        a time-out of the escape delay (the parser's only time-out) lets ``tick`` settle a lone
        Escape; after two quiet time-outs the parser holds nothing and the wait has none."""
        selector = selectors.SelectSelector()  # (as Textual: poll and epoll miss ttys on macOS)
        fileno = self.fileno
        wake = self._wake_r
        selector.register(fileno, selectors.EVENT_READ)
        selector.register(wake, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        delay = max(constants.ESCAPE_DELAY, 0.01) + 0.005
        quiet = 2  # time-outs since the last input (2: nothing can be pending)

        def handle(ready: bool) -> None:
            if ready:
                data = decode(os.read(fileno, 1024 * 4))
                if data:
                    for event in parser.feed(data):
                        self.process_message(event)
                else:  # end of input (a closed terminal): nothing more to wait for on it
                    selector.unregister(fileno)
            for event in parser.tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                ready = selector.select(delay if quiet < 2 else None)
                if any(key.fd == wake for key, _ in ready):
                    self._drain_wake()
                tty = any(key.fd == fileno for key, _ in ready)
                quiet = 0 if tty else quiet + (not ready)
                handle(tty)
            if fileno in selector.get_map():
                selector.unregister(fileno)
            self._drain_wake()
            handle(False)  # (the parser's last time-out; Textual reads no more input here either)
        finally:
            selector.close()
            try:
                for _event in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except OSError:  # (empty: BlockingIOError; closed under us: nothing left to drain)
            pass
