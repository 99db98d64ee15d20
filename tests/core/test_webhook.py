"""``--alert-webhook``: each flavour's payload against its service's documented schema, sent to a
local recording server, and the faults a real service produces (timeouts, 5xx, 429, 4xx, refusal)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import socket
import time
import urllib.parse
from typing import Any

import pytest

from hookserver import HookServer, Reply, Seen
from sfttop.core.config import Config, ConfigError, config_from_mapping
from sfttop.core.diagnose import Finding, Severity
from sfttop.core.webhook import Target, WebhookSender, make_target, mask_url, retry_after, targets_for
from sfttop.core.webhook_payload import FLAVOURS, flavour_for

EVIL = "\x1b]52;c;ZXZpbA==\x07<!channel> [click](http://x) @everyone\x1b[31m"


def _finding(code: str = "loss_nonfinite", sev: Severity = Severity.CRITICAL, step: int = 120) -> Finding:
    return Finding(code, sev, step, "loss", math.nan, f"loss is nan at step {step}", ["lower the learning rate", "b"])


def _sender(targets: list[Target], **kw: Any) -> WebhookSender:
    opts: dict[str, Any] = dict(host="gpu-01", timeout=2.0, retries=3, backoff=0.05, digest_window=0.05)
    opts.update(kw)
    return WebhookSender(targets, **opts)


def _one(
    flavour: str,
    finding: Finding | None = None,
    run: str = "run-a",
    secret: str | None = None,
    path: str = "/hook?access_token=tok123",
) -> tuple[Seen, WebhookSender]:
    with HookServer() as srv:
        s = _sender([Target(srv.url(path), flavour, "info", secret)])
        s.offer(run, finding or _finding())
        seen = srv.wait_for(1)
        s.close(wait=2.0)
    assert len(seen) == 1, s.drain_errors()
    return seen[0], s


def _json(seen: Seen) -> dict[str, Any]:
    assert seen.headers["Content-Type"].startswith("application/json")
    d = json.loads(seen.body)
    assert isinstance(d, dict)
    return d


def test_flavour_from_url() -> None:
    assert flavour_for("https://open.feishu.cn/open-apis/bot/v2/hook/abc") == "feishu"
    assert flavour_for("https://open.larksuite.com/open-apis/bot/v2/hook/abc") == "feishu"
    assert flavour_for("https://oapi.dingtalk.com/robot/send?access_token=x") == "dingtalk"
    assert flavour_for("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k") == "wecom"
    assert flavour_for("https://hooks.slack.com/services/T/B/x") == "slack"
    assert flavour_for("https://discord.com/api/webhooks/1/tok") == "discord"
    assert flavour_for("https://discord.com/channels/1") is None
    assert flavour_for("https://ntfy.sh/my-topic") == "ntfy"
    assert flavour_for("https://example.org/ntfy/topic") == "ntfy"
    assert flavour_for("https://example.org/hook") is None
    assert flavour_for("https://evil.example/open.feishu.cn") is None  # the host decides, not the path


def test_unknown_flavour_and_bad_url_are_usage_errors_that_hide_the_token() -> None:
    with pytest.raises(ValueError, match="alert-webhook-format") as e:
        make_target("https://example.org/hook/SECRETTOKEN")
    assert "SECRETTOKEN" not in str(e.value)
    with pytest.raises(ValueError, match="http"):
        make_target("ftp://example.org/x", "json")
    with pytest.raises(ValueError, match="unknown webhook format"):
        make_target("https://example.org/x", "teams")
    with pytest.raises(ValueError, match="SFTTOP_NO_SUCH_VAR"):
        make_target("https://example.org/x", "json", secret_env="SFTTOP_NO_SUCH_VAR", env={})
    t = make_target("https://hooks.slack.com/services/T/B/SECRETTOKEN")
    assert "SECRETTOKEN" not in repr(t) and mask_url(t.url) == "https://hooks.slack.com/…"


def test_feishu_post_with_signature() -> None:
    before = int(time.time())
    seen, _ = _one("feishu", secret="s3cr3t", run=EVIL)
    d = _json(seen)
    assert d["msg_type"] == "post"
    post = d["content"]["post"]["zh_cn"]
    assert isinstance(post["title"], str) and "CRITICAL" in post["title"]
    rows = post["content"]
    assert all(
        isinstance(r, list) and r and all(el["tag"] == "text" and isinstance(el["text"], str) for el in r) for r in rows
    )
    text = "\n".join(el["text"] for r in rows for el in r)
    assert "loss is nan at step 120" in text and "lower the learning rate" in text
    assert "gpu-01" in text and "step 120" in text
    assert "\x1b" not in seen.body.decode() and "\x07" not in seen.body.decode()
    # Feishu: timestamp in seconds, sign = base64(HMAC-SHA256(key="ts\nsecret", msg=""))
    ts = d["timestamp"]
    assert isinstance(ts, str) and before <= int(ts) <= time.time() + 1
    key = f"{ts}\ns3cr3t".encode()
    assert d["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert "s3cr3t" not in seen.body.decode()


def test_feishu_unsigned_has_no_sign() -> None:
    seen, _ = _one("feishu")
    d = _json(seen)
    assert "sign" not in d and "timestamp" not in d


def test_dingtalk_markdown_signed_in_query() -> None:
    seen, _ = _one("dingtalk", secret="SECabc", run="run-[x](http://evil)")
    d = _json(seen)
    assert d["msgtype"] == "markdown"
    md = d["markdown"]
    assert isinstance(md["title"], str) and isinstance(md["text"], str) and md["title"]
    assert "loss is nan at step 120" in md["text"] and "](" not in md["text"]  # no link syntax from a log
    assert seen.query["access_token"] == ["tok123"]  # the URL's own parameters kept
    ts = seen.query["timestamp"][0]
    assert abs(int(ts) / 1000 - time.time()) < 10  # milliseconds
    mac = hmac.new(b"SECabc", f"{ts}\nSECabc".encode(), hashlib.sha256).digest()
    # parse_qs undid the URL encoding: what is left must be the base64 of the HMAC
    assert seen.query["sign"] == [base64.b64encode(mac).decode()]


def test_wecom_markdown_within_4096_bytes() -> None:
    long = _finding()
    long.message = "损失" * 3000
    seen, _ = _one("wecom", finding=long)
    d = _json(seen)
    assert d["msgtype"] == "markdown" and isinstance(d["markdown"]["content"], str)
    assert len(d["markdown"]["content"].encode()) <= 4096


def test_slack_text_and_blocks_escape_control_syntax() -> None:
    seen, _ = _one("slack", run=EVIL)
    d = _json(seen)
    assert isinstance(d["text"], str) and "loss is nan" in d["text"]
    # mrkdwn parses <!channel>: escaped there; the plain_text header never parses it
    assert "<!channel>" not in d["text"] and "&lt;!channel&gt;" in d["text"]
    blocks = d["blocks"]
    assert blocks[0]["type"] == "header" and blocks[0]["text"]["type"] == "plain_text"
    assert len(blocks[0]["text"]["text"]) <= 150
    assert blocks[1]["type"] == "section" and blocks[1]["text"]["type"] == "mrkdwn"
    assert "<!channel>" not in blocks[1]["text"]["text"] + blocks[2]["elements"][0]["text"]
    assert "lower the learning rate" in blocks[1]["text"]["text"]
    assert blocks[2]["type"] == "context" and "gpu-01" in blocks[2]["elements"][0]["text"]


def test_discord_content_limit_embed_and_no_mentions() -> None:
    long = _finding()
    long.message = "x" * 5000
    seen, _ = _one("discord", finding=long, run=EVIL)
    d = _json(seen)
    assert isinstance(d["content"], str) and 0 < len(d["content"]) <= 2000
    assert d["allowed_mentions"] == {"parse": []}
    (embed,) = d["embeds"]
    assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
    assert embed["color"] == 0xE03131
    names = {f["name"]: f["value"] for f in embed["fields"]}
    assert names["Step"] == "120" and names["Host"] == "gpu-01"
    total = (
        len(embed["title"]) + len(embed["description"]) + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    )
    assert total <= 6000


def test_ntfy_plain_body_and_headers() -> None:
    seen, _ = _one("ntfy", secret="tk_abc", run="运行-a")
    assert seen.headers["Priority"] == "urgent" and seen.headers["Tags"] == "rotating_light"
    title = seen.headers["Title"]
    assert title.startswith("=?UTF-8?B?")  # RFC 2047, as ntfy documents for non-ASCII
    assert "运行-a" in base64.b64decode(title[10:-2]).decode()
    plain, _ = _one("ntfy", run="run-a", finding=_finding("grad_norm_high", Severity.WARNING))
    assert plain.headers["Priority"] == "high" and plain.headers["Title"].startswith("=?UTF-8?B?")  # "·" is not ASCII
    assert seen.headers["Authorization"] == "Bearer tk_abc"
    body = seen.body.decode()
    assert body.startswith("loss is nan at step 120") and "Advice: lower the learning rate" in body


def test_json_is_the_alert_cmd_payload_plus_host_and_signed() -> None:
    seen, _ = _one("json", secret="k")
    d = _json(seen)
    assert d["run"] == "run-a" and d["host"] == "gpu-01" and d["code"] == "loss_nonfinite"
    assert d["value"] == "nan" and d["advice"] == ["lower the learning rate", "b"] and d["step"] == 120
    mac = hmac.new(b"k", seen.body, hashlib.sha256).hexdigest()
    assert seen.headers["X-Sfttop-Signature"] == f"sha256={mac}"


def test_severity_floor_per_target() -> None:
    with HookServer() as srv:
        s = _sender([Target(srv.url("/crit"), "json", "critical"), Target(srv.url("/all"), "json", "info")])
        s.offer("r", _finding("grad_norm_high", Severity.WARNING))
        srv.wait_for(1)
        s.close(wait=2.0)
    assert [x.path for x in srv.seen] == ["/all"]


def test_burst_becomes_one_digest() -> None:
    with HookServer() as srv:
        s = _sender([Target(srv.url(), "slack", "info")], digest_window=0.3, digest_after=3)
        for i in range(5):
            s.offer(f"run-{i}", _finding(step=i))
        seen = srv.wait_for(1)
        time.sleep(0.3)
        s.close(wait=2.0)
    assert len(srv.seen) == 1
    d = _json(seen[0])
    assert "5 new findings" in d["blocks"][0]["text"]["text"]
    assert all(f"run-{i}" in d["text"] for i in range(5))
    assert s.stats.sent == 1 and s.stats.findings == 5


def test_rate_limit_holds_the_excess_for_one_digest() -> None:
    with HookServer() as srv:
        s = _sender([Target(srv.url(), "json", "info")], max_per_minute=2, digest_window=0.01)
        for i in range(4):
            s.offer("r", _finding(step=i))
            time.sleep(0.1)
        srv.wait_for(2)
        time.sleep(0.3)
        assert len(srv.seen) == 2  # the limit holds the rest back ...
        s.close(wait=2.0)  # ... and the exit flush sends them, together
    assert len(srv.seen) == 3
    last = json.loads(srv.seen[2].body)
    assert last["count"] == 2 and [x["step"] for x in last["digest"]] == [2, 3]


def test_500_then_success_is_retried() -> None:
    with HookServer([Reply(500), Reply(502)]) as srv:
        s = _sender([Target(srv.url(), "json", "info")])
        s.offer("r", _finding())
        seen = srv.wait_for(3)
        s.close(wait=2.0)
    assert len(seen) == 3 and seen[0].body == seen[2].body
    assert s.stats.sent == 1 and s.stats.failed == 0 and s.drain_errors() == []
    assert seen[2].at - seen[1].at >= 0.09  # backoff doubled: 0.05, then 0.1


def test_429_retry_after_is_honoured() -> None:
    with HookServer([Reply(429, headers={"Retry-After": "1"})]) as srv:
        s = _sender([Target(srv.url(), "json", "info")])
        s.offer("r", _finding())
        seen = srv.wait_for(2)
        s.close(wait=2.0)
    assert len(seen) == 2 and seen[1].at - seen[0].at >= 0.95
    assert s.stats.sent == 1


def test_400_is_given_up_with_one_line_for_repeated_failures() -> None:
    with HookServer(default=Reply(400, b"bad request")) as srv:
        s = _sender([Target(srv.url("/hook/SECRETPATH"), "json", "info")], digest_window=0.0)
        s.offer("r", _finding(step=1))
        srv.wait_for(1)
        time.sleep(0.2)
        s.offer("r", _finding(step=2))
        srv.wait_for(2)
        s.close(wait=2.0)
    assert len(srv.seen) == 2  # one request per message: no retry
    lines = s.drain_errors()
    assert len(lines) == 1 and "HTTP 400" in lines[0] and "not retried" in lines[0]
    assert "SECRETPATH" not in lines[0] and f"127.0.0.1:{srv.port}/…" in lines[0]
    assert s.stats.failed == 2 and "failed" in s.status() and "SECRETPATH" not in s.status()


def test_service_error_code_in_a_200_is_a_failure() -> None:
    with HookServer(default=Reply(200, b'{"code":19021,"msg":"sign match fail"}')) as srv:
        s = _sender([Target(srv.url(), "feishu", "info", "wrong")])
        s.offer("r", _finding())
        srv.wait_for(1)
        s.close(wait=2.0)
    (line,) = s.drain_errors()
    assert "19021" in line and "sign match fail" in line and "wrong" not in line


def test_timeout_is_retried_then_given_up() -> None:
    with HookServer(default=Reply(delay=1.0)) as srv:
        s = _sender([Target(srv.url(), "json", "info")], timeout=0.2, retries=1)
        s.offer("r", _finding())
        srv.wait_for(2)
        s.close(wait=3.0)
    assert len(srv.seen) == 2
    (line,) = s.drain_errors()
    assert "timed out" in line and "2 attempts" in line


def test_connection_refused_is_reported_and_the_exit_is_bounded() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    s = _sender([Target(f"http://127.0.0.1:{port}/hook", "json", "info")], retries=10, backoff=0.5)
    t0 = time.monotonic()
    s.offer("r", _finding())
    s.close(wait=1.0)
    assert time.monotonic() - t0 < 2.5
    (line,) = s.drain_errors()
    assert "refused" in line.lower() or "exiting" in line


def test_offer_never_blocks_on_a_hanging_service() -> None:
    with HookServer(default=Reply(delay=2.0)) as srv:
        s = _sender([Target(srv.url(), "json", "info")], timeout=5.0, queue_size=4, digest_window=0.0)
        t0 = time.monotonic()
        for i in range(50):
            s.offer("r", _finding(step=i))
        assert time.monotonic() - t0 < 0.2
        assert s.stats.dropped > 0 and "dropped" in s.status()
        s.close(wait=0.5)


def test_retry_after_forms() -> None:
    assert retry_after("7", 0.0) == 7.0
    assert retry_after(None, 0.0) is None and retry_after("soon", 0.0) is None
    assert retry_after("Thu, 01 Jan 1970 00:01:40 GMT", 40.0) == pytest.approx(60.0)


def test_config_webhook_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config_from_mapping(
        {
            "alert": {
                "min_severity": "critical",
                "webhook": [
                    {"url": "https://hooks.slack.com/services/T/B/x"},
                    {
                        "url": "https://example.org/x",
                        "format": "feishu",
                        "min_severity": "info",
                        "secret_env": "FS_SECRET",
                    },
                ],
            }
        }
    )
    assert len(cfg.alert.webhook) == 2 and "secret" not in repr(cfg.alert.webhook[1]).replace("secret_env", "")
    ts = targets_for(["https://ntfy.sh/t"], None, None, None, cfg, env={"FS_SECRET": "v"})
    assert [(t.flavour, t.min_severity, t.secret) for t in ts] == [
        ("ntfy", "critical", None),
        ("slack", "critical", None),
        ("feishu", "info", "v"),
    ]
    for bad, msg in [
        ({"webhook": [{"url": "nope"}]}, "url"),
        ({"webhook": [{"url": "https://x.org", "format": "teams"}]}, "format"),
        ({"webhook": [{"url": "https://x.org", "secret": "a", "secret_env": "B"}]}, "not both"),
        ({"webhook": [{"url": "https://x.org", "secret": 5}]}, "string"),
        ({"webhook": [{"url": "https://x.org", "sekret": "a"}]}, "did you mean"),
        ({"webhook": {"url": "https://x.org"}}, "array of tables"),
        ({"webhook_per_minute": 0}, "integer"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            config_from_mapping({"alert": bad})


def test_config_error_does_not_echo_a_secret() -> None:
    with pytest.raises(ConfigError) as e:
        config_from_mapping({"alert": {"webhook": [{"url": "https://x.org", "secret": 12345}]}})
    assert "12345" not in str(e.value)


def test_every_flavour_is_covered() -> None:
    assert set(FLAVOURS) == {"slack", "discord", "feishu", "dingtalk", "wecom", "ntfy", "json"}
    assert Config().alert.webhook == ()
    assert urllib.parse.urlsplit(mask_url("http://[::1]:9/x")).hostname == "::1"
