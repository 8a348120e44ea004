"""`status` of OCRServing, written by the operator (and by the advisor for its fields)."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from ocr_operator.model._base import WireModel
from ocr_operator.model.advisor import Advice, ReplicaCap, SignalReading
from ocr_operator.model.enums import ConditionStatus, ConditionType, Mode
from ocr_operator.model.model_source import ModelStatus

ShortText = Annotated[str, StringConstraints(max_length=1024)]


class Condition(WireModel):
    """A Kubernetes-style condition."""

    type: ConditionType = Field(description="Ready, Progressing, Degraded or TopicsReady.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: Annotated[str, StringConstraints(max_length=128)] = Field(
        description="CamelCase reason (an enum of the operator or the advisor)."
    )
    message: ShortText = Field("", description="Human-readable detail.")
    last_transition_time: Annotated[str, StringConstraints(max_length=64)] = Field(
        description="When status last changed (RFC 3339)."
    )
    observed_generation: int | None = Field(None, description="Generation this reflects.")


class ComponentStatus(WireModel):
    """Replicas of one component."""

    desired: int = Field(0, description="Replicas the Deployment wants.")
    ready: int = Field(0, description="Replicas that are ready.")
    updated: int | None = Field(None, description="Replicas running the latest template.")
    available: int | None = Field(
        None, description="Updated replicas available (ready for minReadySeconds)."
    )
    image: Annotated[str, StringConstraints(max_length=512)] | None = Field(
        None, description="Image of the latest template."
    )


class ComponentsStatus(WireModel):
    """Replicas per component (writer only in Writer mode)."""

    api: ComponentStatus | None = Field(None, description="API replicas.")
    worker: ComponentStatus | None = Field(None, description="Worker replicas.")
    writer: ComponentStatus | None = Field(None, description="Writer replicas.")


class Recommendation(WireModel):
    """The advisor's recommended mode (policy Recommend)."""

    mode: Mode = Field(description="Recommended mode.")
    reason: ShortText = Field("", description="Why.")
    evidence: dict[str, float] = Field(default_factory=dict, description="Signal values.")
    since: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="Since when it is recommended (RFC 3339)."
    )
    rule: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="The rule that recommends it."
    )
    signals: list[SignalReading] = Field(
        default_factory=list,
        max_length=16,
        description="The rule's conditions and how long each held.",
    )


class Transition(WireModel):
    """One change of the active mode."""

    time: Annotated[str, StringConstraints(max_length=64)] = Field(description="RFC 3339 time.")
    from_: Mode | None = Field(None, alias="from", description="Previous mode.")
    to: Mode = Field(description="New mode.")
    reason: ShortText = Field("", description="Why.")
    rule: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="The advisor's rule (unset for a change made by a person)."
    )
    signals: list[SignalReading] = Field(
        default_factory=list,
        max_length=16,
        description="The rule's conditions and how long each held.",
    )


class AdvisorStatus(WireModel):
    """Last evaluation of the advisor (extra fields allowed)."""

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )

    gpu_utilization: float | None = Field(None, description="GPU utilisation (percent).")
    lag: float | None = Field(None, description="Jobs-topic consumer lag (messages).")
    time_to_drain_seconds: float | None = Field(
        None, description="Lag / consumption rate: seconds the backlog needs (the Lag column)."
    )
    replica_cap: ReplicaCap | None = Field(
        None, description="Cap on the database client's autoscaler (back-pressure)."
    )
    advice: list[Advice] = Field(
        default_factory=list, max_length=8, description="What a person should do, with evidence."
    )
    db_write_p95_seconds: float | None = Field(None, description="Database write p95.")
    api_p95_seconds: float | None = Field(None, description="API p95.")
    evaluated_at: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="Time of the last evaluation (RFC 3339)."
    )


class OCRServingStatus(WireModel):
    """Observed state of an OCR serving stack."""

    observed_generation: int | None = Field(None, description="Last reconciled generation.")
    active_mode: Mode | None = Field(None, description="Mode the stack runs (or moves to).")
    spec_mode: Mode | None = Field(
        None,
        description="spec.architecture.mode when activeMode "
        "was last reset; a user edit of the mode resets activeMode.",
    )
    url: Annotated[str, StringConstraints(max_length=512)] | None = Field(
        None, description="In-cluster address of the API Service."
    )
    migration: Annotated[str, StringConstraints(max_length=253)] | None = Field(
        None, description="Migration Job of the current runtime image."
    )
    model: ModelStatus | None = Field(
        None, description="The model the workers are rolled to (spec.engine.model resolved)."
    )
    conditions: list[Condition] = Field(
        default_factory=list, max_length=16, description="Ready, Progressing, Degraded, ..."
    )
    components: ComponentsStatus = Field(
        default_factory=ComponentsStatus, description="Replicas per component."
    )
    worker_replicas: int | None = Field(
        None,
        description="Replicas of the worker Deployment (the scale subresource's status).",
    )
    worker_selector: Annotated[str, StringConstraints(max_length=1024)] | None = Field(
        None,
        description="Label selector of the worker pods (the scale subresource's selector).",
    )
    recommendation: Recommendation | None = Field(None, description="Advisor recommendation.")
    transitions: list[Transition] = Field(
        default_factory=list, max_length=50, description="Recent mode changes, newest last."
    )
    advisor: AdvisorStatus | None = Field(None, description="Advisor's last evaluation.")
