"""Unit tests of the benchmark harness's pure parts: statistics, profile summaries, the load
generator's request bodies and the summary renderer. No service, no timing."""

from __future__ import annotations

import io
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from benchmarks.jobs_db import DrainTimeoutError, JobTimes, result_lines
from benchmarks.loadgen import (
    CONTENT_TYPE,
    Recorder,
    build_bodies,
    multipart_body,
    run_closed,
    run_open,
    tiny_png,
)
from benchmarks.operator_bench import reconcile_quantiles
from benchmarks.profiling import summarise
from benchmarks.runner import fastest_interleaved, fastest_pass, interleaved_ratio
from benchmarks.stats import latency_summary_ms, paired_ratio, percentile, ratio
from fastapi import FastAPI, File, UploadFile
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client import generate_latest

from benchmarks import documents_bench, report
from ocr_operator.telemetry import OperatorMetrics
from tests.support.documents import render_corpus


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert math.isnan(percentile([], 50))


def test_a_system_is_read_by_its_fastest_pass_with_every_pass_beside_it() -> None:
    rates = iter([641.3, 810.1, 691.1])
    calls: list[float] = []

    def measure() -> dict[str, Any]:
        rate = next(rates)
        calls.append(rate)
        return {"jobs_per_s": rate, "pass": len(calls)}

    fastest = fastest_pass(measure, 3)
    assert fastest["pass"] == 2
    assert fastest["passes_jobs_per_s"] == [641.3, 810.1, 691.1]
    assert fastest_pass(lambda: {"jobs_per_s": 5.0}, 0)["passes_jobs_per_s"] == [5.0]


def test_interleaved_systems_take_turns_and_each_is_read_by_its_fastest_pass() -> None:
    order: list[str] = []
    rates = {"host": iter([1.2, 1.4, 1.1]), "pods": iter([1.3, 1.0, 1.25])}

    def measure(name: str) -> Any:
        def one() -> dict[str, Any]:
            order.append(name)
            return {"jobs_per_s": next(rates[name])}

        return one

    read = fastest_interleaved({"host": measure("host"), "pods": measure("pods")}, 3)
    assert order == ["host", "pods"] * 3
    assert read["host"]["jobs_per_s"] == 1.4
    assert read["host"]["passes_jobs_per_s"] == [1.2, 1.4, 1.1]
    assert read["pods"]["passes_jobs_per_s"] == [1.3, 1.0, 1.25]


def test_an_interleaved_system_whose_pass_fails_drops_out_with_its_error() -> None:
    order: list[str] = []

    def stuck() -> dict[str, Any]:
        order.append("stuck")
        raise DrainTimeoutError("12 of 3000 jobs left after 300 s")

    def fine() -> dict[str, Any]:
        order.append("fine")
        return {"jobs_per_s": 900.0}

    read = fastest_interleaved({"stuck": stuck, "fine": fine}, 2)
    assert order == ["stuck", "fine", "fine"]
    assert "12 of 3000 jobs left" in read["stuck"]["error"]
    assert math.isnan(read["stuck"]["jobs_per_s"])
    assert read["fine"]["passes_jobs_per_s"] == [900.0, 900.0]


def test_latency_summary_is_in_milliseconds() -> None:
    summary = latency_summary_ms([0.001, 0.002, 0.003, 0.004])
    assert summary["count"] == 4
    assert summary["p50"] == 2.0
    assert summary["max"] == 4.0
    assert math.isnan(ratio(1.0, 0.0))


def test_job_times_span_first_created_to_last_finished() -> None:
    start = datetime(2026, 1, 1, 12, 0, 0)
    created = [start, start + timedelta(seconds=1)]
    finished = [start + timedelta(seconds=2), start + timedelta(seconds=4)]
    times = JobTimes(created, finished, {"succeeded": 2}, fractional_seconds=False)
    assert times.span_seconds() == 4.0
    assert times.latencies()["max"] == 3000.0


def test_result_lines_reads_the_runtime_object_and_a_bare_list() -> None:
    line = {"text": "total", "confidence": 0.9}
    assert result_lines({"text": "total", "lines": [line], "pages": []}) == [line]
    assert result_lines([line]) == [line]


