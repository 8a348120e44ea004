"""Each mode's topology as data: which components run, with which runtime role and OCR_MODE,
what each consumes, and which topics exist. The operator's renderer and transition planner
read this table only, so a new mode is a new row.

The workers are the components whose OCR_MODE follows the stack's mode; a component that
only some modes run (the writer) is started before the workers switch to a mode that needs
it, and removed only after the workers stopped feeding it and its input topic drained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ocr_contract.enums import Component, Mode, Role, RuntimeMode, Topic
from ocr_contract.env import Env


@dataclass(frozen=True)
class Run:
    """How one component runs in a mode."""

    role: Role
    mode: RuntimeMode | None  # the OCR_MODE it reads; None: it reads none (its pods never
    # roll on a mode switch)
    consumes: Topic | None = None
    group: Env | None = None  # the setting that names its consumer group


# The settings that name each topic.
TOPIC_SETTINGS: Mapping[Topic, Env] = {
    Topic.JOBS: Env.JOBS_TOPIC,
    Topic.RESULTS: Env.RESULTS_TOPIC,
    Topic.DEAD_LETTER: Env.DEAD_LETTER_TOPIC,
}


@dataclass(frozen=True)
class Topology:
    components: Mapping[Component, Run]
    topics: frozenset[Topic]
    # A stack that starts in this mode runs its workers in `starts_from` until this mode's
    # own components are Ready (None: in this mode from the start).
    starts_from: Mode | None = None


_API = Run(Role.API, None)


def _worker(mode: RuntimeMode) -> Run:
    return Run(Role.WORKER, mode, consumes=Topic.JOBS, group=Env.CONSUMER_GROUP)


TOPOLOGY: Mapping[Mode, Topology] = {
    Mode.STANDARD: Topology(
        {Component.API: _API, Component.WORKER: _worker(RuntimeMode.STANDARD)},
        frozenset({Topic.JOBS, Topic.DEAD_LETTER}),
    ),
    Mode.BATCHED: Topology(
        {Component.API: _API, Component.WORKER: _worker(RuntimeMode.BATCHED)},
        frozenset({Topic.JOBS, Topic.DEAD_LETTER}),
    ),
    Mode.WRITER: Topology(
        {
            Component.API: _API,
            Component.WORKER: _worker(RuntimeMode.WRITER),
            Component.WRITER: Run(
                Role.WRITER, RuntimeMode.WRITER, consumes=Topic.RESULTS, group=Env.WRITER_GROUP
            ),
        },
        frozenset({Topic.JOBS, Topic.RESULTS, Topic.DEAD_LETTER}),
        starts_from=Mode.BATCHED,
    ),
}


def components(mode: Mode) -> frozenset[Component]:
    return frozenset(TOPOLOGY[mode].components)


def optional_components() -> frozenset[Component]:
    """Components that some mode runs without: they come and go with transitions."""
    every = frozenset.intersection(*(components(mode) for mode in Mode))
    return frozenset(Component) - every


def component_run(component: Component, mode: Mode) -> tuple[Mode, Run]:
    """The mode `component` runs in, and how, while the workers run `mode`: its row in
    `mode`, else its row in the first mode that runs it (a component on its way in or out
    keeps the run it has there, so a transition never rolls it)."""
    if component in TOPOLOGY[mode].components:
        return mode, TOPOLOGY[mode].components[component]
    home = next(m for m in Mode if component in TOPOLOGY[m].components)
    return home, TOPOLOGY[home].components[component]
