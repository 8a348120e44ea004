"""Serves the submission route without FastAPI's per-request machinery.

A job submission is the API's hot path, and FastAPI spends about as much CPU around it
(its middleware stack, OpenTelemetry hooks, route matching, dependency solving, exit stacks)
as the handler itself. The route stays declared on the FastAPI app, which documents it in
OpenAPI; `DirectFastAPI` answers it before the app's own stack, through only the middleware
it is given, by calling the same endpoint. Only endpoints that take the request alone and
return a finished `Response` qualify: they need nothing FastAPI would have solved for them.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Collection
from typing import cast

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute, APIRouter
from starlette.types import ASGIApp, Receive, Scope, Send

from ocr_runtime.api.errors import handle_ocr_error
from ocr_runtime.domain import OcrError

Endpoint = Callable[[Request], Awaitable[Response]]
RouteKey = tuple[str, str]  # (method, path)


class DirectRoutes:
    """ASGI app calling the endpoint of an exact (method, path) of `routes`. An error other
    than `OcrError` propagates to the middleware around it (the 500 guard), as it would from
    FastAPI."""

    def __init__(self, routes: dict[RouteKey, APIRoute]) -> None:
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._routes[(scope["method"], scope["path"])]
        scope["route"] = route  # the metrics label the route's template, as FastAPI does
        request = Request(scope, receive, send)
        try:
            response = await cast(Endpoint, route.endpoint)(request)
        except OcrError as exc:
            response = await handle_ocr_error(request, exc)
        await response(scope, receive, send)


class DirectFastAPI(FastAPI):
    """FastAPI whose routes given to `serve_directly` are answered before its middleware
    stack; every other request, and the lifespan, go through FastAPI as usual."""

    _direct: ASGIApp | None = None
    _direct_keys: frozenset[RouteKey] = frozenset()

    def serve_directly(
        self, routes: dict[RouteKey, APIRoute], *, wrap: Callable[[ASGIApp], ASGIApp]
    ) -> None:
        """`wrap`: the middleware a direct request passes (request id, metrics, 500 guard)."""
        self._direct_keys = frozenset(routes)
        self._direct = wrap(DirectRoutes(routes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        direct = self._direct
        if (
            direct is not None
            and scope["type"] == "http"
            and (scope["method"], scope["path"]) in self._direct_keys
        ):
            scope["app"] = self
            await direct(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def direct_routes(router: APIRouter, wanted: Collection[RouteKey]) -> dict[RouteKey, APIRoute]:
    """The router's routes for `wanted` (method, path) pairs, checked to qualify: a route that
    is missing or needs FastAPI's parameter handling fails at start, not per request."""
    found: dict[RouteKey, APIRoute] = {}
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
