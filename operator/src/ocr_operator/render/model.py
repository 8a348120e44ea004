"""The worker pod's model: an init container that fetches it, or a claim mounted read-only.

Image source: the worker Deployment as rendered. Uri (http, s3) and MLflow: an emptyDir at
`OCR_MODEL_DIR` that the init container (`ocr-runtime fetch-model`, the worker's own image)
fills and checks against the folder's MANIFEST.json before the worker starts; for s3 it gets
the endpoint and region as values and the key pair from the Secret spec.engine.model.s3
names (never as literals: the operator does not read the Secret). pvc://: the
claim's folder mounted read-only there; the worker checks the manifest when it loads.
The concrete reference goes into a pod-template annotation, so a new version (an MLflow
alias moved) rolls the workers; maxUnavailable 0 keeps the old ones serving meanwhile.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlsplit

from ocr_contract import Env
from ocr_operator.model.model_source import (
    ModelSourceKind,
    ModelSpec,
    ResolvedModel,
    S3ModelAccess,
    pvc_location,
)
from ocr_operator.model.pod import RESERVED_MOUNT_PATH, RESERVED_VOLUME
from ocr_operator.render._manifest import ANNOTATION_MODEL_VERSION, Manifest

MODEL_VOLUME = "ocr-model"
MODEL_MOUNT_PATH = "/models"
FETCH_CONTAINER = "fetch-model"
ANNOTATION_MODEL = "ocrserving.io/model"
# Fetching is network and disk bound; the requests keep the pod out of BestEffort.
FETCH_RESOURCES: dict[str, Any] = {"requests": {"cpu": "100m", "memory": "128Mi"}}


def with_model(deployment: Manifest, model: ResolvedModel) -> Manifest:
    """The worker Deployment serving `model` (a copy; the image source leaves it as is)."""
    if model.source is ModelSourceKind.IMAGE:
        return deployment
    body = copy.deepcopy(deployment.body)
    template = body["spec"]["template"]
    template["metadata"]["annotations"][ANNOTATION_MODEL] = model.ref
    if model.source is ModelSourceKind.MLFLOW:
        # The registry's version, not spec.engine.modelVersion: what the pods really serve.
        template["metadata"]["labels"][ANNOTATION_MODEL_VERSION] = model.version
        template["metadata"]["annotations"][ANNOTATION_MODEL_VERSION] = model.version
    pod = template["spec"]
    worker = pod["containers"][0]
    # Before the spec's extra variables, like every variable the operator renders.
    worker["env"] = [{"name": Env.MODEL_DIR.value, "value": MODEL_MOUNT_PATH}, *worker["env"]]
    mount: dict[str, Any] = {"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT_PATH, "readOnly": True}
    if model.location.startswith("pvc://"):
        claim, folder = pvc_location(model.location)
        volume = {
            "name": MODEL_VOLUME,
            "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
        }
        if folder:
            mount["subPath"] = folder
    else:
        volume = {"name": MODEL_VOLUME, "emptyDir": {}}
        pod["initContainers"] = [fetch_container(worker, model)]
    pod["volumes"] = [*pod["volumes"], volume]
    worker["volumeMounts"] = [*worker["volumeMounts"], mount]
    return Manifest(deployment.kind, deployment.name, body, deployment.component, deployment.owned)


def fetch_args(model: ResolvedModel) -> list[str]:
    """`ocr-runtime fetch-model` arguments for `model`."""
    args = ["fetch-model", "--from", model.location, "--to", MODEL_MOUNT_PATH]
    if model.tracking_uri is not None:
        args += ["--tracking-uri", model.tracking_uri]
    return args


def fetch_container(worker: dict[str, Any], model: ResolvedModel) -> dict[str, Any]:
    """The init container: the worker's image, settings (OCR_ENGINE names the layout it
    checks) and security context; for s3 the variables that reach the bucket."""
    container: dict[str, Any] = {
        "name": FETCH_CONTAINER,
        "image": worker["image"],
        "imagePullPolicy": worker["imagePullPolicy"],
        "command": ["ocr-runtime"],
        "args": fetch_args(model),
        "envFrom": copy.deepcopy(worker["envFrom"]),
        "resources": copy.deepcopy(FETCH_RESOURCES),
        # fetch-model writes why it refused a model there; the operator reads it from the
        # init container's status into the Degraded condition.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": copy.deepcopy(worker["securityContext"]),
        "volumeMounts": [
            {"name": RESERVED_VOLUME, "mountPath": RESERVED_MOUNT_PATH},
            {"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT_PATH},
        ],
    }
    if model.s3 is not None:
        container["env"] = s3_env(model.s3)
    return container


def s3_env(access: S3ModelAccess) -> list[dict[str, Any]]:
    """OCR_MODEL_S3_*: the endpoint and region as values, the keys from the Secret."""
    env: list[dict[str, Any]] = [
        {"name": Env.MODEL_S3_ENDPOINT.value, "value": access.endpoint},
        {"name": Env.MODEL_S3_REGION.value, "value": access.region},
    ]
    ref = access.credentials_secret_ref
    if ref is not None:
        for name, key in (
            (Env.MODEL_S3_ACCESS_KEY_ID, ref.access_key_id_key),
            (Env.MODEL_S3_SECRET_ACCESS_KEY, ref.secret_access_key_key),
        ):
            env.append(
                {"name": name.value, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": key}}}
            )
    return env


def model_egress(model: ModelSpec) -> list[dict[str, Any]]:
    """The worker's NetworkPolicy egress rule to where its init container fetches from."""
    url = model.mlflow.tracking_uri if model.mlflow is not None else model.uri
    if model.s3 is not None:
        url = model.s3.endpoint
    if url is None or not url.startswith(("http://", "https://")):
        return []
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return [{"ports": [{"port": port, "protocol": "TCP"}]}]
