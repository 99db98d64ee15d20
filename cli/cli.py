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
from .core import i18n
from .core.i18n import N_, _

if TYPE_CHECKING:
    from .core.config import Config
    from .core.webhook import WebhookSender

# Set by --serve for the app it starts per browser tab (see serve.py).
SERVED_ENV = "SFTTOP_SERVED"
# The language --serve passes on to the app of each browser tab (textual-serve starts it with a
# command line of its own, so the choice travels like SERVED_ENV does).
LANG_ENV = "SFTTOP_LANG"

EXAMPLES = N_("""\
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
  sfttop --lang zh --demo                  in Chinese (default: the config's lang, else LC_ALL/LC_MESSAGES/LANG)

inputs: HF Trainer / TRL stdout captures (transformers 4.x and 5.x), trainer_state.json,
LLaMA-Factory trainer_log.jsonl, ms-swift logging.jsonl, generic JSON lines; the stdout of
Megatron-LM / Megatron-DeepSpeed, nanoGPT, nanochat, llm.c and torchtune (and its log_*.txt).
--log-format names: hf-stdout, jsonl, llamafactory-jsonl, ms-swift-jsonl, trainer-state,
megatron, nanogpt, nanochat, llmc, torchtune.

exit status: 0 no critical finding, 1 a critical finding (--report), 2 usage error or unreadable input.
""")

