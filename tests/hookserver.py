"""A local HTTP server on 127.0.0.1 that records every request: the stand-in for a chat service.

Each request is answered by the next scripted :class:`Reply` (then by ``default``), so a test can
say "500, then 200" or "429 with Retry-After: 1". No real service is ever contacted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"code":0,"errcode":0,"msg":"ok"}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a slow or hanging service)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float


class HookServer:
    def __init__(self, replies: list[Reply] | None = None, default: Reply | None = None) -> None:
        self.replies = list(replies or [])
        self.default = default or Reply()
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                parts = urlsplit(self.path)
                with outer.lock:
                    reply = outer.replies.pop(0) if outer.replies else outer.default
                    outer.seen.append(
                        Seen(
                            "POST",
                            parts.path,
                            parse_qs(parts.query),
                            dict(self.headers.items()),
                            body,
                            time.monotonic(),
                        )
                    )
                    outer.arrived.notify_all()
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Seen]:
        """Block until ``n`` requests arrived (or the timeout); the requests so far."""
        end = time.monotonic() + timeout
        with self.arrived:
            while len(self.seen) < n:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.arrived.wait(left)
            return list(self.seen)

    def __enter__(self) -> HookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
