"""The operator process: its HTTP endpoints, the leader election (when asked for) and kopf,
started only once this process leads. Exit status 1 when the lead was lost: the container
restarts and stands by again, as client-go operators do."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass

import kopf

from ocr_operator.apply import KubeClient, KubeLease
from ocr_operator.endpoints import start_http
from ocr_operator.leader import LeaderElector, LeaseTimings
from ocr_operator.telemetry import OperatorMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Election:
    """Where the leader Lease lives and who this process is."""

    namespace: str
    name: str
    identity: str
    timings: LeaseTimings


@dataclass(frozen=True)
class RunOptions:
    namespaces: tuple[str, ...]
    standalone: bool
    liveness: str | None
    http: tuple[str, int] | None
    election: Election | None


async def run_process(
    options: RunOptions, registry: kopf.OperatorRegistry, metrics: OperatorMetrics
) -> int:
    """Run until stopped (0) or until the lead is lost (1)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # kopf installs its own once it runs
        loop.add_signal_handler(signum, stop.set)
    elector: LeaderElector | None = None
    kube: KubeClient | None = None
    if options.election is not None:
        kube = KubeClient.from_environment()
        elector = _elector(options.election, kube, metrics)
    runner = None
    if options.http is not None:
        host, port = options.http
        runner = await start_http(host, port, metrics, lambda: _leading(elector))
    try:
        if elector is None:
            metrics.leader.set(1)  # the only operator
            await _kopf(options, registry, stop)
            return 0
        return await _lead(options, registry, elector, stop)
    finally:
        if runner is not None:
            await runner.cleanup()
        if kube is not None:
            kube.close()


async def _lead(
    options: RunOptions,
    registry: kopf.OperatorRegistry,
    elector: LeaderElector,
    stop: asyncio.Event,
) -> int:
    assert options.election is not None
    if not await elector.acquire(stop):
        return 0
    lost = asyncio.Event()
    holding = asyncio.create_task(_hold(elector, stop, lost, options.election.timings))
    try:
        await _kopf(options, registry, stop)
    finally:
        holding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holding
        if not lost.is_set():
            await elector.release()  # a graceful stop: the standby takes over at once
    return 1 if lost.is_set() else 0


async def _hold(
    elector: LeaderElector, stop: asyncio.Event, lost: asyncio.Event, timings: LeaseTimings
) -> None:
    if await elector.hold(stop):
        return
    lost.set()
    stop.set()
    # kopf stops its handlers gracefully; should that outlast the time before a standby may
    # take over, leave at once rather than risk two leaders.
    grace = timings.duration_seconds - timings.renew_deadline_seconds
    asyncio.get_running_loop().call_later(grace / 2, os._exit, 1)


async def _kopf(options: RunOptions, registry: kopf.OperatorRegistry, stop: asyncio.Event) -> None:
    await kopf.operator(
        registry=registry,
        standalone=options.standalone,
        namespaces=list(options.namespaces),
        clusterwide=not options.namespaces,
        liveness_endpoint=options.liveness,
        stop_flag=stop,
    )


def _elector(election: Election, kube: KubeClient, metrics: OperatorMetrics) -> LeaderElector:
    return LeaderElector(
        KubeLease(kube, election.namespace, election.name),
        election.identity,
        election.timings,
        on_change=lambda leading: metrics.leader.set(1 if leading else 0),
    )


def _leading(elector: LeaderElector | None) -> bool:
    return True if elector is None else elector.leading
