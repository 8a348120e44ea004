"""Status that tells the truth, against the in-memory apiserver: the migration gate, rollouts,
the pods' causes, autoscaling, and the way out of Writer while a worker still terminates."""

from __future__ import annotations

from typing import Any

from ocr_operator.health import MigrationState, migration_state
from ocr_operator.model import Mode, OCRServingSpec
from ocr_operator.reconcile import reconcile
from ocr_operator.render import Kind, Phase
from tests.operator._fakes import NAME, NS, FakeKube, FakeTopics, condition, context, spec

WORKER = "demo-worker"


async def _steady(kube: FakeKube, topics: FakeTopics | None = None) -> None:
    await reconcile(context(kube, topics), NS, NAME)  # creates the migration Job
    await reconcile(context(kube, topics), NS, NAME)  # it completed: the workloads follow


def _deployments(kube: FakeKube) -> set[str]:
    return {name for kind, name in kube.objects if kind is Kind.DEPLOYMENT}


def _jobs(kube: FakeKube) -> set[str]:
    return {name for kind, name in kube.objects if kind is Kind.JOB}


def _image(kube: FakeKube, name: str) -> str:
    body = kube.objects[(Kind.DEPLOYMENT, name)]
    return str(body["spec"]["template"]["spec"]["containers"][0]["image"])


def _pod(name: str, component: str, mode: str = "Standard", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/component": component},
            "annotations": {"ocrserving.io/mode": mode},
        },
        "status": {"phase": "Running", **status},
    }


async def test_no_workload_starts_before_the_migration_succeeded() -> None:
    kube = FakeKube(spec("Standard"))
    kube.job_outcome = None  # the Job runs
    outcome = await reconcile(context(kube), NS, NAME)
    assert not outcome.ready
    assert outcome.retry_after is not None
    (job,) = _jobs(kube)
    assert _deployments(kube) == set()
    assert condition(kube, "Ready")["status"] == "False"
    assert condition(kube, "Progressing")["reason"] == "Migrating"
    assert condition(kube, "Migrated")["status"] == "False"
    body = kube.objects[(Kind.JOB, job)]
    container = body["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["migrate"]
    assert container["image"] == "ghcr.io/ocr-serving/ocr-runtime:0.1.0-onnx"

    kube.job_outcome = "Complete"
    outcome = await reconcile(context(kube), NS, NAME)
    assert outcome.ready
    assert _deployments(kube) == {"demo-api", WORKER}
    assert condition(kube, "Migrated")["reason"] == "MigrationSucceeded"
    assert kube.resource["status"]["migration"] == job


async def test_a_failed_migration_is_degraded_with_the_jobs_reason() -> None:
    kube = FakeKube(spec("Standard"))
    kube.job_outcome = "Failed"
    await reconcile(context(kube), NS, NAME)
    outcome = await reconcile(context(kube), NS, NAME)
    assert not outcome.ready
    assert _deployments(kube) == set()
    degraded = condition(kube, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "MigrationFailed")
    assert "BackoffLimitExceeded" in degraded["message"]
    assert condition(kube, "Ready")["reason"] == "MigrationFailed"
    assert "MigrationFailed" in kube.events


async def test_a_new_image_rolls_only_after_its_own_migration() -> None:
    kube = FakeKube(spec("Standard"))
    await _steady(kube)
    (old_job,) = _jobs(kube)
    kube.resource["spec"]["image"] = {"tag": "0.2.0"}
    kube.resource["metadata"]["generation"] = 2
    kube.job_outcome = None
    await reconcile(context(kube), NS, NAME)
    assert _image(kube, WORKER).endswith(":0.1.0-onnx")  # untouched while migrating
    assert len(_jobs(kube)) == 2
    assert condition(kube, "Ready")["status"] == "False"

    kube.job_outcome = "Complete"
    await reconcile(context(kube), NS, NAME)
    assert _image(kube, WORKER).endswith(":0.2.0-onnx")
    assert old_job not in _jobs(kube)  # the older image's Job is pruned


async def test_a_crash_looping_rollout_is_not_ready_and_degraded_with_the_cause() -> None:
    kube = FakeKube(spec("Standard"))
    await _steady(kube)
    kube.set_deployment_status(WORKER, replicas=2, updatedReplicas=1, availableReplicas=1)
    kube.pods = [
        _pod(
            "demo-worker-new",
            "worker",
            containerStatuses=[
                {
                    "name": "worker",
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                    "lastState": {"terminated": {"exitCode": 1, "message": "boom"}},
                }
            ],
        )
    ]
    outcome = await reconcile(context(kube), NS, NAME)
    assert not outcome.ready
    ready, degraded = condition(kube, "Ready"), condition(kube, "Degraded")
    assert (ready["status"], ready["reason"]) == ("False", "CrashLoopBackOff")
    assert (degraded["status"], degraded["reason"]) == ("True", "CrashLoopBackOff")
    assert "demo-worker-new" in degraded["message"]
    assert condition(kube, "Progressing")["reason"] == "RollingOut"


async def test_engine_mismatch_and_image_pull_failures_are_named() -> None:
    kube = FakeKube(spec("Standard"))
    await _steady(kube)
    kube.set_deployment_status(WORKER, availableReplicas=0, readyReplicas=0)
    mismatch = "Traceback ...\nocr-runtime: engine mismatch: OCR_ENGINE=paddle needs paddleocr"
    kube.pods = [
        _pod(
            "w1",
            "worker",
            containerStatuses=[
                {
                    "name": "worker",
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 3, "message": mismatch}},
                }
            ],
        ),
        _pod(
            "a1",
            "api",
            containerStatuses=[
                {"name": "api", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
            ],
        ),
    ]
    await reconcile(context(kube), NS, NAME)
    degraded = condition(kube, "Degraded")
    assert degraded["reason"] == "EngineMismatch"
    assert "engine mismatch: OCR_ENGINE=paddle" in degraded["message"]
    assert condition(kube, "ModelReady")["status"] == "False"


