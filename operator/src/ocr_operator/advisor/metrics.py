"""Reads the advisor's signals from Prometheus's HTTP API (`/api/v1/query`) over pooled
urllib3 connections.

urllib3 is blocking, so every read runs in a worker thread, off kopf's event loop. All
queries of one evaluation are evaluated at the same instant (`time=`), so the evidence is one
consistent snapshot.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import urllib3
from urllib3.util.retry import Retry

from ocr_operator.advisor.evidence import FIELDS, Evidence, Observation, Signal

__all__ = ["BEYOND_TOP_BUCKET_SECONDS", "Observation", "PrometheusSource", "UnusableMetricError"]

# A p95 of +Inf means "beyond the top bucket"; status JSON cannot carry Inf, so it becomes
# this many seconds: far above any threshold, so the rules still see a slow downstream.
BEYOND_TOP_BUCKET_SECONDS = 1e6
# Latency quantiles without a single observation in the range are NaN: no writes (or no
# requests) means nothing is slow, and treating it as missing would block the idle rule.
_NAN_MEANS_ZERO = frozenset(
    {Signal.DB_WRITE_P95, Signal.DB_WRITE_P95_BASELINE, Signal.API_P95, Signal.API_P95_BASELINE}
)
_MAX_PROBLEM_CHARS = 200


class UnusableMetricError(Exception):
    """A query answered, but not with one usable number."""


class QueryRejectedError(Exception):
    """Prometheus answered the query with an error (a PromQL parse error, say)."""


class PrometheusSource:
    """Reads evidence from Prometheus servers.

    Queries run on a small pool of its own, so a slow or black-holed Prometheus can never take
    the threads the Kubernetes client needs; they share one pool of keep-alive connections.
    """

    def __init__(self, *, threads: int = 2, retries: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="prometheus")
        # Few retries: the next evaluation is the real retry. A 502 to 504 still there after
        # them raises MaxRetryError: "unreachable", like a refused connection.
        retry = Retry(
            total=retries,
            backoff_factor=0.2,
            status_forcelist=(502, 503, 504),
            allowed_methods=("GET",),
        )
        self._http = urllib3.PoolManager(maxsize=threads, retries=retry)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.clear()

    async def observe(
        self, url: str, queries: dict[Signal, str], at: datetime, query_timeout: float
    ) -> Observation:
        """Evaluate every query at `at`; a failing query leaves its signal None."""
        loop = asyncio.get_running_loop()
        call = functools.partial(self._observe_blocking, url, queries, at, query_timeout)
        return await loop.run_in_executor(self._pool, call)

    def _observe_blocking(
        self, url: str, queries: dict[Signal, str], at: datetime, query_timeout: float
    ) -> Observation:
        values: dict[str, float] = {}
        problems: dict[Signal, str] = {}
        unreachable: str | None = None
        for signal, query in queries.items():
            if unreachable is not None:  # fail fast: the other queries would wait as long
                problems[signal] = unreachable
                continue
            try:
                raw = self._query(url, query, at, query_timeout)
                values[FIELDS[signal]] = _one_number(signal, raw)
            except UnusableMetricError as error:
                problems[signal] = str(error)
            except QueryRejectedError as error:
                problems[signal] = f"query rejected: {error}"
            except urllib3.exceptions.HTTPError as error:
                unreachable = f"Prometheus unreachable: {type(error).__name__}"
                problems[signal] = unreachable
        evidence = Evidence.model_validate({"at": at, **values})
        return Observation(evidence=evidence, problems=problems)

    def _query(self, url: str, query: str, at: datetime, timeout: float) -> Any:
        """The `result` of one instant query."""
        params = {"query": query, "time": f"{at.timestamp():.3f}", "timeout": f"{timeout:g}"}
        answer = self._http.request(
            "GET", f"{url.rstrip('/')}/api/v1/query?{urlencode(params)}", timeout=timeout
        )
        try:
            body = json.loads(answer.data)
        except ValueError:
            body = {}
        if answer.status != 200 or body.get("status") != "success":
            text = body.get("error") or answer.data.decode(errors="replace")
            raise QueryRejectedError(f"HTTP {answer.status}: {text}"[:_MAX_PROBLEM_CHARS])
        return body["data"]["result"]


def _one_number(signal: Signal, result: Any) -> float:
    """The single value of an instant query's result (vector of one, or scalar)."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        text = result[1]  # a scalar: [time, "value"]
    elif isinstance(result, list) and len(result) == 1 and isinstance(result[0], dict):
        text = result[0].get("value", [None, None])[1]
    elif isinstance(result, list) and not result:
        raise UnusableMetricError("no data (no matching series)")
    elif isinstance(result, list):
        raise UnusableMetricError(f"{len(result)} series; the query must aggregate to one")
    else:
        raise UnusableMetricError("unexpected result type")
    try:
        value = float(text)
    except (TypeError, ValueError) as error:
        raise UnusableMetricError(f"not a number: {str(text)[:40]!r}") from error
    return _checked(signal, value)


def _checked(signal: Signal, value: float) -> float:
    if math.isnan(value):
        if signal in _NAN_MEANS_ZERO:
            return 0.0
        raise UnusableMetricError("NaN")
    if math.isinf(value):
        if value > 0 and signal in _NAN_MEANS_ZERO:
            return BEYOND_TOP_BUCKET_SECONDS
        raise UnusableMetricError("infinite")
    if signal is Signal.GPU_UTILIZATION and not 0 <= value <= 100:
        raise UnusableMetricError(f"{value:g} is not a percentage (0-100)")
    if signal is not Signal.LAG_TREND and value < 0:
        raise UnusableMetricError(f"{value:g} is negative")
    return value
