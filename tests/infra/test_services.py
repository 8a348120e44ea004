"""Smoke tests: each local service does real work (Kafka, MariaDB, Redis, Prometheus,
MLflow, S3)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import S3Server, TargetsSetter
from tests.support.s3 import Bucket

pytestmark = pytest.mark.integration

SMOKE_METRIC = "ocr_infra_smoke_value"
QUERY_TIMEOUT_S = 30.0


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def test_kafka_produce_and_consume(kafka_bootstrap: str) -> None:
    topic = _unique("infra-smoke")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"k1")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=_unique("infra-smoke-group"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=60)
        await consumer.commit()
        committed = await consumer.committed(TopicPartition(record.topic, record.partition))
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (b"k1", b"hello")
    assert committed == record.offset + 1


async def test_mariadb_create_and_query_table(mysql_url: str) -> None:
    database = _unique("infra_smoke")
    admin = create_async_engine(mysql_url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f"CREATE DATABASE `{database}`"))
        engine = create_async_engine(make_url(mysql_url).set(database=database))
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text("CREATE TABLE item (id INT PRIMARY KEY, name VARCHAR(32) NOT NULL)")
                )
                await conn.execute(
                    text("INSERT INTO item VALUES (:id, :name)"),
                    [{"id": 1, "name": "영수증"}, {"id": 2, "name": "invoice"}],
                )
            async with engine.connect() as conn:
                result = await conn.execute(text("SELECT id, name FROM item ORDER BY id"))
                rows = [tuple(row) for row in result]
        finally:
            await engine.dispose()
        assert rows == [(1, "영수증"), (2, "invoice")]
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS `{database}`"))
        await admin.dispose()


async def test_redis_round_trip(redis_url: str) -> None:
    key = _unique("infra-smoke")
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.set(key, b"value", ex=60, nx=True)
        assert not await client.set(key, b"other", ex=60, nx=True)
        assert await client.get(key) == b"value"
        assert 0 < await client.ttl(key) <= 60
        assert await client.delete(key) == 1
        assert await client.get(key) is None
    finally:
        await client.aclose()


class _MetricsHandler(BaseHTTPRequestHandler):
    """Serves one gauge in the Prometheus text format."""

    def do_GET(self) -> None:
        if self.path != "/metrics":
            self.send_error(404)
            return
        body = f'# TYPE {SMOKE_METRIC} gauge\n{SMOKE_METRIC}{{case="smoke"}} 42\n'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keeps scrapes out of the test output."""


@pytest.fixture
def metrics_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MetricsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _query(prometheus_url: str, promql: str) -> list[dict[str, object]]:
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=5)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_prometheus_scrapes_target_and_answers_promql(
    prometheus_url: str, prometheus_targets: TargetsSetter, metrics_endpoint: str
) -> None:
    prometheus_targets([metrics_endpoint], labels={"suite": "infra-smoke"})
    promql = f'sum by (suite) ({SMOKE_METRIC}{{instance="{metrics_endpoint}"}}) * 2'
    deadline = time.monotonic() + QUERY_TIMEOUT_S
    result = _query(prometheus_url, promql)
    while not result and time.monotonic() < deadline:
        time.sleep(0.5)
        result = _query(prometheus_url, promql)
    assert len(result) == 1, result
    sample = result[0]
    assert sample["metric"] == {"suite": "infra-smoke"}
    value = sample["value"]
    assert isinstance(value, list)
    assert float(value[1]) == 84.0


def test_mlflow_registry_keeps_a_registered_model(mlflow_url: str) -> None:
    name = _unique("infra-smoke")
    with httpx.Client(base_url=mlflow_url.rstrip("/") + "/api/2.0/mlflow", timeout=30) as http:
        created = http.post("/registered-models/create", json={"name": name})
        assert created.status_code == 200, created.text
        try:
            found = http.get("/registered-models/get", params={"name": name})
            assert found.status_code == 200, found.text
            assert found.json()["registered_model"]["name"] == name
        finally:
            http.request("DELETE", "/registered-models/delete", json={"name": name})


def test_s3_keeps_an_object_for_its_key_pair_only(s3: S3Server) -> None:
    bucket = Bucket(s3)
    key = f"{_unique('infra-smoke')}.txt"
    bucket.put(key, b"stored")
    try:
        assert bucket.get(key) == b"stored"
        unsigned = httpx.get(f"{s3.endpoint}/{s3.bucket}/{key}", timeout=30)
        assert unsigned.status_code == 403, unsigned.text
    finally:
        bucket.delete_written()