async def test_a_refused_kafka_login_is_the_named_cause_not_the_back_off() -> None:
    kube = FakeKube(spec("Standard"))
    await _steady(kube)
    kube.set_deployment_status(WORKER, availableReplicas=0, readyReplicas=0)
    refused = (
        "ocr-runtime: access denied: Kafka at kafka.kafka.svc:9093 refused the SCRAM-SHA-512 "
        "login of user 'ocr': check OCR_KAFKA_SASL_USERNAME and OCR_KAFKA_SASL_PASSWORD"
    )
    back_off = "back-off 40s restarting failed container=worker pod=w1_ocr"
    kube.pods = [
        _pod("a1", "api", containerStatuses=[
            {"name": "api", "state": {"waiting": {"reason": "CrashLoopBackOff",
                                                  "message": back_off}},
             "lastState": {"terminated": {"exitCode": 1, "message": "boom"}}},
        ]),
        _pod("w1", "worker", containerStatuses=[
            {"name": "worker", "state": {"waiting": {"reason": "CrashLoopBackOff",
                                                     "message": back_off}},
             "lastState": {"terminated": {"exitCode": 6, "message": refused}}},
        ]),
    ]  # fmt: skip
    await reconcile(context(kube), NS, NAME)
    degraded = condition(kube, "Degraded")
    # Ahead of the other pod's plain crash loop, and the broker's refusal, not the back-off.
    assert degraded["reason"] == "AccessDenied", degraded
    assert degraded["message"].startswith("pod w1 container worker: "), degraded
    assert "refused the SCRAM-SHA-512 login of user 'ocr'" in degraded["message"], degraded
    assert "back-off" not in degraded["message"], degraded


async def test_a_rollout_past_its_deadline_is_degraded_not_progressing() -> None:
    kube = FakeKube(spec("Standard"))
    await _steady(kube)
    kube.set_deployment_status(
        WORKER,
        updatedReplicas=0,
        conditions=[
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
        ],
    )
    kube.pods = [_pod("w1", "worker", conditions=[])]
    await reconcile(context(kube), NS, NAME)
    assert condition(kube, "Degraded")["reason"] == "ProgressDeadlineExceeded"
    progressing = condition(kube, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")


async def test_unschedulable_pods_are_surfaced() -> None:
    kube = FakeKube(spec("Standard"))
    await _steady(kube)
    kube.pods = [
        _pod(
            "w9",
            "worker",
            phase="Pending",
            conditions=[
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                }
            ],
        )
    ]
    await reconcile(context(kube), NS, NAME)
    degraded = condition(kube, "Degraded")
    assert degraded["reason"] == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in degraded["message"]


