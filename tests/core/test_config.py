"""Config file: defaults, the XDG location, validation errors that name the key."""

from __future__ import annotations

import dataclasses
import os

import pytest

from sfttop.core.config import (
    AlertConfig,
    Config,
    ConfigError,
    Thresholds,
    config_from_mapping,
    config_reference,
    default_config_path,
    load_config,
)


def write(tmp_path: os.PathLike[str] | str, text: str, name: str = "config.toml") -> str:
    p = os.path.join(tmp_path, name)
    with open(p, "w", encoding="utf-8") as f:
        f.write(text)
    return p


def test_seed_defaults() -> None:
    t = Thresholds()
    assert (t.grad_norm_warn, t.grad_norm_critical) == (10.0, 20.0)
    assert t.loss_gap_ratio == 2.0
    assert t.accuracy_drop == 0.10
    assert (t.lr_min, t.lr_max) == (1e-7, 1e-3)
    assert t.stall_min_seconds == 600.0


def test_thresholds_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(Thresholds(), "grad_norm_warn", 3)  # noqa: B010 - frozen


def test_missing_default_file_means_defaults(tmp_path: os.PathLike[str]) -> None:
    cfg = load_config(None, env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert cfg == Config()
    assert cfg.path is None


def test_default_path_xdg_and_home() -> None:
    assert default_config_path({"XDG_CONFIG_HOME": "/x/cfg"}) == "/x/cfg/sfttop/config.toml"
    assert default_config_path({"HOME": "/home/u"}) == "/home/u/.config/sfttop/config.toml"
    # a relative XDG_CONFIG_HOME is invalid per the spec and ignored
    assert default_config_path({"XDG_CONFIG_HOME": "rel", "HOME": "/h"}) == "/h/.config/sfttop/config.toml"


def test_default_file_is_read(tmp_path: os.PathLike[str]) -> None:
    d = os.path.join(tmp_path, "sfttop")
    os.makedirs(d)
    write(d, "[thresholds]\ngrad_norm_warn = 12\n")
    cfg = load_config(None, env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert cfg.thresholds.grad_norm_warn == 12.0
    assert isinstance(cfg.thresholds.grad_norm_warn, float)
    assert cfg.path is not None and cfg.path.endswith("config.toml")


def test_full_file(tmp_path: os.PathLike[str]) -> None:
    p = write(
        tmp_path,
        """
[thresholds]
grad_norm_critical = 50.0
overfit_patience = 3
lr_min = 1e-8

[keys]
next_run = "n"
quit = "ctrl+q"

[alert]
cmd = "notify-send sfttop"
min_interval_seconds = 30
min_severity = "critical"
bell = false
""",
    )
    cfg = load_config(p)
    assert cfg.thresholds.grad_norm_critical == 50.0
    assert cfg.thresholds.overfit_patience == 3
    assert cfg.thresholds.lr_min == 1e-8
    assert cfg.keys == {"next_run": "n", "quit": "ctrl+q"}
    assert cfg.alert == AlertConfig(
        cmd="notify-send sfttop", min_interval_seconds=30.0, min_severity="critical", bell=False
    )


def test_unknown_key_suggests(tmp_path: os.PathLike[str]) -> None:
    p = write(tmp_path, "[thresholds]\ngrad_norm_wran = 12\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "unknown key 'thresholds.grad_norm_wran'" in msg
    assert "did you mean 'grad_norm_warn'?" in msg
    assert p in msg


def test_unknown_section(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'treshold'.*did you mean 'thresholds'"):
        config_from_mapping({"treshold": {}})
    with pytest.raises(ConfigError, match="'thresholds' must be a table"):
        config_from_mapping({"thresholds": 3})


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ('grad_norm_warn = "high"', r"'thresholds.grad_norm_warn' must be a number, got a string 'high'"),
        ("grad_norm_warn = true", r"'thresholds.grad_norm_warn' must be a number, got a boolean"),
        ("grad_norm_warn = -1", r"'thresholds.grad_norm_warn' must be a number > 0"),
        ("grad_norm_warn = nan", r"'thresholds.grad_norm_warn' must be a finite number"),
        ("plateau_fraction = 1.5", r"'thresholds.plateau_fraction' must be a number in \(0, 1\]"),
        ("overfit_patience = 2.5", r"'thresholds.overfit_patience' must be an integer >= 1, got a number 2.5"),
        ("overfit_patience = 0", r"'thresholds.overfit_patience' must be an integer >= 1, got 0"),
        (
            "grad_norm_warn = 30",
            r"'thresholds.grad_norm_warn' \(30.0\) must not be larger than 'thresholds.grad_norm_critical'",
        ),
        ("lr_min = 0.01", r"'thresholds.lr_min' \(0.01\) must not be larger than 'thresholds.lr_max'"),
        (
            "loss_rise_warn = 0.6",
            r"'thresholds.loss_rise_warn' \(0.6\) must not be larger than 'thresholds.loss_rise_fail'",
        ),
        (
            "accuracy_very_good = 0.97",
            r"'thresholds.accuracy_very_good' \(0.97\) must not be larger than 'thresholds.accuracy_excellent'",
        ),
        ("grad_norm_watch = 1.5", r"'thresholds.grad_norm_watch' must be a number in \(0, 1\]"),
    ],
)
def test_bad_values_name_the_key(tmp_path: os.PathLike[str], line: str, expect: str) -> None:
    p = write(tmp_path, f"[thresholds]\n{line}\n")
    with pytest.raises(ConfigError, match=expect):
        load_config(p)


def test_bad_alert_and_keys() -> None:
    with pytest.raises(ConfigError, match=r"'alert.min_severity' must be one of info, warning, critical"):
        config_from_mapping({"alert": {"min_severity": "loud"}})
    with pytest.raises(ConfigError, match=r"unknown key 'alert.cmdd'.*did you mean 'cmd'"):
        config_from_mapping({"alert": {"cmdd": "x"}})
    with pytest.raises(ConfigError, match=r"'alert.bell' must be true or false"):
        config_from_mapping({"alert": {"bell": "yes"}})
    with pytest.raises(ConfigError, match=r"'keys.next_run' must be a key name string"):
        config_from_mapping({"keys": {"next_run": 3}})
    with pytest.raises(ConfigError, match=r"'keys.Next Run' is not a binding id"):
        config_from_mapping({"keys": {"Next Run": "n"}})
    with pytest.raises(ConfigError, match=r"unknown key 'keys.nxt_run'.*did you mean 'next_run'"):
        config_from_mapping({"keys": {"nxt_run": "n"}}, key_actions={"next_run", "prev_run", "quit"})


def test_explicit_missing_file_and_bad_toml(tmp_path: os.PathLike[str]) -> None:
    missing = os.path.join(tmp_path, "nope.toml")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(missing)
    p = write(tmp_path, "[thresholds\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(p)
    bad = os.path.join(tmp_path, "bin.toml")
    with open(bad, "wb") as f:
        f.write(b"\xff\xfe[thresholds]")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad)


def test_reference_documents_every_key() -> None:
    ref = config_reference()
    keys = [k for k, _d, _doc in ref]
    for f in dataclasses.fields(Thresholds):
        assert f"thresholds.{f.name}" in keys
    for f in dataclasses.fields(AlertConfig):  # an array of tables is documented by its keys
        assert f"alert.{f.name}" in keys or any(k.startswith(f"alert.{f.name}[].") for k in keys)
    assert all(doc for _k, _d, doc in ref)
    by_key = {k: d for k, d, _doc in ref}
    assert by_key["thresholds.grad_norm_critical"] == "20.0"
    assert by_key["thresholds.lr_min"] == "1e-07"
    assert by_key["thresholds.overfit_patience"] == "3"
    assert by_key["alert.min_severity"] == '"warning"'
