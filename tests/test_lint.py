"""ruff and mypy (strict, from pyproject.toml) are clean: run here so CI runs them with the tests.

mypy checks the package as it is imported (``sfttop``, ``sfttop.core``, ``sfttop.tui``), which the
source tree only is through setuptools' package-dir mapping: a throwaway tree of symlinks gives
it that layout, so the same check runs on an editable install and on a fresh one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install '.[test]')")
    return found


def test_ruff_is_clean() -> None:
    p = subprocess.run([_tool("ruff"), "check", "--no-cache", str(ROOT)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr


def test_mypy_strict_is_clean(tmp_path: Path) -> None:
    pkg = tmp_path / "src" / "sfttop"
    pkg.mkdir(parents=True)
    for f in (ROOT / "cli").iterdir():
        if f.suffix in (".py", ".typed"):
            os.symlink(f, pkg / f.name)
    os.symlink(ROOT / "core", pkg / "core")
    os.symlink(ROOT / "tui", pkg / "tui")
    env = {**os.environ, "MYPYPATH": str(tmp_path / "src")}
    p = subprocess.run(
        [_tool("mypy"), "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / "cache"),
         "-p", "sfttop"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Success" in p.stdout
