"""``--alert-cmd``: run a command once per new finding episode (the seed FAQ's ``send_alert``).

The command line is split once with :func:`shlex.split` and started without a shell, so nothing
read from a log is ever interpreted by one. The finding travels as one JSON object on the
command's stdin; ``SFTTOP_RUN``, ``SFTTOP_CODE`` and ``SFTTOP_SEVERITY`` are set in its
environment (each value cleaned of control characters) for commands that prefer variables.

Alerts are rate-limited: at most ``max_per_minute`` commands start in any 60 s window, and no
two closer than ``min_interval`` seconds (the config's ``alert.min_interval_seconds``). The
excess is counted (``suppressed``), shown by the caller, and the next command that does start
is told how many were dropped before it (``"suppressed"`` in its JSON). A command that hangs is
killed after ``timeout`` seconds. Nothing here blocks on the command; call :meth:`reap` now and
then (the TUI's poll loop does) to collect finished processes.

No Textual, no Rich: this is core, usable from ``--follow`` and from tests.
"""

from __future__ import annotations

import math
import os
import shlex
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from sfttop.core.i18n import _

from .diagnose import Severity
from .oserrors import os_reason
from .sanitize import clean_text

if TYPE_CHECKING:
    from .config import Config
    from .diagnose import Finding
    from .run import Run
    from .update import RunUpdate

WINDOW_SECONDS = 60.0


class Spawner(Protocol):
    def __call__(self, argv: list[str], payload: bytes, env: dict[str, str]) -> Any: ...


def severity_name(sev: object) -> str:
    """``Severity.CRITICAL`` / ``"critical"`` → ``"critical"``."""
    if isinstance(sev, Enum):
        sev = sev.value
    return str(sev).lower()


def severity_rank(sev: object) -> int:
    """The rank ``Severity`` gives ``sev`` (by value or by name); an unknown name ranks lowest."""
    try:
        return Severity(severity_name(sev)).rank
    except ValueError:
        return 0


def _jsonable(v: object) -> object:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # "nan", "inf": JSON has no spelling for them
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def finding_dict(finding: object) -> dict[str, object]:
    """A finding as plain JSON-able data (its own ``to_dict()`` when it has one)."""
    to_dict = getattr(finding, "to_dict", None)
    if callable(to_dict):
        d = dict(to_dict())
    elif isinstance(finding, Mapping):
        d = dict(finding)
    else:
        d = {
            k: getattr(finding, k)
            for k in ("code", "severity", "step", "metric", "value", "message", "advice", "active")
            if hasattr(finding, k)
        }
    out = _jsonable(d)
    assert isinstance(out, dict)
    return out


def alert_payload(run: str, finding: object, suppressed: int = 0) -> bytes:
    d: dict[str, object] = {"run": run, **finding_dict(finding)}
    if suppressed:
        d["suppressed"] = suppressed
    return orjson.dumps(d) + b"\n"


