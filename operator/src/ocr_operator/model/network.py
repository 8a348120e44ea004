"""`spec.networkPolicy`: the NetworkPolicies rendered for a stack (on by default).

Each component's pods get a policy that allows only what they need: the API's port to the
API, the probe/metrics port of workers and writers from the monitoring namespace, and egress
to Kafka, the database, Redis (API) and DNS on their ports. Policies select by port, not by
peer address: where the brokers, the database and the DNS servers run is the cluster's
business (add `extraEgress` rules for anything else the pods must reach).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, WithJsonSchema

from ocr_operator.model._base import WireModel

Port = Annotated[int, Field(ge=1, le=65535)]
JsonObject = Annotated[
    dict[str, Any], WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
]
LabelValue = Annotated[str, StringConstraints(max_length=63)]


class NetworkPolicySpec(WireModel):
    """NetworkPolicies of the stack's pods (enforced only where the CNI enforces them)."""

    enabled: bool = Field(
        True, description="Render the NetworkPolicies (false: none, and existing ones go)."
    )
    monitoring_namespace_selector: dict[str, LabelValue] = Field(
        default_factory=lambda: {"kubernetes.io/metadata.name": "monitoring"},
        max_length=8,
        description="Namespaces allowed to reach the probe/metrics port of workers and "
        "writers (Prometheus); the default names the namespace `monitoring`.",
    )
    monitoring_pod_selector: dict[str, LabelValue] = Field(
        default_factory=dict,
        max_length=8,
        description="Pods of those namespaces allowed (empty: every pod there).",
    )
    api_ingress_from: list[JsonObject] = Field(
        default_factory=list,
        max_length=16,
        description="NetworkPolicyPeers allowed to call the API (core networking/v1, as "
        "written); empty: any source, on the API port only.",
    )
    database_port: Port = Field(3306, description="Database port the pods may reach.")
    redis_port: Port = Field(6379, description="Redis port the API may reach (with spec.redis).")
    kafka_ports: list[Port] = Field(
        default_factory=list,
        max_length=16,
        description="Broker ports beyond those of kafka.bootstrapServers (brokers that "
        "advertise other ports).",
    )
    extra_egress: list[JsonObject] = Field(
        default_factory=list,
        max_length=16,
        description="More NetworkPolicyEgressRules for every component (as written).",
    )
