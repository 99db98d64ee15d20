"""A throwaway OpenSSH server on 127.0.0.1 for the remote-source tests.

Debian's ``sshd`` on a free port with its own host key, a user key in an ``AuthorizedKeysFile``
of the temp dir, and an ``ssh_config`` for the client (``ssh -F``) naming a few aliases of it
(``h1`` ... ``h4``) and one (``badkey``) whose key is not authorized.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def unavailable() -> str | None:
    """Why the tests cannot have an sshd here (None: they can)."""
    if not os.path.exists(SSHD):
        return f"{SSHD} is not installed (.ci/run installs openssh-server)"
    for tool in ("ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if os.geteuid() != 0 and not os.access("/run/sshd", os.W_OK):
        # sshd needs its privilege-separation directory; as a user it may still run if present.
        if not os.path.isdir("/run/sshd"):
            return "sshd needs /run/sshd (run as root, or create it)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    root: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.root / "ssh_config"

    @property
    def ssh_command(self) -> str:
        return f"ssh -F {self.config}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.root / "sshd_config")],
            stdout=subprocess.DEVNULL, stderr=open(self.root / "sshd.err", "ab"),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start: " + (self.root / "sshd.err").read_text())

    def stop(self) -> None:
        """Stop sshd and every session it started (a reboot, as the client sees it)."""
        if self.proc is None:
            return
        kids = self.session_pids()
        self.proc.kill()
        self.proc.wait(timeout=5)
        self.proc = None
        for pid in kids:  # the per-connection processes outlive the listener: end them too
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def freeze(self) -> list[int]:
        """SIGSTOP the sessions: a network that hangs without a reset, as the client sees it."""
        pids = self.session_pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    def session_pids(self) -> list[int]:
        """The processes this sshd started (by parent id: nothing else on the machine)."""
        if self.proc is None:
            return []
        parents: dict[int, int] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        parents[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    pass
        found: list[int] = []
        todo = [self.proc.pid]
        while todo:
            p = todo.pop()
            kids = [c for c, pp in parents.items() if pp == p]
            found.extend(kids)
            todo.extend(kids)
        return found


def make_server(root: Path) -> Server:
    root.mkdir(parents=True, exist_ok=True)
    os.makedirs("/run/sshd", exist_ok=True) if os.geteuid() == 0 else None
    for name in ("host_key", "user_key", "other_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
    (root / "authorized_keys").write_text((root / "user_key.pub").read_text())
    port = _free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root}/host_key\n"
        f"AuthorizedKeysFile {root}/authorized_keys\nStrictModes no\nUsePAM no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        f"PidFile {root}/sshd.pid\nLogLevel ERROR\nMaxSessions 64\nMaxStartups 64\n"
    )
    host_pub = (root / "host_key.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    user = getpass.getuser()
    common = (
        f"  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {root}/known_hosts\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n"
    )
    (root / "ssh_config").write_text(
        f"Host badkey\n{common}  IdentityFile {root}/other_key\n\n"
        f"Host h1 h2 h3 h4 127.0.0.1\n{common}  IdentityFile {root}/user_key\n"
    )
    return Server(root, port)
