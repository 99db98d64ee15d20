"""The command line as a user and a script see it: help, version, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sfttop import __version__

FIX = Path(__file__).parent / "fixtures"


def sfttop(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "sfttop", *args], capture_output=True, text=True, timeout=120, env=e
    )


def test_version() -> None:
    p = sfttop("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"sfttop {__version__}"


def test_one_version_everywhere() -> None:
    """The installed metadata and the report read the version that ``sfttop.__version__`` holds."""
    import importlib.metadata

    from sfttop.core.config import Config
    from sfttop.core.report import build

    assert importlib.metadata.version("sfttop") == __version__
    report, _code = build([str(FIX / "real" / "tf5" / "healthy" / "train.log")], Config())
    assert report["sfttop_version"] == __version__


def test_help_shows_real_examples() -> None:
    p = sfttop("--help")
    assert p.returncode == 0
    for needle in ("--report", "--follow", "--demo", "runs/*/train.log", "exit status"):
        assert needle in p.stdout


def test_no_paths_is_a_usage_error() -> None:
    p = sfttop("--report")
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_missing_path_exits_2_and_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "train.log"
    p = sfttop("--report", str(missing))
    assert p.returncode == 2
    assert str(missing) in p.stderr
    assert "Traceback" not in p.stderr


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[thresholds]\ngrad_norm_wran = 3\n")
    p = sfttop("--config", str(cfg), "--report", str(FIX / "formats" / "generic" / "metrics.jsonl"))
    assert p.returncode == 2 and "grad_norm_wran" in p.stderr


@pytest.mark.parametrize("fmt", ["json", "text", "md"])
def test_report_formats_run(fmt: str) -> None:
    p = sfttop("--report", "--format", fmt, str(FIX / "formats" / "llamafactory" / "trainer_log.jsonl"))
    assert p.returncode in (0, 1), p.stderr
    assert "Traceback" not in p.stderr
    if fmt == "json":
        r = json.loads(p.stdout)
        assert r["runs"][0]["records"] == {"train": 48, "eval": 4}


def test_tui_refuses_a_pipe() -> None:
    p = sfttop(str(FIX / "formats" / "generic" / "metrics.jsonl"))
    assert p.returncode == 2 and "--report" in p.stderr


def test_core_never_imports_textual_or_rich() -> None:
    code = (
        "import sys, pkgutil, importlib, sfttop.core as c\n"
        "for m in pkgutil.iter_modules(c.__path__):\n"
        "    importlib.import_module('sfttop.core.' + m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')]\n"
        "print(','.join(bad))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == ""


def test_a_long_logs_current_values_are_known_before_its_history(tmp_path: Path) -> None:
    from sfttop.core.config import Config
    from sfttop.core.run import Run

    log = tmp_path / "train.log"
    with open(log, "w") as f:
        for i in range(1, 60_001):
            f.write(f"{{'loss': {1 + 1 / i!r}, 'grad_norm': 1.0, 'learning_rate': 2e-05, 'epoch': {i / 1e4!r}}}\n")
    run = Run("r", str(log), Config())
    run.poll(budget=64 << 10)
    assert not run.loaded
    assert run.preview is not None
    assert run.preview.series["loss"].values[-1] == 1 + 1 / 60_000
    while not run.loaded:
        run.poll(budget=1 << 20)
    assert run.preview is None and run.data.series["loss"].values[-1] == 1 + 1 / 60_000
