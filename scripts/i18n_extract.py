#!/usr/bin/env python3
"""Keep the .po catalogs in step with the source: every ``_()``, ``N_()``, ``ngettext()`` and
``pgettext()`` literal gets an entry in the catalog of its directory (cli/ -> cli.po, core/ ->
core.po, tui/ -> tui.po).

    python scripts/i18n_extract.py            # add what is missing to every catalog of every language
    python scripts/i18n_extract.py core cli   # only these directories' catalogs
    python scripts/i18n_extract.py --check    # change nothing; exit 1 if an entry is missing
    python scripts/i18n_extract.py --prune    # also delete the entries no longer in the source

A catalog is rewritten in source order (file, then line of first use), with its header, its
translations and its stale entries (no longer in the source: listed last, under a comment, for
the translator to delete or re-use) kept, so two people adding strings to different files touch
different parts of it. New entries have an empty msgstr, which shows the English until filled.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ("cli", "core", "tui")
LOCALE = ROOT / "core" / "locale"
FUNCS = {"_": ("msgid",), "N_": ("msgid",), "ngettext": ("msgid", "plural"), "pgettext": ("msgctxt", "msgid")}
_BRACE = re.compile(r"(?<!\{)\{[A-Za-z_]\w*(?:![rsa])?(?::[^{}]*)?\}")
_PERCENT = re.compile(r"%(?:\(\w+\))?[sdr]")
STALE = "# Stale: no longer in the source (delete, or re-use for a reworded string)."

from sfttop.core.i18n import PoEntry, read_po  # noqa: E402  (the same reader sfttop uses)


@dataclass
class Message:
    msgctxt: str | None
    msgid: str
    plural: str | None
    refs: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.msgctxt, self.msgid)


@dataclass
class Misuse:
    where: str
    why: str


def _func_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def extract(domain: str, root: Path = ROOT) -> tuple[dict[tuple[str | None, str], Message], list[Misuse]]:
    """The messages marked in ``root/domain``, in source order, and the calls a catalog cannot
    hold (an f-string or a concatenation inside ``_()``: the translator must see a whole template)."""
    found: dict[tuple[str | None, str], Message] = {}
    misuse: list[Misuse] = []
    for path in sorted((root / domain).rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), rel)
        calls = sorted(
            (n for n in ast.walk(tree) if isinstance(n, ast.Call) and _func_name(n.func) in FUNCS),
            key=lambda n: (n.lineno, n.col_offset),
        )
        for call in calls:
            roles = FUNCS[str(_func_name(call.func))]
            args = call.args[: len(roles)]
            if len(args) < len(roles):
                continue
            where = f"{rel}:{call.lineno}"
            if not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args):
                if any(isinstance(a, (ast.JoinedStr, ast.BinOp)) for a in args):
                    misuse.append(Misuse(where, "an f-string or concatenation inside a gettext call"))
                continue  # a variable: a table entry marked with N_() where it is defined
            values = {role: str(a.value) for role, a in zip(roles, args) if isinstance(a, ast.Constant)}
            msg = Message(values.get("msgctxt"), values["msgid"], values.get("plural"))
            if not msg.msgid:
                continue
            entry = found.setdefault(msg.key, msg)
            entry.refs.append(where)
            if msg.plural and not entry.plural:
                entry.plural = msg.plural
    return found, misuse


def _quote(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t").replace("\r", "\\r")
    if "\n" in s.rstrip("\n"):
        lines = out.split("\n")
        pieces = [line + "\\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
        return '""\n' + "\n".join(f'"{p}"' for p in pieces)
    return '"' + out.replace("\n", "\\n") + '"'


def _entry_text(msg: Message, old: PoEntry | None, nplurals: int) -> str:
    lines = [f"#: {ref}" for ref in msg.refs[:3]]
    flags = ["fuzzy"] if old is not None and old.fuzzy else []
    # so that msgfmt --check (and Poedit) verify a translation keeps the template's fields
    if _BRACE.search(msg.msgid):
        flags.append("python-brace-format")
    elif _PERCENT.search(msg.msgid):
        flags.append("python-format")
    if flags:
        lines.append("#, " + ", ".join(flags))
    if msg.msgctxt is not None:
        lines.append(f"msgctxt {_quote(msg.msgctxt)}")
    lines.append(f"msgid {_quote(msg.msgid)}")
    if msg.plural is not None:
        lines.append(f"msgid_plural {_quote(msg.plural)}")
        strs = list(old.msgstrs) if old is not None else []
        strs = (strs + [""] * nplurals)[: max(nplurals, len(strs))]
        lines += [f"msgstr[{i}] {_quote(s)}" for i, s in enumerate(strs)]
    else:
        lines.append(f"msgstr {_quote(old.msgstrs[0] if old is not None and old.msgstrs else '')}")
    return "\n".join(lines)


def _header(text: str) -> str:
    """Everything before the first real entry: the translator comments and the metadata entry."""
    blocks = text.split("\n\n")
    head: list[str] = []
    for block in blocks:
        head.append(block)
        if 'msgid ""' in block and "msgstr" in block:
            break
    return "\n\n".join(head).rstrip("\n")


def _nplurals(text: str) -> int:
    marker = "nplurals="
    i = text.find(marker)
    if i < 0:
        return 2
    digits = "".join(ch for ch in text[i + len(marker) : i + len(marker) + 3] if ch.isdigit())
    return int(digits or 2)


def update(
    po: Path, messages: dict[tuple[str | None, str], Message], *, prune: bool = False
) -> tuple[str, list[str], list[str]]:
    """The catalog rewritten for ``messages``; also the msgids added and the stale ones."""
    text = po.read_text(encoding="utf-8")
    old = {(e.msgctxt, e.msgid): e for e in read_po(text, str(po)) if e.msgid}
    n = _nplurals(text)
    parts = [_header(text)]
    added = [m.msgid for key, m in messages.items() if key not in old]
    parts += [_entry_text(m, old.get(key), n) for key, m in messages.items()]
    stale = [e for key, e in old.items() if key not in messages]
    if stale and not prune:
        parts.append(STALE)
        for e in stale:
            msg = Message(e.msgctxt, e.msgid, e.plural)
            parts.append(_entry_text(msg, e, n))
    return "\n\n".join(parts) + "\n", added, [e.msgid for e in stale]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("domains", nargs="*", metavar="DIR", help=f"directories to extract: {', '.join(DOMAINS)} (default all)")
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 when an entry is missing")
    ap.add_argument("--prune", action="store_true", help="delete the stale entries instead of keeping them")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.domains) - set(DOMAINS))
    if unknown:
        ap.error(f"unknown directory {unknown[0]!r} (one of {', '.join(DOMAINS)})")
    status = 0
    for domain in args.domains or DOMAINS:
        messages, misuse = extract(domain)
        for m in misuse:
            print(f"{m.where}: {m.why}", file=sys.stderr)
            status = 1
        for po in sorted(LOCALE.glob(f"*/{domain}.po")):
            new, added, stale = update(po, messages, prune=args.prune)
            rel = po.relative_to(ROOT)
            for msgid in added:
                print(f"{rel}: {'missing' if args.check else 'added'}: {msgid!r}")
            for msgid in stale:
                print(f"{rel}: {'deleted' if args.prune and not args.check else 'stale'}: {msgid!r}")
            if args.check:
                status |= 1 if added else 0
            elif new != po.read_text(encoding="utf-8"):
                po.write_text(new, encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
