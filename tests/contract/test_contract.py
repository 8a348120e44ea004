"""The contract package: standard library only, and both sides built on it (the runtime's
settings and metrics carry its names; the operator's enums are its enums)."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

import ocr_contract
from ocr_contract import TOPOLOGY, Component, Env, Metric, Mode, Role, unknown_settings
from ocr_operator import model
from ocr_runtime.bootstrap.cli import ROLES
from ocr_runtime.core import settings
from ocr_runtime.core.metrics import ApiMetrics
from ocr_runtime.worker.metrics import DataPlaneMetrics

CONTRACT = Path(ocr_contract.__file__).parent


def test_the_contract_depends_on_the_standard_library_only() -> None:
    project = tomllib.loads((CONTRACT.parents[1] / "pyproject.toml").read_text())
    assert project["project"]["dependencies"] == []
    for path in CONTRACT.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names | {"ocr_contract", "__future__"}, (
                    f"{path.name} imports {name}"
                )


def test_every_setting_the_operator_renders_is_a_runtime_setting() -> None:
    assert unknown_settings(frozenset(settings.Settings.model_fields)) == []
    # The check the runtime runs at import does find a name that is not a field.
    assert unknown_settings(frozenset({"mode"})) == [e for e in Env if e is not Env.MODE]


def test_the_runtime_exports_every_metric_the_advisor_queries() -> None:
    registry = CollectorRegistry()
    DataPlaneMetrics(registry)
    ApiMetrics(registry)
    exported = {
        line.split()[2]
        for line in generate_latest(registry).decode().splitlines()
        if line.startswith("# TYPE ")
    }
    assert {m.value for m in Metric} <= exported


def test_both_sides_use_the_contracts_enums_and_roles() -> None:
    assert (model.Mode, model.Component, model.EngineKind, model.Device) == (
        ocr_contract.Mode,
        ocr_contract.Component,
        ocr_contract.EngineKind,
        ocr_contract.Device,
    )
    assert (settings.Mode, settings.EngineKind, settings.Device) == (
        ocr_contract.RuntimeMode,
        ocr_contract.EngineKind,
        ocr_contract.Device,
    )
    assert set(ROLES) == set(Role)
    assert set(TOPOLOGY) == set(Mode)
    for topology in TOPOLOGY.values():
        assert {Component.API, Component.WORKER} <= set(topology.components)
        for run in topology.components.values():
            # A consumer names its group; its input topic is one of the mode's topics.
            assert (run.consumes is None) == (run.group is None)
            assert run.consumes is None or run.consumes in topology.topics
