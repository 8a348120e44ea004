"""When kopf's live copy of an OCRServing stands in for a read of it (`OwnVersions`), how a
pass's Deployments follow its own applies without a second list, what the operator keeps of
the watched migration Jobs, and what wakes a stack's loop (its spec, not its status)."""

from __future__ import annotations

from typing import Any

import kopf

from ocr_operator.child_events import MigrationJobs
from ocr_operator.handlers import NoDiffBase, spec_changed
from ocr_operator.observe import deployments_after_pass
from ocr_operator.own_reads import OwnVersions


def body(uid: str, version: str, **fields: Any) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "resourceVersion": version, **fields}}


def test_a_copy_stands_in_while_this_process_wrote_nothing() -> None:
    assert OwnVersions().shows(body("a", "7"))


def test_a_copy_behind_the_last_write_does_not_stand_in_until_it_shows_it() -> None:
    versions = OwnVersions()
    versions.returned(body("a", "12"))  # a status patch returned version 12
    assert not versions.shows(body("a", "11"))
    assert versions.shows(body("a", "12"))
    assert versions.shows(body("a", "13"))  # nothing awaited any more: later changes are others'


def test_writes_of_one_resource_leave_the_others_alone() -> None:
    versions = OwnVersions()
    versions.returned(body("a", "12"))
    assert versions.shows(body("b", "3"))
    assert not versions.shows(body("a", "10"))


def test_a_copy_that_skipped_the_written_version_is_read_again() -> None:
    # kopf may drop an event that a later one replaces: the copy then shows 14, never 12.
    versions = OwnVersions()
    versions.returned(body("a", "12"))
    assert not versions.shows(body("a", "14"))
    versions.returned(body("a", "14"))  # the read that follows returns the newest version
    assert versions.shows(body("a", "14"))


def test_a_forgotten_resource_awaits_nothing() -> None:
    versions = OwnVersions()
    versions.returned(body("a", "12"))
    versions.forget("a")
    assert versions.shows(body("a", "5"))


def test_a_body_without_identity_is_not_recorded() -> None:
    versions = OwnVersions()
    versions.returned({"metadata": {"uid": "a"}})
    assert versions.shows(body("a", "1"))


def deployment(name: str, generation: int, ready: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "generation": generation},
        "status": {"readyReplicas": ready},
    }


def test_a_pass_sees_what_it_applied_and_deleted_without_listing_again() -> None:
    listed = {"api": deployment("api", 1, 1), "writer": deployment("writer", 3, 1)}
    changed = {
        "api": deployment("api", 2, 0),  # a new spec: the rollout starts
        "worker": deployment("worker", 1, 0),  # created
        "writer": None,  # deleted
    }
    after = deployments_after_pass(listed, changed)
    assert after == {"api": changed["api"], "worker": changed["worker"]}


def test_an_unchanged_apply_keeps_the_deployment_as_listed_with_its_pods() -> None:
    # The apply returns the object as it is now, maybe rolled out past the pods listed
    # after it: the listed one stays, consistent with those pods.
    listed = {"api": deployment("api", 4, 1)}
    after = deployments_after_pass(listed, {"api": deployment("api", 4, 2)})
    assert after == listed


def test_only_a_new_generation_wakes_the_loop() -> None:
    memo = kopf.Memo()
    assert not spec_changed(memo, 1)  # first sight: the loop's first pass covers it
    assert not spec_changed(memo, 1)  # a status write, a finalizer: same generation
    assert spec_changed(memo, 2)
    assert not spec_changed(memo, 2)


def test_no_diff_base_is_built_kept_or_read() -> None:
    storage = NoDiffBase()
    live = kopf.Body({"metadata": {"name": "a"}, "spec": {"mode": "Standard"}, "status": {}})
    assert storage.build(body=live) == {}
    assert storage.fetch(body=live) is None
    patch = kopf.Patch()
    storage.store(body=live, patch=patch, essence=storage.build(body=live))
    assert not patch


def job(name: str, condition: str | None, owner: str = "a") -> dict[str, Any]:
    conditions = [{"type": condition, "status": "True"}] if condition else []
    return {
        "kind": "Job",
        "metadata": {
            "name": name,
            "ownerReferences": [{"kind": "OCRServing", "uid": owner, "controller": True}],
            "managedFields": [{"manager": "kube-controller-manager"}],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "migrate"}]}}},
        "status": {"conditions": conditions, "succeeded": 1},
    }


def test_the_watch_keeps_the_latest_state_of_each_job_and_only_what_a_pass_reads() -> None:
    jobs = MigrationJobs()
    jobs.job_event("ADDED", job("m-1", None))
    assert jobs.get("a", "m-1") == {"metadata": {"name": "m-1"}, "status": {"conditions": []}}
    jobs.job_event("MODIFIED", job("m-1", "Complete"))
    known = jobs.get("a", "m-1")
    assert known is not None and known["status"]["conditions"][0]["type"] == "Complete"
    assert jobs.get("a", "m-2") is None  # another image's Job: read
    assert jobs.get("b", "m-1") is None


def test_a_deleted_job_and_a_forgotten_stack_are_read_again() -> None:
    jobs = MigrationJobs()
    jobs.job_event("ADDED", job("m-1", "Complete"))
    jobs.job_event("ADDED", job("m-2", None))
    jobs.job_event("DELETED", job("m-1", "Complete"))
    assert jobs.get("a", "m-1") is None
    assert jobs.get("a", "m-2") is not None
    jobs.forget("a")
    assert jobs.get("a", "m-2") is None


def test_a_job_no_ocrserving_controls_is_not_kept() -> None:
    jobs = MigrationJobs()
    foreign = job("m-1", "Complete")
    foreign["metadata"]["ownerReferences"] = [{"kind": "CronJob", "uid": "a", "controller": True}]
    jobs.job_event("ADDED", foreign)
    assert jobs.get("a", "m-1") is None
