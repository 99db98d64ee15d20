"""From command-line paths to named runs.

A path may be a log file, a run directory (the log is found inside it), a directory of run
directories, or a quoted glob that is expanded again while sfttop runs, so that a run started
later appears by itself. A run is named after the part of its path that tells it apart from
the others: for ``runs/*/train.log`` that is the ``*`` part.
"""

from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass

# Preferred log of a run directory, best first: the live JSON-lines files carry explicit steps
# and full precision; a stdout capture is next; trainer_state.json lags by save_steps.
_PREFERRED = (
    "trainer_log.jsonl",
    "logging.jsonl",
    "train.log",
    "training.log",
    "train.txt",
    "output.log",
    "log.txt",
    "stdout.log",
    "running_log.txt",  # LLaMA-Factory WebUI: the logger's lines, HF dicts among them
    "metrics.csv",  # Lightning CSVLogger (lightning_logs/version_N/)
    "training_log.csv",  # a Keras CSVLogger / W&B history export, as commonly named
    "trainer_state.json",
)
_LOG_SUFFIXES = (".log", ".jsonl", ".out")
_GENERIC = frozenset(_PREFERRED) | {"stdout.txt", "nohup.out", "metrics.jsonl", "log.jsonl"}
# (this module is also sent to remote hosts as the agent's own: standard library only, no
# relative import; tbsource reads event files and takes their naming from here)
_EVENTS = "events.out.tfevents."  # = tensorboard.EVENTS_PREFIX (a test holds them together)
# what HF Trainer names a checkpoint directory; the step it was saved at is group 1
CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")
_MAX_DEPTH = 3
_MAX_ENTRIES = 20_000  # a directory scan stops here rather than walk a whole dataset tree
_MAX_LISTED = 2000  # entries of one directory looked at for checkpoint-N

# Tracker stores (read by core/stores.py): their kinds are named here, where discovery finds
# them; this module stays standard-library-only for the remote agent.
DVCLIVE = "dvclive"
MLFLOW = "mlflow"
MLFLOW_DB = "mlflow-db"
WANDB_SUMMARY = "wandb-summary"
WANDB = "wandb"  # a W&B run's own datastore, run-<id>.wandb
STORE_FORMATS = (DVCLIVE, MLFLOW, MLFLOW_DB, WANDB_SUMMARY, WANDB)


def store_kind(path: str) -> str | None:
    """Which tracker store ``path`` is, if any."""
    base = os.path.basename(os.path.normpath(path))
    if base == "wandb-summary.json":
        return WANDB_SUMMARY
    if base.startswith("run-") and base.endswith(".wandb") and os.path.isfile(path):
        return WANDB
    if base.endswith(".db") and os.path.isfile(path):
        return MLFLOW_DB
    if os.path.isdir(os.path.join(path, "plots", "metrics")):
        return DVCLIVE
    if os.path.isdir(os.path.join(path, "metrics")) and os.path.isfile(os.path.join(path, "meta.yaml")):
        return MLFLOW
    return None


@dataclass(frozen=True)
class RunSpec:
    name: str
    path: str


def has_magic(arg: str) -> bool:
    return glob.has_magic(arg)


def find_log(directory: str) -> str | None:
    """The log file of one run directory, or None when it holds none."""
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    present = set(names)
    for want in _PREFERRED:
        if want in present and os.path.isfile(os.path.join(directory, want)):
            return os.path.join(directory, want)
    logs = sorted(n for n in names if n.endswith(_LOG_SUFFIXES) and os.path.isfile(os.path.join(directory, n)))
    if "latest-run" in present or os.path.basename(os.path.normpath(directory)) == "wandb":
        # W&B's own folder: its debug logs are not a run's; its runs are the run-*/ folders.
        logs = [n for n in logs if n not in ("debug.log", "debug-internal.log")]
    if logs:
        return os.path.join(directory, logs[0])
    store = _tracker_store(directory, present)
    if store is not None:
        return store
    # TensorBoard: event files here (a logging_dir: a restart adds a file), or the HF Trainer's
    # <output_dir>/runs/, where every process (a resume too) writes its own <date>_<host>/: all
    # of them are the run, read in order. Live, unlike the checkpoints' trainer_state.json,
    # which lags by save_steps. (A runs/ given itself is a directory of runs: torch's
    # SummaryWriter puts every script's run in ./runs/<date>_<host>/.)
    if any(n.startswith(_EVENTS) for n in names) and event_files(directory):
        return directory
    if "runs" in present:
        runs = os.path.join(directory, "runs")
        if os.path.isdir(runs) and event_files(runs):
            return runs
    # An HF output_dir that only has checkpoints: the newest checkpoint's state holds it all.
    best: tuple[int, str] | None = None
    for n in names:
        m = CHECKPOINT_DIR.match(n)
        if m:
            p = os.path.join(directory, n, "trainer_state.json")
            if os.path.isfile(p) and (best is None or int(m.group(1)) > best[0]):
                best = (int(m.group(1)), p)
    return best[1] if best else None


