"""glibc heap settings: trim for the long-lived TUI, hold freed memory for a one-off report."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from sfttop.core import memory

# Three 4 MiB buffers made and dropped, as a read chunk and the tail's and parser's copies of it
# are; the page faults of doing that 20 times (61,440 pages touched).
_CHURN = textwrap.dedent(
    """
    import resource, sys
    from sfttop.core import memory
    held = memory.hold_freed() if sys.argv[1] == "hold" else None
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(2):
        a = bytes(4 << 20); b = bytes(4 << 20); c = bytes(4 << 20); del a, b, c
    f0 = faults()
    for _ in range(20):
        a = bytes(4 << 20); b = bytes(4 << 20); c = bytes(4 << 20); del a, b, c
    print(held, faults() - f0)
    """
)


def _churn(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True)
    held, faults = out.stdout.split()
    return held, int(faults)


# ~100 MB of malloc'd blocks freed beneath one still held: free() alone cannot shrink the heap
# past the held block, so the pages stay resident until a trim gives them back.
_FREED_BELOW_A_PIN = textwrap.dedent(
    """
    import gc, os, sys
    from sfttop.core import memory
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    junk = [bytes(1000) for _ in range(100_000)]  # above pymalloc's 512 B: each one malloc'd
    pin = bytes(1000)
    del junk
    gc.collect()
    before = rss()
    trimmed = memory.trim() if sys.argv[1] == "trim" else None
    print(trimmed, before, rss())
    """
)


def _freed(mode: str) -> tuple[str, int, int]:
    out = subprocess.run([sys.executable, "-c", _FREED_BELOW_A_PIN, mode], capture_output=True, text=True, check=True)
    trimmed, before, after = out.stdout.split()
    return trimmed, int(before), int(after)


def test_trim_says_whether_it_ran() -> None:
    """True exactly where there is glibc's malloc_trim (not on musl or macOS)."""
    assert memory.trim() is (platform.libc_ver()[0] == "glibc")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_trim_gives_freed_heap_pages_back() -> None:
    trimmed, before, after = _freed("trim")
    assert trimmed == "True"
    assert before - after > 60 << 20, (before, after)  # most of the ~100 MB freed
    # ... and it is the trim that does it: without one the pages stay resident
    _none, before0, after0 = _freed("keep")
    assert after0 > before0 - (10 << 20), (before0, after0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc heap settings")
def test_held_memory_is_reused_without_page_faults() -> None:
    held, faults = _churn("hold")
    if held != "True":
        pytest.skip("no glibc mallopt here (musl?)")
    # The same pages serve every round: next to no faults, where each round would otherwise map
    # its buffers afresh (glibc 2.36: ~1,400 faults; a trim after each round: all 61,440).
    assert faults < 200
