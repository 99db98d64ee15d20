"""The ``sfttop`` command: the live TUI, ``--report``, ``--follow`` and ``--demo``."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import signal
import sys
from typing import TYPE_CHECKING, NoReturn

from . import __version__

if TYPE_CHECKING:
    from .core.config import Config
    from .core.webhook import WebhookSender

# Set by --serve for the app it starts per browser tab (see serve.py).
SERVED_ENV = "SFTTOP_SERVED"

EXAMPLES = """\
examples:
  sfttop runs/*/train.log                 watch every run live (quote the glob to pick up new runs)
  sfttop 'runs/*/train.log'               the same; runs started later appear by themselves
  sfttop outputs/                          a run directory or a directory of runs
  sfttop --demo                            simulated runs (healthy, overfitting, exploding), no data needed
  sfttop --report train.log                the assessment, findings and checklist as text, then exit
  sfttop --report --format json runs/      the same as JSON for scripts and CI (exit 1 on a critical finding)
  sfttop --report --format md run/ > r.md  Markdown to paste into an issue or PR
  sfttop --follow --format jsonl train.log | jq .   every new record and finding as a JSON line
  sfttop --alert-webhook https://open.feishu.cn/open-apis/bot/v2/hook/... 'runs/*/train.log'
                                           tell a chat (Feishu/Lark, DingTalk, WeCom, Slack, Discord, ntfy)
  sfttop --serve 'runs/*/train.log'        the same screen in a browser (pip install 'sfttop[web]')
  sfttop 'gpu1:runs/*/train.log' runs/     runs on another host over ssh (host:path, ssh://[user@]host[:port]/path)

inputs: HF Trainer / TRL stdout captures (transformers 4.x and 5.x), trainer_state.json,
LLaMA-Factory trainer_log.jsonl, ms-swift logging.jsonl, generic JSON lines; the stdout of
Megatron-LM / Megatron-DeepSpeed, nanoGPT, nanochat, llm.c and torchtune (and its log_*.txt).
--log-format names: hf-stdout, jsonl, llamafactory-jsonl, ms-swift-jsonl, trainer-state,
megatron, nanogpt, nanochat, llmc, torchtune.

exit status: 0 no critical finding, 1 a critical finding (--report), 2 usage error or unreadable input.
"""


# Below this, polling every file spins a core for nothing (log lines arrive a few times a second
# at most); above an hour, a "live" monitor is not live.
MIN_INTERVAL = 0.05
MAX_INTERVAL = 3600.0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (the usage block is in --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="sfttop",
        description="A terminal monitor for LLM fine-tuning runs: live charts, a health checklist "
        "and alerts from the logs your trainer already writes.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="log file, run directory, or quoted glob")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--report", action="store_true", help="print a report of what the logs hold now and exit")
    mode.add_argument("--follow", action="store_true", help="print new records and findings as they arrive (no TUI)")
    mode.add_argument("--demo", action="store_true", help="watch simulated runs written live to a temp directory")
    p.add_argument(
        "--format",
        choices=["text", "json", "md", "jsonl"],
        default=None,
        help="output format: text|json|md for --report (default text), text|jsonl for --follow",
    )
    p.add_argument("--log-format", metavar="NAME", default=None,
                   help="read every log as this input format instead of detecting it (see inputs below)")
    p.add_argument("--config", metavar="PATH", default=None, help="TOML file of thresholds and keys "
                   "(default $XDG_CONFIG_HOME/sfttop/config.toml)")
    p.add_argument("--alert-cmd", metavar="CMD", default=None,
                   help="run CMD (no shell) once per new finding episode, the finding as JSON on stdin")
    p.add_argument("--alert-severity", choices=["critical", "warning", "info"], default=None,
                   help="lowest severity that runs --alert-cmd or posts to --alert-webhook "
                   "(default: the config's alert.min_severity, warning)")
    p.add_argument("--alert-webhook", metavar="URL", action="append", default=None,
                   help="post each new finding episode to this chat webhook (repeatable); the service is "
                   "recognised from the URL")
    p.add_argument("--alert-webhook-format", default=None,
                   choices=["slack", "discord", "feishu", "dingtalk", "wecom", "ntfy", "json"],
                   help="the webhook's service when the URL does not tell (json: the --alert-cmd payload)")
    p.add_argument("--alert-webhook-secret-env", metavar="VAR", default=None,
                   help="environment variable holding the signing secret (Feishu, DingTalk, json) or ntfy token")
    p.add_argument("--serve", action="store_true",
                   help="serve the screen to a browser (textual-serve; pip install 'sfttop[web]')")
    p.add_argument("--serve-host", metavar="ADDR", default=None,
                   help="address --serve binds to (default 127.0.0.1; anything else is reachable "
                   "by others, without authentication)")
    p.add_argument("--serve-port", metavar="PORT", type=int, default=8765, help="port for --serve (default 8765)")
    p.add_argument("--serve-url", metavar="URL", default=None,
                   help="the address browsers use to reach --serve, when not http://HOST:PORT (a proxy)")
    p.add_argument("--interval", type=float, default=0.5, metavar="SECONDS",
                   help=f"how often files are polled, {MIN_INTERVAL:g} to {MAX_INTERVAL:g} (default 0.5)")
    p.add_argument("--ssh-command", metavar="CMD", default=None,
                   help="the ssh command line for remote paths (host:path, ssh://...), split like a shell "
                   "line but never run by one (default $SFTTOP_SSH_COMMAND, else ssh)")
    p.add_argument("--version", action="version", version=f"sfttop {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .core.config import ConfigError, load_config
    from .tui.keys import BINDING_IDS, keymap_error  # plain data: importing it does not load Textual

    if not (math.isfinite(args.interval) and MIN_INTERVAL <= args.interval <= MAX_INTERVAL):
        print(f"sfttop: --interval must be between {MIN_INTERVAL:g} and {MAX_INTERVAL:g} seconds, "
              f"got {args.interval:g}", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config, key_actions=BINDING_IDS)
    except ConfigError as e:
        print(f"sfttop: config: {e}", file=sys.stderr)
        return 2
    bad_keys = keymap_error(config.keys)
    if bad_keys is not None:
        print(f"sfttop: config: {bad_keys}", file=sys.stderr)
        return 2
    if args.ssh_command is not None:
        import shlex

        from .core.remote import set_ssh_command

        try:
            if not shlex.split(args.ssh_command):
                raise ValueError("empty")
        except ValueError as e:
            print(f"sfttop: --ssh-command: {e}", file=sys.stderr)
            return 2
        set_ssh_command(args.ssh_command)
    log_format = args.log_format
    if log_format is not None:
        from .core.parse import INPUT_FORMATS

        if log_format not in INPUT_FORMATS:
            print(f"sfttop: unknown --log-format {log_format!r} (one of: {', '.join(INPUT_FORMATS)})", file=sys.stderr)
            return 2
    if args.report:
        if not args.paths:
            print("sfttop: --report needs at least one PATH (see sfttop --help)", file=sys.stderr)
            return 2
        fmt = args.format or "text"
        if fmt not in ("text", "json", "md"):
            print("sfttop: --report --format must be text, json or md", file=sys.stderr)
            return 2
        from .core.report import run_report

        return run_report(args.paths, config, fmt, sys.stdout, log_format=log_format)
    if args.follow:
        if not args.paths:
            print("sfttop: --follow needs at least one PATH", file=sys.stderr)
            return 2
        fmt = args.format or "text"
        if fmt not in ("text", "jsonl"):
            print("sfttop: --follow --format must be text or jsonl", file=sys.stderr)
            return 2
        from .core.alert import dispatcher_for
        from .core.follow import follow

        try:
            dispatcher = dispatcher_for(args.alert_cmd, args.alert_severity, config)
        except ValueError as e:
            print(f"sfttop: --alert-cmd: {e}", file=sys.stderr)
            return 2
        webhooks, code = _webhooks(args, config)
        if code:
            return code
        signal.signal(signal.SIGPIPE, signal.SIG_DFL) if hasattr(signal, "SIGPIPE") else None
        if webhooks is not None:  # unwind on a kill too, so queued alerts are flushed (bounded)
            for sig in (getattr(signal, "SIGHUP", None), signal.SIGTERM):
                if sig is not None:
                    signal.signal(sig, _exit_on_signal)
        try:
            return follow(
                args.paths, config, fmt, sys.stdout, interval=args.interval, dispatcher=dispatcher,
                log_format=log_format, webhooks=webhooks,
            )
        except KeyboardInterrupt:
            return 0
    if args.format is not None:
        print("sfttop: --format applies to --report and --follow", file=sys.stderr)
        return 2
    if args.serve:
        if args.report or args.follow:
            print("sfttop: --serve cannot be combined with --report or --follow", file=sys.stderr)
            return 2
        from .serve import serve

        return serve(args, config)
    if (args.serve_host, args.serve_url) != (None, None):
        print("sfttop: --serve-host and --serve-url apply to --serve", file=sys.stderr)
        return 2
    paths = list(args.paths)
    demo = None
    # A killed pane or a dropped SSH session sends SIGHUP/SIGTERM: unwind normally, so the
    # terminal is restored and the demo's temporary directory is removed.
    for sig in (getattr(signal, "SIGHUP", None), signal.SIGTERM):
        if sig is not None:
            signal.signal(sig, _exit_on_signal)
    if args.demo:
        from .core.demo import DemoWriter

        demo = DemoWriter()
        demo.start()
        paths = [os.path.join(demo.root, "*", "train.log")]
    elif not paths:
        print("sfttop: give a log file, run directory or glob (or try sfttop --demo; see sfttop --help)",
              file=sys.stderr)
        return 2
    if not sys.stdout.isatty() and not os.environ.get("SFTTOP_FORCE_TUI"):
        print("sfttop: stdout is not a terminal; use --report or --follow", file=sys.stderr)
        return 2
    alert_cmd = args.alert_cmd
    webhooks = None
    if os.environ.get(SERVED_ENV):
        # one browser tab of --serve: the serving process sends the alerts, once, not every tab
        alert_cmd = None
        config = dataclasses.replace(config, alert=dataclasses.replace(config.alert, cmd=None, webhook=()))
    else:
        webhooks, code = _webhooks(args, config)
        if code:
            if demo is not None:
                demo.stop()
            return code
    from .tui.app import SfttopApp

    app = SfttopApp(paths, config, interval=args.interval, alert_cmd=alert_cmd,
                    alert_severity=args.alert_severity, title_suffix=" (demo)" if demo else "", fmt=log_format,
                    webhooks=webhooks)
    try:
        app.run()
    finally:
        if demo is not None:
            demo.stop()
    err = getattr(app, "exit_message", None)
    if err:
        print(err, file=sys.stderr)
    if webhooks is not None:  # the title bar showed them while it was up; keep them past the screen
        for line in webhooks.drain_errors():
            print(line, file=sys.stderr)
    return int(app.return_code or 0)


def _webhooks(args: argparse.Namespace, config: Config) -> tuple[WebhookSender | None, int]:
    """The ``--alert-webhook`` sender (None when none is asked for), or an exit status 2."""
    from .core.webhook import sender_for

    if (args.alert_webhook_format or args.alert_webhook_secret_env) and not args.alert_webhook:
        print("sfttop: --alert-webhook-format and --alert-webhook-secret-env need --alert-webhook URL", file=sys.stderr)
        return None, 2
    try:
        return sender_for(args.alert_webhook, args.alert_webhook_format, args.alert_webhook_secret_env,
                          args.alert_severity, config), 0
    except ValueError as e:
        print(f"sfttop: --alert-webhook: {e}", file=sys.stderr)
        return None, 2


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
