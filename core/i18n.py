"""The language sfttop speaks: gettext ``.po`` catalogs read at startup, one process-wide choice.

Why ``.po`` read directly rather than compiled ``.mo`` through :mod:`gettext`: the ``.po`` file
is what translators and reviewers edit, diff and grep, and reading it costs a few milliseconds
once per process, so there is no build step and no binary twin that can drift from its source.
The syntax read is the subset every gettext tool writes: comments, ``msgctxt``, ``msgid``,
``msgid_plural``, ``msgstr`` / ``msgstr[N]`` with continuation lines and C escapes.
Fuzzy entries (``#, fuzzy``) are not used, as ``msgfmt`` does not use them.

How code uses it:

- ``_("text")`` translates now. Text with values is a template formatted after translation,
  ``_("grad_norm {value} above {limit}").format(value=..., limit=...)``, so a translation can
  put the values where its grammar wants them.
- ``N_("text")`` marks a literal for the catalog without translating it: module-level tables
  are built at import, before the language is chosen, so they hold the English and the code
  that shows an entry calls ``_(entry)``.
- ``ngettext(singular, plural, n)`` for counted nouns.
- ``pgettext(context, text)`` when one English word needs two translations.

The catalogs live in ``locale/<lang>/*.po`` beside this module; every file of a language is
read, so separate parts of the program can keep separate files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

LANGS = ("en", "zh")
DEFAULT_LANG = "en"
LOCALE_DIR = Path(__file__).with_name("locale")

# gettext keys a context as "context\x04msgid"; plural forms are keyed by the singular msgid.
_CTX_SEP = "\x04"

_lang = DEFAULT_LANG
_catalog: dict[str, str] = {}
_plurals: dict[str, list[str]] = {}


def lang_from_env(env: Mapping[str, str] = os.environ) -> str:
    """The language the locale environment asks for, by POSIX precedence.

    LC_ALL overrides LC_MESSAGES, which overrides LANG; the first one set decides, even when it
    names a language sfttop does not have (then English). ``zh_CN.UTF-8``, ``zh_TW``, ``zh``
    and ``zh-Hans`` are Chinese; ``C``/``POSIX`` and anything else are English.
    """
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            return normalise(value) or DEFAULT_LANG
    return DEFAULT_LANG


def normalise(value: str) -> str | None:
    """``zh_CN.UTF-8`` -> ``zh``; None for a language with no catalog."""
    code = re.split(r"[_.@-]", value.strip().lower(), maxsplit=1)[0]
    return code if code in LANGS else None


def set_lang(lang: str) -> None:
    """Choose the language for the rest of the process (call once, before anything is shown)."""
    global _lang, _catalog, _plurals
    code = normalise(lang)
    if code is None:
        raise ValueError(f"unknown language {lang!r} (choose from {', '.join(LANGS)})")
    _lang = code
    _catalog, _plurals = load_catalog(code)


def get_lang() -> str:
    return _lang


def _(message: str) -> str:
    return _catalog.get(message) or message


def N_(message: str) -> str:
    return message


def pgettext(context: str, message: str) -> str:
    return _catalog.get(context + _CTX_SEP + message) or message


def ngettext(singular: str, plural: str, n: int) -> str:
    forms = _plurals.get(singular)
    if forms:
        # Chinese has one plural form; a catalog with two follows the Germanic n != 1 rule.
        chosen = forms[0] if len(forms) == 1 else forms[0 if n == 1 else 1]
        if chosen:
            return chosen
    return singular if n == 1 else plural


def load_catalog(lang: str, root: Path = LOCALE_DIR) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Every translated entry of ``root/<lang>/*.po``; English is the identity (no catalog)."""
    messages: dict[str, str] = {}
    plurals: dict[str, list[str]] = {}
    if lang == DEFAULT_LANG:
        return messages, plurals
    for path in sorted((root / lang).glob("*.po")):
        for entry in read_po(path.read_text(encoding="utf-8"), str(path)):
            if entry.fuzzy or not entry.msgid:
                continue
            key = entry.msgid if entry.msgctxt is None else entry.msgctxt + _CTX_SEP + entry.msgid
            if entry.plural is not None:
                if any(entry.msgstrs):
                    plurals[key] = entry.msgstrs
            elif entry.msgstrs and entry.msgstrs[0]:
                messages[key] = entry.msgstrs[0]
    return messages, plurals


class PoEntry:
    __slots__ = ("fuzzy", "line", "msgctxt", "msgid", "msgstrs", "plural")

    def __init__(self, line: int) -> None:
        self.msgctxt: str | None = None
        self.msgid = ""
        self.plural: str | None = None
        self.msgstrs: list[str] = []
        self.fuzzy = False
        self.line = line


class PoError(ValueError):
    pass


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_KEYWORD = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(\".*\")\s*$")


def _unquote(token: str, where: str) -> str:
    if len(token) < 2 or token[0] != '"' or token[-1] != '"':
        raise PoError(f"{where}: expected a quoted string, got {token!r}")
    body = token[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if i + 1 >= len(body) or body[i + 1] not in _ESCAPES:
                raise PoError(f"{where}: bad escape in {token!r}")
            out.append(_ESCAPES[body[i + 1]])
            i += 2
            continue
        if ch == '"':
            raise PoError(f"{where}: unescaped quote in {token!r}")
        out.append(ch)
        i += 1
    return "".join(out)


def read_po(text: str, name: str = "<po>") -> list[PoEntry]:
    """The entries of a ``.po`` file; a syntax error names the file and line."""
    entries: list[PoEntry] = []
    entry: PoEntry | None = None
    field: str | None = None
    fuzzy_next = False

    def finish() -> None:
        nonlocal entry
        if entry is not None:
            entries.append(entry)
        entry = None

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{name}:{number}"
        if not line:
            continue
        if line.startswith("#"):
            if line.startswith("#,") and "fuzzy" in (flag.strip() for flag in line[2:].split(",")):
                fuzzy_next = True
            continue
        if line.startswith('"'):
            if entry is None or field is None:
                raise PoError(f"{where}: a continuation line outside an entry")
            piece = _unquote(line, where)
            if field == "msgctxt":
                entry.msgctxt = (entry.msgctxt or "") + piece
            elif field == "msgid":
                entry.msgid += piece
            elif field == "msgid_plural":
                entry.plural = (entry.plural or "") + piece
            else:
                entry.msgstrs[-1] += piece
            continue
        match = _KEYWORD.match(line)
        if match is None:
            raise PoError(f"{where}: not a .po line: {line[:60]!r}")
        keyword, index, token = match.groups()
        value = _unquote(token, where)
        if keyword in ("msgctxt", "msgid") and (entry is None or entry.msgstrs):
            finish()
            entry = PoEntry(number)
            entry.fuzzy, fuzzy_next = fuzzy_next, False
        if entry is None:
            raise PoError(f"{where}: {keyword} before msgid")
        field = keyword if not keyword.startswith("msgstr") else "msgstr"
        if keyword == "msgctxt":
            entry.msgctxt = value
        elif keyword == "msgid":
            entry.msgid = value
        elif keyword == "msgid_plural":
            entry.plural = value
        else:
            if index is not None and int(index) != len(entry.msgstrs):
                raise PoError(f"{where}: msgstr[{index}] out of order")
            entry.msgstrs.append(value)
    finish()
    for e in entries:
        if not e.msgstrs:
            raise PoError(f"{name}:{e.line}: msgid without msgstr")
    return entries
