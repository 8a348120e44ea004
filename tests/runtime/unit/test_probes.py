"""The worker's readiness endpoint while its role is still registering checks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from prometheus_client import CollectorRegistry

from ocr_runtime.worker import probe_app


async def test_readyz_answers_while_a_check_is_added_during_the_probe() -> None:
    checks: dict[str, Callable[[], Awaitable[bool]]] = {}
    added = asyncio.Event()

    async def database() -> bool:
        return True

    async def slow_engine() -> bool:
        # the role opens its storage and registers the next check while this one waits
        checks["database"] = database
        added.set()
        await asyncio.sleep(0)
        return True

    checks["engine"] = slow_engine
    app = probe_app(checks, CollectorRegistry())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        first = await client.get("/readyz")
        second = await client.get("/readyz")
    assert added.is_set()
    assert first.status_code == 200
    assert first.json()["checks"] == {"engine": True}
    assert second.json()["checks"] == {"engine": True, "database": True}
