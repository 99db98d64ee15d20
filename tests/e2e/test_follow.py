"""``sfttop --follow --format jsonl`` from outside, while a writer does what real logs do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import REAL


class Follower:
    def __init__(self, *paths: str, extra: tuple[str, ...] = ()) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sfttop", "--follow", "--format", "jsonl", "--interval", "0.05", *extra, *paths],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def records(self) -> list[dict]:
        return [x for x in self.lines if x.get("kind") in ("train", "eval")]

    def wait_for(self, n: int, timeout: float = 15.0) -> None:
        end = time.time() + timeout
        while time.time() < end and len(self.records()) < n:
            time.sleep(0.02)

    def settle(self) -> None:
        time.sleep(0.4)

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self._t.join(timeout=5)
        return err


def jl(step: int) -> bytes:
    return b'{"step": %d, "loss": %r, "learning_rate": 1e-05}\n' % (step, 1.0 + step / 1000)


def hf(i: int) -> bytes:
    return b"{'loss': %r, 'grad_norm': 1.0, 'learning_rate': 1e-05, 'epoch': %r}\n" % (1.0 + i / 1000, i / 1000)


@pytest.fixture
def follower_cleanup():
    made: list[Follower] = []
    yield made
    for f in made:
        if f.proc.poll() is None:
            f.stop()


def test_every_record_once_through_appends_partial_writes_truncation_rotation(
    tmp_path: Path, follower_cleanup: list[Follower]
) -> None:
    log = tmp_path / "run" / "metrics.jsonl"
    log.parent.mkdir()
    f = Follower(str(log))  # the file does not exist yet
    follower_cleanup.append(f)
    written: list[int] = []
    step = 0

    def write(n: int, bytewise: bool = False) -> None:
        nonlocal step
        with open(log, "ab") as fh:
            for _ in range(n):
                step += 1
                data = jl(step)
                if bytewise:
                    for i in range(len(data)):
                        fh.write(data[i : i + 1])
                        fh.flush()
                else:
                    fh.write(data)
                written.append(step)

    f.settle()
    write(50)  # appears later, big append
    f.wait_for(len(written))
    write(3, bytewise=True)  # a writer that flushes a byte at a time
    f.wait_for(len(written))
    with open(log, "r+b") as fh:  # copytruncate / `> train.log`
        fh.truncate(0)
    f.settle()
    write(20)
    f.wait_for(len(written))
    os.rename(log, str(log) + ".1")  # rotation: rename, new file
    write(20)
    f.wait_for(len(written))
    os.unlink(log)  # deleted, then created again (a restarted run)
    f.settle()
    write(10)
    f.wait_for(len(written))
    # a record cut mid-write stays unread until its newline
    with open(log, "ab") as fh:
        fh.write(b'{"step": 99999, "loss": 0.1')
    f.settle()
    err = f.stop()
    got = [r["step"] for r in f.records()]
    assert "Traceback" not in err
    assert sorted(got) == sorted(written), (len(got), len(written))
    assert len(got) == len(set(got))


def test_hf_stdout_lines_each_once_across_truncation(tmp_path: Path, follower_cleanup: list[Follower]) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(b"".join(hf(i) for i in range(1, 31)))
    f = Follower(str(log))
    follower_cleanup.append(f)
    f.wait_for(30)
    with open(log, "r+b") as fh:
        fh.truncate(0)
    f.settle()
    with open(log, "ab") as fh:
        for i in range(31, 41):
            fh.write(hf(i))
    f.wait_for(40)
    f.stop()
    losses = [r["metrics"]["loss"] for r in f.records()]
    assert losses == [1.0 + i / 1000 for i in range(1, 41)]


def test_follow_reports_a_finding_as_json(tmp_path: Path, follower_cleanup: list[Follower]) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(b"".join(hf(i) for i in range(1, 21)))
    f = Follower(str(log))
    follower_cleanup.append(f)
    f.wait_for(20)
    with open(log, "ab") as fh:
        fh.write(b"{'loss': nan, 'grad_norm': nan, 'learning_rate': 1e-05, 'epoch': 0.021}\n")
    end = time.time() + 10
    while time.time() < end and not any(x.get("finding", {}).get("code") == "loss_nonfinite" for x in f.lines):
        time.sleep(0.05)
    f.stop()
    findings = [x["finding"] for x in f.lines if x.get("kind") == "finding"]
    assert any(x["code"] == "loss_nonfinite" and x["severity"] == "critical" for x in findings)


def test_many_runs_from_one_glob_without_running_out_of_descriptors(
    tmp_path: Path, follower_cleanup: list[Follower]
) -> None:
    for i in range(200):
        d = tmp_path / f"r{i:03d}"
        d.mkdir()
        (d / "train.log").write_bytes(hf(1) + hf(2))
    f = Follower(str(tmp_path / "*" / "train.log"))
    follower_cleanup.append(f)
    f.wait_for(400, timeout=60)
    err = f.stop()
    assert len(f.records()) == 400
    assert "Too many open files" not in err




def _save(path: Path, state: dict, in_place: bool) -> None:
    text = json.dumps(state, indent=2)
    if in_place:
        path.write_text(text)
    else:  # how the Trainer's own save goes on some filesystems: write aside, rename over
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


def test_state_file_rewritten_five_times_gives_each_record_and_finding_once(
    tmp_path: Path, follower_cleanup: list[Follower]
) -> None:
    state = json.loads((REAL / "tf4/nan_filtered/trainer_state.json").read_text())
    hist = state["log_history"]
    path = tmp_path / "trainer_state.json"
    f = Follower(str(path))
    follower_cleanup.append(f)
    f.settle()
    for k in range(5):
        cut = len(hist) * (k + 1) // 5
        _save(path, {**state, "log_history": hist[:cut]}, in_place=k % 2 == 1)
        want = sum(1 for e in hist[:cut] if "loss" in e or "eval_loss" in e)
        f.wait_for(want)
        time.sleep(0.3)  # a save every few hundred ms, faster than any real one
    f.settle()
    f.stop()
    keys = [(r["kind"], r["step"]) for r in f.records()]
    assert len(keys) == len(set(keys)) == sum(1 for e in hist if "loss" in e or "eval_loss" in e)
    findings = [(x["finding"]["code"], x["finding"]["step"]) for x in f.lines if x.get("kind") == "finding"]
    assert findings and len(findings) == len(set(findings))
    assert not any(x.get("event") == "resumed" for x in f.lines)


ALERT_SCRIPT = """
import os, sys, time
d = sys.argv[1]
body = sys.stdin.read()
with open(os.path.join(d, "%d-%d.json" % (time.time_ns(), os.getpid())), "w") as f:
    f.write(body)
