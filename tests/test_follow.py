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


class Follower:
    def __init__(self, *paths: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sfttop", "--follow", "--format", "jsonl", "--interval", "0.05", *paths],
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
