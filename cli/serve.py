"""``sfttop --serve``: the same Textual app in a browser, through textual-serve (the ``web`` extra).

textual-serve starts one ``python -m sfttop ...`` per browser tab and relays its screen over a
websocket. Each tab's app is told (``SFTTOP_SERVED``) not to alert: alerts (``--alert-cmd``,
``--alert-webhook``, the config's) are sent once, by a headless ``--follow`` engine in this
process, not once per open tab.

The page has no authentication, so the default bind is loopback, reached from elsewhere through
an SSH tunnel (the line to type is printed); any other address must be asked for with
``--serve-host`` and earns a warning.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shlex
import socket
import sys
import threading
from typing import TYPE_CHECKING, TextIO

from .core import i18n
from .core.config import Config
from .core.i18n import N_, _
from .core.oserrors import os_reason

if TYPE_CHECKING:
    from .core.alert import AlertDispatcher
    from .core.webhook import WebhookSender

INSTALL_HINT = N_("sfttop: --serve needs the web extra: pip install 'sfttop[web]'")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def child_command(args: argparse.Namespace) -> str:
    """The command textual-serve runs per tab: this sfttop, these logs, no alerting flags."""
    argv = [sys.executable, "-m", "sfttop"]
    if args.demo:
        argv.append("--demo")
    if args.config is not None:
        argv += ["--config", os.path.abspath(args.config)]
    if args.log_format is not None:
        argv += ["--log-format", args.log_format]
    argv += ["--interval", repr(args.interval), "--"]
    argv += list(args.paths)
    return " ".join(shlex.quote(a) for a in argv)


def serve(args: argparse.Namespace, config: Config, out: TextIO | None = None) -> int:
    out = out or sys.stderr
    if not args.paths and not args.demo:
        print(_("sfttop: --serve needs a log file, run directory or glob (or --demo)"), file=out)
        return 2
    host = args.serve_host or "127.0.0.1"
    port = int(args.serve_port)
    if not 0 < port < 65536:
        print(_("sfttop: --serve-port must be 1 to 65535, got {port}").format(port=port), file=out)
        return 2
    try:
        from textual_serve.server import Server
    except ImportError:
        print(_(INSTALL_HINT), file=out)
        return 2
    from .cli import LANG_ENV, SERVED_ENV, _webhooks
    from .core.alert import dispatcher_for

    try:
        dispatcher = dispatcher_for(args.alert_cmd, args.alert_severity, config)
    except ValueError as e:
        print(_("sfttop: --alert-cmd: {error}").format(error=e), file=out)
        return 2
    webhooks, code = _webhooks(args, config)
    if code:
        return code
    shown_host = f"[{host}]" if ":" in host else host
    url = args.serve_url or f"http://{shown_host}:{port}"
    if is_loopback(host):
        me = socket.gethostname() or socket.getfqdn()
        print(_("sfttop: serving on {url} (this machine only)").format(url=url), file=out)
        print(_("sfttop: from your laptop: ssh -L {port}:127.0.0.1:{port} {me}  then open http://127.0.0.1:{port}").format(port=port, me=me),
              file=out)
    else:
        if args.serve_url is None and host in ("0.0.0.0", "::"):
            url = f"http://{socket.getfqdn() or socket.gethostname()}:{port}"
        print(_("sfttop: WARNING: serving on {host}:{port} with NO authentication: anyone who can reach this port sees the runs (and the paths of their logs)").format(host=host, port=port), file=out)
        print(_("sfttop: serving on {url}").format(url=url), file=out)
    out.flush()
    # Read by every per-tab sfttop: draw to the web driver (not a tty) and leave alerts to us.
    os.environ["SFTTOP_FORCE_TUI"] = "1"
    os.environ[SERVED_ENV] = "1"
    os.environ[LANG_ENV] = i18n.get_lang()
    stop = threading.Event()
    engine = None
    if (dispatcher is not None or webhooks is not None) and args.paths:
        engine = threading.Thread(
            target=_alert_engine, args=(args, config, dispatcher, webhooks, stop), name="sfttop-alerts", daemon=True
        )
        engine.start()
    server = Server(child_command(args), host=host, port=port, title="sfttop", public_url=url)
    try:
        server.serve()
    except OSError as e:
        print(_("sfttop: --serve cannot listen on {host}:{port}: {reason}").format(host=host, port=port, reason=os_reason(e)), file=out)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if engine is not None:
            engine.join(5.0)
    return 0


def _alert_engine(
    args: argparse.Namespace,
    config: Config,
    dispatcher: AlertDispatcher | None,
    webhooks: WebhookSender | None,
    stop: threading.Event,
) -> None:
    from .core.follow import follow

    with open(os.devnull, "w") as devnull:
        follow(list(args.paths), config, "text", devnull, interval=args.interval, stop=stop,
               dispatcher=dispatcher, webhooks=webhooks, log_format=args.log_format)
