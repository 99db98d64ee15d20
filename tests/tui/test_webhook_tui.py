"""The TUI hands new finding episodes to ``--alert-webhook`` from its poll thread and shows the
sender's state (and failures) in the title bar."""

from __future__ import annotations

import json
from pathlib import Path

from hookserver import HookServer, Reply
from sfttop.core.config import Config
from sfttop.core.webhook import Target, WebhookSender
from sfttop.tui.app import SfttopApp
from sfttop.tui.widgets.title_bar import TitleBar


def _log(path: Path, n: int = 20) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{{'loss': {2.0 - i / 100}, 'grad_norm': 1.0, 'learning_rate': 1e-05, "
                            f"'epoch': {i / 100}}}\n" for i in range(1, n + 1)))


async def _until(pilot: object, cond: object, timeout: float = 10.0) -> bool:
    for _ in range(int(timeout / 0.05)):
        if cond():  # type: ignore[operator]
            return True
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    return bool(cond())  # type: ignore[operator]


async def test_a_nan_in_the_tui_posts_once_and_a_failure_shows_in_the_title(tmp_path: Path) -> None:
    log = tmp_path / "alpha" / "train.log"
    _log(log)
    with HookServer([Reply(200)], default=Reply(400)) as srv:
        sender = WebhookSender([Target(srv.url("/hook/TOKEN"), "json", "critical")], digest_window=0.05, backoff=0.05)
        app = SfttopApp([str(log)], Config(), interval=0.05, rescan_seconds=0.1, webhooks=sender)
        async with app.run_test(size=(140, 30)) as pilot:
            assert await _until(pilot, lambda: not app.monitor.loading and app.polls > 2)
            with open(log, "a") as f:
                f.write("{'loss': nan, 'grad_norm': nan, 'learning_rate': 1e-05, 'epoch': 0.21}\n")
            srv.wait_for(1)
            title = app.query_one("#title", TitleBar)
            assert await _until(pilot, lambda: title.info is not None and "webhooks 1 sent" in title.info.alerts)
            with open(log, "a") as f:  # a new episode, after a healthy stretch; the service now says 400
                f.write("".join(f"{{'loss': 1.5, 'grad_norm': 1.0, 'learning_rate': 1e-05, 'epoch': {0.22 + i / 100}}}\n"
                                for i in range(8)))
                f.write("{'loss': nan, 'grad_norm': nan, 'learning_rate': 1e-05, 'epoch': 0.31}\n")
            srv.wait_for(2)
            assert await _until(pilot, lambda: title.info is not None and "1 failed" in title.info.alerts)
            assert "TOKEN" not in title.info.alerts and "HTTP 400" in title.info.alerts
    first = json.loads(srv.seen[0].body)
    assert first["run"] == "alpha" and first["code"] == "loss_nonfinite"
    assert len(srv.seen) == 2  # one per episode, the 400 not retried
