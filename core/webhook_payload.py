"""What one alert looks like to each chat service's incoming webhook.

Each builder follows the service's documented incoming-webhook format and returns the whole HTTP
request (URL, body, headers), so signing and delivery stay separate from wording:

* **feishu** (Feishu/Lark custom bot): ``msg_type: post`` with a title and plain text rows; a
  signed bot gets ``timestamp`` (seconds) and ``sign`` = base64(HMAC-SHA256 keyed by
  ``"{timestamp}\\n{secret}"`` over an empty message) in the body, as Feishu's sample code does.
* **dingtalk** (DingTalk robot): ``msgtype: markdown`` with ``title`` and ``text``; a signed
  robot gets ``timestamp`` (milliseconds) and ``sign`` = urlencoded base64(HMAC-SHA256 keyed by
  the secret over ``"{timestamp}\\n{secret}"``) as query parameters.
* **wecom** (WeCom group robot): ``msgtype: markdown`` with ``content`` (at most 4096 bytes).
* **slack**: ``text`` (the notification fallback) and ``blocks`` (header, section, context).
* **discord**: ``content`` (at most 2000 characters) and one embed; mentions disabled so a log
  line cannot ping @everyone.
* **ntfy**: the plain text as the body, ``Title``/``Priority``/``Tags`` headers; a secret is
  sent as an access token (``Authorization: Bearer``).
* **json**: the finding as ``--alert-cmd`` gets it (plus ``host``); with a secret, an
  ``X-Sfttop-Signature: sha256=<hex HMAC of the body>`` header so a receiver can check it.

Every piece of text from a log is cleaned of control characters and capped in length; the
markdown flavours also neutralise link and tag syntax, so a metric name cannot become a link.
No Textual, no Rich: this is core.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from dataclasses import dataclass, field

import orjson

from sfttop.core.i18n import N_, _

from .alert import severity_name
from .config import WEBHOOK_FORMATS
from .diagnose import title as finding_title
from .sanitize import clean_text

FLAVOURS = WEBHOOK_FORMATS

# Hosts (and path prefixes) that name a flavour, checked in order.
_HOST_FLAVOURS: tuple[tuple[str, str, str], ...] = (
    ("open.feishu.cn", "", "feishu"),
    ("open.larksuite.com", "", "feishu"),
    ("oapi.dingtalk.com", "", "dingtalk"),
    ("qyapi.weixin.qq.com", "", "wecom"),
    ("hooks.slack.com", "", "slack"),
    ("discord.com", "/api/webhooks", "discord"),
    ("discordapp.com", "/api/webhooks", "discord"),
    ("ntfy.sh", "", "ntfy"),
)

_DISCORD_COLOURS = {"critical": 0xE03131, "warning": 0xF08C00, "info": 0x1C7ED6}
_NTFY_PRIORITY = {"critical": "urgent", "warning": "high", "info": "default"}
_NTFY_TAGS = {"critical": "rotating_light", "warning": "warning", "info": "information_source"}

MAX_MESSAGE = 500  # characters of a finding's message in one alert
MAX_ADVICE = 300
MAX_RUN = 120
MAX_DIGEST_ITEMS = 20  # a digest lists this many findings, then "... and N more"


def flavour_for(url: str) -> str | None:
    """The flavour a webhook URL names by its host (or an ``ntfy`` path), None when unknown."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    for suffix, path, name in _HOST_FLAVOURS:
        if (host == suffix or host.endswith("." + suffix)) and parts.path.startswith(path):
            return name
    if host.startswith("ntfy.") or "/ntfy/" in parts.path or parts.path.startswith("/ntfy"):
        return "ntfy"
    return None


