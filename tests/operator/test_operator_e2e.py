"""End to end on the local control plane (kwok pods) and the real Kafka broker, with the
operator running under kopf's KopfRunner in this process."""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from kopf.testing import KopfRunner

from ocr_operator.handlers import register
from ocr_operator.kafka_topics import partition_counts
from ocr_operator.model import OCRServingSpec
from ocr_operator.render import Instance, Kind, Observed, plan_transition, render
from ocr_operator.settings import OperatorSettings
from tests.operator._cluster import (
    apply_documents,
    condition,
    container_env,
    get,
    install_crds,
    kubectl,
    names,
    wait_for,
)
from tests.operator._examples import EXAMPLES, ROOT, example_documents
from tests.operator._kafka import commit_offset, produce
from tests.operator.test_pod_passthrough import WORKER

pytestmark = [
    pytest.mark.e2e,
    # The local cluster's kubeconfig skips TLS verification on loopback.
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

CHILD_KINDS = "deployments,services,configmaps,jobs,horizontalpodautoscalers,poddisruptionbudgets"


@pytest.fixture(scope="module")
def crd(kubeconfig: Path) -> None:
    install_crds(str(ROOT / "crds"))


@pytest.fixture(scope="module")
def namespace(kubeconfig: Path) -> Iterator[str]:
    name = f"ocr-op-e2e-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def operator(crd: None, namespace: str, kafka_bootstrap: str) -> Iterator[KopfRunner]:
    settings = OperatorSettings(
        kafka_bootstrap=kafka_bootstrap, resync_seconds=3, wait_seconds=1, error_backoff_seconds=2
    )
    registry = kopf.OperatorRegistry()
    register(registry, settings)
    args = ["run", "--standalone", "--namespace", namespace]
    with KopfRunner(args, registry=registry, timeout=60) as runner:
        yield runner
        # Delete while the operator runs: it removes its finalizer. Should that not happen
        # in time, strip it so that the namespace can go, and fail.
        out = kubectl(
            "delete", "ocrs", "--all", "-n", namespace, "--wait=true", "--timeout=90s", check=False
        )
        if "timed out" in out or "error" in out.lower():
            for name in kubectl("get", "ocrs", "-n", namespace, "-o", "name").split():
                kubectl(
                    "patch",
                    name,
                    "-n",
                    namespace,
                    "--type=merge",
                    "-p",
                    '{"metadata":{"finalizers":null}}',
                )
            raise AssertionError(f"OCRServings were not deleted in time: {out}")
    assert runner.exception is None


def _unique_topics(resource: dict[str, Any], namespace: str) -> dict[str, Any]:
    resource = copy.deepcopy(resource)
    prefix = f"{namespace}-{resource['metadata']['name']}"
    resource["spec"]["kafka"]["topics"] = {
        "jobs": f"{prefix}-jobs",
        "results": f"{prefix}-results",
        "deadLetter": f"{prefix}-dlq",
    }
    return resource


def _documents(example: str, namespace: str) -> list[dict[str, Any]]:
    return [
        _unique_topics(d, namespace) if d["kind"] == "OCRServing" else d
        for d in example_documents(example)
    ]


def _ready(name: str, namespace: str) -> dict[str, Any] | None:
    resource = get("ocrs", name, namespace)
    if condition(resource, "Ready").get("status") != "True":
        return None
    assert resource is not None
    if resource["status"].get("observedGeneration") != resource["metadata"]["generation"]:
        return None
    return resource


def _topics(kafka_bootstrap: str, resource: dict[str, Any]) -> dict[str, int]:
    topics = resource["spec"]["kafka"]["topics"]
    return asyncio.run(partition_counts(kafka_bootstrap, list(topics.values())))


def _instance(name: str) -> str:
    return f"app.kubernetes.io/instance={name}"


def test_examples_become_ready_and_show_in_kubectl_get(
    operator: KopfRunner, namespace: str, kafka_bootstrap: str
) -> None:
    for example in EXAMPLES:
        apply_documents(namespace, _documents(example, namespace))
    for example in EXAMPLES:
        resource = wait_for(functools.partial(_ready, example, namespace), f"{example} Ready")
        mode = resource["spec"]["architecture"]["mode"]
        assert resource["status"]["activeMode"] == mode
        deployments = names("deployments", namespace, _instance(example))
        expected = {f"{example}-api", f"{example}-worker"}
        if mode == "Writer":
            expected.add(f"{example}-writer")
        assert deployments == expected
        topics = _topics(kafka_bootstrap, resource)
        kafka = resource["spec"]["kafka"]
        assert topics[kafka["topics"]["jobs"]] == kafka["partitions"]
        assert (kafka["topics"]["results"] in topics) == (mode == "Writer")
    worker = get("deployment", "writer-worker", namespace)
    assert worker is not None
    assert container_env(worker)["OCR_MODE"] == "writer"

    table = kubectl("get", "ocrs", "-n", namespace)
    header = table.splitlines()[0].split()
    assert header == ["NAME", "MODE", "ACTIVE", "READY", "RECOMMENDED", "GPU", "LAG", "AGE"]
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    assert rows["batched"][1:4] == ["Batched", "Batched", "True"]
    assert rows["writer"][1:4] == ["Writer", "Writer", "True"]
    wide = kubectl("get", "ocrs", "writer", "-n", namespace, "-o", "wide").splitlines()
    assert wide[0].split()[-3:-1] == ["REASON", "URL"]
    assert wide[1].split()[-3:-1] == ["Reconciled", f"http://writer-api.{namespace}.svc"]
    # Each stack migrated its database with the image's own migration Job first.
    writer = get("ocrs", "writer", namespace)
    assert writer is not None and condition(writer, "Migrated")["status"] == "True"
    job = get("job", writer["status"]["migration"], namespace)
    assert job is not None
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    gpu_worker = get("deployment", "writer-worker", namespace)
    assert gpu_worker is not None
    images = gpu_worker["spec"]["template"]["spec"]["containers"][0]["image"]
    assert images == "ghcr.io/ocr-serving/ocr-runtime:0.1.0-onnx-gpu"
    config = get("configmap", "writer-config", namespace)
    assert config is not None and config["data"]["OCR_KAFKA_CREATE_TOPICS"] == "false"


def test_deleting_the_resource_cleans_up(operator: KopfRunner, namespace: str) -> None:
    kubectl("delete", "ocrs", "batched", "-n", namespace, "--wait=false")
    # The operator releases its finalizer once it has stopped the resync timer.
    wait_for(lambda: get("ocrs", "batched", namespace) is None, "batched deleted", timeout=180)
    wait_for(
        lambda: (
            not kubectl(
                "get", CHILD_KINDS, "-n", namespace, "-l", _instance("batched"), "-o", "name"
            ).strip()
        ),
        "children of batched garbage-collected",
    )


def test_drift_is_corrected(operator: KopfRunner, namespace: str) -> None:
    wait_for(lambda: _ready("standard", namespace), "standard Ready")
    kubectl("delete", "deployment", "standard-worker", "-n", namespace, "--wait=true")
    wait_for(lambda: get("deployment", "standard-worker", namespace), "worker recreated")
    kubectl("set", "image", "deployment/standard-api", "api=evil:latest", "-n", namespace)
    image = "ghcr.io/ocr-serving/ocr-runtime:0.1.0-onnx"

    def api_image_restored() -> bool:
        api = get("deployment", "standard-api", namespace)
        return (
            api is not None and api["spec"]["template"]["spec"]["containers"][0]["image"] == image
        )

    wait_for(api_image_restored, "api image restored")


def _switch_resource(namespace: str) -> dict[str, Any]:
    resource = copy.deepcopy(
        next(d for d in example_documents("standard") if d["kind"] == "OCRServing")
    )
    resource["metadata"]["name"] = "switch"
    resource = _unique_topics(resource, namespace)
    spec = resource["spec"]
    spec["architecture"]["mode"] = "Batched"
    spec["api"]["replicas"] = 1
    spec["worker"]["replicas"] = 1
    # The writer cannot schedule until the test allows it: entering Writer must wait.
    spec["writer"] = {"replicas": 1, "nodeSelector": {"ocrserving.io/e2e": "nowhere"}}
    return resource


def _patch_spec(namespace: str, patch: str) -> None:
    kubectl("patch", "ocrs", "switch", "-n", namespace, "--type=merge", "-p", patch)


def _progress_reason(namespace: str, reason: str) -> bool:
    return condition(get("ocrs", "switch", namespace), "Progressing").get("reason") == reason


def _pod_template(namespace: str, name: str) -> dict[str, Any]:
    deployment = get("deployment", name, namespace)
    assert deployment is not None, name
    return dict(deployment["spec"]["template"])


def test_mode_switch_orders_writer_and_workers(
    operator: KopfRunner, namespace: str, kafka_bootstrap: str
) -> None:
    resource = _switch_resource(namespace)
    apply_documents(
        namespace, [d for d in example_documents("standard") if d["kind"] == "Secret"] + [resource]
    )
    wait_for(lambda: _ready("switch", namespace), "switch Ready in Batched")
    results = resource["spec"]["kafka"]["topics"]["results"]
    api = _pod_template(namespace, "switch-api")

    # Entering Writer: the writer exists but is not Ready, so workers keep writing themselves.
    _patch_spec(namespace, '{"spec":{"architecture":{"mode":"Writer"}}}')
    wait_for(lambda: _progress_reason(namespace, "WaitingForWriter"), "WaitingForWriter")
    assert get("deployment", "switch-writer", namespace) is not None
    worker = get("deployment", "switch-worker", namespace)
    assert worker is not None and container_env(worker)["OCR_MODE"] == "batched"
    assert results in _topics(kafka_bootstrap, resource)  # the results topic came first

    _patch_spec(namespace, '{"spec":{"writer":{"nodeSelector":null}}}')
    ready = wait_for(lambda: _ready("switch", namespace), "switch Ready in Writer")
    assert ready["status"]["activeMode"] == "Writer"
    worker = get("deployment", "switch-worker", namespace)
    assert worker is not None and container_env(worker)["OCR_MODE"] == "writer"
    assert _pod_template(namespace, "switch-api") == api  # the API did not roll

    # Leaving Writer: results not yet persisted keep the writer until the group drains them.
    asyncio.run(produce(kafka_bootstrap, results, 3))
    _patch_spec(namespace, '{"spec":{"architecture":{"mode":"Batched"}}}')
    wait_for(lambda: _progress_reason(namespace, "DrainingResults"), "DrainingResults")
    worker = get("deployment", "switch-worker", namespace)
    assert worker is not None and container_env(worker)["OCR_MODE"] == "batched"
    assert get("deployment", "switch-writer", namespace) is not None

    writer_group = resource["spec"]["kafka"].get("writerGroup", "ocr-writers")
    asyncio.run(commit_offset(kafka_bootstrap, writer_group, results, 3))
    wait_for(lambda: _ready("switch", namespace), "switch Ready in Batched again")
    assert get("deployment", "switch-writer", namespace) is None
    assert _pod_template(namespace, "switch-api") == api
    events = json.loads(
        kubectl(
            "get",
            "events",
            "-n",
            namespace,
            "-o",
            "json",
            "--field-selector",
            "involvedObject.name=switch",
        )
    )
    reasons = {e["reason"] for e in events["items"]}
    assert {"ModeChanged", "WaitingForWriter", "DrainingResults"} <= reasons


def test_partition_decrease_is_not_supported(
    operator: KopfRunner, namespace: str, kafka_bootstrap: str
) -> None:
    wait_for(lambda: _ready("switch", namespace), "switch Ready")
    _patch_spec(namespace, '{"spec":{"kafka":{"partitions":2}}}')

    def refused() -> dict[str, Any] | None:
        resource = get("ocrs", "switch", namespace)
        topics = condition(resource, "TopicsReady")
        return resource if topics.get("reason") == "NotSupported" else None

    resource = refused() or wait_for(refused, "TopicsReady NotSupported")
    assert condition(resource, "Degraded")["status"] == "True"
    jobs = resource["spec"]["kafka"]["topics"]["jobs"]
    assert _topics(kafka_bootstrap, resource)[jobs] == 6


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"worker": {"replicas": 9}}, "worker.replicas must not exceed kafka.partitions"),
        (
            {"kafka": {"topics": {"jobs": "same", "results": "same"}}},
            "must be three different topics",
        ),
        (
            {"api": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
            "minReplicas must not exceed maxReplicas",
        ),
        ({"kafka": {"management": "Strimzi"}}, "kafka.strimziCluster is required"),
        ({"engine": {"device": "gpu"}, "worker": {"gpus": 0}}, "engine.device gpu needs"),
        ({"architecture": {"mode": "Turbo"}}, 'Unsupported value: "Turbo"'),
        (
            {"api": {"serviceType": "LoadBalancer", "auth": {"mode": "None"}}},
            "api.serviceType NodePort or LoadBalancer exposes the API outside the cluster and "
            "needs authentication",
        ),
        (
            {"api": {"serviceType": "NodePort", "auth": {"mode": "None"}}},
            "remove api.auth.mode None",
        ),
        ({"redis": None}, "api.limits.rateLimitPerMinute needs spec.redis"),
        (
            {"worker": {"env": [{"name": "OCR_DATABASE_URL", "value": "sqlite://"}]}},
            "env may not set OCR_MODE, OCR_DATABASE_URL",
        ),
        (
            {"api": {"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}},
            "Duplicate value",
        ),
        ({"worker": {"volumes": [{"name": "tmp", "emptyDir": {}}]}}, "volume name tmp"),
        (
            {"worker": {"volumeMounts": [{"name": "nope", "mountPath": "/x"}]}},
            "every volumeMounts[].name must name one of volumes",
        ),
        ({"worker": {"resources": {"limits": {"memory": "lots"}}}}, "should match"),
        ({"worker": {"resources": {"limits": {"Bad Name": "1"}}}}, "keys must match"),
        ({"worker": {"gpuResourceName": "not a resource"}}, "should match"),
    ],
)
def test_bad_specs_are_rejected_by_the_apiserver(
    crd: None, namespace: str, patch: dict[str, Any], message: str
) -> None:
    resource = copy.deepcopy(
        next(d for d in example_documents("standard") if d["kind"] == "OCRServing")
    )
    resource["metadata"]["name"] = "bad"
    _merge(resource["spec"], patch)
    out = kubectl(
        "apply",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=yaml.safe_dump(resource),
        check=False,
    )
    assert message in out, out


@pytest.mark.parametrize(
    "patch",
    [
        {"api": {"serviceType": "LoadBalancer"}},  # auth defaults to ApiKey
        {"api": {"serviceType": "NodePort", "auth": {"mode": "ApiKey"}}},
        {"api": {"auth": {"mode": "None"}}},  # ClusterIP: an explicit opt-out is allowed
        {"api": {"auth": {"apiKeySecretRef": {"name": "team-keys"}}}},
        {"redis": None, "api": {"limits": {"rateLimitPerMinute": 0}}},
        {
            "engine": {"device": "gpu"},
            "worker": {
                "gpuResourceName": "nvidia.com/mig-1g.10gb",
                "runtimeClassName": "nvidia",
                "resources": {"requests": {"cpu": 2, "memory": "4Gi"}},
                "env": [
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
                ],
                "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "m"}}],
                "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": True}],
                "podLabels": {"team": "ocr"},
                "affinity": {"podAffinity": {}},
            },
        },
    ],
)
def test_authenticated_or_internal_apis_are_accepted(
    crd: None, namespace: str, patch: dict[str, Any]
) -> None:
    resource = copy.deepcopy(
        next(d for d in example_documents("standard") if d["kind"] == "OCRServing")
    )
    resource["metadata"]["name"] = "fine"
    _merge(resource["spec"], patch)
    out = kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-o", "json", "-f", "-",
        stdin=yaml.safe_dump(resource), check=False,
    )  # fmt: skip
    assert out.lstrip().startswith("{"), out
    defaulted = json.loads(out[out.index("{") :])["spec"]["api"]
    assert defaulted["auth"]["mode"] in {"ApiKey", "None"}
    if "apiKeySecretRef" in defaulted["auth"]:
        assert defaulted["auth"]["apiKeySecretRef"]["key"] == "hashes"  # the default key


