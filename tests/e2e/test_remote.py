"""Remote paths over a real OpenSSH server on 127.0.0.1 (``tests/sshd.py``)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import REAL, screen_lines
from sfttop.core import remote
from sfttop.core.config import load_config
from sfttop.core.follow import follow
from sfttop.core.records import expand
from sfttop.core.remote import Target, parse_remote
from sfttop.core.report import build
from sshd import Server, make_server, unavailable


@pytest.mark.parametrize(
    ("arg", "want"),
    [
        ("gpu1:runs/*/train.log", Target("gpu1", None, "runs/*/train.log")),
        ("me@gpu2:/data/exp/", Target("me@gpu2", None, "/data/exp/")),
        ("gpu1:", Target("gpu1", None, ".")),
        ("ssh://me@gpu3:2222/~/exp/run7/", Target("me@gpu3", 2222, "~/exp/run7/")),
        ("ssh://gpu3/data/x.log", Target("gpu3", None, "/data/x.log")),
        ("[::1]:logs/a.log", Target("::1", None, "logs/a.log")),
        ("./a:b", None),
        ("/abs:x/train.log", None),
        ("runs/a:b", None),
        ("train.log", None),
        ("-oProxyCommand=x:y", None),
    ],
)
def test_remote_paths_follow_scp_rules(arg: str, want: Target | None) -> None:
    assert parse_remote(arg) == want


def test_labels_name_the_host_and_port() -> None:
    t = parse_remote("ssh://me@gpu3:2222/x")
    assert t is not None and t.label == "gpu3:2222" and t.display("/x") == "gpu3:2222:/x"


# -- against sshd -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    why = unavailable()
    if why is not None:
        pytest.skip(f"no OpenSSH server: {why}")
    root = Path(tempfile.mkdtemp(prefix="sfttop-sshd-"))
    srv = make_server(root / "srv")
    try:
        srv.start()
    except (RuntimeError, OSError) as e:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"sshd does not start here: {e}")
    old = os.environ.get(remote.ENV_TIMEOUT)
    os.environ[remote.ENV_TIMEOUT] = "3"  # a hung connection is given up on quickly in tests
    remote.set_ssh_command(srv.ssh_command)
    try:
        yield srv
    finally:
        remote.set_ssh_command(None)
        if old is None:
            os.environ.pop(remote.ENV_TIMEOUT, None)
        else:
            os.environ[remote.ENV_TIMEOUT] = old
        srv.stop()
        shutil.rmtree(root, ignore_errors=True)


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            st = os.lstat(os.path.join(dirpath, n))
            out[os.path.relpath(os.path.join(dirpath, n), root)] = (st.st_size, st.st_mtime_ns)
    return out


def _strip_place(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _strip_place(v) for k, v in obj.items() if k not in ("name", "path", "sfttop_version")}
    if isinstance(obj, str) and obj.startswith(("h1:", "h2:")):
        return obj.split(":", 1)[1]
    if isinstance(obj, list):
        return [_strip_place(v) for v in obj]
    return obj


def test_report_over_ssh_equals_the_local_report(server: Server, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for i, src in enumerate(sorted(p for p in REAL.rglob("*") if p.is_file() and p.suffix in (".log", ".jsonl"))[:3]):
        (runs / f"r{i}").mkdir(parents=True)
        shutil.copy(src, runs / f"r{i}" / src.name)
    before = _tree(runs)
    cfg = load_config(None)
    local, code_l = build([f"{runs}/*/"], cfg, clock=lambda: 2e9)
    far, code_r = build([f"h1:{runs}/*/"], cfg, clock=lambda: 2e9)
    assert [r["name"] for r in far["runs"]] == [r["name"] for r in local["runs"]]
    assert all(r["path"].startswith("h1:/") for r in far["runs"])
    assert orjson.dumps(_strip_place(far)) == orjson.dumps(_strip_place(local))
    assert code_r == code_l
    assert len(local["runs"]) == 3 and all(r["records"]["train"] > 0 for r in local["runs"])
    assert _tree(runs) == before  # nothing written on the remote side


def _line(step: int) -> bytes:
    return orjson.dumps({"current_steps": step, "total_steps": 10_000, "loss": 2.0 - step * 1e-4,
                         "lr": 1e-5, "epoch": step / 1000}) + b"\n"


def _append(path: Path, a: int, b: int) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(_line(s) for s in range(a, b)))


class Follower:
    def __init__(self, args: list[str]) -> None:
        self.out = io.StringIO()
        self.err = io.StringIO()
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=follow, args=(args, load_config(None), "jsonl", self.out),
            kwargs={"interval": 0.1, "stop": self.stop, "err": self.err}, daemon=True,
        )
        self.thread.start()

    def lines(self) -> list[dict[str, object]]:
        return [orjson.loads(x) for x in self.out.getvalue().splitlines() if x]

    def steps(self, run: str | None = None) -> Counter[int]:
        return Counter(int(d["step"]) for d in self.lines()  # type: ignore[call-overload]
                       if d["kind"] == "train" and (run is None or d["run"] == run))

    def wait_for(self, last: int, timeout: float = 20.0, run: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if last in self.steps(run):
                return
            time.sleep(0.05)
        raise AssertionError(f"step {last} never arrived; got up to {max(self.steps(run), default=None)}")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def _masters(control_base: Path) -> list[int]:
    """The ssh processes using this test's own control directory (by pid, nothing else)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes()
        except OSError:
            continue
        if str(control_base).encode() in cmd and cmd.startswith(b"ssh"):
            pids.append(int(d))
    return pids


