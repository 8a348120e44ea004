"""The committed CRD is exactly what the model generates, and it documents every field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ocr_operator.cli import main
from ocr_operator.crd import crd, render_yaml
from tests.operator._examples import ROOT


def _walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)]
    for key, child in (schema.get("properties") or {}).items():
        found += _walk(child, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        found += _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += _walk(schema["additionalProperties"], f"{path}{{}}")
    return found


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_committed_crd_equals_generated() -> None:
    committed = (ROOT / "crds" / "ocrserving.yaml").read_text()
    assert committed == render_yaml(), "run: python -m ocr_operator.crd > crds/ocrserving.yaml"


def test_every_spec_and_status_field_has_a_description() -> None:
    schema = _schema()
    missing = [
        path
        for part in ("spec", "status")
        for path, node in _walk(schema["properties"][part], part)
        if not node.get("description") and not path.endswith("{}") and not path.endswith("[]")
    ]
    assert missing == []


def test_schema_is_structural() -> None:
    forbidden = {"$ref", "allOf", "oneOf", "title", "$defs", "const"}
    forbidden |= {"patternProperties", "propertyNames"}
    text = yaml.safe_dump(_schema())
    leftovers = [word for word in forbidden if f"{word}:" in text.split()]
    assert leftovers == []
    for path, node in _walk(_schema()):
        if node.get("x-kubernetes-int-or-string"):
            # The one anyOf a structural schema allows (how Kubernetes writes a Quantity).
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            continue
        assert "anyOf" not in node, path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert node.get(bound, True) is True, path  # OpenAPI v3.0: a boolean


def test_names_printer_columns_and_status_subresource() -> None:
    spec = crd()["spec"]
    assert spec["group"] == "ocrserving.io"
    assert spec["names"]["shortNames"] == ["ocrs"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {
        "status": {},
        # kubectl scale ocrs/NAME --replicas=N, or an HPA/ScaledObject aimed at the resource.
        "scale": {
            "specReplicasPath": ".spec.worker.replicas",
            "statusReplicasPath": ".status.workerReplicas",
            "labelSelectorPath": ".status.workerSelector",
        },
    }
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    for wanted in ("Mode", "Active", "Ready", "Recommended", "GPU", "Lag", "Age"):
        assert wanted in columns


def test_enums_and_defaults_reach_the_schema() -> None:
    spec = _schema()["properties"]["spec"]
    architecture = spec["properties"]["architecture"]["properties"]
    assert architecture["mode"]["enum"] == ["Standard", "Batched", "Writer"]
    assert architecture["mode"]["default"] == "Standard"
    assert architecture["policy"]["enum"] == ["Manual", "Recommend", "Auto"]
    kafka = spec["properties"]["kafka"]
    assert kafka["properties"]["management"]["enum"] == ["Operator", "Strimzi", "External"]
    assert set(spec["required"]) == {"kafka", "database"}
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert any("kafka.partitions" in r for r in rules)


def test_cli_prints_the_crd(capsys: pytest.CaptureFixture[str]) -> None:
    main(["crd"])
    assert capsys.readouterr().out == render_yaml()