"""


def test_follow_runs_the_alert_command_once_per_new_finding(tmp_path: Path, follower_cleanup: list[Follower]) -> None:
    script = tmp_path / "alert.py"
    script.write_text(ALERT_SCRIPT)
    sent = tmp_path / "sent"
    sent.mkdir()
    config = tmp_path / "config.toml"
    config.write_text("[alert]\nmin_interval_seconds = 0\nmin_severity = \"warning\"\n")
    log = tmp_path / "train.log"
    log.write_bytes(b"".join(hf(i) for i in range(1, 21)))
    cmd = f"{sys.executable} {script} {sent}"
    f = Follower(str(log), extra=("--config", str(config), "--alert-cmd", cmd))
    follower_cleanup.append(f)
    f.wait_for(20)
    with open(log, "ab") as fh:  # a NaN, then a healthy stretch, then another NaN: two episodes
        fh.write(b"{'loss': nan, 'grad_norm': nan, 'learning_rate': 1e-05, 'epoch': 0.021}\n")
        for i in range(22, 40):
            fh.write(hf(i))
        fh.write(b"{'loss': nan, 'grad_norm': nan, 'learning_rate': 1e-05, 'epoch': 0.040}\n")
    end = time.time() + 15
    found: list[dict] = []
    while time.time() < end:
        found = [x["finding"] for x in f.lines if x.get("kind") == "finding"]
        if len(found) >= 2 and len(list(sent.iterdir())) >= len(found):
            break
        time.sleep(0.05)
    f.settle()
    err = f.stop()
    alerts = [json.loads(p.read_text()) for p in sorted(sent.iterdir())]
    # (the commands run side by side: their files are in no particular order)
    assert sorted((a["code"], a["step"]) for a in alerts) == sorted((x["code"], x["step"]) for x in found), err
    assert sum(a["code"] == "loss_nonfinite" for a in alerts) == 2
    assert {a["run"] for a in alerts} == {r["run"] for r in f.records()}


def test_follow_rejects_an_empty_alert_command(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(hf(1))
    p = subprocess.run([sys.executable, "-m", "sfttop", "--follow", "--alert-cmd", " ", str(log)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "--alert-cmd" in p.stderr
