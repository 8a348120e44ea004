"""Pod-level settings each component (api, worker, writer) passes through to its pods:
resources as Kubernetes quantities (any resource name, extended GPU resources included),
placement, identity, scheduling classes, extra metadata, environment and volumes.

Fields Kubernetes defines at length (affinity terms, volume sources) are typed down to the
level the operator reads, and kept as written below it (`x-kubernetes-preserve-unknown-
fields`): the apiserver checks them when the operator applies the Deployment, and a refusal
there is reported as `Degraded` / `ApplyFailed` with the apiserver's message.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints, WithJsonSchema

from ocr_contract import Env
from ocr_operator.model._base import WireModel, cel

_QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
    r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# A resource.Quantity as Kubernetes writes its schema: an integer or a string such as 500m,
# 2, 1.5Gi (the pattern applies to strings).
Quantity = Annotated[
    int | Annotated[str, StringConstraints(pattern=_QUANTITY_PATTERN, max_length=64)],
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": _QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
# cpu, memory, ephemeral-storage, hugepages-2Mi, or an extended resource
# (nvidia.com/gpu, nvidia.com/mig-1g.10gb, amd.com/gpu).
ResourceName = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
        max_length=253,
    ),
]
LabelText = Annotated[str, StringConstraints(max_length=253)]
LabelKey = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
        max_length=317,
    ),
]
LabelValue = Annotated[
    str, StringConstraints(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$", max_length=63)
]
ObjectName = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)
]
DnsLabel = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
]
EnvName = Annotated[str, StringConstraints(pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", max_length=253)]
# Kept as written (checked by the apiserver in the Deployment).
JsonObject = Annotated[
    dict[str, Any], WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
]

# Variables the operator renders per container; an extra env entry may not replace them.
RESERVED_ENV = tuple(
    name.value
    for name in (
        Env.MODE,
        Env.DATABASE_URL,
        Env.REDIS_URL,
        Env.API_KEY_HASHES,
        # spec.kafka.security
        Env.KAFKA_SECURITY_PROTOCOL,
        Env.KAFKA_SASL_MECHANISM,
        Env.KAFKA_SASL_USERNAME,
        Env.KAFKA_SASL_PASSWORD,
        Env.KAFKA_SSL_CA_FILE,
        Env.KAFKA_SSL_CERT_FILE,
        Env.KAFKA_SSL_KEY_FILE,
        # spec.engine.model.s3 (the fetch-model init container)
        Env.MODEL_S3_ENDPOINT,
        Env.MODEL_S3_REGION,
        Env.MODEL_S3_ACCESS_KEY_ID,
        Env.MODEL_S3_SECRET_ACCESS_KEY,
    )
)
# The writable /tmp every component mounts (the root filesystem is read-only).
RESERVED_VOLUME, RESERVED_MOUNT_PATH = "tmp", "/tmp"


def _map_list(key: str, *rules: tuple[str, str]) -> dict[str, Any]:
    """A list whose items are unique by `key` (how server-side apply merges it too)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [key], **cel(*rules)}


class Resources(WireModel):
    """Container resource requests and limits: Kubernetes quantities by resource name (cpu,
    memory, ephemeral-storage, or any extended resource such as nvidia.com/mig-1g.10gb;
    extended resources must be equal in requests and limits)."""

    requests: dict[ResourceName, Quantity] = Field(
        default_factory=dict,
        max_length=16,
        description="Requests, e.g. {cpu: 500m, memory: 1Gi}.",
    )
    limits: dict[ResourceName, Quantity] = Field(
        default_factory=dict, max_length=16, description="Limits, e.g. {memory: 2Gi}."
    )


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(WireModel):
    """A pod toleration (subset of the core/v1 Toleration)."""

    key: LabelText | None = Field(None, description="Taint key; empty with Exists matches all.")
    operator: TolerationOperator = Field(TolerationOperator.EQUAL, description="Match rule.")
    value: LabelText | None = Field(None, description="Taint value (operator Equal).")
    effect: TaintEffect | None = Field(None, description="Taint effect; empty matches all.")


class Affinity(WireModel):
    """Pod affinity (core/v1 Affinity); each part is passed through as written."""

    node_affinity: JsonObject | None = Field(
        None, description="core/v1 NodeAffinity, e.g. GPU product or zone requirements."
    )
    pod_affinity: JsonObject | None = Field(None, description="core/v1 PodAffinity.")
    pod_anti_affinity: JsonObject | None = Field(
        None,
        description="core/v1 PodAntiAffinity; set, it replaces the one "
        "spec.availability.antiAffinity renders.",
    )


class KeyRef(WireModel):
    """A key of a Secret or ConfigMap in the resource's namespace."""

    name: ObjectName = Field(description="Object name.")
    key: Annotated[str, StringConstraints(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)] = Field(
        description="Key."
    )
    optional: bool | None = Field(None, description="Start the pod even when it is missing.")


class FieldRef(WireModel):
    """A field of the pod (metadata.name, status.podIP, spec.nodeName, ...)."""

    field_path: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Field path."
    )
    api_version: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="API version of the field path (v1)."
    )


