"""Thin Kubernetes I/O: server-side apply, list, delete, status patch, events.

Plain HTTP by path on pooled urllib3 connections (no discovery round trips, no client
models); each call runs in a thread of the client's own pool because urllib3 is synchronous.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import secrets
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import kopf
import urllib3

from ocr_operator import API_GROUP, API_VERSION, FIELD_MANAGER, KIND, PLURAL
from ocr_operator.kube_login import authorization, connection_info, connection_pool
from ocr_operator.leader import LeaseRecord
from ocr_operator.own_reads import OwnVersions
from ocr_operator.ports import Body, KubeError, Owner
from ocr_operator.render import Kind, Manifest

__all__ = ["Body", "KubeClient", "KubeError", "KubeLease", "Owner"]
log = logging.getLogger(__name__)

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MERGE_CONTENT_TYPE = "application/merge-patch+json"


def _collection_path(kind: Kind, namespace: str) -> str:
    version = kind.api_version
    prefix = "/api/v1" if version == "v1" else f"/apis/{version}"
    return f"{prefix}/namespaces/{namespace}/{kind.plural}"


def _own_path(namespace: str, name: str) -> str:
    return f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/{PLURAL}/{name}"


class KubeClient:
    """The operator's handful of apiserver calls."""

    def __init__(self, info: kopf.ConnectionInfo, threads: int = 1) -> None:
        self._server = info.server.rstrip("/")
        self._connections = connection_pool(info, threads)
        self._auth = authorization(info)
        # A pool of its own, as wide as the connection pool: asyncio's default executor
        # (CPU count + 4 threads) is shared with everything else in the process, and a call
        # that finds every pooled connection taken waits for one anyway.
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube")
        self._own_versions = OwnVersions()

    @classmethod
    def from_environment(cls, threads: int = 16) -> KubeClient:
        """In-cluster service account, else the current KUBECONFIG; `threads` apiserver
        calls at most in flight at once."""
        info = connection_info()
        if info.insecure:
            # Said once here instead of a urllib3 warning on every request.
            log.warning("TLS verification of the apiserver is off (insecure-skip-tls-verify)")
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        return cls(info, threads)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._connections.clear()

    async def apply(
        self, manifest: Manifest, owner: Owner, field_manager: str = FIELD_MANAGER
    ) -> Body:
        """Server-side apply under the operator's field manager, taking over conflicts."""
        body = json.loads(json.dumps(manifest.body))
        if manifest.owned:
            body["metadata"]["ownerReferences"] = [owner.reference()]
        path = f"{_collection_path(manifest.kind, owner.namespace)}/{manifest.name}"
        query = {"fieldManager": field_manager, "force": "true"}
        return await self.request("PATCH", path, query, body, APPLY_CONTENT_TYPE)

    async def create(self, manifest: Manifest, owner: Owner) -> bool:
        """POST: create the object, or leave an existing one of that name alone (False).
        Never a read: the Secret the operator generates is created blind."""
        body = json.loads(json.dumps(manifest.body))
        if manifest.owned:
            body["metadata"]["ownerReferences"] = [owner.reference()]
        path = _collection_path(manifest.kind, owner.namespace)
        try:
            await self.request("POST", path, {"fieldManager": FIELD_MANAGER}, body)
        except KubeError as error:
            if error.status == 409:
                return False
            raise
        return True

    async def get(self, kind: Kind, namespace: str, name: str) -> Body | None:
        try:
            return await self.request("GET", f"{_collection_path(kind, namespace)}/{name}")
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    async def list(self, kind: Kind, namespace: str, labels: Mapping[str, str]) -> list[Body]:
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        result = await self.request(
            "GET", _collection_path(kind, namespace), {"labelSelector": selector}
        )
        items: list[Body] = result.get("items", [])
        return items

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        try:
            await self.request(
                "DELETE",
                f"{_collection_path(kind, namespace)}/{name}",
                {"propagationPolicy": "Background"},
            )
        except KubeError as error:
            if error.status != 404:
                raise

    async def get_own(
        self, namespace: str, name: str, live: Mapping[str, Any] | None = None
    ) -> Body | None:
        """The OCRServing. `live`: kopf's copy of it, kept current by the watch, returned
        (copied) instead of a read once it shows this client's last status write and read
        of it (`OwnVersions`)."""
        if live is not None and self._own_versions.shows(live):
            return copy.deepcopy(dict(live))
        try:
            body = await self.request("GET", _own_path(namespace, name))
        except KubeError as error:
            if error.status == 404:
                return None
            raise
        self._own_versions.returned(body)
        if live is not None:
            self._own_versions.shows(live)  # the copy may be this very version
        return body

    def forget_own(self, uid: str) -> None:
        """The OCRServing is gone, or no longer this process's to reconcile."""
        self._own_versions.forget(uid)

    async def patch_status(self, namespace: str, name: str, status: Body) -> Body:
        """JSON merge patch of the status subresource (never touches spec)."""
        written = await self.request(
            "PATCH",
            f"{_own_path(namespace, name)}/status",
            None,
            {"status": status},
            MERGE_CONTENT_TYPE,
        )
        self._own_versions.returned(written)
        return written

    async def event(self, owner: Owner, warning: bool, reason: str, message: str) -> None:
        """A core/v1 Event on the OCRServing."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{owner.name}.{secrets.token_hex(8)}",
                "namespace": owner.namespace,
            },
            "involvedObject": {
                "apiVersion": f"{API_GROUP}/{API_VERSION}",
                "kind": KIND,
                "name": owner.name,
                "namespace": owner.namespace,
                "uid": owner.uid,
            },
            "type": "Warning" if warning else "Normal",
            "reason": reason,
            "message": message[:1024],
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": FIELD_MANAGER,
            "firstTimestamp": now[:19] + "Z",
            "lastTimestamp": now[:19] + "Z",
            "count": 1,
        }
        await self.request("POST", f"/api/v1/namespaces/{owner.namespace}/events", None, body)

    async def request(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        body: Body | None = None,
        content_type: str = "application/json",
    ) -> Body:
        """One call by path (also what KubeLease builds on); KubeError when it fails."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, self._request_sync, method, path, query, body, content_type
        )

    def _request_sync(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: Body | None,
        content_type: str,
    ) -> Body:
        url = f"{self._server}{path}"
        if query:
            url = f"{url}?{urlencode(query)}"
        payload = json.dumps(body).encode() if body is not None else None
        status, data = self._send(method, url, payload, content_type)
        if status == 401:  # a rotated service account token: read it again, once
            self._auth = authorization(connection_info())
            status, data = self._send(method, url, payload, content_type)
        if status >= 300:
            raise KubeError(status, _message(data))
        return json.loads(data) if data else {}

    def _send(
        self, method: str, url: str, payload: bytes | None, content_type: str
    ) -> tuple[int, bytes]:
        headers = {"Accept": "application/json", "Content-Type": content_type, **self._auth}
        try:
            response = self._connections.request(
                method, url, body=payload, headers=headers, timeout=30.0, retries=False
            )
        except Exception as error:  # urllib3 and socket errors: retryable
            raise KubeError(0, f"{method} {url}: {error}") from error
        return response.status, response.data


class KubeLease:
    """One coordination.k8s.io/v1 Lease, for leader election."""

    def __init__(self, kube: KubeClient, namespace: str, name: str) -> None:
        self._kube = kube
        self._collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self._namespace = namespace
        self._name = name

    async def read(self) -> LeaseRecord | None:
        try:
            body = await self._kube.request("GET", f"{self._collection}/{self._name}")
        except KubeError as error:
            if error.status == 404:
                return None
            raise
        return LeaseRecord.parse(body)

    async def create(self, record: LeaseRecord) -> None:
        await self._kube.request("POST", self._collection, None, self._body(record))

    async def replace(self, record: LeaseRecord) -> None:
        body = self._body(record)
        body["metadata"]["resourceVersion"] = record.resource_version
        await self._kube.request("PUT", f"{self._collection}/{self._name}", None, body)

    def _body(self, record: LeaseRecord) -> Body:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self._name, "namespace": self._namespace},
            "spec": record.spec(),
        }


def _message(data: bytes | None) -> str:
    try:
        return str(json.loads(data or b"{}").get("message", data))
    except ValueError:
        return repr(data)
