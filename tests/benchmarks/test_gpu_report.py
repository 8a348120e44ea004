"""The GPU engine comparison's pure parts: NVML samples summarised, the recorded GPU run
rendered into the summary's targets and its own section. No GPU needed."""

from __future__ import annotations

import copy
from typing import Any

from benchmarks.gpu_bench import GpuSampler, utilisation_summary

from benchmarks import report, report_gpu
from tests.benchmarks.test_harness import _results


def _gpu_run(standard: float = 0.5, batched: float = 2.0) -> dict[str, Any]:
    lat = {"count": 64, "p50": 1000.0, "p95": 1500.0, "p99": 1600.0, "max": 1700.0, "mean": 1100}
    util = {"samples": 10, "mean_util_pct": 1.5, "max_util_pct": 9.0, "max_memory_mib": 2500.0}
    side = {"images_per_s": standard, "job_latency_ms": lat, "gpu": util}
    return {
        "measured_on": "2026-11-30",
        "machine": "one test GPU",
        "command": "python -m benchmarks.gpu_bench --images 64",
        "images": {"count": 64, "mean_megapixels": 0.4, "min_size": [1, 1], "max_size": [2, 2]},
        "unmeasured": {"bare": "stopped by the time limit"},
        "standard": side,
        "batched": {**side, "images_per_s": batched},
    }


def test_utilisation_summary_takes_mean_and_peaks() -> None:
    summary = utilisation_summary([(0, 100), (10, 300), (5, 200)])
    assert summary == {
        "samples": 3,
        "mean_util_pct": 5.0,
        "max_util_pct": 10.0,
        "max_memory_mib": 300.0,
    }
    assert utilisation_summary([])["samples"] == 0


def test_sampler_without_a_driver_samples_nothing() -> None:
    with GpuSampler() as sampler:
        pass
    assert not sampler.available
    assert sampler.summary()["samples"] == 0


def test_targets_judge_batched_over_standard_and_list_what_was_not_measured() -> None:
    met, unmeasured = report_gpu.targets(_gpu_run(standard=0.5, batched=2.0))
    assert met == ["engine: batched vs standard (GPU)", ">= 3.0x", "4.00 x (2026-11-30)", "met"]
    assert unmeasured[0] == "engine: bare (GPU)"
    assert unmeasured[-1] == "**not measured**"
    assert report_gpu.targets(_gpu_run(standard=1.0, batched=2.0))[0][-1] == "**missed**"
    assert report_gpu.targets(None)[0][-1] == "**not measured**"


def test_section_marks_a_pass_that_did_not_run() -> None:
    text = "\n".join(report_gpu.section(_gpu_run()))
    assert "Measured on 2026-11-30: one test GPU." in text
    assert "| bare | not measured |" in text
    assert "| batched | 2.00 | - | 1,000.0 / 1,500.0 / 1,600.0 | 1.5 / 9.0 % ; 2500 MiB |" in text
    assert report_gpu.section(None) == []


def test_summary_of_a_cpu_run_carries_the_recorded_gpu_targets() -> None:
    results = copy.deepcopy(_results())
    text = report.render(results, gpu=_gpu_run())
    assert "| engine: batched vs standard (GPU) | >= 3.0x | 4.00 x (2026-11-30) | met |" in text


def test_the_recorded_gpu_run_renders() -> None:
    recorded = report_gpu.load()
    assert recorded is not None, f"{report_gpu.GPU_RESULTS} is missing"
    text = "\n".join(report_gpu.section(recorded))
    assert "| standard |" in text
    assert "| batched |" in text
