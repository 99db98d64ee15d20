"""Every key binding of the live monitor, with a stable id for the config's ``[keys]`` table.

Plain data (no Textual import), so the CLI can validate a config file's ``[keys]`` against
``BINDING_IDS`` without loading the TUI.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from sfttop.core.i18n import N_, _


@dataclass(frozen=True)
class Key:
    id: str
    keys: str  # Textual key names, comma-separated
    action: str
    description: str  # short, for the footer (English, marked for the catalog: shown through _())
    tooltip: str = ""  # longer, for the help screen
    show: bool = True  # in the footer
    priority: bool = False
    rank: int = 99  # footer: the lowest ranks stay longest as the pane narrows


KEYS: tuple[Key, ...] = (
    Key("quit", "q", "quit", N_("quit"), N_("quit sfttop"), rank=0),
    # Ctrl+C quits, as in htop, btop and nvitop; a priority binding, or Textual's own "copy
    # selected text" on the same key would take it first.
    Key("interrupt", "ctrl+c", "quit", N_("quit"), N_("quit sfttop (as in htop, btop, nvitop)"), show=False, priority=True),
    Key("help", "question_mark", "help", N_("keys"), N_("show every key (this screen)"), rank=1),
    Key("next_run", "tab", "next_run", N_("next run"), N_("select the next run"), priority=True, rank=2),
    Key("prev_run", "shift+tab", "prev_run", N_("previous run"), N_("select the previous run"), show=False, priority=True),
    Key("run_down", "j,down", "run_down", N_("next run in the list"), show=False),
    Key("run_up", "k,up", "run_up", N_("previous run in the list"), show=False),
    Key("next_metric", "m", "metric(1)", N_("metric"), N_("chart the next metric (loss, grad_norm, lr, ...)"), rank=4),
    Key("prev_metric", "M", "metric(-1)", N_("previous metric"), N_("chart the previous metric"), show=False),
    Key("smooth", "s", "smooth", N_("smooth"), N_("EMA smoothing on/off (TensorBoard's debiased EMA, w=0.6)"), rank=7),
    Key("log_scale", "l", "log_scale", N_("log y"), N_("logarithmic y axis on/off (linear again when the overlay went log by itself)"), rank=8),
    Key("x_axis", "x", "x_axis", N_("x axis"), N_("x axis: optimizer step or tokens seen (num_tokens)"), rank=9),
    Key("overlay", "o", "overlay", N_("overlay"), N_("overlay every run, each in its colour and glyph (log y by itself when runs are far apart)"), rank=5),
    Key("clip", "c", "clip", N_("clip spikes"), N_("clip lone spikes (marked ▲) on/off"), show=False),
    Key("view", "v", "view", N_("view"), N_("cycle views: chart, metrics, checklist, assessment"), rank=3),
    Key("dismiss", "d", "dismiss", N_("dismiss"), N_("hide the top banner until its finding opens again"), rank=6),
    *(Key(f"run_{i}", str(i), f"select_run({i - 1})", f"run {i}", f"select run {i}", show=False) for i in range(1, 10)),
    Key("close_help", "escape,q,question_mark", "close", N_("close"), N_("close the help screen"), show=False),
)

BINDING_IDS: frozenset[str] = frozenset(k.id for k in KEYS)

QUIT_IDS = ("quit", "interrupt")
MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})
NAMED_KEYS = frozenset(
    {"escape", "tab", "enter", "return", "space", "backspace", "delete", "insert", "up", "down", "left",
     "right", "home", "end", "pageup", "pagedown", *(f"f{i}" for i in range(1, 25))}
)


def key_name_error(name: str) -> str | None:
    """Why ``name`` is not a key Textual can deliver (``"n"``, ``"ctrl+r"``, ``"question_mark"``,
    ``"f5"``), or None. Textual accepts any string and the binding then never fires."""
    parts = name.strip().split("+")
    *mods, base = parts
    for m in mods:
        if m not in MODIFIERS:
            return _("'{modifier}' is not a modifier (ctrl, shift, alt, meta, super, hyper)").format(modifier=m)
    if len(set(mods)) != len(mods):
        return _("a modifier is repeated")
    if len(base) == 1 and base.isprintable() and not base.isspace():
        return None
    if base in NAMED_KEYS:
        return None
    try:  # Textual names other characters by their Unicode name: question_mark, comma, ...
        char = unicodedata.lookup(base.replace("_", " ").upper())
    except KeyError:
        char = ""
    if base and base == base.lower() and len(char) == 1 and char.isprintable():
        return None
    return _("'{key}' is not a key name (use a character such as n or ?, a name such as tab or f5, or ctrl+x)").format(
        key=base
    )


def effective_keys(keymap: Mapping[str, str]) -> dict[str, list[str]]:
    """Every binding id's keys once ``keymap`` (id -> keys, comma-separated) is applied."""
    out: dict[str, list[str]] = {}
    for k in KEYS:
        if k.id == "close_help":
            continue
        keys = keymap.get(k.id, k.keys)
        out[k.id] = [_canonical(x) for x in keys.split(",") if x.strip()]
    return out


def _canonical(key: str) -> str:
    key = key.strip()
    return {"?": "question_mark"}.get(key, key)


def keymap_error(keymap: Mapping[str, str]) -> str | None:
    """One line saying what is wrong with a config's ``[keys]`` table, or None: an unknown key
    name, a key given to two bindings (one of them would silently never fire), or no key left
    that quits."""
    for bid, keys in keymap.items():
        for key in keys.split(","):
            err = key_name_error(key)
            if err is not None:
                return _("keys.{id}: {error}").format(id=bid, error=err)
    bound = effective_keys(keymap)
    owner: dict[str, str] = {}
    for bid, names in bound.items():
        for key in names:
            other = owner.setdefault(key, bid)
            if other != bid:
                changed = bid if bid in keymap else other
                return _("keys.{id}: '{key}' is already the key of '{other}'").format(
                    id=changed, key=key, other=other if changed == bid else bid
                )
    if not any(bound[q] for q in QUIT_IDS):
        return _("keys: no key is left that quits (keys.quit or keys.interrupt)")
    return None
