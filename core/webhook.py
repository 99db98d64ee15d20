"""``--alert-webhook``: tell chat webhooks about new finding episodes, without ever slowing the monitor.

The poll loop (TUI) or ``--follow`` hands each finding episode that is news (the same
``alert.news()`` the bell and ``--alert-cmd`` use) to :meth:`WebhookSender.offer`, which only
puts it on a bounded queue: a full queue drops and counts, it never blocks. Each target has its
own daemon thread, so a slow or dead service delays nobody else. A thread:

* waits ``digest_window`` seconds after the first finding of a burst; more than
  ``digest_after`` findings in that window go out as one digest message listing them;
* sends at most ``max_per_minute`` messages a minute: findings over the limit wait, and go
  together as one digest when the limit allows (nothing is dropped for the rate limit);
* retries network errors, timeouts, 5xx and 429 with exponential backoff (a 429's or 503's
  ``Retry-After`` is honoured, up to ``max_backoff``); any other 4xx, or a service's own error
  code in a 200 answer, is given up at once;
* never follows redirects (a webhook that redirects is misconfigured, and a redirect must not
  carry a token elsewhere).

Failures are counted for the status bar (:meth:`status`) and turned into lines for stderr
(:meth:`drain_errors`), the same error only once in a row per target. URLs are shown as
``scheme://host/…`` and secrets never appear in any text: webhook URLs are credentials too.
:meth:`close` flushes what is queued within a bounded wait.
"""

from __future__ import annotations

import email.utils
import http.client
import os
import queue
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from sfttop.core.i18n import _, ngettext

from .alert import finding_dict, severity_name, severity_rank
from .diagnose import Severity
from .oserrors import os_reason
from .sanitize import clean_text
from .webhook_payload import FLAVOURS, Alert, HttpRequest, build_request, flavour_for

if TYPE_CHECKING:
    from .config import Config

# Service error codes that arrive in a 200 answer and mean "too fast": retried like a 429.
_RATE_CODES = {11232, 130101, 45009}  # Feishu, DingTalk, WeCom


@dataclass(frozen=True)
class Target:
    url: str
    flavour: str
    min_severity: str = "warning"
    secret: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # the URL holds the token: never in a traceback or log
        return f"Target({self.shown!r}, {self.flavour!r}, {self.min_severity!r})"

    @property
    def shown(self) -> str:
        return mask_url(self.url)

    def wants(self, alert: Alert) -> bool:
        return severity_rank(alert.severity) >= severity_rank(self.min_severity)


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/services/T0/B0/xyz`` → ``https://hooks.slack.com/…``."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "?"
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(webhook)"
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    return clean_text(f"{parts.scheme}://{host}{port}{rest}")


def make_target(
    url: str,
    fmt: str | None = None,
    min_severity: str = "warning",
    secret: str | None = None,
    secret_env: str | None = None,
    env: Mapping[str, str] = os.environ,
) -> Target:
    """A validated target; ValueError (never naming the secret or the URL's token) when not."""
    try:
        parts = urllib.parse.urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(_("webhook URL must be http:// or https:// with a host, got {url}").format(url=mask_url(url)))
    flavour = fmt or flavour_for(url)
    if flavour is None:
        raise ValueError(
            _("cannot tell the webhook format of {url}: give --alert-webhook-format (or 'format' in the config), one of {choices}").format(url=mask_url(url), choices=', '.join(FLAVOURS))
        )
    if flavour not in FLAVOURS:
        raise ValueError(_("unknown webhook format {flavour!r} (one of: {choices})").format(flavour=flavour, choices=', '.join(FLAVOURS)))
    if severity_name(min_severity) not in {s.value for s in Severity}:
        raise ValueError(_("unknown severity {min_severity!r}").format(min_severity=min_severity))
    if secret_env:
        secret = env.get(secret_env)
        if not secret:
            raise ValueError(_("environment variable {secret_env} (the webhook secret) is not set").format(secret_env=secret_env))
    return Target(url, flavour, severity_name(min_severity), secret or None)


def targets_for(
    urls: Sequence[str] | None,
    fmt: str | None,
    secret_env: str | None,
    severity: str | None,
    config: Config,
    env: Mapping[str, str] = os.environ,
) -> list[Target]:
    """The command line's ``--alert-webhook`` targets, then the config's ``[[alert.webhook]]``."""
    base = severity or config.alert.min_severity
    out = [make_target(u, fmt, base, secret_env=secret_env, env=env) for u in urls or ()]
    for w in config.alert.webhook:
        out.append(make_target(w.url, w.format, w.min_severity or base, w.secret, w.secret_env, env))
    return out


