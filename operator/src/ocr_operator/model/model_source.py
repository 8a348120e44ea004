"""`spec.engine.model`: where the workers' OCR model comes from, and what it resolved to.

Image (nothing set): the models inside the runtime image. `uri`: an http(s) archive or
folder that an init container fetches, or a PersistentVolumeClaim mounted read-only. `mlflow`:
a registered model of an MLflow registry; the operator resolves an alias to a version (again
at every resync), so moving the alias rolls the workers onto the new version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from ocr_operator.model._base import WireModel

# (CEL rule, message, Python check): the apiserver and the operator refuse the same specs
# with the same words.
_HTTP = re.compile(r"^https?://[^\s/]+/\S*$")
_HTTP_TARGET = re.compile(r"(\.tar\.gz|\.tgz|/MANIFEST\.json|/)$")
_PVC = re.compile(r"^pvc://([a-z0-9]([-a-z0-9.]*[a-z0-9])?)(/\S*)?$")
MODELS_URI = re.compile(
    r"^models:/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,127})"
    r"(?:/(?P<ref>[A-Za-z0-9_-]{1,63})|@(?P<alias>[A-Za-z0-9_-]{1,63}))$"
)

_URI_RULES: tuple[tuple[str, str], ...] = (
    (
        "!has(self.uri) || self.uri.matches('^(https?|pvc)://')",
        "engine.model.uri must start with https://, http:// or pvc:// (s3:// is not supported)",
    ),
    (
        "!has(self.uri) || !self.uri.matches('^https?://') || "
        "(self.uri.matches('^https?://[^\\\\s/]+/\\\\S*$') && "
        "self.uri.matches('(\\\\.tar\\\\.gz|\\\\.tgz|/MANIFEST\\\\.json|/)$'))",
        "an http(s) engine.model.uri names a .tar.gz or .tgz archive, a MANIFEST.json, or a "
        "folder ending in / (that holds a MANIFEST.json)",
    ),
    (
        "!has(self.uri) || !self.uri.startsWith('pvc://') || "
        "self.uri.matches('^pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/\\\\S*)?$')",
        "a pvc engine.model.uri is pvc://<claim>/<folder in the claim>",
    ),
    ("!has(self.uri) || !self.uri.contains('/../')", "engine.model.uri may not contain /../"),
    (
        "!(has(self.uri) && has(self.mlflow))",
        "engine.model: set uri or mlflow, not both (neither: the models in the image)",
    ),
)


class ModelSourceKind(StrEnum):
    """Where the served model comes from."""

    IMAGE = "Image"
    URI = "Uri"
    MLFLOW = "MLflow"


class MlflowModelRef(WireModel):
    """A registered model version, or alias, of an MLflow model registry."""

    model_uri: Annotated[str, StringConstraints(max_length=256)] = Field(
        description="models:/<name>/<version>, models:/<name>/<alias> or "
        "models:/<name>@<alias>. An alias is resolved to its version by the operator, again "
        "at every resync: moving the alias rolls the workers.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self.matches('{MODELS_URI.pattern}')",
                    "message": "mlflow.modelUri must be models:/<name>/<version or alias> or "
                    "models:/<name>@<alias>",
                }
            ]
        },
    )
    tracking_uri: Annotated[
        str, StringConstraints(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=512)
    ] = Field(
        description="MLflow tracking server, e.g. http://mlflow.mlflow.svc:5000; the operator "
        "and the workers' init container call its REST API (artifacts proxied by the server)."
    )

    @model_validator(mode="after")
    def _uri_is_a_model(self) -> MlflowModelRef:
        if MODELS_URI.match(self.model_uri) is None:
            raise ValueError(
                "mlflow.modelUri must be models:/<name>/<version or alias> or "
                "models:/<name>@<alias>"
            )
        return self

    def reference(self) -> tuple[str, str | None, str | None]:
        """(name, version, alias): exactly one of version and alias is set."""
        match = MODELS_URI.match(self.model_uri)
        assert match is not None  # checked at validation
        ref = match["ref"]
        if ref is not None and ref.isdigit():
            return match["name"], ref, None
        return match["name"], None, ref or match["alias"]


_SPEC_RULES = {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in _URI_RULES]}


class ModelSpec(WireModel, json_schema_extra=_SPEC_RULES):
    """The OCR model the workers serve (unset: the models in the runtime image)."""

    uri: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        None,
        description="https://.../model.tar.gz (or .tgz), https://.../MANIFEST.json or a "
        "folder https://.../ holding one: fetched by an init container, which checks every "
        "file against MANIFEST.json. pvc://<claim>/<folder>: the claim mounted read-only. "
        "The folder is laid out for spec.engine.kind.",
    )
    mlflow: MlflowModelRef | None = Field(
        None, description="A model version or alias of an MLflow model registry."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        problem = uri_problem(self.uri) if self.uri is not None else None
        if problem is None and self.uri is not None and self.mlflow is not None:
            problem = _URI_RULES[-1][1]
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def source(self) -> ModelSourceKind:
        if self.mlflow is not None:
            return ModelSourceKind.MLFLOW
        return ModelSourceKind.IMAGE if self.uri is None else ModelSourceKind.URI


def uri_problem(uri: str) -> str | None:
    """The CEL rules' message for a bad `uri`, checked in Python; None when it is fine."""
    messages = [message for _, message in _URI_RULES]
    if not uri.startswith(("https://", "http://", "pvc://")):
        return messages[0]
    if uri.startswith("http") and not (_HTTP.match(uri) and _HTTP_TARGET.search(uri)):
        return messages[1]
    if uri.startswith("pvc://") and not _PVC.match(uri):
        return messages[2]
    return messages[3] if "/../" in uri else None


