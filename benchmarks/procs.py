"""Subprocesses under measurement: start, wait for readiness, sample RSS and CPU, stop.

Every process of the system under test (API, worker, writer, Celery, operator) runs as its own
OS process, started from the same virtual environment as the benchmark, with its output in a
log file under the results folder so a failed run can be read afterwards.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


class ProcessFailedError(RuntimeError):
    """A process under test exited early or never became ready."""


# Our services' fixed ports are below this; Kubernetes' NodePorts begin at 30000.
_LOWEST = 20_000
_HIGHEST = 29_999


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port() -> int:
    """A free port that no outgoing connection can take before the server binds it. A port
    from bind(0) lies in the kernel's ephemeral range, from which every connect() picks its
    source port: with Kafka and HTTP clients busy beside it (tests run side by side), one
    did, and the server started on it failed with "address already in use". So: below that
    range, and above the fixed ports of this project's services."""
    highest = min(_HIGHEST, _ephemeral_start() - 1)
    for _ in range(200):
        port = random.randint(_LOWEST, highest)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port between {_LOWEST} and {highest}")


def venv_bin(name: str) -> str:
    """A console script of the benchmark's own virtual environment."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.extend(int(child) for child in handle.read().split())
    except OSError:
        return found
    return found


def process_tree(pid: int) -> list[int]:
    """The pid and all its descendants (uvicorn reloaders, Celery prefork children)."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(_children(current))
    return tree


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (not its children)."""
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds consumed so far by one process."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def tree_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(each) for each in process_tree(pid))


def tree_rss_bytes(pid: int) -> int:
    return sum(rss_bytes(each) for each in process_tree(pid))


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    peak_rss: int = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def sample_rss(self) -> int:
        current = tree_rss_bytes(self.pid) if self.alive() else 0
        self.peak_rss = max(self.peak_rss, current)
        return current

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (the graceful drain path), then SIGKILL of the whole tree if it hangs."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                for pid in reversed(process_tree(self.pid)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.popen.wait(5)
        return self.popen.returncode


def start(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> ManagedProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return ManagedProcess(name=name, popen=popen, log_path=log_path)


def wait_http_ready(url: str, proc: ManagedProcess, timeout: float = 180.0) -> float:
    """Poll `url` until it answers 200; returns the seconds it took. Fails with the log tail
    when the process exits or the time runs out."""
    started = time.monotonic()
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() - started < timeout:
            if not proc.alive():
                raise ProcessFailedError(
                    f"{proc.name} exited ({proc.popen.returncode}):\n{proc.log_tail()}"
                )
            try:
                if client.get(url).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise ProcessFailedError(
        f"{proc.name} not ready at {url} after {timeout:.0f}s:\n{proc.log_tail()}"
    )


@dataclass
class RssSampler:
    """Samples every registered process's RSS twice a second, keeping each one's peak."""

    interval: float = 0.5
    processes: list[ManagedProcess] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for proc in list(self.processes):
                proc.sample_rss()


@dataclass
class CpuWindow:
    """CPU seconds used by a set of processes between `begin()` and `end()`."""

    pids: dict[str, int]
    _start: dict[str, float] = field(default_factory=dict)
    _wall: float = 0.0

    def begin(self) -> None:
        self._start = {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}
        self._wall = time.monotonic()

    def end(self) -> dict[str, float]:
        """Cores used on average by each process over the window (1.0 = one full core)."""
        wall = max(time.monotonic() - self._wall, 1e-9)
        return {
            name: round((tree_cpu_seconds(pid) - self._start.get(name, 0.0)) / wall, 3)
            for name, pid in self.pids.items()
        }


def find_pids(fragment: str) -> list[int]:
    """Pids whose command line contains `fragment` (to attribute CPU to Kafka or MariaDB,
    which the infrastructure scripts started)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmdline and int(entry) != os.getpid():
            found.append(int(entry))
    return found