def test_profile_summary_ranks_self_time_and_skips_scaffolding(tmp_path: Path) -> None:
    raw = tmp_path / "api.pyspy.txt"
    raw.write_text(
        "<module> (ocr-runtime:1);Runner.run (runners.py:2);submit (submit.py:10);"
        "insert (repo.py:5) 30\n"
        "<module> (ocr-runtime:1);Runner.run (runners.py:2);submit (submit.py:11) 10\n"
    )
    summary = summarise(raw)
    assert summary["samples"] == 40
    assert summary["self_pct"][0] == ["insert (repo.py)", 75.0]
    inclusive = dict((name, pct) for name, pct in summary["inclusive_pct"])
    assert inclusive["submit (submit.py)"] == 100.0
    assert "Runner.run (runners.py)" not in inclusive


def test_loadgen_bodies_are_distinct_valid_uploads() -> None:
    app = FastAPI()

    @app.post("/v1/jobs")
    async def upload(image: UploadFile = File(...)) -> dict[str, Any]:  # noqa: B008
        data = await image.read()
        with Image.open(io.BytesIO(data)) as decoded:
            return {"size": list(decoded.size), "name": image.filename, "bytes": len(data)}

    client = TestClient(app)
    first, second = tiny_png(1), tiny_png(2)
    assert first != second
    response = client.post(
        "/v1/jobs", content=multipart_body(first), headers={"Content-Type": CONTENT_TYPE}
    )
    assert response.status_code == 200
    assert response.json() == {"size": [64, 32], "name": "page.png", "bytes": len(first)}


def _results() -> dict[str, Any]:
    lat = {"count": 10, "p50": 5.0, "p95": 9.0, "p99": 12.0, "max": 15.0, "mean": 6.0}
    system = {
        "jobs": 10,
        "jobs_per_s": 800.0,
        "job_latency_ms": lat,
        "cpu_cores": {"api": 0.9},
        "submit": {"kind": "closed", "achieved_rps": 900.0, "latency_ms": lat},
        "settings": {"mode": "batched"},
    }
    return {
        "machine": {
            "date_utc": "2026-01-01 00:00 UTC",
            "cpu": "test",
            "cores": 2,
            "memory_gib": 1.0,
            "kernel": "k",
            "python": "3.11",
            "load_average_at_start": [0.1, 0.1, 0.1],
            "git_commit": "abc",
            "packages": {"fastapi": "x"},
            "gpu": "not measured: no GPU on this machine",
        },
        "config": {"name": "quick"},
        "duration_s": 60.0,
        "memory": {"noop-batched/api": 100 * 1024 * 1024},
        "suites": {
            "plumbing": {
                "systems": {"batched": system, "celery": {**system, "jobs_per_s": 100.0}},
                "ratio_to_celery": {"batched": 8.0},
                "targets": [
                    {
                        "name": "plumbing: batched jobs/s",
                        "goal": ">= 1000/s",
                        "value": 800.0,
                        "met": False,
                        "unit": "jobs/s",
                    }
                ],
            },
            "operator": {"status": "not run", "reason": "no cluster"},
        },
    }


def test_summary_reports_missed_targets_and_missing_parts() -> None:
    text = report.render(_results(), notes="Hand-written analysis.")
    assert "| plumbing: batched jobs/s | >= 1000/s | 800.00 jobs/s | **missed** |" in text
    assert "| operator | - | no cluster | **not measured** |" in text
    assert "not measured: no GPU on this machine" in text
    assert "| noop-batched/api | 100.0 |" in text
    assert text.rstrip().endswith("Hand-written analysis.")


def test_documents_pdf_keeps_each_page_at_its_pixel_size_when_drawn_at_the_dpi(
    tmp_path: Path,
) -> None:
    pdf_path = documents_bench.write_pdf(3, tmp_path / "doc.pdf")
    pdf = pdfium.PdfDocument(pdf_path.read_bytes())
    scale = documents_bench.DPI / 72
    sizes = [(round(page.get_width() * scale), round(page.get_height() * scale)) for page in pdf]
    expected = [doc.image.shape[1::-1] for doc in render_corpus(3, seed=11)]
    assert len(pdf) == 3
    assert sizes == [tuple(size) for size in expected]


def test_loadgen_sends_a_pdf_as_application_pdf(tmp_path: Path) -> None:
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.7 test")
    (tmp_path / "notes.txt").write_text("not an upload")
    [body] = build_bodies(1, tmp_path)
    assert b'filename="doc.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7 test' in body


