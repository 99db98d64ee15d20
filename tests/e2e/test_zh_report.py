"""``--report`` in Chinese on real runs: no English word escapes the catalog; JSON stays machine-stable.

The text and Markdown reports of every real fixture (healthy and pathological: NaN, crash,
explosion, overfitting, stall) are tokenised; what came from the log itself (run names, paths,
the crash line) and what is not a word (numbers, identifiers with ``_``, paths, code spans) is
set aside, and every ASCII word left must be on the allowed list: metric names, format names,
units and the words the FAQ itself keeps in English.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import ROOT
from sfttop.cli import LANG_ENV
from sfttop.core import i18n
from sfttop.core.config import Config
from sfttop.core.diagnose import CODES
from sfttop.core.metrics import NORMAL_RANGES, label
from sfttop.core.parse import INPUT_FORMATS
from sfttop.core.report import build, render_md, render_text

REAL = ROOT / "tests" / "fixtures" / "real"
RUNS = sorted(p for p in REAL.glob("*/*") if p.is_dir())
NOW = 1_800_000_000.0  # a fixed "now", long after every fixture was written (stalled runs read as such)

# Words a Chinese reader meets in English in the FAQ itself, and names that are not words.
ALLOWED = {
    # metric names without an underscore, and the FAQ's own English
    "loss", "entropy", "epoch", "token", "NaN", "nan", "inf", "dropout", "LoRA", "SFT", "Trainer", "vs",
    # LoRA's r and alpha; commands named in advice
    "r", "alpha", "ps", "nvidia-smi",
    # units: samples/s is split at the slash; durations and factors are glued to numbers
    "samples", "s", "nats",
    "sfttop", "tensorboard", "csv", "wandb", "mlflow", "trackio", "swanlab", "aim",
    # the natural log of the DPO loss's start (ln 2); names of inputs and files (HF Trainer stdout, JSON, TOML)
    "ln", "HF", "stdout", "JSON", "TOML",
    # programs sfttop talks to
    "ssh", "webhook",
}
ALLOWED |= set(INPUT_FORMATS) | set(CODES) | {label(m) for m in NORMAL_RANGES}  # codes, metric labels (lr)
# the checklist's history columns; checkpoint directory names (checkpoint-500, checkpoint-N)
_HISTORY = re.compile(r"^[x+~.?]+$")
_NAMES = re.compile(r"^checkpoint-\w+$")
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f—→·…]")


pytestmark = pytest.mark.usefixtures("zh")  # (conftest: Chinese for every test here)


def _log_text(run: dict[str, Any]) -> list[str]:
    """What a run's report quotes from the log or the file system, not from sfttop."""
    quoted = [run["name"], run["path"]]
    for key in ("crash", "error"):
        if run.get(key):
            quoted.append(str(run[key]))
    # a crash finding quotes the log's error line after sfttop's own words
    quoted += [f["message"] for f in run["findings"] if f["code"] == "run_crashed"]
    bc = run.get("best_checkpoint") or {}
    if bc.get("path"):
        quoted.append(str(bc["path"]))
    return [q for q in quoted if q]


def english_words(report: dict[str, Any], text: str) -> list[tuple[str, str]]:
    """(word, line) for every ASCII word of ``text`` that is not allowed."""
    quoted = [q for run in report["runs"] for q in _log_text(run)]
    bad = []
    for line in text.splitlines():
        rest = re.sub(r"`[^`]*`", " ", line)  # Markdown code spans: paths, codes
        for q in quoted:
            head = q[:30]
            if head and head in rest:
                rest = rest[: rest.index(head)]  # the quote runs to the end of the line (or is cut)
        rest = _CJK.sub(" ", rest)
        for token in re.split(r"[\s,;:()\[\]{}|*#=<>'\"!?]+", rest):
            token = token.strip(".-")
            if not token or not re.search(r"[A-Za-z]", token):
                continue
            if re.search(r"[\d_/\\]", token) or "." in token or _HISTORY.match(token) or _NAMES.match(token):
                continue  # a number with its unit, an identifier, a path or module, a history
            if re.search(r"[a-z][A-Z]", token):
                continue  # a CamelCase class name (DataCollatorForCompletionOnlyLM)
            if token not in ALLOWED:
                bad.append((token, line))
    return bad