def is_events_file(path: str) -> bool:
    return os.path.basename(path).startswith(_EVENTS)


def event_files(directory: str) -> list[str]:
    """The event files of the run in ``directory``, oldest first: those directly in it, and
    those one level down (the HF Trainer gives every process its own ``runs/<date>_<host>/``,
    so a resumed run's files are in sibling directories)."""
    found: list[tuple[tuple[int, str], str]] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for e in entries[:_MAX_ENTRIES]:
        try:
            if e.name.startswith(_EVENTS) and e.is_file():
                found.append((_created(e.name), e.path))
            elif e.is_dir() and not e.name.startswith("."):
                for sub in list(os.scandir(e.path))[:_MAX_ENTRIES]:
                    if sub.name.startswith(_EVENTS) and sub.is_file():
                        found.append((_created(sub.name), sub.path))
        except OSError:
            continue
    return [p for _, p in sorted(found)]


def _created(name: str) -> tuple[int, str]:
    # events.out.tfevents.<unix time>.<host>.<pid>.<n>: the host may hold dots, the time does not
    stamp = name[len(_EVENTS) :].split(".", 1)[0]
    return (int(stamp) if stamp.isdigit() else 1 << 62, name)


def _tracker_store(directory: str, present: set[str]) -> str | None:
    """A tracker's files in a run directory (core/stores.py reads them): a DVCLive directory
    (itself, or its ``dvclive/``/``live/``), an MLflow run (``metrics/`` beside ``meta.yaml``) or
    database, a W&B run folder (its captured stdout ``files/output.log`` first: it holds every
    logged line; else its datastore ``run-<id>.wandb``, every logged step; the summary, only the
    last values, last)."""
    if store_kind(directory) is not None:
        return directory
    for sub in ("dvclive", "live"):
        if sub in present and store_kind(os.path.join(directory, sub)) == DVCLIVE:
            return os.path.join(directory, sub)
    if "mlflow.db" in present:
        return os.path.join(directory, "mlflow.db")
    p = os.path.join(directory, "files", "output.log")
    if "files" in present and os.path.isfile(p):
        return p
    for name in sorted(present):
        if name.startswith("run-") and name.endswith(".wandb") and os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
    for rel in ("files/wandb-summary.json", "wandb-summary.json"):
        p = os.path.join(directory, rel)
        if rel.split("/")[0] in present and os.path.isfile(p):
            return p
    return None


def _store_name(path: str, parts: list[str]) -> str | None:
    """The name of a run read from a tracker store: the experiment directory, not the store's
    own folder name (``live``, ``files``) or an MLflow run id when the run has a name."""
    kind = store_kind(path)
    base = parts[-1] if parts else path
    if kind == DVCLIVE and base in ("dvclive", "live") and len(parts) >= 2:
        return parts[-2]
    if kind == MLFLOW:
        try:
            with open(os.path.join(path, "tags", "mlflow.runName"), "rb") as f:
                name = f.read(200).decode("utf-8", "replace").strip()
            if name:
                return name  # (a tag anyone could set: cleaned wherever a run's name is shown)
        except OSError:
            pass
    if kind in (WANDB_SUMMARY, MLFLOW_DB, WANDB):
        up = parts[:-1]
        if len(up) >= 2 and up[-1] == "files":
            up = up[:-1]
        return up[-1] if up else base
    if base == "output.log" and len(parts) >= 3 and parts[-2] == "files":
        return parts[-3]
    return None


def _is_tb(path: str) -> bool:
    """A log path discovery gave is a TensorBoard run: an event file, or a directory of event
    files (the only other directory given as a run's log is a tracker store's)."""
    return is_events_file(path) or (os.path.isdir(path) and store_kind(path) is None)


