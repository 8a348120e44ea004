"""On the local apiserver: the operator's client reads an OCRServing from kopf's live copy
only while that copy shows the client's own last status write."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ocr_operator.apply import KubeClient
from tests.operator._cluster import get, install_crds, kubectl
from tests.operator._examples import ROOT, example_resource

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

MARK = "ocrserving.io/test-live-copy"


@pytest.fixture(scope="module")
def namespace(kubeconfig: Path) -> Iterator[str]:
    install_crds(str(ROOT / "crds"))
    name = f"ocr-live-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def marked(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of `body` that no read from the apiserver can return."""
    copied = copy.deepcopy(body)
    copied["metadata"].setdefault("annotations", {})[MARK] = "copy"
    return copied


def from_copy(body: dict[str, Any] | None) -> bool:
    assert body is not None
    return MARK in (body["metadata"].get("annotations") or {})


def test_the_live_copy_stands_in_until_a_status_write_it_does_not_show(namespace: str) -> None:
    resource = copy.deepcopy(example_resource("standard"))
    resource["metadata"] = {"name": "live", "namespace": namespace}
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(resource))
    created = get("ocrservings", "live", namespace)
    assert created is not None

    async def run() -> None:
        kube = KubeClient.from_environment()
        try:
            # Nothing written by this client yet: the copy is the answer, no read.
            assert from_copy(await kube.get_own(namespace, "live", marked(created)))
            written = await kube.patch_status(namespace, "live", {"url": "http://written"})
            # A copy from before the write: read instead, and the read shows the write.
            read = await kube.get_own(namespace, "live", marked(created))
            assert not from_copy(read)
            assert read is not None and read["status"]["url"] == "http://written"
            # Once the watch delivers the written version, the copy stands in again.
            assert from_copy(await kube.get_own(namespace, "live", marked(written)))
            # No copy at all: always a read.
            assert not from_copy(await kube.get_own(namespace, "live"))
            # After another write, a stale copy stands in only once the resource is forgotten.
            await kube.patch_status(namespace, "live", {"url": "http://again"})
            assert not from_copy(await kube.get_own(namespace, "live", marked(written)))
            await kube.patch_status(namespace, "live", {"url": "http://third"})
            kube.forget_own(str(created["metadata"]["uid"]))
            assert from_copy(await kube.get_own(namespace, "live", marked(written)))
        finally:
            kube.close()

    asyncio.run(run())