def _popen_spawner(argv: list[str], payload: bytes, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        close_fds=True,
        start_new_session=True,  # a Ctrl-C in the TUI's terminal does not reach it
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(payload)  # a few hundred bytes: fits any pipe buffer, never blocks
        proc.stdin.close()
    except OSError:
        pass  # the command does not read stdin (or exited already): fine
    return proc


@dataclass
class AlertOutcome:
    run: str
    code: str
    severity: str
    status: str  # "sent", "suppressed" (rate limit), "failed" (could not start), "below" (severity)
    error: str | None = None


@dataclass
class AlertDispatcher:
    """Start ``cmd`` once per finding episode handed to :meth:`offer`."""

    cmd: str
    min_severity: str = "critical"
    max_per_minute: int = 6
    min_interval: float = 0.0
    timeout: float = 30.0
    clock: Callable[[], float] = time.monotonic
    spawner: Spawner = _popen_spawner
    argv: list[str] = field(init=False)
    sent: int = field(default=0, init=False)
    suppressed: int = field(default=0, init=False)  # over the whole session
    failed: int = field(default=0, init=False)
    last_error: str | None = field(default=None, init=False)
    _since_last: int = field(default=0, init=False)  # suppressed since the last command started
    _times: deque[float] = field(default_factory=deque, init=False)
    _last_start: float | None = field(default=None, init=False)
    _running: list[tuple[float, Any]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        argv = shlex.split(self.cmd)
        if not argv:
            raise ValueError(_("--alert-cmd is empty"))
        self.argv = argv
        if severity_name(self.min_severity) not in {s.value for s in Severity}:
            raise ValueError(_("unknown severity {severity}").format(severity=repr(self.min_severity)))
        self.max_per_minute = max(1, int(self.max_per_minute))

    def wants(self, finding: object) -> bool:
        return severity_rank(getattr(finding, "severity", "info")) >= severity_rank(self.min_severity)

    def offer(self, run: str, finding: object) -> AlertOutcome:
        """A finding episode just opened: start the command if it qualifies and the limit allows."""
        code = clean_text(str(getattr(finding, "code", "")))
        sev = severity_name(getattr(finding, "severity", "info"))
        run = clean_text(run)
        if not self.wants(finding):
            return AlertOutcome(run, code, sev, "below")
        now = self.clock()
        times = self._times
        while times and now - times[0] >= WINDOW_SECONDS:
            times.popleft()
        too_soon = self._last_start is not None and now - self._last_start < self.min_interval
        if len(times) >= self.max_per_minute or too_soon:
            self.suppressed += 1
            self._since_last += 1
            return AlertOutcome(run, code, sev, "suppressed")
        times.append(now)
        self._last_start = now
        payload = alert_payload(run, finding, self._since_last)
        env = dict(os.environ)
        env.update({"SFTTOP_RUN": run, "SFTTOP_CODE": code, "SFTTOP_SEVERITY": sev})
        try:
            proc = self.spawner(list(self.argv), payload, env)
        except (OSError, ValueError, subprocess.SubprocessError) as e:
            self.failed += 1
            self.last_error = clean_text(f"{self.argv[0]}: {os_reason(e) if isinstance(e, OSError) else e}")
            return AlertOutcome(run, code, sev, "failed", self.last_error)
        self.sent += 1
        self._since_last = 0
        if proc is not None and hasattr(proc, "poll"):
            self._running.append((now, proc))
        return AlertOutcome(run, code, sev, "sent")

    def reap(self) -> None:
        """Collect finished commands; kill any that outlived ``timeout``."""
        if not self._running:
            return
        now = self.clock()
        keep = []
        for started, proc in self._running:
            if proc.poll() is not None:
                continue
            if now - started > self.timeout:
                try:
                    proc.kill()
                    proc.wait(1)
                except (OSError, subprocess.SubprocessError):
                    pass
                self.last_error = _("{command}: killed after {timeout:g} s").format(command=self.argv[0], timeout=self.timeout)
                continue
            keep.append((started, proc))
        self._running = keep

    def close(self, wait: float = 2.0) -> None:
        """Give running commands ``wait`` seconds to finish (so an alert sent just before quit
        still goes out), then stop waiting; they run on in their own session."""
        deadline = time.monotonic() + wait
        for _started, proc in self._running:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except (OSError, subprocess.SubprocessError):
                pass
        self._running = []

    @property
    def running(self) -> int:
        return len(self._running)

    def status(self) -> str:
        """One line for a status bar: ``alerts 3 sent · 2 rate-limited · 1 failed``."""
        parts = [_("{count} sent").format(count=self.sent)]
        if self.suppressed:
            parts.append(_("{count} rate-limited").format(count=self.suppressed))
        if self.failed:
            parts.append(_("{count} failed").format(count=self.failed))
        return _("alerts {parts}").format(parts=" · ".join(parts))


def news(runs: list[Run], ups: dict[str, RunUpdate], loaded_before: set[str]) -> list[tuple[str, Finding]]:
    """Finding episodes that are news to this session (bell, ``--alert-cmd``): those that open on
    lines written while we watch (a new attempt's included), and, once a run's history has been
    read, the episodes of that history still active (an old, closed episode is not news). The
    TUI and ``--follow`` alert on exactly these."""
    out: list[tuple[str, Finding]] = []
    for run in runs:
        up = ups.get(run.name)
        if up is None:
            continue
        if run.name in loaded_before:
            out.extend((run.name, f) for f in up.opened)
        elif run.loaded:
            out.extend((run.name, f) for f in run.diagnoser.active())
    return out


def dispatcher_for(cmd: str | None, severity: str | None, config: Config) -> AlertDispatcher | None:
    """The dispatcher the command line and the config ask for (None: no alert command); raises
    ValueError for an empty command or an unknown severity."""
    cmd = cmd if cmd is not None else config.alert.cmd
    if not cmd:
        return None
    return AlertDispatcher(
        cmd,
        min_severity=severity or config.alert.min_severity,
        min_interval=config.alert.min_interval_seconds,
    )
