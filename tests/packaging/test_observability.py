"""Observability assets: the Prometheus rules pass `promtool check rules` and their unit tests
(`promtool test rules`), the Grafana dashboard is valid and every metric that the dashboard
and the rules read is one the runtime documents (docs/metrics.md) or kube-state-metrics
derives from the OCRServing status (observability/kube-state-metrics/ocrserving.yaml)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.packaging.conftest import REPO_ROOT, run

OBS = REPO_ROOT / "observability"
RULES = OBS / "prometheus" / "ocr-serving.rules.yaml"
RULES_TEST = OBS / "prometheus" / "ocr-serving.rules.test.yaml"
DASHBOARD = OBS / "grafana" / "ocr-serving.json"
KSM = OBS / "kube-state-metrics" / "ocrserving.yaml"

METRIC = re.compile(r"\b((?:ocr|ocrserving)_[a-z0-9_]+)\b")
RECORDED = re.compile(r"\b(ocrserving:[a-z0-9_:]+)\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def documented_metrics() -> set[str]:
    path = REPO_ROOT / "docs" / "metrics.md"
    assert path.is_file(), "docs/metrics.md (the runtime's metric contract) is missing"
    return set(METRIC.findall(path.read_text()))


def kube_state_metrics() -> set[str]:
    config = yaml.safe_load(KSM.read_text())
    names = set()
    for resource in config["spec"]["resources"]:
        assert resource["groupVersionKind"] == {
            "group": "ocrserving.io",
            "version": "v1alpha1",
            "kind": "OCRServing",
        }
        for metric in resource["metrics"]:
            names.add(f"{resource['metricNamePrefix']}_{metric['name']}")
    return names


def rule_groups() -> list[dict[str, Any]]:
    return list(yaml.safe_load(RULES.read_text())["groups"])


def recorded_names() -> set[str]:
    return {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


def undocumented(exprs: list[str]) -> set[str]:
    known = documented_metrics() | kube_state_metrics()
    missing = set()
    for expr in exprs:
        for name in METRIC.findall(expr):
            base = next(
                (name.removesuffix(s) for s in HISTOGRAM_SUFFIXES if name.endswith(s)), name
            )
            if name not in known and base not in known:
                missing.add(name)
    return missing


def test_promtool_accepts_the_rules(promtool: Path) -> None:
    done = run([promtool, "check", "rules", RULES])
    assert done.returncode == 0, done.stdout + done.stderr
    count = sum(len(g["rules"]) for g in rule_groups())
    assert f"SUCCESS: {count} rules found" in done.stdout


def test_alert_rules_pass_their_unit_tests(promtool: Path) -> None:
    done = run([promtool, "test", "rules", RULES_TEST.name], cwd=RULES_TEST.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_unit_tested_and_has_a_runbook_entry() -> None:
    alerts = {r["alert"]: r for g in rule_groups() for r in g["rules"] if "alert" in r}
    assert {
        "OCRServingConsumerLagGrowing",
        "OCRServingDeadLetters",
        "OCRServingHighFailureRatio",
        "OCRServingAdvisorUnavailable",
        "OCRServingErrorBudgetBurnFast",
    } <= set(alerts)
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    tested = {a["alertname"] for t in tests for a in t.get("alert_rule_test", [])}
    firing = {
        a["alertname"] for t in tests for a in t.get("alert_rule_test", []) if a["exp_alerts"]
    }
    untested = (
        set(alerts)
        - tested
        - {"OCRServingOffsetCommitFailures", "OCRServingDegraded", "OCRServingErrorBudgetBurnSlow"}
    )
    assert not untested, f"alerts without a unit test: {sorted(untested)}"
    assert firing >= {
        "OCRServingConsumerLagGrowing",
        "OCRServingDeadLetters",
        "OCRServingAdvisorUnavailable",
        "OCRServingErrorBudgetBurnFast",
    }
    runbook = (REPO_ROOT / "RUNBOOK.md").read_text()
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', runbook))
    anchors |= {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", runbook, flags=re.MULTILINE)
    }
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in {"warning", "critical"}, name
        anchor = alert["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor in anchors, f"{name}: RUNBOOK.md has no section #{anchor}"


def test_rules_read_only_documented_metrics() -> None:
    exprs = [r["expr"] for g in rule_groups() for r in g["rules"]]
    assert not undocumented(exprs)
    for expr in exprs:
        assert set(RECORDED.findall(expr)) <= recorded_names(), expr


def test_dashboard_is_valid_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "ocr-serving"
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "namespace", "ocrserving"}
    for expr in dashboard_exprs():
        for used in re.findall(r"\$(\w+)", expr):
            assert used in variables | {"__rate_interval"}, expr


@pytest.mark.parametrize(
    "title",
    [
        "Jobs per second",
        "End-to-end job latency",
        "Batch size",
        "Kafka consumer lag",
        "Accelerator utilisation",
        "Active mode over time",
        "CPU by pod",
        "Memory by pod",
        "Container restarts",
        "GPU memory used",
        "Reconciles and reconcile errors",
        "Advisor decisions by rule",
        "Prometheus query errors",
        "Operator replicas: leader, restarts, CPU, memory",
    ],
)
def test_dashboard_has_the_panels_the_issue_asks_for(title: str) -> None:
    titles = {p["title"] for p in json.loads(DASHBOARD.read_text())["panels"]}
    assert title in titles


def test_dashboard_reads_only_documented_metrics() -> None:
    missing = undocumented(dashboard_exprs())
    assert not missing, f"not in docs/metrics.md nor derived by kube-state-metrics: {missing}"


def test_dashboard_annotates_mode_transitions_from_the_operator() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    (transitions,) = [
        a for a in dashboard["annotations"]["list"] if a.get("name") == "Mode transitions"
    ]
    assert "ocr_operator_transitions_total" in transitions["expr"]
    assert "{{from_mode}} -> {{to_mode}}" in transitions["titleFormat"]
    assert transitions["datasource"]["uid"] == "${datasource}"
    assert not undocumented([transitions["expr"]])
