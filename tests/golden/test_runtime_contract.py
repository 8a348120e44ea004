"""The runtime's side of the operator contract: a worker started with an engine its image
lacks stops with a message naming the mismatch; with OCR_KAFKA_CREATE_TOPICS off a process
waits for its topics, saying which are missing, instead of creating them; concurrent
migrations of one database are serialised."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from ocr_runtime.adapters.engines import engine_mismatch
from ocr_runtime.adapters.kafka import delete_topics, ensure_topics
from ocr_runtime.bootstrap import _dataplane as dp
from ocr_runtime.bootstrap import cli
from ocr_runtime.core.settings import Device, EngineKind, Mode, Settings


def _only(*present: str) -> object:
    return lambda name: name in present


@pytest.mark.parametrize(
    ("kind", "device", "present", "missing"),
    [
        (EngineKind.PADDLE, Device.CPU, ("rapidocr", "onnxruntime"), "paddleocr"),
        (EngineKind.ONNX, Device.GPU, ("rapidocr", "onnxruntime"), "onnxruntime-gpu"),
        (EngineKind.PADDLE, Device.GPU, ("paddleocr", "paddlepaddle"), "paddlepaddle-gpu"),
    ],
)
def test_engine_mismatch_names_what_is_missing_and_the_variant_to_run(
    kind: EngineKind, device: Device, present: tuple[str, ...], missing: str
) -> None:
    message = engine_mismatch(kind, device, installed=lambda n: n in present)
    assert message is not None
    assert message.startswith("engine mismatch:")
    assert f"OCR_ENGINE={kind.value} OCR_DEVICE={device.value}" in message
    assert missing in message
    assert message.endswith(f"variant {kind.value}{'-gpu' if device is Device.GPU else ''}")


def test_engines_in_the_image_and_noop_pass() -> None:
    cpu_onnx = {"rapidocr", "onnxruntime"}
    assert engine_mismatch(EngineKind.ONNX, Device.CPU, installed=cpu_onnx.__contains__) is None
    assert engine_mismatch(EngineKind.NOOP, Device.GPU, installed=lambda _: False) is None
    gpu_onnx = {"rapidocr", "onnxruntime-gpu"}
    assert engine_mismatch(EngineKind.ONNX, Device.CPU, installed=gpu_onnx.__contains__) is None


def test_worker_with_a_missing_engine_exits_with_the_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "termination-log"
    monkeypatch.setattr(cli, "TERMINATION_LOG", log)
    monkeypatch.setattr(
        "ocr_runtime.adapters.engines.engine_mismatch", lambda kind, device: "engine mismatch: x"
    )
    with pytest.raises(SystemExit) as stopped:
        cli.check_engine("worker", Settings())
    assert stopped.value.code == cli.EXIT_ENGINE_MISMATCH
    assert log.read_text() == "engine mismatch: x"
    assert "engine mismatch: x" in capsys.readouterr().err
    cli.check_engine("api", Settings())  # the API loads no model: no check


def test_needed_topics_follow_the_mode() -> None:
    standard = Settings(jobs_topic="j", results_topic="r", dead_letter_topic="d")
    assert dp.needed_topics(standard) == ["j", "d"]
    writer = standard.model_copy(update={"mode": Mode.WRITER})
    assert dp.needed_topics(writer) == ["j", "r", "d"]


@pytest.mark.integration
async def test_process_waits_for_missing_topics_and_names_them(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = f"golden-wait-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        kafka_create_topics=False,
        jobs_topic=f"{prefix}-jobs",
        results_topic=f"{prefix}-results",
        dead_letter_topic=f"{prefix}-dlq",
    )
    await ensure_topics(kafka_bootstrap, [settings.dead_letter_topic], partitions=1)
    polls = 0

    async def sleep(_: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 2:  # the topic's owner creates it while the process waits
            await ensure_topics(kafka_bootstrap, [settings.jobs_topic], partitions=1)

    try:
        with caplog.at_level(logging.INFO, logger=dp.__name__):
            await asyncio.wait_for(dp.prepare_topics(settings, sleep=sleep), timeout=60)
        assert polls == 2
        waiting = [r.getMessage() for r in caplog.records if "waiting for Kafka" in r.message]
        assert len(waiting) == 1  # said once, not at every poll
        assert settings.jobs_topic in waiting[0]
        assert settings.dead_letter_topic not in waiting[0]
        assert settings.results_topic not in waiting[0]  # standard mode does not use it
    finally:
        await delete_topics(kafka_bootstrap, [settings.jobs_topic, settings.dead_letter_topic])


async def _database(url: str, statement: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.mark.integration
async def test_concurrent_migrations_of_a_fresh_database_all_succeed(mysql_url: str) -> None:
    """Three `ocr-runtime migrate` processes at once on an empty database (what two stacks,
    or two image versions rolling, do): the named lock lets one migrate, the others find the
    schema at head."""
    name = f"golden_{uuid.uuid4().hex[:8]}"
    url = make_url(mysql_url)
    await _database(mysql_url, f"CREATE DATABASE {name}")
    fresh = url.set(database=name).render_as_string(hide_password=False)
    try:
        env = {**os.environ, "OCR_DATABASE_URL": fresh}
        command = [sys.executable, "-m", "ocr_runtime.bootstrap", "migrate"]
        processes = [
            await asyncio.create_subprocess_exec(*command, env=env, stderr=asyncio.subprocess.PIPE)
            for _ in range(3)
        ]
        results = [await asyncio.wait_for(p.communicate(), timeout=300) for p in processes]
        failures = [
            err.decode()[-2000:]
            for process, (_, err) in zip(processes, results, strict=True)
            if process.returncode != 0
        ]
        assert not failures, failures
    finally:
        await _database(mysql_url, f"DROP DATABASE {name}")
