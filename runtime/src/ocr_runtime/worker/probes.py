"""HTTP endpoints of the worker and the writer for Kubernetes and Prometheus: `/healthz`
(the process answers), `/readyz` (every check passes: 200, else 503 with the failing ones;
the model this process serves, when it has one) and `/metrics`. Served by uvicorn inside the
process's own event loop; the process, not uvicorn, owns SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Generator, Mapping

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ocr_runtime.application.model import ModelIdentity

log = logging.getLogger(__name__)

# Named readiness checks; each returns True when that dependency is ready.
ReadinessChecks = Mapping[str, Callable[[], Awaitable[bool]]]


def probe_app(
    checks: ReadinessChecks,
    registry: CollectorRegistry = REGISTRY,
    model: ModelIdentity | None = None,
) -> Starlette:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        results: dict[str, bool] = {}
        # a snapshot: the role adds checks (database, consumer) while a probe may be waiting
        for name, check in list(checks.items()):
            try:
                results[name] = await asyncio.wait_for(check(), timeout=2.0)
            except Exception:
                results[name] = False
        ready = all(results.values())
        body: dict[str, object] = {"status": "ready" if ready else "not_ready", "checks": results}
        if model is not None:
            body["model"] = model.as_dict()
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ]
    )


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # signals belong to the worker's own shutdown logic


class ProbeServer:
    def __init__(self, app: Starlette, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(), name="probe-server")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises the bind error
                raise RuntimeError("probe server stopped during start")
            await asyncio.sleep(0.02)

    async def aclose(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=5.0)
