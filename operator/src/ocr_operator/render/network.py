"""NetworkPolicies of a stack (spec.networkPolicy): one per component and one for the
migration Job, each selecting that component's pods for both directions.

- api: ingress on the API port (from `apiIngressFrom`, else any source); egress to Kafka, the
  database, Redis (with spec.redis) and DNS.
- worker, writer: ingress on the probe/metrics port only from the monitoring namespace
  (kubelet probes come from the node, which NetworkPolicy implementations let through);
  egress to Kafka, the database and DNS; workers also to where their model is fetched from.
- migrate: no ingress; egress to the database and DNS.
"""

from __future__ import annotations

from typing import Any

from ocr_operator.model import Component, OCRServingSpec
from ocr_operator.render._manifest import (
    LABEL_COMPONENT,
    Instance,
    Kind,
    Manifest,
    make,
    pod_labels,
    selector_labels,
)
from ocr_operator.render.model import model_egress

DNS_PORT = 53
MIGRATION = "migrate"


def kafka_ports(spec: OCRServingSpec) -> list[int]:
    """Ports of kafka.bootstrapServers plus networkPolicy.kafkaPorts, in order, unique."""
    ports = [int(server.rsplit(":", 1)[1]) for server in spec.kafka.bootstrap_servers.split(",")]
    ports += spec.network_policy.kafka_ports
    return list(dict.fromkeys(ports))


def _to_ports(ports: list[int], protocols: tuple[str, ...] = ("TCP",)) -> dict[str, Any]:
    return {"ports": [{"port": p, "protocol": proto} for p in ports for proto in protocols]}


def _egress(spec: OCRServingSpec, *, kafka: bool, redis: bool) -> list[dict[str, Any]]:
    policy = spec.network_policy
    rules = [_to_ports([DNS_PORT], ("UDP", "TCP")), _to_ports([policy.database_port])]
    if kafka:
        rules.append(_to_ports(kafka_ports(spec)))
    if redis and spec.redis is not None:
        rules.append(_to_ports([policy.redis_port]))
    rules += [dict(rule) for rule in policy.extra_egress]
    return rules


def _policy(
    instance: Instance,
    name: str,
    *,
    selector: dict[str, str],
    ingress: list[dict[str, Any]],
    egress: list[dict[str, Any]],
    component: Component | None,
) -> Manifest:
    body = {
        "podSelector": {"matchLabels": selector},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": ingress,
        "egress": egress,
    }
    return make(Kind.NETWORK_POLICY, name, instance, body, component)


def network_policies(
    spec: OCRServingSpec, instance: Instance, components: list[Component]
) -> list[Manifest]:
    """The policies of `components` and of the migration Job; none when disabled."""
    policy = spec.network_policy
    if not policy.enabled:
        return []
    port = {"port": spec.http_port, "protocol": "TCP"}
    monitoring: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": dict(policy.monitoring_namespace_selector)}
    }
    if policy.monitoring_pod_selector:
        monitoring["podSelector"] = {"matchLabels": dict(policy.monitoring_pod_selector)}
    out = []
    for component in components:
        name = f"{instance.name}-{component.value}"
        selector = selector_labels(instance, component)
        if component is Component.API:
            rule: dict[str, Any] = {"ports": [port]}
            if policy.api_ingress_from:
                rule["from"] = [dict(peer) for peer in policy.api_ingress_from]
            egress = _egress(spec, kafka=True, redis=True)
        else:
            rule = {"ports": [port], "from": [monitoring]}
            egress = _egress(spec, kafka=True, redis=False)
            if component is Component.WORKER:
                egress += model_egress(spec.engine.model)
        out.append(
            _policy(
                instance,
                name,
                selector=selector,
                ingress=[rule],
                egress=egress,
                component=component,
            )
        )
    migrate = {**pod_labels(instance), LABEL_COMPONENT: MIGRATION}
    egress = _egress(spec, kafka=False, redis=False)
    manifest = _policy(
        instance,
        f"{instance.name}-{MIGRATION}",
        selector=migrate,
        ingress=[],
        egress=egress,
        component=None,
    )
    manifest.body["metadata"]["labels"][LABEL_COMPONENT] = MIGRATION
    out.append(manifest)
    return out
