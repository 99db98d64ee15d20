"""``--alert-cmd``: one command per finding episode, no shell, JSON on stdin, rate-limited."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sfttop.core.alert import AlertDispatcher, alert_payload
from sfttop.core.diagnose import Finding, Severity


def _finding(code: str = "loss_nonfinite", sev: Severity = Severity.CRITICAL, value: float = math.nan) -> Finding:
    return Finding(code, sev, 120, "loss", value, f"loss is {value} at step 120", ["lower the learning rate"])


class FakeSpawn:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], bytes, dict[str, str]]] = []

    def __call__(self, argv: list[str], payload: bytes, env: dict[str, str]) -> Any:
        self.calls.append((argv, payload, env))
        return None


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_payload_is_json_with_nan_spelled_out() -> None:
    d = json.loads(alert_payload("run-a", _finding()))
    assert d["run"] == "run-a" and d["code"] == "loss_nonfinite" and d["severity"] == "critical"
    assert d["value"] == "nan" and d["advice"] == ["lower the learning rate"]
    assert "suppressed" not in d


def test_split_once_no_shell_and_env() -> None:
    spawn = FakeSpawn()
    cmd = "notify --title 'sfttop alert' $HOME;rm"
    disp = AlertDispatcher(cmd, spawner=spawn)
    out = disp.offer("evil;$(reboot)", _finding())
    assert out.status == "sent"
    argv, payload, env = spawn.calls[0]
    assert argv == ["notify", "--title", "sfttop alert", "$HOME;rm"]  # shlex, never a shell
    assert env["SFTTOP_RUN"] == "evil;$(reboot)" and env["SFTTOP_CODE"] == "loss_nonfinite"
    assert env["SFTTOP_SEVERITY"] == "critical"
    assert json.loads(payload)["run"] == "evil;$(reboot)"


def test_severity_floor() -> None:
    spawn = FakeSpawn()
    disp = AlertDispatcher("x", min_severity="critical", spawner=spawn)
    assert disp.offer("r", _finding("overfitting", Severity.WARNING, 2.0)).status == "below"
    disp = AlertDispatcher("x", min_severity="warning", spawner=spawn)
    assert disp.offer("r", _finding("overfitting", Severity.WARNING, 2.0)).status == "sent"
    assert disp.offer("r", _finding("accuracy_slow", Severity.INFO, 0.8)).status == "below"
    with pytest.raises(ValueError):
        AlertDispatcher("   ")
    with pytest.raises(ValueError):
        AlertDispatcher("x", min_severity="loud")


def test_rate_limit_counts_and_reports_the_excess() -> None:
    spawn = FakeSpawn()
    clock = Clock()
    disp = AlertDispatcher("x", max_per_minute=2, clock=clock, spawner=spawn)
    results = [disp.offer("r", _finding()).status for _ in range(5)]
    assert results == ["sent", "sent", "suppressed", "suppressed", "suppressed"]
    assert disp.suppressed == 3 and "3 rate-limited" in disp.status()
    clock.t += 61
    assert disp.offer("r", _finding()).status == "sent"
    assert json.loads(spawn.calls[-1][1])["suppressed"] == 3  # the next alert says what was dropped
    assert disp.offer("r", _finding()).status == "sent"
    assert "suppressed" not in json.loads(spawn.calls[-1][1])


def test_min_interval() -> None:
    clock = Clock()
    disp = AlertDispatcher("x", min_interval=60, clock=clock, spawner=FakeSpawn())
    assert disp.offer("r", _finding()).status == "sent"
    clock.t += 30
    assert disp.offer("r", _finding()).status == "suppressed"
    clock.t += 31
    assert disp.offer("r", _finding()).status == "sent"


def test_missing_command_is_counted_not_raised() -> None:
    disp = AlertDispatcher("/nonexistent/sfttop-alert-tool --flag")
    out = disp.offer("r", _finding())
    assert out.status == "failed" and disp.failed == 1 and disp.last_error
    assert "1 failed" in disp.status()


def test_real_command_gets_the_finding_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "got.json"
    script = tmp_path / "hook.py"
    script.write_text(
        "import json, os, sys\n"
        "d = json.load(sys.stdin)\n"
        "d['env_code'] = os.environ['SFTTOP_CODE']\n"
        f"open({str(out)!r}, 'w').write(json.dumps(d))\n"
    )
    disp = AlertDispatcher(f"{sys.executable} {script}")
    assert disp.offer("alpha", _finding()).status == "sent"
    deadline = time.monotonic() + 10
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
        disp.reap()
    disp.close()
    got = json.loads(out.read_text())
    assert got["run"] == "alpha" and got["code"] == "loss_nonfinite" and got["env_code"] == "loss_nonfinite"


def test_hung_command_is_killed(tmp_path: Path) -> None:
    clock = Clock()
    disp = AlertDispatcher(f"{sys.executable} -c 'import time; time.sleep(30)'", timeout=5, clock=clock)
    assert disp.offer("r", _finding()).status == "sent"
    assert disp.running == 1
    clock.t += 6
    disp.reap()
    assert disp.running == 0 and "killed" in (disp.last_error or "")
