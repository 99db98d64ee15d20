"""Paths to named runs: files, run directories, trees of runs, globs."""

from __future__ import annotations

from pathlib import Path

from sfttop.core.discover import distinguishing_names, expand_arg, find_log, glob_names, unique


def touch(p: Path, text: str = "{'loss': 1.0, 'epoch': 0.1}\n") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_glob_names_are_the_wildcard_part(tmp_path: Path) -> None:
    for r in ("alpha", "beta"):
        touch(tmp_path / "runs" / r / "train.log")
    got = expand_arg(str(tmp_path / "runs" / "*" / "train.log"))
    assert [n for n, _ in got] == ["alpha", "beta"]


def test_glob_name_is_stable_with_a_single_match(tmp_path: Path) -> None:
    touch(tmp_path / "runs" / "only" / "train.log")
    assert glob_names(str(tmp_path / "runs/*/train.log"), [str(tmp_path / "runs/only/train.log")]) == ["only"]


def test_glob_on_file_names(tmp_path: Path) -> None:
    touch(tmp_path / "lr1e-5.log")
    touch(tmp_path / "lr3e-5.log")
    got = expand_arg(str(tmp_path / "*.log"))
    assert [n for n, _ in got] == ["lr1e-5", "lr3e-5"]


def test_run_directory_prefers_live_jsonl(tmp_path: Path) -> None:
    touch(tmp_path / "run" / "train.log")
    touch(tmp_path / "run" / "trainer_log.jsonl", "{}\n")
    assert find_log(str(tmp_path / "run")) == str(tmp_path / "run" / "trainer_log.jsonl")


def test_checkpoint_only_directory_uses_newest_state(tmp_path: Path) -> None:
    touch(tmp_path / "out" / "checkpoint-100" / "trainer_state.json", "{}")
    touch(tmp_path / "out" / "checkpoint-900" / "trainer_state.json", "{}")
    assert find_log(str(tmp_path / "out")).endswith("checkpoint-900/trainer_state.json")  # type: ignore[union-attr]


def test_directory_of_runs(tmp_path: Path) -> None:
    touch(tmp_path / "a" / "train.log")
    touch(tmp_path / "b" / "logging.jsonl", "{}\n")
    touch(tmp_path / "b" / "checkpoint-5" / "trainer_state.json", "{}")
    got = dict(expand_arg(str(tmp_path)))
    assert set(got) == {"a", "b"}
    assert got["b"].endswith("logging.jsonl")


def test_single_file_named_after_its_directory(tmp_path: Path) -> None:
    f = touch(tmp_path / "qwen-sft" / "train.log")
    assert expand_arg(str(f)) == [("qwen-sft", str(f))]


def test_distinguishing_names_drop_common_parts() -> None:
    paths = ["/x/exp/lr1/seed0/train.log", "/x/exp/lr2/seed0/train.log"]
    assert distinguishing_names(paths) == ["lr1", "lr2"]


def test_unique_names() -> None:
    assert unique(["a", "a", "b"]) == ["a", "a#2", "b"]


def test_missing_plain_path_expands_to_nothing(tmp_path: Path) -> None:
    assert expand_arg(str(tmp_path / "nope.log")) == []


def test_discover_stands_alone_for_the_remote_agent() -> None:
    """core/remote.py sends discover.py to a host's python3 as a module of its own: it must
    import nothing of sfttop's (a relative import broke every remote run once)."""
    import ast
    from pathlib import Path

    from sfttop.core import discover, tensorboard

    tree = ast.parse(Path(discover.__file__).read_text())
    relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith("sfttop"))]
    assert not relative
    assert discover._EVENTS == tensorboard.EVENTS_PREFIX
    # ... and loaded the way the agent loads it, it finds a run directory's log
    import importlib.util
    import sys
    import tempfile

    spec = importlib.util.spec_from_file_location("sfttop_discover", discover.__file__)
    assert spec is not None and spec.loader is not None
    alone = importlib.util.module_from_spec(spec)
    sys.modules["sfttop_discover"] = alone  # (as the agent registers it)
    try:
        spec.loader.exec_module(alone)
    finally:
        del sys.modules["sfttop_discover"]
    with tempfile.TemporaryDirectory() as d:
        Path(d, "run1").mkdir()
        Path(d, "run1", "train.log").write_text("{'loss': 1.0}\n")
        assert [p for _, p in alone.expand_arg(d)] == [str(Path(d, "run1", "train.log"))]