def test_summary_renders_the_documents_section_with_pages_per_second() -> None:
    lat = {"count": 2, "p50": 50000.0, "p95": 60000.0, "p99": 60000.0}
    side = {
        "pages_per_s": 0.5,
        "same_text_as_bare": 1.0,
        "job_latency_ms": lat,
        "pages_per_result": [20, 20],
        "cpu_cores": {"worker-0": 0.9},
    }
    results = _results()
    results["suites"] = {
        "documents": {
            "pdf": {"pages": 20, "dpi": 200, "bytes": 1000, "copies": 2},
            "bare_runs": [{"images_per_s": 0.4}, {"images_per_s": 0.6}],
            "bare_pages_per_s": 0.5,
            "worker": {"standard": side, "batched": {**side, "pages_per_s": 0.6}},
            "ratio_to_bare": {"standard": 1.0, "batched": 1.2},
            "targets": [],
        }
    }
    text = report.render(results)
    assert "## 5. Documents" in text
    assert "| worker, batched | 1.20 | 0.60 | 100.0% |" in text
    assert "(pages per result: [20])" in text


def test_summary_reads_each_engine_side_by_its_fastest_pass_with_every_pass_beside_it() -> None:
    lat = {"count": 10, "p50": 900.0, "p95": 1500.0, "p99": 1600.0}
    side = {
        "images_per_s": 1.3,
        "passes_jobs_per_s": [1.1, 1.3],
        "same_text_as_bare": 1.0,
        "job_latency_ms": lat,
        "cpu_cores": {"worker-0": 0.9},
    }
    results = _results()
    results["suites"] = {
        "engine": {
            "images": {
                "count": 10,
                "mean_megapixels": 0.4,
                "min_size": [1, 1],
                "max_size": [2, 2],
            },
            "bare_runs": [
                {"images_per_s": 1.0, "per_image_ms": lat},
                {"images_per_s": 1.2, "per_image_ms": lat},
            ],
            "bare_images_per_s": 1.2,
            "worker": {
                "batched": side,
                "standard": {**side, "passes_jobs_per_s": [1.3]},
                "Ray Serve, batched": {
                    **side,
                    "images_per_s": 1.0,
                    "passes_jobs_per_s": [0.9, 1.0],
                },
            },
            "ratio_to_bare": {"batched": 1.083, "standard": 1.083, "Ray Serve, batched": 0.833},
            "ratio_to_ray": {"batched": 1.3, "standard": 1.3, "Ray Serve, batched": 1.0},
            "targets": [],
        }
    }
    text = report.render(results)
    assert "read by its fastest" in text
    assert "| worker, batched | 1.08 | 1.30 | 1.30 (passes 1.10 / 1.30) | 100.0% |" in text
    assert "| worker, standard | 1.08 | 1.30 | 1.30 | 100.0% |" in text
    assert "| Ray Serve, batched | 0.83 | 1.00 | 1.00 (passes 0.90 / 1.00) | 100.0% |" in text
    assert "runs before / after: 1.00 / 1.20" in text


def test_summary_names_refused_submissions_apart_from_lost_jobs() -> None:
    results = _results()
    results["suites"]["plumbing"]["systems"]["batched"]["refused"] = {"503": 7}
    text = report.render(results)
    assert "batched: 7 submissions refused ({'503': 7}); jobs/s counts the accepted ones." in text


def test_reconcile_quantiles_read_the_operators_histogram_of_the_named_resources() -> None:
    metrics = OperatorMetrics()
    for i in range(99):
        metrics.reconciled("bench", f"scale-{i:03d}", 0.2)
    metrics.reconciled("bench", "scale-099", 7.0)
    metrics.reconciled("bench", "single", 50.0)  # another resource: not counted
    text = generate_latest(metrics.registry).decode()
    passes = reconcile_quantiles(text, "scale-")
    assert passes == {"count": 100.0, "p50_s": 0.25, "p99_s": 0.25}
    metrics.reconciled("bench", "scale-100", 7.0)
    assert (
        reconcile_quantiles(generate_latest(metrics.registry).decode(), "scale-")["p99_s"] == 10.0
    )
    assert math.isnan(reconcile_quantiles("", "scale-")["p99_s"])


