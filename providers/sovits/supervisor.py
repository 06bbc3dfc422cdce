"""One GPT-SoVITS server as a child process of the agent: started in its install folder, its
output appended to ``logs/run/sovits-server.log``, ready once it answers HTTP, restarted with
growing pauses when it dies, and stopped (with its own children) when asked or when the agent stops.
"""

from __future__ import annotations

import http.client
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STOP_GRACE = 10.0
PROBE_INTERVAL = 0.2
LOG_ROTATE_BYTES = 10 * 1024 * 1024

Listener = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class RestartPolicy:
    first_pause: float = 1.0  # seconds before the first restart; doubles up to max_pause
    max_pause: float = 60.0
    healthy_run: float = 60.0  # a server that ran this long starts over at first_pause
    max_failed_starts: int = 5  # consecutive deaths before answering even once: give up


@dataclass(frozen=True)
class ServerCommand:
    argv: tuple[str, ...]
    cwd: Path
    host: str
    port: int
    start_timeout: float

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when an HTTP server answers there. GPT-SoVITS only listens once its models are loaded,
    so any answer (404 for this made-up path) means ready; the path touches nothing on the server."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/voice-agent-probe")
        conn.getresponse().read(1024)
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class ServerSupervisor:
    """Runs and watches one server command; every public method returns quickly except
    ``wait_ready`` and ``stop``, which wait at most as long as they are told."""

    def __init__(
        self, command: ServerCommand, log_path: Path, listener: Listener | None = None, policy: RestartPolicy | None = None
    ) -> None:
        self.command = command
        self.policy = policy or RestartPolicy()
        self.log_path = log_path
        self.pid_path = log_path.parent / f"sovits-server-{command.port}.pid"
        self._listener = listener
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._state = "stopped"
        self._error: str | None = None
        self._restarts = 0
        self._last_exit: int | None = None
        self._since = time.time()

    # -- control ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start supervising unless already doing so. A server that already answers at the
        address and is not ours is left alone and reported as ``external``."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
        _stop_stale(self.pid_path, self.command.argv)
        if answers(self.command.host, self.command.port):
            self._set("external", None)
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._ready.clear()
            self._restarts = 0
            self._last_exit = None
            thread = self._thread = threading.Thread(
                target=self._supervise, name=f"sovits-server-{self.command.port}", daemon=True
            )
        self._set("starting", None)  # before the thread runs: wait_ready must not see "stopped"
        thread.start()

    def stop(self, timeout: float = STOP_GRACE) -> None:
        """Stop the server and its children: SIGTERM, then SIGKILL after ``timeout``."""
        with self._lock:
            thread, process = self._thread, self._process
            self._stopping.set()
        if process is not None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("GPT-SoVITS server did not stop within %g s; killing it", timeout)
                _signal_group(process, signal.SIGKILL)
                process.wait()
        if thread is not None:
            thread.join(timeout + 5)
        if self.state == "external":
            self._set("stopped", None)

    def wait_ready(self, timeout: float) -> bool:
        """True once the server answers; False when it is not coming (stopped, failed) or time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready.is_set() or self.state == "external":
                return True
            if self.state in ("stopped", "failed"):
                return False
            self._ready.wait(min(PROBE_INTERVAL, max(0.0, deadline - time.monotonic())))
        return self._ready.is_set()

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    @property
    def active(self) -> bool:
        """Running, starting or waiting to restart (not stopped, failed or external)."""
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        with self._lock:
            process = self._process
            return {
                "state": self._state,
                "url": self.command.url,
                "pid": process.pid if process is not None and process.poll() is None else None,
                "restarts": self._restarts,
                "last_exit_code": self._last_exit,
                "error": self._error,
                "since": round(self._since, 3),
                "log": str(self.log_path),
                "command": list(self.command.argv),
                "cwd": str(self.command.cwd),
            }

    # -- the watching thread -------------------------------------------------------------------
    def _supervise(self) -> None:
        policy = self.policy
        pause = policy.first_pause
        failed_starts = 0
        while not self._stopping.is_set():
            self._set("starting", None)
            try:
                process = self._spawn()
            except OSError as exc:
                self._set("failed", f"cannot run {self.command.argv[0]}: {exc.strerror or exc}")
                return
            started = time.monotonic()
            became_ready = self._await_ready(process)
            if became_ready:
                failed_starts = 0
            code = process.wait()
            self._ready.clear()
            with self._lock:
                self._process = None
                self._last_exit = code
            self.pid_path.unlink(missing_ok=True)
            if self._stopping.is_set():
                break
            failed_starts += 0 if became_ready else 1
            if failed_starts >= policy.max_failed_starts:
                self._note(f"server exited {failed_starts} times without answering; giving up")
                self._set("failed", f"exited {failed_starts} times (last code {code}) before answering: see {self.log_path}")
                return
            if time.monotonic() - started >= policy.healthy_run:
                pause = policy.first_pause
            with self._lock:
                self._restarts += 1
            self._note(f"server exited with code {code}; restarting in {pause:g} s")
            self._set("restarting", f"exited with code {code}; restarting in {pause:g} s")
            if self._stopping.wait(pause):
                break
            pause = min(pause * 2, policy.max_pause)
        self._set("stopped", None)

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        _rotate(self.log_path)
        with open(self.log_path, "ab") as out:
            out.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} voice-agent starts: {' '.join(self.command.argv)} "
                      f"(in {self.command.cwd})\n".encode())
            out.flush()
            process = subprocess.Popen(
                self.command.argv, cwd=self.command.cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,  # its own group: stop takes its children too
            )
        with self._lock:
            self._process = process
            stopping = self._stopping.is_set()
        if stopping:  # stop() came while we were spawning: it could not see this process
            _signal_group(process, signal.SIGTERM)
        self.pid_path.write_text(f"{process.pid}\n")
        log.info("started GPT-SoVITS server (pid %d): %s", process.pid, " ".join(self.command.argv))
        return process

    def _await_ready(self, process: subprocess.Popen[bytes]) -> bool:
        deadline = time.monotonic() + self.command.start_timeout
        while not self._stopping.is_set() and process.poll() is None:
            if answers(self.command.host, self.command.port, timeout=1.0):
                self._set("running", None)
                self._ready.set()
                return True
            if time.monotonic() > deadline:
                self._note(f"server did not answer within {self.command.start_timeout:g} s (tts.sovits.startTimeout); stopping it")
                _signal_group(process, signal.SIGTERM)
                try:
                    process.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    _signal_group(process, signal.SIGKILL)
                return False
            self._stopping.wait(PROBE_INTERVAL)
        return False

    def _set(self, state: str, error: str | None) -> None:
        with self._lock:
            changed = state != self._state or error != self._error
            self._state, self._error = state, error
            if changed:
                self._since = time.time()
        if changed:
            (log.warning if state in ("failed", "restarting") else log.info)(
                "GPT-SoVITS server %s: %s%s", self.command.url, state, f" ({error})" if error else ""
            )
            if self._listener is not None:
                try:
                    self._listener(self.status())
                except Exception:
                    log.exception("GPT-SoVITS status listener failed")

    def _note(self, line: str) -> None:
        """A line of our own in the server's log, so the log tells the whole story."""
        try:
            with open(self.log_path, "ab") as out:
                out.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} voice-agent: {line}\n".encode())
        except OSError:
            pass


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _rotate(path: Path) -> None:
    try:
        if path.stat().st_size > LOG_ROTATE_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    except OSError:
        pass


def _stop_stale(pid_path: Path, argv: tuple[str, ...]) -> None:
    """A server left behind by an agent that died without stopping it: ours if its command
    line is exactly ours, then it is stopped so this agent can supervise a fresh one."""
    try:
        pid = int(pid_path.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except (OSError, ValueError, IndexError):
        pid_path.unlink(missing_ok=True)
        return
    if [part.decode(errors="replace") for part in cmdline] != list(argv):
        pid_path.unlink(missing_ok=True)
        return
    log.warning("stopping GPT-SoVITS server %d left behind by an earlier agent", pid)
    for sig, wait in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.1)
    pid_path.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited process nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
