"""The command line as a user and a script see it: help, version, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import FIXTURES
from sfttop import __version__

FIX = FIXTURES


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


@pytest.mark.parametrize("value", ["0", "-1", "1e9", "nan", "inf"])
def test_interval_out_of_range_is_one_line_and_exit_2(value: str) -> None:
    p = sfttop("--interval", value, "--report", str(FIX / "formats" / "generic" / "metrics.jsonl"))
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr.count("\n") == 1 and "--interval" in p.stderr


def _unread(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 64)
    other = tmp_path / "nginx.log"
    other.write_text('127.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 612\n' * 20)
    empty = tmp_path / "empty.log"
    empty.write_text("")
    return {
        "missing": (tmp_path / "nope" / "train.log", "cannot read"),
        "binary": (binary, "no records recognised in"),
        "unsupported": (other, "no records recognised in 20 lines of"),
        "empty": (empty, "no records recognised in 0 lines of"),
    }


@pytest.mark.parametrize("kind", ["missing", "binary", "unsupported", "empty"])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_log_with_no_records_is_an_error_not_a_clean_report(tmp_path: Path, kind: str, fmt: str) -> None:
    path, words = _unread(tmp_path)[kind]
    p = sfttop("--report", "--format", fmt, str(path))
    assert p.returncode == 2
    assert p.stdout == ""  # no "nothing alarming" report for a log nobody read
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and words in lines[0] and str(path) in lines[0]
    if kind != "missing":
        assert "formats read: HF Trainer/TRL stdout" in lines[0]


def test_an_unreadable_file_says_why(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads a chmod 000 file")
    path = tmp_path / "train.log"
    path.write_text("{'loss': 1.0}\n")
    path.chmod(0)
    p = sfttop("--report", str(path))
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.startswith(f"sfttop: cannot read {path}: ")


def test_good_and_unread_logs_report_the_good_one_and_exit_2(tmp_path: Path) -> None:
    good = FIX / "formats" / "llamafactory" / "trainer_log.jsonl"
    p = sfttop("--report", "--format", "json", str(good), str(tmp_path / "missing.log"))
    assert p.returncode == 2
    assert [r["path"] for r in json.loads(p.stdout)["runs"]] == [str(good)]
    assert p.stderr.count("\n") == 1 and "missing.log" in p.stderr


def test_no_log_found_is_said_once_on_stderr(tmp_path: Path) -> None:
    p = sfttop("--report", str(tmp_path))
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("no log found") == 1


@pytest.mark.parametrize(
    "keys,words",
    [
        ('quit = "ctrl+shift+f13+banana"', "keys.quit: 'f13' is not a modifier"),
        ('quit = "bananas"', "keys.quit: 'bananas' is not a key name"),
        ('next_metric = "q"', "keys.next_metric: 'q' is already the key of 'quit'"),
        ('quit = "tab"', "keys.quit: 'tab' is already the key of 'next_run'"),
    ],
)
def test_bad_key_remaps_are_one_line_and_exit_2(tmp_path: Path, keys: str, words: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[keys]\n{keys}\n")
    p = sfttop("--config", str(cfg), "--report", str(FIX / "formats" / "generic" / "metrics.jsonl"))
    assert p.returncode == 2 and p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sfttop: config: {words}")


def test_keymap_check() -> None:
    from sfttop.tui.keys import keymap_error

    assert keymap_error({}) is None
    assert keymap_error({"next_run": "n", "help": "?,f1", "smooth": "ctrl+s", "quit": "ctrl+q"}) is None
    assert keymap_error({"quit": "x"}) is not None  # x is the x-axis key
    err = keymap_error({"quit": "ctrl+q", "interrupt": "ctrl+q"})
    assert err is not None and "ctrl+q" in err


@pytest.mark.parametrize(
    "args",
    [["--foo"], ["--format", "xml", "x.log"], ["--interval", "abc", "x.log"], ["--report"], [],
     ["--report", "--follow", "x.log"], ["--follow", "--format", "md", "x.log"]],
)
def test_usage_errors_are_one_line_on_stderr(args: list[str]) -> None:
    p = sfttop(*args)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("sfttop: ")


def test_unread_reason_words(tmp_path: Path) -> None:
    from sfttop.core.config import Config
    from sfttop.core.run import Monitor
    from sfttop.core.unread import unread_reason

    missing = tmp_path / "later" / "train.log"
    mon = Monitor([str(missing)], Config())
    mon.load_all()
    run = mon.runs[0]
    assert unread_reason(run) == f"cannot read {missing}: file not found"  # --report: an error
    assert unread_reason(run, final=False) == f"waiting for {missing}: the file does not exist yet"  # live
    good = Monitor([str(FIX / "formats" / "generic" / "metrics.jsonl")], Config())
    good.load_all()
    assert unread_reason(good.runs[0]) is None
