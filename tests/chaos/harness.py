"""Chaos harness: a supervised data plane (a dead process is started again on the same port,
as a Deployment would), a client that submits seeded images with Idempotency-Keys and
retries like a real client, fault injectors (SIGKILL of a role, broker restart, MariaDB
restart through the infra scripts) and the judge, for which the database is the truth."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa

from tests.dataplane.conftest import Stack
from tests.dataplane.faults import CRASH_MARKER, seeded_png
from tests.dataplane.support import (
    INFRA_SCRIPT,
    LOCAL,
    REPO_ROOT,
    RuntimeProcess,
    read_topic,
    restart_broker,
    wait_until,
)

MARIADB_PID_FILE = LOCAL / "run" / "mariadb.pid"
# Generous: on a loaded 2-core machine a Python process takes a minute to start.
START_TIMEOUT_S = 300.0
ENGINE = {"OCR_ENGINE": "synthetic", "OCR_MAX_ATTEMPTS": "3", "OCR_DRAIN_SECONDS": "10"}


class Plane:
    """One process per role, kept alive by a supervisor thread."""

    def __init__(self, stack: Stack, mode: str) -> None:
        self.stack = stack
        self.mode = mode
        self.roles = ["api", "worker"] + (["writer"] if mode == "writer" else [])
        self.processes: dict[str, RuntimeProcess] = {}
        self.restarts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, daemon=True)

    def start(self) -> Plane:
        for role in self.roles:
            self.processes[role] = self._spawn(role, None)
        for process in self.processes.values():
            process.wait_ready(timeout=START_TIMEOUT_S)
        self._thread.start()
        return self

    @property
    def api_url(self) -> str:
        return self.processes["api"].url

    def _spawn(self, role: str, port: int | None) -> RuntimeProcess:
        name = f"{self.stack.tag}-chaos-{role}-{self.restarts[role]}"
        env = self.stack.env(self.mode, **ENGINE)
        process = RuntimeProcess(role, env, name)
        if port is not None:
            process.port = port  # clients keep their address across restarts
        self.stack.processes.append(process.start())
        return process

    def _supervise(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                for role, process in list(self.processes.items()):
                    assert process.popen is not None
                    if process.popen.poll() is not None:
                        self.restarts[role] += 1
                        self.processes[role] = self._spawn(role, process.port)

    def kill(self, role: str) -> None:
        with self._lock:
            process = self.processes[role]
            assert process.popen is not None
            if process.popen.poll() is None:
                with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                    process.kill9()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


class Client:
    """Submits each seed once, under its own Idempotency-Key, retrying 5xx, 429 and network
    errors like a patient client; remembers the job id of the last 202 per seed."""

    def __init__(self, plane: Plane, seeds: list[int], poison: int, pace_s: float) -> None:
        self._plane = plane
        self._seeds = seeds
        self._poison = poison
        self._pace_s = pace_s
        self.accepted: dict[int, str] = {}
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Client:
        self._thread.start()
        return self

    def join(self, timeout: float = 600.0) -> dict[int, str]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the client is still submitting"
        if self.error is not None:
            raise self.error
        return self.accepted

    def _run(self) -> None:
        try:
            asyncio.run(self._submit_all())
        except BaseException as exc:
            self.error = exc

    async def _submit_all(self) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for seed in self._seeds:
            queue.put_nowait(seed)
        async with httpx.AsyncClient(timeout=20.0) as http:
            await asyncio.gather(*(self._drain(http, queue) for _ in range(6)))

    async def _drain(self, http: httpx.AsyncClient, queue: asyncio.Queue[int]) -> None:
        while not queue.empty():
            seed = queue.get_nowait()
            await self._submit(http, seed)
            await asyncio.sleep(self._pace_s)

    async def _submit(self, http: httpx.AsyncClient, seed: int) -> None:
        marker = CRASH_MARKER if seed == self._poison else None
        image = seeded_png(seed, marker)
        headers = {"Idempotency-Key": f"chaos-{seed}"}
        for _ in range(600):
            try:
                response = await http.post(
                    self._plane.api_url + "/v1/jobs", headers=headers,
                    files={"image": (f"{seed}.png", image, "image/png")},
                )  # fmt: skip
            except httpx.HTTPError:
                await asyncio.sleep(0.5)
                continue
            if response.status_code == 202:
                self.accepted[seed] = response.json()["job_id"]
                return
            assert response.status_code >= 429, response.text
            await asyncio.sleep(0.5)
        raise AssertionError(f"seed {seed} never accepted")


def restart_mariadb(down_s: float = 1.0) -> None:
    """Stop the local MariaDB (SIGTERM to the pid the infra scripts wrote) and start it
    again through `infra.sh up`, which waits until it serves."""
    pid = int(MARIADB_PID_FILE.read_text().strip())
    os.kill(pid, signal.SIGTERM)

    def gone() -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
        except OSError:
            return True

    wait_until(gone, 60.0, "MariaDB to stop", interval=0.2)
    time.sleep(down_s)
    done = subprocess.run(
        [str(INFRA_SCRIPT), "up"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"infra.sh up failed: {done.stderr[-2000:]}"


@dataclass
class Faults:
    """Runs the fault schedule in a thread, one fault every `every_s`, in a shuffled order."""

    plane: Plane
    kinds: list[str]
    every_s: float
    injected: Counter[str] = field(default_factory=Counter)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Faults:
        self._thread.start()
        return self

    def join(self) -> Counter[str]:
        self._thread.join(900)
        if self.error is not None:
            raise self.error
        return self.injected

    def _run(self) -> None:
        try:
            for kind in self.kinds:
                time.sleep(self.every_s)
                self._inject(kind)
                self.injected[kind] += 1
        except BaseException as exc:
            self.error = exc

    def _inject(self, kind: str) -> None:
        if kind == "broker restart":
            restart_broker(down_s=1.0)
        elif kind == "mariadb restart":
            restart_mariadb()
        else:
            self.plane.kill(kind.removeprefix("kill "))


def schedule(mode: str, rng: random.Random) -> list[str]:
    kills = ["kill api", "kill api", "kill worker", "kill worker", "kill worker"]
    if mode == "writer":
        kills += ["kill writer", "kill writer"]
    rng.shuffle(kills)
    middle = len(kills) // 2
    return [*kills[:middle], "broker restart", *kills[middle:], "mariadb restart"]


@dataclass
class Verdict:
    mode: str
    jobs: int
    faults: int
    lost: int
    duplicated: int
    stuck: int
    wrong_text: int
    dead_letters_ok: bool
    worker_restarts: int
    # The first lost jobs: (seed, job id, status, error code), to say what happened to them.
    lost_jobs: list[tuple[int, str, str | None, str | None]] = field(default_factory=list)

    def row(self) -> str:
        return (
            f"| {self.mode} | {self.jobs} | {self.faults} | {self.lost} | {self.duplicated} "
            f"| {self.stuck} |"
        )


def judge(
    stack: Stack, mode: str, accepted: dict[int, str], *, poison: int, faults: int, restarts: int
) -> Verdict:
    """The database decides: every accepted job succeeded once with its own text (the
    poison job failed), nothing is left queued or running, the DLQ holds the poison only."""
    with stack.db.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT job_id, status, result, error_code, image_sha256 FROM jobs")
        ).all()
    by_id = {r.job_id: r for r in rows}
    lost = wrong = 0
    lost_jobs: list[tuple[int, str, str | None, str | None]] = []
    for seed, job_id in accepted.items():
        row = by_id.get(job_id)
        expected = ("failed", "attempts_exhausted") if seed == poison else ("succeeded", None)
        if row is None or (row.status, row.error_code) != expected:
            lost += 1
            found = (None, None) if row is None else (row.status, row.error_code)
            lost_jobs.append((seed, job_id, *found))
        elif seed != poison and f'"seed {seed}"' not in str(row.result):
            wrong += 1
    # One image, one finished job: another succeeded row for the same image is a duplicate.
    finished = Counter(r.image_sha256 for r in rows if r.status == "succeeded")
    duplicated = sum(n - 1 for n in finished.values() if n > 1)
    stuck = sum(1 for r in rows if r.status in ("queued", "running"))
    letters = asyncio.run(read_topic(stack.bootstrap, stack.topics.dead_letters, timeout_s=3.0))
    dead = {headers.get("ocr-job_id", b"").decode() for _, _, headers in letters}
    return Verdict(mode, len(accepted), faults, lost, duplicated, stuck, wrong,
                   dead == {accepted[poison]}, restarts, lost_jobs[:10])  # fmt: skip
