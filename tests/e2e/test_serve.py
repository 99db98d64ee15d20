"""``sfttop --serve``: the app in a browser through textual-serve, loopback unless asked otherwise."""

from __future__ import annotations

import io
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

import pytest

from helpers import ROOT
from hookserver import HookServer
from sfttop.cli import build_parser
from sfttop.core.config import Config
from sfttop.serve import INSTALL_HINT, child_command, is_loopback, serve

sys.path.insert(0, str(ROOT / "scripts"))
import browser_shot

RUNS = [str(ROOT / "tests" / "fixtures" / "real" / "tf5" / r) for r in ("nan_unfiltered", "healthy")]


class FakeServer:
    made: ClassVar[list[FakeServer]] = []

    def __init__(self, command: str, **kw: Any) -> None:
        self.command = command
        self.kw = kw
        FakeServer.made.append(self)

    def serve(self) -> None:
        pass


def _serve(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, FakeServer | None]:
    import textual_serve.server

    monkeypatch.setattr(textual_serve.server, "Server", FakeServer)
    for var in ("SFTTOP_FORCE_TUI", "SFTTOP_SERVED"):  # serve() sets them: undone after the test
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    FakeServer.made = []
    out = io.StringIO()
    code = serve(build_parser().parse_args(["--serve", *argv]), Config(), out)
    return code, out.getvalue(), (FakeServer.made[0] if FakeServer.made else None)


def test_loopback_by_default_with_the_ssh_line(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, srv = _serve(["--serve-port", "9123", "runs/*/train.log"], monkeypatch)
    assert code == 0 and srv is not None
    assert srv.kw["host"] == "127.0.0.1" and srv.kw["port"] == 9123
    assert srv.kw["public_url"] == "http://127.0.0.1:9123"
    assert "ssh -L 9123:127.0.0.1:9123 " in out and "WARNING" not in out
    # each tab's app: this Python, the glob quoted for the shell textual-serve uses, no alert flags
    assert srv.command.startswith(f"{sys.executable} -m sfttop") and srv.command.endswith("-- 'runs/*/train.log'")


def test_a_non_loopback_bind_warns_about_no_authentication(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, srv = _serve(["--serve-host", "0.0.0.0", "--serve-port", "9124", "x.log"], monkeypatch)
    assert code == 0 and srv is not None and srv.kw["host"] == "0.0.0.0"
    assert "WARNING" in out and "NO authentication" in out
    assert not srv.kw["public_url"].startswith("http://0.0.0.0")  # browsers cannot dial 0.0.0.0


def test_without_the_extra_it_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)  # import now raises ImportError
    monkeypatch.setenv("SFTTOP_SERVED", "")
    out = io.StringIO()
    assert serve(build_parser().parse_args(["--serve", "x.log"]), Config(), out) == 2
    assert out.getvalue() == INSTALL_HINT + "\n" and "pip install 'sfttop[web]'" in INSTALL_HINT


def test_usage_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _serve([], monkeypatch)[0] == 2
    assert _serve(["--serve-port", "0", "x.log"], monkeypatch)[0] == 2
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("example.org")


def test_the_child_keeps_config_and_format_but_not_alerting() -> None:
    args = build_parser().parse_args(
        ["--serve", "--config", "c.toml", "--log-format", "jsonl", "--alert-cmd", "x", "--alert-webhook",
         "https://hooks.slack.com/services/T", "a b.log"])
    cmd = child_command(args)
    assert "--log-format jsonl" in cmd and "c.toml" in cmd and "'a b.log'" in cmd
    assert "alert" not in cmd and "hooks.slack.com" not in cmd


@pytest.fixture(scope="module")
def served() -> Any:
    """``sfttop --serve`` on the fixture runs, alerting critical findings to a local stand-in."""
    with HookServer() as hooks:
        port = browser_shot.free_port()
        extra = ("--alert-webhook", hooks.url(), "--alert-webhook-format", "json", "--alert-severity", "critical")
        proc = browser_shot.start_server(RUNS, port, extra)
        yield port, hooks
        browser_shot.stop_server(proc)


def test_serve_answers_on_loopback_with_the_app_page(served: tuple[int, HookServer]) -> None:
    port, _hooks = served
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
        page = r.read().decode()
    assert r.status == 200 and "textual-terminal" in page
    assert f"ws://127.0.0.1:{port}/ws" in page


@pytest.mark.skipif(browser_shot.chromium() is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_a_real_browser_shows_the_runs_and_the_banner(served: tuple[int, HookServer], tmp_path: Path) -> None:
    port, hooks = served
    png = tmp_path / "browser.png"
    text = browser_shot.capture(f"http://127.0.0.1:{port}/", ["nan_unfiltered", "healthy", "loss is nan"], png)
    assert "runs (2)" in text and "nan_unfiltered" in text and "healthy" in text  # the run list
    assert "CRIT" in text and "loss is nan at step 26" in text  # the alert banner
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    # The critical NaN was posted once, by the serving process; the tab's own app did not post it again.
    time.sleep(1.0)
    (seen,) = hooks.wait_for(1)
    d = json.loads(seen.body)
    assert (d["run"], d["code"]) == ("nan_unfiltered", "loss_nonfinite")
