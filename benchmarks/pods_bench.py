"""Suite 6: the plumbing and engine comparisons through a stack in pods on the local cluster's
real node, each beside the same stack as host processes, in this suite: same settings, the API
authenticated on both sides, the same load generator. pods / host is what running in pods
costs (kube-proxy's Service address, the node's bridge, containerd, cgroups, and here the
forwarders to the host's Kafka and MariaDB)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks import operator_bench
from benchmarks.context import Ctx, Target
from benchmarks.engine_bench import text_agreement
from benchmarks.images import write_documents
from benchmarks.jobs_db import DrainTimeoutError
from benchmarks.ocrserving_client import kubectl
from benchmarks.plumbing_bench import PLUMBING_BATCH, plumbing_pass
from benchmarks.pod_stack import (
    NAMESPACE,
    NodeMissingError,
    PodSpec,
    PodStack,
    forwarder_pids,
    host_forwarded_database_url,
    require_node,
)
from benchmarks.procs import ProcessFailedError
from benchmarks.runner import fastest_interleaved, interleaved_ratio, measure_closed, warm_up
from benchmarks.stack import RuntimeStack, StackSpec, System
from benchmarks.stats import ratio
from ocr_operator.render.auth import api_key_digest, new_api_key

OVERHEAD_GOAL = 0.90  # pods / host processes, jobs/s or images/s (< 10% overhead)
READY_TIMEOUT_S = 300.0
# The operator as the chart configures it for the local cluster (examples/local): stack pods
# on the real node, from the images `make images` built.
OPERATOR_ENV = {
    "OCR_OPERATOR_RUNTIME_REPOSITORY": "localhost/ocr-runtime",
    "OCR_OPERATOR_RUNTIME_TAG": "dev",
    "OCR_OPERATOR_DEFAULT_NODE_SELECTOR": json.dumps({"ocr-serving.local/node": "real"}),
    "OCR_OPERATOR_DEFAULT_TOLERATIONS": json.dumps(
        [{"key": "ocr-serving.local/real-node", "operator": "Exists", "effect": "NoSchedule"}]
    ),
    "OCR_OPERATOR_WATCH_CHILDREN": "true",
}
# The modes measured per engine, in order: one stack per engine, switched between them; the
# plumbing passes are the plumbing suite's three modes, the engine passes the engine suite's.
PASSES = {"noop": ("Standard", "Batched", "Writer"), "onnx": ("Standard", "Batched")}


@contextlib.contextmanager
def operator(ctx: Ctx) -> Iterator[None]:
    """The operator as a host process, watching the suite's namespace, stopped on exit."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(operator_bench.CRD_FILE))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    kubectl("apply", "-f", "-", stdin=json.dumps(namespace))
    proc, _ = operator_bench.start_operator(ctx, NAMESPACE, OPERATOR_ENV)
    try:
        yield
    finally:
        proc.stop()


class _ForwardedHostStack(RuntimeStack):
    """Host processes that reach MariaDB through the pods' forwarder, counted with it."""

    def measured_pids(self) -> dict[str, int]:
        return {**self.python_pids(), **forwarder_pids()}


def _host(ctx: Ctx, mode: str, engine: str, key: str, *, forwarded: bool) -> RuntimeStack:
    """The same stack as host processes, with the same API key; `forwarded`: its database
    connections pass the same forwarder as the pods' (like for like)."""
    spec = StackSpec(
        label=f"host-{engine}-{mode.lower()}" + ("-forwarded" if forwarded else ""),
        mode=mode.lower(),
        engine=engine,
        batch_max_size=PLUMBING_BATCH if engine == "noop" else 8,
        extra_env={"OCR_API_KEY_HASHES": api_key_digest(key)},
    )
    if not forwarded:
        stack = RuntimeStack(ctx.services, spec, ctx.log_dir)
    else:
        url = host_forwarded_database_url(ctx.services.database_url)
        services = dataclasses.replace(ctx.services, database_url=url)
        stack = _ForwardedHostStack(services, spec, ctx.log_dir)
    stack.api_key = key
    return stack


def _warm(ctx: Ctx, system: System, engine: str) -> None:
    warm_up(system, ctx.config.warmup_jobs if engine == "noop" else 2)


def _one_pass(ctx: Ctx, system: System, engine: str, images: Path) -> Callable[[], dict[str, Any]]:
    """One closed-loop pass: the plumbing suite's for the zero-cost engine; for the engine,
    every document at once, as the engine suite."""
    cfg = ctx.config
    if engine == "noop":
        return lambda: plumbing_pass(ctx, system)
    count = len(list(images.glob("*.png")))

    def engine_pass() -> dict[str, Any]:
        since = system.cutoff()
        result = measure_closed(system, count, count, cfg.drain_timeout_s, images)
        result["texts"] = system.table.result_texts(since)
        return result

    return engine_pass


