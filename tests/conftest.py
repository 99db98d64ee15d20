from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The shared modules (helpers, synth, the fake servers) sit here, the tests in core/, tui/, e2e/.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import FIXTURES

# Snapshot tests and the TUI must not pick up the developer's config or colour settings.
os.environ.setdefault("XDG_CONFIG_HOME", str(Path(__file__).parent / "fixtures" / "no-config"))
# ... nor their language: the suite speaks English (SFTTOP_LANG outranks the locale variables
# and the config; only --lang beats it), except where a test asks for Chinese.
os.environ["SFTTOP_LANG"] = "en"


@pytest.fixture(autouse=True)
def _english_again() -> Iterator[None]:
    """The language is process-wide: a test that ran ``main(["--lang", "zh", ...])`` in-process
    must not leave the next test speaking Chinese."""
    yield
    from sfttop.core import i18n

    if i18n.get_lang() != "en":
        i18n.set_lang("en")


@pytest.fixture
def zh() -> None:
    """The test speaks Chinese (``_english_again`` puts English back after it)."""
    from sfttop.core import i18n

    i18n.set_lang("zh")


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
