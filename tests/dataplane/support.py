"""Test support of the data-plane suite: the runtime's processes as real subprocesses
(`uv run --frozen ocr-runtime <role>`), a load generator through the HTTP API, database and
topic inspection, and a broker restart through the infra scripts' pid file."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from PIL import Image

from tests.support.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL = REPO_ROOT / ".local"
LOG_DIR = LOCAL / "logs" / "dataplane"
KAFKA_PID_FILE = LOCAL / "run" / "kafka.pid"
INFRA_SCRIPT = REPO_ROOT / "scripts" / "infra" / "infra.sh"

START_TIMEOUT_S = 90.0
DONE_TIMEOUT_S = 120.0


def wait_until(predicate: object, timeout: float, what: str, interval: float = 0.1) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except sa.exc.OperationalError:
            pass  # the database restarting under us: ask again
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    """Child pids of `pid`, whichever of its threads started them."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return found


@dataclass
class RuntimeProcess:
    """One `uv run --frozen ocr-runtime <role>` process and its HTTP port."""

    role: str
    env: dict[str, str]
    name: str
    port: int = field(default_factory=free_port)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return LOG_DIR / f"{self.name}.log"

    def start(self) -> RuntimeProcess:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "OCR_HTTP_PORT": str(self.port)}
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            ["uv", "run", "--frozen", "ocr-runtime", self.role],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> RuntimeProcess:
        def ready() -> bool:
            if self.popen is not None and self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.popen.returncode}: {self.tail()}")
            return _http_status(self.url + "/readyz") == 200

        wait_until(ready, timeout, f"{self.name} ready")
        return self

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=3.0) as response:
            return str(response.read().decode())

    def kill9(self) -> None:
        """SIGKILL the runtime itself (uv's child): no drain, no commit, no goodbye."""
        assert self.popen is not None
        children = _children(self.popen.pid)
        assert children, f"{self.name}: no runtime process under uv"
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM (uv forwards it to the runtime) and wait; returns the exit code."""
        assert self.popen is not None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            try:
                self.terminate(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def png(seed: int, size: tuple[int, int] = (48, 24)) -> bytes:
    """A small distinct PNG (the pixel pattern encodes the seed)."""
    image = Image.new("RGB", size, "white")
    for bit in range(24):
        if seed >> bit & 1:
            image.putpixel((bit % size[0], bit // size[0]), (0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def submit_jobs(
    api_url: str,
    count: int,
    *,
    concurrency: int = 16,
    retries: int = 120,
    sink: list[str] | None = None,
    pause_s: float = 0.0,
    stop: threading.Event | None = None,
) -> list[str]:
    """POST `count` images; returns the job ids accepted (202), also appended to `sink` as
    they come. A 5xx (queue briefly away during a broker restart) is retried after a pause,
    like a client would."""
    ids: list[str] = sink if sink is not None else []
    start = int(time.time() * 1000) % 1_000_000 * 1000
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(start, start + count):
        queue.put_nowait(n)

    async def one(client: httpx.AsyncClient, n: int) -> None:
        for _ in range(retries):
            try:
                response = await client.post(
                    "/v1/jobs", files={"image": (f"{n}.png", png(n), "image/png")}
                )
            except httpx.TransportError:
                await asyncio.sleep(0.5)
                continue
            if response.status_code == 202:
                ids.append(response.json()["job_id"])
                return
            assert response.status_code >= 500, response.text
            await asyncio.sleep(0.5)
        raise AssertionError(f"job {n} never accepted")

    async def drain(client: httpx.AsyncClient) -> None:
        while not queue.empty() and not (stop is not None and stop.is_set()):
            await one(client, queue.get_nowait())
            if pause_s:
                await asyncio.sleep(pause_s)

    async with httpx.AsyncClient(base_url=api_url, timeout=60.0) as client:
        await asyncio.gather(*(drain(client) for _ in range(concurrency)))
    return ids


@dataclass
class Database:
    """A fresh MariaDB database for one test (sync access for the checks)."""

    async_url: str
    engine: sa.Engine

    @classmethod
    def create(cls, server_url: str) -> Database:
        name = f"dp_{uuid.uuid4().hex[:12]}"
        base = sa.make_url(server_url)
        admin = sa.create_engine(base.set(drivername="mysql+pymysql"))
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        admin.dispose()
        async_url = base.set(database=name).render_as_string(hide_password=False)
        engine = sa.create_engine(
            base.set(drivername="mysql+pymysql", database=name), pool_pre_ping=True
        )
        return cls(async_url, engine)

    def drop(self) -> None:
        name = self.engine.url.database
        with self.engine.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        self.engine.dispose()

    def statuses(self, job_ids: Sequence[str] | None = None) -> Counter[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT job_id, status FROM jobs")).all()
        wanted = None if job_ids is None else set(job_ids)
        return Counter(r.status for r in rows if wanted is None or r.job_id in wanted)

    def rows(self) -> dict[str, sa.Row[tuple[object, ...]]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT job_id, status, attempts, result, error_code FROM jobs")
            ).all()
        return {str(r.job_id): r for r in rows}

    def count_done(self, job_ids: Sequence[str]) -> int:
        s = self.statuses(job_ids)
        return s["succeeded"] + s["failed"]

    def wait_all_done(self, job_ids: Sequence[str], timeout: float = DONE_TIMEOUT_S) -> None:
        wait_until(
            lambda: self.count_done(job_ids) >= len(job_ids),
            timeout,
            f"{len(job_ids)} jobs finished (now {dict(self.statuses(job_ids))})",
            interval=0.25,
        )


def assert_exactly_one_result_each(db: Database, job_ids: Sequence[str]) -> None:
    """Every accepted job has one row, succeeded with its result. Any other row is a
    submission the API refused (503 while the queue was away): failed, never left behind."""
    assert len(set(job_ids)) == len(job_ids), "the API returned a job id twice"
    rows = db.rows()
    missing = set(job_ids) - set(rows)
    assert not missing, f"{len(missing)} accepted jobs lost"
    accepted = {j: rows[j] for j in job_ids}
    bad = {j: (r.status, r.error_code) for j, r in accepted.items() if r.status != "succeeded"}
    assert not bad, f"{len(bad)} jobs did not succeed: {list(bad.items())[:5]}"
    assert all(r.result is not None for r in accepted.values()), "a job lacks its result"
    refused = {j: (r.status, r.error_code) for j, r in rows.items() if j not in accepted}
    assert all(v == ("failed", "queue_unavailable") for v in refused.values()), refused


class Load:
    """Submits jobs through the API from a background thread, optionally at a steady pace
    until stopped."""

    def __init__(
        self, api_url: str, count: int, *, concurrency: int = 8, pause_s: float = 0.0
    ) -> None:
        self._api_url = api_url
        self._count = count
        self._concurrency = concurrency
        self._pause_s = pause_s
        self.stopping = threading.Event()
        self.ids: list[str] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.ids = asyncio.run(
                submit_jobs(self._api_url, self._count, concurrency=self._concurrency,
                            sink=self.ids, pause_s=self._pause_s, stop=self.stopping)
            )  # fmt: skip
        except BaseException as exc:
            self._error = exc

    def stop(self) -> list[str]:
        self.stopping.set()
        return self.join()

    def join(self, timeout: float = 300.0) -> list[str]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "load generator still running"
        if self._error is not None:
            raise self._error
        return self.ids


@dataclass(frozen=True)
class Topics:
    jobs: str
    results: str
    dead_letters: str

    @classmethod
    def unique(cls) -> Topics:
        tag = uuid.uuid4().hex[:10]
        return cls(f"dp-{tag}-jobs", f"dp-{tag}-results", f"dp-{tag}-dlq")


async def read_topic(bootstrap: str, topic: str, timeout_s: float = 5.0) -> list[
    tuple[bytes | None, bytes, dict[str, bytes]]
]:  # fmt: skip
    """Every record of a topic from the beginning: (key, value, headers)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    try:
        partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        out: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = all([await consumer.position(tp) >= end for tp, end in ends.items()])
            if done:
                break
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                out.extend((r.key, r.value, dict(r.headers)) for r in records)
        return out
    finally:
        await consumer.stop()


async def produce_raw(bootstrap: str, topic: str, values: Sequence[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


def restart_broker(down_s: float = 2.0) -> None:
    """Stop the local Kafka broker (SIGTERM to the pid in .local/run/kafka.pid, as the infra
    scripts do) and start it again through `infra.sh up`, which waits until it serves."""
    pid = int(KAFKA_PID_FILE.read_text().strip())
    os.kill(pid, signal.SIGTERM)

    def gone() -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except OSError:
            return True
        return state == "Z"

    wait_until(gone, 60.0, "the Kafka broker to stop", interval=0.2)
    time.sleep(down_s)
    done = subprocess.run(
        [str(INFRA_SCRIPT), "up"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"infra.sh up failed: {done.stderr[-2000:]}"


def metric_value(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        if labels and not all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            continue
        total += float(value)
    return total
