"""``sfttop --follow --alert-webhook``: a NaN run tells a local stand-in Feishu once per finding,
and a slow service never holds back the record stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from hookserver import HookServer, Reply


def hf(i: int) -> bytes:
    return b"{'loss': %r, 'grad_norm': 1.0, 'learning_rate': 1e-05, 'epoch': %r}\n" % (1.0 + i / 1000, i / 1000)


NAN = b"{'loss': nan, 'grad_norm': nan, 'learning_rate': 1e-05, 'epoch': %r}\n"


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra or {})
    return env


class Follow:
    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sfttop", "--follow", "--format", "jsonl", "--interval", "0.05", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(env),
        )
        self.lines: list[tuple[float, dict]] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), json.loads(line)))

    def records(self) -> list[dict]:
        return [x for _t, x in self.lines if x.get("kind") in ("train", "eval")]

    def findings(self) -> list[dict]:
        return [x["finding"] for _t, x in self.lines if x.get("kind") == "finding"]

    def wait(self, cond: object, timeout: float = 15.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not cond():  # type: ignore[operator]
            time.sleep(0.02)

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


def test_nan_run_posts_one_feishu_message_per_finding_and_never_delays_records(tmp_path: Path) -> None:
    log = tmp_path / "run-a" / "train.log"
    log.parent.mkdir()
    log.write_bytes(b"".join(hf(i) for i in range(1, 21)))
    # The stand-in answers the first message only after 3 s: a slow service.
    with HookServer([Reply(delay=3.0)]) as srv:
        f = Follow("--alert-webhook", srv.url("/open-apis/bot/v2/hook/TOKEN"), "--alert-webhook-format", "feishu",
                   "--alert-severity", "warning", str(log))
        try:
            f.wait(lambda: len(f.records()) >= 20)
            with open(log, "ab") as fh:  # NaN, a healthy stretch, NaN again: two episodes
                fh.write(NAN % 0.021)
                for i in range(22, 40):
                    fh.write(hf(i))
                fh.write(NAN % 0.040)
            f.wait(lambda: len(f.findings()) >= 2)
            srv.wait_for(1)
            # While the service sits on the first message, records keep flowing at once.
            written = time.monotonic()
            with open(log, "ab") as fh:
                fh.write(hf(41))
            f.wait(lambda: len(f.records()) >= 41)
            arrived = next(t for t, x in f.lines if x.get("kind") == "train" and x.get("step") == 41)
            assert arrived - written < 1.5 and len(srv.seen) < 3
            expected = [x for x in f.findings() if x["severity"] in ("warning", "critical")]
            srv.wait_for(len(expected), timeout=15)
            time.sleep(0.5)
        finally:
            code, err = f.stop()
    assert code == 0, err
    assert len(srv.seen) == len(expected) and sum(x["code"] == "loss_nonfinite" for x in expected) == 2, err
    posted = []
    for seen in srv.seen:
        d = json.loads(seen.body)
        assert seen.path == "/open-apis/bot/v2/hook/TOKEN" and d["msg_type"] == "post"
        post = d["content"]["post"]["zh_cn"]
        text = "\n".join(el["text"] for row in post["content"] for el in row)
        assert isinstance(post["title"], str) and "run-a" in post["title"] and "step" in text
        posted.append(text)
    for x in expected:
        assert sum(x["message"] in t and f"step {x['step']}" in t for t in posted) == 1, (x, posted)
    assert "TOKEN" not in err


def test_a_400_is_one_line_on_stderr_and_the_records_are_untouched(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(b"".join(hf(i) for i in range(1, 21)) + NAN % 0.021 + NAN % 0.022)
    with HookServer(default=Reply(400, b'{"error":"bad"}')) as srv:
        f = Follow("--alert-webhook", srv.url("/hook/SECRET"), "--alert-webhook-format", "slack", str(log))
        try:
            f.wait(lambda: len(f.records()) >= 22)
            srv.wait_for(1)
            time.sleep(0.3)
        finally:
            code, err = f.stop()
    lines = [ln for ln in err.splitlines() if "webhook" in ln]
    assert code == 0 and len(lines) == 1, err
    assert "HTTP 400" in lines[0] and "SECRET" not in err
    assert all(x.get("kind") != "status" for _t, x in f.lines)


def test_bad_webhook_arguments_are_usage_errors(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(hf(1))
    for extra, msg in [
        (["--alert-webhook", "https://example.org/hook/TOKEN"], "--alert-webhook-format"),
        (["--alert-webhook", "file:///etc/passwd", "--alert-webhook-format", "json"], "http"),
        (["--alert-webhook-format", "slack"], "need --alert-webhook"),
        (["--alert-webhook", "https://oapi.dingtalk.com/robot/send?access_token=T",
          "--alert-webhook-secret-env", "SFTTOP_TEST_UNSET_VAR"], "SFTTOP_TEST_UNSET_VAR"),
    ]:
        p = subprocess.run([sys.executable, "-m", "sfttop", "--follow", *extra, str(log)],
                           capture_output=True, text=True, timeout=30, env=_env())
        assert p.returncode == 2 and msg in p.stderr, (extra, p.stderr)
        assert "TOKEN" not in p.stderr and p.stdout == ""


def test_every_flavour_from_the_config_gets_exactly_one_message(tmp_path: Path) -> None:
    log = tmp_path / "run-b" / "train.log"
    log.parent.mkdir()
    log.write_bytes(b"".join(hf(i) for i in range(1, 21)))
    flavours = ("slack", "discord", "feishu", "dingtalk", "wecom", "ntfy", "json")
    with HookServer() as srv:
        config = tmp_path / "config.toml"
        config.write_text('[alert]\nmin_severity = "critical"\n' + "".join(
            f'[[alert.webhook]]\nurl = "{srv.url("/" + fl)}"\nformat = "{fl}"\nsecret_env = "HOOK_SECRET"\n'
            for fl in flavours))
        f = Follow("--config", str(config), str(log), env={"HOOK_SECRET": "s3cr3t"})
        try:
            f.wait(lambda: len(f.records()) >= 20)
            with open(log, "ab") as fh:
                fh.write(NAN % 0.021)
            f.wait(lambda: len(f.findings()) >= 1)
            srv.wait_for(len(flavours))
            time.sleep(0.5)
        finally:
            code, err = f.stop()
    assert code == 0 and "s3cr3t" not in err, err
    assert sorted(s.path for s in srv.seen) == sorted("/" + fl for fl in flavours), err
    by = {s.path[1:]: s for s in srv.seen}
    assert json.loads(by["slack"].body)["blocks"] and json.loads(by["discord"].body)["embeds"]
    assert json.loads(by["feishu"].body)["sign"] and by["dingtalk"].query["sign"]
    assert json.loads(by["wecom"].body)["msgtype"] == "markdown"
    assert by["ntfy"].headers["Priority"] == "urgent" and b"loss is nan" in by["ntfy"].body
    assert json.loads(by["json"].body)["code"] == "loss_nonfinite"
