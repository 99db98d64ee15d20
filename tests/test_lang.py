"""Choosing the language: --lang, the config's lang, the locale; --help and errors in it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sfttop.cli import LANG_ENV, choose_lang, main
from sfttop.core import i18n
from sfttop.core.config import ConfigError, config_from_mapping, lang_in_file

ROOT = Path(__file__).resolve().parent.parent
HEALTHY = ROOT / "tests" / "fixtures" / "real" / "tf5" / "healthy" / "train.log"


def _env(**kw: str) -> dict[str, str]:
    """A clean environment: no locale, no language passed on, no user config."""
    base = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG", LANG_ENV)}
    return {**base, **kw}


def sfttop(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sfttop", *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=ROOT)


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("argv", "env", "lang"),
    [
        ([], {"LANG": "zh_CN.UTF-8"}, "zh"),
        ([], {"LANG": "en_US.UTF-8"}, "en"),
        ([], {}, "en"),
        (["--lang", "zh"], {"LANG": "en_US.UTF-8"}, "zh"),
        (["--lang=en"], {"LANG": "zh_CN.UTF-8"}, "en"),
        (["--lang", "en"], {LANG_ENV: "zh"}, "en"),
        ([], {LANG_ENV: "zh", "LANG": "en_US"}, "zh"),
        # a path named like the flag after "--" is a path
        (["--", "--lang", "zh"], {"LANG": "en_US"}, "en"),
        # a language sfttop lacks: argparse refuses it later, the locale speaks meanwhile
        (["--lang", "fr"], {"LANG": "zh_CN"}, "zh"),
    ],
)
def test_the_language_is_chosen_before_the_parser_exists(argv: list[str], env: dict[str, str], lang: str) -> None:
    assert choose_lang(argv, {"XDG_CONFIG_HOME": "/nonexistent", **env}) == lang


def test_the_config_file_decides_when_the_command_line_does_not(tmp_path: Path) -> None:
    path = _config(tmp_path, 'lang = "zh_CN"\n[thresholds]\ngrad_norm_warn = 5.0\n')
    assert lang_in_file(path) == "zh"
    assert choose_lang(["--config", path], {"LANG": "en_US"}) == "zh"
    assert choose_lang([f"--config={path}", "--lang", "en"], {}) == "en"
    # a broken file says nothing about the language (its error is reported in the locale's)
    assert lang_in_file(_config(tmp_path, "lang = [")) is None
    assert lang_in_file(str(tmp_path / "missing.toml")) is None


def test_config_lang_is_validated() -> None:
    assert config_from_mapping({"lang": "zh"}).lang == "zh"
    assert config_from_mapping({}).lang is None
    with pytest.raises(ConfigError, match="'lang' must be one of en, zh, got 'fr'"):
        config_from_mapping({"lang": "fr"})
    with pytest.raises(ConfigError, match="did you mean 'lang'"):
        config_from_mapping({"lnag": "zh"})


def test_help_in_chinese_from_the_locale_and_from_the_flag() -> None:
    for args, env in ((["--help"], _env(LANG="zh_CN.UTF-8")), (["--lang", "zh", "--help"], _env(LANG="C"))):
        p = sfttop(*args, env=env)
        assert p.returncode == 0, p.stderr
        out = p.stdout
        # argparse's own words too
        for zh in ("用法：", "位置参数：", "选项：", "显示本帮助信息并退出", "显示版本号并退出", "示例：", "退出码："):
            assert zh in out, zh
        for en in ("usage:", "positional arguments", "options:", "show this help", "examples:"):
            assert en not in out, en
    assert "usage: sfttop" in sfttop("--help", env=_env(LANG="en_US.UTF-8")).stdout


def test_help_lines_fit_the_terminal_in_cells() -> None:
    from sfttop.core.textfmt import cells

    p = sfttop("--lang", "zh", "--help", env=_env(COLUMNS="80"))
    # the options, wrapped by argparse (the description and the examples are preformatted)
    options = p.stdout.split("选项：\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(options) > 20
    assert [line for line in options if cells(line) > 80] == []


def test_usage_and_config_errors_in_chinese(tmp_path: Path) -> None:
    p = sfttop("--lang", "zh", "--format", "xml", str(HEALTHY), env=_env())
    assert p.returncode == 2
    assert "无效的选项" in p.stderr and "参见 sfttop --help" in p.stderr
    bad = _config(tmp_path, 'lang = "zh"\n[thresholds]\ngrad_norm_wran = 12\n')
    p = sfttop("--config", bad, "--report", str(HEALTHY), env=_env())
    assert p.returncode == 2
    # the file's own lang is read before the file's error is reported
    assert "未知的配置项 'thresholds.grad_norm_wran'" in p.stderr and "grad_norm_warn" in p.stderr


def test_the_process_speaks_the_chosen_language(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--lang", "zh", "--report"]) == 2
    assert "至少需要一个 PATH" in capsys.readouterr().err
    assert i18n.get_lang() == "zh"
    assert main(["--lang", "en", "--report"]) == 2
    assert "needs at least one PATH" in capsys.readouterr().err


def test_serve_passes_the_language_to_each_tab(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    import textual_serve.server

    from sfttop.cli import build_parser
    from sfttop.core.config import Config
    from sfttop.serve import serve

    class FakeServer:
        def __init__(self, command: str, **kw: object) -> None:
            pass

        def serve(self) -> None:
            pass

    monkeypatch.setattr(textual_serve.server, "Server", FakeServer)
    for var in ("SFTTOP_FORCE_TUI", "SFTTOP_SERVED", LANG_ENV):  # serve() sets them: undone after
        monkeypatch.setenv(var, "")
    i18n.set_lang("zh")
    out = io.StringIO()
    assert serve(build_parser().parse_args(["--serve", "x.log"]), Config(), out) == 0
    assert os.environ[LANG_ENV] == "zh"
    assert "仅限本机" in out.getvalue()
    # and the tab's process, started with that environment, speaks it
    assert choose_lang([], {**os.environ, "LANG": "en_US"}) == "zh"
