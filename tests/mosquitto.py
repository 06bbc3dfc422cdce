"""A private Mosquitto for tests and benchmarks: free port, config in a temp dir, optional auth."""

from __future__ import annotations

import getpass
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path


LOWEST_PORT = 10000


def free_port() -> int:
    """A port nothing listens on, below the kernel's ephemeral range: a port the kernel hands out
    (bind to 0) may be handed out again to an outgoing connection before the process under test
    binds it (an agent once found its HTTP port taken so), one below that range never is."""
    low = ephemeral_ports()[0]
    for _ in range(200 if low > LOWEST_PORT + 1000 else 0):
        port = random.randrange(LOWEST_PORT, low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # every try taken: the kernel's choice
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ephemeral_ports() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux; its default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise RuntimeError("mosquitto is not installed: run `make test`, which installs it")
    return found


class Mosquitto:
    def __init__(self, workdir: Path, port: int | None = None, users: dict[str, str] | None = None,
                 nodelay: bool = True, acl: str | None = None) -> None:
        """``nodelay=False``: Mosquitto as installed (``set_tcp_nodelay false``), for the bench;
        ``acl``: the text of an ``acl_file`` (needs ``users``)."""
        self.workdir = workdir
        self.port = port or free_port()
        self.users = users or {}
        self.nodelay = nodelay
        self.acl = acl
        self.process: subprocess.Popen[bytes] | None = None

    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # As root, mosquitto would switch to its own user and lose access to the temp dir.
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", f"user {getpass.getuser()}"]
        if self.nodelay:
            lines.append("set_tcp_nodelay true")
        if self.users:
            passwd = self.workdir / "passwd"
            passwd.write_text("")
            for user, password in self.users.items():
                subprocess.run(
                    [shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-b", str(passwd), user, password],
                    check=True, capture_output=True,
                )
            passwd.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
            if self.acl is not None:
                acl = self.workdir / "acl"
                acl.write_text(self.acl)
                acl.chmod(0o600)
                lines.append(f"acl_file {acl}")
        else:
            lines.append("allow_anonymous true")
        config = self.workdir / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self) -> "Mosquitto":
        config = self._write_config()
        log = open(self.workdir / "mosquitto.log", "ab")
        self.process = subprocess.Popen([mosquitto_binary(), "-c", str(config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(self.workdir / 'mosquitto.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
