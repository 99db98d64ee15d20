"""sfttop on a real terminal (a pseudo-terminal): the path of Textual's Linux driver, which the
pilot's headless driver never takes. Its input thread sleeps until a key comes (``tui/driver.py``;
Textual's wakes ten times a second) and still settles a lone Escape and quits on ``q``."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers import REAL

LOG = REAL / "tf5" / "healthy" / "train.log"
TEXTUALS = "textual.drivers.linux_driver:LinuxDriver"  # Textual's own driver, named as --serve names one

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="a POSIX pseudo-terminal")


class Term:
    """sfttop on the slave side of a pty, 100x30; the master side read by a thread."""

    def __init__(self, proc: subprocess.Popen[bytes], fd: int) -> None:
        self.proc, self.fd = proc, fd
        self.out = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            self.out += data

    def wait_for(self, text: bytes, timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while text not in self.out:
            assert self.proc.poll() is None, f"sfttop exited ({self.proc.returncode}) before showing {text!r}"
            assert time.monotonic() < end, f"no {text!r} on the terminal in {timeout} s"
            time.sleep(0.05)

    def send(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def wakes(self) -> dict[int, int]:
        """Voluntary context switches (sleeps ended) of each thread, by thread id."""
        out = {}
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    out[int(task.name)] = int(line.split()[1])
        return out


@contextmanager
def term(driver: str | None = None) -> Iterator[Term]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "TEXTUAL_DRIVER"}
    env["TERM"] = "xterm-256color"
    if driver:
        env["TEXTUAL_DRIVER"] = driver
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfttop", str(LOG)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    t = Term(proc, master)
    try:
        yield t
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        os.close(master)


def _wakes(t: Term, seconds: float) -> list[int]:
    """Each thread's wake-ups over ``seconds`` of a screen with nothing to do, most first."""
    t.wait_for(b"quit")
    time.sleep(2.0)  # (the history read, the first frames drawn)
    before = t.wakes()
    time.sleep(seconds)
    after = t.wakes()
    return sorted((after[k] - before.get(k, 0) for k in after), reverse=True)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")
def test_only_the_poll_thread_wakes_when_nothing_happens() -> None:
    with term() as t:
        ours = _wakes(t, 4.0)
    with term(TEXTUALS) as t:
        textuals = _wakes(t, 4.0)
    # The poll thread wakes a few times a second (its interval) in both; the control shows the
    # test can tell: Textual's input thread wakes every 0.1 s
    assert textuals[0] >= 30 and textuals[1] >= 10, textuals
    assert ours[1] <= 3, ours


def test_a_lone_escape_closes_the_help_and_q_then_quits() -> None:
    with term() as t:
        t.wait_for(b"quit")
        t.send(b"?")
        t.wait_for(b"Keys")
        t.send(b"\x1b")
        # Escape (the parser's time-out settles it: no key follows) closes the help screen; had it
        # not, q would close it (q is one of its keys) and sfttop would still be running
        time.sleep(0.6)
        t.send(b"q")
        assert t.proc.wait(10) == 0
