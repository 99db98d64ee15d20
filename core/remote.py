"""Logs on other hosts, read over the system's OpenSSH client.

A path argument is remote by scp's rule: ``host:path`` when a colon comes before any slash
(``./a:b`` and ``/abs:x`` stay local), or ``ssh://[user@]host[:port]/path``. Each host gets
one ``ssh`` process (multiplexed: ControlMaster under a private 0700 directory, so ~/.ssh/config,
the agent, ProxyJump and known hosts work as set up) running ``core/agent.py`` in the remote
``python3``; all of that host's runs share it. ``RemoteTail`` is the ``FileTail`` the ``Run``
polls: it never blocks beyond a short wait, shows a host that cannot be reached as an error
(and retries with backoff), and resumes from its last byte after a reconnect.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import re
import select
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from sfttop.core.i18n import N_, _

from . import agent as agent_mod
from . import discover as discover_mod
from . import tail as tail_mod
from .agent import HEADER, MARKER, frame
from .oserrors import os_reason, reason
from .sanitize import clean_text
from .statefile import MAX_STATE_FILE, StateFile
from .tail import Chunk, FileTail

# The remote command line is fixed: the agent's source arrives on stdin, its length first.
REMOTE_COMMAND = "exec python3 -c 'import sys;b=sys.stdin.buffer;exec(b.read(int(b.readline())))'"
ENV_COMMAND = "SFTTOP_SSH_COMMAND"
ENV_TIMEOUT = "SFTTOP_SSH_TIMEOUT"
WAIT = 0.2  # the longest one poll waits for a host's answer (the app stays responsive)
BACKOFF_MAX = 30.0
CHECKPOINT_WAIT = 10.0  # how long a report waits for a host to list a run's checkpoints
EXPAND_EVERY = 2.0  # seconds between re-expansions of a host's path arguments (new runs)

_ssh_command: str | None = None


def set_ssh_command(cmd: str | None) -> None:
    """``--ssh-command``: replaces ``ssh`` (and ``$SFTTOP_SSH_COMMAND``) for every host."""
    global _ssh_command
    _ssh_command = cmd


@dataclass(frozen=True)
class Target:
    dest: str  # what ssh is given: [user@]host
    port: int | None
    path: str

    @property
    def label(self) -> str:
        """The host as shown: without the user, with a non-default port."""
        host = self.dest.rsplit("@", 1)[-1]
        return f"{host}:{self.port}" if self.port else host

    def display(self, path: str) -> str:
        return f"{self.label}:{path}"


_SSH_URL = re.compile(r"^ssh://(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]/]+\]|[^:/@]+)(?::(?P<port>\d+))?(?P<path>/.*)?$")


def parse_remote(arg: str) -> Target | None:
    """The remote target an argument names, or None for a local path."""
    if arg.startswith("ssh://"):
        m = _SSH_URL.match(arg)
        if m is None:
            return None
        user, host, port, path = m.group("user"), m.group("host").strip("[]"), m.group("port"), m.group("path") or "/."
        if path.startswith("/~"):
            path = path[1:]
        dest = f"{user}@{host}" if user else host
        return _target(dest, int(port) if port else None, path)
    colon = arg.find(":")
    slash = arg.find("/")
    if colon <= 0 or (0 <= slash < colon):
        return None
    host = arg[:colon]
    if host.startswith("[") and "]" in arg:  # [v6addr]:path
        end = arg.index("]")
        colon = arg.find(":", end)
        if colon < 0:
            return None
        host = arg[1:end]
    return _target(host, None, arg[colon + 1 :] or ".")


def _target(dest: str, port: int | None, path: str) -> Target | None:
    # A host that looks like an option would reach ssh as one.
    if not dest or dest.startswith("-") or any(c.isspace() for c in dest):
        return None
    return Target(dest, port, path)


def _payload(version: str) -> bytes:
    """The agent program: the three modules' source, run on the host (nothing installed there)."""
    srcs = {n: _source(m) for n, m in (("sfttop_tail", tail_mod), ("sfttop_discover", discover_mod),
                                        ("sfttop_agent", agent_mod))}
    prog = (
        "import sys, types\n"
        "def _mod(name, src):\n"
        "    m = types.ModuleType(name)\n"
        "    sys.modules[name] = m\n"
        "    exec(compile(src, name + '.py', 'exec'), m.__dict__)\n"
        "    return m\n"
        f"_t = _mod('sfttop_tail', {srcs['sfttop_tail']!r})\n"
        f"_d = _mod('sfttop_discover', {srcs['sfttop_discover']!r})\n"
        f"_a = _mod('sfttop_agent', {srcs['sfttop_agent']!r})\n"
        f"_a.main(_t, _d, {version!r})\n"
    ).encode()
    return str(len(prog)).encode() + b"\n" + prog