def test_follow_over_ssh_through_faults_emits_every_record_once(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctl = Path(tempfile.mkdtemp(prefix="c", dir="/tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(ctl))  # this test's own ControlPath directory
    run = tmp_path / "exp" / "a"
    run.mkdir(parents=True)
    log = run / "trainer_log.jsonl"
    _append(log, 1, 51)
    before_tree = None
    f = Follower([f"h2:{log}"])
    try:
        f.wait_for(50)
        _append(log, 51, 101)  # appends
        f.wait_for(100)
        with open(log, "r+b") as fh:  # copytruncate
            fh.truncate(0)
        _append(log, 101, 121)
        f.wait_for(120)
        os.rename(log, str(log) + ".1")  # rotation
        _append(log, 121, 141)
        f.wait_for(140)
        masters = _masters(ctl)  # the connection killed under it
        assert masters, "no ssh process under the test's control directory"
        for pid in masters:
            os.kill(pid, 9)
        _append(log, 141, 161)
        f.wait_for(160)
        server.stop()  # sshd stopped and started again (a reboot)
        _append(log, 161, 181)
        time.sleep(1.0)
        server.start()
        f.wait_for(180, timeout=30)
        frozen = server.freeze()  # a network that hangs: no reset, no answer
        before_tree = _tree(run)
        _append(log, 181, 201)
        f.wait_for(200, timeout=30)
        for pid in frozen:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    finally:
        f.close()
        shutil.rmtree(ctl, ignore_errors=True)
    steps = f.steps()
    assert sorted(steps) == list(range(1, 201))
    assert set(steps.values()) == {1}, {s: n for s, n in steps.items() if n > 1}
    assert before_tree is not None and set(_tree(run)) == set(before_tree)


def test_a_host_that_refuses_the_key_is_one_line_while_local_runs_go_on(server: Server, tmp_path: Path) -> None:
    local = tmp_path / "local.jsonl"
    _append(local, 1, 11)
    f = Follower([f"badkey:{tmp_path}/*.jsonl", str(local)])
    try:
        f.wait_for(10)
        _append(local, 11, 21)
        f.wait_for(20)
        deadline = time.monotonic() + 10
        while not any(d["kind"] == "status" for d in f.lines()) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        f.close()
    status = [d for d in f.lines() if d["kind"] == "status"]
    assert len(status) == 1
    assert status[0]["message"] == "cannot log in to badkey: run `ssh badkey` once"
    assert sorted(f.steps()) == list(range(1, 21))


def test_the_cli_takes_ssh_command_and_reports_remote_paths(server: Server, tmp_path: Path) -> None:
    log = tmp_path / "r" / "trainer_log.jsonl"
    log.parent.mkdir()
    _append(log, 1, 31)
    env = {k: v for k, v in os.environ.items() if k != remote.ENV_COMMAND}
    cmd = ["sfttop", "--report", "--format", "json", "--ssh-command", server.ssh_command, f"ssh://h3/{log.parent}/"]
    got = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert got.returncode in (0, 1), got.stderr
    rep = orjson.loads(got.stdout)
    assert rep["runs"][0]["records"]["train"] == 30
    assert re.fullmatch(r"h3:/.*/r/trainer_log\.jsonl", rep["runs"][0]["path"])


# -- failure messages, from a stand-in for ssh (no server needed) ----------------------------

@pytest.mark.parametrize(
    ("script", "want"),
    [
        ("echo 'me@gpu1: Permission denied (publickey).' >&2; exit 255", "cannot log in to gpu1: run `ssh gpu1` once"),
        ("echo 'Host key verification failed.' >&2; exit 255", "cannot log in to gpu1: run `ssh gpu1` once"),
        ("echo 'sh: 1: exec: python3: not found' >&2; exit 127", "gpu1 has no python3 (sfttop's remote agent needs it)"),
        ("printf 'Traceback (most recent call last):\\n  ...\\nSyntaxError: future feature annotations is not defined\\n' >&2; exit 1",
         "gpu1: its python3 is too old for sfttop's remote agent (3.7+ needed)"),
        ("echo 'ssh: connect to host gpu1 port 22: Connection refused' >&2; exit 255",
         "gpu1 unreachable since HH:MM, retrying (ssh: connect to host gpu1 port 22: Connection refused)"),
    ],
)
def test_a_host_that_cannot_be_read_says_why_in_one_line(script: str, want: str, tmp_path: Path) -> None:
    from sfttop.core.run import Monitor

    remote.set_ssh_command(f"sh -c {script!r} fake-ssh")
    try:
        t0 = time.monotonic()
        mon = Monitor(["gpu1:runs/*/train.log", str(tmp_path / "local.log")], load_config(None), remote_wait=5)
        try:
            assert time.monotonic() - t0 < 5
            standin = [r for r in mon.runs if r.remote]
            assert len(standin) == 1 and standin[0].name.startswith("gpu1:")
            standin[0].poll()
            err = standin[0].error or ""
            m = re.search(r"since (\d\d:\d\d)", err)
            if m:  # the wall-clock time it went down, as the user reads a clock
                now = time.time()
                assert m.group(1) in {time.strftime("%H:%M", time.localtime(now - d)) for d in (0, 60)}
            got = re.sub(r"since \d\d:\d\d", "since HH:MM", err)
            assert got == want
            assert "\n" not in got
        finally:
            mon.close()
    finally:
        remote.set_ssh_command(None)


def test_an_unreadable_host_is_not_a_stalled_run(tmp_path: Path) -> None:
    """While its host cannot be reached, a run is not at the end of its log (no stall judged)."""
    from sfttop.core.remote import Host, RemoteTail

    t = parse_remote("gpu1:/x.log")
    assert t is not None
    host = Host(t, ["false"], str(tmp_path), "0", 1.0)
    tail = RemoteTail(host, "/x.log")
    tail.synced = tail.at_eof = True
    c = tail.poll()
    deadline = time.monotonic() + 5
    while host.problem is None and time.monotonic() < deadline:
        c = tail.poll()
        time.sleep(0.05)
    assert host.problem is not None and tail.error == host.problem
    assert not c.eof and not c.data
    host.close()


def test_remote_paths_are_not_watched_locally() -> None:
    from sfttop.core.wake import log_dirs

    assert log_dirs(["gpu1:/data/runs/*/train.log", "ssh://h/x/y.log"]) == set()


def test_a_login_banner_on_stdout_is_skipped(server: Server, tmp_path: Path) -> None:
    """A login script that prints (a motd from .bashrc) comes before the agent's frames."""
    log = tmp_path / "r" / "trainer_log.jsonl"
    log.parent.mkdir()
    _append(log, 1, 6)
    remote.set_ssh_command(f"sh -c 'printf \"Welcome to gpu1\\n\\0\\0\\0\\7{{junk\"; exec \"$@\"' banner {server.ssh_command}")
    try:
        rep, _code = build([f"h1:{log}"], load_config(None))
    finally:
        remote.set_ssh_command(server.ssh_command)
    assert rep["runs"][0]["records"]["train"] == 5


def test_a_run_started_later_on_the_host_appears(server: Server, tmp_path: Path) -> None:
    from sfttop.core.run import Monitor

    (tmp_path / "a").mkdir()
    _append(tmp_path / "a" / "trainer_log.jsonl", 1, 3)
    mon = Monitor([f"h4:{tmp_path}/*/"], load_config(None), remote_wait=10, rescan_seconds=0.2)
    try:
        assert [r.name for r in mon.runs] == ["a"]
        (tmp_path / "b").mkdir()
        _append(tmp_path / "b" / "trainer_log.jsonl", 1, 3)
        deadline = time.monotonic() + 10
        while len(mon.runs) < 2 and time.monotonic() < deadline:
            mon.rescan()
            mon.poll()
            time.sleep(0.1)
        assert sorted(r.name for r in mon.runs) == ["a", "b"]
    finally:
        mon.close()


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(["append", "append", "copytruncate", "rotate", "replace", "drop", "kill-master"]),
                min_size=3, max_size=7))
def test_records_arrive_once_across_random_faults(server: Server, ops: list[str]) -> None:
    from sfttop.core.run import Monitor

    root = Path(tempfile.mkdtemp(prefix="p", dir="/tmp"))
    ctl = root / "c"
    ctl.mkdir()
    log = root / "run" / "trainer_log.jsonl"
    log.parent.mkdir()
    step = 1
    _append(log, step, step + 5)
    step += 5
    old = tempfile.tempdir
    tempfile.tempdir = str(ctl)  # this example's own ControlPath directory
    mon = Monitor([f"h3:{log}"], load_config(None), remote_wait=10)
    seen: Counter[int] = Counter()

    def drain(last: int) -> None:
        deadline = time.monotonic() + 20
        while last not in seen and time.monotonic() < deadline:
            mon.rescan()
            for up in mon.poll().values():
                for rec in expand(up.records):
                    seen[rec.step] += 1
            time.sleep(0.05)
        assert last in seen, (ops, max(seen, default=None))

    try:
        drain(step - 1)
        for op in ops:
            if op == "copytruncate":
                with open(log, "r+b") as fh:
                    fh.truncate(0)
            elif op == "rotate":
                os.replace(log, str(log) + ".1")
            elif op == "drop":
                host = next(iter(mon._remotes.hosts.values()))  # type: ignore[union-attr]
                if host.proc is not None:
                    host.proc.kill()
            elif op == "kill-master":
                for pid in _masters(ctl):
                    os.kill(pid, 9)
            n = 1 + step % 7
            if op == "replace":  # a new file moved over the log (the old one's identity is gone)
                tmp = log.parent / "next.tmp"
                _append(tmp, step, step + n)
                os.replace(tmp, log)
            else:
                _append(log, step, step + n)
            step += n
            drain(step - 1)
    finally:
        mon.close()
        tempfile.tempdir = old
        shutil.rmtree(root, ignore_errors=True)
    assert sorted(seen) == list(range(1, step))
    assert set(seen.values()) == {1}, ops


def test_a_trainer_state_json_over_ssh_reads_as_the_local_one(server: Server, tmp_path: Path) -> None:
    src = next(REAL.rglob("trainer_state.json"), None)
    if src is None:
        pytest.skip("no trainer_state.json fixture")
    ckpt = tmp_path / "out" / "checkpoint-100"
    ckpt.mkdir(parents=True)
    shutil.copy(src, ckpt / "trainer_state.json")
    cfg = load_config(None)
    local, _ = build([f"{tmp_path}/out/"], cfg, clock=lambda: 2e9)
    step = (local["runs"][0]["best_checkpoint"] or {}).get("step")
    assert isinstance(step, int)
    best = tmp_path / "out" / f"checkpoint-{step}"  # the best eval's checkpoint, saved beside
    best.mkdir(exist_ok=True)
    local, _ = build([f"{tmp_path}/out/"], cfg, clock=lambda: 2e9)
    far, _ = build([f"h2:{tmp_path}/out/"], cfg, clock=lambda: 2e9)
    assert local["runs"][0]["records"]["train"] > 0
    # The checkpoint directories are listed on the host too (shown in host:path form).
    best_far, best_local = far["runs"][0]["best_checkpoint"], local["runs"][0]["best_checkpoint"]
    assert best_local is not None and best_local["path"] == str(best)
    assert best_far["path"] == f"h2:{best}"
    assert orjson.dumps(_strip_place(far)) == orjson.dumps(_strip_place(local))


async def test_the_tui_shows_a_remote_run_beside_a_local_one(server: Server, tmp_path: Path) -> None:
    from sfttop.core.config import Config
    from sfttop.tui.app import SfttopApp

    far = tmp_path / "far" / "trainer_log.jsonl"
    far.parent.mkdir()
    _append(far, 1, 21)
    near = tmp_path / "near" / "trainer_log.jsonl"
    near.parent.mkdir()
    _append(near, 1, 11)
    app = SfttopApp([f"h1:{far.parent}/", str(near.parent)], Config(), interval=0.1, rescan_seconds=0.2)
    async with app.run_test(size=(120, 36)) as pilot:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with app.lock:
                got = {r.name: r.data.last_step for r in app.monitor.runs}
            if got.get("h1:far") == 20 and got.get("near") == 10:
                break
            await pilot.pause(0.1)
        assert got == {"h1:far": 20, "near": 10}
    app.monitor.close()


async def test_the_tui_says_a_host_alone_cannot_be_reached() -> None:
    """The only argument a host that never answers: the title, the run's row and the panels say
    it is unreachable, not "waiting for the file" (the report said so, the screen did not)."""
    from sfttop.core.config import Config
    from sfttop.tui.app import SfttopApp

    remote.set_ssh_command("sh -c 'echo \"ssh: Could not resolve hostname gpu9: Name or service not known\" >&2; exit 255' fake-ssh")
    try:
        app = SfttopApp(["gpu9:/x/train.log"], Config(), interval=0.1, rescan_seconds=0.2)
        async with app.run_test(size=(100, 30)) as pilot:
            deadline = time.monotonic() + 10
            screen = ""
            while time.monotonic() < deadline:
                await pilot.pause(0.2)
                screen = "\n".join(screen_lines(app))
                if "unreachable" in screen.split("\n")[2] and screen.count("gpu9 unreachable since") >= 2:
                    break
            assert "waiting for the file" not in screen
            assert "unreachable" in screen.split("\n")[2], screen  # the run's row
            assert screen.count("gpu9 unreachable since") >= 2, screen  # title, and the panels
    finally:
        remote.set_ssh_command(None)
        app.monitor.close()
