"""glibc heap settings: trim for the long-lived TUI, hold freed memory for a one-off report."""

from __future__ import annotations

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


def test_trim_runs_or_says_it_cannot() -> None:
    assert memory.trim() in (True, False)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc heap settings")
def test_held_memory_is_reused_without_page_faults() -> None:
    held, faults = _churn("hold")
    if held != "True":
        pytest.skip("no glibc mallopt here (musl?)")
    # The same pages serve every round: next to no faults, where each round would otherwise map
    # its buffers afresh (glibc 2.36: ~1,400 faults; a trim after each round: all 61,440).
    assert faults < 200
