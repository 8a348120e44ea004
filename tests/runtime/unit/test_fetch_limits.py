"""How long the broker may hold a consumer's fetch (never longer than a batch would wait), and
how long a producer gathers records before it sends them."""

from __future__ import annotations

from ocr_contract import Role
from ocr_runtime.bootstrap._dataplane import (
    BATCH_FETCH_MIN_BYTES,
    IMMEDIATE_FETCH,
    fetch_limits,
    producer_options,
)
from ocr_runtime.bootstrap.worker_role import _job_source
from ocr_runtime.core.settings import Mode, Settings


def test_a_consumer_without_a_batch_wait_is_answered_at_once() -> None:
    assert fetch_limits(0) == IMMEDIATE_FETCH == (1, 100)


def test_a_batching_consumer_lets_the_broker_gather_for_at_most_the_batch_wait() -> None:
    assert fetch_limits(20) == (BATCH_FETCH_MIN_BYTES, 20)
    assert fetch_limits(250) == (BATCH_FETCH_MIN_BYTES, 250)


def test_the_worker_consumer_follows_its_mode() -> None:
    for mode, expected in ((Mode.STANDARD, (1, 100)), (Mode.BATCHED, (BATCH_FETCH_MIN_BYTES, 35))):
        options = _job_source(Settings(mode=mode, batch_max_wait_ms=35)).options
        assert (options.fetch_min_bytes, options.fetch_max_wait_ms) == expected, mode


def test_a_worker_tuning_to_a_latency_target_is_answered_at_once() -> None:
    settings = Settings(mode=Mode.BATCHED, batch_max_wait_ms=35, batch_latency_target_ms=200)
    options = _job_source(settings).options
    assert (options.fetch_min_bytes, options.fetch_max_wait_ms) == IMMEDIATE_FETCH


def test_only_the_api_producer_gathers_job_messages() -> None:
    settings = Settings(kafka_job_linger_ms=7)
    assert producer_options(settings, Role.API).linger_ms == 7
    # A worker or writer sends a whole batch at once: a linger would only delay it.
    for role in (Role.WORKER, Role.WRITER):
        assert producer_options(settings, role).linger_ms == 0, role


def test_the_api_lingers_as_kafka_producers_do_by_default() -> None:
    assert producer_options(Settings(), Role.API).linger_ms == 5
