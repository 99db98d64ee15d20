from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The shared modules (helpers, synth, the fake servers) sit here, the tests in core/, tui/, e2e/.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import FIXTURES

# Snapshot tests and the TUI must not pick up the developer's config or colour settings.
os.environ.setdefault("XDG_CONFIG_HOME", str(Path(__file__).parent / "fixtures" / "no-config"))


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