def _cap(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _text(v: object, n: int) -> str:
    return _cap(" ".join(clean_text(str(v)).split()), n)


@dataclass(frozen=True)
class Alert:
    """One finding episode to tell a chat about: the run, the finding (as ``finding_dict``
    gives it) and the machine it was seen on."""

    run: str
    finding: dict[str, object]
    host: str

    @property
    def severity(self) -> str:
        return severity_name(self.finding.get("severity", "info"))

    @property
    def code(self) -> str:
        return _text(self.finding.get("code", ""), 60)

    @property
    def title(self) -> str:
        return _text(finding_title(str(self.finding.get("code", ""))), 80)

    @property
    def run_name(self) -> str:
        return _text(self.run, MAX_RUN)

    @property
    def message(self) -> str:
        return _text(self.finding.get("message", ""), MAX_MESSAGE)

    @property
    def advice(self) -> str:
        adv = self.finding.get("advice")
        if isinstance(adv, (list, tuple)) and adv:
            return _text(adv[0], MAX_ADVICE)
        return ""

    @property
    def step(self) -> str:
        step = self.finding.get("step")
        return str(step) if isinstance(step, int) and not isinstance(step, bool) else "?"

    @property
    def host_name(self) -> str:
        return _text(self.host, 80)


@dataclass(frozen=True)
class HttpRequest:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


# Severity words in a chat message's headline.
_SEVERITY = {"critical": N_("CRITICAL"), "warning": N_("WARNING"), "info": N_("INFO")}


def _sev(severity: str) -> str:
    return _(_SEVERITY[severity]) if severity in _SEVERITY else severity.upper()


def headline(alerts: list[Alert]) -> str:
    """``sfttop CRITICAL: Loss is NaN · run-a`` for one alert, a count for a digest."""
    if len(alerts) == 1:
        a = alerts[0]
        return _("sfttop {severity}: {title} · {run}").format(severity=_sev(a.severity), title=a.title, run=a.run_name)
    crit = sum(a.severity == "critical" for a in alerts)
    if crit:
        return _("sfttop: {count} new findings ({critical} critical) on {host}").format(
            count=len(alerts), critical=crit, host=alerts[0].host_name
        )
    return _("sfttop: {count} new findings on {host}").format(count=len(alerts), host=alerts[0].host_name)


def body_lines(alerts: list[Alert], dropped: int = 0) -> list[str]:
    """The message under the headline, as plain text lines (no links, no markup)."""
    if len(alerts) == 1:
        a = alerts[0]
        lines = [a.message]
        if a.advice:
            lines.append(_("Advice: {advice}").format(advice=a.advice))
        lines.append(_("run {run} · step {step} · {code} · host {host}").format(
            run=a.run_name, step=a.step, code=a.code, host=a.host_name))
    else:
        lines = [
            _("• {severity} {run} step {step}: {title} ({code}) {message}").format(
                severity=_sev(a.severity), run=a.run_name, step=a.step, title=a.title, code=a.code, message=a.message)
            for a in alerts[:MAX_DIGEST_ITEMS]
        ]
        if len(alerts) > MAX_DIGEST_ITEMS:
            lines.append(_("… and {count} more").format(count=len(alerts) - MAX_DIGEST_ITEMS))
    if dropped:
        lines.append(_("({count} earlier finding(s) not sent: the alert queue was full)").format(count=dropped))
    return lines


def plain_text(alerts: list[Alert], dropped: int = 0) -> str:
    """Headline and body as plain text: the fallback every flavour carries."""
    return "\n".join([headline(alerts), *body_lines(alerts, dropped)])


def _top_severity(alerts: list[Alert]) -> str:
    order = ("critical", "warning", "info")
    return min((a.severity for a in alerts), key=lambda s: order.index(s) if s in order else 3)


def _slack_escape(s: str) -> str:
    # Slack's documented escapes: the only characters its mrkdwn gives control meaning to.
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MD_NEUTRAL = str.maketrans({"<": "‹", ">": "›", "[": "［", "]": "］", "`": "'", "*": "∗", "_": " ", "#": "＃"})


def _md(s: str) -> str:
    # Markdown subsets differ per service and document no escaping: swap the characters that
    # make links, tags, emphasis and headings for look-alikes instead.
    return s.translate(_MD_NEUTRAL)


def _cap_bytes(s: str, n: int) -> str:
    b = s.encode()
    if len(b) <= n:
        return s
    return b[: n - 3].decode(errors="ignore") + "…"


def _json(d: object) -> bytes:
    return orjson.dumps(d)


_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def build_request(
    flavour: str,
    url: str,
    alerts: list[Alert],
    *,
    secret: str | None = None,
    now: float,
    dropped: int = 0,
) -> HttpRequest:
    """The request that tells ``url`` (a ``flavour`` webhook) about ``alerts`` (one, or a digest)."""
    if not alerts:
        raise ValueError("no alerts")
    head = headline(alerts)
    lines = body_lines(alerts, dropped)
    sev = _top_severity(alerts)
    if flavour == "slack":
        return HttpRequest(url, _json(_slack(alerts, head, lines)), dict(_JSON_HEADERS))
    if flavour == "discord":
        return HttpRequest(url, _json(_discord(alerts, head, lines, sev)), dict(_JSON_HEADERS))
    if flavour == "feishu":
        d: dict[str, object] = {}
        if secret:
            ts = str(int(now))
            d.update(timestamp=ts, sign=feishu_sign(ts, secret))
        d.update(
            msg_type="post",
            content={"post": {"zh_cn": {"title": head, "content": [[{"tag": "text", "text": ln}] for ln in lines]}}},
        )
        return HttpRequest(url, _json(d), dict(_JSON_HEADERS))
    if flavour == "dingtalk":
        text = "\n\n".join([f"#### {_md(head)}", *(_md(ln) for ln in lines)])
        d = {"msgtype": "markdown", "markdown": {"title": _cap(head, 64), "text": _cap(text, 4000)}}
        if secret:
            ts = str(int(now * 1000))
            sep = "&" if urllib.parse.urlsplit(url).query else "?"
            url = f"{url}{sep}timestamp={ts}&sign={dingtalk_sign(ts, secret)}"
        return HttpRequest(url, _json(d), dict(_JSON_HEADERS))
    if flavour == "wecom":
        text = "\n".join([f"**{_md(head)}**", *(_md(ln) for ln in lines)])
        d = {"msgtype": "markdown", "markdown": {"content": _cap_bytes(text, 4096)}}
        return HttpRequest(url, _json(d), dict(_JSON_HEADERS))
    if flavour == "ntfy":
        headers = {
            "Title": _header_value(head),
            "Priority": _NTFY_PRIORITY.get(sev, "default"),
            "Tags": _NTFY_TAGS.get(sev, "warning"),
            "Content-Type": "text/plain; charset=utf-8",
        }
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        return HttpRequest(url, _cap_bytes("\n".join(lines), 4000).encode(), headers)
    if flavour == "json":
        body = _json(json_payload(alerts, dropped))
        headers = dict(_JSON_HEADERS)
        if secret:
            mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Sfttop-Signature"] = f"sha256={mac}"
        return HttpRequest(url, body, headers)
    raise ValueError(f"unknown webhook format {flavour!r} (one of: {', '.join(FLAVOURS)})")


def _slack(alerts: list[Alert], head: str, lines: list[str]) -> dict[str, object]:
    blocks: list[dict[str, object]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cap(head, 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cap(_slack_escape("\n".join(lines)), 3000)}},
    ]
    if len(alerts) == 1:
        a = alerts[0]
        ctx = _("run {run} · step {step} · host {host}").format(run=a.run_name, step=a.step, host=a.host_name)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(ctx)}]})
    return {"text": _cap(_slack_escape("\n".join([head, *lines])), 3000), "blocks": blocks}


