"""A log written by an attacker: the report and the TUI survive it, and nothing gets through.

The lines are those of the shared hostile check (deep nesting, invalid UTF-8, NUL bytes, OSC 52
clipboard writes and title changes, a 20 MB line without a newline, absurd numbers, Python
expressions in place of values, a record cut mid-write) mixed with valid records.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sfttop.core.config import Config
from sfttop.tui.app import SfttopApp

PWNED = "/tmp/sfttop-test-pwned"


def rec(step: int, loss: float, gn: float = 1.5) -> bytes:
    return b"{'loss': %r, 'grad_norm': %r, 'learning_rate': 2e-05, 'epoch': %.2f}\n" % (loss, gn, step / 1000)


def hostile_log(path: Path) -> int:
    out = bytearray()
    train = 0
    for s in range(1, 51):
        out += rec(s * 10, 1.0 / s + 0.1)
        train += 1
    out += b"{'loss': " + b"[" * 100000 + b"]" * 100000 + b"}\n"
    out += b"{'loss': 0.5, 'grad_norm': \xff\xfe\xfd, 'epoch': 0.1}\n"
    out += b"\x00\x00\x00 NUL noise \x00\n"
    out += b"\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b]0;pwned-title\x07\x1b[2J\x1b[H warning: escape noise\n"
    out += b"{'loss': 0.4, 'grad_norm': 1.0, 'note': '\x1b]0;evil\x07', 'ev\x1b]0;il\x07': 3.0, 'epoch': 0.2}\n"
    train += 1
    out += b"{'loss': " + b"9" * 5000 + b", 'epoch': 0.3}\n"
    train += 1
    out += b"{'loss': nan, 'grad_norm': inf, 'learning_rate': 1e-05, 'epoch': 0.4}\n"
    train += 1
    out += b"{'loss': tensor(0.3512, device='cuda:0'), 'epoch': 0.5}\n"
    out += b"x" * (20 * 1024 * 1024) + b"\n"
    out += f"__import__('os').system('touch {PWNED}')\n".encode()
    out += f"{{'loss': __import__('os').system('touch {PWNED}'), 'epoch': 0.6}}\n".encode()
    out += b"Traceback (most recent call last):\n  File \"x\", line 1\nValueError: \x1b]0;evil-title\x07boom\n"
    for s in range(51, 101):
        out += rec(s * 10, 1.0 / s + 0.1)
        train += 1
    out += b"{'loss': 0.12, 'grad_n"
    path.write_bytes(bytes(out))
    return train


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    p = tmp_path_factory.mktemp("hostile") / "train.log"
    return p, hostile_log(p)


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "sfttop", *args], capture_output=True, timeout=120)


def test_report_counts_the_valid_records_and_exits_cleanly(log: tuple[Path, int]) -> None:
    path, train = log
    p = run("--report", "--format", "json", str(path))
    assert p.returncode in (0, 1)
    assert b"Traceback" not in p.stderr
    r = json.loads(p.stdout)["runs"][0]
    assert r["records"]["train"] == train
    assert r["skipped_lines"] >= 4
    assert any(f["code"] == "loss_nonfinite" for f in r["findings"])
    import os

    assert not os.path.exists(PWNED)


@pytest.mark.parametrize("fmt", ["text", "md", "json"])
def test_no_escape_sequence_from_the_log_reaches_the_output(log: tuple[Path, int], fmt: str) -> None:
    p = run("--report", "--format", fmt, str(log[0]))
    for bad in (b"\x1b", b"\x07", b"\x00", b"\x9b", b"\x9d"):
        assert bad not in p.stdout, (fmt, bad)
    assert b"pwned-title" not in p.stdout and b"evil" not in p.stdout.replace(b"evil-title", b"")


def test_follow_neutralises_escapes(log: tuple[Path, int]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfttop", "--follow", str(log[0])], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = proc.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, err = proc.communicate()
    assert b"\x1b" not in out and b"\x07" not in out
    assert b"Traceback" not in err


async def test_tui_stays_up_and_prints_no_escape_from_the_log(log: tuple[Path, int]) -> None:
    app = SfttopApp([str(log[0])], Config(), replay=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.export_screenshot()
        await pilot.press("tab", "m", "s", "l", "x", "v", "v", "v", "v")
        await pilot.pause()
    assert "pwned" not in screen and "evil" not in screen
    assert app.return_code in (None, 0)
