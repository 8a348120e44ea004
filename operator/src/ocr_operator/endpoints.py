"""The operator's own HTTP endpoints, served in every replica (the standby included, so its
liveness is checked too): `/healthz` and `/metrics`. kopf's liveness endpoint exists only in
the leader, where kopf runs."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from ocr_operator.telemetry import METRICS_CONTENT_TYPE, OperatorMetrics


async def start_http(
    host: str, port: int, metrics: OperatorMetrics, leading: Callable[[], bool]
) -> web.AppRunner:
    """Serve on host:port until the returned runner is cleaned up. Answered on this
    process's event loop, so a stuck loop fails the liveness probe."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "leader": leading()})

    async def metrics_page(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = METRICS_CONTENT_TYPE
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def parse_address(text: str) -> tuple[str, int]:
    """`host:port` (e.g. 0.0.0.0:8080) -> (host, port); ValueError with the reason."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {text!r}")
    return host, int(port)