class _Failure(Exception):
    def __init__(self, text: str, retry: bool, after: float | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.retry = retry
        self.after = after


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError: reported, not followed


def _default_opener() -> Callable[..., Any]:
    return urllib.request.build_opener(_NoRedirect()).open


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


@dataclass
class _Stats:
    sent: int = 0  # messages delivered
    findings: int = 0  # findings those messages carried
    failed: int = 0  # messages given up
    dropped: int = 0  # findings lost to a full queue
    last_error: str | None = None


class _Worker:
    """One target's queue and delivery thread."""

    def __init__(self, sender: WebhookSender, target: Target, index: int) -> None:
        self.s = sender
        self.target = target
        self.q: queue.Queue[Alert | None] = queue.Queue(sender.queue_size)
        self.times: deque[float] = deque()
        self.dropped_since = 0  # findings dropped since the last message, told in the next one
        self.last_line: str | None = None
        self.thread = threading.Thread(target=self._run, name=f"sfttop-webhook-{index}", daemon=True)

    # -- the poll thread's side: never blocks
    def put(self, alert: Alert) -> None:
        try:
            self.q.put_nowait(alert)
        except queue.Full:
            with self.s.lock:
                self.s.stats.dropped += 1
                self.dropped_since += 1

    # -- the worker thread
    def _run(self) -> None:
        pending: list[Alert] = []
        while True:
            item = self.q.get()
            if item is None:
                return
            pending = [item]
            closing = self._gather(pending, self.s.clock() + self.s.digest_window)
            while not closing and self._slots() < 1:
                closing = self._gather(pending, self.times[0] + 60.0)
            self._send_batch(pending)
            if closing:
                rest: list[Alert] = []
                self._gather(rest, 0.0)
                if rest:
                    self._send_batch(rest)
                return

    def _gather(self, pending: list[Alert], until: float) -> bool:
        """Add what arrives before ``until`` (or is queued already) to ``pending``; True at close."""
        while True:
            closing = self.s.closing.is_set()
            wait = 0.0 if closing else until - self.s.clock()
            try:
                item = self.q.get(timeout=wait) if wait > 0 else self.q.get_nowait()
            except queue.Empty:
                return closing
            if item is None:
                return True
            pending.append(item)

    def _slots(self) -> int:
        now = self.s.clock()
        while self.times and now - self.times[0] >= 60.0:
            self.times.popleft()
        return self.s.max_per_minute - len(self.times)

    def _send_batch(self, alerts: list[Alert]) -> None:
        if len(alerts) == 1 or (len(alerts) <= self.s.digest_after and self._slots() >= len(alerts)):
            for a in alerts:
                self._send([a])
        else:
            self._send(alerts)

    def _send(self, alerts: list[Alert]) -> None:
        dropped, self.dropped_since = self.dropped_since, 0
        t = self.target
        try:
            req = build_request(t.flavour, t.url, alerts, secret=t.secret, now=self.s.wall(), dropped=dropped)
            self._deliver(req)
        except _Failure as e:
            self._failed(e.text, len(alerts))
            return
        except Exception as e:  # a bug here must not kill the thread: the next finding still goes out
            self._failed(_("internal error: {name}").format(name=type(e).__name__), len(alerts))
            return
        self.times.append(self.s.clock())
        with self.s.lock:
            self.s.stats.sent += 1
            self.s.stats.findings += len(alerts)
        self.last_line = None

    def _failed(self, text: str, n: int) -> None:
        text = self._scrub(text)
        line = _("sfttop: webhook {target} ({format}) failed: {error}").format(
            target=self.target.shown, format=self.target.flavour, error=text)
        with self.s.lock:
            self.s.stats.failed += 1
            self.s.stats.last_error = f"{self.target.shown}: {text}"
            if line != self.last_line:  # the same failure again: counted, not repeated
                self.s.errors.append(
                    ngettext("{line} ({n} finding not delivered)", "{line} ({n} findings not delivered)", n).format(
                        line=line, n=n)
                )
        self.last_line = line

    def _scrub(self, text: str) -> str:
        t = self.target
        for secret in (t.url, urllib.parse.urlsplit(t.url).query, t.secret):
            if secret:
                text = text.replace(secret, "***")
        return clean_text(text)[:200]

    def _deliver(self, req: HttpRequest) -> None:
        attempt = 0
        while True:
            try:
                self._attempt(req)
                return
            except _Failure as e:
                if not e.retry or attempt >= self.s.retries:
                    if e.retry and attempt:
                        raise _Failure(_("{error} (after {n} attempts)").format(error=e.text, n=attempt + 1), False) from None
                    raise
                delay = e.after if e.after is not None else self.s.backoff * 2**attempt
                if not self._sleep(min(delay, self.s.max_backoff)):
                    raise _Failure(_("{error} (not retried: sfttop is exiting)").format(error=e.text), False) from None
                attempt += 1

    def _sleep(self, delay: float) -> bool:
        """Sleep ``delay`` s; False (at once) when that would pass the exit deadline."""
        end = self.s.clock() + delay
        while True:
            deadline = self.s.deadline
            if deadline is not None and end > deadline:
                return False
            left = end - self.s.clock()
            if left <= 0:
                return True
            if self.s.closing.is_set():
                time.sleep(left)
            else:
                self.s.closing.wait(left)

    def _attempt(self, req: HttpRequest) -> None:
        timeout = self.s.timeout
        if self.s.deadline is not None:
            timeout = max(0.1, min(timeout, self.s.deadline - self.s.clock()))
        r = urllib.request.Request(req.url, data=req.body, headers=req.headers, method="POST")
        try:
            with self.s.opener(r, timeout=timeout) as resp:
                body = resp.read(65536)
        except urllib.error.HTTPError as e:
            code = e.code
            after = retry_after(e.headers.get("Retry-After") if e.headers else None, self.s.wall())
            if code == 429 or code >= 500 or code == 408:
                raise _Failure(f"HTTP {code}", True, after) from None
            raise _Failure(_("HTTP {code} {reason} (not retried)").format(code=code, reason=clean_text(str(e.reason))[:60]), False) from None
        except urllib.error.URLError as e:
            raise _Failure(os_reason(e.reason) if isinstance(e.reason, OSError) else clean_text(str(e.reason)), True) from None
        except TimeoutError:
            raise _Failure(_("timed out after {seconds} s").format(seconds=f"{timeout:g}"), True) from None
        except (OSError, http.client.HTTPException) as e:
            raise _Failure(f"{type(e).__name__}: {os_reason(e) if isinstance(e, OSError) else e}", True) from None
        self._check_answer(body)

    def _check_answer(self, body: bytes) -> None:
        """Feishu, DingTalk and WeCom answer 200 with their own error code in the body."""
        if self.target.flavour not in ("feishu", "dingtalk", "wecom"):
            return
        try:
            d = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if not isinstance(d, dict):
            return
        code = d.get("code", d.get("errcode", d.get("StatusCode", 0)))
        if isinstance(code, int) and code != 0:
            msg = clean_text(str(d.get("msg", d.get("errmsg", d.get("StatusMessage", "")))))[:80]
            raise _Failure(_("service error {code} {message}").format(code=code, message=msg).rstrip(), code in _RATE_CODES)


@dataclass
class WebhookSender:
    """Deliver finding episodes to ``targets``, each on its own thread (see the module doc)."""

    targets: list[Target]
    host: str = field(default_factory=lambda: clean_text(socket.gethostname()))
    timeout: float = 10.0
    retries: int = 4
    backoff: float = 1.0
    max_backoff: float = 60.0
    digest_after: int = 3
    digest_window: float = 2.0
    max_per_minute: int = 6
    queue_size: int = 256
    opener: Callable[..., Any] = field(default_factory=_default_opener)
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    stats: _Stats = field(default_factory=_Stats, init=False)
    errors: list[str] = field(default_factory=list, init=False)
    lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    closing: threading.Event = field(default_factory=threading.Event, init=False)
    deadline: float | None = field(default=None, init=False)
    _workers: list[_Worker] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.max_per_minute = max(1, int(self.max_per_minute))
        self._workers = [_Worker(self, t, i) for i, t in enumerate(self.targets)]
        for w in self._workers:
            w.thread.start()

    def offer(self, run: str, finding: object) -> None:
        """A finding episode just opened: queue it for every target whose severity it reaches."""
        if self.closing.is_set():
            return
        alert = Alert(run, finding_dict(finding), self.host)
        for w in self._workers:
            if w.target.wants(alert):
                w.put(alert)

    def drain_errors(self) -> list[str]:
        """Failure lines since the last call (for stderr in ``--follow``)."""
        with self.lock:
            out, self.errors = self.errors, []
        return out

    def status(self) -> str:
        """One line for a status bar: ``webhooks 3 sent · 1 failed (hooks.slack.com/…: HTTP 400)``."""
        with self.lock:
            s = self.stats
            parts = [_("{count} sent").format(count=s.sent)]
            if s.dropped:
                parts.append(_("{count} dropped").format(count=s.dropped))
            if s.failed:
                parts.append(_("{count} failed ({error})").format(count=s.failed, error=s.last_error))
        return _("webhooks {parts}").format(parts=" · ".join(parts))

    def close(self, wait: float = 3.0) -> None:
        """Send what is queued (no digest wait, no rate limit), giving up after ``wait`` seconds."""
        self.deadline = self.clock() + wait
        self.closing.set()
        for w in self._workers:
            try:
                w.q.put(None, timeout=max(0.0, self.deadline - self.clock()))
            except queue.Full:
                pass
        for w in self._workers:
            w.thread.join(max(0.0, self.deadline - self.clock()) + 0.2)


def sender_for(
    urls: Sequence[str] | None,
    fmt: str | None,
    secret_env: str | None,
    severity: str | None,
    config: Config,
    env: Mapping[str, str] = os.environ,
) -> WebhookSender | None:
    """The sender the command line and the config ask for (None: no webhook); ValueError when a
    target is invalid."""
    targets = targets_for(urls, fmt, secret_env, severity, config, env)
    if not targets:
        return None
    return WebhookSender(targets, max_per_minute=config.alert.webhook_per_minute)
