"""The README is the contract: its commands, its schema and its tables must stay true."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sfttop.core.config import config_reference
from sfttop.core.diagnose import CODES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_config_key_is_documented() -> None:
    for key, default, _doc in config_reference():
        assert f"`{key}` | `{default}`" in README, key


def test_the_config_table_is_the_generated_one() -> None:
    """Row for row, in the config's order, with its doc: regenerate the table when a threshold changes."""
    rows = "\n".join(f"| `{key}` | `{default}` | {doc} |" for key, default, doc in config_reference())
    assert rows in README


def test_every_finding_code_is_documented() -> None:
    for code in CODES:
        assert f"`{code}`" in README, code


def test_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    cmds = re.findall(r"^    (python3 -m venv .*)$", README, flags=re.M)
    assert len(cmds) == 2
    assert cmds[0].endswith("sfttop --demo")
    assert cmds[1].endswith("pytest -q")
    ci = (ROOT / ".ci" / "run").read_text()
    assert cmds[1] in ci


def test_report_schema_keys_match_the_json(tmp_path: Path) -> None:
    import json
    import sys

    log = ROOT / "tests" / "fixtures" / "real" / "tf5" / "healthy" / "train.log"
    p = subprocess.run(
        [sys.executable, "-m", "sfttop", "--report", "--format", "json", str(log)],
        capture_output=True, text=True, timeout=60,
    )
    run = json.loads(p.stdout)["runs"][0]
    for key in run:
        assert f'"{key}"' in README, key
