"""Every key binding of the live monitor, with a stable id for the config's ``[keys]`` table.

Plain data (no Textual import), so the CLI can validate a config file's ``[keys]`` against
``BINDING_IDS`` without loading the TUI.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    id: str
    keys: str  # Textual key names, comma-separated
    action: str
    description: str  # short, for the footer
    tooltip: str = ""  # longer, for the help screen
    show: bool = True  # in the footer
    priority: bool = False


KEYS: tuple[Key, ...] = (
    Key("quit", "q", "quit", "quit", "quit sfttop"),
    Key("help", "question_mark", "help", "keys", "show every key (this screen)"),
    Key("next_run", "tab", "next_run", "next run", "select the next run", priority=True),
    Key("prev_run", "shift+tab", "prev_run", "previous run", "select the previous run", show=False, priority=True),
    Key("run_down", "j,down", "run_down", "next run in the list", show=False),
    Key("run_up", "k,up", "run_up", "previous run in the list", show=False),
    Key("next_metric", "m", "metric(1)", "metric", "chart the next metric (loss, grad_norm, lr, ...)"),
    Key("prev_metric", "M", "metric(-1)", "previous metric", "chart the previous metric", show=False),
    Key("smooth", "s", "smooth", "smooth", "EMA smoothing on/off (TensorBoard's debiased EMA, w=0.6)"),
    Key("log_scale", "l", "log_scale", "log y", "logarithmic y axis on/off"),
    Key("x_axis", "x", "x_axis", "x axis", "x axis: optimizer step or tokens seen (num_tokens)"),
    Key("overlay", "o", "overlay", "overlay", "overlay every run on the chart, each in its colour"),
    Key("clip", "c", "clip", "clip spikes", "clip lone spikes (marked ▲) on/off", show=False),
    Key("view", "v", "view", "view", "cycle views: chart, metrics, checklist, assessment"),
    Key("dismiss", "d", "dismiss", "dismiss", "hide the top banner until its finding opens again"),
    *(Key(f"run_{i}", str(i), f"select_run({i - 1})", f"run {i}", f"select run {i}", show=False) for i in range(1, 10)),
    Key("close_help", "escape,q,question_mark", "close", "close", "close the help screen", show=False),
)

BINDING_IDS: frozenset[str] = frozenset(k.id for k in KEYS)
