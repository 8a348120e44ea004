"""Deployments of api, worker and writer."""

from __future__ import annotations

from typing import Any

from ocr_contract import Run, component_run
from ocr_operator.model import AntiAffinity, Component, Device, Mode, OCRServingSpec
from ocr_operator.model.pod import RESERVED_MOUNT_PATH, RESERVED_VOLUME, PodSettings
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
    api_auth_env,
    config_data,
    config_hash,
    container_env,
    termination_grace_seconds,
)
from ocr_operator.render.images import DEFAULTS, StackDefaults, component_image
from ocr_operator.render.kafka_security import (
    kafka_security_env,
    kafka_tls_mounts,
    kafka_tls_volumes,
)

RUN_AS_USER = 10001


def deployment(
    spec: OCRServingSpec,
    instance: Instance,
    component: Component,
    mode: Mode,
    defaults: StackDefaults = DEFAULTS,
) -> Manifest:
    """The Deployment of one component while the workers run `mode`: the role and OCR_MODE
    the topology gives it. A component that reads no OCR_MODE carries no mode at all, so a
    switch leaves its pods alone; one that the workers' mode does not run keeps the run of
    the mode that does (the writer: rolling it on the way out of Writer would restart the
    pod that must drain the results topic)."""
    home, run = component_run(component, mode)
    mode_annotation = {} if run.mode is None else {ANNOTATION_MODE: home.value}
    part = _component_spec(spec, component)
    selector = selector_labels(instance, component)
    body: dict[str, Any] = {
        "selector": {"matchLabels": selector},
        "revisionHistoryLimit": 3,
        "progressDeadlineSeconds": spec.availability.progress_deadline_seconds,
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {
                # The operator's labels and annotations win over the spec's extra ones.
                "labels": {
                    **part.pod_labels,
                    **selector,
                    "ocrserving.io/model-version": spec.engine.model_version,
                },
                "annotations": {
                    **part.pod_annotations,
                    **mode_annotation,
                    ANNOTATION_CONFIG_HASH: config_hash(config_data(spec)),
                    ANNOTATION_MODEL_VERSION: spec.engine.model_version,
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": str(spec.http_port),
                    "prometheus.io/path": "/metrics",
                },
            },
            "spec": _pod_spec(spec, instance, component, run, defaults),
        },
    }
    # With an autoscaler the HPA owns replicas: leaving the field out keeps server-side
    # apply from fighting it (and ArgoCD from seeing drift).
    if not part.autoscaling.enabled:
        body["replicas"] = part.replicas
    manifest = make(Kind.DEPLOYMENT, component_name(instance, component), instance, body, component)
    if mode_annotation:
        manifest.body["metadata"]["annotations"] = mode_annotation
    return manifest


def _component_spec(
    spec: OCRServingSpec, component: Component
) -> ApiSpec | WorkerSpec | WriterSpec:
    if component is Component.API:
        return spec.api
    return spec.worker if component is Component.WORKER else spec.writer


POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS_USER,
    "runAsGroup": RUN_AS_USER,
    "fsGroup": RUN_AS_USER,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def placement(
    spec: OCRServingSpec, component: Component, defaults: StackDefaults
) -> dict[str, Any]:
    """Pull secrets, node selector and tolerations of one component's pods; a component
    that sets neither gets the operator's default placement."""
    part = _component_spec(spec, component)
    pod: dict[str, Any] = {}
    if spec.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": n} for n in spec.image_pull_secrets]
    node_selector = dict(part.node_selector)
    tolerations = [t.wire() for t in part.tolerations]
    if not node_selector and not tolerations:
        node_selector = dict(defaults.node_selector)
        tolerations = [dict(t) for t in defaults.tolerations]
    if node_selector:
        pod["nodeSelector"] = node_selector
    if tolerations:
        pod["tolerations"] = tolerations
    return pod