def _host_variants(engine: str) -> dict[str, bool]:
    """Host stacks by name, and whether they reach MariaDB through the pods' forwarder:
    `host`, the pods' comparison; `host_direct` (plumbing only), as the plumbing suite."""
    return {"host": True, "host_direct": False} if engine == "noop" else {"host": True}


def _measure_mode(
    ctx: Ctx, pods: PodStack, mode: str, *, engine: str, key: str, images: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(host sides, pods) for one mode, each read by its fastest pass. The host stacks run
    beside the pods' stack, and the sides take turns pass by pass (`fastest_interleaved`):
    all of them up and warm, each measured while the others idle."""
    hosts: dict[str, dict[str, Any]] = {}
    systems: dict[str, System] = {}
    with contextlib.ExitStack() as opened:
        for name, forwarded in _host_variants(engine).items():
            stack = _host(ctx, mode, engine, key, forwarded=forwarded)
            hosts[name] = {"settings": stack.spec.settings()}
            try:
                systems[name] = opened.enter_context(stack)
                _warm(ctx, stack, engine)
            except (ProcessFailedError, DrainTimeoutError) as exc:
                hosts[name] |= {"error": str(exc)[:300], "jobs_per_s": math.nan}
                systems.pop(name, None)
        _warm(ctx, pods, engine)
        systems["pods"] = pods
        measures = {name: _one_pass(ctx, each, engine, images) for name, each in systems.items()}
        results = fastest_interleaved(measures, ctx.config.pods_passes)
    for name, result in results.items():
        print(f"[bench]   {systems[name].label}: {result['jobs_per_s']} jobs/s "
              f"(passes {result.get('passes_jobs_per_s')})", flush=True)  # fmt: skip
    measured = results.pop("pods")
    for name, result in results.items():
        hosts[name] |= result
    return hosts, measured


def _engine_passes(ctx: Ctx, engine: str, images: Path) -> dict[str, dict[str, Any]]:
    """For each mode of `engine`: host processes beside pods. The pods' stack is applied once
    and moved from one mode to the next by a patch, as users do."""
    modes = PASSES[engine]
    spec = PodSpec(label=engine, mode=modes[0], engine=engine,
                   batch_max_size=PLUMBING_BATCH if engine == "noop" else 8)  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    key = new_api_key()
    with PodStack(ctx.services, spec, READY_TIMEOUT_S) as pods:
        for index, mode in enumerate(modes):
            ready_s = pods.switch(mode) if index else pods.startup_s["apply -> Ready"]
            hosts, measured = _measure_mode(ctx, pods, mode, engine=engine, key=key, images=images)
            measured["settings"] = spec.settings(mode)
            measured["ready_s"] = ready_s
            out[f"{'plumbing' if engine == 'noop' else 'engine'} {mode.lower()}"] = _compare(
                hosts, measured
            )
    return out


def _compare(hosts: dict[str, Any], pods: dict[str, Any]) -> dict[str, Any]:
    compared: dict[str, Any] = {**hosts, "pods": pods}
    for name, host in hosts.items():
        suffix = name.removeprefix("host")
        compared[f"pods_to_host{suffix}"] = interleaved_ratio(pods, host)
        compared[f"fastest_pods_to_host{suffix}"] = round(
            ratio(pods["jobs_per_s"], host["jobs_per_s"]), 3
        )
    host_texts = hosts["host"].pop("texts", None)
    pods_texts = pods.pop("texts", None)
    if host_texts is not None and pods_texts is not None:
        compared["same_text_as_host"] = text_agreement(host_texts, pods_texts)
    return compared


def run(ctx: Ctx) -> dict[str, Any]:
    try:
        require_node()
    except NodeMissingError as exc:
        return {"error": str(exc)}
    images = ctx.results_dir / "images"
    write_documents(ctx.config.engine_images, images)
    passes: dict[str, Any] = {}
    with operator(ctx):
        for engine in PASSES:
            try:
                passes.update(_engine_passes(ctx, engine, images))
            except RuntimeError as exc:  # a stack that never got Ready, a pass that failed
                print(f"[bench]   pods {engine} not measured: {exc}", flush=True)
                passes[f"{engine} (not measured)"] = {"error": str(exc)[:500]}
    targets = [
        Target(
            f"pods on the real node vs host processes: {name}",
            f">= {OVERHEAD_GOAL:.2f}x",
            side["pods_to_host"],
            side["pods_to_host"] >= OVERHEAD_GOAL,
            "x",
        )
        for name, side in passes.items()
        if "pods_to_host" in side
    ]
    return {"passes": passes, "targets": [target.as_dict() for target in targets]}
