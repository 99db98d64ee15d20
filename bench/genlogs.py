#!/usr/bin/env python3
"""The benchmark's logs: the generator lives with the tests (``tests/synth.py``), which use the
same shapes; this keeps ``python bench/genlogs.py`` and ``import genlogs`` working for bench/."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from synth import *  # noqa: F403
from synth import cached, main, records, write, write_jsonl  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