def _pod_spec(
    spec: OCRServingSpec,
    instance: Instance,
    component: Component,
    run: Run,
    defaults: StackDefaults,
) -> dict[str, Any]:
    image = component_image(spec, component, defaults)
    part = _component_spec(spec, component)
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": termination_grace_seconds(spec),
        "securityContext": dict(POD_SECURITY_CONTEXT),
        "containers": [_container(spec, instance, component, run, image)],
        "volumes": pod_volumes(part) + kafka_tls_volumes(spec),
        **placement(spec, component, defaults),
        **pod_identity(part),
    }
    affinity = _anti_affinity(spec.availability.anti_affinity, selector_labels(instance, component))
    if part.affinity is not None:
        # The spec's own terms; its podAntiAffinity replaces the availability policy's.
        affinity.update(part.affinity.wire())
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
    spec: OCRServingSpec, instance: Instance, component: Component, run: Run, image: str
) -> dict[str, Any]:
    return {
        "name": component.value,
        "image": image,
        "imagePullPolicy": spec.image_pull_policy.value,
        "command": ["ocr-runtime"],
        "args": [run.role.value],
        "ports": [{"name": "http", "containerPort": spec.http_port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": config_map_name(instance)}}],
        "env": container_env(spec, run.mode)
        + kafka_security_env(spec, instance)
        + (api_auth_env(spec, instance.name) if component is Component.API else [])
        + extra_env(_component_spec(spec, component)),
        "resources": _resources(spec, component),
        "startupProbe": _probe("/healthz", period=5, failures=60),
        "livenessProbe": _probe("/healthz", period=10, failures=3),
        "readinessProbe": _probe("/readyz", period=5, failures=2),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_SECONDS)]}}},
        # A start failure (engine missing from the image, bad settings) writes its cause
        # there; the operator reads it from the container status into the conditions.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": dict(CONTAINER_SECURITY_CONTEXT),
        "volumeMounts": volume_mounts(_component_spec(spec, component)) + kafka_tls_mounts(spec),
    }


def pod_identity(part: PodSettings) -> dict[str, Any]:
    """serviceAccountName, runtimeClassName and priorityClassName, those the spec sets."""
    out: dict[str, Any] = {}
    for key, value in (
        ("serviceAccountName", part.service_account_name),
        ("runtimeClassName", part.runtime_class_name),
        ("priorityClassName", part.priority_class_name),
    ):
        if value:
            out[key] = value
    return out


def pod_volumes(part: PodSettings) -> list[dict[str, Any]]:
    """The operator's writable /tmp, then the spec's volumes as written."""
    return [{"name": RESERVED_VOLUME, "emptyDir": {}}, *(v.wire() for v in part.volumes)]


def volume_mounts(part: PodSettings) -> list[dict[str, Any]]:
    tmp = {"name": RESERVED_VOLUME, "mountPath": RESERVED_MOUNT_PATH}
    return [tmp, *(m.wire() for m in part.volume_mounts)]


def extra_env(part: PodSettings) -> list[dict[str, Any]]:
    """The spec's extra variables, after the operator's (which they may not name)."""
    return [e.wire() for e in part.env]


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


# Requests of a component whose spec names neither a request nor a limit of that resource.
# Without them the pod is BestEffort: next to busy Burstable workers (no CPU limit) it gets
# almost no CPU, misses its probe deadlines and never turns Ready, so a Writer transition
# waits forever. A limit alone is left alone: Kubernetes then requests the limit.
DEFAULT_REQUESTS: dict[Component, dict[str, str]] = {
    Component.API: {"cpu": "100m", "memory": "256Mi"},
    Component.WORKER: {"cpu": "500m", "memory": "768Mi"},
    Component.WRITER: {"cpu": "100m", "memory": "256Mi"},
}


def _resources(spec: OCRServingSpec, component: Component) -> dict[str, Any]:
    part = _component_spec(spec, component)
    limits = {name: str(amount) for name, amount in part.resources.limits.items()}
    requests = {name: str(amount) for name, amount in part.resources.requests.items()}
    defaults = {k: v for k, v in DEFAULT_REQUESTS[component].items() if k not in limits}
    resources: dict[str, Any] = {"requests": {**defaults, **requests}, "limits": limits}
    if component is Component.WORKER and spec.engine.device is Device.GPU:
        # Extended resources must be equal in requests and limits.
        gpu = spec.worker.gpu_resource_name
        resources["requests"][gpu] = str(spec.worker.gpus)
        resources["limits"][gpu] = str(spec.worker.gpus)
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