def test_a_rendered_passthrough_deployment_is_accepted_by_the_apiserver(
    crd: None, namespace: str
) -> None:
    """What the operator applies from a full worker passthrough is a valid Deployment."""
    resource = next(d for d in example_documents("standard") if d["kind"] == "OCRServing")
    raw = copy.deepcopy(resource["spec"])
    _merge(raw, {"engine": {"device": "gpu"}, "worker": copy.deepcopy(WORKER)})
    spec = OCRServingSpec.model_validate(raw)
    plan = plan_transition(spec.architecture.mode, Observed())
    manifests = render(spec, Instance("pt", namespace), plan)
    worker = next(m.body for m in manifests if m.key == (Kind.DEPLOYMENT, "pt-worker"))
    out = kubectl(
        "apply", "--server-side", "--dry-run=server", "-n", namespace, "-o", "json", "-f", "-",
        stdin=json.dumps(worker), check=False,
    )  # fmt: skip
    assert out.lstrip().startswith("{"), out
    pod = json.loads(out)["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == "1"


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif value is None:
            target.pop(key, None)
        else:
            target[key] = value


def _standard_named(name: str, namespace: str, kafka: dict[str, Any]) -> list[dict[str, Any]]:
    documents = _documents("standard", namespace)
    resource = next(d for d in documents if d["kind"] == "OCRServing")
    resource["metadata"]["name"] = name
    resource = _unique_topics(resource, namespace)
    resource["spec"]["kafka"].update(kafka)
    return [d for d in documents if d["kind"] == "Secret"] + [resource]


def test_external_topics_are_left_alone(
    operator: KopfRunner, namespace: str, kafka_bootstrap: str
) -> None:
    documents = _standard_named("external", namespace, {"management": "External"})
    apply_documents(namespace, documents)
    resource = wait_for(lambda: _ready("external", namespace), "external Ready")
    assert condition(resource, "TopicsReady")["reason"] == "TopicsExternal"
    assert _topics(kafka_bootstrap, resource) == {}


def test_missing_strimzi_is_reported_without_children(operator: KopfRunner, namespace: str) -> None:
    kafka = {"management": "Strimzi", "strimziCluster": "events"}
    apply_documents(namespace, _standard_named("strimzi", namespace, kafka))

    def degraded() -> dict[str, Any] | None:
        resource = get("ocrs", "strimzi", namespace)
        found = condition(resource, "Degraded").get("reason") == "StrimziUnavailable"
        return resource if found else None

    resource = wait_for(degraded, "Degraded StrimziUnavailable")
    assert condition(resource, "Ready")["status"] == "False"
    assert "KafkaTopic" in condition(resource, "Degraded")["message"]
    assert names("deployments", namespace, _instance("strimzi")) == set()


def test_a_stuck_rollout_is_not_ready_and_degraded_with_the_cause(
    operator: KopfRunner, namespace: str
) -> None:
    wait_for(lambda: _ready("standard", namespace), "standard Ready")
    patch = '{"spec":{"worker":{"nodeSelector":{"ocrserving.io/e2e":"nowhere"}}}}'
    kubectl("patch", "ocrs", "standard", "-n", namespace, "--type=merge", "-p", patch)

    def degraded() -> dict[str, Any] | None:
        resource = get("ocrs", "standard", namespace)
        found = condition(resource, "Degraded").get("reason") == "Unschedulable"
        return resource if found else None

    resource = wait_for(degraded, "Degraded Unschedulable")
    assert condition(resource, "Ready")["status"] == "False"
    assert condition(resource, "Progressing")["reason"] == "RollingOut"
    assert "standard-worker" in condition(resource, "Degraded")["message"]
    kubectl(
        "patch", "ocrs", "standard", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"worker":{"nodeSelector":null}}}',
    )  # fmt: skip
    resource = wait_for(lambda: _ready("standard", namespace), "standard Ready again")
    assert condition(resource, "Degraded")["status"] == "False"