class ResourceFieldRef(WireModel):
    """A resource request or limit of the container (limits.memory, requests.cpu)."""

    resource: Annotated[str, StringConstraints(min_length=1, max_length=253)] = Field(
        description="Resource, e.g. limits.memory."
    )
    divisor: Quantity | None = Field(None, description="Unit of the value, e.g. 1Mi.")


class EnvVarSource(
    WireModel,
    json_schema_extra=cel(
        (
            "[has(self.secretKeyRef), has(self.configMapKeyRef), has(self.fieldRef),"
            " has(self.resourceFieldRef)].filter(x, x).size() == 1",
            "valueFrom takes exactly one of secretKeyRef, configMapKeyRef, fieldRef, "
            "resourceFieldRef",
        )
    ),
):
    """Where a variable's value comes from."""

    secret_key_ref: KeyRef | None = Field(None, description="A key of a Secret.")
    config_map_key_ref: KeyRef | None = Field(None, description="A key of a ConfigMap.")
    field_ref: FieldRef | None = Field(None, description="A field of the pod.")
    resource_field_ref: ResourceFieldRef | None = Field(
        None, description="A resource of the container."
    )


class EnvVar(
    WireModel,
    json_schema_extra=cel(
        (
            "!(has(self.value) && has(self.valueFrom))",
            "env: value and valueFrom exclude each other",
        ),
    ),
):
    """An extra environment variable of the component's container (e.g. an OCR_* setting the
    spec has no field for, or a proxy). It overrides the ConfigMap's value of that name."""

    name: EnvName = Field(description="Variable name.")
    value: Annotated[str, StringConstraints(max_length=32768)] | None = Field(
        None, description="Literal value."
    )
    value_from: EnvVarSource | None = Field(None, description="Value from a Secret, ...")


class Volume(WireModel):
    """A pod volume (core/v1 Volume): `name` and one volume source, passed through as written
    (secret, configMap, persistentVolumeClaim, emptyDir, csi, ...)."""

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )

    name: DnsLabel = Field(description="Volume name (not tmp: the operator's).")


class VolumeMount(WireModel):
    """Where a volume appears in the component's container."""

    name: DnsLabel = Field(description="Name of a volume in volumes.")
    mount_path: Annotated[str, StringConstraints(pattern=r"^/.*", max_length=1024)] = Field(
        description="Absolute path in the container (not /tmp: the operator's)."
    )
    sub_path: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        None, description="Path within the volume."
    )
    read_only: bool | None = Field(None, description="Mount read-only.")


# CEL rules of every PodSettings; a subclass with rules of its own repeats them (pydantic's
# json_schema_extra is replaced, not merged).
POD_RULES = (
    (
        "self.volumeMounts.all(m, self.volumes.exists(v, v.name == m.name))",
        "every volumeMounts[].name must name one of volumes",
    ),
)


class PodSettings(WireModel, json_schema_extra=cel(*POD_RULES)):
    """What a component passes through to its pods (base of api, worker and writer)."""

    resources: Resources = Field(default_factory=Resources, description="Container resources.")
    node_selector: dict[str, LabelText] = Field(
        default_factory=dict, description="Node labels the pods require."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=16, description="Pod tolerations."
    )
    affinity: Affinity | None = Field(
        None, description="Node and pod affinity, added to the anti-affinity of availability."
    )
    service_account_name: DnsLabel | None = Field(
        None,
        description="ServiceAccount of the pods (cloud workload identity); its token is still "
        "not mounted (automountServiceAccountToken false).",
    )
    runtime_class_name: DnsLabel | None = Field(
        None, description="RuntimeClass of the pods, e.g. nvidia."
    )
    priority_class_name: DnsLabel | None = Field(None, description="PriorityClass of the pods.")
    pod_annotations: dict[LabelKey, Annotated[str, StringConstraints(max_length=4096)]] = Field(
        default_factory=dict,
        max_length=32,
        description="Extra pod annotations (the operator's own keys win over these).",
    )
    pod_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        max_length=32,
        description="Extra pod labels (the operator's selector labels win over these).",
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=64,
        description="Extra environment variables of the container (not "
        + ", ".join(RESERVED_ENV)
        + ").",
        json_schema_extra=_map_list(
            "name",
            (
                "self.all(e, !(e.name in " + str(list(RESERVED_ENV)) + "))",
                f"env may not set {', '.join(RESERVED_ENV)}: the operator renders them",
            ),
        ),
    )
    volumes: list[Volume] = Field(
        default_factory=list,
        max_length=32,
        description="Extra pod volumes (core/v1 Volume).",
        json_schema_extra=_map_list(
            "name",
            ("self.all(v, v.name != 'tmp')", "volume name tmp is the operator's (/tmp)"),
        ),
    )
    volume_mounts: list[VolumeMount] = Field(
        default_factory=list,
        max_length=32,
        description="Mounts of those volumes in the container.",
        json_schema_extra=_map_list(
            "mountPath",
            ("self.all(m, m.mountPath != '/tmp')", "mountPath /tmp is the operator's"),
        ),
    )