def _source(mod: Any) -> str:
    with open(mod.__file__, encoding="utf-8") as f:
        return f.read()


def _nonblock(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


@dataclass
class Traffic:
    """Bytes a host's connection carried, for the cost figures (bench/remote_cost.py)."""

    wire_in: int = 0  # received, framing included
    file_bytes: int = 0  # of which file data


class _Outage:
    """When a host went down and when to try it again: the wait doubles up to BACKOFF_MAX."""

    __slots__ = ("backoff", "next_try", "since")

    def __init__(self) -> None:
        self.since: float | None = None  # wall time the host stopped answering
        self.next_try = 0.0  # monotonic
        self.backoff = 1.0

    def begin(self, wall: float) -> None:
        if self.since is None:
            self.since = wall

    def retry_later(self, now: float) -> None:
        self.next_try = now + self.backoff
        self.backoff = min(BACKOFF_MAX, self.backoff * 2)


class Host:
    """One ssh connection and its agent, shared by every run on that host."""

    def __init__(self, target: Target, base: list[str], control_dir: str, version: str, timeout: float) -> None:
        self.target = target
        self.label = target.label
        self.base = base
        self.control_dir = control_dir
        self.version = version
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.session = 0
        self.ready = False
        self.started = 0.0
        self.inbuf = bytearray()
        self.synced = False  # the agent's marker was seen: frames follow
        self.outbuf = bytearray()
        self.errbuf = bytearray()
        self.problem: str | None = None  # why the host cannot be read now
        self.outage = _Outage()
        self.inflight: tuple[float, object] | None = None  # (sent at, the tail that asked)
        self.last_rx = 0.0
        self.req_id = 0
        self.stoppers: list[subprocess.Popen[bytes]] = []  # `ssh -O exit` still running
        self.ckpt_want: set[str] = set()  # directories whose checkpoint-N listing is asked for
        self.ckpt_got: dict[str, dict[int, str]] = {}
        self.answered = 0  # answers received (tails note the last one they have seen)
        self.tails: dict[int, RemoteTail | RemoteStateFile] = {}
        self.closed: list[int] = []
        self.news: dict[int, tuple[dict[str, Any], bytes]] = {}
        self.args: dict[str, dict[str, Any] | None] = {}  # path argument -> last expansion
        self.last_expand = -1e9
        self.fresh = False  # an expansion arrived that the monitor has not seen
        self.traffic = Traffic()

    # -- the connection ----------------------------------------------------------------------
    def argv(self) -> list[str]:
        t = self.target
        opts = [
            "-o", "BatchMode=yes",
            "-o", "ControlMaster=auto",
            "-o", "ControlPersist=60",
            "-o", f"ControlPath={self.control_dir}/%C",
            "-o", f"ServerAliveInterval={max(1, int(self.timeout / 3))}",
            "-o", "ServerAliveCountMax=3",
            "-o", f"ConnectTimeout={max(1, int(self.timeout))}",
            "-T",
        ]
        if t.port:
            opts += ["-p", str(t.port)]
        return [*self.base, *opts, "--", t.dest, REMOTE_COMMAND]

    def _spawn(self, now: float) -> None:
        try:
            self.proc = subprocess.Popen(
                self.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True,  # Ctrl+C in the terminal is sfttop's, not ssh's
            )
        except OSError as e:
            self.proc = None
            self._down(now, _("cannot run {command}: {reason}").format(command=self.base[0], reason=os_reason(e)))
            return
        for p in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            assert p is not None
            _nonblock(p.fileno())
        self.session += 1
        self.ready = False
        self.started = now
        self.inbuf.clear()
        self.synced = False
        self.errbuf.clear()
        self.outbuf[:] = _payload(self.version) + frame({"op": "hello"})
        self.inflight = (now, None)
        self.last_rx = now

    def _kill(self) -> None:
        p = self.proc
        self.proc = None
        self.ready = False
        self.inflight = None
        self.outbuf.clear()
        if p is None:
            return
        for f in (p.stdin, p.stdout, p.stderr):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        try:
            p.kill()
            p.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def _stop_master(self) -> None:
        t = self.target
        try:
            self.stoppers.append(subprocess.Popen(
                [*self.base, "-o", f"ControlPath={self.control_dir}/%C", "-O", "exit",
                 *(["-p", str(t.port)] if t.port else []), "--", t.dest],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            ))
        except OSError:
            pass

    def _reap(self) -> None:
        self.stoppers = [p for p in self.stoppers if p.poll() is None]

    def _down(self, now: float, why: str) -> None:
        self._kill()
        self.outage.begin(time.time())
        if self.problem is None and any(v is None for v in self.args.values()):
            self.fresh = True  # its arguments are to be shown as unreadable now, not at the next rescan
        self.problem = why
        self.outage.retry_later(now)

    def _exited(self, now: float, code: int | None) -> None:
        err = self.errbuf.decode("utf-8", "replace")
        login = f"ssh -p {self.target.port} {self.target.dest}" if self.target.port else f"ssh {self.target.dest}"
        if any(s in err for s in ("Permission denied", "Host key verification failed", "IDENTIFICATION HAS CHANGED",
                                  "No more authentication methods", "passphrase")):
            why = _("cannot log in to {host}: run `{login}` once").format(host=self.label, login=login)
        elif code == 127 or "python3: not found" in err or "python3: command not found" in err:
            why = _("{host} has no python3 (sfttop's remote agent needs it)").format(host=self.label)
        elif "Traceback" in err and "SyntaxError" in err and not self.ready:
            why = _("{host}: its python3 is too old for sfttop's remote agent (3.7+ needed)").format(host=self.label)
        elif "Traceback" in err:
            why = _("{host}: the remote agent failed: {err}").format(host=self.label, err=_last_line(err))
        else:
            since = time.strftime("%H:%M", time.localtime(self.outage.since or time.time()))
            detail = _ssh_detail(err)
            if detail:
                why = _("{host} unreachable since {since}, retrying ({detail})").format(
                    host=self.label, since=since, detail=detail)
            else:
                why = _("{host} unreachable since {since}, retrying").format(host=self.label, since=since)
        self._down(now, clean_text(why))

    def pump(self, wait: float = 0.0) -> None:
        """Move bytes without blocking longer than ``wait``; (re)connect when it is time."""
        now = time.monotonic()
        if self.stoppers:
            self._reap()
        if self.proc is None:
            if now < self.outage.next_try:
                return
            self._spawn(now)
            if self.proc is None:
                return
        deadline = now + wait
        while True:
            self._io(0.0)
            if self.proc is None or self.inflight is None:
                return
            now = time.monotonic()
            if now - self.last_rx > self.timeout:
                self.outage.begin(time.time() - (now - self.last_rx))
                since = time.strftime("%H:%M", time.localtime(self.outage.since))
                # A hung network hangs the shared master too: a new session through it would
                # hang again, so it is told to go (it answers on its local socket).
                self._stop_master()
                self._down(now, _("{host} unreachable since {since}, retrying (no answer in {timeout:g} s)").format(host=self.label, since=since, timeout=self.timeout))
                return
            left = deadline - now
            if left <= 0:
                return
            self._io(min(left, 0.05))
            if self.proc is None or self.inflight is None:
                return

    def _io(self, wait: float) -> None:
        p = self.proc
        if p is None or p.stdout is None or p.stderr is None or p.stdin is None:
            return
        rl = [p.stdout, p.stderr]
        wl = [p.stdin] if self.outbuf else []
        try:
            r, w, _ = select.select(rl, wl, [], wait)
        except (OSError, ValueError):
            r, w = [], []
        now = time.monotonic()
        if w and self.outbuf:
            try:
                n = os.write(p.stdin.fileno(), self.outbuf[: 1 << 16])
                del self.outbuf[:n]
            except BlockingIOError:
                pass
            except OSError:
                pass  # the process is gone: its exit is seen below
        eof = False
        for f in r:
            try:
                got = os.read(f.fileno(), 1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                got = b""
            if f is p.stderr:
                if got:
                    self.errbuf += got
                    del self.errbuf[: max(0, len(self.errbuf) - 4096)]
                continue
            if not got:
                eof = True
                continue
            self.inbuf += got
            self.traffic.wire_in += len(got)
            self.last_rx = now
        self._frames(now)
        if self.proc is not p:
            return
        if eof or p.poll() is not None:
            try:
                code = p.wait(timeout=1)
            except subprocess.TimeoutExpired:
                code = None
            try:
                rest = os.read(p.stderr.fileno(), 1 << 16)
                self.errbuf += rest
            except OSError:
                pass
            self._exited(now, code)

    def _frames(self, now: float) -> None:
        if not self.synced:
            at = self.inbuf.find(MARKER)
            if at < 0:
                # (a login banner on stdout: keep only what may be the marker's start)
                del self.inbuf[: max(0, len(self.inbuf) - len(MARKER))]
                return
            del self.inbuf[: at + len(MARKER)]
            self.synced = True
        while len(self.inbuf) >= HEADER.size:
            hlen, dlen = HEADER.unpack_from(self.inbuf)
            if len(self.inbuf) < HEADER.size + hlen + dlen:
                return
            try:
                head = json.loads(bytes(self.inbuf[HEADER.size : HEADER.size + hlen]))
                if not isinstance(head, dict):
                    raise ValueError("not an object")
            except ValueError:
                self._down(now, _("{host}: the remote agent's answer was garbled; reconnecting").format(host=self.label))
                return
            data = bytes(self.inbuf[HEADER.size + hlen : HEADER.size + hlen + dlen])
            del self.inbuf[: HEADER.size + hlen + dlen]
            try:
                self._answer(head, data, now)
            except (KeyError, ValueError, TypeError, AttributeError):
                self._down(now, _("{host}: the remote agent's answer was garbled; reconnecting").format(host=self.label))
            if self.proc is None:
                return

    def _answer(self, head: dict[str, Any], data: bytes, now: float) -> None:
        op = head.get("op")
        if op == "hello":
            self.ready = True
            self.problem = None
            self.outage = _Outage()
            self.inflight = None
            return
        self.inflight = None
        self.answered += 1
        if op != "poll":
            return
        for base, listing in (head.get("ckpts") or {}).items():
            self.ckpt_got[str(base)] = {int(k): str(v) for k, v in listing.items()}
            self.ckpt_want.discard(str(base))
        for arg, res in (head.get("expanded") or {}).items():
            if self.args.get(arg) != res:
                self.fresh = True
            self.args[arg] = res
        pos = 0
        for item in head.get("tails") or []:
            meta = _meta(item)
            n = meta["n"]
            if meta["k"] in self.tails:
                self.news[meta["k"]] = (meta, data[pos : pos + n])
            pos += n
        self.traffic.file_bytes += len(data)

    def _request(self, budget: int, leader: object) -> None:
        now = time.monotonic()
        opens = []
        keys = []
        for k, t in self.tails.items():
            if k in self.news:
                continue  # its last answer is not taken yet: its state is not final
            if t.session != self.session:
                opens.append({"k": k, "path": t.remote_path, "state": t.state(), "whole": t.whole})
                t.session = self.session
            keys.append(k)
        req: dict[str, Any] = {"op": "poll", "id": self.req_id, "keys": keys, "budget": budget,
                               "whole_limit": MAX_STATE_FILE}
        self.req_id += 1
        if opens:
            req["open"] = opens
        if self.ckpt_want:
            req["ckpt"] = sorted(self.ckpt_want)
        if self.closed:
            req["close"] = self.closed
            self.closed = []
        if self.args and (now - self.last_expand >= EXPAND_EVERY or any(v is None for v in self.args.values())):
            req["expand"] = {a: (r or {}).get("digest") for a, r in self.args.items()}
            self.last_expand = now
        self.outbuf += frame(req)
        self.inflight = (now, leader)
        self.last_rx = max(self.last_rx, now)

    @property
    def down(self) -> bool:
        """Cannot be read now (not connected, or connecting again after a failure)."""
        return self.problem is not None and (self.proc is None or not self.ready)

    def take(self, tail: RemoteTail | RemoteStateFile, budget: int) -> tuple[dict[str, Any], bytes] | None:
        """The next answer for ``tail``, asking the host when nothing is in flight and ``tail``
        has seen the last answer (so one pass over a host's runs is one round trip, not one per
        run)."""
        got = self.news.pop(tail.key, None)
        if got is not None:
            tail.checked = self.answered
            return got
        self.pump()
        if tail.checked < self.answered:
            tail.checked = self.answered  # the last answer had nothing for it: up to date
            return self.news.pop(tail.key, None)
        if self.ready and self.inflight is None:
            self._request(budget, tail)
        if self.inflight is not None and self.inflight[1] is tail:
            self.pump(WAIT)
        elif not self.ready and self.proc is not None:
            first = next(iter(self.tails.values()), None)
            self.pump(WAIT if first is tail else 0.0)
        tail.checked = self.answered
        return self.news.pop(tail.key, None)

    def expansion(self, arg: str, wait: float = 0.0) -> dict[str, Any] | None:
        """The host's last expansion of a path argument (None: not known yet)."""
        if arg not in self.args:
            self.args[arg] = None
            self.last_expand = -1e9
        deadline = time.monotonic() + wait
        while True:
            self.pump()
            if self.ready and self.inflight is None and (self.args[arg] is None or not self.tails):
                self._request(4 << 20, self)
            self.pump(max(0.0, min(WAIT, deadline - time.monotonic())))
            res = self.args.get(arg)
            if res is not None or time.monotonic() >= deadline:
                return res
            if self.proc is None and self.problem is not None:
                return None

    def checkpoints(self, base: str, wait: float) -> dict[int, str]:
        """checkpoint-N directories in ``base`` on the host, as ``discover.checkpoint_dirs``
        finds them there (empty when the host does not answer in ``wait`` seconds)."""
        self.ckpt_want.add(base)
        deadline = time.monotonic() + wait
        while base not in self.ckpt_got:
            self.pump()
            if self.ready and self.inflight is None:
                self._request(4 << 20, self)
            self.pump(max(0.0, min(WAIT, deadline - time.monotonic())))
            if time.monotonic() >= deadline or (self.proc is None and self.problem is not None):
                break
        self.ckpt_want.discard(base)
        return self.ckpt_got.pop(base, {})

    def register(self, tail: RemoteTail | RemoteStateFile) -> int:
        k = len(self.tails) + len(self.closed) + 1
        while k in self.tails:
            k += 1
        self.tails[k] = tail
        return k

    def unregister(self, tail: RemoteTail | RemoteStateFile) -> None:
        if self.tails.pop(tail.key, None) is not None:
            self.news.pop(tail.key, None)
            if tail.session == self.session:
                self.closed.append(tail.key)

    def close(self) -> None:
        self._kill()
        for p in self.stoppers:
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()
        self.stoppers = []


def _meta(item: dict[str, Any]) -> dict[str, Any]:
    """One file's news from the agent, checked field by field (a bad one raises)."""
    ident = item.get("ident")
    reset, error = item.get("reset"), item.get("error")
    return {
        "k": int(item["k"]), "n": int(item["n"]), "base": int(item["base"]),
        "reset": None if reset is None else str(reset), "eof": bool(item["eof"]),
        "exists": bool(item["exists"]), "error": None if error is None else str(error),
        "size": int(item["size"]), "mtime": float(item["mtime"]), "mtime_ns": int(item["mtime_ns"]),
        "ident": (int(ident[0]), int(ident[1])) if ident else None,
    }


# ssh's lines for why it could not connect, as OpenSSH words them, each with a template in the
# catalog (the English template gives back ssh's line as it was): the reason at the end is the C
# library's text (core/oserrors.py) or the resolver's.
_SSH_LINES = (
    (re.compile(r"^ssh: connect to host (?P<host>\S+) port (?P<port>\d+): (?P<reason>.+)$"),
     N_("ssh: connect to host {host} port {port}: {reason}")),
    (re.compile(r"^ssh: Could not resolve hostname (?P<host>\S+): (?P<reason>.+)$"),
     N_("ssh: Could not resolve hostname {host}: {reason}")),
    (re.compile(r"^Connection closed by (?P<host>\S+) port (?P<port>\d+)$"),
     N_("Connection closed by {host} port {port}")),
)


def _ssh_detail(err: str) -> str:
    """The last line ssh wrote, in the user's language when it is one of the common ones."""
    line = _last_line(err)
    for pattern, template in _SSH_LINES:
        m = pattern.match(line)
        if m:
            values = m.groupdict()
            if "reason" in values:
                values["reason"] = reason(values["reason"])
            return _(template).format(**values)
    return line


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("Warning: Permanently")]
    return clean_text(lines[-1])[:160] if lines else ""


class RemoteTail(FileTail):
    """A ``FileTail`` whose stat and reads happen on another host (lines are split here)."""

    whole = False

    def __init__(self, host: Host, remote_path: str) -> None:
        super().__init__(host.target.display(remote_path))
        self.host = host
        self.remote_path = remote_path
        self.session = 0
        self.synced = False  # an answer from the host arrived (before it, eof is unknown)
        self.at_eof = False
        self.checked = host.answered
        self.key = host.register(self)

    def state(self) -> dict[str, Any] | None:
        if not self.synced:
            return None
        return {"offset": self.offset, "size": self.size, "ident": list(self.ident) if self.ident else None,
                "head": self.head.hex(), "exists": self.exists, "mtime_ns": self._mtime_ns}

    def poll(self, budget: int = 4 << 20) -> Chunk:
        out = Chunk()
        got = self.host.take(self, budget)
        if got is None:
            down = self.host.down
            if down:
                self.error = self.host.problem
            # An unreachable host's silence is not the run's: not at the end, so never "stalled".
            out.eof = self.synced and self.at_eof and not down
            return out
        meta, data = got
        self.synced = True
        if meta["reset"]:
            out.reset = meta["reset"]
            self._reset(keep_fd=True)
        self.exists = meta["exists"]
        self.error = meta["error"]
        self.size = meta["size"]
        self.mtime = meta["mtime"]
        self._mtime_ns = meta["mtime_ns"]
        self.ident = meta["ident"]
        if data:
            if meta["base"] != self.offset:  # read again from 0 with no reason given, as locally
                self._reset(keep_fd=True)
            self._take(data, out)
        self.at_eof = meta["eof"]
        out.eof = self.at_eof
        return out

    def close(self) -> None:
        host = getattr(self, "host", None)
        if host is not None:
            host.unregister(self)

    def list_checkpoints(self, shown: str) -> dict[int, str]:
        """``best_checkpoint``'s lister: ``shown`` and the answer are in ``host:path`` form."""
        t = self.host.target
        prefix = t.display("")
        base = shown[len(prefix):] if shown.startswith(prefix) else shown
        return {k: t.display(v) for k, v in self.host.checkpoints(base, CHECKPOINT_WAIT).items()}


class RemoteStateFile(StateFile):
    """A ``trainer_state.json`` on another host: sent whole when it changes (a checkpoint save
    rewrites it whole), then read as the local one is."""

    whole = True

    def __init__(self, host: Host, remote_path: str) -> None:
        super().__init__(host.target.display(remote_path))
        self.host = host
        self.remote_path = remote_path
        self.session = 0
        self.synced = False
        self.checked = host.answered
        self.key = host.register(self)

    def state(self) -> dict[str, Any] | None:
        return None  # a new agent sends the file again; the history already read is recognised

    @property
    def ready(self) -> bool:
        return self.synced and not self.host.down

    def poll(self) -> tuple[list[dict[str, object]], int, str | None] | None:
        got = self.host.take(self, 4 << 20)
        if got is None:
            if self.host.down:
                self.error = self.host.problem
            return None
        meta, data = got
        self.synced = True
        self.exists = meta["exists"]
        self.error = meta["error"]
        self.size = self.offset = meta["size"]
        self.mtime = meta["mtime"]
        if not data:
            return None
        return self._entries(data)

    def close(self) -> None:
        self.host.unregister(self)

    def list_checkpoints(self, shown: str) -> dict[int, str]:
        """``best_checkpoint``'s lister: ``shown`` and the answer are in ``host:path`` form."""
        t = self.host.target
        prefix = t.display("")
        base = shown[len(prefix):] if shown.startswith(prefix) else shown
        return {k: t.display(v) for k, v in self.host.checkpoints(base, CHECKPOINT_WAIT).items()}


class Remotes:
    """The hosts of one monitor: their connections and the private control-socket directory."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.hosts: dict[tuple[str, int | None], Host] = {}
        self._dir: str | None = None
        cmd = _ssh_command or os.environ.get(ENV_COMMAND) or "ssh"
        try:
            self.base = shlex.split(cmd) or ["ssh"]
        except ValueError:  # unbalanced quotes: shown as "cannot run ..." on each host
            self.base = [cmd]
        try:
            self.timeout = float(os.environ.get(ENV_TIMEOUT, "15"))
        except ValueError:
            self.timeout = 15.0
        atexit.register(self.close)

    def control_dir(self) -> str:
        if self._dir is None:
            # A socket path must stay under ~100 bytes: a short base when TMPDIR is long.
            base = tempfile.gettempdir()
            if len(base) > 40:
                base = "/tmp"
            self._dir = tempfile.mkdtemp(prefix="sfttop-ssh-", dir=base)  # 0700: the sockets are ours only
        return self._dir

    def host(self, t: Target) -> Host:
        key = (t.dest, t.port)
        h = self.hosts.get(key)
        if h is None:
            h = self.hosts[key] = Host(t, self.base, self.control_dir(), self.version, self.timeout)
        return h

    def pump(self) -> None:
        for h in self.hosts.values():
            h.pump()

    def fresh(self) -> bool:
        got = False
        for h in self.hosts.values():
            got = got or h.fresh
            h.fresh = False
        return got

    def close(self) -> None:
        for h in self.hosts.values():
            h.close()
        if self._dir is not None:
            # Let each master go now rather than ControlPersist later.
            for h in self.hosts.values():
                try:
                    subprocess.run([*self.base, "-o", f"ControlPath={self._dir}/%C", "-O", "exit",
                                    *(["-p", str(h.target.port)] if h.target.port else []), "--", h.target.dest],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   timeout=3, check=False)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self.hosts.clear()
        atexit.unregister(self.close)


__all__ = ["RemoteTail", "Remotes", "Target", "parse_remote", "set_ssh_command"]