# argparse's own words (the usage prefix, section titles, its errors) come from its module-level
# gettext hooks; they are listed here so the catalog holds them, and _argparse_speaks routes
# argparse's lookups through sfttop's catalog.
ARGPARSE_WORDS = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("show program's version number and exit"),
    N_("the following arguments are required: %s"),
    N_("unrecognized arguments: %s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("not allowed with argument %s"),
    N_("expected one argument"),
    N_("expected at least one argument"),
    N_("expected at most one argument"),
    N_("invalid %(type)s value: %(value)r"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("ignored explicit argument %r"),
    N_("one of the arguments %s is required"),
    N_("unexpected option string: %s"),
    N_("can't open '%(filename)s': %(error)s"),
)


# Below this, polling every file spins a core for nothing (log lines arrive a few times a second
# at most); above an hour, a "live" monitor is not live.
MIN_INTERVAL = 0.05
MAX_INTERVAL = 3600.0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (the usage block is in --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, _("{prog}: {message} (see {prog} --help)").format(prog=self.prog, message=message) + "\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help wrapped by terminal cells (a CJK character is two wide), section titles with the
    language's own colon."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        from .core.textfmt import wrap_cells

        return wrap_cells(text, width)

    def format_help(self) -> str:
        text = super().format_help()
        for title in (_("positional arguments"), _("options")):
            text = text.replace(f"\n{title}:\n", "\n" + _("{heading}:").format(heading=title) + "\n")
        return text


def _argparse_speaks() -> None:
    """Route argparse's own words through the catalog. argparse looks its gettext functions up
    as module globals at call time (the stdlib's documented hook is a compiled .mo in an
    'argparse' domain, which would be the binary twin core/i18n.py avoids)."""
    argparse._ = i18n._  # type: ignore[attr-defined]
    argparse.ngettext = i18n.ngettext  # type: ignore[attr-defined]


def choose_lang(argv: list[str], env: os._Environ[str] | dict[str, str] = os.environ) -> str:
    """The language, decided before the parser exists so that ``--help`` speaks it: ``--lang``,
    then the one --serve passes on, then the config file's ``lang``, then the locale."""
    from .core.config import lang_in_file

    lang, config = None, None
    args = iter(argv)
    for a in args:
        if a == "--":
            break
        name, eq, value = a.partition("=")
        if name in ("--lang", "--config"):
            value = value if eq else next(args, "")
            if name == "--lang":
                lang = value
            else:
                config = value
    for choice in (lang, env.get(LANG_ENV)):
        if choice and i18n.normalise(choice):
            return str(i18n.normalise(choice))
    return lang_in_file(config, env) or i18n.lang_from_env(env)


def build_parser() -> argparse.ArgumentParser:
    _argparse_speaks()
    p = _Parser(
        prog="sfttop",
        description=_("A terminal monitor for LLM fine-tuning runs: live charts, a health checklist "
                      "and alerts from the logs your trainer already writes."),
        epilog=_(EXAMPLES),
        formatter_class=_Formatter,
        add_help=False,
    )
    p.add_argument("-h", "--help", action="help", help=_("show this help message and exit"))
    p.add_argument("paths", nargs="*", metavar="PATH", help=_("log file, run directory, or quoted glob"))
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--report", action="store_true", help=_("print a report of what the logs hold now and exit"))
    mode.add_argument("--follow", action="store_true", help=_("print new records and findings as they arrive (no TUI)"))
    mode.add_argument("--demo", action="store_true", help=_("watch simulated runs written live to a temp directory"))
    p.add_argument(
        "--format",
        choices=["text", "json", "md", "jsonl"],
        default=None,
        help=_("output format: text|json|md for --report (default text), text|jsonl for --follow"),
    )
    p.add_argument("--log-format", metavar="NAME", default=None,
                   help=_("read every log as this input format instead of detecting it (see inputs below)"))
    p.add_argument("--config", metavar="PATH", default=None, help=_("TOML file of thresholds and keys "
                   "(default $XDG_CONFIG_HOME/sfttop/config.toml)"))
    p.add_argument("--alert-cmd", metavar="CMD", default=None,
                   help=_("run CMD (no shell) once per new finding episode, the finding as JSON on stdin"))
    p.add_argument("--alert-severity", choices=["critical", "warning", "info"], default=None,
                   help=_("lowest severity that runs --alert-cmd or posts to --alert-webhook "
                   "(default: the config's alert.min_severity, warning)"))
    p.add_argument("--alert-webhook", metavar="URL", action="append", default=None,
                   help=_("post each new finding episode to this chat webhook (repeatable); the service is "
                   "recognised from the URL"))
    p.add_argument("--alert-webhook-format", default=None,
                   choices=["slack", "discord", "feishu", "dingtalk", "wecom", "ntfy", "json"],
                   help=_("the webhook's service when the URL does not tell (json: the --alert-cmd payload)"))
    p.add_argument("--alert-webhook-secret-env", metavar="VAR", default=None,
                   help=_("environment variable holding the signing secret (Feishu, DingTalk, json) or ntfy token"))
    p.add_argument("--serve", action="store_true",
                   help=_("serve the screen to a browser (textual-serve; pip install 'sfttop[web]')"))
    p.add_argument("--serve-host", metavar="ADDR", default=None,
                   help=_("address --serve binds to (default 127.0.0.1; anything else is reachable "
                   "by others, without authentication)"))
    p.add_argument("--serve-port", metavar="PORT", type=int, default=8765, help=_("port for --serve (default 8765)"))
    p.add_argument("--serve-url", metavar="URL", default=None,
                   help=_("the address browsers use to reach --serve, when not http://HOST:PORT (a proxy)"))
    p.add_argument("--interval", type=float, default=0.5, metavar="SECONDS",
                   help=_("how often files are polled, {low} to {high} (default 0.5)").format(
                       low=f"{MIN_INTERVAL:g}", high=f"{MAX_INTERVAL:g}"))
    p.add_argument("--ssh-command", metavar="CMD", default=None,
                   help=_("the ssh command line for remote paths (host:path, ssh://...), split like a shell "
                   "line but never run by one (default $SFTTOP_SSH_COMMAND, else ssh)"))
    p.add_argument("--lang", choices=list(i18n.LANGS), default=None,
                   help=_("language of the screen and the reports (default: the config's lang, else "
                          "LC_ALL / LC_MESSAGES / LANG)"))
    p.add_argument("--version", action="version", version=f"sfttop {__version__}",
                   help=_("show program's version number and exit"))
    return p


def main(argv: list[str] | None = None) -> int:
    i18n.set_lang(choose_lang(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    from .core.config import ConfigError, load_config
    from .tui.keys import BINDING_IDS, keymap_error  # plain data: importing it does not load Textual

    if not (math.isfinite(args.interval) and MIN_INTERVAL <= args.interval <= MAX_INTERVAL):
        print(_("sfttop: --interval must be between {min_interval:g} and {max_interval:g} seconds, got {interval:g}").format(min_interval=MIN_INTERVAL, max_interval=MAX_INTERVAL, interval=args.interval), file=sys.stderr)
        return 2
    try:
        config = load_config(args.config, key_actions=BINDING_IDS)
    except ConfigError as e:
        print(_("sfttop: config: {error}").format(error=e), file=sys.stderr)
        return 2
    bad_keys = keymap_error(config.keys)
    if bad_keys is not None:
        print(_("sfttop: config: {error}").format(error=bad_keys), file=sys.stderr)
        return 2
    if args.ssh_command is not None:
        import shlex

        from .core.remote import set_ssh_command

        try:
            if not shlex.split(args.ssh_command):
                raise ValueError(_("empty"))
        except ValueError as e:
            print(_("sfttop: --ssh-command: {error}").format(error=e), file=sys.stderr)
            return 2
        set_ssh_command(args.ssh_command)
    log_format = args.log_format
    if log_format is not None:
        from .core.parse import INPUT_FORMATS

        if log_format not in INPUT_FORMATS:
            print(_("sfttop: unknown --log-format {log_format!r} (one of: {choices})").format(log_format=log_format, choices=', '.join(INPUT_FORMATS)), file=sys.stderr)
            return 2
    if args.report:
        if not args.paths:
            print(_("sfttop: --report needs at least one PATH (see sfttop --help)"), file=sys.stderr)
            return 2
        fmt = args.format or "text"
        if fmt not in ("text", "json", "md"):
            print(_("sfttop: --report --format must be text, json or md"), file=sys.stderr)
            return 2
        from .core.report import run_report

        return run_report(args.paths, config, fmt, sys.stdout, log_format=log_format)
    if args.follow:
        if not args.paths:
            print(_("sfttop: --follow needs at least one PATH"), file=sys.stderr)
            return 2
        fmt = args.format or "text"
        if fmt not in ("text", "jsonl"):
            print(_("sfttop: --follow --format must be text or jsonl"), file=sys.stderr)
            return 2
        from .core.alert import dispatcher_for
        from .core.follow import follow

        try:
            dispatcher = dispatcher_for(args.alert_cmd, args.alert_severity, config)
        except ValueError as e:
            print(_("sfttop: --alert-cmd: {error}").format(error=e), file=sys.stderr)
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
        print(_("sfttop: --format applies to --report and --follow"), file=sys.stderr)
        return 2
    if args.serve:
        if args.report or args.follow:
            print(_("sfttop: --serve cannot be combined with --report or --follow"), file=sys.stderr)
            return 2
        from .serve import serve

        return serve(args, config)
    if (args.serve_host, args.serve_url) != (None, None):
        print(_("sfttop: --serve-host and --serve-url apply to --serve"), file=sys.stderr)
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
        print(_("sfttop: give a log file, run directory or glob (or try sfttop --demo; see sfttop --help)"),
              file=sys.stderr)
        return 2
    if not sys.stdout.isatty() and not os.environ.get("SFTTOP_FORCE_TUI"):
        print(_("sfttop: stdout is not a terminal; use --report or --follow"), file=sys.stderr)
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
                    alert_severity=args.alert_severity, title_suffix=_(" (demo)") if demo else "", fmt=log_format,
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
        print(_("sfttop: --alert-webhook-format and --alert-webhook-secret-env need --alert-webhook URL"), file=sys.stderr)
        return None, 2
    try:
        return sender_for(args.alert_webhook, args.alert_webhook_format, args.alert_webhook_secret_env,
                          args.alert_severity, config), 0
    except ValueError as e:
        print(_("sfttop: --alert-webhook: {error}").format(error=e), file=sys.stderr)
        return None, 2


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