def _tb_name(parts: list[str], whole: bool = False) -> str:
    """The name of a TensorBoard run from its directory's path parts: the HF output_dir for
    ``<output_dir>/runs`` and ``<output_dir>/runs/<date>_<host>``, else the directory itself
    (``whole``: all of ``parts``, a path relative to the directory the runs were found in)."""
    if len(parts) >= 2 and parts[-1] == "runs":
        parts = parts[:-1]
    elif len(parts) >= 3 and parts[-2] == "runs":
        parts = parts[:-2]
    if whole and parts:
        return "/".join(parts)
    return parts[-1] if parts else "tensorboard"


def scan_dir(root: str) -> list[str]:
    """Log files of every run under ``root`` (itself a run, or a tree of runs)."""
    own = find_log(root)
    if own is not None and not own.endswith("trainer_state.json"):
        return [own]
    found: list[str] = []
    seen = 0
    for dirpath, dirnames, _files in os.walk(root):
        depth = dirpath[len(root) :].count(os.sep)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not CHECKPOINT_DIR.match(d))
        if depth >= _MAX_DEPTH:
            dirnames[:] = []
        seen += 1
        if seen > _MAX_ENTRIES:
            break
        if dirpath == root:
            continue
        log = find_log(dirpath)
        if log is not None:
            found.append(log)
            dirnames[:] = []  # a run's own subfolders (checkpoints, runs/) are not other runs
    if not found and own is not None:
        return [own]
    return found


def _parts(path: str) -> list[str]:
    return [p for p in os.path.normpath(os.path.abspath(path)).split(os.sep) if p]


def _single_name(path: str) -> str:
    parts = _parts(path)
    named = _store_name(path, parts)
    if named is not None:
        return named
    if _is_tb(path):
        return _tb_name(parts[:-1] if is_events_file(path) else parts)
    if len(parts) >= 3 and CHECKPOINT_DIR.match(parts[-2]):
        return parts[-3]
    base = parts[-1] if parts else path
    if base in _GENERIC and len(parts) >= 2:
        return parts[-2]
    return os.path.splitext(base)[0]


def distinguishing_names(paths: list[str]) -> list[str]:
    """Names from what differs between ``paths`` (common leading and trailing parts dropped)."""
    if len(paths) <= 1:
        return [_single_name(p) for p in paths]
    split = [_parts(p) for p in paths]
    pre = 0
    while all(len(s) > pre + 1 for s in split) and len({s[pre] for s in split}) == 1:
        pre += 1
    suf = 0
    while all(len(s) > pre + suf + 1 for s in split) and len({s[-1 - suf] for s in split}) == 1:
        suf += 1
    names = []
    for s, p in zip(split, paths):
        mid = s[pre : len(s) - suf] if suf else s[pre:]
        if mid and CHECKPOINT_DIR.match(mid[-1]) and len(mid) > 1:
            mid = mid[:-1]
        name = "/".join(mid) if mid else _single_name(p)
        if not suf and mid and len(mid) == 1:
            name = os.path.splitext(name)[0] if name not in _GENERIC else name
        names.append(name)
    return names


def glob_names(pattern: str, matches: list[str]) -> list[str]:
    """For a glob, a match's name is made of the parts the wildcards matched (stable as runs come)."""
    pat = [p for p in os.path.normpath(pattern).split(os.sep) if p not in ("", ".")]
    if "**" in pat:
        return distinguishing_names(matches)
    out = []
    for m in matches:
        mp = [p for p in os.path.normpath(m).split(os.sep) if p not in ("", ".")]
        if len(mp) != len(pat):
            out.append(_single_name(m))
            continue
        picked = [mp[i] for i, p in enumerate(pat) if glob.has_magic(p)]
        name = "/".join(picked) if picked else _single_name(m)
        if picked and len(picked) == 1 and picked[0] == mp[-1]:
            name = os.path.splitext(name)[0]
        out.append(name)
    return out


