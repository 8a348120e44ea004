"""Deployments of api, worker and writer."""

from __future__ import annotations

from typing import Any

from ocr_operator.model import AntiAffinity, Component, Device, Mode, OCRServingSpec
from ocr_operator.model.spec import ApiSpec, WorkerSpec, WriterSpec
from ocr_operator.render._manifest import (
    ANNOTATION_CONFIG_HASH,
    ANNOTATION_MODE,
    ANNOTATION_MODEL_VERSION,
    Instance,
    Kind,
    Manifest,
    component_name,
    config_map_name,
    make,
    selector_labels,
)
from ocr_operator.render.env import (
    PRESTOP_SECONDS,
    config_data,
    config_hash,
    container_env,
    termination_grace_seconds,
)

RUN_AS_USER = 10001
GPU_RESOURCE = "nvidia.com/gpu"


def deployment(
    spec: OCRServingSpec, instance: Instance, component: Component, mode: Mode
) -> Manifest:
    """The Deployment of one component running `mode` (OCR_MODE)."""
    part = _component_spec(spec, component)
    selector = selector_labels(instance, component)
    body: dict[str, Any] = {
        "selector": {"matchLabels": selector},
        "revisionHistoryLimit": 3,
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {
                "labels": {**selector, "ocrserving.io/model-version": spec.engine.model_version},
                "annotations": {
                    ANNOTATION_MODE: mode.value,
                    ANNOTATION_CONFIG_HASH: config_hash(config_data(spec)),
                    ANNOTATION_MODEL_VERSION: spec.engine.model_version,
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": str(spec.http_port),
                    "prometheus.io/path": "/metrics",
                },
            },
            "spec": _pod_spec(spec, instance, component, mode),
        },
    }
    # With an autoscaler the HPA owns replicas: leaving the field out keeps server-side
    # apply from fighting it (and ArgoCD from seeing drift).
    if not part.autoscaling.enabled:
        body["replicas"] = part.replicas
    manifest = make(Kind.DEPLOYMENT, component_name(instance, component), instance, body, component)
    manifest.body["metadata"]["annotations"] = {ANNOTATION_MODE: mode.value}
    return manifest


def _component_spec(
    spec: OCRServingSpec, component: Component
) -> ApiSpec | WorkerSpec | WriterSpec:
    if component is Component.API:
        return spec.api
    return spec.worker if component is Component.WORKER else spec.writer


def _pod_spec(
    spec: OCRServingSpec, instance: Instance, component: Component, mode: Mode
) -> dict[str, Any]:
    part = _component_spec(spec, component)
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": termination_grace_seconds(spec),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(spec, instance, component, mode)],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if spec.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": n} for n in spec.image_pull_secrets]
    if part.node_selector:
        pod["nodeSelector"] = dict(part.node_selector)
    if part.tolerations:
        pod["tolerations"] = [t.wire() for t in part.tolerations]
    affinity = _anti_affinity(spec.availability.anti_affinity, selector_labels(instance, component))
    if affinity:
        pod["affinity"] = affinity
    spread = spec.availability.topology_spread
    if spread.enabled:
        pod["topologySpreadConstraints"] = [
            {
                "maxSkew": spread.max_skew,
                "topologyKey": spread.topology_key,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector_labels(instance, component)},
            }
        ]
    return pod


def _container(
    spec: OCRServingSpec, instance: Instance, component: Component, mode: Mode
) -> dict[str, Any]:
    return {
        "name": component.value,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy.value,
        "command": ["ocr-runtime"],
        "args": [component.value],
        "ports": [{"name": "http", "containerPort": spec.http_port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": config_map_name(instance)}}],
        "env": container_env(spec, mode),
        "resources": _resources(spec, component),
        "startupProbe": _probe("/healthz", period=5, failures=60),
        "livenessProbe": _probe("/healthz", period=10, failures=3),
        "readinessProbe": _probe("/readyz", period=5, failures=2),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_SECONDS)]}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _resources(spec: OCRServingSpec, component: Component) -> dict[str, Any]:
    part = _component_spec(spec, component)
    resources: dict[str, Any] = {
        "requests": part.resources.requests.wire(),
        "limits": part.resources.limits.wire(),
    }
    if component is Component.WORKER and spec.engine.device is Device.GPU:
        # Extended resources must be equal in requests and limits.
        resources["requests"][GPU_RESOURCE] = str(spec.worker.gpus)
        resources["limits"][GPU_RESOURCE] = str(spec.worker.gpus)
    return {k: v for k, v in resources.items() if v}


def _anti_affinity(policy: AntiAffinity, selector: dict[str, str]) -> dict[str, Any]:
    term = {"labelSelector": {"matchLabels": selector}, "topologyKey": "kubernetes.io/hostname"}
    if policy is AntiAffinity.REQUIRED:
        return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    if policy is AntiAffinity.PREFERRED:
        return {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "podAffinityTerm": term}
                ]
            }
        }
    return {}