@pytest.mark.parametrize("run", RUNS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_report_in_chinese_has_no_english_sentence(run: Path) -> None:
    report, _code = build([str(run)], Config(), clock=lambda: NOW)
    assert report["runs"], run
    for render in (render_text, render_md):
        text = render(report)
        assert "评估" in text and "检查清单" in text
        bad = english_words(report, text)
        assert bad == [], f"{render.__name__}: untranslated {bad[0][0]!r} in line:\n{bad[0][1]}"


def test_the_fixtures_cover_the_pathologies() -> None:
    names = {p.name for p in RUNS}
    assert {"healthy", "crash", "nan_filtered", "nan_unfiltered", "explode", "overfit", "stall"} <= names


def test_the_checker_would_catch_an_untranslated_sentence() -> None:
    report, _code = build([str(REAL / "tf5" / "healthy")], Config(), clock=lambda: NOW)
    text = render_text(report) + "\nthe learning rate may be too small\n"
    assert [w for w, _line in english_words(report, text)][:2] == ["the", "learning"]


def _shape(value: Any) -> Any:
    """The JSON's keys and machine values (codes, statuses, ids, metric names), not its texts."""
    if isinstance(value, dict):
        keep = ("code", "severity", "status", "metric", "id", "item", "unit", "format", "active", "step")
        return {k: (_shape(v) if isinstance(v, (dict, list)) else (v if k in keep else type(v).__name__))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


@pytest.mark.parametrize("name", ["tf5/healthy", "tf5/overfit", "tf4/crash", "tb5/nan_unfiltered"])
def test_json_keys_and_codes_are_the_same_in_both_languages(name: str) -> None:
    zh, zh_code = build([str(REAL / name)], Config(), clock=lambda: NOW)
    i18n.set_lang("en")
    en, en_code = build([str(REAL / name)], Config(), clock=lambda: NOW)
    assert zh_code == en_code
    assert _shape(zh) == _shape(en)
    # and the texts for a person do follow the language
    zh_texts = [f["message"] for r in zh["runs"] for f in r["findings"]] + [zh["runs"][0]["assessment"]["verdict"]]
    en_texts = [f["message"] for r in en["runs"] for f in r["findings"]] + [en["runs"][0]["assessment"]["verdict"]]
    assert all(re.search(r"[\u4e00-\u9fff]", t) for t in zh_texts)
    assert zh_texts != en_texts


def _env(**kw: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG", LANG_ENV)}
    return {**base, **kw}


@pytest.mark.parametrize("fmt", ["text", "md"])
def test_the_locale_alone_gives_the_chinese_report(fmt: str) -> None:
    """LANG=zh_CN.UTF-8 sfttop --report: the same Chinese, without --lang."""
    runs = [str(REAL / "tf5" / "healthy"), str(REAL / "tf5" / "nan_unfiltered")]
    out = {}
    for key, args, env in (
        ("locale", [], _env(LANG="zh_CN.UTF-8")),
        ("flag", ["--lang", "zh"], _env(LANG="en_US.UTF-8")),
    ):
        p = subprocess.run([sys.executable, "-m", "sfttop", "--report", "--format", fmt, *args, *runs],
                           capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
        assert p.returncode == 1, p.stderr  # the NaN run is critical
        out[key] = p.stdout
    assert "评估" in out["locale"] and "Assessment" not in out["locale"]
    # the two differ only in the "last write ... ago" durations, which move with the clock
    strip = re.compile(r"\d+[smhd](\d+[smhd])?")
    assert strip.sub("T", out["locale"]) == strip.sub("T", out["flag"])


def test_follow_text_speaks_chinese(tmp_path: Path) -> None:
    """--follow's text lines keep their greppable tags (FINDING, step=) and say the finding in Chinese."""
    import io
    import threading
    import time

    from sfttop.core.follow import follow

    log = tmp_path / "train.log"
    hf = "{{'loss': {loss}, 'grad_norm': 1.0, 'learning_rate': 1e-05, 'epoch': {epoch}}}\n"
    log.write_text("".join(hf.format(loss=1.0 + i / 1000, epoch=i / 1000) for i in range(1, 21)))
    out, stop = io.StringIO(), threading.Event()
    t = threading.Thread(target=follow, args=([str(log)], Config(), "text", out), kwargs={"interval": 0.05, "stop": stop})
    t.start()
    try:
        end = time.monotonic() + 20
        while time.monotonic() < end and out.getvalue().count("\n") < 20:
            time.sleep(0.05)
        with open(log, "a") as fh:
            fh.write(hf.format(loss="nan", epoch=0.021).replace("'grad_norm': 1.0", "'grad_norm': nan"))
        while time.monotonic() < end and "loss_nonfinite" not in out.getvalue():
            time.sleep(0.05)
    finally:
        stop.set()
        t.join(10)
    findings = [line for line in out.getvalue().splitlines() if " FINDING " in line]
    assert findings and all(re.search(r"[\u4e00-\u9fff]", line) for line in findings), findings
    assert any("loss_nonfinite step=21: 第 21 步" in line and "为 nan" in line for line in findings), findings


def test_a_chat_alert_speaks_chinese_with_its_code_unchanged() -> None:
    from sfttop.core.webhook_payload import Alert, body_lines, headline, json_payload

    def plain_text(alerts: list[Alert]) -> str:  # what every chat flavour's text is made of
        return "\n".join([headline(alerts), *body_lines(alerts)])

    finding = {"code": "grad_explosion", "severity": "critical", "step": 120,
               "message": "第 120 步 grad_norm 为 55.2，超过危险阈值 20", "advice": ["降低学习率"]}
    one = plain_text([Alert("run-a", finding, "gpu-01")])
    assert one.splitlines()[0] == "sfttop 严重：梯度爆炸 · run-a"
    assert "建议：" in one and "grad_explosion" in one and "主机 gpu-01" in one
    digest = plain_text([Alert("run-a", finding, "gpu-01"), Alert("run-b", finding, "gpu-01")])
    assert digest.splitlines()[0] == "sfttop：gpu-01 上有 2 条新诊断（2 条严重）"
    i18n.set_lang("en")
    en = json_payload([Alert("run-a", finding, "gpu-01")])
    i18n.set_lang("zh")
    zh = json_payload([Alert("run-a", finding, "gpu-01")])
    assert _shape(zh) == _shape(en)


# ------------------------------------------------------------------ what is said when a log cannot be read
SYSTEM_ERRORS = [errno.ENOENT, errno.EACCES, errno.EISDIR, errno.ENOTDIR, errno.ELOOP]


def _no_english(text: str) -> None:
    assert _CJK.search(text), text
    bad = english_words({"runs": []}, text)
    assert bad == [], f"untranslated {bad[0][0]!r} in line:\n{bad[0][1]}"


@pytest.mark.parametrize("number", SYSTEM_ERRORS, ids=lambda n: errno.errorcode[n])
def test_the_systems_reasons_are_said_in_chinese(number: int) -> None:
    """os.strerror is the C library's English; the readers keep it (tail.py runs remote too)."""
    from sfttop.core.oserrors import os_reason, reason

    _no_english(reason(os.strerror(number)))
    _no_english(os_reason(OSError(number, os.strerror(number))))
    i18n.set_lang("en")
    assert reason(os.strerror(number)) == os.strerror(number)  # English: the system's own words


def _sfttop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sfttop", "--lang", "zh", *args], capture_output=True, text=True,
                          timeout=120, env=_env(), cwd=cwd)


def test_an_input_that_cannot_be_read_is_explained_in_chinese(tmp_path: Path) -> None:
    from sfttop.core.statefile import MAX_STATE_FILE

    (tmp_path / "file").write_text("x\n")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    (tmp_path / "empty").mkdir()
    (tmp_path / "big").mkdir()
    with open(tmp_path / "big" / "trainer_state.json", "wb") as f:
        f.truncate(MAX_STATE_FILE + 1)  # sparse: no disk used
    (tmp_path / "garbage.log").write_text("hello world\nnothing to see here\n")
    for target in ("missing/train.log", "file/train.log", "loop1", "empty", "big/trainer_state.json", "garbage.log"):
        p = _sfttop("--report", target, cwd=tmp_path)
        assert p.returncode == 2, (target, p.stdout, p.stderr)
        said = (p.stdout + p.stderr).replace(target, " ")
        for name in ("HF Trainer/TRL stdout", "LLaMA-Factory trainer_log.jsonl", "ms-swift logging.jsonl"):
            said = said.replace(name, " ")  # the names of the inputs sfttop reads
        _no_english(said)


@pytest.mark.parametrize(
    "script",
    [
        "echo 'me@gpu1: Permission denied (publickey).' >&2; exit 255",
        "echo 'sh: 1: exec: python3: not found' >&2; exit 127",
        "printf 'Traceback (most recent call last):\\nSyntaxError: future feature annotations\\n' >&2; exit 1",
        "echo 'ssh: connect to host gpu1 port 22: Connection refused' >&2; exit 255",
        "echo 'ssh: connect to host gpu1 port 22: Connection timed out' >&2; exit 255",
        "echo 'ssh: Could not resolve hostname gpu1: Name or service not known' >&2; exit 255",
        "echo 'Connection closed by 10.0.0.1 port 22' >&2; exit 255",
        "exit 255",
    ],
)
def test_a_host_that_cannot_be_reached_is_explained_in_chinese(script: str, tmp_path: Path) -> None:
    p = _sfttop("--ssh-command", f"sh -c {script!r} fake-ssh", "--report", "gpu1:runs/train.log", cwd=tmp_path)
    assert p.returncode == 2, (p.stdout, p.stderr)
    out = re.sub(r"`[^`]*`", " ", p.stderr).replace("gpu1:runs/train.log", " ")
    _no_english(out)


def test_config_errors_speak_chinese(tmp_path: Path) -> None:
    from sfttop.core.config import config_reference

    sections = sorted({key.split(".")[0] for key, _default, _doc in config_reference()})
    (tmp_path / "g.log").write_text("{'loss': 1.0, 'grad_norm': 1.0, 'learning_rate': 1e-05, 'epoch': 0.1}\n")
    cases = {
        "unknown.toml": "bogus = 1\n",
        "type.toml": '[thresholds]\ngrad_norm_warn = "x"\n',
        "unreadable.toml": None,  # a directory
        "unclosed.toml": "x = [\n",
        "twice.toml": "x = 1\nx = 2\n",
        "table.toml": "[thresholds\n",
    }
    for name, text in cases.items():
        if text is None:
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_text(text)
        p = _sfttop("--config", name, "--report", "g.log", cwd=tmp_path)
        assert p.returncode == 2, (name, p.stderr)
        said = p.stderr.replace(name, " ").replace("'bogus'", " ")  # (the user's own key)
        _no_english(re.sub(rf"\b({'|'.join(sections)})\b", " ", said))  # config keys stay English


def test_follow_says_a_rewritten_log_in_chinese() -> None:
    from sfttop.core.follow import event_line
    from sfttop.core.records import Event, EventKind
    from sfttop.core.run import RESET_WORDS

    for word in RESET_WORDS:
        for fmt in ("text", "jsonl"):
            line = event_line("run", Event(EventKind.SOURCE, word), fmt) or ""
            assert word not in line and _CJK.search(line), line


def test_webhook_failures_speak_chinese() -> None:
    """What --alert-webhook prints when a chat service fails: HTTP's own status words aside."""
    import math
    import urllib.error
    from email.message import Message

    from sfttop.core.diagnose import Finding, Severity
    from sfttop.core.webhook import Target, WebhookSender

    def failing(exc: BaseException) -> Any:
        def opener(*_a: Any, **_k: Any) -> Any:
            raise exc
        return opener

    refused = ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
    for exc in (urllib.error.HTTPError("http://x", 400, "Bad Request", Message(), None),
                urllib.error.URLError(refused), refused, TimeoutError()):
        s = WebhookSender([Target("http://127.0.0.1:9/hook", "json", "info")], host="h", timeout=0.2, retries=1,
                          backoff=0.01, digest_window=0.0, opener=failing(exc))
        s.offer("r", Finding("loss_nonfinite", Severity.CRITICAL, 1, "loss", math.nan, "第 1 步 loss 为 nan", []))
        s.close(wait=2.0)
        (line,) = s.drain_errors()
        _no_english(re.sub(r"HTTP \d+|Bad Request|ConnectionRefusedError|（json）|http://127\.0\.0\.1:9/…", " ", line))