def expand_arg(arg: str) -> list[tuple[str, str]]:
    """(name, log path) pairs for one argument as things stand now."""
    if os.path.isfile(arg):
        return [(_single_name(arg), arg)]
    if os.path.isdir(arg):
        logs = scan_dir(arg)
        if len(logs) == 1 and (logs[0] == arg or logs[0].startswith(os.path.join(arg, ""))) and find_log(arg) == logs[0]:
            return [(_single_name(logs[0]), logs[0])]
        rel = [os.path.relpath(p, arg) for p in logs]
        names = [
            _tb_name(r.split(os.sep), whole=True) if _is_tb(p) else _dir_name(r) if store_kind(p) is None
            else _store_name(p, _parts(p)) or _dir_name(r)
            for r, p in zip(rel, logs)
        ]
        return list(zip(names, logs))
    if has_magic(arg):
        matches = sorted(glob.glob(arg, recursive=True))
        files: list[tuple[str, str]] = []
        direct = [m for m in matches if os.path.isfile(m)]
        for n, p in zip(glob_names(arg, direct), direct):
            files.append((n, p))
        for m in matches:
            if os.path.isdir(m):
                log = find_log(m)
                if log is not None:
                    files.append((glob_names(arg, [m])[0], log))
        return files
    return []


def _dir_name(rel: str) -> str:
    parts = rel.split(os.sep)
    if len(parts) >= 2 and CHECKPOINT_DIR.match(parts[-2]):
        parts = parts[:-1]
    return "/".join(parts[:-1]) if len(parts) > 1 else os.path.splitext(parts[0])[0]


def unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            out.append(f"{n}#{seen[n]}")
        else:
            seen[n] = 1
            out.append(n)
    return out


# base -> (its mtime, each subdirectory looked into with its mtime, what was found): the scan
# runs again only when one of those directories changed (a checkpoint saved or deleted), not at
# every rebuild of a run's assessment.
_SCANNED: dict[str, tuple[int, tuple[tuple[str, int], ...], dict[int, str]]] = {}
_SCANNED_MAX = 512


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def checkpoint_dirs(base: str) -> dict[int, str]:
    """checkpoint-N directories in ``base`` and one level below it (an output_dir beside the log)."""
    top = _mtime_ns(base)
    cached = _SCANNED.get(base)
    if cached is not None and cached[0] == top and all(_mtime_ns(d) == t for d, t in cached[1]):
        return dict(cached[2])
    found, subdirs = _scan_checkpoints(base)
    if len(_SCANNED) >= _SCANNED_MAX:
        _SCANNED.clear()
    _SCANNED[base] = (top, tuple((d, _mtime_ns(d)) for d in subdirs), dict(found))
    return found


def _scan_checkpoints(base: str) -> tuple[dict[int, str], list[str]]:
    found: dict[int, str] = {}
    try:
        entries = list(os.scandir(base))[:_MAX_LISTED]
    except OSError:
        return found, []
    subdirs = []
    for e in entries:
        try:
            if not e.is_dir():
                continue
        except OSError:
            continue
        m = CHECKPOINT_DIR.match(e.name)
        if m:
            found.setdefault(int(m.group(1)), e.path)
        elif not e.name.startswith("."):
            subdirs.append(e.path)
    subdirs = subdirs[:50]
    for d in subdirs:
        try:
            for e in list(os.scandir(d))[:_MAX_LISTED]:
                m = CHECKPOINT_DIR.match(e.name)
                if m and e.is_dir():
                    found.setdefault(int(m.group(1)), e.path)
        except OSError:
            continue
    return found, subdirs


def logging_steps_near(log_path: str) -> int | None:
    """``logging_steps`` from a trainer_state.json beside the log (or in a checkpoint there).

    HF stdout lines carry no step; the Trainer's own state says how many steps apart they are.
    """
    d = os.path.dirname(os.path.abspath(log_path))
    cands = [os.path.join(d, "trainer_state.json")]
    try:
        cands += sorted(
            (os.path.join(d, n, "trainer_state.json") for n in os.listdir(d) if n.startswith("checkpoint-")),
            reverse=True,
        )
    except OSError:
        return None
    for c in cands[:4]:
        try:
            if os.path.getsize(c) > 8 << 20:
                continue
            with open(c, "rb") as f:
                head = f.read()
        except OSError:
            continue
        try:
            obj = json.loads(head)  # json, not orjson: the file may spell NaN
        except ValueError:
            continue
        ls = obj.get("logging_steps") if isinstance(obj, dict) else None
        if isinstance(ls, int) and ls > 0:
            return ls
        if isinstance(ls, float) and ls >= 1:
            return int(ls)
    return None
