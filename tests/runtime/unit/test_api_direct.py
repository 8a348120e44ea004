"""The submission route served past FastAPI's per-request machinery (`api.direct`)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ocr_runtime.api.direct import DirectFastAPI, direct_routes
from ocr_runtime.api.errors import Unauthorized
from tests.runtime.unit.runtime_fakes import png_bytes
from tests.runtime.unit.test_api import image_file, make_stack

# FastAPI's request handler asserts this key in the scope: present only on its own path.
FASTAPI_SCOPE_KEY = "fastapi_middleware_astack"


class _Tag:
    """Middleware marking the requests it saw, in the order they came."""

    def __init__(self, app: ASGIApp, seen: list[str], name: str) -> None:
        self._app, self._seen, self._name = app, seen, name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self._seen.append(f"{self._name} {scope['path']}")
        await self._app(scope, receive, send)


def _app() -> tuple[FastAPI, list[bool], list[str]]:
    """Two routes of one endpoint shape; only POST /direct is served directly."""
    saw_fastapi: list[bool] = []
    passed: list[str] = []
    router = APIRouter()

    async def endpoint(request: Request) -> Response:
        saw_fastapi.append(FASTAPI_SCOPE_KEY in request.scope)
        if request.headers.get("x-fail"):
            raise Unauthorized("no key")
        return Response(b"ok", 202)

    router.add_api_route("/direct", endpoint, methods=["POST"])
    router.add_api_route("/framework", endpoint, methods=["POST"])
    app = DirectFastAPI()
    app.include_router(router)
    app.add_middleware(_Tag, seen=passed, name="stack")
    routes = direct_routes(router, {("POST", "/direct")})
    app.serve_directly(routes, wrap=lambda inner: _Tag(inner, passed, "wrap"))
    return app, saw_fastapi, passed


async def test_only_the_named_route_skips_fastapi_and_both_answer_the_same() -> None:
    app, saw_fastapi, passed = _app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        direct = await client.post("/direct")
        framework = await client.post("/framework")
        wrong_method = await client.get("/direct")
    assert (direct.status_code, direct.content) == (202, b"ok")
    assert (framework.status_code, framework.content) == (202, b"ok")
    assert saw_fastapi == [False, True]
    assert wrong_method.status_code == 405  # not an exact match: FastAPI answers
    # The direct request passed only its own middleware, the others only the app's stack.
    assert passed == ["wrap /direct", "stack /framework", "stack /direct"]


async def test_an_ocr_error_on_the_direct_route_answers_the_api_error_shape() -> None:
    app, _, _ = _app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/direct", headers={"x-fail": "1"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == {"code": "unauthorized", "message": "no key"}


def test_a_route_that_needs_fastapi_parameters_is_refused_at_start() -> None:
    router = APIRouter()

    async def with_query(request: Request, page: int) -> Response:
        return Response(b"", 200)

    router.add_api_route("/q", with_query, methods=["POST"])
    with pytest.raises(ValueError, match="takes more than the request"):
        direct_routes(router, {("POST", "/q")})
    with pytest.raises(ValueError, match="no routes for"):
        direct_routes(router, {("POST", "/missing")})


async def test_a_direct_submission_is_counted_under_its_route_template() -> None:
    stack = await make_stack()
    accepted = await stack.client.post("/v1/jobs", files=image_file(png_bytes(120, 40)))
    assert accepted.status_code == 202 and accepted.headers["x-request-id"]
    text = (await stack.client.get("/metrics")).text
    await stack.client.aclose()
    assert 'ocr_http_requests_total{method="POST",route="/v1/jobs",status="202"} 1.0' in text
    assert "ocr_jobs_submitted_total 1.0" in text
