#!/usr/bin/env python3
"""Open ``sfttop --serve`` in headless Chromium, read what the page shows and save a screenshot.

    python scripts/browser_shot.py                         # writes screenshots/sfttop-browser.png
    python scripts/browser_shot.py --out /tmp/shot.png tests/fixtures/real/tf5/explode

textual-serve draws the app on a canvas (xterm.js), so the page's DOM holds no text. This script
drives Chromium over the DevTools protocol instead: before the page loads it wraps ``WebSocket``
so every screen update the browser receives is also kept, then reads that terminal stream back
(escape codes removed) to check what the browser was given to draw, and captures the painted
page as a PNG. Needs Debian's ``chromium`` and aiohttp (a dependency of the ``web`` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "real" / "tf5"
DEFAULT_RUNS = ("nan_unfiltered", "healthy", "explode")

# Keeps every binary websocket frame (the terminal output textual-serve relays) for reading back.
_TAP = """
(() => {
  const chunks = [];
  const Orig = window.WebSocket;
  function Tapped(url, protocols) {
    const ws = protocols === undefined ? new Orig(url) : new Orig(url, protocols);
    ws.addEventListener('message', (e) => { if (typeof e.data !== 'string') chunks.push(e.data); });
    return ws;
  }
  Tapped.prototype = Orig.prototype;
  Object.assign(Tapped, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  window.WebSocket = Tapped;
  window.__sfttopScreen = () => {
    const dec = new TextDecoder();
    return chunks.map((c) => dec.decode(c instanceof ArrayBuffer ? new Uint8Array(c) : c, {stream: true})).join('');
  };
})();
"""

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1bP[^\x1b]*\x1b\\|\x1b[()][0-9A-Za-z]|\x1b.")


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def screen_text(raw: str) -> str:
    """The terminal stream with escape sequences removed: the words the page was told to draw."""
    return _ANSI.sub(" ", raw)


class Chromium:
    """A headless Chromium with the DevTools protocol on a local port."""

    def __init__(self, size: tuple[int, int] = (1280, 800)) -> None:
        exe = chromium()
        if exe is None:
            raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="sfttop-chromium-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--mute-audio", "--disable-breakpad",
             f"--remote-debugging-port={self.port}", f"--user-data-dir={self.profile}",
             f"--window-size={size[0]},{size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            # its crash-report and cache folders go into the throwaway profile, not the user's
            env={**os.environ, "XDG_CONFIG_HOME": self.profile, "XDG_CACHE_HOME": self.profile},
        )

    def page_ws(self, timeout: float = 20.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=2) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError("chromium did not open its DevTools port")

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


async def _capture(ws_url: str, url: str, expect: list[str], png: Path | None, timeout: float) -> str:
    import aiohttp

    ids = iter(range(1, 1_000_000))

    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url, max_msg_size=64 << 20) as ws:

        async def call(method: str, **params: object) -> dict[str, object]:
            n = next(ids)
            await ws.send_json({"id": n, "method": method, "params": params})
            async for msg in ws:
                d = json.loads(msg.data)
                if d.get("id") == n:
                    if "error" in d:
                        raise RuntimeError(f"{method}: {d['error']}")
                    return dict(d.get("result", {}))
            raise RuntimeError("DevTools connection closed")

        await call("Page.enable")
        await call("Page.addScriptToEvaluateOnNewDocument", source=_TAP)
        await call("Page.navigate", url=url)
        text = ""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = await call("Runtime.evaluate", expression="window.__sfttopScreen ? window.__sfttopScreen() : ''",
                           returnByValue=True)
            raw = r.get("result", {})
            text = screen_text(str(raw.get("value", "")) if isinstance(raw, dict) else "")
            if all(e in text for e in expect):
                break
            await asyncio.sleep(0.3)
        await asyncio.sleep(1.0)  # let xterm paint the last frame before the picture
        if png is not None:
            shot = await call("Page.captureScreenshot", format="png")
            png.parent.mkdir(parents=True, exist_ok=True)
            png.write_bytes(base64.b64decode(str(shot["data"])))
        return text


def capture(url: str, expect: list[str], png: Path | None = None, timeout: float = 30.0,
            size: tuple[int, int] = (1280, 800)) -> str:
    """Open ``url``; return the screen text once every string in ``expect`` is on it (or at the
    timeout); save a PNG of the page to ``png``."""
    browser = Chromium(size)
    try:
        return asyncio.run(_capture(browser.page_ws(), url, expect, png, timeout))
    finally:
        browser.close()


def start_server(paths: list[str], port: int, extra: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    """``sfttop --serve`` on ``port``, returned once it answers (or raises)."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfttop", "--serve", "--serve-port", str(port), *extra, *paths],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"sfttop --serve exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return proc
        except OSError:
            time.sleep(0.1)
    stop_server(proc)
    raise TimeoutError("sfttop --serve did not answer")


def stop_server(proc: subprocess.Popen[str]) -> str:
    """Stop the server and every per-tab app it started; its stderr."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        _out, err = proc.communicate()
    return err or ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", help="logs to serve (default: three real fixture runs)")
    ap.add_argument("--out", default=str(ROOT / "screenshots" / "sfttop-browser.png"))
    args = ap.parse_args()
    paths = args.paths or [str(FIXTURES / r) for r in DEFAULT_RUNS]
    port = free_port()
    proc = start_server(paths, port)
    try:
        text = capture(f"http://127.0.0.1:{port}/", [Path(p).name for p in paths], Path(args.out))
    finally:
        stop_server(proc)
    print(f"wrote {args.out} ({len(text)} characters of screen text)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
