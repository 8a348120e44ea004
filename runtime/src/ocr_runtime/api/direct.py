"""Serves the submission route without FastAPI's per-request machinery.

A job submission is the API's hot path, and FastAPI spends about as much CPU around it
(route matching, dependency solving, exit stacks, telemetry hooks) as the handler itself.
The route stays declared on the FastAPI app, which documents it in OpenAPI; this middleware
calls the same endpoint directly. Only endpoints that take the request alone and return a
finished `Response` qualify: they need nothing FastAPI would have solved for them.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Collection
from typing import cast

from fastapi import Request, Response
from fastapi.routing import APIRoute, APIRouter
from starlette.types import ASGIApp, Receive, Scope, Send

from ocr_runtime.api.errors import handle_ocr_error
from ocr_runtime.domain import OcrError

Endpoint = Callable[[Request], Awaitable[Response]]


class DirectRoutes:
    """ASGI middleware: an exact (method, path) of `routes` goes straight to its endpoint,
    and everything else on to the app. An error other than `OcrError` propagates to the
    middleware around this one (the 500 guard), as it would from the app."""

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], APIRoute]) -> None:
        self._app = app
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http":
            route = self._routes.get((scope["method"], scope["path"]))
        if route is None:
            await self._app(scope, receive, send)
            return
        scope["route"] = route  # the metrics label the route's template, as FastAPI does
        request = Request(scope, receive, send)
        try:
            response = await cast(Endpoint, route.endpoint)(request)
        except OcrError as exc:
            response = await handle_ocr_error(request, exc)
        await response(scope, receive, send)


def direct_routes(
    router: APIRouter, wanted: Collection[tuple[str, str]]
) -> dict[tuple[str, str], APIRoute]:
    """The router's routes for `wanted` (method, path) pairs, checked to qualify: a route that
    is missing or needs FastAPI's parameter handling fails at start, not per request."""
    found: dict[tuple[str, str], APIRoute] = {}
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        for method in route.methods or ():
            if (method, route.path) in wanted:
                found[(method, route.path)] = route
    missing = set(wanted) - set(found)
    if missing:
        raise ValueError(f"no routes for {sorted(missing)}")
    for key, route in found.items():
        parameters = list(inspect.signature(route.endpoint).parameters.values())
        if len(parameters) != 1 or parameters[0].annotation not in (Request, "Request"):
            raise ValueError(f"{key} cannot be served directly: it takes more than the request")
    return found
