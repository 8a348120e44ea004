"""`spec.engine.model`: where the workers' OCR model comes from, and what it resolved to.

Image (nothing set): the models inside the runtime image. `uri`: an http(s) or s3 archive or
folder that an init container fetches (s3 through the S3 API `s3` names, with the key pair of
a Secret), or a PersistentVolumeClaim mounted read-only. `mlflow`: a registered model of an
MLflow registry; the operator resolves an alias to a version (again at every resync), so
moving the alias rolls the workers onto the new version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from ocr_operator.model._base import SecretKey, SecretName, WireModel

# (CEL rule, message, Python check): the apiserver and the operator refuse the same specs
# with the same words.
_HTTP = re.compile(r"^https?://[^\s/]+/\S*$")
_FETCHED_TARGET = re.compile(r"(\.tar\.gz|\.tgz|/MANIFEST\.json|/)$")
_PVC = re.compile(r"^pvc://([a-z0-9]([-a-z0-9.]*[a-z0-9])?)(/\S*)?$")
# A bucket as S3 names them (3-63 lower-case letters, digits, dots and hyphens), then a key.
_S3 = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+$")
MODELS_URI = re.compile(
    r"^models:/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,127})"
    r"(?:/(?P<ref>[A-Za-z0-9_-]{1,63})|@(?P<alias>[A-Za-z0-9_-]{1,63}))$"
)
S3_SCHEME = "s3://"
_FETCHED = "(\\\\.tar\\\\.gz|\\\\.tgz|/MANIFEST\\\\.json|/)$"

SCHEME_MESSAGE = "engine.model.uri must start with https://, http://, s3:// or pvc://"
HTTP_MESSAGE = (
    "an http(s) engine.model.uri names a .tar.gz or .tgz archive, a MANIFEST.json, or a "
    "folder ending in / (that holds a MANIFEST.json)"
)
S3_MESSAGE = (
    "an s3 engine.model.uri is s3://<bucket>/<key> naming a .tar.gz or .tgz archive, a "
    "MANIFEST.json, or a folder ending in / (that holds a MANIFEST.json)"
)
PVC_MESSAGE = "a pvc engine.model.uri is pvc://<claim>/<folder in the claim>"
DOTS_MESSAGE = "engine.model.uri may not contain /../"
S3_NEEDS_ENDPOINT_MESSAGE = "an s3:// engine.model.uri needs engine.model.s3.endpoint"
S3_NEEDS_URI_MESSAGE = "engine.model.s3 goes with an s3:// engine.model.uri"
ONE_SOURCE_MESSAGE = "engine.model: set uri or mlflow, not both (neither: the models in the image)"

_URI_RULES: tuple[tuple[str, str], ...] = (
    ("!has(self.uri) || self.uri.matches('^(https?|s3|pvc)://')", SCHEME_MESSAGE),
    (
        "!has(self.uri) || !self.uri.matches('^https?://') || "
        "(self.uri.matches('^https?://[^\\\\s/]+/\\\\S*$') && "
        f"self.uri.matches('{_FETCHED}'))",
        HTTP_MESSAGE,
    ),
    (
        "!has(self.uri) || !self.uri.startsWith('s3://') || "
        "(self.uri.matches('^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\\\\S+$') && "
        f"self.uri.matches('{_FETCHED}'))",
        S3_MESSAGE,
    ),
    (
        "!has(self.uri) || !self.uri.startsWith('pvc://') || "
        "self.uri.matches('^pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(/\\\\S*)?$')",
        PVC_MESSAGE,
    ),
    ("!has(self.uri) || !self.uri.contains('/../')", DOTS_MESSAGE),
    ("!has(self.uri) || !self.uri.startsWith('s3://') || has(self.s3)", S3_NEEDS_ENDPOINT_MESSAGE),
    ("!has(self.s3) || (has(self.uri) && self.uri.startsWith('s3://'))", S3_NEEDS_URI_MESSAGE),
    ("!(has(self.uri) && has(self.mlflow))", ONE_SOURCE_MESSAGE),
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


class S3CredentialsSecretRef(WireModel):
    """The Secret (in the resource's namespace) holding the key pair S3 requests are signed
    with; the operator never reads it, the init container gets its keys as variables."""

    name: SecretName = Field(description="Secret name.")
    access_key_id_key: SecretKey = Field(
        "AWS_ACCESS_KEY_ID", description="Key of the access key id in the Secret."
    )
    secret_access_key_key: SecretKey = Field(
        "AWS_SECRET_ACCESS_KEY", description="Key of the secret access key in the Secret."
    )


class S3ModelAccess(WireModel):
    """The S3 API an s3:// engine.model.uri is read from, and as whom."""

    endpoint: Annotated[
        str, StringConstraints(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=512)
    ] = Field(
        description="S3 API endpoint, read path-style (<endpoint>/<bucket>/<key>): "
        "https://s3.eu-west-1.amazonaws.com, http://minio.storage.svc:9000."
    )
    region: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][-a-z0-9]*$", max_length=64)] = (
        Field("us-east-1", description="Region the requests are signed for (SigV4).")
    )
    credentials_secret_ref: S3CredentialsSecretRef | None = Field(
        None,
        description="Secret holding the access key pair; unset: unsigned requests, which "
        "only a public bucket answers.",
    )


_SPEC_RULES = {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in _URI_RULES]}


class ModelSpec(WireModel, json_schema_extra=_SPEC_RULES):
    """The OCR model the workers serve (unset: the models in the runtime image)."""

    uri: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        None,
        description="https://.../model.tar.gz (or .tgz), https://.../MANIFEST.json or a "
        "folder https://.../ holding one, or the same as s3://<bucket>/<key> (with s3): "
        "fetched by an init container, which checks every file against MANIFEST.json. "
        "pvc://<claim>/<folder>: the claim mounted read-only. The folder is laid out for "
        "spec.engine.kind.",
    )
    s3: S3ModelAccess | None = Field(
        None, description="The S3 API and credentials of an s3:// uri."
    )
    mlflow: MlflowModelRef | None = Field(
        None, description="A model version or alias of an MLflow model registry."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        problem = source_problem(self.uri, has_s3=self.s3 is not None)
        if problem is None and self.uri is not None and self.mlflow is not None:
            problem = ONE_SOURCE_MESSAGE
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
    if not uri.startswith(("https://", "http://", S3_SCHEME, "pvc://")):
        return SCHEME_MESSAGE
    if uri.startswith("http") and not (_HTTP.match(uri) and _FETCHED_TARGET.search(uri)):
        return HTTP_MESSAGE
    if uri.startswith(S3_SCHEME) and not (_S3.match(uri) and _FETCHED_TARGET.search(uri)):
        return S3_MESSAGE
    if uri.startswith("pvc://") and not _PVC.match(uri):
        return PVC_MESSAGE
    return DOTS_MESSAGE if "/../" in uri else None


def source_problem(uri: str | None, *, has_s3: bool) -> str | None:
    """`uri_problem`, then the CEL rules that pair an s3:// uri with engine.model.s3."""
    problem = uri_problem(uri) if uri is not None else None
    is_s3 = uri is not None and uri.startswith(S3_SCHEME)
    if problem is None and is_s3 and not has_s3:
        return S3_NEEDS_ENDPOINT_MESSAGE
    if problem is None and has_s3 and not is_s3:
        return S3_NEEDS_URI_MESSAGE
    return problem


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
    s3: S3ModelAccess | None = None  # s3:// locations: the S3 API and the Secret to sign with

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
    return ResolvedModel(ModelSourceKind.URI, name, model_version, spec_model.uri, s3=spec_model.s3)