def pvc_location(uri: str) -> tuple[str, str]:
    """(claim, folder inside it) of a pvc:// uri; the folder is "" for the claim's root."""
    match = _PVC.match(uri)
    if match is None:
        raise ValueError(f"{uri} is not pvc://<claim>/<folder>")
    return match[1], (match[3] or "").strip("/")


class ModelStatus(WireModel):
    """The model the workers are rolled to (the resolution of spec.engine.model)."""

    source: ModelSourceKind = Field(description="Image, Uri or MLflow.")
    name: Annotated[str, StringConstraints(max_length=256)] = Field(
        description="Registered model name (MLflow), the file or folder name (Uri), or image."
    )
    version: Annotated[str, StringConstraints(max_length=128)] = Field(
        description="The concrete version: an MLflow alias resolved (spec.engine.modelVersion "
        "for the other sources)."
    )
    ref: Annotated[str, StringConstraints(max_length=1024)] = Field(
        description="One-line reference, e.g. models:/ocr/3 (the Model column)."
    )
    location: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        None, description="Where the files are fetched from (MLflow: the download URI)."
    )


@dataclass(frozen=True)
class ResolvedModel:
    """What the workers serve, concretely: a version, never a moving alias."""

    source: ModelSourceKind
    name: str
    version: str
    location: str  # what the init container fetches, or the pvc:// uri; "" for the image
    tracking_uri: str | None = None  # MLflow: resolves mlflow-artifacts:/ locations

    @property
    def ref(self) -> str:
        """One line for people (the Model column of `kubectl get ocrs -o wide`)."""
        if self.source is ModelSourceKind.MLFLOW:
            return f"models:/{self.name}/{self.version}"
        return self.location or f"image:{self.version}"

    @property
    def label(self) -> str:
        """How conditions name it: the declared version for the image's models."""
        return self.version if self.source is ModelSourceKind.IMAGE else self.ref

    def status(self) -> ModelStatus:
        return ModelStatus(
            source=self.source,
            name=self.name,
            version=self.version,
            ref=self.ref,
            location=self.location or None,
        )


def static_resolution(spec_model: ModelSpec, model_version: str) -> ResolvedModel | None:
    """The resolution of a source that needs no registry; None for MLflow (even a fixed
    version: its files' location comes from the registry)."""
    if spec_model.mlflow is not None:
        return None
    if spec_model.uri is None:
        return ResolvedModel(ModelSourceKind.IMAGE, "image", model_version, "")
    folder = spec_model.uri.removesuffix("MANIFEST.json").rstrip("/")
    name = folder.rsplit("/", 1)[-1]
    return ResolvedModel(ModelSourceKind.URI, name, model_version, spec_model.uri)