def test_summary_quotes_the_operators_profile_beside_its_measurements() -> None:
    results = _results()
    profile = {
        "samples": 120,
        "ours_inclusive_pct": [["reconcile (reconcile.py:95)", 61.5]],
        "self_by_package_pct": [["kopf", 20.0], ["json", 10.0]],
        "pass_seconds": 47.25,
    }
    many = {"seconds": 41.0, "detail": "200/200 Ready", "profile": profile}
    results["suites"]["operator"] = {
        "measurements": {"apply -> Ready, 200 resources": many},
        "targets": [],
    }
    text = report.render(results)
    assert "| apply -> Ready, 200 resources | 41.00 | 200/200 Ready |" in text
    assert (
        'a second pass of "apply -> Ready, 200 resources" (120 samples, all Ready in 47.2 s '
        "under it; the measured pass above ran without the sampler)"
    ) in text
    assert "reconcile (reconcile.py:95) 61.5%" in text
    assert "By package (self): kopf 20.0%; json 10.0%." in text


async def test_loadgen_spreads_requests_over_every_url_in_turn() -> None:
    counts = [0, 0]

    def counting(index: int) -> web.Application:
        async def upload(_: web.Request) -> web.Response:
            counts[index] += 1
            return web.Response(status=202)

        app = web.Application()
        app.router.add_post("/v1/jobs", upload)
        return app

    async with TestServer(counting(0)) as first, TestServer(counting(1)) as second:
        urls = [str(first.make_url("/v1/jobs")), str(second.make_url("/v1/jobs"))]
        rec = Recorder()
        await run_closed(urls, [multipart_body(tiny_png(0))], 10, 3, rec)
        await run_open(urls, bodies=[multipart_body(tiny_png(1))], rate=200.0, duration=0.05,
                       connections=4, rec=rec)  # fmt: skip
    assert counts == [10, 10]
    assert rec.statuses == {"202": 20}


def test_summary_lists_the_api_steps_of_each_process_count() -> None:
    results = _results()
    lat = {"count": 10, "p50": 5.0, "p95": 9.0, "p99": 12.0, "max": 15.0, "mean": 6.0}
    step = {"achieved_rps": 500.0, "latency_ms": lat, "statuses": {"202": 9, "503": 1},
            "cpu_cores": {"api": 0.5}, "api_cpu_ms_per_request": 1.0}  # fmt: skip
    runs = {"1": {"rates": {"500": step}}, "2": {"rates": {"500": {**step, "statuses": {}}}}}
    results["suites"]["api"] = {"rates": runs["2"]["rates"], "processes": runs, "targets": []}
    text = report.render(results)
    assert "| 1 | 500 | 500.0 | 5.0 | 9.0 | 12.0 | 15.0 | 1 | n/a | 1.00 | api 0.50 |" in text
    assert "| 2 | 500 | 500.0 | 5.0 | 9.0 | 12.0 | 15.0 | 0 | n/a | 1.00 | api 0.50 |" in text


def test_a_paired_ratio_is_the_median_of_each_rounds_ratio() -> None:
    # the fastest passes alone would read 1.4 / 1.0 = 1.4: one quiet minute on one side
    assert paired_ratio([1.4, 1.0, 1.2], [1.0, 1.0, 1.0]) == pytest.approx(1.2)
    assert paired_ratio([2.0, 3.0], [1.0, 1.0]) == pytest.approx(2.5)
    assert math.isnan(paired_ratio([1.0], [0.0]))


def test_interleaved_sides_are_compared_round_by_round_unless_one_lacks_its_passes() -> None:
    ours = {"jobs_per_s": 1400.0, "passes_jobs_per_s": [1400.0, 1000.0, 1100.0]}
    theirs = {"jobs_per_s": 300.0, "passes_jobs_per_s": [300.0, 200.0, 250.0]}
    assert interleaved_ratio(ours, theirs) == pytest.approx(4.667, abs=1e-3)
    assert interleaved_ratio(ours, {"jobs_per_s": 280.0}) == pytest.approx(5.0)


def test_summary_shows_the_celery_ratio_of_the_fastest_passes_beside_the_paired_one() -> None:
    results = _results()
    results["suites"]["plumbing"]["ratio_to_celery_fastest"] = {"batched": 4.42, "celery": 1.0}
    text = report.render(results)
    assert (
        "Ratio to Celery of the fastest passes alone (not the target's reading): batched 4.42."
        in text
    )
