"""GitHub workflows: tests on pull requests; on a release, tests first, then both images (the
runtime for every engine extra) and the chart, versioned from the tag."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import yaml

from tests.packaging.conftest import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps_text(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) + str(s.get("with", "")) for s in job["steps"])


def test_ci_runs_lint_unit_packaging_and_the_full_suite_on_pull_requests() -> None:
    ci = load("ci.yaml")
    assert "pull_request" in ci["on"] and "workflow_call" in ci["on"]
    text = {name: steps_text(job) for name, job in ci["jobs"].items()}
    assert "make lint" in text["lint-and-unit"] and "make test-unit" in text["lint-and-unit"]
    assert "scripts/tools.sh all" in text["packaging"]
    assert "pytest tests/packaging" in text["packaging"]
    assert ".ci/run" in text["integration-and-e2e"]
    assert ci["permissions"] == {"contents": "read"}


def test_ci_uses_the_uv_version_the_images_use() -> None:
    ci = load("ci.yaml")
    image = re.search(r"ghcr.io/astral-sh/uv:(\S+)", (REPO_ROOT / "Dockerfile.runtime").read_text())
    assert image is not None
    assert ci["env"]["UV_VERSION"] == image.group(1)


def test_release_tests_first_then_pushes_both_images_and_the_chart() -> None:
    release = load("release.yaml")
    assert release["on"] == {"release": {"types": ["published"]}}
    jobs = release["jobs"]
    assert jobs["tests"]["uses"] == "./.github/workflows/ci.yaml"
    for name in ("runtime-image", "operator-image"):
        assert "tests" in jobs[name]["needs"]
        assert jobs[name]["permissions"]["packages"] == "write"
    assert "operator-image" in jobs["chart"]["needs"]
    files = {
        step["with"]["file"]
        for name in ("runtime-image", "operator-image")
        for step in jobs[name]["steps"]
        if "docker/build-push-action" in step.get("uses", "")
    }
    assert files == {"Dockerfile.runtime", "Dockerfile.operator"}
    chart = steps_text(jobs["chart"])
    assert 'helm" package charts/ocr-operator' in chart.replace("$HELM", "helm")
    assert "cmp crds/ocrserving.yaml charts/ocr-operator/crds/ocrserving.yaml" in chart


def test_release_builds_the_runtime_for_every_engine_extra() -> None:
    matrix = load("release.yaml")["jobs"]["runtime-image"]["strategy"]["matrix"]["include"]
    runtime = tomllib.loads((REPO_ROOT / "runtime" / "pyproject.toml").read_text())
    assert {m["engine"] for m in matrix} == set(runtime["project"]["optional-dependencies"])
    for entry in matrix:
        gpu = entry["engine"].endswith("-gpu")
        assert entry["base"].startswith("nvidia/cuda:") == gpu, entry


def test_release_version_comes_from_a_semver_tag() -> None:
    step = load("release.yaml")["jobs"]["version"]["steps"][0]
    script = step["run"]
    for tag, ok in (("v1.2.3", True), ("v0.1.0-rc.1", True), ("latest", False), ("v1.2", False)):
        done = subprocess.run(
            ["bash", "-c", script],
            env={
                "TAG": tag,
                "OWNER": "Ocr-Serving",
                "GITHUB_OUTPUT": "/dev/stdout",
                "PATH": "/usr/bin:/bin",
            },
            capture_output=True,
            text=True,
            check=False,
        )
        assert (done.returncode == 0) == ok, (tag, done.stderr)
        if ok:
            assert f"version={tag[1:]}" in done.stdout
            assert "prefix=ghcr.io/ocr-serving" in done.stdout


def test_default_chart_image_matches_what_the_release_pushes() -> None:
    values = yaml.safe_load((REPO_ROOT / "charts/ocr-operator/values.yaml").read_text())
    assert values["image"]["repository"].endswith("/ocr-operator")
    assert Path(values["image"]["repository"]).parent.name == "ocr-serving"
