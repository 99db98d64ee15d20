"""The Chinese catalogs use the FAQ's terms: docs/glossary.zh.md's table, enforced entry by entry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sfttop.core import i18n

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "docs" / "glossary.zh.md"


def glossary() -> list[tuple[list[str], str]]:
    """(English alternatives, Chinese term) for each row of the enforced table."""
    text = GLOSSARY.read_text(encoding="utf-8")
    section = text.split("## Terms the test enforces", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cols) < 2 or cols[0] in ("English", "") or set(cols[0]) <= {"-"}:
            continue
        rows.append(([alt.strip() for alt in cols[0].split(" / ")], cols[1]))
    return rows


def _pattern(term: str) -> re.Pattern[str]:
    # a whole word; "checkpoint-500" is a directory name, not the term
    return re.compile(r"(?<![\w-])" + re.escape(term) + r"(?![\w-])", re.IGNORECASE)


def _entries() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted((i18n.LOCALE_DIR / "zh").glob("*.po")):
        for e in i18n.read_po(path.read_text(encoding="utf-8"), str(path)):
            if e.msgid and not e.fuzzy:
                for s in e.msgstrs:
                    if s:
                        out.append((path.name, e.msgid, s))
    return out


def test_the_glossary_has_the_faq_terms() -> None:
    terms = {zh for _en, zh in glossary()}
    for zh in ("梯度爆炸", "梯度消失", "过拟合", "学习率", "验证损失", "最佳检查点"):
        assert zh in terms, zh
    faq = Path("/work/shared/seed/training-log-faq.zh.txt")
    if faq.exists():  # the FAQ itself is not shipped; where it is at hand, the terms are its own
        text = faq.read_text(encoding="utf-8")
        for zh in ("梯度爆炸", "梯度消失", "过拟合", "学习率", "最佳检查点", "梯度裁剪", "权重衰减"):
            assert zh in text, zh


@pytest.mark.parametrize(("english", "chinese"), glossary(), ids=lambda v: v if isinstance(v, str) else v[0])
def test_every_translation_follows_the_glossary(english: list[str], chinese: str) -> None:
    patterns = [_pattern(term) for term in english]
    used = [(po, msgid, s) for po, msgid, s in _entries() if any(p.search(msgid) for p in patterns)]
    bad = [f"{po}: {msgid!r} -> {s!r}" for po, msgid, s in used if chinese not in s]
    assert bad == [], f"'{english[0]}' is {chinese} (docs/glossary.zh.md):\n" + "\n".join(bad)


def test_the_key_terms_are_used_at_all() -> None:
    """The enforcement is not vacuous: the FAQ's key terms occur in the catalogs."""
    rows = dict((tuple(en), zh) for en, zh in glossary())
    entries = _entries()
    for key in ("gradient explosion", "overfitting", "learning rate", "eval loss", "best checkpoint"):
        en = next(e for e in rows if key in e)
        assert any(_pattern(t).search(msgid) for _po, msgid, _s in entries for t in en), key


def test_a_wrong_term_is_caught() -> None:
    """What the test above would say about a translation off the glossary."""
    pattern = _pattern("learning rate")
    assert pattern.search("the Learning Rate may be too small")
    assert not _pattern("checkpoint").search("no checkpoint-500 directory")
    assert "学习率" not in "学率可能太小"
