#!/usr/bin/env python3
"""``sfttop`` with its inotify waker switched off: the poll-only path that a log on NFS, or a
container without inotify, gets. The benchmark uses it to measure append latency when the poll
interval alone bounds it.

    python bench/sfttop_nowake.py [sfttop arguments...]
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any


def _disable_waker() -> bool:
    try:
        wake: Any = importlib.import_module("sfttop.core.wake")
    except ImportError:
        return False
    original = wake.Waker.__init__

    def init(self: Any) -> None:
        original(self)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1
        self._libc = None

    wake.Waker.__init__ = init
    return True


if __name__ == "__main__":
    if not _disable_waker():
        print("sfttop_nowake: this sfttop has no inotify waker (sfttop.core.wake)", file=sys.stderr)
    cli: Any = importlib.import_module("sfttop.cli")
    sys.exit(cli.main())
