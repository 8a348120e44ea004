"""Unit tests of query resolution and of how a Prometheus answer becomes one number."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ocr_operator.advisor.metrics import BEYOND_TOP_BUCKET_SECONDS, UnusableMetricError, _one_number
from ocr_operator.advisor.queries import DEFAULT_QUERIES, StackRef, resolve_queries
from ocr_operator.advisor.rules import Signal
from ocr_operator.model.advisor import AdvisorQueries, AdvisorSpec

STACK = StackRef("shop", "receipts", "receipts-workers", "receipts-writers", "jobs", "results")


def test_defaults_fill_every_variable() -> None:
    queries = resolve_queries(AdvisorSpec(rate_window_seconds=120), STACK)
    assert set(queries) == set(Signal)
    for query in queries.values():
        assert "$" not in query
    assert 'namespace="shop", ocrserving="receipts"' in queries[Signal.DB_WRITE_P95]
    assert "[120s]" in queries[Signal.DB_WRITE_P95]
    assert 'pod=~"receipts-worker-.+"' in queries[Signal.GPU_UTILIZATION]
    assert 'group="receipts-writers", topic="results"' in queries[Signal.LAG]
    assert queries[Signal.LAG_TREND].endswith("[120s:4s])")


def test_an_override_replaces_only_its_signal() -> None:
    spec = AdvisorSpec(queries=AdvisorQueries(lag='sum(my_lag{ns="$namespace"}) + 0*$$x'))
    queries = resolve_queries(spec, STACK)
    assert queries[Signal.LAG] == 'sum(my_lag{ns="shop"}) + 0*$x'
    assert (
        queries[Signal.GPU_UTILIZATION]
        == resolve_queries(AdvisorSpec(), STACK)[Signal.GPU_UTILIZATION]
    )
    assert DEFAULT_QUERIES[Signal.LAG] != queries[Signal.LAG]


def vector(*values: str) -> list[dict[str, Any]]:
    return [{"metric": {"i": str(i)}, "value": [1.0, v]} for i, v in enumerate(values)]


@pytest.mark.parametrize(
    ("signal", "result", "expected"),
    [
        (Signal.GPU_UTILIZATION, vector("85.5"), 85.5),
        (Signal.LAG, [1.0, "12"], 12.0),  # a scalar
        (Signal.LAG_TREND, vector("-3.5"), -3.5),
        (Signal.DB_WRITE_P95, vector("NaN"), 0.0),  # no writes in the range
        (Signal.API_P95, vector("NaN"), 0.0),
        (Signal.DB_WRITE_P95, vector("+Inf"), BEYOND_TOP_BUCKET_SECONDS),
        (Signal.GPU_UTILIZATION, vector("NaN"), "NaN"),
        (Signal.LAG, vector("+Inf"), "infinite"),
        (Signal.GPU_UTILIZATION, vector("0.85e3"), "not a percentage"),
        (Signal.LAG, vector("-1"), "negative"),
        (Signal.LAG, [], "no data"),
        (Signal.LAG, vector("1", "2"), "2 series"),
        (Signal.LAG, vector("abc"), "not a number"),
        (Signal.LAG, {"weird": True}, "unexpected result"),
    ],
)
def test_a_query_answer_becomes_one_number_or_a_problem(
    signal: Signal, result: Any, expected: float | str
) -> None:
    if isinstance(expected, str):
        with pytest.raises(UnusableMetricError, match=expected):
            _one_number(signal, result)
    else:
        value = _one_number(signal, result)
        assert math.isfinite(value) and value == expected
