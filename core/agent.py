"""The remote end of an ssh source: a stdlib-only loop sent over the connection as source text.

``core/remote.py`` sends this module, ``tail.py`` and ``discover.py`` to ``python3`` on the
host (nothing is installed there) and calls ``main``. It answers framed requests on stdin:
expand path arguments (the same rules as locally) and poll files with the local tailer's own
``FileTail`` (so truncation, rotation, re-creation and fingerprints behave the same), sending
only the new bytes. Lines are split on the watching side, which keeps the partial line and the
over-long-line rule in one place. It only reads: it never writes a file, and paths arrive as
JSON data, never through a shell. Kept importable on Python 3.7 (no ``X | Y`` at runtime).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import zlib
from typing import Any, BinaryIO

HEADER = struct.Struct(">II")  # header length, data length; then the JSON header, then the data
MAX_HEADER = 16 << 20
RESPONSE_CAP = 16 << 20  # bytes of file data in one answer, over all files
# Written before the first frame: whatever a login script printed to stdout before the agent
# started is skipped up to here, never taken for a frame.
MARKER = b"\x00sfttop-agent-frames\x00"


def read_frame(f: BinaryIO) -> tuple[dict[str, Any], bytes] | None:
    """One frame, or None at the end of the stream."""
    pre = _read_exact(f, HEADER.size)
    if pre is None:
        return None
    hlen, dlen = HEADER.unpack(pre)
    if hlen > MAX_HEADER:
        raise ValueError("frame header too long")
    head = _read_exact(f, hlen)
    data = _read_exact(f, dlen) if dlen else b""
    if head is None or data is None:
        return None
    obj = json.loads(head.decode("utf-8"))
    if not isinstance(obj, dict):
        raise ValueError("frame header is not an object")
    return obj, data


def _read_exact(f: BinaryIO, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        got = f.read(n - len(buf))
        if not got:
            return None
        buf += got
    return buf


def frame(header: dict[str, Any], data: bytes = b"") -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return HEADER.pack(len(head), len(data)) + head + data


class Agent:
    def __init__(self, tail: Any, discover: Any, version: str) -> None:
        self.discover = discover
        self.version = version

        class RawTail(tail.FileTail):  # type: ignore[misc]
            # The watching side splits lines: here a chunk is the raw bytes from ``start``.
            def _split(self, data: bytes, start: int, out: Any) -> None:
                out.data = data
                out.base = start

        class WholeFile:
            """A file read whole when it changed (trainer_state.json, rewritten at each save)."""

            def __init__(self, path: str, limit: int) -> None:
                self.path = path
                self.limit = limit
                self.sig: tuple[int, int, int] | None = None
                self.exists = False
                self.error: str | None = None
                self.size = 0
                self.mtime = 0.0
                self._mtime_ns = 0
                self.ident: tuple[int, int] | None = None

            def poll(self, budget: int) -> Any:
                c = tail.Chunk()
                try:
                    st = os.stat(self.path)
                except OSError as e:
                    self.exists = not isinstance(e, FileNotFoundError)
                    self.error = "file not found" if not self.exists else (e.strerror or str(e))
                    return c
                self.exists = True
                self.size, self.mtime, self._mtime_ns = st.st_size, st.st_mtime, st.st_mtime_ns
                self.ident = (st.st_dev, st.st_ino)
                sig = (st.st_mtime_ns, st.st_size, st.st_ino)
                if sig == self.sig:
                    return c
                if st.st_size > self.limit:
                    self.error = f"trainer_state.json is {st.st_size >> 20} MiB; not read"
                    self.sig = sig
                    return c
                try:
                    with open(self.path, "rb") as f:
                        c.data = f.read(self.limit + 1)
                except OSError as e:
                    self.error = e.strerror or str(e)
                    return c
                self.error = None
                self.sig = sig
                c.grew = True
                return c

            def close(self) -> None:
                pass

        self.raw_tail = RawTail
        self.whole_file = WholeFile
        self.whole_limit = 512 << 20
        self.tails: dict[int, Any] = {}
        self.seen: dict[int, tuple[Any, ...]] = {}
        self.intervals: dict[str, int | None] = {}

    def handle(self, req: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        op = req.get("op")
        if op == "hello":
            return {"op": "hello", "version": self.version, "python": list(sys.version_info[:3])}, b""
        if op != "poll":
            return {"op": "error", "error": "unknown request"}, b""
        resp: dict[str, Any] = {"op": "poll", "id": req.get("id")}
        self.whole_limit = int(req.get("whole_limit") or self.whole_limit)
        for o in req.get("open") or []:
            self._open(o)
        for k in req.get("close") or []:
            t = self.tails.pop(int(k), None)
            self.seen.pop(int(k), None)
            if t is not None:
                t.close()
        expand = req.get("expand")
        if isinstance(expand, dict):
            # Only what changed since the digest the watcher holds: an idle host sends nearly nothing.
            resp["expanded"] = got = {}
            for a, digest in expand.items():
                res = self._expand(str(a))
                res["digest"] = zlib.crc32(json.dumps(res, sort_keys=True).encode("utf-8"))
                if res["digest"] != digest:
                    got[a] = res
        if req.get("ckpt"):
            resp["ckpts"] = {b: {str(k): v for k, v in self.discover.checkpoint_dirs(os.path.expanduser(b)).items()}
                             for b in req["ckpt"] if isinstance(b, str)}
        budget = max(0, int(req.get("budget") or 0))
        left = RESPONSE_CAP
        items: list[dict[str, Any]] = []
        blobs: list[bytes] = []
        for k in req.get("keys") or []:
            t = self.tails.get(int(k))
            if t is None or left <= 0:
                continue
            c = t.poll(min(budget, left))
            left -= len(c.data)
            now = (t.exists, t.error, t.size, t._mtime_ns, t.ident)
            if c.grew or c.reset or self.seen.get(int(k)) != now:
                self.seen[int(k)] = now
                items.append({
                    "k": int(k), "n": len(c.data), "base": c.base, "reset": c.reset, "eof": c.eof,
                    "exists": t.exists, "error": t.error, "size": t.size, "mtime": t.mtime,
                    "mtime_ns": t._mtime_ns, "ident": list(t.ident) if t.ident else None,
                })
                blobs.append(c.data)
        resp["tails"] = items
        return resp, b"".join(blobs)

    def _open(self, o: dict[str, Any]) -> None:
        k = int(o["k"])
        old = self.tails.pop(k, None)
        if old is not None:
            old.close()
        path = os.path.expanduser(str(o["path"]))
        if o.get("whole"):
            self.tails[k] = self.whole_file(path, self.whole_limit)
            self.seen.pop(k, None)
            return
        t = self.raw_tail(path)
        st = o.get("state")
        if isinstance(st, dict):
            # Resumed after a reconnect: exactly where the watching side stopped, so nothing
            # is read twice and a changed identity is still seen as one.
            t.offset = int(st["offset"])
            t.size = int(st["size"])
            t.ident = tuple(st["ident"]) if st.get("ident") else None
            t.head = bytes.fromhex(st["head"])
            t.exists = bool(st["exists"])
            t._mtime_ns = int(st["mtime_ns"])
        self.tails[k] = t
        self.seen.pop(k, None)

    def _expand(self, arg: str) -> dict[str, Any]:
        d = self.discover
        a = os.path.expanduser(arg)
        try:
            pairs = d.expand_arg(a)
        except OSError:
            pairs = []
        out = []
        for name, path in pairs:
            if path not in self.intervals:
                self.intervals[path] = d.logging_steps_near(path)
            out.append([name, path, self.intervals[path]])
        return {"pairs": out, "exists": os.path.exists(a), "magic": d.has_magic(a), "path": a}


def main(tail: Any, discover: Any, version: str) -> None:
    inp = sys.stdin.buffer
    out = sys.stdout.buffer
    agent = Agent(tail, discover, version)
    try:
        out.write(MARKER)
    except OSError:
        return
    while True:
        try:
            got = read_frame(inp)
        except (ValueError, OSError):
            return
        if got is None:
            return  # the connection closed: nothing to clean up, nothing was written
        req, _ = got
        try:
            resp, data = agent.handle(req)
        except Exception as e:  # one bad request must not end the session
            resp, data = {"op": "error", "id": req.get("id"), "error": f"{type(e).__name__}: {e}"}, b""
        try:
            out.write(frame(resp, data))
            out.flush()
        except OSError:
            return