async def test_autoscaled_replicas_pending_keep_ready_and_say_scaling() -> None:
    scaled = spec("Standard", worker={"autoscaling": {"enabled": True, "minReplicas": 1}})
    kube = FakeKube(scaled)
    await _steady(kube)
    # The autoscaler asked for 3; one is available, all run the latest template.
    kube.objects[(Kind.DEPLOYMENT, WORKER)]["spec"]["replicas"] = 3
    kube.set_deployment_status(WORKER, replicas=3, updatedReplicas=3, availableReplicas=1)
    outcome = await reconcile(context(kube), NS, NAME)
    assert outcome.ready
    assert condition(kube, "Ready")["status"] == "True"
    progressing = condition(kube, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "ScalingReplicas")
    assert kube.resource["status"]["components"]["worker"]["available"] == 1


async def test_status_carries_the_api_url_and_the_model() -> None:
    kube = FakeKube(spec("Standard"))
    await _steady(kube)
    status = kube.resource["status"]
    assert status["url"] == "http://demo-api.ns.svc"
    assert status["components"]["worker"]["image"] == "ghcr.io/ocr-serving/ocr-runtime:0.1.0-onnx"
    model = condition(kube, "ModelReady")
    assert (model["status"], model["reason"]) == ("True", "ModelLoaded")


async def test_leaving_writer_waits_for_terminating_writer_pods_then_the_drain() -> None:
    """The race: a worker of the Writer template, already terminating, publishes its last
    results. The writer must outlive that pod and then drain what it published."""
    topics = FakeTopics()
    kube = FakeKube(spec("Writer"))
    await _steady(kube, topics)
    await reconcile(context(kube, topics), NS, NAME)
    assert "demo-writer" in _deployments(kube)

    kube.resource["spec"] = spec("Standard")
    # The worker Deployment rolled to Standard, but an old pod is still terminating.
    terminating = _pod("demo-worker-old", "worker", mode="Writer")
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    kube.pods = [terminating]
    for _ in range(2):
        outcome = await reconcile(context(kube, topics), NS, NAME)
        assert outcome.phase is Phase.WAITING_FOR_WORKERS
    assert "demo-writer" in _deployments(kube)
    assert topics.lag_reads == 0  # no drain verdict while a publisher may still publish

    # The pod published two more results on its way out, then went.
    kube.pods = []
    topics.lag_value = 2
    outcome = await reconcile(context(kube, topics), NS, NAME)
    assert outcome.phase is Phase.DRAINING_RESULTS
    assert "demo-writer" in _deployments(kube)
    kafka = OCRServingSpec.model_validate(kube.resource["spec"]).kafka
    assert topics.lag_of == {(kafka.writer_group, kafka.topics.results)}

    topics.lag_value = 0  # the writer wrote them
    await reconcile(context(kube, topics), NS, NAME)
    outcome = await reconcile(context(kube, topics), NS, NAME)
    assert (outcome.active_mode, outcome.phase) == (Mode.STANDARD, Phase.STEADY)
    assert outcome.ready
    assert "demo-writer" not in _deployments(kube)


def test_the_error_line_of_a_traceback_names_a_failed_migration() -> None:
    log = (
        'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
        'sqlalchemy.exc.OperationalError: (2003, "Can\'t connect to MySQL server")\n'
        "(Background on this error at: https://sqlalche.me/e/21/e3q8)\n"
    )
    job = {
        "metadata": {"name": "demo-migrate-1"},
        "status": {
            "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
        },
    }
    pod = {
        "metadata": {"labels": {"job-name": "demo-migrate-1"}},
        "status": {
            "containerStatuses": [{"state": {"terminated": {"exitCode": 1, "message": log}}}]
        },
    }
    state, message = migration_state(job, [pod])
    assert state is MigrationState.FAILED
    assert "BackoffLimitExceeded" in message
    assert message.endswith('OperationalError: (2003, "Can\'t connect to MySQL server")')


async def test_a_failed_migration_is_not_progressing() -> None:
    kube = FakeKube(spec("Standard"))
    kube.job_outcome = "Failed"
    await reconcile(context(kube), NS, NAME)
    await reconcile(context(kube), NS, NAME)
    progressing = condition(kube, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "MigrationFailed")
    assert condition(kube, "Ready")["message"].count("BackoffLimitExceeded") == 1
