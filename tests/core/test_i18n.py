"""The catalog machinery (core/i18n.py): language choice, the .po reader against Babel's."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.pofile import read_po as babel_read_po
from hypothesis import given
from hypothesis import strategies as st

from helpers import ROOT
from sfttop.core import i18n


@pytest.fixture(autouse=True)
def _english_after() -> Iterator[None]:
    yield
    i18n.set_lang("en")


@pytest.mark.parametrize(
    ("env", "lang"),
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "zh_TW"}, "zh"),
        ({"LANG": "zh"}, "zh"),
        ({"LANG": "zh-Hans"}, "zh"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LANG": "POSIX"}, "en"),
        ({"LANG": "de_DE.UTF-8"}, "en"),
        ({}, "en"),
        # POSIX precedence: LC_ALL, then LC_MESSAGES, then LANG; the first one set decides.
        ({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"LC_ALL": "", "LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US"}, "zh"),
        ({"LC_MESSAGES": "fr_FR", "LANG": "zh_CN"}, "en"),
    ],
)
def test_language_from_the_locale_environment(env: dict[str, str], lang: str) -> None:
    assert i18n.lang_from_env(env) == lang


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown language 'xx'"):
        i18n.set_lang("xx")


PO = r'''# a comment
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=1; plural=0;\n"

#: core/x.py:1
msgid "gradient explosion"
msgstr "梯度爆炸"

msgid ""
"a long "
"message with \"quotes\"\n"
msgstr "一条"
"长消息"

msgctxt "run state"
msgid "running"
msgstr "运行中"

msgid "running"
msgstr "正在运行"

msgid "{n} run"
msgid_plural "{n} runs"
msgstr[0] "{n} 个运行"

#, fuzzy
msgid "learning rate"
msgstr "学率"

msgid "untranslated"
msgstr ""
'''


def _catalog(tmp_path: Path, text: str) -> Path:
    (tmp_path / "zh").mkdir()
    (tmp_path / "zh" / "x.po").write_text(text, encoding="utf-8")
    return tmp_path


def test_translations_contexts_plurals_and_what_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(i18n, "LOCALE_DIR", _catalog(tmp_path, PO))
    messages, plurals = i18n.load_catalog("zh", tmp_path)
    monkeypatch.setattr(i18n, "_catalog", messages)
    monkeypatch.setattr(i18n, "_plurals", plurals)
    assert i18n._("gradient explosion") == "梯度爆炸"
    assert i18n._('a long message with "quotes"\n') == "一条长消息"
    assert i18n._("running") == "正在运行"
    assert i18n.pgettext("run state", "running") == "运行中"
    assert i18n.ngettext("{n} run", "{n} runs", 1) == "{n} 个运行"
    assert i18n.ngettext("{n} run", "{n} runs", 5) == "{n} 个运行"
    # msgfmt ignores fuzzy entries and empty translations; so do we (the English shows).
    assert i18n._("learning rate") == "learning rate"
    assert i18n._("untranslated") == "untranslated"
    assert i18n._("never in the catalog") == "never in the catalog"
    assert i18n.N_("marked only") == "marked only"


def _babel_view(text: str) -> dict[tuple[str | None, str], object]:
    catalog = babel_read_po(io.StringIO(text))
    out: dict[tuple[str | None, str], object] = {}
    for m in catalog:
        if not m.id:
            continue
        key = (m.context, m.id[0] if isinstance(m.id, tuple) else m.id)
        out[key] = (list(m.string), m.id[1]) if isinstance(m.id, tuple) else m.string
    return out


def _our_view(text: str) -> dict[tuple[str | None, str], object]:
    out: dict[tuple[str | None, str], object] = {}
    for e in i18n.read_po(text):
        if not e.msgid:
            continue
        out[(e.msgctxt, e.msgid)] = (e.msgstrs, e.plural) if e.plural is not None else e.msgstrs[0]
    return out


def test_reader_agrees_with_babel_on_the_sample() -> None:
    assert _our_view(PO) == _babel_view(PO)


_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from('\n\t"\\'), min_size=1)


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


@given(st.lists(st.tuples(st.none() | _text, _text, _text), min_size=1, max_size=5, unique_by=lambda t: (t[0], t[1])))
def test_reader_agrees_with_babel_on_generated_catalogs(entries: list[tuple[str | None, str, str]]) -> None:
    lines = ['msgid ""', 'msgstr ""', '"Content-Type: text/plain; charset=UTF-8\\n"', ""]
    for ctx, msgid, msgstr in entries:
        if ctx is not None:
            lines.append(f"msgctxt {_quote(ctx)}")
        lines += [f"msgid {_quote(msgid)}", f"msgstr {_quote(msgstr)}", ""]
    text = "\n".join(lines)
    assert _our_view(text) == _babel_view(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('msgid "a"\n', "msgid without msgstr"),
        ('msgstr "a"\n', "before msgid"),
        ('"stray"\n', "continuation line outside an entry"),
        ('msgid "a\\q"\nmsgstr "b"\n', "bad escape"),
        ('msgid "a"\nmsgstr[1] "b"\n', "out of order"),
        ("msgid a\nmsgstr b\n", "not a .po line"),
    ],
)
def test_a_broken_catalog_names_its_line(text: str, message: str) -> None:
    with pytest.raises(i18n.PoError, match=message) as info:
        i18n.read_po(text, "zh/x.po")
    assert "zh/x.po:" in str(info.value)


def test_the_shipped_catalogs_parse_and_babel_reads_them_the_same() -> None:
    files = sorted((i18n.LOCALE_DIR / "zh").glob("*.po"))
    assert files, "no Chinese catalog shipped"
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert _our_view(text) == _babel_view(text), path.name


def test_the_catalogs_are_package_data() -> None:
    """A wheel without the .po files would speak English silently; pyproject must ship them."""
    import fnmatch
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    root = ROOT
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = [
        path
        for path in (root / "core" / "locale").rglob("*.po")
        if any(fnmatch.fnmatch(path.relative_to(root / "core").as_posix(), pat) for pat in data["sfttop.core"])
    ]
    assert sorted(shipped) == sorted((root / "core" / "locale").rglob("*.po"))


def test_switching_language_loads_and_drops_the_catalog() -> None:
    i18n.set_lang("zh")
    assert i18n.get_lang() == "zh"
    i18n.set_lang("en_US.UTF-8")
    assert i18n.get_lang() == "en"
    assert i18n._catalog == {}
