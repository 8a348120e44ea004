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

from ocr_contract import components
from ocr_operator.conditions import merge_conditions
from ocr_operator.health import Cause, MigrationState, Rollout
from ocr_operator.model import Mode, Reason
from ocr_operator.render import Phase, Plan
from ocr_operator.topics_step import TopicsOutcome
from ocr_operator.verdict import Seen, condition_updates, judge
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
    assert config["data"]["resource.customizations.health.ocrserving.io_OCRServing"] == HEALTH_LUA


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


def _stack(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": "s", "namespace": "ocr", "generation": 1},
        "spec": {"paused": False},
        "status": {"observedGeneration": 1, "activeMode": "Standard", "conditions": conditions},
    }


def _rollout(*, done: bool = True, scaling: bool = False, stuck: bool = False) -> Rollout:
    return Rollout("worker", 2, 2 if done else 1, 2, 2 if done else 1, None, done, scaling, stuck)


_STEADY = Plan(Mode.STANDARD, Mode.STANDARD, components(Mode.STANDARD), Phase.STEADY)
_TOPICS = TopicsOutcome(Reason.TOPICS_READY, "")
# What the operator's own verdict code writes in each situation -> the ArgoCD health.
OPERATOR_STATES: dict[str, tuple[dict[str, Any], str]] = {
    "steady": ({}, "Healthy"),
    "autoscaled replicas starting": (dict(rollouts={"w": _rollout(scaling=True)}), "Healthy"),
    "migrating": (dict(migration=MigrationState.RUNNING), "Progressing"),
    "waiting for topics": (
        dict(topics=TopicsOutcome(Reason.WAITING_FOR_TOPICS, "KafkaTopic not Ready", ready=False)),
        "Progressing",
    ),
    "entering Writer": (
        dict(
            plan=Plan(Mode.WRITER, Mode.STANDARD, components(Mode.WRITER), Phase.WAITING_FOR_WRITER)
        ),
        "Progressing",
    ),
    "rolling out": (dict(rollouts={"w": _rollout(done=False)}), "Progressing"),
    "crash loop during a rollout": (
        dict(
            rollouts={"w": _rollout(done=False)},
            causes=[Cause(Reason.CRASH_LOOP_BACK_OFF, "worker-1 crash-looping")],
        ),
        "Degraded",
    ),
    "rollout past its deadline": (
        dict(rollouts={"w": _rollout(done=False, stuck=True)}),
        "Degraded",
    ),
    "migration failed": (dict(migration=MigrationState.FAILED), "Degraded"),
    "partitions cannot shrink": (
        dict(topics=TopicsOutcome(Reason.TOPICS_READY, "", not_supported="6 -> 3")),
        "Degraded",
    ),
}


@pytest.mark.parametrize("state", list(OPERATOR_STATES))
def test_health_check_reads_the_conditions_the_operator_writes(state: str) -> None:
    changes, health = OPERATOR_STATES[state]
    fields: dict[str, Any] = {
        "plan": _STEADY,
        "topics": _TOPICS,
        "migration": MigrationState.SUCCEEDED,
        "migration_message": "done",
        "rollouts": {"w": _rollout()},
        "causes": [],
        "model_version": "m",
    } | changes
    seen = Seen(**fields)
    conditions = merge_conditions(
        [], condition_updates(seen, judge(seen)), 1, "2026-01-01T00:00:00Z"
    )
    assert run_health_check(_stack(conditions))["status"] == health, conditions


def test_argocd_cm_tracks_by_annotation_and_ignores_the_advisor_status() -> None:
    data = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())["data"]
    assert data["application.resourceTrackingMethod"] == "annotation"
    assert data["resource.ignoreResourceUpdatesEnabled"] == "true"
    ignored = yaml.safe_load(
        data["resource.customizations.ignoreResourceUpdates.ocrserving.io_OCRServing"]
    )
    assert ".status.advisor" in ignored["jqPathExpressions"]
    # Conditions decide health: never ignored.
    assert not [p for p in ignored["jqPathExpressions"] if p.startswith(".status.conditions")]
    app_health = data["resource.customizations.health.argoproj.io_Application"]
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = to_lua(lua, {"status": {"health": {"status": "Healthy"}}})
    assert dict(lua.execute(app_health).items())["status"] == "Healthy"


def test_the_operator_syncs_in_a_wave_before_the_stacks() -> None:
    apps = _applications()

    def wave(name: str) -> int:
        return int(apps[name]["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])

    assert wave("ocr-operator") < wave("ocr-stacks")