def _discord(alerts: list[Alert], head: str, lines: list[str], sev: str) -> dict[str, object]:
    embed: dict[str, object] = {
        "title": _cap(head, 256),
        "description": _cap("\n".join(lines), 3500),
        "color": _DISCORD_COLOURS.get(sev, 0x1C7ED6),
        "footer": {"text": "sfttop"},
    }
    if len(alerts) == 1:
        a = alerts[0]
        embed["fields"] = [
            {"name": "Run", "value": _cap(a.run_name, 512) or "?", "inline": True},
            {"name": "Step", "value": a.step, "inline": True},
            {"name": "Host", "value": _cap(a.host_name, 512) or "?", "inline": True},
        ]
    return {"content": _cap(plain_text_short(head, lines), 2000), "embeds": [embed], "allowed_mentions": {"parse": []}}


def plain_text_short(head: str, lines: list[str]) -> str:
    return "\n".join([head, *lines[:1]])


def json_payload(alerts: list[Alert], dropped: int = 0) -> dict[str, object]:
    """One finding: ``{"run", "host", ...finding}`` (``--alert-cmd``'s JSON plus ``host``); a
    digest: ``{"digest": [those], "count": N, "host"}``."""
    items = [{"run": a.run_name, "host": a.host_name, **a.finding} for a in alerts]
    d: dict[str, object] = (
        items[0] if len(items) == 1 else {"digest": items, "count": len(items), "host": alerts[0].host_name}
    )
    if dropped:
        d["dropped"] = dropped
    return d


def _header_value(s: str) -> str:
    # Header bytes beyond ASCII are read as Latin-1 by some servers and as UTF-8 by others;
    # ntfy documents RFC 2047 encoded words for anything but ASCII.
    if s.isascii():
        return s
    return "=?UTF-8?B?" + base64.b64encode(s.encode()).decode() + "?="


def feishu_sign(timestamp: str, secret: str) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def dingtalk_sign(timestamp: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(mac).decode())
