"""No string escapes the catalog: every marked literal has a Chinese entry whose template holds
the same values, nothing is marked in a way a translator cannot see, and nothing stale lingers."""

from __future__ import annotations

import re
import string
import sys
from pathlib import Path

import pytest

from sfttop.core import i18n

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import i18n_extract  # noqa: E402

ZH = ROOT / "core" / "locale" / "zh"


def _translations() -> dict[tuple[str | None, str], list[str]]:
    out: dict[tuple[str | None, str], list[str]] = {}
    for path in sorted(ZH.glob("*.po")):
        for e in i18n.read_po(path.read_text(encoding="utf-8"), str(path)):
            if e.msgid and not e.fuzzy:
                out[(e.msgctxt, e.msgid)] = e.msgstrs
    return out


@pytest.mark.parametrize("domain", i18n_extract.DOMAINS)
def test_every_marked_string_is_translated(domain: str) -> None:
    messages, misuse = i18n_extract.extract(domain)
    assert [f"{m.where}: {m.why}" for m in misuse] == []
    have = _translations()
    missing = [f"{m.refs[0]}: {m.msgid!r}" for key, m in messages.items() if not any(have.get(key, []))]
    assert missing == [], "run scripts/i18n_extract.py and translate:\n" + "\n".join(missing)


@pytest.mark.parametrize("domain", i18n_extract.DOMAINS)
def test_no_stale_entries(domain: str) -> None:
    messages, _misuse = i18n_extract.extract(domain)
    po = ZH / f"{domain}.po"
    stale = [e.msgid for e in i18n.read_po(po.read_text(encoding="utf-8")) if e.msgid and (e.msgctxt, e.msgid) not in messages]
    assert stale == [], f"{po.name}: no longer in the source (scripts/i18n_extract.py --prune): {stale}"


def _fields(template: str) -> set[str]:
    """The ``{name}`` fields of a str.format template and the %-style ones argparse uses."""
    names = {f"{{{name}}}" for _lit, name, _spec, _conv in string.Formatter().parse(template) if name is not None}
    return names | set(re.findall(r"%(?:\(\w+\))?[sdr]", template))


def test_each_translation_keeps_the_values_of_its_template() -> None:
    """A translation that drops or misspells a field loses a value, or raises KeyError at format()."""
    bad = []
    for (_ctx, msgid), strs in _translations().items():
        for s in strs:
            if s and _fields(s) != _fields(msgid):
                bad.append(f"{msgid!r}: {sorted(_fields(msgid))} != {sorted(_fields(s))} in {s!r}")
    assert bad == []


def test_the_extractor_finds_marked_strings_and_refuses_fstrings(tmp_path: Path) -> None:
    pkg = tmp_path / "core"
    pkg.mkdir()
    (pkg / "m.py").write_text(
        "from .i18n import N_, _, ngettext, pgettext\n"
        "TABLE = (N_('a table entry'),)\n"
        "def f(n, x):\n"
        "    _('a {x} template').format(x=x)\n"
        "    ngettext('{n} run', '{n} runs', n)\n"
        "    pgettext('run state', 'running')\n"
        "    _(f'bad {x}')\n"
        "    _('glued ' + x)\n"
        "    _(TABLE[0])\n",
        encoding="utf-8",
    )
    messages, misuse = i18n_extract.extract("core", tmp_path)
    assert list(messages) == [(None, "a table entry"), (None, "a {x} template"), (None, "{n} run"), ("run state", "running")]
    assert messages[(None, "{n} run")].plural == "{n} runs"
    assert [m.where for m in misuse] == ["core/m.py:7", "core/m.py:8"]


def test_the_extractor_adds_missing_entries_and_keeps_translations(tmp_path: Path) -> None:
    po = tmp_path / "core.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Plural-Forms: nplurals=1; plural=0;\\n"\n\n'
        'msgid "kept"\nmsgstr "保留"\n\nmsgid "gone"\nmsgstr "旧"\n',
        encoding="utf-8",
    )
    messages = {
        (None, "new"): i18n_extract.Message(None, "new", None, ["core/a.py:1"]),
        (None, "kept"): i18n_extract.Message(None, "kept", None, ["core/b.py:2"]),
    }
    text, added, stale = i18n_extract.update(po, messages)
    assert added == ["new"] and stale == ["gone"]
    entries = {e.msgid: e.msgstrs for e in i18n.read_po(text)}
    assert entries["kept"] == ["保留"] and entries["new"] == [""] and entries["gone"] == ["旧"]
    assert text.index('"new"') < text.index('"kept"') < text.index(i18n_extract.STALE)
    pruned, _added, _stale = i18n_extract.update(po, messages, prune=True)
    assert '"gone"' not in pruned


def test_the_modules_sent_to_remote_hosts_import_no_catalog() -> None:
    """core/remote.py ships tail.py, discover.py and agent.py's source to a bare python3 on the
    host: an import of sfttop there (i18n included) breaks every remote run. Their words are
    translated where they are shown, locally."""
    import ast

    for name in ("tail.py", "discover.py", "agent.py"):
        tree = ast.parse((ROOT / "core" / name).read_text(encoding="utf-8"))
        imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m.startswith(("sfttop", "i18n")) or m == ""], (name, imported)
