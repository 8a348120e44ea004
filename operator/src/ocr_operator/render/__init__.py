"""Pure rendering: (spec, active mode, transition plan) -> desired child manifests.

No Kubernetes client here; the apply layer sends what this returns.
"""

from __future__ import annotations

from collections.abc import Mapping

from ocr_contract import TOPIC_SETTINGS, Env, Topic
from ocr_operator.model import Component, OCRServingSpec, TopicManagement
from ocr_operator.model.model_source import ResolvedModel, static_resolution
from ocr_operator.render._manifest import (
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    Instance,
    Kind,
    Manifest,
    component_name,
    instance_labels,
    pod_labels,
    selector_labels,
)
from ocr_operator.render.auth import api_key_digest, api_key_secret, new_api_key
from ocr_operator.render.env import config_data, container_env
from ocr_operator.render.extras import (
    api_service,
    api_url,
    autoscaler,
    config_map,
    disruption_budget,
    kafka_topics,
)
from ocr_operator.render.images import (
    DEFAULTS,
    StackDefaults,
    component_image,
    engine_variant,
    migration_image,
)
from ocr_operator.render.kafka_security import kafka_user, trigger_authentication
from ocr_operator.render.migration import MIGRATION_COMPONENT, migration_job, migration_job_name
from ocr_operator.render.model import with_model
from ocr_operator.render.network import network_policies
from ocr_operator.render.plan import Observed, Phase, Plan, plan_transition
from ocr_operator.render.workloads import deployment

# The writer first: workers may depend on it.
RENDER_ORDER = (Component.WRITER, Component.API, Component.WORKER)


def setting(spec: OCRServingSpec, name: Env) -> str:
    """The value the stack's ConfigMap gives the setting `name`."""
    return config_data(spec)[name.value]


def topic_name(spec: OCRServingSpec, topic: Topic) -> str:
    return setting(spec, TOPIC_SETTINGS[topic])


def topic_names(spec: OCRServingSpec, plan: Plan) -> list[str]:
    """Topics the stack needs now (the results topic only while a writer exists)."""
    return [topic_name(spec, topic) for topic in Topic if topic in plan.topics]


def render(
    spec: OCRServingSpec,
    instance: Instance,
    plan: Plan,
    defaults: StackDefaults = DEFAULTS,
    caps: Mapping[Component, int] | None = None,
    *,
    model: ResolvedModel | None = None,
) -> list[Manifest]:
    """Every child the stack should have now, in apply order (the migration Job aside:
    reconcile creates it once per image and gates the workloads on it). `caps`: the
    advisor's replica caps from status (component -> maxReplicas of its autoscaler).
    `model`: what spec.engine.model resolved to; needed for an MLflow source."""
    model = model or static_resolution(spec.engine.model, spec.engine.model_version)
    if model is None:
        raise ValueError("spec.engine.model.mlflow: render needs the resolved model version")
    components = [c for c in RENDER_ORDER if c in plan.components]
    # The ConfigMap and the NetworkPolicies come first: the migration Job needs both.
    manifests = [config_map(spec, instance), *network_policies(spec, instance, components)]
    if spec.kafka.management is TopicManagement.STRIMZI:
        manifests += kafka_topics(spec, instance, topic_names(spec, plan))
    for kafka_access in (kafka_user(spec, instance), trigger_authentication(spec, instance)):
        if kafka_access is not None:
            manifests.append(kafka_access)
    for component in components:
        manifest = deployment(spec, instance, component, plan.worker_mode, defaults)
        manifests.append(with_model(manifest, model) if component is Component.WORKER else manifest)
        if component is Component.API:
            manifests.append(api_service(spec, instance))
        for extra in (
            autoscaler(spec, instance, component, (caps or {}).get(component)),
            disruption_budget(spec, instance, component),
        ):
            if extra is not None:
                manifests.append(extra)
    return manifests


__all__ = [
    "DEFAULTS",
    "LABEL_COMPONENT",
    "LABEL_INSTANCE",
    "LABEL_MANAGED_BY",
    "MIGRATION_COMPONENT",
    "Instance",
    "Kind",
    "Manifest",
    "Observed",
    "Phase",
    "Plan",
    "StackDefaults",
    "api_key_digest",
    "api_key_secret",
    "api_url",
    "component_image",
    "component_name",
    "config_data",
    "container_env",
    "engine_variant",
    "instance_labels",
    "migration_image",
    "migration_job",
    "migration_job_name",
    "network_policies",
    "new_api_key",
    "plan_transition",
    "pod_labels",
    "render",
    "selector_labels",
    "setting",
    "topic_name",
    "topic_names",
]
