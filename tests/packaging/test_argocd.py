"""ArgoCD assets: the OCRServing health check (Lua, run here through lupa against the cases of
health_test.yaml, ArgoCD's own test layout), the argocd-cm copy of it, and the two
Applications pointing at paths that exist in this repository."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import lupa
import pytest
import yaml

from tests.packaging.conftest import REPO_ROOT

ARGOCD = REPO_ROOT / "examples" / "argocd"
HEALTH_LUA = (ARGOCD / "health.lua").read_text()
CASES = yaml.safe_load((ARGOCD / "health_test.yaml").read_text())["tests"]


def run_health_check(obj: dict[str, Any]) -> dict[str, str]:
    """Evaluates health.lua the way ArgoCD does: `obj` is a global, the chunk returns a table."""
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = to_lua(lua, obj)
    result = lua.execute(HEALTH_LUA)
    return {str(k): str(v) for k, v in result.items()}


def to_lua(lua: lupa.LuaRuntime, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, v) for v in value])
    return value


@pytest.mark.parametrize("case", CASES, ids=[c["inputPath"].split("/")[-1] for c in CASES])
def test_health_check_maps_conditions(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((ARGOCD / case["inputPath"]).read_text())
    assert run_health_check(obj) == case["healthStatus"]


def test_every_argocd_health_status_is_covered() -> None:
    covered = {c["healthStatus"]["status"] for c in CASES}
    assert covered == {"Healthy", "Progressing", "Degraded", "Suspended"}
    inputs = {c["inputPath"] for c in CASES}
    assert inputs == {f"testdata/{p.name}" for p in (ARGOCD / "testdata").glob("*.yaml")}


def test_degraded_wins_over_progressing_and_ready() -> None:
    obj = yaml.safe_load((ARGOCD / "testdata" / "healthy.yaml").read_text())
    for condition in obj["status"]["conditions"]:
        if condition["type"] in {"Degraded", "Progressing"}:
            condition.update(status="True", reason="ApplyFailed", message="boom")
    assert run_health_check(obj) == {"status": "Degraded", "message": "ApplyFailed: boom"}


def test_argocd_cm_embeds_the_health_check_verbatim() -> None:
    config = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    assert config["metadata"] == {
        "name": "argocd-cm",
        "namespace": "argocd",
        "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"},
    }
    assert config["data"] == {"resource.customizations.health.ocrserving.io_OCRServing": HEALTH_LUA}


def _applications() -> dict[str, dict[str, Any]]:
    apps = {}
    for path in ARGOCD.glob("*-application.yaml"):
        app = yaml.safe_load(path.read_text())
        assert app["apiVersion"] == "argoproj.io/v1alpha1" and app["kind"] == "Application"
        apps[app["metadata"]["name"]] = app
    return apps


def test_operator_application_installs_the_chart_with_valid_values(helm: Path) -> None:
    app = _applications()["ocr-operator"]
    source = app["spec"]["source"]
    chart = REPO_ROOT / source["path"]
    assert (chart / "Chart.yaml").is_file()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        yaml.safe_dump(source["helm"]["valuesObject"], handle)
        done = subprocess.run(
            [
                str(helm),
                "template",
                source["helm"]["releaseName"],
                str(chart),
                "-f",
                handle.name,
                "--namespace",
                app["spec"]["destination"]["namespace"],
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    kinds = {d["kind"] for d in yaml.safe_load_all(done.stdout) if d}
    assert {"PrometheusRule", "PodMonitor", "Deployment"} <= kinds
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]


def test_stacks_application_points_at_ocrserving_resources() -> None:
    app = _applications()["ocr-stacks"]
    source = app["spec"]["source"]
    folder = REPO_ROOT / source["path"]
    matched = sorted(folder.glob(source["directory"]["include"]))
    assert matched, f"{source['path']}/{source['directory']['include']} matches nothing"
    docs = [d for path in matched for d in yaml.safe_load_all(path.read_text()) if d]
    stacks = [d for d in docs if d["kind"] == "OCRServing"]
    assert stacks, "the folder holds no OCRServing"
    assert {d["apiVersion"] for d in stacks} == {"ocrserving.io/v1alpha1"}
    # Only the stacks and what they reference (connection Secrets), nothing cluster-wide.
    assert {d["kind"] for d in docs} <= {"OCRServing", "Secret", "ConfigMap"}
    ignored = app["spec"]["ignoreDifferences"][0]
    assert (ignored["group"], ignored["kind"]) == ("ocrserving.io", "OCRServing")
