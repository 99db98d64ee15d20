"""User configuration: diagnosis thresholds, key bindings and alerting, read from TOML.

Every threshold has the seed FAQ's default (or, where the seed is silent, the research note's
published heuristic) and a one-line doc kept in the field's metadata; ``config_reference()``
turns them into the README's table, so code and docs cannot drift apart.

The file is optional. ``load_config(None)`` reads ``$XDG_CONFIG_HOME/sfttop/config.toml`` (or
``~/.config/sfttop/config.toml``) when it exists and returns the defaults when it does not; an
explicit path must exist. Errors name the offending key::

    [thresholds]
    grad_norm_wran = 12   # ConfigError: unknown key 'thresholds.grad_norm_wran'
                          #              (did you mean 'grad_norm_warn'?)
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
from collections.abc import Collection, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from .i18n import LANGS, N_, _, normalise
from .oserrors import os_reason


class ConfigError(Exception):
    """A configuration file is unreadable or holds a bad key or value; the message says which."""


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


def _f(default: float, doc: str, *, kind: str = "pos") -> Any:
    """A float threshold. ``kind``: 'pos' (> 0), 'nonneg' (>= 0) or 'frac' (0 < x <= 1)."""
    return field(default=default, metadata={"doc": doc, "kind": kind})


def _i(default: int, doc: str, *, minimum: int = 1) -> Any:
    return field(default=default, metadata={"doc": doc, "kind": "int", "min": minimum})


@dataclass(frozen=True)
class Thresholds:
    """Every number the diagnoser, checklist and assessment judge by."""

    # --- gradients (seed: GRAD_NORM_WARN = 10, GRAD_NORM_MAX = 20) ---
    grad_norm_warn: float = _f(10.0, "grad_norm above this is a warning (grad_norm_high)")
    grad_norm_critical: float = _f(20.0, "grad_norm above this is critical (grad_explosion)")
    grad_norm_vanishing: float = _f(0.01, "median grad_norm below this while loss stalls is grad_vanishing")
    grad_spike_ratio: float = _f(3.0, "a grad_norm spike is at least this many times the rolling median")
    grad_spike_z: float = _f(6.0, "... and has a modified z-score above this (research B.3)")
    grad_spike_min: float = _f(
        1.0, "... and is at least this (HF's default max_grad_norm: a smaller norm makes no larger an update)"
    )
    grad_norm_watch: float = _f(
        0.8, "grad_norm at or above this fraction of grad_norm_warn is judged 'watch' in reports", kind="frac"
    )
    fp16_skip_run: int = _i(
        5, "records in a row skipped by the fp16 loss scaler (grad_norm NaN/inf, LR held) that are a critical loss_nonfinite"
    )
    # --- loss ---
    loss_good: float = _f(0.5, "a train loss at or below this is judged 'good' in reports (the seed: 'very good for SFT')")
    loss_rise_warn: float = _f(
        0.1, "a window's median loss this fraction above the previous window's is a checklist warning", kind="nonneg"
    )
    loss_rise_fail: float = _f(0.5, "... and this fraction above it fails the 'loss falling' check", kind="nonneg")
    epoch_loss_rise: float = _f(
        0.1, "an epoch's median loss this fraction above the previous epoch's warns 'trend healthy'", kind="nonneg"
    )
    loss_spike_ratio: float = _f(1.5, "a loss spike is at least this many times the rolling median (B.2)")
    loss_spike_z: float = _f(3.5, "... and has a modified z-score above this (Iglewicz-Hoaglin cut-off)")
    oscillation_ratio: float = _f(1.5, "a loss rebound is a jump to at least this many times the recent low")
    oscillation_min_jump: float = _f(0.1, "... and at least this much in absolute loss (nats)", kind="nonneg")
    oscillation_rebounds: int = _i(3, "rebounds within one window that make the loss oscillating")
    loss_noise_z: float = _f(
        6.0,
        "a spike or climb of the loss must also stand this many robust sigmas of its own per-point noise above "
        "its level (log scale, last 5 windows; a rebound half as many): small-batch noise is no oscillation",
    )
    divergence_ratio: float = _f(
        100.0, "a loss this many times the median of the window before it (2 orders of magnitude) is a critical divergence"
    )
    divergence_points: int = _i(10, "smoothed loss rising on this many consecutive logged points is divergence")
    divergence_min_rise: float = _f(0.2, "... and rising by at least this fraction overall")
    unstable_min_progress: float = _f(
        0.05, "the loss improving less than this fraction over a long window while it swings is training_unstable"
    )
    unstable_spread: float = _f(
        0.2, "... swinging: its 10th-90th percentile spread at least this fraction of its median", kind="nonneg"
    )
    plateau_points: int = _i(10, "smallest window (logged points) over which a plateau is judged", minimum=4)
    plateau_fraction: float = _f(0.2, "plateau window as a fraction of the points logged so far", kind="frac")
    plateau_min_improvement: float = _f(
        0.01, "loss improving by less than this fraction over the window is a plateau", kind="nonneg"
    )
    plateau_min_loss: float = _f(
        1.0,
        "a flat loss at or below this (the seed's normal range tops out at 1.0) is converged, not stuck",
        kind="nonneg",
    )
    plateau_trend_windows: float = _f(
        2.5,
        "no plateau while the loss still falls, beyond its noise, by plateau_min_improvement per doubling of "
        "the steps over this many plateau windows (2.5: the last half of the run)",
    )
    plateau_lr_fraction: float = _f(
        0.1, "plateaus count only while the LR is at least this fraction of its peak", kind="nonneg"
    )
    # --- overfitting (seed: LOSS_GAP_WARN = 2.0; "train 0.01 / eval 1.5+" is severe) ---
    loss_gap_ratio: float = _f(2.0, "eval_loss / train_loss above this (on 2 consecutive evals) is overfitting")
    loss_gap_min: float = _f(0.05, "... and eval_loss - train_loss must be at least this (nats)", kind="nonneg")
    loss_gap_warn: float = _f(0.5, "train/eval loss gap (fraction of train loss) judged 'watch' in reports")
    loss_gap_close: float = _f(
        0.1, "a train/eval loss gap within this fraction either way is judged 'generalising well'", kind="nonneg"
    )
    overfit_patience: int = _i(
        3,
        "evals without a new lowest eval_loss while the train loss falls beyond its noise is overfitting "
        "(EarlyStoppingCallback's early_stopping_patience)",
    )
    overfit_min_rise: float = _f(
        0.02,
        "a smoothed eval_loss this fraction above its best level for overfit_patience evals is overfitting too",
        kind="nonneg",
    )
    severe_train_loss: float = _f(0.05, "train loss at or below this ('about 0.01') with a high eval_loss ...")
    severe_eval_loss: float = _f(1.5, "... at or above this is overfitting_severe")
    severe_gap_ratio: float = _f(10.0, "eval_loss this many times the train loss (and >= severe_eval_loss) on 2 evals is overfitting_severe")
    # --- accuracy (seed: ACCURACY_DROP_THRESHOLD = 0.1) ---
    accuracy_drop: float = _f(0.10, "token accuracy falling more than this below its best is accuracy_drop")
    accuracy_gap_warn: float = _f(0.05, "eval accuracy this far below train accuracy is judged 'watch'")
    eval_acc_dip: float = _f(
        0.005, "eval accuracy falling more than this from one eval to the next is a checklist warning", kind="nonneg"
    )
    accuracy_very_good: float = _f(0.9, "token accuracy at or above this is judged 'very good' in reports", kind="frac")
    accuracy_excellent: float = _f(0.95, "token accuracy at or above this is judged 'excellent' in reports", kind="frac")
    accuracy_slow_gain: float = _f(
        0.01, "token accuracy gaining less than this over a plateau window is accuracy_slow", kind="nonneg"
    )
    accuracy_slow_ceiling: float = _f(0.9, "accuracy_slow only below this accuracy", kind="frac")
    # --- learning rate (seed: 1e-8 'maybe too small', 1e-3 'maybe too large') ---
    lr_min: float = _f(1e-7, "LR below this before the schedule's end is lr_too_small")
    lr_max: float = _f(1e-3, "LR above this is lr_too_large")
    lr_end_fraction: float = _f(0.9, "steps after this fraction of max_steps are the schedule's end", kind="frac")
    lr_zero_fraction: float = _f(1e-3, "LR at or below this fraction of its peak has reached zero", kind="frac")
    # --- entropy, eval speed ---
    entropy_gap: float = _f(0.25, "eval entropy differing from train entropy by more than this fraction")
    entropy_gap_close: float = _f(
        0.1, "eval entropy within this fraction of train entropy is judged 'very consistent'", kind="nonneg"
    )
    entropy_collapse: float = _f(0.05, "a window's median entropy below this (nats) fails 'entropy stable'")
    entropy_change: float = _f(
        0.5, "a window's median entropy changing by more than this fraction from the previous one is a warning"
    )
    eval_slowdown_ratio: float = _f(
        0.7, "eval throughput below this fraction of its median on 3 evals in a row is eval_slowdown", kind="frac"
    )
    # --- smoothing, early training, hysteresis ---
    window_points: int = _i(20, "trailing window (logged points) for rolling median/MAD", minimum=4)
    min_window_points: int = _i(10, "points needed in the window before spike rules may fire", minimum=3)
    smooth_points: int = _i(3, "points in the rolling median used as the 'current' value of a noisy metric")
    early_points: int = _i(5, "the first this-many logged train points are early training", minimum=0)
    early_fraction: float = _f(
        0.1, "steps before this fraction of max_steps (when known) are early training", kind="frac"
    )
    clear_points: int = _i(5, "consecutive healthy train points that close an episode")
    clear_evals: int = _i(2, "consecutive healthy evals that close an eval-based episode")
    # --- stall ---
    stall_factor: float = _f(5.0, "silence longer than this many median record intervals is run_stalled")
    stall_min_seconds: float = _f(600.0, "... and never shorter than this many seconds")
    stopped_seconds: float = _f(
        1800.0, "a run past its stall limit whose log was not written at all for this many seconds is stopped"
    )


@dataclass(frozen=True)
class WebhookConfig:
    """One ``[[alert.webhook]]`` table: a chat webhook that is told about new findings."""

    url: str = field(default="", metadata=_doc("the incoming-webhook URL (it holds the token: keep the file private)"))
    format: str | None = field(
        default=None, metadata=_doc("slack, discord, feishu, dingtalk, wecom, ntfy or json (default: from the URL)")
    )
    min_severity: str | None = field(default=None, metadata=_doc("least severity sent here (default: alert.min_severity)"))
    secret: str | None = field(default=None, repr=False, metadata=_doc("signing secret (Feishu, DingTalk, json) or ntfy token"))
    secret_env: str | None = field(default=None, metadata=_doc("... or the environment variable that holds it"))


WEBHOOK_FORMATS = ("slack", "discord", "feishu", "dingtalk", "wecom", "ntfy", "json")


@dataclass(frozen=True)
class AlertConfig:
    """How ``--alert-cmd`` and ``--alert-webhook`` are fed."""

    cmd: str | None = field(default=None, metadata=_doc("command run once per new finding episode (JSON on stdin)"))
    min_interval_seconds: float = field(default=60.0, metadata=_doc("at most one alert command per this many seconds"))
    min_severity: str = field(default="warning", metadata=_doc("least severity that alerts: info, warning or critical"))
    bell: bool = field(default=True, metadata=_doc("ring the terminal bell on a new critical finding"))
    webhook_per_minute: int = field(
        default=6, metadata=_doc("at most this many messages a minute per webhook; the excess waits and goes as one digest")
    )
    webhook: tuple[WebhookConfig, ...] = field(default=(), metadata=_doc("chat webhooks, as [[alert.webhook]] tables"))


@dataclass(frozen=True)
class Config:
    thresholds: Thresholds = field(default_factory=Thresholds)
    keys: dict[str, str] = field(default_factory=dict)  # binding id -> key, e.g. {"next_run": "n"}
    alert: AlertConfig = field(default_factory=AlertConfig)
    path: str | None = None  # the file read, None when none was
    lang: str | None = None  # "zh" or "en"; None: the locale environment decides (i18n.lang_from_env)


LANG_DOC = "language of everything sfttop prints, zh or en (default: from LC_ALL, LC_MESSAGES, LANG)"


SEVERITIES = ("info", "warning", "critical")
_KEY_ID = re.compile(r"^[a-z][a-z0-9_]*$")


def default_config_path(env: Mapping[str, str] = os.environ) -> str:
    base = env.get("XDG_CONFIG_HOME") or ""
    if not base or not os.path.isabs(base):  # the XDG spec: relative paths are invalid, ignore them
        home = env.get("HOME") or os.path.expanduser("~")
        base = os.path.join(home, ".config")
    return os.path.join(base, "sfttop", "config.toml")


def _suggest(name: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return _(" (did you mean '{name}'?)").format(name=close[0]) if close else ""


def _type_name(value: object) -> str:
    words = {bool: N_("a boolean"), int: N_("an integer"), float: N_("a number"), str: N_("a string")}
    word = words.get(type(value))
    return _(word) if word else _("a {type}").format(type=type(value).__name__)


def _threshold_value(key: str, value: object, meta: Mapping[str, Any]) -> float | int:
    kind = meta["kind"]
    if kind == "int":
        minimum = int(meta["min"])
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(_("'{key}' must be an integer >= {minimum}, got {kind} {value!r}").format(key=key, minimum=minimum, kind=_type_name(value), value=value))
        if value < minimum:
            raise ConfigError(_("'{key}' must be an integer >= {minimum}, got {value}").format(key=key, minimum=minimum, value=value))
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(_("'{key}' must be a number, got {kind} {value!r}").format(key=key, kind=_type_name(value), value=value))
    x = float(value)
    if not math.isfinite(x):
        raise ConfigError(_("'{key}' must be a finite number, got {value!r}").format(key=key, value=value))
    if kind == "pos" and x <= 0:
        raise ConfigError(_("'{key}' must be a number > 0, got {value!r}").format(key=key, value=value))
    if kind == "nonneg" and x < 0:
        raise ConfigError(_("'{key}' must be a number >= 0, got {value!r}").format(key=key, value=value))
    if kind == "frac" and not 0 < x <= 1:
        raise ConfigError(_("'{key}' must be a number in (0, 1], got {value!r}").format(key=key, value=value))
    return x


def thresholds_from_mapping(table: Mapping[str, object], prefix: str = "thresholds") -> Thresholds:
    """Validate a ``[thresholds]`` table (also used for command-line overrides)."""
    known = {f.name: f for f in fields(Thresholds)}
    values: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{prefix}.{name}"
        f = known.get(name)
        if f is None:
            raise ConfigError(_("unknown key '{key}'{hint}").format(key=key, hint=_suggest(name, known)))
        values[name] = _threshold_value(key, value, f.metadata)
    t = replace(Thresholds(), **values)
    _check_consistency(t, prefix)
    return t


def _check_consistency(t: Thresholds, prefix: str) -> None:
    pairs = (
        ("grad_norm_warn", "grad_norm_critical"),
        ("grad_norm_vanishing", "grad_norm_warn"),
        ("lr_min", "lr_max"),
        ("severe_train_loss", "severe_eval_loss"),
        ("min_window_points", "window_points"),
        ("loss_rise_warn", "loss_rise_fail"),
        ("loss_gap_close", "loss_gap_warn"),
        ("eval_acc_dip", "accuracy_drop"),
        ("accuracy_very_good", "accuracy_excellent"),
        ("entropy_gap_close", "entropy_gap"),
    )
    for lo, hi in pairs:
        if getattr(t, lo) > getattr(t, hi):
            raise ConfigError(
                _("'{prefix}.{lo}' ({low}) must not be larger than '{prefix}.{hi}' ({high})").format(prefix=prefix, lo=lo, low=getattr(t, lo), hi=hi, high=getattr(t, hi))
            )


def _alert_from_mapping(table: Mapping[str, object]) -> AlertConfig:
    known = [f.name for f in fields(AlertConfig)]
    out: dict[str, object] = {}
    for name, value in table.items():
        key = f"alert.{name}"
        if name not in known:
            raise ConfigError(_("unknown key '{key}'{hint}").format(key=key, hint=_suggest(name, known)))
        if name == "cmd":
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(_("'{key}' must be a non-empty string, got {kind} {value!r}").format(key=key, kind=_type_name(value), value=value))
        elif name == "min_interval_seconds":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value >= 0):
                raise ConfigError(_("'{key}' must be a number >= 0, got {kind} {value!r}").format(key=key, kind=_type_name(value), value=value))
            value = float(value)
        elif name == "min_severity":
            if value not in SEVERITIES:
                raise ConfigError(_("'{key}' must be one of {choices}, got {value!r}").format(key=key, choices=', '.join(SEVERITIES), value=value))
        elif name == "bell" and not isinstance(value, bool):
            raise ConfigError(_("'{key}' must be true or false, got {kind} {value!r}").format(key=key, kind=_type_name(value), value=value))
        elif name == "webhook_per_minute":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(_("'{key}' must be an integer >= 1, got {kind} {value!r}").format(key=key, kind=_type_name(value), value=value))
        elif name == "webhook":
            if not isinstance(value, list):
                raise ConfigError(_("'{key}' must be an array of tables ([[alert.webhook]]), got {kind}").format(key=key, kind=_type_name(value)))
            value = tuple(_webhook_from_mapping(f"{key}[{i}]", t) for i, t in enumerate(value))
        out[name] = value
    return replace(AlertConfig(), **out)  # type: ignore[arg-type]


def _webhook_from_mapping(key: str, table: object) -> WebhookConfig:
    if not isinstance(table, dict):
        raise ConfigError(_("'{key}' must be a table ([[alert.webhook]]), got {kind}").format(key=key, kind=_type_name(table)))
    known = [f.name for f in fields(WebhookConfig)]
    for name, value in table.items():
        if name not in known:
            raise ConfigError(_("unknown key '{key}.{name}'{hint}").format(key=key, name=name, hint=_suggest(name, known)))
        if not isinstance(value, str) or not value.strip():
            # the value itself is not echoed: it may be a secret
            raise ConfigError(_("'{key}.{name}' must be a non-empty string, got {kind}").format(key=key, name=name, kind=_type_name(value)))
    url = table.get("url")
    if not isinstance(url, str) or not re.match(r"^https?://[^/?#\s]+", url):
        raise ConfigError(_("'{key}.url' must be an http:// or https:// URL").format(key=key))
    fmt = table.get("format")
    if fmt is not None and fmt not in WEBHOOK_FORMATS:
        raise ConfigError(_("'{key}.format' must be one of {choices}, got {fmt!r}").format(key=key, choices=', '.join(WEBHOOK_FORMATS), fmt=fmt))
    sev = table.get("min_severity")
    if sev is not None and sev not in SEVERITIES:
        raise ConfigError(_("'{key}.min_severity' must be one of {choices}, got {sev!r}").format(key=key, choices=', '.join(SEVERITIES), sev=sev))
    if "secret" in table and "secret_env" in table:
        raise ConfigError(_("'{key}': give 'secret' or 'secret_env', not both").format(key=key))
    return WebhookConfig(**table)


def _keys_from_mapping(table: Mapping[str, object], actions: Collection[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in table.items():
        key = f"keys.{name}"
        if actions is not None and name not in actions:
            raise ConfigError(_("unknown key '{key}'{hint}").format(key=key, hint=_suggest(name, actions)))
        if actions is None and not _KEY_ID.match(name):
            raise ConfigError(_("'{key}' is not a binding id (lower-case letters, digits and _)").format(key=key))
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(_("'{key}' must be a key name string such as \"n\" or \"ctrl+r\", got {value!r}").format(key=key, value=value))
        out[name] = value.strip()
    return out


def config_from_mapping(
    doc: Mapping[str, object], *, key_actions: Collection[str] | None = None, path: str | None = None
) -> Config:
    """Validate an already-parsed TOML document."""
    sections = ("thresholds", "keys", "alert")
    lang = _lang_value(doc.get("lang", None))
    for name, value in doc.items():
        if name == "lang":
            continue
        if name not in sections:
            raise ConfigError(
                _("unknown key '{key}'{hint}; expected sections: {sections}").format(
                    key=name, hint=_suggest(name, (*sections, "lang")), sections=", ".join(sections)
                )
            )
        if not isinstance(value, dict):
            raise ConfigError(_("'{name}' must be a table ([{name}]), got {kind}").format(name=name, kind=_type_name(value)))
    thresholds = thresholds_from_mapping(_table(doc, "thresholds"))
    keys = _keys_from_mapping(_table(doc, "keys"), key_actions)
    alert = _alert_from_mapping(_table(doc, "alert"))
    return Config(thresholds=thresholds, keys=keys, alert=alert, path=path, lang=lang)


def _lang_value(value: object) -> str | None:
    if value is None:
        return None
    code = normalise(value) if isinstance(value, str) else None
    if code is None:
        raise ConfigError(
            _("'lang' must be one of {choices}, got {value}").format(choices=", ".join(LANGS), value=repr(value))
        )
    return code


def lang_in_file(path: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """The config file's ``lang``, read before anything is printed so that ``--help`` and the
    config's own errors are already in that language; None when the file is missing, broken
    or silent (its errors are reported by ``load_config`` afterwards)."""
    target = path if path is not None else default_config_path(env)
    try:
        with open(target, "rb") as fh:
            doc = _parse_toml(fh.read().decode("utf-8"), target)
        return _lang_value(doc.get("lang"))
    except (OSError, UnicodeDecodeError, ConfigError):
        return None


def _table(doc: Mapping[str, object], name: str) -> dict[str, object]:
    value = doc.get(name)
    return dict(value) if isinstance(value, dict) else {}


def load_config(
    path: str | None = None,
    env: Mapping[str, str] = os.environ,
    *,
    key_actions: Collection[str] | None = None,
) -> Config:
    """Read the config file at ``path`` (or the default location) and validate it.

    A missing default file means the defaults; a missing explicit file, unparsable TOML, an
    unknown key or a bad value raise ``ConfigError``. ``key_actions``, when given, is the set of
    binding ids the TUI knows, so a mistyped ``[keys]`` entry is reported too.
    """
    explicit = path is not None
    target = path if path is not None else default_config_path(env)
    try:
        with open(target, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(_("config file not found: {target}").format(target=target)) from None
        return Config()
    except OSError as exc:
        raise ConfigError(_("cannot read config file {target}: {reason}").format(target=target, reason=os_reason(exc))) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(_("{target}: not UTF-8 text").format(target=target)) from None
    doc = _parse_toml(text, target)
    try:
        return config_from_mapping(doc, key_actions=key_actions, path=target)
    except ConfigError as exc:
        raise ConfigError(_("{target}: {error}").format(target=target, error=exc)) from None


def _parse_toml(text: str, target: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(_toml_error(target, exc)) from None
    try:  # pragma: no cover - Python 3.10
        import tomli
    except ImportError:  # pragma: no cover
        raise ConfigError(_("reading {target} needs the 'tomli' package on Python 3.10 (pip install tomli)").format(target=target)) from None
    try:  # pragma: no cover
        return tomli.loads(text)
    except tomli.TOMLDecodeError as exc:  # pragma: no cover
        raise ConfigError(_toml_error(target, exc)) from None


# tomllib's (and tomli's) words for the mistakes a hand-edited file has, said in the catalog;
# a rarer one, which names a key or a character, is shown as the parser wrote it.
_TOML_WORDS = (
    N_("Invalid value"),
    N_("Invalid statement"),
    N_("Unclosed array"),
    N_("Unclosed inline table"),
    N_("Unterminated string"),
    N_("Cannot overwrite a value"),
    N_("Invalid initial character for a key part"),
    N_("Expected '=' after a key in a key/value pair"),
    N_("Expected ']' at the end of a table declaration"),
    N_("Expected ']]' at the end of an array declaration"),
    N_("Invalid date or datetime"),
    N_("Invalid hex value"),
)
_TOML_WHERE = re.compile(r"^(?P<msg>.*?) \((?:at line (?P<line>\d+), column (?P<column>\d+)|at end of document)\)$", re.S)


def _toml_error(target: str, exc: Exception) -> str:
    m = _TOML_WHERE.match(str(exc))
    if m is None:
        return _("{target}: invalid TOML: {exc}").format(target=target, exc=exc)
    msg = m.group("msg")
    reason = _(msg) if msg in _TOML_WORDS else msg
    if m.group("line") is None:
        return _("{target}: invalid TOML at the end of the file: {reason}").format(target=target, reason=reason)
    return _("{target}: invalid TOML at line {line}, column {column}: {reason}").format(
        target=target, line=m.group("line"), column=m.group("column"), reason=reason)


def config_reference() -> list[tuple[str, str, str]]:
    """(key, default as TOML, doc) for every setting, in file order; the README table is made from it."""
    out: list[tuple[str, str, str]] = [("lang", "(unset)", LANG_DOC)]
    for section, cls in (("thresholds", Thresholds), ("alert", AlertConfig), ("alert.webhook[]", WebhookConfig)):
        for f in fields(cls):
            if f.name == "webhook":
                continue  # its keys follow as alert.webhook[].*
            default = f.default if f.default is not MISSING else None
            literal = "(required)" if cls is WebhookConfig and f.name == "url" else _toml_literal(default)
            out.append((f"{section}.{f.name}", literal, str(f.metadata.get("doc", ""))))
    out.append(("keys.<binding>", '""', 'remap a key binding by its id, e.g. next_run = "n"'))
    return out


def _toml_literal(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float):
        return repr(value) if 1e-4 <= abs(value) < 1e6 or value == 0 else f"{value:g}"
    return str(value)
