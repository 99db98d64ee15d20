from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REAL = FIXTURES / "real"
FORMATS = FIXTURES / "formats"

# Snapshot tests and the TUI must not pick up the developer's config or colour settings.
os.environ.setdefault("XDG_CONFIG_HOME", str(Path(__file__).parent / "fixtures" / "no-config"))


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
