"""Generate the OCRServing CRD from the pydantic model (the one source of truth).

`python -m ocr_operator.crd > crds/ocrserving.yaml`; a test keeps the committed file equal
to this output. Pydantic's JSON Schema is turned into a Kubernetes structural schema:
`$ref`s inlined, optional `anyOf [X, null]` collapsed to X, titles dropped, object defaults
expanded from default factories, CEL rules kept.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from ocr_operator import API_GROUP, API_VERSION, KIND, PLURAL
from ocr_operator.model import OCRServingSpec, OCRServingStatus

Schema = dict[str, Any]

_DROP = {"title", "$defs"}

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "Mode",
        "type": "string",
        "jsonPath": ".spec.architecture.mode",
        "description": "Mode written in the spec.",
    },
    {
        "name": "Policy",
        "type": "string",
        "jsonPath": ".spec.architecture.policy",
        "description": "Manual, Recommend or Auto.",
        "priority": 1,
    },
    {
        "name": "Active",
        "type": "string",
        "jsonPath": ".status.activeMode",
        "description": "Mode the stack runs.",
    },
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        "description": "Ready condition.",
    },
    {
        "name": "Recommended",
        "type": "string",
        "jsonPath": ".status.recommendation.mode",
        "description": "Mode the advisor recommends.",
    },
    {
        "name": "GPU",
        "type": "number",
        "jsonPath": ".status.advisor.gpuUtilization",
        "description": "Worker GPU utilisation (percent).",
    },
    {
        "name": "Lag",
        "type": "number",
        "jsonPath": ".status.advisor.timeToDrainSeconds",
        "description": "Time to drain the backlog (lag / consumption rate), seconds.",
    },
    {
        "name": "Model",
        "type": "string",
        "jsonPath": ".status.model.ref",
        "description": "The model the workers are rolled to (an MLflow alias resolved).",
        "priority": 1,
    },
    {
        "name": "Reason",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        "description": "Why the stack is (not) Ready.",
        "priority": 1,
    },
    {
        "name": "URL",
        "type": "string",
        "jsonPath": ".status.url",
        "description": "In-cluster address of the API Service.",
        "priority": 1,
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


# `kubectl scale ocrs/NAME --replicas=N` (and any HPA or ScaledObject aimed at the resource)
# sets the worker replicas; the operator reports the worker Deployment's back.
SCALE = {
    "specReplicasPath": ".spec.worker.replicas",
    "statusReplicasPath": ".status.workerReplicas",
    "labelSelectorPath": ".status.workerSelector",
}


def _resolve(node: Any, defs: dict[str, Schema]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = _resolve(defs[node.pop("$ref").rsplit("/", 1)[-1]], defs)
        # The field's own description wins over the referenced model's docstring.
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**_resolve(node.pop("allOf")[0], defs), **node}
    if "anyOf" in node:
        variants = [v for v in node["anyOf"] if v.get("type") != "null"]
        if len(variants) == 1:
            node.pop("anyOf")
            node = {**_resolve(variants[0], defs), **node}
    return {k: _resolve(v, defs) for k, v in node.items() if k not in _DROP}


def _structural(node: Any) -> Any:
    """Kubernetes-specific clean-up after inlining."""
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _structural(v) for k, v in node.items()}
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        # JSON Schema 2020 (pydantic gt/lt) -> OpenAPI v3.0 (a boolean next to the bound).
        value = out.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[limit], out[bound] = value, True
    if "patternProperties" in out:
        # Structural schemas have no patternProperties: the values' schema becomes
        # additionalProperties and the key pattern a CEL rule.
        ((pattern, values),) = out.pop("patternProperties").items()
        limit = out.pop("propertyNames", {}).get("maxLength")
        check = f"k.matches(r'{pattern}')" + (f" && size(k) <= {limit}" if limit else "")
        out["additionalProperties"] = values
        out.setdefault("x-kubernetes-validations", []).append(
            {"rule": f"self.all(k, {check})", "message": f"keys must match {pattern}"}
        )
    if out.get("default", 0) is None:
        out.pop("default")
    if out.get("additionalProperties") is True:
        out.pop("additionalProperties")
    if out.get("type") == "object" and "properties" in out:
        out.pop("additionalProperties", None)
    return out


class _WithFactoryDefaults(GenerateJsonSchema):
    """Defaults from default_factory too, fully expanded: the apiserver checks CEL rules
    against a default as written, without defaulting inside it first."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()  # type: ignore[call-arg]
        return super().get_default_value(schema)

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, BaseModel):
            return dft.model_dump(mode="json", by_alias=True, exclude_none=True)
        return super().encode_default(dft)


def model_schema(model: type[Any]) -> Schema:
    """Structural openAPIV3Schema of one pydantic model."""
    raw = model.model_json_schema(
        by_alias=True, mode="validation", schema_generator=_WithFactoryDefaults
    )
    schema: Schema = _structural(_resolve(raw, raw.get("$defs", {})))
    return schema


def openapi_schema() -> Schema:
    """The whole-object schema of OCRServing (spec and status)."""
    spec = model_schema(OCRServingSpec)
    status = model_schema(OCRServingStatus)
    status["properties"]["conditions"]["x-kubernetes-list-type"] = "map"
    status["properties"]["conditions"]["x-kubernetes-list-map-keys"] = ["type"]
    return {
        "type": "object",
        "description": "An OCR model-serving stack (API, workers, optional writer, topics) "
        "whose architecture can be switched between Standard, Batched and Writer.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "API version."},
            "kind": {"type": "string", "description": "Kind."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def crd() -> Schema:
    """The CustomResourceDefinition manifest."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["ocrs"],
                "categories": ["all", "ocr"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}, "scale": SCALE},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


HEADER = "# Generated by `python -m ocr_operator.crd` from ocr_operator.model; do not edit.\n"


def render_yaml() -> str:
    return HEADER + yaml.safe_dump(crd(), sort_keys=False, width=100)


def main() -> None:
    sys.stdout.write(render_yaml())


if __name__ == "__main__":
    main()