def test_workloads_wait_for_the_migration(operator: KopfRunner, namespace: str) -> None:
    """The migration Job runs where the API runs; while it cannot, no workload starts."""
    documents = _standard_named("gated", namespace, {})
    resource = documents[-1]
    resource["spec"]["api"]["nodeSelector"] = {"ocrserving.io/e2e": "nowhere"}
    apply_documents(namespace, documents)

    def migrating() -> dict[str, Any] | None:
        found = get("ocrs", "gated", namespace)
        return found if condition(found, "Migrated").get("reason") == "Migrating" else None

    found = wait_for(migrating, "gated Migrating")
    assert condition(found, "Ready")["status"] == "False"
    wait_for(
        lambda: (
            condition(get("ocrs", "gated", namespace), "Degraded").get("reason") == "Unschedulable"
        ),
        "the migration pod's cause surfaced",
    )
    assert names("deployments", namespace, _instance("gated")) == set()
    kubectl(
        "patch", "ocrs", "gated", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"api":{"nodeSelector":null}}}',
    )  # fmt: skip
    wait_for(lambda: _ready("gated", namespace), "gated Ready after its migration")
    assert names("deployments", namespace, _instance("gated")) == {"gated-api", "gated-worker"}
    assert len(names("jobs", namespace, _instance("gated"))) == 1  # the stuck one is pruned
