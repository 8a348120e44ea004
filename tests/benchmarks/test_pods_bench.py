"""The pods suite's own pieces: the resource it applies, where its pods reach the database,
how it finds a pod's processes, the load generator's API key, and its report section."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from benchmarks.pod_stack import PodSpec, ocrserving, pod_database_url, pod_processes
from benchmarks.report_pods import pods_section
from benchmarks.services import RunTopics
from sqlalchemy.engine import make_url

from benchmarks import loadgen
from ocr_operator.model import Mode, OCRServingSpec


def test_the_applied_resource_is_a_spec_the_operator_accepts() -> None:
    topics = RunTopics.for_run("pods-noop")
    spec = PodSpec(label="noop", mode="Batched", engine="noop", batch_max_size=64)
    resource = ocrserving(spec, topics)
    parsed = OCRServingSpec.model_validate(resource["spec"])
    assert parsed.architecture.mode is Mode.BATCHED
    assert parsed.batching.max_size == 64
    assert resource["spec"]["kafka"]["management"] == "External"
    assert resource["spec"]["kafka"]["topics"]["jobs"] == topics.jobs
    # the node comes from the operator's stack defaults, as the chart sets them
    assert "nodeSelector" not in resource["spec"]["api"]
    assert resource["spec"]["api"]["resources"]["requests"]["cpu"] == "400m"


def test_pods_reach_the_same_database_under_its_service_name() -> None:
    url = pod_database_url("mysql+aiomysql://ocr:s3cret@127.0.0.1:13306/ocr", "bench_pods_noop")
    parsed = make_url(url)
    assert (parsed.host, parsed.port, parsed.database) == ("mariadb.ocr.svc", 3306,
                                                           "bench_pods_noop")  # fmt: skip
    assert (parsed.username, parsed.password, parsed.drivername) == ("ocr", "s3cret",
                                                                     "mysql+aiomysql")  # fmt: skip


def _process(proc: Path, pid: int, cgroup: str, comm: str) -> None:
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "cgroup").write_text(f"2:cpuacct:{cgroup}\n1:cpu:{cgroup}\n")
    (proc / str(pid) / "comm").write_text(f"{comm}\n")


def test_a_pods_processes_are_those_of_its_cgroup_but_the_sandbox(tmp_path: Path) -> None:
    uid = "0d7c1e52-7f7e-4a39-9d07-2b1c5b0e6a11"
    pod = f"/kubepods/burstable/pod{uid}"
    _process(tmp_path, 10, f"{pod}/sandbox", "pause")
    _process(tmp_path, 11, f"{pod}/app", "ocr-runtime")
    _process(tmp_path, 12, f"{pod}/app", "python")
    _process(tmp_path, 20, "/kubepods/burstable/podother/app", "ocr-runtime")
    _process(tmp_path, 30, "/", "kafka")
    (tmp_path / "self").mkdir()
    assert sorted(pod_processes(uid, tmp_path)) == [11, 12]


async def test_the_load_generator_sends_the_api_key_of_its_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str | None] = []

    async def upload(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/v1/jobs", upload)
    monkeypatch.setenv(loadgen.API_KEY_ENV, "k3y")
    async with TestServer(app) as server:
        url = str(server.make_url("/v1/jobs"))
        argv = ["closed", "--url", url, "--count", "3", "--concurrency", "1"]
        assert await asyncio.to_thread(loadgen.main, argv) == 0
    assert seen == ["Bearer k3y"] * 3
    assert json.loads(capsys.readouterr().out)["statuses"] == {"202": 3}


def _side(rate: float) -> dict[str, Any]:
    latency = {"p50": 10.0, "p95": 20.0, "p99": 30.0}
    return {"jobs_per_s": rate, "job_latency_ms": latency, "cpu_ms_per_job": {"api": 1.0}}


def test_the_report_puts_pods_beside_host_processes_and_names_what_failed() -> None:
    pods = {**_side(450.0), "settings": {"mode": "Batched"}, "ready_s": 12.5,
            "passes_jobs_per_s": [430.0, 450.0]}  # fmt: skip
    suite = {
        "passes": {
            "plumbing batched": {
                "host": _side(500.0),
                "host_direct": _side(600.0),
                "pods": pods,
                "pods_to_host": 0.9,
                "pods_to_host_direct": 0.75,
                "fastest_pods_to_host": 0.92,
            },
            "onnx (not measured)": {"error": "onnx not Ready in Standard after 300 s"},
        }
    }
    text = "\n".join(pods_section(suite))
    row = "| plumbing batched | 0.90 | 0.75 | 0.92 | 500.0 | 600.0 | 450.0 | 500.0 / 430.0, 450.0 |"
    assert f"{row} 10.0 / 20.0 / 30.0 |" in text
    assert "| 12.5 |" in text
    assert "- onnx (not measured): `onnx not Ready in Standard after 300 s`" in text
